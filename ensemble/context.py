"""Finds the code a request is about and what an expert would look at around it.

From a document's text and a line range this module gives the user's selection (or, with nothing selected, the
enclosing function/class), the file's imports, the enclosing signature and the surrounding lines within a budget,
and tells whether a function is a stub worth offering "Implement this function" on. Python is read with ``ast``,
the languages ``ensemble/languages`` parses with tree-sitter; others (and Python that does not parse, common while
editing) fall back to indentation.
No LSP imports here: the language server and the CLI both use it.
"""

from __future__ import annotations

import re

from .indentation import reindent
from .languages import Block, language_by_extension, language_for
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
_TODO_RE = re.compile(r"\b(?:TODO|FIXME)\b")


def language_from_path(path: str | None, default: str = "python") -> str:
    """The LSP language id guessed from a file name."""
    if not path:
        return default
    found = language_by_extension(path)
    return found.name if found is not None else default


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
    # A parser finds functions indentation cannot (``const f = (x) => {``), even in code being edited.
    parsed = language_for(language).blocks(text)
    return parsed if parsed is not None else _indent_blocks(text.splitlines())


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
    return language_for(language).is_stub(code)


def find_imports(text: str, language: str = "python", limit: int = 60) -> str:
    """The file's module-level imports (at most ``limit`` lines), which tell a model which names exist and which
    the sandbox runs above the selection, so they must parse on their own.

    Only what the module runs when imported: top-level import statements (multi-line ones whole) and, for
    Python, the top-level ``try``/``if`` blocks made of imports (``try: import x except ImportError: x = None``,
    ``if TYPE_CHECKING:``) verbatim. Imports inside functions and methods are the function's own; collected
    here they would be indented lines that do not parse."""
    found = language_for(language).import_statements(text)
    out: list[str] = []
    for statement in found:
        lines = statement.splitlines()
        if len(out) + len(lines) > limit:
            break  # never half a statement: the text must still parse
        out.extend(line.rstrip() for line in lines)
    return "\n".join(out)


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
