"""Property tests (hypothesis) for everything that parses what users and models send: the code-context parsers
(``codeconductor.ensemble.context``), code extraction as the consensus exposes it (``codeconductor.ensemble.consensus.agreement_key`` and
``candidates_for``), the settings parser, and the server's range-to-lines mapping. On any input they return a
well-formed answer or raise the one documented error, never anything else."""

from __future__ import annotations

import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lsprotocol import types as lsp
from pydantic.alias_generators import to_camel
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument

from codeconductor.ensemble import consensus
from codeconductor.ensemble.context import (
    build_context,
    enclosing_block,
    is_stub,
    language_from_path,
    parse_blocks,
    reindent,
)
from codeconductor.ensemble.errors import SettingsError
from codeconductor.ensemble.settings import Settings, parse_settings
from codeconductor.ensemble.types import AnswerStatus, ModelAnswer, ModelInfo, ProviderKind, Request, TaskKind
from codeconductor.server.edits import line_span

PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text that looks like code more often than uniform noise would: keywords, indentation, brackets, fences.
code_pieces = st.sampled_from(
    ["def ", "class ", "async def ", "return ", "pass", "...", "(", ")", ":", "\n", "    ", "\t", "'''", '"""',
     "```", "```python\n", "import os\n", "# TODO", "x", "f", "a, b", " = ", "{", "}", "\r\n", "😀", "\x00", "\\"]
)  # fmt: skip
codeish = st.lists(code_pieces | st.text(max_size=5), max_size=60).map("".join)
texts = st.one_of(st.text(max_size=300), codeish)
lines = st.integers(min_value=-5, max_value=80)
languages = st.sampled_from(["python", "javascript", "rust", "go", "plaintext", ""])


@PROFILE
@given(texts, lines, lines, languages)
def test_build_context_is_total_and_bounded(text: str, start: int, end: int, language: str) -> None:
    ctx = build_context(text, start, end, language=language, budget_chars=500)
    n = len(text.splitlines())
    assert 0 <= ctx.start_line <= ctx.end_line <= n
    assert ctx.selection == "\n".join(text.splitlines()[ctx.start_line : ctx.end_line])
    assert len(ctx.before) + len(ctx.after) <= max(0, 500 - len(ctx.selection)) + 1


@PROFILE
@given(texts, languages, lines)
def test_blocks_lie_inside_the_text(text: str, language: str, line: int) -> None:
    n = len(text.splitlines())
    for block in parse_blocks(text, language):
        assert 0 <= block.start < block.end <= max(n, 1)
    found = enclosing_block(text, line, language)
    if found is not None:
        assert found.start <= line < found.end


@PROFILE
@given(texts, languages)
def test_is_stub_never_raises(text: str, language: str) -> None:
    assert is_stub(text, language) in (True, False)


@PROFILE
@given(texts, st.text(alphabet=" \t", max_size=8).map(lambda indent: indent + "x = 1\n"))
def test_reindent_keeps_every_line(code: str, like: str) -> None:
    out = reindent(code, like)
    assert [line.strip() for line in out.splitlines() if line.strip()] == [
        line.strip() for line in code.splitlines() if line.strip()
    ]


@PROFILE
@given(st.one_of(st.none(), st.text(max_size=50)))
def test_language_from_path_is_total(path: str | None) -> None:
    assert isinstance(language_from_path(path), str)


# ---- extraction through the consensus' public functions -----------------------------------------------------------

_MODEL = ModelInfo(name="m", provider=ProviderKind.OPENAI, endpoint="http://127.0.0.1:1")
_SELECTION = "def add(a, b):\n    return a - b\n"
tasks = st.sampled_from(list(TaskKind))


def _request(task: TaskKind) -> Request:
    return Request(task=task, context=build_context(_SELECTION, 0, 2))


@PROFILE
@given(tasks, texts)
def test_agreement_key_is_total_and_deterministic(task: TaskKind, text: str) -> None:
    request = _request(task)
    key = consensus.agreement_key(request, text)
    assert isinstance(key, str)
    assert consensus.agreement_key(request, text) == key


@PROFILE
@given(tasks, st.lists(st.tuples(texts, st.sampled_from(list(AnswerStatus))), max_size=5))
def test_candidates_come_only_from_answered_text(task: TaskKind, answers: list[tuple[str, AnswerStatus]]) -> None:
    records = [
        ModelAnswer(model=_MODEL.model_copy(update={"name": f"m{i}"}), status=status, text=text)
        for i, (text, status) in enumerate(answers)
    ]
    candidates = consensus.candidates_for(_request(task), records, weights=None)
    usable = {r.model_id for r in records if r.status is AnswerStatus.ANSWERED and r.text.strip()}
    assert {c.model_id for c in candidates} <= usable
    assert all(0 < c.weight <= 1 for c in candidates)


# ---- settings ------------------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
field_names = st.sampled_from(sorted(Settings.model_fields))
keys = st.one_of(field_names, field_names.map(to_camel), st.text(alphabet=string.ascii_letters + "_", max_size=12))


@PROFILE
@given(st.dictionaries(keys, json_values, max_size=6))
def test_parse_settings_validates_or_names_the_fields(data: dict[str, Any]) -> None:
    errors: list[tuple[str, str]] | None = None
    try:
        parsed = parse_settings(data)
    except SettingsError as exc:
        errors = exc.errors
    if errors is None:
        assert isinstance(parsed, Settings)
    else:
        assert errors
        assert all(path and message for path, message in errors)


@PROFILE
@given(st.one_of(st.lists(json_values, max_size=3), st.text(max_size=10), st.integers(), st.booleans()))
def test_parse_settings_rejects_non_objects(data: Any) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(data)
    assert caught.value.errors == [("<root>", "not an object")]


valid_settings = st.fixed_dictionaries(
    {},
    optional={
        "timeout_s": st.floats(min_value=0.01, max_value=3600),
        "max_models": st.integers(min_value=1, max_value=64),
        "probe_local": st.booleans(),
        "embedded": st.sampled_from(["auto", "on", "off"]),
        "include_models": st.lists(st.text(max_size=8), max_size=3),
        "quorum": st.none() | st.integers(min_value=1, max_value=9),
        "model_weights": st.dictionaries(st.text(max_size=6), st.floats(min_value=0.01, max_value=1), max_size=3),
        "log_level": st.sampled_from(["debug", "info", "warning", "error"]),
    },
)


@PROFILE
@given(valid_settings, st.booleans())
def test_valid_settings_round_trip_in_either_spelling(data: dict[str, Any], camel: bool) -> None:
    sent = {to_camel(k): v for k, v in data.items()} if camel else data
    parsed = parse_settings(sent)
    assert parse_settings(parsed.model_dump(mode="json")) == parsed
    for key, value in data.items():
        assert getattr(parsed, key) == value


# ---- the server's range -> lines mapping ----------------------------------------------------------------------------


@PROFILE
@given(texts, lines, st.integers(-2, 200), lines, st.integers(-2, 200))
def test_line_span_is_inside_the_document_or_invalid_params(text: str, sl: int, sc: int, el: int, ec: int) -> None:
    doc = TextDocument("file:///prop.py", text)
    try:
        rng = lsp.Range(lsp.Position(max(sl, 0), max(sc, 0)), lsp.Position(max(el, 0), max(ec, 0)))
        start, end = line_span(doc, rng)
    except JsonRpcInvalidParams:
        return
    n = len(doc.lines)
    assert 0 <= start <= end <= n
    assert start < end or n == 0
