"""The bubblewrap sandbox: command line, seccomp filter, user namespace, and whether it can run here at all.

Each job gets a fresh ``bwrap`` with new user, network, PID, IPC, UTS, cgroup and mount namespaces, every
capability dropped, an empty root with only the interpreter, its standard library and site-packages, and the
minimal system directories bound read-only, a size-capped tmpfs as scratch (``/tmp``, also ``$HOME``), a fresh
``/proc`` and ``/dev``, ``--die-with-parent`` and ``--new-session``, and a seccomp filter.

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
ENV_SWITCH = "CODECONDUCTOR_SANDBOX"  # "fallback" forces today's mechanisms (and says so)

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
# Refused with EPERM inside the sandbox: mounting and namespaces (the escape routes), tracing and other processes'
# memory, kernel keyrings, loading BPF or kernel code, and attack surface no candidate needs.
REFUSED_SYSCALLS = (
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
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "name_to_handle_at",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
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
    "syslog",
    "acct",
    "quotactl",
    "lookup_dcookie",
    "uselib",
)
# Signals: the PID namespace already hides every process outside the sandbox (kill outside is impossible). The
# filter also keeps candidates off the sandbox's own init (pid 1), its supervisor (pid 2, process group 2) and
# "every process" (-1), so a candidate cannot stop the supervisor that reports on it.
_PROTECTED_PIDS = (1, 2, 0xFFFFFFFF, 0xFFFFFFFE)
_SIGNAL_SYSCALLS = ("kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "pidfd_open")
_TIOCSTI = 0x5412


@dataclass(frozen=True)
class Support:
    """Whether bubblewrap can run here; ``weak_reason`` says why not (or what is missing), else None."""

    bwrap: str | None
    seccomp: bytes | None
    userns_fd: int | None
    weak_reason: str | None

    @property
    def usable(self) -> bool:
        return self.bwrap is not None


def seccomp_program() -> bytes | None:
    """The compiled BPF program of the filter (libseccomp through pyseccomp), or None when unavailable."""
    try:
        import pyseccomp as sc  # type: ignore[import-untyped]
    except (ImportError, OSError):
        return None
    try:
        flt = sc.SyscallFilter(defaction=sc.ALLOW)
        eperm = sc.ERRNO(errno.EPERM)
        for name in REFUSED_SYSCALLS:
            with contextlib.suppress(Exception):  # a name this libseccomp or kernel does not know
                flt.add_rule(eperm, name)
        for flag in _NAMESPACE_FLAGS:
            flt.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, flag, flag))
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
    return paths


def argv(support: Support, *, seccomp_fd: int | None, ro_paths: Sequence[str] = ()) -> list[str]:
    """The bwrap command line, up to (not including) the command."""
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
    # The scratch tmpfs first: mounted after the binds it would hide any bind under /tmp (a project there).
    args += ["--perms", "1777", "--size", str(SCRATCH_MB * 1024 * 1024), "--tmpfs", SCRATCH]
    made: set[str] = {SCRATCH}
    for path in [*interpreter_paths(), *ro_paths]:
        if not os.path.exists(path):
            continue
        for parent in _ancestors(path):
            if parent not in made and not parent.startswith("/usr/") and parent != "/usr":
                # Directories bwrap makes for a bind's parents are 0700: the dropped uid must pass through.
                args += ["--perms", "0755", "--dir", parent]
                made.add(parent)
        args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev"]
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


def _probe(support: Support) -> str | None:
    """Run ``true`` in the full sandbox once; None when it works, else the reason."""
    fd = seccomp_fd(support.seccomp)
    fds = tuple(f for f in (fd, support.userns_fd) if f is not None)
    try:
        done = subprocess.run(
            [*argv(support, seccomp_fd=fd), sys.executable, "-I", "-c", "pass"],
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
        return "bubblewrap cannot create its namespaces here" + (f" ({detail[-1][:160]})" if detail else "")
    return None


@functools.lru_cache(maxsize=1)
def support() -> Support:
    """Probed once per process (a few ms)."""
    if os.environ.get(ENV_SWITCH, "").strip().lower() in ("fallback", "weak", "off"):
        return Support(None, None, None, f"bubblewrap disabled by {ENV_SWITCH}")
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return Support(None, None, None, "bubblewrap (bwrap) is not installed")
    userns = None
    if os.geteuid() == 0:
        userns = _root_userns()
        if userns is None:
            return Support(None, None, None, "bubblewrap: cannot create a user namespace for the dropped uid")
    program = seccomp_program()
    candidate = Support(bwrap, program, userns, None)
    reason = _probe(candidate)
    if reason is not None:
        if userns is not None:
            os.close(userns)
        return Support(None, None, None, reason)
    if program is None:
        return Support(bwrap, None, userns, "no seccomp filter (pyseccomp or libseccomp is missing)")
    return candidate
