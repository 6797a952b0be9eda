"""JavaScript projects tested with Jest and Vitest (issue 26), the calls their tests make replayed on every answer,
and JavaScript answers that try what no code edit needs named hostile (issue 24, item 7).

The real sandbox, real node, and the real jest and vitest from npm (``tools/node``, installed by
``scripts/setup.sh``): each test makes a small project under tmp_path (two modules importing each other, a
dependency in ``node_modules``, a test file) whose ``node_modules`` links the runner. Without them these tests
fail, they do not skip."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.consensus.behaviour import HOSTILE_KEY
from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.languages.javascript import JAVASCRIPT, node_path, read_harness_output
from codeconductor.ensemble.project import project_for
from codeconductor.ensemble.types import (
    AnswerStatus,
    ConsensusResult,
    ModelAnswer,
    ModelInfo,
    ProviderKind,
    Request,
    TaskKind,
)
from codeconductor.ensemble.verify.js_project import JsProjectRunner, find_runner
from codeconductor.ensemble.verify.observe import SandboxExecutor

pytestmark = pytest.mark.timeout(600)

TOOLS = Path(__file__).resolve().parents[2] / "tools" / "node" / "node_modules"
TINY_ROUND = "exports.round2 = (x) => Math.round(x * 100) / 100;\n"

CJS_TOTAL = """const { round2 } = require("tiny-round");
const { scale } = require("./util");

function total(items) {
  let sum = 0;
  for (const [price, qty] of items) sum += scale(price) * qty;
  return round2(sum);
}

module.exports = { total };
"""
JEST_TEST = """const { total } = require("../lib/total");

describe("total", () => {
  test("sums", () => expect(total([[2, 3], [1, 1]])).toBe(10.5));
  test("rounds", () => expect(total([[0.01, 1]])).toBe(0.02));
});
"""
# A test that only checks the sign: a rewrite that drops the rounding passes it by luck.
JEST_WEAK_TEST = """const { total } = require("../lib/total");

test("is positive", () => expect(total([[0.01, 1], [1, 2]])).toBeGreaterThan(0));
"""
CJS_RIGHT = """function total(items) {
  return round2(items.reduce((sum, [price, qty]) => sum + scale(price) * qty, 0));
}
"""
CJS_UNROUNDED = """function total(items) {
  return items.reduce((sum, [price, qty]) => sum + scale(price) * qty, 0);
}
"""
CJS_NO_QTY = """function total(items) {
  let sum = 0;
  for (const [price] of items) sum += scale(price);
  return round2(sum);
}
"""

TS_SUM = """import { round2 } from "tiny-round";
import { isEven } from "./util";

export function sumEven(xs: number[]): number {
  let total: number = 0;
  for (const x of xs) {
    if (isEven(x)) total += x;
  }
  return round2(total);
}
"""
VITEST_TEST = """import { describe, expect, test } from "vitest";
import { sumEven } from "../src/sum";

describe("sumEven", () => {
  test("adds the even numbers", () => expect(sumEven([1, 2, 3, 4])).toBe(6));
  test("negative", () => expect(sumEven([-2, 3])).toBe(-2));
});
"""
TS_RIGHT = """export function sumEven(xs: number[]): number {
  return round2(xs.filter(isEven).reduce((a: number, b: number) => a + b, 0));
}
"""
TS_POSITIVE_ONLY = """export function sumEven(xs: number[]): number {
  return round2(xs.filter((x: number) => x > 0 && isEven(x)).reduce((a: number, b: number) => a + b, 0));
}
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def _link_runner(root: Path, name: str) -> None:
    cli = TOOLS / name / ("bin/jest.js" if name == "jest" else "vitest.mjs")
    assert cli.is_file(), f"{name} is not installed in tools/node (scripts/setup.sh installs it)"
    (root / "node_modules").mkdir(parents=True, exist_ok=True)
    (root / "node_modules" / name).symlink_to(TOOLS / name)


def make_jest(root: Path, module: str = CJS_TOTAL, test: str = JEST_TEST) -> Path:
    _write(
        root,
        {
            "package.json": json.dumps({"name": "till", "scripts": {"test": "jest"}, "devDependencies": {"jest": "*"}}),
            "lib/total.js": module,
            "lib/util.js": "exports.scale = (price) => price * 1.5;\n",
            "node_modules/tiny-round/package.json": json.dumps({"name": "tiny-round", "main": "index.js"}),
            "node_modules/tiny-round/index.js": TINY_ROUND,
            "test/total.test.js": test,
        },
    )
    _link_runner(root, "jest")
    return root / "lib" / "total.js"


