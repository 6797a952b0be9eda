// Loaded with `--require` (NODE_OPTIONS) by ensemble/verify/js_project.py in every node process of a Jest or
// Vitest job (the runner, its workers, the replay of recorded calls), before any code of the project's.
//
// 1. The text under test (the user's buffer, or a candidate in place of the selected function, with the
//    recorder appended in a record job) takes the module file's place: fs's read functions return it for the
//    module's path, so the runner's own module system (jest-runtime, vite) and its transforms (babel-jest,
//    ts-jest, esbuild) load it exactly as they load the file.
// 2. What no test of a function needs is noted as an event line in $CC_EVENTS (codes only; the parent maps them
//    to its own words): a connection to anything but loopback, a write outside the scratch, the project and
//    /dev, a child process killed by seccomp (SIGSYS). The sandbox refuses all of it anyway; the note is what
//    names the candidate hostile. Best effort: code in the same process could undo a hook, never what the
//    sandbox refuses.
"use strict";
const fs = require("fs");
const path = require("path");
const { fileURLToPath } = require("url");

const job = JSON.parse(fs.readFileSync(process.env.CC_JOB, "utf8"));
const target = String(job.target);
const source = String(job.source);
const root = String(job.root || "");
const events = String(process.env.CC_EVENTS || "");
const appendFileSync = fs.appendFileSync;
const seen = new Set();

function note(code) {
  if (seen.has(code) || !events) return;
  seen.add(code);
  try {
    appendFileSync(events, code + "\n");
  } catch (e) {
    // the scratch is full or gone: nothing more to say
  }
}

function pathOf(file) {
  try {
    if (typeof file === "string") return path.resolve(file);
    if (file instanceof URL) return fileURLToPath(file);
    if (Buffer.isBuffer(file)) return path.resolve(file.toString("utf8"));
  } catch (e) {
    // not a path at all
  }
  return null;
}

const isTarget = (file) => pathOf(file) === target;
const asked = (options) => (typeof options === "string" ? options : options && options.encoding) || null;
const served = (options) => {
  const encoding = asked(options);
  return encoding ? Buffer.from(source, "utf8").toString(encoding) : Buffer.from(source, "utf8");
};

// -- 1. the text under test ------------------------------------------------------------------------------
const readFileSync = fs.readFileSync;
fs.readFileSync = function (file, options) {
  if (isTarget(file)) return served(options);
  return readFileSync.apply(this, arguments);
};
const readFile = fs.readFile;
fs.readFile = function (file, options, callback) {
  if (isTarget(file)) {
    const done = typeof options === "function" ? options : callback;
    const value = served(typeof options === "function" ? null : options);
    process.nextTick(() => done(null, value));
    return undefined;
  }
  return readFile.apply(this, arguments);
};
const promisesReadFile = fs.promises.readFile;
fs.promises.readFile = function (file, options) {
  if (isTarget(file)) return Promise.resolve(served(options));
  return promisesReadFile.apply(this, arguments);
};

// The sandbox has no resolver configuration: "localhost" (which vite looks up at start) is answered here.
const dns = require("dns");
const localhost = (options) => {
  const family = typeof options === "number" ? options : (options && options.family) || 0;
  const one = family === 6 ? { address: "::1", family: 6 } : { address: "127.0.0.1", family: 4 };
  return options && typeof options === "object" && options.all ? [one] : one;
};
const lookup = dns.lookup;
dns.lookup = function (hostname, options, callback) {
  if (hostname !== "localhost") return lookup.apply(this, arguments);
  const done = typeof options === "function" ? options : callback;
  const found = localhost(typeof options === "function" ? null : options);
  process.nextTick(() => (Array.isArray(found) ? done(null, found) : done(null, found.address, found.family)));
  return {};
};
const lookupPromise = dns.promises.lookup;
dns.promises.lookup = function (hostname, options) {
  if (hostname === "localhost") return Promise.resolve(localhost(options));
  return lookupPromise.apply(this, arguments);
};

