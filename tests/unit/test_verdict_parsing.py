"""What the parent reads back from a sandbox, read with bounded, non-recursive parsing: the JavaScript harness's
lines, the pytest driver's report, and the JSON comparison of JavaScript values. Anything malformed, forged, too
large or too deeply nested is a failure of that candidate, never an exception (issue 24, item 4)."""

from __future__ import annotations

import json

import pytest

from codeconductor.ensemble.languages.javascript import read_harness_output
from codeconductor.ensemble.verify.bounded import json_depth, read_json
from codeconductor.ensemble.verify.compare import same_json_value
from codeconductor.ensemble.verify.pytest_runner import read_report

KEY = "k" * 32


def line(obj: object, key: str = KEY) -> str:
    return f"{key} {json.dumps(obj)}\n"


# -- read_json ------------------------------------------------------------------------------------------------
def test_read_json_bounds_depth_size_and_constants() -> None:
    assert read_json('{"a": ["[[[", {"b": 1}]}') == {"a": ["[[[", {"b": 1}]}
    assert json_depth('["[[[[", "\\"]]"]') == 1  # brackets inside strings (escaped quotes too) do not count
    for bad in ("[" * 100_000, "[" * 65 + "]" * 65):
        with pytest.raises(ValueError, match="nested too deeply"):
            read_json(bad)
    malformed: tuple[str | bytes, ...] = ("x" * 10, '"open', "NaN", "[Infinity]", b"\xff\xfe")
    for text in malformed:
        with pytest.raises(ValueError, match=r"Expecting|Unterminated|not JSON|decode"):
            read_json(text)
    with pytest.raises(ValueError, match="too large"):
        read_json("[1]" + " " * 100, max_chars=50)
    assert read_json("[" * 64 + "]" * 64) is not None


# -- the JavaScript harness's lines --------------------------------------------------------------------------
def keys(stdout: str, count: int = 2, why: str = "Killed:0") -> list[str]:
    return [o.key for o in read_harness_output(stdout, KEY, count, why)]


def test_harness_lines_read_back() -> None:
    stdout = line({"i": 0, "ok": True, "value": "[1,2]"}) + line({"i": 1, "ok": False, "error": "RangeError"})
    assert keys(stdout) == ["=[1,2]", "!RangeError"]
    assert keys(line({"load_error": "SyntaxError"})) == ["!load:SyntaxError"] * 2
    assert keys(line({"i": 0, "ok": True, "value": "1"}), why="Timeout") == ["=1", "!Timeout"]


@pytest.mark.parametrize(
    "stdout",
    [
        '{"ok": true, "value": "5", "matches": true}\n' * 2,  # the old format: no key
        line({"i": 0, "ok": True, "value": "5"}, key="0" * 32) * 2,  # a guessed key
        line({"i": 0, "ok": True, "value": "5"}) * 2,  # a call reported twice
        line({"i": 1, "ok": True, "value": "5"}),  # out of order
        line({"i": 0, "ok": True, "value": "5"}) + line({"i": 1, "ok": True, "value": "5"}) * 2,  # after the last
        line({"i": 0, "ok": True, "value": "5"}) + "[" * 100_000 + "\n",  # a deep line without the key
        line({"i": 0, "ok": True, "value": "5"}) + line({"load_error": "X"}),  # a load error after a call
        line({"load_error": "X"}) + line({"i": 0, "ok": True, "value": "5"}),  # calls after a load error
        "\n" + line({"i": 0, "ok": True, "value": "5"}),  # anything before the harness's lines
    ],
)
def test_forged_harness_output_fails_every_call(stdout: str) -> None:
    assert keys(stdout) == ["!Forged", "!Forged"]


