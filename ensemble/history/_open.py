"""Which history a run gets: :func:`open_history` picks the store and its backend from the settings."""

from __future__ import annotations

import logging

from ..errors import HistoryError
from ..settings import Settings
from ._store import History, NullHistory

__all__ = ["open_history"]

log = logging.getLogger(__name__)


def open_history(settings: Settings) -> History | NullHistory:
    """The history the settings ask for: the team's PostgreSQL database (``history_url``), else the user's SQLite
    file; a :class:`NullHistory` (logged, with ``reason``) when it is off or cannot be opened, so runs go on
    without it."""
    if not settings.history:
        return NullHistory()
    if settings.history_url:  # psycopg is imported only for a team's history
        from ._postgres import open_postgres_history

        return open_postgres_history(settings)
    try:
        return History(settings=settings)
    except HistoryError as exc:
        log.warning("running without history: %s", exc)
        return NullHistory(reason=f"running without history: {exc}")
