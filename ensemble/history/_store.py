"""The local history database: every run recorded, the user's feedback, and the learned weights read back.

What the user gets: CodeConductor remembers, per model, how fast it answered, whether it agreed with the
ensemble, passed the examples and the user's tests, and whether the user applied its suggestion, and uses that to
weigh the models in the next consensus and to skip models that cannot meet a tight deadline. Nothing of the
user's code is stored unless ``settings.store_code``.

The store's SQL is written once, for any storage backend (:mod:`._backend`): by default one SQLite file per user
(:mod:`._sqlite`), or a team's shared PostgreSQL database (:mod:`._postgres`). Every write is one transaction.
"""

from __future__ import annotations

import csv
import enum
import json
import logging
import statistics
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

import platformdirs

from ..consensus.gate import NO_CHANGE, UNSAFE
from ..errors import HistoryDatabaseError, HistoryError
from ..reliability import clamp_weight, prior_for, priors_for
from ..settings import Settings
from ..types import AnswerStatus, ConsensusResult, ModelAnswer, ModelInfo, Result, TaskKind
from ._backend import Backend
from ._evidence import DEFAULT_EVIDENCE, Evidence, EvidenceWeights, Posterior, task_posterior
from ._schema import SCHEMA_VERSION
from ._sqlite import SQLiteBackend

__all__ = [
    "FeedbackAction",
    "History",
    "HistoryLike",
    "ModelStats",
    "NullHistory",
    "default_history_path",
    "move_aside",
]

log = logging.getLogger(__name__)


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

