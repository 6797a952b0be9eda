"""The team's shared history on PostgreSQL: ``history_url = "postgresql://…"`` instead of the local SQLite file.

What the team gets: every developer's runs and feedback land in one database, so the learned weights pool the
whole team's evidence (a model that keeps being outvoted on one developer's machine loses weight on everyone's).
As with SQLite, nobody's code is stored unless *their* ``store_code`` is on.

It is the same store as :class:`~codeconductor.ensemble.history.History`, with the same tables, columns, triggers
and queries, over :class:`PostgresBackend` (the storage backend interface: :mod:`._backend`). The store's SQL is
portable; this backend only turns its ``?`` placeholders into psycopg's ``%s``. Database errors are raised as
:class:`~codeconductor.ensemble.errors.HistoryDatabaseError` (``__cause__``: psycopg's), so the store's handling of a
failing database (record never raises, weights fall back to the priors) is the same as on SQLite.

Writers on many machines at once: each run is one transaction that bumps the shared evidence counters in one global
order (by model name: the store writes answers in that order), so writers queue rather than deadlock; one that still
loses a deadlock or a serialisation conflict (feedback racing a run) is retried, and a dropped connection is
reopened once, so no run is lost to another writer. A writer killed mid-transaction leaves nothing behind
(PostgreSQL rolls it back). The schema version lives in ``codeconductor_schema``; the first process to open a new
database creates the tables under an advisory lock, and a database of a newer version is left untouched.

The URL may carry a password, but it is better kept in ``PGPASSWORD`` or ``~/.pgpass`` (libpq reads both); the URL
is never logged with its password.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit, urlunsplit

from ..errors import HistoryDatabaseError, HistoryError
from ..settings import Settings, is_loopback_url
from ._backend import Row
from ._evidence import DEFAULT_EVIDENCE, EvidenceWeights
from ._schema import SCHEMA_VERSION, answer_evidence
from ._store import History, NullHistory

__all__ = ["PostgresBackend", "PostgresHistory", "is_postgres_url", "open_postgres_history", "redact_url"]

log = logging.getLogger(__name__)

T = TypeVar("T")

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


def _placeholders(sql: str) -> str:
    """The store's ``?`` placeholders in psycopg's spelling (a literal ``%`` doubled; the store's SQL has no ``?``
    inside a string literal)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _retryable(exc: BaseException) -> bool:
    import psycopg
    from psycopg import errors

    cause = exc.__cause__
    return isinstance(cause, errors.DeadlockDetected | errors.SerializationFailure | psycopg.OperationalError)


class PostgresBackend:
    """The history's database at ``url`` (a psycopg connection in autocommit mode: :meth:`write` issues BEGIN and
    COMMIT). Reconnects, outside a transaction, after the connection was lost. Safe to share between threads.

    Raises :class:`~codeconductor.ensemble.errors.HistoryError` when the database cannot be reached, psycopg is
    missing, or the database has a newer schema."""

    def __init__(self, url: str, *, connect_timeout_s: float = 5.0) -> None:
        self._url = url
        self.location = redact_url(url)
        self._timeout = connect_timeout_s
        self._lock = threading.RLock()
        self._conn: Any = None
        self._in_transaction = False
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            raise HistoryError(
                "history_url needs psycopg: pip install 'codeconductor[team]' (or psycopg[binary])"
            ) from exc
        try:
            self._connect()
        except HistoryDatabaseError as exc:
            raise HistoryError(f"cannot open history database: {exc}") from exc
        try:
            self.migrated_from = self._migrate()
        except HistoryError as exc:
            self.close()
            raise HistoryError(f"cannot use history database {self.location}: {exc}") from exc

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
            raise HistoryDatabaseError(f"cannot connect to {self.location}: {_first_line(exc)}") from exc

    def _migrate(self) -> int:
        """Bring the database to :data:`SCHEMA_VERSION` (creating it when new); return the version found before.

        PostgreSQL histories start at v2 (v1 only ever existed as SQLite files), so the only step is creation.
        """
        import psycopg

        pg = self._conn
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
            raise HistoryDatabaseError(_first_line(exc)) from exc
        return found

    @contextmanager
    def _errors(self) -> Iterator[None]:
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            raise HistoryDatabaseError(_first_line(exc)) from exc

    def _cursor(self, sql: str, params: Sequence[Any]) -> Any:
        if self._conn is None or self._conn.closed:
            if self._in_transaction:
                raise HistoryDatabaseError("the connection to the history database was lost mid-transaction")
            self._connect()
        with self._errors():
            return self._conn.execute(_placeholders(sql), tuple(params) or None)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            cursor = self._cursor(sql, params)
            with self._errors():
                return [tuple(row) for row in cursor.fetchall()] if cursor.description is not None else []

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        batch = [tuple(r) for r in rows]
        if not batch:
            return
        with self._lock, self._errors(), self._conn.cursor() as cursor:
            cursor.executemany(_placeholders(sql), batch)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock:
            cursor = self._cursor(sql, params)
            with self._errors():
                columns = [d.name for d in cursor.description]
                return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def write(self, what: str, body: Callable[[], T]) -> T:
        """One transaction around ``body``; retried (with backoff) when it loses a deadlock or a serialisation
        conflict to another writer, or the connection dropped."""
        for attempt in range(_RETRIES):
            try:
                return self._write_once(body)
            except HistoryDatabaseError as exc:
                if not _retryable(exc) or attempt == _RETRIES - 1:
                    raise
                log.debug("history: %s conflicted with another writer (%s); retrying", what, exc)
                time.sleep(random.uniform(0.01, 0.02) * (2**attempt))
        raise AssertionError("unreachable")  # the loop returns or raises

    def _write_once(self, body: Callable[[], T]) -> T:
        with self._lock:
            self._cursor("BEGIN", ())
            self._in_transaction = True
            try:
                out = body()
            except BaseException:
                self._end("ROLLBACK")
                raise
            self._end("COMMIT")
            return out

    def _end(self, statement: str) -> None:
        self._in_transaction = False
        if self._conn is None or self._conn.closed:
            if statement == "ROLLBACK":
                return  # nothing to roll back: the server dropped the transaction with the connection
            raise HistoryDatabaseError("the connection to the history database was lost mid-transaction")
        with self._errors():
            self._conn.execute(statement)

    def compact(self) -> None:
        return None  # PostgreSQL's autovacuum gives the space back

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()


class PostgresHistory(History):
    """The history in a PostgreSQL database shared by a team (see the module docstring): the store over
    :class:`PostgresBackend`; ``url`` is kept without its password.

    Raises :class:`~codeconductor.ensemble.errors.HistoryError` when the database cannot be reached or has a newer
    schema.
    """

    def __init__(
        self,
        url: str,
        *,
        settings: Settings | None = None,
        evidence: EvidenceWeights = DEFAULT_EVIDENCE,
        connect_timeout_s: float = 5.0,
    ) -> None:
        backend = PostgresBackend(url, connect_timeout_s=connect_timeout_s)
        super().__init__(settings=settings, evidence=evidence, backend=backend)
        self.url = backend.location


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
