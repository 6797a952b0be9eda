/**
 * Finds the Python interpreter that runs the CodeConductor language server and checks it can, so that a user
 * whose interpreter lacks the package gets a clear message with a fix instead of a silently dead extension.
 *
 * No `vscode` import: the sources of candidates are injected, which keeps this testable without an editor.
 */
import { execFile } from "node:child_process";

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

export type CheckFailure = "not-found" | "not-installed" | "broken";

export interface CheckResult {
  ok: boolean;
  failure?: CheckFailure;
  /** What went wrong, in the interpreter's own words (stderr), for the output channel. */
  detail?: string;
  version?: string;
}

export interface Choice {
  candidate: Candidate;
  check: CheckResult;
}

export interface Resolution {
  /** The first candidate that can import the server, if any. */
  chosen?: Candidate;
  /** Every candidate tried, with why it was rejected (for the error message). */
  tried: Choice[];
}

/** Runs `python -c ...`; injected in tests. Resolves with exit code, stdout, stderr; code null if not spawned. */
export type Runner = (
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number },
) => Promise<{ code: number | null; stdout: string; stderr: string; spawnError?: string }>;

export const IMPORT_CHECK =
  "import sys, server, ensemble; sys.stdout.write('%d.%d.%d' % sys.version_info[:3])";

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

/** Can `command` import the server package? */
export async function checkInterpreter(
  command: string,
  runner: Runner = defaultRunner,
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CheckResult> {
  const res = await runner(command, ["-c", IMPORT_CHECK], { ...options, timeoutMs: options.timeoutMs ?? 20000 });
  if (res.code === null) {
    const missing = res.spawnError === "ENOENT" || res.spawnError === "EACCES";
    return { ok: false, failure: missing ? "not-found" : "broken", detail: res.spawnError ?? "could not start" };
  }
  if (res.code === 0) {
    return { ok: true, version: res.stdout.trim() };
  }
  const notInstalled = /ModuleNotFoundError|No module named/.test(res.stderr);
  return { ok: false, failure: notInstalled ? "not-installed" : "broken", detail: lastLine(res.stderr) };
}

/** Try candidates in order; the first that imports the server wins. */
export async function resolveInterpreter(
  sources: CandidateSources,
  runner: Runner = defaultRunner,
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<Resolution> {
  const tried: Choice[] = [];
  for (const candidate of await candidates(sources)) {
    const check = await checkInterpreter(candidate.command, runner, options);
    tried.push({ candidate, check });
    if (check.ok) {
      return { chosen: candidate, tried };
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
      (t.check.ok ? `ok, Python ${t.check.version ?? "?"}` : `${t.check.failure}: ${t.check.detail ?? ""}`),
  );
}

export function installCommand(python: string): string {
  const quoted = /\s/.test(python) ? `"${python}"` : python;
  return `${quoted} -m pip install codeconductor`;
}

function lastLine(text: string): string {
  const lines = text.trim().split(/\r?\n/);
  return lines[lines.length - 1] ?? "";
}
