"""Wrong and right answers made from one real Python function, for ``bench/realcode.py``.

Pure text-to-text functions (no process, no file): the harness decides which of them count by running the
library's own tests on them.

* :func:`mutants`: one-token mutants (operator swaps, comparison flips, ``and``/``or``, ``True``/``False``,
  ``min``/``max``, ``break``/``continue``, an integer constant +-1, ``return x`` -> ``return None``). Each differs
  from the function by exactly one token, still parses, and has another syntax tree.
* :func:`rewrites`: mechanical behaviour-preserving rewrites: renamed locals, ``ast.unparse`` reformatting, a
  mirrored comparison (``a < b`` -> ``b > a``), the returned value through a local variable, one more docstring
  line. Each is text that differs from the function.
* :func:`strip_examples`: the docstrings without their doctest examples (``>>>`` blocks), the code untouched.

Every function here takes and returns a function's source *dedented to column 0* (decorators included).
"""

from __future__ import annotations

import ast
import builtins
import io
import random
import re
import textwrap
import tokenize
from dataclasses import dataclass

__all__ = [
    "DOC_LINE",
    "Mutant",
    "add_doc_line",
    "code_tokens",
    "explain_return",
    "mirror_compare",
    "mutants",
    "reformat",
    "rename_locals",
    "rewrites",
    "strip_examples",
]

DOC_LINE = "The library's own tests pin down this behaviour."

# One token for another: each swap keeps the program parseable in the usual case; ast.parse decides.
_SWAPS: dict[str, tuple[str, ...]] = {
    "+": ("-",),
    "-": ("+",),
    "*": ("/",),
    "/": ("*",),
    "//": ("/",),
    "%": ("//",),
    "<": ("<=", ">"),
    "<=": ("<", ">="),
    ">": (">=", "<"),
    ">=": (">", "<="),
    "==": ("!=",),
    "!=": ("==",),
    "+=": ("-=",),
    "-=": ("+=",),
    "and": ("or",),
    "or": ("and",),
    "True": ("False",),
    "False": ("True",),
    "min": ("max",),
    "max": ("min",),
    "break": ("continue",),
    "continue": ("break",),
    "any": ("all",),
    "all": ("any",),
}
_SKIPPED_TOKENS = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT)


@dataclass(frozen=True)
class Mutant:
    """One wrong answer: ``text`` is the function with the token at ``line``:``col`` (1-based line, 0-based
    column of the dedented text) changed from ``old`` to ``new``."""

    kind: str  # "operator", "comparison", "boolean", "constant", "return-none", "name", "loop"
    line: int
    col: int
    old: str
    new: str
    text: str


def code_tokens(source: str) -> list[str]:
    """The tokens of ``source`` that carry meaning (no comments, newlines or indentation)."""
    return [
        t.string
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
        if t.type not in _SKIPPED_TOKENS and t.type != tokenize.ENDMARKER
    ]


def _tree_dump(source: str) -> str | None:
    try:
        return ast.dump(ast.parse(source))
    except (SyntaxError, ValueError):
        return None


def _replace_token(lines: list[str], token: tokenize.TokenInfo, new: str) -> str:
    (row, col), (end_row, end_col) = token.start, token.end
    assert row == end_row
    out = list(lines)
    line = out[row - 1]
    out[row - 1] = line[:col] + new + line[end_col:]
    return "".join(out)


def _kind(old: str) -> str:
    if old in ("<", "<=", ">", ">=", "==", "!="):
        return "comparison"
    if old in ("and", "or", "True", "False"):
        return "boolean"
    if old in ("min", "max", "any", "all"):
        return "name"
    if old in ("break", "continue"):
        return "loop"
    return "operator"


