"""Remembers each ensemble result on the lines it is about, and keeps those lines true while the user types.

A stored result is what hover, the "Apply <model>'s alternative" actions and the diagnostics show. Its line span
(and each review finding's span) moves with edits above it, and is dropped as soon as an edit touches it, so the
user never sees a suggestion on the wrong line. The server's own applied edit is expected (``pending``) and moves
the result onto the new text instead of dropping it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lsprotocol import types as lsp

if TYPE_CHECKING:  # the engine is imported on first use, not when the server starts (server/server.py)
    from codeconductor.ensemble import Result, TaskKind

__all__ = ["Offer", "RunRecord", "RunStore", "Span"]


@dataclass(slots=True)
class Span:
    """Lines ``[start, end)`` of a document (0-based). ``elastic`` spans grow/shrink with edits inside them
    (a reviewed range); strict ones are dropped (a suggestion made for exactly that code)."""

    start: int
    end: int
    elastic: bool = False
    alive: bool = True

    def contains_line(self, line: int) -> bool:
        return self.alive and self.start <= line < max(self.end, self.start + 1)

    def overlaps(self, start: int, end: int) -> bool:
        return self.alive and self.start < max(end, start + 1) and start < max(self.end, self.start + 1)

    def apply_change(self, change: lsp.Range, text: str) -> bool:
        """Update for one incremental change; False when the change touched the span (the caller decides)."""
        if not self.alive:
            return True
        s, e = change.start, change.end
        delta = text.count("\n") - (e.line - s.line)
        ends_before = e.line < self.start or (
            e.line == self.start and e.character == 0 and (text.endswith("\n") or (text == "" and s.character == 0))
        )
        if ends_before:
            self.start += delta
            self.end += delta
            return True
        if s.line >= self.end:
            return True
        inside = s.line >= self.start and (e.line < self.end or (e.line == self.end and e.character == 0))
        if self.elastic and inside:
            self.end = max(self.start + 1, self.end + delta)
            return True
        return False


@dataclass(slots=True)
class Offer:
    """An edit previewed to the user: accepting it applies exactly these lines (what they saw), if the document
    is still at ``version``."""

    cluster: int  # 0: the consensus; k: the k-th dissenting cluster
    lines: list[str]
    members: list[str]  # the models behind it (their feedback)
    label: str
    version: int | None


@dataclass(slots=True)
class RunRecord:
    """One finished run on one document."""

    id: str
    uri: str
    task: TaskKind
    result: Result
    span: Span
    version: int | None  # the document version the result was computed on
    applied: bool = False
    lines: list[str] = field(default_factory=list)  # the span's text now (to recognise it after full-text sync)
    pending: list[str] | None = None  # lines we asked the client to write over the span
    pending_from: Span | None = None  # the span before that edit (restored when the client refuses it)
    findings: list[Span | None] = field(default_factory=list)  # per review finding; None: dropped
    offer: Offer | None = None  # the edit shown to the user, waiting for accept or reject (server/preview.py)
    rejected: bool = False  # the user rejected the consensus: it is no longer offered

    @property
    def alive(self) -> bool:
        return self.span.alive


class RunStore:
    """Stored results per document URI, newest last."""

    def __init__(self) -> None:
        self._by_uri: dict[str, list[RunRecord]] = {}
        self._by_id: dict[str, RunRecord] = {}
        self._ids = itertools.count(1)

    def new_id(self) -> str:
        return f"r{next(self._ids)}"

    def add(self, record: RunRecord) -> None:
        """Store ``record``; older results overlapping its lines are replaced (they describe older code)."""
        for old in self.for_uri(record.uri):
            if old.span.overlaps(record.span.start, record.span.end):
                self.drop(old)
        self._by_uri.setdefault(record.uri, []).append(record)
        self._by_id[record.id] = record

    def get(self, run_id: str) -> RunRecord | None:
        record = self._by_id.get(run_id)
        return record if record is not None and record.alive else None

    def drop(self, record: RunRecord) -> None:
        record.span.alive = False
        self._by_id.pop(record.id, None)
        records = self._by_uri.get(record.uri, [])
        if record in records:
            records.remove(record)
        if not records:
            self._by_uri.pop(record.uri, None)  # closed and edited-away documents leave nothing behind

    def for_uri(self, uri: str) -> list[RunRecord]:
        return list(self._by_uri.get(uri, ()))

    def at_line(self, uri: str, line: int) -> RunRecord | None:
        """The newest live result whose span holds ``line`` (hover, alternatives)."""
        for record in reversed(self._by_uri.get(uri, ())):
            if record.span.contains_line(line):
                return record
        return None

    def overlapping(self, uri: str, start: int, end: int) -> Iterator[RunRecord]:
        for record in reversed(self._by_uri.get(uri, ())):
            if record.span.overlaps(start, end):
                yield record

    def close(self, uri: str) -> None:
        for record in self.for_uri(uri):
            self.drop(record)

    def on_change(self, uri: str, changes: Sequence[tuple[lsp.Range | None, str]], doc_lines: list[str]) -> bool:
        """Move or drop results after ``changes`` (already applied, giving ``doc_lines``). True if anything
        visible changed (diagnostics must be republished)."""
        records = self.for_uri(uri)
        if not records:
            return False
        touched: set[str] = set()
        for record in records:
            suspect = False
            for rng, text in changes:
                if rng is None:  # full-text sync: recognise the span by its text
                    suspect = True
                    continue
                for i, finding in enumerate(record.findings):
                    if finding is None:
                        continue
                    was = (finding.start, finding.end)
                    if not finding.apply_change(rng, text):
                        record.findings[i] = None
                        touched.add(record.id)
                    elif (finding.start, finding.end) != was:
                        touched.add(record.id)
                before = (record.span.start, record.span.end)
                if not record.span.apply_change(rng, text):
                    suspect = True
                    break
                if (record.span.start, record.span.end) != before:
                    touched.add(record.id)
            if suspect:
                touched.add(record.id)
                self._settle(record, doc_lines)
            elif record.pending is not None and not record.span.elastic:
                # Our edit may arrive as a change outside the span; the text tells.
                self._settle(record, doc_lines)
        return bool(touched)

    def _settle(self, record: RunRecord, doc_lines: list[str]) -> None:
        """After a change touching the span: keep the record only if the span now holds the expected text."""
        expected = record.pending if record.pending is not None else record.lines
        start = record.span.start
        if doc_lines[start : start + len(expected)] == expected:
            record.span.end = start + len(expected)
            record.lines = list(expected)
            if record.pending is not None:
                record.pending = None
                record.pending_from = None
                record.applied = True
            return
        if record.span.elastic:
            return  # a reviewed range: its findings were judged one by one
        if record.pending is not None and doc_lines[start : start + len(record.lines)] == record.lines:
            return  # our edit has not arrived yet and nothing else changed the span
        self.drop(record)
