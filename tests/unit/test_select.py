"""Selection end to end through ``decide``: the adversarial cases the consensus must get right."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from codeconductor.ensemble.consensus import agreement_key, decide
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)
from codeconductor.ensemble.verify.observe import SandboxExecutor
from codeconductor.ensemble.verify.sandbox import Sandbox

STUB = '''def second_largest(xs: list) -> int:
    """The second largest distinct value.
    >>> second_largest([1, 5, 3])
    3
    >>> second_largest([4, 4, 2])
    2
    """
'''
RIGHT = "def second_largest(xs):\n    return sorted(set(xs))[-2]\n"
WRONG = "def second_largest(xs):\n    return sorted(xs)[-2]\n"  # common mistake: ignores duplicates


def _answer(
    name: str, text: str, status: AnswerStatus = AnswerStatus.ANSWERED, family: str | None = None
) -> ModelAnswer:
    model = ModelInfo(name=name, provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434", family=family)
    return ModelAnswer(model=model, status=status, text=text)


def _request(selection: str = STUB, language: str = "python", task: TaskKind = TaskKind.IMPLEMENT) -> Request:
    return Request(task=task, context=CodeContext(language=language, selection=selection))


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    with Sandbox() as box:
        yield SandboxExecutor(box)


async def test_examples_beat_a_majority_of_agreeing_weak_models(executor: SandboxExecutor) -> None:
    answers = [_answer("strong", RIGHT), *(_answer(f"weak{i}", WRONG, family=f"f{i}") for i in range(3))]
    result = await decide(_request(), answers, executor=executor)
    assert result.kind == "code"
    assert result.pick_models == ["strong@http://127.0.0.1:11434"]
    assert result.clusters[0].passes_examples is True
    assert result.clusters[1].passes_examples is False
    assert result.clusters[1].diff.startswith("---")
    assert result.agree == 1
    assert result.answered == 4
    assert result.asked == 4


async def test_reliability_weights_decide_without_examples(executor: SandboxExecutor) -> None:
    stub = "def norm(xs: list) -> list:\n    '''Scale to unit sum.'''\n"
    a = "def norm(xs):\n    s = sum(xs)\n    return [x / s for x in xs] if s else xs\n"
    b = "def norm(xs):\n    m = max(xs) if xs else 1\n    return [x / m for x in xs] if m else xs\n"
    answers = [_answer("strong", a), _answer("weak1", b, family="w"), _answer("weak2", b, family="w")]
    weights = {answers[0].model_id: 0.95, answers[1].model_id: 0.2, answers[2].model_id: 0.2}
    result = await decide(_request(stub), answers, weights=weights, executor=executor)
    assert result.pick_models == [answers[0].model_id]
    unweighted = await decide(_request(stub), answers, executor=executor)
    assert set(unweighted.pick_models) == {answers[1].model_id, answers[2].model_id}


async def test_all_candidates_broken_offers_no_edit(executor: SandboxExecutor) -> None:
    answers = [
        _answer("a", "def second_largest(xs):\n    return None\n"),
        _answer("b", "def second_largest(xs):\n    raise ValueError\n"),
        _answer("c", "def second_largest(xs:\n"),
    ]
    result = await decide(_request(), answers, executor=executor)
    assert result.kind == "code"
    assert not result.pick
    assert not result.offers_edit
    assert result.no_edit is not None
    assert "unchanged" in result.no_edit
    assert result.confidence == 0.0
    assert len(result.clusters) == 3  # every answer stays viewable, each with the reason it was refused
    assert all(cluster.rejected for cluster in result.clusters)
    assert any("not valid code" in n for n in result.notes)


async def test_empty_and_failed_answers() -> None:
    answers = [_answer("a", "   "), _answer("b", "", AnswerStatus.TIMEOUT)]
    result = await decide(_request(), answers)
    assert result.kind == "none"
    assert result.asked == 2
    assert result.answered == 0
    one = await decide(_request(), [_answer("a", RIGHT), _answer("b", "", AnswerStatus.FAILED)])
    assert one.asked == 2
    assert one.answered == 1
    assert one.agree == 1


async def test_syntactic_fallback_groups_equivalent_code_and_is_cheap() -> None:
    renamed = "def second_largest(values):\n    # distinct\n    return sorted(set(values))[-2]\n"
    answers = [_answer("a", RIGHT), _answer("b", f"```python\n{renamed}```"), _answer("c", WRONG)]
    result = await decide(_request(), answers)  # no executor: nothing runs
    assert result.method == "syntactic"
    assert set(result.pick_models) == {answers[0].model_id, answers[1].model_id}
    assert agreement_key(_request(), RIGHT) == agreement_key(_request(), renamed)
    assert agreement_key(_request(), RIGHT) != agreement_key(_request(), WRONG)


async def test_non_python_code_uses_syntactic_agreement(executor: SandboxExecutor) -> None:
    ts = "function add(a: number, b: number) { return a + b; }"
    answers = [
        _answer("a", f"```ts\n{ts}\n```"),
        _answer("b", f"Sure!\n```ts\n{ts}  // sum\n```"),
        _answer("c", "```ts\nfunction add(a, b) { return a - b * 2 + 1; }\n```"),
    ]
    result = await decide(_request("function add(a, b) {}", language="ts"), answers, executor=executor)
    assert result.method == "syntactic"
    assert len(result.pick_models) == 2
    assert result.pick.strip() == ts


async def test_same_family_agreement_counts_less() -> None:
    x = "def f(a):\n    return a + 1\n"
    y = "def f(a):\n    return a * 2 + 7 - a\n"
    answers = [
        _answer("llama3:8b", x, family="llama"),
        _answer("llama3:70b", x, family="llama"),
        _answer("qwen2:7b", y, family="qwen"),
        _answer("mistral:7b", y, family="mistral"),
    ]
    weights = {a.model_id: 0.6 for a in answers}
    result = await decide(_request("def f(a):\n    '''Inc.'''\n"), answers, weights=weights)
    assert set(result.pick_models) == {answers[2].model_id, answers[3].model_id}


# A one-token mutant is textually almost the right answer (token trigrams ~0.9 similar): without execution it
# must stay its own group, whatever the language.
MUTANTS = {
    "python": (
        "def total(xs):\n    s = 0\n    for x in xs:\n        if x % 2 == 0:\n            s += x\n    return s\n",
        "def total(xs):\n    s = 0\n    for x in xs:\n        if x % 2 == 0:\n            s -= x\n    return s\n",
        "def total(values):\n    # even ones\n    acc = 0\n    for v in values:\n        if v % 2 == 0:\n"
        "            acc += v\n    return acc\n",
    ),
    "javascript": (
        "function sumEven(xs) {\n  let s = 0;\n  for (const x of xs) {\n    if (x % 2 === 0) s += x;\n  }\n"
        "  return s;\n}\n",
        "function sumEven(xs) {\n  let s = 0;\n  for (const x of xs) {\n    if (x % 2 === 1) s += x;\n  }\n"
        "  return s;\n}\n",
        "function sumEven(values) {\n  // even ones\n  let acc = 0;\n  for (const v of values) {\n"
        "    if (v % 2 === 0) acc += v;\n  }\n  return acc;\n}\n",
    ),
    "go": (
        "func total(xs []int) int {\n\ts := 0\n\tfor _, x := range xs {\n\t\tif x%2 == 0 {\n\t\t\ts += x\n\t\t}\n"
        "\t}\n\treturn s\n}\n",
        "func total(xs []int) int {\n\ts := 0\n\tfor _, x := range xs {\n\t\tif x%2 == 0 {\n\t\t\ts -= x\n\t\t}\n"
        "\t}\n\treturn s\n}\n",
        "func total(values []int) int {\n\t// even ones\n\tacc := 0\n\tfor _, v := range values {\n"
        "\t\tif v%2 == 0 {\n\t\t\tacc += v\n\t\t}\n\t}\n\treturn acc\n}\n",
    ),
}


@pytest.mark.parametrize("language", sorted(MUTANTS))
async def test_without_execution_a_mutant_never_agrees_with_the_right_answer(language: str) -> None:
    right, mutant, renamed = MUTANTS[language]
    fence = {"python": "python", "javascript": "js", "go": "go"}[language]
    answers = [
        _answer("m-a", f"```{fence}\n{mutant}```", family="a"),
        _answer("m-b", f"```{fence}\n{right}```", family="b"),
        _answer("m-c", f"```{fence}\n{renamed}```", family="c"),
    ]
    selection = mutant.replace("-= x", "+= x").replace("=== 1", "=== 0")  # the user's code, whatever it is
    result = await decide(_request(selection, language=language, task=TaskKind.IMPLEMENT), answers)
    assert result.method == "syntactic"
    assert len(result.clusters) == 2  # the renamed right answer joins the right one; the mutant stays apart
    assert result.agree == 2
    assert set(result.pick_models) == {answers[1].model_id, answers[2].model_id}
    mutant_cluster = result.clusters[1]
    assert mutant_cluster.members == [answers[0].model_id]
    assert mutant_cluster.support < result.clusters[0].support


async def test_without_execution_support_is_the_groups_own_vote() -> None:
    """Two distinct answers, one similar to a third: nobody's support borrows from the similar one."""
    right, mutant, _ = MUTANTS["python"]
    answers = [_answer("a", right, family="a"), _answer("b", mutant, family="b")]
    result = await decide(_request("def total(xs):\n    '''Sum of the even ones.'''\n"), answers)
    assert [c.support for c in result.clusters] == [1.0, 1.0]  # vote_weight(0.5) each: odds 1
    assert result.agree == 1