@pytest.mark.parametrize(
    "bad",
    [
        KEY + " " + "[" * 100_000,  # keyed, nested 100,000 deep: the RecursionError of the finding
        KEY + ' {"i": 0, "ok": true, "value": ' + "[" * 50 + "]" * 50 + "}",  # a value that is not a string
        KEY + ' {"i": 0, "ok": true, "value": "' + "x" * 20_000 + '"}',  # too long
        KEY + ' {"i": 0, "ok": "yes", "value": "1"}',
        KEY + ' {"i": 0, "ok": true, "value": "1"',  # cut off
        KEY + " NaN",
    ],
)
def test_malformed_keyed_lines_fail_their_call_and_never_raise(bad: str) -> None:
    assert keys(bad + "\n") == ["!Malformed", "!Killed:0"]


def test_output_cut_at_the_sandbox_cap_fails_the_calls_it_lost() -> None:
    stdout = line({"i": 0, "ok": True, "value": "1"}) + KEY + ' {"i": 1, "ok": tr\n[output truncated]'
    assert keys(stdout, 3) == ["=1", "!Malformed", "!Killed:0"]
    stdout = line({"i": 0, "ok": True, "value": "1"}) + "[output truncated]"
    assert keys(stdout, 2) == ["=1", "!OutputLimit"]


# -- comparing JavaScript values -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("3", "3", True),
        ("0.30000000000000004", "0.3", True),
        ("1", "1.0", True),
        ("true", "1", False),  # a boolean is not a number
        ('"3"', "3", False),
        ("[1, 2]", "[1,2]", True),
        ("[1, 2]", "[2, 1]", False),
        ('{"a": 1, "b": [1]}', '{"b":[1],"a":1}', True),
        ('{"a": 1}', '{"a": 1, "b": 2}', False),
        ("null", '"<undefined>"', False),
        ('"<NaN>"', '"<NaN>"', True),
        ("1" + "0" * 400, "1.5", False),  # an integer too large for a float: no OverflowError
        ("[" * 10_000, "[" * 10_000, True),  # unreadable: compared as text, no RecursionError
        ("[" * 10_000, "[]", False),
        ('"abc...#5000"', '"abc...#5000"', True),
    ],
)
def test_same_json_value(a: str, b: str, same: bool) -> None:
    assert same_json_value(a, b) is same
    assert same_json_value(b, a) is same


# -- the pytest driver's report ------------------------------------------------------------------------------
MARKER = "codeconductor-pytest-report"
GOOD = {"exit_code": 0, "tests": [{"nodeid": "t.py::a", "outcome": "passed", "message": ""}], "errors": []}


def report(obj: object, key: str = KEY) -> str:
    return f"{MARKER} {key} {json.dumps(obj)}"


def test_the_keyed_report_is_read() -> None:
    data, why = read_report("noise\n" + report(GOOD) + "\n", KEY)
    assert data == GOOD
    assert why == ""
    assert read_report("pytest crashed\n", KEY) == (None, "")


@pytest.mark.parametrize(
    ("stdout", "why"),
    [
        (report(GOOD, key="0" * 32) + "\n" + report(GOOD), "not the driver's"),
        ('{"codeconductor_pytest": 1, "exit_code": 0}\n' + report(GOOD) + "\n" + MARKER, "not the driver's"),
        (report(GOOD) + "\n" + report(GOOD), "twice"),
        (f"{MARKER} {KEY} " + "[" * 100_000, "malformed"),
        (f"{MARKER} {KEY} " + '{"exit_code": 0, "tests": [', "malformed"),
        (report({**GOOD, "exit_code": "0"}), "malformed"),
        (report({**GOOD, "exit_code": True}), "malformed"),
        (report({**GOOD, "tests": [{"nodeid": "t.py::a", "outcome": "great"}]}), "malformed"),
        (report({**GOOD, "tests": GOOD["tests"] * 2}), "malformed"),  # type: ignore[operator]
        (report({**GOOD, "errors": [1]}), "malformed"),
        (report([GOOD]), "malformed"),
    ],
)
def test_untrustworthy_reports_are_refused(stdout: str, why: str) -> None:
    data, problem = read_report(stdout, KEY)
    assert data is None
    assert why in problem
