"""Run untrusted candidate code safely and fast, so consensus can judge code by what it does.

Containment. Where bubblewrap can run, every job gets a FRESH sandbox (:mod:`codeconductor.ensemble.verify._bwrap`: new user,
network, PID, IPC, UTS and mount namespaces, no capabilities, uid 65534, only the interpreter and system
directories read-only, a tmpfs scratch, seccomp), started ahead of time so a job rarely waits for it, and torn
down with everything in it when the job ends: nothing one candidate does reaches the next. Where bubblewrap cannot
run (macOS, Windows, containers without user namespaces), pure-Python values jobs (:meth:`Sandbox.run_calls`)
run in CPython for WASI under wasmtime (:mod:`codeconductor.ensemble.verify._wasm`: a fresh instance per job, capped
memory, wall-clock deadlines, no sockets, no environment, no host directory but the job's read-only input), named
in every result (:data:`~codeconductor.ensemble.verify._wasm.LABEL`); programs (pytest, node, the user's project,
Go) are not executed there. Where neither can run, nothing runs: :attr:`Sandbox.available` is False,
:attr:`Sandbox.unavailable_reason` says why, and every job raises
:class:`~codeconductor.ensemble.errors.SandboxUnavailable` with the words the user reads (:func:`sandbox_notice`).
There is no weaker fallback: the one there was could be escaped (issue 24). The user's switch
``CODECONDUCTOR_SANDBOX=webassembly`` (an environment variable: a repository cannot set it) forces the WebAssembly
backend; ``Sandbox(backend=...)`` does for one sandbox (tests).

Hostile candidates. A candidate that tries what no code edit needs (an escape-only system call, a connection, a
write outside its scratch, a process) is named: its calls fail as ``Hostile:<reason>`` and a program's outcome
carries :attr:`ScriptOutcome.hostile`; the consensus puts it out with that reason.

Verification. The child reports values only (canonical reprs); every comparison happens here, in the parent
(:mod:`codeconductor.ensemble.verify.compare`). The channel is framed (magic, per-job nonce, sequence number, length), capped
(1 MiB plus the output limit) and read in bounded chunks with a deadline; a child or supervisor that floods, forges,
stops or stays silent is killed, and every call it did not properly report counts as failed.

Paths: :meth:`Sandbox.run_calls` (define the candidate, evaluate call expressions, one :class:`CallOutcome`
each), :meth:`Sandbox.run_program` (write files into the scratch directory and run an executable given by
absolute path there, get a :class:`ScriptOutcome`), :meth:`Sandbox.run_script` (``python -I ARGV`` through
``run_program``), and ``a``-prefixed async twins. A candidate failing is an outcome;
:class:`~codeconductor.ensemble.errors.SandboxError` is raised only when the sandbox itself cannot run.
"""

from __future__ import annotations

import asyncio
import atexit
import binascii
import contextlib
import functools
import logging
import marshal
import os
import select
import signal
import site
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from ..errors import SandboxError, SandboxUnavailable
from . import _bwrap, _wasm
from ._worker import BOOT, HEADER, MAGIC, NONCE_BYTES
from .bounded import read_json
from .compare import matches_expected

__all__ = [
    "HOSTILE_ERROR",
    "CallOutcome",
    "CallSpec",
    "Sandbox",
    "ScriptOutcome",
    "sandbox_notice",
    "shared_sandbox",
]

_log = logging.getLogger(__name__)
_WORKER_PATH = Path(__file__).with_name("_worker.py")
# The supervisor's code goes in compiled (same interpreter): compiling 600 lines in every sandbox costs ~10 ms.
_LOADER = "import binascii, marshal, sys; exec(marshal.loads(binascii.a2b_base64(sys.argv.pop(1))))"
CHANNEL_LIMIT = 1 << 20  # what one job may send back, besides its capped stdout and stderr
_GRACE_S = 2.0  # on top of a job's own timeout: starting the sandbox, writing files, the end frame
_CHUNK = 65536

