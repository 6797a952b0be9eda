"""The pure parts of ``bench/realcode.py``: the mutant and rewrite generators (``bench/mutants.py``), the stripping
of docstring examples, and the signals read from a Result. No library is downloaded, nothing is run but the
small functions below (to check that a rewrite keeps what they return)."""

from __future__ import annotations

import ast
import random
import textwrap
from typing import Any

import pytest

from bench.mutants import (
    DOC_LINE,
    add_doc_line,
    code_tokens,
    explain_return,
    mirror_compare,
    mutants,
    reformat,
    rename_locals,
    rewrites,
    strip_examples,
)
from bench.realcode import code_ran, not_checked, offers_edit, percentile, reliability_bins
from codeconductor.ensemble.types import ConsensusResult

FUNCTIONS = {
    "clamp": '''
        def clamp(value, low=0, high=10):
            """Keep value between low and high.

            >>> clamp(12)
            10
            >>> clamp(-3, low=-1)
            -1
            """
            result = value
            if result < low:
                result = low
            elif result > high:
                result = high
            return result
        ''',
    "window": '''
        def window(seq, n=2):
            """Sliding windows of n items.

            >>> list(window([1, 2, 3]))
            [(1, 2), (2, 3)]"""
            items = list(seq)
            out = []
            for i in range(len(items) - n + 1):
                if i >= 0 and n > 0:
                    out.append(tuple(items[i : i + n]))
            return out
        ''',
    "method": """
        @staticmethod
        def score(words, bonus=1):
            total = 0
            for word in words:
                if not word:
                    continue
                total += len(word) * 2 + bonus
            return max(total, 0) == total and total or -1
        """,
    "no_docstring": """
        def mean(xs):
            count = len(xs)
            return sum(xs) / count if count != 0 else 0.0
        """,
}
INPUTS: dict[str, list[tuple[Any, ...]]] = {
    "clamp": [(12,), (-3, -1), (5,), (10, 0, 10), (0,)],
    "window": [([1, 2, 3],), ([1, 2, 3, 4], 3), ([], 2), ("abcd", 1)],
    "method": [(["ab", "", "cde"],), ([], 3), (["x"], -5)],
    "no_docstring": [([1, 2, 3],), ([],), ([2.5],)],
}


def _source(name: str) -> str:
    return textwrap.dedent(FUNCTIONS[name]).lstrip("\n")


def _call(source: str, args: tuple[Any, ...]) -> Any:
    namespace: dict[str, Any] = {}
    exec(compile(source, "<candidate>", "exec"), namespace)  # the test's own small functions, nothing else
    function = next(v for k, v in namespace.items() if not k.startswith("__") and callable(v))
    function = getattr(function, "__func__", function)  # a staticmethod object outside its class
    try:
        return function(*args)
    except Exception as exc:
        return type(exc)


def _docstring(source: str) -> str | None:
    function = ast.parse(source).body[0]
    assert isinstance(function, ast.FunctionDef)
    return ast.get_docstring(function)


