"""Discovery against real llama.cpp servers, dead and silent ports, and the fault server's Ollama/OpenAI APIs."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from codeconductor.ensemble.discovery import Discovery, LocalEndpoint
from codeconductor.ensemble.settings import EndpointSettings, Settings, is_loopback_url
from codeconductor.ensemble.types import ProviderKind
from tests.conftest import LlamaServerFactory
from tests.support.fault_server import FaultServer
from tests.support.llama_server import LlamaServer, free_port

pytestmark = pytest.mark.timeout(120)


class LoopbackOnly(httpx.AsyncBaseTransport):
    """Passes loopback requests to the network and records (never sends) anything else."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.refused: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not is_loopback_url(str(request.url)):
            self.refused.append(str(request.url))
            raise httpx.ConnectError("test transport: non-loopback address refused", request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
def transport() -> LoopbackOnly:
    return LoopbackOnly()


@pytest.fixture
async def client(transport: LoopbackOnly) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=transport) as client:
        yield client


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel completes them) but never answers a byte."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def settings(*urls: str, **extra: object) -> Settings:
    data: dict[str, object] = {
        "endpoints": [{"url": u} for u in urls],
        "probe_local": False,
        "embedded": "off",
    }
    data.update(extra)
    return Settings.model_validate(data)


async def test_finds_real_llama_servers(
    tiny_server: LlamaServer, llama_server_factory: LlamaServerFactory, client: httpx.AsyncClient
) -> None:
    other = llama_server_factory(alias="tiny-two")
    discovery = Discovery(settings(tiny_server.url, f"{other.url}/v1/"), client)
    models = await discovery.models()
    assert {(m.name, m.endpoint) for m in models} == {("tiny", tiny_server.url), ("tiny-two", other.url)}
    assert all(m.provider is ProviderKind.OPENAI for m in models)
    statuses = {s.url: s for s in await discovery.endpoints()}
    assert statuses[tiny_server.url].state == "up"
    assert statuses[tiny_server.url].api is ProviderKind.OPENAI
    assert statuses[other.url].models == 1
    assert statuses[other.url].source == "configured"


