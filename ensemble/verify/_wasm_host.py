"""The host side of one WebAssembly job, in a process of its own: wasmtime, the guest instance, its deadlines.

Standard library and wasmtime only, no CodeConductor imports: :mod:`codeconductor.ensemble.verify._wasm` starts it
as ``python -I -c SOURCE MODULE_PATH`` ahead of time (importing wasmtime costs a few hundred ms), hands it one job
on stdin (JSON) and reads one JSON result from stdout; then the process ends with ``os._exit``. A process per job
because wasmtime's WASI runtime threads can abort the process at interpreter exit after a trapped instance (seen
here: exit status 134 on one exit in two) - a language server or a test run must never inherit that - and because
a process can always be killed, whatever a host call is doing.

Per job: a fresh Store and instance (a fresh one again after a call that overran its deadline), the Store's memory
limit, a watcher thread that moves the engine's epoch on (wasm code traps) and sets ``halt`` (a sleep in a host
call ends: the guest's clocks and ``poll_oneoff`` are defined here, not by wasmtime, whose sleep no epoch can stop)
at every deadline, stdout and stderr to callbacks that keep a bounded amount, no environment, ``/job`` read-only.
The records the guest prints are checked here (the per-instance key, the order of calls) and turned into frames
shaped like the bubblewrap supervisor's; the parent reads them again with its bounded JSON reader.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

MAGIC = b"CCW1 "
STARTUP_S = 10.0  # the interpreter's own start, before the candidate's clock runs (slow on a loaded machine)
LINE_LIMIT = 64 * 1024  # one record line
STDERR_KEEP = 4096  # the guest's stderr: kept for debugging only
JOB_LIMIT = 64 * 1024 * 1024


_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)  # a JSON string: its brackets are not structure


def _depth(text: str) -> int:
    """How deeply ``text`` nests outside its JSON strings (no recursion: the line is not parsed yet)."""
    depth = deepest = 0
    for char in _STRING.sub("", text):
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def engine_config() -> Any:
    """The engine settings (a compiled module fits only an engine made with the same ones)."""
    import wasmtime

    config = wasmtime.Config()
    config.epoch_interruption = True  # wall-clock deadlines (a watcher thread moves the epoch on)
    config.cranelift_opt_level = "speed"
    return config


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
                if len(self.buffer) > LINE_LIMIT:
                    self.buffer, self.skipping = b"", True
                return
            line, self.buffer = self.buffer[:cut], self.buffer[cut + 1 :]
            if self.skipping:
                self.skipping = False
                continue
            self._line(line)

    def _line(self, line: bytes) -> None:
        if not line.startswith(MAGIC):
            return  # the candidate's own output
        key, _, body = line[len(MAGIC) :].partition(b" ")
        if not secrets.compare_digest(key, self.key):
            self.forged = True
            return
        try:
            text = body.decode("utf-8")
            if _depth(text) > 1:  # the guest's records are flat objects: never parse anything deeper
                raise ValueError("nested")
            record = json.loads(text)
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
            if len(self.stderr) < STDERR_KEEP:
                self.stderr += data[: STDERR_KEEP - len(self.stderr)]
        except BaseException:
            return


class _Stopped(Exception):
    """Raised in a host call (a sleep) when the watcher stopped the instance: epochs only interrupt wasm code."""


_SUBSCRIPTION = struct.Struct("<QB7x")  # userdata, tag; the union follows at 16 (48 bytes in all)
_CLOCK = struct.Struct("<I4xQQH")  # clock id, timeout (ns), precision, flags (1: absolute)
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, errno, type, nbytes, flags (32 bytes)
_EINVAL, _ENOTSUP = 28, 58


def _now_ns(clock_id: int) -> int:
    return time.time_ns() if clock_id == 0 else time.monotonic_ns()


def _define_clocks(linker: Any, halt: threading.Event) -> None:
    """The guest's clocks and ``poll_oneoff`` (every sleep and ``select``), in place of wasmtime's: its sleep blocks
    the host thread where no epoch can stop it (``time.sleep(10**7)`` would hold the job for months). Here a sleep
    is a wait on ``halt``, which the watcher sets with every deadline; fd subscriptions are ready at once (stdin is
    a file, stdout a callback)."""
    import wasmtime

    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
    linker.allow_shadowing = True

    def memory(caller: Any) -> Any:
        found = caller.get("memory")
        if not isinstance(found, wasmtime.Memory):
            raise _Stopped("no memory export")
        return found

    def clock_time_get(caller: Any, clock_id: int, precision: int, out: int) -> int:
        memory(caller).write(caller, struct.pack("<Q", _now_ns(clock_id)), out)
        return 0

    def poll_oneoff(caller: Any, subs_ptr: int, events_ptr: int, count: int, count_ptr: int) -> int:
        if not 0 < count <= 64:
            return _EINVAL
        mem = memory(caller)
        data = bytes(mem.read(caller, subs_ptr, subs_ptr + 48 * count))
        ready: list[bytes] = []
        clocks: list[tuple[int, int]] = []  # (ns to wait, userdata)
        for offset in range(0, 48 * count, 48):
            userdata, tag = _SUBSCRIPTION.unpack_from(data, offset)
            if tag == 0:
                clock_id, timeout, _, flags = _CLOCK.unpack_from(data, offset + 16)
                clocks.append((max(0, timeout - _now_ns(clock_id)) if flags & 1 else timeout, userdata))
            elif tag in (1, 2):
                ready.append(_EVENT.pack(userdata, 0, tag, 0, 0))
            else:
                return _ENOTSUP
        if not ready and clocks:
            wait = min(ns for ns, _ in clocks)
            end = time.monotonic_ns() + wait
            while (left := end - time.monotonic_ns()) > 0:
                if halt.wait(min(left / 1e9, 0.01)):
                    raise _Stopped("stopped while sleeping")
            ready = [_EVENT.pack(userdata, 0, 0, 0, 0) for ns, userdata in clocks if ns <= wait]
        mem.write(caller, b"".join(ready), events_ptr)
        mem.write(caller, struct.pack("<I", len(ready)), count_ptr)
        return 0

    module = "wasi_snapshot_preview1"
    linker.define_func(module, "clock_time_get", wasmtime.FuncType([i32, i64, i32], [i32]), clock_time_get, True)
    linker.define_func(module, "poll_oneoff", wasmtime.FuncType([i32, i32, i32, i32], [i32]), poll_oneoff, True)


@dataclass
class _Run:
    """One instance's end: its records, why it stopped, its exit code."""

    records: list[dict[str, Any]]
    stop: str  # "exit", "call_deadline", "job_deadline", "flood", "forged", "hostile", "trap"
    exit_code: int


