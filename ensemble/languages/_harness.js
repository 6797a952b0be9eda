// CodeConductor's JavaScript harness, run by node inside the sandbox (ensemble/languages/javascript.py).
// Reads job.json from its directory: {code, entry, calls: [{expr, expected}], callTimeoutMs}. Defines the
// candidate in a fresh vm context (no require, no process, a silent console), evaluates each call, and writes one
// JSON line per call: {ok, value} with a canonical value (sorted keys, floats rounded to 9 significant digits)
// or {ok: false, error} with the error's name; a candidate that cannot be defined gives one {load_error} line.
// The vm context is not a security boundary (the sandbox is); it keeps the candidate's output off our stdout.
"use strict";
const fs = require("fs");
const path = require("path");
const vm = require("vm");

const job = JSON.parse(fs.readFileSync(path.join(__dirname, "job.json"), "utf8"));
const out = (obj) => fs.writeSync(1, JSON.stringify(obj) + "\n");
const quiet = () => undefined;
const context = vm.createContext({
  console: { log: quiet, error: quiet, warn: quiet, info: quiet, debug: quiet, trace: quiet, assert: quiet },
});
const timeout = Math.max(1, job.callTimeoutMs | 0);

function canon(value, depth) {
  if (depth > 20) return "<deep>";
  if (value === null) return null;
  if (value === undefined) return "<undefined>";
  const type = typeof value;
  if (type === "number") {
    if (!Number.isFinite(value)) return "<" + String(value) + ">";
    return Number.isInteger(value) ? value : Number(value.toPrecision(9));
  }
  if (type === "bigint") return "<bigint " + value.toString() + ">";
  if (type === "string" || type === "boolean") return value;
  if (type === "function") return "<function>";
  if (type === "symbol") return "<symbol>";
  if (Array.isArray(value)) return value.map((v) => canon(v, depth + 1));
  const tag = Object.prototype.toString.call(value);
  if (tag === "[object Set]") return { "<set>": [...value].map((v) => canon(v, depth + 1)).map((v) => JSON.stringify(v)).sort() };
  if (tag === "[object Map]") return { "<map>": [...value].map(([k, v]) => [JSON.stringify(canon(k, depth + 1)), canon(v, depth + 1)]).sort() };
  if (tag === "[object Promise]") return "<promise>";
  if (ArrayBuffer.isView(value)) return Array.from(value).map((v) => canon(v, depth + 1));
  const keys = Object.keys(value).sort();
  const obj = {};
  for (const key of keys) obj[key] = canon(value[key], depth + 1);
  return obj;
}

function equal(got, want) {
  if (typeof got === "number" && typeof want === "number") {
    if (Number.isNaN(got) && Number.isNaN(want)) return true;
    return got === want || Math.abs(got - want) <= Math.max(1e-9, 1e-6 * Math.max(Math.abs(got), Math.abs(want)));
  }
  if (Array.isArray(got) && Array.isArray(want)) {
    return got.length === want.length && got.every((g, i) => equal(g, want[i]));
  }
  if (got && want && typeof got === "object" && typeof want === "object") {
    return JSON.stringify(canon(got, 0)) === JSON.stringify(canon(want, 0));
  }
  return got === want;
}

function errorName(err) {
  if (err && err.code === "ERR_SCRIPT_EXECUTION_TIMEOUT") return "Timeout";
  if (err instanceof Error || (err && typeof err.name === "string")) return String(err.name || "Error");
  return "Throw";
}

try {
  vm.runInContext(job.code, context, { timeout: timeout * 2, filename: "candidate.js" });
  if (job.entry && vm.runInContext("typeof " + job.entry, context) !== "function") {
    throw new ReferenceError(job.entry + " is not defined");
  }
} catch (err) {
  out({ load_error: errorName(err) });
  process.exit(0);
}

for (const call of job.calls) {
  let result;
  try {
    const value = vm.runInContext("(" + call.expr + ")", context, { timeout, filename: "call.js" });
    let text = JSON.stringify(canon(value, 0));
    if (text === undefined) text = "<undefined>";
    result = { ok: true, value: text.length <= 2000 ? text : text.slice(0, 2000) + "...#" + text.length };
    if (call.expected !== null && call.expected !== undefined) {
      try {
        result.matches = equal(value, vm.runInContext("(" + call.expected + ")", context, { timeout }));
      } catch (err) {
        result.matches = false;
      }
    }
  } catch (err) {
    result = { ok: false, error: errorName(err) };
    if (call.expected !== null && call.expected !== undefined) result.matches = false;
  }
  out(result);
}
