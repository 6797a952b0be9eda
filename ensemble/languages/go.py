"""Go: syntax, extraction, functions, comment examples and normalisation with tree-sitter.

Executed only inside its module (``runs_in_project``): ``go test`` runs the package's own tests and ``Example``
functions on the user's code and on each candidate (:mod:`codeconductor.ensemble.verify.go_project`). A Go function on its
own is not run (``can_execute`` is False: the consensus caps its confidence, labelled "not executed")."""

from __future__ import annotations

import functools
import os
import shutil

from ._base import Extracted, RunsInProject
from ._treesitter import TreeSitterLanguage

__all__ = ["Go", "go_toolchain"]


@functools.cache
def go_toolchain() -> str | None:
    """The ``go`` command, by absolute path (links resolved: the sandbox shows real paths); None without one."""
    found = shutil.which("go")
    return os.path.realpath(found) if found else None


class Go(RunsInProject, TreeSitterLanguage):
    name = "go"
    ids = ("go", "golang")
    extensions = (".go",)
    grammar = "go"
    function_types = frozenset({"function_declaration", "method_declaration"})
    identifier_types = frozenset({"identifier"})
    globals = frozenset({"len", "cap", "append", "make", "new", "copy", "delete", "panic", "recover", "print",
                         "println", "nil", "true", "false", "iota", "min", "max", "close"})  # fmt: skip
    code_markers = frozenset(
        {"package_clause", "import_declaration", "type_declaration", "var_declaration", "const_declaration",
         "short_var_declaration", "call_expression", "assignment_statement", "return_statement", "block"}
    )  # fmt: skip

    def extract(self, raw: str, *, context: str = "", entry_point: str | None = None) -> Extracted:
        """Also drops the ``package`` clause an answer repeats when the user's code has none (a function's lines:
        the file has its own; a second one there would not compile)."""
        found = super().extract(raw, context=context, entry_point=entry_point)
        if not found.parseable or not context.strip() or self._package_spans(context):
            return found
        spans = self._package_spans(found.code)
        if not spans:
            return found
        data = found.code.encode("utf-8")
        for start, end in reversed(spans):
            data = data[:start] + data[end:]
        code = data.decode("utf-8").strip("\n") + "\n"
        if not code.strip() or not self.parses(code):
            return found
        return Extracted(code, self.name, True, (*found.notes, "package clause dropped"), norm=self.normalize(code))

    def _package_spans(self, code: str) -> list[tuple[int, int]]:
        root = self.tree(code).root_node
        return [(n.start_byte, n.end_byte) for n in root.children if n.type == "package_clause"]

    def is_expression(self, text: str) -> bool:
        return bool(text.strip()) and self.parses(f"var _ = {text}\n")

    no_toolchain_note = "go: not executed (no go toolchain here: install Go to have answers run with go test)"
    in_project_note = "go: not executed (Go runs only inside its module, with go test on the package's own tests)"

    def has_toolchain(self) -> bool:
        return go_toolchain() is not None
