"""Turns line spans into LSP ranges and applies the ensemble's code to the user's document safely.

An edit reaches the document only through ``workspace/applyEdit``, only if the document is still at the version
the request was made on (the client checks the version too, since the edit is a versioned ``TextDocumentEdit``),
and with a label that tells the user how sure the ensemble is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument

from codeconductor.ensemble import enclosing_block, fit_code, language_from_path

from .protocol import LspRange, RunResponse, Status, lsp_range
from .runs import RunRecord, Span
from .server import CodeConductorServer

__all__ = [
    "PlannedEdit",
    "apply_lines",
    "doc_lines",
    "language_of",
    "line_span",
    "planned_edit",
    "range_json",
    "replacement_lines",
    "span_range",
    "target_span",
]

logger = logging.getLogger(__name__)

_ANNOTATION = "codeconductor.suggestion"
_CONFIRM_TIMEOUT_S = 600.0


def line_span(doc: TextDocument, rng: lsp.Range) -> tuple[int, int]:
    """Whole lines ``[start, end)`` covered by ``rng``; InvalidParams when it lies outside the document."""
    n = len(doc.lines)
    s, e = rng.start, rng.end
    # The position just after a final newline (line n, character 0) is valid in LSP.
    if s.line < 0 or e.line < 0 or s.line > n or e.line > n or (s.line, s.character) > (e.line, e.character):
        raise JsonRpcInvalidParams(f"range {_fmt(rng)} is outside the document ({n} lines)")
    # A character past the end of its line means the end of that line (LSP spec): not an error.
    end = e.line + 1 if e.character > 0 or e.line == s.line else e.line
    return min(s.line, max(n - 1, 0)), max(min(end, n), min(s.line + 1, n))


def target_span(ls: CodeConductorServer, doc: TextDocument, rng: lsp.Range) -> tuple[int, int]:
    """What a code action works on: the selected lines, or with nothing selected the enclosing function
    (else class, else the current line)."""
    if rng.start != rng.end:
        return line_span(doc, rng)
    start, end = line_span(doc, rng)
    block = enclosing_block(ls.blocks(doc, language_of(doc), rng.start.line), rng.start.line, language_of(doc))
    if block is not None:
        return block.start, block.end
    return start, end


def language_of(doc: TextDocument) -> str:
    return doc.language_id or language_from_path(doc.uri)


def doc_lines(doc: TextDocument) -> list[str]:
    """The document's lines without line breaks."""
    return [line.rstrip("\r\n") for line in doc.lines]


def span_range(doc: TextDocument, start: int, end: int) -> lsp.Range:
    """The LSP range of lines ``[start, end)`` including the final line break (or up to the end of text)."""
    n = len(doc.lines)
    if end < n or doc.source.endswith(("\n", "\r")) or n == 0:
        return lsp.Range(lsp.Position(start, 0), lsp.Position(end, 0))
    last = doc.lines[end - 1]
    return lsp.Range(lsp.Position(start, 0), lsp.Position(end - 1, doc.position_codec.client_num_units(last)))


def range_json(rng: lsp.Range) -> LspRange:
    """An LSP range as it goes out in a command's reply."""
    return lsp_range(rng.start.line, rng.start.character, rng.end.line, rng.end.character)


@dataclass(frozen=True, slots=True)
class PlannedEdit:
    """Lines ``[start, end)`` of a document replaced by new lines: the range replaced, the text written there and
    the text it replaces. Applying writes exactly this and a preview shows exactly this (:func:`planned_edit`)."""

    range: lsp.Range
    new_text: str
    old_text: str


def planned_edit(doc: TextDocument, start: int, end: int, new_lines: list[str]) -> PlannedEdit:
    """The one computation of an edit over lines ``[start, end)``: the new text keeps the span's final line break
    (none at the end of a document without one)."""
    rng = span_range(doc, start, end)
    ends_with_break = rng.end.character == 0 and end > start
    new_text = "\n".join(new_lines) + ("\n" if ends_with_break or not new_lines else "")
    return PlannedEdit(rng, new_text, "".join(doc.lines[start:end]))


def replacement_lines(doc: TextDocument, start: int, end: int, code: str) -> list[str]:
    """The ensemble's code as the lines to put over ``[start, end)`` (the engine's one code-to-span rule)."""
    return fit_code(code, "".join(doc.lines[start:end]), doc.source).split("\n")


async def apply_lines(
    ls: CodeConductorServer,
    doc: TextDocument,
    record: RunRecord,
    span: Span,
    new_lines: list[str],
    *,
    label: str,
    version: int | None,
    confirm: bool = False,
) -> RunResponse:
    """Replace ``span`` of ``doc`` with ``new_lines`` (:func:`planned_edit`) via ``workspace/applyEdit`` if
    ``doc`` is still at ``version``. With ``confirm`` the edit carries a change annotation with
    ``needsConfirmation`` (LSP 3.16): the client shows it to the user (VS Code: the refactor preview) and applies
    it only if they accept. Returns ``{"applied", "status", "message"}``."""
    if version is not None and doc.version != version:
        message = (
            f"CodeConductor: {doc.uri} changed since the request (version {version} -> {doc.version}); "
            "nothing was changed. Run it again on the current text."
        )
        ls.show(message, 2)
        return {"applied": False, "status": Status.STALE, "message": message}
    planned = planned_edit(doc, span.start, span.end, new_lines)
    rng, new_text = planned.range, planned.new_text
    text_edit: lsp.TextEdit | lsp.AnnotatedTextEdit = lsp.TextEdit(range=rng, new_text=new_text)
    annotations: dict[str, lsp.ChangeAnnotation] | None = None
    if confirm:
        text_edit = lsp.AnnotatedTextEdit(range=rng, new_text=new_text, annotation_id=_ANNOTATION)
        annotations = {_ANNOTATION: lsp.ChangeAnnotation(label=label, needs_confirmation=True)}
    edit = lsp.WorkspaceEdit(
        document_changes=[
            lsp.TextDocumentEdit(
                text_document=lsp.OptionalVersionedTextDocumentIdentifier(uri=doc.uri, version=doc.version),
                edits=[text_edit],
            )
        ],
        change_annotations=annotations,
    )
    # Expect our own edit, so the stored result moves onto the new text instead of being dropped by it.
    is_record_span = span is record.span
    if is_record_span:
        record.pending_from = Span(span.start, span.end, span.elastic)
        record.pending = list(new_lines)
    try:
        reply = await ls.ask_client(
            lambda: ls.workspace_apply_edit_async(lsp.ApplyWorkspaceEditParams(edit=edit, label=label)),
            # The user is reading the diff before answering: give them time.
            timeout=_CONFIRM_TIMEOUT_S if confirm else None,
        )
    except Exception as exc:
        logger.warning("workspace/applyEdit failed: %s", exc)
        _restore(record, is_record_span)
        return {"applied": False, "status": Status.REJECTED, "message": f"the editor did not apply the edit: {exc}"}
    if not reply.applied:
        _restore(record, is_record_span)
        reason = reply.failure_reason or "the editor refused the edit"
        return {"applied": False, "status": Status.REJECTED, "message": reason}
    return {"applied": True, "status": Status.APPLIED, "message": label}


def _restore(record: RunRecord, is_record_span: bool) -> None:
    if is_record_span and record.pending is not None:
        record.pending = None
        record.pending_from = None


def _fmt(rng: lsp.Range) -> str:
    return f"{rng.start.line}:{rng.start.character}-{rng.end.line}:{rng.end.character}"
