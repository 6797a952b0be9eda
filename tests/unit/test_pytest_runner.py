"""The pytest runner's parts: what the project copy holds, how a candidate replaces one function, and what a real
pytest run in the sandbox reports (per-test outcomes, trimmed failures, time limits, wrong test ids)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.errors import RequestError
from codeconductor.ensemble.verify.pytest_runner import (
    ProjectSnapshot,
    PytestRunner,
    locate_function,
    replace_span,
    trim_message,
)
from codeconductor.ensemble.verify.sandbox import Sandbox

pytestmark = pytest.mark.timeout(120)

SOURCE = (
    "import os\n\n\n"
    "def helper():\n    return 1\n\n\n"
    "class Box:\n    def size(self):\n        return 0\n\n    def area(self):\n        return 1\n\n\n"
    "def size():\n    return 2\n"
)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(workers=1) as box:
        yield box


def test_snapshot_skips_vcs_venv_caches_secrets_binary_and_large(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    for folder in (".git", ".venv", "node_modules", "__pycache__", "pkg.egg-info"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "f.py").write_text("y = 2\n")
    (tmp_path / ".env").write_text("TOKEN=secret\n")
    (tmp_path / "blob.bin").write_bytes(b"\xff\xfe\x00\x81" * 10)
    (tmp_path / "big.txt").write_text("z" * 5000)
    (tmp_path / "data.csv").write_text("a,b\n")
    snap = ProjectSnapshot.capture(tmp_path, max_file_bytes=4096)
    assert set(snap.files) == {"pkg/a.py", "data.csv"}
    assert "big.txt" in snap.skipped
    assert "blob.bin" in snap.skipped


def test_snapshot_total_cap_drops_data_before_code(tmp_path: Path) -> None:
    (tmp_path / "z_code.py").write_text("a = 1\n" * 50)
    (tmp_path / "a_data.txt").write_text("d" * 400)
    snap = ProjectSnapshot.capture(tmp_path, max_total_bytes=500)
    assert "z_code.py" in snap.files
    assert "a_data.txt" in snap.skipped


def test_snapshot_of_missing_folder_is_a_request_error(tmp_path: Path) -> None:
    with pytest.raises(RequestError):
        ProjectSnapshot.capture(tmp_path / "nope")


def test_locate_function_and_method() -> None:
    assert locate_function(SOURCE, "helper") == (3, 5)
    assert locate_function(SOURCE, "Box.size") == (8, 10)
    assert locate_function(SOURCE, "size") == (15, 17)  # the module-level one, not the method
    with pytest.raises(RequestError):
        locate_function(SOURCE, "missing")
    with pytest.raises(RequestError):
        locate_function(SOURCE, "Other.size")


def test_replace_span_reindents_a_method_answered_at_column_zero() -> None:
    start, end = locate_function(SOURCE, "Box.area")
    new = replace_span(SOURCE, start, end, "def area(self):\n    return 42\n")
    assert "    def area(self):\n        return 42\n" in new
    assert new.startswith("import os\n")
    assert new.endswith("def size():\n    return 2\n")
    compile(new, "<new>", "exec")


def test_trim_message_keeps_the_tail() -> None:
    text = "head\n" + "x" * 5000 + "\nE   assert 1 == 2"
    trimmed = trim_message(text, 300)
    assert len(trimmed) < 320
    assert trimmed.startswith("head")
    assert trimmed.endswith("assert 1 == 2")


FILES = {
    "src/calc/__init__.py": "",
    "src/calc/ops.py": "def double(x):\n    return x * 2\n",
    "tests/test_ops.py": (
        "import pytest\nfrom calc.ops import double\n\n\n"
        "def test_ok():\n    assert double(2) == 4\n\n\n"
        "def test_bad():\n    assert double(2) == 5, 'two doubled'\n\n\n"
        "@pytest.mark.skip(reason='not now')\ndef test_skipped():\n    pass\n\n\n"
        "@pytest.fixture\ndef broken():\n    raise RuntimeError('fixture broke')\n\n\n"
        "def test_fixture(broken):\n    pass\n\n\n"
        "def test_slow():\n    while True:\n        pass\n"
    ),
}


def test_real_run_reports_each_test(sandbox: Sandbox) -> None:
    runner = PytestRunner(sandbox, per_test_timeout_s=1.0)
    report = runner.run(FILES, ["tests/test_ops.py"])
    outcomes = {c.nodeid.split("::")[1]: c.outcome for c in report.cases}
    assert outcomes == {
        "test_ok": "passed",
        "test_bad": "failed",
        "test_skipped": "skipped",
        "test_fixture": "error",
        "test_slow": "timeout",
    }
    assert not report.ok
    assert (report.passed, report.failed, report.total) == (1, 3, 5)
    text = report.failure_text()
    assert "two doubled" in text
    assert "fixture broke" in text
    assert "TIMEOUT tests/test_ops.py::test_slow" in text


def test_passing_selection_is_ok_and_src_layout_imports(sandbox: Sandbox) -> None:
    report = PytestRunner(sandbox).run(FILES, ["tests/test_ops.py::test_ok", "tests/test_ops.py::test_skipped"])
    assert report.ok, report.failure_text()
    assert report.passed == 1


def test_wrong_test_id_and_collection_error_are_not_passes(sandbox: Sandbox) -> None:
    runner = PytestRunner(sandbox)
    missing = runner.run(FILES, ["tests/test_ops.py::test_nope"])
    assert not missing.ok
    assert missing.errors
    broken = runner.run({**FILES, "src/calc/ops.py": "def double(x:\n"}, ["tests/test_ops.py::test_ok"])
    assert not broken.ok
    assert "SyntaxError" in broken.failure_text()


def test_no_tests_is_a_request_error(sandbox: Sandbox) -> None:
    with pytest.raises(RequestError):
        PytestRunner(sandbox).run(FILES, [])


async def test_async_tests_get_the_asyncio_plugin(sandbox: Sandbox) -> None:
    files = {
        "t/test_async.py": (
            "import asyncio, pytest\n\n\n@pytest.mark.asyncio\nasync def test_sleep():\n"
            "    await asyncio.sleep(0)\n    assert True\n"
        )
    }
    report = await PytestRunner(sandbox).arun(files, ["t/test_async.py"])
    assert report.ok, report.failure_text()
