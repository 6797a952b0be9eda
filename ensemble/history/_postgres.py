"""The team's shared history on PostgreSQL: ``history_url = "postgresql://…"`` instead of the local SQLite file.

What the team gets: every developer's runs and feedback land in one database, so the learned weights pool the
whole team's evidence (a model that keeps being outvoted on one developer's machine loses weight on everyone's).
As with SQLite, nobody's code is stored unless *their* ``store_code`` is on.

It is the same store as :class:`~codeconductor.ensemble.history.History`, with the same tables, columns, triggers and queries:
:class:`PostgresHistory` runs History's own SQL through a small connection adapter (:class:`_Connection`) that
turns the few SQLite spellings in it into PostgreSQL's (``?`` placeholders, ``BEGIN IMMEDIATE``,
``INSERT OR REPLACE/IGNORE``, ``json_each``) and refuses any other SQLite-only statement, so a new query in History
that does not translate fails loudly in the tests instead of silently diverging. Database errors are re-raised as
:class:`PostgresError`, a :class:`sqlite3.DatabaseError`, so History's handling of a failing database (record never
raises, weights fall back to the priors) applies unchanged.

Writers on many machines at once: each run is one transaction that bumps the shared evidence counters in one global
order (by model name), so writers queue rather than deadlock; one that still loses a deadlock or a serialisation
conflict (feedback racing a run) is retried, and a dropped connection is
reopened once, so no run is lost to another writer. A writer killed mid-transaction leaves nothing behind
(PostgreSQL rolls it back). The schema version lives in ``codeconductor_schema``; the first process to open a new
database creates the tables under an advisory lock, and a database of a newer version is left untouched.

The URL may carry a password, but it is better kept in ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads both); the URL
is never logged with its password.
"""

from __future__ import annotations

import logging
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..errors import HistoryError
from ..settings import Settings, is_loopback_url
from ..types import Result
from ._evidence import DEFAULT_EVIDENCE, EvidenceWeights
from ._schema import SCHEMA_VERSION, answer_evidence
from ._store import FeedbackAction, History, NullHistory

__all__ = ["PostgresError", "PostgresHistory", "is_postgres_url", "redact_url"]

log = logging.getLogger(__name__)

_ADVISORY_LOCK = 0x43434849  # "CCHI": serialises schema creation between processes
_RETRIES = 8


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and urlsplit(str(url)).scheme in ("postgresql", "postgres")


