"""The language layer on real tree-sitter grammars: registry, syntax, prose, extraction, normalisation,
functions and comment examples for every supported language (no execution here: see
tests/integration/test_languages_exec.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from codeconductor.ensemble.consensus.extract import extract_code
from codeconductor.ensemble.consensus.normalize import normalized_key
from codeconductor.ensemble.context import language_from_path
from codeconductor.ensemble.languages import LANGUAGES, Example, language_for, supported_language_ids
from codeconductor.ensemble.languages._base import balanced_calls
from codeconductor.ensemble.languages._plain import Plain
from codeconductor.ensemble.languages.javascript import JavaScript

ROOT = Path(__file__).resolve().parents[2]

# (language id, a function `add` with comments, the same reformatted with other local names, a changed one,
#  a broken one)
SNIPPETS = {
    "javascript": (
        "// add two numbers\nfunction add(a, b) {\n  const s = a + b; // sum\n  return s;\n}\n",
        "function add(x, y)\n{\n    const total = x + y;\n    return total;\n}\n",
        "function add(a, b) {\n  const s = a - b;\n  return s;\n}\n",
        "function add(a, b) {\n  const s = a + ;\n  return s;\n",
    ),
    "typescript": (
        "// add two numbers\nfunction add(a: number, b: number): number {\n  const s: number = a + b;\n  return s;\n}\n",
        "function add(x: number, y: number): number\n{\n    const total: number = x + y; /* sum */\n    return total;\n}\n",
        "function add(a: number, b: number): number {\n  const s: number = a * b;\n  return s;\n}\n",
        "function add(a: number, b: number): number {\n  const s: number = a + b\n  return s;\n}}\n",
    ),
    "go": (
        "// add two numbers\nfunc add(a int, b int) int {\n\ts := a + b\n\treturn s\n}\n",
        "func add(x int, y int) int {\n    total := x + y // sum\n    return total\n}\n",
        "func add(a int, b int) int {\n\ts := a - b\n\treturn s\n}\n",
        "func add(a int, b int) int {\n\ts := a + \n\treturn s\n",
    ),
    "rust": (
        "/// add two numbers\nfn add(a: i32, b: i32) -> i32 {\n    let s = a + b;\n    s\n}\n",
        "fn add(x: i32, y: i32) -> i32 { let total = x + y; // sum\n total }\n",
        "fn add(a: i32, b: i32) -> i32 {\n    let s = a - b;\n    s\n}\n",
        "fn add(a: i32, b: i32) -> i32 {\n    let s = a + b\n    s\n",
    ),
    "java": (
        "class M {\n  // add two numbers\n  static int add(int a, int b) {\n    int s = a + b;\n    return s;\n  }\n}\n",
        "class M { static int add(int x, int y) { int total = x + y; /* sum */ return total; } }\n",
        "class M {\n  static int add(int a, int b) {\n    int s = a - b;\n    return s;\n  }\n}\n",
        "class M {\n  static int add(int a, int b) {\n    int s = a + b\n    return s;\n  }\n",
    ),
    "c": (
        "/* add two numbers */\nint add(int a, int b) {\n  int s = a + b;\n  return s;\n}\n",
        "int add(int x, int y)\n{\n  int total = x + y; // sum\n  return total;\n}\n",
        "int add(int a, int b) {\n  int s = a - b;\n  return s;\n}\n",
        "int add(int a, int b) {\n  int s = a + b\n  return s;\n",
    ),
    "cpp": (
        "#include <vector>\n// add two numbers\nint add(int a, int b) {\n  auto s = a + b;\n  return s;\n}\n",
        "#include <vector>\nint add(int x, int y) { auto total = x + y; return total; }\n",
        "#include <vector>\nint add(int a, int b) {\n  auto s = a - b;\n  return s;\n}\n",
        "#include <vector>\nint add(int a, int b) {\n  auto s = a + b;\n  return s;\n",
    ),
}
PROSE = "Sure! The bug is that the function subtracts instead of adding: use a plus sign and it will work."


def test_registry_finds_languages_by_id_alias_and_extension() -> None:
    assert language_for("python") is language_for("py") is language_for("python3") is language_for(None, "a.py")
    assert language_for(None, None).name == "python"
    assert language_for("javascriptreact").name == "javascript"
    assert language_for("JS").name == "javascript"
    assert language_for(None, "/w/src/app.ts").name == "typescript"
    assert language_for(None, "/w/src/App.tsx").name == "typescriptreact"
    assert language_for(None, "x.hpp").name == "cpp"
    assert language_for("golang").name == "go"
    # The languageId wins over the extension; an unknown id gets a language without a parser.
    assert language_for("rust", "a.py").name == "rust"
    unknown = language_for("cobol", "a.cob")
    assert isinstance(unknown, Plain)
    assert not unknown.checks_syntax
    assert not unknown.can_execute
    assert language_from_path("/a/b.go") == "go"
    assert language_from_path("/a/README") == "python"
    ids = [lang_id for lang in LANGUAGES for lang_id in lang.ids]
    assert len(ids) == len(set(ids)), "an id belongs to two languages"


def test_editor_activates_for_every_supported_language() -> None:
    package = json.loads((ROOT / "vscode-extension" / "package.json").read_text(encoding="utf-8"))
    activation = {e.removeprefix("onLanguage:") for e in package["activationEvents"] if e.startswith("onLanguage:")}
    assert activation == set(supported_language_ids())
    listed = (ROOT / "vscode-extension" / "src" / "languages.ts").read_text(encoding="utf-8")
    block = listed.split("SUPPORTED_LANGUAGES", 1)[1].split("];", 1)[0]
    assert set(re.findall(r'"([a-z+]+)"', block)) == set(supported_language_ids())
    assert all(language_for(i).checks_syntax for i in supported_language_ids())


@pytest.mark.parametrize("lang_id", sorted(SNIPPETS))
def test_syntax_normalisation_and_functions(lang_id: str) -> None:
    lang = language_for(lang_id)
    code, same, changed, broken = SNIPPETS[lang_id]
    assert lang.parses(code)
    assert lang.parses(same)
    assert lang.parses(changed)
    assert not lang.parses(broken)
    assert lang.is_code(code)
    assert not lang.is_code(PROSE)
    assert not lang.is_code("")
    # Comments, layout and local names do not matter; an operator does.
    assert lang.normalize(code) == lang.normalize(same) == normalized_key(same, lang_id)
    assert lang.normalize(code) != lang.normalize(changed)
    found = lang.find_function(code, "add")
    assert found is not None
    assert found.params == ("a", "b")
    assert "add" in found.text
    assert found.text.rstrip().endswith("}")
    assert lang.entry_point(code) == "add"


@pytest.mark.parametrize("lang_id", sorted(SNIPPETS))
def test_extraction_takes_the_code_and_never_prose(lang_id: str) -> None:
    lang = language_for(lang_id)
    code, _, _, broken = SNIPPETS[lang_id]
    tag = lang.ids[-1] if lang_id != "java" else "java"
    fenced = f"Here is the fixed version.\n\n```{tag}\n{code}```\n\nIt now adds the numbers."
    got = lang.extract(fenced)
    assert got.parseable
    assert got.code.strip() == code.strip()
    assert "fenced" in got.notes
    bare = f"The corrected function:\n\n{code}\nThis adds a and b."
    got = extract_code(bare, language=lang_id)  # consensus/extract.py delegates here
    assert got.parseable
    assert got.code.strip() == code.strip()
    assert "prose removed" in got.notes
    assert got.norm == lang.normalize(code)
    prose = lang.extract(PROSE)
    assert prose.empty
    assert not prose.parseable
    wrong = lang.extract(f"```{tag}\n{broken}```")
    assert not wrong.parseable
    assert not wrong.empty


def test_a_python_block_is_not_javascript() -> None:
    js = language_for("javascript")
    answer = "```python\ndef add(a, b):\n    return a + b\n```"
    got = js.extract(answer)
    assert not got.parseable


def test_javascript_extraction_repairs_body_only_and_scaffolding() -> None:
    js = language_for("javascript")
    context = "/* Sum.\n  >>> add(1, 2)\n  3\n  */\nconst add = (a, b) => {\n  return a - b;\n}\n"
    body_only = js.extract("  return a + b;", context=context)
    assert body_only.parseable
    assert "body merged with the signature" in body_only.notes
    assert js.find_function(body_only.code, "add") is not None
    demo = "```js\nexport const add = (a, b) => a + b;\nconsole.log(add(1, 2));\nmodule.exports = { add };\n```"
    cleaned = js.extract(demo, context=context)
    assert cleaned.parseable
    assert "console.log" not in cleaned.code
    assert "export" not in cleaned.code
    assert "scaffolding removed" in cleaned.notes
    # A helper from the user's file the answer calls but did not repeat comes along.
    ctx = "const sq = (x) => x * x;\nconst sumSq = (a, b) => {\n  return a + b;\n}\n"
    helped = js.extract("```js\nconst sumSq = (a, b) => sq(a) + sq(b);\n```", context=ctx)
    assert "context added" in helped.notes
    assert "const sq" in helped.code


def test_comment_examples() -> None:
    js = language_for("javascript")
    code = (
        "/**\n * Add.\n * @example\n * add(1, 2) // => 3\n * @example add([1], 'x') === '1x'\n */\n"
        "// add(2, 2) == 4\n/* >>> add(0, 0)\n   0\n   add(5, 5) ➞ 10 */\nfunction add(a, b) { return a + b; }\n"
    )
    assert js.examples(code, "add") == [
        Example("add(1, 2)", "3"),
        Example("add([1], 'x')", "'1x'"),
        Example("add(2, 2)", "4"),
        Example("add(0, 0)", "0"),
        Example("add(5, 5)", "10"),
    ]
    assert js.examples("/* add(1, 2) is what you call */\nfunction add(a, b) {}", "add") == []
    calls = js.generate_calls(code, "add", js.examples(code, "add"))
    assert calls
    assert isinstance(js, JavaScript)  # only the languages that parse calls have is_expression
    assert all(c.startswith("add(") and js.is_expression(c) for c in calls)
    go = language_for("go")
    assert go.examples("// add(1, 2) returns 3\nfunc add(a, b int) int { return a + b }\n", "add") == [
        Example("add(1, 2)", "3")
    ]


def test_balanced_calls_respect_strings_and_what_comes_before_the_name() -> None:
    text = "f(1, ')') + obj.f(2) + $f(3) + `f(` + undef(4) + f([5, (6)])"
    # The default (brace languages): no method call, no $-name, no longer name; backticks quote.
    assert [text[a:b] for a, b in balanced_calls(text, "f")] == ["f(1, ')')", "f([5, (6)])"]
    # Python's docstrings: a method call counts, backticks are plain text (so `f( opens a call that never closes).
    python = balanced_calls(text, "f", quotes="'\"", not_after=r"\w")
    assert [text[a:b] for a, b in python] == ["f(1, ')')", "f(2)", "f(3)", "f([5, (6)])"]


def test_bare_java_method_is_checked_inside_a_class() -> None:
    java = language_for("java")
    method = "static int add(int a, int b) {\n  return a + b;\n}\n"
    assert java.parses(method)
    assert java.is_code(method)
    assert java.find_function(method, "add") is not None
    assert not java.parses("static int add(int a, int b) {\n  return a + ;\n}\n")


def test_enclosing_function_in_brace_languages() -> None:
    from codeconductor.ensemble.context import enclosing_block

    js = "const helper = 1;\n\nconst add = (a, b) => {\n  const s = a + b;\n  return s;\n};\n"
    block = enclosing_block(js, 3, "javascript")
    assert block is not None
    assert (block.start, block.end, block.name) == (2, 6, "add")
    go = "package m\n\nfunc add(a int, b int) int {\n\treturn a + b\n}\n"
    block = enclosing_block(go, 3, "go")
    assert block is not None
    assert (block.start, block.end, block.name) == (2, 5, "add")
    assert enclosing_block(js, 0, "javascript") is None


# The comment directly above a function documents it (issue 26): read with the function whatever the selection.
COMMENT_ABOVE = {
    "javascript": (
        "let n = 0;\n/**\n * Adds.\n * @example add(1, 2) // => 3\n */",
        "function add(a, b) { return a + b; }",
    ),
    "typescript": ("// add(1, 2) === 3", "function add(a: number, b: number): number { return a + b; }"),
    "go": ("package m\n\n// add returns the sum.\n// add(1, 2) == 3", "func add(a int, b int) int { return a + b }"),
    "rust": ("use std::fmt;\n\n/// add(1, 2) == 3", "fn add(a: i32, b: i32) -> i32 { a + b }"),
    "java": ("class M {\n    // add(1, 2) == 3", "    static int add(int a, int b) { return a + b; }"),
    "c": ("#include <stdio.h>\n/* add(1, 2) == 3 */", "int add(int a, int b) { return a + b; }"),
}


@pytest.mark.parametrize("language", sorted(COMMENT_ABOVE))
def test_the_comment_directly_above_gives_the_functions_examples(language: str) -> None:
    lang = language_for(language)
    before, function = COMMENT_ABOVE[language]
    above = lang.comment_above(before)
    assert above
    assert before.endswith(above.strip())
    examples = lang.examples(f"{above}\n{function}", "add")
    assert [(e.call, e.expected) for e in examples] == [("add(1, 2)", "3")]
    assert lang.examples(function, "add") == []  # the selection alone has none
    # A blank line between, or code after it, and the comment is not the function's.
    assert lang.comment_above(before + "\n") == ""
    assert lang.comment_above(before + "\nint x = 1;") == ""


def test_python_documents_functions_inside_them() -> None:
    assert language_for("python").comment_above("# add(1, 2) == 3") == ""
