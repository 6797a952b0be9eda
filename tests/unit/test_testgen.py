"""Test generation: splitting a model's test module into standalone tests, comparing assertions across models,
the dual-agreement rule, and one end-to-end run (answers through the real HTTP path from the fault-injection
fake's fixed-answer "ok-*" models, generated tests run on the current code in the real sandbox)."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.testgen import (
    SplitTest,
    assertion_keys,
    generate_tests,
    import_root,
    module_name,
    select_tests,
    split_tests,
)
from codeconductor.ensemble.types import ModelInfo, ProviderKind
from codeconductor.ensemble.verify.pytest_runner import CaseResult, PytestRunner
from codeconductor.ensemble.verify.sandbox import Sandbox
from tests.support.fault_server import FaultServer

pytestmark = pytest.mark.timeout(120)

MODEL_A = """Here are tests:
```python
import pytest
from solution import add

def add(a, b):
    return a + b

def helper():
    return 3

def test_small():
    assert add(1, 2) == helper()

def test_zero():
    assert add(0,0)==0

print("done")
```"""


def test_module_name() -> None:
    assert module_name("pkg/util.py") == "pkg.util"
    assert module_name("src/pkg/util.py") == "pkg.util"
    assert module_name("pkg/__init__.py") == "pkg"
    files = {"a/b/pkg/__init__.py": "", "a/b/pkg/util.py": "", "a/plain.py": "", "src/lib/__init__.py": ""}
    assert import_root("a/b/pkg/util.py", files) == "a/b"
    assert module_name("a/b/pkg/util.py", files) == "pkg.util"
    assert (import_root("a/plain.py", files), module_name("a/plain.py", files)) == ("a", "plain")
    assert module_name("src/lib/x.py", files) == "lib.x"


def test_split_imports_the_users_function_and_drops_the_models_copy() -> None:
    code = MODEL_A.split("```python\n")[1].split("```", maxsplit=1)[0]
    tests = split_tests(code, "add", "pkg.calc", "m1")
    assert [t.name for t in tests] == ["test_small", "test_zero"]
    module = tests[0].module_text
    assert "from pkg.calc import add" in module
    assert "from solution import add" not in module
    assert "return a + b" not in module  # the model's own copy of add is gone
    assert "def helper" in module
    assert "print(" not in module
    ast.parse(module)
    assert split_tests("def test_x(:\n", "add", "m") == []


def test_assertion_keys_ignore_formatting() -> None:
    assert assertion_keys("def t():\n    assert add(0,0)==0\n") == assertion_keys(
        "def t():\n    assert add( 0, 0 ) == 0  # zero\n"
    )
    assert assertion_keys("def t():\n    assert add(1, 1) == 2\n") != assertion_keys(
        "def t():\n    assert add(1, 1) == 3\n"
    )
    raises = assertion_keys("def t():\n    with pytest.raises(TypeError):\n        add(None, 1)\n")
    assert len(raises) == 1


def _t(name: str, body: str, model: str) -> SplitTest:
    return SplitTest(name, f"def {name}():\n    {body}", ("from m import add",), model)


def test_dual_agreement_rule() -> None:
    tests = [
        _t("test_a", "assert add(1, 1) == 2", "m1"),
        _t("test_b", "assert add(1,1) == 2", "m2"),  # agrees with test_a
        _t("test_c", "assert add(2, 2) == 4", "m1"),  # passes, one model only
        _t("test_d", "assert add(2, 3) == 6", "m1"),  # fails, one model only
        _t("test_e", "assert add(2, 3) == 6", "m2"),  # same as d from another model: deduplicated into d
        _t("test_f", "assert add(5, 5) == 10", "m2"),  # cannot run
        _t("test_g", "x = add(1, 1)", "m3"),  # no assertion
    ]
    passed = CaseResult("x", "passed")
    failed = CaseResult("x", "failed", "E   assert 5 == 6")
    outcomes = [passed, passed, passed, failed, failed, CaseResult("x", "error", "ImportError"), passed]
    chosen = select_tests(tests, outcomes, code_correct=False)
    kept = {t.name for t in chosen if t.kept}
    # a (support 2, passes); d (support 2 through e, fails: kept as a likely bug); c is one model's only.
    assert kept == {"test_a", "test_d"}
    d = next(t for t in chosen if t.name == "test_d")
    assert d.models == ["m1", "m2"]
    assert "FAILS" in d.reason
    assert all(t.name != "test_e" for t in chosen)
    marked = select_tests(tests, outcomes, code_correct=True)
    assert {t.name for t in marked if t.kept} == {"test_a", "test_c", "test_d"}
    assert not next(t for t in marked if t.name == "test_f").kept
    assert not next(t for t in marked if t.name == "test_g").kept


MODEL_B = """```python
from pkg.calc import add

def test_pair():
    assert add(1, 2) == 3

def test_wrong():
    assert add(2, 2) == 5
```"""
MODEL_C = """```python
def test_pair_again():
    assert add(1,2) == 3

def test_broken():
    assert add(undefined_name, 1) == 1

def test_three():
    assert add(0, 3) == 3
```"""


async def test_generate_tests_end_to_end(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    settings = Settings.model_validate({"probe_local": False, "embedded": "off", "verify": False, "history": False})
    with FaultServer(apis=("openai",)) as fake, Sandbox() as box:
        fake.add_model("ok-tests-b", text=MODEL_B)
        fake.add_model("ok-tests-c", text=MODEL_C)
        models = [
            ModelInfo(name=n, provider=ProviderKind.OPENAI, endpoint=fake.url) for n in ("ok-tests-b", "ok-tests-c")
        ]
        async with Pipeline(settings) as pipeline:
            generate = functools.partial(pipeline.run, models=models)

            outcome = await generate_tests(
                generate, root=tmp_path, path="pkg/calc.py", function="add", runner=PytestRunner(box)
            )
            marked = await generate_tests(
                generate,
                root=tmp_path,
                path="pkg/calc.py",
                function="add",
                code_correct=True,
                runner=PytestRunner(box),
            )
    by_name = {t.name: t for t in outcome.tests}
    assert by_name["test_pair"].outcome == "passed"
    assert by_name["test_pair"].support == 2
    assert by_name["test_wrong"].outcome == "failed"
    assert by_name["test_broken"].outcome == "failed"
    # The same test from both models is one test, with both as authors.
    assert {t.name for t in outcome.tests if t.kept} == {"test_pair"}
    assert len(by_name["test_pair"].models) == 2
    assert "test_pair_again" not in by_name
    assert outcome.path == "tests/test_add_generated.py"
    assert "from pkg.calc import add" in outcome.content
    assert "def test_pair" in outcome.content
    assert "test_wrong" not in outcome.content
    ast.parse(outcome.content)
    # Marked correct: passing tests from a single model are kept too, failing ones still not.
    assert {t.name for t in marked.tests if t.kept} == {"test_pair", "test_three"}
    assert not next(t for t in outcome.tests if t.name == "test_three").kept
    assert not (tmp_path / "tests").exists()  # nothing written to the user's project
