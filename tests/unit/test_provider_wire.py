"""Pure helpers behind the HTTP providers: embedding-name heuristics, error texts, prompts, SSE/line parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from codeconductor.ensemble.errors import ProviderProtocolError
from codeconductor.ensemble.providers._wire import (
    MAX_ANSWER_CHARS,
    AnswerBuffer,
    completion_prompt,
    error_message,
    iter_lines,
    iter_sse_data,
    looks_like_embedding,
)
from codeconductor.ensemble.types import ChatMessage


@pytest.mark.parametrize(
    ("name", "family", "expected"),
    [
        ("nomic-embed-text:latest", None, True),
        ("text-embedding-3-small", None, True),
        ("bge-m3", None, True),
        ("all-minilm:l6-v2", None, True),
        ("mxbai-embed-large", None, True),
        ("jina-reranker-v2", None, True),
        ("snowflake-arctic-embed:m", None, True),
        ("some-model", "bert", True),
        ("qwen2.5-coder:7b", "qwen2", False),
        ("llama3.2:1b", "llama", False),
        ("deepseek-coder-v2", None, False),
        ("codegemma", "gemma", False),
        ("gte-qwen2", None, True),
        ("microbert-coder", None, False),  # "bert" only counts as a whole word
    ],
)
def test_looks_like_embedding(name: str, family: str | None, expected: bool) -> None:
    assert looks_like_embedding(name, family) is expected


def test_error_message_shapes() -> None:
    assert error_message({"error": "model not found"}) == "model not found"
    assert error_message({"error": {"message": "bad key", "type": "auth"}}) == "bad key"
    assert error_message({"detail": "Not Found"}) == "Not Found"
    assert error_message("plain") == "plain"


def test_completion_prompt_joins_contents() -> None:
    msgs = [ChatMessage(role="system", content="sys"), ChatMessage(role="user", content="def f():\n")]
    assert completion_prompt(msgs) == "sys\n\ndef f():\n"
    assert completion_prompt([ChatMessage(role="user", content="x")]) == "x"


def _response(chunks: list[bytes]) -> httpx.Response:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    return httpx.Response(200, content=body())


async def test_iter_lines_splits_across_chunks_and_multibyte_boundaries() -> None:
    text = "héllo\r\nwörld\n€nd".encode()
    # Split inside the multi-byte "é" and "€" to check the incremental decoder.
    chunks = [text[:2], text[2:9], text[9:15], text[15:]]
    lines = [line async for line in iter_lines(_response(chunks), "e")]
    assert lines == ["héllo", "wörld", "€nd"]


async def test_iter_lines_rejects_invalid_utf8() -> None:
    with pytest.raises(UnicodeDecodeError):
        _ = [line async for line in iter_lines(_response([b"ok\n", b"\xff\xfe\n"]), "e")]


async def test_sse_events_comments_and_multiline_data() -> None:
    raw = b': keep-alive\n\ndata: {"a": 1}\n\nevent: x\ndata: line1\ndata: line2\n\ndata: [DONE]\n\n'
    events = [e async for e in iter_sse_data(_response([raw[:7], raw[7:30], raw[30:]]), "e")]
    assert events == ['{"a": 1}', "line1\nline2", "[DONE]"]


def test_answer_buffer_caps_size_and_survives_a_broken_callback() -> None:
    seen: list[str] = []

    def callback(piece: str) -> None:
        seen.append(piece)
        raise RuntimeError("progress bug")

    buffer = AnswerBuffer("e", "m", callback)
    buffer.add("ab")
    buffer.add("")
    buffer.add(None)
    assert (buffer.text, buffer.pieces, seen) == ("ab", 1, ["ab"])
    with pytest.raises(ProviderProtocolError, match="longer than"):
        buffer.add("x" * MAX_ANSWER_CHARS)
    with pytest.raises(ProviderProtocolError, match="not a string"):
        buffer.add(42)
