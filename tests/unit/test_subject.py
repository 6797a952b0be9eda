"""What a request is about (``consensus.Subject``), worked out once, and what the consensus asks of a language
instead of asking which language it is (``Language.standalone``, ``not_code_reason``, ``documentation_reason``,
``documented``): real languages, no execution."""

from __future__ import annotations

import pytest

from codeconductor.ensemble.consensus import agreement_key, agreement_key_for, probe_for, subject_for
from codeconductor.ensemble.languages import code_language, language_for
from codeconductor.ensemble.types import CodeContext, Request, TaskKind

FUNCTION = 'def double(x):\n    """Twice x.\n    >>> double(2)\n    4\n    """\n    return x * 2\n'
METHOD = "    def double(self, x):\n        return x * 2\n"


def _request(selection: str, task: TaskKind = TaskKind.IMPROVE, **context: str) -> Request:
    return Request(task=task, context=CodeContext(selection=selection, **context))


def test_a_function_with_the_files_imports() -> None:
    subject = subject_for(_request(FUNCTION, imports="import math"))
    assert subject.language is language_for("python")
    assert subject.runs_alone
    assert subject.program == FUNCTION
    assert subject.code == "import math\n" + FUNCTION
    assert subject.entry_point == "double"


def test_a_method_is_a_program_of_its_own_without_the_imports() -> None:
    subject = subject_for(_request(METHOD, imports="import math", before="class K:"))
    assert not subject.runs_alone
    assert subject.program == subject.code == "def double(self, x):\n    return x * 2\n"
    assert subject.entry_point == "double"
    # A method only runs in its project: no probe of its own.
    assert probe_for(_request(METHOD, imports="import math", before="class K:")) is None


def test_javascript_reads_its_examples_from_the_comment_above() -> None:
    selection = "function double(x) {\n  return x * 2;\n}\n"
    request = _request(selection, before="// double(2) => 4", language="javascript", path="a.js")
    subject = subject_for(request)
    assert subject.language.name == "javascript"
    assert subject.comment_above == "// double(2) => 4"
    assert subject.program == selection  # indentation is no syntax there: nothing dedented
    probe = probe_for(request)  # node is installed by setup: JavaScript runs here
    assert probe is not None
    assert [e.call for e in probe.examples] == ["double(2)"]


@pytest.mark.parametrize(
    ("language_id", "path", "expected"),
    [
        ("python", "a.js", "python"),  # the id wins over the path
        ("javascript", None, "javascript"),
        ("", "a.go", "python"),  # no id: Python, what every front end sends by default
        (None, None, "python"),
        ("plaintext", "a.rs", "rust"),  # an id nobody knows: the path's language
        ("plaintext", None, "plaintext"),
    ],
)
def test_the_language_of_a_requests_code(language_id: str | None, path: str | None, expected: str) -> None:
    assert code_language(language_id, path).name == expected


def test_the_quorum_key_is_the_consensus_key() -> None:
    request = _request(FUNCTION, task=TaskKind.FIX)
    answers = ["```python\ndef double(y):\n    return y * 2\n```", "def double(x):\n    return x+x\n", "Sure!"]
    key = agreement_key_for(request)
    assert [key(a) for a in answers] == [agreement_key(request, a) for a in answers]
    assert key(answers[0]) == key(FUNCTION)  # same program but for names, docstring and layout
    assert key(answers[1]) != key(FUNCTION)


def test_python_says_why_an_answer_is_not_code() -> None:
    python = language_for("python")
    assert python.not_code_reason(FUNCTION, "double") is None
    assert python.not_code_reason("Sure", None) == "is not code (prose)"
    assert python.not_code_reason("Done.", "double") == "is not code (prose, or an empty body)"
    assert (
        python.not_code_reason("def triple(x):\n    return 3 * x\n", "double") == "does not define a working double()"
    )


def test_brace_languages_say_why_an_answer_is_not_code() -> None:
    js = language_for("javascript")
    code = "function double(x) {\n  return x * 2;\n}\n"
    assert js.not_code_reason(code, "double") is None
    assert js.not_code_reason("Here is the answer you asked for", None) == "is not code (prose)"
    assert js.not_code_reason(code, "triple") == "does not define triple"


def test_only_documentation_may_change() -> None:
    python = language_for("python")
    bare = "def double(x):\n    return x * 2\n"
    assert python.documentation_reason(FUNCTION, bare, "double") is None
    assert python.documentation_reason(bare, bare, "double") == "adds no docstring"
    changed = FUNCTION.replace("x * 2", "x + x")
    assert python.documentation_reason(changed, bare, "double") == "changes your code, not only its docstring"
    assert python.documentation_reason(FUNCTION, bare, None) == "there is no function to document"
    js = language_for("javascript")
    code = "function double(x) {\n  return x * 2;\n}\n"
    assert js.documentation_reason("// Twice x.\n" + code, code, "double") is None
    assert js.documentation_reason(code, code, "double") == "adds no documentation"
    assert js.documentation_reason(code.replace("* 2", "+ x"), code, "double") == (
        "changes your code, not only its documentation"
    )


def test_python_puts_the_docstring_into_the_users_own_text() -> None:
    python = language_for("python")
    selection = "    def double(self, x):\n        # keep me\n        return x  *  2\n"
    candidate = 'def double(self, x):\n    """Twice x."""\n    return x * 2\n'
    documented = python.documented(selection, candidate, "double")
    assert documented == '    def double(self, x):\n        """Twice x."""\n        # keep me\n        return x  *  2\n'
    assert language_for("javascript").documented("function f() {}\n", "// f\nfunction f() {}\n", "f") is None