def _run_instance(
    module: Any,
    engine: Any,
    job_dir: str,
    *,
    key_file: str,
    key: bytes,
    start: int,
    memory_mb: int,
    call_timeout_s: float,
    job_deadline: float,
    output_cap: int,
) -> _Run:
    import wasmtime

    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    halt = threading.Event()
    _define_clocks(linker, halt)
    store = wasmtime.Store(engine)
    store.set_limits(memory_size=memory_mb * 1024 * 1024, instances=1, memories=1, tables=4)
    state = _Instance(key)
    wasi = wasmtime.WasiConfig()
    wasi.argv = ["python", "-I", "-S", "/job/guest.py", str(start)]
    wasi.env = []
    wasi.stdin_file = key_file
    wasi.stdout_custom = lambda data: state.out(data, output_cap)
    wasi.stderr_custom = state.err
    wasi.preopen_dir(job_dir, "/job", False)  # read-only
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
                why = "job_deadline" if now - started > STARTUP_S else ""
            elif now > job_deadline:
                why = "job_deadline"
            else:
                gap = 2 * call_timeout_s if "loaded" not in kinds and "load_error" not in kinds else call_timeout_s
                why = "call_deadline" if now - state.progress > gap + 0.05 else ""
            if why:
                stop.append(why)
                halt.set()  # a sleep in a host call
                engine.increment_epoch()  # wasm code
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
    except (wasmtime.Trap, wasmtime.WasmtimeError, _Stopped) as exc:
        exit_code = -1
        if not stop and os.environ.get("CODECONDUCTOR_WASM_DEBUG"):
            print(f"wasm guest trapped: {exc}; stderr: {state.stderr[-500:]!r}", file=sys.stderr)
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


