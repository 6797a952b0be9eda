"""The pure parts of running compiled languages in their projects (:mod:`codeconductor.ensemble.verify._project_base`,
:mod:`codeconductor.ensemble.verify.rust_project`, :func:`codeconductor.ensemble.project.rust_project_for`): which tests are the
oracle, how the signed report is read (a line the code under test wrote never counts), and what makes a candidate
refused unrun. The sandboxed runs are in tests/integration/test_rust_project.py."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from codeconductor.ensemble.project import java_project_for, rust_project_for
from codeconductor.ensemble.verify._project_base import (
    HarnessReport,
    behaviour_from_report,
    bypass_refusal,
    verdict,
)
from codeconductor.ensemble.verify.project import signed_records as _signed
from codeconductor.ensemble.verify.rust_project import BYPASS, cargo_problem, doc_examples, rust_tests_of
from codeconductor.ensemble.verify.sandbox import ScriptOutcome

KEY = b"k" * 32


def _line(record: dict[str, object], key: bytes = KEY) -> str:
    text = json.dumps(record, sort_keys=True, separators=(",", ":"))
    return f"{text}\t{hmac.new(key, text.encode(), hashlib.sha256).hexdigest()}"


def test_only_lines_signed_with_the_jobs_key_count() -> None:
    stdout = "\n".join(
        [
            _line({"test": "a", "rc": 0}),
            _line({"test": "b", "rc": 0}, key=b"x" * 32),  # forged: another key
            '{"test":"c","rc":0}\t' + "0" * 64,  # forged: no valid MAC
            '{"test":"d","rc":0}',
        ]
    )
    assert [r["test"] for r in _signed(stdout, KEY)] == ["a"]


def _report(*records: dict[str, object], timed_out: bool = False) -> HarnessReport:
    stdout = "\n".join(_line(r) for r in records)
    return HarnessReport(_signed(stdout, KEY), ScriptOutcome(0, stdout, "", timed_out, True, 0.1))


def test_a_test_reported_twice_or_never_is_an_error() -> None:
    ok = {"ok": 1, "FAILED": 0, "ignored": 0}
    report = _report(
        {"test": "t1", "rc": 0, "counts": ok},
        {"test": "t2", "rc": 0, "counts": ok},
        {"test": "t2", "rc": 0, "counts": ok},  # a replayed line
        {"done": True},
    )
    behaviour = behaviour_from_report(report, ("t1", "t2", "t3"), shown_path=("/tmp/w/a.rs", "a.rs"))
    assert behaviour.tests == (("t1", "passed"), ("t2", "error"), ("t3", "error"))


def test_a_failed_build_is_a_load_error_naming_the_users_file() -> None:
    report = _report({"build": 101, "errors": ["cannot find value `x` in /tmp/w/src/lib.rs"]})
    behaviour = behaviour_from_report(report, ("t1",), shown_path=("/tmp/w/src/lib.rs", "lib.rs"))
    assert behaviour.keys == ("!load:cannot find value `x` in lib.rs",)


def test_a_verdict_needs_the_exit_status_and_exactly_one_result_line() -> None:
    assert verdict(0, 1, 0, 0) == "passed"
    assert verdict(101, 0, 1, 0) == "failed"
    assert verdict(0, 0, 0, 1) == "skipped"
    assert verdict(0, 2, 0, 0) == "error"  # a forged ok line next to the real one
    assert verdict(101, 1, 1, 0) == "error"
    assert verdict(0, 0, 0, 0) == "error"  # --exact matched nothing, or the process ended before reporting
    assert verdict(2, 0, 1, 0) == "failed"  # a Go test that panicked: testing reports it failed
    assert verdict(2, 0, 0, 0) == "error"  # timed out


def test_ways_to_end_a_test_early_are_refused_only_when_the_answer_adds_them() -> None:
    original = "fn f() -> i32 { 1 }\n"
    assert bypass_refusal("fn f() -> i32 { std::process::exit(0) }\n", original, BYPASS) is not None
    assert bypass_refusal("fn f() -> i32 { unsafe { g() } }\n", original, BYPASS) is not None
    assert bypass_refusal("fn f() -> i32 { 2 }\n", original, BYPASS) is None
    uses = "fn f() -> i32 { unsafe { g() } }\n"
    assert bypass_refusal(uses, uses, BYPASS) is None  # the user's own code uses it: no more than before


CRATE_LIB = """mod util;

/// Sums.
///
/// ```
/// assert_eq!(c::sum(&[1]), 1);
/// ```
///
/// ```text
/// not a test
/// ```
pub fn sum(xs: &[i32]) -> i32 { xs.iter().sum() }

#[cfg(test)]
mod tests {
    #[test]
    fn sums() { assert_eq!(super::sum(&[1, 2]), 3); }

    #[test]
    fn other() {}

