"""The gate for answers run in the user's project (``consensus.gate.project_gate``): pure data in, a reason out."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

from codeconductor.ensemble.consensus.behaviour import Behaviour, Probe, ProjectProbe
from codeconductor.ensemble.consensus.gate import (
    UNCHECKED_IN_PROJECT,
    fewer_fixed,
    fix_shown,
    project_gate,
    project_oracle_usable,
    used_in_project,
)
from codeconductor.ensemble.types import TaskKind

PROJECT = ProjectProbe(root="/p", module="m", target="f", python="/p/.venv/bin/python", module_text="", start=0, end=1)
# One generated input (index 0), then two recorded calls (indices 1, 2).
PROBE = Probe("f", (), ("f(None)",), project=PROJECT)
TESTS_OK = (("t.py::test_a", "passed"), ("t.py::test_b", "passed"))


def _b(*keys: str, tests: tuple[tuple[str, str], ...] = TESTS_OK) -> Behaviour:
    return Behaviour(keys=keys, passed=(), tests=tests)


ORIGINAL = _b("!TypeError", "=1", "=(None, [[2]])")


def test_improve_keeps_every_passing_test_and_every_recorded_value() -> None:
    assert project_gate(TaskKind.IMPROVE, _b("!TypeError", "=1", "=(None, [[2]])"), ORIGINAL, PROBE) is None
    broken = _b("!TypeError", "=1", "=(None, [[2]])", tests=(("t.py::test_a", "passed"), ("t.py::test_b", "failed")))
    assert (
        project_gate(TaskKind.IMPROVE, broken, ORIGINAL, PROBE)
        == "fails 1 of 2 of your tests (test_b) that pass on your code"
    )
    # An in-place change the original did not make is another behaviour.
    mutated = _b("!TypeError", "=1", "=(None, [[3]])")
    assert (
        project_gate(TaskKind.IMPROVE, mutated, ORIGINAL, PROBE)
        == "does something else than your code on 1 of 2 inputs"
    )


def test_a_generated_input_the_original_rejects_is_no_evidence() -> None:
    # The original raised TypeError on the generated input: what a candidate does there does not count...
    assert project_gate(TaskKind.IMPROVE, _b("=0", "=1", "=(None, [[2]])"), ORIGINAL, PROBE) is None
    # ...but a recorded call that raised must raise the same exception type.
    original = _b("=5", "!ValueError", "=2")
    assert project_gate(TaskKind.IMPROVE, _b("=5", "!KeyError", "=2"), original, PROBE) is not None
    assert project_gate(TaskKind.IMPROVE, _b("=5", "!ValueError", "=2"), original, PROBE) is None


def test_fix_must_make_a_failing_test_pass_and_break_none() -> None:
    failing = (("t.py::test_a", "passed"), ("t.py::test_b", "failed"))
    original = _b("=0", "=1", "=2", tests=failing)
    fixes = _b("=0", "=9", "=2", tests=TESTS_OK)
    assert project_gate(TaskKind.FIX, fixes, original, PROBE) is None
    fixes_nothing = _b("=0", "=9", "=2", tests=failing)
    assert project_gate(TaskKind.FIX, fixes_nothing, original, PROBE) == "makes none of the 1 failing tests pass"
    breaks = _b("=0", "=9", "=2", tests=(("t.py::test_a", "failed"), ("t.py::test_b", "passed")))
    assert (
        project_gate(TaskKind.FIX, breaks, original, PROBE)
        == "fails 1 of 1 of your tests (test_a) that pass on your code"
    )


def test_nothing_observed_is_no_oracle() -> None:
    assert not project_oracle_usable(_b("!load:ModuleNotFoundError", tests=()))
    assert project_oracle_usable(_b(tests=(("t.py::test_a", "failed"),)))
    assert not project_oracle_usable(None)


def test_an_improve_seen_only_on_generated_inputs_is_not_checked() -> None:
    # No test of it, no recorded call: the one generated input agrees, and that is all.
    probe = Probe("f", (), ("f(1)",), project=PROJECT)
    original = _b("=1", tests=())
    assert not used_in_project(original, probe)
    reason = project_gate(TaskKind.IMPROVE, _b("=1", tests=()), original, probe)
    assert reason is not None
    assert reason.startswith(UNCHECKED_IN_PROJECT)
    assert "no test of yours calls f" in reason
    # A recorded call replayed to an outcome is the project's use: then agreement counts.
    assert used_in_project(ORIGINAL, PROBE)
    recorded_only = _b("!TypeError", "=1", "=(None, [[2]])", tests=())
    assert used_in_project(recorded_only, PROBE)
    assert project_gate(TaskKind.IMPROVE, recorded_only, recorded_only, PROBE) is None
    # A recorded call the sandbox stopped observed nothing.
    assert not used_in_project(_b("=1", "!Timeout", "!Timeout", tests=()), PROBE)


def test_a_fix_that_fixes_fewer_failing_tests_than_another_is_out() -> None:
    failing = (("t.py::test_a", "failed"), ("t.py::test_b", "failed"), ("t.py::test_c", "passed"))
    original = _b("=0", tests=failing)
    both = _b("=1", tests=(("t.py::test_a", "passed"), ("t.py::test_b", "passed"), ("t.py::test_c", "passed")))
    one = _b("=2", tests=(("t.py::test_a", "passed"), ("t.py::test_b", "failed"), ("t.py::test_c", "passed")))
    other = _b("=3", tests=(("t.py::test_a", "failed"), ("t.py::test_b", "passed"), ("t.py::test_c", "passed")))
    assert fewer_fixed([one, both, other], original) == [
        "makes 1 of your 2 failing tests pass, another answer 2",
        None,
        "makes 1 of your 2 failing tests pass, another answer 2",
    ]
    # Neither fixes all the other fixes: both stay (the ranking decides).
    assert fewer_fixed([one, other], original) == [None, None]
    assert fix_shown(one, original)
    # Nothing failed on the user's code and no example: a fix that merely differs showed nothing.
    assert not fix_shown(_b("=9"), _b("=0"))
    gained = Behaviour(keys=("=1",), passed=(True,))
    assert fix_shown(gained, Behaviour(keys=("=0",), passed=(False,)))


def test_the_driver_compares_what_a_returned_iterator_yields_and_reseeds_random() -> None:
    """The in-sandbox driver's value form (``_project_driver.canonical``): a generator is what it yields (and
    the error it ends with), whatever kind of iterator it is; random draws repeat in every job."""
    import random

    from codeconductor.ensemble.verify import _project_driver as driver

    def gen() -> Iterator[int]:
        yield from (1, 2)

    def failing() -> Iterator[int]:
        yield 1
        raise ValueError("x")

    assert driver.canonical(gen()) == driver.canonical(iter([1, 2])) == driver.canonical(map(int, "12"))
    assert driver.canonical(gen()) != driver.canonical(iter([1, 3]))
    assert driver.canonical(failing()) == ("<iterator>", [1, "!ValueError"])
    assert len(driver.canonical(itertools.count())[1]) == driver.ITEMS_LIMIT  # an endless one: bounded
    driver.reseed()
    first = random.random()
    driver.reseed()
    assert random.random() == first
