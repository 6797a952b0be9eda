"""``codeconductor fix`` / ``gen-tests`` as a real subprocess, against the fault-injection fake's fixed-answer
"ok-*" models (configured through codeconductor.toml, as a user would), on a real project folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import clamp
from tests.support.fault_server import FaultServer

pytestmark = pytest.mark.timeout(240)

REPO = Path(__file__).resolve().parents[2]
BUGGY = clamp.BUGGY
RIGHT = clamp.answer(clamp.RIGHT)
WRONG = clamp.answer(clamp.WRONG)
TESTS = (
    "from pkg.util import clamp\n\n\ndef test_low():\n    assert clamp(-5, 0, 10) == 0\n\n\n"
    "def test_high():\n    assert clamp(50, 0, 10) == 10\n"
)


@pytest.fixture(scope="module")
def fake() -> Iterator[FaultServer]:
    with FaultServer(apis=("openai",)) as server:
        server.add_model("ok-cli-right", text=RIGHT)
        server.add_model("ok-cli-wrong", text=WRONG)
        yield server


def project(root: Path, fake: FaultServer, models: list[str]) -> Path:
    clamp.write_package(root, BUGGY, TESTS)
    include = ", ".join(f'"{m}"' for m in models)
    (root / "codeconductor.toml").write_text(
        f'probe_local = false\nembedded = "off"\nhistory = false\nverify = false\n'
        f'include_models = [{include}]\n\n[[endpoints]]\nurl = "{fake.url}"\nkind = "openai"\n'
    )
    return root


def cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "codeconductor.cli", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
        check=False,
    )


def test_fix_prints_the_diff_and_applies_only_when_asked(fake: FaultServer, tmp_path: Path) -> None:
    root = project(tmp_path, fake, ["ok-cli-right", "ok-cli-wrong"])
    done = cli(root, "fix", "--tests", "tests/test_util.py", "pkg/util.py:clamp")
    assert done.returncode == 0, done.stderr
    assert "1/2 candidates pass the tests" in done.stdout
    assert "+    return max(lo, min(x, hi))" in done.stdout
    assert (root / "pkg" / "util.py").read_text() == BUGGY  # not applied without --apply
    done = cli(root, "fix", "--tests", "tests/test_util.py", "--apply", "--json", "--quiet", "pkg/util.py:clamp")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "passed"
    assert "max(lo, min(x, hi))" in (root / "pkg" / "util.py").read_text()


def test_fix_finds_the_tests_when_none_are_given(fake: FaultServer, tmp_path: Path) -> None:
    root = project(tmp_path, fake, ["ok-cli-right"])
    done = cli(root, "fix", "--json", "--quiet", "pkg/util.py:clamp")
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "passed"
    assert outcome["baseline"]["total"] == 2  # test_low and test_high, found as the editor finds them
    with (root / "pkg" / "util.py").open("a") as util:
        util.write("\n\ndef untested(x):\n    return x\n")
    none = cli(root, "fix", "pkg/util.py:untested")
    assert none.returncode == 2
    assert "no test in the project mentions untested" in none.stderr


def test_fix_exit_code_when_nothing_passes(fake: FaultServer, tmp_path: Path) -> None:
    root = project(tmp_path, fake, ["ok-cli-wrong"])
    done = cli(root, "fix", "-T", "tests/test_util.py", "--rounds", "1", "--json", "pkg/util.py:clamp")
    assert done.returncode == 3, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["status"] == "failed"
    assert (outcome["best"]["passed"], outcome["best"]["total"]) == (0, 2)
    assert (root / "pkg" / "util.py").read_text() == BUGGY


def test_fix_usage_errors(fake: FaultServer, tmp_path: Path) -> None:
    root = project(tmp_path, fake, ["ok-cli-right"])
    assert cli(root, "fix", "-T", "tests/test_util.py", "pkg/util.py").returncode == 2
    missing = cli(root, "fix", "-T", "tests/test_util.py", "pkg/util.py:nope")
    assert missing.returncode == 1
    assert "no function named 'nope'" in missing.stderr


GEN = "```python\nfrom pkg.util import clamp\n\n\ndef test_inside():\n    assert clamp(5, 0, 10) == 5\n```"


def test_gen_tests_writes_a_file_only_with_agreement_or_correct_code(fake: FaultServer, tmp_path: Path) -> None:
    fake.add_model("ok-cli-gen", text=GEN)
    root = project(tmp_path, fake, ["ok-cli-gen"])
    # One model only, code not marked correct: nothing kept, nothing written.
    done = cli(root, "gen-tests", "--write", "--quiet", "pkg/util.py:clamp")
    assert done.returncode == 3, done.stderr
    assert not (root / "tests" / "test_clamp_generated.py").exists()
    done = cli(root, "gen-tests", "--code-correct", "--write", "--quiet", "pkg/util.py:clamp")
    assert done.returncode == 0, done.stderr
    written = (root / "tests" / "test_clamp_generated.py").read_text()
    assert "from pkg.util import clamp" in written
    assert "def test_inside" in written
    # The written file is a real, passing pytest module.
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_clamp_generated.py"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
