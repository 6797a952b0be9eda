"""Comparing what candidates did, in the parent, on values: the sandboxed child reports canonical reprs only and
never learns what it is compared with, so nothing it prints or patches can make it "match".

Pure functions. Python: two canonical reprs are the same when both read back (``ast.literal_eval``) as equal values - numbers
within a float tolerance (relative 1e-6, absolute 1e-9), ``bool`` never equal to a number, lists only to lists and
tuples only to tuples - or, when either does not read back (``nan``, a tagged object), when their text is the same.
JavaScript and TypeScript (:func:`same_json_value`): the node harness reports canonical JSON; two such texts are
the same when both read back (bounded: :func:`~codeconductor.ensemble.verify.bounded.read_json`) as equal values - numbers
within the same tolerance, ``true`` never equal to ``1``, arrays element by element, objects key by key - or, when
either does not read back (a value cut at its length limit), when their text is the same.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from ._worker import make_canonical
from .bounded import read_json

__all__ = ["canonical_repr", "matches_expected", "same_json_value", "same_value"]

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


def _close(x: float, y: float) -> bool:
    try:
        return math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9)
    except OverflowError:  # an integer too large for a float
        return False


def _same_json(a: Any, b: Any) -> bool:
    """Equality of two decoded JSON values, without recursion (their depth is bounded by ``read_json`` anyway)."""
    pending = [(a, b)]
    while pending:
        x, y = pending.pop()
        x_number = isinstance(x, (int, float)) and not isinstance(x, bool)
        y_number = isinstance(y, (int, float)) and not isinstance(y, bool)
        if x_number and y_number:
            if x != y and not _close(x, y):
                return False
        elif type(x) is not type(y):
            return False
        elif isinstance(x, list):
            if len(x) != len(y):
                return False
            pending.extend(zip(x, y, strict=True))
        elif isinstance(x, dict):
            if x.keys() != y.keys():
                return False
            pending.extend((x[k], y[k]) for k in x)
        elif x != y:
            return False
    return True


def same_json_value(a: str, b: str) -> bool:
    """Whether two canonical JSON texts from the JavaScript harness stand for the same value (see the module's
    docstring). Never raises, whatever the texts hold."""
    try:
        left, right = read_json(a), read_json(b)
    except ValueError:
        return a.strip() == b.strip()
    return _same_json(left, right)
