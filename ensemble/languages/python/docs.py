"""Python's documentation and static checks: a function's docstring read and put in (the edit "add docstring"
gives, every other character of the user's code kept), two sources compared but for their docstrings and
comments, and whether an answer is a program rather than prose that happens to parse. Pure functions."""

from __future__ import annotations

import ast

from .examples import function_named

__all__ = ["docstring_of", "is_program", "parse_python", "same_code_but_docs", "with_docstring"]


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


def _without_docs(tree: ast.AST) -> str:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            first = body[0].value if body and isinstance(body[0], ast.Expr) else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False, include_attributes=False)


def same_code_but_docs(a: str, b: str, entry_point: str | None = None) -> bool | None:
    """Whether two Python sources are the same program but for docstrings and comments: the ``entry_point``
    functions when both define it (imports a model repeats around it do not matter), else the whole modules.
    None when either is not Python."""
    tree_a, tree_b = parse_python(a), parse_python(b)
    if tree_a is None or tree_b is None:
        return None
    fa, fb = function_named(tree_a, entry_point), function_named(tree_b, entry_point)
    if fa is not None and fb is not None:
        return _without_docs(fa) == _without_docs(fb)
    return _without_docs(tree_a) == _without_docs(tree_b)


def _is_inert(stmt: ast.stmt) -> bool:
    """A statement that does nothing: ``pass``, ``...``, a bare name or constant (what prose parses to)."""
    return isinstance(stmt, ast.Pass) or (
        isinstance(stmt, ast.Expr) and isinstance(stmt.value, (ast.Constant, ast.Name))
    )


def is_program(code: str, entry_point: str | None = None) -> bool:
    """Whether ``code`` is a program rather than prose that happens to parse: it parses, defines
    ``entry_point`` when one is named, and that function (or the module) has a statement that does something."""
    tree = parse_python(code)
    if tree is None:
        return False
    if entry_point is not None:
        function = function_named(tree, entry_point)
        if function is None:
            return False
        body = function.body
    else:
        body = tree.body
    return any(not _is_inert(stmt) for stmt in body)
