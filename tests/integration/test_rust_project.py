"""Rust answers run inside the user's crate (issue 26): the real sandbox and the real toolchain (cargo and rustc,
installed by ``scripts/setup.sh --dev``: without them these tests fail, they do not skip), a crate made under
tmp_path with two source files (the selected function calls a helper of the other module), a unit test in a
``#[cfg(test)]`` module, an integration test in ``tests/`` and an example in the function's doc comment (a doc
test). ``cargo test`` on the user's code is the oracle: improve keeps every passing test passing, fix makes a
failing one pass and breaks none."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.languages.rust import rust_toolchain
from codeconductor.ensemble.project import project_for
from codeconductor.ensemble.types import (
    AnswerStatus,
    ConsensusResult,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)
from codeconductor.ensemble.verify.observe import SandboxExecutor
from tests.support.fault_server import FakeModel, FaultServer

CARGO = '[package]\nname = "calc"\nversion = "0.1.0"\nedition = "2021"\n\n[dependencies]\n'
LIB = """mod util;
use util::is_even;

/// Adds up the even numbers of `xs`.
///
/// ```
/// assert_eq!(calc::sum_even(&[2, 4, 5]), 6);
/// ```
pub fn sum_even(xs: &[i64]) -> i64 {
    let mut total = 0;
    for &x in xs {
        if is_even(x) {
            total += x;
        }
    }
    total
}

/// Doubles `x`.
pub fn double(x: i64) -> i64 {
    2 * x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_numbers() {
        assert_eq!(sum_even(&[-2, 5]), -2);
    }
}
"""
UTIL = "pub fn is_even(x: i64) -> bool {\n    x % 2 == 0\n}\n"
IT = """#[test]
fn table() {
    for (xs, want) in [(vec![1, 2, 3, 4], 6), (vec![], 0)] {
        assert_eq!(calc::sum_even(&xs), want);
    }
}

