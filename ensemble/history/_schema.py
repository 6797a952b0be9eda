"""The history database's schema, its version (``PRAGMA user_version``) and the migrations from older versions.

What the user gets: upgrading CodeConductor keeps their history; a database written by a *newer* version is
left untouched (recording is switched off, weights fall back to the priors) instead of being damaged.

Versions
--------
* v1 (CodeConductor 0.0.x): one ``answers`` table keyed by ``model_id`` (``name@endpoint``), no run table, no
  feedback.
* v2 (current): ``runs`` (one row per ensemble run), ``answers`` (one row per model answer, keyed by model name and
  endpoint so reliability is shared across endpoints), ``feedback`` (what the user did with a suggestion, and
  whether their tests passed), and ``evidence`` (counts per model name, task kind and kind of evidence, kept in
  step with answers and feedback by triggers).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..errors import HistoryError

__all__ = ["SCHEMA_VERSION", "answer_evidence", "migrate"]

SCHEMA_VERSION = 2


def answer_evidence(row: str) -> str:
    """The kinds of evidence one answer counts as, as SQL rows of ``kind`` over the answer row ``row`` (``NEW``,
    ``OLD``, a PL/pgSQL record): the one rule both stores' triggers use."""
    return f"""SELECT 'joined' AS kind WHERE {row}.status = 'answered' AND {row}.joined = 1
        UNION ALL SELECT 'outvoted' WHERE {row}.status = 'answered' AND {row}.joined = 0
        UNION ALL SELECT 'examples_passed' WHERE {row}.examples_passed = 1
        UNION ALL SELECT 'examples_failed' WHERE {row}.examples_passed = 0
        UNION ALL SELECT 'timeout' WHERE {row}.status = 'timeout'
        UNION ALL SELECT 'error' WHERE {row}.status = 'failed'"""


def _evidence_triggers(op: str) -> str:
    # An insert counts an answer's (or a feedback action's) evidence up, a delete counts it down (the row starts
    # at 0 when a delete finds none, as the count cannot go below what was inserted).
    row, first, sign = ("NEW", 1, "+") if op == "INSERT" else ("OLD", 0, "-")
    name = op.lower()
    return f"""CREATE TRIGGER IF NOT EXISTS answers_evidence_{name} AFTER {op} ON answers BEGIN
    INSERT INTO evidence (model_name, task, kind, n)
    SELECT {row}.model_name, r.task, k.kind, {first} FROM runs r, (
        {answer_evidence(row)}
    ) AS k WHERE r.id = {row}.run_id
    ON CONFLICT (model_name, task, kind) DO UPDATE SET n = n {sign} 1;
END;
CREATE TRIGGER IF NOT EXISTS feedback_evidence_{name} AFTER {op} ON feedback BEGIN
    INSERT INTO evidence (model_name, task, kind, n)
    SELECT {row}.model_name, r.task, {row}.action, {first} FROM runs r WHERE r.id = {row}.run_id
    ON CONFLICT (model_name, task, kind) DO UPDATE SET n = n {sign} 1;
END;
"""


