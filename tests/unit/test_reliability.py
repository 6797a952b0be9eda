"""The one rule for a model's prior and the bounds of a weight (codeconductor.ensemble.reliability)."""

from __future__ import annotations

import math

import pytest

from codeconductor.ensemble.reliability import (
    DEFAULT_WEIGHT,
    MIN_WEIGHT,
    clamp_weight,
    glob_prior,
    prior_for,
    priors_for,
    weights_for,
)
from codeconductor.ensemble.types import ModelInfo, ProviderKind
from codeconductor.ensemble.weights import EMBEDDED_PRIORS, QWEN_NAME

EP = "http://127.0.0.1:11434"


def model(name: str) -> ModelInfo:
    return ModelInfo(name=name, provider=ProviderKind.OLLAMA, endpoint=EP)


def test_globs_match_whatever_the_case() -> None:
    assert glob_prior("Qwen2.5-Coder:7B", {"qwen2.5-coder*": 0.9}) == 0.9
    assert glob_prior("qwen2.5-coder:7b", {"QWEN2.5-CODER*": 0.9}) == 0.9


def test_the_longest_matching_glob_wins_whatever_the_order() -> None:
    specific_last = {"*": 0.1, "qwen*": 0.4, "qwen2.5-coder*": 0.9}
    specific_first = dict(reversed(specific_last.items()))
    assert glob_prior("qwen2.5-coder:7b", specific_last) == 0.9
    assert glob_prior("qwen2.5-coder:7b", specific_first) == 0.9
    assert glob_prior("qwen3:8b", specific_last) == 0.4
    assert glob_prior("llama3:8b", specific_last) == 0.1


def test_an_exact_name_beats_a_longer_glob() -> None:
    globs = {"qwen2.5-coder:7b*": 0.9, "Qwen2.5-Coder:7b": 0.3}
    assert glob_prior("qwen2.5-coder:7b", globs) == 0.3
    assert glob_prior("qwen2.5-coder:7b-q4", globs) == 0.9


def test_no_matching_glob_is_none() -> None:
    assert glob_prior("llama3:8b", {"qwen*": 0.9}) is None
    assert glob_prior("llama3:8b", {}) is None


def test_prior_falls_back_to_the_embedded_measurement_then_the_default() -> None:
    assert prior_for(QWEN_NAME, {}) == EMBEDDED_PRIORS[QWEN_NAME]
    assert prior_for(QWEN_NAME, {"qwen2.5-coder-0.5b*": 0.9}) == 0.9  # the user's glob takes precedence
    assert prior_for("unknown:1b", {}) == DEFAULT_WEIGHT == 0.5


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0.5, 0.5),
        (1.0, 1.0),
        (1.7, 1.0),
        (MIN_WEIGHT, MIN_WEIGHT),
        (0.001, MIN_WEIGHT),
        (0.0, MIN_WEIGHT),
        (-3.0, MIN_WEIGHT),
        (math.nan, MIN_WEIGHT),
        (math.inf, MIN_WEIGHT),
        ("0.9", MIN_WEIGHT),
        (True, MIN_WEIGHT),
        (1, 1.0),
    ],
)
def test_clamp_bounds_every_weight(raw: object, expected: float) -> None:
    assert clamp_weight(raw) == expected


def test_weights_for_gives_every_model_its_learned_weight_else_its_prior() -> None:
    learned, prior_only, nothing = model("good:7b"), model("qwen:7b"), model("other:3b")
    weights = weights_for([learned, prior_only, nothing], {"qwen*": 0.8, "good*": 0.1}, {learned.id: 0.7})
    # The user's weights say nothing about the others: a model nothing is known of stays neutral.
    assert weights == {learned.id: 0.7, prior_only.id: 0.8, nothing.id: DEFAULT_WEIGHT}
    assert weights_for([nothing], {"other*": 0.001}) == {nothing.id: MIN_WEIGHT}
    assert weights_for([learned], {}, {learned.id: math.nan}) == {learned.id: MIN_WEIGHT}


