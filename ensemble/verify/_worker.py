"""The sandbox's supervisor: runs one contained child per job and reports, over a framed channel, only values.

Stdlib only, no CodeConductor imports: it runs as ``python -I -c SOURCE once`` with nothing of the project
mounted, inside a fresh bubblewrap sandbox (user, network, PID, IPC, UTS and mount namespaces, seccomp): it runs
exactly one job and exits, so the whole sandbox (and anything a candidate left behind) dies with it. There is no
other mode: where bubblewrap cannot run, nothing runs (:mod:`codeconductor.ensemble.verify.sandbox`).

Hostile candidates. What no code edit needs is recorded, not only refused: the values child's audit hook reports
a connection attempt, a write outside the scratch, a process start, a signal or a look at the interpreter's
internals through its sender
(one ``HOSTILE`` frame, before the refusal), and a child killed by SIGSYS made an escape-only system call
(seccomp). The end frame carries the first such reason as ``hostile``.

Channels. Parent -> supervisor (stdin): a 4-byte length, the job (marshal), then a 16-byte nonce and, for a
calls job, the calls (length, marshal) - both read only after the child is forked, so the candidate never has
them. Supervisor -> child: a private pipe carrying one call at a time (``length | expression``), the next only
once the previous value is back. Supervisor -> parent (stdout, which the child never holds):
frames ``MAGIC | nonce | seq | length | JSON``. Child -> supervisor: a private pipe of ``length | JSON`` frames,
one per call, each checked (size, order, count); anything else and the whole candidate counts as failed.

The child computes values only: a canonical repr of each call's return value, made by a serializer whose
references were taken before the candidate was loaded. Comparisons with expected values happen in the parent
(:mod:`codeconductor.ensemble.verify.compare`), which the child never hears about.
"""

from __future__ import annotations

# ruff: noqa: SIM105  (try/except/pass, not contextlib.suppress: importing contextlib costs every sandbox ~5 ms)
import marshal
import math
import os
import resource
import select
import struct
import sys
import time

TYPE_CHECKING = False  # no typing at run time: start-up time is per sandbox
if TYPE_CHECKING:
    import signal
    from collections.abc import Callable
    from typing import Any
else:
    import _signal as signal  # not ``signal``: it imports enum, a tenth of this process's start-up

MAGIC = b"CCv1"
NONCE_BYTES = 16
HEADER = struct.Struct(">4s16sII")  # magic, nonce, sequence number, payload length
CHILD_FRAME = struct.Struct(">IIB")  # length of what follows it, call index, ok; then the value's text
LOAD_ERROR = 0xFFFFFFFF  # the index of the frame that says the candidate could not be defined
HOSTILE = 0xFFFFFFFE  # the index of the frame that says the candidate tried something no code edit needs
SIGSYS = 31  # a seccomp KILL: the escape-only system calls (the _signal module has no enum names)
HOSTILE_SYSCALL = "made a system call no code edit needs (mounting, namespaces, tracing, kernel keys or modules)"
FRAME_LIMIT = 512 * 1024  # one frame (an end frame carries the capped stdout and stderr)
CHILD_FRAME_LIMIT = 16 * 1024  # one value frame from the child (values are cut at VALUE_LIMIT)
CHILD_TOTAL_LIMIT = 1 << 20  # everything the child may send
CALL_LIMIT = 1 << 20  # one call expression sent to the child
JOB_LIMIT = 256 * 1024 * 1024  # a job (files for pytest runs can be large)
VALUE_LIMIT = 2000
NOBODY = 65534