_V2_TABLES = """
CREATE TABLE IF NOT EXISTS runs (
    id           TEXT PRIMARY KEY,
    started_at   REAL NOT NULL,          -- unix seconds
    task         TEXT NOT NULL,
    wall_s       REAL,
    kind         TEXT,                   -- consensus kind: code, findings, text, none
    method       TEXT,
    asked        INTEGER,
    answered     INTEGER,
    agree        INTEGER,
    confidence   REAL,
    request_json TEXT,                   -- only with settings.store_code
    pick         TEXT                    -- only with settings.store_code
);
CREATE INDEX IF NOT EXISTS runs_started_at ON runs(started_at);
CREATE TABLE IF NOT EXISTS answers (
    run_id          TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model_name      TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    provider        TEXT,
    sample          INTEGER NOT NULL DEFAULT 0,
    status          TEXT NOT NULL,       -- AnswerStatus value
    reason          TEXT,                -- machine reason when not answered: timeout, http_500, ...
    latency_s       REAL,
    queue_s         REAL,
    load_s          REAL,
    tokens_in       INTEGER,
    tokens_out      INTEGER,
    joined          INTEGER,             -- 1: in the pick's cluster, 0: outvoted, NULL: not applicable
    examples_passed INTEGER,             -- its cluster's passes_examples (NULL: not run)
    text            TEXT,                -- only with settings.store_code
    PRIMARY KEY (run_id, model_name, endpoint, sample)
);
CREATE INDEX IF NOT EXISTS answers_model ON answers(model_name);
CREATE TABLE IF NOT EXISTS feedback (
    run_id     TEXT NOT NULL,
    model_name TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    sample     INTEGER NOT NULL DEFAULT -1,   -- -1: every sample of that model in the run
    kind       TEXT NOT NULL,                 -- 'user' (applied/changed/rejected) or 'tests' (passed/failed)
    action     TEXT NOT NULL,
    at         REAL NOT NULL,
    PRIMARY KEY (run_id, model_name, endpoint, sample, kind)
);
-- Evidence counts per model name and task kind, kept up to date by the triggers below in the same transaction
-- as the write, so reading the learned weights before a run costs one small indexed read, whatever the size of
-- the history. kind: joined, outvoted, examples_passed, examples_failed, timeout, error, and the feedback
-- actions (applied, changed, rejected, tests_passed, tests_failed).
CREATE TABLE IF NOT EXISTS evidence (
    model_name TEXT NOT NULL,
    task       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    n          REAL NOT NULL,
    PRIMARY KEY (model_name, task, kind)
) WITHOUT ROWID;
""" + "".join(_evidence_triggers(op) for op in ("INSERT", "DELETE"))


def _statements(script: str) -> list[str]:
    # Split on complete statements (trigger bodies contain ';'); executescript() would commit our transaction.
    out: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            out.append(pending.strip())
            pending = ""
    return [stmt for stmt in out if stmt.strip(" ;\n")]


def _create_latest(conn: sqlite3.Connection) -> None:
    for stmt in _statements(_V2_TABLES):
        conn.execute(stmt)


def _split_model_id(model_id: str) -> tuple[str, str]:
    # ids are ``name@endpoint``; endpoints never contain '@' (no credentials in URLs), names rarely do.
    name, sep, endpoint = model_id.rpartition("@")
    return (name, endpoint) if sep else (model_id, "")


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    # v1 kept everything in one table keyed by model id; split it into runs + answers keyed by name + endpoint.
    conn.execute("ALTER TABLE answers RENAME TO answers_v1")
    _create_latest(conn)
    conn.execute(
        "INSERT OR IGNORE INTO runs (id, started_at, task) "
        "SELECT run_id, MIN(started_at), MIN(task) FROM answers_v1 GROUP BY run_id"
    )
    rows = conn.execute("SELECT run_id, model_id, status, latency_s, tokens_out, joined FROM answers_v1").fetchall()
    conn.executemany(
        "INSERT OR IGNORE INTO answers (run_id, model_name, endpoint, status, latency_s, tokens_out, joined) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (run_id, *_split_model_id(model_id), status, lat, tok, joined)
            for run_id, model_id, status, lat, tok, joined in rows
        ],
    )
    conn.execute("DROP TABLE answers_v1")


# from-version -> step to the next version; version 0 means a fresh (empty) database, created at the latest.
_STEPS: dict[int, Callable[[sqlite3.Connection], None]] = {1: _v1_to_v2}


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the database to :data:`SCHEMA_VERSION`; return the version found before.

    Raises :class:`~codeconductor.ensemble.errors.HistoryError` for a database from a newer CodeConductor.
    """
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise HistoryError(
            f"history database has schema v{found}, newer than this CodeConductor's v{SCHEMA_VERSION}; "
            "not recording (upgrade CodeConductor or use another history_path)"
        )
    if found == SCHEMA_VERSION:
        return found
    # Several processes may open an old database at once: take the write lock, then look again, so exactly one
    # of them migrates and the whole migration is one transaction (a crash rolls it back).
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise HistoryError(f"history database was upgraded to schema v{version} meanwhile; not recording")
        if version == 0:
            _create_latest(conn)
        else:
            while version < SCHEMA_VERSION:
                step = _STEPS.get(version)
                if step is None:
                    raise HistoryError(f"no migration from history schema v{version}")
                step(conn)
                version += 1
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found
