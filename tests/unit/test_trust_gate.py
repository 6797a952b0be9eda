"""The trust gate on the real sandbox: the user's own code is the oracle, and "your code is unchanged" is an
answer. Each case is one the first release got wrong (issue: "Trust")."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.consensus.confidence import unchecked_cap
from codeconductor.ensemble.edits import replace_span, span_lines
from codeconductor.ensemble.history import History
from codeconductor.ensemble.languages.python.docs import is_program, same_code_but_docs
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    Result,
    TaskKind,
)
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.sandbox import Sandbox

PRIMES = '''def primes_below(n: int) -> list[int]:
    """Return the prime numbers smaller than ``n``, in increasing order.

    >>> primes_below(10)
    [2, 3, 5, 7]
    >>> primes_below(2)
    []
    >>> primes_below(30)
    [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    """
    result: list[int] = []
    for candidate in range(2, n):
        is_prime = True
        for divisor in range(2, candidate):
            if candidate % divisor == 0:
                is_prime = False
        if is_prime:
            result.append(candidate)
    return result
'''
SIEVE = """def primes_below(n: int) -> list[int]:
    if n < 3:
        return []
    sieve = [True] * n
    sieve[0] = sieve[1] = False
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i :: i] = [False] * len(sieve[i * i :: i])
    return [i for i, p in enumerate(sieve) if p]
"""
TABLE = """def primes_below(n: int) -> list[int]:
    table = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]
    return [p for p in table if p < n]
"""
OFF_BY_ONE = """def primes_below(n: int) -> list[int]:
    return [c for c in range(2, n + 1) if all(c % d for d in range(2, c))]
"""
UNDEFINED = """def primes_below(n: int) -> list[int]:
    return [c for c in range(2, n) if is_prime(c)]