def _without_docstrings(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_mutant_differs_by_one_token_and_parses(name: str) -> None:
    source = _source(name)
    found = mutants(source)
    assert len(found) >= 3
    original = code_tokens(source)
    for mutant in found:
        changed = code_tokens(mutant.text)
        assert len(changed) == len(original), mutant
        differing = [i for i, (a, b) in enumerate(zip(original, changed, strict=True)) if a != b]
        assert len(differing) == 1, mutant
        assert (original[differing[0]], changed[differing[0]]) == (mutant.old, mutant.new)
        assert ast.dump(ast.parse(mutant.text)) != ast.dump(ast.parse(source))
    assert len({m.text for m in found}) == len(found)


def test_mutant_kinds_cover_operators_comparisons_constants_and_return_none() -> None:
    kinds = {m.kind for name in FUNCTIONS for m in mutants(_source(name))}
    assert {"operator", "comparison", "constant", "return-none", "boolean", "loop", "name"} <= kinds
    clamp = mutants(_source("clamp"))
    assert any(m.kind == "return-none" and m.old == "result" and "return None" in m.text for m in clamp)


def test_mutants_never_touch_docstrings_or_comments() -> None:
    source = _source("clamp")
    for mutant in mutants(source):
        assert _docstring(mutant.text) == _docstring(source)


def test_no_mutants_of_text_that_is_not_python() -> None:
    assert mutants("def broken(:\n    return 1 + 2\n") == []


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_rewrites_are_new_text_that_behaves_the_same(name: str) -> None:
    source = _source(name)
    made = rewrites(source, random.Random(0))
    assert {"doc-line"} <= set(made)
    for kind, text in made.items():
        assert text.strip() != source.strip(), kind
        ast.parse(text)
        for args in INPUTS[name]:
            assert _call(text, args) == _call(source, args), (kind, args)


def test_each_rewrite_does_what_its_name_says() -> None:
    clamp = _source("clamp")
    renamed = rename_locals(clamp)
    assert renamed is not None
    assert "result_value" in renamed
    assert "result =" not in renamed
    assert "def clamp(value, low=0, high=10):" in renamed  # parameters are part of the API: kept

    mirrored = mirror_compare(clamp)
    assert mirrored is not None
    assert "if low > result:" in mirrored

    explained = explain_return(_source("no_docstring"))
    assert explained is not None
    assert "    result = sum(xs) / count if count != 0 else 0.0\n    return result\n" in explained

    reformatted = reformat(_source("window"))
    assert reformatted is not None
    assert "items[i:i + n]" in reformatted
    assert "items[i : i + n]" not in reformatted
    assert reformat(clamp) is None  # already written the way ast.unparse writes it: no new text

    documented = add_doc_line(_source("window"))
    assert documented is not None
    assert DOC_LINE in (_docstring(documented) or "")
    assert _without_docstrings(documented) == _without_docstrings(_source("window"))
    bare = add_doc_line(_source("no_docstring"))
    assert bare is not None
    assert _docstring(bare) == DOC_LINE


def test_rewrites_that_do_not_apply_say_none() -> None:
    assert rename_locals("def f(a):\n    return a\n") is None
    assert mirror_compare("def f(a):\n    return a\n") is None
    assert explain_return("def f(a):\n    yield a\n") is None
    assert add_doc_line("def f(a): return a\n") is None


def test_strip_examples_removes_doctests_and_keeps_the_code() -> None:
    for name in ("clamp", "window"):
        source = _source(name)
        stripped = strip_examples(source)
        assert ">>>" not in stripped
        assert _without_docstrings(stripped) == _without_docstrings(source)
        assert strip_examples(stripped) == stripped
    window = strip_examples(_source("window"))
    # The closing quotes stood on an example's output line: they stay, the output goes.
    assert '"""Sliding windows of n items.\n\n    """' in window
    assert "(1, 2)" not in window
    assert "Keep value between low and high." in strip_examples(_source("clamp"))


def test_strip_examples_leaves_code_without_examples_alone() -> None:
    for name in ("method", "no_docstring"):
        assert strip_examples(_source(name)) == _source(name)


def _result(consensus: ConsensusResult, notes: list[str] | None = None) -> dict[str, Any]:
    return {"consensus": consensus.model_dump(mode="json"), "notes": notes or []}


def test_offers_edit_reads_the_result_as_the_front_ends_do() -> None:
    cases = [
        ConsensusResult(kind="code", pick="def f(): pass"),
        ConsensusResult(kind="code", pick="def f(): pass", no_edit="nothing passes"),
        ConsensusResult(kind="code", pick="  "),
        ConsensusResult(kind="text", pick="an explanation"),
    ]
    for consensus in cases:
        assert offers_edit(_result(consensus)) is consensus.offers_edit


def test_code_ran_and_not_checked_signals() -> None:
    compared = ConsensusResult(kind="code", pick="x = 1", method="behaviour+original")
    capped = ConsensusResult(
        kind="code", pick="x = 1", method="syntactic", notes=["not executed: confidence capped at 0.45"]
    )
    refused = ConsensusResult(
        kind="code", method="behaviour", no_edit="no", notes=["your code could not be run on its own: not verified"]
    )
    assert code_ran(_result(compared))
    assert not code_ran(_result(capped))
    assert not code_ran(_result(refused))
    assert not not_checked(_result(compared))
    assert not_checked(_result(capped))
    assert not not_checked(_result(refused))  # nothing offered: nothing to label
    assert not_checked(_result(compared, notes=["the pick was not checked: no test selects it"]))


def test_report_arithmetic() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0, 10.0], 0.9) == 10.0
    bins = reliability_bins([(0.45, False), (0.4, True), (0.95, True), (1.0, True), (0.6, False)])
    assert [(b["bin"], b["n"], b["right"]) for b in bins] == [
        ("0.3-0.5", 2, 0.5),
        ("0.5-0.7", 1, 0.0),
        ("0.9-1.0", 2, 1.0),
    ]
