"""Python's extraction: from a model's raw answer to the code the user would get: the right fenced block, prose
removed, a body-only answer merged with the user's signature, indentation repaired, test scaffolding (``__main__``
blocks, example prints and asserts) removed, helpers and imports from the user's own code kept, and missing
standard-library imports added. Answers that still do not parse are kept and marked, never silently dropped.

Pure functions: no I/O, no execution.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
import textwrap

from .._base import Extracted, fenced_blocks
from .examples import entry_point_of
from .normalize import normalize_tree

__all__ = ["IDS", "extract"]

#: Python's LSP language ids, which are also the tags models put on its fences.
IDS = ("python", "py", "python3", "py3", "pycon", "ipython")
_PY_TAGS = {*IDS, ""}

# Names models use without importing them, and the import that provides each.
_MODULES = {
    "math", "re", "collections", "itertools", "functools", "string", "heapq", "bisect", "random", "operator",
    "statistics", "sys", "typing", "fractions", "decimal", "hashlib", "copy", "datetime", "json", "os",
}  # fmt: skip
_FROM = {
    **dict.fromkeys(("List", "Dict", "Tuple", "Optional", "Any", "Union", "Set", "Callable", "Iterable", "Iterator", "Sequence", "Mapping", "FrozenSet", "Deque", "DefaultDict"), "typing"),
    **dict.fromkeys(("Counter", "defaultdict", "deque", "OrderedDict", "namedtuple"), "collections"),
    **dict.fromkeys(("reduce", "lru_cache", "cmp_to_key", "cache", "partial"), "functools"),
    **dict.fromkeys(("permutations", "combinations", "product", "accumulate", "groupby", "chain", "combinations_with_replacement", "zip_longest", "islice", "count"), "itertools"),
    **dict.fromkeys(("sqrt", "gcd", "factorial", "ceil", "floor", "isqrt", "comb", "prod", "log"), "math"),
    **dict.fromkeys(("heappush", "heappop", "heapify"), "heapq"),
    "Fraction": "fractions",
    "Decimal": "decimal",
    "ascii_lowercase": "string",
    "ascii_uppercase": "string",
    "ascii_letters": "string",
    "digits": "string",
    "punctuation": "string",
    "bisect_left": "bisect",
    "bisect_right": "bisect",
}  # fmt: skip
_BUILTINS = set(dir(builtins))


def extract(raw: str, *, context: str = "", entry_point: str | None = None) -> Extracted:
    """The Python code in ``raw``. ``context`` is the user's code the answer is for (signature, docstring,
    helpers); ``entry_point`` the function asked for (default: the last function in ``context``)."""
    notes: list[str] = []
    if entry_point is None and context:
        entry_point = entry_point_of(context)
    text = raw.replace("\r\n", "\n").replace("\t", "    ")
    text = _choose_block(text, entry_point, notes)
    text = _strip_prose(text, notes)
    if not text.strip():
        return Extracted("", parseable=False, notes=(*notes, "empty"))
    if entry_point and not re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", text, re.M):
        merged = _merge_body(text, context, entry_point)
        if merged is not None:
            text = merged
            notes.append("body merged with the signature")
    tree, text = _parse_repairing(text, notes)
    if tree is None:
        return Extracted(text.strip("\n") + "\n", parseable=False, notes=(*notes, "unparseable"))
    tree = _drop_scaffolding(tree, notes)
    tree = _add_context(tree, context, entry_point, notes)
    changed = "scaffolding removed" in notes or "context added" in notes
    code = ast.unparse(tree) if changed else text
    missing = _missing_imports(tree, code)
    if missing:
        notes.append("imports added: " + ", ".join(missing))
        code = "\n".join(missing) + "\n" + code
    return Extracted(code.strip("\n") + "\n", parseable=True, notes=tuple(notes), norm=normalize_tree(tree))


def _choose_block(text: str, entry_point: str | None, notes: list[str]) -> str:
    blocks = fenced_blocks(text)
    if not blocks:
        return text
    python = [body for lang, body in blocks if lang in _PY_TAGS] or [body for _, body in blocks]
    notes.append("fenced")
    if len(python) == 1:
        return python[0]

    def score(body: str) -> tuple[int, int, int]:
        defines = bool(entry_point and re.search(rf"def\s+{re.escape(entry_point)}\s*\(", body))
        return (int(defines), int(_parses(body)), len(body))

    return max(python, key=score)


def _parses(text: str) -> bool:
    try:
        ast.parse(text)
    except (SyntaxError, ValueError):
        return False
    return True


_CODE_START = re.compile(
    r"^(\s*)(def |async def |class |import |from \S+ import |@|#|[A-Za-z_]\w*\s*=|if |for |while |return\b)"
)


def _strip_prose(text: str, notes: list[str]) -> str:
    """Drop explanation lines before the first code-looking line (prose after is handled by the parser)."""
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if _CODE_START.match(line) or (line.startswith((" ", "\t")) and line.strip()):
            if index and any(x.strip() for x in lines[:index]):
                notes.append("prose removed")
            return "\n".join(lines[index:])
    return text


def _merge_body(text: str, context: str, entry_point: str) -> str | None:
    """A body-only answer: put it under the signature (and docstring) from the user's code."""
    header = _signature_from_context(context, entry_point)
    if header is None:
        return None
    body = textwrap.dedent(text)
    if not body.strip():
        return None
    indented = textwrap.indent(body, "    ")
    return header.rstrip("\n") + "\n" + indented


