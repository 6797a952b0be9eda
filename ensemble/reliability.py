"""How much a model is trusted before and after the history knows it: the one rule for priors and weight bounds.

What the user gets: a ``model_weights`` entry means the same thing everywhere (the pipeline with or without a
history, the history's Beta prior, the consensus), and a model nobody has said anything about is neither trusted
nor distrusted.

* :func:`prior_for` — the prior of a model name: an exact (case-insensitive) ``model_weights`` key beats any glob;
  else the longest matching glob, case-insensitive (the most specific one the user wrote); else the measured prior
  of an embedded model (:data:`ensemble.weights.EMBEDDED_PRIORS`); else :data:`DEFAULT_WEIGHT`.
* :func:`weights_for` — the weight of each model of a run: what the history has learned of it, else its prior.
* :func:`clamp_weight` — a weight as the consensus uses it, in ``[MIN_WEIGHT, 1]``: no model is ever "never", and
  one that is not a number (NaN, infinite) counts as barely trusted rather than failing the run.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence

from .types import ModelInfo
from .weights import embedded_prior

__all__ = ["DEFAULT_WEIGHT", "MAX_WEIGHT", "MIN_WEIGHT", "clamp_weight", "glob_prior", "prior_for", "weights_for"]

DEFAULT_WEIGHT = 0.5  # a model with no prior and no history: neither trusted nor distrusted
MIN_WEIGHT = 0.02  # the least a model counts for: a long bad record makes its vote small, never zero
MAX_WEIGHT = 1.0


def clamp_weight(value: object) -> float:
    """``value`` bounded to ``[MIN_WEIGHT, MAX_WEIGHT]``; anything that is not a finite number is MIN_WEIGHT."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return MIN_WEIGHT
    return min(MAX_WEIGHT, max(MIN_WEIGHT, float(value)))


def glob_prior(name: str, globs: Mapping[str, float]) -> float | None:
    """The ``globs`` entry that applies to model ``name`` (None: none does). Case-insensitive; an exact key beats
    any glob, else the longest matching pattern wins (the first of equally long ones)."""
    lowered = name.lower()
    best: tuple[int, float] | None = None
    for pattern, weight in globs.items():
        key = pattern.lower()
        if key == lowered:
            return weight
        if fnmatch.fnmatchcase(lowered, key) and (best is None or len(pattern) > best[0]):
            best = (len(pattern), weight)
    return None if best is None else best[1]


def prior_for(name: str, globs: Mapping[str, float]) -> float:
    """The prior reliability of model ``name``: its ``model_weights`` entry (:func:`glob_prior`), else the measured
    prior of an embedded default model, else :data:`DEFAULT_WEIGHT`."""
    found = glob_prior(name, globs)
    if found is None:
        found = embedded_prior(name)
    return DEFAULT_WEIGHT if found is None else found


def weights_for(
    models: Sequence[ModelInfo], globs: Mapping[str, float], learned: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Per model id, clamped: the ``learned`` weight (the history's, keyed by model id) where there is one, else
    the model's prior from ``globs`` (:func:`prior_for`). Every model gets a weight."""
    known = learned or {}
    return {m.id: clamp_weight(known[m.id] if m.id in known else prior_for(m.name, globs)) for m in models}
