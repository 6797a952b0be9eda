"""Putting code into a span of a file: the one rule the CLI, the fix loop and the language server share, so the
text a user gets is exactly the text that was checked (the fix loop runs the tests on it; the editor applies it).

The consensus hands over a whole program (the function plus the imports it needs to run on its own). Put over a
function's lines, imports the file already has elsewhere would be duplicated, so they are dropped; the rest is
re-indented like the lines it replaces (models answer a method at column 0).
"""

from __future__ import annotations

import ast
import re

from .context import reindent
from .languages._python_examples import function_named

__all__ = ["docstring_of", "fit_code", "function_named", "parse_python", "replace_span", "span_lines", "with_docstring"]

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


def parse_python(source: str) -> ast.Module | None:
    """``source``'s syntax tree, or None when it is not Python (or too deep to parse)."""
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def docstring_of(source: str, entry_point: str) -> str | None:
    """The docstring of ``entry_point`` in ``source`` (None: no such function, no docstring, or not Python)."""
    tree = parse_python(source)
    node = function_named(tree, entry_point) if tree is not None else None
    return ast.get_docstring(node, clean=True) if node is not None else None


def with_docstring(source: str, entry_point: str, docstring: str) -> str | None:
    """``source`` with ``entry_point``'s docstring set to ``docstring`` and every other character kept: the edit
    for "add docstring", so the user's body, comments and formatting cannot change. None when ``source`` has no
    such function."""
    tree = parse_python(source)
    node = function_named(tree, entry_point) if tree is not None else None
    if node is None or not node.body:
        return None
    lines = source.splitlines(keepends=True)
    first = node.body[0]
    body_line = lines[first.lineno - 1]
    indent = body_line[: len(body_line) - len(body_line.lstrip())] or " " * (node.col_offset + 4)
    text = docstring.strip("\n").replace('"""', '\\"\\"\\"')
    doc_lines = text.splitlines() or [""]
    if len(doc_lines) == 1:
        block = f'{indent}"""{doc_lines[0].strip()}"""\n'
    else:
        inner = "".join(f"{indent}{line.strip() and line}\n" if line.strip() else "\n" for line in doc_lines[1:])
        block = f'{indent}"""{doc_lines[0].strip()}\n{inner}{indent}"""\n'
    has_doc = (
        isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)
    )
    if has_doc:
        end = first.end_lineno or first.lineno
        return "".join(lines[: first.lineno - 1]) + block + "".join(lines[end:])
    # Right under the signature (after its last line, the one ending in ":"), above any comment of the body.
    at = first.lineno - 1
    for index in range(node.lineno - 1, first.lineno - 1):
        if lines[index].split("#", 1)[0].rstrip().endswith(":"):
            at = index + 1
    return "".join(lines[:at]) + block + "".join(lines[at:])