def redact_url(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit((parts.scheme, f"{user}:***@{netloc}", parts.path, parts.query, parts.fragment))


class PostgresError(sqlite3.DatabaseError):
    """A PostgreSQL error, as the DB-API error History's shared code handles. ``__cause__`` is psycopg's."""


# The same tables and columns, in the same order, as the SQLite schema v2 (codeconductor.ensemble.history._schema); REAL is
# DOUBLE PRECISION. The evidence triggers do what the SQLite ones do (a count per model name, task and kind, moved
# in the same transaction as the write).
_V2_TABLES = (
    """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, started_at DOUBLE PRECISION NOT NULL, task TEXT NOT NULL, wall_s DOUBLE PRECISION,
    kind TEXT, method TEXT, asked INTEGER, answered INTEGER, agree INTEGER, confidence DOUBLE PRECISION,
    request_json TEXT, pick TEXT
);
CREATE INDEX IF NOT EXISTS runs_started_at ON runs(started_at);
CREATE TABLE IF NOT EXISTS answers (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, model_name TEXT NOT NULL, endpoint TEXT NOT NULL,
    provider TEXT, sample INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL, reason TEXT,
    latency_s DOUBLE PRECISION, queue_s DOUBLE PRECISION, load_s DOUBLE PRECISION, tokens_in INTEGER,
    tokens_out INTEGER, joined INTEGER, examples_passed INTEGER, text TEXT,
    PRIMARY KEY (run_id, model_name, endpoint, sample)
);
CREATE INDEX IF NOT EXISTS answers_model ON answers(model_name);
CREATE TABLE IF NOT EXISTS feedback (
    run_id TEXT NOT NULL, model_name TEXT NOT NULL, endpoint TEXT NOT NULL, sample INTEGER NOT NULL DEFAULT -1,
    kind TEXT NOT NULL, action TEXT NOT NULL, at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, model_name, endpoint, sample, kind)
);
CREATE TABLE IF NOT EXISTS evidence (
    model_name TEXT NOT NULL, task TEXT NOT NULL, kind TEXT NOT NULL, n DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (model_name, task, kind)
);
CREATE OR REPLACE FUNCTION codeconductor_answer_evidence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rec answers;
    delta DOUBLE PRECISION;
    run_task TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN rec := NEW; delta := 1; ELSE rec := OLD; delta := -1; END IF;
    SELECT r.task INTO run_task FROM runs r WHERE r.id = rec.run_id;
    IF run_task IS NULL THEN RETURN NULL; END IF;
    INSERT INTO evidence (model_name, task, kind, n)
    SELECT rec.model_name, run_task, k.kind, GREATEST(delta, 0) FROM (
        """
    + answer_evidence("rec")
    + """
    ) AS k
    ON CONFLICT (model_name, task, kind) DO UPDATE SET n = evidence.n + delta;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER answers_evidence AFTER INSERT OR DELETE ON answers
    FOR EACH ROW EXECUTE FUNCTION codeconductor_answer_evidence();
CREATE OR REPLACE FUNCTION codeconductor_feedback_evidence() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rec feedback;
    delta DOUBLE PRECISION;
    run_task TEXT;
BEGIN
    IF TG_OP = 'INSERT' THEN rec := NEW; delta := 1; ELSE rec := OLD; delta := -1; END IF;
    SELECT r.task INTO run_task FROM runs r WHERE r.id = rec.run_id;
    IF run_task IS NULL THEN RETURN NULL; END IF;
    INSERT INTO evidence (model_name, task, kind, n) VALUES (rec.model_name, run_task, rec.action, GREATEST(delta, 0))
    ON CONFLICT (model_name, task, kind) DO UPDATE SET n = evidence.n + delta;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER feedback_evidence AFTER INSERT OR DELETE ON feedback
    FOR EACH ROW EXECUTE FUNCTION codeconductor_feedback_evidence();
"""
)

# Tables History writes with INSERT OR REPLACE: primary key and columns, for PostgreSQL's ON CONFLICT DO UPDATE.
_UPSERT = {
    "runs": (
        "id",
        (
            "started_at", "task", "wall_s", "kind", "method", "asked", "answered", "agree", "confidence",
            "request_json", "pick",
        ),
    ),
}  # fmt: skip
_SQLITE_ONLY = re.compile(r"\b(PRAGMA|VACUUM|json_each|INSERT\s+OR|WITHOUT\s+ROWID|sqlite_master)\b", re.IGNORECASE)


def _translate(sql: str) -> str:
    """One of History's SQLite statements in PostgreSQL's spelling; HistoryError for one it does not know."""
    out = sql.strip()
    if out.upper() == "BEGIN IMMEDIATE":
        return "BEGIN"
    out = re.sub(r"SELECT value FROM json_each\(\?\)", "SELECT value FROM json_array_elements_text(?::json)", out)
    match = re.match(r"INSERT OR REPLACE INTO (\w+) ", out)
    if match:
        table = match.group(1)
        if table not in _UPSERT:
            raise HistoryError(f"history: no PostgreSQL upsert for table {table!r}")
        key, columns = _UPSERT[table]
        sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns)
        out = f"INSERT INTO {table} {out[match.end() :]} ON CONFLICT ({key}) DO UPDATE SET {sets}"
    elif re.match(r"INSERT OR IGNORE INTO ", out):
        out = "INSERT INTO " + out[len("INSERT OR IGNORE INTO ") :] + " ON CONFLICT DO NOTHING"
    if _SQLITE_ONLY.search(out):
        raise HistoryError(f"history: statement has no PostgreSQL translation: {out[:80]}")
    # psycopg's placeholder is %s, so a literal % must be doubled; History's SQL has no '?' inside string literals.
    return out.replace("%", "%%").replace("?", "%s")


