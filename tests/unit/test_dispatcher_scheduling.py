"""Dispatcher scheduling semantics, with an in-test provider that sleeps and then answers (or fails).

This is a unit test of scheduling (timeouts, deadline, quorum, cancellation, concurrency limits, ordering,
progress); the dispatcher against real servers is covered in tests/integration/test_dispatcher.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from codeconductor.ensemble.dispatcher import SAMPLING_TEMPERATURE, Dispatcher, normalized_text_key
from codeconductor.ensemble.errors import ProviderHTTPError, ProviderProtocolError, ProviderTimeout
from codeconductor.ensemble.providers.base import OnToken, Provider
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import (
    AnswerStatus,
    ChatMessage,
    GenerationParams,
    GenerationResult,
    ModelInfo,
    ProgressEvent,
    ProviderKind,
)


@dataclass
class Behaviour:
    delay: float = 0.0
    text: str = "ok"
    error: Exception | None = None
    load_s: float | None = None


@dataclass
class Log:
    started: list[str] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    params: list[tuple[str, GenerationParams]] = field(default_factory=list)
    in_flight: dict[str, int] = field(default_factory=dict)
    max_in_flight: dict[str, int] = field(default_factory=dict)


class SleepyProvider(Provider):
    """Answers each model after its configured delay; records what it was asked and when it was cancelled."""

    kind = ProviderKind.OPENAI

    def __init__(self, base_url: str, behaviours: dict[str, Behaviour], log: Log) -> None:
        super().__init__(base_url)
        self.behaviours = behaviours
        self.log = log

    async def probe(self, timeout: float = 0.5) -> bool:
        return True

    async def list_models(self, timeout: float = 2.0) -> list[ModelInfo]:
        return []

    async def generate(
        self,
        model: ModelInfo,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        on_token: OnToken | None = None,
    ) -> GenerationResult:
        b = self.behaviours[model.name]
        log = self.log
        log.started.append(model.name)
        log.params.append((model.name, params))
        log.in_flight[model.endpoint] = log.in_flight.get(model.endpoint, 0) + 1
        log.max_in_flight[model.endpoint] = max(log.max_in_flight.get(model.endpoint, 0), log.in_flight[model.endpoint])
        try:
            await asyncio.sleep(b.delay)
        except asyncio.CancelledError:
            log.cancelled.append(model.name)
            raise
        finally:
            log.in_flight[model.endpoint] -= 1
        if b.error is not None:
            raise b.error
        log.finished.append(model.name)
        return GenerationResult(text=b.text, tokens_out=3, load_s=b.load_s)


def model(
    name: str, endpoint: str = "http://127.0.0.1:1", *, loaded: bool | None = None, ollama: bool = False
) -> ModelInfo:
    kind = ProviderKind.OLLAMA if ollama else ProviderKind.OPENAI
    return ModelInfo(name=name, provider=kind, endpoint=endpoint, loaded=loaded)


def make(behaviours: dict[str, Behaviour], **settings: object) -> tuple[Dispatcher, Log]:
    log = Log()
    providers: dict[str, SleepyProvider] = {}

    def provider_for(m: ModelInfo) -> Provider:
        if m.endpoint not in providers:
            providers[m.endpoint] = SleepyProvider(m.endpoint, behaviours, log)
        return providers[m.endpoint]

    base: dict[str, object] = {"per_endpoint_concurrency": 4, "timeout_s": 5.0, "deadline_s": 10.0}
    base.update(settings)
    return Dispatcher(Settings.model_validate(base), provider_for), log


def msgs(_: ModelInfo) -> list[ChatMessage]:
    return [ChatMessage(role="user", content="hi")]


async def test_all_answer_in_model_order_with_records() -> None:
    d, _ = make({"a": Behaviour(0.05, "A"), "b": Behaviour(0.0, "B")})
    answers = await d.run([model("a"), model("b")], msgs)
    assert [a.model.name for a in answers] == ["a", "b"]
    assert [a.text for a in answers] == ["A", "B"]
    assert all(a.status is AnswerStatus.ANSWERED for a in answers)
    assert all(a.latency_s is not None and a.queue_s is not None for a in answers)
    assert answers[0].tokens_out == 3


async def test_per_model_timeout_and_failures_recorded_with_reasons() -> None:
    d, _ = make(
        {
            "slow": Behaviour(30.0),
            "boom": Behaviour(error=ProviderHTTPError("HTTP 500", status_code=500, endpoint="x")),
            "junk": Behaviour(error=ProviderProtocolError("garbage", endpoint="x")),
            "readtimeout": Behaviour(error=ProviderTimeout("read timed out", endpoint="x")),
            "bug": Behaviour(error=RuntimeError("provider bug")),
            "fine": Behaviour(0.0, "yes"),
        },
        timeout_s=0.2,
    )
    names = ["slow", "boom", "junk", "readtimeout", "bug", "fine"]
    answers = {a.model.name: a for a in await d.run([model(n) for n in names], msgs)}
    assert answers["slow"].status is AnswerStatus.TIMEOUT
    assert answers["slow"].reason == "timeout"
    assert "0.2 s" in (answers["slow"].error or "")
    assert (answers["boom"].status, answers["boom"].reason) == (AnswerStatus.FAILED, "http_500")
    assert (answers["junk"].status, answers["junk"].reason) == (AnswerStatus.FAILED, "protocol")
    assert (answers["readtimeout"].status, answers["readtimeout"].reason) == (AnswerStatus.TIMEOUT, "timeout")
    assert (answers["bug"].status, answers["bug"].reason) == (AnswerStatus.FAILED, "internal")
    assert "provider bug" in (answers["bug"].error or "")
    assert answers["fine"].status is AnswerStatus.ANSWERED


async def test_overall_deadline_times_out_running_and_skips_queued() -> None:
    # One slot on the endpoint: "first" runs into the deadline, "second" never starts.
    d, log = make({"first": Behaviour(30.0), "second": Behaviour(0.0)}, per_endpoint_concurrency=1, deadline_s=0.2)
    answers = {a.model.name: a for a in await d.run([model("first"), model("second")], msgs)}
    assert (answers["first"].status, answers["first"].reason) == (AnswerStatus.TIMEOUT, "deadline")
    assert (answers["second"].status, answers["second"].reason) == (AnswerStatus.SKIPPED, "deadline")
    assert log.cancelled == ["first"]
    assert "second" not in log.started


async def test_quorum_stops_early_and_cancels_the_rest() -> None:
    d, log = make(
        {
            "a": Behaviour(0.0, "```python\nx = 1\n```"),
            "b": Behaviour(0.05, "```py\nx = 1   \n\n```"),  # same code, different fence and blanks
            "c": Behaviour(30.0, "x = 2"),
            "d": Behaviour(30.0, "x = 1"),
        }
    )
    answers = {a.model.name: a for a in await d.run([model(n) for n in "abcd"], msgs, quorum=2)}
    assert answers["a"].status is AnswerStatus.ANSWERED
    assert answers["b"].status is AnswerStatus.ANSWERED
    for name in "cd":
        assert (answers[name].status, answers[name].reason) == (AnswerStatus.CANCELLED, "quorum")
    assert sorted(log.cancelled) == ["c", "d"]


async def test_quorum_uses_the_given_agreement_key() -> None:
    d, _ = make({"a": Behaviour(0.0, "X"), "b": Behaviour(0.01, "x"), "c": Behaviour(30.0, "x")})
    answers = await d.run([model(n) for n in "abc"], msgs, quorum=2, agreement_key=str.lower)
    assert [a.status for a in answers] == [AnswerStatus.ANSWERED, AnswerStatus.ANSWERED, AnswerStatus.CANCELLED]


async def test_quorum_not_reached_waits_for_all() -> None:
    d, _ = make({"a": Behaviour(0.0, "1"), "b": Behaviour(0.01, "2"), "c": Behaviour(0.02, "3")})
    answers = await d.run([model(n) for n in "abc"], msgs, quorum=2)
    assert all(a.status is AnswerStatus.ANSWERED for a in answers)


async def test_caller_cancellation_cancels_every_model_call() -> None:
    d, log = make({"a": Behaviour(30.0), "b": Behaviour(30.0)})
    task = asyncio.create_task(d.run([model("a"), model("b", "http://127.0.0.1:2")], msgs))
    for _ in range(500):
        if len(log.started) == 2:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert sorted(log.cancelled) == ["a", "b"]
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("codeconductor:")]


async def test_per_endpoint_concurrency_limit_is_honoured() -> None:
    names = [f"m{i}" for i in range(6)]
    behaviours = {n: Behaviour(0.02) for n in names}
    d, log = make(behaviours, per_endpoint_concurrency=2)
    models = [model(n, "http://127.0.0.1:1") for n in names[:4]] + [model(n, "http://127.0.0.1:2") for n in names[4:]]
    answers = await d.run(models, msgs)
    assert all(a.status is AnswerStatus.ANSWERED for a in answers)
    assert log.max_in_flight == {"http://127.0.0.1:1": 2, "http://127.0.0.1:2": 2}
    # Queued calls report the wait for their slot.
    assert max(a.queue_s or 0 for a in answers) > 0


async def test_embedded_models_are_limited_per_model_not_per_endpoint() -> None:
    d, log = make({"e1": Behaviour(0.05), "e2": Behaviour(0.05)}, per_endpoint_concurrency=1)
    models = [
        ModelInfo(name=n, provider=ProviderKind.EMBEDDED, endpoint="embedded://", loaded=False) for n in ("e1", "e2")
    ]
    answers = await d.run(models, msgs)
    assert all(a.status is AnswerStatus.ANSWERED for a in answers)
    assert log.max_in_flight["embedded://"] == 2  # each in-process model has its own runtime


async def test_loaded_models_go_first_and_loads_are_serialised_per_host() -> None:
    host = "http://127.0.0.1:11434"
    behaviours = {n: Behaviour(0.02, load_s=0.01 if n.startswith("cold") else None) for n in ["cold1", "cold2", "warm"]}
    d, log = make(behaviours, per_endpoint_concurrency=4)
    models = [
        model("cold1", host, loaded=False, ollama=True),
        model("cold2", host, loaded=False, ollama=True),
        model("warm", host, loaded=True, ollama=True),
    ]
    events: list[ProgressEvent] = []
    answers = await d.run(models, msgs, on_progress=events.append)
    assert log.started[0] == "warm"
    # Two slots were free, yet only one cold model loaded at a time.
    assert log.max_in_flight[host] == 2
    loading = [e.model_id for e in events if e.status == "loading"]
    assert sorted(loading) == [m.id for m in models[:2]]
    cold = answers[0]
    assert cold.load_s == 0.01
    assert cold.latency_s is not None
    assert cold.latency_s >= 0


async def test_samples_get_distinct_seeds_and_positive_temperature() -> None:
    d, log = make({"a": Behaviour(0.0)})
    params = GenerationParams(temperature=0.0, seed=10)
    answers = await d.run([model("a")], msgs, params=params, samples=3)
    assert [a.sample for a in answers] == [0, 1, 2]
    seeds = sorted(p.seed or 0 for _, p in log.params)
    assert seeds == [10, 11, 12]
    by_seed = {p.seed: p.temperature for _, p in log.params}
    # Sample 0 is the model's best single guess (the run's temperature); the others are drawn hot enough to differ.
    assert by_seed == {10: 0.0, 11: SAMPLING_TEMPERATURE, 12: SAMPLING_TEMPERATURE}


async def test_single_sample_keeps_params() -> None:
    d, log = make({"a": Behaviour(0.0)})
    await d.run([model("a")], msgs, params=GenerationParams(temperature=0.0))
    assert log.params[0][1].temperature == 0.0
    assert log.params[0][1].seed is None


async def test_without_params_the_settings_give_them() -> None:
    d, log = make({"a": Behaviour(0.0)}, temperature=0.7, max_tokens=99, keep_alive="1m")
    await d.run([model("a")], msgs)
    assert log.params[0][1] == GenerationParams(temperature=0.7, max_tokens=99, keep_alive="1m")
    assert GenerationParams.from_settings(Settings(max_tokens=7)) == GenerationParams(max_tokens=7, keep_alive="10m")


async def test_progress_events_cover_every_answer() -> None:
    d, _ = make({"a": Behaviour(0.0), "b": Behaviour(error=ProviderHTTPError("x", status_code=503))})
    events: list[ProgressEvent] = []
    await d.run([model("a"), model("b")], msgs, on_progress=events.append)
    by_status = [(e.model_id.split("@")[0], e.status) for e in events]
    assert by_status.count(("a", "queued")) == 1
    assert ("a", "started") in by_status
    assert ("a", "answered") in by_status
    assert ("b", "failed") in by_status
    final = [e for e in events if e.status in ("answered", "failed")]
    assert sorted(e.done for e in final) == [1, 2]
    assert all(e.total == 2 for e in events)
    assert next(e.detail for e in events if e.status == "failed") == "http_503"


async def test_broken_progress_callback_does_not_break_the_run() -> None:
    d, _ = make({"a": Behaviour(0.0)})

    def broken(_: ProgressEvent) -> None:
        raise ValueError("display gone")

    answers = await d.run([model("a")], msgs, on_progress=broken)
    assert answers[0].status is AnswerStatus.ANSWERED


async def test_no_models_no_answers() -> None:
    d, _ = make({})
    assert await d.run([], msgs) == []


def test_normalized_text_key() -> None:
    assert normalized_text_key("```python\ndef f():\n    return 1  \n```") == "def f():\n    return 1"
    assert normalized_text_key("  \n") is None
    assert normalized_text_key("a\r\n\r\nb") == "a\nb"


def embedded(name: str) -> ModelInfo:
    return ModelInfo(name=name, provider=ProviderKind.EMBEDDED, endpoint="embedded://")


async def test_sample_budget_stops_the_extra_samples_of_a_model() -> None:
    # One in-process model: its samples run one after another (one slot, whatever the concurrency setting),
    # 0.5 s each. Budget 0.8 s: after the first, 0.5 s spent + 0.5 s expected > 0.8, so the rest are refused;
    # budget 1.7 s: the second (0.5 + 0.5) and third (1.0 + 0.5) fit, the fourth (1.5 + 0.5) does not.
    for budget, answered in ((0.8, 1), (1.7, 3)):
        d, log = make({"e": Behaviour(0.5)}, per_endpoint_concurrency=4)
        events: list[ProgressEvent] = []
        answers = await d.run([embedded("e")], msgs, samples=4, sample_budget_s=budget, on_progress=events.append)
        assert [a.sample for a in answers] == [0, 1, 2, 3]
        statuses = [a.status for a in answers]
        assert statuses == [AnswerStatus.ANSWERED] * answered + [AnswerStatus.SKIPPED] * (4 - answered), budget
        skipped = answers[answered]
        assert skipped.reason == "budget"
        assert "budget" in (skipped.error or "")
        assert skipped.tried == []  # the budget, not the replica, stopped it: no other replica is asked
        assert len(log.started) == answered  # a refused sample never reaches the model
        # The progress shows each refused sample as skipped for the budget.
        assert sorted(e.sample for e in events if e.status == "skipped" and e.detail == "budget") == list(
            range(answered, 4)
        )


async def test_without_a_budget_every_sample_runs() -> None:
    d, log = make({"e": Behaviour(0.05)})
    answers = await d.run([embedded("e")], msgs, samples=3)
    assert all(a.status is AnswerStatus.ANSWERED for a in answers)
    assert len(log.started) == 3


async def test_samples_per_model_may_differ_by_model() -> None:
    d, log = make({"e": Behaviour(0.0), "s": Behaviour(0.0)})
    answers = await d.run(
        [embedded("e"), model("s")], msgs, samples=lambda m: 3 if m.provider is ProviderKind.EMBEDDED else 1
    )
    assert [(a.model.name, a.sample) for a in answers] == [("e", 0), ("e", 1), ("e", 2), ("s", 0)]
    # The single-sample model keeps the run's parameters untouched.
    assert [p.seed for name, p in log.params if name == "s"] == [None]


def test_in_process_models_sample_by_default_and_an_explicit_count_wins() -> None:
    from codeconductor.ensemble.pipeline import samples_for
    from codeconductor.ensemble.types import CodeContext, Request, TaskKind

    settings = Settings.model_validate({"embedded_samples": 4, "samples_per_model": 1})
    plain = Request(task=TaskKind.FIX, context=CodeContext(selection="x = 1\n"))
    count = samples_for(plain, settings)
    assert count(embedded("e")) == 4  # no model server: one model's samples are the ensemble
    assert count(model("s")) == 1
    asked = Request(task=TaskKind.FIX, context=CodeContext(selection="x = 1\n"), samples_per_model=2)
    explicit = samples_for(asked, settings)
    assert (explicit(embedded("e")), explicit(model("s"))) == (2, 2)
