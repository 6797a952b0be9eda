"""The local history database: every run recorded, the user's feedback, and the learned weights read back.

What the user gets: CodeConductor remembers, per model, how fast it answered, whether it agreed with the
ensemble, passed the examples and the user's tests, and whether the user applied its suggestion, and uses that to
weigh the models in the next consensus and to skip models that cannot meet a tight deadline. Nothing of the
user's code is stored unless ``settings.store_code``.

Storage is one SQLite file in WAL mode (``synchronous=NORMAL``: a committed run survives the process being killed;
readers never block the writer). Several processes (the language server, a CLI) may write at once: every write is
one short ``BEGIN IMMEDIATE`` transaction and waits up to ``busy_timeout_s`` for the other.
"""

from __future__ import annotations

import csv
import enum
import json
import logging
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import platformdirs

from ..consensus.gate import NO_CHANGE, UNSAFE
from ..errors import HistoryCorruptError, HistoryError
from ..reliability import clamp_weight, prior_for, priors_for
from ..settings import Settings
from ..types import AnswerStatus, ConsensusResult, ModelAnswer, ModelInfo, Result, TaskKind
from ._evidence import DEFAULT_EVIDENCE, Evidence, EvidenceWeights, Posterior, task_posterior
from ._schema import SCHEMA_VERSION, migrate

__all__ = [
    "FeedbackAction",
    "History",
    "HistoryLike",
    "ModelStats",
    "NullHistory",
    "default_history_path",
    "is_corruption",
    "move_aside",
    "open_history",
]

log = logging.getLogger(__name__)


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


@runtime_checkable
class HistoryLike(Protocol):
    """What a run needs from a history: learned weights and the models to leave out before it, a record after it.
    :class:`History` (and the team's PostgreSQL one) and :class:`NullHistory` are histories."""

    def weights(self, task: TaskKind, models: Sequence[ModelInfo]) -> Mapping[str, float]:
        """Learned reliability in (0, 1] per model id, for ``task``; a model it knows nothing of may be absent
        (the caller then uses its prior, :func:`codeconductor.ensemble.reliability.prior_for`)."""
        ...

    def skip_reason(self, model: ModelInfo, deadline_s: float) -> str | None:
        """Why ``model`` would only burn a run's ``deadline_s`` (None: ask it)."""
        ...

    def record(self, result: Result) -> None:
        """Store the outcome of one run."""
        ...


class FeedbackAction(enum.StrEnum):
    """What the user did with a suggestion (``applied``/``changed``/``rejected``) or what their tests said."""

    APPLIED = "applied"
    CHANGED = "changed"
    REJECTED = "rejected"
    TESTS_PASSED = "tests_passed"
    TESTS_FAILED = "tests_failed"

    @classmethod
    def parse(cls, value: str | FeedbackAction) -> FeedbackAction:
        """Accept the enum, its value, or a common synonym (``accepted``, ``edited``, ``dismissed``...)."""
        if isinstance(value, FeedbackAction):
            return value
        key = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        found = _FEEDBACK_SYNONYMS.get(key)
        if found is None:
            try:
                return cls(key)
            except ValueError as exc:
                raise HistoryError(f"unknown feedback action {value!r}") from exc
        return found


_FEEDBACK_SYNONYMS = {
    "accept": FeedbackAction.APPLIED,
    "accepted": FeedbackAction.APPLIED,
    "apply": FeedbackAction.APPLIED,
    "edit": FeedbackAction.CHANGED,
    "edited": FeedbackAction.CHANGED,
    "modified": FeedbackAction.CHANGED,
    "reject": FeedbackAction.REJECTED,
    "dismiss": FeedbackAction.REJECTED,
    "dismissed": FeedbackAction.REJECTED,
    "tests_pass": FeedbackAction.TESTS_PASSED,
    "tests_fail": FeedbackAction.TESTS_FAILED,
}


