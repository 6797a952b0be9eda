"""JavaScript and TypeScript candidates run by the language layer under node in the real sandbox
(``Sandbox.run_program``): a buggy function with a correct, a wrong, a syntactically broken and a prose answer,
told apart by what each does on the examples its comment gives and on calls varied from them."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.errors import SandboxError
from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.languages.javascript import esbuild_path, node_path
from codeconductor.ensemble.verify.sandbox import CallSpec, Sandbox

pytestmark = pytest.mark.skipif(node_path() is None, reason="node is not installed")

BUGGY_JS = """/* Return the largest element of the list.
  >>> maxElement([1, 2, 3])
  3
  >>> maxElement([5, 3, -5, 2, -3, 3, 9, 0, 123, 1, -10])
  123
  */
const maxElement = (l) => {
  let best = l[0];
  for (const x of l) {
    if (x < best) best = x;
  }
  return best;
}
"""
ANSWERS_JS = {
    "correct": "Here is the fix:\n```javascript\nconst maxElement = (l) => {\n  let best = l[0];\n"
    "  for (const x of l) {\n    if (x > best) best = x;\n  }\n  return best;\n}\nconsole.log(maxElement([1, 2]));\n"
    "```\nThe comparison was reversed.",
    # Right on both examples, wrong on other lists (the last element, not the largest).
    "wrong": "```js\nconst maxElement = (l) => l.length === 3 ? 3 : 123;\n```",
    "broken": "```javascript\nconst maxElement = (l) => {\n  let best = l[0]\n  for (const x of l) {\n"
    "    if (x > best best = x;\n  }\n  return best;\n}\n```",
    "prose": "The bug is that the comparison is reversed: it should keep the larger value, not the smaller one.",
}
BUGGY_TS = BUGGY_JS.replace("(l) =>", "(l: number[]): number =>").replace("let best", "let best: number")
ANSWERS_TS = {
    "correct": ANSWERS_JS["correct"]
    .replace("```javascript", "```typescript")
    .replace("(l) =>", "(l: number[]): number =>"),
    "wrong": "```ts\nconst maxElement = (l: number[]): number => l.length === 3 ? 3 : 123;\n```",
    "broken": ANSWERS_JS["broken"].replace("```javascript", "```ts").replace("(l) =>", "(l: number[]) =>"),
    "prose": ANSWERS_JS["prose"],
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox()
    box.start()
    yield box
    box.close()


@pytest.mark.parametrize(
    ("lang_id", "buggy", "answers"), [("javascript", BUGGY_JS, ANSWERS_JS), ("typescript", BUGGY_TS, ANSWERS_TS)]
)
def test_execution_tells_the_correct_answer_apart(
    sandbox: Sandbox, lang_id: str, buggy: str, answers: dict[str, str]
) -> None:
    lang = language_for(lang_id)
    if not lang.can_execute:
        pytest.skip(lang.runtime_note)
    entry = lang.entry_point(buggy)
    assert entry == "maxElement"
    examples = lang.examples(buggy, entry)
    assert [e.expected for e in examples] == ["3", "123"]
    extra = lang.generate_calls(buggy, entry, examples)
    calls = [CallSpec(e.call, e.expected) for e in examples] + [CallSpec(c) for c in extra]
    assert len(extra) >= 4

    extracted = {name: lang.extract(text, context=buggy) for name, text in answers.items()}
    assert extracted["prose"].empty  # prose is never code
    assert not extracted["broken"].parseable
    assert not extracted["broken"].empty
    assert extracted["correct"].parseable
    assert "console.log" not in extracted["correct"].code

    def run(code: str) -> list[str]:
        return [o.key for o in lang.run_calls(sandbox, code, entry, calls, 10.0, call_timeout_s=1.0)]

    def passes(code: str) -> list[bool | None]:
        return [o.matches for o in lang.run_calls(sandbox, code, entry, calls[: len(examples)], 10.0)]

    original, correct, wrong = run(buggy), run(extracted["correct"].code), run(extracted["wrong"].code)
    broken = run(extracted["broken"].code)
    assert passes(buggy) == [False, False]  # the user's code is wrong on its own examples
    assert passes(extracted["correct"].code) == [True, True]
    assert passes(extracted["wrong"].code) == [True, True]  # the examples alone cannot tell these apart...
    assert correct != wrong  # ...the varied calls do
    assert correct[:2] == ["=3", "=123"]
    assert original[:2] == ["=1", "=-10"]
    assert set(broken) == {"!load:SyntaxError"}
    # The correct answer returns the largest element on every varied call.
    for spec, key in zip(calls, correct, strict=True):
        assert key.startswith("="), (spec.expr, key)


def test_harness_contains_candidates(sandbox: Sandbox) -> None:
    js = language_for("javascript")
    calls = [CallSpec("f(1)", "2"), CallSpec("f(-1)"), CallSpec("g()"), CallSpec("f({b: 1, a: [0.1 + 0.2]})")]
    code = (
        'const f = (x) => { console.log(\'{"ok": true, "value": "forged"}\');'
        " if (x < 0) throw new RangeError('neg'); return typeof x === 'object' ? x : x + 1; };\n"
        "const g = () => { while (true) {} };"
    )
    outcomes = js.run_calls(sandbox, code, "f", calls, 10.0, call_timeout_s=0.5)
    assert [o.key for o in outcomes] == ["=2", "!RangeError", "!Timeout", '={"a":[0.3],"b":1}']
    assert outcomes[0].matches is True
    assert outcomes[1].matches is None
    # A candidate that is not even defined, and one that never finishes loading.
    assert {o.key for o in js.run_calls(sandbox, "const h = 1;", "f", calls[:2])} == {"!load:ReferenceError"}
    assert {o.key for o in js.run_calls(sandbox, "while (true) {}", "f", calls[:1], 5.0, call_timeout_s=0.3)} == {
        "!load:Timeout"
    }


def test_run_program_keeps_node_off_the_network_and_the_disk(sandbox: Sandbox) -> None:
    node = node_path()
    assert node is not None
    with socket.socket() as listener:  # reachable from here: the candidate must not reach it
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        script = (
            "const net = require('net'); const fs = require('fs');\n"
            "let wrote = 'no'; try { fs.writeFileSync('/tmp/codeconductor-escape', 'x'); wrote = 'yes'; } catch (e) {}\n"
            "fs.writeFileSync('inside.txt', 'ok');\n"
            f"const s = net.connect({port}, '127.0.0.1');\n"
            "s.on('error', (e) => { console.log(wrote, e.code); });\n"
            "s.on('connect', () => { console.log(wrote, 'connected'); s.destroy(); });\n"
        )
        out = sandbox.run_program({"probe.js": script}, [node, "probe.js"], 10.0, memory_mb=2048)
    assert out.ok, out.stderr
    wrote, network = out.stdout.split()
    # Under bubblewrap /tmp is the sandbox's own tmpfs (the write lands there and vanishes with it); in the
    # fallback it is refused. Either way nothing reaches the host's /tmp.
    assert wrote == "no" or sandbox.containment == "bubblewrap"
    assert not Path("/tmp/codeconductor-escape").exists()
    assert network != "connected"
    with pytest.raises(SandboxError):
        sandbox.run_program({}, ["node", "x.js"])  # argv[0] must be an absolute path


def test_typescript_needs_esbuild_or_says_why() -> None:
    ts = language_for("typescript")
    assert ts.can_execute == (esbuild_path() is not None)
    assert ts.runtime_note == ("" if ts.can_execute else ts.runtime_note)
    assert language_for("go").runtime_note
    assert not language_for("rust").can_execute
    assert "not executed" in language_for("rust").runtime_note


# Issue 26's case: the examples live in the comment just above the function, and only the function is selected.
SUM_EVEN_FILE = """const LIMIT = 100;

