"""Talk to any OpenAI-compatible model server: LM Studio, llama.cpp, vLLM, LocalAI, Jan, or a remote API.

Models come from ``/v1/models`` (plus LM Studio's native ``/api/v0/models``, which says which models are loaded and
which are embedding models). Chat models are asked through ``/v1/chat/completions``, completion-only models through
``/v1/completions``; with an ``on_token`` callback the answer streams as server-sent events.
"""

from __future__ import annotations

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
    iter_sse_data,
    looks_like_embedding,
)
from .base import ApiProbe, ProviderSpec, translate_transport_errors

__all__ = ["OpenAICompatProvider"]

log = logging.getLogger(__name__)


class OpenAICompatProvider(ServerProvider):
    """One OpenAI-compatible endpoint. ``base_url`` may end in ``/v1`` or not; ``api_key`` is sent as a bearer
    token and never appears in ``repr``, logs or errors."""

    kind = ProviderKind.OPENAI
    api = ApiProbe("/v1/models", "data", value_type=list, sends_key=True)
    chat_path = "/v1/chat/completions"
    completion_path = "/v1/completions"

    def __init__(
        self, base_url: str, client: httpx.AsyncClient, *, api_key: str | None = None, label: str | None = None
    ) -> None:
        super().__init__(base_url.rstrip("/").removesuffix("/v1"), client)
        self.__api_key = api_key
        self.label = label

    def __repr__(self) -> str:
        key = "set" if self.__api_key else "none"
        return f"OpenAICompatProvider(base_url={self.base_url!r}, label={self.label!r}, api_key={key})"

    __str__ = __repr__

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.__api_key}"} if self.__api_key else {}

    async def list_models(self, timeout: float = 2.0) -> list[ModelInfo]:
        async with translate_transport_errors(self.base_url):
            response = await self._client.get(f"{self.base_url}/v1/models", headers=self._headers(), timeout=timeout)
            await check_status(response, self.base_url, None)
            entries = response.json()["data"]
            if not isinstance(entries, list):
                raise TypeError("/v1/models 'data' is not a list")
        native = await self._lmstudio_models(timeout)
        models: list[ModelInfo] = []
        for entry in entries:
            name = str(entry["id"])
            extra = native.get(name, {})
            if extra.get("type") == "embeddings" or (extra.get("type") is None and looks_like_embedding(name)):
                continue
            context = extra.get("max_context_length") or entry.get("max_model_len")  # LM Studio / vLLM
            meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}  # llama.cpp's C++ server
            models.append(
                ModelInfo(
                    name=name,
                    provider=self.kind,
                    endpoint=self.base_url,
                    family=extra.get("arch"),
                    quantization=extra.get("quantization"),
                    size_bytes=meta.get("size") if isinstance(meta.get("size"), int) else None,
                    context_length=context if isinstance(context, int) else None,
                    loaded=(extra["state"] == "loaded") if "state" in extra else None,
                )
            )
        return models

    async def _lmstudio_models(self, timeout: float) -> dict[str, dict[str, Any]]:
        """LM Studio's richer model list keyed by id; empty for every other server (404 or anything odd)."""
        try:
            response = await self._client.get(
                f"{self.base_url}/api/v0/models", headers=self._headers(), timeout=timeout
            )
            if response.status_code != 200:
                return {}
            data = response.json().get("data", [])
            return {str(e["id"]): e for e in data if isinstance(e, dict) and "id" in e}
        except (httpx.HTTPError, ValueError, AttributeError, TypeError) as exc:
            log.debug("%s has no LM Studio model list: %s", self.base_url, type(exc).__name__)
            return {}

    def _body(
        self, model: ModelInfo, messages: Sequence[ChatMessage], params: GenerationParams, stream: bool
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model.name,
            "temperature": params.temperature,
            "max_tokens": params.max_tokens,
            "stream": stream,
        }
        if model.chat:
            body["messages"] = [{"role": m.role, "content": m.content} for m in messages]
        else:
            body["prompt"] = completion_prompt(messages)
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = params.stop
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def _result(
        self, counters: dict[str, Any], answer: AnswerBuffer, *, stream: bool, headers: httpx.Headers
    ) -> GenerationResult:
        usage = counters
        return GenerationResult(
            text=answer.text,
            tokens_in=_int(usage.get("prompt_tokens")),
            # Without usage (llama-cpp-python does not send it when streaming) each streamed piece is one token.
            tokens_out=_int(usage.get("completion_tokens")) or (answer.pieces if stream else None),
            first_token_s=answer.first_token_s,
            served_by=_deployment(headers),
        )

    def _read_whole(self, payload: Any, model: ModelInfo, answer: AnswerBuffer) -> dict[str, Any]:
        if "error" in payload:
            raise answer.model_error(payload)
        choice = payload["choices"][0]
        answer.add(choice["message"].get("content") if model.chat else choice["text"])
        usage = payload.get("usage")
        return usage if isinstance(usage, dict) else {}

    async def _read_stream(self, response: httpx.Response, model: ModelInfo, answer: AnswerBuffer) -> dict[str, Any]:
        usage: dict[str, Any] = {}
        finished = False
        async for data in iter_sse_data(response, self.base_url, model.name):
            if data.strip() == "[DONE]":
                break  # llama-cpp-python also sends it when another request interrupts this one: check below
            event = json.loads(data)
            if not isinstance(event, dict):
                raise ProviderProtocolError(
                    f"{self.base_url}: stream event is not an object", endpoint=self.base_url, model=model.name
                )
            if "error" in event:
                raise answer.model_error(event)
            if isinstance(event.get("usage"), dict):
                usage = event["usage"]
            for choice in event.get("choices") or []:
                if model.chat:
                    answer.add((choice.get("delta") or {}).get("content"))
                else:
                    answer.add(choice.get("text"))
                finished = finished or bool(choice.get("finish_reason"))
        if not finished:
            # The stream ended without a finish_reason: the server gave up or was interrupted mid-answer
            # (llama-cpp-python ends a stream with [DONE] when another request waits for the model).
            raise ProviderClosed(
                f"{self.base_url}: stream ended before the answer finished", endpoint=self.base_url, model=model.name
            )
        return usage


SPEC = ProviderSpec(
    kind=ProviderKind.OPENAI,
    title="OpenAI",
    create=lambda ctx: OpenAICompatProvider(ctx.endpoint, ctx.client, api_key=ctx.api_key, label=ctx.label),
    probe=OpenAICompatProvider.api,
)


def _deployment(headers: httpx.Headers) -> str | None:
    """Which deployment a gateway routed the call to: LiteLLM names its API base (or at least its id)."""
    value = headers.get("x-litellm-model-api-base") or headers.get("x-litellm-model-id")
    return value.strip()[:200] or None if value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