@dataclass(frozen=True)
class ModelStats:
    """One model's record, as shown by ``codeconductor stats``. Rates are ``None`` when nothing was measured."""

    name: str
    endpoints: list[str]
    attempts: int  # answered + timeout + failed (cancelled/skipped not counted)
    answered: int
    timeouts: int
    errors: int
    success_rate: float | None  # answered / attempts
    agreement_rate: float | None  # joined the pick's cluster / answers where that was decidable
    examples_pass_rate: float | None
    tests_pass_rate: float | None
    applied_rate: float | None  # applied or changed / suggestions the user acted on
    latency_p50_s: float | None
    latency_p95_s: float | None
    weight: float  # overall learned reliability (all task kinds)
    weight_sd: float
    last_used: float | None  # unix seconds

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_history_path() -> Path:
    """``<user data dir>/codeconductor/history.sqlite3`` (platformdirs)."""
    return Path(platformdirs.user_data_dir("codeconductor", appauthor=False)) / "history.sqlite3"


# One row per answer, with the user's latest feedback and test outcome for it. Feedback with sample -1 applies to
# every sample of that model in the run.
_ANSWER_ROWS = """
SELECT a.model_name, a.endpoint, r.task, r.started_at, a.status, a.latency_s, a.joined, a.examples_passed,
       (SELECT f.action FROM feedback f WHERE f.run_id = a.run_id AND f.model_name = a.model_name
            AND f.endpoint = a.endpoint AND f.sample IN (-1, a.sample) AND f.kind = 'user'
            ORDER BY f.at DESC LIMIT 1) AS user_action,
       (SELECT f.action FROM feedback f WHERE f.run_id = a.run_id AND f.model_name = a.model_name
            AND f.endpoint = a.endpoint AND f.sample IN (-1, a.sample) AND f.kind = 'tests'
            ORDER BY f.at DESC LIMIT 1) AS tests_action
FROM answers a JOIN runs r ON r.id = a.run_id
"""

_EVIDENCE_SQL = "SELECT model_name, task, kind, n FROM evidence WHERE model_name IN (SELECT value FROM json_each(?))"
_EVIDENCE_FIELDS = frozenset(f.name for f in fields(Evidence))


def _split_member(member: str) -> tuple[str, int | None]:
    """``name@endpoint#3`` -> (``name@endpoint``, 3); no suffix -> sample None."""
    base, sep, tail = member.rpartition("#")
    if sep and tail.isdigit():
        return base, int(tail)
    return member, None


def _split_model_id(model_id: str) -> tuple[str, str]:
    name, sep, endpoint = model_id.rpartition("@")
    return (name, endpoint) if sep else (model_id, "")


def _answer_keys(answer: ModelAnswer) -> set[str]:
    return {answer.model_id, f"{answer.model_id}#{answer.sample}"}


def _joined(answer: ModelAnswer, consensus: ConsensusResult) -> int | None:
    """1: the answer joined the consensus, 0: it was outvoted, None: not decidable (one answer, no pick...)."""
    if answer.status is not AnswerStatus.ANSWERED or consensus.answered < 2:
        return None
    keys = _answer_keys(answer)
    if consensus.kind in ("code", "text"):
        if not consensus.pick:
            return None
        pick_members = set(consensus.pick_models)
        if consensus.clusters:
            pick_members.update(consensus.clusters[0].members)
        return int(bool(keys & pick_members))
    if consensus.kind == "findings":
        # For reviews, "joining" means reporting at least one finding another model confirmed.
        confirmed = {m for f in consensus.findings if f.support >= 2 for m in f.models}
        if not confirmed:
            return None
        return int(bool(keys & confirmed))
    return None


def _examples_passed(answer: ModelAnswer, consensus: ConsensusResult) -> int | None:
    keys = _answer_keys(answer)
    for cluster in consensus.clusters:
        if keys & set(cluster.members):
            if cluster.rejected is not None and cluster.rejected.startswith(UNSAFE):
                return 0  # it tried what no code edit needs: counted against its model, examples or not
            if cluster.passes_examples is None or cluster.rejected == NO_CHANGE:
                return None
            # An answer the trust gate refused (it broke the user's code) did not pass, whatever its examples say.
            return int(cluster.passes_examples and cluster.rejected is None)
    return None


def _percentile(sorted_values: Sequence[float], q: float) -> float | None:
    if not sorted_values:
        return None
    if len(sorted_values) == 1:
        return sorted_values[0]
    # statistics.quantiles with the inclusive method interpolates between the observed values.
    cuts = statistics.quantiles(sorted_values, n=100, method="inclusive")
    return cuts[round(q * 100) - 1]


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