def mutants(func: str) -> list[Mutant]:
    """Every one-token mutant of ``func`` that parses and changes its syntax tree, in source order."""
    original = _tree_dump(func)
    if original is None:
        return []
    lines = func.splitlines(keepends=True)
    tokens = [t for t in tokenize.generate_tokens(io.StringIO(func).readline) if t.type not in _SKIPPED_TOKENS]
    out: list[Mutant] = []
    seen: set[str] = set()

    def add(kind: str, token: tokenize.TokenInfo, new: str) -> None:
        text = _replace_token(lines, token, new)
        dump = _tree_dump(text)
        if dump is None or dump == original or text in seen:
            return
        seen.add(text)
        out.append(Mutant(kind, token.start[0], token.start[1], token.string, new, text))

    for index, token in enumerate(tokens):
        if token.type in (tokenize.OP, tokenize.NAME) and token.string in _SWAPS:
            previous = tokens[index - 1].string if index else ""
            if token.type == tokenize.NAME and token.string in ("min", "max", "any", "all") and previous == ".":
                continue  # an attribute named min is not the builtin
            for new in _SWAPS[token.string]:
                add(_kind(token.string), token, new)
        elif token.type == tokenize.NUMBER and re.fullmatch(r"\d+", token.string):
            value = int(token.string)
            add("constant", token, str(value + 1))
            if value >= 1:
                add("constant", token, str(value - 1))
        elif (
            token.type == tokenize.NAME
            and token.string == "return"
            and index + 2 < len(tokens)
            and tokens[index + 1].type in (tokenize.NAME, tokenize.NUMBER)
            and tokens[index + 1].string != "None"
            and tokens[index + 2].start[0] != tokens[index + 1].start[0]  # the value is the line's only token
        ):
            add("return-none", tokens[index + 1], "None")
    return out


# -- rewrites ---------------------------------------------------------------------------------------------------


def _function(tree: ast.Module) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    first = tree.body[0] if tree.body else None
    return first if isinstance(first, (ast.FunctionDef, ast.AsyncFunctionDef)) else None


def _parse_function(func: str) -> tuple[ast.Module, ast.FunctionDef | ast.AsyncFunctionDef] | None:
    try:
        tree = ast.parse(func)
    except SyntaxError:
        return None
    node = _function(tree)
    return (tree, node) if node is not None else None


def _all_names(node: ast.AST) -> set[str]:
    names: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            names.add(sub.id)
        elif isinstance(sub, ast.arg):
            names.add(sub.arg)
        elif isinstance(sub, ast.Attribute):
            names.add(sub.attr)
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(sub.name)
    return names


def _fresh(base: str, taken: set[str]) -> str:
    name = base
    while name in taken or name in dir(builtins):
        name += "_"
    return name


def _splice_bytes(func: str, edits: list[tuple[int, int, int, int, str]]) -> str:
    """Apply ``(line, col, end_line, end_col, text)`` edits (ast positions: 1-based lines, UTF-8 byte columns)."""
    lines = [line.encode() for line in func.splitlines(keepends=True)]
    for line, col, end_line, end_col, text in sorted(edits, reverse=True):
        head = lines[line - 1][:col]
        tail = lines[end_line - 1][end_col:]
        lines[line - 1 : end_line] = [head + text.encode() + tail]
    return b"".join(lines).decode()


def rename_locals(func: str) -> str | None:
    """Every local variable assigned in the function (not a parameter, not global/nonlocal) renamed; None when
    there is none."""
    parsed = _parse_function(func)
    if parsed is None:
        return None
    _, node = parsed
    params = {a.arg for a in ast.walk(node.args) if isinstance(a, ast.arg)}
    declared = {n for sub in ast.walk(node) if isinstance(sub, (ast.Global, ast.Nonlocal)) for n in sub.names}
    nested_params = {a.arg for sub in ast.walk(node) if isinstance(sub, ast.arg) for a in [sub]} - params
    stored = sorted(
        {
            sub.id
            for sub in ast.walk(node)
            if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Store)
            if sub.id not in params and sub.id not in declared and sub.id not in nested_params
        }
    )
    if not stored:
        return None
    taken = _all_names(node)
    renames: dict[str, str] = {}
    for name in stored:
        renames[name] = _fresh(f"{name.rstrip('_')}_value", taken | set(renames.values()))
    edits = [
        (
            sub.lineno,
            sub.col_offset,
            sub.end_lineno or sub.lineno,
            sub.end_col_offset or sub.col_offset,
            renames[sub.id],
        )
        for sub in ast.walk(node)
        if isinstance(sub, ast.Name) and sub.id in renames
    ]
    text = _splice_bytes(func, edits)
    return text if _tree_dump(text) is not None else None


