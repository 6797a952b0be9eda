"""A :class:`~codeconductor.ensemble.languages._base.Language` built on a tree-sitter grammar (from
``tree-sitter-language-pack``, which ships prebuilt grammars): syntax checks, tokens for normalisation,
functions, and extraction of the code from a model's answer, shared by every brace language. Each language module
fills in its grammar's node types and, where it needs to, overrides a hook.
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar

from ._base import IMPORT_LINE, Extracted, Function, Language, fenced_blocks
from ._examples import comment_examples

if TYPE_CHECKING:
    from tree_sitter import Node, Parser, Tree

    from ._base import Example

__all__ = ["TreeSitterLanguage", "parser_for"]

_MAX_SPAN_TRIES = 400  # bare answers: parses tried to find the code between the prose (tree-sitter is fast)


@functools.cache
def parser_for(grammar: str) -> Parser:
    """One parser per grammar per process (tree-sitter parsers are reusable, cheap to keep)."""
    from tree_sitter_language_pack import get_parser

    return get_parser(grammar)  # type: ignore[arg-type]


_WORD = re.compile(r"[A-Za-z]{2,}")
_CODE_CHARS = re.compile(r"[{}();=<>\[\]]")


def _is_prose_line(line: str) -> bool:
    """A sentence, not code: several words, hardly any brackets or operators, not ending like a statement.
    (Text heuristics only decide what may be dropped around code; the parser decides what is code.)"""
    text = line.strip()
    if not text:
        return True
    if text.endswith(("{", ";", ",", "}", ")", "(", "[", "=>", "&&", "||")):
        return False
    return len(_WORD.findall(text)) >= 2 and len(_CODE_CHARS.findall(text)) <= 2


def _walk(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children))


class TreeSitterLanguage(Language):
    grammar: ClassVar[str]
    #: Node types that define a function, and node types whose whole text is one token (strings, chars).
    function_types: ClassVar[frozenset[str]]
    comment_types: ClassVar[frozenset[str]] = frozenset({"comment", "line_comment", "block_comment"})
    string_types: ClassVar[frozenset[str]] = frozenset(
        {"string", "string_literal", "raw_string_literal", "interpreted_string_literal", "char_literal",
         "character_literal", "template_string", "system_lib_string", "rune_literal"}
    )  # fmt: skip
    #: Identifiers renamed ``v0, v1, ...`` by :meth:`normalize` unless in :attr:`globals`.
    identifier_types: ClassVar[frozenset[str]] = frozenset({"identifier"})
    globals: ClassVar[frozenset[str]] = frozenset()
    #: Node types whose presence makes parsed text code rather than a sentence that happens to parse.
    code_markers: ClassVar[frozenset[str]] = frozenset()

    # -- parsing --------------------------------------------------------------------------------------------
    def tree(self, code: str) -> Tree:
        return parser_for(self.grammar).parse(code.encode("utf-8"))

    def parses(self, code: str) -> bool:
        return bool(code.strip()) and not self.tree(code).root_node.has_error

    def is_code(self, text: str) -> bool:
        if not text.strip():
            return False
        root = self.tree(text).root_node
        return not root.has_error and self._has_marker(root)

    def _has_marker(self, root: Node) -> bool:
        markers = self.code_markers | self.function_types
        return any(n.is_named and n.type in markers for n in _walk(root))

    def is_expression(self, text: str) -> bool:
        """Whether ``text`` is one expression (examples' calls and expected values)."""
        return self.parses(f"({text});")

    # -- tokens ---------------------------------------------------------------------------------------------
    def tokens(self, code: str) -> list[str]:
        """Leaf tokens without comments and layout; a string literal is one token."""
        out: list[str] = []
        stack = [self.tree(code).root_node]
        while stack:
            node = stack.pop()
            if node.type in self.comment_types:
                continue
            if node.type in self.string_types or not node.children:
                text = node.text.decode("utf-8", "replace") if node.text is not None else ""
                if text.strip():
                    out.append(text)
                continue
            stack.extend(reversed(node.children))
        return out

    def normalize(self, code: str) -> str:
        names: dict[str, str] = {}
        out: list[str] = []
        stack = [self.tree(code).root_node]
        while stack:
            node = stack.pop()
            if node.type in self.comment_types:
                continue
            if node.type in self.string_types or not node.children:
                text = node.text.decode("utf-8", "replace") if node.text is not None else ""
                if node.type in self.identifier_types and text not in self.globals:
                    text = names.setdefault(text, f"v{len(names)}")
                if text.strip():
                    out.append(text)
                continue
            stack.extend(reversed(node.children))
        return " ".join(out)

    def import_statements(self, text: str) -> list[str]:
        """The top-level statements that import (``import``, ``use``, ``#include``, a top-level ``require``), whole:
        a Go ``import ( ... )`` block keeps its lines."""
        source = text.encode("utf-8")
        out: list[str] = []
        for node in self.tree(text).root_node.children:
            statement = source[node.start_byte : node.end_byte].decode("utf-8", "replace")
            if IMPORT_LINE.match(statement):
                out.append(statement)
        return out

    # -- functions ------------------------------------------------------------------------------------------
    def _function_name(self, node: Node) -> str | None:
        name = node.child_by_field_name("name")
        if name is not None and name.text is not None:
            return name.text.decode()
        return None

    def _function_body(self, node: Node) -> Node | None:
        return node.child_by_field_name("body")

    def _function_params(self, node: Node) -> tuple[str, ...]:
        params = node.child_by_field_name("parameters")
        if params is None:
            return ()
        names = []
        for child in params.named_children:
            if child.type in self.comment_types:
                continue
            ident = child if child.type in self.identifier_types else None
            if ident is None:
                ident = next((n for n in _walk(child) if n.type in self.identifier_types), None)
            if ident is not None and ident.text is not None:
                names.append(ident.text.decode())
        return tuple(names)

    def _function_span(self, node: Node) -> Node:
        """The node whose text is the whole definition (a declaration around an arrow function, say)."""
        return node

    def functions(self, code: str) -> list[Function]:
        data = code.encode("utf-8")
        found = []
        for node in _walk(self.tree(code).root_node):
            if not node.is_named or node.type not in self.function_types:
                continue
            name = self._function_name(node)
            if not name:
                continue
            span = self._function_span(node)
            body = self._function_body(node)
            header_end = body.start_byte + 1 if body is not None and body.type != "expression" else node.end_byte
            found.append(
                Function(
                    name=name,
                    start_line=span.start_point[0],
                    end_line=span.end_point[0] + 1,
                    params=self._function_params(node),
                    text=data[span.start_byte : span.end_byte].decode("utf-8", "replace"),
                    header=data[span.start_byte : header_end].decode("utf-8", "replace"),
                )
            )
        return found

    def examples(self, code: str, entry_point: str) -> list[Example]:
        return comment_examples(self._comments(code), entry_point, self.is_expression)

    def comment_above(self, text_above: str) -> str:
        """The comments on the last lines of ``text_above`` (the lines above, joined by newlines: no trailing
        newline, so a blank line just above the code ends it with one), each on its own lines, no blank line
        between them or after the last: a JSDoc block, ``//`` lines, Go's and Rust's doc comments."""
        if not text_above.strip():
            return ""
        source = text_above.encode("utf-8")
        comments = [
            n
            for n in _walk(self.tree(text_above).root_node)
            if n.type in self.comment_types and (n.parent is None or n.parent.type not in self.comment_types)
        ]
        block: list[bytes] = []
        tail = len(source)
        for node in sorted(comments, key=lambda n: n.start_byte, reverse=True):
            end = node.start_byte + len(source[node.start_byte : node.end_byte].rstrip())  # Rust's take the newline
            gap = source[end:tail]
            line_start = source.rfind(b"\n", 0, node.start_byte) + 1
            # The last comment must end on the last line (a blank line would separate it), the others on the line
            # above the next.
            newlines_allowed = 1 if block else 0
            if gap.strip() or gap.count(b"\n") > newlines_allowed or source[line_start : node.start_byte].strip():
                break  # code (or a blank line) between it and what follows, or it trails code on its line
            block.append(source[line_start:end])
            tail = line_start
        return "\n".join(part.decode("utf-8", "replace") for part in reversed(block))

    def _comments(self, code: str) -> list[str]:
        return [
            n.text.decode("utf-8", "replace")
            for n in _walk(self.tree(code).root_node)
            if n.type in self.comment_types and n.text is not None
        ]

    # -- extraction -----------------------------------------------------------------------------------------
    def extract(self, raw: str, *, context: str = "", entry_point: str | None = None) -> Extracted:
        notes: list[str] = []
        text = raw.replace("\r\n", "\n")
        if entry_point is None and context:
            entry_point = self.entry_point(context)
        blocks = fenced_blocks(text)
        if blocks:
            notes.append("fenced")
            mine = (
                [b for tag, b in blocks if tag in self.ids]
                or [b for tag, b in blocks if not tag]
                or [b for _, b in blocks]
            )
            body: str | None = max(mine, key=lambda b: self._score(b, entry_point))
        else:
            body = self._code_span(text, notes)
        if body is None or not body.strip():
            return Extracted("", self.name, parseable=False, notes=(*notes, "no code"))
        body = textwrap.dedent(body).strip("\n") + "\n"
        if entry_point and self.find_function(body, entry_point) is None:
            merged = self._merge_body(body, context, entry_point)
            if merged is not None:
                body = merged
                notes.append("body merged with the signature")
        if not self.parses(body):
            prefix = self._parsing_prefix(body)
            if prefix is None:
                return Extracted(body, self.name, parseable=False, notes=(*notes, "unparseable"))
            body = prefix
            notes.append("truncated")
        body = self._clean(body, entry_point, notes)
        body = self._add_context(body, context, entry_point, notes)
        if not self.is_code(body):
            return Extracted(body, self.name, parseable=False, notes=(*notes, "not code"))
        return Extracted(body.strip("\n") + "\n", self.name, True, tuple(notes), norm=self.normalize(body))

    def _score(self, body: str, entry_point: str | None) -> tuple[int, int, int]:
        defines = bool(entry_point and self.find_function(body, entry_point) is not None)
        return (int(defines), int(self.parses(body)), len(body))

    def _code_span(self, text: str, notes: list[str]) -> str | None:
        """The longest run of lines, earliest first, that is code of this language with only prose around it
        (a code line left out means the answer is broken, not that it was prose)."""
        lines = text.split("\n")
        tries = 0
        starts = [i for i, line in enumerate(lines) if line.strip()]
        for start in starts:
            if not all(_is_prose_line(line) for line in lines[:start]):
                break
            for end in range(len(lines), start, -1):
                if not lines[end - 1].strip() or not all(_is_prose_line(line) for line in lines[end:]):
                    continue
                tries += 1
                if tries > _MAX_SPAN_TRIES:
                    return self._broken_code(lines, notes)
                chunk = "\n".join(lines[start:end])
                if self.is_code(chunk):
                    if start or any(x.strip() for x in lines[end:]):
                        notes.append("prose removed")
                    return chunk
        return self._broken_code(lines, notes)

    def _broken_code(self, lines: list[str], notes: list[str]) -> str | None:
        """No run of lines parses: the text from the first line that starts a definition or statement (kept
        and marked unparseable: a broken answer), or None when nothing in it looks like code (prose)."""
        for index, line in enumerate(lines):
            if line.strip() and not _is_prose_line(line) and self._starts_code(line):
                if index:
                    notes.append("prose removed")
                return "\n".join(lines[index:])
        return None

    def _starts_code(self, line: str) -> bool:
        root = self.tree(line).root_node
        first = root.children[0] if root.children else None
        # A keyword left alone by error recovery (``const`` of an unfinished declaration) starts code too.
        return first is not None and first.type != "ERROR" and (not first.is_named or self._has_marker(first))

    def _parsing_prefix(self, body: str) -> str | None:
        """A truncated answer or one trailed by junk: the longest prefix of lines (at least half) that parses
        and defines a function."""
        lines = body.rstrip("\n").split("\n")
        for cut in range(len(lines) - 1, max(len(lines) // 2, 1) - 1, -1):
            prefix = "\n".join(lines[:cut])
            if self.parses(prefix) and self.functions(prefix):
                return prefix + "\n"
        return None

    def _merge_body(self, body: str, context: str, entry_point: str) -> str | None:
        """A body-only answer: put it under the signature from the user's code."""
        target = self.find_function(context, entry_point) if context else None
        if target is None or not target.header.rstrip().endswith("{"):
            return None
        inner = textwrap.indent(body.strip("\n"), "  ")
        merged = target.header + "\n" + inner + "\n}\n"
        if self.parses(merged):
            return merged
        return None

    def _clean(self, code: str, entry_point: str | None, notes: list[str]) -> str:
        """Remove demo code around the solution (language hook; default: none)."""
        return code

    def _add_context(self, code: str, context: str, entry_point: str | None, notes: list[str]) -> str:
        """Bring the user's helper functions the answer uses but did not repeat."""
        if not context:
            return code
        have = {f.name for f in self.functions(code)}
        used = set(self.tokens(code))
        helpers = [
            f.text
            for f in self.functions(context)
            if f.name not in have and f.name != entry_point and f.name in used and f.start_line >= 0
        ]
        if not helpers:
            return code
        merged = "\n\n".join([*helpers, code])
        if not self.parses(merged):
            return code
        notes.append("context added")
        return merged
