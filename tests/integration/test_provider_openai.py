"""OpenAICompatProvider against real llama.cpp servers (tiny random model, SmolLM2) and, for faults, the fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from codeconductor.ensemble.errors import (
    ModelError,
    ProviderClosed,
    ProviderError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderTimeout,
    ProviderUnavailable,
)
from codeconductor.ensemble.providers import OpenAICompatProvider
from codeconductor.ensemble.types import ChatMessage, GenerationParams, ModelInfo, ProviderKind
from tests.conftest import LlamaServerFactory
from tests.support.fault_server import DEFAULT_TEXT, FaultServer
from tests.support.llama_server import LlamaServer, free_port

MESSAGES = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Say hello")]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=2.0)) as c:
        yield c


def _model(url: str, name: str, *, chat: bool = True) -> ModelInfo:
    return ModelInfo(name=name, provider=ProviderKind.OPENAI, endpoint=url, chat=chat)


# --- real llama.cpp server, tiny random model -------------------------------------------------------------------


async def test_probe_and_list_models(tiny_server: LlamaServer, client: httpx.AsyncClient) -> None:
    provider = OpenAICompatProvider(tiny_server.url + "/v1", client)  # a trailing /v1 is accepted
    assert provider.base_url == tiny_server.url
    assert await provider.probe()
    models = await provider.list_models()
    assert [(m.name, m.provider, m.endpoint, m.loaded) for m in models] == [
        ("tiny", ProviderKind.OPENAI, tiny_server.url, None)
    ]


@pytest.mark.parametrize("chat", [True, False])
async def test_generate_whole_answer_with_usage(
    tiny_server: LlamaServer, client: httpx.AsyncClient, chat: bool
) -> None:
    provider = OpenAICompatProvider(tiny_server.url, client)
    result = await provider.generate(
        _model(tiny_server.url, "tiny", chat=chat), MESSAGES, GenerationParams(max_tokens=12, temperature=0)
    )
    # The tiny model emits one printable ASCII character per token and never stops early.
    assert len(result.text) == 12
    assert result.tokens_out == 12
    assert result.tokens_in is not None
    assert result.tokens_in > 3


@pytest.mark.parametrize("chat", [True, False])
async def test_streaming_tokens_arrive_in_order_and_join_to_text(
    tiny_server: LlamaServer, client: httpx.AsyncClient, chat: bool
) -> None:
    provider = OpenAICompatProvider(tiny_server.url, client)
    model = _model(tiny_server.url, "tiny", chat=chat)
    tokens: list[str] = []
    streamed = await provider.generate(model, MESSAGES, GenerationParams(max_tokens=16, temperature=0), tokens.append)
    assert len(tokens) == 16
    assert "".join(tokens) == streamed.text
    assert streamed.tokens_out == 16
    assert streamed.first_token_s is not None
    # Greedy decoding: the streamed answer is the same as the whole one.
    whole = await provider.generate(model, MESSAGES, GenerationParams(max_tokens=16, temperature=0))
    assert whole.text == streamed.text


async def test_cancellation_stops_the_stream_and_server_serves_next(
    tiny_server: LlamaServer, client: httpx.AsyncClient
) -> None:
    provider = OpenAICompatProvider(tiny_server.url, client)
    model = _model(tiny_server.url, "tiny")
    first = asyncio.Event()
    tokens: list[str] = []

    def on_token(piece: str) -> None:
        tokens.append(piece)
        first.set()

    task = asyncio.create_task(provider.generate(model, MESSAGES, GenerationParams(max_tokens=400), on_token))
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    after_cancel = len(tokens)
    assert after_cancel < 400
    result = await provider.generate(model, MESSAGES, GenerationParams(max_tokens=5, temperature=0))
    assert len(result.text) == 5
    assert len(tokens) == after_cancel  # nothing more arrived from the cancelled stream


async def test_second_request_while_one_is_in_flight(tiny_server: LlamaServer, client: httpx.AsyncClient) -> None:
    """llama-cpp-python interrupts a stream when another request waits: that must surface as ProviderClosed,
    never as a silently truncated answer; the waiting request is served in full."""
    provider = OpenAICompatProvider(tiny_server.url, client)
    model = _model(tiny_server.url, "tiny")
    streamed: list[str] = []
    long = asyncio.create_task(provider.generate(model, MESSAGES, GenerationParams(max_tokens=60), streamed.append))
    short = asyncio.create_task(provider.generate(model, MESSAGES, GenerationParams(max_tokens=7)))
    long_result, short_result = await asyncio.gather(long, short, return_exceptions=True)
    assert not isinstance(short_result, BaseException)
    assert len(short_result.text) == 7
    if isinstance(long_result, BaseException):
        assert isinstance(long_result, ProviderClosed)
        assert len(streamed) < 60
    else:
        assert len(long_result.text) == 60
        assert "".join(streamed) == long_result.text


async def test_two_servers_two_models_disagree(
    llama_server_factory: LlamaServerFactory, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    from tests.support.gguf_tiny import write_tiny_gguf

    other = llama_server_factory(write_tiny_gguf(tmp_path / "seed7.gguf", seed=7), alias="tiny-7")
    provider = OpenAICompatProvider(other.url, client)
    assert [m.name for m in await provider.list_models()] == ["tiny-7"]
    result = await provider.generate(_model(other.url, "tiny-7"), MESSAGES, GenerationParams(max_tokens=8))
    assert len(result.text) == 8


# --- real SmolLM2 weights ---------------------------------------------------------------------------------------


@pytest.mark.slow
async def test_smollm2_answers_sensibly(smollm2_server: LlamaServer, client: httpx.AsyncClient) -> None:
    provider = OpenAICompatProvider(smollm2_server.url, client)
    result = await provider.generate(
        _model(smollm2_server.url, "smollm2"),
        [ChatMessage(role="user", content="What is the capital of France? Answer with one word.")],
        GenerationParams(max_tokens=16, temperature=0, seed=1),
    )
    assert "paris" in result.text.lower()


# --- faults, via the fake server --------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_ok_fake_answer_and_usage(fault_server: FaultServer, client: httpx.AsyncClient, stream: bool) -> None:
    provider = OpenAICompatProvider(fault_server.url, client)
    tokens: list[str] = []
    result = await provider.generate(
        _model(fault_server.url, "ok-fast"),
        MESSAGES,
        GenerationParams(seed=3, stop=["###"]),
        tokens.append if stream else None,
    )
    assert result.text == DEFAULT_TEXT
    assert result.tokens_out == 8  # the fake's word-sized pieces
    assert result.tokens_in == 4  # words in the messages
    assert ("".join(tokens) == DEFAULT_TEXT) if stream else not tokens
    body = next(r.body for r in reversed(fault_server.requests) if r.path == "/v1/chat/completions")
    assert body["seed"] == 3
    assert body["stop"] == ["###"]
    assert body["stream"] is stream


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("name", "error", "reason"),
    [
        ("http500", ProviderHTTPError, "http_500"),
        ("drop", ProviderClosed, "stream_closed"),
        ("garbage-utf8", ProviderProtocolError, "protocol"),
        ("garbage-json", ProviderProtocolError, "protocol"),
        ("huge", ProviderProtocolError, "protocol"),
        ("error", ModelError, "model_error"),
    ],
)
async def test_fault_paths(  # noqa: PLR0917 - pytest passes parameters positionally
    fault_server: FaultServer,
    client: httpx.AsyncClient,
    name: str,
    error: type[ProviderError],
    reason: str,
    stream: bool,
) -> None:
    provider = OpenAICompatProvider(fault_server.url, client)
    tokens: list[str] = []
    with pytest.raises(error) as info:
        await provider.generate(
            _model(fault_server.url, name), MESSAGES, GenerationParams(), tokens.append if stream else None
        )
    exc = info.value
    assert exc.reason == reason
    assert exc.endpoint == fault_server.url
    assert exc.model == name
    if name == "http500":
        assert isinstance(exc, ProviderHTTPError)
        assert exc.status_code == 500
        assert "internal error serving http500" in str(exc)


@pytest.mark.parametrize(("name", "stream"), [("hang", False), ("hang", True), ("stall", True), ("stall", False)])
async def test_hang_and_stall_time_out(fault_server: FaultServer, name: str, stream: bool) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5, connect=2.0)) as short:
        provider = OpenAICompatProvider(fault_server.url, short)
        with pytest.raises(ProviderTimeout):
            await provider.generate(
                _model(fault_server.url, name), MESSAGES, GenerationParams(), (lambda _t: None) if stream else None
            )


async def test_connection_refused_is_unavailable(client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    provider = OpenAICompatProvider(url, client)
    assert not await provider.probe()
    with pytest.raises(ProviderUnavailable):
        await provider.list_models()
    with pytest.raises(ProviderUnavailable):
        await provider.generate(_model(url, "x"), MESSAGES, GenerationParams())


async def test_api_key_is_sent_and_never_shown(client: httpx.AsyncClient) -> None:
    secret = "sk-test-very-secret"
    with FaultServer(["ok-key"], apis=("openai",), api_key=secret) as server:
        keyed = OpenAICompatProvider(server.url, client, api_key=secret, label="remote")
        assert secret not in repr(keyed)
        assert secret not in str(keyed)
        assert await keyed.probe()
        assert [m.name for m in await keyed.list_models()] == ["ok-key"]
        result = await keyed.generate(_model(server.url, "ok-key"), MESSAGES, GenerationParams())
        assert result.text == DEFAULT_TEXT
        assert server.requests[-1].headers["authorization"] == f"Bearer {secret}"

        anonymous = OpenAICompatProvider(server.url, client)
        assert not await anonymous.probe()
        with pytest.raises(ProviderHTTPError) as info:
            await anonymous.generate(_model(server.url, "ok-key"), MESSAGES, GenerationParams())
        assert info.value.status_code == 401
        assert secret not in str(info.value)


async def test_lmstudio_native_list_marks_loaded_and_skips_embeddings(client: httpx.AsyncClient) -> None:
    from tests.support.fault_server import FakeModel

    models = [
        FakeModel("qwen2.5-coder-7b-instruct", loaded=True, family="qwen2", context_length=32768),
        FakeModel("llama-3.2-1b-instruct", loaded=False),
        FakeModel("text-embedding-nomic-embed-text-v1.5", lmstudio_type="embeddings"),
        FakeModel("jina-v2-small", lmstudio_type="embeddings"),  # only the native list says it embeds
    ]
    with FaultServer(models, apis=("openai", "lmstudio")) as server:
        listed = await OpenAICompatProvider(server.url, client).list_models()
    assert [(m.name, m.loaded, m.family, m.context_length) for m in listed] == [
        ("qwen2.5-coder-7b-instruct", True, "qwen2", 32768),
        ("llama-3.2-1b-instruct", False, "llama", 4096),
    ]


async def test_plain_openai_list_skips_embedding_names(client: httpx.AsyncClient) -> None:
    with FaultServer(["coder-7b", "nomic-embed-text", "bge-m3", "all-MiniLM-L6-v2"], apis=("openai",)) as server:
        listed = await OpenAICompatProvider(server.url, client).list_models()
    assert [m.name for m in listed] == ["coder-7b"]
    assert listed[0].loaded is None
