"""codeconductor.ensemble.prompts: each task's prompt carries the context an expert needs and asks for a parseable output;
base models get a code-completion prompt."""

from __future__ import annotations

import json

import pytest

from codeconductor.ensemble.prompts import REVIEW_SCHEMA, build_messages
from codeconductor.ensemble.types import CodeContext, ModelInfo, ProviderKind, Request, TaskKind

CTX = CodeContext(
    path="/proj/calc.py",
    selection="def add(a, b):\n    return a - b",
    start_line=4,
    end_line=6,
    before="X = 1\n",
    after="print(add(1, 2))",
    enclosing=None,
    imports="import math",
)
CHAT = ModelInfo(name="m", provider=ProviderKind.OPENAI, endpoint="http://127.0.0.1:1")
BASE = ModelInfo(name="b", provider=ProviderKind.OPENAI, endpoint="http://127.0.0.1:1", chat=False)


@pytest.mark.parametrize("task", [TaskKind.FIX, TaskKind.IMPROVE, TaskKind.IMPLEMENT, TaskKind.DOCSTRING])
def test_code_tasks_ask_for_one_fenced_block_with_context(task: TaskKind) -> None:
    system, user = build_messages(Request(task=task, context=CTX), CHAT)
    assert system.role == "system"
    assert "exactly one fenced code block" in system.content
    assert user.role == "user"
    text = user.content
    assert "```python\ndef add(a, b):\n    return a - b\n```" in text
    assert "import math" in text
    assert "X = 1" in text
    assert "print(add(1, 2))" in text
    assert "/proj/calc.py" in text
    assert "lines 5-6" in text
    assert "complete replacement" in text


def test_tasks_differ() -> None:
    texts = {t: build_messages(Request(task=t, context=CTX), CHAT)[1].content for t in TaskKind}
    assert len(set(texts.values())) == len(texts)
    assert "Fix the bugs" in texts[TaskKind.FIX]
    assert "docstring" in texts[TaskKind.DOCSTRING]


def test_review_asks_for_strict_json_with_selection_lines() -> None:
    system, user = build_messages(Request(task=TaskKind.REVIEW, context=CTX), CHAT)
    assert "strict JSON list" in system.content
    assert REVIEW_SCHEMA in user.content
    assert "   1 | def add(a, b):" in user.content
    assert "   2 |     return a - b" in user.content
    # The schema example names exactly the keys the consensus reads.
    for key in ('"line"', '"severity"', '"message"', '"fix"'):
        assert key in REVIEW_SCHEMA


def test_instruction_and_question() -> None:
    _, user = build_messages(Request(task=TaskKind.ASK, context=CTX, instruction="Why minus?"), CHAT)
    assert "Question: Why minus?" in user.content
    _, fix = build_messages(Request(task=TaskKind.FIX, context=CTX, instruction="keep it short"), CHAT)
    assert "Additional instruction: keep it short" in fix.content


def test_selection_with_fences_stays_well_formed() -> None:
    ctx = CTX.model_copy(update={"selection": 'DOC = """\n```py\nx\n```\n"""'})
    _, user = build_messages(Request(task=TaskKind.FIX, context=ctx), CHAT)
    assert "````python\n" in user.content


def test_completion_prompt_for_base_models() -> None:
    (only,) = build_messages(Request(task=TaskKind.IMPLEMENT, context=CTX), BASE)
    assert only.role == "user"
    # The file context, then the signature the model continues.
    assert only.content.startswith("# file: /proj/calc.py\nimport math\nX = 1")
    assert only.content.rstrip().endswith("return a - b")
    (fix,) = build_messages(Request(task=TaskKind.FIX, context=CTX), BASE)
    assert fix.content.endswith("# The same code with its bugs fixed:\n```python\n")
    (review,) = build_messages(Request(task=TaskKind.REVIEW, context=CTX), BASE)
    assert review.content.endswith("```json\n")


