"""A preview before any edit: the user sees the ensemble's change and accepts or rejects it.

The ``apply`` setting decides what happens to a suggested edit: ``preview`` (the default) shows it first; ``auto``
applies it at once when it was checked and its confidence reaches ``autoApplyConfidence`` (an unchecked pick is
always previewed) and previews the others; ``never`` only
offers it as a code action ("Apply consensus …"). A preview is shown the best way the client can, in this order:

1. The client previews edits itself: the CodeConductor VS Code extension advertises
   ``capabilities.experimental.codeconductor.preview = true`` and opens a diff editor (current vs proposed) with
   Accept / Reject. The reply has ``status: "preview"``, ``preview: "client"``, the range and the new text.
2. The client supports change annotations (``workspace.workspaceEdit.changeAnnotationSupport``, LSP 3.16): the
   edit goes out through ``workspace/applyEdit`` with an annotation that ``needsConfirmation``; the client shows it
   and applies it only if the user confirms (``preview: "annotation"``).
3. Otherwise (Neovim, Emacs/eglot) nothing is applied: ``status: "preview"``, ``preview: "codeAction"``, and the
   code actions on the lines offer "Accept: …" and "Reject the ensemble's suggestion".

Accepting (``codeconductor.applySuggestion``) and rejecting (``codeconductor.reject``) are feedback recorded in
the history, which the learned weights read. Rejecting changes nothing in the file: nothing was changed.
"""

from __future__ import annotations

from typing import Any, Literal

from pygls.workspace import TextDocument

from codeconductor.ensemble.types import ConsensusResult

from .edits import apply_lines, planned_edit, range_json
from .protocol import RunResponse, Status
from .runs import Offer, RunRecord, Span
from .server import CodeConductorServer

__all__ = [
    "EXPERIMENTAL_KEY",
    "accept",
    "annotations_supported",
    "client_previews",
    "decide",
    "members_of",
    "offer",
    "reject",
]

EXPERIMENTAL_KEY = "codeconductor"

Decision = Literal["apply", "preview", "propose"]


def _plain(value: Any) -> Any:
    """pygls hands unknown (``LSPAny``) objects over as namedtuples; plain dicts are easier to read."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def client_previews(ls: CodeConductorServer) -> bool:
    """Whether the client shows previews itself (``experimental.codeconductor.preview``)."""
    experimental = _plain(ls.client_capabilities.experimental)
    ours = experimental.get(EXPERIMENTAL_KEY) if isinstance(experimental, dict) else None
    return isinstance(ours, dict) and ours.get("preview") is True


def annotations_supported(ls: CodeConductorServer) -> bool:
    """Whether the client honours change annotations (and so ``needsConfirmation``) in workspace edits."""
    workspace = ls.client_capabilities.workspace
    edit = workspace.workspace_edit if workspace is not None else None
    return edit is not None and edit.change_annotation_support is not None and bool(edit.document_changes)


def decide(ls: CodeConductorServer, consensus: ConsensusResult, *, explicit: bool = False) -> Decision:
    """What to do with the edit of ``consensus`` under the ``apply`` setting. ``explicit``: the user asked to see
    this one (an alternative), so it is previewed even when ``auto`` would apply it. An unchecked pick is never
    applied unseen, whatever its confidence and the threshold (:attr:`ConsensusResult.may_apply_unseen`)."""
    mode = ls.settings.apply
    if mode == "never":
        return "propose"
    if (
        mode == "auto"
        and not explicit
        and consensus.may_apply_unseen
        and consensus.confidence >= ls.settings.auto_apply_confidence
    ):
        return "apply"
    return "preview"


def members_of(record: RunRecord, cluster: int) -> list[str]:
    """The models behind cluster ``cluster`` of the record's result (0: the pick)."""
    c = record.result.consensus
    if cluster == 0 or cluster >= len(c.clusters):
        return list(c.pick_models)
    return list(c.clusters[cluster].members)


async def offer(
    ls: CodeConductorServer,
    doc: TextDocument,
    record: RunRecord,
    new_lines: list[str],
    *,
    cluster: int,
    label: str,
    version: int | None,
    members: list[str] | None = None,
    explicit: bool = False,
) -> RunResponse:
    """Preview, apply or propose one edit over the record's span, as the settings and the client allow; the
    fields of the command's reply (``status``: ``applied`` · ``preview`` · ``proposed`` · ``rejected`` ·
    ``stale``). The preview shows exactly what applying writes (:func:`~codeconductor.server.edits.planned_edit`)."""
    span = record.span
    planned = planned_edit(doc, span.start, span.end, new_lines)
    proposal = Offer(
        cluster=cluster,
        lines=list(new_lines),
        members=members if members is not None else members_of(record, cluster),
        label=label,
        version=version,
    )
    out: RunResponse = {
        "runId": record.id,
        "uri": doc.uri,
        "cluster": cluster,
        "label": label,
        "range": range_json(planned.range),
        "newText": planned.new_text,
        "oldText": planned.old_text,
        "version": version,
        "applied": False,
        "message": label,
    }
    decision = decide(ls, record.result.consensus, explicit=explicit)
    if decision == "propose":
        out["status"] = Status.PROPOSED
        return out
    if decision == "preview" and client_previews(ls):
        record.offer = proposal
        out.update({"status": Status.PREVIEW, "preview": "client"})
        return out
    if decision == "preview" and not annotations_supported(ls):
        record.offer = proposal
        message = (
            f"CodeConductor: {label} — nothing is changed yet. "
            "Accept or reject it from the code actions on these lines."
        )
        ls.show(message, 3)
        out.update({"status": Status.PREVIEW, "preview": "codeAction", "message": message})
        return out
    confirm = decision == "preview"
    applied = await apply_lines(ls, doc, record, span, new_lines, label=label, version=version, confirm=confirm)
    out.update(applied)
    if confirm:
        out["preview"] = "annotation"
    if applied["applied"]:
        _accepted(ls, record, proposal)
    elif confirm and applied["status"] == Status.REJECTED:
        # The client showed the edit and the user discarded it (the version was checked just before sending).
        reject(ls, record, proposal.cluster, proposal.members)
        out["status"] = Status.REJECTED
    return out


async def accept(ls: CodeConductorServer, doc: TextDocument, record: RunRecord, *, version: int | None) -> RunResponse:
    """Apply the previewed edit exactly as shown, if the document is still at ``version`` (else at the version it
    was shown on): ``applied`` · ``stale`` · ``rejected`` (the client refused)."""
    proposal = record.offer
    assert proposal is not None
    wanted = version if version is not None else proposal.version
    span: Span = record.span
    out = await apply_lines(ls, doc, record, span, proposal.lines, label=proposal.label, version=wanted)
    if out["applied"]:
        _accepted(ls, record, proposal)
    return out


def _accepted(ls: CodeConductorServer, record: RunRecord, proposal: Offer) -> None:
    record.applied = True
    record.offer = None
    ls.feedback(record.result, proposal.members, "applied")
    if proposal.cluster > 0:
        # The user preferred a dissenting answer: that is evidence against the pick too.
        ls.feedback(record.result, list(record.result.consensus.pick_models), "rejected")


def reject(ls: CodeConductorServer, record: RunRecord, cluster: int, members: list[str]) -> None:
    """The user said no to cluster ``cluster``'s edit: recorded as feedback; the file was never touched."""
    ls.feedback(record.result, members, "rejected")
    if cluster == 0:
        record.rejected = True
    record.offer = None