Backend = Literal["auto", "bubblewrap", "webassembly"]
Containment = Literal["bubblewrap", "webassembly", "none"]
# A call's error when the candidate tried what no code edit needs; the reason follows. The consensus reads it as
# the outcome key "!Hostile:<reason>" (``codeconductor.ensemble.consensus.behaviour.HOSTILE_KEY``).
HOSTILE_ERROR = "Hostile:"


@dataclass(frozen=True)
class CallSpec:
    """One call to make: a Python expression, and optionally the expression its value should equal."""

    expr: str
    expected: str | None = None


@dataclass(frozen=True)
class CallOutcome:
    """What one call did. ``value`` is a canonical repr (floats rounded); ``error`` an exception type name
    (``Timeout`` for the per-call limit, ``load:<Type>`` when the candidate could not even be defined, ``Forged``
    when the candidate tampered with the result channel, ``Killed:<code>`` when the run ended before the call,
    ``Hostile:<reason>`` on every call when the candidate tried something no code edit needs).
    ``matches`` is computed in the parent."""

    ok: bool
    value: str | None = None
    error: str | None = None
    matches: bool | None = None  # None: no expected value given

    @property
    def key(self) -> str:
        """The behaviour this outcome stands for, for clustering."""
        return f"={self.value}" if self.ok else f"!{self.error}"


@dataclass(frozen=True)
class ScriptOutcome:
    exit_code: int
    stdout: str
    stderr: str
    timed_out: bool
    network_blocked: bool
    wall_s: float
    hostile: str | None = None  # what the program tried that no code edit needs (seen by the supervisor)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and self.hostile is None


# -- the channel ----------------------------------------------------------------------------------------------
def _write_all(fd: int, data: bytes, deadline: float) -> bool:
    """Write ``data`` to a non-blocking pipe before ``deadline``; False when the reader is gone or too slow."""
    view = memoryview(data)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            _, ready, _ = select.select([], [fd], [], left)
            if ready:
                view = view[os.write(fd, view[: 1 << 16]) :]
        except BlockingIOError:
            continue
        except OSError:
            return False
    return True


def read_frames(fd: int, nonce: bytes, deadline: float, limit: int) -> tuple[list[dict[str, Any]], str]:
    """Read frames until an end frame. Returns the frames and how reading stopped: ``end``, ``eof``,
    ``deadline`` or ``violation`` (bad magic, nonce, sequence number, length or JSON, or over ``limit`` bytes).
    Reads at most one frame plus one chunk into memory, whatever the other side writes."""
    frames: list[dict[str, Any]] = []
    buffer, total, accepted = b"", 0, 0
    while True:
        while len(buffer) >= HEADER.size:
            magic, got_nonce, seq, size = HEADER.unpack_from(buffer)
            if magic != MAGIC or got_nonce != nonce or seq != len(frames) or accepted + size > limit:
                return frames, "violation"
            if len(buffer) < HEADER.size + size:
                break
            accepted += size
            payload, buffer = buffer[HEADER.size : HEADER.size + size], buffer[HEADER.size + size :]
            try:
                frame = read_json(payload, max_depth=8, max_chars=limit)  # bounded: never a RecursionError
            except ValueError:
                return frames, "violation"
            if not isinstance(frame, dict):
                return frames, "violation"
            frames.append(frame)
            if frame.get("t") in ("end", "hello"):
                return frames, "violation" if buffer else "end"
        left = deadline - time.monotonic()
        if left <= 0:
            return frames, "deadline"
        try:
            ready, _, _ = select.select([fd], [], [], left)
        except (OSError, ValueError):
            return frames, "eof"
        if not ready:
            continue
        try:
            data = os.read(fd, _CHUNK)
        except BlockingIOError:
            continue
        except OSError:
            return frames, "eof"
        if not data:
            return frames, "eof"
        total += len(data)
        if total > limit + HEADER.size * 64:
            return frames, "violation"
        buffer += data


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()


