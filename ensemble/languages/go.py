"""Go: syntax, extraction, functions, comment examples and normalisation with tree-sitter. Not executed yet
(``can_execute`` is False: the consensus caps its confidence, labelled "not executed")."""

from __future__ import annotations

from ._treesitter import TreeSitterLanguage

__all__ = ["Go"]


class Go(TreeSitterLanguage):
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

    def is_expression(self, text: str) -> bool:
        return bool(text.strip()) and self.parses(f"var _ = {text}\n")