def test_small_context_window_trims_surroundings_not_selection() -> None:
    big = CTX.model_copy(update={"before": "\n".join(f"v{i} = {i}" for i in range(3000))})
    tiny_model = CHAT.model_copy(update={"context_length": 1024})
    _, user = build_messages(Request(task=TaskKind.FIX, context=big), tiny_model)
    assert "def add(a, b):\n    return a - b" in user.content
    assert "v2999 = 2999" in user.content  # nearest lines kept
    assert "v0 = 0\n" not in user.content
    assert len(user.content) < 4000


def test_messages_are_json_serialisable() -> None:
    messages = build_messages(Request(task=TaskKind.REVIEW, context=CTX), CHAT)
    assert json.loads(json.dumps([m.model_dump() for m in messages]))[0]["role"] == "system"


# -- started answers and where an answer ends ----------------------------------------------------------------


def test_embedded_chat_models_get_an_opened_fence_to_continue_server_models_do_not() -> None:
    from codeconductor.ensemble.prompts import AnswerShape, answer_shape
    from codeconductor.ensemble.providers.registry import messages_for

    request = Request(task=TaskKind.IMPROVE, context=CodeContext(selection="def f():\n    return 1\n"))
    embedded = ModelInfo(name="q", provider=ProviderKind.EMBEDDED, endpoint="embedded://")
    assert build_messages(request, embedded)[-1].role == "user"  # the prompt is the same for every provider
    started = messages_for(request, embedded)
    assert started[-1].role == "assistant"
    assert started[-1].content == "```python\n"
    assert answer_shape("<|im_start|>assistant\n" + started[-1].content) is AnswerShape.FENCED
    server = ModelInfo(name="q", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434")
    assert [m.role for m in messages_for(request, server)] == ["system", "user"]
    review = request.model_copy(update={"task": TaskKind.REVIEW})
    assert messages_for(review, embedded)[-1].role == "user"  # only code answers are started
    base = embedded.model_copy(update={"chat": False})
    assert [m.role for m in messages_for(request, base)] == ["user"]  # a completion prompt is not started


def test_answer_shape_from_the_end_of_the_prompt() -> None:
    from codeconductor.ensemble.prompts import AnswerShape, answer_shape

    assert answer_shape("# fix it:\n```python\n") is AnswerShape.FENCED
    assert answer_shape('def f(x):\n    """Double x."""\n') is AnswerShape.BODY
    assert answer_shape("def f(x):\n") is AnswerShape.BODY
    assert answer_shape("What does this do?") is AnswerShape.FREE
    assert answer_shape("x = 1\n") is AnswerShape.FREE


@pytest.mark.parametrize(
    ("shape", "text", "kept"),
    [
        ("fenced", "def f():\n    return 1\n``", None),  # not yet: "``" may still become the fence
        ("fenced", "def f():\n    return 1\n```\nExplanation: ...", len("def f():\n    return 1\n")),
        ("fenced", "```", 0),
        ("fenced", "x = '```'\n", None),  # a fence inside a line is code
        ("body", "    return x\n", None),
        ("body", "    y = 1\n\n    return y\n\ndef g():", len("    y = 1\n\n    return y\n\n")),
        ("body", "    return 1\nprint(f())", len("    return 1\n")),
        ("body", "def again", None),  # an unindented line before any body is not the end
        ("free", "```\nanything\n```\n", None),
    ],
)
def test_answer_end(shape: str, text: str, kept: int | None) -> None:
    from codeconductor.ensemble.prompts import AnswerShape, answer_end

    assert answer_end(AnswerShape(shape), text) == kept
    if kept is not None:  # streamed one character at a time it ends at the same place, as soon as it can
        ends = [answer_end(AnswerShape(shape), text[:i]) for i in range(len(text) + 1)]
        first = next(i for i, end in enumerate(ends) if end is not None)
        assert ends[first] == kept
        assert first <= len(text)
