"""The examples a comment gives for a function in a brace language, as (call, expected) expression pairs:
``>>> f(1, 2)`` followed by ``3`` on the next line, ``f(1, 2) === 3``, ``f(1, 2) // => 3``, ``f(1, 2) ➞ 3``,
``f(1, 2) should return 3``, and JSDoc ``@example`` lines written those ways. Calls and expected values are kept
only when the language's parser accepts each as an expression. Pure functions: no execution.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from ._base import Example, balanced_calls

__all__ = ["comment_examples", "comment_lines"]

_ARROW = re.compile(
    r"^\s*(?://\s*)?(?:===|!==|==>|==|=>|->|➞|→|=(?!=)|\bshould\s+(?:return|be|equal)\b|\breturns?\b|\bgives\b"
    r"|\bis\b|\bequals\b|:)\s*(?:=>\s*)?"
)


def comment_lines(comments: Sequence[str]) -> list[str]:
    """The text lines of ``comments`` without their markers (``//``, ``/*``, ``*/``, a leading ``*``)."""
    out: list[str] = []
    for comment in comments:
        body = comment.strip()
        for opener in ("/**", "/*!", "/*", "///", "//!", "//", "#"):
            if body.startswith(opener):
                body = body[len(opener) :]
                break
        if body.endswith("*/"):
            body = body[:-2]
        for line in body.split("\n"):
            stripped = line.strip()
            for marker in ("///", "//", "*"):
                if stripped.startswith(marker) and not stripped.startswith("**"):
                    stripped = stripped[len(marker) :].strip()
                    break
            out.append(stripped)
    return out


def _clean_expected(text: str) -> str:
    text = text.strip()
    text = re.split(r"\s+//|\s+#\s|\s+\((?:because|since|as)\b", text)[0].strip()
    return text.rstrip(";,").rstrip(".") if not re.search(r"\d\.$", text) else text.rstrip(";,")


def comment_examples(comments: Sequence[str], entry_point: str, is_expression: Callable[[str], bool]) -> list[Example]:
    lines = comment_lines(comments)
    found: list[Example] = []
    seen: set[tuple[str, str]] = set()
    for index, line in enumerate(lines):
        prompt = line.startswith(">>>")
        for start, end in balanced_calls(line, entry_point):
            call = line[start:end]
            rest = line[end:].strip().rstrip(";").strip()
            expected = ""
            if rest:
                arrow = _ARROW.match(rest)
                if arrow:
                    expected = _clean_expected(rest[arrow.end() :])
            else:
                following = next((x for x in lines[index + 1 :] if x.strip()), "")
                arrow = _ARROW.match(following)
                if arrow and not prompt:
                    expected = _clean_expected(following[arrow.end() :])
                elif prompt and not following.startswith(">>>") and entry_point + "(" not in following:
                    expected = _clean_expected(following)
            if not expected or entry_point + "(" in expected:
                continue
            if (call, expected) in seen or not is_expression(call) or not is_expression(expected):
                continue
            seen.add((call, expected))
            found.append(Example(call, expected))
    return found
