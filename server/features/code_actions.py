"""Code actions: "Fix with ensemble", "Improve with ensemble", "Implement this function" (on stubs), "Add
docstring", "Review with ensemble" on the selection or the enclosing function; and, while a result is fresh,
"Apply consensus" / "Apply <model>'s alternative" and the review findings' quick fixes.

Listing never calls a model: each action carries a ``codeconductor.*`` command that runs the ensemble only when
the user picks it (see ``commands.py`` for why commands rather than ``codeAction/resolve``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lsprotocol import types as lsp
from pygls.workspace import TextDocument

from codeconductor.ensemble import TaskKind, function_at, is_python

from .. import preview
from ..edits import language_of, target_span
from ..protocol import Command
from ..server import CodeConductorServer
from ._common import Target, alternative_title, consensus_label, target_argument

__all__ = ["KINDS", "REJECT_TITLE", "code_actions"]

KINDS = {
    TaskKind.FIX: "quickfix.codeconductor.fix",
    TaskKind.IMPROVE: "refactor.rewrite.codeconductor.improve",
    TaskKind.IMPLEMENT: "refactor.rewrite.codeconductor.implement",
    TaskKind.DOCSTRING: "refactor.rewrite.codeconductor.docstring",
    TaskKind.REVIEW: "refactor.codeconductor.review",
}
APPLY_KIND = "quickfix.codeconductor.apply"
FIX_KIND = "quickfix.codeconductor.fixWithTests"
GEN_KIND = "refactor.codeconductor.generateTests"
REJECT_TITLE = "Reject the ensemble's suggestion (nothing changes)"
_WAITING = ("Accept: ", REJECT_TITLE)

_TITLES = {
    TaskKind.FIX: "Fix with ensemble",
    TaskKind.IMPROVE: "Improve with ensemble",
    TaskKind.IMPLEMENT: "Implement this function",
    TaskKind.DOCSTRING: "Add docstring",
    TaskKind.REVIEW: "Review with ensemble",
}
_FIX_TITLE = "Make tests pass with ensemble"
_GEN_TITLE = "Generate tests with ensemble"


def _wanted(kind: str, only: list[str] | None) -> bool:
    return not only or any(kind == o or kind.startswith(o + ".") for o in only)


def _action(title: str, kind: str, command: Command, argument: Mapping[str, Any], **extra: Any) -> lsp.CodeAction:
    return lsp.CodeAction(
        title=title, kind=kind, command=lsp.Command(title=title, command=command.value, arguments=[argument]), **extra
    )


def code_actions(ls: CodeConductorServer, params: lsp.CodeActionParams) -> list[lsp.CodeAction]:
    doc = ls.document(params.text_document.uri)
    start, end = target_span(ls, doc, params.range)
    only = [str(k) for k in params.context.only] if params.context.only else None
    target = target_argument(doc, start, end) | {"version": doc.version}
    fresh = _fresh_results(ls, doc.uri, params, start, end) if _wanted(APPLY_KIND, only) else []
    # A preview waiting for the user's answer comes first (in Neovim and Emacs it is the preview).
    actions = [a for a in fresh if a.command is not None and a.command.title.startswith(_WAITING)]
    for task in (TaskKind.FIX, TaskKind.IMPROVE, TaskKind.IMPLEMENT, TaskKind.DOCSTRING):
        if not _wanted(KINDS[task], only):
            continue
        if task is TaskKind.IMPLEMENT and not ls.is_stub(doc, start, end, language_of(doc)):
            continue
        actions.append(_action(_TITLES[task], KINDS[task], Command.RUN, {**target, "task": task.value}))
    if _wanted(KINDS[TaskKind.REVIEW], only):
        actions.append(_action(_TITLES[TaskKind.REVIEW], KINDS[TaskKind.REVIEW], Command.REVIEW, target))
    actions.extend(a for a in fresh if a not in actions)
    actions.extend(_test_actions(ls, doc, params.range.start.line, target_argument(doc, start, end), only))
    return actions


def _test_actions(
    ls: CodeConductorServer, doc: TextDocument, line: int, target: Target, only: list[str] | None
) -> list[lsp.CodeAction]:
    """ "Make tests pass" and "Generate tests", offered when the cursor or selection is in a Python function."""
    if not is_python(language_of(doc)) or function_at(ls.blocks(doc, "python", line), line, "python") is None:
        return []
    offered: tuple[tuple[str, str, Command, Mapping[str, Any]], ...] = (
        (_FIX_TITLE, FIX_KIND, Command.FIX_WITH_TESTS, {**target, "version": doc.version}),
        (_GEN_TITLE, GEN_KIND, Command.GENERATE_TESTS, target),
    )
    return [
        _action(title, kind, command, argument) for title, kind, command, argument in offered if _wanted(kind, only)
    ]


def _fresh_results(
    ls: CodeConductorServer, uri: str, params: lsp.CodeActionParams, start: int, end: int
) -> list[lsp.CodeAction]:
    """The consensus (when not applied) and the dissenting clusters of results on these lines, and quick fixes
    for the review findings the client sent as context."""
    actions: list[lsp.CodeAction] = []
    line = params.range.start.line
    # Where the client can show a diff (its own preview, or change annotations), alternatives are previewed
    # first; elsewhere picking one is the user's explicit choice of code they can read in the hover.
    alternative_command = (
        Command.PREVIEW
        if ls.settings.apply != "never" and (preview.client_previews(ls) or preview.annotations_supported(ls))
        else Command.APPLY_SUGGESTION
    )
    for record in ls.store.overlapping(uri, min(start, line), max(end, line + 1)):
        c = record.result.consensus
        offer = record.offer
        if offer is not None and record.pending is None:
            # A preview waiting for the user (the code-action fallback: the only place Neovim/Emacs show it).
            target = {"runId": record.id, "cluster": offer.cluster}
            actions.append(
                _action(
                    f"Accept: {offer.label}",
                    APPLY_KIND,
                    Command.APPLY_SUGGESTION,
                    {**target, "version": offer.version},
                    is_preferred=True,
                )
            )
            actions.append(_action(REJECT_TITLE, APPLY_KIND, Command.REJECT, target))
        if record.task is TaskKind.REVIEW or not c.clusters:
            continue
        if not record.applied and record.pending is None and not record.rejected and offer is None and c.offers_edit:
            actions.append(
                _action(
                    consensus_label(record.result),
                    APPLY_KIND,
                    Command.APPLY_SUGGESTION,
                    {"runId": record.id, "cluster": 0},
                    is_preferred=True,
                )
            )
        for index in range(1, len(c.clusters)):
            if c.clusters[index].rejected:
                continue  # failed the trust gate: viewable in the hover, never one click away
            if offer is not None and offer.cluster == index:
                continue
            actions.append(
                _action(
                    alternative_title(record.result, index),
                    APPLY_KIND,
                    alternative_command,
                    {"runId": record.id, "cluster": index},
                )
            )
    for diag in params.context.diagnostics:
        data = diag.data if isinstance(diag.data, dict) else None
        if diag.source != "codeconductor" or data is None or "finding" not in data:
            continue
        found = ls.store.get(str(data.get("runId")))
        number = data.get("finding")
        if found is None or not isinstance(number, int) or number >= len(found.result.consensus.findings):
            continue
        finding = found.result.consensus.findings[number]
        if finding.fix:
            actions.append(
                _action(
                    f"Apply fix: {finding.message[:60]}",
                    APPLY_KIND,
                    Command.APPLY_SUGGESTION,
                    {"runId": found.id, "finding": number},
                    diagnostics=[diag],
                )
            )
    return actions
