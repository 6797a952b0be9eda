"""The sandbox's warm worker: a long-lived process that forks one contained child per candidate.

Run as a script (``python -I _worker.py``) by :mod:`ensemble.verify.sandbox`; it imports only the standard library
so it starts fast and never touches CodeConductor's own state. Protocol: one JSON request per line on stdin, one
JSON reply per line on stdout. Candidate code never sees that stdout: each child redirects fds 0-2 first.

Containment, strongest first, each applied where the OS allows and reported back:
network namespace (no interfaces but a down loopback), a throw-away uid (``nobody``) when started as root so the
file system's permissions and RLIMIT_NPROC apply, resource limits (address space, CPU, file size, processes,
open files), a scratch directory as cwd, a Python audit hook refusing writes outside it, sockets, subprocesses
and forks, and finally SIGKILL of the child's whole process group and removal of the scratch directory.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from typing import Any

_CLONE_NEWNET = 0x40000000
_CLONE_NEWUSER = 0x10000000
_NOBODY = 65534


_CLONE_NEWNS = 0x00020000
_MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18


def _isolate(base: str) -> dict[str, bool]:
    """Put this worker (and so every child it forks) in fresh network and mount namespaces, with every mount
    read-only except ``base`` (the parent of all scratch directories). Returns what could be done."""
    done = {"network_blocked": False, "fs_readonly": False}
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    except (OSError, AttributeError):
        return done
    extra = 0 if os.geteuid() == 0 else _CLONE_NEWUSER  # unprivileged: a user namespace grants the rights
    if libc.unshare(_CLONE_NEWNET | _CLONE_NEWNS | extra) != 0 and libc.unshare(_CLONE_NEWNET | extra) != 0:
        return done
    done["network_blocked"] = True
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            mounts = [line.split()[4] for line in handle if len(line.split()) > 4]
    except OSError:
        return done
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return done
    if libc.mount(base.encode(), base.encode(), None, _MS_BIND | _MS_REC, None) != 0:
        return done
    failed = 0
    for point in mounts:
        if point == base:
            continue
        raw = point.encode().decode("unicode_escape").encode()  # mountinfo escapes spaces as \040
        if libc.mount(b"none", raw, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY, None) != 0:
            failed += 1
    done["fs_readonly"] = failed == 0
    # /proc/PID/environ of the editor or language server holds the user's secrets, and is readable by a child
    # running as the same uid (always so when the uid cannot be dropped): hide /proc behind an empty, read-only
    # tmpfs in this mount namespace. Candidates and pytest need nothing from it.
    done["proc_hidden"] = libc.mount(b"none", b"/proc", b"tmpfs", _MS_RDONLY, b"size=4k") == 0
    return done


def _can_drop_to_nobody() -> bool:
    """Whether a child running as ``nobody`` can still run Python (it cannot when the interpreter lives in a
    private home directory); probed once in a throw-away child."""
    if os.geteuid() != 0:
        return False
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(_NOBODY)
            os.setuid(_NOBODY)
            ok = os.access(sys.executable, os.X_OK) and os.access(os.__file__, os.R_OK)
            ok = ok and all(os.access(p, os.R_OK | os.X_OK) for p in sys.path if p and os.path.isdir(p))
            os._exit(0 if ok else 1)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


class _CallTimeout(BaseException):
    """Raised by SIGALRM inside a call; BaseException so candidate ``except Exception`` cannot swallow it."""


def _on_alarm(signum: int, frame: Any) -> None:
    raise _CallTimeout()


def _canon(value: Any, depth: int = 0) -> Any:
    """A comparable form of a return value: floats rounded so that float noise does not split behaviour."""
    if depth > 20:
        return "<deep>"
    if isinstance(value, bool) or value is None or isinstance(value, (int, str, bytes)):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return value
        return float(f"{value:.9g}")
    if isinstance(value, (list, tuple)):
        items = [_canon(v, depth + 1) for v in value]
        return items if isinstance(value, list) else tuple(items)
    if isinstance(value, (set, frozenset)):
        try:
            return ("<set>", sorted((_canon(v, depth + 1) for v in value), key=repr))
        except Exception:
            return ("<set>", repr(value))
    if isinstance(value, dict):
        return ("<dict>", sorted(((repr(_canon(k)), _canon(v, depth + 1)) for k, v in value.items()), key=repr))
    if hasattr(value, "__next__") or type(value).__name__ in ("generator", "map", "filter", "zip", "range"):
        try:
            return ("<iter>", [_canon(v, depth + 1) for v in list(value)[:1000]])
        except Exception:
            return ("<iter>", "?")
    return repr(value)


def _equal(got: Any, want: Any) -> bool:
    """Equality with a float tolerance, as a person reading a docstring example would mean it."""
    numbers = isinstance(got, (int, float)) and isinstance(want, (int, float)) and not isinstance(got, bool)
    if numbers and (isinstance(got, float) or isinstance(want, float)):
        return math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(got, (list, tuple)) and isinstance(want, (list, tuple)) and type(got) is type(want):
        return len(got) == len(want) and all(_equal(g, w) for g, w in zip(got, want, strict=True))
    try:
        return bool(got == want)
    except Exception:
        return False


_HOOK_SOURCE = r"""
import os, sys