class _Connection:
    """The part of :class:`sqlite3.Connection` History uses, on a psycopg connection in autocommit mode (History
    issues BEGIN/COMMIT itself). Reconnects, outside a transaction, after the connection was lost."""

    def __init__(self, url: str, connect_timeout_s: float) -> None:
        self._url = url
        self._timeout = connect_timeout_s
        self._conn: Any = None
        self._in_transaction = False
        self._cache: dict[str, str] = {}
        self._connect()

    def _connect(self) -> None:
        import psycopg

        try:
            self._conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=max(1, round(self._timeout)),
                application_name="codeconductor",
            )
        except psycopg.Error as exc:
            raise PostgresError(f"cannot connect to {redact_url(self._url)}: {_first_line(exc)}") from exc

    def _sql(self, sql: str) -> str:
        found = self._cache.get(sql)
        if found is None:
            found = self._cache[sql] = _translate(sql)
        return found

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        import psycopg

        translated = self._sql(sql)
        if self._conn is None or self._conn.closed:
            if self._in_transaction:
                self._in_transaction = False
                if translated == "ROLLBACK":
                    return None  # nothing to roll back: the server dropped the transaction with the connection
                raise PostgresError("the connection to the history database was lost mid-transaction")
            self._connect()
        try:
            cursor = self._conn.execute(translated, tuple(params) or None)
        except psycopg.Error as exc:
            if translated in ("COMMIT", "ROLLBACK"):
                self._in_transaction = False
            raise PostgresError(_first_line(exc)) from exc
        if translated == "BEGIN":
            self._in_transaction = True
        elif translated in ("COMMIT", "ROLLBACK"):
            self._in_transaction = False
        return cursor

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        import psycopg

        batch = [tuple(r) for r in rows]
        if not batch:
            return
        try:
            with self._conn.cursor() as cursor:
                cursor.executemany(self._sql(sql), batch)
        except psycopg.Error as exc:
            raise PostgresError(_first_line(exc)) from exc

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _retryable(exc: BaseException) -> bool:
    import psycopg
    from psycopg import errors

    cause = exc.__cause__
    return isinstance(cause, errors.DeadlockDetected | errors.SerializationFailure | psycopg.OperationalError)


