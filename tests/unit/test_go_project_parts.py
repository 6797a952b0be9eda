"""The pure parts of running Go in its module (:mod:`codeconductor.ensemble.verify.go_project`, :func:`codeconductor.ensemble.project.
go_project_for`, the Go language layer): which tests are the oracle, and what the result says about Go being executed
(how a test's verdict is read from the signed report: tests/unit/test_compiled_project_parts.py). The sandboxed runs are in tests/integration/test_go_project.py."""

from __future__ import annotations

from pathlib import Path

from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.project import go_project_for, runs_in_project
from codeconductor.ensemble.verify.go_project import go_tests_of

TESTS = """package calc

import "testing"

func TestSum(t *testing.T) {
	for _, c := range []struct{ in, want int }{{1, 1}} {
		if Sum(c.in) != c.want {
			t.Fail()
		}
	}
}

func TestOther(t *testing.T) {}

func ExampleSum() {
	Sum(1)
	// Output: 1
}

func ExampleSum_noOutput() {
	Sum(2)
}

func BenchmarkSum(b *testing.B) { Sum(1) }
"""


def test_the_tests_that_name_the_function_are_its_oracle(tmp_path: Path) -> None:
    (tmp_path / "calc_test.go").write_text(TESTS, encoding="utf-8")
    tests, total = go_tests_of(tmp_path, "Sum")
    # An Example without an output comment is compiled, never run; a benchmark is no test.
    assert [t.name for t in tests] == ["TestSum", "ExampleSum"]
    assert total == 3
    assert go_tests_of(tmp_path, "Missing") == ([], 3)


def test_a_go_file_of_a_module_is_a_project(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/m // the module\n\ngo 1.19\n", encoding="utf-8")
    (tmp_path / "pkg").mkdir()
    source = tmp_path / "pkg" / "a.go"
    source.write_text("package pkg\n", encoding="utf-8")
    project = go_project_for(source, "package pkg\n")
    assert project is not None
    assert (project.module, project.import_root, project.language) == ("example.com/m/pkg", str(source.parent), "go")
    assert go_project_for(source, "", root=tmp_path / "pkg") is None  # go.mod outside the root given
    assert go_project_for(tmp_path / "pkg" / "a_test.go", "") is None
    lone = tmp_path.parent / f"{tmp_path.name}-lone"
    lone.mkdir()
    (lone / "b.go").write_text("package b\n", encoding="utf-8")
    assert go_project_for(lone / "b.go", "package b\n") is None


def test_the_result_says_how_go_runs() -> None:
    go = language_for("go")
    assert not go.can_execute  # a Go function on its own is never run
    assert runs_in_project("go") is go.runs_in_project
    assert "go test" in go.runtime_note
    assert runs_in_project("python")
    assert runs_in_project("rust") is language_for("rust").runs_in_project


def test_an_answer_repeating_the_package_clause_stands_in_for_the_function() -> None:
    go = language_for("go")
    answer = "```go\npackage calc\n\nfunc Sum(x int) int {\n\treturn x\n}\n```"
    assert go.extract(answer, context="func Sum(x int) int {\n\treturn 0\n}\n").code.startswith("func Sum")
    whole = "package calc\n\nfunc Sum(x int) int {\n\treturn 0\n}\n"
    assert go.extract(answer, context=whole).code.startswith("package calc")


def test_the_tests_of_a_caller_count_after_the_functions_own(tmp_path: Path) -> None:
    (tmp_path / "calc.go").write_text(
        "package calc\n\nfunc Sum(x int) int { return x }\n\nfunc Total(x int) int { return Sum(x) + 1 }\n",
        encoding="utf-8",
    )
    (tmp_path / "calc_test.go").write_text(
        'package calc\n\nimport "testing"\n\nfunc TestTotal(t *testing.T) { Total(1) }\n\n'
        "func TestSum(t *testing.T) { Sum(1) }\n\nfunc TestNothing(t *testing.T) {}\n",
        encoding="utf-8",
    )
    tests, total = go_tests_of(tmp_path, "Sum")
    assert [t.name for t in tests] == ["TestSum", "TestTotal"]
    assert total == 3
