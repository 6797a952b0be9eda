"""Every verdict is computed outside the sandbox (issue 24, item 4): hostile candidates on the real sandbox
(bubblewrap) and real node cannot make a wrong answer match, cannot read what they are compared with, and cannot
crash the parent with what they print.

These tests need bubblewrap and node, which ``scripts/setup.sh`` installs: where either is missing they fail with
the reason, they never skip.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from codeconductor.ensemble.consensus.behaviour import HOSTILE_KEY
from codeconductor.ensemble.languages import javascript as js_module
from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.languages.javascript import esbuild_path, node_path, read_harness_output
from codeconductor.ensemble.verify.pytest_runner import (
    ProjectSnapshot,
    PytestReport,
    PytestRunner,
    locate_function,
    replace_span,
)
from codeconductor.ensemble.verify.sandbox import CallSpec, Sandbox, ScriptOutcome

pytestmark = pytest.mark.timeout(300)


class RecordingSandbox(Sandbox):
    """The real sandbox, which also keeps what each program run was given (files and argv), so a test can say
    what entered the sandbox."""

    def __init__(self) -> None:
        super().__init__(workers=1)
        self.runs: list[tuple[dict[str, str], list[str]]] = []

    def run_program(self, files: Mapping[str, str], argv: Sequence[str], *args: Any, **kwargs: Any) -> ScriptOutcome:
        self.runs.append((dict(files), list(argv)))
        return super().run_program(files, argv, *args, **kwargs)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RecordingSandbox]:
    box = RecordingSandbox()
    assert box.containment == "bubblewrap", f"bubblewrap cannot run here: {box.unavailable_reason}"
    assert node_path() is not None, "node is not installed (scripts/setup.sh installs it)"
    box.start()
    yield box
    box.close()


# -- JavaScript and TypeScript ----------------------------------------------------------------------------------
WRONG_JS = "const f = (x) => x - 100;"
# Every way out of the vm context tried when the finding was made, and a few more: each, when it reaches node's
# process, reads the job file and prints "passed" lines in the old format and the current one (guessing the key),
# then ends the process so that the harness reports nothing itself.
ESCAPES_JS = {
    "global constructor": "this.constructor.constructor('return process')()",
    "console function": "console.log.constructor('return process')()",
    "console object": "console.constructor.constructor('return process')()",
    "prototype chain": "Object.getPrototypeOf(globalThis).constructor.constructor('return process')()",
    "stack frames": "(() => { Error.prepareStackTrace = (e, s) => s.map((c) => c.getThis()).find((t) => t && "
    "t.process); const t = new Error().stack; return t && t.process; })()",
}
FORGE_JS = (
    """
let proc = null;
try { proc = %s; } catch (e) { proc = null; }
if (proc && typeof proc.exit === 'function') {
  const fs = proc.mainModule ? proc.mainModule.require('fs') : null;
  let job = '';
  try { job = fs ? fs.readFileSync('job.json', 'utf8') : ''; } catch (e) { job = ''; }
  const lines = [];
  for (let i = 0; i < 4; i++) {
    lines.push(JSON.stringify({ ok: true, value: '5', matches: true }));
    lines.push('0000 ' + JSON.stringify({ i, ok: true, value: '5' }));
  }
  lines.push('['.repeat(100000));
  proc.stdout.write(lines.join('\\n') + '\\n' + job + '\\n');
  proc.exit(0);
}
"""
    + WRONG_JS
)


def test_js_ways_out_of_the_vm_context_are_closed_and_verdicts_stay_in_the_parent(sandbox: RecordingSandbox) -> None:
    """The finding: wrong code (``x - 100``) offered at 0.987 because its escape printed "passed" lines. Each
    escape is tried; none reaches node's process (the wrong values come back), none matches, nothing raises."""
    lang = language_for("javascript")
    calls = [CallSpec("f(105)", "5"), CallSpec("f(7)", "7 - 2"), CallSpec("f(-1)")]
    for name, escape in ESCAPES_JS.items():
        outcomes = lang.run_calls(sandbox, FORGE_JS % escape, "f", calls, 10.0)
        assert [o.key for o in outcomes] == ["=5", "=-93", "=-101"], name
        # f(105) really is 5 (the expected value), computed by the candidate itself; f(7) is not 5.
        assert [o.matches for o in outcomes] == [True, False, None], name