class PostgresHistory(History):
    """The history in a PostgreSQL database shared by a team (see the module docstring).

    Raises :class:`~codeconductor.ensemble.errors.HistoryError` when the database cannot be reached or has a newer schema.
    """

    def __init__(
        self,
        url: str,
        *,
        settings: Settings | None = None,
        evidence: EvidenceWeights = DEFAULT_EVIDENCE,
        connect_timeout_s: float = 5.0,
    ) -> None:
        # History's own __init__ opens SQLite; this sets up the same state on PostgreSQL.
        self.settings = settings or Settings()
        self.evidence = evidence
        self.url = redact_url(url)
        self.path = Path(self.url)  # History names its database by .path in messages
        self._lock = threading.RLock()
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise HistoryError(
                "history_url needs psycopg: pip install 'codeconductor[team]' (or psycopg[binary])"
            ) from exc
        try:
            conn = _Connection(url, connect_timeout_s)
        except PostgresError as exc:
            raise HistoryError(f"cannot open history database: {exc}") from exc
        self._conn = cast(sqlite3.Connection, conn)
        try:
            self.migrated_from = _migrate(conn)
        except (PostgresError, HistoryError) as exc:
            conn.close()
            raise HistoryError(f"cannot use history database {self.url}: {exc}") from exc

    def _retrying(self, what: str, write: Any) -> None:
        for attempt in range(_RETRIES):
            try:
                write()
                return
            except PostgresError as exc:
                if not _retryable(exc) or attempt == _RETRIES - 1:
                    raise
                log.debug("history: %s conflicted with another writer (%s); retrying", what, exc)
                time.sleep(random.uniform(0.01, 0.02) * (2**attempt))

    def _record(self, result: Result) -> None:
        # Answers in one global order (model name first), so two writers bump the shared evidence counters in the
        # same order and queue behind each other instead of deadlocking (which would cost each a 1 s detection).
        ordered = sorted(result.answers, key=lambda a: (a.model.name, a.model.endpoint, a.sample))
        if ordered != result.answers:
            result = result.model_copy(update={"answers": ordered})
        self._retrying(f"run {result.id}", lambda: super(PostgresHistory, self)._record(result))

    def record_feedback(
        self, result_id: str, model_ids: Sequence[str], action: str | FeedbackAction, *, at: float | None = None
    ) -> None:
        try:
            self._retrying(
                f"feedback on {result_id}",
                lambda: super(PostgresHistory, self).record_feedback(result_id, model_ids, action, at=at),
            )
        except PostgresError as exc:
            raise HistoryError(f"could not record feedback for run {result_id}: {exc}") from exc

    def reset(self) -> None:
        """Delete every recorded run and all feedback, for the whole team (the schema stays)."""
        try:
            with self._write() as conn:
                conn.execute("DELETE FROM feedback")
                conn.execute("DELETE FROM answers")
                conn.execute("DELETE FROM runs")
                conn.execute("DELETE FROM evidence")
        except sqlite3.Error as exc:
            raise HistoryError(f"could not reset history {self.url}: {exc}") from exc


def _migrate(conn: _Connection) -> int:
    """Bring the database to :data:`SCHEMA_VERSION` (creating it when new); return the version found before.

    PostgreSQL histories start at v2 (v1 only ever existed as SQLite files), so the only step is creation.
    """
    pg = conn._conn
    import psycopg

    try:
        with pg.transaction():
            pg.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
            pg.execute("CREATE TABLE IF NOT EXISTS codeconductor_schema (version INTEGER NOT NULL)")
            row = pg.execute("SELECT version FROM codeconductor_schema").fetchone()
            found = int(row[0]) if row else 0
            if found > SCHEMA_VERSION:
                raise HistoryError(
                    f"history database has schema v{found}, newer than this CodeConductor's v{SCHEMA_VERSION}; "
                    "not recording (upgrade CodeConductor)"
                )
            if found < SCHEMA_VERSION:
                pg.execute(_V2_TABLES)
                pg.execute("DELETE FROM codeconductor_schema")
                pg.execute("INSERT INTO codeconductor_schema (version) VALUES (%s)", (SCHEMA_VERSION,))
    except psycopg.Error as exc:
        raise PostgresError(_first_line(exc)) from exc
    return found


def _on_this_machine(url: str) -> bool:
    """A loopback host, or a Unix socket (no host, or ``?host=/a/folder``)."""
    parts = urlsplit(url)
    if parts.hostname:
        return is_loopback_url(url)
    hosts = parse_qs(parts.query).get("host", [])
    return all(h.startswith("/") for h in hosts)


def open_postgres_history(settings: Settings) -> History | NullHistory:
    """The shared history at ``settings.history_url``; a :class:`NullHistory` (logged) when it cannot be used, or
    when it is on another machine and ``allow_remote`` is off (run metadata, and with ``store_code`` code, would be
    sent there)."""
    url = settings.history_url or ""
    if not settings.allow_remote and not _on_this_machine(url):
        log.warning("history disabled: %s is not on this machine and allow_remote is off", redact_url(url))
        return NullHistory()
    try:
        return PostgresHistory(url, settings=settings)
    except HistoryError as exc:
        log.warning("history disabled: %s", exc)
        return NullHistory()
