"""Per-model performance history: every run recorded locally, learned reliability weights read back.

What the user gets: the ensemble learns which of *their* models to trust for which kind of task (and which are
too slow for a tight deadline) from their own runs and feedback, kept in a local SQLite file
(``settings.history_path``, default ``<user data dir>/codeconductor/history.sqlite3``). Code is stored only with
``settings.store_code``. ``codeconductor stats`` (:mod:`codeconductor.cli.stats`) shows, exports and resets it;
:func:`render_report` is its HTML dashboard, for the CLI and the editor alike.

* :class:`History` — the store: :meth:`~History.record`, :meth:`~History.record_feedback`,
  :meth:`~History.weights`, :meth:`~History.should_skip` / :meth:`~History.expected_latency`, stats and export.
* :func:`open_history` — the history the settings ask for (a :class:`NullHistory` when off or unusable).
* :class:`HistoryLike` — what a run needs of a history (:class:`History`, :class:`NullHistory`).
* :mod:`codeconductor.ensemble.history._evidence` documents how evidence becomes a weight (Beta posterior).
* The store reaches its database through a small storage backend (:mod:`codeconductor.ensemble.history._backend`):
  SQLite (:mod:`._sqlite`, the default) or the team's PostgreSQL (:mod:`._postgres`); both raise the project's
  errors (:class:`~codeconductor.ensemble.errors.HistoryDatabaseError`, :class:`~codeconductor.ensemble.errors.HistoryCorruptError`).
"""

from __future__ import annotations

from ..reliability import prior_for
from ._evidence import DEFAULT_EVIDENCE, Evidence, EvidenceWeights, Posterior
from ._open import open_history
from ._report import render_report
from ._schema import SCHEMA_VERSION
from ._sqlite import is_corruption
from ._store import (
    FeedbackAction,
    History,
    HistoryLike,
    ModelStats,
    NullHistory,
    default_history_path,
    move_aside,
)

__all__ = [
    "DEFAULT_EVIDENCE",
    "SCHEMA_VERSION",
    "Evidence",
    "EvidenceWeights",
    "FeedbackAction",
    "History",
    "HistoryLike",
    "ModelStats",
    "NullHistory",
    "Posterior",
    "default_history_path",
    "is_corruption",
    "move_aside",
    "open_history",
    "prior_for",
    "render_report",
]
