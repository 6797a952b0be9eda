/**
 * Finds the Python interpreter that runs the CodeConductor language server and checks it does, so that a user
 * whose interpreter lacks the package gets a clear message with a fix instead of a silently dead extension.
 *
 * The check is a handshake with our server itself, `python -I -m codeconductor.server --handshake`: `-I` keeps the
 * working directory (a project's own `server.py` or `codeconductor/`), the user's site-packages and every
 * `PYTHON*` variable off `sys.path`, and the answer (JSON: distribution name, version, the interpreter's absolute
 * path) must be CodeConductor's, in a version this extension speaks. The server then starts the same way, by that
 * absolute path (SERVER_ARGS).
 *
 * No `vscode` import: the sources of candidates are injected, which keeps this testable without an editor.
 */
import { execFile } from "node:child_process";
import { isAbsolute } from "node:path";

/** The server's module: the package `codeconductor.server` of the distribution `codeconductor`. */
export const SERVER_MODULE = "codeconductor.server";
export const DISTRIBUTION = "codeconductor";
/** How the server starts: isolated (-I), unbuffered (-u: -I ignores PYTHONUNBUFFERED), over stdio. */
export const SERVER_ARGS: readonly string[] = ["-I", "-u", "-m", SERVER_MODULE];
/** The probe: the same module, isolated the same way, answering one JSON line and exiting. */
export const HANDSHAKE_ARGS: readonly string[] = ["-I", "-m", SERVER_MODULE, "--handshake"];

/** What `python -I -m codeconductor.server --handshake` prints. */
export interface Handshake {
  name: string;
  version: string;
  python: string;
  executable: string;
}

export type InterpreterSource = "python-extension" | "setting" | "path";

export interface Candidate {
  command: string;
  source: InterpreterSource;
}

export interface CandidateSources {
  /** The Python extension's selected interpreter (undefined when the extension is absent or has none). */
  pythonExtension: () => Promise<string | undefined>;
  /** The `codeconductor.python` setting ("" when unset). */
  setting: () => string | undefined;
  /** Names tried on PATH, in order. */
  pathNames?: readonly string[];
}

export type CheckFailure = "not-found" | "not-installed" | "incompatible" | "broken";

export interface CheckResult {
  ok: boolean;
  failure?: CheckFailure;
  /** What went wrong, in the interpreter's own words (stderr), for the output channel. */
  detail?: string;
  /** The Python version (from the handshake). */
  version?: string;
  /** The server's handshake, when it answered as CodeConductor's server (also when its version does not fit). */
  handshake?: Handshake;
}

export interface Choice {
  candidate: Candidate;
  check: CheckResult;
}

export interface Resolution {
  /** The first candidate whose server answered the handshake in a version this extension speaks, if any. */
  chosen?: Candidate;
  /** Its handshake: `executable` is the absolute path the server is started with. */
  handshake?: Handshake;
  /** Every candidate tried, with why it was rejected (for the error message). */
  tried: Choice[];
}

/** Runs `python -c ...`; injected in tests. Resolves with exit code, stdout, stderr; code null if not spawned. */
export type Runner = (
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
) => Promise<{ code: number | null; stdout: string; stderr: string; spawnError?: string }>;

export interface CheckOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** This extension's version: the server's must have the same major.minor (unset: any version). */
  expectedVersion?: string;
}

/** The handshake's JSON, or undefined when the answer is not CodeConductor's (another program, garbage). */
export function parseHandshake(stdout: string): Handshake | undefined {
  const line = stdout.trim().split(/\r?\n/).pop() ?? "";
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!value || typeof value !== "object") {
    return undefined;
  }
  const v = value as Record<string, unknown>;
  const fields = ["name", "version", "python", "executable"] as const;
  if (!fields.every((key) => typeof v[key] === "string") || v.name !== DISTRIBUTION) {
    return undefined;
  }
  return { name: v.name, version: v.version as string, python: v.python as string, executable: v.executable as string };
}

/** Same major and minor version (0.1.x speaks with 0.1.y): the protocol changes only with the minor version. */
export function compatibleVersion(server: string, expected: string): boolean {
  const majorMinor = (version: string): string | undefined => /^(\d+)\.(\d+)(?:[.\-+]|$)/.exec(version)?.slice(1, 3).join(".");
  const have = majorMinor(server);
  return have !== undefined && have === majorMinor(expected);
}

/** The environment the probe and the server get: the user's, without PYTHON* variables (PYTHONPATH, PYTHONHOME,
 * PYTHONSTARTUP... `-I` ignores them for the interpreter; removing them keeps them from the server's own children). */
export function serverEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !/^PYTHON/i.test(key)));
}

/** The absolute path to start the server with: the handshake's interpreter, else the candidate's command. */
export function serverCommand(candidate: Candidate, handshake: Handshake | undefined): string {
  return handshake && isAbsolute(handshake.executable) ? handshake.executable : candidate.command;
}

/** Candidates in order of preference, without duplicates. */
export async function candidates(sources: CandidateSources): Promise<Candidate[]> {
  const out: Candidate[] = [];
  const add = (command: string | undefined, source: InterpreterSource): void => {
    const trimmed = command?.trim();
    if (trimmed && !out.some((c) => c.command === trimmed)) {
      out.push({ command: trimmed, source });
    }
  };
  let fromExtension: string | undefined;
  try {
    fromExtension = await sources.pythonExtension();
  } catch {
    fromExtension = undefined; // a broken Python extension must not stop us from trying the others
  }
  add(fromExtension, "python-extension");
  add(sources.setting(), "setting");
  for (const name of sources.pathNames ?? defaultPathNames()) {
    add(name, "path");
  }
  return out;
}

