"""The dispatcher: asks every chosen model at once and keeps an honest record of what each one did.

For the user this is why an ensemble costs about as long as its slowest useful model, not the sum of all of them:
one request fans out to N models (× samples) in parallel, each under its own timeout and all under one overall
deadline. A model that fails, hangs or answers garbage is recorded (status, reason, error text) and the run goes
on without it. Model servers are not overloaded: each endpoint gets at most ``per_endpoint_concurrency`` requests
at once and the rest queue. On a shared host (Ollama) models already in memory go first and models that must be
loaded are loaded one at a time, so they do not evict each other. With a quorum ``k`` the run stops as soon as k
answers agree and the stragglers are cancelled. Cancelling the caller's task cancels every model call at once.

Times in each :class:`~ensemble.types.ModelAnswer`: ``queue_s`` is the wait for the endpoint's slot (and, for a
model that must be loaded, for the host's load turn); ``load_s`` is the load time the server reported; and
``latency_s`` is the rest of the call, i.e. generation time without queueing or loading.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .errors import ProviderError, ProviderTimeout
from .providers.base import Provider
from .settings import Settings
from .types import (
    AnswerStatus,
    ChatMessage,
    GenerationParams,
    GenerationResult,
    ModelAnswer,
    ModelInfo,
    ProgressEvent,
    ProviderKind,
)

__all__ = [
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

# Several samples at temperature 0 would all be identical, which wastes the extra samples.
SAMPLING_TEMPERATURE = 0.3

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
    phase: _Phase = _Phase.QUEUED
    created: float = field(default_factory=time.perf_counter)
    started: float | None = None
    answer: ModelAnswer | None = None

    def elapsed(self) -> tuple[float | None, float | None]:
        """(queue_s, running_s) so far."""
        now = time.perf_counter()
        if self.started is None:
            return now - self.created, None
        return self.started - self.created, now - self.started


class _Host:
    """Per-endpoint limits: the concurrency slots and the one-at-a-time load turn."""

    def __init__(self, slots: int) -> None:
        self.slots = asyncio.Semaphore(slots)
        self.load_turn = asyncio.Lock()
        self.warm: set[str] = set()  # models this host has loaded for us


class Dispatcher:
    """Fans one request out to many models. One instance may serve many runs (their endpoint limits are shared).

    ``provider_for`` gives the provider for a model (``Discovery.provider_for``).
    """

    def __init__(self, settings: Settings, provider_for: ProviderFor) -> None:
        self._settings = settings
        self._provider_for = provider_for
        self._hosts: dict[str, _Host] = {}

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
        # share their server.
        key = model.id if model.provider is ProviderKind.EMBEDDED else model.endpoint
        host = self._hosts.get(key)
        if host is None:
            host = self._hosts[key] = _Host(self._settings.per_endpoint_concurrency)
        return host

    async def run(
        self,
        models: Sequence[ModelInfo],
        messages_for: MessagesFor,
        *,
        params: GenerationParams | None = None,
        samples: int = 1,
        quorum: int | None = None,
        agreement_key: AgreementKey = normalized_text_key,
        on_progress: OnProgress | None = None,
    ) -> list[ModelAnswer]:
        """Ask every model in ``models`` ``samples`` times; return one answer record per (model, sample), in the
        order of ``models``. Never raises for a model's failure; raises ``CancelledError`` if the caller is
        cancelled (after cancelling every model call)."""
        settings = self._settings
        base = params or GenerationParams(
            temperature=settings.temperature, max_tokens=settings.max_tokens, keep_alive=settings.keep_alive
        )
        jobs = self._plan(models, messages_for, base, samples)
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
        tasks: dict[asyncio.Task[ModelAnswer], _Job] = {}
        for job in self._start_order(jobs):
            task = asyncio.create_task(self._call(job, report), name=f"codeconductor:{job.model.id}#{job.sample}")
            tasks[task] = job

        votes: dict[Hashable, int] = {}
        deadline = time.perf_counter() + settings.deadline_s
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
        self, models: Sequence[ModelInfo], messages_for: MessagesFor, base: GenerationParams, samples: int
    ) -> list[_Job]:
        jobs: list[_Job] = []
        for model in models:
            messages = list(messages_for(model))
            must_load = model.provider is ProviderKind.OLLAMA and model.loaded is False
            for sample in range(samples):
                jobs.append(
                    _Job(
                        model=model,
                        sample=sample,
                        params=_sample_params(base, sample, samples),
                        messages=messages,
                        must_load=must_load,
                    )
                )
        return jobs

    @staticmethod
    def _start_order(jobs: Iterable[_Job]) -> list[_Job]:
        # Slots are granted in the order tasks first wait for them, so models already in memory start first and
        # models that still need loading queue behind them.
        return sorted(jobs, key=lambda job: job.must_load)

    async def _call(self, job: _Job, report: _Report) -> ModelAnswer:
        host = self._host(job.model)
        try:
            if job.must_load and job.model.name not in host.warm:
                # One load at a time per host: loading two models at once on one machine makes them evict each
                # other. Later samples of the same model wait for the first, then find it loaded.
                async with host.load_turn:
                    if job.model.name not in host.warm:
                        answer = await self._call_in_slot(job, host, report)
                        if answer.status is AnswerStatus.ANSWERED:
                            host.warm.add(job.model.name)
                        return answer
                job.must_load = False
            return await self._call_in_slot(job, host, report)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # anything unforeseen is one model's failure, not the run's
            logger.exception("model call %s failed unexpectedly", job.model.id)
            return _answer(job, AnswerStatus.FAILED, error=f"{type(exc).__name__}: {exc}", reason="internal")

    async def _call_in_slot(self, job: _Job, host: _Host, report: _Report) -> ModelAnswer:
        async with host.slots:
            job.started = time.perf_counter()
            job.phase = _Phase.RUNNING
            report(job, "loading" if job.must_load else "started", None)
            timeout_s = self._settings.timeout_s
            try:
                provider = self._provider_for(job.model)
                async with asyncio.timeout(timeout_s):
                    result = await provider.generate(job.model, job.messages, job.params)
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
            return _answer(job, AnswerStatus.ANSWERED, result=result)


def _sample_params(base: GenerationParams, sample: int, samples: int) -> GenerationParams:
    if samples <= 1:
        return base
    # Sample i uses seed base+i so that runs are reproducible yet samples differ.
    return base.model_copy(
        update={
            "seed": (base.seed or 0) + sample,
            "temperature": base.temperature if base.temperature > 0 else SAMPLING_TEMPERATURE,
        }
    )


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