def make_vitest(root: Path, module: str = TS_SUM) -> Path:
    _write(
        root,
        {
            "package.json": json.dumps({"name": "shop", "type": "module", "scripts": {"test": "vitest run"}}),
            "src/sum.ts": module,
            "src/util.ts": "export const isEven = (x: number): boolean => x % 2 === 0;\n",
            "node_modules/tiny-round/package.json": json.dumps({"name": "tiny-round", "main": "index.js"}),
            "node_modules/tiny-round/index.js": TINY_ROUND,
            "test/sum.test.ts": VITEST_TEST,
        },
    )
    _link_runner(root, "vitest")
    return root / "src" / "sum.ts"


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    assert node_path() is not None, "node is not installed (scripts/setup.sh installs it)"
    runner = SandboxExecutor()
    assert runner.sandbox.containment == "bubblewrap", "a project's tests run only in the bubblewrap sandbox"
    yield runner
    runner.close()


def _request(module: Path, name: str, task: TaskKind) -> Request:
    text = module.read_text(encoding="utf-8")
    language = "typescript" if module.suffix == ".ts" else "javascript"
    found = language_for(language).find_function(text, name)
    assert found is not None
    context = build_context(text, found.start_line, found.end_line, path=str(module), language=language)
    context.project = project_for(module, text)
    assert context.project is not None
    return Request(task=task, context=context)


