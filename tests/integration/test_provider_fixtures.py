"""The shared test fixtures themselves: the tiny model is served by a real llama.cpp server, the fake answers."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import LlamaServerFactory
from tests.support.fault_server import FaultServer
from tests.support.llama_server import LlamaServer


def test_tiny_server_serves_chat_and_completion(tiny_server: LlamaServer) -> None:
    models = httpx.get(f"{tiny_server.url}/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny"]
    chat = httpx.post(
        f"{tiny_server.url}/v1/chat/completions",
        json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5},
        timeout=30,
    ).json()
    text = chat["choices"][0]["message"]["content"]
    assert len(text) == 5  # one printable ASCII byte per token, never an early stop
    assert text.isprintable() or "\n" in text
    assert chat["usage"]["completion_tokens"] == 5


def test_factory_starts_a_second_server(llama_server_factory: LlamaServerFactory, tiny_gguf: Path) -> None:
    server = llama_server_factory(tiny_gguf, alias="second")
    assert httpx.get(f"{server.url}/v1/models").json()["data"][0]["id"] == "second"
    server.stop()
    assert not server.running


def test_fault_server_lists_models_on_both_apis(fault_server: FaultServer) -> None:
    openai = {m["id"] for m in httpx.get(f"{fault_server.url}/v1/models").json()["data"]}
    ollama = {m["name"] for m in httpx.get(f"{fault_server.url}/api/tags").json()["models"]}
    assert "hang" in openai
    assert openai == ollama
