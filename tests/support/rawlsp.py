"""A raw JSON-RPC client for ``python -m codeconductor.server`` over stdio, for what a well-behaved LSP client library cannot
send: malformed frames, invalid JSON, messages with missing or mistyped fields. It also lets a test kill the
server process (``kill -9``) at a moment of its choosing.

It writes ``Content-Length`` frames itself and reads the server's frames on a background thread. Requests the
server makes of the client are answered the way a simple editor would (``workspace/applyEdit``: applied).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["RawServer", "frame"]

ROOT = Path(__file__).resolve().parents[2]


def frame(body: bytes) -> bytes:
    """One LSP base-protocol frame around ``body``."""
    return b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


class RawServer:
    """``python -m codeconductor.server`` as a subprocess, spoken to byte by byte.

    ``messages`` collects every notification the server sent (``window/showMessage``, ``window/logMessage``,
    ...); ``edits`` every ``workspace/applyEdit`` it asked for.
    """

    def __init__(
        self,
        env: dict[str, str] | None = None,
        stderr_path: Path | None = None,
        *,
        command: list[str] | None = None,
        cwd: Path = ROOT,
        base_env: dict[str, str] | None = None,
    ) -> None:
        """``command`` replaces ``python -m codeconductor.server`` (an installed ``codeconductor serve``), run in ``cwd``;
        ``env`` is added to ``base_env`` (default: this process's environment)."""
        self._stderr = stderr_path.open("wb") if stderr_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            command or [sys.executable, "-m", "codeconductor.server"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            cwd=cwd,
            env={**(os.environ if base_env is None else base_env), **(env or {})},
        )
        self._ids = itertools.count(1)
        self._responses: dict[Any, dict[str, Any]] = {}
        self._cond = threading.Condition()
        self.messages: list[dict[str, Any]] = []
        self.edits: list[dict[str, Any]] = []
        self.garbage: queue.Queue[bytes] = queue.Queue()  # frames from the server that are not JSON (never expected)
        self.on_apply_edit: Callable[[dict[str, Any]], dict[str, Any]] = lambda _: {"applied": True}
        self._reader = threading.Thread(target=self._read_loop, name="raw-lsp-reader", daemon=True)
        self._reader.start()

    # ---- sending -----------------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Write raw bytes to the server's stdin (anything at all)."""
        assert self.process.stdin is not None
        self.process.stdin.write(data)
        self.process.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.write(frame(json.dumps(message).encode()))

    def notify(self, method: str, params: Any = None) -> None:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)

    def request(self, method: str, params: Any = None, timeout: float = 30.0) -> dict[str, Any]:
        """Send a request and wait for its response (the whole response object: ``result`` or ``error``)."""
        msg_id = next(self._ids)
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": msg_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        return self.wait_response(msg_id, timeout)

    def start_request(self, method: str, params: Any = None) -> int:
        """Send a request without waiting; :meth:`wait_response` collects its answer."""
        msg_id = next(self._ids)
        self.send({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})
        return msg_id

    def wait_response(self, msg_id: Any, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while msg_id not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(f"no response to request {msg_id} (server alive: {self.alive})")
                self._cond.wait(min(left, 0.2))
            return self._responses.pop(msg_id)

    def response_if_any(self, msg_id: Any) -> dict[str, Any] | None:
        """The response to ``msg_id`` if one arrived (without waiting)."""
        with self._cond:
            return self._responses.pop(msg_id, None)

    def wait_message(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 15.0) -> dict[str, Any]:
        """The first notification matching ``predicate`` (already received or arriving within ``timeout``)."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for message in self.messages[seen:]:
                    if predicate(message):
                        return message
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("expected notification did not arrive")
                self._cond.wait(min(left, 0.2))

    # ---- session helpers ----------------------------------------------------------------------------------------

    def initialize(self, options: dict[str, Any] | None = None) -> dict[str, Any]:
        # No workspace/configuration, no progress: the settings are exactly ``options``.
        reply = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": "file:///tmp/codeconductor-hardening",
                "capabilities": {"workspace": {"applyEdit": True}},
                "initializationOptions": options,
            },
        )
        self.notify("initialized", {})
        return reply

    def open(self, uri: str, text: str, version: int = 1, language: str = "python") -> None:
        self.notify(
            "textDocument/didOpen",
            {"textDocument": {"uri": uri, "languageId": language, "version": version, "text": text}},
        )

    def healthy(self) -> bool:
        """A normal request still gets a normal answer."""
        reply = self.request("workspace/executeCommand", {"command": "codeconductor.status", "arguments": []})
        return isinstance(reply.get("result"), dict) and "running" in reply["result"]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL: no shutdown, no flush, no atexit."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def close(self) -> None:
        """Shut down politely, then make sure the process is gone."""
        if self.alive:
            with contextlib.suppress(Exception):
                self.request("shutdown", timeout=10)
                self.notify("exit")
                self.process.wait(5)
        if self.alive:
            self.process.kill()
            self.process.wait(10)
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(Exception):
                if stream is not None:
                    stream.close()
        if not isinstance(self._stderr, int):
            self._stderr.close()
        self._reader.join(5)

    def __enter__(self) -> RawServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ---- reading ------------------------------------------------------------------------------------------------

    def _read_loop(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        try:
            while True:
                length = None
                while True:
                    line = stream.readline()
                    if not line:
                        return
                    line = line.strip()
                    if not line:
                        break
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                if length is None:
                    continue
                body = stream.read(length)
                try:
                    message = json.loads(body)
                except ValueError:
                    self.garbage.put(body)
                    continue
                self._dispatch(message)
        except (OSError, ValueError):
            return

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "method" in message and "id" in message:  # a request from the server
            result: Any = None
            if message["method"] == "workspace/applyEdit":
                self.edits.append(message["params"])
                result = self.on_apply_edit(message["params"])
            with contextlib.suppress(OSError, ValueError):
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": result})
            return
        with self._cond:
            if "method" in message:
                self.messages.append(message)
            else:
                msg_id = message.get("id")
                self._responses[msg_id if isinstance(msg_id, int | str | None) else json.dumps(msg_id)] = message
            self._cond.notify_all()
