/** "Make Tests Pass" and "Generate Tests": the markdown the user reads, the notification line, the typed test ids. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import type { FixWithTestsResponse, GenerateTestsResponse } from "../src/protocol";
import { fixSummary, parseTestIds, renderFixWithTests, renderGenerateTests, renderResponse } from "../src/render";

const baseline = {
  round: 0,
  models: [],
  code: "def clamp(x, lo, hi):\n    return x\n",
  passed: 0,
  total: 2,
  ok: false,
  summary: "0/2 passed",
  failures: "test_low: assert 50 == 10",
};

const passed: FixWithTestsResponse = {
  runId: "r4",
  status: "passed",
  applied: true,
  message: "1/2 candidates pass the tests (round 1)",
  tests: ["proj/test_util.py::test_low", "proj/test_util.py::test_high"],
  newText: "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n",
  outcome: {
    status: "passed",
    message: "1/2 candidates pass the tests (round 1)",
    function: "clamp",
    pick: "def clamp(x, lo, hi):\n    return max(lo, min(x, hi))\n",
    pick_models: ["ok-right@http://127.0.0.1:8080"],
    passing: 1,
    tested: 2,
    baseline,
    rounds: [
      {
        round: 1,
        asked: 2,
        answered: 2,
        passing: 1,
        wall_s: 1.5,
        candidates: [
          { round: 1, models: ["ok-right@http://127.0.0.1:8080"], code: "...", passed: 2, total: 2, ok: true, summary: "2/2 passed" },
          { round: 1, models: ["ok-wrong@http://127.0.0.1:8080"], code: "...", passed: 0, total: 2, ok: false, summary: "0/2 passed" },
        ],
      },
    ],
    notes: [],
    wall_s: 2.25,
  },
};

const failed: FixWithTestsResponse = {
  runId: "r5",
  status: "failed",
  applied: false,
  message: "no candidate passed the tests (2 tried in 3 round(s)); best attempt: 1/2 passed from ok-half",
  tests: ["test_util.py::test_low"],
  outcome: {
    status: "failed",
    message: "no candidate passed the tests (2 tried in 3 round(s)); best attempt: 1/2 passed from ok-half",
    function: "clamp",
    baseline,
    best: {
      round: 2,
      models: ["ok-half@http://127.0.0.1:8080"],
      code: "def clamp(x, lo, hi):\n    return max(lo, x)\n",
      passed: 1,
      total: 2,
      ok: false,
      summary: "1/2 passed",
      failures: "test_high: assert 50 == 10 | see ```here```",
    },
    rounds: [{ round: 1, asked: 2, answered: 1, passing: 0, candidates: [] }],
  },
};

describe("renderFixWithTests", () => {
  it("shows k/n candidates pass, the applied fix and the tests used", () => {
    const md = renderFixWithTests(passed);
    assert.match(md, /^# CodeConductor: make tests pass \(clamp\)\n/);
    assert.match(md, /\*\*1\/2 candidates pass the tests \(round 1\)\*\* — fix applied/);
    assert.match(md, /Tests: `proj\/test_util\.py::test_low`, `proj\/test_util\.py::test_high`/);
    assert.match(md, /## Fix \(from `ok-right`\)\n\n```python\ndef clamp\(x, lo, hi\):\n    return max\(lo, min\(x, hi\)\)\n```/);
    assert.match(md, /\| 1 \| `ok-right` \| 2\/2 \| passes \|/);
    assert.match(md, /\| 1 \| `ok-wrong` \| 0\/2 \| fails \|/);
    assert.match(md, /\| 1 \| 2 \| 2 \| 2 \| 1 \| 1\.50 s \|/);
    assert.match(md, /## Current code: tests 0\/2 passed/);
    assert.doesNotMatch(md, /No candidate passed/);
  });

  it("says honestly that no candidate passed, with the best attempt and its failures", () => {
    const md = renderFixWithTests(failed);
    assert.match(md, /\*\*No candidate passed the tests\.\*\* no candidate passed/);
    assert.match(md, /Nothing was changed in your code\./);
    assert.match(md, /## Best attempt: tests 1\/2 passed \(round 2, `ok-half`\)\n\n```python\ndef clamp\(x, lo, hi\):\n    return max\(lo, x\)/);
    // The failures keep their backticks inside a longer fence.
    assert.match(md, /### Its failures\n\n````text\ntest_high: assert 50 == 10 \| see ```here```\n````/);
    assert.doesNotMatch(md, /## Fix/);
    assert.doesNotMatch(md, /fix applied/);
  });

  it("states an unapplied passing fix and other statuses", () => {
    assert.match(renderFixWithTests({ ...passed, status: "rejected", applied: false }), /— fix not applied \(rejected\)/);
    const erroring = { ...failed.outcome!.best!, summary: "0/2 passed, 1 error(s)", round: 1 };
    const withError = renderFixWithTests({ ...failed, outcome: { ...failed.outcome!, rounds: [{ round: 1, candidates: [erroring] }] } });
    assert.match(withError, /\| 1 \| `ok-half` \| 1\/2 \| fails \(1 error\(s\)\) \|/);
    const none = renderFixWithTests({ status: "noTests", message: "no test in the project mentions clamp" });
    assert.match(none, /\*\*Status:\*\* noTests — no test in the project mentions clamp/);
    const already = renderFixWithTests({
      status: "already_passing",
      message: "the tests already pass",
      outcome: { status: "already_passing", baseline: { ...baseline, passed: 2, ok: true, summary: "2/2 passed" } },
    });
    assert.match(already, /\*\*The tests already pass\*\*/);
  });

  it("does not crash on a minimal response", () => {
    assert.match(renderFixWithTests({}), /^# CodeConductor: make tests pass\n\n\*\*Status:\*\* unknown/);
  });
});

