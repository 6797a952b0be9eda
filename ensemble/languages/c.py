"""C and C++: syntax, extraction, functions, comment examples and normalisation with tree-sitter. Not executed
yet (``can_execute`` is False: the consensus caps its confidence, labelled "not executed")."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from ._treesitter import TreeSitterLanguage

if TYPE_CHECKING:
    from tree_sitter import Node

__all__ = ["C", "Cpp"]


class C(TreeSitterLanguage):
    name = "c"
    ids: ClassVar[tuple[str, ...]] = ("c", "h")
    extensions: ClassVar[tuple[str, ...]] = (".c", ".h")
    grammar = "c"
    function_types = frozenset({"function_definition"})
    identifier_types = frozenset({"identifier"})
    globals = frozenset({"printf", "malloc", "free", "calloc", "realloc", "memcpy", "memset", "strlen", "strcmp",
                         "NULL", "sizeof", "abs", "fabs", "sqrt", "pow", "std", "cout", "cin", "endl", "vector",
                         "string", "size_t", "main"})  # fmt: skip
    code_markers = frozenset(
        {"preproc_include", "declaration", "struct_specifier", "call_expression", "assignment_expression",
         "return_statement", "compound_statement", "using_declaration", "namespace_definition", "class_specifier",
         "template_declaration", "preproc_def"}
    )  # fmt: skip

    def _function_name(self, node: Node) -> str | None:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type not in (
            "identifier",
            "field_identifier",
            "qualified_identifier",
            "destructor_name",
            "operator_name",
        ):
            declarator = declarator.child_by_field_name("declarator")
        if declarator is None or declarator.text is None:
            return None
        return declarator.text.decode().split("::")[-1]

    def _function_params(self, node: Node) -> tuple[str, ...]:
        declarator = node.child_by_field_name("declarator")
        while declarator is not None and declarator.type != "function_declarator":
            declarator = declarator.child_by_field_name("declarator")
        if declarator is None:
            return ()
        params = declarator.child_by_field_name("parameters")
        names = []
        for child in params.named_children if params is not None else []:
            inner = child.child_by_field_name("declarator")
            while inner is not None and inner.type != "identifier":
                inner = inner.child_by_field_name("declarator")
            if inner is not None and inner.text is not None:
                names.append(inner.text.decode())
        return tuple(names)

    def is_expression(self, text: str) -> bool:
        return bool(text.strip()) and self.parses(f"void _x(void) {{ ({text}); }}\n")


class Cpp(C):
    name = "cpp"
    ids: ClassVar[tuple[str, ...]] = ("cpp", "c++", "cc", "cxx", "hpp", "cuda")
    extensions: ClassVar[tuple[str, ...]] = (".cpp", ".cc", ".cxx", ".hpp", ".hh", ".hxx", ".cu")
    grammar = "cpp"
    function_types = frozenset({"function_definition"})
