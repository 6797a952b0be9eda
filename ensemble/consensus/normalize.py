"""Make candidates comparable: two answers that differ only in docstrings, comments, formatting, type hints or
local variable names get the same normalised form, and a fast similarity says how close two candidates are
(used when candidates cannot be executed: other languages, ``verify`` off).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections import Counter

__all__ = ["normalize_python", "normalized_key", "similarity", "token_profile", "tokens"]


class _Canonical(ast.NodeTransformer):
    """Strip docstrings and annotations; rename parameters and locals to ``v0, v1, ...`` per function."""

    def _strip_docstring(self, body: list[ast.stmt]) -> list[ast.stmt]:
        first = body[0] if body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
            body = body[1:] or [ast.Pass()]
        return body

    def visit_Module(self, node: ast.Module) -> ast.AST:
        node.body = self._strip_docstring(node.body)
        self.generic_visit(node)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.body = self._strip_docstring(node.body)
        self.generic_visit(node)
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        return self._function(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        return self._function(node)

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.body = self._strip_docstring(node.body)
        node.returns = None
        mapping: dict[str, str] = {}
        for arg in [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]:
            arg.annotation = None
            mapping.setdefault(arg.arg, f"v{len(mapping)}")
        for sub in ast.walk(ast.Module(body=node.body, type_ignores=[])):
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store):
                mapping.setdefault(sub.id, f"v{len(mapping)}")
        for sub in ast.walk(node):
            if isinstance(sub, ast.arg) and sub.arg in mapping:
                sub.arg = mapping[sub.arg]
            elif isinstance(sub, ast.Name) and sub.id in mapping:
                sub.id = mapping[sub.id]
        # Nested functions get their own fresh names after the outer renaming.
        node.body = [self.visit(stmt) for stmt in node.body]
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:
            return ast.Pass()
        return ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)


def normalize_python(code: str) -> str | None:
    """A canonical text for Python ``code`` (None when it does not parse)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    tree = _Canonical().visit(tree)
    return ast.dump(tree, annotate_fields=False)


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/|#[^\n]*|--[^\n]*", re.S)
_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|\S")


def tokens(code: str, language: str = "python") -> list[str]:
    """Tokens without comments and layout; Python via ``tokenize``, other languages by a generic lexer."""
    if language.lower() in ("python", "py", "python3"):
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
    if language.lower() in ("python", "py", "python3"):
        canon = normalize_python(code)
        if canon is not None:
            return canon
    return " ".join(tokens(code, language))


def token_profile(code: str, language: str = "python") -> Counter[str]:
    """Token trigram counts: the representation :func:`similarity` compares (compute once per candidate)."""
    toks = tokens(code, language)
    return Counter(zip(toks, toks[1:], toks[2:], strict=False)) if len(toks) >= 3 else Counter(toks)  # type: ignore[arg-type]


def similarity(a: str | Counter[str], b: str | Counter[str], language: str = "python") -> float:
    """Weighted Jaccard similarity of token trigrams, in [0, 1]; linear time, so cheap for all pairs."""
    pa = a if isinstance(a, Counter) else token_profile(a, language)
    pb = b if isinstance(b, Counter) else token_profile(b, language)
    if not pa and not pb:
        return 1.0
    inter = sum((pa & pb).values())
    union = sum((pa | pb).values())
    return inter / union if union else 0.0