def test_js_asynchronous_ways_out_never_run(sandbox: RecordingSandbox) -> None:
    """``import()`` rejects with an error of node's own realm (its constructor leads to ``process``), but only in a
    later microtask: the harness ends the process with its last line, before any of them runs."""
    hit = (
        "const hit = (e) => { try { const p = e.constructor.constructor('return process')();"
        " p.stdout.write('forged\\n'); p.exit(0); } catch (x) { /* closed */ } };\n"
    )
    code = hit + (
        "import('fs').then(hit, hit);\nPromise.resolve().then(() => import('fs')).catch(hit);\n"
        "const f = (x) => { import('fs').catch(hit); return x - 100; };"
    )
    outcomes = language_for("javascript").run_calls(sandbox, code, "f", [CallSpec("f(105)", "5"), CallSpec("f(7)")])
    assert [o.key for o in outcomes] == ["=5", "=-93"]


def test_js_expected_values_never_enter_a_sandbox_with_a_candidate(sandbox: RecordingSandbox) -> None:
    lang = language_for("javascript")
    sandbox.runs.clear()
    marker = "x" + secrets.token_hex(8)
    calls = [CallSpec("f(1)", f"'{marker}'"), CallSpec("f(2)", f'"{marker}2"'), CallSpec("f(3)", "{b: [1], a: 2}")]
    code = f"const f = (x) => x === 1 ? '{marker[:4]}' + '{marker[4:]}' : x === 2 ? 'no' : {{a: 2, b: [1]}};"
    outcomes = lang.run_calls(sandbox, code, "f", calls, 10.0)
    assert [o.matches for o in outcomes] == [True, False, True]
    with_candidate = [run for run in sandbox.runs if code in json.dumps(run[0])]
    assert with_candidate, "the candidate ran in the sandbox"
    for files, argv in with_candidate:
        assert marker not in json.dumps(files) + json.dumps(argv)
        assert "{b: [1], a: 2}" not in json.dumps(files)
    # The expected values that are not JSON were evaluated in a sandbox of their own, with no candidate in it.
    assert any(marker in json.dumps(files) and code not in json.dumps(files) for files, _ in sandbox.runs)


@pytest.mark.parametrize("lang_id", ["javascript", "typescript"])
def test_expected_values_of_every_kind_are_compared_in_the_parent(sandbox: RecordingSandbox, lang_id: str) -> None:
    lang = language_for(lang_id)
    if lang_id == "typescript":
        assert esbuild_path() is not None, "esbuild is not installed (scripts/setup.sh installs it)"
    typed = ": any" if lang_id == "typescript" else ""
    right = (
        f"function f(k{typed}){typed} {{ return [0.1 + 0.2, 'a', [1, 2], {{b: 1, a: [true, null]}}, undefined, NaN,"
        " new Set([2, 1]), new Map([[1, 'x']]), -0.5, 10n][k]; }"
    )
    wrong = right.replace("0.1 + 0.2", "0.31").replace("'a'", "'b'").replace("[true, null]", "[1, null]")
    wrong = wrong.replace("undefined, NaN", "null, 0").replace("[2, 1]", "[2, 3]").replace("'x'", "'y'")
    wrong = wrong.replace("-0.5", "0.5").replace("10n", "11n")
    expected = [
        "0.3", "'a'", "[1, 2]", "{a: [true, null], b: 1}", "undefined", "NaN", "new Set([1, 2])",
        "new Map([[1, 'x']])", "-.5", "10n",
    ]  # fmt: skip
    calls = [CallSpec(f"f({k})", want) for k, want in enumerate(expected)]
    assert all(o.matches for o in lang.run_calls(sandbox, right, "f", calls, 10.0))
    got = lang.run_calls(sandbox, wrong, "f", calls, 10.0)
    assert [o.matches for o in got] == [False, False, True] + [False] * 7


def _run_escaped(sandbox: Sandbox, escape_js: str, calls: list[str]) -> tuple[ScriptOutcome, str]:
    """The real harness with ``escape_js`` preloaded: it wraps ``vm.runInContext`` so that it runs in node's own
    realm exactly when the candidate is loaded - a candidate that left the vm context, as strong as one can be."""
    node = node_path()
    assert node is not None
    key = secrets.token_hex(16)
    job = {"code": WRONG_JS, "entry": "f", "calls": calls, "callTimeoutMs": 1000}
    hook = (
        "'use strict'; const vm = require('vm'); const real = vm.runInContext;\n"
        "vm.runInContext = function (code, ctx, opts) {\n"
        "  if (opts && opts.filename === 'candidate.js') { (() => {" + escape_js + "})(); }\n"
        "  return real.apply(this, arguments);\n};\n"
    )
    argv = [node, *js_module._permission_flags(), "--allow-fs-read=escape.js", "--require", "./escape.js"]
    files = {"harness.js": js_module._HARNESS, "job.json": json.dumps(job), "escape.js": hook}
    outcome = sandbox.run_program(files, [*argv, "--stack-size=2048", "harness.js", key], 10.0, memory_mb=2048)
    return outcome, key


