"""A confidence for the pick that means what it says: among picks reported at confidence c, about c are right.

It is a small fixed logistic model over features of the decision (weighted support share, examples passed,
how many examples, how many competing groups, how many of the asked models answered). The parameters were fit
on one benchmark set and validated on another (``python -m bench.consensus --fit``; figures in
docs/benchmarks.md, "Consensus").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["COEFFICIENTS", "Features", "confidence"]


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
        return [
            1.0,
            self.share,
            self.pass_frac * self.has_examples,
            self.has_examples,
            self.log_examples,
            self.executed,
            self.groups,
            self.answered_ratio,
            self.top_weight,
        ]


NAMES = ["bias", "share", "passes", "has_examples", "log_examples", "executed", "groups", "answered", "top_weight"]

# Fitted with ``bench.consensus --fit`` on llm-humaneval-benchmarks (94 models x 1 sample), validated on
# codet-codegen16b (1 model x 20 samples): ECE 0.066 in sample, 0.082 held out. Order as in Features.vector().
COEFFICIENTS: tuple[float, ...] = (-1.584, 1.886, 0.872, 0.323, -0.266, -0.015, -0.595, -0.005, 2.694)


def confidence(features: Features, coefficients: tuple[float, ...] = COEFFICIENTS) -> float:
    z = sum(w * x for w, x in zip(coefficients, features.vector(), strict=True))
    z = max(-30.0, min(30.0, z))
    return 1.0 / (1.0 + math.exp(-z))