_BLOCKED = frozenset({
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.kill", "os.killpg",
    "subprocess.Popen", "socket.connect", "socket.bind", "socket.sendto", "socket.getaddrinfo",
    "ctypes.dlopen", "ctypes.dlsym", "os.putenv", "shutil.rmtree",
})
_WRITES = frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.truncate", "os.chmod", "os.chown"})


def _install_audit_hook(scratch):
    scratch = os.path.realpath(scratch)
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT

    def inside(path):
        if isinstance(path, int):
            return True
        try:
            real = realpath(fsdecode(path))
        except Exception:
            return False
        return real == scratch or real.startswith(scratch + sep) or real == "/dev/null"

    def hook(event, args):
        if event in _BLOCKED:
            raise PermissionError("sandbox: " + event + " is not allowed")
        if event == "open" and args and len(args) > 1 and args[1] is not None:
            mode = str(args[1])
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            if (any(c in mode for c in "wax+") or flags & write_flags) and not inside(args[0]):
                raise PermissionError("sandbox: writing outside the scratch directory is not allowed")
        elif event in _WRITES and args and not inside(args[0]):
            raise PermissionError("sandbox: " + event + " outside the scratch directory is not allowed")

    sys.addaudithook(hook)
"""
# Defence in depth only: refuses what a pure function never needs. The OS-level limits do the real work.
exec(_HOOK_SOURCE)

# Run a script in a fresh interpreter with the audit hook installed first: argv is SCRATCH ARGV...
_BOOT = (
    _HOOK_SOURCE
    + r"""
import runpy
sys.dont_write_bytecode = True
_install_audit_hook(sys.argv[1])
args = sys.argv[2:]
if args and args[0] == "-m":
    sys.argv = [args[1], *args[2:]]
    runpy.run_module(args[1], run_name="__main__", alter_sys=True)
else:
    sys.argv = list(args)
    sys.path.insert(0, os.path.dirname(os.path.abspath(args[0])))
    runpy.run_path(args[0], run_name="__main__")