def test_js_a_candidate_outside_the_vm_context_cannot_forge_or_crash(sandbox: RecordingSandbox) -> None:
    calls = ["f(105)", "f(7)"]
    # It reads the job (call expressions only: no expected value is in it) and prints "passed" lines in every
    # format it can think of, a line nested 100,000 deep, then ends the process before the harness reports.
    forge = (
        "const fs = require('fs'); const job = JSON.parse(fs.readFileSync('job.json', 'utf8'));"
        "if (JSON.stringify(job).includes('expected')) fs.writeSync(1, 'LEAKED\\n');"
        # node's permission model: the key cannot be read back from the command line, nor memory through the
        # inspector or /proc.
        "for (const [what, get] of [['CMDLINE', () => fs.readFileSync('/proc/self/cmdline')],"
        "  ['MEM', () => fs.openSync('/proc/self/mem', 'r')],"
        "  ['INSPECTOR', () => new (require('inspector').Session)().connect()],"
        "  ['CHILD', () => require('child_process').execFileSync('/bin/true')]]) {"
        "  try { get(); fs.writeSync(1, what + '\\n'); } catch (e) { /* refused */ }"
        "}"
        "for (let i = 0; i < job.calls.length; i++) {"
        "  fs.writeSync(1, JSON.stringify({ ok: true, value: '5', matches: true }) + '\\n');"
        "  fs.writeSync(1, process.argv.slice(2).join(' ') + ' ' + JSON.stringify({ i, ok: true, value: '5' }) + '\\n');"
        "}"
        "fs.writeSync(1, '['.repeat(100000) + '\\n'); process.exit(0);"
    )
    outcome, key = _run_escaped(sandbox, forge, calls)
    assert "LEAKED" not in outcome.stdout
    for reached in ("CMDLINE", "MEM", "INSPECTOR", "CHILD"):
        assert reached not in outcome.stdout
    assert '"matches":true' in outcome.stdout  # the forged lines were printed...
    got = read_harness_output(outcome.stdout, key, len(calls), "Killed:0")
    # ...and not one is believed: its try at a process (refused) names it hostile, before any line is read.
    assert [o.error for o in got] == ["Hostile:tried to start a process"] * 2
    forge_only = forge.replace("['CHILD', () => require('child_process').execFileSync('/bin/true')]", "")
    outcome, key = _run_escaped(sandbox, forge_only, calls)
    got = read_harness_output(outcome.stdout, key, len(calls), "Killed:0")
    assert [o.error for o in got] == ["Forged", "Forged"]
    # It lets the harness report, then prints more (an 'exit' listener, a timer): the harness ends the process
    # with its last line, so nothing follows.
    late = (
        "process.on('exit', () => require('fs').writeSync(1, 'late exit\\n'));"
        "setTimeout(() => require('fs').writeSync(1, 'late timer\\n'), 0);"
    )
    outcome, key = _run_escaped(sandbox, late, calls)
    assert "late" not in outcome.stdout
    assert [o.key for o in read_harness_output(outcome.stdout, key, len(calls), "Killed:0")] == ["=5", "=-93"]


JS_HOSTILE = {
    "require('net').connect(80, '192.0.2.1').on('error', () => {});": "tried to open a network connection",
    "try { process.binding('fs'); } catch (e) {}": "tried to reach node's internal bindings",
    "try { require('fs').writeFileSync('/root/.bashrc', 'x'); } catch (e) {}": (
        "tried to write outside its scratch directory"
    ),
    "try { require('fs').promises.writeFile('/etc/passwd', 'x').catch(() => {}); } catch (e) {}": (
        "tried to write outside its scratch directory"
    ),
    "try { require('child_process').spawn('/bin/sh'); } catch (e) {}": "tried to start a process",
}


