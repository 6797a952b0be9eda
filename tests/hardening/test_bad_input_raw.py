"""Malformed JSON-RPC, byte for byte: frames a client library would never send (invalid JSON, invalid UTF-8, a
batch, a request without a method, params of the wrong type, unknown methods). Each gets the JSON-RPC error a
client can act on, or is ignored when there is nobody to answer; the server never crashes and answers the next
normal request. Written with :class:`~tests.hardening.rawlsp.RawServer`, which frames bytes itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .rawlsp import RawServer, frame

DOC = "file:///tmp/codeconductor-hardening/raw.py"
INVALID_PARAMS, METHOD_NOT_FOUND = -32602, -32601


def _msg(data: dict[str, Any]) -> bytes:
    return frame(json.dumps(data).encode())


def _req(msg_id: int, method: str, params: Any) -> bytes:
    return _msg({"jsonrpc": "2.0", "id": msg_id, "method": method, "params": params})


def _with_content_type(data: dict[str, Any]) -> bytes:
    body = json.dumps(data).encode()
    head = f"Content-Length: {len(body)}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n"
    return head.encode() + body


POSITION = {"line": 0, "character": 0}
# (case id, bytes written, request id to look for, expected error code or None for "no response").
CASES: list[tuple[str, bytes, int | None, int | None]] = [
    ("invalid_json", frame(b'{"jsonrpc": "2.0", "id": 901, "method": '), 901, None),
    ("json_array_batch", frame(b'[{"jsonrpc": "2.0", "id": 902, "method": "shutdown"}]'), 902, None),
    ("json_scalar", frame(b'"hello"'), None, None),
    ("invalid_utf8", frame(b'{"jsonrpc": "2.0", "id": 903, "method": "\xff\xfe"}'), 903, None),
    ("nul_bytes", frame(b"\x00\x00\x00\x00"), None, None),
    ("empty_object", frame(b"{}"), None, None),
    ("no_jsonrpc_field", _msg({"id": 904, "method": "textDocument/hover", "params": {}}), 904, None),
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