"""


def _answer(name: str, text: str) -> ModelAnswer:
    model = ModelInfo(name=name, provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
    return ModelAnswer(model=model, status=AnswerStatus.ANSWERED, text=text)


def _request(task: TaskKind, selection: str = PRIMES, language: str = "python") -> Request:
    return Request(task=task, context=CodeContext(language=language, selection=selection))


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    with Sandbox() as box:
        yield SandboxExecutor(box)


async def test_improve_picks_the_sieve_over_a_table_that_passes_the_examples(executor: SandboxExecutor) -> None:
    answers = [
        _answer("table", TABLE),
        _answer("off", OFF_BY_ONE),
        _answer("undef", UNDEFINED),
        _answer("sieve", SIEVE),
    ]
    result = await decide(_request(TaskKind.IMPROVE), answers, executor=executor)
    assert result.offers_edit
    assert result.pick_models == [answers[3].model_id]
    refused = {c.members[0]: c.rejected for c in result.clusters[1:]}
    assert all(refused.values())
    assert "something else than your code" in (refused[answers[0].model_id] or "")


async def test_improve_two_tables_do_not_outvote_the_sieve(executor: SandboxExecutor) -> None:
    answers = [_answer("table-a", TABLE), _answer("table-b", TABLE), _answer("sieve", SIEVE)]
    result = await decide(_request(TaskKind.IMPROVE), answers, executor=executor)
    assert result.pick_models == [answers[2].model_id]


async def test_improve_with_only_broken_answers_keeps_the_code(executor: SandboxExecutor) -> None:
    answers = [_answer("table", TABLE), _answer("off", OFF_BY_ONE), _answer("undef", UNDEFINED)]
    result = await decide(_request(TaskKind.IMPROVE), answers, executor=executor)
    assert not result.offers_edit
    assert result.pick == ""
    assert result.no_edit is not None
    assert result.no_edit.startswith("no improvement found: none of the 3 answers keeps what your code does")
    assert result.no_edit.endswith("your code is unchanged")
    assert len(result.clusters) == 3


async def test_docstring_keeps_the_body(executor: SandboxExecutor) -> None:
    code = "def middle(s):\n    return s[(len(s) - 1) // 2]\n"
    documented = 'def middle(s):\n    """The middle character (the left one for even lengths)."""\n    return s[(len(s) - 1) // 2]\n'
    changed = 'def middle(s):\n    """The middle character."""\n    return s[len(s) // 2]\n'
    answers = [_answer("a", changed), _answer("b", changed), _answer("c", documented)]
    result = await decide(_request(TaskKind.DOCSTRING, code), answers, executor=executor)
    assert result.offers_edit
    assert result.pick_models == [answers[2].model_id]
    assert "The middle character (the left one" in result.pick


async def test_fix_keeps_passing_examples_and_must_change_something(executor: SandboxExecutor) -> None:
    buggy = '''def clamp(x: int, lo: int, hi: int) -> int:
    """Clamp x into [lo, hi].
    >>> clamp(5, 0, 10)
    5
    >>> clamp(-3, 0, 10)
    0
    >>> clamp(12, 0, 10)
    10
    """
    return max(lo, x)
'''
    breaks_passing = "def clamp(x, lo, hi):\n    return min(hi, x)\n"  # fixes 12 -> 10, breaks -3 -> 0
    same_bug = "def clamp(x, lo, hi):\n    return x if x > lo else lo\n"
    right = "def clamp(x, lo, hi):\n    return max(lo, min(hi, x))\n"
    answers = [_answer("a", breaks_passing), _answer("b", same_bug), _answer("c", right)]
    result = await decide(_request(TaskKind.FIX, buggy), answers, executor=executor)
    assert result.pick_models == [answers[2].model_id]
    reasons = {c.members[0]: c.rejected for c in result.clusters}
    assert "which your code passes" in (reasons[answers[0].model_id] or "")
    assert "fixes nothing" in (reasons[answers[1].model_id] or "")
    only_wrong = await decide(_request(TaskKind.FIX, buggy), answers[:2], executor=executor)
    assert not only_wrong.offers_edit
    assert "unchanged" in (only_wrong.no_edit or "")


async def test_a_fix_of_code_that_passes_every_example_is_not_checked(executor: SandboxExecutor) -> None:
    # The bug is where the examples do not look (negative numbers): nothing run shows that a fix fixes it.
    passes_examples = '''def absolute(x: int) -> int:
    """The distance of x from zero.

    >>> absolute(3)
    3
    >>> absolute(0)
    0
    """
    return x
'''
    no_op = "def absolute(x: int) -> int:\n    y = x\n    return y\n"  # the same program: it fixes nothing
    right = "def absolute(x: int) -> int:\n    return -x if x < 0 else x\n"
    # A change nothing can tell from the user's code (it may fix a bug the inputs tried miss, or nothing at all)
    # is offered only as "not checked": the right fix is not thrown away, and neither is applied unseen.
    only_no_op = await decide(_request(TaskKind.FIX, passes_examples), [_answer("a", no_op)], executor=executor)
    assert only_no_op.offers_edit
    assert only_no_op.unchecked is not None
    assert only_no_op.confidence <= unchecked_cap(TaskKind.FIX)
    result = await decide(_request(TaskKind.FIX, passes_examples), [_answer("b", right)], executor=executor)
    assert result.offers_edit
    assert result.unchecked is not None
    assert "nothing showed that it fixes" in result.unchecked
    assert not result.may_apply_unseen
    assert result.confidence <= unchecked_cap(TaskKind.FIX)


async def test_prose_is_never_the_code_pick(executor: SandboxExecutor) -> None:
    prose = "The function looks correct to me. It returns the primes below n."
    result = await decide(_request(TaskKind.IMPROVE), [_answer("a", prose), _answer("b", prose)], executor=executor)
    assert not result.offers_edit
    js = "function sum(xs) {\n  let s = 0;\n  for (const x of xs) s += x;\n  return s + 1;\n}\n"
    answers = [_answer("a", "You should start the sum at zero and it will work."), _answer("b", "Looks fine.")]
    result = await decide(_request(TaskKind.FIX, js, "javascript"), answers, executor=executor)
    assert not result.offers_edit
    assert all("not code" in (c.rejected or "") for c in result.clusters)


async def test_unexecuted_picks_are_capped_and_labelled(executor: SandboxExecutor) -> None:
    js = "function add(a, b) { return a - b; }"
    answers = [_answer("a", "```js\nfunction add(a, b) { return a + b; }\n```")] * 1
    result = await decide(_request(TaskKind.FIX, js, "javascript"), answers, executor=executor)
    assert result.offers_edit
    assert result.unchecked is not None  # typed, for every front end: "not checked"
    assert not result.may_apply_unseen
    assert result.confidence <= unchecked_cap(TaskKind.FIX)
    assert any(note.startswith("not checked: ") for note in result.notes)


async def test_a_checked_pick_is_not_labelled_unchecked(executor: SandboxExecutor) -> None:
    answers = [_answer("a", SIEVE)]
    result = await decide(_request(TaskKind.IMPROVE), answers, executor=executor)
    assert result.offers_edit
    assert result.executed
    assert result.unchecked is None
    assert result.may_apply_unseen


async def test_verification_off_is_unchecked_and_never_applied_unseen() -> None:
    answers = [_answer("a", SIEVE), _answer("b", SIEVE), _answer("c", SIEVE)]
    result = await decide(_request(TaskKind.IMPROVE), answers)  # no executor: nothing runs
    assert result.offers_edit
    assert not result.executed
    assert result.agree == 3  # three models wrote the same program: that agreement is real
    assert result.unchecked is not None
    assert not result.may_apply_unseen
    assert result.confidence <= unchecked_cap(TaskKind.IMPROVE)


def test_code_shape_rules() -> None:
    assert is_program(SIEVE, "primes_below")
    assert not is_program("Sure", None)
    assert not is_program("def primes_below(n):\n    pass\n", "primes_below")
    assert not is_program(SIEVE, "other")
    assert same_code_but_docs('def f(x):\n    """Doc."""\n    return x  # c\n', "def f(x):\n    return x\n", "f")
    assert not same_code_but_docs("def f(x):\n    return x\n", "def f(x):\n    return -x\n", "f")


def test_one_code_to_span_rule_round_trips() -> None:
    text = "import math\n\n\nclass A:\n    def f(self):\n        return 1\n\n\nx = 1\n"
    new = replace_span(text, 4, 6, "import math\ndef f(self):\n    return math.floor(2.5)\n")
    assert new == "import math\n\n\nclass A:\n    def f(self):\n        return math.floor(2.5)\n\n\nx = 1\n"
    lines = span_lines(text, new, 4, 6)
    old_lines = text.splitlines()
    assert "\n".join(old_lines[:4] + lines + old_lines[6:]) + "\n" == new


async def test_history_records_the_truth(executor: SandboxExecutor, tmp_path: Path) -> None:
    """A refused answer never counts as "passed its examples", and "no edit" is an outcome of its own."""
    answers = [_answer("table", TABLE), _answer("undef", UNDEFINED)]
    request = _request(TaskKind.IMPROVE)
    consensus = await decide(request, answers, executor=executor)
    assert consensus.no_edit
    history = History(tmp_path / "h.sqlite3")
    history.record(Result(id="r1", request=request, answers=answers, consensus=consensus))
    with sqlite3.connect(tmp_path / "h.sqlite3") as conn:
        (kind,) = conn.execute("SELECT kind FROM runs WHERE id = 'r1'").fetchone()
        passed = dict(conn.execute("SELECT model_name, examples_passed FROM answers WHERE run_id = 'r1'").fetchall())
    assert kind == "no_edit"
    assert passed == {"table": 0, "undef": 0}  # the table passes the 3 doctests, but changes what the code does
    history.close()


JS_BUGGY = """/**
 * Sum of the numbers.
 * sumList([1, 2, 3]) === 6
 * sumList([]) === 0
 */
