/** Interpreter resolution: order of candidates, the import check, and the messages a user sees on failure. */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, mkdirSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  candidates,
  checkInterpreter,
  compatibleVersion,
  defaultRunner,
  explainFailure,
  HANDSHAKE_ARGS,
  installCommand,
  parseHandshake,
  resolveInterpreter,
  SERVER_ARGS,
  serverCommand,
  serverEnv,
  type Runner,
} from "../src/python";

/** What our server's handshake prints (server/__main__.py). */
function handshake(version = "0.1.0", executable = "/opt/cc/bin/python"): string {
  return JSON.stringify({ name: "codeconductor", version, python: "3.11.9", executable }) + "\n";
}

const NOT_INSTALLED = "/usr/bin/python3: Error while finding module specification for 'codeconductor.server' (ModuleNotFoundError: No module named 'codeconductor')";

/** A runner that answers per interpreter name, recording the calls. */
function fakeRunner(table: Record<string, { code: number | null; stderr?: string; stdout?: string; spawnError?: string }>) {
  const calls: string[] = [];
  const args: (readonly string[])[] = [];
  const runner: Runner = async (command, argv) => {
    calls.push(command);
    args.push(argv);
    const row = table[command] ?? { code: null, spawnError: "ENOENT" };
    return { code: row.code, stdout: row.stdout ?? "", stderr: row.stderr ?? "", spawnError: row.spawnError };
  };
  return { runner, calls, args };
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
      "/ext/python": { code: 1, stderr: NOT_INSTALLED },
      "/opt/cc/bin/python": { code: 0, stdout: handshake() },
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
    const { runner } = fakeRunner({ python3: { code: 1, stderr: NOT_INSTALLED } });
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

  it("accepts an interpreter whose handshake is CodeConductor's and reads its versions", async () => {
    const res = await checkInterpreter(script("ok", `printf '%s' '${handshake("0.1.3", "/venv/bin/python")}'`), defaultRunner, {
      expectedVersion: "0.1.0",
    });
    assert.equal(res.ok, true);
    assert.equal(res.version, "3.11.9");
    assert.deepEqual(res.handshake, { name: "codeconductor", version: "0.1.3", python: "3.11.9", executable: "/venv/bin/python" });
  });

  it("rejects an interpreter that exits 0 without our handshake (a user's module answering instead)", async () => {
    const res = await checkInterpreter(script("impostor", "echo 'hello from my web app'"), defaultRunner);
    assert.equal(res.ok, false);
    assert.equal(res.failure, "broken");
    assert.match(res.detail ?? "", /not CodeConductor's server \(it answered: hello from my web app\)/);
  });

  it("classifies ModuleNotFoundError as not installed", async () => {
    const res = await checkInterpreter(script("nopkg", `echo "${NOT_INSTALLED}" >&2; exit 1`), defaultRunner);
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

describe("the handshake", () => {
  it("runs the server module isolated (-I) with --handshake, and starts it the same way", async () => {
    const { runner, args } = fakeRunner({ python3: { code: 0, stdout: handshake() } });
    await checkInterpreter("python3", runner);
    assert.deepEqual(args[0], ["-I", "-m", "codeconductor.server", "--handshake"]);
    assert.deepEqual(HANDSHAKE_ARGS.slice(0, 3), SERVER_ARGS.filter((a) => a !== "-u").slice(0, 3));
    assert.ok(SERVER_ARGS.includes("-I"));
  });

  it("accepts only CodeConductor's JSON", () => {
    assert.equal(parseHandshake(handshake())?.version, "0.1.0");
    assert.equal(parseHandshake("warning: something\n" + handshake())?.name, "codeconductor"); // last line counts
    assert.equal(parseHandshake(JSON.stringify({ name: "server", version: "1", python: "3", executable: "/x" })), undefined);
    assert.equal(parseHandshake(JSON.stringify({ name: "codeconductor", version: 1 })), undefined);
    assert.equal(parseHandshake("3.11.9"), undefined);
    assert.equal(parseHandshake(""), undefined);
  });

  it("compares major.minor only", () => {
    assert.equal(compatibleVersion("0.1.7", "0.1.0"), true);
    assert.equal(compatibleVersion("0.10.0", "0.1.0"), false); // 0.10 is not 0.1
    assert.equal(compatibleVersion("0.1.0rc1", "0.1.2"), true);
    assert.equal(compatibleVersion("0.1.0-rc1", "0.1.2"), true);
    assert.equal(compatibleVersion("0.2.0", "0.1.0"), false);
    assert.equal(compatibleVersion("1.1.0", "0.1.0"), false);
    assert.equal(compatibleVersion("garbage", "0.1.0"), false);
  });

  it("skips a server of another version, says which, and takes the next that fits", async () => {
    const { runner } = fakeRunner({
      "/old/python": { code: 0, stdout: handshake("0.0.9", "/old/python") },
      "/new/python": { code: 0, stdout: handshake("0.1.4", "/new/python") },
    });
    const sources = { pythonExtension: async () => "/old/python", setting: () => "/new/python", pathNames: [] };
    const res = await resolveInterpreter(sources, runner, { expectedVersion: "0.1.0" });
    assert.equal(res.chosen?.command, "/new/python");
    assert.equal(res.tried[0].check.failure, "incompatible");
    const alone = await resolveInterpreter({ ...sources, setting: () => "" }, runner, { expectedVersion: "0.1.0" });
    assert.match(explainFailure(alone), /\/old\/python has CodeConductor 0\.0\.9, this extension needs 0\.1\.x/);
  });

  it("starts the interpreter by the absolute path the handshake gave", async () => {
    const { runner } = fakeRunner({ python3: { code: 0, stdout: handshake("0.1.0", "/home/u/.venv/bin/python") } });
    const res = await resolveInterpreter({ pythonExtension: async () => undefined, setting: () => "", pathNames: ["python3"] }, runner);
    assert.ok(res.chosen);
    assert.equal(serverCommand(res.chosen, res.handshake), "/home/u/.venv/bin/python");
    assert.equal(serverCommand({ command: "python3", source: "path" }, { ...res.handshake!, executable: "python" }), "python3");
  });

  it("keeps PYTHON* variables from the probe and the server", () => {
    const env = serverEnv({ PATH: "/usr/bin", PYTHONPATH: "/project", PYTHONHOME: "/x", PYTHONSTARTUP: "/y", OLLAMA_HOST: "h" });
    assert.deepEqual(env, { PATH: "/usr/bin", OLLAMA_HOST: "h" });
  });

  it("is not fooled by a shadowing codeconductor package in the cwd or on PYTHONPATH (real python3)", { skip: !process.env.PATH?.includes("/usr/bin") }, async () => {
    // A folder with its own codeconductor/server/__main__.py printing a perfect handshake, plus server.py: with -I
    // neither the cwd nor PYTHONPATH reaches sys.path, so the system python3 (without CodeConductor) says so.
    const shadow = mkdtempSync(join(tmpdir(), "cc-shadow-"));
    mkdirSync(join(shadow, "codeconductor", "server"), { recursive: true });
    writeFileSync(join(shadow, "codeconductor", "__init__.py"), "");
    writeFileSync(join(shadow, "codeconductor", "server", "__init__.py"), "");
    writeFileSync(join(shadow, "codeconductor", "server", "__main__.py"), `print(${JSON.stringify(handshake().trim())})\n`);
    writeFileSync(join(shadow, "server.py"), "print('user server.py ran')\n");
    const res = await checkInterpreter("/usr/bin/python3", defaultRunner, {
      cwd: shadow,
      env: { ...process.env, PYTHONPATH: shadow },
    });
    assert.equal(res.ok, false, JSON.stringify(res));
    assert.equal(res.failure, "not-installed");
    // The same interpreter without -I is fooled: what the isolation is for.
    const fooled = await defaultRunner("/usr/bin/python3", ["-m", "codeconductor.server", "--handshake"], { cwd: shadow, timeoutMs: 20000 });
    assert.equal(parseHandshake(fooled.stdout)?.name, "codeconductor");
  });
});

describe("installCommand", () => {
  it("quotes interpreter paths with spaces", () => {
    assert.equal(installCommand("/Program Files/py/python"), '"/Program Files/py/python" -m pip install codeconductor');
  });
});
