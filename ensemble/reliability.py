"""How much a model is trusted before and after the history knows it: the one rule for priors and weight bounds.

What the user gets: a ``model_weights`` entry means the same thing everywhere (the pipeline with or without a
history, the history's Beta prior, the consensus), and a model nobody has said anything about is neither trusted
nor distrusted.

* :func:`prior_for` — the prior of a model name: an exact (case-insensitive) ``model_weights`` key beats any glob;
  else the longest matching glob, case-insensitive (the most specific one the user wrote); else the measured prior
  of an embedded model (:data:`codeconductor.ensemble.weights.EMBEDDED_PRIORS`); else its published HumanEval pass@1
  (:func:`published_prior`: the model's name, and the size its server reports, matched against
  :data:`PUBLISHED`); else :data:`DEFAULT_WEIGHT`. The history starts from this prior and refines it.
* :func:`priors_for` — the priors of the models of one run: :func:`prior_for`, except that a model nothing is
  known of counts as the median of the run's benchmarked models (not 0.5, which would put an unknown model above
  a known-good one whose published score is under 0.5: GPT-3.5's 0.48). The pipeline and the history both use it.
* :func:`weights_for` — the weight of each model of a run: what the history has learned of it, else its prior.
* :func:`clamp_weight` — a weight as the consensus uses it, in ``[MIN_WEIGHT, 1]``: no model is ever "never", and
  one that is not a number (NaN, infinite) counts as barely trusted rather than failing the run.
"""

from __future__ import annotations

import fnmatch
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .types import ModelInfo
from .weights import embedded_prior

__all__ = [
    "DEFAULT_WEIGHT",
    "MAX_WEIGHT",
    "MIN_WEIGHT",
    "PUBLISHED",
    "PublishedScore",
    "clamp_weight",
    "glob_prior",
    "known_prior",
    "prior_for",
    "priors_for",
    "published_prior",
    "weights_for",
]

DEFAULT_WEIGHT = 0.5  # a model with no prior and no history: neither trusted nor distrusted
MIN_WEIGHT = 0.02  # the least a model counts for: a long bad record makes its vote small, never zero
MAX_WEIGHT = 1.0
# A published score becomes a prior within these bounds: no benchmark says "never" or "always" about your code.
PUBLISHED_RANGE = (0.05, 0.95)


@dataclass(frozen=True)
class PublishedScore:
    """A model's published HumanEval pass@1 (greedy or the paper's headline figure), by name pattern.

    ``pattern`` is a regular expression searched in the normalised model name (:func:`_normalise`: lower case,
    ``_ : /`` and spaces as ``-``, the server's parameter size appended when the name has none); ``size`` picks one
    figure per parameter size (billions, as written in names: "0.5", "7", "30"); ``source`` names the paper or
    model card (the list is in docs/benchmarks.md, "Priors")."""

    pattern: str
    source: str
    pass_at_1: float | None = None
    size: Mapping[str, float] | None = None


# First match wins: specific patterns before general ones. A chat or instruction fine-tune of a general model
# keeps its base model's coding strength (Vicuna, Guanaco, WizardLM, Manticore ... are LLaMA fine-tunes).
_LLAMA1 = {"7": 0.105, "13": 0.158, "30": 0.217, "33": 0.217, "65": 0.237}
PUBLISHED: tuple[PublishedScore, ...] = (
    PublishedScore(
        r"qwen2\.5-coder",
        "Qwen2.5-Coder Technical Report (arXiv 2409.12186), instruct models",
        size={"0.5": 0.616, "1.5": 0.707, "3": 0.841, "7": 0.884, "14": 0.896, "32": 0.927},
    ),
    PublishedScore(
        r"deepseek-coder",
        "DeepSeek-Coder (arXiv 2401.14196), instruct models",
        size={"1.3": 0.652, "6.7": 0.786, "33": 0.793},
    ),
    PublishedScore(r"wizardcoder", "WizardCoder (arXiv 2306.08568), 15B", 0.573),
    PublishedScore(
        r"codellama|code-llama",
        "Code Llama (arXiv 2308.12950), base models",
        size={"7": 0.335, "13": 0.36, "34": 0.488},
    ),
    PublishedScore(r"starcoder2", "StarCoder 2 (arXiv 2402.19173)", size={"3": 0.317, "7": 0.354, "15": 0.463}),
    PublishedScore(r"starcoder", "StarCoder (arXiv 2305.06161), StarCoder 15B", 0.336),
    PublishedScore(r"codegen", "CodeGen (arXiv 2203.13474), CodeGen-Mono 16B", 0.293),
    PublishedScore(
        r"vicuna|guanaco|wizardlm|wizard-vicuna|manticore|nous-hermes|alpaca|openassistant.*llama|open-llama|"
        r"(?<![a-z0-9])llama(?![-0-9a-z]*[23])",
        "LLaMA (arXiv 2302.13971), the base model of these fine-tunes",
        size=_LLAMA1,
    ),
    PublishedScore(r"gpt-?4", "GPT-4 Technical Report (arXiv 2303.08774)", 0.67),
    PublishedScore(r"gpt-?3", "GPT-4 Technical Report (arXiv 2303.08774), GPT-3.5", 0.481),
    PublishedScore(r"claude", "Anthropic, Claude 2 model card (2023), Claude 1.3", 0.56),
    PublishedScore(r"bard|palm", "PaLM 2 Technical Report (arXiv 2305.10403), PaLM 2-S*", 0.376),
    PublishedScore(r"phi-?3", "Phi-3 Technical Report (arXiv 2404.14219), phi-3-mini", 0.585),
    PublishedScore(
        r"llama-?3(?:\.\d)?(?![0-9])", "Meta Llama 3 model card (2024), instruct", size={"8": 0.622, "70": 0.817}
    ),
    PublishedScore(r"llama-?2(?![0-9])", "Llama 2 (arXiv 2307.09288)", size={"7": 0.128, "13": 0.183, "70": 0.299}),
    PublishedScore(r"mistral", "Mistral 7B (arXiv 2310.06825)", size={"7": 0.305}),
)
_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)b(?![a-z])")


