"""Python: the examples a docstring already gives (``>>> f(1)`` / ``2``, ``f(1) ==> 2``, ``For x = 1 the output should
be 2``, ``Input: ... Output: ...``), as call/expected pairs the sandbox can check candidates against.

These come from the user's own file, so using them to choose between candidates is fair: they are the spec the
user wrote. Pure functions, no execution.
"""

from __future__ import annotations

import ast
import functools
import re

from .._base import Example, balanced_calls

__all__ = ["entry_point_of", "extract_examples", "function_docstring", "function_named", "parameters_of"]


@functools.lru_cache(maxsize=256)
def entry_point_of(source: str) -> str | None:
    """The function a stub or selection is about: the last top-level function defined in it."""
    tree = _parse(source)
    if tree is not None:
        names = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if names:
            return names[-1]
    found = re.findall(r"^def\s+([A-Za-z_]\w*)\s*\(", source, flags=re.MULTILINE)
    return found[-1] if found else None


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):
        # A stub often ends right after the docstring, without a body: give it one.
        try:
            return ast.parse(source.rstrip() + "\n    pass\n")
        except (SyntaxError, ValueError):
            return None


def function_named(tree: ast.Module, name: str | None) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The first function (at any depth) called ``name`` in ``tree``."""
    if name is None:
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return node
    return None


def _function(source: str, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    tree = _parse(source)
    return None if tree is None else function_named(tree, name)


def function_docstring(source: str, name: str) -> str:
    node = _function(source, name)
    return (ast.get_docstring(node) or "") if node is not None else ""


def parameters_of(source: str, name: str) -> list[tuple[str, str | None]]:
    """``(parameter name, annotation source or None)`` of ``name``'s positional parameters."""
    node = _function(source, name)
    if node is None:
        return []
    args = [*node.args.posonlyargs, *node.args.args]
    return [(a.arg, ast.unparse(a.annotation) if a.annotation is not None else None) for a in args]


def _is_expr(text: str) -> bool:
    try:
        ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return False
    return True


def _is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return False
    return True


def _calls_entry(text: str, name: str) -> bool:
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError):
        return False
    body = tree.body
    return isinstance(body, ast.Call) and isinstance(body.func, ast.Name) and body.func.id == name


def _clean_expected(text: str) -> str | None:
    text = text.strip().rstrip(".,;").strip()
    text = re.sub(r"^(?:=+>?|➞|->|=>|→)\s*", "", text).strip()
    # "2 (because ...)" / "True # comment": keep the leading literal.
    for candidate in (text, re.split(r"\s+(?:#|\(|because|since|as|-)\s*", text)[0].strip().rstrip(".,;")):
        if candidate and _is_expr(candidate) and _is_literal(candidate):
            return candidate
    if text.lower() in ("true", "false"):
        return text.capitalize()
    return None


_ARROWS = (
    r"(?:#\s*)?(?:==>|=>|->|➞|→|==|=(?!=)|\bshould\s+(?:return|be)\b|\breturns?\b|\bgives\b|\bis\b)"
    r"|#\s*(?=[\[\'\"\d(-])"
)


def extract_examples(source: str, name: str | None = None) -> list[Example]:
    """Examples in the docstring of ``name`` (default: the entry point of ``source``), deduplicated, in order."""
    name = name or entry_point_of(source)
    if not name:
        return []
    doc = function_docstring(source, name)
    if not doc:
        return []
    found: list[Example] = []
    found.extend(_doctest_examples(doc, name))
    found.extend(_inline_examples(doc, name))
    found.extend(_named_examples(doc, name, [p for p, _ in parameters_of(source, name)]))
    seen: set[str] = set()
    unique = []
    for example in found:
        if example.call not in seen:
            seen.add(example.call)
            unique.append(example)
    return unique


def _doctest_examples(doc: str, name: str) -> list[Example]:
    lines = doc.splitlines()
    out = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped.startswith(">>>"):
            continue
        call = stripped[3:].strip()
        expected_lines = []
        for follow in lines[index + 1 :]:
            if not follow.strip() or follow.strip().startswith(">>>"):
                break
            expected_lines.append(follow.strip())
        expected = None
        for count in range(len(expected_lines), 0, -1):  # prose may follow the output without a blank line
            expected = _clean_expected(" ".join(expected_lines[:count]))
            if expected is not None:
                break
        if expected is None:
            call, expected = _split_comparison(call)
        if expected is not None and name in call and _is_expr(call):
            out.append(Example(call, expected))
    return out


