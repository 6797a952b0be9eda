"""A confidence for the pick that means what it says: among picks reported at confidence c, about c are right.

It is a small fixed logistic model over features of the decision (weighted support share, examples passed,
whether there were examples, how many competing groups, how reliable the best model behind the pick is). The
parameters were fit on two benchmark sets pooled and checked on tasks the fit never saw
(``python -m bench.consensus --calibrate``; figures in docs/benchmarks.md, "Consensus").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["COEFFICIENTS", "Features", "confidence", "discount_missing"]


@dataclass(frozen=True)
class Features:
    share: float  # pick group's support / all votes, in [0, 1]
    pass_frac: float  # share of informative examples the pick satisfies (0 when none)
    has_examples: float  # 1 when informative examples exist
    log_examples: float  # log(1 + number of informative examples)
    executed: float  # 1 when candidates were run
    groups: float  # number of non-degenerate groups / number of candidates, in (0, 1]
    answered_ratio: float  # answered / asked
    top_weight: float  # reliability of the most reliable model in the pick's group

    def vector(self) -> list[float]:
        """The model's inputs. Deliberately few: ``executed``, ``log_examples`` and ``answered_ratio`` are kept
        in the record but not used, because the benchmark sets cannot tell their effect apart from noise (they
        are constant or nearly so there) and extra free parameters made the held-out calibration worse."""
        return [1.0, self.share, self.pass_frac * self.has_examples, self.has_examples, self.groups, self.top_weight]


NAMES = ["bias", "share", "passes", "has_examples", "groups", "top_weight"]

# Fitted with ``bench.consensus --calibrate`` on llm-humaneval-benchmarks (94 models x 1 sample) and
# codet-codegen16b (1 model x 20 samples) pooled, ridge 1.0; held-out figures (10-fold cross-validation and
# leave-one-set-out) in docs/benchmarks.md, "Consensus". Order as in Features.vector().
COEFFICIENTS: tuple[float, ...] = (-3.378, 2.824, 2.172, -0.046, 0.226, 2.753)


def confidence(features: Features, coefficients: tuple[float, ...] = COEFFICIENTS) -> float:
    z = sum(w * x for w, x in zip(coefficients, features.vector(), strict=True))
    z = max(-30.0, min(30.0, z))
    return 1.0 / (1.0 + math.exp(-z))


def discount_missing(conf: float, answered: int, asked: int) -> float:
    """Lower ``conf`` for models that were asked but gave no usable answer: their evidence is unknown, and any of
    them might have dissented. Factor sqrt((answered + 1) / (asked + 1)): 1 when all answered (so the calibrated
    figures above are untouched), 0.67 when 3 of 8 answered, 0.5 when 1 of 7 did. The benchmark sets have no
    failed models, so this factor is a stated prior, not a fitted one."""
    if asked <= 0 or answered >= asked:
        return conf
    return conf * math.sqrt((answered + 1) / (asked + 1))