def _decide(request: Request, *codes: str, executor: SandboxExecutor) -> ConsensusResult:
    fence = request.context.project.language if request.context.project else "javascript"
    answers = [
        ModelAnswer(
            model=ModelInfo(name=f"m{i}", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434"),
            status=AnswerStatus.ANSWERED,
            text=f"```{fence}\n{code}```",
        )
        for i, code in enumerate(codes)
    ]
    return asyncio.run(decide(request, answers, executor=executor))


def _rejected(result: ConsensusResult) -> list[str]:
    return [c.rejected for c in result.clusters if c.rejected]


def test_the_runner_is_found_from_package_json(tmp_path: Path) -> None:
    jest = tmp_path / "jest"
    make_jest(jest)
    found = find_runner(jest)
    assert found is not None
    assert (found.name, found.cli) == ("jest", str((TOOLS / "jest" / "bin" / "jest.js").resolve()))
    assert found.modules == str(TOOLS.resolve())
    vitest = tmp_path / "vitest"
    make_vitest(vitest)
    assert getattr(find_runner(vitest), "name", None) == "vitest"
    # Named by a config file only; not installed: nothing to run.
    bare = tmp_path / "bare"
    _write(bare, {"package.json": "{}", "vitest.config.ts": "export default {};\n"})
    assert find_runner(bare) is None
    _link_runner(bare, "vitest")
    assert getattr(find_runner(bare), "name", None) == "vitest"
    _write(tmp_path / "mocha", {"package.json": json.dumps({"scripts": {"test": "mocha"}})})
    assert find_runner(tmp_path / "mocha") is None


def test_jest_improve_keeps_the_tests_passing(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_jest(tmp_path / "till")
    result = _decide(_request(module, "total", TaskKind.IMPROVE), CJS_UNROUNDED, CJS_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "round2(items.reduce" in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0], rejected
    assert any(n.startswith("javascript: executed with jest on 1 test file") for n in result.notes), result.notes
    assert any("2 of your tests (2 passing" in n for n in result.notes), result.notes


def test_jest_fix_makes_a_failing_test_pass(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_jest(tmp_path / "till", CJS_TOTAL.replace("scale(price) * qty", "scale(price)"))
    result = _decide(_request(module, "total", TaskKind.FIX), CJS_NO_QTY, CJS_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "* qty" in result.pick
    assert result.pick_models == ["m1@http://127.0.0.1:11434"], result.pick_models
    rejected = _rejected(result)
    assert rejected, rejected


def test_recorded_calls_refuse_a_rewrite_that_passes_the_tests_by_luck(
    tmp_path: Path, executor: SandboxExecutor
) -> None:
    module = make_jest(tmp_path / "till", test=JEST_WEAK_TEST)
    request = _request(module, "total", TaskKind.IMPROVE)
    result = _decide(request, CJS_UNROUNDED, CJS_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "round2(items.reduce" in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    # It passes the weak test; the value it returns on the call that test made differs: refused for that.
    assert "does something else than your code on 1 of 1 inputs" in rejected[0], rejected
    assert any("1 calls recorded from them" in n for n in result.notes), result.notes


def test_vitest_typescript_es_modules_with_a_dependency(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_vitest(tmp_path / "shop")
    result = _decide(_request(module, "sumEven", TaskKind.IMPROVE), TS_POSITIVE_ONLY, TS_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "x > 0" not in result.pick
    assert result.pick.startswith("export function sumEven(xs: number[])"), result.pick
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0] or "does something else" in rejected[0], rejected
    assert any(n.startswith("typescript: executed with vitest") for n in result.notes), result.notes
    assert any("2 calls recorded from them" in n for n in result.notes), result.notes


CJS_CLASS = """const { round2 } = require("tiny-round");
const { scale } = require("./util");

class Till {
  total(items) {
    let sum = 0;
    for (const [price, qty] of items) sum += scale(price) * qty;
    return round2(sum);
  }
}

module.exports = { Till };
"""
JEST_CLASS_TEST = """const { Till } = require("../lib/total");

test("sums", () => expect(new Till().total([[2, 3], [1, 1]])).toBe(10.5));
test("rounds", () => expect(new Till().total([[0.01, 1]])).toBe(0.02));
"""


ESM_SUM = """import { round2 } from "tiny-round";
import { isEven } from "./util.js";

export function sumEven(xs) {
  let total = 0;
  for (const x of xs) {
    if (isEven(x)) total += x;
  }
  return round2(total);
}
"""
JEST_ESM_TEST = """import { sumEven } from "../src/sum.js";

test("adds the even numbers", () => expect(sumEven([1, 2, 3, 4])).toBe(6));
test("negative", () => expect(sumEven([-2, 3])).toBe(-2));
"""


def test_jest_with_native_es_modules(tmp_path: Path, executor: SandboxExecutor) -> None:
    """``scripts.test`` runs Jest with ``--experimental-vm-modules`` (no transform): so does the sandbox."""
    root = tmp_path / "shop"
    script = "NODE_OPTIONS=--experimental-vm-modules jest"
    _write(
        root,
        {
            "package.json": json.dumps({"name": "shop", "type": "module", "scripts": {"test": script}}),
            "jest.config.json": json.dumps({"transform": {}}),
            "src/sum.js": ESM_SUM,
            "src/util.js": "export const isEven = (x) => x % 2 === 0;\n",
            "node_modules/tiny-round/package.json": json.dumps({"name": "tiny-round", "main": "index.js"}),
            "node_modules/tiny-round/index.js": TINY_ROUND,
            "test/sum.test.js": JEST_ESM_TEST,
        },
    )
    _link_runner(root, "jest")
    assert getattr(find_runner(root), "esm", None) is True
    right = "export function sumEven(xs) {\n  return round2(xs.filter(isEven).reduce((a, b) => a + b, 0));\n}\n"
    positive = right.replace("filter(isEven)", "filter((x) => x > 0 && isEven(x))")
    result = _decide(_request(root / "src" / "sum.js", "sumEven", TaskKind.IMPROVE), positive, right, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "x > 0" not in result.pick
    assert len(_rejected(result)) == 1, _rejected(result)
    assert any("2 of your tests (2 passing" in n for n in result.notes), result.notes
    assert any("2 calls recorded from them" in n for n in result.notes), result.notes


def test_jest_a_method_of_a_class(tmp_path: Path, executor: SandboxExecutor) -> None:
    """A method selected in its class: the answers are methods (not code on their own), put in its place."""
    module = make_jest(tmp_path / "till", CJS_CLASS, JEST_CLASS_TEST)
    method = "  " + CJS_RIGHT.replace("function total", "total").replace("\n", "\n  ").rstrip() + "\n"
    unrounded = "  " + CJS_UNROUNDED.replace("function total", "total").replace("\n", "\n  ").rstrip() + "\n"
    result = _decide(_request(module, "total", TaskKind.IMPROVE), unrounded, method, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes, _rejected(result))
    assert "round2(items.reduce" in result.pick
    assert result.pick_models == ["m1@http://127.0.0.1:11434"], result.pick_models
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0], rejected


def test_an_answer_that_never_returns_is_stopped_not_a_load_error(tmp_path: Path) -> None:
    module = make_jest(tmp_path / "till")
    request = _request(module, "total", TaskKind.IMPROVE)
    runner = JsProjectRunner(runner_s=8.0)
    try:
        probe = asyncio.run(runner.probe(request, None))
        assert probe is not None
        assert probe.project is not None
        assert probe.project.recorded == 2
        looping = "function total(items) {\n  while (true) {}\n}\n"
        behaviour = asyncio.run(runner.observe(looping, probe))
        assert behaviour.keys == ("!Timeout", "!Timeout"), behaviour
        assert behaviour.tests == ()
        original = asyncio.run(runner.observe(request.context.selection, probe))
        assert [o for _, o in original.tests] == ["passed", "passed"], original
        assert original.keys == ("=[10.5,[[[2,3],[1,1]]]]", "=[0.02,[[[0.01,1]]]]"), original
    finally:
        runner.close()


def test_jest_verdicts_survive_a_failure_that_holds_a_bigint(tmp_path: Path) -> None:
    """Jest's own ``--json`` report cannot be written when a failing assertion holds a BigInt (found on hashids):
    every verdict was lost. The reporter API gives one line per test whatever the values."""
    bigint = JEST_TEST + 'test("big", () => expect(BigInt(total([[2, 1]]))).toBe(4n));\n'
    module = make_jest(tmp_path / "till", test=bigint)
    request = _request(module, "total", TaskKind.FIX)
    runner = JsProjectRunner()
    try:
        probe = asyncio.run(runner.probe(request, None))
        assert probe is not None
        original = asyncio.run(runner.observe(request.context.selection, probe))
        assert dict(original.tests) == {
            "test/total.test.js::total > sums": "passed",
            "test/total.test.js::total > rounds": "passed",
            "test/total.test.js::big": "failed",
        }, original
    finally:
        runner.close()


# -- hostile answers (issue 24, item 7) -------------------------------------------------------------------------
CJS_CONNECTS = """function total(items) {
  require("net").connect(80, "192.0.2.1").on("error", () => {});
  return round2(items.reduce((sum, [price, qty]) => sum + scale(price) * qty, 0));
}
"""
CJS_WRITES_HOME = """function total(items) {
  try { require("fs").writeFileSync("/etc/cc-owned", "x"); } catch (e) {}
  return round2(items.reduce((sum, [price, qty]) => sum + scale(price) * qty, 0));
}
"""
CJS_UNSHARES = """function total(items) {
  require("child_process").spawnSync("unshare", ["-U", "true"]);
  return round2(items.reduce((sum, [price, qty]) => sum + scale(price) * qty, 0));
}
"""


def test_a_project_answer_that_connects_writes_or_unshares_is_named_hostile(
    tmp_path: Path, executor: SandboxExecutor
) -> None:
    module = make_jest(tmp_path / "till")
    request = _request(module, "total", TaskKind.IMPROVE)
    result = _decide(request, CJS_CONNECTS, CJS_WRITES_HOME, CJS_UNSHARES, CJS_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert result.pick_models == ["m3@http://127.0.0.1:11434"], result.pick_models
    rejected = sorted(_rejected(result))
    assert len(rejected) == 3, rejected
    assert all(r.startswith("unsafe: ") for r in rejected), rejected  # the history counts these as failed
    joined = " | ".join(rejected)
    assert "tried to open a network connection" in joined, rejected
    assert "tried to write outside its scratch directory" in joined, rejected
    assert "made a system call no code edit needs" in joined, rejected


def test_a_node_test_project_answer_that_connects_is_named_hostile(tmp_path: Path, executor: SandboxExecutor) -> None:
    from tests.integration.test_js_project import ESM_RIGHT, make_esm

    module = make_esm(tmp_path / "shop")
    connects = ESM_RIGHT.replace(
        "  return",
        '  globalThis.process.getBuiltinModule("net").connect(443, "192.0.2.1").on("error", () => {});\n  return',
    )
    result = _decide(_request(module, "sumEven", TaskKind.IMPROVE), connects, ESM_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "connect" not in result.pick
    assert _rejected(result) == [
        "unsafe: tried to open a network connection (the sandbox stopped it; no code edit needs that)"
    ]


def test_a_standalone_answer_cannot_reach_what_a_project_answer_is_named_for(executor: SandboxExecutor) -> None:
    """Outside a project the answer runs in the harness's vm context: ``require`` and ``process`` do not exist
    there (every known way out is closed: tests/integration/test_verdicts_hostile.py), so trying them is an
    ordinary error, not an act the sandbox had to stop; the harness's own hooks (a ``{hostile}`` line, read by
    :func:`read_harness_output`) stand behind that."""
    code = "function f(x) { require('net').connect(80, '192.0.2.1'); return x; }"
    outcomes = JAVASCRIPT.run_calls(executor.sandbox, code, "f", ["f(1)"], 10.0)
    assert [o.key for o in outcomes] == ["!ReferenceError"]
    key = "k" * 32
    stdout = f'{key} {{"hostile": "network"}}\n{key} {{"i": 0, "ok": true, "value": "1"}}\n'
    assert [o.key for o in read_harness_output(stdout, key, 2, "Lost")] == [
        f"{HOSTILE_KEY}tried to open a network connection"
    ] * 2
    # A code the parent does not know reads as the general reason: the candidate's words never reach the user.
    stdout = f'{key} {{"hostile": "you were hacked"}}\n'
    assert [o.key for o in read_harness_output(stdout, key, 1, "Lost")] == [
        f"{HOSTILE_KEY}tried something no code edit needs"
    ]
