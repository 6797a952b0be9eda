"""JavaScript answers run inside the user's project (issue 26): the real sandbox and real node, projects made
under tmp_path with two modules importing each other, a dependency in ``node_modules``, and ``node --test``
test files; one project of ES modules, one of CommonJS. The project's own tests on the user's code are the
oracle: improve keeps every passing test passing, fix makes a failing one pass and breaks none. Without node
(installed by ``scripts/setup.sh``) these tests fail, they do not skip."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from codeconductor.ensemble.consensus import decide
from codeconductor.ensemble.context import build_context
from codeconductor.ensemble.languages import language_for
from codeconductor.ensemble.languages.javascript import node_path
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
from codeconductor.ensemble.verify._project_base import run_harness
from codeconductor.ensemble.verify.js_project import JsProjectRunner, read_tap
from codeconductor.ensemble.verify.observe import SandboxExecutor
from tests.support.fault_server import FakeModel, FaultServer

TINY_ROUND = "exports.round2 = (x) => Math.round(x * 100) / 100;\n"
ESM_SUM = """import { isEven } from "./util.js";
import { round2 } from "tiny-round";

// sumEven([1, 2, 3, 4]) === 6
export function sumEven(xs) {
  let total = 0;
  for (const x of xs) {
    if (isEven(x)) total += x;
  }
  return round2(total);
}
"""
ESM_UTIL = "export const isEven = (x) => x % 2 === 0;\n"
ESM_TEST = """import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { sumEven } from "../src/sum.js";

describe("sumEven", () => {
  test("adds the even numbers", () => assert.equal(sumEven([1, 2, 3, 4]), 6));
  test("empty", () => assert.equal(sumEven([]), 0));
  test("negative", () => assert.equal(sumEven([-2, 3]), -2));
});
"""
ESM_RIGHT = """export function sumEven(xs) {
  return round2(xs.filter(isEven).reduce((a, b) => a + b, 0));
}
"""
ESM_MUTANT = """export function sumEven(xs) {
  return round2(xs.filter((x) => x > 0 && isEven(x)).reduce((a, b) => a + b, 0));
}
"""
ESM_WRONG_FIX = """export function sumEven(xs) {
  return round2(xs.reduce((a, b) => a + b, 0));
}
"""
# Ends the test process with status 0 before the failing test can report: must not read as a pass.
ESM_EXITS = """export function sumEven(xs) {
  if (xs.length > 1) process.exit(0);
  return 0;
}
"""
# Wrong (sums nothing) and, the first time it runs, forges the job's report: it reads every file of the scratch
# for the job's nonce (a shell script held it), writes "passed" lines for each test under every nonce it found to
# the job's stdout (a file in the scratch; the runner's fd 1) and kills the runner (the script, or a harness),
# then exits 0.
ESM_FORGER = """export function sumEven(xs) {
  const fs = process.getBuiltinModule("fs");
  if (!globalThis.__ccForged) {
    globalThis.__ccForged = true;
    let text = "";
    for (const name of fs.readdirSync("/tmp")) {
      try { text += fs.readFileSync("/tmp/" + name, "utf8"); } catch {}
    }
    const me = String(process.pid);
    const pids = fs.readdirSync("/proc").filter((p) => /^\\d+$/.test(p) && p !== me);
    const runners = [];
    for (const pid of pids) {
      try {
        const line = fs.readFileSync("/proc/" + pid + "/cmdline", "utf8");
        text += line;
        if (/run\\.sh|harness/.test(line)) runners.push(pid);
      } catch {}
    }
    const nonces = [...new Set(text.match(/\\bcc[0-9a-f]{16}\\b/g) || [])];
    const tests = ["adds the even numbers", "empty", "negative"];
    let lines = "";
    for (const n of nonces) {
      lines += n + " rc 0\\n" + n + " tap 0 # Subtest: sumEven\\n";
      tests.forEach((t, i) => { lines += n + " tap 0     ok " + (i + 1) + " - " + t + "\\n"; });
      lines += n + " tap 0 ok 1 - sumEven\\n" + n + " done\\n";
    }
    for (const out of ["/tmp/.stdout", ...runners.map((pid) => "/proc/" + pid + "/fd/1")]) {
      try { fs.appendFileSync(out, lines); } catch {}
    }
    for (const pid of runners) {
      try { process.kill(Number(pid), "SIGKILL"); } catch {}
    }
    process.exit(0);
  }
  return -1;
}
"""
CJS_TOTAL = """const { round2 } = require("tiny-round");
const { scale } = require("./util");

