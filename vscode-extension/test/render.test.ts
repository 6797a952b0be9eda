/** Result rendering: the markdown a user reads after Ask / Fix / Review. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import type { Result, RunResponse } from "../src/protocol";
import { cell, clusterOf, confidenceWord, fence, modelLabel, modelTable, renderResult } from "../src/render";

const m = (name: string, endpoint = "http://127.0.0.1:8080") => ({ name, provider: "openai", endpoint });

const result: Result = {
  id: "r1",
  request: { task: "fix", instruction: "", context: { language: "python" } },
  answers: [
    { model: m("qwen"), status: "answered", latency_s: 1.234, tokens_out: 40 },
    { model: m("llama"), status: "answered", latency_s: 2.5, tokens_out: 38 },
    { model: m("phi|x"), status: "timeout", reason: "timeout", latency_s: null },
  ],
  consensus: {
    kind: "code",
    pick: "def f(x):\n    return x + 1\n",
    confidence: 0.81,
    agree: 1,
    answered: 2,
    asked: 3,
    clusters: [
      { members: ["qwen@http://127.0.0.1:8080"], representative: "def f(x):\n    return x + 1\n", support: 1 },
      {
        members: ["llama@http://127.0.0.1:8080#0"],
        representative: "def f(x):\n    return x - 1\n",
        support: 0.5,
        diff: "-    return x + 1\n+    return x - 1\n",
      },
    ],
    method: "behaviour",
    notes: ["1 model timed out"],
  },
  wall_s: 3.1,
};

describe("renderResult", () => {
  const md = renderResult({ status: "applied", result, runId: "r1" }, "CodeConductor: fix");

  it("shows confidence and agreement", () => {
    assert.match(md, /\*\*Confidence 0\.81\*\* \(high\) — 1 of 3 models agree, 2 answered/);
  });

  it("has one table row per model with status, latency and cluster", () => {
    assert.match(md, /\| qwen \| http:\/\/127\.0\.0\.1:8080 \| answered \| 1\.23 s \| 40 \| 1 \(pick\) \|/);
    assert.match(md, /\| llama \| .* \| 2 \|/); // matched through the #sample suffix
    assert.match(md, /\| phi\\\|x \| .* timeout \(timeout\) \| – \| – \|  \|/);
  });

  it("shows the pick as code and each alternative as a diff", () => {
    assert.match(md, /## Consensus\n\n```python\ndef f\(x\):\n    return x \+ 1\n```/);
    assert.match(md, /### Alternative 1 — 1 model\(s\): `llama@http:\/\/127\.0\.0\.1:8080#0`\n```diff\n-    return x \+ 1/);
  });

  it("labels an unchecked pick 'not checked' with the reason, and only that one", () => {
    assert.doesNotMatch(md, /not checked/);
    const unchecked = { ...result, consensus: { ...result.consensus!, unchecked: "javascript: not executed (node is not installed)" } };
    const out = renderResult({ status: "preview", result: unchecked });
    assert.match(out, /2 answered — \*\*not checked\*\*: javascript: not executed \(node is not installed\)/);
    const bare = renderResult({ status: "proposed", confidence: 0.3, agree: 1, asked: 2, unchecked: "nothing was run" });
    assert.match(bare, /1 of 2 models agree — \*\*not checked\*\*: nothing was run/);
  });

  it("lists notes and the run's wall time", () => {
    assert.match(md, /- 1 model timed out/);
    assert.match(md, /_Run r1 took 3\.10 s; method: behaviour\._/);
  });

  it("renders a free-text answer for Ask and states non-success statuses", () => {
    const ask: RunResponse = {
      status: "noConsensus",
      message: "no model answered",
      answer: "",
      result: { ...result, consensus: { kind: "none", confidence: 0, agree: 0, answered: 0, asked: 3 } },
    };
    const out = renderResult(ask, "Ask: why?");
    assert.match(out, /^# Ask: why\?/);
    assert.match(out, /\*\*Status:\*\* noConsensus — no model answered/);
    assert.doesNotMatch(out, /## Consensus/);
    const answered = renderResult({ status: "answered", answer: "It returns **None**.", result: { ...result, consensus: { ...result.consensus!, kind: "text" } } });
    assert.match(answered, /## Answer\n\nIt returns \*\*None\*\*\./);
  });

  it("renders review findings with 1-based lines", () => {
    const review: RunResponse = {
      status: "reviewed",
      result: {
        ...result,
        consensus: { kind: "findings", confidence: 0.4, agree: 2, answered: 3, asked: 3, findings: [{ line: 4, message: "off | by one", severity: "error", support: 2, confidence: 0.66 }] },
      },
    };
    assert.match(renderResult(review), /\| 5 \| error \| off \\\| by one \| 2 \| 0\.66 \|/);
  });

  it("does not crash on a minimal response", () => {
    assert.match(renderResult({}), /^# CodeConductor: ask\n/);
  });
});

describe("helpers", () => {
  it("fences code containing backticks with a longer fence", () => {
    const f = fence("x = '```'", "python");
    assert.ok(f.startsWith("````python\n"));
    assert.ok(f.endsWith("\n````"));
  });

  it("escapes table cells", () => {
    assert.equal(cell("a|b\nc"), "a\\|b c");
  });

  it("names confidence levels", () => {
    assert.deepEqual([0.9, 0.5, 0.1, undefined].map(confidenceWord), ["high", "medium", "low", "unknown"]);
  });

  it("finds no cluster for a model outside all clusters", () => {
    assert.equal(clusterOf({ model: m("ghost"), status: "failed" }, result.consensus!.clusters!), "");
  });

  it("says when no model was asked", () => {
    assert.equal(modelTable({ answers: [] }), "_No model was asked._");
  });

  it("labels models for the quick pick", () => {
    const label = modelLabel({ name: "llama3.1:8b", provider: "ollama", endpoint: "http://127.0.0.1:11434", parameter_size: "8B", quantization: "Q4_K_M", loaded: true });
    assert.deepEqual(label, { label: "llama3.1:8b", description: "ollama · loaded", detail: "http://127.0.0.1:11434 · 8B · Q4_K_M" });
  });
});
