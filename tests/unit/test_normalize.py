"""Normalisation: formatting, comments, docstrings, annotations and local names do not matter."""

from __future__ import annotations

from collections import Counter

from codeconductor.ensemble.consensus.normalize import normalized_key, similarity, token_profile, tokens
from codeconductor.ensemble.languages.python.normalize import normalize_python

A = 'def f(xs: list) -> int:\n    """Doc."""\n    total = 0  # running\n    for x in xs:\n        total += x\n    return total\n'
B = "def f(values):\n    acc=0\n    for v in values:\n        acc += v\n\n    return acc\n"
C = "def f(values):\n    acc = 1\n    for v in values:\n        acc *= v\n    return acc\n"


def test_same_program_same_key() -> None:
    assert normalize_python(A) == normalize_python(B)


def test_different_program_different_key() -> None:
    assert normalize_python(A) != normalize_python(C)


def test_unparseable_is_none_and_falls_back_to_tokens() -> None:
    assert normalize_python("def f(:") is None
    assert normalized_key("def f(:  # x") == "def f ( :"


def test_similarity_orders_candidates() -> None:
    assert similarity(A, A) == 1.0
    assert similarity(B, C) > similarity(B, "class Z:\n    pass\n")
    assert 0.0 <= similarity(A, C) <= 1.0


def test_tokens_for_other_languages_skip_comments() -> None:
    assert tokens("int x = 1; // one\n/* block */ return x;", "c") == ["int", "x", "=", "1", ";", "return", "x", ";"]


def test_similarity_is_the_weighted_jaccard_of_trigrams_and_symmetric() -> None:
    pa, pc = token_profile(A), token_profile(C)
    expected = sum((pa & pc).values()) / sum((pa | pc).values())
    assert similarity(pa, pc) == similarity(pc, pa) == expected
    assert similarity(Counter(), Counter()) == 1.0


def test_renaming_is_by_first_appearance_and_builtins_keep_their_names() -> None:
    left = "def f(a, b):\n    return len(a) + b\n"
    right = "def f(x, y):\n    return len(x) + y\n"
    swapped = "def f(x, y):\n    return len(y) + x\n"
    assert normalize_python(left) == normalize_python(right)
    assert normalize_python(left) != normalize_python(swapped)
    assert "len" in (normalize_python(left) or "")
