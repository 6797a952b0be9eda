"""What the model-server providers share: one ``generate()`` over an HTTP API (chat or completion path, streamed
or whole), each API filling in its request body, how it reads an answer, and what it reports."""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence
from typing import Any, ClassVar

import httpx

from ..types import ChatMessage, GenerationParams, GenerationResult, ModelInfo
from ._wire import AnswerBuffer, post_answer, read_json
from .base import ApiProbe, OnToken, Provider

__all__ = ["ServerProvider"]

log = logging.getLogger(__name__)


class ServerProvider(Provider):
    """A model server's HTTP API, on the caller's shared client."""

    api: ClassVar[ApiProbe]  # how the API is recognised (also by discovery: the provider's ProviderSpec.probe)
    chat_path: ClassVar[str]  # where chat models (``model.chat``) are asked
    completion_path: ClassVar[str]  # where completion-only models are asked

    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        super().__init__(base_url)
        self._client = client

    def _headers(self) -> dict[str, str]:
        """Headers of every request (an API key)."""
        return {}

    async def probe(self, timeout: float = 0.5) -> bool:
        try:
            response = await self._client.get(
                f"{self.base_url}{self.api.path}", headers=self._headers(), timeout=timeout
            )
            data = response.json() if response.status_code == 200 else None
            return isinstance(data, dict) and isinstance(data.get(self.api.key), self.api.value_type)
        except (httpx.HTTPError, ValueError, OSError) as exc:
            log.debug("probe %s: %s", self.base_url, type(exc).__name__)
            return False

    @abc.abstractmethod
    def _body(
        self, model: ModelInfo, messages: Sequence[ChatMessage], params: GenerationParams, stream: bool
    ) -> dict[str, Any]:
        """The generation request's JSON body."""

    @abc.abstractmethod
    async def _read_stream(self, response: httpx.Response, model: ModelInfo, answer: AnswerBuffer) -> dict[str, Any]:
        """Read a streamed answer into ``answer``; the final record's counters (tokens, load time)."""

    @abc.abstractmethod
    def _read_whole(self, payload: Any, model: ModelInfo, answer: AnswerBuffer) -> dict[str, Any]:
        """Read a whole (not streamed) answer into ``answer``; its counters."""

    @abc.abstractmethod
    def _result(
        self, counters: dict[str, Any], answer: AnswerBuffer, *, stream: bool, headers: httpx.Headers
    ) -> GenerationResult:
        """The answer with what the server reported about it."""

    async def generate(
        self,
        model: ModelInfo,
        messages: Sequence[ChatMessage],
        params: GenerationParams,
        on_token: OnToken | None = None,
    ) -> GenerationResult:
        path = self.chat_path if model.chat else self.completion_path
        stream = on_token is not None
        answer = AnswerBuffer(self.base_url, model.name, on_token)
        body = self._body(model, messages, params, stream)
        async with post_answer(
            self._client, self.base_url, path, body, model.name, headers=self._headers()
        ) as response:
            if stream:
                counters = await self._read_stream(response, model, answer)
            else:
                counters = self._read_whole(await read_json(response, self.base_url, model.name), model, answer)
        return self._result(counters, answer, stream=stream, headers=response.headers)
