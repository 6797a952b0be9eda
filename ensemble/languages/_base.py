"""The one interface every language implements, and the value types it returns.

A :class:`Language` knows how to pull its code out of a model's answer, check its syntax, normalise it for
syntactic agreement, find a function and the examples its comments give, and (where a runtime exists) run it in
the sandbox on call expressions, returning the same :class:`~codeconductor.ensemble.verify.sandbox.CallOutcome` objects for
every language so the consensus can treat them alike.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ..verify.sandbox import CallOutcome, CallSpec, Sandbox

__all__ = [
    "IMPORT_LINE",
    "Block",
    "Example",
    "Extracted",
    "Function",
    "Language",
    "RunsInProject",
    "balanced_calls",
    "column0_imports",
    "fenced_blocks",
    "generic_tokens",
]

_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.S | re.M)


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """``(language tag, body)`` of each fenced block, in order; an unterminated last fence counts."""
    return [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(text)]


_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/|#[^\n]*|--[^\n]*", re.S)
_TOKEN = re.compile(r"[A-Za-z_]\w*|\d+(?:\.\d+)?|\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|\S")


def generic_tokens(code: str) -> list[str]:
    """Tokens by a lexer that knows no language: comments of the common kinds (``//``, ``/* */``, ``#``, ``--``)
    and layout dropped, a quoted string one token. Fast: what similarity compares for every language."""
    return _TOKEN.findall(_COMMENT.sub(" ", code))


#: A line that starts an import in one of the languages we know (or guess at: Ruby's require, Lua's).
IMPORT_LINE = re.compile(
    r"^\s*(?:import\s|from\s+\S+\s+import\s|#include\s|use\s|require\(|const\s+\w+\s*=\s*require\()"
)


def column0_imports(lines: list[str]) -> list[str]:
    """Import lines at column 0, with the lines that continue them (open brackets, backslashes): the imports of
    code no parser reads (a language without one, Python being edited)."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not IMPORT_LINE.match(line) or line[:1].isspace():
            continue
        statement = [line]
        depth = line.count("(") - line.count(")")
        while i < len(lines) and (depth > 0 or statement[-1].rstrip().endswith("\\")):
            statement.append(lines[i])
            depth += lines[i].count("(") - lines[i].count(")")
            i += 1
        out.append("\n".join(statement))
    return out


def balanced_calls(text: str, name: str, *, quotes: str = "\"'`", not_after: str = r"\w.$") -> list[tuple[int, int]]:
    """Spans of ``name(...)`` calls in ``text`` whose brackets balance, skipping brackets inside strings opened
    by one of ``quotes``. A call counts only where the character before ``name`` is none of ``not_after`` (a
    regex character set: by default no longer name, no method ``x.name(``, no JavaScript ``$name(``)."""
    spans = []
    for match in re.finditer(rf"(?<![{not_after}]){re.escape(name)}\s*\(", text):
        depth, index, quote = 0, match.end() - 1, ""
        while index < len(text):
            char = text[index]
            if quote:
                if char == "\\":
                    index += 1
                elif char == quote:
                    quote = ""
            elif char in quotes:
                quote = char
            elif char in "([{":
                depth += 1
            elif char in ")]}":
                depth -= 1
                if depth == 0:
                    spans.append((match.start(), index + 1))
                    break
            index += 1
    return spans


@dataclass(frozen=True)
class Example:
    """One example a function's documentation gives: ``call`` is an expression calling the function (in the
    function's language), ``expected`` an expression for the value it should return."""

    call: str
    expected: str


@dataclass(frozen=True)
class Extracted:
    """The code extracted from one answer. ``parseable`` is False when it still is not valid code of its
    language (then ``code`` is the best-effort text); ``notes`` say what was repaired."""

    code: str
    language: str = "python"
    parseable: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)
    norm: str = ""  # normalised form (see Language.normalize), computed from the tree already parsed

    @property
    def empty(self) -> bool:
        return not self.code.strip()


@dataclass(frozen=True)
class Function:
    """A function found in some code: lines ``[start_line, end_line)`` (0-based), its parameters' names, its
    text, and the text up to and including its body's opening (the header a body-only answer goes under)."""

    name: str
    start_line: int
    end_line: int
    params: tuple[str, ...]
    text: str
    header: str = ""