"""
)


def _limit(memory_mb: int, cpu_s: int, file_mb: int) -> None:
    limits = [
        (resource.RLIMIT_AS, memory_mb * 1024 * 1024),
        (resource.RLIMIT_CPU, cpu_s),
        (resource.RLIMIT_FSIZE, file_mb * 1024 * 1024),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, 64),
    ]
    for which, value in limits:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(which, (value, value))


def _child_setup(job: dict[str, Any], scratch: str, result_fd: int) -> None:
    os.setsid()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full output file means EFBIG, not death
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    out = os.open(os.path.join(scratch, ".stdout"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(os.path.join(scratch, ".stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(err, 2)
    for fd in (devnull, out, err):
        os.close(fd)
    os.chdir(scratch)
    cpu = max(1, math.ceil(float(job.get("timeout_s", 5.0)))) + 1
    _limit(int(job.get("memory_mb", 512)), cpu, int(job.get("file_mb", 4)))
    if job.get("drop_uid"):
        # As root the permissions of the file system and RLIMIT_NPROC do not apply: become nobody.
        os.chown(os.path.join(scratch, ".stdout"), _NOBODY, _NOBODY)
        os.chown(os.path.join(scratch, ".stderr"), _NOBODY, _NOBODY)
        os.setgroups([])
        os.setgid(_NOBODY)
        os.setuid(_NOBODY)
    # No new processes at all: the child itself already counts against the limit. A program (node, a compiled
    # binary) gets a few tasks for its runtime's threads instead: RLIMIT_NPROC counts threads too.
    nproc = int(job.get("threads", 0)) if job["kind"] == "program" else 0
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": scratch, "TMPDIR": scratch, "LANG": "C.UTF-8"})


def _send(fd: int, obj: dict[str, Any]) -> None:
    data = (json.dumps(obj) + "\n").encode()
    while data:
        written = os.write(fd, data)
        data = data[written:]


def _run_calls(job: dict[str, Any], scratch: str, result_fd: int) -> None:
    namespace: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": __builtins__}
    call_timeout = float(job.get("call_timeout_s", 1.0))
    signal.signal(signal.SIGALRM, _on_alarm)
    globals()["_install_audit_hook"](scratch)  # defined by exec(_HOOK_SOURCE) above
    sys.setrecursionlimit(3000)
    sys.dont_write_bytecode = True
    try:
        signal.setitimer(signal.ITIMER_REAL, call_timeout * 2)
        exec(compile(job["code"], "<candidate>", "exec"), namespace)
        signal.setitimer(signal.ITIMER_REAL, 0)
        if job.get("entry_point") and not callable(namespace.get(job["entry_point"])):
            raise NameError(f"{job['entry_point']} is not defined")
    except BaseException as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        kind = "Timeout" if isinstance(exc, _CallTimeout) else type(exc).__name__
        _send(result_fd, {"load_error": kind, "detail": str(exc)[:300]})
        return
    for call in job["calls"]:
        outcome: dict[str, Any] = {"ok": False}
        try:
            signal.setitimer(signal.ITIMER_REAL, call_timeout)
            value = eval(call["expr"], namespace)
            canon = _canon(value)
            signal.setitimer(signal.ITIMER_REAL, 0)
            text = repr(canon)
            outcome = {"ok": True, "value": text if len(text) <= 2000 else text[:2000] + f"...#{hash(text)}"}
            if call.get("expected") is not None:
                try:
                    outcome["matches"] = _equal(value, eval(call["expected"], namespace))
                except BaseException:
                    outcome["matches"] = False
        except BaseException as exc:
            signal.setitimer(signal.ITIMER_REAL, 0)
            outcome = {"ok": False, "error": "Timeout" if isinstance(exc, _CallTimeout) else type(exc).__name__}
            if call.get("expected") is not None:
                outcome["matches"] = False
        _send(result_fd, outcome)


def _read_capped(path: str, limit: int) -> str:
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError:
        return ""
    text = data[:limit].decode("utf-8", "replace")
    return text + ("\n[output truncated]" if len(data) > limit else "")


def _handle(job: dict[str, Any], base: str, state: dict[str, bool]) -> dict[str, Any]:
    scratch = tempfile.mkdtemp(prefix="cand-", dir=base)
    job["drop_uid"] = state["uid_dropped"]
    if state["uid_dropped"]:
        os.chown(scratch, _NOBODY, _NOBODY)
    for name, content in (job.get("files") or {}).items():
        path = os.path.join(scratch, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(content)
        if state["uid_dropped"]:
            os.chown(path, _NOBODY, _NOBODY)
    read_fd, write_fd = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.close(read_fd)
            _child_setup(job, scratch, write_fd)
            if job["kind"] == "script":
                os.close(write_fd)
                os.execv(sys.executable, [sys.executable, "-I", "-c", _BOOT, scratch, *job["argv"]])
            if job["kind"] == "program":  # any executable (node, a compiled candidate): argv[0] is its path
                os.close(write_fd)
                os.execv(job["argv"][0], list(job["argv"]))
            _run_calls(job, scratch, write_fd)
        except BaseException:
            os._exit(70)
        os._exit(0)
    os.close(write_fd)
    deadline = started + float(job.get("timeout_s", 5.0))
    chunks: list[bytes] = []
    timed_out = False
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        ready, _, _ = select.select([read_fd], [], [], left)
        if not ready:
            continue
        data = os.read(read_fd, 65536)
        if not data:
            break
        chunks.append(data)
    # The child may still be writing output; wait for it to exit within what is left of the deadline.
    status = None
    while not timed_out:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            timed_out = True
            status = None
            break
        time.sleep(0.002)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if status is None:
        _, status = os.waitpid(pid, 0)
    os.close(read_fd)
    limit = int(job.get("output_limit", 65536))
    reply: dict[str, Any] = {
        "stdout": _read_capped(os.path.join(scratch, ".stdout"), limit),
        "stderr": _read_capped(os.path.join(scratch, ".stderr"), limit),
        "timed_out": timed_out,
        "exit_code": os.waitstatus_to_exitcode(status),
        **state,
        "wall_s": time.monotonic() - started,
    }
    lines = [line for line in b"".join(chunks).decode("utf-8", "replace").splitlines() if line.strip()]
    results = []
    for line in lines:
        try:
            results.append(json.loads(line))
        except ValueError:
            break
    reply["results"] = results
    shutil.rmtree(scratch, ignore_errors=True)
    return reply


def main() -> None:
    # The client owns (creates and removes) the base directory: inside our mount namespace its parent is
    # read-only, so we could not remove it ourselves.
    base = os.path.realpath(sys.argv[1])
    os.chmod(base, 0o711)
    state = {"uid_dropped": _can_drop_to_nobody(), **_isolate(base)}
    # Warm imports: children inherit them, so candidates importing these pay nothing (and find them even
    # when the interpreter's files are unreadable to the dropped uid).
    import bisect  # noqa: F401
    import random  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    out = sys.stdout
    out.write(json.dumps({"hello": True, **state, "pid": os.getpid()}) + "\n")
    out.flush()
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                job = json.loads(line)
                reply = _handle(job, base, state)
            except Exception as exc:  # the worker must survive any single job
                reply = {"worker_error": f"{type(exc).__name__}: {exc}"}
            out.write(json.dumps(reply) + "\n")
            out.flush()
    finally:
        for entry in os.listdir(base):
            shutil.rmtree(os.path.join(base, entry), ignore_errors=True)


if __name__ == "__main__":
    main()
