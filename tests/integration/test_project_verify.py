"""Answers are run inside the user's project (issue 23): the real sandbox, a real package made under tmp_path with
relative imports, module globals, a class, tests, and a dependency ``pip install --no-index``-ed into its own
virtual environment (:mod:`tests.support.projects`). The user's code is the oracle on the calls its tests make,
and the tests themselves must keep passing."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble._targets import function_at
from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.consensus.gate import UNCHECKED_IN_PROJECT
from codeconductor.ensemble.context import build_context, parse_blocks
from codeconductor.ensemble.pipeline import Pipeline
from codeconductor.ensemble.project import find_root, module_name, project_for, resolve_interpreter
from codeconductor.ensemble.settings import Settings
from codeconductor.ensemble.types import AnswerStatus, ModelAnswer, ModelInfo, ProviderKind, Request, TaskKind
from codeconductor.ensemble.verify.observe import SandboxExecutor
from tests.support.fault_server import FakeModel, FaultServer
from tests.support.projects import PRICING, make_shop

TOTAL_RIGHT = """def total(items):
    return tinymoney.round2(sum(scale(price) * qty for price, qty in items) * (1 + TAX))
"""
TOTAL_MUTANT = """def total(items):
    s = 0
    for price, qty in items:
        s += scale(price) + qty
    return tinymoney.round2(s * (1 + TAX))
"""
NORMALISE_RIGHT = """def normalise(names):
    out = []
    for name in (n.strip().lower() for n in names):
        if name and name not in out:
            out.append(name)
    return out
"""
NORMALISE_MUTANT = """def normalise(names):
    out = []
    for name in names:
        name = name.strip().upper()
        if name and name not in out:
            out.append(name)
    return out
