"""Examples from docstrings, generated inputs, and candidates observed by behaviour in the real sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codeconductor.ensemble.consensus import probe_for
from codeconductor.ensemble.consensus.behaviour import Probe
from codeconductor.ensemble.languages import Example, language_for
from codeconductor.ensemble.languages.python.examples import entry_point_of, extract_examples
from codeconductor.ensemble.languages.python.inputs import generate_inputs
from codeconductor.ensemble.types import CodeContext, Request, TaskKind
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.sandbox import Sandbox

STUB = '''def add_one(xs: list) -> list:
    """Add one to each.
    >>> add_one([1, 2])
    [2, 3]
    Example: add_one([5]) ==> [6]
    add_one([]) ➞ []
    For xs = [0, 0] the output should be [1, 1]
    """
'''


@pytest.fixture(scope="module")
def box() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def test_examples_in_every_form() -> None:
    found = extract_examples(STUB)
    assert Example("add_one([1, 2])", "[2, 3]") in found
    assert Example("add_one([5])", "[6]") in found
    assert Example("add_one([])", "[]") in found
    assert Example("add_one([0, 0])", "[1, 1]") in found


def test_prose_formula_is_not_an_example() -> None:
    stub = 'def tri(n):\n    """tri(2) = 1 + (2 / 2) = 2\n    tri(3) = [1, 3, 2, 8]\n    """\n'
    found = extract_examples(stub)
    assert found == [Example("tri(3)", "[1, 3, 2, 8]")]


def test_doctest_comparison_line_and_input_output_form() -> None:
    stub = (
        'def f(arr, k):\n    """Do it.\n    >>> f([1, 2], 1) == 3\n'
        '    Input: arr = [4], k = 2\n    Output: 6\n    """\n'
    )
    found = extract_examples(stub)
    assert Example("f([1, 2], 1)", "3") in found
    assert Example("f([4], 2)", "6") in found


def test_entry_point_is_the_last_function() -> None:
    assert entry_point_of("def helper():\n    pass\n\ndef main(x):\n    '''Doc.'''\n") == "main"


def test_generated_inputs_are_new_deterministic_and_labelless() -> None:
    examples = extract_examples(STUB)
    first = generate_inputs("add_one", [("xs", "list")], examples)
    assert first == generate_inputs("add_one", [("xs", "list")], examples)
    assert first
    assert all(call.startswith("add_one(") for call in first)
    assert not {e.call for e in examples} & set(first)
    typed = generate_inputs("g", [("a", "int"), ("b", "str")], [])
    assert typed
    assert all(call.startswith("g(") for call in typed)


def test_oracle_tasks_probe_a_wider_net_built_by_the_language() -> None:
    def probe(task: TaskKind) -> Probe:
        found = probe_for(Request(task=task, context=CodeContext(selection=STUB)))
        assert found is not None
        return found

    stub = probe(TaskKind.IMPLEMENT)
    assert len(stub.examples) == 4
    assert len(stub.extra) == 8  # nothing says what is right for a stub's extra inputs: a few to tell answers apart
    fix = probe(TaskKind.FIX)
    assert fix.examples == stub.examples
    # The user's code is the oracle: more inputs, mutated twice, not only the first round's mutations.
    python = language_for("python")
    first_round = python.generate_calls(STUB, "add_one", stub.examples, limit=len(fix.extra))
    assert len(fix.extra) > len(stub.extra)
    assert set(fix.extra) - set(first_round)
    assert probe_for(Request(task=TaskKind.DOCSTRING, context=CodeContext(selection=STUB))) is None  # never run


async def test_behaviour_groups_equivalent_code_and_flags_degenerate(box: Sandbox) -> None:
    probe = probe_for(Request(task=TaskKind.IMPLEMENT, context=CodeContext(selection=STUB)))
    assert probe is not None
    executor = SandboxExecutor(box)
    good_a = await executor.observe("def add_one(xs):\n    return [x + 1 for x in xs]\n", probe)
    good_b = await executor.observe(
        "def add_one(xs):\n    out = []\n    for x in xs:\n        out.append(x + 1)\n    return out\n", probe
    )
    wrong = await executor.observe("def add_one(xs):\n    return xs\n", probe)
    broken = await executor.observe("def add_one(xs):\n    return None\n", probe)
    assert good_a.keys == good_b.keys
    assert all(good_a.passed)
    assert wrong.keys != good_a.keys
    assert not all(wrong.passed)
    assert broken.degenerate
    assert not good_a.degenerate
    assert good_a.agreement(good_b) == 1.0
    assert good_a.agreement(broken) == 0.0
