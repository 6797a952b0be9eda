"""Reads the JSON a model meant to write, even when it wrapped it in prose or fences or got the syntax wrong.

Small local models often answer a "reply with JSON" prompt with ```` ```json ```` fences, a sentence before and
after, trailing commas, single quotes or a list cut off by the token limit. This module tries, in order: strict
JSON of each fenced block and of the whole answer, strict JSON of the outermost bracketed span, fast fixes (trailing
commas, Python-literal syntax via ``ast.literal_eval``, closing a list cut off by the token limit) and finally the well-kept ``json-repair`` library. It never raises: on failure it says why, so the caller can tell the user which
model's answer could not be read. Nothing in the answer is ever executed; it is only parsed as data.
"""

from __future__ import annotations

import ast
import json
import logging
import re
import warnings
from dataclasses import dataclass
from typing import Any

import json_repair

__all__ = ["MAX_JSON_CHARS", "JsonExtraction", "extract_json"]

_log = logging.getLogger(__name__)

#: Longer answers are cut before parsing: the repairer is pure Python and review answers are a few KB at most.
MAX_JSON_CHARS = 64_000

# An opening fence with an optional language tag, its body, and the closing fence (or the end of an answer cut off
# by the token limit).
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)

_JSON_CONSTANTS: dict[str, Any] = {"null": None, "true": True, "false": False}
_JSON_NAME = re.compile(r"\b(?:null|true|false)\b")
_TRAILING_COMMA = re.compile(r",(\s*[\]}])")


@dataclass(frozen=True, slots=True)
class JsonExtraction:
    """The outcome of reading one answer: ``value`` is a JSON list or object, or None when nothing usable."""

    value: list[Any] | dict[str, Any] | None
    repaired: bool = False  # True when the JSON was invalid and had to be repaired (it may be incomplete)
    detail: str = ""  # why nothing was found, or how the value was recovered


def _candidates(text: str) -> list[str]:
    """Fenced blocks first (JSON-tagged ones before others), then the whole answer."""
    tagged: list[str] = []
    other: list[str] = []
    for match in _FENCE.finditer(text):
        body = match.group(2).strip()
        if not body:
            continue
        (tagged if match.group(1).lower() in ("json", "json5", "jsonc") else other).append(body)
    return [*tagged, *other, text.strip()]


def _strict(text: str) -> list[Any] | dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, list | dict) else None


def _bracketed(text: str) -> str | None:
    """The span from the first ``[``/``{`` to the last matching-kind closer: strips prose on both sides."""
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    end = text.rfind("]" if text[start] == "[" else "}")
    return text[start : end + 1] if end > start else None


class _JsonNames(ast.NodeTransformer):
    """JSON's ``null``/``true``/``false`` as Python constants, so single-quoted JSON still reads as a literal."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _JSON_CONSTANTS:
            return ast.copy_location(ast.Constant(_JSON_CONSTANTS[node.id]), node)
        return node


def _closed(text: str) -> str | None:
    """``text`` cut after its last complete ``}``/``]`` with the still-open brackets closed: the usual repair for
    an answer cut off by the token limit (``[{...}, {...}, {"line": 7, "mess``). Quotes are tracked so brackets
    inside strings do not count."""
    stack: list[str] = []
    quote = ""
    escaped = False
    cut, cut_stack = -1, ""
    for i, char in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{":
            stack.append("]" if char == "[" else "}")
        elif char in "]}":
            if not stack or stack.pop() != char:
                return None
            cut, cut_stack = i, "".join(reversed(stack))
            if not stack:
                return None  # balanced: nothing was cut off, so closing cannot help
    return text[: cut + 1] + cut_stack if cut >= 0 else None


def _quick_fix(text: str) -> list[Any] | dict[str, Any] | None:
    """The two commonest slips, fixed with C-speed parsers before the slower general repairer: trailing commas,
    and Python-literal syntax (single quotes, True/None, mixed with JSON's null/true/false).
    ``ast.literal_eval`` only builds literals from the parsed tree; it cannot call or import anything."""
    value = _strict(_TRAILING_COMMA.sub(r"\1", text))
    if value is not None:
        return value
    try:
        with warnings.catch_warnings():  # "invalid escape sequence" warnings from model text are noise here
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
        if _JSON_NAME.search(text):  # the tree walk costs more than the parse; skip it when it cannot matter
            tree = _JsonNames().visit(tree)
        literal = ast.literal_eval(tree)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return literal if isinstance(literal, list | dict) else None


def _repair(text: str) -> list[Any] | dict[str, Any] | None:
    try:
        value = json_repair.repair_json(text, return_objects=True)
    except Exception as exc:  # the repairer is a heuristic parser; any failure just means "not JSON"
        _log.debug("json-repair failed: %r", exc)
        return None
    return value if isinstance(value, list | dict) else None


def extract_json(text: str) -> JsonExtraction:
    """The JSON list or object in a model's answer ``text``; never raises."""
    if not text.strip():
        return JsonExtraction(None, detail="empty answer")
    truncated = len(text) > MAX_JSON_CHARS
    text = text[:MAX_JSON_CHARS]
    candidates = _candidates(text)
    for candidate in candidates:
        value = _strict(candidate)
        if value is not None:
            return JsonExtraction(value)
    for candidate in candidates:
        span = _bracketed(candidate)
        value = _strict(span) if span is not None else None
        if value is not None:
            return JsonExtraction(value, detail="JSON found inside prose")
    for candidate in candidates:
        span = _bracketed(candidate)
        value = _quick_fix(span) if span is not None else None
        if value is None:
            starts = [i for i in (candidate.find("["), candidate.find("{")) if i >= 0]
            closed = _closed(candidate[min(starts) :]) if starts else None
            value = _quick_fix(closed) if closed is not None else None
        if value is not None:
            return JsonExtraction(value, repaired=True, detail="invalid JSON repaired")
    for candidate in candidates:
        if "[" not in candidate and "{" not in candidate:
            continue  # the repairer would turn plain prose into a string, never into findings
        value = _repair(candidate)
        if value is not None:
            note = "invalid JSON repaired" + (" (answer truncated before parsing)" if truncated else "")
            return JsonExtraction(value, repaired=True, detail=note)
    return JsonExtraction(None, detail="no JSON list or object found")