async def test_dead_port_is_reported_down_without_waiting(client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    discovery = Discovery(settings(url), client, probe_budget_s=5.0)
    assert await discovery.models() == []
    (status,) = await discovery.endpoints()
    assert (status.url, status.state, status.detail) == (url, "down", "nothing listening")
    # Refused at once: nowhere near the 5 s budget a silent server would cost.
    assert status.elapsed_s < 2.5


async def test_silent_endpoint_costs_the_probe_budget_and_is_an_error(
    silent_port: int, tiny_server: LlamaServer, client: httpx.AsyncClient
) -> None:
    url = f"http://127.0.0.1:{silent_port}"
    discovery = Discovery(settings(url, tiny_server.url), client, probe_budget_s=0.3)
    models = await discovery.models()
    assert [m.name for m in models] == ["tiny"]  # the silent one does not hide the good one
    status = next(s for s in await discovery.endpoints() if s.url == url)
    assert status.state == "error"
    assert "did not answer within 0.3 s" in (status.detail or "")


async def test_default_local_ports_are_probed_and_merged_with_configured(
    tiny_server: LlamaServer, client: httpx.AsyncClient
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    local = [LocalEndpoint("llama.cpp", tiny_server.url.replace("127.0.0.1", "localhost")), LocalEndpoint("x", dead)]
    configured = Settings(endpoints=[EndpointSettings(url=tiny_server.url, name="mine")], embedded="off")
    discovery = Discovery(configured, client, local_endpoints=local)
    assert [m.name for m in await discovery.models()] == ["tiny"]
    statuses = await discovery.endpoints()
    assert [(s.name, s.source, s.state) for s in statuses] == [("mine", "configured", "up"), ("x", "default", "down")]


async def test_ollama_api_is_detected_before_openai(fault_server: FaultServer, client: httpx.AsyncClient) -> None:
    # Other tests register more "ok-*" models on the shared fault server; this one only needs its own.
    discovery = Discovery(settings(fault_server.url, include_models=["ok-fast*"]), client)
    models = await discovery.models()
    assert [m.name.split(":")[0] for m in models] == ["ok-fast"]
    assert models[0].provider is ProviderKind.OLLAMA
    (status,) = await discovery.endpoints()
    assert status.api is ProviderKind.OLLAMA


async def test_openai_only_server_and_configured_kind(client: httpx.AsyncClient) -> None:
    with FaultServer(["ok-a"], apis=("openai",)) as server:
        auto = Discovery(settings(server.url), client)
        assert [(m.name, m.provider) for m in await auto.models()] == [("ok-a", ProviderKind.OPENAI)]
        wrong = Discovery(
            Settings(endpoints=[EndpointSettings(url=server.url, kind="ollama")], probe_local=False, embedded="off"),
            client,
        )
        assert await wrong.models() == []
        (status,) = await wrong.endpoints()
        assert status.state == "error"
        assert "Ollama" in (status.detail or "")


async def test_include_exclude_and_max_models(fault_server: FaultServer, client: httpx.AsyncClient) -> None:
    base = settings(fault_server.url, exclude_models=["garbage*", "HANG"])
    names = [m.name.split(":")[0] for m in await Discovery(base, client).models()]
    assert "hang" not in names
    assert not [n for n in names if n.startswith("garbage")]
    assert "ok-fast" in names
    limited = Discovery(settings(fault_server.url, max_models=2), client)
    assert len(await limited.models()) == 2
    assert any("max_models" in note for note in limited.notes)


async def test_cache_ttl_and_refresh(fault_server: FaultServer, client: httpx.AsyncClient) -> None:
    discovery = Discovery(settings(fault_server.url, discovery_ttl_s=600), client)
    fault_server.clear_log()
    await discovery.models()
    probes = len([r for r in fault_server.requests if r.path == "/api/version"])
    await discovery.models()
    await discovery.endpoints()
    assert len([r for r in fault_server.requests if r.path == "/api/version"]) == probes == 1
    await discovery.models(refresh=True)
    assert len([r for r in fault_server.requests if r.path == "/api/version"]) == 2
    discovery.update_settings(settings(fault_server.url, discovery_ttl_s=600))
    await discovery.models()
    assert len([r for r in fault_server.requests if r.path == "/api/version"]) == 3


async def test_remote_endpoint_skipped_unless_allowed(
    tiny_server: LlamaServer, client: httpx.AsyncClient, transport: LoopbackOnly
) -> None:
    remote = "https://llm.remote.invalid"
    discovery = Discovery(settings(remote, tiny_server.url), client)
    assert [m.name for m in await discovery.models()] == ["tiny"]
    status = next(s for s in await discovery.endpoints() if s.url == remote)
    assert status.state == "skipped-remote"
    assert any("allow_remote" in note for note in discovery.notes)
    assert transport.refused == []  # not even tried
    allowed = Discovery(settings(remote, allow_remote=True), client)
    await allowed.models()
    assert transport.refused  # tried (and stopped by the test transport)


async def test_api_key_from_environment_never_logged(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sk-test-very-secret"
    with FaultServer(["ok-key"], apis=("openai",), api_key=secret) as server:
        configured = Settings(
            endpoints=[EndpointSettings(url=server.url, api_key_env="CODECONDUCTOR_TEST_KEY")],
            probe_local=False,
            embedded="off",
        )
        monkeypatch.delenv("CODECONDUCTOR_TEST_KEY", raising=False)
        without = Discovery(configured, client)
        assert await without.models() == []
        (status,) = await without.endpoints()
        assert status.state == "error"
        assert "API key" in (status.detail or "")

        monkeypatch.setenv("CODECONDUCTOR_TEST_KEY", secret)
        with_key = Discovery(configured, client)
        assert [m.name for m in await with_key.models()] == ["ok-key"]
    assert secret not in caplog.text
    assert secret not in str(status)


def embedded_available() -> bool:
    from codeconductor.ensemble.providers.embedded import EmbeddedProvider

    return EmbeddedProvider.available()


@pytest.mark.skipif(not embedded_available(), reason="embedded weights not installed")
async def test_embedded_modes(tiny_server: LlamaServer, client: httpx.AsyncClient) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    auto_empty = Discovery(settings(dead, embedded="auto"), client)
    try:
        models = await auto_empty.models()
        assert models
        assert {m.provider for m in models} == {ProviderKind.EMBEDDED}
        assert "no model servers found; using embedded models" in auto_empty.notes
        assert (await auto_empty.endpoints())[-1].state == "up"
    finally:
        await auto_empty.aclose()

    auto_served = Discovery(settings(tiny_server.url, embedded="auto"), client)
    assert [m.name for m in await auto_served.models()] == ["tiny"]

    on = Discovery(settings(tiny_server.url, embedded="on", exclude_models=["gemma*"]), client)
    try:
        names = [m.name for m in await on.models()]
        assert names[0] == "tiny"
        assert len(names) >= 2
        assert not [n for n in names if n.startswith("gemma")]
    finally:
        await on.aclose()

    off = Discovery(settings(dead, embedded="off"), client)
    assert await off.models() == []