@dataclass(frozen=True, slots=True)
class Block:
    """A function or class: lines ``[start, end)`` (0-based), its kind, name and header (signature) lines."""

    start: int
    end: int
    kind: str  # "function" | "class" | "block"
    name: str
    header: str


class Language(ABC):
    """One programming language. ``ids`` are its LSP languageIds and the fence tags models use (the first is
    its canonical name); ``extensions`` the file suffixes it is found by."""

    name: ClassVar[str]
    ids: ClassVar[tuple[str, ...]]
    extensions: ClassVar[tuple[str, ...]]
    #: Whether :meth:`parses` checks real syntax (False: a language this layer only knows by name).
    checks_syntax: ClassVar[bool] = True

    # -- syntax ---------------------------------------------------------------------------------------------
    @abstractmethod
    def parses(self, code: str) -> bool:
        """Whether ``code`` is syntactically valid (a whole file's worth of top-level code)."""

    def is_code(self, text: str) -> bool:
        """Whether ``text`` is code of this language rather than prose: it parses and has some structure."""
        return bool(text.strip()) and self.parses(text) and self._looks_structured(text)

    def _looks_structured(self, text: str) -> bool:
        return any(ch in text for ch in "(){}[]=;:")

    @abstractmethod
    def extract(self, raw: str, *, context: str = "", entry_point: str | None = None) -> Extracted:
        """The code of this language in a model's answer ``raw`` (fenced or bare; prose is never code)."""

    @abstractmethod
    def normalize(self, code: str) -> str:
        """A form equal for code that differs only in comments, layout and (where cheap) local names."""

    def tokens(self, code: str) -> list[str]:
        """``code``'s tokens without comments and layout (by default: :func:`generic_tokens`)."""
        return generic_tokens(code)

    # -- functions and examples -----------------------------------------------------------------------------
    @abstractmethod
    def functions(self, code: str) -> list[Function]:
        """Every function defined in ``code``, in source order (nested ones after their parents)."""

    def find_function(self, code: str, name: str) -> Function | None:
        return next((f for f in self.functions(code) if f.name == name), None)

    def entry_point(self, code: str) -> str | None:
        """The function a selection is about: the last top-level function defined in it."""
        found = self.functions(code)
        top = [f for f in found if not any(o is not f and o.start_line <= f.start_line < o.end_line for o in found)]
        return top[-1].name if top else None

    def examples(self, code: str, entry_point: str) -> list[Example]:
        """The examples ``code``'s comments give for ``entry_point``, as (call, expected) expressions."""
        return []

    def comment_above(self, text_above: str) -> str:
        """The comment that documents the code just below ``text_above`` (the lines above it joined by newlines, as
        :attr:`CodeContext.before <codeconductor.ensemble.types.CodeContext.before>` holds them): in
        languages whose functions are documented above them, the comment block ending on its last line. "" when
        there is none, or (Python: the docstring is inside) the language documents functions elsewhere."""
        return ""

    def generate_calls(
        self, code: str, entry_point: str, examples: Sequence[Example], limit: int = 8, *, wide: bool = False
    ) -> list[str]:
        """Up to ``limit`` more call expressions (no expected value) that tell candidates apart: variations of
        the examples. ``wide`` asks for a wider net where the language has one: worth it when the user's own
        code gives every input its expected value (the original is the oracle)."""
        return []

    # -- the user's source ---------------------------------------------------------------------------------------
    def blocks(self, text: str) -> list[Block] | None:
        """Every function (and class, where the language has them) of a document's ``text``; None when the
        language cannot tell (then the caller falls back to indentation)."""
        if not self.checks_syntax:
            return None
        found = [
            Block(f.start_line, f.end_line, "function", f.name, (f.header or f.text).split("\n", 1)[0].rstrip())
            for f in self.functions(text)
        ]
        return found or None

    def is_stub(self, code: str) -> bool:
        """Whether a function's body is only a placeholder (brace languages: empty, or a "not implemented" throw)."""
        inner = code.split("{", 1)[1].rsplit("}", 1)[0] if "{" in code else ""
        stripped = re.sub(r"//.*|/\*.*?\*/", "", inner, flags=re.S).strip()
        return stripped == "" or bool(re.search(r"not\s*implemented|unimplemented!|todo!", stripped, re.I))

    def import_statements(self, text: str) -> list[str]:
        """The statements of a document's ``text`` that import, whole, in order (here: column-0 import lines)."""
        return column0_imports(text.splitlines())

    # -- what the consensus asks of an answer ---------------------------------------------------------------
    def standalone(self, selection: str) -> str:
        """The selected code as a program of its own (Python dedents a method: indentation is its syntax)."""
        return selection

    def not_code_reason(self, code: str, entry_point: str | None) -> str | None:
        """Why ``code`` (an extracted answer) cannot be an edit whatever it does: prose rather than code, or no
        ``entry_point`` defined (None: no function is asked for). None when it may be one."""
        if not self.is_code(code):
            return "is not code (prose)"
        if entry_point is not None and self.find_function(code, entry_point) is None:
            return f"does not define {entry_point}"
        return None

    def documentation_reason(self, candidate: str, original: str, entry_point: str | None) -> str | None:
        """Documentation task: why ``candidate`` may not replace ``original``, of which only the documentation may
        change. None when it may."""
        # Comments are the documentation here: the normalised code (comments dropped) must not change.
        if self.normalize(candidate) != self.normalize(original):
            return "changes your code, not only its documentation"
        return "adds no documentation" if candidate.strip() == original.strip() else None

    def documented(self, selection: str, candidate: str, entry_point: str) -> str | None:
        """``selection`` (the user's text, as selected) with ``candidate``'s documentation of ``entry_point`` put
        in and every other character kept; None where the language does not do that (the candidate, which
        :meth:`documentation_reason` accepted, is offered as it is)."""
        return None

    # -- execution ------------------------------------------------------------------------------------------
    @property
    def can_execute(self) -> bool:
        """Whether candidates in this language can run here (its runtime is installed)."""
        return False

    @property
    def runs_in_project(self) -> bool:
        """Whether this language's code runs inside its project (its module and tests; ``codeconductor.ensemble.project``),
        though maybe not on its own (:attr:`can_execute`)."""
        return self.can_execute

    @property
    def runtime_note(self) -> str:
        """Why it cannot run, when it cannot (shown to the user next to a capped confidence)."""
        return "" if self.can_execute else f"{self.name}: not executed (no runtime for it here)"

    def run_calls(
        self,
        sandbox: Sandbox,
        code: str,
        entry_point: str,
        calls: Sequence[str | CallSpec],
        timeout_s: float = 5.0,
        *,
        call_timeout_s: float = 1.0,
    ) -> list[CallOutcome]:
        """Define ``code`` and evaluate each call in the sandbox; one outcome per call, in order. Raises
        :class:`~codeconductor.ensemble.errors.SandboxError` when this language cannot run here."""
        from ..errors import SandboxError

        raise SandboxError(self.runtime_note)

    async def arun_calls(
        self,
        sandbox: Sandbox,
        code: str,
        entry_point: str,
        calls: Sequence[str | CallSpec],
        timeout_s: float = 5.0,
        *,
        call_timeout_s: float = 1.0,
    ) -> list[CallOutcome]:
        return await asyncio.to_thread(
            self.run_calls, sandbox, code, entry_point, calls, timeout_s, call_timeout_s=call_timeout_s
        )

    def __repr__(self) -> str:
        return f"<Language {self.name}>"


class RunsInProject:
    """The rule of a language executed only inside its project (Go, Rust, Java), by a toolchain found on the
    host: a mixin put before the language's base class. It runs there when :meth:`has_toolchain`; its note says
    what to install (:attr:`no_toolchain_note`) or that it runs only in its project (:attr:`in_project_note`)."""

    no_toolchain_note: ClassVar[str]
    in_project_note: ClassVar[str]

    @abstractmethod
    def has_toolchain(self) -> bool:
        """Whether the toolchain that runs this language's project tests is installed here."""

    @property
    def runs_in_project(self) -> bool:
        return self.has_toolchain()

    @property
    def runtime_note(self) -> str:
        return self.in_project_note if self.has_toolchain() else self.no_toolchain_note
