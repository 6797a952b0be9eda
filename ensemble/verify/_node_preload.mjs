// Loaded with `node --import` by ensemble/verify/js_project.py, in the test runner and in each test file's
// process it starts, and in the replay of recorded calls (CC_REPLAY=1, _node_replay.mjs). In a test file's
// process (NODE_TEST_CONTEXT=child...) and in the replay it puts the text under test (the
// user's buffer, or a candidate in place of the selected function) in place of the module's file, for require()
// (CommonJS) and import (ES modules, through _node_hooks.mjs, which also turns TypeScript into JavaScript with
// esbuild), and takes away the ways to end the process before the runner has heard every test's result (an
// early exit 0 would read as a pass). Verdicts are read from the runner's own report, never from what the tests
// print.
import { readFileSync } from "node:fs";
import { createRequire, register } from "node:module";
import { pathToFileURL } from "node:url";

const replay = process.env.CC_REPLAY === "1";
if (replay || String(process.env.NODE_TEST_CONTEXT || "").startsWith("child")) {
  const job = JSON.parse(readFileSync(process.env.CC_JOB, "utf8"));
  const source = String(job.source);
  const Module = createRequire(import.meta.url)("node:module");
  for (const ext of [".js", ".cjs"]) {
    const original = Module._extensions[ext];
    Module._extensions[ext] = function load(module, filename) {
      if (filename === job.target) return module._compile(source, filename);
      return original(module, filename);
    };
  }
  register(pathToFileURL(job.hooks).href, {
    data: { url: pathToFileURL(job.target).href, source, esbuild: job.esbuild || "" },
  });
  const deny = (name) =>
    function denied() {
      throw new Error(`process.${name} is not allowed while tests are judged`);
    };
  for (const name of replay ? [] : ["exit", "reallyExit", "abort", "kill", "binding", "_linkedBinding", "dlopen"]) {
    Object.defineProperty(process, name, { value: deny(name), writable: false, configurable: false });
  }
}
