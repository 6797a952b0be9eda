"""What a front end works on, decided the same way in the editor and on the command line: the function at a line
(``Class.method`` inside a class), the tests that exercise a function, where review findings lie, and whether a
pick may be written over the user's code.
"""

from __future__ import annotations

import ast
import asyncio
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .context import Block, enclosing_block
from .languages import language_for
from .types import Finding

__all__ = [
    "FunctionAt",
    "breaks_code",
    "find_project_tests",
    "find_tests",
    "find_tests_importing",
    "finding_lines",
    "function_at",
]


@dataclass(frozen=True, slots=True)
class FunctionAt:
    """A function's qualified name (``name``, or ``Class.method`` inside a class) and its lines ``[start, end)``."""

    name: str
    start: int
    end: int


def function_at(blocks: Sequence[Block], line: int, language: str) -> FunctionAt | None:
    """The function enclosing ``line`` among ``blocks`` (:func:`~codeconductor.ensemble.context.parse_blocks`), qualified by
    the innermost class around it; None when no function encloses the line."""
    block = enclosing_block(list(blocks), line, language)
    if block is None or block.kind != "function":
        return None
    outer = [b for b in blocks if b.kind == "class" and b.start <= block.start and block.end <= b.end]
    name = f"{max(outer, key=lambda b: b.start).name}.{block.name}" if outer else block.name
    return FunctionAt(name, block.start, block.end)


def _is_test_file(path: str) -> bool:
    base = path.rsplit("/", 1)[-1]
    return base.endswith(".py") and (base.startswith("test_") or base.endswith("_test.py"))


def _base_name(expr: ast.expr) -> str:
    """The last dotted part of a base class expression (``unittest.TestCase`` -> ``TestCase``)."""
    if isinstance(expr, ast.Subscript):
        expr = expr.value
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return expr.id if isinstance(expr, ast.Name) else ""


def _test_units(tree: ast.Module) -> list[tuple[str, ast.AST]]:
    """The file's tests as pytest collects them: top-level ``test*`` functions, classes named ``Test*``, and
    ``unittest.TestCase`` subclasses whatever their name (``class FactorTests(TestCase)``; also through a base
    test class of the same file)."""
    units: list[tuple[str, ast.AST]] = []
    test_classes: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test"):
            units.append((node.name, node))
        elif isinstance(node, ast.ClassDef):
            bases = [_base_name(b) for b in node.bases]
            if node.name.startswith("Test") or any(b.endswith("TestCase") or b in test_classes for b in bases):
                test_classes.add(node.name)
                units.append((node.name, node))
    return units


def _related(unit: str, function: str) -> bool:
    """Whether a test's name names the function (``FactorTests``, ``test_factor``, ``TestNumericRange``)."""
    key = function.replace("_", "").lower()
    return bool(key) and key in unit.replace("_", "").lower()


def find_tests(files: Mapping[str, str], function: str, module: str | None = None) -> list[str]:
    """The tests (pytest node ids) in the project's test files that mention ``function``'s name (the method's own
    name for ``Class.method``): test functions and whole test classes (``Test*``, and ``unittest.TestCase``
    subclasses whatever their name: ``class FactorTests(TestCase)``), a class whole because its other tests may
    call the function indirectly (the recorder then keeps the tests that did). With ``module`` (the function's
    dotted module), the import graph narrows the files: when files that import the module or a package above it
    (``import pkg as p``, ``from pkg import *``, ``from pkg.mod import f``) mention it, only those count. Tests
    named for the function (``FactorTests``, ``test_factor``; for a method, its class) come first."""
    name = function.rsplit(".", 1)[-1]
    word = re.compile(rf"\b{re.escape(name)}\b")
    found: list[tuple[bool, str]] = []
    importing: list[tuple[bool, str]] = []
    for path, text in sorted(files.items()):
        if not _is_test_file(path) or not word.search(text):
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        ids = [
            (_related(unit, name) or ("." in function and _related(unit, function.split(".")[-2])), f"{path}::{unit}")
            for unit, node in _test_units(tree)
            if word.search(ast.get_source_segment(text, node) or "")
        ]
        found += ids
        if module is not None and _imports_through(tree, module):
            importing += ids
    chosen = importing or found
    return [node_id for _, node_id in sorted(chosen, key=lambda item: not item[0])]


def _imports_through(tree: ast.Module, module: str) -> bool:
    """Whether a test module imports ``module`` or a package above it (which may re-export what the module
    defines): ``import pkg as p``, ``from pkg import *``, ``from pkg.mod import f``; not a sibling module of the
    package (``from pkg.other import g``)."""
    parts = module.split(".")
    above = {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(a.name in above or a.name.startswith(module + ".") for a in node.names):
                return True
        elif (
            isinstance(node, ast.ImportFrom)
            and node.level == 0
            and node.module is not None
            and (node.module in above or node.module.startswith(module + "."))
        ):
            return True
    return False


def _imports_module(tree: ast.Module, module: str) -> bool:
    """Whether a test module imports ``module`` (``import a.b``, ``from a.b import x``, ``from a import b``)."""
    parent, _, leaf = module.rpartition(".")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            alias.name == module or alias.name.startswith(module + ".") for alias in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module is not None:
            if node.module == module or node.module.startswith(module + "."):
                return True
            if parent and node.module == parent and any(alias.name == leaf for alias in node.names):
                return True
    return False


def find_tests_importing(files: Mapping[str, str], module: str) -> list[str]:
    """Tests (pytest node ids: test functions and test classes) in test files that import ``module``: the tests
    that may exercise a function of it without naming it (through the functions that call it)."""
    found: list[str] = []
    for path, text in sorted(files.items()):
        if not _is_test_file(path) or module.rpartition(".")[2] not in text:
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        if not _imports_module(tree, module):
            continue
        found += [f"{path}::{unit}" for unit, _ in _test_units(tree)]
    return found


async def find_project_tests(root: Path | str, function: str) -> list[str]:
    """:func:`find_tests` over the project under ``root`` (read off the event loop: a big tree takes a while)."""
    # The sandbox's snapshot reads the tree the way the test run will see it (same skipped folders and caps).
    from .verify.pytest_runner import ProjectSnapshot

    snapshot = await asyncio.to_thread(ProjectSnapshot.capture, root)
    return find_tests(snapshot.files, function)


def finding_lines(finding: Finding, start: int, end: int) -> tuple[int, int]:
    """The document lines ``[first, last + 1)`` of a review finding, kept inside the reviewed lines
    ``[start, end)`` whatever line a model claimed."""
    last_line = max(end - 1, start)
    first = min(max(finding.line, start), last_line)
    last = min(max(finding.end_line if finding.end_line is not None else first, first), last_line)
    return first, last + 1


def breaks_code(replaced: str, pick: str, language: str, path: str | None = None) -> bool:
    """True when ``pick`` is not code of the language but the code it would replace is: a model's prose or
    another language's code must never be written over working code (the consensus may still pick it when nothing
    better came). Languages without a parser are not checked."""
    lang = language_for(language, path)
    if not lang.checks_syntax:
        return False
    return not lang.parses(textwrap.dedent(pick)) and lang.parses(textwrap.dedent(replaced))