export function defaultPathNames(platform: NodeJS.Platform = process.platform): string[] {
  return platform === "win32" ? ["python", "py"] : ["python3", "python"];
}

export const defaultRunner: Runner = (command, args, options) =>
  new Promise((resolve) => {
    execFile(
      command,
      [...args],
      { cwd: options.cwd, env: options.env, timeout: options.timeoutMs, windowsHide: true },
      (error, stdout, stderr) => {
        const err = error as (NodeJS.ErrnoException & { code?: string | number }) | null;
        if (err && typeof err.code === "string") {
          resolve({ code: null, stdout: String(stdout), stderr: String(stderr), spawnError: err.code });
          return;
        }
        resolve({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });

/** Does `command` run CodeConductor's server, in a version this extension speaks? (the handshake) */
export async function checkInterpreter(
  command: string,
  runner: Runner = defaultRunner,
  options: CheckOptions = {},
): Promise<CheckResult> {
  const res = await runner(command, HANDSHAKE_ARGS, {
    cwd: options.cwd,
    env: serverEnv(options.env ?? process.env),
    timeoutMs: options.timeoutMs ?? 20000,
  });
  if (res.code === null) {
    const missing = res.spawnError === "ENOENT" || res.spawnError === "EACCES";
    return { ok: false, failure: missing ? "not-found" : "broken", detail: res.spawnError ?? "could not start" };
  }
  if (res.code !== 0) {
    const notInstalled = /No module named '?codeconductor/.test(res.stderr);
    return { ok: false, failure: notInstalled ? "not-installed" : "broken", detail: lastLine(res.stderr) };
  }
  const handshake = parseHandshake(res.stdout);
  if (!handshake) {
    const said = lastLine(res.stdout).slice(0, 200);
    return { ok: false, failure: "broken", detail: `not CodeConductor's server (it answered: ${said || "nothing"})` };
  }
  if (options.expectedVersion && !compatibleVersion(handshake.version, options.expectedVersion)) {
    return {
      ok: false,
      failure: "incompatible",
      detail: `CodeConductor ${handshake.version}, this extension needs ${majorMinorX(options.expectedVersion)}`,
      version: handshake.python,
      handshake,
    };
  }
  return { ok: true, version: handshake.python, handshake };
}

/** Try candidates in order; the first whose server answers the handshake in a fitting version wins. */
export async function resolveInterpreter(
  sources: CandidateSources,
  runner: Runner = defaultRunner,
  options: CheckOptions = {},
): Promise<Resolution> {
  const tried: Choice[] = [];
  for (const candidate of await candidates(sources)) {
    const check = await checkInterpreter(candidate.command, runner, options);
    tried.push({ candidate, check });
    if (check.ok) {
      return { chosen: candidate, handshake: check.handshake, tried };
    }
  }
  return { tried };
}

const SOURCE_LABEL: Record<InterpreterSource, string> = {
  "python-extension": "Python extension's interpreter",
  setting: "codeconductor.python",
  path: "PATH",
};

/** One sentence for the error notification, plus the install hint. */
export function explainFailure(res: Resolution): string {
  if (res.tried.length === 0) {
    return "CodeConductor: no Python interpreter found. Install Python 3.11+ or set codeconductor.python.";
  }
  const installable = res.tried.find((t) => t.check.failure === "not-installed");
  if (installable) {
    return (
      `CodeConductor: the server is not installed for ${installable.candidate.command} ` +
      `(${SOURCE_LABEL[installable.candidate.source]}). Run: ${installCommand(installable.candidate.command)}`
    );
  }
  const incompatible = res.tried.find((t) => t.check.failure === "incompatible");
  if (incompatible) {
    return (
      `CodeConductor: ${incompatible.candidate.command} has ${incompatible.check.detail ?? "another version"}. ` +
      `Install the matching version (see the extension's README).`
    );
  }
  if (res.tried.every((t) => t.check.failure === "not-found")) {
    const names = res.tried.map((t) => t.candidate.command).join(", ");
    return `CodeConductor: no Python interpreter found (tried ${names}). Install Python 3.11+ or set codeconductor.python.`;
  }
  const first = res.tried.find((t) => t.check.failure === "broken") ?? res.tried[0];
  return `CodeConductor: ${first.candidate.command} cannot start the server: ${first.check.detail ?? "unknown error"}`;
}

/** Every candidate with its outcome, for the output channel. */
export function describeAttempts(res: Resolution): string[] {
  return res.tried.map(
    (t) =>
      `${t.candidate.command} (${SOURCE_LABEL[t.candidate.source]}): ` +
      (t.check.ok
        ? `ok, CodeConductor ${t.check.handshake?.version ?? "?"} on Python ${t.check.version ?? "?"} (${t.check.handshake?.executable ?? "?"})`
        : `${t.check.failure}: ${t.check.detail ?? ""}`),
  );
}

export function installCommand(python: string): string {
  const quoted = /\s/.test(python) ? `"${python}"` : python;
  return `${quoted} -m pip install codeconductor`;
}

function majorMinorX(version: string): string {
  const [major = "0", minor = "0"] = version.split(".");
  return `${major}.${minor}.x`;
}

function lastLine(text: string): string {
  const lines = text.trim().split(/\r?\n/);
  return lines[lines.length - 1] ?? "";
}
