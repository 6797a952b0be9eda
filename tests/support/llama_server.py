"""Start and stop real llama.cpp servers (``python -m llama_cpp.server``) on loopback ports for tests.

Each server is a subprocess of the test run, listening on 127.0.0.1 at a port chosen at run time, with one thread
(the test machine is shared). Output goes to a log file whose tail is quoted when the server fails to start.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

import httpx

__all__ = ["LlamaServer", "LlamaServerError", "free_port", "llama_servers", "start_llama_server"]

_STARTUP_TIMEOUT_S = 60.0
_PORT_ATTEMPTS = 3


class LlamaServerError(RuntimeError):
    """The llama.cpp server did not come up; the message carries the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "<no log>"
    return "\n".join(text.splitlines()[-lines:])


class LlamaServer:
    """A running llama.cpp server. ``url`` is its base URL without ``/v1``; ``model_name`` the name it serves."""

    def __init__(self, process: subprocess.Popen[bytes], *, port: int, model_name: str, log_path: Path) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.model_name = model_name
        self.log_path = log_path

    def __repr__(self) -> str:
        return f"LlamaServer(url={self.url!r}, model_name={self.model_name!r}, pid={self.process.pid})"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        return _log_tail(self.log_path, lines)

    def stop(self, timeout: float = 5.0) -> None:
        """Terminate the server (then kill it if it lingers). Safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

    def __enter__(self) -> LlamaServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float) -> bool:
    """True once ``/v1/models`` answers 200; False if the process exited (e.g. port taken). Raises on timeout."""
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{url}/v1/models").status_code == 200:
                    return True
            time.sleep(0.1)
    raise LlamaServerError(
        f"llama.cpp server at {url} not ready after {timeout:.0f}s; log tail:\n{_log_tail(log_path)}"
    )


def start_llama_server(
    model_path: Path,
    *,
    alias: str | None = None,
    chat_format: str | None = None,
    n_ctx: int = 512,
    startup_timeout: float = _STARTUP_TIMEOUT_S,
    log_dir: Path | None = None,
) -> LlamaServer:
    """Launch a llama.cpp server on ``model_path`` and wait until it answers ``/v1/models``.

    ``alias`` is the model name clients use (default: the file stem). Raises :class:`LlamaServerError` with the
    log tail when it cannot start.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise LlamaServerError(f"model file not found: {model_path}")
    name = alias or model_path.stem
    folder = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="llama-server-"))
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    last_log: Path | None = None
    # The port is free when chosen but another process could take it before the server binds: retry then.
    for attempt in range(_PORT_ATTEMPTS):
        port = free_port()
        log_path = folder / f"llama-server-{port}-{attempt}.log"
        last_log = log_path
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model_path),
            "--model_alias", name,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--n_ctx", str(n_ctx),
            "--n_threads", "1",
            "--n_threads_batch", "1",
            "--verbose", "False",
        ]  # fmt: skip
        if chat_format:
            cmd += ["--chat_format", chat_format]
        with log_path.open("wb") as log:
            process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            ready = _wait_ready(process, url, log_path, startup_timeout)
        except BaseException:
            LlamaServer(process, port=port, model_name=name, log_path=log_path).stop()
            raise
        if ready:
            return LlamaServer(process, port=port, model_name=name, log_path=log_path)
    tail = _log_tail(last_log) if last_log else "<no log>"
    raise LlamaServerError(f"llama.cpp server exited before answering ({_PORT_ATTEMPTS} attempts); log tail:\n{tail}")


@contextlib.contextmanager
def llama_servers(
    model_path: Path, aliases: Sequence[str], *, n_ctx: int = 512, log_dir: Path | None = None
) -> Iterator[list[LlamaServer]]:
    """One llama.cpp server on ``model_path`` per alias (started one after another), in that order; all of them
    are stopped on leaving, also when one fails to start."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(start_llama_server(model_path, alias=alias, n_ctx=n_ctx, log_dir=log_dir))
            for alias in aliases
        ]