# -- canonical values ---------------------------------------------------------------------------------------------
def make_canonical() -> Callable[[Any], str]:
    """A function giving a value's canonical repr (floats to 9 significant digits, sets and dicts sorted,
    iterators materialised, other objects tagged ``<Type ...>`` so they never read as a literal). Every
    reference it uses is bound here, so a candidate loaded later cannot change what it reports by patching
    ``builtins``, ``json`` or this module."""
    _type, _repr, _len, _sorted, _list, _isnan, _isinf = type, repr, len, sorted, list, math.isnan, math.isinf
    _float, _str, _int, _bool, _bytes, _tuple = float, str, int, bool, bytes, tuple
    _set, _frozenset, _dict, _none = set, frozenset, dict, type(None)
    _exception = Exception
    try:
        # The built-in module: cheap to import (hashlib loads OpenSSL).
        from _sha256 import sha256 as _sha  # type: ignore[import-not-found]
    except ImportError:
        from hashlib import sha256 as _sha
    scalars = (_bool, _none, _int, _str, _bytes)
    iterators = ("generator", "map", "filter", "zip", "range", "enumerate", "reversed", "list_iterator")

    def canon(value: Any, depth: int) -> Any:
        kind = _type(value)
        if depth > 20:
            return "<deep>"
        if kind in scalars:
            return value
        if kind is _float:
            if _isnan(value) or _isinf(value):
                return value
            return _float(format(value, ".9g"))
        if kind is _list or kind is _tuple:
            items = [canon(v, depth + 1) for v in value]
            return items if kind is _list else _tuple(items)
        if kind is _set or kind is _frozenset:
            try:
                return ("<set>", _sorted((canon(v, depth + 1) for v in value), key=_repr))
            except _exception:
                return ("<set>", "?")
        if kind is _dict:
            pairs = [(_repr(canon(k, depth + 1)), canon(v, depth + 1)) for k, v in value.items()]
            return ("<dict>", _sorted(pairs, key=_repr))
        if kind.__name__ in iterators:
            try:
                return ("<iter>", [canon(v, depth + 1) for v in _list(value)[:1000]])
            except _exception:
                return ("<iter>", "?")
        try:
            text = _str(_repr(value))
        except _exception:
            text = "?"
        return "<" + _str(kind.__name__) + " " + text[:200] + ">"

    def canonical(value: Any) -> str:
        try:
            text = _repr(canon(value, 0))
        except ValueError:  # an int too long for repr
            text = "<unreprable>"
        if _len(text) > VALUE_LIMIT:
            text = text[:VALUE_LIMIT] + "...#" + _sha(text.encode()).hexdigest()[:16]
        return text

    return canonical


# -- framing ------------------------------------------------------------------------------------------------------
_JSON_ESCAPES = {**{c: f"\\u{c:04x}" for c in range(32)}, ord('"'): '\\"', ord("\\"): "\\\\"}


def to_json(obj: Any) -> str:
    """JSON for the frames' plain data (the ``json`` module would cost this process a tenth of its start-up)."""
    if obj is None or obj is True or obj is False:
        return "null" if obj is None else "true" if obj else "false"
    if isinstance(obj, int):
        return str(int(obj))
    if isinstance(obj, float):
        return repr(obj) if math.isfinite(obj) else "null"
    if isinstance(obj, str):
        return '"' + obj.translate(_JSON_ESCAPES) + '"'
    if isinstance(obj, dict):
        return "{" + ",".join(to_json(str(k)) + ":" + to_json(v) for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in obj) + "]"
    return to_json(str(obj))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class _Frames:
    """Frames to the parent, numbered from 0 for each job and carrying the job's nonce."""

    def __init__(self, fd: int, nonce: bytes, limit: int = FRAME_LIMIT) -> None:
        self.fd, self.nonce, self.seq, self.limit = fd, nonce, 0, limit

    def send(self, obj: dict[str, Any]) -> None:
        payload = to_json(obj).encode("utf-8", "replace")
        if len(payload) > self.limit:
            payload = to_json({"t": obj.get("t"), "error": "frame too large"}).encode()
        _write_all(self.fd, HEADER.pack(MAGIC, self.nonce, self.seq, len(payload)) + payload)
        self.seq += 1


