"""Properties of the findings and free-text consensus that must hold for any answer a model could send."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codeconductor.ensemble.consensus.findings import decide_findings, parse_review
from codeconductor.ensemble.consensus.jsonrepair import extract_json
from codeconductor.ensemble.consensus.text import decide_text
from codeconductor.ensemble.types import (
    AnswerStatus,
    CodeContext,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
finding_keys = st.sampled_from(["line", "severity", "message", "fix", "end_line", "findings", "description"])
finding_like = st.dictionaries(finding_keys, json_values, max_size=5)
answer_texts = st.one_of(
    st.text(max_size=300),
    json_values.map(json.dumps),
    st.lists(finding_like, max_size=4).map(json.dumps),
    st.lists(finding_like, max_size=4).map(lambda v: f"Here:\n```json\n{json.dumps(v)[:-1]},\n```"),
)
weights_values = st.floats(allow_nan=True, allow_infinity=True) | st.floats(min_value=0.01, max_value=1.0)


def _answer(name: str, text: str) -> ModelAnswer:
    model = ModelInfo(name=name, provider=ProviderKind.OPENAI, endpoint="http://127.0.0.1:9")
    return ModelAnswer(model=model, status=AnswerStatus.ANSWERED, text=text)


def _review(start: int, n_lines: int) -> Request:
    selection = "\n".join(f"x{i} = {i}" for i in range(n_lines)) + "\n"
    return Request(
        task=TaskKind.REVIEW, context=CodeContext(selection=selection, start_line=start, end_line=start + n_lines)
    )


ASK = Request(task=TaskKind.ASK, context=CodeContext(selection="x = 1\n"))


@PROPERTY
@given(st.text(max_size=500))
def test_extract_json_never_raises_on_text(text: str) -> None:
    value = extract_json(text).value
    assert value is None or isinstance(value, list | dict)


fragments = st.sampled_from(
    [
        "[",
        "]",
        "{",
        "}",
        ",",
        ":",
        '"',
        "'",
        "\\",
        "null",
        "true",
        "None",
        "1e999",
        "9" * 5000,
        "j",
        "b'x'",
        '"line"',
        "'message'",
        "```json\n",
        "```",
        " ",
        "\n",
        "-",
        "{1, 2}",
        "(",
        ")",
        "lambda",
        "__import__",
    ]
)
jsonish = st.lists(fragments, max_size=40).map("".join)


@PROPERTY
@given(jsonish)
def test_extract_json_never_raises_on_bracket_soup(text: str) -> None:
    value = extract_json(text).value
    assert value is None or isinstance(value, list | dict)
    parse_review(text)


@PROPERTY
@given(answer_texts)
def test_parse_review_never_raises_and_keeps_only_messages(text: str) -> None:
    parsed = parse_review(text)
    if parsed.items is not None:
        assert all(item.message.strip() for item in parsed.items)


@PROPERTY
@given(st.lists(answer_texts, min_size=1, max_size=6), st.dictionaries(st.sampled_from("abcdef"), weights_values))
def test_findings_confidences_are_probabilities(texts: list[str], weights: dict[str, float]) -> None:
    answers = [_answer(chr(ord("a") + i), t) for i, t in enumerate(texts)]
    result = decide_findings(_review(5, 8), answers, {f"{k}@http://127.0.0.1:9": w for k, w in weights.items()})
    assert 0.0 <= result.confidence <= 1.0
    assert all(0.0 <= f.confidence <= 1.0 for f in result.findings)
    assert result.agree <= result.answered <= result.asked == len(texts)


valid_finding = st.fixed_dictionaries(
    {
        "line": st.integers(min_value=1, max_value=12),
        "severity": st.sampled_from(["error", "warning", "info", "hint"]),
        "message": st.text(min_size=1, max_size=40).filter(lambda s: s.strip() != ""),
    },
    optional={"fix": st.none() | st.text(max_size=20), "end_line": st.integers(min_value=1, max_value=12)},
)


@PROPERTY
@given(
    st.lists(st.lists(valid_finding, max_size=5), min_size=1, max_size=5),
    st.integers(min_value=0, max_value=500),
    st.integers(min_value=1, max_value=12),
)
def test_valid_findings_land_inside_the_selection(
    answers: list[list[dict[str, Any]]], start: int, n_lines: int
) -> None:
    result = decide_findings(
        _review(start, n_lines), [_answer(f"m{i}", json.dumps(a)) for i, a in enumerate(answers)], None
    )
    assert result.answered == len(answers)
    for finding in result.findings:
        assert start <= finding.line < start + n_lines
        assert finding.end_line is None or finding.line < finding.end_line < start + n_lines
        assert 1 <= finding.support <= len(answers)


@PROPERTY
@given(st.lists(st.lists(valid_finding, max_size=4), min_size=2, max_size=5), st.randoms(use_true_random=False))
def test_findings_do_not_depend_on_answer_order(answers: list[list[dict[str, Any]]], rng: Any) -> None:
    originals = [_answer(f"m{i}", json.dumps(a)) for i, a in enumerate(answers)]
    shuffled = list(originals)
    rng.shuffle(shuffled)

    def summary(result: Any) -> list[tuple[Any, ...]]:
        return sorted(
            (f.line, f.end_line or -1, f.severity, f.message, f.fix or "", tuple(f.models), f.confidence)
            for f in result.findings
        )

    first, second = decide_findings(_review(3, 12), originals, None), decide_findings(_review(3, 12), shuffled, None)
    assert summary(first) == summary(second)
    assert math.isclose(first.confidence, second.confidence)


words = st.sampled_from(["mean", "list", "sum", "divide", "sort", "socket", "cache", "value", "empty", "returns", "xs"])
sentences = st.lists(words, min_size=0, max_size=12).map(" ".join) | st.text(max_size=80)


@PROPERTY
@given(st.lists(sentences, min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_text_pick_does_not_depend_on_answer_order(texts: list[str], rng: Any) -> None:
    originals = [_answer(f"m{i}", t) for i, t in enumerate(texts)]
    shuffled = list(originals)
    rng.shuffle(shuffled)
    first, second = decide_text(ASK, originals), decide_text(ASK, shuffled)
    assert first.pick == second.pick
    assert first.pick_models == second.pick_models
    assert math.isclose(first.confidence, second.confidence)


@PROPERTY
@given(st.lists(sentences, min_size=1, max_size=8), st.lists(weights_values, min_size=8, max_size=8))
def test_text_confidence_is_a_probability(texts: list[str], weights: list[float]) -> None:
    answers = [_answer(f"m{i}", t) for i, t in enumerate(texts)]
    result = decide_text(ASK, answers, {a.model_id: w for a, w in zip(answers, weights, strict=False)})
    assert 0.0 <= result.confidence <= 1.0
    assert result.agree <= result.answered <= result.asked
    if result.kind == "text":
        assert result.pick.strip()
        assert result.confidence <= result.answered / (result.answered + 1)
