"""A confidence for the pick that means what it says: among picks reported at confidence c, about c are right.

It is a small logistic model per task kind over features of the decision: the pick's weighted support share,
the share of ALL the user's docstring examples it passes, how many candidates crashed, how many answers passed
the trust gate, how many competing groups there were, how reliable the best model behind the pick is, and (fix)
how many more examples the pick passes than the user's code. The parameters were fit on the benchmark sets per
task kind and checked on tasks the fit never saw (``python -m bench.consensus --calibrate``; figures in
docs/benchmarks.md, "Consensus"). A pick that was not checked against the user's code (nothing ran, or the
user's code could not be observed) is labelled "not checked" by the caller and its confidence is at most
:func:`unchecked_cap`: the share of such picks that were right where it was measured (here, the one place for it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..types import TaskKind

__all__ = [
    "COEFFICIENTS",
    "NAMES",
    "ONE_MODEL_COEFFICIENTS",
    "ONE_MODEL_NAMES",
    "UNCHECKED_CAP",
    "Features",
    "confidence",
    "discount_missing",
    "unchecked_cap",
    "unchecked_confidence",
    "uses_one_model_fit",
]

# An unchecked pick (nothing ran, or the user's code could not be observed) is right about this often, per task
# kind: the LOWEST share measured, over HumanEval with verification off (``bench.consensus --no-verify``: codet
# 1 x 20 samples 0.30 / 0.26 / 0.30 for implement / improve / fix, five local models of llm-humaneval-benchmarks
# 0.34 / 0.32 / 0.34; the easy case, self-contained functions) and real library code (issue 23: 37 % of the
# unchecked fixes offered passed the library's own tests). Commands and figures: docs/benchmarks.md, "Unchecked
# picks". A rule, not a fit: the confidence model below only lowers it further (picks few models back).
UNCHECKED_CAP: dict[TaskKind, float] = {
    TaskKind.IMPLEMENT: 0.30,
    TaskKind.IMPROVE: 0.26,
    TaskKind.FIX: 0.30,
}
_UNCHECKED_DEFAULT = 0.26  # task kinds never measured unchecked (generated tests): the lowest measured share


@dataclass(frozen=True)
class Features:
    share: float  # pick group's support / all votes, in [0, 1]
    pass_frac: float  # share of ALL the docstring's examples the pick satisfies (0 when none)
    has_examples: float  # 1 when the docstring has examples
    executed: float  # 1 when candidates were run
    groups: float  # number of non-degenerate groups / number of candidates, in (0, 1]
    answered_ratio: float  # answered / asked
    top_weight: float  # reliability of the most reliable model in the pick's group
    crash_rate: float = 0.0  # mean share of calls on which a candidate raised or was stopped (unparseable: 1)
    eligible_ratio: float = 1.0  # candidates that passed the trust gate / candidates
    oracle: float = 0.0  # 1 when the user's own code was run as the oracle
    gain: float = 0.0  # (examples the pick passes - examples the user's code passes) / examples
    # How much the examples say (what a few easy examples cannot tell apart, the confidence must not claim):
    examples: float = 0.0  # how many docstring examples there are, min(n, 8) / 8
    separating: float = 0.0  # share of probe inputs on which the pick and another working group differ
    rivals_pass: float = 0.0  # share of the other working groups that also pass every example
    one_model: float = 0.0  # 1 when every candidate came from one model (its samples: correlated errors)

    def one_model_vector(self) -> list[float]:
        """The inputs of the one-model fit (:data:`ONE_MODEL_COEFFICIENTS`): samples of one model share its
        blind spots, so agreement and the examples' strength are weighed apart from the several-model fit;
        ``top_weight`` is left out (one model: no choice between reliabilities)."""
        passes = self.pass_frac * self.has_examples
        return [
            1.0,
            self.share,
            passes,
            self.has_examples,
            self.examples,
            self.separating,
            self.rivals_pass,
            self.crash_rate,
            self.gain,
        ]

    def vector(self) -> list[float]:
        """The model's inputs. ``executed``, ``answered_ratio`` and ``oracle`` are kept in the record but not
        used: they are constant on the benchmark sets, so no fit could tell their effect from noise."""
        passes = self.pass_frac * self.has_examples
        return [
            1.0,
            self.share,
            passes,
            self.has_examples,
            self.groups,
            self.top_weight,
            self.crash_rate,
            self.eligible_ratio,
            self.gain,
        ]


NAMES = ["bias", "share", "passes", "has_examples", "groups", "top_weight", "crash_rate", "eligible", "gain"]
ONE_MODEL_NAMES = [
    "bias", "share", "passes", "has_examples", "examples", "separating", "rivals_pass", "crash_rate", "gain"
]  # fmt: skip

# Per task kind, order as in Features.vector(). Fitted with ``bench.consensus --calibrate`` (ridge 1.0) on the
# offered edits of llm-humaneval-benchmarks (94 models x 1 sample) and codet-codegen16b (1 model x 20 samples)
# pooled; held-out figures (10-fold cross-validation and leave-one-set-out) in docs/benchmarks.md, "Trust".
# Docstring edits are proven not to change the code (syntax tree equality), so what remains uncertain is the
# wording, which no benchmark scores: a stated 0.99, not a fit (the fit diverges: every offered edit was right).
COEFFICIENTS: dict[TaskKind, tuple[float, ...]] = {
    TaskKind.IMPLEMENT: (-3.207, 2.359, 2.993, -0.993, -0.094, 2.317, -0.279, 0.871, 0.0),
    TaskKind.IMPROVE: (1.768, 0.376, 1.066, 1.211, 0.32, 0.265, -0.7, 0.206, 0.0),
    TaskKind.FIX: (-2.976, 3.073, 2.276, -0.712, -0.259, 2.084, -0.507, 0.765, 0.978),
    TaskKind.DOCSTRING: (4.595, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
}
# Per task kind, order as in Features.one_model_vector(): picks among samples of one model (the embedded default).
# Fitted with ``bench.consensus --calibrate --l2 0.1`` (ridge 0.1: the least log-loss in codet's own 10-fold
# cross-validation; the 1.0 of the several-model fit shrank these few-feature fits into under-confidence) on
# codet-codegen16b (4 of its 20 samples per task) and, for implement, the embedded Qwen's own picks
# (``bench.sampling --humaneval 164 --save-features``) pooled. Held-out figures in docs/benchmarks.md, "Confidence
# that knows how much the examples say".
ONE_MODEL_COEFFICIENTS: dict[TaskKind, tuple[float, ...]] = {
    TaskKind.IMPLEMENT: (-4.867, 4.181, 8.212, -4.49, -1.826, 1.29, 2.125, 2.002, 0.0),
    TaskKind.FIX: (-4.811, 3.841, 5.373, -3.575, -0.588, 2.038, 1.166, 0.756, 2.104),
}


def confidence(
    features: Features,
    task: TaskKind = TaskKind.IMPLEMENT,
    coefficients: tuple[float, ...] | None = None,
    *,
    one_model_fit: bool | None = None,
) -> float:
    """The calibrated confidence of a pick with ``features``: the one-model fit when every candidate came from one
    model and the task kind has one (:func:`uses_one_model_fit`; ``one_model_fit`` forces the choice, for a fit
    under test), else the several-model fit of ``task``. ``coefficients`` replace the fitted ones."""
    if one_model_fit if one_model_fit is not None else uses_one_model_fit(features, task):
        weights = coefficients or ONE_MODEL_COEFFICIENTS[task]
        vector = features.one_model_vector()
    else:
        weights = coefficients or COEFFICIENTS.get(task, COEFFICIENTS[TaskKind.IMPLEMENT])
        vector = features.vector()
    z = sum(w * x for w, x in zip(weights, vector, strict=True))
    z = max(-30.0, min(30.0, z))
    return 1.0 / (1.0 + math.exp(-z))


def uses_one_model_fit(features: Features, task: TaskKind) -> bool:
    """Whether ``features`` are scored by the one-model fit (every candidate from one model, a fit for ``task``)."""
    return features.one_model >= 1.0 and task in ONE_MODEL_COEFFICIENTS


def discount_missing(conf: float, answered: int, asked: int) -> float:
    """Lower ``conf`` for models that were asked but gave no usable answer: their evidence is unknown, and any of
    them might have dissented. Factor sqrt((answered + 1) / (asked + 1)): 1 when all answered (so the calibrated
    figures above are untouched), 0.67 when 3 of 8 answered, 0.5 when 1 of 7 did. The benchmark sets have no
    failed models, so this factor is a stated prior, not a fitted one."""
    if asked <= 0 or answered >= asked:
        return conf
    return conf * math.sqrt((answered + 1) / (asked + 1))


def unchecked_cap(task: TaskKind) -> float:
    """The most an unchecked pick of ``task`` may claim (:data:`UNCHECKED_CAP`)."""
    return UNCHECKED_CAP.get(task, _UNCHECKED_DEFAULT)


def unchecked_confidence(conf: float, task: TaskKind) -> float:
    """``conf`` for a pick nothing checked: at most the measured share of such picks that are right."""
    return min(conf, unchecked_cap(task))