def _read_exact(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    while size > 0:
        data = os.read(fd, min(size, 1 << 20))
        if not data:
            raise EOFError
        chunks.append(data)
        size -= len(data)
    return b"".join(chunks)


# -- the parts of a job -------------------------------------------------------------------------------------------
_HOOK_SOURCE = r"""
import os, sys

_BLOCKED = frozenset({
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.kill", "os.killpg",
    "subprocess.Popen", "socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo",
    "ctypes.dlopen", "ctypes.dlsym", "os.putenv", "shutil.rmtree",
})
# In the values child also: no walking the heap, no tracing, no frames (the supervisor's are below the
# candidate's). sys._getframe is refused with a ValueError, which namedtuple, enum and typing catch (they ask it
# for a module name only); a frame reached through a traceback, generator or coroutine is refused too.
_INTROSPECTION = frozenset({
    "sys._current_frames", "sys.settrace", "sys.setprofile", "gc.get_objects", "gc.get_referrers",
    "gc.get_referents", "sys._current_exceptions",
})
_FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame"})
_WRITES = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown"})
# What no code edit needs: reported (``report``) before it is refused. Not ctypes: ``import ctypes`` (numpy does)
# loads the interpreter itself; what native code could do is refused by seccomp, which names it.
_HOSTILE = {
    "socket.connect": "tried to open a network connection",
    "socket.bind": "tried to open a network connection",
    "socket.sendto": "tried to open a network connection",
    "socket.getaddrinfo": "tried to open a network connection",
    "subprocess.Popen": "tried to start a process",
    "os.system": "tried to start a process",
    "os.exec": "tried to start a process",
    "os.posix_spawn": "tried to start a process",
    "os.spawn": "tried to start a process",
    "os.fork": "tried to start a process",
    "os.forkpty": "tried to start a process",
    "os.kill": "tried to signal a process",
    "os.killpg": "tried to signal a process",
    "sys._current_frames": "tried to inspect the interpreter's internals",
    "sys.settrace": "tried to inspect the interpreter's internals",
    "sys.setprofile": "tried to inspect the interpreter's internals",
    "gc.get_objects": "tried to inspect the interpreter's internals",
    "gc.get_referrers": "tried to inspect the interpreter's internals",
    "gc.get_referents": "tried to inspect the interpreter's internals",
}
_WRITE_OUTSIDE = "tried to write outside its scratch directory"


def _install_audit_hook(scratch, strict=False, report=None):
    scratch = os.path.realpath(scratch)
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep
    # O_RDWR without O_RDONLY's bits: on WASI O_RDONLY is not 0 and O_RDWR holds it (a read is no write).
    write_flags = os.O_WRONLY | (os.O_RDWR & ~os.O_RDONLY) | os.O_CREAT
    blocked = _BLOCKED | _INTROSPECTION if strict else _BLOCKED
    hostile, reported = _HOSTILE, []

    def refuse(reason, message):
        if report is not None and reason is not None and not reported:
            reported.append(reason)
            try:
                report(reason)
            except BaseException:
                pass
        raise PermissionError(message)

    def inside(path):
        if isinstance(path, int):
            return True
        try:
            real = realpath(fsdecode(path))
        except Exception:
            return False
        return real == scratch or real.startswith(scratch + sep) or real == "/dev/null"

    def hook(event, args):
        if event in blocked:
            refuse(hostile.get(event), "sandbox: " + event + " is not allowed")
        if strict and event == "sys._getframe":
            raise ValueError("sandbox: sys._getframe is not allowed")
        if strict and event == "object.__getattr__" and len(args) > 1 and args[1] in _FRAME_ATTRIBUTES:
            raise PermissionError("sandbox: frames are not reachable")
        if event == "open" and args:
            mode = str(args[1]) if len(args) > 1 and args[1] is not None else ""  # os.open: None, the flags say
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            if (any(c in mode for c in "wax+") or flags & write_flags) and not inside(args[0]):
                refuse(_WRITE_OUTSIDE, "sandbox: writing outside the scratch directory is not allowed")
        elif event in _WRITES and args and not inside(args[0]):
            refuse(_WRITE_OUTSIDE, "sandbox: " + event + " outside the scratch directory is not allowed")

    sys.addaudithook(hook)
"""


def hostile_table() -> tuple[dict[str, str], str]:
    """The hook's own table (for the parent: one list of reasons everywhere): audit event -> what the candidate
    tried, and the reason for a write outside the scratch."""
    scope: dict[str, Any] = {}
    exec(_HOOK_SOURCE, scope)
    return dict(scope["_HOSTILE"]), str(scope["_WRITE_OUTSIDE"])


# Python scripts run in a fresh interpreter with the audit hook installed first: argv is ARGV... (cwd: scratch).
BOOT = (
    _HOOK_SOURCE
    + r"""
import runpy
sys.dont_write_bytecode = True
_install_audit_hook(os.getcwd())
args = sys.argv[1:]
if args and args[0] == "-m":
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = list(args)
    sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
    runpy.run_path(args[0], run_name="__main__")
"""
)


class _CallTimeout(BaseException):
    """Raised by SIGALRM inside a call; BaseException so a candidate's ``except Exception`` cannot swallow it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _CallTimeout()


def _limit(memory_mb: int, cpu_s: int, file_mb: int, procs: int | None) -> None:
    limits = [
        (resource.RLIMIT_AS, memory_mb * 1024 * 1024),
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, file_mb * 1024 * 1024),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, 256),
    ]
    if procs is not None:
        limits.append((resource.RLIMIT_NPROC, procs))
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def _child_setup(job: dict[str, Any], scratch: str, keep_fd: int, drop_uid: bool, call_fd: int = -1) -> None:
    os.setsid()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full output file means EFBIG, not death
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    if job["kind"] == "calls":
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    else:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        os.dup2(os.open(os.path.join(scratch, ".stdout"), flags, 0o600), 1)
        os.dup2(os.open(os.path.join(scratch, ".stderr"), flags, 0o600), 2)
    # Nothing of the supervisor's (its channel to the parent above all) stays open in the child.
    if keep_fd >= 0 and call_fd >= 0:
        import fcntl

        # Copies above 4 first, so that neither dup2 below overwrites the other pipe.
        high_keep, high_call = fcntl.fcntl(keep_fd, fcntl.F_DUPFD, 5), fcntl.fcntl(call_fd, fcntl.F_DUPFD, 5)
        os.dup2(high_keep, 3)
        os.dup2(high_call, 4)
        os.closerange(5, 1 << 16)
    elif keep_fd >= 0:
        os.dup2(keep_fd, 3)
        os.closerange(4, 1 << 16)
    else:
        os.closerange(3, 1 << 16)
    os.chdir(scratch)
    cpu = max(1, math.ceil(float(job.get("timeout_s", 5.0)))) + 1
    procs = 0 if job["kind"] != "program" else int(job.get("max_procs", 1024))
    if drop_uid:
        # As root the permissions of the file system and RLIMIT_NPROC do not apply: become nobody.
        for name in (".stdout", ".stderr"):
            try:
                os.chown(os.path.join(scratch, name), NOBODY, NOBODY)
            except OSError:
                pass
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    _limit(int(job.get("memory_mb", 512)), cpu, int(job.get("file_mb", 4)), procs)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8"})


def _make_sender(fd: int) -> Callable[[int, bool, str], None]:
    """The child's only way to report: one binary frame per call (index, ok, text), built from references taken
    before the candidate is loaded (no ``json``, nothing a candidate could patch)."""
    pack, write, encode = CHILD_FRAME.pack, os.write, str.encode
    memory, length = memoryview, len

    def send(index: int, ok: bool, text: str) -> None:
        body = encode(text, "utf-8", "replace")
        view = memory(pack(CHILD_FRAME.size - 4 + length(body), index, 1 if ok else 0) + body)
        while view:
            view = view[write(fd, view) :]

    return send


def _make_receiver(fd: int) -> Callable[[], str | None]:
    """The child's source of calls: one ``length | expression`` frame at a time from the supervisor, which sends
    the next call only once the previous value has come back - future calls are in no frame, object or pipe
    of this process. None at the end (EOF, or anything malformed)."""
    read, unpack, decode, length_of = os.read, struct.unpack, bytes.decode, len

    def exactly(size: int) -> bytes | None:
        data = b""
        while length_of(data) < size:
            chunk = read(fd, size - length_of(data))
            if not chunk:
                return None
            data += chunk
        return data

    def receive() -> str | None:
        head = exactly(4)
        if head is None:
            return None
        (size,) = unpack(">I", head)
        if size > CALL_LIMIT:
            return None
        body = exactly(size)
        return None if body is None else decode(body, "utf-8", "replace")

    return receive


def _run_calls(job: dict[str, Any], scratch: str, fd: int, call_fd: int) -> None:
    """In the child: define the candidate, then take each call from ``call_fd`` as it comes, evaluate it and send
    its canonical value (never a verdict). Everything used after the candidate is loaded is bound first: patching
    builtins (``eval``, ``repr``...), ``json`` or this module changes nothing that is reported; the job holds no
    call (they are sent one by one), and the audit hook keeps frames and the heap out of the candidate's reach."""
    canonical, send, receive = make_canonical(), _make_sender(fd), _make_receiver(call_fd)
    set_timer, real, name_of, evaluate, timeout_class = signal.setitimer, signal.ITIMER_REAL, type, eval, _CallTimeout
    namespace: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": __builtins__}
    call_timeout = float(job.get("call_timeout_s", 1.0))
    code, entry = job["code"], job.get("entry_point")
    job.clear()
    signal.signal(signal.SIGALRM, _on_alarm)
    sys.setrecursionlimit(3000)
    sys.dont_write_bytecode = True
    import types  # noqa: F401  (it reads a traceback's frame at import: before the hook refuses frames)

    globals()["_install_audit_hook"](scratch, True, lambda reason: send(HOSTILE, False, reason))
    try:
        set_timer(real, call_timeout * 2)
        exec(compile(code, "<candidate>", "exec"), namespace)
        set_timer(real, 0)
        if entry and not callable(namespace.get(entry)):
            raise NameError(f"{entry} is not defined")
    except BaseException as exc:
        set_timer(real, 0)
        send(LOAD_ERROR, False, "Timeout" if isinstance(exc, timeout_class) else name_of(exc).__name__)
        return
    del code
    index = 0
    while True:
        expr = receive()
        if expr is None:
            return
        try:
            set_timer(real, call_timeout)
            text = canonical(evaluate(expr, namespace))  # serialised under the timer: __repr__ is candidate code
            set_timer(real, 0)
            ok = True
        except BaseException as exc:
            set_timer(real, 0)
            ok, text = False, "Timeout" if name_of(exc) is timeout_class else "?"
            if text == "?":
                try:
                    text = name_of(exc).__name__[:100]
                except BaseException:
                    pass
        expr = ""
        send(index, ok, text)
        index += 1


def _read_capped(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return ""
    text = data[:limit].decode("utf-8", "replace")
    return text + ("\n[output truncated]" if len(data) > limit else "")


def _send_call(fd: int, expr: str, deadline: float) -> bool:
    """Write one call frame to the child's (non-blocking) call pipe before ``deadline``; False when it cannot."""
    view = memoryview(struct.pack(">I", len(body := expr.encode("utf-8", "replace"))) + body)
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        try:
            _, ready, _ = select.select([], [fd], [], left)
            if ready:
                view = view[os.write(fd, view) :]
        except BlockingIOError:
            continue
        except OSError:
            return False
    return True


def _relay_calls(
    read_fd: int,
    call_fd: int,
    frames: _Frames,
    calls: list[str],
    *,
    job: dict[str, Any],
    deadline: float,
    hostile: list[str],
) -> tuple[bool, bool]:
    """Send the child one call at a time (the next only once the previous value is back, so a call the child has
    not reached is nowhere in its memory), check its value frames and pass them on; a HOSTILE frame's reason
    goes to ``hostile``. Returns (timed_out, forged)."""
    pipe = [call_fd]  # -1 once closed: after the last call, the child's next read sees EOF and it ends
    try:
        return _relay_loop(read_fd, pipe, frames, calls, job=job, deadline=deadline, hostile=hostile)
    finally:
        if pipe[0] >= 0:
            os.close(pipe[0])


def _relay_loop(
    read_fd: int,
    pipe: list[int],
    frames: _Frames,
    calls: list[str],
    *,
    job: dict[str, Any],
    deadline: float,
    hostile: list[str],
) -> tuple[bool, bool]:
    count = len(calls)
    # A candidate may disable its own SIGALRM: each call also has a deadline here.
    gap = 2 * float(job.get("call_timeout_s", 1.0)) + 0.5
    buffer, total, expected = b"", 0, 0
    next_deadline = min(deadline, time.monotonic() + gap)
    if not count:
        os.close(pipe[0])
        pipe[0] = -1
    elif not _send_call(pipe[0], calls[0], next_deadline):
        return True, False
    while True:
        left = next_deadline - time.monotonic()
        if left <= 0:
            return True, False
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            continue
        data = os.read(read_fd, 65536)
        if not data:
            return False, bool(buffer)
        total += len(data)
        if total > CHILD_TOTAL_LIMIT:
            return False, True
        buffer += data
        while len(buffer) >= CHILD_FRAME.size:
            size, index, ok = CHILD_FRAME.unpack_from(buffer)
            end = 4 + size
            if size > CHILD_FRAME_LIMIT or size < CHILD_FRAME.size - 4 or ok > 1:
                return False, True
            if len(buffer) < end:
                break
            text, buffer = buffer[CHILD_FRAME.size : end].decode("utf-8", "replace"), buffer[end:]
            if index == HOSTILE and not ok:
                if not hostile:  # the candidate's own words never reach the user: only the known reasons
                    hostile.append(text if text in _known_reasons() else "tried something no code edit needs")
                continue
            if index == LOAD_ERROR and expected == 0 and not ok:
                frames.send({"t": "load_error", "error": text[:100]})
                return False, False
            if index != expected or expected >= count or len(text) > (VALUE_LIMIT + 40 if ok else 100):
                return False, True
            if buffer:  # more than one frame for the one call the child holds
                return False, True
            value, error = (text, None) if ok else (None, text)
            frames.send({"t": "call", "i": expected, "ok": bool(ok), "value": value, "error": error})
            expected += 1
            next_deadline = min(deadline, time.monotonic() + gap)
            if expected < count:
                if not _send_call(pipe[0], calls[expected], next_deadline):
                    return True, False
            else:
                os.close(pipe[0])
                pipe[0] = -1


def _known_reasons() -> frozenset[str]:
    hook = globals()  # _HOOK_SOURCE was executed into this module's globals by main()
    return frozenset([*hook["_HOSTILE"].values(), hook["_WRITE_OUTSIDE"]])


def _wait_child(pid: int, deadline: float) -> tuple[int | None, bool]:
    """Wait for the child to exit until ``deadline``. Returns (wait status or None, timed out)."""
    pidfd = -1
    try:
        pidfd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        pass
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status, False
            left = deadline - time.monotonic()
            if left <= 0:
                return None, True
            if pidfd >= 0:
                select.select([pidfd], [], [], left)
            else:
                time.sleep(min(left, 0.002))
    finally:
        if pidfd >= 0:
            os.close(pidfd)


def _handle(job: dict[str, Any], scratch: str, stdin_fd: int, out_fd: int, state: dict[str, Any]) -> None:
    started = time.monotonic()
    drop_uid = bool(state.get("drop_uid"))
    for name, content in (job.get("files") or {}).items():
        path = os.path.normpath(os.path.join(scratch, name))
        if not path.startswith(scratch + os.sep):
            continue  # a name with .. or an absolute path: refused
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
        if drop_uid:
            os.chown(path, NOBODY, NOBODY)
    for name in job.get("executable") or ():
        path = os.path.normpath(os.path.join(scratch, name))
        if path.startswith(scratch + os.sep) and os.path.isfile(path):
            os.chmod(path, 0o755)
    read_fd, write_fd = os.pipe()
    kind = job["kind"]
    call_read, call_write = os.pipe() if kind == "calls" else (-1, -1)
    pid = os.fork()
    if pid == 0:  # the child
        try:
            os.close(read_fd)
            if kind == "calls":
                os.close(call_write)
            _child_setup(job, scratch, write_fd if kind == "calls" else -1, drop_uid, call_read)
            if kind == "calls":
                _run_calls(job, scratch, 3, 4)
            else:
                argv = [str(a) for a in job["argv"]]
                os.execv(argv[0], argv)
        except BaseException:
            os._exit(70 if kind == "calls" else 127)
        os._exit(0)
    os.close(write_fd)
    # Only now do the nonce and the calls leave the pipe: the child's copy of this process never held them.
    nonce = _read_exact(stdin_fd, NONCE_BYTES)
    calls: list[str] = []
    if kind == "calls":
        os.close(call_read)
        os.set_blocking(call_write, False)
        sent = _read_job(stdin_fd) or {}
        calls = [str(c) for c in sent.get("calls") or ()]
    frames = _Frames(out_fd, nonce, max(FRAME_LIMIT, int(job.get("frame_limit", FRAME_LIMIT)) // 2))
    deadline = started + float(job.get("timeout_s", 5.0))
    timed_out = forged = False
    hostile: list[str] = []
    if kind == "calls":
        timed_out, forged = _relay_calls(
            read_fd, call_write, frames, calls, job=job, deadline=deadline, hostile=hostile
        )
    status, waited_out = (None, True) if timed_out or forged else _wait_child(pid, deadline)
    timed_out = timed_out or (waited_out and not forged)
    for kill, target in ((os.killpg, pid), (os.kill, pid)):
        try:
            kill(target, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if status is None:
        _, status = os.waitpid(pid, 0)
    os.close(read_fd)
    limit = int(job.get("output_limit", 65536))
    end: dict[str, Any] = {
        "t": "end",
        "exit_code": os.waitstatus_to_exitcode(status),
        "timed_out": timed_out,
        "forged": forged,
        "wall_s": time.monotonic() - started,
        "state": {k: v for k, v in state.items() if k != "drop_uid"},
    }
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == SIGSYS:
        hostile.insert(0, HOSTILE_SYSCALL)  # seccomp killed it: nothing the candidate printed decides this
    if hostile:
        end["hostile"] = hostile[0]
    if kind != "calls":
        end["stdout"] = _read_capped(os.path.join(scratch, ".stdout"), limit)
        end["stderr"] = _read_capped(os.path.join(scratch, ".stderr"), limit)
    frames.send(end)


def _read_job(fd: int) -> dict[str, Any] | None:
    try:
        (size,) = struct.unpack(">I", _read_exact(fd, 4))
    except EOFError:
        return None
    if size > JOB_LIMIT:
        raise ValueError("job too large")
    job: dict[str, Any] = marshal.loads(_read_exact(fd, size))  # from the parent, which we trust
    return job


# -- the sandbox ---------------------------------------------------------------------------------------------------
def _not_dumpable() -> None:
    """No other process of the same uid (a candidate) may ptrace this one or open its /proc/PID/mem or fds."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except Exception:
        pass


def _suid_dumpable_is_zero() -> bool:
    try:
        with open("/proc/sys/fs/suid_dumpable", "rb") as handle:
            return handle.read().strip() == b"0"
    except OSError:
        return False


def _once() -> None:
    """Inside bubblewrap: become nobody (as root the sandbox's uid 0 holds CAP_SETUID/SETGID for just this),
    then run one job in /tmp (the sandbox's tmpfs) and exit - the sandbox dies with us."""
    dropped = os.getuid() == 0
    if dropped:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    if not (dropped and _suid_dumpable_is_zero()):  # else the change of uid already cleared it (no ctypes: 5 ms)
        _not_dumpable()
    state = {"sandbox": "bubblewrap", "network_blocked": True, "fs_readonly": True, "uid": os.getuid()}
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    job = _read_job(0)
    if job is None:
        return
    _handle(job, "/tmp", 0, 1, state)


def main(argv: list[str]) -> None:
    exec(_HOOK_SOURCE, globals())  # defines _install_audit_hook for the values child
    if argv and argv[0].startswith("--site="):  # the interpreter's site-packages (we run with -S)
        sys.path.extend(p for p in argv.pop(0)[len("--site=") :].split(os.pathsep) if p)
    if argv and argv[0] == "once":
        _once()
    else:
        raise SystemExit("usage: _worker.py once")


if __name__ == "__main__":
    main(sys.argv[1:])
