"""One model on several endpoints: discovery makes it one member, the dispatcher spreads its samples, fails over
from a replica that breaks or hangs, and steers by the servers' load signals.

The replicas here are the fault-injection FAKE server (``tests.support.fault_server``): only it can be told to fail
with HTTP 500 or hang on demand, and only it can serve vLLM's ``/health`` and ``/metrics``, since vLLM cannot run
on these CPU-only machines. The same behaviour on real llama.cpp servers behind a real LiteLLM proxy is in
``tests/team/test_gateway.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from codeconductor.ensemble.discovery import Discovery
from codeconductor.ensemble.dispatcher import Dispatcher
from codeconductor.ensemble.gateways import LoadMonitor
from codeconductor.ensemble.replicas import replicas_of
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import AnswerStatus, ChatMessage, GenerationParams, ModelInfo
from tests.support.fault_server import Behaviour, FakeModel, FaultServer

pytestmark = pytest.mark.timeout(60)

MESSAGES = [ChatMessage(role="user", content="add two numbers")]
PARAMS = GenerationParams(temperature=0.0, max_tokens=8)


def _metrics(waiting: float, kv: float = 0.3, model: str = "m") -> str:
    return (
        "# TYPE vllm:num_requests_waiting gauge\n"
        f'vllm:num_requests_waiting{{engine="0",model_name="{model}"}} {waiting}\n'
        f'vllm:num_requests_running{{engine="0",model_name="{model}"}} 4.0\n'
        f'vllm:kv_cache_usage_perc{{engine="0",model_name="{model}"}} {kv}\n'
    )


@pytest.fixture
def servers() -> Iterator[list[FaultServer]]:
    """Three fake vLLM-like servers, each serving model ``m`` (answering after 100 ms) unless a test changes it."""
    started = [FaultServer([FakeModel("m", delay_s=0.1)], apis=("openai", "vllm")).start() for _ in range(3)]
    try:
        yield started
    finally:
        for server in started:
            server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _settings(urls: list[str], **values: object) -> Settings:
    return Settings.model_validate(
        {"endpoints": [{"url": u, "kind": "openai"} for u in urls], "probe_local": False, "embedded": "off", **values}
    )


async def _member(settings: Settings, client: httpx.AsyncClient) -> tuple[ModelInfo, Dispatcher]:
    discovery = Discovery(settings, client, local_endpoints=())
    (member,) = await discovery.models()
    monitor = LoadMonitor(client, headers_for=discovery.auth_headers, ttl_s=0)
    return member, Dispatcher(settings, discovery.provider_for, load_monitor=monitor)


async def test_discovery_makes_one_member_of_vllm_replicas(
    servers: list[FaultServer], client: httpx.AsyncClient
) -> None:
    settings = _settings([s.url for s in servers])
    member, _ = await _member(settings, client)
    assert member.server == "vllm"
    assert [r.endpoint for r in replicas_of(member)] == [s.url for s in servers]
    statuses = await Discovery(settings, client, local_endpoints=()).endpoints()
    assert [s.models for s in statuses] == [1, 1, 1]  # each endpoint serves the one member


async def test_samples_spread_across_replicas_and_share_one_identity(
    servers: list[FaultServer], client: httpx.AsyncClient
) -> None:
    member, dispatcher = await _member(_settings([s.url for s in servers[:2]]), client)
    answers = await dispatcher.run([member], lambda _m: MESSAGES, params=PARAMS, samples=4)
    assert [a.status for a in answers] == [AnswerStatus.ANSWERED] * 4
    assert {a.model_id for a in answers} == {member.id}  # one member: one identity, one vote
    assert Counter(a.replica for a in answers) == {servers[0].url: 2, servers[1].url: 2}


async def test_a_failing_replica_fails_over_to_another(servers: list[FaultServer], client: httpx.AsyncClient) -> None:
    servers[0].set_models([FakeModel("m", behaviour=Behaviour.HTTP_ERROR, status=500)])
    member, dispatcher = await _member(_settings([s.url for s in servers[:2]]), client)
    answers = await dispatcher.run([member], lambda _m: MESSAGES, params=PARAMS, samples=3)
    assert [a.status for a in answers] == [AnswerStatus.ANSWERED] * 3
    assert {a.replica for a in answers} == {servers[1].url}
    # The first call that met the broken replica says so; after that the replica is avoided.
    assert any(a.tried == [f"{servers[0].url}: http_500"] for a in answers)


async def test_a_hanging_replica_times_out_and_fails_over_within_the_deadline(
    servers: list[FaultServer], client: httpx.AsyncClient
) -> None:
    servers[0].set_models([FakeModel("m", behaviour=Behaviour.HANG)])
    member, dispatcher = await _member(_settings([s.url for s in servers[:2]], timeout_s=0.5, deadline_s=5), client)
    answers = await dispatcher.run([member], lambda _m: MESSAGES, params=PARAMS, samples=2)
    assert [a.status for a in answers] == [AnswerStatus.ANSWERED] * 2
    assert {a.replica for a in answers} == {servers[1].url}
    assert [f"{servers[0].url}: timeout"] in [a.tried for a in answers]


async def test_when_every_replica_fails_the_answer_names_them_all(
    servers: list[FaultServer], client: httpx.AsyncClient
) -> None:
    for server in servers[:2]:
        server.set_models([FakeModel("m", behaviour=Behaviour.HTTP_ERROR, status=503)])
    member, dispatcher = await _member(_settings([s.url for s in servers[:2]]), client)
    (answer,) = await dispatcher.run([member], lambda _m: MESSAGES, params=PARAMS)
    assert answer.status is AnswerStatus.FAILED
    assert sorted(answer.tried) == sorted(f"{s.url}: http_503" for s in servers[:2])


async def test_an_overloaded_vllm_replica_is_asked_last(servers: list[FaultServer], client: httpx.AsyncClient) -> None:
    servers[0].vllm_metrics = _metrics(waiting=40)
    servers[1].vllm_metrics = _metrics(waiting=0)
    member, dispatcher = await _member(_settings([s.url for s in servers[:2]]), client)
    answers = await dispatcher.run([member], lambda _m: MESSAGES, params=PARAMS, samples=3)
    assert [a.status for a in answers] == [AnswerStatus.ANSWERED] * 3
    assert {a.replica for a in answers} == {servers[1].url}
    # Once it reports a short queue again, it gets its share.
    servers[0].vllm_metrics = _metrics(waiting=0)
    answers = await dispatcher.run([member], lambda _m: MESSAGES, params=PARAMS, samples=4)
    assert Counter(a.replica for a in answers) == {servers[0].url: 2, servers[1].url: 2}


async def test_an_overloaded_server_is_asked_for_fewer_samples(
    servers: list[FaultServer], client: httpx.AsyncClient
) -> None:
    servers[0].vllm_metrics = _metrics(waiting=3, kv=0.99)  # KV cache full: it queues and preempts
    servers[0].vllm_healthy = True
    member, dispatcher = await _member(_settings([servers[0].url]), client)
    answers = await dispatcher.run([member], lambda _m: MESSAGES, params=PARAMS, samples=3)
    assert [(a.status, a.sample) for a in answers] == [(AnswerStatus.ANSWERED, 0)]
    servers[0].vllm_metrics = _metrics(waiting=0)
    answers = await dispatcher.run([member], lambda _m: MESSAGES, params=PARAMS, samples=3)
    assert len(answers) == 3


async def test_an_unhealthy_vllm_replica_is_avoided(servers: list[FaultServer], client: httpx.AsyncClient) -> None:
    servers[1].vllm_healthy = False  # /health 503: the engine is down or still loading
    member, dispatcher = await _member(_settings([s.url for s in servers[:2]]), client)
    answers = await dispatcher.run([member], lambda _m: MESSAGES, params=PARAMS, samples=2)
    assert {a.replica for a in answers} == {servers[0].url}
    assert all(a.status is AnswerStatus.ANSWERED for a in answers)


async def test_two_ollama_hosts_with_the_same_tag_are_one_member(client: httpx.AsyncClient) -> None:
    hosts = [FaultServer([FakeModel("qwen2.5-coder:7b", delay_s=0.05, loaded=True)]).start() for _ in range(2)]
    other = FaultServer([FakeModel("qwen2.5-coder:7b", digest="f" * 64)]).start()  # other weights, same tag
    try:
        settings = Settings.model_validate(
            {"endpoints": [{"url": h.url} for h in [*hosts, other]], "probe_local": False, "embedded": "off"}
        )
        discovery = Discovery(settings, client, local_endpoints=())
        members = await discovery.models()
        assert [len(replicas_of(m)) for m in members] == [2, 1]
        assert [m.server for m in members] == ["ollama", "ollama"]
        dispatcher = Dispatcher(settings, discovery.provider_for, load_monitor=LoadMonitor(client))
        answers = await dispatcher.run(members[:1], lambda _m: MESSAGES, params=PARAMS, samples=2)
        assert {a.replica for a in answers} == {h.url for h in hosts}
    finally:
        for server in [*hosts, other]:
            server.stop()


async def test_models_passed_in_still_get_their_endpoints_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller that discovered once and passes the models to other pipelines (as many users of one gateway
    would): each pipeline must still send the endpoint's key, from the settings' api_key_env."""
    from codeconductor.ensemble.pipeline import Pipeline
    from codeconductor.ensemble.types import CodeContext, ProviderKind, Request

    monkeypatch.setenv("CC_TEST_FAKE_KEY", "sk-fake-key")
    with FaultServer([FakeModel("m")], api_key="sk-fake-key") as server:
        settings = Settings.model_validate(
            {
                "endpoints": [{"url": server.url, "kind": "openai", "api_key_env": "CC_TEST_FAKE_KEY"}],
                "probe_local": False,
                "embedded": "off",
                "verify": False,
            }
        )
        model = ModelInfo(name="m", provider=ProviderKind.OPENAI, endpoint=server.url)
        request = Request(task="ask", context=CodeContext(selection="x = 1", end_line=1), instruction="what?")
        async with Pipeline(settings) as pipeline:
            result = await pipeline.run(request, models=[model])
    assert [a.status for a in result.answers] == [AnswerStatus.ANSWERED]