    fn helper() { super::sum(&[]); }
}
"""


def test_the_tests_that_name_the_function_are_its_oracle(tmp_path: Path) -> None:
    (tmp_path / "src" / "util").mkdir(parents=True)
    (tmp_path / "tests").mkdir()
    (tmp_path / "src" / "lib.rs").write_text(CRATE_LIB, encoding="utf-8")
    (tmp_path / "src" / "util" / "mod.rs").write_text(
        "#[cfg(test)]\nmod t {\n    #[test]\n    fn deep() { crate::sum(&[]); }\n}\n", encoding="utf-8"
    )
    (tmp_path / "tests" / "it.rs").write_text(
        "#[test]\nfn it() { c::sum(&[]); }\n\n#[test]\nfn through() { c::total(&[]); }\n", encoding="utf-8"
    )
    (tmp_path / "src" / "more.rs").write_text("pub fn total(xs: &[i32]) -> i32 { crate::sum(xs) }\n", encoding="utf-8")
    tests, total = rust_tests_of(tmp_path, "sum", has_lib=True, package_name="c")
    # helper is no test; other never calls sum; through calls it through total (after those naming it).
    assert [(t.file, t.target, t.name) for t in tests] == [
        ("src/lib.rs", "lib", "tests::sums"),
        ("src/util/mod.rs", "lib", "util::t::deep"),
        ("tests/it.rs", "test:it", "it"),
        ("tests/it.rs", "test:it", "through"),
    ]
    assert total == 5
    examples = doc_examples(
        CRATE_LIB, CRATE_LIB.splitlines().index("pub fn sum(xs: &[i32]) -> i32 { xs.iter().sum() }")
    )
    assert list(examples) == [5]  # the fence's line, as rustdoc names the test; ```text is no test
    edited = CRATE_LIB.replace("&[1]), 1", "&[1]), 2")
    assert doc_examples(edited, 11) != examples  # keyed by the example's text


def test_a_crate_that_needs_a_registry_says_what_to_do(tmp_path: Path) -> None:
    manifest = '[package]\nname = "c"\nversion = "0.1.0"\n\n[dependencies]\n'
    (tmp_path / "Cargo.toml").write_text(manifest + 'serde = "1"\nlocal = { path = "local" }\n', encoding="utf-8")
    problem = cargo_problem(tmp_path, tmp_path)
    assert problem is not None
    assert "serde" in problem
    assert "cargo vendor" in problem
    (tmp_path / ".cargo").mkdir()
    (tmp_path / ".cargo" / "config.toml").write_text(
        '[source.crates-io]\nreplace-with = "vendored"\n\n[source.vendored]\ndirectory = "vendor"\n', encoding="utf-8"
    )
    assert cargo_problem(tmp_path, tmp_path) is None
    (tmp_path / "Cargo.toml").write_text(manifest + 'far = { path = "../far" }\n', encoding="utf-8")
    assert "outside" in (cargo_problem(tmp_path, tmp_path) or "")


def test_a_rust_file_of_a_package_is_a_project_in_its_workspace(tmp_path: Path) -> None:
    (tmp_path / "Cargo.toml").write_text('[workspace]\nmembers = ["a"]\n', encoding="utf-8")
    (tmp_path / "a" / "src").mkdir(parents=True)
    (tmp_path / "a" / "Cargo.toml").write_text('[package]\nname = "a"\nversion = "0.1.0"\n', encoding="utf-8")
    source = tmp_path / "a" / "src" / "lib.rs"
    source.write_text("pub fn f() {}\n", encoding="utf-8")
    project = rust_project_for(source, "pub fn f() {}\n")
    assert project is not None
    assert (project.root, project.import_root, project.module) == (str(tmp_path), str(tmp_path / "a"), "a")
    alone = rust_project_for(source, "", root=tmp_path / "a")
    assert alone is not None
    assert alone.root == str(tmp_path / "a")
    assert rust_project_for(tmp_path / "x.rs", "") is None


def test_a_java_file_is_found_by_its_package(tmp_path: Path) -> None:
    maven = tmp_path / "app" / "src" / "main" / "java" / "com" / "x"
    maven.mkdir(parents=True)
    source = maven / "A.java"
    text = "package com.x;\n\nclass A {}\n"
    project = java_project_for(source, text)
    assert project is not None
    assert (project.root, project.import_root, project.module) == (
        str(tmp_path / "app"),
        str(tmp_path / "app" / "src" / "main" / "java"),
        "com.x.A",
    )
    (tmp_path / "app" / "pom.xml").write_text("<project/>", encoding="utf-8")
    assert (java_project_for(source, text) or project).root == str(tmp_path / "app")
    plain = tmp_path / "java"  # a folder named like a layout part is not skipped on its own
    plain.mkdir()
    (plain / "B.java").write_text("class B {}\n", encoding="utf-8")
    found = java_project_for(plain / "B.java", "class B {}\n")
    assert found is not None
    assert (found.root, found.module) == (str(plain), "B")
    assert java_project_for(source, "package com.y;\n") is None  # the folders do not match the package