@pytest.mark.parametrize("act", sorted(JS_HOSTILE))
def test_js_a_candidate_outside_the_vm_context_that_tries_what_no_function_needs_is_named(
    sandbox: RecordingSandbox, act: str
) -> None:
    """Issue 24, item 7: what it tried (refused by the sandbox and node's permission model anyway) names it
    hostile on every call, with the parent's words for it; writing inside its scratch is no such act."""
    outcome, key = _run_escaped(sandbox, act, ["f(105)", "f(7)"])
    got = read_harness_output(outcome.stdout, key, 2, "Killed:0")
    assert [o.key for o in got] == [f"{HOSTILE_KEY}{JS_HOSTILE[act]}"] * 2, outcome.stdout[-500:]
    outcome, key = _run_escaped(sandbox, "try { require('fs').writeFileSync('/tmp/x', 'x'); } catch (e) {}", ["f(7)"])
    assert [o.key for o in read_harness_output(outcome.stdout, key, 1, "Killed:0")] == ["=-93"]


def test_js_deeply_nested_values_do_not_crash_the_parent(sandbox: RecordingSandbox) -> None:
    """The finding: a value nested deeply raised a RecursionError in ``run_calls`` and ``codeconductor ask`` exited
    with a traceback. A candidate's value is cut at depth 20 by the harness; whatever else reaches the parent is
    read with bounded parsing."""
    lang = language_for("javascript")
    code = (
        "function f(n) { let v = []; for (let i = 0; i < n; i++) v = [v]; return v; }\n"
        "function g() { const o = {}; o.self = o; return o; }"
    )
    calls = [CallSpec("f(100000)", "[]"), CallSpec("g()"), CallSpec("f(1)", "[[]]")]
    outcomes = lang.run_calls(sandbox, code, "f", calls, 10.0)
    assert outcomes[0].ok
    assert "<deep>" in str(outcomes[0].value)
    assert outcomes[0].matches is False
    assert outcomes[1].ok
    assert "<deep>" in str(outcomes[1].value)
    assert outcomes[2].matches is True


# -- Python: the supervisor's state out of the candidate's reach ---------------------------------------------
# For each call it looks for the other calls (any string of the form "f(N)" other than its own argument) through
# every route to the supervisor's frames and heap it can think of, and returns what it found.
FRAME_TRICK = """
import sys, gc, signal

def _strings(obj, depth=0, seen=None):
    seen = set() if seen is None else seen
    if depth > 6 or id(obj) in seen:
        return []
    seen.add(id(obj))
    if isinstance(obj, str):
        return [obj] if obj.startswith("f(") else []
    out = []
    try:
        if isinstance(obj, dict):
            items = list(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            items = list(obj)
        elif hasattr(obj, "__closure__") and obj.__closure__:
            items = [c.cell_contents for c in obj.__closure__]
        else:
            items = []
    except Exception:
        items = []
    for item in items:
        out += _strings(item, depth + 1, seen)
    return out

def _frames(frame):
    out = []
    while frame is not None:
        try:
            out.append(dict(frame.f_locals))
            out.append(frame.f_globals)
        except Exception:
            pass
        frame = frame.f_back
    return out

def _routes():
    found = []
    try:
        found += _frames(sys._getframe(0))
    except Exception:
        pass
    try:
        raise ValueError
    except ValueError as exc:
        try:
            found += _frames(exc.__traceback__.tb_frame)
        except Exception:
            pass
    def gen():
        yield 1
    g = gen()
    next(g)
    try:
        found += _frames(g.gi_frame)
    except Exception:
        pass
    for getter in (lambda: gc.get_objects(), lambda: gc.get_referrers(_routes)):
        try:
            found += getter()
        except Exception:
            pass
    caught = []
    try:
        signal.signal(signal.SIGALRM, lambda s, frame: caught.append(frame))
        signal.setitimer(signal.ITIMER_REAL, 0.001)
        while not caught:
            pass
        found += _frames(caught[0])
    except Exception:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return found

def f(x):
    mine = "f(%d)" % x
    return sorted({s for s in _strings(_routes()) if s != mine})
"""


def test_python_candidate_cannot_reach_the_call_list(sandbox: RecordingSandbox) -> None:
    """The finding: a candidate read the call list from the supervisor's frame (``sys._getframe(1).f_locals``) and
    returned the right values for a function wrong everywhere. The child now holds only the call it is
    evaluating; the frames, tracebacks, generators and the heap are refused."""
    calls = [CallSpec(f"f({i})", str(2 * i)) for i in range(4)]
    outcomes = sandbox.run_calls(FRAME_TRICK, "f", calls, 20.0, call_timeout_s=3.0)
    # It finds nothing, or (its walk of the heap seen) it is named hostile on every call: never the call list.
    assert all(o.key == "=[]" or o.key.startswith(HOSTILE_KEY) for o in outcomes), outcomes
    assert not any(o.matches for o in outcomes)


