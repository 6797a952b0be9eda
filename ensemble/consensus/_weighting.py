"""Who votes and how much: reliability weights, voter names and the shrunk confidence shared by the findings
and free-text consensus.

Confidence formula (documented once, used by both)::

    share      = w_support / w_answered          # reliability-weighted share of the models that answered
    confidence = share * n / (n + 1)             # n = number of distinct models that answered

The factor ``n / (n + 1)`` is the "one imaginary dissenter" shrinkage: with all weights 1 it equals
``support / (answered + 1)``; a single answering model reads 0.5, three out of three 0.75, eight out of eight
0.89, so agreement among few models never looks certain. Using the share (not raw weights) keeps the result
independent of the weights' scale.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..reliability import DEFAULT_WEIGHT, clamp_weight
from ..types import ModelAnswer

__all__ = ["Voter", "shrunk_confidence", "visible_text", "voters_for"]

# Reasoning models (DeepSeek-R1, Qwen3, ...) think aloud inside these tags before answering; the thinking is not
# the answer and often contains half-formed JSON or code that would mislead the parsers.
_THINK = re.compile(r"<(think|thinking|reasoning)>.*?(?:</\1>|\Z)", re.DOTALL | re.IGNORECASE)


def visible_text(text: str) -> str:
    """The answer without reasoning blocks, stripped."""
    return _THINK.sub("", text).strip()


@dataclass(frozen=True, slots=True)
class Voter:
    """One usable answer: ``id`` is the model id, with ``#sample`` when the model gave several answers."""

    id: str
    model_id: str
    weight: float  # the model's reliability, split evenly between its samples


def voters_for(usable: Sequence[ModelAnswer], weights: Mapping[str, float] | None) -> list[Voter]:
    """A voter per usable answer, in the same order; each model's weight is split between its samples so a model
    sampled five times does not outvote five different models."""
    per_model = Counter(a.model_id for a in usable)
    seen: Counter[tuple[str, int]] = Counter()
    voters: list[Voter] = []
    for answer in usable:
        model_id = answer.model_id
        if per_model[model_id] > 1:
            seen[model_id, answer.sample] += 1
            repeat = seen[model_id, answer.sample]
            # Normally samples are numbered distinctly; a repeated number still gets a distinct voter id.
            suffix = str(answer.sample) if repeat == 1 else f"{answer.sample}.{repeat}"
            voter_id = f"{model_id}#{suffix}"
        else:
            voter_id = model_id
        reliability = clamp_weight((weights or {}).get(model_id, DEFAULT_WEIGHT))
        voters.append(Voter(voter_id, model_id, reliability / per_model[model_id]))
    return voters


def shrunk_confidence(w_support: float, w_answered: float, n_models: int) -> float:
    """``w_support / w_answered * n / (n + 1)``, clamped to [0, 1]; 0 when nobody answered."""
    if n_models <= 0 or w_answered <= 0:
        return 0.0
    share = min(1.0, max(0.0, w_support / w_answered))
    return share * n_models / (n_models + 1)
