"""The commands any LSP client can call (``workspace/executeCommand``): run the ensemble on code, review it, ask
it a question, apply a suggestion, list/refresh models, cancel runs, and read the status.

Why commands and not ``codeAction/resolve``: a command plus a server-initiated ``workspace/applyEdit`` works the
same in VS Code, Neovim and Emacs, and lets the server report progress, honour cancellation and check the
document version before editing; resolve support (and whether a client waits on it) varies. Every result is a
JSON object documented in ``docs/protocol.md``; bad arguments give ``InvalidParams`` errors.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

from pydantic import Field
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from codeconductor.ensemble import (
    CodeConductorError,
    CodeContext,
    Request,
    Result,
    TaskKind,
    breaks_code,
    finding_lines,
    language_from_path,
)
from codeconductor.ensemble.project import project_for, runs_in_project

from .. import preview
from ..diagnostics import publish
from ..edits import apply_lines, doc_lines, language_of, line_span, planned_edit, range_json, replacement_lines
from ..protocol import (
    CancelResponse,
    HistoryReportResponse,
    ModelsResponse,
    RunResponse,
    RunStatus,
    Status,
    StatusResponse,
)
from ..runs import Offer, RunRecord, Span
from ..server import CodeConductorServer, document_context
from ._common import Args, RangeArgs, Stopped, alternative_title, consensus_label, parse, run_reply, tracked_run

__all__ = [
    "apply_suggestion",
    "ask",
    "cancel",
    "history_report",
    "list_models",
    "preview_suggestion",
    "refresh_models",
    "reject_suggestion",
    "review",
    "run_code",
    "status",
]


class RunArgs(Args):
    uri: str
    range: RangeArgs
    task: Literal["fix", "improve", "implement", "docstring", "tests"]
    version: int | None = None
    instruction: str = ""
    apply: bool = True


class ReviewArgs(Args):
    uri: str
    range: RangeArgs | None = None
    version: int | None = None
    instruction: str = ""


class AskArgs(Args):
    question: str = Field(min_length=1)
    uri: str | None = None
    range: RangeArgs | None = None


class ApplyArgs(Args):
    run_id: str
    cluster: int | None = Field(default=None, ge=0)
    finding: int | None = Field(default=None, ge=0)
    version: int | None = None


class ClusterArgs(Args):
    run_id: str
    cluster: int | None = Field(default=None, ge=0)


class ModelsArgs(Args):
    refresh: bool = False


class CancelArgs(Args):
    run_id: str | None = None


def _response(run_id: str, status: RunStatus, result: Result | None, message: str = "") -> RunResponse:
    """A reply about run ``run_id`` with what its ``result`` (if any) says: how sure, how many agree, the whole
    result."""
    out = run_reply(run_id, status, message)
    if result is not None:
        c = result.consensus
        out.update(
            {
                "confidence": c.confidence,
                "agree": c.agree,
                "answered": c.answered,
                "asked": c.asked,
                "alternatives": max(0, len(c.clusters) - 1),
                "unchecked": c.unchecked,
                "result": result.model_dump(mode="json"),
            }
        )
    return out


def _stale(
    ls: CodeConductorServer, doc: TextDocument, version: int | None, run_id: str, result: Result | None
) -> RunResponse:
    message = (
        f"CodeConductor: {doc.uri} changed (version {version} -> {doc.version}) since the request; "
        "nothing was changed. Run it again on the current text."
    )
    ls.show(message, 2)
    return _response(run_id, Status.STALE, result, message)


async def _run(ls: CodeConductorServer, run_id: str, request: Request) -> Result | Stopped:
    """Run the ensemble; on cancellation or an engine error, the response to return instead."""
    return await tracked_run(
        ls,
        run_id,
        f"CodeConductor: {request.task.value}",
        lambda progress: ls.pipeline.run(request, on_progress=progress.models_answered),
        summary=lambda result: result.summary,
    )


def _context(doc: TextDocument, start: int, end: int) -> CodeContext:
    return document_context(doc, start, end, language_of(doc))  # bounded on huge documents


async def _in_project(ls: CodeConductorServer, doc: TextDocument, context: CodeContext) -> CodeContext:
    """``context`` with the project its document lives in (the workspace folder holding it, the buffer's text
    with unsaved changes, the project's interpreter: ``projectPython``, which the extension fills from the
    Python extension's choice for the folder), so answers are run there; unchanged for other documents."""
    if not runs_in_project(context.language) or not doc.uri.startswith("file:"):
        return context
    folders = [Path(to_fs_path(f.uri) or "") for f in (ls.workspace.folders or {}).values()]
    try:
        project = await asyncio.to_thread(
            project_for,
            Path(doc.path),
            doc.source,
            workspace_folders=[f for f in folders if str(f)],
            python_setting=ls.settings.project_python,
        )
    except (OSError, ValueError):  # a path the file system refuses: run as before, outside any project
        return context
    return context if project is None else context.model_copy(update={"project": project})


async def run_code(ls: CodeConductorServer, *args: Any) -> RunResponse:
    """``codeconductor.run``: fix/improve/implement/docstring/tests on a range, applied when still current."""
    a = parse(args, RunArgs)
    doc = ls.document(a.uri)
    start, end = line_span(doc, a.range.to_lsp())
    run_id = ls.store.new_id()
    version = doc.version
    if a.version is not None and a.version != version:
        return _stale(ls, doc, a.version, run_id, None)
    context = await _in_project(ls, doc, _context(doc, start, end))
    request = Request(task=TaskKind(a.task), context=context, instruction=a.instruction)
    outcome = await _run(ls, run_id, request)
    if isinstance(outcome, Stopped):
        return run_reply(run_id, outcome.status, outcome.message)
    result = outcome
    c = result.consensus
    replaced = "".join(doc.lines[start:end])
    if not c.no_edit and (not c.offers_edit or breaks_code(replaced, c.pick, language_of(doc), doc.path)):
        reason = "no usable answer from the models. " + "; ".join(c.notes or result.notes)
        message = f"CodeConductor: {reason}"
        ls.show(message, 2)
        return _response(run_id, Status.NO_CONSENSUS, result, message) | {"noEdit": reason}
    if doc.version != version:
        return _stale(ls, doc, version, run_id, result)
    record = RunRecord(
        id=run_id,
        uri=doc.uri,
        task=request.task,
        result=result,
        span=Span(start, end),
        version=version,
        lines=doc_lines(doc)[start:end],
    )
    ls.store.add(record)
    if c.no_edit:
        # An honest outcome, not an error: nothing is applied or offered; the diagnostic and the hover keep the
        # answers viewable with the reason each one was not offered.
        message = f"CodeConductor: {c.no_edit}"
        ls.show(message, 3)
        publish(ls, doc.uri)
        return _response(run_id, Status.NO_EDIT, result, message)
    new_lines = replacement_lines(doc, start, end, c.pick)
    label = consensus_label(result)
    if not a.apply:
        publish(ls, doc.uri)
        planned = planned_edit(doc, start, end, new_lines)
        return _response(run_id, Status.PROPOSED, result, label) | {
            "label": label,
            "range": range_json(planned.range),
            "newText": planned.new_text,
        }
    offered = await preview.offer(ls, doc, record, new_lines, cluster=0, label=label, version=version)
    publish(ls, doc.uri)
    return _response(run_id, offered["status"], result, offered["message"]) | offered


async def review(ls: CodeConductorServer, *args: Any) -> RunResponse:
    """``codeconductor.review``: findings published as diagnostics, with quick fixes where a model gave one."""
    a = parse(args, ReviewArgs)
    doc = ls.document(a.uri)
    n = len(doc.lines)
    if a.range is not None:
        start, end = line_span(doc, a.range.to_lsp())
    else:
        start, end = 0, max(n, 1)
    run_id = ls.store.new_id()
    version = doc.version
    if a.version is not None and a.version != version:
        return _stale(ls, doc, a.version, run_id, None)
    request = Request(task=TaskKind.REVIEW, context=_context(doc, start, end), instruction=a.instruction)
    outcome = await _run(ls, run_id, request)
    if isinstance(outcome, Stopped):
        return run_reply(run_id, outcome.status, outcome.message)
    result = outcome
    if doc.version != version:
        return _stale(ls, doc, version, run_id, result)
    findings = result.consensus.findings
    spans: list[Span | None] = []
    for finding in findings:
        spans.append(Span(*finding_lines(finding, start, end)))
    record = RunRecord(
        id=run_id,
        uri=doc.uri,
        task=TaskKind.REVIEW,
        result=result,
        span=Span(start, end, elastic=True),
        version=version,
        lines=doc_lines(doc)[start:end],
        findings=spans,
    )
    ls.store.add(record)
    publish(ls, doc.uri)
    status: RunStatus = Status.REVIEWED if result.consensus.kind != "none" else Status.NO_CONSENSUS
    message = f"{len(findings)} finding{'s' if len(findings) != 1 else ''} ({result.summary})"
    out = _response(run_id, status, result, message)
    out["findings"] = [f.model_dump(mode="json") for f in findings]
    return out


async def ask(ls: CodeConductorServer, *args: Any) -> RunResponse:
    """``codeconductor.ask``: a free question about the selection (or the file, or nothing)."""
    a = parse(args, AskArgs)
    if a.uri is not None:
        doc = ls.document(a.uri)
        if a.range is not None:
            start, end = line_span(doc, a.range.to_lsp())
        else:
            start, end = 0, len(doc.lines)
        ctx = _context(doc, start, end)
    else:
        if a.range is not None:
            raise JsonRpcInvalidParams("range given without uri")
        ctx = CodeContext(language=language_from_path(None), selection="")
    run_id = ls.store.new_id()
    outcome = await _run(ls, run_id, Request(task=TaskKind.ASK, context=ctx, instruction=a.question))
    if isinstance(outcome, Stopped):
        return run_reply(run_id, outcome.status, outcome.message) | {"answer": ""}
    result = outcome
    answer = result.consensus.pick
    status: RunStatus = Status.ANSWERED if answer.strip() else Status.NO_CONSENSUS
    return _response(run_id, status, result, result.summary) | {"answer": answer}


async def apply_suggestion(ls: CodeConductorServer, *args: Any) -> RunResponse:
    """``codeconductor.applySuggestion``: the consensus, an alternative cluster, or a finding's fix."""
    a = parse(args, ApplyArgs)
    record = ls.store.get(a.run_id)
    if record is None:
        return _gone(ls, a.run_id)
    doc = ls.document(record.uri)
    c = record.result.consensus
    if a.finding is None and record.offer is not None and a.cluster in (None, record.offer.cluster):
        # Accepting a preview: exactly the lines the user saw, on the version they saw them on.
        out = await preview.accept(ls, doc, record, version=a.version)
        publish(ls, doc.uri)
        return out
    version = a.version if a.version is not None else doc.version
    if a.finding is not None:
        if a.finding >= len(c.findings):
            raise JsonRpcInvalidParams(f"finding {a.finding} does not exist (result has {len(c.findings)})")
        finding = c.findings[a.finding]
        span = record.findings[a.finding]
        if span is None or not span.alive:
            return {"applied": False, "status": Status.GONE, "message": "that finding's lines were edited since"}
        if not finding.fix:
            raise JsonRpcInvalidParams(f"finding {a.finding} has no fix")
        new_lines = replacement_lines(doc, span.start, span.end, finding.fix)
        label = f"Apply fix: {finding.message[:60]}"
        out = await apply_lines(ls, doc, record, span, new_lines, label=label, version=version)
    else:
        index = a.cluster or 0
        code = _cluster_code(record, index)
        if (refused := _refusal(record, index)) is not None:
            return refused
        label = consensus_label(record.result) if index == 0 else alternative_title(record.result, index)
        new_lines = replacement_lines(doc, record.span.start, record.span.end, code)
        record.offer = Offer(index, new_lines, preview.members_of(record, index), label, version)
        out = await preview.accept(ls, doc, record, version=version)
        if not out["applied"]:
            record.offer = None
    publish(ls, doc.uri)
    return out


def _refusal(record: RunRecord, index: int) -> RunResponse | None:
    """The reply when cluster ``index`` failed the trust gate: an answer that breaks the user's code is shown
    (hover, diff), never previewed for acceptance or applied, in every front end."""
    c = record.result.consensus
    refused = c.clusters[index].rejected if index < len(c.clusters) else None
    refused = refused or (c.no_edit if index == 0 else None)
    if refused is None:
        return None
    return {"applied": False, "status": Status.REFUSED, "message": f"not applied: {refused}"}


def _cluster_code(record: RunRecord, index: int) -> str:
    c = record.result.consensus
    if c.clusters and index >= len(c.clusters):
        raise JsonRpcInvalidParams(f"cluster {index} does not exist (result has {len(c.clusters)})")
    if not c.clusters and index > 0:
        raise JsonRpcInvalidParams("this result has no alternatives")
    code = c.clusters[index].representative if c.clusters else c.pick
    if not code.strip() or record.task is TaskKind.REVIEW:
        raise JsonRpcInvalidParams("this result has no code to apply")
    return code


def _gone(ls: CodeConductorServer, run_id: str) -> RunResponse:
    message = f"CodeConductor: result {run_id} is gone (its code was edited since, or it never existed)."
    ls.show(message, 2)
    return {"applied": False, "status": Status.GONE, "message": message}


async def preview_suggestion(ls: CodeConductorServer, *args: Any) -> RunResponse:
    """``codeconductor.preview``: show the consensus or a dissenting cluster's edit the way previews are shown
    (``server/preview.py``), whatever the ``apply`` setting says: the user asked to see it."""
    a = parse(args, ClusterArgs)
    record = ls.store.get(a.run_id)
    if record is None:
        return _gone(ls, a.run_id)
    doc = ls.document(record.uri)
    index = a.cluster or 0
    code = _cluster_code(record, index)
    if (refused := _refusal(record, index)) is not None:
        return refused
    label = consensus_label(record.result) if index == 0 else alternative_title(record.result, index)
    new_lines = replacement_lines(doc, record.span.start, record.span.end, code)
    out = await preview.offer(
        ls, doc, record, new_lines, cluster=index, label=label, version=doc.version, explicit=True
    )
    publish(ls, doc.uri)
    return out


def reject_suggestion(ls: CodeConductorServer, *args: Any) -> RunResponse:
    """``codeconductor.reject``: the user rejected the previewed edit (or cluster ``cluster``'s): recorded as
    feedback; the document is not touched (nothing was changed)."""
    a = parse(args, ClusterArgs)
    record = ls.store.get(a.run_id)
    if record is None:
        return _gone(ls, a.run_id)
    offered = record.offer
    if offered is not None and a.cluster in (None, offered.cluster):
        index, members = offered.cluster, offered.members
    else:
        index = a.cluster or 0
        _cluster_code(record, index)
        members = preview.members_of(record, index)
    preview.reject(ls, record, index, members)
    publish(ls, record.uri)
    return {
        "runId": record.id,
        "cluster": index,
        "status": Status.REJECTED,
        "applied": False,
        "message": "nothing changed",
    }


async def list_models(ls: CodeConductorServer, *args: Any) -> ModelsResponse:
    a = parse(args, ModelsArgs)
    return await _models(ls, a.refresh)


async def refresh_models(ls: CodeConductorServer, *args: Any) -> ModelsResponse:
    parse(args, ModelsArgs)
    return await _models(ls, True)


async def _models(ls: CodeConductorServer, refresh: bool) -> ModelsResponse:
    try:
        models = await ls.refresh_models(refresh)
        endpoints = await ls.pipeline.endpoints()
    except CodeConductorError as exc:
        raise JsonRpcInvalidParams(f"cannot list models: {exc}") from exc
    # Endpoints: what discovery found at each server (up, down and why), for the status menu.
    return {
        "models": [m.model_dump(mode="json") for m in models],
        "endpoints": [e.model_dump(mode="json") for e in endpoints],
    }


def history_report(ls: CodeConductorServer, *args: Any) -> HistoryReportResponse:
    """``codeconductor.historyReport``: the history dashboard (``codeconductor stats --html``) as ``{html}``, for
    an editor to show; ``html`` is empty with the reason in ``message`` when the history is off."""
    parse(args, Args)
    from codeconductor.ensemble import History, render_report  # the history's report: read when asked for, not at start

    ls.pipeline  # noqa: B018 - opens the history the settings ask for
    history = ls.history
    if not isinstance(history, History):
        return {"html": "", "message": "The history is off (setting codeconductor.history)."}
    return {"html": render_report(history), "message": f"{history.run_count()} runs recorded"}


def cancel(ls: CodeConductorServer, *args: Any) -> CancelResponse:
    a = parse(args, CancelArgs)
    return {"cancelled": ls.cancel_run(a.run_id)}


def status(ls: CodeConductorServer, *args: Any) -> StatusResponse:
    parse(args, Args)
    return {"models": ls.model_count, "running": len(ls.running), "runs": ls.running}
