"""Reads the JSON a model meant to write, even when it wrapped it in prose or fences or got the syntax wrong.

Small local models often answer a "reply with JSON" prompt with ```` ```json ```` fences, a sentence before and
after, trailing commas, single quotes or a list cut off by the token limit. This module tries, in order: strict
JSON of each fenced block and of the whole answer, strict JSON of the outermost bracketed span, two fast fixes (trailing
commas, Python-literal syntax via ``ast.literal_eval``) and finally the well-kept ``json-repair`` library. It never raises: on failure it says why, so the caller can tell the user which
model's answer could not be read. Nothing in the answer is ever executed; it is only parsed as data.
"""

from __future__ import annotations

import ast
import json
import logging
import re
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


def _quick_fix(text: str) -> list[Any] | dict[str, Any] | None:
    """The two commonest slips, fixed with C-speed parsers before the slower general repairer: trailing commas,
    and Python-literal syntax (single quotes, True/None). ``ast.literal_eval`` only builds literals; it cannot
    call or import anything."""
    value = _strict(_TRAILING_COMMA.sub(r"\1", text))
    if value is not None:
        return value
    try:
        literal = ast.literal_eval(text)
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
