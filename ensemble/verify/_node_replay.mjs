// Replays the calls recorded from a project's tests (ensemble/verify/js_project.py) on the text under test: run
// by node inside the sandbox with _node_preload.mjs (CC_REPLAY=1), which serves that text for the module's file
// and, for TypeScript, strips types. Usage: node --import PRELOAD _node_replay.mjs KEY. The module is imported
// as the project imports it (its relative imports and node_modules), and the function is the one the text
// exposes on globalThis.__ccTarget (a line appended to the text by the parent). One line per call: KEY, a space,
// JSON {i, ok: true, value} (the canonical JSON text of [result, arguments after the call]) or {i, ok: false,
// error} (the error's name); {load_error} when the module or the function cannot be had. Values only: the
// parent compares them (expected values never enter the sandbox).
import { readFileSync, writeSync } from "node:fs";
import { pathToFileURL } from "node:url";

const exit = process.exit.bind(process); // bound before the module loads: its handles may keep node alive
const key = String(process.argv[2] || "");
process.argv.length = 2;
const job = JSON.parse(readFileSync(process.env.CC_JOB, "utf8"));
const out = (obj) => writeSync(1, key + " " + JSON.stringify(obj) + "\n");
const quiet = () => undefined;
for (const name of ["log", "error", "warn", "info", "debug", "trace", "dir", "table"]) console[name] = quiet;

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
  if (Array.isArray(value) || ArrayBuffer.isView(value)) {
    const items = [];
    for (let i = 0; i < value.length; i++) items.push(canon(value[i], depth + 1));
    return items;
  }
  const tag = Object.prototype.toString.call(value);
  if (tag === "[object Set]") return { "<set>": [...value].map((v) => JSON.stringify(canon(v, depth + 1))).sort() };
  if (tag === "[object Map]") {
    return { "<map>": [...value].map(([k, v]) => [JSON.stringify(canon(k, depth + 1)), canon(v, depth + 1)]).sort() };
  }
  if (tag === "[object Date]") return "<date " + (Number.isNaN(value.getTime()) ? "invalid" : value.toISOString()) + ">";
  if (tag === "[object Promise]") return "<promise>";
  const obj = {};
  for (const k of Object.keys(value).sort()) obj[k] = canon(value[k], depth + 1);
  return obj;
}

function errorName(err) {
  try {
    if (err && typeof err.name === "string") return err.name.slice(0, 100) || "Error";
  } catch (e) {
    // a getter that throws
  }
  return "Throw";
}

const settle = (value, ms) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(Object.assign(new Error("timeout"), { name: "Timeout" })), ms);
    Promise.resolve(value).then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });

// Math.random drawn the same before every call, so the user's code and each answer (separate processes) see the
// same numbers (mulberry32, seeded per call).
let seed = 0;
Math.random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

let fn;
try {
  await import(pathToFileURL(job.target).href);
  fn = globalThis.__ccTarget;
  if (typeof fn !== "function") throw new ReferenceError("the function is not defined");
} catch (err) {
  out({ load_error: errorName(err) });
  process.exitCode = 0;
}
if (typeof fn === "function") {
  const calls = Array.isArray(job.calls) ? job.calls : [];
  for (let i = 0; i < calls.length; i++) {
    let result;
    try {
      const args = JSON.parse(calls[i]);
      seed = 20261207 + i;
      let value = fn(...args);
      if (value && typeof value.then === "function") value = await settle(value, job.callTimeoutMs || 1000);
      let text = JSON.stringify(canon([value, args], 0));
      if (text.length > 2000) text = text.slice(0, 2000) + "...#" + text.length;
      result = { i, ok: true, value: text };
    } catch (err) {
      result = { i, ok: false, error: errorName(err) };
    }
    out(result);
  }
}
exit(0);
