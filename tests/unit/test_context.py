"""codeconductor.ensemble.context: what a request is about (selection or enclosing function), its surroundings within a
budget, imports, stub detection and re-indentation."""

from __future__ import annotations

import ast
import textwrap

import pytest

from codeconductor.ensemble.context import (
    build_context,
    enclosing_block,
    find_imports,
    is_stub,
    language_from_path,
    parse_blocks,
    reindent,
)

SOURCE = '''import os
from typing import Any


class Greeter:
    """Says hello."""

    def greet(self, name: str) -> str:
        return "hello " + name

    @staticmethod
    def shout(text: str) -> str:
        return text.upper()


def top(x):
    return x + 1
'''


def test_enclosing_function_method_and_decorators() -> None:
    greet = enclosing_block(SOURCE, 8)
    assert greet is not None
    assert (greet.name, greet.kind, greet.start, greet.end) == ("greet", "function", 7, 9)
    shout = enclosing_block(SOURCE, 12)
    assert shout is not None
    assert shout.start == 10  # the decorator belongs to the function
    assert shout.header.strip() == "def shout(text: str) -> str:"
    cls = enclosing_block(SOURCE, 5, prefer="class")
    assert cls is not None
    assert cls.name == "Greeter"
    assert enclosing_block(SOURCE, 0) is None
    assert enclosing_block(parse_blocks(SOURCE), 16) == enclosing_block(SOURCE, 16)


def test_broken_python_falls_back_to_indentation() -> None:
    broken = "def ok(a):\n    return a\n\ndef bad(x:\n    return x +\n\nprint(1)\n"
    block = enclosing_block(broken, 4)
    assert block is not None
    assert block.start == 3
    assert block.end == 5


def test_other_languages_by_indentation_and_braces() -> None:
    js = "const a = 1;\nfunction add(a, b) {\n  return a - b;\n}\nconsole.log(add(1, 2));\n"
    block = enclosing_block(js, 2, "javascript")
    assert block is not None
    assert (block.start, block.end, block.name) == (1, 4, "add")


@pytest.mark.parametrize(
    ("code", "stub"),
    [
        ("def f(x):\n    ...\n", True),
        ("def f(x):\n    pass\n", True),
        ('def f(x):\n    """Doc."""\n    raise NotImplementedError\n', True),
        ("def f(x):\n    raise NotImplementedError('later')\n", True),
        ("def f(x):\n    # TODO: write it\n    return None\n", True),
        ('def f(x):\n    """Only a docstring."""\n', True),
        ("def f(x):\n    return x\n", False),
        ("def f(x):\n    pass\n    return x\n", False),
        ("    def method(self):\n        ...\n", True),
        ("function f(a) {\n}\n", True),
    ],
)
def test_stub_detection(code: str, stub: bool) -> None:
    language = "javascript" if code.startswith("function") else "python"
    assert is_stub(code, language) is stub


@pytest.mark.parametrize("language", ["python", "py", "Python", "python3", ""])
def test_every_python_language_id_is_read_as_python(language: str) -> None:
    assert not is_stub("def f(x):\n    return x\n", language)
    assert is_stub("def f(x):\n    ...\n", language)
    blocks = parse_blocks(SOURCE, language)
    assert [(b.kind, b.name) for b in blocks] == [(b.kind, b.name) for b in parse_blocks(SOURCE)]
    assert ("class", "Greeter") in [(b.kind, b.name) for b in blocks]


def test_build_context_selection_surroundings_and_budget() -> None:
    ctx = build_context(SOURCE, 7, 9, path="/x/greeter.py")
    assert ctx.selection == '    def greet(self, name: str) -> str:\n        return "hello " + name'
    assert (ctx.start_line, ctx.end_line) == (7, 9)
    assert ctx.imports == "import os\nfrom typing import Any"
    assert ctx.enclosing == "class Greeter:"
    assert ctx.before.endswith('"""Says hello."""\n')
    assert ctx.after.lstrip().startswith("@staticmethod")
    small = build_context(SOURCE, 7, 9, budget_chars=len(ctx.selection) + 40)
    assert len(small.before) + len(small.after) <= 40
    # Whole function selected: no enclosing signature repeated.
    assert build_context(SOURCE, 15, 17).enclosing is None


def test_out_of_range_lines_are_clamped() -> None:
    ctx = build_context("a = 1\n", 5, 9)
    assert ctx.selection == ""
    assert ctx.start_line == ctx.end_line == 1


def test_imports_and_language() -> None:
    assert find_imports("x = 1\nimport re\ndef f():\n  from a import b\n") == "import re"
    assert language_from_path("/a/b.ts") == "typescript"
    assert language_from_path(None) == "python"
    assert language_from_path("/a/README") == "python"


