"""Comparisons in the parent, on canonical value reprs (``codeconductor.ensemble.verify.compare``)."""

from __future__ import annotations

import pytest

from codeconductor.ensemble.verify.compare import canonical_repr, matches_expected, same_value


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("5", "5", True),
        ("0.30000000000000004", "0.3", True),  # float noise
        ("1", "1.0", True),
        ("1.0", "1.000001", True),  # relative 1e-6
        ("1.0", "1.0001", False),
        ("0.0", "1e-10", True),  # absolute 1e-9
        ("True", "1", False),  # a bool is not a number
        ("[1, 2]", "(1, 2)", False),  # nor a list a tuple
        ("[1, 2.0]", "[1.0, 2]", True),
        ("'a'", "'a'", True),
        ("'a'", "'b'", False),
        ("nan", "nan", True),  # not a literal: the text is compared
        ("inf", "nan", False),
        ("<Five 5>", "5", False),  # a tagged object never reads as a literal
        ("None", "None", True),
        ("('<set>', [1, 2])", "('<set>', [1, 2])", True),
    ],
)
def test_same_value(a: str, b: str, same: bool) -> None:
    assert same_value(a, b) is same
    assert same_value(b, a) is same


@pytest.mark.parametrize(
    ("value", "expected", "matches"),
    [
        ("5", "5", True),
        ("0.30000000000000004", "0.3", True),
        ("[1, 1]", "[1, 1]", True),
        ("[1, 1]", "[1,1]", True),
        (canonical_repr({1: "a", 2: "b"}), "{2: 'b', 1: 'a'}", True),
        (canonical_repr({3, 1, 2}), "{1, 2, 3}", True),
        (canonical_repr(set()), "set()", True),
        (canonical_repr(float("inf")), "float('inf')", True),
        ("4", "5", False),
        ("'5'", "5", False),
        ("math.pi", "math.pi", True),  # not a literal: normalised text
        ("3.14159", "math.pi", False),
    ],
)
def test_matches_expected(value: str, expected: str, matches: bool) -> None:
    assert matches_expected(value, expected) is matches


def test_canonical_repr_does_not_trust_subclasses_or_custom_reprs() -> None:
    class Five(int):
        def __repr__(self) -> str:
            return "5"

        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

    assert canonical_repr(Five(4)) == "'<Five 5>'"
    assert not matches_expected(canonical_repr(Five(4)), "5")
    assert canonical_repr(0.1 + 0.2) == "0.3"
    assert canonical_repr(iter([1, 2])) == "('<iter>', [1, 2])"
    long = canonical_repr("x" * 5000)
    assert len(long) < 2100
    assert long == canonical_repr("x" * 5000)  # stable across processes: a digest, not hash()
