/** Status bar text, settings sent to the server, and the block a command works on without a selection. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import { enclosingBlock } from "../src/blocks";
import { EXTENSION_ONLY_KEYS, serverSettings, withProjectPython } from "../src/config";
import { statusView } from "../src/status";

describe("statusView", () => {
  it("counts models", () => {
    assert.equal(statusView("running", 4, 0).text, "⚖ 4 models");
    assert.equal(statusView("running", 1, 0).text, "⚖ 1 model");
  });

  it("spins while runs are in flight", () => {
    const view = statusView("running", 3, 2);
    assert.equal(view.text, "$(sync~spin) ⚖ 3 models");
    assert.match(view.tooltip, /2 runs in flight/);
  });

  it("warns when no model is up or the server is down", () => {
    assert.equal(statusView("running", 0, 0).warning, true);
    assert.equal(statusView("failed", 4, 0).warning, true);
    assert.equal(statusView("running", 2, 0).warning, false);
  });
});

describe("serverSettings", () => {
  it("drops extension-only keys and functions, keeps the rest as plain data", () => {
    const section = {
      endpoints: [{ url: "http://127.0.0.1:8080" }],
      probeLocal: false,
      python: "/venv/bin/python",
      trace: { server: "verbose" },
      get: () => 1,
    };
    assert.deepEqual(serverSettings(section), { endpoints: [{ url: "http://127.0.0.1:8080" }], probeLocal: false });
  });

  it("sends the editor's interpreter as the project's, before the user's setting", () => {
    const settings = { probeLocal: false, projectPython: "/mine/bin/python" };
    assert.deepEqual(withProjectPython(settings, "/proj/.venv/bin/python"), {
      probeLocal: false,
      projectPython: "/proj/.venv/bin/python",
    });
    assert.deepEqual(withProjectPython(settings, undefined), settings);
    assert.deepEqual(withProjectPython(settings, "  "), settings);
  });

  it("tolerates non-objects", () => {
    assert.deepEqual(serverSettings(undefined), {});
    assert.deepEqual(serverSettings([1]), {});
  });

  it("strips exactly the settings package.json declares as extension-only", () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8"));
    const extSection = pkg.contributes.configuration.find((s: { id: string }) => s.id === "codeconductor-extension");
    const tops = new Set(Object.keys(extSection.properties).map((k) => k.split(".")[1]));
    assert.deepEqual([...tops].sort(), [...EXTENSION_ONLY_KEYS].sort());
  });
});

describe("enclosingBlock", () => {
  const src = [
    "import os", // 0
    "", // 1
    "@decorator", // 2
    "def f(x):", // 3
    "    y = x + 1", // 4
    "", // 5
    "    return y", // 6
    "", // 7
    "class C:", // 8
    "    def m(self):", // 9
    "        return 1", // 10
    "", // 11
    "    def n(self):", // 12
    "        return 2", // 13
    "x = 1", // 14
  ];

  it("takes the function around the cursor with its decorator", () => {
    assert.deepEqual(enclosingBlock(src, 4), { start: 2, end: 7 });
    assert.deepEqual(enclosingBlock(src, 3), { start: 2, end: 7 });
  });

  it("takes the innermost method", () => {
    assert.deepEqual(enclosingBlock(src, 13), { start: 12, end: 14 });
    assert.deepEqual(enclosingBlock(src, 10), { start: 9, end: 11 });
  });

  it("falls back to the line outside any block", () => {
    assert.deepEqual(enclosingBlock(src, 14), { start: 14, end: 15 });
    assert.deepEqual(enclosingBlock(src, 0), { start: 0, end: 1 });
  });
});