def test_reindent_to_the_replaced_code() -> None:
    answer = "def greet(self):\n    return 1\n"
    assert reindent(answer, "    def greet(self):\n        return 0\n") == "    def greet(self):\n        return 1\n"
    assert reindent("  x = 1", "y = 2") == "x = 1"


# A module as libraries write them: a multi-line import, optional dependencies, TYPE_CHECKING imports, and
# imports local to methods and nested functions (which belong to them, not to the module).
MODULE = """\
\"\"\"Helpers.\"\"\"
from __future__ import annotations

import os
from collections import (
    OrderedDict,
    defaultdict,
)
from typing import TYPE_CHECKING

try:
    import simplejson as json
except ImportError:  # pragma: no cover
    import json

try:
    import yaml

    HAS_YAML = True
except ImportError:
    yaml = None
    HAS_YAML = False

if TYPE_CHECKING:
    from collections.abc import Iterable

if os.name == "nt":
    SEP = ";"
else:
    SEP = "/"


class Loader:
    def load(self, path):
        import io
        from pathlib import Path

        def inner():
            import re

            return re.compile("x")

        with io.open(Path(path)) as handle:
            return json.load(handle), inner()


def group(items: Iterable[str]) -> dict[str, list[str]]:
    import itertools

    out = defaultdict(list)
    for key, values in itertools.groupby(sorted(items)):
        out[key].extend(values)
    return dict(OrderedDict(out))
"""


def test_only_module_level_imports_are_the_files_imports() -> None:
    imports = find_imports(MODULE)
    assert "import io" not in imports
    assert "from pathlib import Path" not in imports
    assert "import re" not in imports
    assert "import itertools" not in imports
    assert "    OrderedDict," in imports  # the multi-line import is whole
    assert "except ImportError:  # pragma: no cover\n    import json" in imports
    assert "HAS_YAML = False" in imports
    assert "if TYPE_CHECKING:\n    from collections.abc import Iterable" in imports
    assert "SEP" not in imports  # a top-level ``if`` that imports nothing is module code, not imports
    ast.parse(imports)  # what the sandbox runs above the selection must parse


@pytest.mark.parametrize("name", ["load", "group", "inner"])
def test_imports_and_a_selected_function_parse_together(name: str) -> None:
    """The text the sandbox runs (the file's imports, then the selection dedented) parses, for a method, a
    function with local imports and a nested function."""
    block = next(b for b in parse_blocks(MODULE) if b.name == name)
    ctx = build_context(MODULE, block.start, block.end)
    code = f"{ctx.imports}\n{textwrap.dedent(ctx.selection)}"
    ast.parse(code)
    exec(compile(code, "<module>", "exec"), {})  # and runs: every import it keeps exists here (yaml aside)


def test_a_module_being_edited_keeps_column_0_imports_whole() -> None:
    broken = MODULE + "\ndef half(:\n"
    imports = find_imports(broken)
    assert "import itertools" not in imports
    assert "from collections import (\n    OrderedDict,\n    defaultdict,\n)" in imports
    assert "import io" not in imports


def test_the_limit_never_cuts_a_statement() -> None:
    cut = find_imports(MODULE, limit=5)  # the 4-line import would end at line 6
    assert cut.splitlines() == ["from __future__ import annotations", "import os"]
    whole = find_imports(MODULE, limit=6)
    ast.parse(whole)
    assert whole.splitlines()[-1] == ")"


@pytest.mark.parametrize(
    ("language", "source", "wanted", "unwanted"),
    [
        (
            "javascript",
            "const fs = require('fs');\nimport path from 'path';\n\nfunction f(x) {\n  const os = require('os');\n"
            "  return os.EOL + x;\n}\n",
            ["const fs = require('fs');", "import path from 'path';"],
            ["os"],
        ),
        (
            "go",
            'package main\n\nimport (\n\t"fmt"\n\t"strings"\n)\n\nfunc f() string { return fmt.Sprint(strings.ToUpper("a")) }\n',
            ['import (\n\t"fmt"\n\t"strings"\n)'],
            [],
        ),
        (
            "rust",
            "use std::collections::HashMap;\n\nfn f() -> usize {\n    use std::fmt::Write;\n    HashMap::<u8, u8>::new().len()\n}\n",
            ["use std::collections::HashMap;"],
            ["Write"],
        ),
    ],
)
def test_other_languages_keep_top_level_imports_only(
    language: str, source: str, wanted: list[str], unwanted: list[str]
) -> None:
    imports = find_imports(source, language)
    for text in wanted:
        assert text in imports
    for text in unwanted:
        assert text not in imports