class History:
    """The SQLite history. Safe to share between threads; open one per process.

    ``path`` wins over ``settings.history_path``, which wins over :func:`default_history_path`. Raises
    :class:`~codeconductor.ensemble.errors.HistoryError` when the file cannot be opened as a history database.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        settings: Settings | None = None,
        evidence: EvidenceWeights = DEFAULT_EVIDENCE,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self.settings = settings or Settings()
        self.evidence = evidence
        chosen = path if path is not None else self.settings.history_path
        self.path = Path(chosen).expanduser() if chosen is not None else default_history_path()
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: we issue BEGIN IMMEDIATE / COMMIT ourselves, so writes take the lock up front
            # (no deadlock-prone read-to-write upgrades between processes).
            self._conn = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.Error) as exc:
            raise HistoryError(f"cannot open history database {self.path}: {exc}") from exc
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            _switch_to_wal(self._conn, busy_timeout_s)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self.migrated_from = migrate(self._conn)
            # Garbage in the middle of the file opens fine and fails later, page by page: look once, up front.
            problems = [str(row[0]) for row in self._conn.execute("PRAGMA quick_check(3)").fetchall()]
            if problems != ["ok"]:
                log.warning("history: %s failed its integrity check: %s", self.path, "; ".join(problems))
                raise HistoryCorruptError(self.path)
        except sqlite3.Error as exc:
            self._conn.close()
            if is_corruption(exc):
                raise HistoryCorruptError(self.path) from exc
            raise HistoryError(f"cannot use history database {self.path}: {exc}") from exc
        except HistoryError:
            self._conn.close()
            raise

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- writing -----------------------------------------------------------------------------------------------

    def record(self, result: Result) -> None:
        """Record one run. Never raises: a history that cannot be written must not break the run (logged)."""
        try:
            self._record(result)
        except (sqlite3.Error, HistoryError) as exc:
            log.warning("history: could not record run %s: %s", result.id, exc)

    def _record(self, result: Result) -> None:
        c = result.consensus
        store = self.settings.store_code
        run_row = (
            result.id,
            result.started_at.timestamp(),
            str(result.request.task),
            result.wall_s,
            "no_edit" if c.no_edit else c.kind,  # an honest "your code is unchanged" is an outcome of its own
            c.method,
            c.asked,
            c.answered,
            c.agree,
            c.confidence,
            result.request.model_dump_json() if store else None,
            c.pick if store else None,
        )
        answer_rows = [
            (
                result.id,
                a.model.name,
                a.model.endpoint,
                str(a.model.provider),
                a.sample,
                str(a.status),
                a.reason,
                a.latency_s,
                a.queue_s,
                a.load_s,
                a.tokens_in,
                a.tokens_out,
                _joined(a, c),
                _examples_passed(a, c),
                a.text if store else None,
            )
            for a in result.answers
        ]
        with self._write() as conn:
            # Recording the same run twice replaces it. Its answers and feedback are deleted and re-added around the
            # run row (rather than overwritten) so the evidence triggers move their counts with it.
            feedback = conn.execute("SELECT * FROM feedback WHERE run_id = ?", (result.id,)).fetchall()
            if feedback:
                conn.execute("DELETE FROM feedback WHERE run_id = ?", (result.id,))
            conn.execute("DELETE FROM answers WHERE run_id = ?", (result.id,))
            conn.execute("INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", run_row)
            conn.executemany(
                "INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", answer_rows
            )
            conn.executemany("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?)", feedback)

    def record_feedback(
        self, result_id: str, model_ids: Sequence[str], action: str | FeedbackAction, *, at: float | None = None
    ) -> None:
        """Record what the user did with run ``result_id``'s suggestion from ``model_ids`` (ids as in
        ``Result.consensus.pick_models``, ``#sample`` suffix allowed; empty: the models that joined the pick).

        ``action``: ``applied``, ``changed``, ``rejected``, ``tests_passed`` or ``tests_failed`` (synonyms such as
        ``accepted``/``edited``/``dismissed`` accepted). A later action for the same model replaces the earlier.
        Feedback on a run the history does not hold (recorded with history off) is ignored.
        Raises :class:`~codeconductor.ensemble.errors.HistoryError` for an unknown action or an unwritable database.
        """
        parsed = FeedbackAction.parse(action)
        kind = "tests" if parsed in (FeedbackAction.TESTS_PASSED, FeedbackAction.TESTS_FAILED) else "user"
        when = time.time() if at is None else at
        try:
            with self._write() as conn:
                targets: list[tuple[str, str, int]] = []
                for member in model_ids:
                    model_id, sample = _split_member(member)
                    name, endpoint = _split_model_id(model_id)
                    targets.append((name, endpoint, -1 if sample is None else sample))
                if not model_ids:
                    rows = conn.execute(
                        "SELECT DISTINCT model_name, endpoint FROM answers WHERE run_id = ? AND status = 'answered' "
                        "AND (joined = 1 OR (joined IS NULL AND (SELECT answered FROM runs WHERE id = ?) = 1))",
                        (result_id, result_id),
                    ).fetchall()
                    targets = [(name, endpoint, -1) for name, endpoint in rows]
                if conn.execute("SELECT 1 FROM runs WHERE id = ?", (result_id,)).fetchone() is None:
                    # Feedback on a run that was not recorded (history was off): nothing to attach it to.
                    log.info("history: feedback for unknown run %s ignored", result_id)
                    return
                for name, endpoint, sample in targets:
                    # The latest action replaces earlier ones: for one sample, or (sample -1) for all of them.
                    conn.execute(
                        "DELETE FROM feedback WHERE run_id = ? AND model_name = ? AND endpoint = ? AND kind = ? "
                        "AND (? = -1 OR sample IN (-1, ?))",
                        (result_id, name, endpoint, kind, sample, sample),
                    )
                    conn.execute(
                        "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (result_id, name, endpoint, sample, kind, str(parsed), when),
                    )
        except sqlite3.Error as exc:
            raise HistoryError(f"could not record feedback for run {result_id}: {exc}") from exc

    def reset(self) -> None:
        """Delete every recorded run and all feedback (the file and its schema stay)."""
        try:
            with self._write() as conn:
                conn.execute("DELETE FROM feedback")
                conn.execute("DELETE FROM answers")
                conn.execute("DELETE FROM runs")
                conn.execute("DELETE FROM evidence")
            with self._lock:
                # Give the space back and drop the deleted pages from the WAL, so "reset" also forgets on disk.
                self._conn.execute("VACUUM")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            raise HistoryError(f"could not reset history {self.path}: {exc}") from exc

    # -- learned weights ---------------------------------------------------------------------------------------

    def _evidence(self, names: Iterable[str]) -> dict[str, dict[str, Evidence]]:
        # The evidence table is kept in step with answers and feedback by triggers (see _schema), so this is one
        # small indexed read however long the history is.
        out: dict[str, dict[str, Evidence]] = {}
        with self._lock:
            rows = self._conn.execute(_EVIDENCE_SQL, (json.dumps(sorted(set(names))),)).fetchall()
        for name, task, kind, count in rows:
            if kind in _EVIDENCE_FIELDS:
                evidence = out.setdefault(name, {}).setdefault(task, Evidence())
                setattr(evidence, kind, float(count))
        return out

    def _prior(self, name: str, parameter_size: str | None = None) -> float:
        return prior_for(name, self.settings.model_weights, parameter_size)

    def posterior(self, name: str, task: TaskKind | str | None = None) -> Posterior:
        """The reliability posterior of model ``name`` on ``task`` (None: across all task kinds)."""
        try:
            per_task = self._evidence([name]).get(name, {})
        except sqlite3.Error as exc:
            log.warning("history: cannot read evidence for %s: %s", name, exc)
            per_task = {}
        return self._posterior(name, per_task, None if task is None else str(task))

    def _posterior(
        self,
        name: str,
        per_task: Mapping[str, Evidence],
        task: str | None,
        parameter_size: str | None = None,
        prior: float | None = None,
    ) -> Posterior:
        total = sum(per_task.values(), Evidence())
        on_task = per_task.get(task, Evidence()) if task is not None else total
        other = total - on_task
        start = self._prior(name, parameter_size) if prior is None else prior
        return task_posterior(start, on_task, other, self.evidence)

    def weights(self, task: TaskKind, models: Sequence[ModelInfo]) -> dict[str, float]:
        """Model id -> learned reliability in (0, 1] for ``task``. Keyed by model name internally, so one model
        served by two endpoints shares its reliability. Falls back to the priors when the database cannot be read."""
        try:
            evidence = self._evidence(m.name for m in models)
        except sqlite3.Error as exc:
            log.warning("history: cannot read weights, using priors: %s", exc)
            evidence = {}
        # The same priors as without a history (an unknown model among known ones: their median).
        priors = priors_for(models, self.settings.model_weights)
        return {
            m.id: clamp_weight(
                self._posterior(m.name, evidence.get(m.name, {}), str(task), m.parameter_size, priors[m.name]).mean
            )
            for m in models
        }

    # -- latency and skipping ----------------------------------------------------------------------------------

    def _recent(self, model: ModelInfo, limit: int) -> list[tuple[str, float | None, float]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT a.status, a.latency_s, r.started_at FROM answers a JOIN runs r ON r.id = a.run_id "
                "WHERE a.model_name = ? AND a.endpoint = ? AND a.status IN ('answered', 'timeout', 'failed') "
                "ORDER BY r.started_at DESC LIMIT ?",
                (model.name, model.endpoint, limit),
            ).fetchall()
        return [(str(s), None if lat is None else float(lat), float(t)) for s, lat, t in rows]

    def expected_latency(self, model: ModelInfo, *, recent: int = 20) -> float | None:
        """Median latency (s) of the model's last ``recent`` answers on this endpoint; None without data.
        The median, so the one run that loaded the model into memory does not dominate."""
        try:
            rows = self._recent(model, recent * 3)
        except sqlite3.Error:
            return None
        latencies = [lat for status, lat, _ in rows if status == "answered" and lat is not None][:recent]
        return statistics.median(latencies) if latencies else None

    def skip_reason(
        self,
        model: ModelInfo,
        deadline_s: float,
        *,
        now: float | None = None,
        failing_streak: int = 3,
        retry_after_s: float = 300.0,
        stale_after_s: float = 86400.0,
    ) -> str | None:
        """Why the dispatcher should not ask ``model`` under ``deadline_s`` (None: ask it).

        * it failed or timed out on each of its last ``failing_streak`` attempts here, the latest less than
          ``retry_after_s`` ago (after that it gets another chance, so a fixed server is noticed);
        * its median latency over at least 3 recent answers exceeds ``deadline_s`` (ignored once its last answer is
          older than ``stale_after_s``: the hardware or the model may have changed).
        """
        now = time.time() if now is None else now
        try:
            rows = self._recent(model, max(failing_streak, 60))
        except sqlite3.Error:
            return None
        streak = rows[:failing_streak]
        if (
            len(streak) == failing_streak
            and all(status != "answered" for status, _, _ in streak)
            and now - streak[0][2] < retry_after_s
        ):
            return f"its last {failing_streak} attempts timed out or failed"
        answered = [(lat, t) for status, lat, t in rows if status == "answered" and lat is not None][:20]
        if len(answered) >= 3 and now - answered[0][1] < stale_after_s:
            median = statistics.median(lat for lat, _ in answered)
            if median > deadline_s:
                return f"its median latency {median:.1f}s exceeds the {deadline_s:.1f}s deadline"
        return None

    def should_skip(self, model: ModelInfo, deadline_s: float) -> bool:
        """True when history says ``model`` would only waste the run's deadline (see :meth:`skip_reason`)."""
        return self.skip_reason(model, deadline_s) is not None

    # -- reading for stats -------------------------------------------------------------------------------------

    def answer_rows(self, *, task: TaskKind | str | None = None, since: float | None = None) -> list[dict[str, Any]]:
        """Every recorded answer (oldest first) with its run's task/time and the user's feedback on it."""
        where: list[str] = []
        params: list[str | float] = []
        if task is not None:
            where.append("r.task = ?")
            params.append(str(task))
        if since is not None:
            where.append("r.started_at >= ?")
            params.append(since)
        sql = _ANSWER_ROWS + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.started_at"
        with self._lock:
            cur = self._conn.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def model_stats(self, *, task: TaskKind | str | None = None, since: float | None = None) -> list[ModelStats]:
        """One :class:`ModelStats` per model name seen, best weight first."""
        by_name: dict[str, list[dict[str, Any]]] = {}
        for row in self.answer_rows(task=task, since=since):
            by_name.setdefault(row["model_name"], []).append(row)
        evidence = self._evidence(by_name)
        out = []
        for name, rows in by_name.items():
            attempts = [r for r in rows if r["status"] in ("answered", "timeout", "failed")]
            answered = [r for r in rows if r["status"] == "answered"]
            decided = [r for r in answered if r["joined"] is not None]
            examples = [r for r in rows if r["examples_passed"] is not None]
            tests = [r for r in rows if r["tests_action"] is not None]
            acted = [r for r in rows if r["user_action"] is not None]
            latencies = sorted(float(r["latency_s"]) for r in answered if r["latency_s"] is not None)
            post = self._posterior(name, evidence.get(name, {}), None if task is None else str(task))
            out.append(
                ModelStats(
                    name=name,
                    endpoints=sorted({r["endpoint"] for r in rows}),
                    attempts=len(attempts),
                    answered=len(answered),
                    timeouts=sum(r["status"] == "timeout" for r in rows),
                    errors=sum(r["status"] == "failed" for r in rows),
                    success_rate=_rate(len(answered), len(attempts)),
                    agreement_rate=_rate(sum(r["joined"] == 1 for r in decided), len(decided)),
                    examples_pass_rate=_rate(sum(r["examples_passed"] == 1 for r in examples), len(examples)),
                    tests_pass_rate=_rate(sum(r["tests_action"] == "tests_passed" for r in tests), len(tests)),
                    applied_rate=_rate(sum(r["user_action"] in ("applied", "changed") for r in acted), len(acted)),
                    latency_p50_s=_percentile(latencies, 0.50),
                    latency_p95_s=_percentile(latencies, 0.95),
                    weight=clamp_weight(post.mean),
                    weight_sd=post.sd,
                    last_used=max(float(r["started_at"]) for r in rows),
                )
            )
        out.sort(key=lambda s: (-s.weight, s.name))
        return out

    def latency_series(
        self, *, task: TaskKind | str | None = None, since: float | None = None
    ) -> dict[str, list[tuple[float, float]]]:
        """Model name -> [(unix time, latency s)] of its answered runs, oldest first (the dashboard's plot)."""
        out: dict[str, list[tuple[float, float]]] = {}
        for row in self.answer_rows(task=task, since=since):
            if row["status"] == "answered" and row["latency_s"] is not None:
                out.setdefault(row["model_name"], []).append((float(row["started_at"]), float(row["latency_s"])))
        return out

    def task_weights(self, names: Sequence[str]) -> dict[str, dict[str, float]]:
        """Model name -> task kind -> learned weight, for every task kind (the dashboard's heat map)."""
        evidence = self._evidence(names)
        return {
            name: {str(t): clamp_weight(self._posterior(name, evidence.get(name, {}), str(t)).mean) for t in TaskKind}
            for name in names
        }

    def run_count(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    # -- export ------------------------------------------------------------------------------------------------

    def export(self, path: str | Path, fmt: str | None = None) -> int:
        """Write the whole history to ``path`` as JSON (runs with nested answers and feedback) or CSV (one row
        per answer); ``fmt`` defaults to the file suffix. Returns the number of runs (JSON) or answers (CSV)."""
        target = Path(path)
        kind = (fmt or target.suffix.lstrip(".") or "json").lower()
        if kind not in ("json", "csv"):
            raise HistoryError(f"cannot export history as {kind!r}: use .json or .csv")
        try:
            with self._lock:
                if kind == "csv":
                    return self._export_csv(target)
                return self._export_json(target)
        except (sqlite3.Error, OSError) as exc:
            raise HistoryError(f"could not export history to {target}: {exc}") from exc

    def _fetch(self, sql: str) -> list[dict[str, Any]]:
        cur = self._conn.execute(sql)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def _export_json(self, target: Path) -> int:
        runs = self._fetch("SELECT * FROM runs ORDER BY started_at")
        answers: dict[str, list[dict[str, Any]]] = {}
        for row in self._fetch("SELECT * FROM answers ORDER BY run_id, model_name, endpoint, sample"):
            answers.setdefault(row.pop("run_id"), []).append(row)
        feedback: dict[str, list[dict[str, Any]]] = {}
        for row in self._fetch("SELECT * FROM feedback ORDER BY at"):
            feedback.setdefault(row.pop("run_id"), []).append(row)
        for run in runs:
            run["started_at_iso"] = datetime.fromtimestamp(run["started_at"], UTC).isoformat()
            run["answers"] = answers.get(run["id"], [])
            run["feedback"] = feedback.get(run["id"], [])
        doc = {"schema_version": SCHEMA_VERSION, "exported_at": datetime.now(UTC).isoformat(), "runs": runs}
        target.write_text(json.dumps(doc, indent=1), encoding="utf-8")
        return len(runs)

    def _export_csv(self, target: Path) -> int:
        rows = self._fetch(
            _ANSWER_ROWS.replace(
                "SELECT a.model_name,",
                "SELECT a.run_id, r.confidence, a.sample, a.reason, a.tokens_in, a.tokens_out, a.model_name,",
                1,
            )
            + " ORDER BY r.started_at"
        )
        with target.open("w", newline="", encoding="utf-8") as fh:
            fields = [
                "run_id",
                "started_at",
                "task",
                "model_name",
                "endpoint",
                "sample",
                "status",
                "reason",
                "latency_s",
                "tokens_in",
                "tokens_out",
                "joined",
                "examples_passed",
                "tests_action",
                "user_action",
                "confidence",
            ]
            writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                row["started_at"] = datetime.fromtimestamp(row["started_at"], UTC).isoformat()
                writer.writerow(row)
        return len(rows)


class NullHistory:
    """The history when there is none (``settings.history`` off, the database unusable, or nobody gave one): it
    records nothing and knows nothing, so every model gets its prior and none is skipped."""

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason  # why there is no history although the settings asked for one (shown to the user)

    def weights(self, task: TaskKind, models: Sequence[ModelInfo]) -> dict[str, float]:
        return {}

    def record(self, result: Result) -> None:
        return None

    def record_feedback(
        self, result_id: str, model_ids: Sequence[str], action: str | FeedbackAction, *, at: float | None = None
    ) -> None:
        FeedbackAction.parse(action)  # still reject nonsense, so callers find their bugs with history off

    def expected_latency(self, model: ModelInfo, *, recent: int = 20) -> float | None:
        return None

    def skip_reason(self, model: ModelInfo, deadline_s: float, **_: Any) -> str | None:
        return None

    def should_skip(self, model: ModelInfo, deadline_s: float) -> bool:
        return False

    def close(self) -> None:
        return None


def is_corruption(exc: BaseException) -> bool:
    """Whether an SQLite error says the file is damaged (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def move_aside(path: str | Path) -> Path:
    """Rename a damaged history file (and its ``-wal``/``-shm`` companions) to ``<name>.corrupt-<time>``, so the
    next run starts a new one and nothing is deleted. Returns the new path of the database file."""
    source = Path(path).expanduser()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = source.with_name(f"{source.name}.corrupt-{stamp}")
    for suffix in ("-wal", "-shm"):
        companion = source.with_name(source.name + suffix)
        if companion.exists():
            companion.rename(target.with_name(target.name + suffix))
    source.rename(target)
    return target


def open_history(settings: Settings) -> History | NullHistory:
    """The history the settings ask for; a :class:`NullHistory` (logged, with ``reason``) when it is off or cannot
    be opened, so runs go on without it."""
    if not settings.history:
        return NullHistory()
    if settings.history_url:  # the team's shared PostgreSQL history (codeconductor.ensemble.history._postgres)
        from ._postgres import open_postgres_history

        return open_postgres_history(settings)
    try:
        return History(settings=settings)
    except HistoryError as exc:
        log.warning("running without history: %s", exc)
        return NullHistory(reason=f"running without history: {exc}")