def reformat(func: str) -> str | None:
    """The function as ``ast.unparse`` writes it (comments dropped, quotes and spacing normalised); None when that
    is the same text."""
    parsed = _parse_function(func)
    if parsed is None:
        return None
    text = ast.unparse(parsed[0]) + "\n"
    return None if text.strip() == func.strip() else text


_MIRROR = {ast.Lt: ">", ast.LtE: ">=", ast.Gt: "<", ast.GtE: "<=", ast.Eq: "==", ast.NotEq: "!="}
_ATOMS = (ast.Name, ast.Constant, ast.Attribute, ast.Subscript, ast.Call)


def _segment(lines: list[bytes], node: ast.expr) -> str:
    return lines[node.lineno - 1][node.col_offset : node.end_col_offset].decode()


def mirror_compare(func: str, rng: random.Random | None = None) -> str | None:
    """One single-line comparison ``a OP b`` written ``b OP' a`` (``<`` becomes ``>``, ``==`` stays); None when
    the function has none. ``rng`` picks which one (the first when None)."""
    parsed = _parse_function(func)
    if parsed is None:
        return None
    _, node = parsed
    lines = [line.encode() for line in func.splitlines(keepends=True)]
    found = [
        sub
        for sub in ast.walk(node)
        if isinstance(sub, ast.Compare)
        and len(sub.ops) == 1
        and type(sub.ops[0]) in _MIRROR
        and sub.lineno == sub.end_lineno
        and sub.left.lineno == sub.left.end_lineno == sub.comparators[0].end_lineno
    ]
    if not found:
        return None
    found.sort(key=lambda c: (c.lineno, c.col_offset))
    cmp = rng.choice(found) if rng is not None else found[0]

    def side(expr: ast.expr) -> str:
        text = _segment(lines, expr)
        return text if isinstance(expr, _ATOMS) else f"({text})"

    new = f"{side(cmp.comparators[0])} {_MIRROR[type(cmp.ops[0])]} {side(cmp.left)}"
    text = _splice_bytes(func, [(cmp.lineno, cmp.col_offset, cmp.lineno, cmp.end_col_offset or 0, new)])
    return text if _tree_dump(text) is not None else None


def explain_return(func: str) -> str | None:
    """The first ``return EXPR`` that stands alone on its lines becomes ``NAME = EXPR`` then ``return NAME``;
    None when there is none."""
    parsed = _parse_function(func)
    if parsed is None:
        return None
    _, node = parsed
    lines = func.splitlines(keepends=True)
    name = _fresh("result", _all_names(node))
    returns = sorted(
        (sub for sub in ast.walk(node) if isinstance(sub, ast.Return) and sub.value is not None),
        key=lambda r: r.lineno,
    )
    for ret in returns:
        line = lines[ret.lineno - 1]
        indent = line[: len(line) - len(line.lstrip())]
        end = ret.end_lineno or ret.lineno
        if not line.lstrip().startswith("return ") or ret.col_offset != len(indent.encode()):
            continue
        if lines[end - 1].rstrip("\r\n").encode()[ret.end_col_offset or 0 :].strip():
            continue  # something follows on the last line (``; x``): leave it
        body = "".join(lines[ret.lineno - 1 : end])
        assigned = indent + name + " =" + body[len(indent) + len("return") :]
        if not assigned.endswith("\n"):
            assigned += "\n"
        text = "".join(lines[: ret.lineno - 1]) + assigned + f"{indent}return {name}\n" + "".join(lines[end:])
        if _tree_dump(text) is not None:
            return text
    return None