function total(items) {
  let sum = 0;
  for (const [price, qty] of items) sum += scale(price) * qty;
  return round2(sum);
}

module.exports = { total };
"""
CJS_UTIL = "exports.scale = (price) => price * 1.5;\n"
CJS_TEST = """const test = require("node:test");
const assert = require("node:assert");
const { total } = require("../lib/total");

test("total", () => assert.strictEqual(total([[2, 3], [1, 1]]), 10.5));
test("rounds", () => assert.strictEqual(total([[0.01, 1]]), 0.02));
"""
CJS_RIGHT = """function total(items) {
  return round2(items.reduce((sum, [price, qty]) => sum + scale(price) * qty, 0));
}
"""
CJS_MUTANT = """function total(items) {
  return items.reduce((sum, [price, qty]) => sum + scale(price) * qty, 0);
}
"""


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")


def make_esm(root: Path, sum_js: str = ESM_SUM, test: str | None = ESM_TEST) -> Path:
    files = {
        "package.json": json.dumps({"name": "shop", "type": "module", "scripts": {"test": "node --test"}}),
        "src/sum.js": sum_js,
        "src/util.js": ESM_UTIL,
        "node_modules/tiny-round/package.json": json.dumps({"name": "tiny-round", "main": "index.js"}),
        "node_modules/tiny-round/index.js": TINY_ROUND,
    }
    if test is not None:
        files["test/sum.test.js"] = test
    _write(root, files)
    return root / "src" / "sum.js"


def make_cjs(root: Path) -> Path:
    _write(
        root,
        {
            "package.json": json.dumps({"name": "till", "scripts": {"test": "node --test"}}),
            "lib/total.js": CJS_TOTAL,
            "lib/util.js": CJS_UTIL,
            "node_modules/tiny-round/package.json": json.dumps({"name": "tiny-round", "main": "index.js"}),
            "node_modules/tiny-round/index.js": TINY_ROUND,
            "test/total.test.js": CJS_TEST,
        },
    )
    return root / "lib" / "total.js"


@pytest.fixture(scope="module")
def executor() -> Iterator[SandboxExecutor]:
    assert node_path() is not None, "node is not installed (scripts/setup.sh installs it)"
    runner = SandboxExecutor()
    assert runner.sandbox.containment == "bubblewrap", "a project's tests run only in the bubblewrap sandbox"
    yield runner
    runner.close()


def _request(module: Path, name: str, task: TaskKind) -> Request:
    text = module.read_text(encoding="utf-8")
    found = language_for("javascript").find_function(text, name)
    assert found is not None
    context = build_context(text, found.start_line, found.end_line, path=str(module), language="javascript")
    context.project = project_for(module, text)
    assert context.project is not None
    return Request(task=task, context=context)


def _decide(request: Request, *codes: str, executor: SandboxExecutor) -> ConsensusResult:
    answers = [
        ModelAnswer(
            model=ModelInfo(name=f"m{i}", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434"),
            status=AnswerStatus.ANSWERED,
            text=f"```javascript\n{code}```",
        )
        for i, code in enumerate(codes)
    ]
    return asyncio.run(decide(request, answers, executor=executor))


def _rejected(result: ConsensusResult) -> list[str]:
    return [c.rejected for c in result.clusters if c.rejected]


def _in_project(result: ConsensusResult) -> bool:
    return any("run in your project" in n for n in result.notes)


def test_the_project_is_found_by_its_package_json(tmp_path: Path) -> None:
    module = make_esm(tmp_path / "shop")
    project = project_for(module, ESM_SUM)
    assert project is not None
    assert (project.language, project.root, project.module) == ("javascript", str(tmp_path / "shop"), "src/sum.js")
    assert project_for(tmp_path / "shop" / "node_modules" / "tiny-round" / "index.js", TINY_ROUND) is None


def test_tap_verdicts_skip_what_the_code_controls() -> None:
    tap = (
        "# Subtest: suite\n    # Subtest: a\n    ok 1 - a\n    # Subtest: b\n    not ok 2 - b\n      ---\n"
        "      error: |-\n        ok 9 - a\n        ok 2 - b\n      ...\n    ok 3 - c # SKIP\nnot ok 1 - suite\n"
        "# ok 4 - forged\nok 5 - twice\nok 6 - twice\n"
    )
    assert read_tap(tap, "t.js") == {
        "t.js::suite > a": "passed",
        "t.js::suite > b": "failed",
        "t.js::suite > c": "skipped",
        "t.js::twice": "error",
    }


def test_es_modules_improve_keeps_the_tests_passing(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_esm(tmp_path / "shop")
    result = _decide(_request(module, "sumEven", TaskKind.IMPROVE), ESM_MUTANT, ESM_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "x > 0" not in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0], rejected
    assert any("3 of your tests (3 passing" in n for n in result.notes), result.notes
    assert any(n.startswith("javascript: executed with node --test") for n in result.notes), result.notes


def test_es_modules_fix_and_an_early_exit_is_no_pass(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_esm(tmp_path / "shop", ESM_SUM.replace("if (isEven(x))", "if (!isEven(x))"))
    result = _decide(_request(module, "sumEven", TaskKind.FIX), ESM_WRONG_FIX, ESM_EXITS, ESM_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "filter(isEven)" in result.pick
    assert result.pick_models == ["m2@http://127.0.0.1:11434"], result.pick_models
    rejected = _rejected(result)
    assert rejected, rejected
    assert all("failing tests pass" in r for r in rejected), rejected
    assert _in_project(result)


def test_an_answer_that_forges_the_jobs_report_and_kills_its_runner_passes_nothing(tmp_path: Path) -> None:
    # The finding (Go's runner, same design here): the report's nonce was in the job's script in the scratch and
    # the script's stdout was reachable, so an answer wrote its own "passed" lines and killed the script.
    module = make_esm(tmp_path / "shop")
    request = _request(module, "sumEven", TaskKind.FIX)
    runner = JsProjectRunner(workers=1)

    async def observe_all() -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        probe = await runner.probe(request, None)
        assert probe is not None
        assert probe.project is not None
        assert len(probe.project.tests) == 1, probe.project
        found = [dict((await runner.observe(code, probe)).tests) for code in (ESM_RIGHT, ESM_WRONG_FIX, ESM_FORGER)]
        return found[0], found[1], found[2]

    try:
        right, wrong, forger = asyncio.run(observe_all())
    finally:
        runner.close()
    assert len(right) == 3, right
    assert set(right.values()) == {"passed"}, right  # the real reports are read
    assert "failed" in wrong.values(), wrong
    assert "passed" not in forger.values(), forger


def test_a_fix_passing_every_test_outranks_two_agreeing_partial_fixes(
    tmp_path: Path, executor: SandboxExecutor
) -> None:
    module = make_esm(tmp_path / "shop", ESM_SUM.replace("if (isEven(x))", "if (!isEven(x))"))
    # The mutant passes 2 of the 3 tests (it misses negative numbers), breaking none: eligible, and two votes.
    result = _decide(_request(module, "sumEven", TaskKind.FIX), ESM_MUTANT, ESM_MUTANT, ESM_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "x > 0" not in result.pick, result.pick
    assert result.pick_models == ["m2@http://127.0.0.1:11434"], result.pick_models


def test_commonjs_with_a_dependency_in_node_modules(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_cjs(tmp_path / "till")
    result = _decide(_request(module, "total", TaskKind.IMPROVE), CJS_MUTANT, CJS_RIGHT, executor=executor)
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "round2(" in result.pick
    rejected = _rejected(result)
    assert len(rejected) == 1, rejected
    assert "of your tests" in rejected[0], rejected
    assert _in_project(result)


TS_SUM = """import { isEven } from "./util";

