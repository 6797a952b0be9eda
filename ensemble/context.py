"""Finds the code a request is about and what an expert would look at around it.

From a document's text and a line range this module gives the user's selection (or, with nothing selected, the
enclosing function/class), the file's imports, the enclosing signature and the surrounding lines within a budget,
and tells whether a function is a stub worth offering "Implement this function" on. Python is read with ``ast``,
the languages ``ensemble/languages`` parses with tree-sitter; others (and Python that does not parse, common while
editing) fall back to indentation.
No LSP imports here: the language server and the CLI both use it.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

from .languages import is_python, language_by_extension, language_for
from .languages._treesitter import TreeSitterLanguage
from .types import CodeContext

__all__ = [
    "Block",
    "build_context",
    "enclosing_block",
    "find_imports",
    "is_stub",
    "language_from_path",
    "parse_blocks",
    "reindent",
]

# Lines that open a block worth treating as "the function" in languages we do not parse.
_DEF_RE = re.compile(
    r"^\s*(?:async\s+def|def|class|function|func|fn|pub\s+fn|local\s+function|public|private|protected|static)\b"
)
_IMPORT_RE = re.compile(
    r"^\s*(?:import\s|from\s+\S+\s+import\s|#include\s|use\s|require\(|const\s+\w+\s*=\s*require\()"
)
_TODO_RE = re.compile(r"\b(?:TODO|FIXME)\b")


@dataclass(frozen=True, slots=True)
class Block:
    """A function or class: lines ``[start, end)`` (0-based), its kind, name and header (signature) lines."""

    start: int
    end: int
    kind: str  # "function" | "class" | "block"
    name: str
    header: str


def language_from_path(path: str | None, default: str = "python") -> str:
    """The LSP language id guessed from a file name."""
    if not path:
        return default
    found = language_by_extension(path)
    return found.name if found is not None else default


def _python_blocks(text: str) -> list[Block] | None:
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


def _indent_of(line: str) -> int:
    return len(line) - len(line.lstrip())


def _indent_blocks(lines: list[str]) -> list[Block]:
    """Blocks opened by a definition-looking line, ending where indentation returns to its level (or a closing
    brace at that level, for brace languages)."""
    blocks: list[Block] = []
    for i, line in enumerate(lines):
        if not _DEF_RE.match(line):
            continue
        level = _indent_of(line)
        end = i + 1
        for j in range(i + 1, len(lines)):
            current = lines[j]
            if not current.strip():
                continue
            if _indent_of(current) <= level:
                # A closing brace at the opening level still belongs to the block.
                end = j + 1 if current.strip().startswith(("}", "end")) else end
                break
            end = j + 1
        name_match = re.search(r"(?:def|class|function|func|fn)\s+(\w+)", line)
        kind = "class" if re.match(r"^\s*class\b", line) else "function"
        blocks.append(Block(i, end, kind, name_match.group(1) if name_match else "", line.rstrip()))
    return blocks


def parse_blocks(text: str, language: str = "python") -> list[Block]:
    """Every function and class of ``text`` (``ast`` for Python that parses, indentation otherwise). Callers that
    ask often (code actions) cache this per document version."""
    if is_python(language):
        parsed = _python_blocks(text)
        if parsed is not None:
            return parsed
    else:
        lang = language_for(language)
        if lang.checks_syntax:
            # tree-sitter finds functions indentation cannot (``const f = (x) => {``), even in code being edited.
            found = [
                Block(f.start_line, f.end_line, "function", f.name, (f.header or f.text).split("\n", 1)[0].rstrip())
                for f in lang.functions(text)
            ]
            if found:
                return found
    return _indent_blocks(text.splitlines())


def enclosing_block(
    text: str | list[Block], line: int, language: str = "python", *, prefer: str = "function"
) -> Block | None:
    """The innermost function (else class) containing ``line``; ``None`` when the line is at top level.
    ``text`` may be the document's text or its :func:`parse_blocks`."""
    blocks = parse_blocks(text, language) if isinstance(text, str) else text
    containing = [b for b in blocks if b.start <= line < b.end]
    if not containing:
        return None
    preferred = [b for b in containing if b.kind == prefer]
    pool = preferred or containing
    return min(pool, key=lambda b: b.end - b.start)


def is_stub(code: str, language: str = "python") -> bool:
    """True when a function's body is only a placeholder: ``...``, ``pass``, ``raise NotImplementedError``, or
    contains a TODO/FIXME marker (docstrings and comments do not count as a body)."""
    if _TODO_RE.search(code):
        return True
    if is_python(language):
        try:
            tree = ast.parse(textwrap.dedent(code))
        except (SyntaxError, ValueError):
            return False
        funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
        if not funcs:
            return False
        return _body_is_placeholder(funcs[0].body)
    # Other languages: an empty body between braces, or a "not implemented" throw.
    inner = code.split("{", 1)[1].rsplit("}", 1)[0] if "{" in code else ""
    stripped = re.sub(r"//.*|/\*.*?\*/", "", inner, flags=re.S).strip()
    return stripped == "" or bool(re.search(r"not\s*implemented|unimplemented!|todo!", stripped, re.I))


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


