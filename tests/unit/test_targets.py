"""What both front ends work on (codeconductor.ensemble._targets): the function at a line, the tests that mention a function,
the lines of a review finding, and whether a pick would break working code."""

from __future__ import annotations

import asyncio
from pathlib import Path

from codeconductor.ensemble import (
    Finding,
    FunctionAt,
    breaks_code,
    find_project_tests,
    find_tests,
    finding_lines,
    function_at,
    parse_blocks,
)

SOURCE = (
    "def top(x):\n"  # 0
    "    return x\n"  # 1
    "\n"  # 2
    "class Box:\n"  # 3
    "    def get(self):\n"  # 4
    "        return 1\n"  # 5
    "\n"  # 6
    "VALUE = 3\n"  # 7
)


def test_function_at_names_methods_by_their_class() -> None:
    blocks = parse_blocks(SOURCE, "python")
    assert function_at(blocks, 1, "python") == FunctionAt("top", 0, 2)
    assert function_at(blocks, 5, "python") == FunctionAt("Box.get", 4, 6)


def test_function_at_is_none_outside_a_function() -> None:
    blocks = parse_blocks(SOURCE, "python")
    assert function_at(blocks, 7, "python") is None
    assert function_at(blocks, 3, "python") is None  # a class line, not a function


def test_find_tests_keeps_test_functions_and_classes_that_mention_the_name() -> None:
    files = {
        "tests/test_box.py": (
            "from box import Box\n\n\ndef test_get():\n    assert Box().get() == 1\n\n\n"
            "def test_other():\n    assert True\n\n\nclass TestBox:\n    def test_it(self):\n        Box().get()\n"
        ),
        "tests/helper.py": "def test_get():\n    get()\n",  # not a test file
        "tests/test_broken.py": "def test_get(:\n",  # does not parse
        "tests/box_test.py": "def test_gets():\n    budget()\n",  # mentions only longer words
    }
    assert find_tests(files, "Box.get") == ["tests/test_box.py::test_get", "tests/test_box.py::TestBox"]
    assert find_tests(files, "missing") == []


def test_find_tests_in_unittest_classes_and_through_the_import_graph() -> None:
    recipes = (
        "from unittest import TestCase\n"
        "import pkg as p\n\n\n"
        "class FactorTests(TestCase):\n"
        "    def test_basic(self):\n        self.assertEqual(list(p.factor(6)), [2, 3])\n\n"
        "    def test_other(self):\n        self.assertTrue(p.other())\n\n\n"
        "class MoreFactorTests(FactorTests):\n"
        "    def test_more(self):\n        p.factor(1)\n\n\n"
        "class Helper:\n    def test_not_collected(self):\n        p.factor(2)\n\n\n"
        "class PrimeTests(TestCase):\n"
        "    def setUp(self):\n        self.f = p.factor\n\n"
        "    def test_a(self):\n        self.f(3)\n\n"
        "    def test_b(self):\n        pass\n\n\n"
        "class MiscTests(TestCase):\n"
        "    def test_uses(self):\n        p.factor(7)\n\n"
        "    def test_unrelated(self):\n        p.other()\n"
    )
    star = "from pkg import *\n\n\ndef test_star():\n    assert factor(4)\n"
    unrelated = "from other.mod import factor\n\n\ndef test_elsewhere():\n    assert factor(5)\n"
    files = {"tests/test_recipes.py": recipes, "tests/test_star.py": star, "tests/test_unrelated.py": unrelated}
    # Whole test classes (their other tests may call it indirectly), those named for it first; only the files
    # that import its module or a package above it.
    assert find_tests(files, "factor", "pkg.recipes") == [
        "tests/test_recipes.py::FactorTests",
        "tests/test_recipes.py::MoreFactorTests",
        "tests/test_recipes.py::PrimeTests",
        "tests/test_recipes.py::MiscTests",
        "tests/test_star.py::test_star",
    ]
    # Without the module, every file that names it counts.
    assert "tests/test_unrelated.py::test_elsewhere" in find_tests(files, "factor")


def test_find_project_tests_reads_the_project(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_top.py").write_text("from mod import top\n\n\ndef test_top():\n    assert top(1)\n")
    (tmp_path / "mod.py").write_text(SOURCE)
    assert asyncio.run(find_project_tests(tmp_path, "top")) == ["tests/test_top.py::test_top"]


def test_finding_lines_stay_inside_the_reviewed_lines() -> None:
    assert finding_lines(Finding(line=12, end_line=14, message="m"), 10, 20) == (12, 15)
    assert finding_lines(Finding(line=2, message="m"), 10, 20) == (10, 11)  # above: the first reviewed line
    assert finding_lines(Finding(line=30, end_line=40, message="m"), 10, 20) == (19, 20)
    assert finding_lines(Finding(line=15, end_line=12, message="m"), 10, 20) == (15, 16)  # end before start
    assert finding_lines(Finding(line=5, message="m"), 10, 10) == (10, 11)  # an empty range keeps one line


def test_breaks_code_only_when_prose_would_replace_working_code() -> None:
    working = "def f(x):\n    return x\n"
    assert breaks_code(working, "Sure! Here is the fixed function: it returns x.", "python")
    assert not breaks_code(working, "def f(x):\n    return x + 1\n", "python")
    assert not breaks_code("def f(x:\n", "not code either", "python")  # nothing working to break
    assert not breaks_code("    return x\n", "        return x + 1\n", "python")  # indented code is dedented
    assert not breaks_code("some notes\n", "other notes", "plaintext")  # no parser: not checked