describe("fixSummary", () => {
  it("gives the notification line for each outcome", () => {
    assert.equal(fixSummary(passed), "CodeConductor: 1/2 candidates pass the tests (round 1) — fix applied.");
    assert.match(fixSummary(failed), /^CodeConductor: no candidate passed the tests/);
    assert.equal(fixSummary({ status: "cancelled", message: "cancelled" }), "CodeConductor: Make Tests Pass cancelled.");
    assert.equal(fixSummary({ status: "stale", message: "CodeConductor: x changed" }), "CodeConductor: x changed");
  });
});

describe("renderGenerateTests", () => {
  const generated: GenerateTestsResponse = {
    runId: "r6",
    status: "generated",
    applied: true,
    message: "1 of 2 generated test(s) kept",
    uri: "file:///proj/test_clamp_generated.py",
    content: "from util import clamp\n\n\ndef test_mid():\n    assert clamp(5, 0, 10) == 5\n",
    outcome: {
      function: "clamp",
      kept: 1,
      tests: [
        { name: "test_mid", models: ["a@x", "b@y"], support: 2, outcome: "passed", kept: true, reason: "" },
        { name: "test_odd", models: ["a@x"], support: 1, outcome: "failed", kept: false, reason: "only 1 model | asserts it" },
      ],
      notes: ["1 test(s) timed out"],
      wall_s: 4,
    },
  };

  it("lists each test, who wrote it, whether it was kept and why, and the file", () => {
    const md = renderGenerateTests(generated);
    assert.match(md, /^# CodeConductor: generate tests \(clamp\)/);
    assert.match(md, /\*\*1 of 2 generated test\(s\) kept\*\* — `file:\/\/\/proj\/test_clamp_generated\.py` created/);
    assert.match(md, /\| `test_mid` \| `a`, `b` \| 2 \| passed \| yes \|  \|/);
    assert.match(md, /\| `test_odd` \| `a` \| 1 \| failed \| no \| only 1 model \\\| asserts it \|/);
    assert.match(md, /## Test file\n\n```python\nfrom util import clamp\n/);
    assert.match(md, /- 1 test\(s\) timed out/);
  });

  it("states when no test was kept", () => {
    const md = renderGenerateTests({ status: "noTests", message: "0 of 3 generated test(s) kept", content: "", outcome: { tests: [] } });
    assert.match(md, /\*\*Status:\*\* noTests — 0 of 3 generated test\(s\) kept/);
    assert.doesNotMatch(md, /## Test file/);
  });
});

describe("renderResponse", () => {
  it("picks the renderer by server command", () => {
    assert.match(renderResponse("codeconductor.fixWithTests", passed), /candidates pass the tests/);
    assert.match(renderResponse("codeconductor.generateTests", { status: "noTests" }), /generate tests/);
    assert.match(renderResponse("codeconductor.run", {}, "CodeConductor: fix"), /^# CodeConductor: fix/);
  });
});

describe("parseTestIds", () => {
  it("splits on spaces, commas and semicolons, drops blanks and duplicates", () => {
    assert.deepEqual(parseTestIds(" tests/a.py::t1, tests/b.py ;tests/a.py::t1  "), ["tests/a.py::t1", "tests/b.py"]);
  });

  it("means the server's automatic choice when empty", () => {
    assert.deepEqual(parseTestIds(""), []);
    assert.deepEqual(parseTestIds("   "), []);
    assert.deepEqual(parseTestIds(undefined), []);
  });
});

describe("package.json", () => {
  const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));

  it("declares the two palette commands with the titles users search for", () => {
    const titles = new Map<string, string>(pkg.contributes.commands.map((c: { command: string; title: string }) => [c.command, c.title]));
    // src/commands.ts registers these ids (it imports vscode, so it cannot be loaded here).
    assert.equal(titles.get("codeconductor.makeTestsPass"), "Make Tests Pass (Fix Selection with Tests)…");
    assert.equal(titles.get("codeconductor.generateTestsForSelection"), "Generate Tests for Selection");
    const source = readFileSync(join(__dirname, "..", "..", "src", "commands.ts"), "utf8");
    assert.match(source, /makeTestsPass: "codeconductor\.makeTestsPass"/);
    assert.match(source, /generateTests: "codeconductor\.generateTestsForSelection"/);
  });

  it("does not declare the server's own command ids (the language client registers those)", () => {
    const ids = pkg.contributes.commands.map((c: { command: string }) => c.command);
    assert.ok(!ids.includes("codeconductor.fixWithTests"));
    assert.ok(!ids.includes("codeconductor.generateTests"));
  });
});
