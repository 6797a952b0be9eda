"""The pure parts of running JavaScript in its project (:mod:`codeconductor.ensemble.verify.js_project`,
:func:`codeconductor.ensemble.project.js_project_for`, the JavaScript language layer): which test files are the oracle, where
the project is, and that an answer keeps the ``export`` its function had. Sandboxed runs:
tests/integration/test_js_project.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codeconductor.ensemble.languages.javascript import JAVASCRIPT
from codeconductor.ensemble.project import js_project_for
from codeconductor.ensemble.verify.js_project import (
    _canonical,
    _found,
    _rebindable,
    expose_snippet,
    js_test_files,
    read_report_lines,
    record_snippet,
)


def test_node_test_files_that_name_the_function_are_its_oracle(tmp_path: Path) -> None:
    files = {
        "test/sum.test.js": 'import { test } from "node:test";\nimport { sumEven } from "../sum.js";\n',
        "test/other.test.js": 'const test = require("node:test");\nconst { product } = require("../p");\n',
        "sum.spec.js": 'const { sumEven } = require("./sum");\ndescribe("x", () => it("y", () => sumEven([])));\n',
        "node_modules/dep/test/sum.test.js": 'require("node:test"); sumEven();\n',
        "src/sum.js": "export function sumEven(xs) { return 0; }\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    node_tests, others = js_test_files(tmp_path, "sumEven")
    assert node_tests == ["test/sum.test.js"]
    assert others == ["sum.spec.js"]  # a Jest/Vitest file: run by the project's runner when it has one
    assert js_test_files(tmp_path, "sumEve") == ([], [])


def test_the_project_is_the_nearest_package_json(tmp_path: Path) -> None:
    (tmp_path / "app" / "lib").mkdir(parents=True)
    (tmp_path / "app" / "package.json").write_text("{}", encoding="utf-8")
    module = tmp_path / "app" / "lib" / "a.mjs"
    module.write_text("export const a = 1;\n", encoding="utf-8")
    project = js_project_for(module, "export const a = 1;\n")
    assert project is not None
    assert (project.root, project.module, project.language) == (str(tmp_path / "app"), "lib/a.mjs", "javascript")
    assert js_project_for(module, "", root=tmp_path / "app" / "lib") is None
    typescript = js_project_for(tmp_path / "app" / "lib" / "b.ts", "")
    assert typescript is not None
    assert typescript.language == "typescript"


def test_an_answer_keeps_the_export_of_the_users_function() -> None:
    js = JAVASCRIPT
    answer = "```javascript\nfunction f(x) {\n  return x + 1;\n}\n```"
    kept = js.extract(answer, context="export function f(x) {\n  return x;\n}\n")
    assert kept.code.startswith("export function f(x)")
    assert js.runnable(kept.code).startswith("function f(x)")  # run on its own, as a script
    plain = js.extract(answer, context="function f(x) {\n  return x;\n}\n")
    assert plain.code.startswith("function f(x)")


def test_report_lines_give_one_verdict_per_test_and_ignore_the_rest() -> None:
    lines = [
        '["/p/test/a.test.js", "suite > adds", "passed"]',
        '["/p/test/a.test.js", "suite > rounds", "failed"]',
        '["/p/test/a.test.js", "later", "pending"]',
        '["/p/test/a.test.js", "twice", "passed"]',
        '["/p/test/a.test.js", "twice", "passed"]',
        '{"not": "a row"}',
        "[" * 10000,
        '["/elsewhere/b.test.js", "x", "passed"]',
    ]
    assert read_report_lines(lines, "/p") == {
        "test/a.test.js::suite > adds": "passed",
        "test/a.test.js::suite > rounds": "failed",
        "test/a.test.js::later": "skipped",
        "test/a.test.js::twice": "error",
        "/elsewhere/b.test.js::x": "passed",
    }


def test_the_recorder_wraps_the_function_and_const_becomes_let_only_for_recording() -> None:
    text = "import x from 'y';\nexport const f = (a) => a + 1;\nconst g = 1;\n"
    assert _rebindable(text, 1, 2, "f") == "import x from 'y';\nexport let f = (a) => a + 1;\nconst g = 1;\n"
    assert _rebindable(text, 2, 3, "f") == text  # outside the selection: untouched
    line = record_snippet("f", "/tmp/cc_rec.jsonl", max_calls=7, max_chars=99)
    assert line.startswith("\n// @ts-ignore\n;(function(){")
    assert line.count("\n") == 3
    assert "__cc_n<7" in line
    assert "t.length<=99" in line
    assert '"/tmp/cc_rec.jsonl"' in line
    # Its own names never shadow the function's (a function named f, w, n or fs is wrapped all the same).
    assert "var __cc_f=f;" in line
    assert ";f=__cc_w;" in line
    assert "var f" not in line
    assert expose_snippet("f").count("\n") == 3
    assert "globalThis.__ccTarget=f" in expose_snippet("f")


def test_replayed_values_are_compared_as_canonical_json() -> None:
    assert _canonical('=[1, {"b": 2, "a": [1.5]}]') == _canonical('=[1,{"a":[1.5],"b":2}]')
    assert _canonical("!TypeError") == "!TypeError"
    assert _canonical('=["x...#9000') == '=["x...#9000'  # cut at its limit: compared as text


def test_a_method_selected_in_its_class_is_code_and_prose_is_not() -> None:
    from codeconductor.ensemble.languages import language_for

    method = "  total(items: number[]): number {\n    return items.length;\n  }\n"
    for language in ("javascript", "typescript"):
        lang = language_for(language)
        code = method if language == "typescript" else method.replace(": number[]): number", ")")
        assert lang.parses(code)
        assert lang.is_code(code)
        assert [(f.name, f.start_line, f.end_line) for f in lang.functions(code)] == [("total", 0, 3)]
        extracted = lang.extract(f"Here:\n```{language}\n{code}```\n", context=code)
        assert extracted.parseable
        assert extracted.code.startswith("total(items")
    # Words a class body would take as fields are not methods: still not code.
    assert not language_for("javascript").is_code("Sure thing\nhere it is\n")
    assert JAVASCRIPT._member("x = 1;\ny = 2;\n") is None  # fields are no methods


def test_signed_records_become_lines_and_a_runner_killed_by_a_signal_reports_nothing() -> None:
    records: list[dict[str, Any]] = [
        {"step": "rv", "index": 0, "rc": 0, "timed_out": False, "lines": ["0 =1"]},
        {"step": "tap", "index": 0, "rc": 1, "timed_out": False, "lines": ["ok 1 - a", "not ok 2 - b"]},
        {"step": "tap", "index": 1, "rc": -9, "timed_out": False, "lines": ["ok 1 - forged"]},  # its runner killed
        {"step": "tap", "index": 2, "rc": -9, "timed_out": True, "lines": ["ok 1 - before the limit"]},
        {"step": "tap", "index": 3, "rc": -31, "timed_out": False, "lines": ["ok 1 - x"]},  # seccomp: SIGSYS
        {"step": "ev", "lines": ["net"]},
        {"done": True},
    ]
    found = _found(records)
    assert found["rv"] == ["0 =1"]
    assert found["tap"] == ["0 ok 1 - a", "0 not ok 2 - b", "2 ok 1 - before the limit"]
    assert found["rc"] == ["0", "1", "137", "124", "159"]  # as a shell gives them: 159 is SIGSYS
    assert found["ev"] == ["net"]
    assert "done" in found
    # Vitest: the report read after a runner that was killed is not read either; after one that ended, it is.
    killed = _found(
        [{"step": "run", "rc": -9, "lines": []}, {"step": "report", "rc": 0, "lines": ['["f","t","passed"]']}]
    )
    assert killed.get("t", []) == []
    assert killed["rc"] == ["137"]
    ended = _found(
        [{"step": "run", "rc": 1, "lines": []}, {"step": "report", "rc": 0, "lines": ['["f","t","failed"]']}]
    )
    assert ended["t"] == ['["f","t","failed"]']
    assert ended["rc"] == ["1"]