# Real names as servers list them (Ollama tags, Hugging Face repos, OpenAI-style ids), the size the server reports
# (Ollama /api/show details.parameter_size; None: not reported) and the published HumanEval pass@1 expected
# (codeconductor.ensemble.reliability.PUBLISHED; None: nothing published is known, so the neutral default).
PUBLISHED_CASES = [
    ("qwen2.5-coder:1.5b", None, 0.707),
    ("qwen2.5-coder:latest", "7.6B", 0.884),  # the size comes from the server, rounded to the published one
    ("Qwen/Qwen2.5-Coder-32B-Instruct-GGUF", None, 0.927),
    ("deepseek-coder:6.7b-instruct", None, 0.786),
    ("codellama:13b", None, 0.36),
    ("starcoder2:3b", None, 0.317),
    ("llama3:latest", "8.0B", 0.622),
    ("llama3.1:70b", None, 0.817),
    ("llama2:13b", None, 0.183),
    ("mistral:7b-instruct", None, 0.305),
    ("gpt4_final_500c_long", None, 0.67),
    ("gpt3_final_500c_long", None, 0.481),
    ("TheBloke_WizardLM-30B-GPTQ_VICUNA_MARKDOWN", None, 0.217),  # a LLaMA-33B fine-tune: its base's figure
    ("anon8231489123_gpt4-x-alpaca-13b-native-4bit-128g", None, 0.158),  # "gpt4" in a LLaMA fine-tune's name
    ("TheBloke_OpenAssistant-SFT-7-Llama-30B-GPTQ", None, 0.217),  # "llama-30b" is not Llama 3
    ("llama3:latest", None, None),  # the family is known, its size is not: no guess
    ("tiiuae_falcon-40b-instruct", None, None),
    ("my-finetune:7b", None, None),
]


@pytest.mark.parametrize(("name", "size", "published"), PUBLISHED_CASES)
def test_prior_is_the_published_score_of_the_named_model(name: str, size: str | None, published: float | None) -> None:
    expected = DEFAULT_WEIGHT if published is None else published
    assert prior_for(name, {}, size) == pytest.approx(expected)


def test_users_weights_and_measured_embedded_priors_beat_published_scores() -> None:
    assert prior_for("qwen2.5-coder:7b", {"qwen*": 0.2}) == 0.2  # the user's word wins
    assert prior_for(QWEN_NAME, {}) == EMBEDDED_PRIORS[QWEN_NAME]  # measured here with the shipped quantisation


def test_weights_for_reads_the_size_the_server_reports() -> None:
    info = ModelInfo(name="qwen2.5-coder:latest", provider=ProviderKind.OLLAMA, endpoint=EP, parameter_size="1.5B")
    assert weights_for([info], {}) == {info.id: pytest.approx(0.707)}
    learned = {info.id: 0.3}
    assert weights_for([info], {}, learned) == {info.id: 0.3}  # the history, once it knows the model, refines it


def info(name: str, size: str | None = None) -> ModelInfo:
    return ModelInfo(name=name, provider=ProviderKind.OLLAMA, endpoint=EP, parameter_size=size)


def test_an_unknown_model_counts_as_the_median_of_the_runs_benchmarked_models() -> None:
    # GPT-3.5's published 0.481 is under the neutral 0.5: an unknown model must not outvote it for that alone.
    gpt35, wizard, vicuna = info("gpt3_final_500c_long"), info("wizardlm:30b"), info("vicuna:13b")
    unknown = info("tiiuae_falcon-40b-instruct")
    priors = priors_for([gpt35, wizard, vicuna, unknown], {})
    assert priors[unknown.name] == pytest.approx(0.217)  # median of 0.481, 0.217 (LLaMA 33B), 0.158 (LLaMA 13B)
    assert priors[unknown.name] < priors[gpt35.name]
    assert {k: v for k, v in priors.items() if k != unknown.name} == {
        m.name: prior_for(m.name, {}) for m in (gpt35, wizard, vicuna)
    }
    weights = weights_for([gpt35, wizard, vicuna, unknown], {})
    assert weights[unknown.id] == pytest.approx(0.217)


def test_with_nothing_benchmarked_every_unknown_model_is_neutral() -> None:
    models = [info("my-finetune:7b"), info("other:3b")]
    assert priors_for(models, {}) == dict.fromkeys(["my-finetune:7b", "other:3b"], DEFAULT_WEIGHT)


def test_the_users_weights_do_not_move_the_unknown_models_prior() -> None:
    # Distrusting one model must not distrust the others: only benchmark priors of unweighted models count.
    llama3, qwen, unknown = info("llama3:8b"), info("qwen2.5-coder:7b"), info("my-finetune:7b")
    priors = priors_for([llama3, qwen, unknown], {"qwen*": 0.05})
    assert priors == {llama3.name: pytest.approx(0.622), qwen.name: 0.05, unknown.name: pytest.approx(0.622)}
    assert priors_for([qwen, unknown], {"qwen*": 0.05})[unknown.name] == DEFAULT_WEIGHT
