"""Python: the existing ``ast``-based tools behind the language interface (extraction in
``consensus/extract.py``, normalisation in ``consensus/normalize.py``, docstring examples in
``_python_examples.py``, generated inputs in ``_python_inputs.py``, the sandbox's in-process ``run_calls``)."""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._base import Example, Extracted, Function, Language
from ._python_examples import entry_point_of, extract_examples, parameters_of
from ._python_inputs import generate_inputs

if TYPE_CHECKING:
    from ..verify.sandbox import CallOutcome, CallSpec, Sandbox

__all__ = ["Python"]


class Python(Language):
    name = "python"
    ids = ("python", "py", "python3", "py3", "pycon", "ipython")
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
        from ..consensus.extract import extract_code

        return extract_code(raw, context=context, entry_point=entry_point, language=self.name)

    def normalize(self, code: str) -> str:
        from ..consensus.normalize import normalized_key

        return normalized_key(code, self.name)

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
