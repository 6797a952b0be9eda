"""Issue 16's escapes and forgeries against the real bubblewrap sandbox, as root AND as an unprivileged user.

``sandbox_driver.py`` runs every hostile candidate through ``Sandbox`` in a process started with a secret in its
environment and a home directory holding a 0600 file and a shell rc file; it reports each case as contained or
not, plus controls (the same reads and connections work outside the sandbox). Here we also check from outside
what the candidates tried to change: files outside the scratch directory, the rc file, daemons, the listener.

The unprivileged run uses a system user created here (idempotent). When the interpreter lives under a private
home (pyenv in /root), the driver runs in a private mount namespace where only that interpreter is made
reachable - the host is not changed.
"""

from __future__ import annotations

import json
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.sandbox import require_sandbox

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("sandbox_driver.py")
USER = "ccsandbox"
SECRET = "hunter2"

CASES = [
    # Sandbox: escaped (a values candidate, and a shell it would start)
    "py_root_shell",
    "py_read_shadow",
    "py_read_home_file",
    "py_read_env_secret",
    "py_write_outside",
    "py_append_shell_rc",
    "py_loopback_connect",
    "py_fork_bomb",
    "py_kill_supervisor",
    "py_memfd_outside_rlimit",
    "py_fill_scratch",
    "sh_root_shell",
    "sh_remount_rw",
    "sh_mount_proc",
    "sh_nsenter_and_connect",
    "sh_read_shadow",
    "sh_read_home_file",
    "sh_read_env_secret",
    "sh_write_outside",
    "sh_append_shell_rc",
    "sh_leave_daemons",
    "sh_ptrace_supervisor",
    "sh_read_supervisor_memory",
    "sh_stop_supervisor",
    "sh_fork_bomb",
    "sh_fill_dev_shm",
    "sh_memfd",
    "sh_pidfd_signal_supervisor",
    "next_innocent_candidate",
    # Verification: forged
    "fake_result_lines",
    "patch_equal",
    "patch_repr",
    "flood_768_mib",
    "sigstop_of_the_supervisor",
    # Verdicts outside the sandbox (issue 24): the supervisor's call list, a JS escape printing "passed" lines
    "py_frame_trick",
    "js_escape_and_forge",
]


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", USER],
            check=True,
            capture_output=True,
        )
        return pwd.getpwnam(USER)


def _blocker(path: str, uid: int) -> str | None:
    """The first ancestor of ``path`` that ``uid`` cannot pass through (not owner, no o+x), if any."""
    current = "/"
    for part in Path(path).parts[1:]:
        current = os.path.join(current, part)
        info = os.stat(current)
        if stat.S_ISDIR(info.st_mode) and info.st_uid != uid and not info.st_mode & stat.S_IXOTH:
            return current
    return None


def _unprivileged_command(argv: list[str], env: dict[str, str], uid: int, stage: Path) -> list[str]:
    """``argv`` as USER, in a private mount namespace where the interpreter's private parents are replaced by an
    empty tmpfs with only the interpreter bound back in (so root's home stays hidden from USER)."""
    needed = sorted({os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.executable, str(REPO))})
    lines = ["set -e"]
    covers: dict[str, list[str]] = {}
    for path in needed:
        blocker = _blocker(path if os.path.isdir(path) else os.path.dirname(path), uid)
        if blocker is not None:
            covers.setdefault(blocker, []).append(path if os.path.isdir(path) else os.path.dirname(path))
    index = 0
    rebind: list[tuple[str, str]] = []
    for blocker, paths in covers.items():
        for path in paths:
            staged = stage / f"bind{index}"
            index += 1
            staged.mkdir()
            lines.append(f"mount --bind {shlex.quote(path)} {shlex.quote(str(staged))}")
            rebind.append((str(staged), path))
        lines.append(f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(blocker)}")
    for bound, target in rebind:
        lines.append(f"mkdir -p {shlex.quote(target)} && mount --bind {shlex.quote(bound)} {shlex.quote(target)}")
    env_args = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
    lines.append(f"exec runuser -u {USER} -- env -i {env_args} {' '.join(shlex.quote(a) for a in argv)}")
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", "\n".join(lines)]


