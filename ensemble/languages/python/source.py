"""Python's source, read with ``ast``: its functions and classes (for the selection and the enclosing block), whether
a function is a stub, and the imports a module runs. Code that does not parse (common while editing) is left to the
caller's fallback. Pure functions."""

from __future__ import annotations

import ast
import textwrap

from .._base import Block, column0_imports

__all__ = ["blocks", "import_statements", "is_stub"]


def blocks(text: str) -> list[Block] | None:
    """Every function and class of ``text`` (nested ones too), or None when it does not parse."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    lines = text.splitlines()
    blocks: list[Block] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            # Decorators belong to the function: replacing the function without them would duplicate them.
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            # The header runs from the def line to the first body statement (multi-line signatures included).
            body_first = node.body[0].lineno - 1 if node.body else node.lineno
            header = "\n".join(lines[node.lineno - 1 : max(node.lineno, body_first)])
            end = node.end_lineno or node.lineno
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            blocks.append(Block(first, end, kind, node.name, header.rstrip()))
    return blocks


def is_stub(code: str) -> bool:
    """Whether the (first) function in ``code`` has only a placeholder body: ``...``, ``pass`` or ``raise
    NotImplementedError`` (docstrings do not count as a body). Code that does not parse is no stub."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError):
        return False
    funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    if not funcs:
        return False
    return _body_is_placeholder(funcs[0].body)


def _body_is_placeholder(body: list[ast.stmt]) -> bool:
    statements = list(body)
    first = statements[0] if statements else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        statements = statements[1:]  # the docstring
    if not statements:
        return True
    if len(statements) != 1:
        return False
    only = statements[0]
    if isinstance(only, ast.Pass):
        return True
    if isinstance(only, ast.Expr) and isinstance(only.value, ast.Constant) and only.value.value is Ellipsis:
        return True
    if isinstance(only, ast.Raise) and only.exc is not None:
        target = only.exc.func if isinstance(only.exc, ast.Call) else only.exc
        return isinstance(target, ast.Name) and target.id == "NotImplementedError"
    return False


def import_statements(text: str) -> list[str]:
    """The module-level import statements of ``text``, whole, and the top-level ``try``/``if`` blocks made of
    imports (``try: import x except ImportError: x = None``, ``if TYPE_CHECKING:``) verbatim. Huge files and code
    being edited: column-0 import lines, continued while open."""
    found = _parsed_imports(text) if text.count("\n") <= _PARSE_IMPORTS_LINES else None
    return found if found is not None else column0_imports(text.splitlines())


# Statements a top-level ``try``/``if`` may hold and still be "the imports" (anything else is real module code).
_IMPORT_BLOCK_STATEMENTS = (
    ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.Pass, ast.Raise, ast.If, ast.Try, ast.Expr,
)  # fmt: skip
_IMPORT_BLOCK_LINES = 40
_PARSE_IMPORTS_LINES = 5000  # beyond this, parsing the whole file for its imports costs more than it is worth


def _is_import_block(node: ast.stmt) -> bool:
    """A top-level ``try``/``if`` that imports something and does nothing but import and set fallbacks."""
    if not isinstance(node, ast.Try | ast.If) or not node.end_lineno:
        return False
    if node.end_lineno - node.lineno + 1 > _IMPORT_BLOCK_LINES:
        return False
    inner = [n for n in ast.walk(node) if isinstance(n, ast.stmt) and n is not node]
    if isinstance(node, ast.Try):
        inner += [s for h in node.handlers for s in h.body]
    return any(isinstance(n, ast.Import | ast.ImportFrom) for n in inner) and all(
        isinstance(n, _IMPORT_BLOCK_STATEMENTS) for n in inner
    )


def _parsed_imports(text: str) -> list[str] | None:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    lines = text.splitlines()
    return [
        "\n".join(lines[node.lineno - 1 : node.end_lineno or node.lineno])
        for node in tree.body
        if isinstance(node, ast.Import | ast.ImportFrom) or _is_import_block(node)
    ]
