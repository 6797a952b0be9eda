"""Putting code into a span of a file: the one rule the CLI, the fix loop and the language server share, so the
text a user gets is exactly the text that was checked (the fix loop runs the tests on it; the editor applies it).

The consensus hands over a whole program (the function plus the imports it needs to run on its own). Put over a
function's lines, imports the file already has elsewhere would be duplicated, so they are dropped; the rest is
re-indented like the lines it replaces (models answer a method at column 0).
"""

from __future__ import annotations

import re

from .indentation import reindent

__all__ = ["fit_code", "replace_span", "span_lines"]

_IMPORT = re.compile(r"^(?:import\s|from\s+\S+\s+import\s)")


def fit_code(code: str, replaced: str, file_text: str) -> str:
    """``code`` as it should stand in place of ``replaced`` in ``file_text``: leading import lines the file already
    has outside ``replaced`` dropped, re-indented like ``replaced``; no trailing newline."""
    have = {line.strip() for line in file_text.splitlines() if line.strip()} - {
        line.strip() for line in replaced.splitlines()
    }
    lines = code.strip("\n").split("\n")
    i = 0
    while i < len(lines) and (not lines[i].strip() or (_IMPORT.match(lines[i]) and lines[i].strip() in have)):
        i += 1
    body = "\n".join(lines[i:]) if i < len(lines) else code.strip("\n")
    fitted = reindent(body, replaced) if replaced.strip() else body
    return fitted.rstrip("\n")


def replace_span(text: str, start: int, end: int, code: str) -> str:
    """``text`` with lines ``[start, end)`` replaced by ``code`` (see :func:`fit_code`)."""
    lines = text.splitlines(keepends=True)
    replaced = "".join(lines[start:end])
    if lines[start:] and not lines[-1].endswith("\n"):
        lines[-1] += "\n"  # the span's end is a line boundary; so is the end of the file once edited
    return "".join(lines[:start]) + fit_code(code, replaced, text) + "\n" + "".join(lines[end:])


def span_lines(old_text: str, new_text: str, start: int, end: int) -> list[str]:
    """The lines that stand in place of ``old_text``'s lines ``[start, end)`` in ``new_text`` (made by
    :func:`replace_span`): what an editor applies to get exactly ``new_text``."""
    old = old_text.splitlines()
    new = new_text.splitlines()
    tail = len(old) - end
    return new[start : len(new) - tail]
