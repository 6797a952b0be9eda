/**
 * Turns an ensemble result into the markdown the user reads: the answer or picked code, the confidence, how many
 * models agree, a per-model table (status, latency, cluster) and the dissenting alternatives as diffs. Pure: no
 * `vscode` import, so it is unit-tested without an editor.
 */
import type { Cluster, ModelAnswer, ModelInfo, Result, RunResponse } from "./protocol";

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
  return `**Confidence ${conf}** (${confidenceWord(c.confidence)}) — ${c.agree ?? 0} of ${c.asked ?? 0} models agree, ${c.answered ?? 0} answered`;
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
    lines.push(`**Confidence ${formatConfidence(response.confidence)}** — ${response.agree ?? 0} of ${response.asked ?? 0} models agree`, "");
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
