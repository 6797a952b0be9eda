"""Malformed JSON-RPC, byte for byte: frames a client library would never send (invalid JSON, invalid UTF-8, a
batch, a request without a method, params of the wrong type, unknown methods). Each gets the JSON-RPC error a
client can act on, or is ignored when there is nobody to answer; the server never crashes and answers the next
normal request. Written with :class:`~tests.support.rawlsp.RawServer`, which frames bytes itself.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.rawlsp import RawServer, frame

DOC = "file:///tmp/codeconductor-hardening/raw.py"
INVALID_PARAMS, METHOD_NOT_FOUND = -32602, -32601
PARSE_ERROR, INVALID_REQUEST = -32700, -32600


def _msg(data: dict[str, Any]) -> bytes:
    return frame(json.dumps(data).encode())


def _req(msg_id: int, method: str, params: Any) -> bytes:
    return _msg({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})


def _with_content_type(data: dict[str, Any]) -> bytes:
    body = json.dumps(data).encode()
    head = f"Content-Length: {len(body)}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"
    return head.encode() + body


def _nested(depth: int, msg_id: int | None, *, objects: bool = False) -> bytes:
    """A message whose params nest ``depth`` deep (lists, or objects), written as text: no encoder would."""
    opening, closing = (b'{"a":', b"}") if objects else (b"[", b"]")
    head = b'{"jsonrpc": "2.0", ' + (b'"id": %d, ' % msg_id if msg_id is not None else b"")
    return frame(head + b'"method": "textDocument/hover", "params": ' + opening * depth + b"1" + closing * depth + b"}")


def _headers(head: bytes, data: dict[str, Any]) -> bytes:
    body = json.dumps(data).encode()
    return head % len(body) + body


_UNKNOWN = {"jsonrpc": "2.0", "method": "codeconductor/lost", "params": {}}
HUGE = 2**70
POSITION = {"line": 0, "character": 0}
# (case id, bytes written, request id to look for, expected error code or None for "no response").
CASES: list[tuple[str, bytes, int | None, int | None]] = [
    # The id is read from what could be parsed, so the client is not left waiting.
    ("invalid_json", frame(b'{"jsonrpc": "2.0", "id": 901, "method": '), 901, PARSE_ERROR),
    ("json_array_batch", frame(b'[{"jsonrpc": "2.0", "id": 902, "method": "shutdown"}]'), 902, None),
    ("json_scalar", frame(b'"hello"'), None, None),
    ("invalid_utf8", frame(b'{"jsonrpc": "2.0", "id": 903, "method": "\xff\xfe"}'), 903, PARSE_ERROR),
    (
        "invalid_utf8_in_params",
        frame(b'{"jsonrpc": "2.0", "id": 920, "method": "textDocument/hover", "params": {"x": "\xc3\x28"}}'),
        920,
        PARSE_ERROR,
    ),
    (
        "invalid_utf8_notification",
        frame(b'{"jsonrpc": "2.0", "method": "textDocument/didSave", "params": {"x": "\xed\xa0\x80"}}'),
        None,
        None,
    ),
    ("params_nested_10000_lists", _nested(10_000, 921), 921, INVALID_REQUEST),
    ("params_nested_10000_objects", _nested(10_000, 922, objects=True), 922, INVALID_REQUEST),
    ("notification_nested_10000", _nested(10_000, None), None, None),
    (
        "line_2_to_the_70",
        _req(923, "textDocument/hover", {"textDocument": {"uri": DOC}, "position": {"line": HUGE, "character": 0}}),
        923,
        INVALID_PARAMS,
    ),
    (
        "command_range_2_to_the_70",
        _req(
            924,
            "workspace/executeCommand",
            {
                "command": "codeconductor.run",
                "arguments": [
                    {"uri": DOC, "range": {"start": POSITION, "end": {"line": HUGE, "character": HUGE}}, "task": "fix"}
                ],
            },
        ),
        924,
        INVALID_PARAMS,
    ),
    ("lowercase_header", _headers(b"content-length: %d\r\n\r\n", _UNKNOWN | {"id": 925}), 925, METHOD_NOT_FOUND),
    (
        "content_type_before_length",
        _headers(b"Content-Type: application/vscode-jsonrpc\r\nContent-Length: %d\r\n\r\n", _UNKNOWN | {"id": 926}),
        926,
        METHOD_NOT_FOUND,
    ),
    ("nul_bytes", frame(b"\x00\x00\x00\x00"), None, None),
    ("empty_object", frame(b"{}"), None, None),
    ("no_jsonrpc_field", _msg({"id": 904, "method": "textDocument/hover", "params": {}}), 904, INVALID_REQUEST),
    ("request_without_method", _msg({"jsonrpc": "2.0", "id": 905}), 905, None),
    ("params_wrong_type", _req(906, "textDocument/hover", "not an object"), 906, INVALID_PARAMS),
    ("params_missing_field", _req(907, "textDocument/hover", {"position": POSITION}), 907, INVALID_PARAMS),
    (
        "position_negative",
        _req(908, "textDocument/hover", {"textDocument": {"uri": DOC}, "position": {"line": -1, "character": 0}}),
        908,
        INVALID_PARAMS,
    ),
    (
        "position_wrong_type",
        _req(909, "textDocument/codeAction", {"textDocument": {"uri": DOC}, "range": "everything", "context": {}}),
        909,
        INVALID_PARAMS,
    ),
    ("command_name_not_string", _req(910, "workspace/executeCommand", {"command": 5}), 910, INVALID_PARAMS),
    ("unknown_request", _req(911, "codeconductor/explode", {}), 911, METHOD_NOT_FOUND),
    (
        "unknown_request_no_params",
        _msg({"jsonrpc": "2.0", "id": 912, "method": "codeconductor/nope"}),
        912,
        METHOD_NOT_FOUND,
    ),
    (
        "unknown_notification",
        _msg({"jsonrpc": "2.0", "method": "codeconductor/whatever", "params": {"x": 1}}),
        None,
        None,
    ),
    ("id_is_an_object", _msg({"jsonrpc": "2.0", "id": {"a": 1}, "method": "codeconductor.status"}), None, None),
    (
        "notification_wrong_types",
        _msg({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": 1}}}),
        None,
        None,
    ),
    (
        "cancel_unknown_request",
        _msg({"jsonrpc": "2.0", "method": "$/cancelRequest", "params": {"id": 424242}}),
        None,
        None,
    ),
    (
        "response_nobody_asked_for",
        _msg({"jsonrpc": "2.0", "id": 777777, "result": {"applied": True}}),
        None,
        None,
    ),
    (
        "extra_content_type_header",
        _with_content_type({"jsonrpc": "2.0", "id": 913, "method": "codeconductor/x", "params": {}}),
        913,
        METHOD_NOT_FOUND,
    ),
    (
        "did_change_unknown_document",
        _msg(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didChange",
                "params": {
                    "textDocument": {"uri": "file:///never-opened.py", "version": 2},
                    "contentChanges": [{"text": "x"}],
                },
            }
        ),
        None,
        None,
    ),
    (
        "did_change_range_past_end",
        _msg(
            {
                "jsonrpc": "2.0",
                "method": "textDocument/didChange",
                "params": {
                    "textDocument": {"uri": DOC, "version": 2},
                    "contentChanges": [
                        {
                            "range": {"start": {"line": 50, "character": 0}, "end": {"line": 60, "character": 0}},
                            "text": "x",
                        }
                    ],
                },
            }
        ),
        None,
        None,
    ),
]


# Bytes that are not a well-framed message: each may cost that one message, never the ones after it.
FRAMING: list[tuple[str, bytes]] = [
    ("content_length_not_a_number", b"Content-Length: abc\r\n\r\n" + json.dumps(_UNKNOWN | {"id": 940}).encode()),
    ("content_length_negative", b"Content-Length: -5\r\n\r\n" + json.dumps(_UNKNOWN | {"id": 941}).encode()),
    ("content_length_empty", b"Content-Length: \r\n\r\n{}"),
    ("no_header_at_all", json.dumps(_UNKNOWN | {"id": 942}).encode() + b"\r\n\r\n"),
    ("binary_garbage", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40 + b"\r\n\r\n"),
    ("header_without_blank_line", b"Content-Length: 20\r\n" + json.dumps(_UNKNOWN).encode()),
    ("length_shorter_than_body", b"Content-Length: 10\r\n\r\n" + json.dumps(_UNKNOWN | {"id": 943}).encode()),
    # Announced longer than sent: the next message is swallowed, then found again when the body stalls.
    ("length_longer_than_body", b"Content-Length: 5000\r\n\r\n" + json.dumps(_UNKNOWN | {"id": 944}).encode()),
    ("length_over_the_limit", b"Content-Length: 99999999999999\r\n\r\n" + b"x" * 1000),
    ("many_megabytes_of_one_line", b"y" * 3_000_000 + b"\r\n\r\n"),
]


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RawServer]:
    log = Path(tmp_path_factory.mktemp("raw-server")) / "stderr.log"
    with RawServer(stderr_path=log) as server:
        server.initialize({"probeLocal": False, "embedded": "off", "history": False})
        server.open(DOC, "def f(x):\n    return x\n")
        yield server


@pytest.mark.parametrize(("case", "data", "msg_id", "code"), CASES, ids=[c[0] for c in CASES])
def test_malformed_message(raw: RawServer, case: str, data: bytes, msg_id: int | None, code: int | None) -> None:
    raw.write(data)
    if code is not None:
        assert msg_id is not None
        reply = raw.wait_response(msg_id, timeout=15)
        assert reply["error"]["code"] == code, reply
        # No traceback, no install path: the details went to the server's log.
        assert "data" not in reply["error"] or not reply["error"]["data"], reply
        assert "site-packages" not in reply["error"]["message"]
        assert "Traceback" not in reply["error"]["message"]
    assert raw.alive
    assert raw.healthy()  # the next normal request is answered normally
    if code is None and msg_id is not None:
        assert raw.response_if_any(msg_id) is None  # nothing to answer: an id we could not read
    assert raw.garbage.empty()  # and stdout carried only JSON-RPC


def test_request_before_initialize_is_an_error_not_a_crash(tmp_path: Path) -> None:
    with RawServer(stderr_path=tmp_path / "stderr.log") as server:
        reply = server.request("textDocument/hover", {"textDocument": {"uri": DOC}, "position": POSITION})
        assert "error" in reply
        assert "initialized" in reply["error"]["message"]
        server.initialize({"probeLocal": False, "embedded": "off", "history": False})
        assert server.healthy()


@pytest.mark.parametrize(("case", "data"), FRAMING, ids=[c[0] for c in FRAMING])
def test_bad_framing_costs_at_most_that_message(raw: RawServer, case: str, data: bytes) -> None:
    raw.write(data)
    assert raw.healthy()  # the next normal request is answered normally
    assert raw.alive
    for lost in (940, 941, 942, 943, 944):
        raw.response_if_any(lost)  # an id of a message the framing lost may or may not be answered: never hangs
    assert raw.garbage.empty()


def test_a_header_split_across_writes(raw: RawServer) -> None:
    body = json.dumps(_UNKNOWN | {"id": 950}).encode()
    data = frame(body)
    for piece in (data[:3], data[3:17], data[17:30], data[30:]):
        raw.write(piece)
        time.sleep(0.05)
    assert raw.wait_response(950, timeout=15)["error"]["code"] == METHOD_NOT_FOUND


def test_shutdown_is_answered_after_a_broken_frame(tmp_path: Path) -> None:
    """What the issue saw: after ``Content-Length: abc`` and its bytes, even ``shutdown`` went unanswered."""
    log = tmp_path / "stderr.log"
    with RawServer(stderr_path=log) as server:
        server.initialize({"probeLocal": False, "embedded": "off", "history": False})
        server.write(b"Content-Length: abc\r\n\r\n" + json.dumps(_UNKNOWN | {"id": 960}).encode())
        assert server.request("shutdown", timeout=15) == {"jsonrpc": "2.0", "id": 2, "result": None}
        server.notify("exit")
        assert server.process.wait(15) == 0
    assert "skipped" in log.read_text(errors="replace")  # the lost bytes are in the log, with what they were
