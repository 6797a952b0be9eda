// CodeConductor's JavaScript harness, run by node inside the sandbox (ensemble/languages/javascript.py).
// Usage: node [permission flags] harness.js KEY. Reads job.json from the working directory: {code, entry, calls:
// [expression], callTimeoutMs} - call expressions only: no expected value ever enters the sandbox, every comparison
// happens in the parent. Defines the candidate in a fresh vm context (no require, no process, a silent console
// made inside the context, so no object of this realm is handed to it), evaluates each call, and writes one line
// per call: KEY, a space, then JSON {i, ok: true, value} (value: the canonical JSON text of the result - sorted
// keys, floats to 9 significant digits, tags such as "<undefined>") or {i, ok: false, error} (the error's name);
// a candidate that cannot be defined gives one {load_error} line; a candidate that tries what no function needs (a
// connection, a process, a write outside the scratch, node's internal bindings) gives a {hostile: CODE} line. KEY is a per-job random string from argv, taken
// out of process.argv before the candidate loads; lines without it are the candidate's and make the parent fail
// the whole run. Everything used after the candidate loads is bound before it does; the process ends with
// reallyExit (no 'exit' listeners, no pending callbacks run after the last line).
// The vm context is not a security boundary (the sandbox and node's permission model are); see
// docs/reliability.md for what a candidate that leaves it can and cannot do.
"use strict";
const fs = require("fs");
const vm = require("vm");

const uncurry = (f) => Function.prototype.call.bind(f);
const writeSync = fs.writeSync;
const reallyExit = process.reallyExit;
const stringify = JSON.stringify;
const keysOf = Object.keys;
const isArray = Array.isArray;
const isView = ArrayBuffer.isView;
const isFinite = Number.isFinite;
const isInteger = Number.isInteger;
const toNumber = Number;
const toText = String;
const push = uncurry(Array.prototype.push);
const sort = uncurry(Array.prototype.sort);
const sliceText = uncurry(String.prototype.slice);
const toPrecision = uncurry(Number.prototype.toPrecision);
const tagOf = uncurry(Object.prototype.toString);
const bigintText = uncurry(BigInt.prototype.toString);
const runInContext = vm.runInContext;

const key = toText(process.argv[2] || "");
process.argv.length = 2;
const job = JSON.parse(fs.readFileSync("job.json", "utf8"));
const calls = job.calls;
const out = (obj) => writeSync(1, key + " " + stringify(obj) + "\n");
const finish = () => reallyExit(0);

// What no function needs, reachable by a candidate that leaves the vm context (this realm's process and modules):
// reported as one {hostile: CODE} line before it is refused (the parent names the candidate with its own words
// for CODE). The sandbox and node's permission model refuse it anyway; the line is what names the candidate.
const refuse = (code) =>
  function refused() {
    out({ hostile: code });
    throw new Error("not allowed: " + code);
  };
const net = require("net");
const dgram = require("dgram");
const childProcess = require("child_process");
net.Socket.prototype.connect = refuse("network");
dgram.Socket.prototype.send = refuse("network");
dgram.Socket.prototype.bind = refuse("network");
for (const name of ["spawn", "spawnSync", "exec", "execSync", "execFile", "execFileSync", "fork"]) {
  childProcess[name] = refuse("process");
}
for (const name of ["binding", "_linkedBinding", "dlopen"]) process[name] = refuse("binding");
const isScratch = (file) => typeof file === "string" && /^\/tmp\/[^.]/.test(file) && !file.includes("..");
for (const name of ["writeFileSync", "appendFileSync", "mkdirSync", "rmSync", "rmdirSync", "unlinkSync", "renameSync",
  "copyFileSync", "symlinkSync", "linkSync", "chmodSync", "chownSync", "truncateSync", "writeFile", "appendFile",
  "mkdir", "rm", "rmdir", "unlink", "rename", "copyFile", "symlink", "link", "chmod", "chown", "truncate",
  "createWriteStream", "openSync", "open"]) {
  const original = fs[name];
  const flagged = refuse("write");
  fs[name] = function (file, flags) {
    const opening = name === "openSync" || name === "open";
    if (opening && !(typeof flags === "string" ? /[wa+]/.test(flags) : typeof flags === "number" && (flags & 3))) {
      return original.apply(this, arguments);
    }
    return isScratch(file) ? original.apply(this, arguments) : flagged();
  };
}
for (const name of ["writeFile", "appendFile", "mkdir", "rm", "rmdir", "unlink", "rename", "copyFile", "symlink",
  "link", "chmod", "chown", "truncate"]) {
  const original = fs.promises[name];
  const flagged = refuse("write");
  fs.promises[name] = function (file) {
    return isScratch(file) ? original.apply(this, arguments) : flagged();
  };
}