function sumList(xs) {
  let s = 1;
  for (const x of xs) s += x;
  return s;
}
"""


@pytest.mark.parametrize("language", ["javascript", "typescript"])
async def test_javascript_fix_is_chosen_by_execution(executor: SandboxExecutor, language: str) -> None:
    """The languages issue's case, through the same gate: correct, wrong, broken and prose answers."""
    from codeconductor.ensemble.languages import language_for

    if not language_for(language).can_execute:
        pytest.skip(language_for(language).runtime_note)
    typed = language == "typescript"
    sig = "function sumList(xs: number[]): number {" if typed else "function sumList(xs) {"
    answers = [
        _answer("wrong", f"```{language}\n{sig}\n  return xs.length;\n}}\n```"),
        _answer("right", f"```{language}\n{sig}\n  let s = 0;\n  for (const x of xs) s += x;\n  return s;\n}}\n```"),
        _answer("broken", f"```{language}\n{sig}\n  return xs.reduce((a, b) => a + b, 0\n}}\n```"),
        _answer("prose", "You should initialise s to zero instead of one."),
    ]
    selection = JS_BUGGY.replace("function sumList(xs) {", sig)
    result = await decide(_request(TaskKind.FIX, selection, language), answers, executor=executor)
    assert result.offers_edit
    assert result.pick_models == [answers[1].model_id]
    assert result.method.startswith("behaviour")
    assert result.executed
    broken = next(c for c in result.clusters if answers[2].model_id in c.members)
    assert broken.rejected is not None
    assert "not valid" in broken.rejected


async def test_the_cli_says_not_checked(capsys: pytest.CaptureFixture[str]) -> None:
    from codeconductor.cli.app import _print_result

    answers = [_answer("a", SIEVE), _answer("b", SIEVE)]
    request = _request(TaskKind.IMPROVE)
    unchecked = await decide(request, answers)  # nothing runs
    _print_result(Result(id="r1", request=request, answers=answers, consensus=unchecked))
    out = capsys.readouterr().out
    assert "2 of 2 answers agree on it" in out
    labels = [line for line in out.splitlines() if line.startswith("not checked: ")]  # not the "note: ..." line
    assert len(labels) == 1
    assert unchecked.unchecked is not None
    assert unchecked.unchecked[:30] in labels[0]
    checked = unchecked.model_copy(update={"unchecked": None})
    _print_result(Result(id="r2", request=request, answers=answers, consensus=checked))
    assert not [line for line in capsys.readouterr().out.splitlines() if line.startswith("not checked: ")]
