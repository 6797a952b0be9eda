"""Make candidates comparable: two answers that differ only in docstrings, comments, formatting, type hints or
local variable names get the same normalised form (without execution, the only agreement there is), and a fast
similarity says how close two candidates are (without execution it only breaks ties between groups of equal vote:
similar code is not the same code).
"""

from __future__ import annotations

import ast
import builtins
import io
import re
import tokenize
from collections import Counter

from ..languages import is_python, language_for
from ..languages._treesitter import TreeSitterLanguage

__all__ = ["normalize_python", "normalize_tree", "normalized_key", "similarity", "token_profile", "tokens"]


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


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/|#[^\n]*|--[^\n]*", re.S)
_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|\S")


def tokens(code: str, language: str = "python") -> list[str]:
    """Tokens without comments and layout; Python via ``tokenize``, other languages by their tree-sitter
    grammar (``ensemble/languages``), languages without one by a generic lexer."""
    if not is_python(language):
        lang = language_for(language)
        if isinstance(lang, TreeSitterLanguage):
            return lang.tokens(code)
    else:
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
            pass
    return _TOKEN.findall(_COMMENT.sub(" ", code))


def normalized_key(code: str, language: str = "python") -> str:
    """Equal for candidates that are the same program up to formatting, comments, docstrings and local names."""
    if not is_python(language):
        return language_for(language).normalize(code)
    canon = normalize_python(code)
    if canon is not None:
        return canon
    return " ".join(tokens(code, language))


def token_profile(code: str, language: str = "python") -> Counter[str]:
    """Token trigram counts: the representation :func:`similarity` compares (compute once per candidate).
    Uses the fast generic lexer for every language: similarity needs speed more than exact Python tokens."""
    toks = _TOKEN.findall(_COMMENT.sub(" ", code))
    return Counter(zip(toks, toks[1:], toks[2:], strict=False)) if len(toks) >= 3 else Counter(toks)  # type: ignore[arg-type]


def similarity(a: str | Counter[str], b: str | Counter[str], language: str = "python") -> float:
    """Weighted Jaccard similarity of token trigrams, in [0, 1]; linear time, so cheap for all pairs."""
    pa = a if isinstance(a, Counter) else token_profile(a, language)
    pb = b if isinstance(b, Counter) else token_profile(b, language)
    if not pa and not pb:
        return 1.0
    # |A & B| by walking the smaller profile, |A | B| = |A| + |B| - |A & B|: no intermediate Counters.
    small, large = (pa, pb) if len(pa) <= len(pb) else (pb, pa)
    get = large.get
    inter = 0
    for key, count in small.items():
        other = get(key)
        if other:
            inter += count if count < other else other
    union = pa.total() + pb.total() - inter
    return inter / union if union else 0.0
