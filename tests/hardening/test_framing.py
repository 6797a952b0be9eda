"""The server's JSON-RPC read loop and error replies, in-process (no subprocess): :class:`codeconductor.server.framing.FrameParser`
recovers from any byte stream, :func:`codeconductor.server.framing.peek_envelope` finds the id of a message that cannot be parsed,
and an unexpected exception in a handler reaches the client as a -32603 error without traceback or path (the
traceback goes to the log). The same behaviour end to end over stdio is in ``test_bad_input_raw.py``."""

from __future__ import annotations

import json
import logging
from concurrent.futures import Future
from typing import Any

import pytest

from codeconductor.server.app import create_server
from codeconductor.server.framing import MAX_BODY, FrameParser, peek_envelope


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _bodies(parser: FrameParser) -> list[bytes]:
    out = []
    while (body := parser.next_body()) is not None:
        out.append(body)
    return out


GOOD = b'{"jsonrpc": "2.0", "id": 1, "method": "shutdown"}'


@pytest.mark.parametrize(
    ("case", "junk"),
    [
        ("length_not_a_number", b"Content-Length: abc\r\n\r\n{}"),
        ("no_header", b'{"jsonrpc": "2.0"}\r\n\r\n'),
        ("binary", bytes(range(256)) * 100),
        ("header_glued_to_a_body", b"Content-Length: 20\r\n" + GOOD),
        ("length_over_the_limit", b"Content-Length: %d\r\n\r\nxxxx" % (MAX_BODY + 1)),
    ],
)
def test_the_next_message_after_junk_is_read(case: str, junk: bytes) -> None:
    parser = FrameParser()
    parser.feed(junk + _frame(GOOD))
    assert _bodies(parser)[-1:] == [GOOD]
    assert not parser.in_body


def test_byte_by_byte_and_other_headers() -> None:
    parser = FrameParser()
    data = b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\n" + _frame(GOOD) + _frame(b"{}")
    found: list[bytes] = []
    for i in range(len(data)):
        parser.feed(data[i : i + 1])
        found.extend(_bodies(parser))
    assert found == [GOOD, b"{}"]
    assert parser.skipped == 0  # a Content-Type header is not junk


def test_a_body_announced_too_long_is_given_up_when_it_stalls() -> None:
    parser = FrameParser()
    parser.feed(b"Content-Length: 5000\r\n\r\n" + b'{"short": 1}' + _frame(GOOD))
    assert _bodies(parser) == []
    assert parser.in_body  # waiting for bytes that will never come
    parser.stalled()  # what the read loop calls after STALL_S without a byte
    assert _bodies(parser) == [GOOD]


def test_a_body_announced_too_long_that_swallowed_the_next_message() -> None:
    parser = FrameParser()
    first = _frame(GOOD)
    parser.feed(b"Content-Length: %d\r\n\r\n{}" % (len(first) + 2) + first)
    (body,) = _bodies(parser)
    assert body.startswith(b"{}Content-Length")  # not JSON: the loop answers a parse error and pushes it back
    parser.push_back(body)
    assert _bodies(parser) == [GOOD]


def test_junk_without_a_header_is_not_kept() -> None:
    parser = FrameParser()
    for _ in range(200):
        parser.feed(b"z" * 65536)
        assert parser.next_body() is None
    assert len(parser._buf) <= 4096  # bounded memory however long the junk
    assert parser.skipped > 13_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '{"jsonrpc": "2.0", "id": 7, "method": "x", "params": ' + "[" * 5000 + "]" * 5000 + "}",
            (7, "x", True, False),
        ),
        ('{"params": {"id": 99, "method": "inner"}, "id": "a", "method": "outer"}', ("a", "outer", True, False)),
        ('{"jsonrpc": "2.0", "id": 901, "method": ', (901, None, True, False)),
        ('{"jsonrpc": "2.0", "method": "n", "params": {"s": "\ufffd"}}', (None, "n", False, False)),
        ('{"jsonrpc": "2.0", "id": 3, "result": [[[', (3, None, True, True)),
        ('{"id": true, "method": "m"}', (None, "m", False, False)),
        ('{"text": "\\"id\\": 5", "method": "m"}', (None, "m", False, False)),
        ("not json at all", (None, None, False, False)),
    ],
)
def test_peek_envelope(text: str, expected: tuple[Any, ...]) -> None:
    assert peek_envelope(text) == expected


class _Capture:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def write(self, data: bytes) -> None:
        self.sent.append(json.loads(data.split(b"\r\n\r\n", 1)[1]))

    def close(self) -> None:
        return None


def test_an_internal_error_reaches_the_client_without_traceback_or_path(caplog: pytest.LogCaptureFixture) -> None:
    ls = create_server()
    capture = _Capture()
    ls.protocol.set_writer(capture)
    future: Future[Any] = Future()
    try:
        open("/nonexistent-codeconductor/secret/place.txt")  # noqa: SIM115 - an exception whose text has a path
    except OSError as exc:
        future.set_exception(exc)
    caplog.set_level(logging.ERROR)
    ls.protocol._send_handler_result(future, msg_id=7)  # pygls' own path for a handler that raised
    (reply,) = capture.sent
    error = reply["error"]
    assert reply["id"] == 7
    assert error["code"] == -32603
    assert "data" not in error or error["data"] is None
    assert "/nonexistent-codeconductor" not in error["message"]
    assert "FileNotFoundError" in error["message"]
    assert "details in the CodeConductor server log" in error["message"]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "/nonexistent-codeconductor/secret/place.txt" in logged  # the details are in the log
    assert "_send_handler_result" in logged  # with the traceback


def test_an_internal_error_without_a_path_keeps_its_text() -> None:
    ls = create_server()
    capture = _Capture()
    ls.protocol.set_writer(capture)
    future: Future[Any] = Future()
    future.set_exception(RuntimeError("Server not initialized"))
    ls.protocol._send_handler_result(future, msg_id=8)
    assert "Server not initialized" in capture.sent[0]["error"]["message"]
