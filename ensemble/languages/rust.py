"""Rust: syntax, extraction, functions, comment examples and normalisation with tree-sitter. Not executed yet
(``can_execute`` is False: the consensus caps its confidence, labelled "not executed")."""

from __future__ import annotations

from ._treesitter import TreeSitterLanguage

__all__ = ["Rust"]


class Rust(TreeSitterLanguage):
    name = "rust"
    ids = ("rust", "rs")
    extensions = (".rs",)
    grammar = "rust"
    function_types = frozenset({"function_item"})
    comment_types = frozenset({"line_comment", "block_comment", "doc_comment"})
    identifier_types = frozenset({"identifier"})
    globals = frozenset({"Some", "None", "Ok", "Err", "Vec", "String", "Box", "Option", "Result", "self", "Self"})
    code_markers = frozenset(
        {"use_declaration", "struct_item", "enum_item", "impl_item", "trait_item", "let_declaration",
         "call_expression", "macro_invocation", "assignment_expression", "return_expression", "mod_item", "block"}
    )  # fmt: skip

    def is_expression(self, text: str) -> bool:
        return bool(text.strip()) and self.parses(f"const _X: () = {{ let _ = {text}; }};\n")
