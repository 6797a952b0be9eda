"""What the history needs of its database: the storage backend interface, one for SQLite and one for PostgreSQL.

The store (:class:`~codeconductor.ensemble.history.History`) writes its SQL once, in the spelling both databases
read: ``?`` placeholders (a backend whose driver wants another spelling rewrites them; the store's SQL never has a
``?`` or ``%`` inside a string literal), ``INSERT ... ON CONFLICT``, no database-specific functions. A backend
brings the connection, its transactions and its schema:

* :meth:`Backend.execute` / :meth:`Backend.executemany` / :meth:`Backend.query` run statements;
* :meth:`Backend.write` runs a function of such statements as one write transaction (taking the write lock up
  front; a backend shared by many writers retries it after a deadlock or a serialisation conflict);
* the schema is created or migrated when the backend opens (``migrated_from``: the version found);
* :meth:`Backend.compact` gives the space of deleted rows back (after a reset).

Every failure is the project's own error: :class:`~codeconductor.ensemble.errors.HistoryDatabaseError` for a
statement that failed, :class:`~codeconductor.ensemble.errors.HistoryCorruptError` for a damaged file, and
:class:`~codeconductor.ensemble.errors.HistoryError` for a database that cannot be opened or has a newer schema.
Implementations: :class:`codeconductor.ensemble.history._sqlite.SQLiteBackend`,
:class:`codeconductor.ensemble.history._postgres.PostgresBackend`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

__all__ = ["Backend", "Row"]

Row = tuple[Any, ...]
T = TypeVar("T")


class Backend(Protocol):
    """One open history database (see the module docstring)."""

    location: str  # what messages name: the file, or the URL without its password
    migrated_from: int  # the schema version found when it opened (0: a new database)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement; its rows (none for a statement that returns none)."""
        ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Run one statement once per row of parameters."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        """Run one query; its rows as column name -> value."""
        ...

    def write(self, what: str, body: Callable[[], T]) -> T:
        """Run ``body`` (statements through this backend) as one write transaction, committed when it returns and
        rolled back when it raises; ``what`` names it in logs. Returns what ``body`` returns."""
        ...

    def compact(self) -> None:
        """Give the space of deleted rows back to the system (after a reset), where the database can."""
        ...

    def close(self) -> None: ...
