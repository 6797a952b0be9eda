"""Java: syntax, extraction, methods, comment examples and normalisation with tree-sitter. A bare method (what a
selection usually is) is checked inside a class.

Executed only inside its source tree (``runs_in_project``): javac compiles the tree with the candidate in place
of the method and the project's dependency-free tests that call it (test classes with a ``main`` that checks
and throws) run on the JVM (:mod:`codeconductor.ensemble.verify.java_project`). A method on its own is not run
(``can_execute`` is False: the consensus caps its confidence, labelled "not executed")."""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass

from ._base import Function, RunsInProject
from ._treesitter import TreeSitterLanguage

__all__ = ["Java", "JavaToolchain", "java_toolchain"]


@dataclass(frozen=True)
class JavaToolchain:
    """``javac`` and ``java`` by real path, the JDK's home (shown read-only in the sandbox) and the folders outside
    it that its configuration links point to (Debian keeps them in ``/etc/java-NN-openjdk``)."""

    javac: str
    java: str
    home: str
    config: tuple[str, ...]


@functools.cache
def java_toolchain() -> JavaToolchain | None:
    """The JDK whose ``javac`` is on PATH; None without one."""
    found = shutil.which("javac")
    if found is None:
        return None
    javac = os.path.realpath(found)
    home = os.path.dirname(os.path.dirname(javac))
    java = os.path.join(home, "bin", "java")
    if not os.access(java, os.X_OK):
        return None
    config: set[str] = set()
    for folder, _, names in os.walk(home):
        for name in names:
            path = os.path.join(folder, name)
            if os.path.islink(path):
                target = os.path.realpath(path)
                if target.startswith("/etc/java"):
                    config.add("/".join(target.split("/")[:3]))
    return JavaToolchain(javac, java, home, tuple(sorted(config)))


class Java(RunsInProject, TreeSitterLanguage):
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

    no_toolchain_note = "java: not executed (no JDK here: install one to have answers run with javac and your tests)"
    in_project_note = "java: not executed (Java runs only inside its source tree, with javac and your project's tests)"

    def has_toolchain(self) -> bool:
        return java_toolchain() is not None
