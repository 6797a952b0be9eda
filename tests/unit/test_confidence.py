"""Confidence: a probability, monotone in the evidence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from codeconductor.ensemble.consensus.confidence import Features, confidence, unchecked_cap, unchecked_confidence
from codeconductor.ensemble.types import TaskKind

BASE = Features(
    share=0.5, pass_frac=1.0, has_examples=1.0, executed=1.0, groups=0.3, answered_ratio=1.0,
    top_weight=0.7,
)  # fmt: skip


def test_in_unit_interval() -> None:
    for share in (0.0, 0.5, 1.0):
        assert 0.0 < confidence(replace(BASE, share=share)) < 1.0


def test_more_support_more_confidence() -> None:
    assert confidence(replace(BASE, share=0.9)) > confidence(replace(BASE, share=0.2))


def test_failing_examples_lower_confidence() -> None:
    assert confidence(replace(BASE, pass_frac=0.0)) < confidence(BASE)


def test_more_reliable_pick_not_less_confident() -> None:
    assert confidence(replace(BASE, top_weight=0.95)) >= confidence(replace(BASE, top_weight=0.2))


@pytest.mark.parametrize("task", list(TaskKind))
def test_an_unchecked_pick_never_claims_more_than_was_measured(task: TaskKind) -> None:
    cap = unchecked_cap(task)
    # Never above the share of unchecked picks found right on real code (issue 23: 37 %), nor a coin flip.
    assert 0.0 < cap <= 0.37
    assert unchecked_confidence(0.99, task) == cap
    assert unchecked_confidence(cap / 2, task) == cap / 2  # a lower model confidence stays as it is


def test_one_models_samples_have_their_own_fit() -> None:
    from codeconductor.ensemble.consensus.confidence import ONE_MODEL_COEFFICIENTS, uses_one_model_fit
    from codeconductor.ensemble.types import TaskKind

    one = replace(BASE, one_model=1.0, examples=0.25, separating=0.3)
    for task in (TaskKind.IMPLEMENT, TaskKind.FIX):
        assert task in ONE_MODEL_COEFFICIENTS
        assert uses_one_model_fit(one, task)
        assert not uses_one_model_fit(BASE, task)
        assert confidence(one, task) != confidence(replace(one, one_model=0.0), task)
        # Still monotone in the evidence: agreement among the samples and passing the examples raise it.
        assert confidence(replace(one, share=0.9), task) > confidence(replace(one, share=0.3), task)
        assert confidence(replace(one, pass_frac=0.0), task) < confidence(one, task)
    assert not uses_one_model_fit(replace(BASE, one_model=1.0), TaskKind.IMPROVE)  # no fit: the several-model one


def test_unanimous_samples_of_one_model_are_trusted_less_than_unanimous_models() -> None:
    """The issue's failure: every sample of the 0.5B model wrong, offered at 0.68-0.93 because they agreed."""
    from codeconductor.ensemble.types import TaskKind

    several = replace(BASE, share=1.0, groups=0.25)
    one = replace(several, one_model=1.0, examples=0.25)
    assert confidence(one, TaskKind.IMPLEMENT) < confidence(several, TaskKind.IMPLEMENT)


def test_features_say_how_much_the_examples_tell_the_candidates_apart() -> None:
    from codeconductor.ensemble.consensus import features_for
    from codeconductor.ensemble.consensus.behaviour import Behaviour
    from codeconductor.ensemble.consensus.select import Candidate, select

    def cand(label: str, model: str, keys: tuple[str, ...], passed: tuple[bool, ...]) -> Candidate:
        code = f"def f(x):\n    return {label!r}\n"
        return Candidate(label, model, "fam-" + model, 0.6, code, True, code, Behaviour(keys, passed))

    # Three samples of one model: two agree on 4 probe inputs; the third differs from them on 2 of the 4, yet
    # passes both docstring examples too (the examples do not tell the two behaviours apart).
    same = ("=1", "=2", "=3", "=4")
    other = ("=1", "=2", "=0", "=9")
    candidates = [
        cand("a", "m", same, (True, True)),
        cand("b", "m", same, (True, True)),
        cand("c", "m", other, (True, True)),
    ]
    selection = select(candidates)
    features = features_for(selection, candidates, asked=3, answered=3)
    assert features.one_model == 1.0
    assert features.separating == 0.5  # 2 of the 4 probe inputs separate the pick from its rival
    assert features.rivals_pass == 1.0  # the rival passes every example as well
    assert features.examples == 0.0  # no probe handed over: no examples counted
    # A second model among the candidates: not one model's samples any more.
    mixed = [*candidates[:2], cand("d", "n", other, (True, False))]
    features = features_for(select(mixed), mixed, asked=3, answered=3)
    assert features.one_model == 0.0
    assert features.rivals_pass == 0.0  # the rival fails an example: the examples tell them apart


def test_one_models_pick_failing_an_example_is_doubted_and_agreeing_passing_samples_are_trusted() -> None:
    """What the embedded picks measured (bench.sampling --humaneval, docs/benchmarks.md): of the picks failing a
    docstring example about 1 in 10 was right; of those whose samples all agreed and passed every example, nearly
    all were."""
    agreeing = replace(BASE, one_model=1.0, share=1.0, pass_frac=1.0, examples=0.25, groups=0.25)
    failing = replace(agreeing, pass_frac=0.5, share=0.6, separating=0.5)
    assert confidence(failing, TaskKind.IMPLEMENT) < 0.2
    assert confidence(agreeing, TaskKind.IMPLEMENT) > 0.8
    # Fewer samples agreeing (a split vote): less confident than a unanimous one, other things equal.
    assert confidence(replace(agreeing, share=0.5), TaskKind.IMPLEMENT) < confidence(agreeing, TaskKind.IMPLEMENT)
