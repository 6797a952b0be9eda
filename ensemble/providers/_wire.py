"""Wire helpers shared by the HTTP providers: strict line/SSE/NDJSON reading, error bodies, answer accounting.

These keep a misbehaving server from hurting the user: bytes are decoded as strict UTF-8 (so garbage surfaces as a
protocol error instead of replacement characters in the code we would show), lines and answers have size caps (a
server that ignores ``max_tokens`` cannot fill memory), and HTTP error bodies are quoted in the error message.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ..errors import ModelError, ProviderHTTPError, ProviderProtocolError
from ..types import ChatMessage
from .base import OnToken, translate_transport_errors

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_BODY_BYTES",
    "AnswerBuffer",
    "check_status",
    "completion_prompt",
    "error_message",
    "iter_lines",
    "iter_sse_data",
    "looks_like_embedding",
    "post_answer",
    "read_json",
]

log = logging.getLogger(__name__)

MAX_ANSWER_CHARS = 1_000_000  # ~250k tokens: far beyond any answer we ask for
MAX_BODY_BYTES = 8 * 1024 * 1024  # one non-streamed JSON answer or one stream line
_ERROR_BODY_BYTES = 4096

_EMBEDDING_NAME = re.compile(
    r"embed|rerank|(^|[-_/:.])(bge|gte|e5|minilm|mxbai|snowflake-arctic-embed|clip|bert)([-_/:.]|$)", re.IGNORECASE
)
_EMBEDDING_FAMILIES = {"bert", "nomic-bert", "xlm-roberta", "jina-bert", "clip"}


def looks_like_embedding(name: str, family: str | None = None, families: Sequence[str] = ()) -> bool:
    """Name/family heuristics for embedding or reranking models, used when the server does not say."""
    if _EMBEDDING_NAME.search(name):
        return True
    fams = {f.lower() for f in (family, *families) if f}
    return bool(fams & _EMBEDDING_FAMILIES)


def completion_prompt(messages: Sequence[ChatMessage]) -> str:
    """One raw prompt for completion-only models: the message contents in order (``prompts`` already gives base
    models a single user message holding a source-file prompt, so this is usually that text unchanged)."""
    return "\n\n".join(m.content for m in messages if m.content)


def error_message(payload: Any) -> str:
    """The human text of an error payload: ``{"error": "..."}``, ``{"error": {"message": ...}}``, ``{"detail"}``."""
    if isinstance(payload, dict):
        err = payload.get("error", payload.get("detail", payload.get("message")))
        if isinstance(err, dict):
            err = err.get("message") or err.get("msg") or json.dumps(err)[:300]
        if isinstance(err, list):
            err = json.dumps(err)[:300]
        if err is not None:
            return str(err)[:300]
    return str(payload)[:300]


async def check_status(response: httpx.Response, endpoint: str, model: str | None) -> None:
    """Raise :class:`ProviderHTTPError` for a 4xx/5xx answer, quoting (the start of) the server's error body."""
    if response.status_code < 400:
        return
    raw = b""
    async for chunk in response.aiter_bytes():
        raw += chunk
        if len(raw) >= _ERROR_BODY_BYTES:
            break
    try:
        detail = error_message(json.loads(raw))
    except ValueError:
        detail = raw[:300].decode("utf-8", "replace").strip()
    status = response.status_code
    message = f"{endpoint}: HTTP {status}" + (f": {detail}" if detail else "")
    raise ProviderHTTPError(message, status_code=status, endpoint=endpoint, model=model)


@asynccontextmanager
async def post_answer(
    client: httpx.AsyncClient,
    endpoint: str,
    path: str,
    body: Mapping[str, Any],
    model: str,
    *,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[httpx.Response]:
    """POST a generation request and hold its streamed response open, its status checked; every transport or
    decoding error raised while the caller reads it becomes a :class:`~codeconductor.ensemble.errors.ProviderError`."""
    async with (
        translate_transport_errors(endpoint, model),
        client.stream("POST", f"{endpoint}{path}", json=body, headers=headers) as response,
    ):
        await check_status(response, endpoint, model)
        yield response


async def read_json(response: httpx.Response, endpoint: str, model: str | None = None) -> Any:
    """The JSON body of a streamed response, at most :data:`MAX_BODY_BYTES`, decoded as strict UTF-8."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ProviderProtocolError(
                f"{endpoint}: response larger than {MAX_BODY_BYTES} bytes", endpoint=endpoint, model=model
            )
        chunks.append(chunk)
    # Strict decoding first: json.loads on bytes would accept some invalid sequences silently.
    return json.loads(b"".join(chunks).decode("utf-8"))


async def iter_lines(response: httpx.Response, endpoint: str, model: str | None = None) -> AsyncIterator[str]:
    """Lines of a streamed body (without line ends), decoded as strict UTF-8; a line over the cap is an error."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    pending = ""
    async for chunk in response.aiter_bytes():
        pending += decoder.decode(chunk)
        if "\n" in pending:
            *lines, pending = pending.split("\n")
            for line in lines:
                yield line.removesuffix("\r")
        if len(pending) > MAX_BODY_BYTES:
            raise ProviderProtocolError(f"{endpoint}: stream line too long", endpoint=endpoint, model=model)
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending.removesuffix("\r")


async def iter_sse_data(response: httpx.Response, endpoint: str, model: str | None = None) -> AsyncIterator[str]:
    """The ``data`` of each server-sent event (multi-line data joined with newlines; comments ignored)."""
    data: list[str] = []
    async for line in iter_lines(response, endpoint, model):
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value.removeprefix(" "))
    if data:
        yield "\n".join(data)


class AnswerBuffer:
    """Collects streamed text: forwards each piece to ``on_token``, notes time to first token, enforces the cap."""

    def __init__(self, endpoint: str, model: str, on_token: OnToken | None) -> None:
        self.endpoint = endpoint
        self.model = model
        self._on_token = on_token
        self._parts: list[str] = []
        self._size = 0
        self.pieces = 0  # non-empty pieces received: one token each on llama.cpp, vLLM, LM Studio, Ollama
        self.started = time.perf_counter()
        self.first_token_s: float | None = None

    @property
    def text(self) -> str:
        return "".join(self._parts)

    def add(self, piece: Any) -> None:
        if piece is None or piece == "":
            return
        if not isinstance(piece, str):
            raise ProviderProtocolError(
                f"{self.endpoint}: text piece is {type(piece).__name__}, not a string",
                endpoint=self.endpoint,
                model=self.model,
            )
        if self.first_token_s is None:
            self.first_token_s = time.perf_counter() - self.started
        self._size += len(piece)
        if self._size > MAX_ANSWER_CHARS:
            raise ProviderProtocolError(
                f"{self.endpoint}: answer longer than {MAX_ANSWER_CHARS} characters (server ignores max_tokens?)",
                endpoint=self.endpoint,
                model=self.model,
            )
        self._parts.append(piece)
        self.pieces += 1
        if self._on_token is not None:
            try:
                self._on_token(piece)
            except Exception:
                # A broken progress callback must not cost the answer; it is a bug to see in the log.
                log.exception("on_token callback failed for %s", self.model)

    def model_error(self, payload: Any) -> ModelError:
        return ModelError(
            f"{self.endpoint}: model {self.model} failed: {error_message(payload)}",
            endpoint=self.endpoint,
            model=self.model,
        )
