"""Hostile candidates under the pytest runner: each is contained, each is reported as a failed candidate, and the
user's project is byte-for-byte unchanged afterwards.

The candidate replaces ``pkg/target.py:attack`` in a copy of a small real project; the user's test calls it. The
secret-reading check runs the whole runner in a separate process started *with* the secret in its environment,
because that is where a user's secrets live (in the editor's and the language server's environment at exec time).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.verify.pytest_runner import (
    ProjectSnapshot,
    PytestReport,
    PytestRunner,
    locate_function,
    replace_span,
)
from codeconductor.ensemble.verify.sandbox import Sandbox

pytestmark = pytest.mark.timeout(180)

ORIGINAL = "def attack():\n    return 'ok'\n"
TEST = "from pkg.target import attack\n\n\ndef test_attack():\n    assert attack() == 'ok'\n"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=1) as box:
        yield box


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "target.py").write_text(ORIGINAL)
    (root / "tests").mkdir()
    (root / "tests" / "test_target.py").write_text(TEST)
    (root / "victim.txt").write_text("precious\n")
    return root


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_candidate(root: Path, sandbox: Sandbox, body: str, *, timeout_s: float = 30.0) -> PytestReport:
    snapshot = ProjectSnapshot.capture(root)
    original = snapshot.files["pkg/target.py"]
    start, end = locate_function(original, "attack")
    code = "def attack():\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
    files = snapshot.with_file("pkg/target.py", replace_span(original, start, end, code))
    runner = PytestRunner(sandbox, timeout_s=timeout_s, per_test_timeout_s=3.0, memory_mb=512)
    return runner.run(files, ["tests/test_target.py::test_attack"], root=root)


def contained(report: PytestReport) -> None:
    assert not report.ok
    assert report.passed == 0


def test_the_honest_candidate_passes(project: Path, sandbox: Sandbox) -> None:
    # The control: the harness itself does not fail everything.
    report = run_candidate(project, sandbox, "return 'ok'")
    assert report.ok, report.failure_text()


def test_infinite_loop_in_the_test(project: Path, sandbox: Sandbox) -> None:
    before = tree_hash(project)
    report = run_candidate(project, sandbox, "while True:\n    pass")
    contained(report)
    assert report.cases[0].outcome == "timeout"
    assert tree_hash(project) == before


def test_infinite_loop_at_import_time(project: Path, sandbox: Sandbox) -> None:
    """A loop outside any test (at import) is stopped by the run's own wall limit."""
    before = tree_hash(project)
    snapshot = ProjectSnapshot.capture(project)
    files = snapshot.with_file("pkg/target.py", "while True:\n    pass\n" + ORIGINAL)
    report = PytestRunner(sandbox, timeout_s=6.0).run(files, ["tests/test_target.py"], root=project)
    contained(report)
    assert report.timed_out
    assert "timed out" in report.failure_text()
    assert tree_hash(project) == before


def test_fork_bomb(project: Path, sandbox: Sandbox) -> None:
    before = tree_hash(project)
    report = run_candidate(
        project,
        sandbox,
        """
        import os, subprocess
        try:
            while True:
                os.fork()
        except Exception:
            subprocess.Popen([sys.executable, "-c", "pass"])
        return 'ok'
        """.replace("sys.executable", repr(sys.executable)),
    )
    contained(report)
    assert "not allowed" in report.failure_text()
    assert tree_hash(project) == before


def test_ten_gigabyte_allocation(project: Path, sandbox: Sandbox) -> None:
    before = tree_hash(project)
    report = run_candidate(project, sandbox, "data = bytearray(10 * 1024 ** 3)\nreturn 'ok' if data else 'no'")
    contained(report)
    assert "MemoryError" in report.failure_text()
    assert tree_hash(project) == before


def test_writing_and_deleting_outside_the_scratch_copy(project: Path, sandbox: Sandbox, tmp_path: Path) -> None:
    before = tree_hash(project)
    outside = tmp_path / "outside.txt"
    victim = project / "victim.txt"
    report = run_candidate(
        project,
        sandbox,
        f"""
        import os, shutil
        errors = []
        for action in (
            lambda: open({str(outside)!r}, "w").write("pwned"),
            lambda: os.remove({str(victim)!r}),
            lambda: shutil.rmtree({str(project)!r}),
            lambda: os.rename({str(victim)!r}, {str(outside)!r}),
        ):
            try:
                action()
            except Exception as exc:
                errors.append(type(exc).__name__)
        return 'ok' if not errors else errors
        """,
    )
    contained(report)
    assert not outside.exists()
    assert victim.read_text() == "precious\n"
    assert tree_hash(project) == before


def test_connecting_to_a_loopback_port(project: Path, sandbox: Sandbox) -> None:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(addr)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        report = run_candidate(
            project,
            sandbox,
            f"""
            import socket
            with socket.create_connection(("127.0.0.1", {port}), timeout=2) as conn:
                conn.sendall(b"stolen code")
            return 'ok'
            """,
        )
        # Prove the listener works: this process (not sandboxed) can connect.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        for _ in range(100):  # let the accept thread see it
            if accepted:
                break
            threading.Event().wait(0.05)
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
    contained(report)
    assert len(accepted) == 1  # only our own control connection arrived


_SECRET_SCRIPT = """
import json, sys
from pathlib import Path
from codeconductor.ensemble.verify.pytest_runner import ProjectSnapshot, PytestRunner, locate_function, replace_span
from codeconductor.ensemble.verify.sandbox import Sandbox

root = Path(sys.argv[1])
candidate = '''
def attack():
    import os
    found = [os.environ.get("CC_FAKE_SECRET", "")]
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        try:
            found.append(open("/proc/%s/environ" % name, "rb").read().decode("latin-1"))
        except Exception:
            pass
    return "leaked" if any("hunter2-" in text for text in found) else "ok"
'''
snapshot = ProjectSnapshot.capture(root)
original = snapshot.files["pkg/target.py"]
start, end = locate_function(original, "attack")
files = snapshot.with_file("pkg/target.py", replace_span(original, start, end, candidate))
# The user's test expects the leak: it passes only if the candidate could read the secret.
files["tests/test_target.py"] = "from pkg.target import attack\\n\\ndef test_attack():\\n    assert attack() == 'leaked'\\n"
with Sandbox() as box:
    report = PytestRunner(box).run(files, ["tests/test_target.py::test_attack"], root=root)
print(json.dumps({"ok": report.ok, "passed": report.passed, "failures": report.failure_text()}))
"""


def test_candidate_cannot_read_the_users_environment(project: Path) -> None:
    before = tree_hash(project)
    env = {**os.environ, "CC_FAKE_SECRET": "hunter2-do-not-leak"}
    repo = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = str(repo)
    done = subprocess.run(
        [sys.executable, "-c", _SECRET_SCRIPT, str(project)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"] is False
    assert result["passed"] == 0
    assert "assert 'ok' == 'leaked'" in result["failures"]
    assert tree_hash(project) == before