def _signature_from_context(context: str, entry_point: str) -> str | None:
    """The context up to and including the entry point's docstring (its imports and helpers come along)."""
    match = re.search(rf"^(?:async\s+)?def\s+{re.escape(entry_point)}\s*\(", context, re.M)
    if not match:
        return None
    rest = context[match.start() :]
    header_end = re.search(r"\)\s*(?:->[^:]*)?:\s*\n", rest)
    if not header_end:
        return None
    end = match.start() + header_end.end()
    doc = re.match(r"[ \t]*(?:[rbuRBU]{0,2})(\"\"\"|''')", context[end:])
    if doc:
        close = context.find(doc.group(1), end + doc.end())
        if close != -1:
            newline = context.find("\n", close)
            end = len(context) if newline == -1 else newline + 1
    return context[:end]


def _parse_repairing(text: str, notes: list[str]) -> tuple[ast.Module | None, str]:
    tree = _try_parse(text)
    if tree is not None:
        return tree, text
    for label, fix in (("dedented", textwrap.dedent), ("re-indented", _reindent)):
        fixed = fix(text)
        tree = _try_parse(fixed)
        if tree is not None:
            notes.append(label)
            return tree, fixed
    # Truncated or trailed by prose: keep the longest prefix that parses (at least half of it).
    lines = text.rstrip("\n").split("\n")
    for cut in range(len(lines) - 1, max(len(lines) // 2, 1) - 1, -1):
        prefix = "\n".join(lines[:cut])
        tree = _try_parse(prefix)
        if tree is not None and any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) for n in tree.body):
            notes.append("truncated")
            return tree, prefix
    return None, text


def _try_parse(text: str) -> ast.Module | None:
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


_DEDENT_KEYWORDS = ("elif ", "elif(", "else:", "except", "finally:")
_END_OF_BLOCK = re.compile(r"^(return\b|break\b|continue\b|pass\b|raise\b)")


def _reindent(text: str) -> str:
    """Rebuild indentation lost by a chat UI (every line at 0 or 1 space) from the block structure: a line
    ending in ``:`` opens a block; ``elif``/``else``/``except`` close one; ``return`` and friends end one; the
    last ``return`` of a function belongs to the function's own body."""
    raws = text.split("\n")
    out = []
    level = 0
    opened: list[int] = []  # levels of open block headers
    for index, raw in enumerate(raws):
        line = raw.strip()
        if not line:
            out.append("")
            continue
        if line.startswith(("def ", "async def ", "class ", "@")) and raw[:1] not in (" ", "\t") and out:
            level, opened = 0, []
        if line.startswith(_DEDENT_KEYWORDS) and opened:
            level = opened.pop()
        following = next((r for r in raws[index + 1 :] if r.strip()), "")
        if line.startswith("return") and opened and (not following or following.startswith(("def ", "class "))):
            level, opened = opened[0] + 1, opened[:1]
        out.append("    " * level + line)
        if line.endswith(":") and not line.startswith("#"):
            opened.append(level)
            level += 1
        elif _END_OF_BLOCK.match(line) and opened:
            level = opened.pop()
    return "\n".join(out)


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__name__" in ast.unparse(node.test)


def _drop_scaffolding(tree: ast.Module, notes: list[str]) -> ast.Module:
    """Keep what defines the solution (imports, functions, classes, constants); drop demo code around it."""
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    keep: list[ast.stmt] = []
    for node in tree.body:
        if (
            isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            or (isinstance(node, (ast.Assign, ast.AnnAssign)) and not _calls_any(node, defined | {"print", "input"}))
            or (isinstance(node, ast.Try) and all(isinstance(s, (ast.Import, ast.ImportFrom)) for s in node.body))
        ):
            keep.append(node)
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is tree.body[0]:
            continue  # module docstring: harmless but not part of the solution
        else:
            notes.append("scaffolding removed") if "scaffolding removed" not in notes else None
    tree.body = keep
    return tree


def _calls_any(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names for n in ast.walk(node))


@functools.lru_cache(maxsize=64)
def _context_tree(context: str) -> ast.Module | None:
    """The user's code parsed once per request (a stub without a body gets one). Shared: read-only."""
    return _try_parse(context) or _try_parse(context.rstrip() + "\n    pass\n")


def _add_context(tree: ast.Module, context: str, entry_point: str | None, notes: list[str]) -> ast.Module:
    """Bring the user's imports and helper functions the answer relies on but did not repeat."""
    ctx = _context_tree(context)
    if ctx is None:
        return tree
    have = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    imports = {ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))}
    prelude: list[ast.stmt] = []
    for node in ctx.body:
        if (isinstance(node, (ast.Import, ast.ImportFrom)) and ast.unparse(node) not in imports) or (
            isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and node.name not in have
            and node.name != entry_point
        ):
            prelude.append(node)
    if prelude:
        notes.append("context added")
        tree.body = prelude + tree.body
    return tree


_KNOWN_NAME = re.compile(r"\b(?:" + "|".join(sorted(_MODULES | set(_FROM))) + r")\b")


def _missing_imports(tree: ast.Module, text: str = "") -> list[str]:
    """Import lines for standard-library names the code uses but never binds."""
    if text and not _KNOWN_NAME.search(text):
        return []  # cheap exit: none of the names we know how to import appears at all
    bound: set[str] = set(_BUILTINS)
    used: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (used if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    lines = []
    for name in sorted(used - bound):
        if name in _MODULES:
            lines.append(f"import {name}")
        elif name in _FROM:
            lines.append(f"from {_FROM[name]} import {name}")
    return lines