def test_python_introspection_is_refused_but_ordinary_modules_work(sandbox: RecordingSandbox) -> None:
    code = textwrap.dedent(
        """
        import collections, dataclasses, enum, gc, inspect, json, sys, typing
        P = collections.namedtuple("P", "a b")
        T = typing.NamedTuple("T", [("x", int)])
        class Colour(enum.Enum):
            RED = 1

        def attempt(action):
            try:
                action()
                return "allowed"
            except BaseException as exc:
                return type(exc).__name__

        def gen():
            yield 1

        def probe():
            def tb():
                try:
                    raise KeyError
                except KeyError as exc:
                    return exc.__traceback__.tb_frame
            return [
                attempt(lambda: sys._getframe(1)),
                attempt(lambda: inspect.currentframe()),
                attempt(tb),
                attempt(lambda: gen().gi_frame),
            ]

        def f():
            return [tuple(P(1, 2)), T(3).x, Colour.RED.value, json.dumps({"a": 1})]
        """
    )
    probe, ordinary = sandbox.run_calls(code, "f", ["probe()", "f()"], 10.0)
    assert probe.value == repr(["ValueError", "ValueError", "PermissionError", "PermissionError"])
    assert ordinary.value == repr([(1, 2), 3, 1, '{"a": 1}'])
    # Walking the heap is refused and names the candidate: every call of it fails with the reason.
    heap = "import gc\ndef f():\n    try:\n        gc.get_objects()\n    except BaseException:\n        pass\n    return 1\n"
    outcomes = sandbox.run_calls(heap, "f", ["f()", "f()"], 10.0)
    assert [o.key for o in outcomes] == [f"{HOSTILE_KEY}tried to inspect the interpreter's internals"] * 2


# -- the pytest runner's report ------------------------------------------------------------------------------
ORIGINAL = "def attack():\n    return 'ok'\n"
TEST = "from pkg.target import attack\n\n\ndef test_attack():\n    assert attack() == 'ok'\n"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "target.py").write_text(ORIGINAL)
    (root / "tests").mkdir()
    (root / "tests" / "test_target.py").write_text(TEST)
    return root


def run_candidate(root: Path, sandbox: Sandbox, body: str) -> PytestReport:
    snapshot = ProjectSnapshot.capture(root)
    original = snapshot.files["pkg/target.py"]
    start, end = locate_function(original, "attack")
    code = "def attack():\n" + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ") + "\n"
    files = snapshot.with_file("pkg/target.py", replace_span(original, start, end, code))
    runner = PytestRunner(sandbox, timeout_s=30.0, per_test_timeout_s=5.0, memory_mb=512)
    return runner.run(files, ["tests/test_target.py::test_attack"], root=root)


PASSED = json.dumps(
    {"exit_code": 0, "tests": [{"nodeid": "tests/test_target.py::test_attack", "outcome": "passed"}], "errors": []}
)


@pytest.mark.parametrize(
    "how",
    [
        "then_exit",  # prints forged reports on every fd, then ends the process before the driver reports
        "then_fail",  # prints them, then lets the test fail normally (the driver's report follows)
        "deep",  # prints a report nested 100,000 deep
    ],
)
def test_a_candidate_cannot_print_a_passing_pytest_report(project: Path, sandbox: Sandbox, how: str) -> None:
    lines = [
        '{"codeconductor_pytest": 1, ' + PASSED[1:],  # the old marker
        "codeconductor-pytest-report " + PASSED,  # the current marker, no key
        "codeconductor-pytest-report " + "0" * 32 + " " + PASSED,  # a guessed key
    ]
    if how == "deep":
        lines = ["codeconductor-pytest-report " + "0" * 32 + " " + "[" * 100000]
    body = f"""
    import os
    text = ("\\n" + "\\n".join({lines!r}) + "\\n").encode()
    for fd in range(1, 64):
        try:
            os.write(fd, text)
        except OSError:
            pass
    {"os._exit(0)" if how == "then_exit" else "return 'wrong'"}
    """
    report = run_candidate(project, sandbox, body)
    assert not report.ok
    assert report.passed == 0
    if how != "then_exit":  # the driver's own report also came: the forged ones make the run untrusted
        assert "not the driver's" in report.failure_text()


def test_the_honest_candidate_still_passes(project: Path, sandbox: Sandbox) -> None:
    report = run_candidate(project, sandbox, "print('codeconductor is fine')\nreturn 'ok'")
    assert report.ok, report.failure_text()
