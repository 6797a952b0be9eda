"""The dispatcher: asks every chosen model at once and keeps an honest record of what each one did.

For the user this is why an ensemble costs about as long as its slowest useful model, not the sum of all of them:
one request fans out to N models (× samples) in parallel, each under its own timeout and all under one overall
deadline. A model that fails, hangs or answers garbage is recorded (status, reason, error text) and the run goes
on without it. Model servers are not overloaded: each endpoint gets at most ``per_endpoint_concurrency`` requests
at once and the rest queue. On a shared host (Ollama) models already in memory go first and models that must be
loaded are loaded one at a time, so they do not evict each other. With a quorum ``k`` the run stops as soon as k
answers agree and the stragglers are cancelled. Cancelling the caller's task cancels every model call at once.

Times in each :class:`~codeconductor.ensemble.types.ModelAnswer`: ``queue_s`` is the wait for the endpoint's slot (and, for a
model that must be loaded, for the host's load turn); ``load_s`` is the load time the server reported; and
``latency_s`` is the rest of the call, i.e. generation time without queueing or loading.

A model served by several replicas (:mod:`codeconductor.ensemble.replicas`) is one member: each of its samples goes to the
replica with the least work ahead of it (our own calls in flight there, plus the server's own queue as
:mod:`codeconductor.ensemble.gateways` reads it), and a call that fails or times out on one replica is asked again of another,
within the run's deadline; ``ModelAnswer.replica`` says which one answered and ``tried`` which failed first. A
replica that cannot be reached is avoided for ``REPLICA_RETRY_S``. A server that reports itself overloaded is asked
last and for one sample only. A gateway's model group (LiteLLM) gets one slot per deployment behind it.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import random
import re
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .errors import ProviderError, ProviderTimeout
from .gateways import LoadMonitor
from .providers.base import Provider
from .providers.registry import provider_spec
from .replicas import replicas_of
from .settings import Settings
from .types import (
    AnswerStatus,
    ChatMessage,
    GenerationParams,
    GenerationResult,
    ModelAnswer,
    ModelInfo,
    ProgressEvent,
)

__all__ = [
    "REPLICA_RETRY_S",
    "SAMPLING_TEMPERATURE",
    "AgreementKey",
    "Dispatcher",
    "MessagesFor",
    "OnProgress",
    "ProgressStatus",
    "ProviderFor",
    "normalized_text_key",
]

logger = logging.getLogger(__name__)

OnProgress = Callable[[ProgressEvent], None]
ProviderFor = Callable[[ModelInfo], Provider]
MessagesFor = Callable[[ModelInfo], Sequence[ChatMessage]]
# Maps an answer's text to what makes two answers "the same" for a quorum; None: this answer cannot vote.
AgreementKey = Callable[[str], Hashable | None]

# A model's extra samples (sample 1, 2, ...) are drawn at least this hot: at a low temperature a small model's
# samples are near copies of its first answer, which costs time and adds no evidence. Sample 0 keeps the run's
# temperature, so a run's first answer is the model's best single guess.
SAMPLING_TEMPERATURE = 0.7
# A replica that could not be reached is not asked again for this long (unless no other replica is left).
REPLICA_RETRY_S = 5.0
# Outcomes after which another replica is NOT worth a try: the request (or the run's budget), not the replica, is
# at fault.
_NO_FAILOVER = frozenset({"budget", "model_error", "http_400", "http_401", "http_403", "http_413", "http_422"})

ProgressStatus = Literal["queued", "loading", "started", "answered", "timeout", "failed", "cancelled", "skipped"]
_FINAL: dict[AnswerStatus, ProgressStatus] = {
    AnswerStatus.ANSWERED: "answered",
    AnswerStatus.TIMEOUT: "timeout",
    AnswerStatus.FAILED: "failed",
    AnswerStatus.CANCELLED: "cancelled",
    AnswerStatus.SKIPPED: "skipped",
}
_Report = Callable[["_Job", ProgressStatus, "str | None"], None]

_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


def normalized_text_key(text: str) -> str | None:
    """Default agreement key: the first fenced code block if there is one (else the whole text), with trailing
    spaces, blank lines and indentation-free differences in line endings ignored. Empty answers do not vote."""
    match = _FENCE.search(text)
    body = match.group(1) if match else text
    lines = [line.rstrip() for line in body.replace("\r\n", "\n").split("\n")]
    key = "\n".join(line for line in lines if line)
    return key or None


class _Phase(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"


@dataclass
class _Job:
    """One (model, sample) call and its state, so a cancelled task can still be reported honestly."""

    model: ModelInfo
    sample: int
    params: GenerationParams
    messages: Sequence[ChatMessage]
    must_load: bool
    deadline: float = math.inf  # perf_counter time the run stops
    phase: _Phase = _Phase.QUEUED
    created: float = field(default_factory=time.perf_counter)
    started: float | None = None
    answer: ModelAnswer | None = None
    replica: ModelInfo | None = None  # the replica being asked now
    tried: list[str] = field(default_factory=list)  # "endpoint: reason" of replicas that failed
    budget: _SampleBudget | None = None  # the time budget of this model's extra samples, if the run has one

    def elapsed(self) -> tuple[float | None, float | None]:
        """(queue_s, running_s) so far."""
        now = time.perf_counter()
        if self.started is None:
            return now - self.created, None
        return self.started - self.created, now - self.started


@dataclass
class _SampleBudget:
    """One model's sampling budget in one run: when the run began, the budget, and how long its samples took."""

    run_start: float
    budget_s: float
    durations: list[float] = field(default_factory=list)  # generation time of each finished sample (no loading)

    def refuses(self, now: float) -> str | None:
        """Why another sample may not start now (None: it may): the elapsed time plus the mean sample time
        would pass the budget."""
        if not self.durations:
            return None
        expected = sum(self.durations) / len(self.durations)
        elapsed = now - self.run_start
        if elapsed + expected <= self.budget_s:
            return None
        return (
            f"not started: {elapsed:.1f} s spent, a sample takes about {expected:.1f} s, "
            f"the sampling budget is {self.budget_s:g} s"
        )


