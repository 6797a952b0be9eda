/**
 * Turns an ensemble result into the markdown the user reads: the answer or picked code, the confidence, how many
 * models agree, a per-model table (status, latency, cluster) and the dissenting alternatives as diffs; and the
 * outcome of "Make Tests Pass" (k/n candidates pass, or the honest "no candidate passed" with the best attempt's
 * failures) and of "Generate Tests". Pure: no `vscode` import, so it is unit-tested without an editor.
 */
import type {
  CandidateReport,
  Cluster,
  FixWithTestsResponse,
  GenerateTestsResponse,
  ModelAnswer,
  ModelInfo,
  Result,
  RunResponse,
} from "./protocol";

/** Markdown table cells must not contain pipes or newlines. */
export function cell(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\|/g, "\\|").replace(/\r?\n/g, " ").trim();
}

/** A code fence longer than any backtick run inside the code, so the code can never close it. */
export function fence(code: string, language = ""): string {
  const longest = Math.max(2, ...[...code.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = "`".repeat(longest + 1);
  const body = code.endsWith("\n") ? code : `${code}\n`;
  return `${ticks}${language}\n${body}${ticks}`;
}

export function formatConfidence(confidence: number | undefined): string {
  if (confidence === undefined || Number.isNaN(confidence)) {
    return "n/a";
  }
  return confidence.toFixed(2);
}

/** A word for the confidence, so the number is not the only signal. */
export function confidenceWord(confidence: number | undefined): string {
  if (confidence === undefined) {
    return "unknown";
  }
  if (confidence >= 0.75) {
    return "high";
  }
  if (confidence >= 0.45) {
    return "medium";
  }
  return "low";
}

export function formatLatency(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) {
    return "–";
  }
  return seconds < 10 ? `${seconds.toFixed(2)} s` : `${seconds.toFixed(1)} s`;
}

export function modelId(model: ModelInfo): string {
  return model.endpoint ? `${model.name}@${model.endpoint}` : model.name;
}

/** Which cluster (1 = the pick's) an answer ended up in; "" when in none. */
export function clusterOf(answer: ModelAnswer, clusters: readonly Cluster[]): string {
  const id = modelId(answer.model);
  const sampled = `${id}#${answer.sample ?? 0}`;
  const index = clusters.findIndex((c) => c.members.some((m) => m === id || m === sampled));
  if (index < 0) {
    return "";
  }
  return index === 0 ? "1 (pick)" : String(index + 1);
}

export function modelTable(result: Result): string {
  const answers = result.answers ?? [];
  if (answers.length === 0) {
    return "_No model was asked._";
  }
  const clusters = result.consensus?.clusters ?? [];
  const rows = answers.map((a) => {
    // Plain words, no emoji: they render as empty boxes in editors without an emoji font.
    const status = `${a.status}${a.reason && a.status !== "answered" ? ` (${a.reason})` : ""}`;
    const tokens = a.tokens_out === null || a.tokens_out === undefined ? "–" : String(a.tokens_out);
    return `| ${cell(a.model.name)} | ${cell(a.model.endpoint ?? "")} | ${cell(status)} | ${formatLatency(a.latency_s)} | ${tokens} | ${clusterOf(a, clusters)} |`;
  });
  return ["| Model | Endpoint | Status | Latency | Tokens | Cluster |", "|---|---|---|---|---|---|", ...rows].join("\n");
}

export function summaryLine(result: Result): string {
  const c = result.consensus;
  if (!c) {
    return "No consensus.";
  }
  const conf = formatConfidence(c.confidence);
  return `**Confidence ${conf}** (${confidenceWord(c.confidence)}) — ${c.agree ?? 0} of ${c.asked ?? 0} models agree, ${c.answered ?? 0} answered${uncheckedNote(c.unchecked)}`;
}

/** " — **not checked**: why" for a pick nothing checked against the user's code; "" for a checked one. */
export function uncheckedNote(unchecked: string | null | undefined): string {
  return unchecked ? ` — **not checked**: ${cell(unchecked)}` : "";
}

function alternatives(result: Result, language: string): string[] {
  const clusters = result.consensus?.clusters ?? [];
  const out: string[] = [];
  clusters.slice(1).forEach((cluster, i) => {
    const members = cluster.members.map((m) => `\`${m}\``).join(", ");
    out.push(`### Alternative ${i + 1} — ${cluster.members.length} model(s): ${members}`);
    out.push(cluster.diff ? fence(cluster.diff, "diff") : fence(cluster.representative, language));
  });
  return out;
}

function findings(result: Result): string[] {
  const list = result.consensus?.findings ?? [];
  if (list.length === 0) {
    return [];
  }
  const rows = list.map(
    (f) =>
      `| ${f.line + 1} | ${cell(f.severity ?? "warning")} | ${cell(f.message)} | ${f.support ?? f.models?.length ?? 0} | ${formatConfidence(f.confidence)} |`,
  );
  return ["## Findings", "", "| Line | Severity | Finding | Models | Confidence |", "|---|---|---|---|---|", ...rows];
}

/** The whole document shown after Ask / Review / Fix / Improve. */
export function renderResult(response: RunResponse, title?: string): string {
  const result = response.result ?? undefined;
  const task = result?.request?.task ?? "ask";
  const language = result?.request?.context?.language ?? "python";
  const lines: string[] = [`# ${title ?? `CodeConductor: ${task}`}`, ""];
  if (result?.request?.instruction && !(title ?? "").includes(result.request.instruction)) {
    lines.push(`> ${cell(result.request.instruction)}`, "");
  }
  if (response.status && !["answered", "applied", "reviewed", "proposed"].includes(response.status)) {
    lines.push(`**Status:** ${response.status}${response.message ? ` — ${cell(response.message)}` : ""}`, "");
  }
  if (result) {
    lines.push(summaryLine(result), "");
  } else if (response.confidence !== undefined) {
    lines.push(`**Confidence ${formatConfidence(response.confidence)}** — ${response.agree ?? 0} of ${response.asked ?? 0} models agree${uncheckedNote(response.unchecked)}`, "");
  }
  const kind = result?.consensus?.kind;
  const answerText = response.answer ?? (kind === "text" ? result?.consensus?.pick : undefined);
  if (answerText) {
    lines.push("## Answer", "", answerText.trim(), "");
  } else if (response.newText ?? (kind === "code" ? result?.consensus?.pick : undefined)) {
    lines.push("## Consensus", "", fence(response.newText ?? result?.consensus?.pick ?? "", language), "");
  }
  lines.push(...findings(result ?? {}));
  if (result) {
    lines.push("", "## Models", "", modelTable(result), "");
    const alts = alternatives(result, language);
    if (alts.length > 0) {
      lines.push("## Disagreement", "", ...alts, "");
    }
    const notes = [...(result.consensus?.notes ?? []), ...(result.notes ?? [])];
    if (notes.length > 0) {
      lines.push("## Notes", "", ...notes.map((n) => `- ${cell(n)}`), "");
    }
    if (result.wall_s !== undefined) {
      lines.push(`_Run ${result.id ?? ""} took ${formatLatency(result.wall_s)}${result.consensus?.method ? `; method: ${cell(result.consensus.method)}` : ""}._`);
    }
  }
  return lines.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}

/** One line per model for the quick pick of List Models. */
export function modelLabel(model: ModelInfo): { label: string; description: string; detail: string } {
  const facts = [model.parameter_size, model.quantization, model.family].filter((x): x is string => Boolean(x));
  return {
    label: model.name,
    description: `${model.provider ?? ""}${model.loaded ? " · loaded" : ""}`,
    detail: [model.endpoint ?? "", ...facts].filter(Boolean).join(" · "),
  };
}

function modelNames(models: readonly string[] | undefined): string {
  // "name@endpoint" ids are long; the name is what the user recognises.
  const names = (models ?? []).map((m) => m.split("@", 1)[0] ?? m);
  return names.length > 0 ? names.map((n) => `\`${n}\``).join(", ") : "–";
}

function testsPassed(c: CandidateReport): string {
  return c.total !== undefined ? `${c.passed ?? 0}/${c.total}` : "–";
}

/** The one-line outcome of "Make Tests Pass", for notifications. */
export function fixSummary(response: FixWithTestsResponse): string {
  const message = response.message ?? response.outcome?.message ?? response.status ?? "no result";
  switch (response.status) {
    case "passed":
      return `CodeConductor: ${message}${response.applied ? " — fix applied" : ""}.`;
    case "proposed":
      return `CodeConductor: ${message} — fix not applied (proposed).`;
    case "cancelled":
      return "CodeConductor: Make Tests Pass cancelled.";
    default:
      return message.startsWith("CodeConductor") ? message : `CodeConductor: ${message}`;
  }
}

/** The markdown shown after "Make Tests Pass": k/n candidates pass (and the fix), or no candidate passed (with
 * the best attempt and its failures), each round's candidates and the tests used. */
export function renderFixWithTests(response: FixWithTestsResponse, title?: string): string {
  const outcome = response.outcome;
  const fn = outcome?.function;
  const lines: string[] = [`# ${title ?? `CodeConductor: make tests pass${fn ? ` (${fn})` : ""}`}`, ""];
  const message = response.message ?? outcome?.message ?? "";
  const passed = outcome?.status === "passed";
  if (passed) {
    const applied = response.applied ? "fix applied" : `fix not applied (${response.status ?? "?"})`;
    lines.push(`**${cell(message)}** — ${applied}`, "");
  } else if (outcome?.status === "already_passing") {
    lines.push(`**The tests already pass** — ${cell(message)}`, "");
  } else if (outcome?.status === "failed") {
    lines.push(`**No candidate passed the tests.** ${cell(message)}`, "", "Nothing was changed in your code.", "");
  } else {
    lines.push(`**Status:** ${response.status ?? "unknown"}${message ? ` — ${cell(message)}` : ""}`, "");
  }
  const tests = response.tests ?? [];
  if (tests.length > 0) {
    lines.push(`Tests: ${tests.map((t) => `\`${cell(t)}\``).join(", ")}`, "");
  }
  const language = "python";
  if (passed) {
    lines.push(`## Fix (from ${modelNames(outcome?.pick_models)})`, "", fence(response.newText ?? outcome?.pick ?? "", language), "");
  }
  const best = outcome?.best;
  if (!passed && best) {
    lines.push(
      `## Best attempt: tests ${cell(best.summary ?? testsPassed(best))} (round ${best.round}, ${modelNames(best.models)})`,
      "",
      fence(best.code ?? "", language),
      "",
    );
    if (best.failures) {
      lines.push("### Its failures", "", fence(best.failures, "text"), "");
    }
  }
  const baseline = outcome?.baseline;
  if (baseline) {
    lines.push(`## Current code: tests ${cell(baseline.summary ?? testsPassed(baseline))}`, "");
    if (baseline.failures && !passed && !best) {
      lines.push(fence(baseline.failures, "text"), "");
    }
  }
  const rounds = outcome?.rounds ?? [];
  const candidates = rounds.flatMap((r) => r.candidates ?? []);
  if (candidates.length > 0) {
    lines.push("## Candidates", "", "| Round | Models | Tests passed | Result |", "|---|---|---|---|");
    for (const c of candidates) {
      // The summary repeats the count; keep only what it adds ("1 error(s)", "timed out").
      const extra = (c.summary ?? "").replace(/^\d+\/\d+ passed,?\s*/, "");
      const verdict = c.ok ? "passes" : `fails${extra ? ` (${cell(extra)})` : ""}`;
      lines.push(`| ${c.round} | ${cell(modelNames(c.models))} | ${testsPassed(c)} | ${verdict} |`);
    }
    lines.push("");
  }
  if (rounds.length > 0) {
    lines.push("## Rounds", "", "| Round | Asked | Answered | Candidates | Passing | Time |", "|---|---|---|---|---|---|");
    for (const r of rounds) {
      lines.push(`| ${r.round} | ${r.asked ?? 0} | ${r.answered ?? 0} | ${r.candidates?.length ?? 0} | ${r.passing ?? 0} | ${formatLatency(r.wall_s)} |`);
    }
    lines.push("");
  }
  const notes = outcome?.notes ?? [];
  if (notes.length > 0) {
    lines.push("## Notes", "", ...notes.map((n) => `- ${cell(n)}`), "");
  }
  if (outcome?.wall_s !== undefined) {
    lines.push(`_Took ${formatLatency(outcome.wall_s)}._`);
  }
  return lines.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}