def _encode_job(job: dict[str, Any]) -> bytes:
    body = marshal.dumps(job)  # plain data only; the supervisor loads it without the json module
    return struct.pack(">I", len(body)) + body


# -- supervisors ----------------------------------------------------------------------------------------------
class _Supervisor:
    """One supervisor process: a fresh bubblewrap sandbox for one job."""

    def __init__(self, argv: list[str], pass_fds: Sequence[int] = ()) -> None:
        try:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                pass_fds=tuple(pass_fds),
                start_new_session=True,
                bufsize=0,
            )
        except OSError as exc:
            raise SandboxError(f"cannot start the sandbox: {exc}") from exc
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        os.set_blocking(self.proc.stdin.fileno(), False)
        self.state: dict[str, Any] = {}

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def request(self, job: dict[str, Any], timeout_s: float, limit: int) -> tuple[list[dict[str, Any]], str]:
        """Send one job and read its frames; on anything but a clean end the process is killed."""
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        nonce = os.urandom(NONCE_BYTES)
        deadline = time.monotonic() + timeout_s + _GRACE_S
        # The calls of a calls job go after the nonce: the supervisor reads them once the child is forked, and
        # hands them to it one at a time.
        calls = {"calls": job["calls"]} if job.get("kind") == "calls" else None
        head = {k: v for k, v in job.items() if k != "calls"} if calls is not None else job
        message = _encode_job(head) + nonce + (_encode_job(calls) if calls is not None else b"")
        if not _write_all(self.proc.stdin.fileno(), message, deadline):
            self.kill()
            return [], "eof"
        frames, how = read_frames(self.proc.stdout.fileno(), nonce, deadline, limit)
        if how != "end":
            self.kill()
        return frames, how

    def kill(self) -> None:
        _kill_group(self.proc)

    def close(self) -> None:
        self.kill()


def _supervisor_command(*args: str) -> list[str]:
    # -S: no site processing (a third of the start-up; the .pth files would import the project's own editable
    # install): the supervisor adds the interpreter's site-packages for the candidate itself.
    site_dirs = "--site=" + os.pathsep.join(_site_dirs())
    return [sys.executable, "-I", "-S", "-c", _LOADER, _supervisor_code(), site_dirs, *args]


@functools.lru_cache(maxsize=1)
def _supervisor_code() -> str:
    code = compile(_WORKER_PATH.read_text(encoding="utf-8"), "<sandbox-supervisor>", "exec")
    return binascii.b2a_base64(marshal.dumps(code), newline=False).decode("ascii")


@functools.lru_cache(maxsize=1)
def _site_dirs() -> list[str]:
    return [p for p in site.getsitepackages() if os.path.isdir(p)]


def _start_bwrap(support: _bwrap.Support, ro_paths: Sequence[str] = ()) -> _Supervisor:
    fd = _bwrap.seccomp_fd(support.seccomp)
    fds = [f for f in (fd, support.userns_fd) if f is not None]
    try:
        argv = _bwrap.argv(support, seccomp_fd=fd, ro_paths=ro_paths)
        return _Supervisor([*argv, *_supervisor_command("once")], fds)
    finally:
        if fd is not None:
            os.close(fd)


