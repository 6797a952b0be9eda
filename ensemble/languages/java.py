"""Java: syntax, extraction, methods, comment examples and normalisation with tree-sitter. A bare method (what a
selection usually is) is checked inside a class. Not executed yet (``can_execute`` is False)."""

from __future__ import annotations

from ._base import Function
from ._treesitter import TreeSitterLanguage

__all__ = ["Java"]


class Java(TreeSitterLanguage):
    name = "java"
    ids = ("java",)
    extensions = (".java",)
    grammar = "java"
    function_types = frozenset({"method_declaration", "constructor_declaration"})
    comment_types = frozenset({"line_comment", "block_comment", "comment"})
    identifier_types = frozenset({"identifier"})
    globals = frozenset({"Math", "System", "String", "Integer", "Long", "Double", "List", "ArrayList", "Map",
                         "HashMap", "Set", "HashSet", "Arrays", "Collections", "Objects", "this", "super"})  # fmt: skip
    code_markers = frozenset(
        {"class_declaration", "interface_declaration", "enum_declaration", "record_declaration",
         "import_declaration", "package_declaration", "local_variable_declaration", "method_invocation",
         "assignment_expression", "return_statement", "block"}
    )  # fmt: skip

    def parses(self, code: str) -> bool:
        if not code.strip():
            return False
        return not self.tree(code).root_node.has_error or not self.tree(self._in_class(code)).root_node.has_error

    def is_code(self, text: str) -> bool:
        if not text.strip():
            return False
        for source in (text, self._in_class(text)):
            root = self.tree(source).root_node
            if not root.has_error:
                return self._has_marker(root) if source is text else bool(self.functions(text))
        return False

    def functions(self, code: str) -> list[Function]:
        found = super().functions(code)
        if found or not self.tree(code).root_node.has_error:
            return found
        # A bare method: find it inside a wrapper class, lines shifted back.
        from dataclasses import replace

        wrapped = super().functions(self._in_class(code))
        return [replace(f, start_line=f.start_line - 1, end_line=f.end_line - 1) for f in wrapped]

    @staticmethod
    def _in_class(code: str) -> str:
        return "class __Selection {\n" + code + "\n}\n"

    def is_expression(self, text: str) -> bool:
        return bool(text.strip()) and not self.tree(f"class _X {{ Object _x = {text}; }}").root_node.has_error
