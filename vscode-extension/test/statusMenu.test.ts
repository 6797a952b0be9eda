/** The status bar menu and the alternatives a preview can switch to. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { alternativeItems, statusMenuItems } from "../src/status";

describe("statusMenuItems", () => {
  const endpoints = [
    { name: "llama.cpp", url: "http://127.0.0.1:8080", state: "up", models: 2 },
    { name: "Ollama", url: "http://127.0.0.1:11434", state: "down", detail: "connection refused" },
  ];

  it("lists each server up or down with why, then the last run and the actions", () => {
    const items = statusMenuItems(endpoints, { task: "fix", confidence: 0.571, agree: 2, asked: 3, wallS: 3.24, at: new Date(0) }, 1);
    const labels = items.map((i) => i.label);
    assert.ok(labels.includes("$(pass-filled) llama.cpp"));
    assert.equal(items.find((i) => i.label === "$(pass-filled) llama.cpp")?.description, "up · 2 models");
    assert.equal(items.find((i) => i.label === "$(error) Ollama")?.description, "down · connection refused");
    assert.ok(labels.includes("$(history) fix: confidence 0.57 · 2/3 models agree · 3.2 s"));
    assert.deepEqual(
      items.filter((i) => i.action && i.action !== "models").map((i) => i.action),
      ["cancel", "output", "dashboard", "refresh"],
    );
    assert.equal(items.find((i) => i.action === "cancel")?.description, "1 in flight");
  });

  it("says when the last run's pick was not checked", () => {
    const items = statusMenuItems([], { task: "fix", confidence: 0.37, agree: 1, asked: 3, unchecked: true, at: new Date(0) }, 0);
    assert.ok(items.map((i) => i.label).includes("$(history) fix: confidence 0.37 · 1/3 models agree · not checked"));
  });

  it("says when there is no run yet and no server", () => {
    const labels = statusMenuItems([], undefined, 0).map((i) => i.label);
    assert.ok(labels.includes("$(history) no run yet in this window"));
    assert.ok(labels.some((l) => l.includes("no model server")));
  });
});

describe("alternativeItems", () => {
  const clusters = [
    { members: ["a@http://x", "b@http://x"], support: 1.5, representative: "def f():\n    return 1\n" },
    { members: ["c@http://y"], support: 0.5, passes_examples: false, representative: "def f():\n    return 2\n" },
  ];

  it("offers every cluster but the one shown, with its first line of code", () => {
    const fromPick = alternativeItems(clusters, 0);
    assert.equal(fromPick.length, 1);
    assert.equal(fromPick[0].cluster, 1);
    assert.equal(fromPick[0].label, "$(versions) c");
    assert.equal(fromPick[0].description, "support 0.50 · fails the examples");
    assert.equal(fromPick[0].detail, "return 2");
    const fromAlternative = alternativeItems(clusters, 1);
    assert.deepEqual(fromAlternative.map((i) => i.cluster), [0]);
    assert.match(fromAlternative[0].label, /Consensus \(a, b\)/);
  });
});
