"""Diagnostics that carry the ensemble's confidence, kept on the right lines while the user edits.

After a code run the user sees one Information/Hint diagnostic over the range saying what the ensemble suggests
and how many models agree; after a review, one diagnostic per finding, its severity following the models'
severity and their confidence. Edits above move them, edits touching them remove them, closing the file clears
them. Source: ``codeconductor``. Every feature that changes the stored results calls :func:`publish`.
"""

from __future__ import annotations

from urllib.parse import unquote

from lsprotocol import types as lsp
from pygls.workspace import TextDocument

from codeconductor.ensemble import Finding, TaskKind

from .runs import RunRecord, Span
from .server import CodeConductorServer

__all__ = ["SOURCE", "finding_diagnostic", "publish", "severity_of", "tight_range"]

SOURCE = "codeconductor"

_SEVERITY = {
    "error": lsp.DiagnosticSeverity.Error,
    "warning": lsp.DiagnosticSeverity.Warning,
    "info": lsp.DiagnosticSeverity.Information,
    "hint": lsp.DiagnosticSeverity.Hint,
}
_DEMOTE = {
    lsp.DiagnosticSeverity.Error: lsp.DiagnosticSeverity.Warning,
    lsp.DiagnosticSeverity.Warning: lsp.DiagnosticSeverity.Information,
    lsp.DiagnosticSeverity.Information: lsp.DiagnosticSeverity.Hint,
    lsp.DiagnosticSeverity.Hint: lsp.DiagnosticSeverity.Hint,
}
_TASK_NOUN = {
    TaskKind.FIX: "fix",
    TaskKind.IMPROVE: "improvement",
    TaskKind.IMPLEMENT: "implementation",
    TaskKind.DOCSTRING: "docstring",
    TaskKind.TESTS: "tests",
}


def severity_of(finding: Finding) -> lsp.DiagnosticSeverity:
    """The models' severity, one level milder when fewer than half the ensemble stands behind it."""
    severity = _SEVERITY.get(finding.severity, lsp.DiagnosticSeverity.Warning)
    return _DEMOTE[severity] if finding.confidence < 0.5 else severity


def tight_range(doc: TextDocument, span: Span) -> lsp.Range:
    """Lines ``[start, end)`` from the first character to the end of the last line (not the next line)."""
    lines = doc.lines
    last = min(max(span.end, span.start + 1), len(lines)) - 1
    if last < 0:
        return lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0))
    end_char = doc.position_codec.client_num_units(lines[last].rstrip("\r\n"))
    return lsp.Range(lsp.Position(min(span.start, last), 0), lsp.Position(last, end_char))


def finding_diagnostic(doc: TextDocument, record: RunRecord, index: int, span: Span) -> lsp.Diagnostic:
    finding = record.result.consensus.findings[index]
    c = record.result.consensus
    models = finding.support or len(finding.models)
    return lsp.Diagnostic(
        range=tight_range(doc, span),
        message=f"{finding.message} ({models}/{c.answered or c.asked} models, confidence {finding.confidence:.2f})",
        severity=severity_of(finding),
        source=SOURCE,
        code="review",
        data={"runId": record.id, "finding": index},
    )


def _run_diagnostic(doc: TextDocument, record: RunRecord) -> lsp.Diagnostic | None:
    c = record.result.consensus
    noun = _TASK_NOUN.get(record.task, record.task.value)
    if c.no_edit:
        return lsp.Diagnostic(
            range=tight_range(doc, record.span),
            message=f"Ensemble {noun}: no edit — {c.no_edit} — hover for the answers",
            severity=lsp.DiagnosticSeverity.Information,
            source=SOURCE,
            code=f"ensemble-{record.task.value}",
            data={"runId": record.id, "noEdit": True},
        )
    if c.kind == "none" or not c.pick or (record.rejected and not record.applied):
        return None  # nothing to suggest, or the user said no: do not nag
    state = "applied" if record.applied else ("waiting for accept or reject" if record.offer else "suggested")
    alternatives = max(0, len(c.clusters) - 1)
    alt = f"; {alternatives} alternative{'s' if alternatives != 1 else ''}" if alternatives else ""
    return lsp.Diagnostic(
        range=tight_range(doc, record.span),
        message=(
            f"Ensemble {noun} {state}: {c.agree}/{c.answered or c.asked} models agree "
            f"(confidence {c.confidence:.2f}{', not checked' if c.unchecked else ''}){alt} — hover for details"
        ),
        severity=lsp.DiagnosticSeverity.Hint if record.applied else lsp.DiagnosticSeverity.Information,
        source=SOURCE,
        code=f"ensemble-{record.task.value}",
        data={"runId": record.id},
    )


def diagnostics_for(doc: TextDocument, records: list[RunRecord]) -> list[lsp.Diagnostic]:
    out: list[lsp.Diagnostic] = []
    for record in records:
        if record.task is TaskKind.REVIEW:
            for i, span in enumerate(record.findings):
                if span is not None and span.alive:
                    out.append(finding_diagnostic(doc, record, i, span))
        elif (diag := _run_diagnostic(doc, record)) is not None:
            out.append(diag)
    return out


def publish(ls: CodeConductorServer, uri: str) -> None:
    """Send the current diagnostics of ``uri`` (empty list clears them)."""
    doc = ls.workspace.text_documents.get(unquote(uri))
    diagnostics = diagnostics_for(doc, ls.store.for_uri(uri)) if doc is not None else []
    ls.text_document_publish_diagnostics(
        lsp.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=doc.version if doc else None)
    )
