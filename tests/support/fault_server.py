"""A FAKE model server, for fault injection only.

This is *not* a model: it is an HTTP-level fake that speaks the OpenAI-compatible API (``/v1/models``,
``/v1/chat/completions``, ``/v1/completions``, SSE streaming), the Ollama API (``/api/version``, ``/api/tags``,
``/api/ps``, ``/api/show``, ``/api/chat``, ``/api/generate``, NDJSON streaming) and optionally LM Studio's native
``/api/v0/models``. Tests use it only for what a real llama.cpp server cannot be made to do on demand: hang, fail
with HTTP 500, drop the connection mid-stream, send invalid UTF-8 or broken JSON, stream 50 MB, trickle one token a
second, report an in-band error - and to check the documented Ollama wire format. Everything else is tested
against real llama.cpp servers (see ``llama_server.py``). With ``"vllm"`` in ``apis`` it also serves vLLM's
``/health`` and Prometheus ``/metrics`` (``vllm_healthy``, ``vllm_metrics``): vLLM itself cannot run on CPU-only
test machines.

One server hosts several "models"; each model's behaviour comes from its name unless registered explicitly:

=================  ==========================================================================================
``ok``, ``ok-*``   answers ``text`` in word-sized chunks; ``ok-delay250ms`` waits 250 ms before answering
``hang``           never answers (holds the connection until the client goes away or the server stops)
``stall``          sends headers and the first chunk, then hangs
``http500``        HTTP 500 (any ``httpNNN`` gives that status)
``drop``           closes the connection after a few chunks (non-streaming: mid-body)
``garbage-utf8``   invalid UTF-8 bytes inside the JSON of a chunk
``garbage-json``   broken JSON chunks
``huge``           streams a ``huge_bytes`` (50 MB) answer
``slow``           one chunk per second
``error``          an in-band error object (Ollama ``{"error": ...}``; OpenAI ``{"error": {...}}``)
=================  ==========================================================================================

It runs uvicorn in a background thread with its own event loop, on 127.0.0.1 at a port the OS picks.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import uvicorn

__all__ = ["Behaviour", "FakeModel", "FaultServer", "RecordedRequest", "behaviour_from_name"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

DEFAULT_TEXT = "def add(a, b):\n    return a + b\n"
HUGE_BYTES = 50 * 1024 * 1024
_HUGE_CHUNK = 64 * 1024
_DROP_AFTER = 3


class Behaviour(enum.StrEnum):
    OK = "ok"
    HANG = "hang"
    STALL = "stall"
    HTTP_ERROR = "http"
    DROP = "drop"
    GARBAGE_UTF8 = "garbage-utf8"
    GARBAGE_JSON = "garbage-json"
    HUGE = "huge"
    SLOW = "slow"
    ERROR = "error"


def behaviour_from_name(name: str) -> tuple[Behaviour, float, int]:
    """``(behaviour, delay_s, http_status)`` implied by a model name (tags after ``:`` ignored)."""
    base = name.split(":", 1)[0].lower()
    if match := re.fullmatch(r"http(\d{3})", base):
        return Behaviour.HTTP_ERROR, 0.0, int(match.group(1))
    if base == "ok" or base.startswith("ok-"):
        delay = re.search(r"delay(\d+)ms", base)
        return Behaviour.OK, (int(delay.group(1)) / 1000 if delay else 0.0), 200
    for behaviour in Behaviour:
        if base == behaviour.value:
            return behaviour, 0.0, 200
    return Behaviour.OK, 0.0, 200


@dataclass
class FakeModel:
    """One fake model and how it misbehaves. ``capabilities=None`` leaves the key out of ``/api/show``."""

    name: str
    behaviour: Behaviour | None = None  # None: from the name
    text: str = DEFAULT_TEXT
    delay_s: float | None = None  # None: from the name
    status: int | None = None  # for Behaviour.HTTP_ERROR; None: from the name
    family: str = "llama"
    parameter_size: str = "1B"
    quantization: str = "Q4_K_M"
    size_bytes: int = 800_000_000
    context_length: int = 4096
    loaded: bool = False
    capabilities: list[str] | None = field(default_factory=lambda: ["completion"])
    lmstudio_type: str = "llm"  # LM Studio /api/v0/models "type": llm, vlm, embeddings
    load_s: float = 0.5  # reported as Ollama load_duration (ns)
    digest: str = "0" * 64  # Ollama's digest of the weights

    def resolved(self) -> tuple[Behaviour, float, int]:
        behaviour, delay, status = behaviour_from_name(self.name)
        return (
            self.behaviour or behaviour,
            delay if self.delay_s is None else self.delay_s,
            status if self.status is None else self.status,
        )

    def chunks(self) -> list[str]:
        """The answer in word-sized pieces (whitespace kept, so the pieces join to ``text``)."""
        return re.findall(r"\s*\S+\s*?(?=\s|$)|\s+", self.text) or [self.text]


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None


class _Disconnected(Exception):
    """The client went away while we were answering."""


class FaultServer:
    """The fake server. Use as a context manager or call :meth:`start` / :meth:`stop`.

    ``apis`` chooses which APIs it speaks: any of ``"openai"``, ``"ollama"``, ``"lmstudio"``. ``api_key``, when
    set, is required as a bearer token on every request (401 otherwise).
    """

    def __init__(
        self,
        models: Iterable[FakeModel | str] = (),
        *,
        apis: Iterable[str] = ("openai", "ollama"),
        api_key: str | None = None,
        huge_bytes: int = HUGE_BYTES,
        version: str = "0.6.5",
    ) -> None:
        self._models: dict[str, FakeModel] = {}
        self.set_models(models)
        self.apis = set(apis)
        self.api_key = api_key
        self.huge_bytes = huge_bytes
        self.version = version
        self.vllm_healthy = True
        self.vllm_metrics: str | None = None  # Prometheus text at /metrics ("vllm" API); None: idle, per model
        self.requests: list[RecordedRequest] = []
        self.disconnects: list[str] = []  # model names whose answer the client abandoned
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._closing: asyncio.Event | None = None
        self._sock: socket.socket | None = None
        self.port = 0

    # --- configuration -------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def models(self) -> list[FakeModel]:
        return list(self._models.values())

    def set_models(self, models: Iterable[FakeModel | str]) -> None:
        """Replace the model list (names become :class:`FakeModel` with defaults)."""
        new = [m if isinstance(m, FakeModel) else FakeModel(m) for m in models]
        self._models = {m.name: m for m in new}

    def add_model(self, name: str, **options: Any) -> FakeModel:
        """Add (or replace) one model; ``options`` are :class:`FakeModel` fields."""
        model = FakeModel(name, **options)
        self._models = {**self._models, name: model}
        return model

    def model(self, name: str) -> FakeModel:
        """The registered model, or an ad-hoc one whose behaviour comes from ``name``: any name can be asked."""
        return self._models.get(name) or FakeModel(name)

    def _known(self, name: str) -> bool:
        """Registered, or a name that spells a behaviour (Ollama answers 404 for anything else)."""
        base = name.split(":", 1)[0].lower()
        return (
            name in self._models
            or base == "ok"
            or base.startswith("ok-")
            or behaviour_from_name(name)[0] is not Behaviour.OK
        )

    def clear_log(self) -> None:
        self.requests.clear()
        self.disconnects.clear()

    # --- lifecycle -----------------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> FaultServer:
        if self._thread is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._sock = sock
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            log_level="critical",
            access_log=False,
            lifespan="off",
            interface="asgi3",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name=f"fault-server-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fault server did not start")
            time.sleep(0.01)
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        self._closing = asyncio.Event()
        assert self._server is not None
        assert self._sock is not None
        try:
            loop.run_until_complete(self._server.serve(sockets=[self._sock]))
        finally:
            loop.close()

    def stop(self) -> None:
        """Release hanging handlers, shut the server down and join its thread. Safe to call twice."""
        if self._thread is None:
            return
        if self._loop is not None and self._closing is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._closing.set)
        if self._server is not None:
            self._server.should_exit = True
        self._thread.join(10)
        self._thread = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- ASGI ------------------------------------------------------------------------------------------------
    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        method, path = scope["method"], scope["path"]
        self.requests.append(RecordedRequest(method, path, headers, body))
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            await _send_json(send, 401, {"error": {"message": "invalid api key", "type": "invalid_request_error"}})
            return
        handler = self._route(method, path)
        if handler is None:
            await _send_json(
                send, 404, {"error": f"not found: {path}"} if path.startswith("/api") else {"detail": "Not Found"}
            )
            return
        ctx = _Ctx(
            send,
            receive,
            self._closing,
            self.disconnects.append,
            str(body.get("model", "")) if isinstance(body, dict) else "",
        )
        try:
            with contextlib.suppress(_Disconnected, OSError):
                await handler(ctx, body if isinstance(body, dict) else {})
        finally:
            ctx.close()

    def _route(self, method: str, path: str) -> Callable[[_Ctx, dict[str, Any]], Awaitable[None]] | None:
        routes: dict[tuple[str, str], Callable[[_Ctx, dict[str, Any]], Awaitable[None]]] = {}
        if "openai" in self.apis:
            routes |= {
                ("GET", "/v1/models"): self._openai_models,
                ("POST", "/v1/chat/completions"): self._openai_chat,
                ("POST", "/v1/completions"): self._openai_completion,
            }
        if "ollama" in self.apis:
            routes |= {
                ("GET", "/api/version"): self._ollama_version,
                ("GET", "/api/tags"): self._ollama_tags,
                ("GET", "/api/ps"): self._ollama_ps,
                ("POST", "/api/show"): self._ollama_show,
                ("POST", "/api/chat"): self._ollama_chat,
                ("POST", "/api/generate"): self._ollama_generate,
            }
        if "lmstudio" in self.apis:
            routes[("GET", "/api/v0/models")] = self._lmstudio_models
        if "vllm" in self.apis:
            routes |= {("GET", "/health"): self._vllm_health, ("GET", "/metrics"): self._vllm_metrics}
        return routes.get((method, path))

    # --- vLLM's extras -----------------------------------------------------------------------------------------
    async def _vllm_health(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        await _send_json(ctx.send, 200 if self.vllm_healthy else 503, {})

    async def _vllm_metrics(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        text = self.vllm_metrics
        if text is None:
            text = "# TYPE vllm:num_requests_waiting gauge\n" + "".join(
                f'vllm:num_requests_waiting{{engine="0",model_name="{m.name}"}} 0.0\n' for m in self.models
            )
        data = text.encode()
        await ctx.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/plain; version=0.0.4"),
                    (b"content-length", str(len(data)).encode()),
                ],
            }
        )
        await ctx.send({"type": "http.response.body", "body": data, "more_body": False})

    # --- OpenAI-compatible -------------------------------------------------------------------------------------
    async def _openai_models(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        data = [{"id": m.name, "object": "model", "created": 0, "owned_by": "fault-server"} for m in self.models]
        await _send_json(ctx.send, 200, {"object": "list", "data": data})

    async def _lmstudio_models(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        data = [
            {
                "id": m.name,
                "object": "model",
                "type": m.lmstudio_type,
                "publisher": "fault-server",
                "arch": m.family,
                "compatibility_type": "gguf",
                "quantization": m.quantization,
                "state": "loaded" if m.loaded else "not-loaded",
                "max_context_length": m.context_length,
            }
            for m in self.models
        ]
        await _send_json(ctx.send, 200, {"object": "list", "data": data})

    async def _openai_chat(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        await self._openai_answer(ctx, body, chat=True)

    async def _openai_completion(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        await self._openai_answer(ctx, body, chat=False)

    async def _openai_answer(self, ctx: _Ctx, body: dict[str, Any], *, chat: bool) -> None:
        name = str(body.get("model", ""))
        model = self.model(name)
        stream = bool(body.get("stream", False))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        prompt_tokens = _prompt_tokens(body)
        kind = "chat.completion" if chat else "text_completion"

        def piece(text: str, finish: str | None = None) -> dict[str, Any]:
            choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
            if chat:
                choice["delta"] = {"role": "assistant", "content": text} if text else {}
            else:
                choice["text"] = text
            return {
                "id": "fake-1",
                "object": kind + (".chunk" if chat else ""),
                "created": 0,
                "model": name,
                "choices": [choice],
            }

        def usage(n_out: int) -> dict[str, int]:
            return {"prompt_tokens": prompt_tokens, "completion_tokens": n_out, "total_tokens": prompt_tokens + n_out}

        behaviour, delay, status = model.resolved()
        if await self._common_failures(ctx, model, behaviour, status, openai=True):
            return
        await ctx.sleep(delay, name)
        if behaviour is Behaviour.ERROR:
            error = {"error": {"message": f"model {name} failed", "type": "server_error", "code": 500}}
            if stream:
                await ctx.start(200, "text/event-stream")
                await ctx.chunk(_sse(error))
                await ctx.chunk(b"data: [DONE]\n\n", more=False)
            else:
                await _send_json(ctx.send, 200, error)
            return

        if not stream:
            text = self._full_text(model)
            if chat:
                choice: dict[str, Any] = {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            else:
                choice = {"index": 0, "text": text, "finish_reason": "stop"}
            payload = {
                "id": "fake-1",
                "object": kind,
                "created": 0,
                "model": name,
                "choices": [choice],
                "usage": usage(len(model.chunks())),
            }
            await self._send_whole(ctx, model, behaviour, json.dumps(payload).encode())
            return

        await ctx.start(200, "text/event-stream")
        count = 0
        async for item in self._stream_pieces(ctx, model, behaviour):
            if isinstance(item, bytes):
                await ctx.chunk(item)
                continue
            count += 1
            await ctx.chunk(_sse(piece(item)))
        await ctx.chunk(_sse(piece("", "stop")))
        if include_usage:
            await ctx.chunk(
                _sse(
                    {
                        "id": "fake-1",
                        "object": kind + ".chunk",
                        "created": 0,
                        "model": name,
                        "choices": [],
                        "usage": usage(count),
                    }
                )
            )
        await ctx.chunk(b"data: [DONE]\n\n", more=False)

    # --- Ollama --------------------------------------------------------------------------------------------------
    async def _ollama_version(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        await _send_json(ctx.send, 200, {"version": self.version})

    def _ollama_entry(self, m: FakeModel) -> dict[str, Any]:
        return {
            "name": m.name,
            "model": m.name,
            "modified_at": "2025-01-01T00:00:00Z",
            "size": m.size_bytes,
            "digest": m.digest,
            "details": {
                "parent_model": "",
                "format": "gguf",
                "family": m.family,
                "families": [m.family],
                "parameter_size": m.parameter_size,
                "quantization_level": m.quantization,
            },
        }

    async def _ollama_tags(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        await _send_json(ctx.send, 200, {"models": [self._ollama_entry(m) for m in self.models]})

    async def _ollama_ps(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        loaded = [
            {**self._ollama_entry(m), "expires_at": "2099-01-01T00:00:00Z", "size_vram": m.size_bytes}
            for m in self.models
            if m.loaded
        ]
        await _send_json(ctx.send, 200, {"models": loaded})

    async def _ollama_show(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        name = str(body.get("model") or body.get("name") or "")
        if name not in self._models:
            await _send_json(ctx.send, 404, {"error": f"model '{name}' not found"})
            return
        m = self._models[name]
        info: dict[str, Any] = {
            "modelfile": f"FROM {name}",
            "parameters": "",
            "template": "{{ .Prompt }}",
            "details": self._ollama_entry(m)["details"],
            "model_info": {"general.architecture": m.family, f"{m.family}.context_length": m.context_length},
        }
        if m.capabilities is not None:
            info["capabilities"] = m.capabilities
        await _send_json(ctx.send, 200, info)

    async def _ollama_chat(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        await self._ollama_answer(ctx, body, chat=True)

    async def _ollama_generate(self, ctx: _Ctx, body: dict[str, Any]) -> None:
        await self._ollama_answer(ctx, body, chat=False)

    async def _ollama_answer(self, ctx: _Ctx, body: dict[str, Any], *, chat: bool) -> None:
        name = str(body.get("model", ""))
        model = self.model(name)
        stream = body.get("stream", True) is not False  # Ollama streams unless told not to
        behaviour, delay, status = model.resolved()
        if not self._known(name):
            await _send_json(ctx.send, 404, {"error": f'model "{name}" not found, try pulling it first'})
            return
        if await self._common_failures(ctx, model, behaviour, status, openai=False):
            return
        await ctx.sleep(delay, name)

        def piece(text: str, done: bool = False) -> dict[str, Any]:
            out: dict[str, Any] = {"model": name, "created_at": "2025-01-01T00:00:00Z", "done": done}
            if chat:
                out["message"] = {"role": "assistant", "content": text}
            else:
                out["response"] = text
            return out

        def final(text: str, n_out: int) -> dict[str, Any]:
            out = piece(text, done=True)
            out |= {
                "done_reason": "stop",
                "total_duration": int((model.load_s + 0.1) * 1e9),
                "load_duration": int(model.load_s * 1e9),
                "prompt_eval_count": _prompt_tokens(body),
                "prompt_eval_duration": 10_000_000,
                "eval_count": n_out,
                "eval_duration": 90_000_000,
            }
            if not chat:
                out["context"] = [1, 2, 3]
            return out

        if behaviour is Behaviour.ERROR:
            if stream:
                await ctx.start(200, "application/x-ndjson")
                await ctx.chunk(_ndjson(piece("partial ")))
                await ctx.chunk(_ndjson({"error": f"model {name} ran out of memory"}), more=False)
            else:
                await _send_json(ctx.send, 500, {"error": f"model {name} ran out of memory"})
            return
        if not stream:
            payload = final(self._full_text(model), len(model.chunks()))
            await self._send_whole(ctx, model, behaviour, json.dumps(payload).encode(), content_type="application/json")
            return
        await ctx.start(200, "application/x-ndjson")
        count = 0
        async for item in self._stream_pieces(ctx, model, behaviour, ndjson=True):
            if isinstance(item, bytes):
                await ctx.chunk(item)
                continue
            count += 1
            await ctx.chunk(_ndjson(piece(item)))
        await ctx.chunk(_ndjson(final("", count)), more=False)

    # --- shared misbehaviour -------------------------------------------------------------------------------------
    async def _common_failures(
        self, ctx: _Ctx, model: FakeModel, behaviour: Behaviour, status: int, *, openai: bool
    ) -> bool:
        """Handle the failures that happen before any answer; True when the request is finished."""
        if behaviour is Behaviour.HANG:
            await ctx.hang(model.name)
            return True
        if behaviour is Behaviour.HTTP_ERROR:
            message = f"internal error serving {model.name}"
            await _send_json(
                ctx.send, status, {"error": {"message": message, "code": status}} if openai else {"error": message}
            )
            return True
        return False

    def _full_text(self, model: FakeModel) -> str:
        behaviour, _, _ = model.resolved()
        if behaviour is Behaviour.HUGE:
            return "x" * self.huge_bytes
        return model.text

    async def _send_whole(
        self, ctx: _Ctx, model: FakeModel, behaviour: Behaviour, payload: bytes, content_type: str = "application/json"
    ) -> None:
        """A non-streaming answer, with the body-level faults applied."""
        if behaviour is Behaviour.GARBAGE_JSON:
            payload = payload[: len(payload) // 2]
        elif behaviour is Behaviour.GARBAGE_UTF8:
            payload = (
                payload.replace(b'"content": "', b'"content": "\xff\xfe\x80', 1)
                .replace(b'"text": "', b'"text": "\xff\xfe\x80', 1)
                .replace(b'"response": "', b'"response": "\xff\xfe\x80', 1)
            )
        if behaviour in (Behaviour.DROP, Behaviour.STALL):
            # Promise the whole body, send half of it, then drop (or hang).
            await ctx.start(200, content_type, length=len(payload))
            await ctx.chunk(payload[: len(payload) // 2])
            if behaviour is Behaviour.STALL:
                await ctx.hang(model.name)
            raise _Disconnected  # uvicorn closes the connection when the app ends without the full body
        if behaviour is Behaviour.SLOW:
            await ctx.sleep(float(len(model.chunks())), model.name)
        await ctx.start(200, content_type, length=len(payload))
        await ctx.chunk(payload, more=False)

    async def _stream_pieces(
        self, ctx: _Ctx, model: FakeModel, behaviour: Behaviour, *, ndjson: bool = False
    ) -> AsyncIterator[str | bytes]:
        """The text pieces of a streamed answer (``bytes`` items are raw lines to send as they are)."""
        pieces = model.chunks()
        if behaviour is Behaviour.HUGE:
            block = "x" * _HUGE_CHUNK
            for _ in range(self.huge_bytes // _HUGE_CHUNK):
                yield block
            return
        for i, text in enumerate(pieces):
            if behaviour is Behaviour.DROP and i == _DROP_AFTER:
                raise _Disconnected  # ends the app mid-stream: uvicorn closes the connection, no final chunk
            if behaviour is Behaviour.STALL and i == 1:
                await ctx.hang(model.name)
                return
            if behaviour is Behaviour.GARBAGE_UTF8 and i == 1:
                if ndjson:
                    yield b'{"model": "x", "message": {"role": "assistant", "content": "\xff\xfe\x80\xc3"}, "response": "\xff\xfe", "done": false}\n'
                else:
                    yield b'data: {"choices": [{"index": 0, "delta": {"content": "\xff\xfe\x80\xc3"}, "text": "\xff\xfe"}]}\n\n'
                continue
            if behaviour is Behaviour.GARBAGE_JSON and i == 1:
                yield (
                    b'{"model": "x", "message": {"content": "ab\n'
                    if ndjson
                    else b'data: {"choices": [{"delta": {"content": "ab\n\n'
                )
                continue
            if behaviour is Behaviour.SLOW and i > 0:
                await ctx.sleep(1.0, model.name)
            yield text
            if behaviour is Behaviour.DROP:
                await asyncio.sleep(0.01)  # let the chunk reach the client before the drop


class _Ctx:
    """One request's response channel, with client-disconnect detection for hangs, sleeps and streams."""

    def __init__(
        self, send: Send, receive: Receive, closing: asyncio.Event | None, on_gone: Callable[[str], None], model: str
    ) -> None:
        self.send = send
        self._receive = receive
        self._closing = closing
        self._on_gone = on_gone
        self._model = model
        self._gone: asyncio.Task[None] | None = None
        self._reported = False

    def _watch(self) -> asyncio.Task[None]:
        if self._gone is None:
            self._gone = asyncio.create_task(self._wait_disconnect())
        return self._gone

    async def _wait_disconnect(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass

    def close(self) -> None:
        if self._gone is not None:
            self._gone.cancel()

    def _disconnected(self) -> _Disconnected:
        if not self._reported:
            self._reported = True
            self._on_gone(self._model)
        return _Disconnected()

    async def start(self, status: int, content_type: str, length: int | None = None) -> None:
        self._watch()  # from now on, notice a client that goes away mid-answer
        headers = [(b"content-type", content_type.encode())]
        if length is not None:
            headers.append((b"content-length", str(length).encode()))
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def chunk(self, data: bytes, *, more: bool = True) -> None:
        if self._gone is not None and self._gone.done():
            raise self._disconnected()
        try:
            await self.send({"type": "http.response.body", "body": data, "more_body": more})
        except OSError as exc:
            raise self._disconnected() from exc
        # uvicorn's send() rarely yields; yielding here lets the disconnect watcher run between chunks, so a
        # client that went away stops a long stream at once.
        await asyncio.sleep(0)

    async def sleep(self, seconds: float, model: str) -> None:
        if seconds > 0:
            await self._wait(seconds)

    async def hang(self, model: str) -> None:
        await self._wait(None)

    async def _wait(self, seconds: float | None) -> None:
        gone = self._watch()
        waiters: set[asyncio.Future[Any]] = {gone}
        closing = asyncio.ensure_future(self._closing.wait()) if self._closing is not None else None
        if closing is not None:
            waiters.add(closing)
        try:
            done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if closing is not None:
                closing.cancel()
        if gone in done:
            raise self._disconnected()
        if closing is not None and closing in done:
            raise _Disconnected


def _prompt_tokens(body: dict[str, Any]) -> int:
    """A deterministic stand-in for a token count: words in the prompt or messages."""
    if isinstance(body.get("messages"), list):
        text = " ".join(str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict))
    else:
        text = str(body.get("prompt", ""))
    return len(text.split())


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _ndjson(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode() + b"\n"


async def _send_json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