const context = vm.createContext(Object.create(null));
runInContext(
  "(() => { const quiet = () => undefined; globalThis.console = { log: quiet, error: quiet, warn: quiet, " +
    "info: quiet, debug: quiet, trace: quiet, assert: quiet, dir: quiet, table: quiet }; })();",
  context,
);
const timeout = Math.max(1, job.callTimeoutMs | 0);

function canon(value, depth) {
  if (depth > 20) return "<deep>";
  if (value === null) return null;
  if (value === undefined) return "<undefined>";
  const type = typeof value;
  if (type === "number") {
    if (!isFinite(value)) return "<" + toText(value) + ">";
    return isInteger(value) ? value : toNumber(toPrecision(value, 9));
  }
  if (type === "bigint") return "<bigint " + bigintText(value) + ">";
  if (type === "string" || type === "boolean") return value;
  if (type === "function") return "<function>";
  if (type === "symbol") return "<symbol>";
  if (isArray(value) || isView(value)) {
    const items = [];
    const length = value.length;
    for (let i = 0; i < length; i++) push(items, canon(value[i], depth + 1));
    return items;
  }
  const tag = tagOf(value);
  if (tag === "[object Set]") {
    const items = [];
    for (const v of value) push(items, stringify(canon(v, depth + 1)));
    return { "<set>": sort(items) };
  }
  if (tag === "[object Map]") {
    const items = [];
    for (const [k, v] of value) push(items, [stringify(canon(k, depth + 1)), canon(v, depth + 1)]);
    return { "<map>": sort(items) };
  }
  if (tag === "[object Promise]") return "<promise>";
  const keys = sort(keysOf(value));
  const obj = {};
  for (let i = 0; i < keys.length; i++) obj[keys[i]] = canon(value[keys[i]], depth + 1);
  return obj;
}

function errorName(err) {
  try {
    if (err && err.code === "ERR_SCRIPT_EXECUTION_TIMEOUT") return "Timeout";
    if (err && typeof err.name === "string") return sliceText(err.name, 0, 100) || "Error";
  } catch (e) {
    // a getter that throws: the name of what was thrown is unknowable
  }
  return "Throw";
}

try {
  runInContext(job.code, context, { timeout: timeout * 2, filename: "candidate.js" });
  if (job.entry && runInContext("typeof " + job.entry, context, { timeout }) !== "function") {
    throw new ReferenceError(job.entry + " is not defined");
  }
} catch (err) {
  out({ load_error: errorName(err) });
  finish();
}

for (let i = 0; i < calls.length; i++) {
  let result;
  try {
    const value = runInContext("(" + calls[i] + ")", context, { timeout, filename: "call.js" });
    let text = stringify(canon(value, 0));
    if (text === undefined) text = "\"<undefined>\"";
    result = { i, ok: true, value: text.length <= 2000 ? text : sliceText(text, 0, 2000) + "...#" + text.length };
  } catch (err) {
    result = { i, ok: false, error: errorName(err) };
  }
  out(result);
}
finish();
