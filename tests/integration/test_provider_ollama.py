"""OllamaProvider against Ollama's documented wire format, served by the fault-injection fake (no real Ollama
runs here), covering the model list join (tags + ps + show) and every failure path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

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
from codeconductor.ensemble.providers import OllamaProvider
from codeconductor.ensemble.types import ChatMessage, GenerationParams, ModelInfo, ProviderKind
from tests.support.fault_server import DEFAULT_TEXT, FakeModel, FaultServer
from tests.support.llama_server import free_port

MESSAGES = [ChatMessage(role="system", content="Be brief."), ChatMessage(role="user", content="Say hello")]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=2.0)) as c:
        yield c


@pytest.fixture(scope="module")
def catalogue() -> Iterator[FaultServer]:
    """An Ollama with a realistic mix: loaded and unloaded chat models, embedding models, an old-style entry."""
    models = [
        FakeModel("qwen2.5-coder:7b", family="qwen2", parameter_size="7.6B", loaded=True, context_length=32768),
        FakeModel("llama3.2:1b", parameter_size="1.2B", quantization="Q8_0", size_bytes=1_300_000_000),
        FakeModel("nomic-embed-text:latest", family="nomic-bert", capabilities=["embedding"]),
        FakeModel("old-chat:latest", capabilities=None),  # /api/show without capabilities (Ollama < 0.6.4)
        FakeModel("all-minilm:latest", family="bert", capabilities=None),
        FakeModel("vision:latest", capabilities=["completion", "vision"]),
    ]
    with FaultServer(models, apis=("ollama",)) as server:
        yield server


def _model(url: str, name: str, *, chat: bool = True) -> ModelInfo:
    return ModelInfo(name=name, provider=ProviderKind.OLLAMA, endpoint=url, chat=chat)


async def test_probe(catalogue: FaultServer, client: httpx.AsyncClient) -> None:
    assert await OllamaProvider(catalogue.url, client).probe()
    with FaultServer(["x"], apis=("openai",)) as not_ollama:
        assert not await OllamaProvider(not_ollama.url, client).probe()
    assert not await OllamaProvider(f"http://127.0.0.1:{free_port()}", client).probe()


async def test_list_models_joins_tags_ps_and_show(catalogue: FaultServer, client: httpx.AsyncClient) -> None:
    models = await OllamaProvider(catalogue.url, client).list_models()
    by_name = {m.name: m for m in models}
    assert list(by_name) == ["qwen2.5-coder:7b", "llama3.2:1b", "old-chat:latest", "vision:latest"]
    qwen = by_name["qwen2.5-coder:7b"]
    assert (qwen.family, qwen.parameter_size, qwen.quantization, qwen.loaded, qwen.context_length) == (
        "qwen2",
        "7.6B",
        "Q4_K_M",
        True,
        32768,
    )
    llama = by_name["llama3.2:1b"]
    assert (llama.loaded, llama.quantization, llama.size_bytes) == (False, "Q8_0", 1_300_000_000)
    assert all(m.provider is ProviderKind.OLLAMA and m.endpoint == catalogue.url for m in models)


@pytest.mark.parametrize("stream", [False, True])
async def test_chat_answer_counts_and_request_body(
    fault_server: FaultServer, client: httpx.AsyncClient, stream: bool
) -> None:
    provider = OllamaProvider(fault_server.url, client)
    tokens: list[str] = []
    params = GenerationParams(temperature=0.1, max_tokens=64, seed=5, stop=["```"], keep_alive="5m")
    result = await provider.generate(
        _model(fault_server.url, "ok-fast"), MESSAGES, params, tokens.append if stream else None
    )
    assert result.text == DEFAULT_TEXT
    assert ("".join(tokens) == DEFAULT_TEXT) if stream else not tokens
    assert (result.tokens_in, result.tokens_out, result.load_s) == (4, 8, 0.5)
    request = next(r for r in reversed(fault_server.requests) if r.path == "/api/chat")
    assert request.body == {
        "model": "ok-fast",
        "stream": stream,
        "options": {"temperature": 0.1, "num_predict": 64, "num_ctx": 8192, "seed": 5, "stop": ["```"]},
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}],
        "keep_alive": "5m",
    }


@pytest.mark.parametrize("stream", [False, True])
async def test_completion_mode_uses_generate_raw(
    fault_server: FaultServer, client: httpx.AsyncClient, stream: bool
) -> None:
    provider = OllamaProvider(fault_server.url, client)
    prompt = [ChatMessage(role="user", content="def add(a, b):\n")]
    result = await provider.generate(
        _model(fault_server.url, "ok-fast", chat=False),
        prompt,
        GenerationParams(),
        (lambda _t: None) if stream else None,
    )
    assert result.text == DEFAULT_TEXT
    request = next(r for r in reversed(fault_server.requests) if r.path == "/api/generate")
    assert request.body["prompt"] == "def add(a, b):\n"
    assert request.body["raw"] is True
    assert "messages" not in request.body
    assert "keep_alive" not in request.body  # not sent unless asked for


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("http500", ProviderHTTPError),
        ("drop", ProviderClosed),
        ("garbage-utf8", ProviderProtocolError),
        ("garbage-json", ProviderProtocolError),
        ("huge", ProviderProtocolError),
    ],
)
async def test_fault_paths(
    fault_server: FaultServer, client: httpx.AsyncClient, name: str, error: type[ProviderError], stream: bool
) -> None:
    provider = OllamaProvider(fault_server.url, client)
    with pytest.raises(error) as info:
        await provider.generate(
            _model(fault_server.url, name), MESSAGES, GenerationParams(), (lambda _t: None) if stream else None
        )
    assert info.value.model == name
    if name == "http500":
        assert isinstance(info.value, ProviderHTTPError)
        assert info.value.status_code == 500
        assert "internal error serving http500" in str(info.value)


async def test_in_band_error_mid_stream_is_model_error(fault_server: FaultServer, client: httpx.AsyncClient) -> None:
    tokens: list[str] = []
    with pytest.raises(ModelError, match="ran out of memory") as info:
        await OllamaProvider(fault_server.url, client).generate(
            _model(fault_server.url, "error"), MESSAGES, GenerationParams(), tokens.append
        )
    assert tokens == ["partial "]
    assert info.value.reason == "model_error"


async def test_error_status_without_stream_quotes_server(fault_server: FaultServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderHTTPError, match="ran out of memory") as info:
        await OllamaProvider(fault_server.url, client).generate(
            _model(fault_server.url, "error"), MESSAGES, GenerationParams()
        )
    assert info.value.status_code == 500


async def test_unknown_model_is_http_404(fault_server: FaultServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderHTTPError, match="not found") as info:
        await OllamaProvider(fault_server.url, client).generate(
            _model(fault_server.url, "never-pulled:7b"), MESSAGES, GenerationParams()
        )
    assert info.value.reason == "http_404"


@pytest.mark.parametrize(("name", "stream"), [("hang", False), ("hang", True), ("stall", True), ("stall", False)])
async def test_hang_and_stall_time_out(fault_server: FaultServer, name: str, stream: bool) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5, connect=2.0)) as short:
        with pytest.raises(ProviderTimeout):
            await OllamaProvider(fault_server.url, short).generate(
                _model(fault_server.url, name), MESSAGES, GenerationParams(), (lambda _t: None) if stream else None
            )


async def test_connection_refused_is_unavailable(client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    provider = OllamaProvider(url, client)
    with pytest.raises(ProviderUnavailable):
        await provider.list_models()
    with pytest.raises(ProviderUnavailable):
        await provider.generate(_model(url, "llama3"), MESSAGES, GenerationParams())


async def test_list_models_on_a_broken_server(client: httpx.AsyncClient) -> None:
    with FaultServer([], apis=("openai",)) as server, pytest.raises(ProviderHTTPError) as info:  # no /api/tags
        await OllamaProvider(server.url, client).list_models()
    assert info.value.status_code == 404


async def test_num_ctx_is_a_stable_bucket_that_fits_the_prompt(
    fault_server: FaultServer, client: httpx.AsyncClient
) -> None:
    """num_ctx stays the same across ordinary requests (a change would make Ollama reload the model), grows to the
    next bucket once for a prompt that would not fit, stays there, and never exceeds the model's context length."""
    provider = OllamaProvider(fault_server.url, client)
    model = ModelInfo(name="ok-fast", provider=ProviderKind.OLLAMA, endpoint=fault_server.url, context_length=32768)

    async def sent_num_ctx(prompt_chars: int, max_tokens: int = 512) -> int:
        messages = [ChatMessage(role="user", content="x" * prompt_chars)]
        await provider.generate(model, messages, GenerationParams(max_tokens=max_tokens))
        request = next(r for r in reversed(fault_server.requests) if r.path == "/api/chat")
        return int(request.body["options"]["num_ctx"])

    assert [await sent_num_ctx(n) for n in (10, 3000, 20_000)] == [8192, 8192, 8192]
    assert await sent_num_ctx(40_000) == 16384  # ~13k tokens + 512 do not fit 8192
    assert await sent_num_ctx(10) == 16384  # and the window stays put afterwards
    assert await sent_num_ctx(300_000) == 32768  # capped at the model's context length
    small = ModelInfo(name="tiny-ctx", provider=ProviderKind.OLLAMA, endpoint=fault_server.url, context_length=2048)
    with pytest.raises(ProviderHTTPError):  # the fake serves no such model; the request it got is what counts
        await OllamaProvider(fault_server.url, client).generate(small, MESSAGES, GenerationParams(max_tokens=16))
    request = next(r for r in reversed(fault_server.requests) if r.path == "/api/chat")
    assert request.body["options"]["num_ctx"] == 2048
