"""Schema versions of the history database: migration from v1 (kept here verbatim), newer versions left alone."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from codeconductor.ensemble.errors import HistoryError
from codeconductor.ensemble.history import SCHEMA_VERSION, History, NullHistory, open_history
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import ModelInfo, ProviderKind, TaskKind

# The v1 schema exactly as CodeConductor 0.0.x wrote it: one table keyed by model id, no runs, no feedback.
V1_SCHEMA = """
CREATE TABLE answers (
    run_id     TEXT NOT NULL,
    started_at REAL NOT NULL,
    task       TEXT NOT NULL,
    model_id   TEXT NOT NULL,
    status     TEXT NOT NULL,
    latency_s  REAL,
    tokens_out INTEGER,
    joined     INTEGER,
    PRIMARY KEY (run_id, model_id)
);
PRAGMA user_version = 1;
"""

EP = "http://127.0.0.1:11434"


def make_v1(path: Path, runs: int = 10) -> None:
    conn = sqlite3.connect(path)
    conn.executescript(V1_SCHEMA)
    rows: list[tuple[object, ...]] = []
    for i in range(runs):
        rows.append((f"run{i}", 1_700_000_000.0 + i, "fix", f"good:7b@{EP}", "answered", 1.5, 20, 1))
        rows.append((f"run{i}", 1_700_000_000.0 + i, "fix", f"bad:7b@{EP}", "timeout", 30.0, None, None))
    conn.executemany("INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()


def test_v1_database_migrates_and_keeps_its_evidence(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    make_v1(path)
    with History(path) as h:
        assert h.migrated_from == 1
        assert h.run_count() == 10
        rows = h.answer_rows()
        assert len(rows) == 20
        assert {(r["model_name"], r["endpoint"]) for r in rows} == {("good:7b", EP), ("bad:7b", EP)}
        good = ModelInfo(name="good:7b", provider=ProviderKind.OLLAMA, endpoint=EP)
        bad = ModelInfo(name="bad:7b", provider=ProviderKind.OLLAMA, endpoint=EP)
        w = h.weights(TaskKind.FIX, [good, bad])
        assert w[good.id] > 0.7
        assert w[bad.id] < 0.3
        stats = {s.name: s for s in h.model_stats()}
        assert stats["good:7b"].latency_p50_s == 1.5
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"runs", "answers", "feedback", "evidence"}
    # Opening again does not migrate again.
    with History(path) as h:
        assert h.migrated_from == SCHEMA_VERSION
        assert h.run_count() == 10


def test_a_failed_migration_leaves_the_v1_database_intact(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    make_v1(path, runs=3)
    conn = sqlite3.connect(path)
    # A table in the way of the migration: the CREATE TABLE IF NOT EXISTS succeeds, the INSERT then fails.
    conn.execute("CREATE TABLE runs (unrelated TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(HistoryError):
        History(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 6


def test_newer_schema_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite3"
    conn = sqlite3.connect(path)
    conn.executescript("CREATE TABLE future (x); PRAGMA user_version = 99;")
    conn.close()
    with pytest.raises(HistoryError, match="newer"):
        History(path)
    assert isinstance(open_history(Settings(history_path=str(path))), NullHistory)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
