"""Run untrusted candidate code safely and fast, so consensus can judge code by what it does.

A :class:`Sandbox` keeps a small pool of warm worker processes (``_worker.py``); each job forks one contained
child (network namespace, throw-away uid, resource limits, scratch directory, audit hook, wall timeout, output
caps, whole process group killed afterwards). Two paths:

* :meth:`Sandbox.run_calls` - define the candidate, evaluate call expressions, get one :class:`CallOutcome` each
  (canonical value repr or error type, and whether it matched an expected value);
* :meth:`Sandbox.run_script` - write files into the scratch directory and run ``python -I ARGV`` there
  (pytest on candidates, HumanEval's checks), get a :class:`ScriptOutcome`;
* :meth:`Sandbox.run_program` - the same for any program (``argv[0]`` an absolute path: node, a compiled binary).

Both have ``a``-prefixed async twins. A candidate failing is an outcome; :class:`~ensemble.errors.SandboxError` is
raised only when the sandbox itself cannot run.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import SandboxError

__all__ = ["CallOutcome", "CallSpec", "Sandbox", "ScriptOutcome", "shared_sandbox"]

_log = logging.getLogger(__name__)
_WORKER = Path(__file__).with_name("_worker.py")


@dataclass(frozen=True)
class CallSpec:
    """One call to make: a Python expression, and optionally the expression its value should equal."""

    expr: str
    expected: str | None = None


@dataclass(frozen=True)
class CallOutcome:
    """What one call did. ``value`` is a canonical repr (floats rounded); ``error`` an exception type name
    (``Timeout`` for the per-call limit, ``load:<Type>`` when the candidate could not even be defined)."""

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

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


class _Worker:
    """One warm worker process and its line protocol."""

    def __init__(self) -> None:
        self.base = tempfile.mkdtemp(prefix="codeconductor-sandbox-")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", str(_WORKER), self.base],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        except OSError as exc:
            shutil.rmtree(self.base, ignore_errors=True)
            raise SandboxError(f"cannot start the sandbox worker: {exc}") from exc
        hello = self._read()
        self.network_blocked = bool(hello.get("network_blocked"))
        self.fs_readonly = bool(hello.get("fs_readonly"))
        self.uid_dropped = bool(hello.get("uid_dropped"))
        if not self.network_blocked:
            _log.warning("sandbox: could not create a network namespace; candidates run with network access")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise SandboxError("the sandbox worker exited unexpectedly")
        try:
            reply: dict[str, Any] = json.loads(line)
        except ValueError as exc:
            raise SandboxError("the sandbox worker sent garbage") from exc
        return reply

    def request(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(job) + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise SandboxError("the sandbox worker is gone") from exc
        reply = self._read()
        if "worker_error" in reply:
            raise SandboxError(f"sandbox worker failed: {reply['worker_error']}")
        return reply

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()
                self.proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        shutil.rmtree(self.base, ignore_errors=True)


class Sandbox:
    """A pool of ``workers`` warm sandbox workers, started on first use. Usable with ``with`` or
    ``async with``; :meth:`close` stops them (they also stop when their stdin closes)."""

    def __init__(self, *, workers: int = 1, memory_mb: int = 512, output_limit: int = 65536) -> None:
        self._size = max(1, workers)
        self.memory_mb = memory_mb
        self.output_limit = output_limit
        self._free: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise SandboxError("sandbox is closed")
            if not self._all:
                # Workers die with their stdin anyway; this also removes their scratch roots at exit.
                atexit.register(self.close)
            while len(self._all) < self._size:
                worker = _Worker()
                self._all.append(worker)
                self._free.put(worker)

    @property
    def network_blocked(self) -> bool:
        """Whether candidates run without network (False also when no worker has started yet)."""
        return bool(self._all) and all(w.network_blocked for w in self._all)

    @property
    def containment(self) -> dict[str, bool]:
        """Which OS-level protections the workers got: network namespace, read-only file system, dropped uid."""
        workers = list(self._all)
        return {
            "network_blocked": bool(workers) and all(w.network_blocked for w in workers),
            "fs_readonly": bool(workers) and all(w.fs_readonly for w in workers),
            "uid_dropped": bool(workers) and all(w.uid_dropped for w in workers),
        }

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers, self._all = self._all, []
        for worker in workers:
            worker.close()

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
    def _submit(self, job: dict[str, Any]) -> dict[str, Any]:
        if not self._all:
            self.start()
        worker = self._free.get()
        try:
            if not worker.alive:
                worker = self._replace(worker)
            try:
                return worker.request(job)
            except SandboxError:
                # One retry on a fresh worker: a crashed worker must not fail the whole consensus.
                worker = self._replace(worker)
                return worker.request(job)
        finally:
            self._free.put(worker)

    def _replace(self, worker: _Worker) -> _Worker:
        worker.close()
        fresh = _Worker()
        with self._lock:
            self._all = [fresh if w is worker else w for w in self._all]
        return fresh

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
        Returns one outcome per call, in order; calls not reached before ``timeout_s`` come back as ``Timeout``."""
        specs = [c if isinstance(c, CallSpec) else CallSpec(c) for c in calls]
        job = {
            "kind": "calls",
            "code": code,
            "entry_point": entry_point,
            "calls": [{"expr": s.expr, "expected": s.expected} for s in specs],
            "timeout_s": timeout_s,
            "call_timeout_s": call_timeout_s,
            "memory_mb": self.memory_mb,
            "output_limit": 4096,
        }
        reply = self._submit(job)
        results: list[dict[str, Any]] = reply.get("results", [])
        if results and "load_error" in results[0]:
            error = f"load:{results[0]['load_error']}"
            return [CallOutcome(False, error=error, matches=False if s.expected else None) for s in specs]
        outcomes = []
        for index, spec in enumerate(specs):
            if index < len(results):
                r = results[index]
                outcomes.append(CallOutcome(bool(r.get("ok")), r.get("value"), r.get("error"), r.get("matches")))
            else:
                # Killed mid-way (wall timeout, memory, CPU): what was not reached failed.
                error = "Timeout" if reply.get("timed_out") else f"Killed:{reply.get('exit_code')}"
                outcomes.append(CallOutcome(False, error=error, matches=False if spec.expected else None))
        return outcomes

    def run_script(
        self,
        files: Mapping[str, str],
        argv: Sequence[str],
        timeout_s: float = 10.0,
        *,
        memory_mb: int | None = None,
    ) -> ScriptOutcome:
        """Write ``files`` (relative paths) into a scratch directory and run ``python -I *argv`` in it."""
        job = {
            "kind": "script",
            "files": dict(files),
            "argv": list(argv),
            "timeout_s": timeout_s,
            "memory_mb": memory_mb or self.memory_mb,
            "output_limit": self.output_limit,
        }
        reply = self._submit(job)
        return ScriptOutcome(
            exit_code=int(reply.get("exit_code", -1)),
            stdout=str(reply.get("stdout", "")),
            stderr=str(reply.get("stderr", "")),
            timed_out=bool(reply.get("timed_out")),
            network_blocked=bool(reply.get("network_blocked")),
            wall_s=float(reply.get("wall_s", 0.0)),
        )

    def run_program(
        self,
        files: Mapping[str, str],
        argv: Sequence[str],
        timeout_s: float = 10.0,
        *,
        memory_mb: int | None = None,
    ) -> ScriptOutcome:
        """Write ``files`` into a scratch directory and exec ``argv`` there (``argv[0]``: an absolute path, e.g.
        node), under the same limits as :meth:`run_script`, except that the program may start up to 32 threads
        (RLIMIT_NPROC counts threads; runtimes such as node need a few)."""
        if not argv or not Path(argv[0]).is_absolute():
            raise SandboxError("run_program needs an absolute path to the program as argv[0]")
        job = {
            "kind": "program",
            "files": dict(files),
            "argv": list(argv),
            "timeout_s": timeout_s,
            "memory_mb": memory_mb or self.memory_mb,
            "output_limit": self.output_limit,
            "threads": 32,
        }
        reply = self._submit(job)
        return ScriptOutcome(
            exit_code=int(reply.get("exit_code", -1)),
            stdout=str(reply.get("stdout", "")),
            stderr=str(reply.get("stderr", "")),
            timed_out=bool(reply.get("timed_out")),
            network_blocked=bool(reply.get("network_blocked")),
            wall_s=float(reply.get("wall_s", 0.0)),
        )

    async def arun_program(
        self, files: Mapping[str, str], argv: Sequence[str], timeout_s: float = 10.0, *, memory_mb: int | None = None
    ) -> ScriptOutcome:
        return await asyncio.to_thread(self.run_program, files, argv, timeout_s, memory_mb=memory_mb)

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

    async def arun_script(
        self, files: Mapping[str, str], argv: Sequence[str], timeout_s: float = 10.0, *, memory_mb: int | None = None
    ) -> ScriptOutcome:
        return await asyncio.to_thread(self.run_script, files, argv, timeout_s, memory_mb=memory_mb)


_shared: dict[str, Sandbox] = {}
_shared_lock = threading.Lock()


def shared_sandbox() -> Sandbox:
    """The process-wide warm sandbox used by consensus (started lazily, one worker)."""
    with _shared_lock:
        box = _shared.get("default")
        if box is None or box._closed:
            box = _shared["default"] = Sandbox(workers=1)
        return box