def _marker_processes(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if f"sleep {marker}" in cmdline:
                found.append(int(name))
    return found


class Run:
    def __init__(self, who: str, report: dict[str, Any], base: Path, marker: str) -> None:
        self.who, self.report, self.base, self.marker = who, report, base, marker


def _run_driver(who: str) -> Iterator[Run]:
    base = Path(tempfile.mkdtemp(prefix=f"cc-escape-{who}-"))
    base.chmod(0o755)
    home = base / "home"
    home.mkdir(mode=0o700)
    (home / "secret.txt").write_text(f"{SECRET}-home\n")
    (home / "secret.txt").chmod(0o600)
    (home / ".bashrc").write_text("# the user's shell rc\n")
    marker = f"{os.getpid() % 1000}.{len(who)}17"
    cfg = {
        "outside": str(base / "outside"),
        "home_file": str(home / "secret.txt"),
        "rc_file": str(home / ".bashrc"),
        "marker": marker,
        "secret": SECRET,
        "backend": "bubblewrap",
    }
    (base / "cfg.json").write_text(json.dumps(cfg))
    env = {
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(home),
        "CC_FAKE_SECRET": f"{SECRET}-env",
        "PYTHONPATH": str(REPO),
        "LANG": "C.UTF-8",
    }
    argv = [sys.executable, str(DRIVER), str(base / "cfg.json")]
    if who == "user":
        user = _ensure_user()
        for path in (home, home / "secret.txt", home / ".bashrc", base):
            os.chown(path, user.pw_uid, user.pw_gid)
        stage = base / "stage"
        stage.mkdir()
        command = _unprivileged_command(argv, env, user.pw_uid, stage)
        done = subprocess.run(command, capture_output=True, text=True, timeout=200, check=False)
    else:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=200, check=False)
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        report = json.loads(done.stdout.strip().splitlines()[-1])
        yield Run(who, report, base, marker)
    finally:
        for pid in _marker_processes(marker):  # never leave a daemon behind, even when a test failed
            os.kill(pid, 9)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module", params=["root", "user"])
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    require_sandbox()
    if os.geteuid() != 0:
        pytest.skip("creating the unprivileged test user and the root run both need root")
    yield from _run_driver(request.param)


@pytest.mark.parametrize("case", CASES)
def test_hostile_case_is_contained_and_fails(run: Run, case: str) -> None:
    result = run.report["cases"][case]
    assert result["contained"], f"{run.who}: {case}: {result}"


def test_ran_in_the_full_sandbox_as_the_right_user(run: Run) -> None:
    assert run.report["containment"] == "bubblewrap"
    assert run.report["unavailable_reason"] is None
    assert all(run.report["protections"].values()), run.report["protections"]
    assert (run.report["uid"] == 0) == (run.who == "root")
    assert "uid=65534" in run.report["cases"]["sh_root_shell"]["detail"]


def test_the_attacks_work_outside_the_sandbox(run: Run) -> None:
    # The controls prove each read/connect attack is real: outside the sandbox, it succeeds.
    assert run.report["controls"]
    assert all(run.report["controls"].values()), run.report["controls"]


def test_nothing_changed_outside(run: Run) -> None:
    home = run.base / "home"
    assert not list(run.base.glob("outside*"))
    assert (home / ".bashrc").read_text() == "# the user's shell rc\n"
    assert (home / "secret.txt").read_text() == f"{SECRET}-home\n"
    assert _marker_processes(run.marker) == []  # no daemon survived its sandbox
    # Only the driver's own control connection reached the loopback listener.
    assert run.report["sandbox_connections"] == 0
    assert run.report["connections_total"] == 1


def test_flooding_and_stopping_do_not_hurt_the_caller(run: Run) -> None:
    flood = run.report["cases"]["flood_768_mib"]
    assert flood["detail"] == "Forged"
    assert flood["parent_rss_growth_kb"] < 64 * 1024
    assert flood["wall_s"] < 10
    stopped = run.report["cases"]["sigstop_of_the_supervisor"]
    assert stopped["wall_s"] < 7.0  # killed at the deadline (3 s + grace), not hung
    assert run.report["honest_after_all"]


def test_forged_results_never_match(run: Run) -> None:
    cases = run.report["cases"]
    assert cases["fake_result_lines"]["detail"] == "Forged"
    assert cases["patch_equal"]["detail"] == "4"  # its real value, compared in the parent
    assert cases["patch_repr"]["detail"] == "'<Five 5>'"  # an int subclass is not an int, whatever its repr says


def test_hostile_answers_are_named(run: Run) -> None:
    # Contained is not enough: what each tried is the reason the user reads, and its calls count as failed.
    seen = run.report["hostile"]
    expected = {
        "connect": "Hostile:tried to open a network connection",
        "write_outside": "Hostile:tried to write outside its scratch directory",
        "os_open_outside": "Hostile:tried to write outside its scratch directory",  # os.open: no mode, only flags
        "start_process": "Hostile:tried to start a process",
        "forged_reason": "Hostile:tried something no code edit needs",  # never the candidate's own words
    }
    for name, error in expected.items():
        assert seen[name] == {"ok": False, "matches": False, "error": error}, (run.who, name, seen[name])
    assert seen["honest"] == {"ok": True, "matches": True, "error": None}
    program = seen["mount_program"]
    assert program["ok"] is False
    assert program["exit_code"] == -31  # SIGSYS: seccomp killed it at the mount call
    assert program["hostile"] is not None
    assert "system call no code edit needs" in program["hostile"]
