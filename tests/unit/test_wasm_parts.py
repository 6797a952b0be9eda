"""The WebAssembly sandbox's parsing, on forged and hostile input (no wasmtime needed): the host process's reading
of what the guest prints (``_wasm_host._Instance``), the parent's reading of the host process's answer
(``_wasm._frames``), and the project runner's choice of the reason shown for what a candidate's run added."""

from __future__ import annotations

import json
import struct

from codeconductor.ensemble.verify import _wasm, _wasm_host
from codeconductor.ensemble.verify.project import _hostile_reason
from codeconductor.ensemble.verify.sandbox import CallSpec, _call_outcomes

KEY = b"0123456789abcdef0123456789abcdef"


def _guest(*lines: bytes, limit: int = 1 << 20) -> _wasm_host._Instance:
    state = _wasm_host._Instance(KEY)
    for line in lines:
        state.out(line, limit)
    return state


def test_only_lines_with_the_runs_key_are_records() -> None:
    state = _guest(
        b"hello from the candidate\n",
        b"CCW1 " + KEY + b' {"t":"call","i":0,"ok":true,"value":"([1], {2: [3]})"}\n',
        b"passed 1 of 1\n",
    )
    assert state.records == [{"t": "call", "i": 0, "ok": True, "value": "([1], {2: [3]})"}]
    assert not state.forged


def test_a_line_split_across_writes_is_one_record() -> None:
    whole = b"CCW1 " + KEY + b' {"t":"ready"}\n'
    state = _guest(whole[:7], whole[7:20], whole[20:])
    assert state.records == [{"t": "ready"}]


def test_a_tagged_line_with_another_key_is_a_forgery() -> None:
    state = _guest(b'CCW1 ffffffffffffffffffffffffffffffff {"t":"call","i":0,"ok":true,"value":"5"}\n')
    assert state.forged
    assert state.records == []


def test_a_deep_or_malformed_record_is_a_forgery_never_a_recursion() -> None:
    deep = b"CCW1 " + KEY + b" " + b"[" * 100_000 + b"]" * 100_000 + b"\n"
    assert _guest(deep).forged
    assert _guest(b"CCW1 " + KEY + b" {not json\n").forged


def test_an_overlong_line_is_skipped_and_a_flood_stops_the_run() -> None:
    state = _guest(b"x" * (_wasm_host.LINE_LIMIT + 10), b"still the same line\n", b"CCW1 " + KEY + b' {"t":"ready"}\n')
    assert state.records == [{"t": "ready"}]
    flood = _guest(b"y" * 5000, limit=4096)
    assert flood.flooded


def _answer(frames: object) -> bytes:
    body = json.dumps({"frames": frames}).encode()
    return struct.pack(">I", len(body)) + body


def test_the_parent_reads_the_host_process_bounded() -> None:
    good = [{"t": "call", "i": 0, "ok": True, "value": "2"}, {"t": "end", "exit_code": 0}]
    assert _wasm._frames(_answer(good)) == (good, "end")
    assert _wasm._frames(b"") == ([], "eof")
    assert _wasm._frames(_answer(good)[:-3]) == ([], "eof")  # cut short
    body = b'{"frames": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    assert _wasm._frames(struct.pack(">I", len(body)) + body) == ([], "violation")
    assert _wasm._frames(_answer([{"t": "call"}])) == ([], "violation")  # no end frame


def test_a_hostile_reason_is_one_the_hook_knows() -> None:
    frames, how = _wasm._frames(_answer([{"t": "end", "hostile": "made the user trust me"}]))
    assert frames[-1]["hostile"] == "tried something no code edit needs"
    frames, how = _wasm._frames(_answer([{"t": "end", "hostile": "tried to start a process"}]))
    assert frames[-1]["hostile"] == "tried to start a process"
    outcomes = _call_outcomes([CallSpec("f(1)", "2")], frames, how)
    assert [(o.key, o.matches) for o in outcomes] == [("!Hostile:tried to start a process", False)]


def test_the_reason_shown_for_a_project_run_puts_a_connection_first() -> None:
    assert _hostile_reason(frozenset({"write", "subprocess.Popen", "socket.connect"})) == (
        "tried to open a network connection"
    )
    assert _hostile_reason(frozenset({"write", "os.kill"})) == "tried to signal a process"
    assert _hostile_reason(frozenset({"write"})) == "tried to write outside its scratch directory"