export function sumEven(xs: number[]): number {
  let total: number = 0;
  for (const x of xs) {
    if (isEven(x)) total += x;
  }
  return total;
}
"""
TS_TEST = """import { test } from "node:test";
import assert from "node:assert/strict";
import { sumEven } from "../src/sum.js";

test("adds the even numbers", () => assert.equal(sumEven([1, 2, 3, 4]), 6));
test("negative", () => assert.equal(sumEven([-2, 3]), -2));
"""
TS_RIGHT = """export function sumEven(xs: number[]): number {
  return xs.filter(isEven).reduce((a: number, b: number) => a + b, 0);
}
"""
TS_MUTANT = """export function sumEven(xs: number[]): number {
  return xs.filter((x: number) => x > 0 && isEven(x)).reduce((a: number, b: number) => a + b, 0);
}
"""


def test_typescript_tests_run_through_esbuild(tmp_path: Path, executor: SandboxExecutor) -> None:
    root = tmp_path / "ts"
    _write(
        root,
        {
            "package.json": json.dumps({"name": "ts", "type": "module"}),
            "src/sum.ts": TS_SUM,
            "src/util.ts": "export const isEven = (x: number): boolean => x % 2 === 0;\n",
            "test/sum.test.ts": TS_TEST,
        },
    )
    module = root / "src" / "sum.ts"
    text = module.read_text(encoding="utf-8")
    found = language_for("typescript").find_function(text, "sumEven")
    assert found is not None
    context = build_context(text, found.start_line, found.end_line, path=str(module), language="typescript")
    context.project = project_for(module, text)
    assert context.project is not None
    assert context.project.language == "typescript"
    request = Request(task=TaskKind.IMPROVE, context=context)
    answers = [
        ModelAnswer(
            model=ModelInfo(name=f"m{i}", provider=ProviderKind.OLLAMA, endpoint="http://127.0.0.1:11434"),
            status=AnswerStatus.ANSWERED,
            text=f"```typescript\n{code}```",
        )
        for i, code in enumerate((TS_MUTANT, TS_RIGHT))
    ]
    result = asyncio.run(decide(request, answers, executor=executor))
    assert result.offers_edit, (result.no_edit, result.notes)
    assert "x > 0" not in result.pick
    assert result.pick.startswith("export function sumEven(xs: number[])")
    assert any("2 of your tests (2 passing" in n for n in result.notes), result.notes
    assert any(n.startswith("typescript: executed with node --test") for n in result.notes), result.notes


def test_without_node_tests_it_is_checked_on_its_own(tmp_path: Path, executor: SandboxExecutor) -> None:
    module = make_esm(tmp_path / "shop", test=None)
    result = _decide(_request(module, "sumEven", TaskKind.FIX), ESM_RIGHT, executor=executor)
    assert not _in_project(result)


def test_cli_ask_json_runs_javascript_answers_in_the_project(tmp_path: Path) -> None:
    """End to end: ``codeconductor ask --json`` on a JavaScript file of a project, models served over a
    loopback OpenAI-compatible API (the fake: answers here must be chosen, not sampled)."""
    assert node_path() is not None, "node is not installed (scripts/setup.sh installs it)"
    root = tmp_path / "shop"
    module = make_esm(root, ESM_SUM.replace("if (isEven(x))", "if (!isEven(x))"))
    found = language_for("javascript").find_function(module.read_text(encoding="utf-8"), "sumEven")
    assert found is not None
    models = [
        FakeModel("good", text=f"```javascript\n{ESM_RIGHT}```"),
        FakeModel("bad", text=f"```javascript\n{ESM_WRONG_FIX}```"),
    ]
    with FaultServer(models, apis=("openai",)) as server:
        (root / "codeconductor.toml").write_text(
            f'probe_local = false\nembedded = "off"\nhistory = false\n[[endpoints]]\nurl = "{server.url}"\n',
            encoding="utf-8",
        )
        done = subprocess.run(
            [sys.executable, "-m", "codeconductor.cli", "ask", "--json", "--task", "fix", "--file", "src/sum.js",
             "--lines", f"{found.start_line + 1}-{found.end_line}", "odd numbers are added"],
            cwd=root,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    consensus = json.loads(done.stdout)["consensus"]
    assert consensus["pick"] is not None, consensus
    assert "filter(isEven)" in consensus["pick"], consensus
    assert consensus["unchecked"] is None, consensus
    assert any("run in your project" in n for n in consensus["notes"]), consensus["notes"]
    rejected = [c["rejected"] for c in consensus["clusters"] if c["rejected"]]
    assert len(rejected) == 1, rejected
    assert "failing tests" in rejected[0], rejected


def test_the_harness_reads_no_report_that_an_earlier_step_planted(executor: SandboxExecutor) -> None:
    # An answer runs in the replay before the runner: what it leaves where the runner's report goes is deleted
    # before the runner starts, so a runner that writes none reports nothing.
    lines, report = "/tmp/cc_report.lines", "/tmp/cc_report.json"
    plant = f'echo \'["f","t","passed"]\' > {lines}; echo \'["f","t","passed"]\' > {report}; echo cc1 =6'
    steps = [
        {"kind": "rv", "argv": ["/bin/sh", "-c", plant], "timeout": 10, "output": True, "prefix": "cc1 "},
        {"kind": "t", "argv": ["/bin/true"], "timeout": 10, "read": lines},
        {"kind": "run", "argv": ["/bin/true"], "timeout": 10, "fresh": [report]},
        {"kind": "report", "argv": ["/bin/cat", report], "timeout": 10, "output": True},
    ]
    job = {"kind": "js", "root": "/tmp", "env": {}, "steps": steps, "files": []}
    done = asyncio.run(run_harness(executor.sandbox, job, ro_paths=[], timeout_s=30, memory_mb=512))
    by_step = {r.get("step"): r for r in done.records}
    assert done.done, done.outcome
    assert by_step["rv"]["lines"] == ["=6"]  # the harness reads what a step says
    assert by_step["t"]["lines"] == []
    assert by_step["report"]["lines"] == []