// sumEven([1, 2, 3, 4]) === 6
// sumEven([5, 7]) === 0
function sumEven(xs) {
  let s = 0;
  for (const x of xs) {
    if (x % 2 === 1) s += x;
  }
  return s;
}

module.exports = { sumEven };
"""
SUM_EVEN_ANSWERS = {
    "m-a": "```js\nfunction sumEven(xs) {\n  let s = 0;\n  for (const x of xs) {\n    if (x % 2 === 0) s += 1;\n"
    "  }\n  return s;\n}\n```",  # wrong fix: counts the even numbers
    "m-b": "```js\nfunction sumEven(xs) {\n  let s = 0\n  for (const x of xs {\n  return s;\n}\n```",  # syntax error
    "m-c": "```js\nfunction sumEven(xs) {\n  let s = 0;\n  for (const x of xs) {\n    if (x % 2 === 0) s += x;\n"
    "  }\n  return s;\n}\n```",  # the right fix
    "m-d": "The loop adds the odd numbers; it should add the even ones.",
}


@pytest.mark.parametrize("with_comment", [False, True])
async def test_the_comment_above_a_selected_function_gives_its_examples(sandbox: Sandbox, with_comment: bool) -> None:
    """Selecting only the function's lines (``with_comment`` False) or the comment too: the same examples run
    either way, under real node in the sandbox, and they pick the right fix out of the four answers."""
    from codeconductor.ensemble.consensus import decide, probe_for
    from codeconductor.ensemble.context import build_context
    from codeconductor.ensemble.types import AnswerStatus, ModelAnswer, ModelInfo, ProviderKind, Request, TaskKind
    from codeconductor.ensemble.verify.observe import SandboxExecutor

    start = 2 if with_comment else 4
    context = build_context(SUM_EVEN_FILE, start, 11, language="javascript", path="/w/sum.js")
    assert context.selection.startswith("//" if with_comment else "function sumEven")
    request = Request(task=TaskKind.FIX, context=context)
    probe = probe_for(request)
    assert probe is not None
    assert [(e.call, e.expected) for e in probe.examples] == [("sumEven([1, 2, 3, 4])", "6"), ("sumEven([5, 7])", "0")]
    answers = [
        ModelAnswer(
            model=ModelInfo(name=name, provider=ProviderKind.OPENAI, endpoint="http://127.0.0.1:9"),
            status=AnswerStatus.ANSWERED,
            text=text,
        )
        for name, text in SUM_EVEN_ANSWERS.items()
    ]
    result = await decide(request, answers, executor=SandboxExecutor(sandbox))
    assert result.executed
    assert result.unchecked is None
    assert result.offers_edit
    assert result.pick_models == ["m-c@http://127.0.0.1:9"]
    assert "s += x" in result.pick
    assert result.agree == 1  # the wrong fix is not counted with it
    assert "checked against 2 docstring example(s)" in result.notes
