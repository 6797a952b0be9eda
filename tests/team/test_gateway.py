"""A real LiteLLM proxy (the team gateway) in front of real llama.cpp servers, all on loopback.

Model group ``tiny`` has two deployments (two llama.cpp servers on the same GGUF file); discovery must see one
member, count its deployments, and the consensus must count it once however many replicas answered. Killing a
replica of ``tiny-k`` in the middle of a run must lose no answer.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator

import httpx
import pytest

from codeconductor.ensemble.discovery import Discovery
from codeconductor.ensemble.gateways import LoadMonitor
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.replicas import replicas_of
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import AnswerStatus, CodeContext, ProgressEvent, Request
from tests.conftest import LlamaServerFactory
from tests.support.litellm_proxy import LiteLLMProxy
from tests.support.llama_server import LlamaServer

from .conftest import KEY_ENV

pytestmark = [pytest.mark.team, pytest.mark.timeout(240)]

CODE = "def add(a, b):\n    return a - b\n"


def _settings(endpoints: list[dict[str, str]], **extra: object) -> Settings:
    return Settings.model_validate(
        {
            "endpoints": endpoints,
            "probe_local": False,
            "embedded": "off",
            "max_tokens": 8,
            "verify": False,
            "timeout_s": 30,
            "deadline_s": 60,
            **extra,
        }
    )


def _proxy(proxy: LiteLLMProxy) -> dict[str, str]:
    return {"url": proxy.url, "kind": "openai", "api_key_env": KEY_ENV, "name": "team gateway"}


def _request() -> Request:
    return Request.model_validate(
        {"task": "fix", "context": CodeContext(selection=CODE, end_line=2), "instruction": "fix it"}
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_discovery_sees_the_gateway_and_its_deployments(
    litellm_proxy: LiteLLMProxy, client: httpx.AsyncClient
) -> None:
    discovery = Discovery(_settings([_proxy(litellm_proxy)]), client, local_endpoints=())
    models = {m.name: m for m in await discovery.models()}
    assert set(models) == {"tiny", "tiny-k"}
    assert models["tiny"].server == "litellm"
    assert models["tiny"].deployments == 2
    (status,) = await discovery.endpoints()
    assert (status.state, status.models) == ("up", 2)
    # Health: liveliness and readiness are what LoadMonitor reads; a ready gateway is not overloaded.
    assert (await client.get(f"{litellm_proxy.url}/health/liveliness")).status_code == 200
    monitor = LoadMonitor(client)
    await monitor.refresh([models["tiny"]])
    load = monitor.load(models["tiny"])
    assert load is not None
    assert load.ready
    # Without the key the gateway lists nothing (and discovery says why, without the key).
    os.environ["CC_TEST_NO_KEY"] = "sk-wrong"
    try:
        wrong = {**_proxy(litellm_proxy), "api_key_env": "CC_TEST_NO_KEY"}
        (status,) = await Discovery(_settings([wrong]), client, local_endpoints=()).endpoints()
    finally:
        del os.environ["CC_TEST_NO_KEY"]
    assert status.state == "error"
    assert "sk-wrong" not in (status.detail or "")


async def test_replicas_behind_the_gateway_count_once(
    litellm_proxy: LiteLLMProxy, tiny_replicas: dict[str, list[LlamaServer]], llama_server_factory: LlamaServerFactory
) -> None:
    other = llama_server_factory(alias="other", n_ctx=2048)
    direct = [{"url": s.url, "kind": "openai"} for s in tiny_replicas["tiny"]]
    settings = _settings(
        [_proxy(litellm_proxy), *direct, {"url": other.url, "kind": "openai"}],
        include_models=["tiny", "other"],
        samples_per_model=4,
        per_endpoint_concurrency=2,
    )
    async with Pipeline(settings) as pipeline:
        members = {m.name: m for m in await pipeline.models()}
        assert set(members) == {"tiny", "other"}
        tiny = members["tiny"]
        # The gateway's group and the two servers it fronts: one member, three ways to reach it.
        assert [r.endpoint for r in replicas_of(tiny)] == [litellm_proxy.url, *(s.url for s in tiny_replicas["tiny"])]
        result = await pipeline.run(_request())
    tiny_answers = [a for a in result.answers if a.model.name == "tiny"]
    assert len(tiny_answers) == 4
    assert all(a.status is AnswerStatus.ANSWERED for a in result.answers)
    assert {a.model_id for a in tiny_answers} == {tiny.id}
    assert result.consensus.answered == 2  # two models answered, not four endpoints
    replicas = {a.replica for a in tiny_answers}
    assert len(replicas) >= 2  # spread, not all on one replica
    # Through the gateway, the answer names the deployment that served it.
    via_gateway = [r for r in replicas if r and r.startswith(litellm_proxy.url)]
    assert all(" -> http://127.0.0.1:" in r for r in via_gateway)


async def test_killing_a_replica_mid_run_loses_no_answer(
    litellm_proxy: LiteLLMProxy, tiny_replicas: dict[str, list[LlamaServer]]
) -> None:
    """Kills (SIGKILL) one of ``tiny-k``'s two llama.cpp servers as soon as the first answer is in; every sample
    still answers, through the gateway's other deployment or the surviving server directly."""
    survivor, victim = tiny_replicas["tiny-k"]
    direct = [{"url": s.url, "kind": "openai"} for s in (survivor, victim)]
    settings = _settings([_proxy(litellm_proxy), *direct], include_models=["tiny-k"], samples_per_model=8)
    killed: list[int] = []

    def kill_on_first_answer(event: ProgressEvent) -> None:
        if event.status == "answered" and not killed:
            os.kill(victim.process.pid, signal.SIGKILL)
            killed.append(victim.process.pid)

    async with Pipeline(settings) as pipeline:
        result = await pipeline.run(_request(), on_progress=kill_on_first_answer)
    assert killed
    victim.process.wait(10)
    assert [a.status for a in result.answers] == [AnswerStatus.ANSWERED] * 8, [
        (a.status, a.replica, a.tried, a.error) for a in result.answers
    ]
    assert len({a.sample for a in result.answers}) == 8
    # The answers after the kill came from the survivor (directly or through the gateway).
    assert any(a.tried for a in result.answers) or all(victim.url not in (a.replica or "") for a in result.answers[2:])