/** The markdown shown after "Generate Tests": each generated test, who wrote it, whether it was kept and why,
 * and the new test file. */
export function renderGenerateTests(response: GenerateTestsResponse, title?: string): string {
  const outcome = response.outcome;
  const fn = outcome?.function;
  const lines: string[] = [`# ${title ?? `CodeConductor: generate tests${fn ? ` (${fn})` : ""}`}`, ""];
  const message = response.message ?? outcome?.message ?? "";
  const where = response.uri ?? outcome?.path;
  if (response.status === "generated") {
    const state = response.applied ? "created" : "not created";
    lines.push(`**${cell(message)}** — ${where ? `\`${cell(where)}\` ` : ""}${state}`, "");
  } else {
    lines.push(`**Status:** ${response.status ?? "unknown"}${message ? ` — ${cell(message)}` : ""}`, "");
  }
  const tests = outcome?.tests ?? [];
  if (tests.length > 0) {
    lines.push("## Generated tests", "", "| Test | Models | Support | Outcome | Kept | Why |", "|---|---|---|---|---|---|");
    for (const t of tests) {
      lines.push(
        `| \`${cell(t.name)}\` | ${cell(modelNames(t.models))} | ${t.support ?? 0} | ${cell(t.outcome ?? "not_run")} | ${t.kept ? "yes" : "no"} | ${cell(t.reason ?? "")} |`,
      );
    }
    lines.push("");
  }
  const content = response.content ?? outcome?.content ?? "";
  if (content) {
    lines.push("## Test file", "", fence(content, "python"), "");
  }
  const notes = outcome?.notes ?? [];
  if (notes.length > 0) {
    lines.push("## Notes", "", ...notes.map((n) => `- ${cell(n)}`), "");
  }
  if (outcome?.wall_s !== undefined) {
    lines.push(`_Took ${formatLatency(outcome.wall_s)}._`);
  }
  return lines.join("\n").replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}

/** Test ids typed by the user ("a.py::t, b.py  c.py") as a list; empty means "let the server choose". */
export function parseTestIds(text: string | undefined): string[] {
  return [...new Set((text ?? "").split(/[\s,;]+/).filter((t) => t.length > 0))];
}

/** The markdown for any server command's response: the fix loop and test generation have their own shape. */
export function renderResponse(command: string, response: object, title?: string): string {
  if (command === "codeconductor.fixWithTests") {
    return renderFixWithTests(response as FixWithTestsResponse, title);
  }
  if (command === "codeconductor.generateTests") {
    return renderGenerateTests(response as GenerateTestsResponse, title);
  }
  return renderResult(response as RunResponse, title);
}
