"""Comparing what candidates did, in the parent, on values: the sandboxed child reports canonical reprs only and
never learns what it is compared with, so nothing it prints or patches can make it "match".

Pure functions. Two canonical reprs are the same when both read back (``ast.literal_eval``) as equal values - numbers
within a float tolerance (relative 1e-6, absolute 1e-9), ``bool`` never equal to a number, lists only to lists and
tuples only to tuples - or, when either does not read back (``nan``, a tagged object), when their text is the same.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from ._worker import make_canonical

__all__ = ["canonical_repr", "matches_expected", "same_value"]

canonical_repr = make_canonical()
"""The canonical repr of a value, exactly as the sandboxed child makes it."""

_UNREADABLE = object()
# Calls an expected value may be written with besides a literal (``set()``, ``float('inf')``): rebuilt from
# literal arguments only, never evaluated.
_CONSTRUCTORS: dict[str, Any] = {
    "set": set,
    "frozenset": frozenset,
    "float": float,
    "tuple": tuple,
    "list": list,
    "dict": dict,
}


def _read(text: str) -> Any:
    try:
        return ast.literal_eval(text.strip())
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _UNREADABLE


def _same(a: Any, b: Any) -> bool:
    a_number = isinstance(a, (int, float)) and not isinstance(a, bool)
    b_number = isinstance(b, (int, float)) and not isinstance(b, bool)
    if a_number and b_number:
        if isinstance(a, float) or isinstance(b, float):
            if math.isnan(a) and math.isnan(b):
                return True
            return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    try:
        return bool(a == b)
    except Exception:
        return False


def _normalised(text: str) -> str:
    try:
        return ast.unparse(ast.parse(text.strip(), mode="eval"))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return " ".join(text.split())


def same_value(a: str, b: str) -> bool:
    """Whether two canonical value reprs stand for the same value (see the module's docstring)."""
    left, right = _read(a), _read(b)
    if left is _UNREADABLE or right is _UNREADABLE:
        return _normalised(a) == _normalised(b)
    return _same(left, right)


def _expected_value(expr: str) -> Any:
    value = _read(expr)
    if value is not _UNREADABLE:
        return value
    try:
        node = ast.parse(expr.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return _UNREADABLE
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _CONSTRUCTORS
        and not node.keywords
        and len(node.args) <= 1
    ):
        try:
            args = [ast.literal_eval(arg) for arg in node.args]
            return _CONSTRUCTORS[node.func.id](*args)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return _UNREADABLE
    return _UNREADABLE


def matches_expected(value: str, expected_expr: str) -> bool:
    """Whether a call's canonical value repr matches the expected expression a docstring gave (a literal, read
    with ``ast.literal_eval`` here in the parent; anything else is compared as normalised text)."""
    expected = _expected_value(expected_expr)
    if expected is _UNREADABLE:
        return _normalised(value) == _normalised(expected_expr)
    return same_value(value, canonical_repr(expected))
