"""Go answers run inside the user's module (issue 26): the real sandbox and the real ``go`` toolchain (installed by
``scripts/setup.sh --dev``: without it these tests fail, they do not skip), a module made under tmp_path with two
files in one package (the selected function calls a helper of the other), a table-driven test, an ``Example``
with an ``// Output:`` comment, and a test that never names the function. ``go test`` on the user's code is the
oracle: improve keeps every passing test passing, fix makes a failing one pass and breaks none."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.languages.go import go_toolchain
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

GO_MOD = "module example.com/shop\n\ngo 1.19\n"
SUM_EVEN = """package calc

// SumEven adds up the even numbers of xs.
func SumEven(xs []int) int {
	total := 0
	for _, x := range xs {
		if isEven(x) {
			total += x
		}
	}
	return total
}

// Double doubles x.
func Double(x int) int { return 2 * x }
"""
UTIL = """package calc

func isEven(x int) bool { return x%2 == 0 }
"""
TESTS = """package calc

import (
	"fmt"
	"testing"
)

func TestSumEven(t *testing.T) {
	cases := []struct {
		in   []int
		want int
	}{
		{[]int{1, 2, 3, 4}, 6},
		{nil, 0},
		{[]int{-2, 5}, -2},
	}
	for _, c := range cases {
		if got := SumEven(c.in); got != c.want {
			t.Errorf("SumEven(%v) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestDouble(t *testing.T) {
	if Double(3) != 6 {
		t.Fatal("Double")
	}
}

func ExampleSumEven() {
	fmt.Println(SumEven([]int{2, 4, 5}))
	// Output: 6
}
"""
RIGHT = """func SumEven(xs []int) int {
	total := 0
	for _, x := range xs {
		if x%2 == 0 {
			total += x
		}
	}
	return total
}
"""
# Passes the table but for negative numbers: -2 % 2 == 0 in Go, but this checks x > 0.
MUTANT = """func SumEven(xs []int) int {
	total := 0
	for _, x := range xs {
		if x > 0 && isEven(x) {
			total += x
		}
	}
	return total
}
"""
WRONG_FIX = """func SumEven(xs []int) int {
	total := 0
	for _, x := range xs {
		total += x
	}
	return total
}
"""
# Prints the verdict a test runner would print, then fails for real: the forged line must not count.
FORGER = """func SumEven(xs []int) int {
	println("--- PASS: TestSumEven (0.00s)")
	println("--- PASS: ExampleSumEven (0.00s)")
	return len(xs)
}
"""


def _buggy(text: str) -> str:
    return text.replace("if isEven(x) {", "if !isEven(x) {")


def make_module(root: Path, sum_even: str = SUM_EVEN, tests: str | None = TESTS) -> Path:
    """A Go module at ``root``: package ``calc`` of two files and its tests; the path of the file with SumEven."""
    (root / "calc").mkdir(parents=True)
    (root / "go.mod").write_text(GO_MOD, encoding="utf-8")
    (root / "calc" / "sum.go").write_text(sum_even, encoding="utf-8")
    (root / "calc" / "util.go").write_text(UTIL, encoding="utf-8")
    if tests is not None:
        (root / "calc" / "sum_test.go").write_text(tests, encoding="utf-8")
    return root / "calc" / "sum.go"


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    # Setup installs go for the dev suite: missing, these tests must fail, not skip.
    assert go_toolchain() is not None, "the go toolchain is not installed (scripts/setup.sh --dev installs it)"
    runner = SandboxExecutor()
    assert runner.sandbox.containment == "bubblewrap", "Go runs only in the bubblewrap sandbox"
    yield runner
    runner.close()


def _lines(text: str, name: str) -> tuple[int, int]:
    found = language_for("go").find_function(text, name)
    assert found is not None
    return found.start_line, found.end_line


def _request(module: Path, task: TaskKind, name: str = "SumEven") -> Request:
    text = module.read_text(encoding="utf-8")
    start, end = _lines(text, name)
    context = build_context(text, start, end, path=str(module), language="go")
    context.project = project_for(module, text)
    assert context.project is not None
    return Request(task=task, context=context)


def _decide(request: Request, *codes: str, executor: SandboxExecutor) -> ConsensusResult:
    model = "http://127.0.0.1:11434"
    answers = [
        ModelAnswer(
            model=ModelInfo(name=f"m{i}", provider=ProviderKind.OLLAMA, endpoint=model),
            status=AnswerStatus.ANSWERED,
            text=f"```go\n{code}```",
        )
        for i, code in enumerate(codes)
    ]
    return asyncio.run(decide(request, answers, executor=executor))


def _rejected(result: ConsensusResult) -> list[str]:
    return [c.rejected for c in result.clusters if c.rejected]


def test_the_module_and_package_are_found(tmp_path: Path) -> None:
    module = make_module(tmp_path / "shop")
    project = project_for(module, module.read_text(encoding="utf-8"))
    assert project is not None
    assert (project.language, project.root, project.module) == ("go", str(tmp_path / "shop"), "example.com/shop/calc")
    assert project.import_root == str(tmp_path / "shop" / "calc")
    assert project_for(tmp_path / "shop" / "calc" / "sum_test.go", TESTS) is None


def test_improve_keeps_the_tests_passing(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_module(tmp_path / "shop")
    result = _decide(_request(module, TaskKind.IMPROVE), MUTANT, RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "x%2 == 0" in result.pick
    assert "x > 0" not in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0], rejected
    assert any("run in your project" in n and "2 of your tests" in n for n in result.notes), result.notes
    assert any(n.startswith("go: executed with go test in package example.com/shop/calc") for n in result.notes)
    assert result.unchecked is None


def test_fix_must_make_a_failing_test_pass_and_forged_output_does_not_count(
    tmp_path: Path, executor: SandboxExecutor
) -> None:
    module = make_module(tmp_path / "shop", _buggy(SUM_EVEN))
    result = _decide(_request(module, TaskKind.FIX), WRONG_FIX, FORGER, RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "x%2 == 0" in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 2, rejected
    assert all("failing tests pass" in r for r in rejected), rejected


def test_a_fix_that_breaks_nothing_but_fixes_nothing_is_refused(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_module(tmp_path / "shop", _buggy(SUM_EVEN))
    result = _decide(_request(module, TaskKind.FIX), WRONG_FIX, executor=executor)
    assert not result.offers_edit
    assert result.no_edit is not None
    assert "failing tests" in result.no_edit


def test_an_answer_that_does_not_compile_in_the_package_is_refused(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_module(tmp_path / "shop")
    undefined = RIGHT.replace("return total", "return total + offset")
    result = _decide(_request(module, TaskKind.IMPROVE), undefined, executor=executor)
    assert not result.offers_edit
    assert any("does not load" in r and "undefined: offset" in r for r in _rejected(result)), _rejected(result)


def test_without_a_test_that_calls_it_improve_is_refused_and_says_why(
    tmp_path: Path, executor: SandboxExecutor
) -> None:
    module = make_module(tmp_path / "shop")
    result = _decide(_request(module, TaskKind.IMPROVE, "Double"), "func Double(x int) int { return x + x }\n",
                     executor=executor)  # fmt: skip
    assert result.offers_edit  # TestDouble names it
    module = make_module(tmp_path / "bare", tests=None)
    result = _decide(_request(module, TaskKind.IMPROVE), RIGHT, executor=executor)
    assert not result.offers_edit
    assert result.no_edit is not None
    assert "no test in package example.com/shop/calc" in result.no_edit


def test_cli_ask_json_runs_go_answers_in_the_module(tmp_path: Path) -> None:
    """End to end: ``codeconductor ask --json`` on a Go file of a module, models served over a loopback
    OpenAI-compatible API (the fake: answers here must be chosen, not sampled)."""
    assert go_toolchain() is not None, "the go toolchain is not installed (scripts/setup.sh --dev installs it)"
    root = tmp_path / "shop"
    module = make_module(root, _buggy(SUM_EVEN))
    start, end = _lines(module.read_text(encoding="utf-8"), "SumEven")
    models = [
        FakeModel("good", text=f"```go\npackage calc\n\n{RIGHT}```"),
        FakeModel("bad", text=f"```go\n{WRONG_FIX}```"),
    ]
    with FaultServer(models, apis=("openai",)) as server:
        (root / "codeconductor.toml").write_text(
            f'probe_local = false\nembedded = "off"\nhistory = false\n[[endpoints]]\nurl = "{server.url}"\n',
            encoding="utf-8",
        )
        done = subprocess.run(
            [sys.executable, "-m", "codeconductor.cli", "ask", "--json", "--task", "fix", "--file", "calc/sum.go",
             "--lines", f"{start + 1}-{end}", "the even numbers are not added"],
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
    assert "x%2 == 0" in consensus["pick"], consensus
    assert not consensus["pick"].startswith("package"), consensus["pick"]
    assert consensus["executed"] is True, consensus
    assert consensus["unchecked"] is None, consensus
    assert any("run in your project" in n for n in consensus["notes"]), consensus["notes"]
    rejected = [c["rejected"] for c in consensus["clusters"] if c["rejected"]]
    assert len(rejected) == 1, rejected
    assert "failing tests" in rejected[0], rejected


def test_a_fix_for_code_that_panics_is_checked(tmp_path: Path, executor: SandboxExecutor) -> None:
    # Every test panics on the user's code (exit 2): each still counts as failing, so the oracle is usable.
    module = make_module(tmp_path / "shop", SUM_EVEN.replace("total := 0", "total := xs[len(xs)]"))
    result = _decide(_request(module, TaskKind.FIX), WRONG_FIX, RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "x%2 == 0" in result.pick
    assert result.unchecked is None, result.notes


def test_a_forged_pass_line_and_an_early_exit_are_refused(tmp_path: Path, executor: SandboxExecutor) -> None:
    # Where the file imports fmt and os, a candidate could print a PASS line and exit 0 before the test fails.
    with_imports = _buggy(SUM_EVEN).replace(
        "package calc\n",
        'package calc\n\nimport (\n\t"fmt"\n\t"os"\n)\n\nfunc Report() { fmt.Fprintln(os.Stderr, "x") }\n',
    )
    module = make_module(tmp_path / "shop", with_imports)
    forger = (
        "func SumEven(xs []int) int {\n"
        '\tfmt.Println("--- PASS: TestSumEven (0.00s)")\n'
        '\tfmt.Println("--- PASS: ExampleSumEven (0.00s)")\n'
        "\tos.Exit(0)\n"
        "\treturn 0\n"
        "}\n"
    )
    result = _decide(_request(module, TaskKind.FIX), forger, executor=executor)
    assert not result.offers_edit, result.pick
    assert any("could end its tests early" in r for r in _rejected(result)), _rejected(result)