def _normalise(name: str, parameter_size: str | None = None) -> str:
    key = re.sub(r"[\s_:/]+", "-", name.lower())
    if parameter_size and not _SIZE.search(key):
        key += "-" + parameter_size.lower().replace(" ", "")
    return key


def published_prior(name: str, parameter_size: str | None = None) -> float | None:
    """The published HumanEval pass@1 of model ``name`` (the size from the name, else ``parameter_size`` as the
    server reports it, e.g. Ollama's "7.6B"), bounded to :data:`PUBLISHED_RANGE`; None when nothing is known."""
    key = _normalise(name, parameter_size)
    for entry in PUBLISHED:
        if not re.search(entry.pattern, key):
            continue
        value = entry.pass_at_1
        if entry.size is not None:
            value = _by_size(entry.size, [float(m.group(1)) for m in _SIZE.finditer(key)])
        if value is not None:
            return min(PUBLISHED_RANGE[1], max(PUBLISHED_RANGE[0], value))
        return None  # the family is known, this size is not: no guess
    return None


def _by_size(table: Mapping[str, float], sizes: Sequence[float]) -> float | None:
    """The figure for the first of ``sizes`` within 15 % of a size in ``table`` (servers report exact counts:
    Qwen2.5-Coder "7B" is "7.6B"); None when none is."""
    for size in sizes:
        near = [(abs(math.log(size / float(known))), value) for known, value in table.items() if size > 0]
        close = [pair for pair in near if pair[0] <= math.log(1.15)]
        if close:
            return min(close)[1]
    return None


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


def known_prior(name: str, globs: Mapping[str, float], parameter_size: str | None = None) -> float | None:
    """What is known of model ``name`` before any request: its ``model_weights`` entry (:func:`glob_prior`: the
    user's word wins), else the measured prior of an embedded default model, else its published HumanEval pass@1
    (:func:`published_prior`; ``parameter_size`` as the server reports it); None when nothing is."""
    found = glob_prior(name, globs)
    return _benchmark_prior(name, parameter_size) if found is None else found


def prior_for(name: str, globs: Mapping[str, float], parameter_size: str | None = None) -> float:
    """The prior reliability of model ``name`` on its own: :func:`known_prior`, else :data:`DEFAULT_WEIGHT`.
    Within a run use :func:`priors_for`, which places unknown models among the known ones."""
    found = known_prior(name, globs, parameter_size)
    return DEFAULT_WEIGHT if found is None else found


def priors_for(models: Sequence[ModelInfo], globs: Mapping[str, float]) -> dict[str, float]:
    """Per model name, the prior of each model of one run: :func:`known_prior`; a model nothing is known of gets
    the median of the benchmark priors (embedded measurement or published score) of the run's other models that
    the user did not weigh - neither trusted nor distrusted among them - or :data:`DEFAULT_WEIGHT` when there is
    none. The user's ``model_weights`` do not move it (distrusting one model must not distrust the others).
    Measured on fix (docs/benchmarks.md, "Priors"): at 0.5, a model nobody knows outvoted known models whose
    published score is under 0.5."""
    benchmarked = [
        value
        for m in models
        if glob_prior(m.name, globs) is None and (value := _benchmark_prior(m.name, m.parameter_size)) is not None
    ]
    neutral = statistics.median(benchmarked) if benchmarked else DEFAULT_WEIGHT
    out: dict[str, float] = {}
    for m in models:
        found = known_prior(m.name, globs, m.parameter_size)
        out[m.name] = neutral if found is None else found
    return out


def _benchmark_prior(name: str, parameter_size: str | None) -> float | None:
    found = embedded_prior(name)
    return published_prior(name, parameter_size) if found is None else found


def weights_for(
    models: Sequence[ModelInfo], globs: Mapping[str, float], learned: Mapping[str, float] | None = None
) -> dict[str, float]:
    """Per model id, clamped: the ``learned`` weight (the history's, keyed by model id) where there is one, else
    the model's prior from ``globs`` (:func:`priors_for`). Every model gets a weight."""
    known = learned or {}
    priors = priors_for(models, globs)
    return {m.id: clamp_weight(known[m.id] if m.id in known else priors[m.name]) for m in models}
