"""Bubblewrap runs candidates whatever the interpreter's install location (issue 24): a virtual environment under
/tmp (a clone there: the scratch tmpfs on /tmp used to hide it, and the sandbox fell back), inside a 0700
directory, with the interpreter itself under a private home (pyenv in /root on this machine), and a project
directory under /tmp shown read-only through ``run_program(..., ro_paths=...)``.

A real venv is made here (``python -m venv --without-pip --system-site-packages``, under a second), then a small
script run BY THAT VENV'S PYTHON uses the real ``Sandbox``, as root and as an unprivileged user created here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_sandbox_escape import _ensure_user, _unprivileged_command
from tests.support.sandbox import require_sandbox

pytestmark = pytest.mark.timeout(180)

REPO = Path(__file__).resolve().parents[2]
# Run by the venv under /tmp: what the sandbox shows from there.
SCRIPT = """
import json, sys
from codeconductor.ensemble.verify.sandbox import CallSpec, Sandbox

project = sys.argv[1]
box = Sandbox()
report = {"prefix": sys.prefix, "available": box.available, "reason": box.unavailable_reason}
if box.available:
    with box:
        code = "import sys\\ndef f(x):\\n    return [x + 3, sys.executable]\\n"
        out = box.run_calls(code, "f", [CallSpec("f(2)")])[0]
        report["call"] = {"value": out.value, "error": out.error}
        read = "import sys; print(open(sys.argv[1] + '/data.txt').read().strip())"
        prog = box.run_program({}, [sys.executable, "-I", "-c", read, project], ro_paths=[project])
        report["program"] = {"exit_code": prog.exit_code, "stdout": prog.stdout, "stderr": prog.stderr[-500:]}
print(json.dumps(report))
"""


@pytest.fixture(params=["root", "user"])
def who(request: pytest.FixtureRequest) -> str:
    require_sandbox()
    if os.geteuid() != 0:
        pytest.skip("the root run and creating the unprivileged user need root")
    return str(request.param)


@pytest.fixture
def base() -> Iterator[Path]:
    # Under /tmp itself (not pytest's tmp_path, which may be elsewhere): that is the case that broke.
    path = Path(tempfile.mkdtemp(prefix="cc-venv-", dir="/tmp"))  # 0700, as mkdtemp makes it
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_venv_under_tmp_runs_candidates_in_the_real_sandbox(who: str, base: Path) -> None:
    venv, project = base / "venv", base / "project"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run(
        [base_python, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True, timeout=60
    )
    project.mkdir()
    (project / "data.txt").write_text("project-data\n")
    script = base / "run.py"
    script.write_text(SCRIPT)
    # The project's own dependencies (pyseccomp, pydantic...) for the caller; the sandbox never sees this path.
    site_dirs = [p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix)]
    env = {
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "PYTHONPATH": os.pathsep.join([str(REPO), *site_dirs]),
        "HOME": str(base),
        "LANG": "C.UTF-8",
    }
    argv = [str(venv / "bin" / "python"), str(script), str(project)]
    if who == "user":
        user = _ensure_user()
        for root, dirs, files in os.walk(base):
            for name in [*dirs, *files]:
                os.lchown(os.path.join(root, name), user.pw_uid, user.pw_gid)
        os.chown(base, user.pw_uid, user.pw_gid)  # still 0700: only its owner passes
        stage = Path(tempfile.mkdtemp(prefix="cc-stage-"))
        try:
            command = _unprivileged_command(argv, env, user.pw_uid, stage)
            done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    else:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["prefix"] == str(venv)
    assert report["available"], report["reason"]
    # The candidate ran under the venv's own interpreter path (under /tmp), and the project under /tmp was shown.
    assert report["call"] == {"value": repr([5, str(venv / "bin" / "python")]), "error": None}
    assert report["program"]["exit_code"] == 0, report["program"]
    assert report["program"]["stdout"].split()[0] == "project-data"