"""
HALVE_RIGHT = """def halve_all(values):
    values[:] = [v // 2 for v in values]
"""
HALVE_COPY = """def halve_all(values):
    return [v // 2 for v in values]
"""
ADD_RIGHT = """    def add(self, price, qty=1):
        if not qty > 0:
            raise ValueError("qty")
        self.items += [(price, qty)]
        return len(self.items)
"""
ADD_MUTANT = """    def add(self, price, qty=1):
        if qty < 0:
            raise ValueError("qty")
        self.items.append((price, qty))
        return len(self.items)
"""
ADD_FORGETS = """    def add(self, price, qty=1):
        if qty <= 0:
            raise ValueError("qty")
        return len(self.items) + 1
"""


def _answer(name: str, text: str) -> ModelAnswer:
    model = ModelInfo(name=name, provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
    return ModelAnswer(model=model, status=AnswerStatus.ANSWERED, text=f"```python\n{text}```")


def _request(module: Path, function: str, task: TaskKind, text: str | None = None) -> Request:
    text = module.read_text(encoding="utf-8") if text is None else text
    blocks = parse_blocks(text, "python")
    *_, leaf = function.split(".")
    line = next(b.start for b in blocks if b.name == leaf and b.kind == "function")
    found = function_at(blocks, line, "python")
    assert found is not None
    assert found.name == function
    context = build_context(text, found.start, found.end, path=str(module))
    context.project = project_for(module, text)
    return Request(task=task, context=context)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_shop(tmp_path_factory.mktemp("shop") / "shop-project")


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    runner = SandboxExecutor()
    yield runner
    runner.close()


def _decide(request: Request, *texts: str, executor: SandboxExecutor) -> object:
    answers = [_answer(f"m{i}", t) for i, t in enumerate(texts)]
    return asyncio.run(decide(request, answers, executor=executor))


def test_the_project_is_found_with_its_own_interpreter(shop: Path) -> None:
    root = shop.parent.parent
    assert find_root(shop) == root
    assert module_name(root, shop) == ("shop.pricing", root)
    python, source = resolve_interpreter(root, environ={})
    assert (python, source) == (str(root / ".venv" / "bin" / "python"), ".venv")
    assert resolve_interpreter(root, editor="/usr/bin/python3", setting="x", environ={}) == (
        "/usr/bin/python3",
        "editor",
    )


def test_relative_imports_and_a_dependency_of_the_projects_venv(shop: Path, executor: SandboxExecutor) -> None:
    result = _decide(_request(shop, "total", TaskKind.IMPROVE), TOTAL_MUTANT, TOTAL_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)  # type: ignore[attr-defined]
    assert "sum(" in result.pick  # type: ignore[attr-defined]
    rejected = [c.rejected for c in result.clusters if c.rejected]  # type: ignore[attr-defined]
    assert len(rejected) == 1, rejected
    assert "tests" in rejected[0], rejected
    assert any("run in your project" in n for n in result.notes)  # type: ignore[attr-defined]


def test_without_examples_recorded_calls_refuse_a_mutant_the_tests_miss(shop: Path, executor: SandboxExecutor) -> None:
    result = _decide(
        _request(shop, "normalise", TaskKind.IMPROVE), NORMALISE_MUTANT, NORMALISE_RIGHT, executor=executor
    )
    assert result.offers_edit, (result.no_edit, result.notes)  # type: ignore[attr-defined]
    assert "(n.strip().lower() for n in names)" in result.pick  # type: ignore[attr-defined]
    rejected = [c.rejected for c in result.clusters if c.rejected]  # type: ignore[attr-defined]
    # The weak test passes on both: only the recorded calls tell them apart.
    assert len(rejected) == 1, rejected
    assert rejected[0].startswith("does something else than your code"), rejected


def test_in_place_changes_to_arguments_are_behaviour(shop: Path, executor: SandboxExecutor) -> None:
    result = _decide(_request(shop, "halve_all", TaskKind.IMPROVE), HALVE_COPY, HALVE_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)  # type: ignore[attr-defined]
    assert "values[:]" in result.pick  # type: ignore[attr-defined]


def test_a_method_is_run_on_its_class_with_self_recorded(shop: Path, executor: SandboxExecutor) -> None:
    request = _request(shop, "Cart.add", TaskKind.IMPROVE)
    result = _decide(request, ADD_MUTANT, ADD_FORGETS, ADD_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)  # type: ignore[attr-defined]
    assert "self.items += " in result.pick  # type: ignore[attr-defined]
    # The module's imports stay out of a method's edit: in the class body they would shadow its members.
    assert "import" not in result.pick, result.pick  # type: ignore[attr-defined]
    assert sum(bool(c.rejected) for c in result.clusters) == 2  # type: ignore[attr-defined]


def test_a_fix_is_judged_by_the_failing_test(shop: Path, executor: SandboxExecutor) -> None:
    # The user's buffer (unsaved) holds the bug; the file on disk is never read for the module's text.
    buggy = PRICING.replace("s += scale(price) * qty", "s += scale(price) + qty")
    wrong = TOTAL_MUTANT.replace("scale(price) + qty", "scale(price) * qty * 2")
    request = _request(shop, "total", TaskKind.FIX, text=buggy)
    result = _decide(request, wrong, TOTAL_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)  # type: ignore[attr-defined]
    assert "sum(" in result.pick  # type: ignore[attr-defined]
    rejected = [c.rejected for c in result.clusters if c.rejected]  # type: ignore[attr-defined]
    assert len(rejected) == 1, rejected
    assert shop.read_text(encoding="utf-8") == PRICING  # nothing written to the user's files


def test_an_interpreter_without_the_dependency_is_named_with_the_fix(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_shop(tmp_path / "bare", with_dependency=False)
    result = _decide(_request(module, "total", TaskKind.IMPROVE), TOTAL_RIGHT, TOTAL_MUTANT, executor=executor)
    assert not result.offers_edit  # type: ignore[attr-defined]
    no_edit = result.no_edit or ""  # type: ignore[attr-defined]
    assert "your module imports `tinymoney`, which the interpreter at .venv/bin/python does not have" in no_edit
    assert "-m pip install tinymoney" in no_edit


def test_a_second_request_gives_the_same_verdict_from_the_caches(shop: Path) -> None:
    """The original's recording and run are cached per content; the times are printed for the report (-s)
    (speed targets live in bench/, not here)."""
    fresh = SandboxExecutor()
    try:
        started = time.perf_counter()
        first = _decide(_request(shop, "total", TaskKind.IMPROVE), TOTAL_MUTANT, TOTAL_RIGHT, executor=fresh)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        again = _decide(_request(shop, "total", TaskKind.IMPROVE), TOTAL_RIGHT, TOTAL_MUTANT, executor=fresh)
        warm = time.perf_counter() - started
    finally:
        fresh.close()
    print(f"\nverification time per request: first {cold:.2f} s, then {warm:.2f} s")
    assert first.pick == again.pick  # type: ignore[attr-defined]
    assert first.offers_edit  # type: ignore[attr-defined]


def test_cli_ask_in_a_project_runs_the_answers_there(shop: Path) -> None:
    """End to end: ``codeconductor ask --json`` from inside the project, models served over a loopback
    OpenAI-compatible API (the fake: model answers here must be chosen, not sampled)."""
    root = shop.parent.parent
    text = shop.read_text(encoding="utf-8")
    found = function_at(parse_blocks(text, "python"), text.splitlines().index("def total(items):"), "python")
    assert found is not None
    models = [
        FakeModel("good", text=f"```python\n{TOTAL_RIGHT}```"),
        FakeModel("bad", text=f"```python\n{TOTAL_MUTANT}```"),
    ]
    with FaultServer(models, apis=("openai",)) as server:
        (root / "codeconductor.toml").write_text(
            f'probe_local = false\nembedded = "off"\nhistory = false\n[[endpoints]]\nurl = "{server.url}"\n',
            encoding="utf-8",
        )
        try:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "codeconductor.cli",
                    "ask",
                    "--json",
                    "--task",
                    "improve",
                    "--file",
                    "shop/pricing.py",
                    "--lines",
                    f"{found.start + 1}-{found.end}",
                    "make it shorter",
                ],
                cwd=root,
                env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        finally:
            (root / "codeconductor.toml").unlink()
    assert done.returncode == 0, done.stderr
    consensus = json.loads(done.stdout)["consensus"]
    assert "sum(" in consensus["pick"], consensus
    assert any("run in your project" in n for n in consensus["notes"]), consensus["notes"]
    rejected = [c["rejected"] for c in consensus["clusters"] if c["rejected"]]
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0], rejected


def test_a_syntax_error_in_the_module_is_named(shop: Path, executor: SandboxExecutor) -> None:
    broken = PRICING.replace("def halve_all(values):", "def halve_all(values)")  # the buffer, being edited
    result = _decide(_request(shop, "total", TaskKind.IMPROVE, text=broken), TOTAL_RIGHT, executor=executor)
    assert not result.offers_edit  # type: ignore[attr-defined]
    line = broken.splitlines().index("def halve_all(values)") + 1
    assert f"your module has a syntax error at line {line}" in (result.no_edit or "")  # type: ignore[attr-defined]


def test_a_method_no_test_calls_says_so(shop: Path, executor: SandboxExecutor) -> None:
    answer = "    def clear(self):\n        self.items.clear()\n"
    result = _decide(_request(shop, "Cart.clear", TaskKind.IMPROVE), answer, executor=executor)
    assert not result.offers_edit  # type: ignore[attr-defined]
    assert "no test in your project calls Cart.clear" in (result.no_edit or "")  # type: ignore[attr-defined]


def test_the_pipeline_api_finds_the_project_from_the_request_path(shop: Path) -> None:
    """A caller of the Pipeline API builds a request from the file (no project given): the project is found."""
    text = shop.read_text(encoding="utf-8")
    request = _request(shop, "total", TaskKind.IMPROVE)
    request.context.project = None
    models = [
        FakeModel("api-good", text=f"```python\n{TOTAL_RIGHT}```"),
        FakeModel("api-bad", text=f"```python\n{TOTAL_MUTANT}```"),
    ]

    async def run(url: str) -> object:
        settings = Settings.model_validate(
            {"endpoints": [{"url": url, "kind": "openai"}], "probe_local": False, "embedded": "off", "history": False}
        )
        async with Pipeline(settings) as pipeline:
            return await pipeline.run(request)

    with FaultServer(models, apis=("openai",)) as server:
        result = asyncio.run(run(server.url))
    consensus = result.consensus  # type: ignore[attr-defined]
    assert "sum(" in consensus.pick, consensus
    assert any("run in your project" in n for n in consensus.notes), consensus.notes
    assert shop.read_text(encoding="utf-8") == text


def test_a_helper_no_test_names_is_reached_through_the_package_tests(shop: Path, executor: SandboxExecutor) -> None:
    util = shop.parent / "util.py"
    right = "def scale(x):\n    return RATE * x\n"
    mutant = "def scale(x):\n    return x + RATE\n"
    result = _decide(_request(util, "scale", TaskKind.IMPROVE), mutant, right, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)  # type: ignore[attr-defined]
    assert "RATE * x" in result.pick  # type: ignore[attr-defined]
    assert any("calls recorded from them" in n for n in result.notes)  # type: ignore[attr-defined]


SPREAD_RIGHT = """def spread(values):
    return max(values) - min(values) if len(values) > 1 else 0
"""
SPREAD_MUTANT = """def spread(values):
    if len(values) < 2:
        return 0
    return abs(values[-1] - values[0])
"""


def test_unittest_tests_calling_through_a_package_alias_are_found_and_run(
    shop: Path, executor: SandboxExecutor
) -> None:
    """``class SpreadTests(TestCase)`` calls ``sh.spread`` (``import shop as sh``; the package re-exports it):
    the tests are found, the calls they make recorded, and they judge the answers."""
    stats = shop.parent / "stats.py"
    result = _decide(_request(stats, "spread", TaskKind.IMPROVE), SPREAD_MUTANT, SPREAD_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)  # type: ignore[attr-defined]
    assert "if len(values) > 1 else 0" in result.pick  # type: ignore[attr-defined]
    rejected = [c.rejected for c in result.clusters if c.rejected]  # type: ignore[attr-defined]
    assert len(rejected) == 1, rejected
    assert "of 2 of your tests (test_spread)" in rejected[0], rejected
    notes = " ".join(result.notes)  # type: ignore[attr-defined]
    assert "2 of your tests (2 passing on your code)" in notes, notes
    assert "calls recorded from them" in notes, notes


def test_an_improve_no_test_calls_is_not_offered_as_checked(shop: Path, executor: SandboxExecutor) -> None:
    """``double`` runs (generated inputs), but no test of the project calls it: a rewrite that agrees with it on
    generated inputs is no checked rewrite, so it is not offered, and the user is told why and what to do."""
    stats = shop.parent / "stats.py"
    right = "def double(x):\n    return x + x\n"
    result = _decide(_request(stats, "double", TaskKind.IMPROVE), right, executor=executor)
    assert not result.offers_edit, result.pick  # type: ignore[attr-defined]
    no_edit = result.no_edit or ""  # type: ignore[attr-defined]
    assert no_edit.startswith(f"no answer {UNCHECKED_IN_PROJECT}: no test of yours calls double"), no_edit
    assert "add a test that uses it" in no_edit, no_edit


def test_a_method_docstring_is_offered_on_the_methods_own_code(shop: Path, executor: SandboxExecutor) -> None:
    """``Cart.add`` is a method: the docstring gate finds it, refuses an answer that changes the code, and
    offers the user's own method with the new docstring, at the method's indentation; nothing runs."""
    request = _request(shop, "Cart.add", TaskKind.DOCSTRING)
    doc = '        """Add ``qty`` items at ``price``; the number of lines in the cart."""\n'
    documented = ADD_MUTANT.replace("):\n", "):\n" + doc, 1)
    right = request.context.selection.replace("):\n", "):\n" + doc, 1) + "\n"
    result = _decide(request, documented, right, executor=executor)
    assert result.offers_edit, (result.no_edit, result.clusters)  # type: ignore[attr-defined]
    pick = result.pick  # type: ignore[attr-defined]
    assert pick.startswith('    def add(self, price, qty=1):\n        """Add ``qty`` items'), pick
    assert pick.replace(doc, "") == request.context.selection, pick
    rejected = [c.rejected for c in result.clusters if c.rejected]  # type: ignore[attr-defined]
    assert rejected == ["changes your code, not only its docstring"], rejected
    assert result.unchecked is None  # type: ignore[attr-defined]  # proven by the syntax tree
    assert not result.executed  # type: ignore[attr-defined]
