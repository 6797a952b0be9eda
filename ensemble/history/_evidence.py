"""How the history turns into a model's reliability: a Beta posterior per model name and task kind.

What the user gets: models that keep agreeing with the ensemble, passing the docstring examples and the user's
tests, and whose suggestions the user applies, count for more in the next consensus; models that time out, fail
or get rejected count for less. With few runs the weight stays near the prior (the ``model_weights`` setting,
else a measured or published score, else the median of the run's other models' scores:
:func:`codeconductor.ensemble.reliability.priors_for`), so one lucky or unlucky run does not swing it.

The model
---------
Every piece of evidence adds pseudo-counts to a Beta(α, β) distribution of "this model's answer is good".
The weights below are the documented defaults (:data:`DEFAULT_EVIDENCE`):

==================  =====  =====  ===========================================================================
evidence            α +    β +    why
==================  =====  =====  ===========================================================================
joined              1.0           its answer was in the pick's cluster (agreement is evidence, not proof)
outvoted                   0.5    answered but outside the pick's cluster (minorities are sometimes right)
examples_passed     1.0           its cluster passed the docstring examples in the sandbox
examples_failed            1.0    its cluster failed them
tests_passed        2.0           the user's tests passed on its suggestion (strong, user-owned signal)
tests_failed               2.0
applied             2.0           the user applied its suggestion
changed             0.5    0.5    the user applied it but edited it: useful, not right
rejected                   2.0    the user dismissed it
timeout                    1.0    it did not answer within the per-model timeout
error                      1.0    it failed (HTTP error, garbage, model error, broken stream)
==================  =====  =====  ===========================================================================

Cancelled and skipped answers are no evidence: cancelling a model because a quorum was reached is not its fault.

The prior is two-level so the estimate is honest with few runs and still learns across tasks:

* model level: ``Beta(m0·n0, (1-m0)·n0)`` with ``m0`` the model's prior in the run
  (:func:`codeconductor.ensemble.reliability.priors_for`: the exact or most specific matching ``model_weights``
  entry, else its measured or published score, else the median of the run's scored models, else 0.5) and ``n0`` =
  :attr:`EvidenceWeights.prior_strength`, updated with the model's evidence on *other* task kinds, discounted by
  :attr:`EvidenceWeights.cross_task_discount` (being good at ``fix`` says something, not everything, about
  ``review``);
* task level: that model-level mean, with strength :attr:`EvidenceWeights.task_prior_strength`, updated with the
  evidence on this task kind. The weight is the posterior mean, clamped to ``[MIN_WEIGHT, 1]``
  (:func:`codeconductor.ensemble.reliability.clamp_weight`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from ..reliability import DEFAULT_WEIGHT

__all__ = [
    "DEFAULT_EVIDENCE",
    "Evidence",
    "EvidenceWeights",
    "Posterior",
    "task_posterior",
]


@dataclass
class Evidence:
    """Counts of each kind of evidence for one model (on one task kind, or all)."""

    joined: float = 0.0
    outvoted: float = 0.0
    examples_passed: float = 0.0
    examples_failed: float = 0.0
    tests_passed: float = 0.0
    tests_failed: float = 0.0
    applied: float = 0.0
    changed: float = 0.0
    rejected: float = 0.0
    timeout: float = 0.0
    error: float = 0.0

    def __add__(self, other: Evidence) -> Evidence:
        return Evidence(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def __sub__(self, other: Evidence) -> Evidence:
        return Evidence(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    @property
    def total(self) -> float:
        return float(sum(getattr(self, f.name) for f in fields(self)))


def _default_table() -> dict[str, tuple[float, float]]:
    return {
        "joined": (1.0, 0.0),
        "outvoted": (0.0, 0.5),
        "examples_passed": (1.0, 0.0),
        "examples_failed": (0.0, 1.0),
        "tests_passed": (2.0, 0.0),
        "tests_failed": (0.0, 2.0),
        "applied": (2.0, 0.0),
        "changed": (0.5, 0.5),
        "rejected": (0.0, 2.0),
        "timeout": (0.0, 1.0),
        "error": (0.0, 1.0),
    }


@dataclass(frozen=True)
class EvidenceWeights:
    """The pseudo-counts each kind of evidence adds, and the strength of the priors (in pseudo-runs)."""

    table: Mapping[str, tuple[float, float]] = field(default_factory=_default_table)
    prior_strength: float = 4.0
    task_prior_strength: float = 4.0
    cross_task_discount: float = 0.5

    def alpha_beta(self, evidence: Evidence) -> tuple[float, float]:
        """The (α, β) pseudo-counts ``evidence`` adds."""
        alpha = beta = 0.0
        for name, (a, b) in self.table.items():
            count = getattr(evidence, name)
            alpha += count * a
            beta += count * b
        return alpha, beta


DEFAULT_EVIDENCE = EvidenceWeights()


@dataclass(frozen=True)
class Posterior:
    """A Beta(α, β) reliability estimate."""

    alpha: float
    beta: float

    @property
    def mean(self) -> float:
        total = self.alpha + self.beta
        return self.alpha / total if total > 0 else DEFAULT_WEIGHT

    @property
    def sd(self) -> float:
        total = self.alpha + self.beta
        if total <= 0:
            return 0.0
        return float((self.alpha * self.beta / (total * total * (total + 1))) ** 0.5)


def task_posterior(
    prior: float,
    on_task: Evidence,
    on_other_tasks: Evidence,
    weights: EvidenceWeights = DEFAULT_EVIDENCE,
) -> Posterior:
    """The two-level posterior of one model on one task kind (see the module docstring)."""
    n0 = weights.prior_strength
    a_other, b_other = weights.alpha_beta(on_other_tasks)
    k = weights.cross_task_discount
    model_level = Posterior(prior * n0 + k * a_other, (1.0 - prior) * n0 + k * b_other)
    n1 = weights.task_prior_strength
    a_task, b_task = weights.alpha_beta(on_task)
    return Posterior(model_level.mean * n1 + a_task, (1.0 - model_level.mean) * n1 + b_task)
