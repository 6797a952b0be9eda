"""The history's SQLite backend: one local file in WAL mode, shared by the processes of one user.

``synchronous=NORMAL``: a committed run survives the process being killed; readers never block the writer. Several
processes (the language server, a CLI) may write at once: every write is one short ``BEGIN IMMEDIATE``
transaction (the write lock taken up front, so there are no deadlock-prone read-to-write upgrades between
processes) and waits up to ``busy_timeout_s`` for the other. The schema and its migrations: :mod:`._schema`.
SQLite's errors become :class:`~codeconductor.ensemble.errors.HistoryDatabaseError`, a damaged file
:class:`~codeconductor.ensemble.errors.HistoryCorruptError`.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from ..errors import HistoryCorruptError, HistoryDatabaseError, HistoryError
from ._backend import Row
from ._schema import migrate

__all__ = ["SQLiteBackend", "is_corruption"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def is_corruption(exc: BaseException) -> bool:
    """Whether an SQLite error says the file is damaged (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def _switch_to_wal(conn: sqlite3.Connection, timeout_s: float) -> None:
    """``PRAGMA journal_mode = WAL``, waiting for another process that is creating the same new file: SQLite may
    answer SQLITE_BUSY there at once, without calling the busy handler (two processes opening one new database)."""
    deadline = time.monotonic() + max(timeout_s, 0.1)
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if ("locked" not in str(exc) and "busy" not in str(exc)) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


class SQLiteBackend:
    """The history file at ``path`` (created with its folder when missing). Safe to share between threads.

    Raises :class:`~codeconductor.ensemble.errors.HistoryError` when the file cannot be opened as a history
    database (:class:`~codeconductor.ensemble.errors.HistoryCorruptError` when it is damaged)."""

    def __init__(self, path: Path, *, busy_timeout_s: float = 10.0) -> None:
        self.path = path
        self.location = str(path)
        self._lock = threading.RLock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: BEGIN IMMEDIATE / COMMIT are issued here (see the module docstring).
            self._conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open history database {path}: {exc}") from exc
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            _switch_to_wal(self._conn, busy_timeout_s)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self.migrated_from = migrate(self._conn)
            # Garbage in the middle of the file opens fine and fails later, page by page: look once, up front.
            problems = [str(row[0]) for row in self._conn.execute("PRAGMA quick_check(3)").fetchall()]
            if problems != ["ok"]:
                log.warning("history: %s failed its integrity check: %s", path, "; ".join(problems))
                raise HistoryCorruptError(path)
        except sqlite3.Error as exc:
            self._conn.close()
            if is_corruption(exc):
                raise HistoryCorruptError(path) from exc
            raise HistoryError(f"cannot use history database {path}: {exc}") from exc
        except HistoryError:
            self._conn.close()
            raise

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            if is_corruption(exc):  # a page that does not read back, past the check at opening
                raise HistoryCorruptError(self.path) from exc
            raise HistoryDatabaseError(str(exc)) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock, self._errors():
            return self._conn.execute(sql, params).fetchall()

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock, self._errors():
            self._conn.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self._lock, self._errors():
            cursor = self._conn.execute(sql, params)
            columns = [d[0] for d in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    def write(self, what: str, body: Callable[[], T]) -> T:
        with self._lock:
            with self._errors():
                self._conn.execute("BEGIN IMMEDIATE")
            try:
                out = body()
            except BaseException:
                with self._errors():
                    self._conn.execute("ROLLBACK")
                raise
            with self._errors():
                self._conn.execute("COMMIT")
            return out

    def compact(self) -> None:
        with self._lock, self._errors():
            # Give the space back and drop the deleted pages from the WAL, so a reset also forgets on disk.
            self._conn.execute("VACUUM")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
