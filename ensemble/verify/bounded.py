"""Reading JSON that came out of a sandbox: bounded in size and nesting, never recursive on what it was given.

``json.loads`` recurses once per level of nesting and raises :class:`RecursionError` (not :class:`ValueError`) on
a value nested a few thousand deep, which a candidate can print; and whatever reads the result afterwards recurses
too. :func:`read_json` checks the size and the nesting depth first, with a scan that does not recurse (strings are
skipped whole by one regular expression, then the brackets left are counted), and only then decodes. Anything
malformed (``NaN`` and ``Infinity`` included: they are not JSON), too large or too deep raises :class:`ValueError` - the one exception callers handle.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

__all__ = ["MAX_CHARS", "MAX_DEPTH", "json_depth", "read_json"]

MAX_DEPTH = 64
MAX_CHARS = 1 << 20

# A JSON string (quotes, escapes); what is left outside strings is structure, numbers and literals.
_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # json.loads would read NaN and Infinity, which JSON has not


def json_depth(text: str) -> int:
    """How deeply ``text``'s brackets nest outside JSON strings (an unbalanced text reads as its deepest point)."""
    outside = _STRING.sub("", text)
    return max(accumulate(_STEP[m] for m in _BRACKETS.findall(outside)), default=0)


def read_json(text: str | bytes, *, max_depth: int = MAX_DEPTH, max_chars: int = MAX_CHARS) -> Any:
    """Decode ``text`` as JSON when it is at most ``max_chars`` long and nests at most ``max_depth`` deep.
    Raises :class:`ValueError` for anything else (malformed, too large, too deep, invalid UTF-8)."""
    if isinstance(text, bytes):
        if len(text) > max_chars * 4:
            raise ValueError("JSON text too large")
        text = text.decode("utf-8")  # UnicodeDecodeError is a ValueError
    if len(text) > max_chars:
        raise ValueError("JSON text too large")
    if json_depth(text) > max_depth:
        raise ValueError("JSON nested too deeply")
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as exc:  # cannot happen under the depth check; kept so no caller ever sees it
        raise ValueError("JSON nested too deeply") from exc
