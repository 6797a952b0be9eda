"""The dispatcher against real llama.cpp servers, and the fault server for what real servers cannot do on demand
(hang, HTTP 500, garbage, dropped connections)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from codeconductor.ensemble.discovery import Discovery
from codeconductor.ensemble.dispatcher import Dispatcher
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import (
    AnswerStatus,
    ChatMessage,
    GenerationParams,
    ModelInfo,
    ProgressEvent,
    ProviderKind,
)
from tests.conftest import LlamaServerFactory
from tests.support.fault_server import FaultServer
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.timeout(120)

MESSAGES = [ChatMessage(role="user", content="Write a function that adds two numbers.")]
PARAMS = GenerationParams(temperature=0.0, max_tokens=8)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def dispatcher(client: httpx.AsyncClient, **values: object) -> Dispatcher:
    settings = Settings.model_validate({"probe_local": False, "embedded": "off", **values})
    return Dispatcher(settings, Discovery(settings, client, local_endpoints=()).provider_for)


def openai_model(name: str, url: str) -> ModelInfo:
    return ModelInfo(name=name, provider=ProviderKind.OPENAI, endpoint=url)


async def wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return False


async def test_real_llama_servers_answer_in_parallel(
    tiny_server: LlamaServer, llama_server_factory: LlamaServerFactory, client: httpx.AsyncClient
) -> None:
    other = llama_server_factory(alias="tiny-b")
    models = [openai_model("tiny", tiny_server.url), openai_model("tiny-b", other.url)]
    events: list[ProgressEvent] = []
    answers = await dispatcher(client).run(models, lambda _m: MESSAGES, params=PARAMS, on_progress=events.append)
    assert [a.status for a in answers] == [AnswerStatus.ANSWERED, AnswerStatus.ANSWERED]
    assert all(a.text and (a.tokens_out or 0) > 0 for a in answers)
    assert all(a.latency_s is not None and a.latency_s > 0 for a in answers)
    assert [e.status for e in events].count("answered") == 2
    assert events[-1].done == events[-1].total == 2


async def test_failures_are_recorded_with_reasons_and_the_run_goes_on(
    fault_server: FaultServer, tiny_server: LlamaServer, client: httpx.AsyncClient
) -> None:
    names = ["hang", "http500", "garbage-json", "drop", "ok-fast"]
    models = [openai_model(n, fault_server.url) for n in names] + [openai_model("tiny", tiny_server.url)]
    answers = await dispatcher(client, timeout_s=1.0, per_endpoint_concurrency=8).run(
        models, lambda _m: MESSAGES, params=PARAMS
    )
    by_name = {a.model.name: a for a in answers}
    assert (by_name["hang"].status, by_name["hang"].reason) == (AnswerStatus.TIMEOUT, "timeout")
    assert (by_name["http500"].status, by_name["http500"].reason) == (AnswerStatus.FAILED, "http_500")
    assert by_name["garbage-json"].status is AnswerStatus.FAILED
    assert by_name["garbage-json"].reason == "protocol"
    assert by_name["drop"].status is AnswerStatus.FAILED
    assert by_name["drop"].error
    assert by_name["ok-fast"].status is AnswerStatus.ANSWERED
    assert by_name["ok-fast"].text.startswith("def add")
    assert by_name["tiny"].status is AnswerStatus.ANSWERED


async def test_quorum_cancels_the_hanging_rest(fault_server: FaultServer, client: httpx.AsyncClient) -> None:
    fault_server.clear_log()
    models = [openai_model(n, fault_server.url) for n in ("ok-q1", "ok-q2", "hang")]
    answers = await dispatcher(client, per_endpoint_concurrency=4, timeout_s=60).run(
        models, lambda _m: MESSAGES, params=PARAMS, quorum=2
    )
    assert [a.status for a in answers] == [AnswerStatus.ANSWERED, AnswerStatus.ANSWERED, AnswerStatus.CANCELLED]
    assert answers[2].reason == "quorum"
    # The hanging request's connection was really closed: the server saw its client go away.
    assert await wait_for(lambda: "hang" in fault_server.disconnects)


async def test_caller_cancellation_closes_every_connection(
    fault_server: FaultServer, client: httpx.AsyncClient
) -> None:
    fault_server.clear_log()
    models = [openai_model("hang", fault_server.url), openai_model("stall", fault_server.url)]
    task = asyncio.create_task(
        dispatcher(client, per_endpoint_concurrency=4, timeout_s=60).run(models, lambda _m: MESSAGES, params=PARAMS)
    )
    assert await wait_for(lambda: len([r for r in fault_server.requests if r.path.endswith("completions")]) == 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await wait_for(lambda: {"hang", "stall"} <= set(fault_server.disconnects))


async def test_concurrency_limit_queues_requests_per_endpoint(
    fault_server: FaultServer, client: httpx.AsyncClient
) -> None:
    names = ["ok-delay300ms-a", "ok-delay300ms-b", "ok-delay300ms-c"]
    models = [openai_model(n, fault_server.url) for n in names]
    answers = await dispatcher(client, per_endpoint_concurrency=1).run(models, lambda _m: MESSAGES, params=PARAMS)
    assert all(a.status is AnswerStatus.ANSWERED for a in answers)
    # One at a time: each waited for the ones before it to finish (a 300 ms answer each).
    queues = sorted(a.queue_s or 0.0 for a in answers)
    assert queues[1] >= 0.3
    assert queues[2] >= 0.6


async def test_overall_deadline(fault_server: FaultServer, client: httpx.AsyncClient) -> None:
    models = [openai_model("hang", fault_server.url), openai_model("ok-late", fault_server.url)]
    answers = await dispatcher(client, per_endpoint_concurrency=1, deadline_s=0.5, timeout_s=60).run(
        models, lambda _m: MESSAGES, params=PARAMS
    )
    assert [(a.status, a.reason) for a in answers] == [
        (AnswerStatus.TIMEOUT, "deadline"),
        (AnswerStatus.SKIPPED, "deadline"),
    ]
