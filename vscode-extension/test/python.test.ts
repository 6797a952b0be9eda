/** Interpreter resolution: order of candidates, the import check, and the messages a user sees on failure. */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, mkdirSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  candidates,
  checkInterpreter,
  defaultRunner,
  explainFailure,
  installCommand,
  resolveInterpreter,
  type Runner,
} from "../src/python";

/** A runner that answers per interpreter name, recording the calls. */
function fakeRunner(table: Record<string, { code: number | null; stderr?: string; stdout?: string; spawnError?: string }>) {
  const calls: string[] = [];
  const runner: Runner = async (command) => {
    calls.push(command);
    const row = table[command] ?? { code: null, spawnError: "ENOENT" };
    return { code: row.code, stdout: row.stdout ?? "", stderr: row.stderr ?? "", spawnError: row.spawnError };
  };
  return { runner, calls };
}

describe("candidates", () => {
  it("orders the Python extension, the setting, then PATH, without duplicates", async () => {
    const list = await candidates({
      pythonExtension: async () => "/venv/bin/python",
      setting: () => "/venv/bin/python",
      pathNames: ["python3", "python"],
    });
    assert.deepEqual(
      list.map((c) => [c.command, c.source]),
      [
        ["/venv/bin/python", "python-extension"],
        ["python3", "path"],
        ["python", "path"],
      ],
    );
  });

  it("survives a Python extension that throws and ignores an empty setting", async () => {
    const list = await candidates({
      pythonExtension: async () => {
        throw new Error("activation failed");
      },
      setting: () => "  ",
      pathNames: ["python3"],
    });
    assert.deepEqual(list, [{ command: "python3", source: "path" }]);
  });
});

describe("resolveInterpreter", () => {
  it("skips an interpreter without the package and takes the next that has it", async () => {
    const { runner, calls } = fakeRunner({
      "/ext/python": { code: 1, stderr: "Traceback...\nModuleNotFoundError: No module named 'server'" },
      "/opt/cc/bin/python": { code: 0, stdout: "3.11.9" },
    });
    const res = await resolveInterpreter(
      { pythonExtension: async () => "/ext/python", setting: () => "/opt/cc/bin/python", pathNames: ["python3"] },
      runner,
    );
    assert.equal(res.chosen?.command, "/opt/cc/bin/python");
    assert.equal(res.chosen?.source, "setting");
    assert.deepEqual(calls, ["/ext/python", "/opt/cc/bin/python"]); // python3 never tried
    assert.equal(res.tried[0].check.failure, "not-installed");
  });

  it("explains a missing package with the pip command for that interpreter", async () => {
    const { runner } = fakeRunner({ python3: { code: 1, stderr: "ModuleNotFoundError: No module named 'server'" } });
    const res = await resolveInterpreter({ pythonExtension: async () => undefined, setting: () => "", pathNames: ["python3", "python"] }, runner);
    assert.equal(res.chosen, undefined);
    const text = explainFailure(res);
    assert.match(text, /not installed for python3/);
    assert.match(text, /python3 -m pip install codeconductor/);
  });

  it("says no interpreter was found when none can be spawned", async () => {
    const { runner } = fakeRunner({});
    const res = await resolveInterpreter({ pythonExtension: async () => undefined, setting: () => "/nope/python", pathNames: ["python3"] }, runner);
    assert.match(explainFailure(res), /no Python interpreter found \(tried \/nope\/python, python3\)/);
  });

  it("reports a broken interpreter with its last stderr line", async () => {
    const { runner } = fakeRunner({ python3: { code: 1, stderr: "Traceback\nSyntaxError: invalid syntax" } });
    const res = await resolveInterpreter({ pythonExtension: async () => undefined, setting: () => "", pathNames: ["python3"] }, runner);
    assert.match(explainFailure(res), /python3 cannot start the server: SyntaxError: invalid syntax/);
  });
});

describe("checkInterpreter with real processes", () => {
  // Real subprocesses: a fake "python" script on disk, so the spawn/exit-code plumbing is exercised for real.
  const dir = mkdtempSync(join(tmpdir(), "cc-python-"));
  const script = (name: string, body: string): string => {
    const path = join(dir, name);
    writeFileSync(path, `#!/bin/sh\n${body}\n`);
    chmodSync(path, 0o755);
    return path;
  };

  it("accepts an interpreter whose import check exits 0 and reads its version", async () => {
    const res = await checkInterpreter(script("ok", "printf 3.11.4"), defaultRunner);
    assert.deepEqual(res, { ok: true, version: "3.11.4" });
  });

  it("classifies ModuleNotFoundError as not installed", async () => {
    const res = await checkInterpreter(script("nopkg", "echo \"ModuleNotFoundError: No module named 'server'\" >&2; exit 1"), defaultRunner);
    assert.equal(res.ok, false);
    assert.equal(res.failure, "not-installed");
  });

  it("classifies a missing file as not found", async () => {
    mkdirSync(join(dir, "empty"), { recursive: true });
    const res = await checkInterpreter(join(dir, "empty", "python-does-not-exist"), defaultRunner);
    assert.equal(res.failure, "not-found");
  });

  it("really runs python3 -c when python3 exists", { skip: !process.env.PATH?.includes("/usr/bin") }, async () => {
    const res = await defaultRunner("python3", ["-c", "print(6*7)"], { timeoutMs: 20000 });
    assert.equal(res.code, 0);
    assert.equal(res.stdout.trim(), "42");
  });
});

describe("installCommand", () => {
  it("quotes interpreter paths with spaces", () => {
    assert.equal(installCommand("/Program Files/py/python"), '"/Program Files/py/python" -m pip install codeconductor');
  });
});
