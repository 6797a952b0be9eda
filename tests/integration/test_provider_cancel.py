"""Cancelling a generation closes its connection to the model server, for each provider (Ollama's API and the
OpenAI-compatible one, both served by the fault-injection fake): the server stops generating for nobody."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from codeconductor.ensemble.providers import OllamaProvider, OpenAICompatProvider
from codeconductor.ensemble.types import ChatMessage, GenerationParams, ModelInfo, ProviderKind
from tests.support.fault_server import FaultServer

MESSAGES = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Say hello")]
PROVIDERS = [(OllamaProvider, ProviderKind.OLLAMA), (OpenAICompatProvider, ProviderKind.OPENAI)]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=2.0)) as c:
        yield c


@pytest.mark.parametrize(("provider_class", "kind"), PROVIDERS, ids=[kind.value for _, kind in PROVIDERS])
async def test_cancel_closes_connection_to_server(
    fault_server: FaultServer,
    client: httpx.AsyncClient,
    provider_class: type[OllamaProvider | OpenAICompatProvider],
    kind: ProviderKind,
) -> None:
    provider = provider_class(fault_server.url, client)
    model = ModelInfo(name="slow", provider=kind, endpoint=fault_server.url)
    first = asyncio.Event()
    task = asyncio.create_task(provider.generate(model, MESSAGES, GenerationParams(), lambda _t: first.set()))
    await first.wait()
    fault_server.disconnects.clear()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(200):  # the server notices the closed connection on its own loop
        if "slow" in fault_server.disconnects:
            break
        await asyncio.sleep(0.01)
    assert "slow" in fault_server.disconnects
