"""Stored results follow the text (codeconductor.server.runs, no LSP session needed): moved by edits above, kept by edits
below, dropped when their own lines change, and the server's own edit recognised rather than dropped."""

from __future__ import annotations

from datetime import UTC, datetime

from lsprotocol import types as lsp

from codeconductor.ensemble.types import CodeContext, ConsensusResult, Request, Result, TaskKind
from codeconductor.server.runs import RunRecord, RunStore, Span


def _rng(sl: int, sc: int, el: int, ec: int) -> lsp.Range:
    return lsp.Range(lsp.Position(sl, sc), lsp.Position(el, ec))


def _record(store: RunStore, start: int, end: int, lines: list[str]) -> RunRecord:
    result = Result(
        id="x",
        request=Request(task=TaskKind.FIX, context=CodeContext()),
        answers=[],
        consensus=ConsensusResult(kind="code", pick="y"),
        started_at=datetime.now(UTC),
    )
    record = RunRecord(
        id=store.new_id(),
        uri="file:///a.py",
        task=TaskKind.FIX,
        result=result,
        span=Span(start, end),
        version=1,
        lines=lines,
    )
    store.add(record)
    return record


def test_span_moves_with_edits_above_and_ignores_edits_below() -> None:
    span = Span(5, 8)
    assert span.apply_change(_rng(0, 0, 0, 0), "a\nb\n")
    assert (span.start, span.end) == (7, 10)
    assert span.apply_change(_rng(1, 0, 3, 0), "")  # two lines deleted above
    assert (span.start, span.end) == (5, 8)
    assert span.apply_change(_rng(8, 0, 9, 0), "x\ny\nz\n")  # below
    assert (span.start, span.end) == (5, 8)
    assert span.apply_change(_rng(5, 0, 5, 0), "new line\n")  # a whole line inserted just above
    assert (span.start, span.end) == (6, 9)
    assert not span.apply_change(_rng(6, 0, 6, 0), "prefix ")  # typing on its first line
    assert not span.apply_change(_rng(4, 3, 6, 0), "")  # joining the line above into it


def test_elastic_span_grows_with_edits_inside() -> None:
    span = Span(2, 6, elastic=True)
    assert span.apply_change(_rng(3, 0, 3, 4), "a\nb\nc")
    assert (span.start, span.end) == (2, 8)
    assert not span.apply_change(_rng(1, 0, 3, 0), "")  # straddles its start


def test_store_drops_on_edit_and_keeps_own_edit() -> None:
    store = RunStore()
    doc = ["import os", "", "def f():", "    return 1", ""]
    record = _record(store, 2, 4, doc[2:4])
    assert store.at_line("file:///a.py", 3) is record
    # The server's own edit: expected, so the result moves onto the new text.
    record.pending = ["def f():", "    '''Doc.'''", "    return 1"]
    new_doc = [*doc[:2], *record.pending, ""]
    changed = store.on_change("file:///a.py", [(_rng(2, 0, 4, 0), "\n".join(record.pending) + "\n")], new_doc)
    assert changed
    assert store.get(record.id) is record
    assert (record.span.start, record.span.end) == (2, 5)
    assert record.applied
    assert record.pending is None
    # A user's edit inside it: gone.
    typed = [*new_doc[:3], "    x'''Doc.'''", *new_doc[4:]]
    store.on_change("file:///a.py", [(_rng(3, 4, 3, 4), "x")], typed)
    assert store.get(record.id) is None
    assert store.at_line("file:///a.py", 3) is None


def test_new_result_replaces_overlapping_old_one() -> None:
    store = RunStore()
    old = _record(store, 0, 4, ["a", "b", "c", "d"])
    new = _record(store, 2, 3, ["c"])
    assert store.get(old.id) is None
    assert store.at_line("file:///a.py", 2) is new


def test_full_text_sync_keeps_unchanged_span() -> None:
    store = RunStore()
    record = _record(store, 1, 2, ["keep"])
    store.on_change("file:///a.py", [(None, "x\nkeep\n")], ["x", "keep", ""])
    assert store.get(record.id) is record
    store.on_change("file:///a.py", [(None, "x\nchanged\n")], ["x", "changed", ""])
    assert store.get(record.id) is None
