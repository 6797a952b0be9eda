"""Hover over code the ensemble worked on: confidence, how many models agree, a table of the models (answered,
timed out or failed; latency; which cluster) and the diff between the consensus and each alternative. Hovering
anywhere else costs a dictionary lookup and returns nothing.
"""

from __future__ import annotations

from lsprotocol import types as lsp
from pygls.exceptions import JsonRpcInvalidParams

from codeconductor.ensemble import Result, TaskKind

from ..diagnostics import tight_range
from ..runs import RunRecord
from ..server import CodeConductorServer

__all__ = ["hover", "render"]


def _cluster_of(result: Result) -> dict[str, int]:
    where: dict[str, int] = {}
    for index, cluster in enumerate(result.consensus.clusters):
        for member in cluster.members:
            where[member] = index
            where.setdefault(member.split("#", 1)[0], index)
    return where


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(record: RunRecord) -> str:
    """The hover's markdown for one stored result."""
    result = record.result
    c = result.consensus
    state = " · applied" if record.applied else ""
    headline = (
        f"**No edit:** {c.no_edit}"
        if c.no_edit
        else f"**Confidence {c.confidence:.2f}** · {c.agree} of {c.asked} models agree"
        + (f" · **not checked**: {c.unchecked}" if c.unchecked else "")
    )
    lines = [
        f"**CodeConductor — {record.task.value}**{state}",
        "",
        f"{headline} · {c.answered} answered" + (f" · {c.method}" if c.method else ""),
        "",
        "| Model | Status | Latency | Cluster |",
        "|---|---|---|---|",
    ]
    where = _cluster_of(result)
    for answer in result.answers:
        key = f"{answer.model_id}#{answer.sample}"
        index = where.get(key, where.get(answer.model_id))
        first = "answer 1" if c.no_edit else "consensus"
        cluster = "—" if index is None else (first if index == 0 else f"alternative {index}")
        latency = f"{answer.latency_s:.2f} s" if answer.latency_s is not None else "—"
        status = answer.status.value + (
            f" ({answer.reason})" if answer.reason and answer.status.value != "answered" else ""
        )
        lines.append(f"| {_cell(answer.model.name)} | {_cell(status)} | {latency} | {cluster} |")
    if record.task is TaskKind.REVIEW:
        for finding in c.findings:
            lines.append(f"- line {finding.line + 1}, {finding.severity}: {finding.message} ({finding.support} models)")
    for index, alt in enumerate(c.clusters[0 if c.no_edit else 1 :], start=0 if c.no_edit else 1):
        members = ", ".join(m.split("@", 1)[0] for m in alt.members)
        verdict = f" — not offered: {alt.rejected}" if alt.rejected else ""
        title = f"Answer {index + 1}" if c.no_edit else f"Alternative {index}"
        lines += ["", f"**{title}** ({members}){verdict}:"]
        if alt.diff.strip():
            lines += ["```diff", alt.diff.rstrip("\n"), "```"]
        else:
            lines += ["```", alt.representative.rstrip("\n"), "```"]
    lines += ["", f"run `{record.id}`"]
    return "\n".join(lines)


def hover(ls: CodeConductorServer, params: lsp.HoverParams) -> lsp.Hover | None:
    doc = ls.document(params.text_document.uri)
    pos = params.position
    if pos.line < 0 or pos.character < 0 or pos.line > len(doc.lines):
        raise JsonRpcInvalidParams(f"position {pos.line}:{pos.character} is outside the document")
    record = ls.store.at_line(doc.uri, pos.line)
    if record is None:
        return None
    return lsp.Hover(
        contents=lsp.MarkupContent(kind=lsp.MarkupKind.Markdown, value=render(record)),
        range=tight_range(doc, record.span),
    )
