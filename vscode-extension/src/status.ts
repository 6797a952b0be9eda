/**
 * What the status bar says: how many models are up ("⚖ 4 models"), a spinner while runs are in flight, or a
 * warning when the server is down or no model answers. Pure, so it is tested without an editor.
 */

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