def add_doc_line(func: str, line: str = DOC_LINE) -> str | None:
    """The function with one more line at the end of its docstring (a docstring made of ``line`` when it has
    none); None when it cannot be done safely (one-line body, a docstring that is not triple-quoted)."""
    parsed = _parse_function(func)
    if parsed is None:
        return None
    _, node = parsed
    lines = func.splitlines(keepends=True)
    first = node.body[0]
    body_line = lines[first.lineno - 1]
    indent = body_line[: len(body_line) - len(body_line.lstrip())]
    if first.lineno == node.lineno or not indent:
        return None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        end_line = first.end_lineno or first.lineno
        raw = lines[end_line - 1].encode()
        end_col = first.end_col_offset or 0
        closing = raw[end_col - 3 : end_col].decode()
        if closing not in ('"""', "'''"):
            return None
        if first.lineno != end_line and not raw[: end_col - 3].strip():
            # The closing quotes stand on their own line: a blank line and the new one go above them.
            text = "".join(lines[: end_line - 1]) + f"\n{indent}{line}\n" + "".join(lines[end_line - 1 :])
        else:
            insert = f"\n\n{indent}{line}\n{indent}"
            text = _splice_bytes(func, [(end_line, end_col - 3, end_line, end_col - 3, insert)])
    else:
        text = "".join(lines[: first.lineno - 1]) + f'{indent}"""{line}"""\n' + "".join(lines[first.lineno - 1 :])
    return text if _tree_dump(text) is not None else None


def rewrites(func: str, rng: random.Random | None = None) -> dict[str, str]:
    """Every rewrite that applies, by name: ``rename``, ``reformat``, ``mirror``, ``explain-return``,
    ``doc-line``. Only texts that differ from ``func`` are returned."""
    made = {
        "rename": rename_locals(func),
        "reformat": reformat(func),
        "mirror": mirror_compare(func, rng),
        "explain-return": explain_return(func),
        "doc-line": add_doc_line(func),
    }
    return {name: text for name, text in made.items() if text is not None and text != func}


# -- docstring examples ------------------------------------------------------------------------------------------


def _docstrings(tree: ast.AST) -> list[ast.Constant]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                out.append(first.value)
    return out


def strip_examples(source: str) -> str:
    """``source`` with every doctest example (a ``>>>`` line, its ``...`` continuations and its expected output,
    up to the next blank line) removed from its docstrings; the same text when there is none, or when the result
    would not be the same program but for docstrings."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return source
    lines = source.splitlines(keepends=True)
    drop: set[int] = set()  # 0-based line indexes
    closing_lines: dict[int, str] = {}
    for doc in _docstrings(tree):
        start, end = doc.lineno, doc.end_lineno or doc.lineno
        if start == end:
            continue
        inside = False
        for number in range(start + 1, end + 1):  # the opening line holds the summary, never an example
            text = lines[number - 1].strip()
            if text.startswith(">>>"):
                inside = True
            elif not text or text in ('"""', "'''"):
                inside = False
            if inside:
                if number == end:  # the closing quotes end an example's output line: keep only them
                    line = lines[number - 1]
                    indent = line[: len(line) - len(line.lstrip())]
                    closing_lines[number - 1] = indent + line.rstrip()[-3:] + "\n"
                else:
                    drop.add(number - 1)
    if not drop and not closing_lines:
        return source
    for doc in _docstrings(tree):  # the blank lines that separated the examples: one is enough
        previous_blank = False
        for index in range(doc.lineno, doc.end_lineno or doc.lineno):
            if index in drop:
                continue
            blank = not lines[index].strip()
            if blank and previous_blank:
                drop.add(index)
            previous_blank = blank
    out = [closing_lines.get(i, line) for i, line in enumerate(lines) if i not in drop]
    text = "".join(out)
    try:
        stripped = ast.parse(text)
    except SyntaxError:
        return source
    return text if _without_docs(stripped) == _without_docs(tree) else source


def _without_docs(tree: ast.AST) -> str:
    tree = ast.parse(ast.unparse(tree))  # a copy
    for doc in _docstrings(tree):
        doc.value = ""
    return ast.dump(tree)


def dedent_function(segment: str) -> tuple[str, str]:
    """``segment`` (a function's lines as they stand in the file) dedented, and the indentation removed."""
    dedented = textwrap.dedent(segment)
    first = segment.splitlines()[0] if segment.strip() else ""
    indent = first[: len(first) - len(first.lstrip())]
    return dedented, indent