class Sandbox:
    """Runs candidates contained. ``workers``: how many jobs may run at once (and how many sandboxes are kept
    started ahead). ``backend``: ``auto`` (bubblewrap where it runs, else WebAssembly for pure-Python values, else
    nothing), or one of them only. Where none can run, :attr:`available` is False and every job raises
    :class:`SandboxUnavailable`. Usable with ``with`` or ``async with``; :meth:`close` stops everything."""

    def __init__(
        self,
        *,
        workers: int = 1,
        memory_mb: int = 512,
        output_limit: int = 65536,
        backend: Backend = "auto",
        ahead: int | None = None,
    ) -> None:
        self._size = max(1, workers)
        # Sandboxes started ahead: while a job runs, the next ones start.
        self._ahead = ahead if ahead is not None else self._size + 1
        self.memory_mb = memory_mb
        self.output_limit = output_limit
        self._backend = backend
        self._support: _bwrap.Support | None = None
        self._slots = threading.BoundedSemaphore(self._size)
        self._spares: list[_Supervisor] = []
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    # -- containment -----------------------------------------------------------------------------------------
    def _probe(self) -> _bwrap.Support:
        if self._support is None:
            self._support = _bwrap.support()
        return self._support

    def _choose(self) -> tuple[Containment, str | None]:
        """The backend jobs run in now, or ``none`` and why (for the user, short)."""
        switch = os.environ.get(_bwrap.ENV_SWITCH, "").strip().lower()
        if switch not in _bwrap.SWITCH_VALUES:
            return "none", self._probe().reason  # the user turned execution off: nothing at all
        want_wasm = self._backend == "webassembly" or switch in _bwrap.WASM_SWITCH_VALUES
        support = self._probe()
        if not want_wasm:
            if support.usable:
                return "bubblewrap", None
            if self._backend == "bubblewrap" or switch == "bubblewrap":
                return "none", support.reason or "bubblewrap cannot run here"
        wasm = _wasm.support(start=True)  # not ready: compiling starts in the background, nothing waits for it
        if wasm.usable:
            return "webassembly", None
        if want_wasm:
            return "none", wasm.reason
        return "none", f"{support.reason or 'bubblewrap cannot run here'}; {wasm.reason}"

    @property
    def available(self) -> bool:
        """Whether candidates can run here (bubblewrap, or WebAssembly for pure-Python values); probed once per
        process (WebAssembly: becomes True once its module is compiled)."""
        return self._choose()[0] != "none"

    @property
    def runs_programs(self) -> bool:
        """Whether programs run here (pytest, node, a project's tests): bubblewrap only."""
        return self._choose()[0] == "bubblewrap"

    @property
    def unavailable_reason(self) -> str | None:
        """Why nothing can run here (short, for the user), or None when a sandbox is available."""
        return self._choose()[1]

    def require(self, *, programs: bool = False) -> None:
        """Raise :class:`SandboxUnavailable` (its message: why, and the fix) where nothing can run; ``programs``:
        also where only pure-Python values can (WebAssembly)."""
        containment, reason = self._choose()
        if containment == "none":
            raise SandboxUnavailable(_bwrap.unavailable_note(reason or ""), reason or "")
        if programs and containment != "bubblewrap":
            raise SandboxUnavailable(f"not executed: running tests {_wasm.PROGRAMS_NOTE}", _wasm.PROGRAMS_NOTE)

    def _require(self) -> _bwrap.Support:
        self.require(programs=True)
        return self._probe()

    @property
    def containment(self) -> Containment:
        """``bubblewrap`` (a fresh namespace sandbox per job), ``webassembly`` (pure-Python values in wasmtime) or
        ``none`` (nothing runs)."""
        return self._choose()[0]

    @property
    def network_blocked(self) -> bool:
        """Whether candidates run without network (always, when they run at all)."""
        return self.available

    @property
    def protections(self) -> dict[str, bool]:
        """Which protections candidates get: all of bubblewrap's, WebAssembly's (no network, no host file
        system, no processes: its own kind of isolation, no namespaces or seccomp), or none (then nothing runs)."""
        names = ("namespaces", "network_blocked", "fs_readonly", "uid_dropped", "seccomp")
        containment = self.containment
        if containment == "webassembly":
            return {**dict.fromkeys(names, False), "network_blocked": True, "fs_readonly": True, "webassembly": True}
        return dict.fromkeys(names, containment == "bubblewrap")

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the sandboxes ahead; where none can run, nothing (the jobs say why)."""
        with self._lock:
            if self._closed:
                raise SandboxError("sandbox is closed")
            if not self._started:
                atexit.register(self.close)
                self._started = True
        if self.containment == "bubblewrap":
            self._fill_spares()

    def _fill_spares(self) -> None:
        support = self._require()
        while True:
            with self._lock:
                if self._closed or len(self._spares) >= self._ahead:
                    return
            spare = _start_bwrap(support)
            with self._lock:
                if self._closed:
                    spare.kill()
                    return
                self._spares.append(spare)

    def _take_spare(self, ro_paths: Sequence[str] = ()) -> _Supervisor:
        if ro_paths:  # a sandbox of its own, with these paths shown
            return _start_bwrap(self._require(), ro_paths)
        with self._lock:
            while self._spares:
                spare = self._spares.pop(0)
                if spare.alive:
                    return spare
                spare.kill()
        return _start_bwrap(self._require())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            everything, self._spares = self._spares, []
        for process in everything:
            process.close()

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Sandbox:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.close)

    # -- jobs ------------------------------------------------------------------------------------------------
    def _limit(self) -> int:
        return CHANNEL_LIMIT + 16 * self.output_limit

    def _submit(self, job: dict[str, Any], timeout_s: float) -> tuple[list[dict[str, Any]], str]:
        if self._closed:
            raise SandboxError("sandbox is closed")
        if job["kind"] == "calls" and self.containment == "webassembly":
            return self._submit_wasm(job)
        self._require()
        job = {**job, "frame_limit": self._limit()}
        with self._slots:
            for attempt in range(2):
                box = self._take_spare(job.get("ro_paths") or ())
                try:
                    self._fill_spares()  # the next job's sandbox starts while this one runs
                    frames, how = box.request(job, timeout_s, self._limit())
                finally:
                    box.kill()
                # Nothing at all came back: the sandbox failed to start (not the candidate). Once more.
                if frames or how == "deadline" or attempt:
                    return frames, how
        raise AssertionError("unreachable")

    def _submit_wasm(self, job: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        ready = _wasm.support(start=True)
        if not ready.usable:  # went away since it was chosen (a broken cache): nothing runs
            raise SandboxUnavailable(_bwrap.unavailable_note(ready.reason or ""), ready.reason or "")
        with self._slots:
            return _wasm.run_calls(
                job["code"],
                job.get("entry_point"),
                job["calls"],
                timeout_s=float(job["timeout_s"]),
                call_timeout_s=float(job["call_timeout_s"]),
                memory_mb=int(job["memory_mb"]),
                output_limit=self.output_limit,
            )

    def run_calls(
        self,
        code: str,
        entry_point: str,
        calls: Sequence[str | CallSpec],
        timeout_s: float = 5.0,
        *,
        call_timeout_s: float = 1.0,
    ) -> list[CallOutcome]:
        """Define ``code`` in a fresh namespace and evaluate each call (an expression such as ``f(1, 2)``).
        Returns one outcome per call, in order; calls not reached before ``timeout_s`` come back as ``Timeout``.
        Expected values never reach the sandbox: ``matches`` is decided here, on the reported values."""
        specs = [c if isinstance(c, CallSpec) else CallSpec(c) for c in calls]
        job = {
            "kind": "calls",
            "code": code,
            "entry_point": entry_point,
            "calls": [s.expr for s in specs],
            "timeout_s": timeout_s,
            "call_timeout_s": call_timeout_s,
            "memory_mb": self.memory_mb,
        }
        frames, how = self._submit(job, timeout_s)
        return _call_outcomes(specs, frames, how)

    def run_program(
        self,
        files: Mapping[str, str],
        argv: Sequence[str],
        timeout_s: float = 10.0,
        *,
        memory_mb: int | None = None,
        executable: Sequence[str] = (),
        max_procs: int = 1024,
        ro_paths: Sequence[str] = (),
        file_mb: int = 4,
    ) -> ScriptOutcome:
        """Write ``files`` (relative paths) into a fresh scratch directory and run ``argv`` there; ``argv[0]`` is an
        executable by absolute path (``/usr/bin/node``, or a file of ``files`` as ``/tmp/NAME`` with bubblewrap:
        see :attr:`scratch_dir`; ``executable`` names files to mark executable). ``max_procs``: processes and
        threads (``RLIMIT_NPROC``); ``ro_paths``: host directories to show read-only at the same path (a project's
        site-packages, a toolchain outside /usr); ``file_mb``: the largest file it may write (``RLIMIT_FSIZE``: a
        compiler's output is larger than a script's; the scratch's own size caps them all)."""
        if not argv or not os.path.isabs(argv[0]):
            raise SandboxError("run_program needs an executable by absolute path")
        job = {
            "kind": "program",
            "files": dict(files),
            "argv": list(argv),
            "executable": list(executable),
            "timeout_s": timeout_s,
            "memory_mb": memory_mb or self.memory_mb,
            "output_limit": self.output_limit,
            "max_procs": max_procs,
            "ro_paths": [os.path.realpath(p) for p in ro_paths],
            "file_mb": file_mb,
        }
        frames, how = self._submit(job, timeout_s)
        end = frames[-1] if how == "end" and frames and frames[-1].get("t") == "end" else None
        if end is None:
            why = "timed out" if how == "deadline" else "stopped reporting" if how != "violation" else "forged"
            return ScriptOutcome(-9, "", f"sandbox: the run {why}", how == "deadline", self.network_blocked, 0.0)
        state = end.get("state") or {}
        hostile = end.get("hostile")
        return ScriptOutcome(
            exit_code=_as_int(end.get("exit_code"), -1),
            stdout=str(end.get("stdout", ""))[: self.output_limit + 40],
            stderr=str(end.get("stderr", ""))[: self.output_limit + 40],
            timed_out=bool(end.get("timed_out")),
            network_blocked=bool(state.get("network_blocked")),
            wall_s=float(end.get("wall_s", 0.0)) if isinstance(end.get("wall_s"), (int, float)) else 0.0,
            hostile=str(hostile)[:200] if hostile else None,
        )

    @property
    def scratch_dir(self) -> str | None:
        """Where ``files`` land inside the sandbox (``/tmp``; None where no program can run)."""
        return _bwrap.SCRATCH if self.runs_programs else None

    def run_script(
        self,
        files: Mapping[str, str],
        argv: Sequence[str],
        timeout_s: float = 10.0,
        *,
        memory_mb: int | None = None,
        ro_paths: Sequence[str] = (),
    ) -> ScriptOutcome:
        """Write ``files`` (relative paths) into a scratch directory and run ``python -I *argv`` in it (with an
        audit hook refusing writes outside it, processes and sockets)."""
        argv = [sys.executable, "-I", "-c", BOOT, *argv]
        return self.run_program(files, argv, timeout_s, memory_mb=memory_mb, max_procs=0, ro_paths=ro_paths)

    async def arun_calls(
        self,
        code: str,
        entry_point: str,
        calls: Sequence[str | CallSpec],
        timeout_s: float = 5.0,
        *,
        call_timeout_s: float = 1.0,
    ) -> list[CallOutcome]:
        return await asyncio.to_thread(
            self.run_calls, code, entry_point, calls, timeout_s, call_timeout_s=call_timeout_s
        )

    async def arun_program(
        self,
        files: Mapping[str, str],
        argv: Sequence[str],
        timeout_s: float = 10.0,
        *,
        memory_mb: int | None = None,
        executable: Sequence[str] = (),
        max_procs: int = 1024,
        ro_paths: Sequence[str] = (),
        file_mb: int = 4,
    ) -> ScriptOutcome:
        return await asyncio.to_thread(
            self.run_program,
            files,
            argv,
            timeout_s,
            memory_mb=memory_mb,
            executable=executable,
            max_procs=max_procs,
            ro_paths=ro_paths,
            file_mb=file_mb,
        )

    async def arun_script(
        self,
        files: Mapping[str, str],
        argv: Sequence[str],
        timeout_s: float = 10.0,
        *,
        memory_mb: int | None = None,
        ro_paths: Sequence[str] = (),
    ) -> ScriptOutcome:
        return await asyncio.to_thread(self.run_script, files, argv, timeout_s, memory_mb=memory_mb, ro_paths=ro_paths)


def _as_int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _call_outcomes(specs: Sequence[CallSpec], frames: list[dict[str, Any]], how: str) -> list[CallOutcome]:
    """Outcomes from the frames of one calls job: only what was properly reported counts; a load error fails
    every call; any tampering with the channel fails every call."""

    def failed(error: str) -> list[CallOutcome]:
        return [CallOutcome(False, error=error, matches=False if s.expected is not None else None) for s in specs]

    end = frames[-1] if how == "end" and frames and frames[-1].get("t") == "end" else None
    if end is not None and end.get("hostile"):
        # Named before anything else: what it tried decides, whatever values it reported.
        return failed(HOSTILE_ERROR + str(end.get("hostile"))[:200])
    if how == "violation" or (end is not None and end.get("forged")):
        return failed("Forged")
    body = frames[:-1] if end is not None else frames
    if body and body[0].get("t") == "load_error":
        return failed(f"load:{str(body[0].get('error'))[:100]}")
    outcomes: list[CallOutcome] = []
    for index, frame in enumerate(body):
        ok, value, error = frame.get("ok"), frame.get("value"), frame.get("error")
        proper = frame.get("t") == "call" and frame.get("i") == index and index < len(specs)
        proper = proper and ((ok is True and isinstance(value, str)) or (ok is False and isinstance(error, str)))
        if not proper:
            return failed("Forged")
        spec = specs[index]
        if ok:
            assert isinstance(value, str)
            matches = None if spec.expected is None else matches_expected(value, spec.expected)
            outcomes.append(CallOutcome(True, value=value, matches=matches))
        else:
            outcomes.append(CallOutcome(False, error=str(error), matches=False if spec.expected is not None else None))
    if len(outcomes) < len(specs):
        timed_out = how == "deadline" or (end is not None and bool(end.get("timed_out")))
        error = "Timeout" if timed_out else f"Killed:{_as_int(end.get('exit_code'), -9) if end else -9}"
        for spec in specs[len(outcomes) :]:
            outcomes.append(CallOutcome(False, error=error, matches=False if spec.expected is not None else None))
    return outcomes


_shared: dict[str, Sandbox] = {}
_shared_lock = threading.Lock()


def shared_sandbox() -> Sandbox:
    """The process-wide sandbox used by consensus (started lazily, one job at a time)."""
    with _shared_lock:
        box = _shared.get("default")
        if box is None or box._closed:
            box = _shared["default"] = Sandbox(workers=1)
        return box


def sandbox_notice() -> str | None:
    """The line for the user when nothing can be executed here (None when a sandbox runs); probing costs a few
    ms once per process."""
    reason = Sandbox().unavailable_reason
    return None if reason is None else _bwrap.unavailable_note(reason)


def containment_line() -> str:
    """How candidates are contained here, in one line (``codeconductor models``): the sandbox, or why nothing
    runs (and the fix), starting with ``OFF``."""
    box = Sandbox()
    containment, reason = box._choose()
    if containment == "bubblewrap":
        return "bubblewrap - fresh namespaces, uid 65534 and seccomp for each candidate batch"
    if containment == "webassembly":
        return f"WebAssembly - {_wasm.LABEL}; tests, JavaScript and project runs are not executed"
    return "OFF - " + _bwrap.unavailable_note(reason or "")