_EVIDENCE_SQL = "SELECT model_name, task, kind, n FROM evidence WHERE model_name IN ({names})"
# The tables History deletes from on a reset, children first.
_TABLES = ("feedback", "answers", "runs", "evidence")
_RUN_COLUMNS = (
    "id", "started_at", "task", "wall_s", "kind", "method", "asked", "answered", "agree", "confidence",
    "request_json", "pick",
)  # fmt: skip
# Recording a run again replaces its row (an upsert both SQLite and PostgreSQL read).
_UPSERT_RUN = (
    f"INSERT INTO runs VALUES ({', '.join('?' * len(_RUN_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _RUN_COLUMNS[1:])
)
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
    """The history, in the storage backend given (default: the user's SQLite file). Safe to share between threads;
    open one per process.

    ``path`` wins over ``settings.history_path``, which wins over :func:`default_history_path`. Raises
    :class:`~codeconductor.ensemble.errors.HistoryError` when the database cannot be opened as a history database.
    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        settings: Settings | None = None,
        evidence: EvidenceWeights = DEFAULT_EVIDENCE,
        busy_timeout_s: float = 10.0,
        backend: Backend | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.evidence = evidence
        if backend is None:
            chosen = path if path is not None else self.settings.history_path
            backend = SQLiteBackend(
                Path(chosen).expanduser() if chosen is not None else default_history_path(),
                busy_timeout_s=busy_timeout_s,
            )
        self.backend = backend
        self.path = Path(backend.location)  # what messages and the dashboard name (a URL: without its password)
        self.migrated_from = backend.migrated_from
        self._lock = threading.RLock()

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            self.backend.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------------------------

    def record(self, result: Result) -> None:
        """Record one run. Never raises: a history that cannot be written must not break the run (logged)."""
        try:
            self._record(result)
        except HistoryError as exc:
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
            # In one global order (model name first), so that writers sharing a database bump the evidence counters
            # in the same order and queue behind each other instead of deadlocking.
            for a in sorted(result.answers, key=lambda a: (a.model.name, a.model.endpoint, a.sample))
        ]
        db = self.backend

        def write() -> None:
            # Recording the same run twice replaces it. Its answers and feedback are deleted and re-added around the
            # run row (rather than overwritten) so the evidence triggers move their counts with it.
            feedback = db.execute("SELECT * FROM feedback WHERE run_id = ?", (result.id,))
            if feedback:
                db.execute("DELETE FROM feedback WHERE run_id = ?", (result.id,))
            db.execute("DELETE FROM answers WHERE run_id = ?", (result.id,))
            db.execute(_UPSERT_RUN, run_row)
            db.executemany(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                answer_rows,
            )
            db.executemany("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?)", feedback)

        self.backend.write(f"run {result.id}", write)

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
        db = self.backend

        def write() -> None:
            targets: list[tuple[str, str, int]] = []
            for member in model_ids:
                model_id, sample = _split_member(member)
                name, endpoint = _split_model_id(model_id)
                targets.append((name, endpoint, -1 if sample is None else sample))
            if not model_ids:
                rows = db.execute(
                    "SELECT DISTINCT model_name, endpoint FROM answers WHERE run_id = ? AND status = 'answered' "
                    "AND (joined = 1 OR (joined IS NULL AND (SELECT answered FROM runs WHERE id = ?) = 1))",
                    (result_id, result_id),
                )
                targets = [(name, endpoint, -1) for name, endpoint in rows]
            if not db.execute("SELECT 1 FROM runs WHERE id = ?", (result_id,)):
                # Feedback on a run that was not recorded (history was off): nothing to attach it to.
                log.info("history: feedback for unknown run %s ignored", result_id)
                return
            for name, endpoint, sample in targets:
                # The latest action replaces earlier ones: for one sample, or (sample -1) for all of them.
                db.execute(
                    "DELETE FROM feedback WHERE run_id = ? AND model_name = ? AND endpoint = ? AND kind = ? "
                    "AND (? = -1 OR sample IN (-1, ?))",
                    (result_id, name, endpoint, kind, sample, sample),
                )
                db.execute(
                    "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (result_id, name, endpoint, sample, kind, str(parsed), when),
                )

        try:
            self.backend.write(f"feedback on {result_id}", write)
        except HistoryDatabaseError as exc:
            raise HistoryError(f"could not record feedback for run {result_id}: {exc}") from exc

    def reset(self) -> None:
        """Delete every recorded run and all feedback, for everyone who shares the database (its schema stays)."""
        db = self.backend

        def delete_all() -> None:
            for table in _TABLES:
                db.execute(f"DELETE FROM {table}")

        try:
            db.write("reset", delete_all)
            db.compact()
        except HistoryDatabaseError as exc:
            raise HistoryError(f"could not reset history {db.location}: {exc}") from exc

    # -- learned weights ---------------------------------------------------------------------------------------

    def _evidence(self, names: Iterable[str]) -> dict[str, dict[str, Evidence]]:
        # The evidence table is kept in step with answers and feedback by triggers (see _schema), so this is one
        # small indexed read however long the history is.
        out: dict[str, dict[str, Evidence]] = {}
        wanted = sorted(set(names))
        if not wanted:
            return out
        rows = self.backend.execute(_EVIDENCE_SQL.format(names=", ".join("?" * len(wanted))), wanted)
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
        except HistoryError as exc:
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
        except HistoryError as exc:
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
        rows = self.backend.execute(
            "SELECT a.status, a.latency_s, r.started_at FROM answers a JOIN runs r ON r.id = a.run_id "
            "WHERE a.model_name = ? AND a.endpoint = ? AND a.status IN ('answered', 'timeout', 'failed') "
            "ORDER BY r.started_at DESC LIMIT ?",
            (model.name, model.endpoint, limit),
        )
        return [(str(s), None if lat is None else float(lat), float(t)) for s, lat, t in rows]

    def expected_latency(self, model: ModelInfo, *, recent: int = 20) -> float | None:
        """Median latency (s) of the model's last ``recent`` answers on this endpoint; None without data.
        The median, so the one run that loaded the model into memory does not dominate."""
        try:
            rows = self._recent(model, recent * 3)
        except HistoryError:
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
        except HistoryError:
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
        return self.backend.query(sql, params)

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
        return int(self.backend.execute("SELECT COUNT(*) FROM runs")[0][0])

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
        except (HistoryDatabaseError, OSError) as exc:
            raise HistoryError(f"could not export history to {target}: {exc}") from exc

    def _fetch(self, sql: str) -> list[dict[str, Any]]:
        return self.backend.query(sql)

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