def run_job(module: Any, engine: Any, job: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one values job (its files already in ``job["root"]``); the frames, the last one the end frame."""
    frames: list[dict[str, Any]] = []
    end: dict[str, Any] = {"t": "end", "exit_code": 0, "timed_out": False, "forged": False}
    root, count = str(job["root"]), int(job["count"])
    call_timeout_s, memory_mb = float(job["call_timeout_s"]), int(job["memory_mb"])
    deadline = time.monotonic() + float(job["timeout_s"])
    job_dir, key_file = os.path.join(root, "job"), os.path.join(root, "key")
    start = 0
    while True:
        key = secrets.token_hex(16).encode()
        # stdin: outside /job, read once by the guest before the candidate loads
        with open(key_file, "wb") as handle:
            handle.write(key)
        run = _run_instance(
            module,
            engine,
            job_dir,
            key_file=key_file,
            key=key,
            start=start,
            memory_mb=memory_mb,
            call_timeout_s=call_timeout_s,
            job_deadline=deadline,
            output_cap=int(job["output_cap"]),
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
            end["hostile"] = next(str(r.get("reason"))[:200] for r in run.records if r.get("t") == "hostile")
            break
        loaded = any(r.get("t") in ("loaded", "load_error") for r in run.records)
        if run.stop == "call_deadline" and not loaded:
            frames.append({"t": "load_error", "error": "Timeout"})  # as bubblewrap: the candidate never loaded
            break
        if run.stop == "call_deadline" and expected < count:
            # The call that overran is a Timeout; the next calls go to a fresh instance.
            frames.append({"t": "call", "i": expected, "ok": False, "value": None, "error": "Timeout"})
            start = expected + 1
            if start < count and time.monotonic() < deadline:
                continue
        if run.stop == "job_deadline":
            end["timed_out"] = True
        elif run.stop == "flood":
            end["exit_code"] = -25  # as a full output file would: SIGXFSZ
        elif run.stop in ("trap", "exit"):
            end["exit_code"] = run.exit_code if run.stop == "exit" else -6
        break
    frames.append(end)
    return frames


def compile_module(wasm_path: str, target: str) -> None:
    """Compile the guest interpreter and write it, serialized, to ``target`` atomically (a temporary file in the
    same folder, fsync, rename): a reader sees the whole module or none."""
    import contextlib
    import tempfile

    import wasmtime

    data = wasmtime.Module.from_file(wasmtime.Engine(engine_config()), wasm_path).serialize()
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(target), prefix=".compiling-", suffix=".cwasm")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def serve(module_path: str) -> None:
    """The process: import wasmtime and map the compiled module now (ahead of the job), then run one job from
    stdin and write its frames to stdout; end without interpreter teardown."""
    try:
        import wasmtime

        engine = wasmtime.Engine(engine_config())  # its own epoch: a deadline here stops no other job
        module = wasmtime.Module.deserialize_file(engine, module_path)
        head = sys.stdin.buffer.read(4)
        if len(head) < 4:
            os._exit(0)  # the parent closed without a job (a spare not needed)
        (size,) = struct.unpack(">I", head)
        if size > JOB_LIMIT:
            os._exit(2)
        job = json.loads(sys.stdin.buffer.read(size))
        out = json.dumps({"frames": run_job(module, engine, job)}).encode()
        os.write(1, struct.pack(">I", len(out)) + out)
        os._exit(0)
    except BaseException:
        os._exit(3)


if __name__ == "__main__":
    if sys.argv[1] == "--compile":
        compile_module(sys.argv[2], sys.argv[3])
        sys.stdout.flush()
        os._exit(0)
    serve(sys.argv[1])
