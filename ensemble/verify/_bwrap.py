"""The bubblewrap sandbox: command line, seccomp filter, user namespace, and whether it can run here at all.

Each job gets a fresh ``bwrap`` with new user, network, PID, IPC, UTS, cgroup and mount namespaces, every
capability dropped, an empty root with only the interpreter, its standard library and site-packages, and the
minimal system directories bound read-only, a size-capped tmpfs as scratch (``/tmp``, also ``$HOME``), a fresh
``/proc`` and ``/dev`` (its ``/dev/shm`` a tiny capped tmpfs), ``--die-with-parent`` and ``--new-session``, and a
seccomp filter. The scratch is mounted FIRST and the read-only binds after it, so an interpreter or project under
``/tmp`` (a venv in a clone there) stays visible; every directory bwrap makes for a bind's parents is 0755, so the
dropped uid can pass through a private home (pyenv in ``/root``).

No fallback. Where bubblewrap (or its seccomp filter) cannot run, :func:`support` says why and nothing is executed:
see :func:`unavailable_note` for the words the user reads.

Seccomp. Three kinds of refusal: the escape-only system calls (mounting, namespaces, tracing, kernel keys and
modules, BPF) KILL the process with SIGSYS - no code edit needs them, and the supervisor names the candidate
hostile (``_worker.HOSTILE_SYSCALL``); attack surface some runtimes probe (io_uring, perf, userfaultfd) gets EPERM;
``memfd_create`` gets EPERM (memfds escape ``RLIMIT_AS``; the filter's own fd is made by the parent, before bwrap).

Uid. Unprivileged, bwrap maps the sandbox's uid 65534 to the caller's own uid. As root that would mean uid 0
outside (owner of every root file, exempt from RLIMIT_NPROC), so for root we build once per process a user
namespace whose ids map to 65534 outside (0 stays 0 only so bwrap can set up its mounts, then the supervisor drops
to 65534 before anything else runs, losing every capability).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import shutil
import site
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass

_log = logging.getLogger(__name__)

NOBODY = 65534
SCRATCH = "/tmp"
SCRATCH_MB = 64
SHM_KB = 1024  # /dev/shm: enough for a few POSIX semaphores, not a place to keep memory outside RLIMIT_AS
# The user's switch (an environment variable, which a repository cannot set): "off" runs no candidate at all. Any
# other value but "auto"/"bubblewrap" also runs nothing, and says so: there is no weaker mode to fall back to.
ENV_SWITCH = "CODECONDUCTOR_SANDBOX"
# "webassembly" (or "wasm") leaves bubblewrap out: pure-Python values run in the WebAssembly sandbox (verify/_wasm.py).
WASM_SWITCH_VALUES = ("webassembly", "wasm")
SWITCH_VALUES = ("", "auto", "bubblewrap", *WASM_SWITCH_VALUES)

_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
    0x00000080,  # CLONE_NEWTIME
)
# Escape-only system calls: the process is killed (SIGSYS) and the candidate named hostile.
KILLED_SYSCALLS = (
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
    "move_mount",
    "mount_setattr",
    "swapon",
    "swapoff",
    "reboot",
)
# Refused with EPERM: attack surface no candidate needs, but that runtimes may probe and do without (libuv tries
# io_uring); memfd_create because a memfd is memory RLIMIT_AS does not count; pidfd_send_signal because a pidfd can
# be any /proc/PID directory, whose pid the filter cannot see (kill() reaches the candidate's own children).
REFUSED_SYSCALLS = (
    "perf_event_open",
    "name_to_handle_at",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "syslog",
    "acct",
    "quotactl",
    "lookup_dcookie",
    "uselib",
    "memfd_create",
    "pidfd_send_signal",
)
# Signals: the PID namespace already hides every process outside the sandbox (kill outside is impossible). The
# filter also keeps candidates off the sandbox's own init (pid 1), its supervisor (pid 2, process group 2) and
# "every process" (-1), so a candidate cannot stop the supervisor that reports on it.
_PROTECTED_PIDS = (1, 2, 0xFFFFFFFF, 0xFFFFFFFE)
_SIGNAL_SYSCALLS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open")
_TIOCSTI = 0x5412


@dataclass(frozen=True)
class Support:
    """Whether bubblewrap can run here; ``reason`` says why not, else None. Usable means bwrap AND its seccomp
    filter: without the filter the sandbox is weaker than documented, so it is not used."""

    bwrap: str | None
    seccomp: bytes | None
    userns_fd: int | None
    reason: str | None

    @property
    def usable(self) -> bool:
        return self.bwrap is not None and self.seccomp is not None and self.reason is None


def unavailable_note(reason: str) -> str:
    """What the user reads when no candidate could run (results, the fix loop, ``codeconductor models``)."""
    return (
        f"not executed: the sandbox cannot run here ({reason}); install bubblewrap and libseccomp (apt install "
        "bubblewrap libseccomp2) and allow unprivileged user namespaces, or, for pure-Python answers only, the "
        "WebAssembly sandbox (pip install 'codeconductor[wasm]') - candidates never run without one "
        "(docs/reliability.md, 'Sandbox')"
    )


def seccomp_program() -> bytes | None:
    """The compiled BPF program of the filter (libseccomp through pyseccomp), or None when unavailable."""
    try:
        import pyseccomp as sc  # type: ignore[import-untyped]
    except (ImportError, OSError):
        return None
    try:
        flt = sc.SyscallFilter(defaction=sc.ALLOW)
        eperm, kill = sc.ERRNO(errno.EPERM), sc.KILL_PROCESS
        for action, names in ((kill, KILLED_SYSCALLS), (eperm, REFUSED_SYSCALLS)):
            for name in names:
                with contextlib.suppress(Exception):  # a name this libseccomp or kernel does not know
                    flt.add_rule(action, name)
        for flag in _NAMESPACE_FLAGS:
            flt.add_rule(kill, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
        # clone3 passes its flags in memory a filter cannot read: ENOSYS makes libc fall back to clone.
        with contextlib.suppress(Exception):
            flt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
        for name in _SIGNAL_SYSCALLS:
            for pid in _PROTECTED_PIDS:
                with contextlib.suppress(Exception):
                    flt.add_rule(eperm, name, sc.Arg(0, sc.MASKED_EQ, 0xFFFFFFFF, pid))
        flt.add_rule(eperm, "ioctl", sc.Arg(1, sc.MASKED_EQ, 0xFFFFFFFF, _TIOCSTI))
        with tempfile.TemporaryFile() as handle:
            flt.export_bpf(handle)
            handle.seek(0)
            return handle.read() or None
    except Exception:
        _log.warning("sandbox: could not build the seccomp filter", exc_info=True)
        return None


def _root_userns() -> int | None:
    """As root: an fd of a user namespace mapping 0->0 (for bwrap's own setup) and 65534->65534 (where the
    candidate runs); made once per process with util-linux ``unshare``. None when it cannot be made."""
    tool = shutil.which("unshare")
    if tool is None:
        return None
    try:
        holder = subprocess.Popen(
            [tool, "--user", "--", "/bin/sh", "-c", "read -r _"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError:
        return None
    try:
        mine = os.readlink("/proc/self/ns/user")
        for _ in range(400):  # until the holder has unshared (a few ms)
            if holder.poll() is not None:
                return None
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{holder.pid}/ns/user") != mine:
                    break
            threading.Event().wait(0.005)
        else:
            return None
        mapping = f"0 0 1\n{NOBODY} {NOBODY} 1\n"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{holder.pid}/{name}", "w", encoding="ascii") as handle:
                handle.write(mapping)
        return os.open(f"/proc/{holder.pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    finally:
        with contextlib.suppress(OSError):
            assert holder.stdin is not None
            holder.stdin.close()
        try:
            holder.wait(timeout=5)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait()


def _ancestors(path: str) -> list[str]:
    parts, out = path.strip("/").split("/"), []
    for index in range(1, len(parts)):
        out.append("/" + "/".join(parts[:index]))
    return out


def interpreter_paths() -> list[str]:
    """The read-only paths the interpreter needs: its prefix (standard library), the virtual environment (its
    site-packages, pytest included) and the directory of the real executable, when not under /usr."""
    paths: list[str] = []
    for path in (sys.base_prefix, sys.prefix, os.path.dirname(os.path.realpath(sys.executable))):
        real = os.path.realpath(path)
        if real.startswith("/usr/") or real == "/usr":
            continue
        if not any(real == p or real.startswith(p + "/") for p in paths):
            paths = [p for p in paths if not p.startswith(real + "/")] + [real]
        if path != real and not any(path == p or path.startswith(p + "/") for p in paths):
            paths.append(path)  # the venv's own path, as the interpreter records it
    for extra in _pth_dirs():
        if not any(_under(extra, p) for p in paths) and not _under(extra, "/usr"):
            paths.append(extra)
    return paths


def _pth_dirs() -> list[str]:
    """Folders the interpreter's ``.pth`` files put on ``sys.path`` (an environment that borrows another's
    site-packages, as tests and some tools set up): without them pytest or a dependency is missing in the sandbox.
    Only plain path lines count (``import`` lines run code: never followed here)."""
    found: list[str] = []
    for site_dir in site.getsitepackages():
        try:
            names = sorted(n for n in os.listdir(site_dir) if n.endswith(".pth"))
        except OSError:
            continue
        for name in names:
            try:
                with open(os.path.join(site_dir, name), encoding="utf-8") as handle:
                    lines = handle.read(65536).splitlines()
            except (OSError, UnicodeDecodeError):
                continue
            for raw in lines:
                entry = raw.strip()
                if not entry or entry.startswith(("#", "import ", "import\t")):
                    continue
                folder = os.path.realpath(os.path.join(site_dir, entry))
                if os.path.isdir(folder) and folder not in found:
                    found.append(folder)
    return found


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")


def argv(support: Support, *, seccomp_fd: int | None, ro_paths: Sequence[str] = ()) -> list[str]:
    """The bwrap command line, up to (not including) the command. ``ro_paths``: host paths shown read-only at the
    same place (the interpreter's are always added), anywhere but ``/`` and the scratch itself - under ``/tmp``
    too: they are bound after the scratch is mounted, so it cannot hide them."""
    assert support.bwrap is not None
    args = [support.bwrap]
    if support.userns_fd is not None:
        args += ["--userns", str(support.userns_fd), "--cap-drop", "ALL"]
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]  # used once, by the supervisor, to drop
    else:
        args += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--cap-drop", "ALL"]
    args += ["--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--die-with-parent", "--new-session", "--hostname", "sandbox"]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = "/" + name
        if os.path.islink(host):
            args += ["--symlink", os.readlink(host), host]
        elif os.path.isdir(host):
            args += ["--ro-bind", host, host]
    args += ["--perms", "0755", "--dir", "/etc"]
    for name in ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/alternatives", "/etc/localtime"):
        if os.path.exists(name):
            args += ["--ro-bind", name, name]
    # The scratch and the fresh /proc and /dev first: a bind made before them under /tmp would be hidden.
    args += ["--perms", "1777", "--size", str(SCRATCH_MB * 1024 * 1024), "--tmpfs", SCRATCH]
    args += ["--proc", "/proc", "--dev", "/dev"]
    args += ["--perms", "1777", "--size", str(SHM_KB * 1024), "--tmpfs", "/dev/shm"]
    # /dev is a tmpfs as large as half the RAM, owned by the candidate's uid when unprivileged: read-only (its
    # device nodes are mounts of their own and stay writable; /dev/shm is the capped tmpfs above).
    args += ["--remount-ro", "/dev"]
    made: set[str] = set()
    bound: list[str] = []
    for path in [*interpreter_paths(), *ro_paths]:
        if path in bound or not os.path.exists(path) or _under(SCRATCH, path):
            continue  # "/" or the scratch itself: binding it would hide the scratch
        if any(_under(path, top) for top in ("/usr", "/proc", "/dev")):
            continue  # already there
        for parent in _ancestors(path):
            if parent not in made and parent != SCRATCH and not _under(parent, "/usr"):
                # Directories bwrap makes for a bind's parents are 0700: the dropped uid must pass through.
                args += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        args += ["--ro-bind", path, path]
        bound.append(path)
    args += ["--remount-ro", "/", "--chdir", SCRATCH, "--clearenv"]
    for key, value in (("PATH", "/usr/bin:/bin"), ("HOME", SCRATCH), ("TMPDIR", SCRATCH), ("LANG", "C.UTF-8")):
        args += ["--setenv", key, value]
    if seccomp_fd is not None:
        args += ["--seccomp", str(seccomp_fd)]
    return args


def seccomp_fd(program: bytes | None) -> int | None:
    """A fresh fd holding the filter for one bwrap (bwrap reads it to the end)."""
    if program is None:
        return None
    fd = os.memfd_create("codeconductor-seccomp", 0)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


# The probe runs what a job needs, as the uid jobs run as: the interpreter, its standard library and every
# site-packages directory must be readable by the dropped uid (a venv or pyenv under a private home, a uv or pipx
# environment), and the scratch writable.
_PROBE = """
import os, sys
if os.getuid() == 0:
    os.setgroups([]); os.setgid(65534); os.setuid(65534)
for path in sys.argv[1:]:
    os.listdir(path)
open("/tmp/.probe", "w").close()
os.execv(sys.executable, [sys.executable, "-I", "-S", "-c", "import encodings, json, marshal"])
"""


def _probe(support: Support) -> str | None:
    """Run the full sandbox once; None when it works, else the reason."""
    fd = seccomp_fd(support.seccomp)
    fds = tuple(f for f in (fd, support.userns_fd) if f is not None)
    sites = [p for p in site.getsitepackages() if os.path.isdir(p)]
    try:
        done = subprocess.run(
            [*argv(support, seccomp_fd=fd), sys.executable, "-I", "-S", "-c", _PROBE, *sites],
            pass_fds=fds,
            capture_output=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start ({type(exc).__name__})"
    finally:
        if fd is not None:
            os.close(fd)
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        return "bubblewrap cannot run the interpreter in its sandbox" + (f" ({detail[-1][:160]})" if detail else "")
    return None


@functools.lru_cache(maxsize=1)
def support() -> Support:
    """Probed once per process (a few ms)."""
    switch = os.environ.get(ENV_SWITCH, "").strip().lower()
    if switch in WASM_SWITCH_VALUES:
        return Support(None, None, None, f"bubblewrap not chosen ({ENV_SWITCH}={switch})")
    if switch not in SWITCH_VALUES:
        return Support(None, None, None, f"candidate execution is off ({ENV_SWITCH}={switch})")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Support(None, None, None, "bubblewrap (bwrap) is not installed")
    program = seccomp_program()
    if program is None:
        return Support(None, None, None, "no seccomp filter (pyseccomp or libseccomp is missing)")
    userns = None
    if os.geteuid() == 0:
        userns = _root_userns()
        if userns is None:
            return Support(None, None, None, "bubblewrap: cannot create a user namespace for the dropped uid")
    candidate = Support(bwrap, program, userns, None)
    reason = _probe(candidate)
    if reason is not None:
        if userns is not None:
            os.close(userns)
        return Support(None, None, None, reason)
    return candidate