class _Host:
    """Per-endpoint limits: the concurrency slots and the one-at-a-time load turn."""

    def __init__(self, slots: int) -> None:
        self.capacity = slots
        self.slots = asyncio.Semaphore(slots)
        self.load_turn = asyncio.Lock()
        self.warm: set[str] = set()  # models this host has loaded for us
        self.pending = 0  # our calls assigned to this host and not finished (queued or running)
        self.down_until = 0.0  # perf_counter time until which it is avoided (could not be reached)


class Dispatcher:
    """Fans one request out to many models. One instance may serve many runs (their endpoint limits are shared).

    ``provider_for`` gives the provider for a model (``Discovery.provider_for``).
    """

    def __init__(
        self, settings: Settings, provider_for: ProviderFor, *, load_monitor: LoadMonitor | None = None
    ) -> None:
        self._settings = settings
        self._provider_for = provider_for
        self._hosts: dict[str, _Host] = {}
        self._loads = load_monitor

    @property
    def settings(self) -> Settings:
        return self._settings

    def update_settings(self, settings: Settings) -> None:
        """Use new settings from the next run on (limits are rebuilt when the concurrency changes)."""
        if settings.per_endpoint_concurrency != self._settings.per_endpoint_concurrency:
            self._hosts = {}
        self._settings = settings

    def _host(self, model: ModelInfo) -> _Host:
        # In-process models each have their own runtime (and lock), so each is its own "endpoint"; server models
        # share their server; a gateway's model group is its own pool of deployments, one slot set per deployment.
        slots = self._settings.per_endpoint_concurrency
        if provider_spec(model.provider).in_process:
            key = model.id
            slots = 1  # its runtime generates one answer at a time; a sample waits here, where the budget sees it
        elif model.server == "litellm":
            key = model.id
            slots *= max(1, model.deployments or 1)
        else:
            key = model.endpoint
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(slots)
        return host

    def _pressure(self, replica: ModelInfo) -> float:
        """Work ahead of a new call on ``replica``, in slots: ours in flight there plus the server's own queue."""
        host = self._host(replica)
        load = self._loads.load(replica) if self._loads is not None else None
        remote = load.pressure(host.capacity) if load is not None else 0.0
        return host.pending / host.capacity + remote

    def _overloaded(self, model: ModelInfo) -> bool:
        """Every replica of ``model`` says it is overloaded (so it gets one sample, and goes last)."""
        if self._loads is None:
            return False
        loads = [(self._loads.load(r), self._host(r).capacity) for r in replicas_of(model)]
        return all(load is not None and load.overloaded(capacity) for load, capacity in loads)

    def _pick(self, job: _Job) -> ModelInfo | None:
        """The replica to ask next for ``job``: not tried yet, reachable if any is, least work ahead of it. A gateway
        with several deployments may be asked once per deployment (it routes each call anew)."""
        failed = [entry.split(": ", 1)[0] for entry in job.tried]
        left = [r for r in replicas_of(job.model) if failed.count(r.endpoint) < _tries(r)]
        if not left:
            return None
        now = time.perf_counter()
        # random() breaks ties, so that several CodeConductor processes do not all start on the first replica.
        return min(left, key=lambda r: (self._host(r).down_until > now, self._pressure(r), random.random()))

    async def run(
        self,
        models: Sequence[ModelInfo],
        messages_for: MessagesFor,
        *,
        params: GenerationParams | None = None,
        samples: int | Callable[[ModelInfo], int] = 1,
        sample_budget_s: float | None = None,
        quorum: int | None = None,
        agreement_key: AgreementKey = normalized_text_key,
        on_progress: OnProgress | None = None,
    ) -> list[ModelAnswer]:
        """Ask every model in ``models`` ``samples`` times (a number, or one per model); return one answer record
        per (model, sample), in the order of ``models``. Never raises for a model's failure; raises
        ``CancelledError`` if the caller is cancelled (after cancelling every model call).

        ``sample_budget_s``: a model's extra samples (1, 2, ...) start only while the time since the run began
        plus the mean duration of that model's finished samples stays within it; the rest are reported
        ``skipped`` with reason ``budget`` (one model's samples run one after another on a CPU, so the budget is
        what bounds the wait for them)."""
        settings = self._settings
        base = params or GenerationParams.from_settings(settings)
        if self._loads is not None:
            await self._loads.refresh([r for model in models for r in replicas_of(model)])
        jobs = self._plan(models, messages_for, base, samples)
        if sample_budget_s is not None:
            budgets: dict[str, _SampleBudget] = {}
            run_start = time.perf_counter()
            for job in jobs:
                job.budget = budgets.setdefault(job.model.id, _SampleBudget(run_start, sample_budget_s))
        total = len(jobs)
        done = 0

        def report(job: _Job, status: ProgressStatus, detail: str | None = None) -> None:
            if on_progress is None:
                return
            event = ProgressEvent(
                model_id=job.model.id,
                sample=job.sample,
                status=status,
                done=done,
                total=total,
                detail=detail,
            )
            try:
                on_progress(event)
            except Exception:  # a broken progress display must not break the run
                logger.exception("progress callback failed")

        for job in jobs:
            report(job, "queued")
        if not jobs:
            return []

        # Model calls are their own tasks so that a quorum, the deadline or the caller can cancel them.
        deadline = time.perf_counter() + settings.deadline_s
        tasks: dict[asyncio.Task[ModelAnswer], _Job] = {}
        for job in self._start_order(jobs):
            job.deadline = deadline
            task = asyncio.create_task(self._call(job, report), name=f"codeconductor:{job.model.id}#{job.sample}")
            tasks[task] = job

        votes: dict[Hashable, int] = {}
        pending: set[asyncio.Task[ModelAnswer]] = set(tasks)
        stop_reason: str | None = None
        try:
            while pending:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    stop_reason = "deadline"
                    break
                finished, pending = await asyncio.wait(pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    job = tasks[task]
                    answer = task.result()  # _call never raises except on cancellation
                    job.answer = answer
                    done += 1
                    report(job, _FINAL[answer.status], answer.reason)
                    if quorum is not None and answer.status is AnswerStatus.ANSWERED:
                        key = _safe_key(agreement_key, answer.text)
                        if key is not None:
                            votes[key] = votes.get(key, 0) + 1
                            if votes[key] >= quorum:
                                stop_reason = "quorum"
                if stop_reason:
                    break
        finally:
            # Runs on success, deadline, quorum and on the caller's cancellation alike: nothing is left running.
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

        for task in pending:
            job = tasks[task]
            if not task.cancelled() and task.exception() is None:
                # It finished on its own while we were cancelling: keep the real answer.
                job.answer = task.result()
            else:
                job.answer = _stopped_answer(job, stop_reason or "cancelled", settings.deadline_s)
            done += 1
            report(job, _FINAL[job.answer.status], job.answer.reason)
        return [job.answer for job in jobs if job.answer is not None]

    def _plan(
        self,
        models: Sequence[ModelInfo],
        messages_for: MessagesFor,
        base: GenerationParams,
        samples: int | Callable[[ModelInfo], int],
    ) -> list[_Job]:
        jobs: list[_Job] = []
        for model in models:
            messages = list(messages_for(model))
            must_load = provider_spec(model.provider).loads_on_first_call and model.loaded is False
            asked = max(1, samples(model) if callable(samples) else samples)
            wanted = asked
            if asked > 1 and self._overloaded(model):
                logger.info("%s is overloaded: asking it for one sample instead of %d", model.id, asked)
                wanted = 1
            for sample in range(wanted):
                jobs.append(
                    _Job(
                        model=model,
                        sample=sample,
                        params=_sample_params(base, sample, asked),
                        messages=messages,
                        must_load=must_load,
                    )
                )
        return jobs

    def _start_order(self, jobs: Iterable[_Job]) -> list[_Job]:
        # Slots are granted in the order tasks first wait for them, so models already in memory start first and
        # models that still need loading queue behind them; models on overloaded servers go last.
        return sorted(jobs, key=lambda job: (job.must_load, self._overloaded(job.model)))

    async def _call(self, job: _Job, report: _Report) -> ModelAnswer:
        """Ask ``job``'s model, failing over to its other replicas while the deadline allows."""
        try:
            while True:
                replica = self._pick(job)
                if replica is None:  # every replica failed: the last failure is the answer
                    assert job.answer is not None
                    return job.answer
                answer = await self._attempt(job, replica, report)
                if answer.status is AnswerStatus.ANSWERED or answer.reason in _NO_FAILOVER:
                    return answer
                job.tried.append(f"{replica.endpoint}: {answer.reason}")
                job.answer = answer.model_copy(update={"tried": list(job.tried)})
                unreachable = answer.reason in ("unavailable", "stream_closed") or (answer.reason or "").startswith(
                    "http_5"
                )
                if unreachable and _tries(replica) == 1:  # (a gateway routes the next call elsewhere)
                    self._host(replica).down_until = time.perf_counter() + REPLICA_RETRY_S
                if time.perf_counter() >= job.deadline:
                    return job.answer
                logger.info(
                    "%s failed on %s (%s): asking another replica", job.model.name, replica.endpoint, answer.reason
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # anything unforeseen is one model's failure, not the run's
            logger.exception("model call %s failed unexpectedly", job.model.id)
            return _answer(job, AnswerStatus.FAILED, error=f"{type(exc).__name__}: {exc}", reason="internal")

    async def _attempt(self, job: _Job, replica: ModelInfo, report: _Report) -> ModelAnswer:
        """One call of ``job`` on one replica (after its host's load turn, if it must load the model)."""
        host = self._host(replica)
        job.replica = replica
        job.must_load = provider_spec(replica.provider).loads_on_first_call and replica.loaded is False
        host.pending += 1
        try:
            if job.must_load and replica.name not in host.warm:
                # One load at a time per host: loading two models at once on one machine makes them evict each
                # other. Later samples of the same model wait for the first, then find it loaded.
                async with host.load_turn:
                    if replica.name not in host.warm:
                        answer = await self._call_in_slot(job, host, report)
                        if answer.status is AnswerStatus.ANSWERED:
                            host.warm.add(replica.name)
                        return answer
                job.must_load = False
            return await self._call_in_slot(job, host, report)
        finally:
            host.pending -= 1

    async def _call_in_slot(self, job: _Job, host: _Host, report: _Report) -> ModelAnswer:
        replica = job.replica or job.model
        async with host.slots:
            refused = job.budget.refuses(time.perf_counter()) if job.budget is not None and job.sample > 0 else None
            if refused is not None:
                return _answer(job, AnswerStatus.SKIPPED, error=refused, reason="budget")
            job.started = time.perf_counter()
            job.phase = _Phase.RUNNING
            detail = f"retry on {replica.endpoint}" if job.tried else None
            report(job, "loading" if job.must_load else "started", detail)
            # The run's deadline stops this call from outside (and is then reported as such); a retry on another
            # replica starts only while the deadline is still ahead.
            timeout_s = self._settings.timeout_s
            try:
                provider = self._provider_for(replica)
                async with asyncio.timeout(timeout_s):
                    result = await provider.generate(replica, job.messages, job.params)
            except TimeoutError:
                return _answer(
                    job, AnswerStatus.TIMEOUT, error=f"no answer within the {timeout_s:g} s timeout", reason="timeout"
                )
            except ProviderTimeout as exc:
                return _answer(job, AnswerStatus.TIMEOUT, error=str(exc), reason=exc.reason)
            except ProviderError as exc:
                return _answer(job, AnswerStatus.FAILED, error=str(exc), reason=exc.reason)
            finally:
                job.phase = _Phase.DONE
            if job.budget is not None:
                job.budget.durations.append(max(0.0, time.perf_counter() - job.started - (result.load_s or 0.0)))
            return _answer(job, AnswerStatus.ANSWERED, result=result)


def _tries(replica: ModelInfo) -> int:
    """How often one call may be asked of ``replica``: once, or once per deployment behind a gateway."""
    return max(1, replica.deployments or 1) if replica.server == "litellm" else 1


def _sample_params(base: GenerationParams, sample: int, samples: int) -> GenerationParams:
    """Sample i uses seed base+i, so runs are reproducible yet samples differ; sample 0 keeps the run's
    temperature (the model's best single guess), the others are drawn at least :data:`SAMPLING_TEMPERATURE`."""
    if samples <= 1:
        return base
    update: dict[str, float | int] = {"seed": (base.seed or 0) + sample}
    if sample > 0:
        update["temperature"] = max(base.temperature, SAMPLING_TEMPERATURE)
    return base.model_copy(update=update)


def _safe_key(agreement_key: AgreementKey, text: str) -> Hashable | None:
    try:
        return agreement_key(text)
    except Exception:  # a key function that chokes on one answer should not stop the quorum
        logger.exception("agreement key failed")
        return None


def _answer(
    job: _Job,
    status: AnswerStatus,
    *,
    result: GenerationResult | None = None,
    error: str | None = None,
    reason: str | None = None,
) -> ModelAnswer:
    queue_s, running_s = job.elapsed()
    load_s = result.load_s if result is not None else None
    latency_s = None if running_s is None else max(0.0, running_s - (load_s or 0.0))
    replica = job.replica.endpoint if job.replica is not None else None
    if result is not None and result.served_by and replica is not None:
        replica = f"{replica} -> {result.served_by}"  # the deployment behind a gateway
    return ModelAnswer(
        model=job.model,
        sample=job.sample,
        status=status,
        text=result.text if result is not None else "",
        error=error,
        reason=reason,
        latency_s=latency_s,
        queue_s=queue_s,
        load_s=load_s,
        tokens_in=result.tokens_in if result is not None else None,
        tokens_out=result.tokens_out if result is not None else None,
        replica=replica,
        tried=list(job.tried),
    )


def _stopped_answer(job: _Job, why: str, deadline_s: float) -> ModelAnswer:
    """The record of a call we stopped: never started -> skipped; running -> timeout (deadline) or cancelled."""
    if job.phase is _Phase.QUEUED:
        error = {
            "deadline": f"not started before the {deadline_s:g} s deadline",
            "quorum": "not needed: a quorum agreed first",
        }.get(why, "cancelled before it started")
        status = AnswerStatus.SKIPPED if why == "deadline" else AnswerStatus.CANCELLED
        return _answer(job, status, error=error, reason=why)
    if why == "deadline":
        return _answer(job, AnswerStatus.TIMEOUT, error=f"stopped at the {deadline_s:g} s deadline", reason="deadline")
    error = "stopped: a quorum agreed first" if why == "quorum" else "cancelled"
    return _answer(job, AnswerStatus.CANCELLED, error=error, reason=why)