def _split_comparison(text: str) -> tuple[str, str | None]:
    """``f(1) == 2`` written as a doctest line with nothing below: the call and ``2``."""
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return text, None
    if isinstance(tree, ast.Compare) and len(tree.ops) == 1 and isinstance(tree.ops[0], (ast.Eq, ast.Is)):
        right = ast.unparse(tree.comparators[0])
        if _is_literal(right):
            return ast.unparse(tree.left), right
    return text, None


def _inline_examples(doc: str, name: str) -> list[Example]:
    """``f(x) ==> y``, ``f(x) ➞ y``, ``f(x) == y``, ``f(x) should return y``, possibly wrapped over lines."""
    out = []
    flat = re.sub(r"\s*\n\s*", " ", doc)
    for start, end in balanced_calls(flat, name, quotes="'\"", not_after=r"\w"):
        call = flat[start:end]
        if flat[max(0, start - 4) : start].strip().endswith(">>>"):
            continue  # doctest form, handled above
        rest = flat[end:]
        match = re.match(rf"\s*{_ARROWS}\s*", rest)
        if not match or not _calls_entry(call, name):
            continue
        tail = rest[match.end() :]
        expected = _leading_literal(tail)
        if expected is not None:
            out.append(Example(call, expected))
    return out


def _leading_literal(text: str) -> str | None:
    """The longest prefix of ``text`` that is a Python literal (``[1, 2]``, ``'abc'``, ``True``, ``-3.5``)."""
    text = text.strip()
    if not text:
        return None
    stops = [m.start() for m in re.finditer(r"[\s,.;]", text)]
    stops += [m.end() for m in re.finditer(r"[)\]}'\"]", text)] + [len(text)]
    for stop in sorted(set(stops), reverse=True):
        piece = text[:stop].strip().rstrip(",.;")
        if not piece or re.match(r"\s*[-+*/%=<>&|^]", text[stop:]):
            continue  # "1 + (2 / 2) = 2" is a formula, not the value 1
        if piece.lower() in ("true", "false", "none"):
            return piece.capitalize()
        if _is_expr(piece) and _is_literal(piece):
            return piece
    return None


def _named_examples(doc: str, name: str, params: list[str]) -> list[Example]:
    """``For lst = [1,2] the output should be 3`` and ``Input: arr = [1, 2] Output: 3`` (also without names)."""
    if not params:
        return []
    out = []
    flat = re.sub(r"\s*\n\s*", " ", doc)
    pattern = re.compile(
        r"(?:\bfor\b|\binput\s*:)\s*(?P<args>.+?)\s*,?\s*(?:the\s+)?(?:output|result|return(?:ed)?\s+value)"
        r"\s*(?:should\s+be|will\s+be|is|:|=)\s*(?P<out>.+?)(?=$|\bfor\b|\binput\s*:|\bexample|\bnote\b)",
        re.IGNORECASE,
    )
    for match in pattern.finditer(flat):
        expected = _leading_literal(match.group("out"))
        if expected is None:
            continue
        call = _call_from_assignments(match.group("args"), name, params)
        if call is not None:
            out.append(Example(call, expected))
    return out


def _call_from_assignments(text: str, name: str, params: list[str]) -> str | None:
    text = text.strip().rstrip(",")
    values: dict[str, str] = {}
    names = "|".join(re.escape(p) for p in params)
    pieces = list(re.finditer(rf"\b({names})\s*[=:]\s*", text))
    if pieces:
        for index, piece in enumerate(pieces):
            end = pieces[index + 1].start() if index + 1 < len(pieces) else len(text)
            value = _leading_literal(text[piece.end() : end].strip().rstrip(",").removesuffix(" and").strip())
            if value is None:
                return None
            values[piece.group(1)] = value
        if set(values) != set(params):
            return None
        args = ", ".join(values[p] for p in params)
    elif len(params) == 1:
        value = _leading_literal(text)
        if value is None:
            return None
        args = value
    else:
        return None
    call = f"{name}({args})"
    return call if _is_expr(call) else None