#[test]
fn doubles() {
    assert_eq!(calc::double(3), 6);
}
"""
RIGHT = """pub fn sum_even(xs: &[i64]) -> i64 {
    xs.iter().filter(|x| *x % 2 == 0).sum()
}
"""
# Passes the table and the doc example but not negative numbers.
MUTANT = """pub fn sum_even(xs: &[i64]) -> i64 {
    xs.iter().filter(|x| **x > 0 && is_even(**x)).sum()
}
"""
WRONG_FIX = """pub fn sum_even(xs: &[i64]) -> i64 {
    xs.iter().sum()
}
"""
# Prints the lines libtest and rustdoc print for passing tests, then returns the wrong sum.
FORGER = """pub fn sum_even(xs: &[i64]) -> i64 {
    use std::io::Write;
    let mut out = std::io::stdout();
    for name in ["table", "tests::negative_numbers", "src/lib.rs - sum_even (line 6)"] {
        let _ = writeln!(out, "test {} ... ok", name);
    }
    let _ = out.flush();
    xs.len() as i64
}
"""


# Returns a wrong sum, and replaces the integration tests' binary with a script that prints a passing line and
# exits 0: the next test's process would be the forger's, were the build's outputs not put back before each test.
POISONER = """pub fn sum_even(xs: &[i64]) -> i64 {
    use std::os::unix::fs::PermissionsExt;
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir(std::path::Path::new(&target).join("debug/deps")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("it-") && !name.contains('.') {
                let path = entry.path();
                let _ = std::fs::remove_file(&path);
                let _ = std::fs::write(&path, "#!/bin/sh\\necho 'test table ... ok'\\n");
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
            }
        }
    }
    xs.len() as i64
}
"""


def _buggy(text: str) -> str:
    return text.replace("if is_even(x) {", "if !is_even(x) {")


def make_crate(root: Path, lib: str = LIB, tests: str | None = IT) -> Path:
    """A crate at ``root``: ``src/lib.rs`` (sum_even), ``src/util.rs`` and ``tests/it.rs``; the path of lib.rs."""
    (root / "src").mkdir(parents=True)
    (root / "Cargo.toml").write_text(CARGO, encoding="utf-8")
    (root / "src" / "lib.rs").write_text(lib, encoding="utf-8")
    (root / "src" / "util.rs").write_text(UTIL, encoding="utf-8")
    if tests is not None:
        (root / "tests").mkdir()
        (root / "tests" / "it.rs").write_text(tests, encoding="utf-8")
    return root / "src" / "lib.rs"


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    # Setup installs cargo and rustc for the dev suite: missing, these tests must fail, not skip.
    assert rust_toolchain() is not None, "cargo and rustc are not installed (scripts/setup.sh --dev installs them)"
    runner = SandboxExecutor()
    assert runner.sandbox.containment == "bubblewrap", "Rust runs only in the bubblewrap sandbox"
    yield runner
    runner.close()


def _request(module: Path, task: TaskKind, name: str = "sum_even", *, with_doc: bool = False) -> Request:
    text = module.read_text(encoding="utf-8")
    found = language_for("rust").find_function(text, name)
    assert found is not None
    start = found.start_line
    if with_doc:
        lines = text.splitlines()
        while start > 0 and lines[start - 1].lstrip().startswith("///"):
            start -= 1
    context = build_context(text, start, found.end_line, path=str(module), language="rust")
    context.project = project_for(module, text)
    assert context.project is not None
    return Request(task=task, context=context)


def _decide(request: Request, *codes: str, executor: SandboxExecutor) -> ConsensusResult:
    answers = [
        ModelAnswer(
            model=ModelInfo(name=f"m{i}", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434"),
            status=AnswerStatus.ANSWERED,
            text=f"```rust\n{code}```",
        )
        for i, code in enumerate(codes)
    ]
    return asyncio.run(decide(request, answers, executor=executor))


def _rejected(result: ConsensusResult) -> list[str]:
    return [c.rejected for c in result.clusters if c.rejected]


def test_the_crate_is_found(tmp_path: Path) -> None:
    module = make_crate(tmp_path / "calc")
    project = project_for(module, module.read_text(encoding="utf-8"))
    assert project is not None
    assert (project.language, project.root, project.module) == ("rust", str(tmp_path / "calc"), "calc")
    assert project_for(tmp_path / "calc" / "Cargo.toml", CARGO) is None


def test_improve_keeps_the_tests_passing(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_crate(tmp_path / "calc")
    result = _decide(_request(module, TaskKind.IMPROVE), MUTANT, RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "*x % 2 == 0" in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0], rejected
    assert any("3 of your tests" in n for n in result.notes), result.notes
    assert any(n.startswith("rust: executed with cargo test in crate calc (3 tests") for n in result.notes)
    assert result.unchecked is None


def test_fix_must_make_a_failing_test_pass_and_forged_output_does_not_count(
    tmp_path: Path, executor: SandboxExecutor
) -> None:
    module = make_crate(tmp_path / "calc", _buggy(LIB))
    result = _decide(_request(module, TaskKind.FIX), WRONG_FIX, FORGER, RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "*x % 2 == 0" in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 2, rejected
    assert all("failing tests pass" in r for r in rejected), rejected


def test_a_test_process_cannot_change_what_the_next_test_runs(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_crate(tmp_path / "calc", _buggy(LIB))
    result = _decide(_request(module, TaskKind.FIX), POISONER, executor=executor)
    assert not result.offers_edit
    assert _rejected(result) == ["makes none of the 3 failing tests pass"], result.clusters


def test_a_fix_of_code_that_does_not_compile_is_checked(tmp_path: Path, executor: SandboxExecutor) -> None:
    """The user's file does not compile: its tests all fail, so a fix must make them pass (no unchecked pick)."""
    module = make_crate(tmp_path / "calc", LIB.replace("total += x;", "total += y;"))
    result = _decide(_request(module, TaskKind.FIX), WRONG_FIX, RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "*x % 2 == 0" in result.pick
    assert result.unchecked is None, result.notes
    assert any("3 of your tests (0 passing" in n for n in result.notes), result.notes
    improve = _decide(_request(module, TaskKind.IMPROVE), RIGHT, executor=executor)
    assert not improve.offers_edit  # nothing of the user's code passes: nothing to keep


def test_a_fix_that_fixes_nothing_is_refused(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_crate(tmp_path / "calc", _buggy(LIB))
    result = _decide(_request(module, TaskKind.FIX), WRONG_FIX, executor=executor)
    assert not result.offers_edit
    assert result.no_edit is not None
    assert "failing tests" in result.no_edit


def test_an_answer_that_does_not_compile_is_refused_with_the_reason(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_crate(tmp_path / "calc")
    undefined = RIGHT.replace(".sum()", ".sum::<i64>() + offset")
    result = _decide(_request(module, TaskKind.IMPROVE), undefined, executor=executor)
    assert not result.offers_edit
    assert any("does not load" in r and "cannot find value `offset`" in r for r in _rejected(result)), _rejected(result)


def test_rewriting_the_users_doc_example_does_not_pass_it(tmp_path: Path, executor: SandboxExecutor) -> None:
    """The doc test is keyed by the example's text: an answer whose doc comment changes the example loses it."""
    module = make_crate(tmp_path / "calc")
    doc = (
        "/// Adds up the even numbers of `xs`.\n///\n/// ```\n/// assert_eq!(calc::sum_even(&[2, 4, 5]), 6);\n/// ```\n"
    )
    # Right but on the example, whose expected value it changes to what it returns.
    special = RIGHT.replace("xs.iter()", "if xs == [2, 4, 5] {\n        return 11;\n    }\n    xs.iter()")
    changed = doc.replace("6);", "11);") + special
    tests_pass_too = doc.replace("numbers", "numbers (an iterator)") + RIGHT  # the example kept as it was
    result = _decide(_request(module, TaskKind.IMPROVE, with_doc=True), changed, tests_pass_too, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "an iterator" in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0], rejected


def test_hostile_answers_are_contained(tmp_path: Path, executor: SandboxExecutor) -> None:
    """An answer that reads a file of the host (outside the crate) or connects to a port on the host's loopback
    sees neither; one that would end its tests itself is refused unrun."""
    secret = tmp_path / "secret.txt"
    secret.write_text("42", encoding="utf-8")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        for _ in range(100):
            try:
                accepted.append(listener.accept())
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    module = make_crate(tmp_path / "calc", _buggy(LIB))
    # Right only when it can read the host file or reach the host's port: contained, it stays wrong.
    reader = RIGHT.replace(
        "xs.iter()",
        f'if std::fs::read_to_string("{secret}").is_err() {{ return 1; }}\n    xs.iter()',
    )
    caller = RIGHT.replace(
        "xs.iter()",
        f'if std::net::TcpStream::connect("127.0.0.1:{port}").is_err() {{ return 1; }}\n    xs.iter()',
    )
    quitter = RIGHT.replace("xs.iter()", "if xs.is_empty() { std::process::exit(0) }\n    xs.iter()")
    result = _decide(_request(module, TaskKind.FIX), reader, caller, quitter, executor=executor)
    thread.join(timeout=25)
    listener.close()
    assert not accepted
    assert not result.offers_edit
    assert all(c.rejected for c in result.clusters)
    assert sorted(m.split("@")[0] for c in result.clusters for m in c.members) == ["m0", "m1", "m2"]
    quit_refused = [c.members for c in result.clusters if "could end its tests early" in (c.rejected or "")]
    assert [[m.split("@")[0] for m in members] for members in quit_refused] == [["m2"]], result.clusters


def test_without_a_test_that_calls_it_improve_is_refused_and_says_why(
    tmp_path: Path, executor: SandboxExecutor
) -> None:
    module = make_crate(
        tmp_path / "bare",
        LIB.replace("/// ```\n/// assert_eq!(calc::sum_even(&[2, 4, 5]), 6);\n/// ```\n", ""),
        tests=None,
    )
    result = _decide(_request(module, TaskKind.IMPROVE, "double"), "pub fn double(x: i64) -> i64 {\n    x + x\n}\n",
                     executor=executor)  # fmt: skip
    assert not result.offers_edit
    assert result.no_edit is not None
    assert "no test in crate calc calls double" in result.no_edit


def test_a_crate_that_needs_crates_io_says_so(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_crate(tmp_path / "calc")
    (tmp_path / "calc" / "Cargo.toml").write_text(CARGO + 'serde = "1"\n', encoding="utf-8")
    result = _decide(_request(module, TaskKind.IMPROVE), RIGHT, executor=executor)
    assert not result.offers_edit
    assert result.no_edit is not None
    assert "does not vendor" in result.no_edit
    assert "serde" in result.no_edit


def test_cli_ask_json_runs_rust_answers_in_the_crate(tmp_path: Path) -> None:
    """End to end: ``codeconductor ask --json`` on a file of a crate, models served over a loopback
    OpenAI-compatible API (the fake: answers here must be chosen, not sampled)."""
    assert rust_toolchain() is not None, "cargo and rustc are not installed (scripts/setup.sh --dev installs them)"
    root = tmp_path / "calc"
    module = make_crate(root, _buggy(LIB))
    found = language_for("rust").find_function(module.read_text(encoding="utf-8"), "sum_even")
    assert found is not None
    models = [FakeModel("good", text=f"```rust\n{RIGHT}```"), FakeModel("bad", text=f"```rust\n{WRONG_FIX}```")]
    with FaultServer(models, apis=("openai",)) as server:
        (root / "codeconductor.toml").write_text(
            f'probe_local = false\nembedded = "off"\nhistory = false\n[[endpoints]]\nurl = "{server.url}"\n',
            encoding="utf-8",
        )
        done = subprocess.run(
            [sys.executable, "-m", "codeconductor.cli", "ask", "--json", "--task", "fix", "--file", "src/lib.rs",
             "--lines", f"{found.start_line + 1}-{found.end_line}", "the even numbers are not added"],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    consensus = json.loads(done.stdout)["consensus"]
    assert consensus["pick"] is not None, consensus
    assert "*x % 2 == 0" in consensus["pick"], consensus
    assert consensus["executed"] is True, consensus
    assert consensus["unchecked"] is None, consensus
    assert any(n.startswith("rust: executed with cargo test") for n in consensus["notes"]), consensus["notes"]
    rejected = [c["rejected"] for c in consensus["clusters"] if c["rejected"]]
    assert len(rejected) == 1, rejected
    assert "failing tests" in rejected[0], rejected
