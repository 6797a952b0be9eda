"""Talk to an Ollama server through its native API (``/api/*``), which says more than its OpenAI-compatible one.

The model list joins ``/api/tags`` (sizes, family, quantisation), ``/api/ps`` (which models are loaded, so cheap
to ask) and ``/api/show`` (capabilities: embedding-only models are left out; context length). Answers come from
``/api/chat`` for chat models and ``/api/generate`` (raw prompt) for completion-only ones, streamed as NDJSON when
an ``on_token`` callback is given; the final ``done`` record gives token counts and the model's load time.

Context window: Ollama's default ``num_ctx`` (2048 to 4096 tokens, by version) silently drops the start of a longer
prompt, so every request sends ``options.num_ctx``. Changing it makes Ollama reload the model, so it is not sized
per request: it is a fixed bucket (:data:`NUM_CTX_BUCKETS`, at least ``num_ctx``), capped at the model's own
context length, that only grows (to the next bucket) when a prompt plus its answer would not fit, and then stays.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from ..errors import ProviderClosed, ProviderProtocolError
from ..types import ChatMessage, GenerationParams, GenerationResult, ModelInfo, ProviderKind
from ._server import ServerProvider
from ._wire import (
    AnswerBuffer,
    check_status,
    completion_prompt,
    iter_lines,
    looks_like_embedding,
)
from .base import ApiProbe, ProviderSpec, translate_transport_errors

__all__ = ["DEFAULT_NUM_CTX", "NUM_CTX_BUCKETS", "OllamaProvider"]

log = logging.getLogger(__name__)

DEFAULT_NUM_CTX = 8192
NUM_CTX_BUCKETS = (4096, 8192, 16384, 32768, 65536, 131072)
# (endpoint, model) -> the num_ctx sent so far. Per process, not per provider object: discovery makes a provider
# per request, and the window must stay put across requests so Ollama keeps the model loaded.
_WINDOWS: dict[tuple[str, str], int] = {}
_CHARS_PER_TOKEN = 3  # conservative for code (the same estimate the prompt builder trims with)


class OllamaProvider(ServerProvider):
    """One Ollama server, e.g. ``http://127.0.0.1:11434``."""

    kind = ProviderKind.OLLAMA
    api = ApiProbe("/api/version", "version", value_type=str)
    chat_path = "/api/chat"
    completion_path = "/api/generate"

    def __init__(self, base_url: str, client: httpx.AsyncClient, *, num_ctx: int = DEFAULT_NUM_CTX) -> None:
        super().__init__(base_url, client)
        self._num_ctx = num_ctx

    def num_ctx_for(self, model: ModelInfo, messages: Sequence[ChatMessage], max_tokens: int) -> int:
        """The context window to ask for: the current bucket of ``model`` unless this prompt needs a larger one."""
        needed = sum(len(m.content) for m in messages) // _CHARS_PER_TOKEN + max_tokens + 64
        key = (self.base_url, model.name)
        current = max(_WINDOWS.get(key, 0), self._num_ctx)
        if needed > current:
            current = next((b for b in NUM_CTX_BUCKETS if b >= needed), NUM_CTX_BUCKETS[-1])
        if model.context_length:
            current = min(current, model.context_length)
        _WINDOWS[key] = current
        return current

    def __repr__(self) -> str:
        return f"OllamaProvider(base_url={self.base_url!r})"

    async def list_models(self, timeout: float = 2.0) -> list[ModelInfo]:
        async with translate_transport_errors(self.base_url):
            response = await self._client.get(f"{self.base_url}/api/tags", timeout=timeout)
            await check_status(response, self.base_url, None)
            entries = response.json()["models"]
            if not isinstance(entries, list):
                raise TypeError("/api/tags 'models' is not a list")
            names = [str(e["name"]) for e in entries]
        loaded, shows = await asyncio.gather(
            self._loaded(timeout), asyncio.gather(*(self._show(name, timeout) for name in names))
        )
        models: list[ModelInfo] = []
        for entry, show in zip(entries, shows, strict=True):
            name = str(entry["name"])
            details = entry.get("details") if isinstance(entry.get("details"), dict) else {}
            family = details.get("family")
            capabilities = show.get("capabilities")
            if isinstance(capabilities, list):
                if "completion" not in capabilities:
                    continue  # e.g. ["embedding"]
            elif looks_like_embedding(name, family, details.get("families") or ()):
                continue  # older Ollama: no capabilities in /api/show, so judge by name and family
            models.append(
                ModelInfo(
                    name=name,
                    provider=self.kind,
                    endpoint=self.base_url,
                    family=family,
                    parameter_size=details.get("parameter_size"),
                    quantization=details.get("quantization_level"),
                    size_bytes=entry.get("size") if isinstance(entry.get("size"), int) else None,
                    digest=entry.get("digest") if isinstance(entry.get("digest"), str) else None,
                    context_length=_context_length(show),
                    loaded=None if loaded is None else name in loaded,
                )
            )
        return models

    async def _loaded(self, timeout: float) -> set[str] | None:
        """Names of the models in memory; None when the server cannot say (``/api/ps`` is newer than 0.1.38)."""
        try:
            response = await self._client.get(f"{self.base_url}/api/ps", timeout=timeout)
            if response.status_code != 200:
                return None
            return {str(m.get("name") or m.get("model")) for m in response.json().get("models") or []}
        except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
            log.debug("%s /api/ps: %s", self.base_url, type(exc).__name__)
            return None

    async def _show(self, name: str, timeout: float) -> dict[str, Any]:
        """``/api/show`` for one model; empty when it fails (the model is kept, judged by its name)."""
        try:
            # "name" for Ollama before 0.3, "model" after: sending both is accepted by all.
            response = await self._client.post(
                f"{self.base_url}/api/show", json={"model": name, "name": name}, timeout=timeout
            )
            if response.status_code != 200:
                return {}
            data = response.json()
            return data if isinstance(data, dict) else {}
        except (httpx.HTTPError, ValueError) as exc:
            log.debug("%s /api/show %s: %s", self.base_url, name, type(exc).__name__)
            return {}

    def _body(
        self, model: ModelInfo, messages: Sequence[ChatMessage], params: GenerationParams, stream: bool
    ) -> dict[str, Any]:
        options: dict[str, Any] = {
            "temperature": params.temperature,
            "num_predict": params.max_tokens,
            "num_ctx": self.num_ctx_for(model, messages, params.max_tokens),
        }
        if params.seed is not None:
            options["seed"] = params.seed
        if params.stop:
            options["stop"] = params.stop
        body: dict[str, Any] = {"model": model.name, "stream": stream, "options": options}
        if model.chat:
            body["messages"] = [{"role": m.role, "content": m.content} for m in messages]
        else:
            # raw: the prompt is already a complete completion prompt; no chat template around it.
            body["prompt"] = completion_prompt(messages)
            body["raw"] = True
        if params.keep_alive is not None:
            body["keep_alive"] = params.keep_alive
        return body

    def _read_whole(self, payload: Any, model: ModelInfo, answer: AnswerBuffer) -> dict[str, Any]:
        self._take(payload, model, answer)
        return dict(payload)

    def _result(
        self, counters: dict[str, Any], answer: AnswerBuffer, *, stream: bool, headers: httpx.Headers
    ) -> GenerationResult:
        final = counters
        load_ns = final.get("load_duration")
        return GenerationResult(
            text=answer.text,
            tokens_in=_int(final.get("prompt_eval_count")),
            tokens_out=_int(final.get("eval_count")),
            load_s=load_ns / 1e9 if isinstance(load_ns, int | float) and not isinstance(load_ns, bool) else None,
            first_token_s=answer.first_token_s,
        )

    def _take(self, record: Any, model: ModelInfo, answer: AnswerBuffer) -> bool:
        """Add one NDJSON record's text; True when it is the final (``done``) record."""
        if not isinstance(record, dict):
            raise ProviderProtocolError(
                f"{self.base_url}: record is not an object", endpoint=self.base_url, model=model.name
            )
        if "error" in record:
            raise answer.model_error(record)
        if model.chat:
            message = record.get("message")
            answer.add(message.get("content") if isinstance(message, dict) else None)
        else:
            answer.add(record.get("response"))
        return bool(record.get("done"))

    async def _read_stream(self, response: httpx.Response, model: ModelInfo, answer: AnswerBuffer) -> dict[str, Any]:
        async for line in iter_lines(response, self.base_url, model.name):
            if not line.strip():
                continue
            record = json.loads(line)
            if self._take(record, model, answer):
                return dict(record)
        # The body ended cleanly, but without the final record: the server gave up mid-answer.
        raise ProviderClosed(
            f"{self.base_url}: stream ended before the answer finished", endpoint=self.base_url, model=model.name
        )


SPEC = ProviderSpec(
    kind=ProviderKind.OLLAMA,
    title="Ollama",
    create=lambda ctx: OllamaProvider(ctx.endpoint, ctx.client),
    probe=OllamaProvider.api,
    loads_on_first_call=True,  # a model not in memory (ModelInfo.loaded False) is loaded by its first call
    server="ollama",
)


def _context_length(show: dict[str, Any]) -> int | None:
    info = show.get("model_info")
    if not isinstance(info, dict):
        return None
    arch = info.get("general.architecture")
    value = info.get(f"{arch}.context_length")
    return value if isinstance(value, int) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
