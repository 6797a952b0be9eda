"""Python, whole, behind the language interface: extraction (``extract.py``), normalisation (``normalize.py``), the
examples a docstring gives (``examples.py``), generated inputs (``inputs.py``), docstrings and the static checks
of an answer (``docs.py``), the user's source read with ``ast`` (``source.py``), and the sandbox's in-process
``run_calls``. Python is read with ``ast``; the other languages with tree-sitter."""

from __future__ import annotations

import ast
import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ...indentation import reindent
from .._base import Block, Example, Extracted, Function, Language
from . import source
from .docs import docstring_of, is_program, same_code_but_docs, with_docstring
from .examples import entry_point_of, extract_examples, parameters_of
from .extract import IDS, extract
from .inputs import generate_inputs
from .normalize import normalized, tokens

if TYPE_CHECKING:
    from ...verify.sandbox import CallOutcome, CallSpec, Sandbox

__all__ = ["Python"]


class Python(Language):
    name = "python"
    ids = IDS
    extensions = (".py", ".pyi", ".pyw")

    def parses(self, code: str) -> bool:
        try:
            ast.parse(code)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return False
        return bool(code.strip())

    def is_code(self, text: str) -> bool:
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return False
        # A lone name or constant ("Done", "42") parses but is not code anyone asked for.
        return any(not (isinstance(s, ast.Expr) and isinstance(s.value, (ast.Name, ast.Constant))) for s in tree.body)

    def extract(self, raw: str, *, context: str = "", entry_point: str | None = None) -> Extracted:
        return extract(raw, context=context, entry_point=entry_point)

    def normalize(self, code: str) -> str:
        return normalized(code)

    def tokens(self, code: str) -> list[str]:
        return tokens(code)

    def functions(self, code: str) -> list[Function]:
        try:
            tree = ast.parse(code)
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return []
        lines = code.splitlines()
        found = []
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
                end = node.end_lineno or node.lineno
                body_first = node.body[0].lineno - 1 if node.body else node.lineno
                params = tuple(a.arg for a in [*node.args.posonlyargs, *node.args.args])
                found.append(
                    Function(
                        name=node.name,
                        start_line=first,
                        end_line=end,
                        params=params,
                        text="\n".join(lines[first:end]) + "\n",
                        header="\n".join(lines[node.lineno - 1 : max(node.lineno, body_first)]),
                    )
                )
        found.sort(key=lambda f: f.start_line)
        return found

    def entry_point(self, code: str) -> str | None:
        return entry_point_of(code)

    def examples(self, code: str, entry_point: str) -> list[Example]:
        return extract_examples(code, entry_point)

    def generate_calls(
        self, code: str, entry_point: str, examples: Sequence[Example], limit: int = 8, *, wide: bool = False
    ) -> list[str]:
        # The wider net mutates the mutations again and adds values typed by the signature (or by the examples).
        params = parameters_of(code, entry_point)
        return generate_inputs(entry_point, params, list(examples), limit=limit, rounds=2 if wide else 1)

    # -- the user's source ------------------------------------------------------------------------------------
    def blocks(self, text: str) -> list[Block] | None:
        return source.blocks(text)

    def is_stub(self, code: str) -> bool:
        return source.is_stub(code)

    def import_statements(self, text: str) -> list[str]:
        return source.import_statements(text)

    # -- what the consensus asks of an answer -------------------------------------------------------------
    def standalone(self, selection: str) -> str:
        # A method (or anything nested) at column 0, so ``Class.method`` is found, compared and documented like a
        # function.
        return textwrap.dedent(selection)

    def not_code_reason(self, code: str, entry_point: str | None) -> str | None:
        if is_program(code, entry_point):
            return None
        if entry_point is not None and not is_program(code):
            return "is not code (prose, or an empty body)"
        return f"does not define a working {entry_point}()" if entry_point else "is not code (prose)"

    def documentation_reason(self, candidate: str, original: str, entry_point: str | None) -> str | None:
        # Only a new docstring over the user's unchanged code (syntax tree for syntax tree).
        if entry_point is None:
            return "there is no function to document"
        doc = docstring_of(candidate, entry_point)
        if not doc or doc == docstring_of(original, entry_point):
            return "adds no docstring"
        if not same_code_but_docs(candidate, original, entry_point):
            return "changes your code, not only its docstring"
        return None

    def documented(self, selection: str, candidate: str, entry_point: str) -> str | None:
        # The chosen docstring put into the user's own text, at the selection's own indentation (a method's too).
        doc = docstring_of(candidate, entry_point)
        documented = with_docstring(self.standalone(selection), entry_point, doc) if doc else None
        return reindent(documented, selection) if documented is not None else None

    # -- execution --------------------------------------------------------------------------------------------
    @property
    def can_execute(self) -> bool:
        return True

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
        return sandbox.run_calls(code, entry_point, calls, timeout_s, call_timeout_s=call_timeout_s)
