/**
 * What the status bar says: how many models are up ("⚖ 4 models"), a spinner while runs are in flight, or a
 * warning when the server is down or no model answers. Pure, so it is tested without an editor.
 */

import type { EndpointInfo } from "./engine";

export type { EndpointInfo };

export type ServerState = "starting" | "running" | "stopped" | "failed";

export interface StatusView {
  text: string;
  tooltip: string;
  warning: boolean;
}

export function statusView(state: ServerState, models: number | undefined, running: number | undefined): StatusView {
  if (state === "starting") {
    return { text: "$(sync~spin) CodeConductor", tooltip: "CodeConductor: starting the server…", warning: false };
  }
  if (state === "failed" || state === "stopped") {
    return {
      text: "$(error) CodeConductor",
      tooltip: `CodeConductor: the server ${state === "failed" ? "could not start" : "stopped"} — click for the log`,
      warning: true,
    };
  }
  const n = models ?? 0;
  const noun = n === 1 ? "model" : "models";
  if (running && running > 0) {
    return {
      text: `$(sync~spin) ⚖ ${n} ${noun}`,
      tooltip: `CodeConductor: ${running} run${running === 1 ? "" : "s"} in flight on ${n} ${noun} — click for the model list`,
      warning: false,
    };
  }
  if (models === undefined) {
    return { text: "⚖ …", tooltip: "CodeConductor: looking for models…", warning: false };
  }
  return {
    text: `⚖ ${n} ${noun}`,
    tooltip: n === 0 ? "CodeConductor: no model is up — click to refresh" : `CodeConductor: ${n} ${noun} up — click for the list`,
    warning: n === 0,
  };
}

/** One row of a quick pick (structurally a vscode.QuickPickItem, so this file stays free of `vscode`). */
export interface MenuItem {
  label: string;
  description?: string;
  detail?: string;
  kind?: number; // -1: a separator (vscode.QuickPickItemKind.Separator)
  action?: "cancel" | "output" | "dashboard" | "refresh" | "models";
}

/** The last run the user made, as the status menu shows it. */
export interface LastRun {
  task: string;
  confidence?: number;
  agree?: number;
  asked?: number;
  wallS?: number;
  /** The pick was not checked against the user's code. */
  unchecked?: boolean;
  at: Date;
}

/** The status bar menu: each server up or down (and why), the last run, then the actions. Pure, unit-tested. */
export function statusMenuItems(endpoints: readonly EndpointInfo[], last: LastRun | undefined, running: number): MenuItem[] {
  const items: MenuItem[] = [{ label: "Model servers", kind: -1 }];
  if (endpoints.length === 0) {
    items.push({ label: "$(circle-slash) no model server configured or found", action: "models" });
  }
  for (const e of endpoints) {
    const up = e.state === "up";
    const n = e.models ?? 0;
    items.push({
      label: `${up ? "$(pass-filled)" : "$(error)"} ${e.name}`,
      description: up ? `up · ${n} model${n === 1 ? "" : "s"}` : `${e.state}${e.detail ? ` · ${e.detail}` : ""}`,
      detail: e.url,
      action: "models",
    });
  }
  items.push({ label: "Last run", kind: -1 });
  if (last) {
    const parts = [
      last.confidence !== undefined ? `confidence ${last.confidence.toFixed(2)}` : undefined,
      last.agree !== undefined && last.asked !== undefined ? `${last.agree}/${last.asked} models agree` : undefined,
      last.unchecked ? "not checked" : undefined,
      last.wallS !== undefined ? `${last.wallS.toFixed(1)} s` : undefined,
    ].filter((p): p is string => p !== undefined);
    items.push({ label: `$(history) ${last.task}: ${parts.join(" · ") || "no result"}`, description: last.at.toLocaleTimeString() });
  } else {
    items.push({ label: "$(history) no run yet in this window" });
  }
  items.push({ label: "Actions", kind: -1 });
  items.push({
    label: "$(debug-stop) Cancel Running Runs",
    description: running > 0 ? `${running} in flight` : "nothing running",
    action: "cancel",
  });
  items.push({ label: "$(output) Show Output", action: "output" });
  items.push({ label: "$(graph) Open History Dashboard", description: "codeconductor stats --html", action: "dashboard" });
  items.push({ label: "$(refresh) Refresh Models", action: "refresh" });
  return items;
}

/** The dissenting answers a preview can switch to (all clusters but the one shown). */
export function alternativeItems(
  clusters: readonly { members: string[]; support: number; passes_examples?: boolean | null; representative: string }[],
  shown: number,
): (MenuItem & { cluster: number })[] {
  return clusters.flatMap((c, index) => {
    if (index === shown) {
      return [];
    }
    const names = c.members.map((m) => m.split("@", 1)[0]);
    const examples = c.passes_examples === true ? " · passes the examples" : c.passes_examples === false ? " · fails the examples" : "";
    return [
      {
        label: index === 0 ? `$(star-full) Consensus (${names.join(", ")})` : `$(versions) ${names[0]}${names.length > 1 ? ` (+${names.length - 1})` : ""}`,
        description: `support ${c.support.toFixed(2)}${examples}`,
        detail: c.representative.split("\n").find((line) => line.trim() && !line.trim().startsWith("def "))?.trim(),
        cluster: index,
      },
    ];
  });
}
