"""Python: extra inputs to tell candidates apart, without any labels: small mutations of the docstring examples'
arguments, and type-directed small values from the signature when there are no examples. Candidates are then
compared on what they return for these (agreement), never against an expected value.

Pure and deterministic: the same stub always yields the same inputs.
"""

from __future__ import annotations

import ast
import random
from collections.abc import Sequence
from typing import Any

from .._base import Example

__all__ = ["generate_inputs"]

_BY_TYPE: dict[str, list[Any]] = {
    "int": [0, 1, 2, 3, 5, 10, -1, -7, 12, 100],
    "float": [0.0, 1.0, 2.5, -1.5, 3.14, 10.0],
    "str": ["", "a", "ab", "abc", "Hello World", "aA1 !", "racecar", "xyz zyx"],
    "bool": [True, False],
    "list": [[], [1], [1, 2, 3], [3, 1, 2], [5, -2, 0, 5], [1, 1, 1], [10, 9, 8, 7, 6]],
    "list[str]": [[], ["a"], ["ab", "b", "abc"], ["x", "y", "x"]],
    "list[float]": [[], [1.0], [1.0, 2.5, 3.0], [-1.5, 0.0, 4.25]],
    "tuple": [(), (1,), (1, 2)],
    "dict": [{}, {"a": 1}, {"a": 1, "b": 2}],
}


# For the oracle tasks only (the user's code says what each input should give): wider pools, and a mixed one for
# parameters nothing describes. Inputs the user's code rejects (raises on) are still evidence: a behaviour-
# preserving candidate must reject them too.
# The usual edge cases of a tester: repeated letters, multi-digit and negative numbers, mixed signs in a list.
_WIDER: dict[str, list[Any]] = {
    "int": [-12, -123, 7, 13, 99, 123, 1000],
    "float": [0.5, -0.25, 1e-3, 123.456],
    "str": ["A", "aaa", "aab", "abab", "abcabc", "abcABC", "hello world", " leading", "a-b_c", "12321"],
    "list": [[0], [2, 4, 6], [-3, -1, -2], [1, 2, 2, 3], [7, 3, 9, 1, 5], [-12, 34, -56], [123, -45, 6]],
    "list[str]": [["aa", "b", "cd", "aa"], ["abc", "", "ab"]],
}
_MIXED: list[Any] = [0, 1, 2, 3, -1, 7, 10, 12, -12, 100, "", "a", "abc", "aab", "abcabc", "Hello World", [],
                     [1, 2, 3], [3, 1, 2], [5, -2, 0, 5], [-12, 34, -56], ["ab", "a", "abc"], ["aa", "b", "cd", "aa"],
                     1.5, -2.5, True, False]  # fmt: skip


def _kind_of_value(value: Any) -> str | None:
    """The pool a literal argument's type draws from (the examples' arguments stand in for annotations)."""
    if isinstance(value, bool):
        return "bool"
    for kind, types in (("int", int), ("float", float), ("str", str), ("tuple", tuple), ("dict", dict)):
        if isinstance(value, types):
            return kind
    if isinstance(value, list):
        if value and all(isinstance(v, str) for v in value):
            return "list[str]"
        if value and all(isinstance(v, float) for v in value):
            return "list[float]"
        return "list"
    return None


def _pool(kind: str | None) -> list[Any]:
    if kind is None:
        return _MIXED
    return _BY_TYPE[kind] + _WIDER.get(kind, [])


def _kind(annotation: str | None) -> str | None:
    if annotation is None:
        return None
    text = annotation.replace("typing.", "").replace(" ", "")
    lowered = text.lower()
    if lowered.startswith(("list[str]", "list[string]")):
        return "list[str]"
    if lowered.startswith("list[float]"):
        return "list[float]"
    for key in ("int", "float", "str", "bool", "list", "tuple", "dict"):
        if lowered.startswith(key):
            return key
    return None


def _mutations(value: Any) -> list[Any]:
    """Nearby values of the same type: the edge cases a wrong candidate most often gets wrong."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value + 1, value - 1, 0, -value, value * 2 + 1]
    if isinstance(value, float):
        return [value + 0.5, -value, 0.0, value * 3]
    if isinstance(value, str):
        texts = [value[::-1], "", value[:1], value + value[:1], value.swapcase(), value.replace(" ", "  ")]
        return [v for v in texts if v != value]
    if isinstance(value, list):
        out: list[Any] = [value[::-1], value[1:], [], value + value[:1], sorted(value, key=repr)]
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            out += [[v + 1 for v in value], [-v for v in value]]
        return [v for v in out if v != value]
    if isinstance(value, tuple):
        return [value[::-1]] if len(value) > 1 else []
    return []


def _literal_args(call: str) -> list[Any] | None:
    try:
        node = ast.parse(call, mode="eval").body
    except (SyntaxError, ValueError):
        return None
    if not isinstance(node, ast.Call) or node.keywords:
        return None
    try:
        return [ast.literal_eval(arg) for arg in node.args]
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def _call(name: str, args: Sequence[Any]) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


def generate_inputs(
    name: str,
    params: Sequence[tuple[str, str | None]],
    examples: Sequence[Example],
    *,
    limit: int = 8,
    seed: int = 0,
    rounds: int = 1,
) -> list[str]:
    """Up to ``limit`` call expressions for ``name`` that the examples do not already cover. ``rounds`` > 1
    mutates the mutations again and adds type-directed values even when there are examples: a wider net, worth
    it when the user's own code supplies the expected value of every input (the oracle tasks)."""
    rng = random.Random(f"{seed}:{name}")
    seen = {example.call for example in examples}
    out: list[str] = []

    def add(args: Sequence[Any]) -> None:
        call = _call(name, args)
        if call not in seen and len(call) < 2000:
            seen.add(call)
            out.append(call)

    parsed = [args for args in (_literal_args(e.call) for e in examples) if args is not None]
    frontier = parsed
    # With a wider net, a third of the inputs is kept for type-directed values (mutations stay near the examples).
    mutation_limit = limit if rounds <= 1 else limit - limit // 3
    for _ in range(max(1, rounds)):
        candidates: list[list[Any]] = []
        for args in frontier:
            for position, value in enumerate(args):
                for mutated in _mutations(value):
                    candidates.append([*args[:position], mutated, *args[position + 1 :]])
        rng.shuffle(candidates)
        for args in candidates:
            if len(out) >= mutation_limit:
                break
            add(args)
        frontier = candidates
    if len(out) >= limit:
        return out
    if rounds > 1 and params:
        # Type-directed values for every parameter: from its annotation, else from what the examples pass it,
        # else the mixed pool.
        kinds = [_kind(annotation) for _, annotation in params]
        for position, kind in enumerate(kinds):
            if kind is None:
                seen_kinds = {_kind_of_value(args[position]) for args in parsed if position < len(args)} - {None}
                kinds[position] = seen_kinds.pop() if len(seen_kinds) == 1 else None
        pools = [_pool(kind) for kind in kinds]
        for _ in range(limit * 4):
            if len(out) >= limit:
                break
            add([rng.choice(pool) for pool in pools])
        return out
    if not parsed and params:
        kinds = [_kind(annotation) for _, annotation in params]
        if all(kind is not None for kind in kinds):
            pools = [_BY_TYPE[kind] for kind in kinds if kind is not None]
            for _ in range(limit * 3):
                if len(out) >= limit:
                    break
                add([rng.choice(pool) for pool in pools])
    return out
