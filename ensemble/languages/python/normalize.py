"""Python's normalised form: two answers that differ only in docstrings, comments, formatting, type hints or local
variable names get the same canonical text (without execution, the only agreement there is). Pure functions."""

from __future__ import annotations

import ast
import builtins
import io
import tokenize

from .._base import generic_tokens

__all__ = ["normalize_python", "normalize_tree", "normalized", "tokens"]


_BUILTIN_NAMES = frozenset(dir(builtins))
_SKIP_FIELDS = frozenset({"ctx", "type_comment", "annotation", "returns", "kind", "type_ignores"})
_RENAMED_FIELDS = frozenset({"id", "arg"})


def _is_docstring(stmt: ast.AST) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields_of(cls: type) -> tuple[str, ...]:
    """The fields of an AST node class that take part in the canonical form (computed once per class)."""
    fields = _FIELDS.get(cls)
    if fields is None:
        fields = tuple(f for f in cls._fields if f not in _SKIP_FIELDS)  # type: ignore[attr-defined]
        _FIELDS[cls] = fields
    return fields


def _serialise(node: ast.AST, names: dict[str, str], out: list[str]) -> None:
    """One pass over the tree writing a canonical form: docstrings and annotations dropped, every non-builtin
    name and parameter renamed ``v0, v1, ...`` in order of first appearance (so local names do not matter).
    Hot path (every candidate, ~1000 nodes each): field lists are cached per node class and the common leaf
    cases are handled inline."""
    cls = type(node)
    out.append(cls.__name__)
    out.append("(")
    append = out.append
    for field in _FIELDS.get(cls) or _fields_of(cls):
        value = getattr(node, field, None)
        if type(value) is list:
            if field == "body" and value and _is_docstring(value[0]):
                value = value[1:]
            append("[")
            for item in value:
                if isinstance(item, ast.AST):
                    _serialise(item, names, out)
                else:
                    append(repr(item))
                append(",")
            append("]")
        elif isinstance(value, ast.AST):
            _serialise(value, names, out)
        else:
            if field in _RENAMED_FIELDS and type(value) is str and value not in _BUILTIN_NAMES:
                renamed = names.get(value)
                if renamed is None:
                    renamed = names[value] = f"v{len(names)}"
                value = renamed
            append(repr(value))
        append(",")
    append(")")


def normalize_python(code: str) -> str | None:
    """A canonical text for Python ``code`` (None when it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    return normalize_tree(tree)


def normalize_tree(tree: ast.AST) -> str:
    """:func:`normalize_python` for an already parsed tree (left unchanged)."""
    out: list[str] = []
    _serialise(tree, {}, out)
    return "".join(out)


def tokens(code: str) -> list[str]:
    """Python's tokens without comments and layout (``tokenize``; code it cannot read: the generic lexer)."""
    out = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
                continue
            if tok.type == tokenize.ENDMARKER:
                break
            out.append(tok.string)
        return out
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return generic_tokens(code)


def normalized(code: str) -> str:
    """Equal for code that is the same program up to formatting, comments, docstrings and local names (code that
    does not parse: its tokens)."""
    canon = normalize_python(code)
    if canon is not None:
        return canon
    return " ".join(tokens(code))
