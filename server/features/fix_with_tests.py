"""Editor side of "Make tests pass with ensemble" and "Generate tests with ensemble".

Commands (``workspace/executeCommand``), offered as code actions on a function:

* ``codeconductor.fixWithTests`` ``{uri, range, version?, tests?, rounds?, apply?}``: the fix-until-green loop of
  :mod:`codeconductor.ensemble.fixloop` on the function at ``range`` (the editor's unsaved text is what gets tested). Without
  ``tests``, the project's tests that mention the function are used. Progress (round, model, test results) goes
  to ``$/progress``; the passing edit is applied with the label "k/n candidates pass the tests". When nothing
  passes, nothing is edited and the user sees the best attempt's result.
* ``codeconductor.generateTests`` ``{uri, range, codeCorrect?, apply?}``: :mod:`codeconductor.ensemble.testgen`; the kept tests
  become a new test file (``workspace/applyEdit`` with a ``CreateFile``).

Both are runs like ``codeconductor.run`` (:meth:`CodeConductorServer.track_run`): the progress notification's
cancel button (``window/workDoneProgress/cancel``), ``codeconductor.cancel`` and ``$/cancelRequest`` stop the loop
and its model calls at once; the reply is then ``{"status": "cancelled"}`` and nothing is edited.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lsprotocol import types as lsp
from pydantic import Field
from pygls.workspace import TextDocument

from codeconductor.ensemble import ProgressEvent, TaskKind, find_project_tests, span_lines

from .. import preview
from ..edits import doc_lines, line_span, planned_edit
from ..protocol import FixStatus, FixWithTestsResponse, GenerateTestsResponse, Status
from ..runs import RunRecord, Span
from ..server import CodeConductorServer
from ._common import Args, Progress, RangeArgs, Stopped, function_at_line, parse, tracked_run

if TYPE_CHECKING:
    from codeconductor.ensemble import FixOutcome, FixProgress

__all__ = ["fix_command", "generate_command"]

logger = logging.getLogger(__name__)


class FixArgs(Args):
    uri: str
    range: RangeArgs
    version: int | None = None
    tests: list[str] = Field(default_factory=list)
    rounds: int = Field(default=3, ge=1, le=10)
    apply: bool = True


class GenArgs(Args):
    uri: str
    range: RangeArgs
    code_correct: bool = False
    apply: bool = True


def _root_of(ls: CodeConductorServer, doc: TextDocument) -> tuple[Path, str]:
    """The workspace folder holding the document (else the document's folder), and the document's path in it."""
    path = Path(doc.path).resolve()
    folders = [Path(f.uri.removeprefix("file://")) for f in (ls.workspace.folders or {}).values()]
    root_path = ls.workspace.root_path
    if root_path:
        folders.append(Path(root_path))
    for folder in sorted(folders, key=lambda f: len(str(f)), reverse=True):
        if path.is_relative_to(folder.resolve()):
            return folder.resolve(), path.relative_to(folder.resolve()).as_posix()
    return path.parent, path.name


# The loop's own outcome (codeconductor.ensemble.fixloop.FixOutcome.status) as the reply's status.
_OUTCOME_STATUS: dict[str, FixStatus] = {
    "passed": Status.PASSED,
    "already_passing": Status.ALREADY_PASSING,
    "failed": Status.FAILED,
}


def _fix_reply(run_id: str, status: FixStatus, message: str) -> FixWithTestsResponse:
    return {"runId": run_id, "status": status, "applied": False, "message": message}


async def fix_command(ls: CodeConductorServer, *args: Any) -> FixWithTestsResponse:
    # The loop pulls in the consensus and the sandbox: imported when first used, so the server starts fast.
    from codeconductor.ensemble import FixTarget, fix_with_tests

    a = parse(args, FixArgs)
    doc = ls.document(a.uri)
    version = doc.version
    if a.version is not None and a.version != version:
        return {"status": Status.STALE, "applied": False, "message": f"{doc.uri} changed since the request"}
    start_line, _ = line_span(doc, a.range.to_lsp())
    found = function_at_line(ls, doc, start_line)
    function = found.name
    root, rel = _root_of(ls, doc)
    tests = list(a.tests) or await find_project_tests(root, function)
    if not tests:
        message = (
            f"CodeConductor: no test in the project mentions {function}; "
            "pass test ids (e.g. tests/test_x.py::test_y) in the command's `tests` argument."
        )
        ls.show(message, 2)
        return {"status": Status.NO_TESTS, "applied": False, "message": message}
    run_id = ls.store.new_id()

    def report(progress: Progress, event: FixProgress) -> None:
        if event.phase == "model" and event.detail not in ("answered", "failed", "timeout"):
            return
        progress.report(event.message, int(100 * max(0, event.round - 1) / event.rounds) if event.round else 0)

    target = FixTarget(root=str(root), path=rel, function=function, tests=tests, text=doc.source)
    outcome = await tracked_run(
        ls,
        run_id,
        f"CodeConductor: make tests pass ({function})",
        lambda progress: fix_with_tests(
            ls.pipeline.run, target, rounds=a.rounds, on_progress=functools.partial(report, progress)
        ),
        summary=lambda done: done.message,
    )
    if isinstance(outcome, Stopped):
        return _fix_reply(run_id, outcome.status, outcome.message)
    span = (found.start, found.end)
    return await _deliver(ls, doc, a=a, run_id=run_id, version=version, outcome=outcome, span=span, tests=tests)


async def _deliver(
    ls: CodeConductorServer,
    doc: TextDocument,
    *,
    a: FixArgs,
    run_id: str,
    version: int | None,
    outcome: FixOutcome,
    span: tuple[int, int],
    tests: list[str],
) -> FixWithTestsResponse:
    out = _fix_reply(run_id, _OUTCOME_STATUS[outcome.status], outcome.message)
    out["tests"] = tests
    out["outcome"] = outcome.model_dump(mode="json", exclude={"result"})
    if outcome.status != "passed" or outcome.result is None:
        ls.show(f"CodeConductor: {outcome.message}", 3 if outcome.status == "already_passing" else 2)
        return out
    start, end = span
    record = RunRecord(
        id=run_id,
        uri=doc.uri,
        task=TaskKind.FIX,
        result=outcome.result,
        span=Span(start, end),
        version=version,
        lines=doc_lines(doc)[start:end],
    )
    ls.store.add(record)
    # Exactly the text the tests passed on, not a second rendering of the pick.
    new_lines = span_lines(doc.source, outcome.new_text, start, end)
    out["newText"] = planned_edit(doc, start, end, new_lines).new_text
    if not a.apply:
        out["status"] = Status.PROPOSED
        return out
    label = f"Apply fix: {outcome.message}"
    # Through the preview like every edit (server/preview.py); "passed" stays the status once it is applied.
    offered = await preview.offer(
        ls, doc, record, new_lines, cluster=0, label=label, version=version, members=list(outcome.pick_models)
    )
    if offered["applied"]:
        out["applied"] = True
        return out
    for key in ("range", "preview", "version", "uri", "oldText"):
        if key in offered:
            out[key] = offered[key]
    out["status"] = offered["status"]  # type: ignore[typeddict-item]  # not applied: preview | proposed | rejected | stale
    out["message"] = offered["message"]
    return out


async def generate_command(ls: CodeConductorServer, *args: Any) -> GenerateTestsResponse:
    from codeconductor.ensemble import generate_tests

    a = parse(args, GenArgs)
    doc = ls.document(a.uri)
    start_line, _ = line_span(doc, a.range.to_lsp())
    function = function_at_line(ls, doc, start_line).name
    root, rel = _root_of(ls, doc)
    run_id = ls.store.new_id()

    def report(progress: Progress, event: ProgressEvent) -> None:
        if event.status in ("answered", "failed", "timeout"):
            progress.report(f"{event.done}/{event.total} models answered")

    outcome = await tracked_run(
        ls,
        run_id,
        f"CodeConductor: generate tests ({function})",
        lambda progress: generate_tests(
            ls.pipeline.run,
            root=root,
            path=rel,
            function=function,
            code_correct=a.code_correct,
            on_progress=functools.partial(report, progress),
        ),
        summary=lambda done: done.message,
    )
    if isinstance(outcome, Stopped):
        return {"runId": run_id, "status": outcome.status, "applied": False, "message": outcome.message}
    uri = (root / outcome.path).as_uri()
    out: GenerateTestsResponse = {
        "runId": run_id,
        "status": Status.GENERATED if outcome.content else Status.NO_TESTS,
        "applied": False,
        "message": outcome.message,
        "uri": uri,
        "content": outcome.content,
        "outcome": outcome.model_dump(mode="json", exclude={"result"}),
    }
    if not outcome.content or not a.apply:
        if not outcome.content:
            ls.show(f"CodeConductor: {outcome.message}", 2)
        return out
    edit = lsp.WorkspaceEdit(
        document_changes=[
            lsp.CreateFile(uri=uri, options=lsp.CreateFileOptions(overwrite=False, ignore_if_exists=False)),
            lsp.TextDocumentEdit(
                text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=uri, version=None),
                edits=[lsp.TextEdit(range=lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)), new_text=outcome.content)],
            ),
        ]
    )
    try:
        reply = await ls.ask_client(
            lambda: ls.workspace_apply_edit_async(
                lsp.ApplyWorkspaceEditParams(edit=edit, label=f"Add generated tests ({outcome.message})")
            )
        )
    except Exception as exc:
        logger.warning("workspace/applyEdit failed: %s", exc)
        out["message"] = f"the editor did not create the file: {exc}"
        return out
    out["applied"] = bool(reply.applied)
    return out