def find_imports(text: str, language: str = "python", limit: int = 60) -> str:
    """The file's module-level imports (at most ``limit`` lines), which tell a model which names exist and which
    the sandbox runs above the selection, so they must parse on their own.

    Only what the module runs when imported: top-level import statements (multi-line ones whole) and, for
    Python, the top-level ``try``/``if`` blocks made of imports (``try: import x except ImportError: x = None``,
    ``if TYPE_CHECKING:``) verbatim. Imports inside functions and methods are the function's own; collected
    here they would be indented lines that do not parse."""
    if is_python(language):
        # Huge files (the server's bounded path) and code being edited: column-0 import lines, continued while
        # open; ``ast`` otherwise.
        found = _python_imports(text) if text.count("\n") <= _PARSE_IMPORTS_LINES else None
        if found is None:
            found = _column0_imports(text.splitlines())
    else:
        found = _treesitter_imports(text, language)
    out: list[str] = []
    for statement in found:
        lines = statement.splitlines()
        if len(out) + len(lines) > limit:
            break  # never half a statement: the text must still parse
        out.extend(line.rstrip() for line in lines)
    return "\n".join(out)


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


def _python_imports(text: str) -> list[str] | None:
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


def _column0_imports(lines: list[str]) -> list[str]:
    """Import lines at column 0, with the lines that continue them (open brackets, backslashes)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not _IMPORT_RE.match(line) or line[:1].isspace():
            continue
        statement = [line]
        depth = line.count("(") - line.count(")")
        while i < len(lines) and (depth > 0 or statement[-1].rstrip().endswith("\\")):
            statement.append(lines[i])
            depth += lines[i].count("(") - lines[i].count(")")
            i += 1
        out.append("\n".join(statement))
    return out


def _treesitter_imports(text: str, language: str) -> list[str]:
    """The top-level statements that import (``import``, ``use``, ``#include``, a top-level ``require``), whole:
    a Go ``import ( ... )`` block keeps its lines. Languages without a grammar: column-0 import lines."""
    lang = language_for(language)
    if not isinstance(lang, TreeSitterLanguage):
        return _column0_imports(text.splitlines())
    source = text.encode("utf-8")
    out: list[str] = []
    for node in lang.tree(text).root_node.children:
        statement = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
        if _IMPORT_RE.match(statement):
            out.append(statement)
    return out


def reindent(code: str, like: str) -> str:
    """``code`` re-indented to the indentation of the first non-blank line of ``like``.

    Models often answer a method at column 0; inserting that into a class would break it.
    """
    target = next((line for line in like.splitlines() if line.strip()), "")
    indent = target[: len(target) - len(target.lstrip())]
    body = textwrap.dedent(code)
    if not indent:
        return body
    return "\n".join(indent + line if line.strip() else line for line in body.splitlines()) + (
        "\n" if code.endswith("\n") else ""
    )


def _tail(lines: list[str], budget: int) -> str:
    out: list[str] = []
    used = 0
    for line in reversed(lines):
        used += len(line) + 1
        if used > budget:
            break
        out.append(line)
    return "\n".join(reversed(out))


def _head(lines: list[str], budget: int) -> str:
    out: list[str] = []
    used = 0
    for line in lines:
        used += len(line) + 1
        if used > budget:
            break
        out.append(line)
    return "\n".join(out)


def build_context(
    text: str,
    start_line: int,
    end_line: int,
    *,
    language: str = "python",
    path: str | None = None,
    budget_chars: int = 4000,
) -> CodeContext:
    """The :class:`CodeContext` for lines ``[start_line, end_line)`` of ``text``.

    ``before``/``after`` hold the surrounding lines, nearest first in priority, within ``budget_chars`` in all
    (two thirds above, since what is above usually defines what the selection uses).
    """
    lines = text.splitlines()
    start = max(0, min(start_line, len(lines)))
    end = max(start, min(end_line, len(lines)))
    selection = "\n".join(lines[start:end])
    imports = find_imports(text, language)
    enclosing: str | None = None
    if lines:
        block = enclosing_block(text, start, language, prefer="class") if start < len(lines) else None
        # The signature of what contains the selection, unless the selection is that block itself.
        if block is not None and not (block.start >= start and block.end <= end):
            enclosing = block.header
    room = max(0, budget_chars - len(selection))
    before = _tail(lines[:start], room * 2 // 3)
    after = _head(lines[end:], room - len(before))
    return CodeContext(
        path=path,
        language=language,
        selection=selection,
        start_line=start,
        end_line=end,
        before=before,
        after=after,
        enclosing=enclosing,
        imports=imports,
    )