// -- 2. events ---------------------------------------------------------------------------------------------
const inside = (file, folder) => folder && (file === folder || file.startsWith(folder + path.sep));
function writing(file) {
  const where = pathOf(file);
  if (where === null) return;
  if (inside(where, "/tmp") || inside(where, "/dev") || inside(where, root)) return;
  note("write");
}
const WRITE_FLAGS = /[wa+]/;
for (const name of ["writeFileSync", "appendFileSync", "mkdirSync", "rmSync", "rmdirSync", "unlinkSync",
  "renameSync", "copyFileSync", "symlinkSync", "linkSync", "chmodSync", "chownSync", "truncateSync",
  "writeFile", "appendFile", "mkdir", "rm", "rmdir", "unlink", "rename", "copyFile", "symlink", "link",
  "chmod", "chown", "truncate", "createWriteStream"]) {
  const original = fs[name];
  if (typeof original !== "function") continue;
  fs[name] = function (file) {
    if (name !== "appendFileSync" || file !== events) writing(file);
    if ((name === "renameSync" || name === "rename" || name.startsWith("symlink") || name.startsWith("link"))) {
      writing(arguments[1]);
    }
    return original.apply(this, arguments);
  };
}
for (const name of ["writeFile", "appendFile", "mkdir", "rm", "rmdir", "unlink", "rename", "copyFile",
  "symlink", "link", "chmod", "chown", "truncate"]) {
  const original = fs.promises[name];
  if (typeof original !== "function") continue;
  fs.promises[name] = function (file) {
    writing(file);
    return original.apply(this, arguments);
  };
}
for (const [holder, name] of [[fs, "openSync"], [fs, "open"], [fs.promises, "open"]]) {
  const original = holder[name];
  holder[name] = function (file, flags) {
    if (typeof flags === "string" ? WRITE_FLAGS.test(flags) : typeof flags === "number" && (flags & 3) !== 0) {
      writing(file);
    }
    return original.apply(this, arguments);
  };
}

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|::1|0\.0\.0\.0|::|::ffff:127\.\d+\.\d+\.\d+)$/i;
function connecting(args) {
  let options = args[0];
  if (Array.isArray(options)) options = options[0]; // the normalized form net uses internally
  let host = "localhost";
  if (options && typeof options === "object") {
    if (typeof options.path === "string") return; // a unix socket: inside the sandbox's own scratch or nothing
    if (typeof options.host === "string") host = options.host;
  } else if (typeof options === "string" && !/^\d+$/.test(options)) {
    return; // a unix socket path
  } else if (typeof args[1] === "string") {
    host = args[1];
  }
  if (!LOOPBACK.test(host.replace(/^\[|\]$/g, ""))) note("network");
}
const net = require("net");
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function () {
  connecting(arguments);
  return connect.apply(this, arguments);
};
const dgram = require("dgram");
const send = dgram.Socket.prototype.send;
dgram.Socket.prototype.send = function () {
  const args = Array.from(arguments).filter((a) => typeof a === "string");
  if (args.length && !LOOPBACK.test(args[args.length - 1])) note("network");
  return send.apply(this, arguments);
};

const childProcess = require("child_process");
const emit = childProcess.ChildProcess.prototype.emit;
childProcess.ChildProcess.prototype.emit = function (event, code, signal) {
  if ((event === "exit" || event === "close") && signal === "SIGSYS") note("syscall");
  return emit.apply(this, arguments);
};
for (const name of ["spawnSync", "execSync", "execFileSync"]) {
  const original = childProcess[name];
  childProcess[name] = function () {
    try {
      const result = original.apply(this, arguments);
      if (result && result.signal === "SIGSYS") note("syscall");
      return result;
    } catch (error) {
      if (error && error.signal === "SIGSYS") note("syscall");
      throw error;
    }
  };
}
require("module").syncBuiltinESMExports();
