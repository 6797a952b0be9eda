/**
 * The command palette entries (category "CodeConductor"): Ask the Ensemble…, Review / Fix / Improve Selection,
 * Make Tests Pass (Fix Selection with Tests)…, Generate Tests for Selection, List / Refresh Models, Show Last
 * Result, Cancel, Show Output, Restart Server. Each calls one server command
 * (docs/protocol.md) and tells the user what happened — applied, stale, no consensus — never silently.
 *
 * The palette ids differ from the server's command ids on purpose: vscode-languageclient registers the server's
 * ids (codeconductor.run, ...) itself so that code actions work, and one id cannot be registered twice.
 */
import * as vscode from "vscode";
import { ExecuteCommandRequest, type LanguageClient } from "vscode-languageclient/node";

import { enclosingBlock } from "./blocks";
import { isSupported, SUPPORTED_LANGUAGES } from "./languages";
import type { FixWithTestsResponse, GenerateTestsResponse, ModelInfo, RunResponse } from "./protocol";
import { ServerCommand } from "./protocol";
import { fixSummary, modelLabel, parseTestIds, renderFixWithTests, renderGenerateTests, renderResult } from "./render";
import type { PreviewManager, PreviewResponse } from "./preview";
import type { ResultViewer } from "./results";

export const PaletteCommand = {
  ask: "codeconductor.askEnsemble",
  review: "codeconductor.reviewSelection",
  fix: "codeconductor.fixSelection",
  improve: "codeconductor.improveSelection",
  makeTestsPass: "codeconductor.makeTestsPass",
  generateTests: "codeconductor.generateTestsForSelection",
  listModels: "codeconductor.showModels",
  refreshModels: "codeconductor.refreshModelList",
  showLastResult: "codeconductor.showLastResult",
  cancel: "codeconductor.cancelRuns",
  showOutput: "codeconductor.showOutput",
  restart: "codeconductor.restartServer",
  statusMenu: "codeconductor.statusMenu",
  dashboard: "codeconductor.openHistoryDashboard",
} as const;

export interface Session {
  /** The running client, or undefined after telling the user why there is none. */
  client(): Promise<LanguageClient | undefined>;
  readonly output: vscode.LogOutputChannel;
  readonly viewer: ResultViewer;
  readonly previews: PreviewManager;
  restart(): Promise<void>;
  /** Remember a run's outcome for the status menu ("last run"). */
  noteRun(task: string, response: RunResponse): void;
  /** The status bar menu: servers up/down, the last run, cancel, output, history dashboard. */
  statusMenu(): Promise<void>;
}

export async function execute<T>(session: Session, command: string, arg?: object): Promise<T | undefined> {
  const client = await session.client();
  if (!client) {
    return undefined;
  }
  try {
    return (await client.sendRequest(ExecuteCommandRequest.type, {
      command,
      arguments: arg === undefined ? [] : [arg],
    })) as T;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    session.output.appendLine(`[extension] ${command} failed: ${message}`);
    void vscode.window.showErrorMessage(`CodeConductor: ${message}`, "Show Output").then((choice) => {
      if (choice) {
        session.output.show(true);
      }
    });
    return undefined;
  }
}

function codeEditor(pythonOnly = false): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor || !isSupported(editor.document.languageId, pythonOnly)) {
    const which = pythonOnly ? "a Python file" : `a file in one of: ${SUPPORTED_LANGUAGES.join(", ")}`;
    void vscode.window.showWarningMessage(`CodeConductor: open ${which} and select some code first.`);
    return undefined;
  }
  return editor;
}

/** The selection, or the enclosing def/class when nothing is selected. */
function targetRange(editor: vscode.TextEditor): vscode.Range {
  const sel = editor.selection;
  if (!sel.isEmpty) {
    return new vscode.Range(sel.start, sel.end);
  }
  const lines = editor.document.getText().split(/\r?\n/);
  const block = enclosingBlock(lines, sel.active.line);
  return new vscode.Range(block.start, 0, block.end, 0);
}

function wire(range: vscode.Range): object {
  return {
    start: { line: range.start.line, character: range.start.character },
    end: { line: range.end.line, character: range.end.character },
  };
}

async function offerDetails(
  session: Session,
  kind: "info" | "warning",
  message: string,
  response: RunResponse,
  title: string,
): Promise<void> {
  const show = kind === "info" ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
  const remember = response.result ? renderResult(response, title) : undefined;
  if (remember) {
    session.viewer.remember(remember, title);
  }
  const choice = await show(message, ...(remember ? ["Show Details"] : []));
  if (choice === "Show Details") {
    await session.viewer.showLast();
  }
}

async function runTask(session: Session, task: "fix" | "improve"): Promise<void> {
  const editor = codeEditor();
  if (!editor) {
    return;
  }
  const response = await execute<RunResponse>(session, ServerCommand.run, {
    uri: editor.document.uri.toString(),
    range: wire(targetRange(editor)),
    task,
    version: editor.document.version,
    apply: true,
  });
  if (!response) {
    return;
  }
  session.noteRun(task, response);
  const title = `CodeConductor: ${task}`;
  if (response.result) {
    session.viewer.remember(renderResult(response, title), title); // for Show Last Result
  }
  switch (response.status) {
    case "preview":
      await session.previews.show(response as PreviewResponse);
      break;
    case "applied":
      await offerDetails(session, "info", response.label ?? `CodeConductor: ${task} applied`, response, title);
      break;
    case "cancelled":
      void vscode.window.showInformationMessage(`CodeConductor: ${task} cancelled.`);
      break;
    default:
      await reportUnapplied(session, response, title);
  }
}

/** The server already says why for these (window/showMessage); saying it twice would only add noise. */
const SERVER_REPORTED = new Set(["noConsensus", "stale", "failed"]);

async function reportUnapplied(session: Session, response: RunResponse, title: string): Promise<void> {
  const why = response.message ?? response.status ?? "no result";
  session.output.info(`[extension] ${title}: ${response.status ?? "?"}: ${why}`);
  if (SERVER_REPORTED.has(response.status ?? "")) {
    if (response.result) {
      session.viewer.remember(renderResult(response, title), title); // for Show Last Result
    }
    return;
  }
  await offerDetails(session, "warning", why.startsWith("CodeConductor") ? why : `CodeConductor: ${why}`, response, title);
}

/** "Make Tests Pass": which tests (empty: the server picks those mentioning the function), then the
 * fix-until-green loop; the outcome (k/n candidates pass, or the best attempt's failures) as a preview. */
async function makeTestsPass(session: Session): Promise<void> {
  const editor = codeEditor(true);
  if (!editor) {
    return;
  }
  const typed = await vscode.window.showInputBox({
    title: "CodeConductor: Make Tests Pass",
    prompt: "Tests that must pass (pytest ids or paths, separated by spaces). Leave empty: the tests that mention the function.",
    placeHolder: "tests/test_util.py::test_clamp  (empty = automatic)",
    ignoreFocusOut: true,
  });
  if (typed === undefined) {
    return; // Escape: the user changed their mind
  }
  const tests = parseTestIds(typed);
  const arg: Record<string, unknown> = {
    uri: editor.document.uri.toString(),
    range: wire(targetRange(editor)),
    version: editor.document.version,
    apply: true,
  };
  if (tests.length > 0) {
    arg.tests = tests;
  }
  const response = await execute<FixWithTestsResponse>(session, ServerCommand.fixWithTests, arg);
  if (!response) {
    return;
  }
  const title = `CodeConductor: make tests pass${response.outcome?.function ? ` (${response.outcome.function})` : ""}`;
  const summary = fixSummary(response);
  session.output.info(`[extension] ${title}: ${response.status ?? "?"}: ${response.message ?? ""}`);
  switch (response.status) {
    case "preview":
      // The passing candidate, as a diff to accept or reject (like every edit).
      session.viewer.remember(renderFixWithTests(response, title), "make-tests-pass");
      await session.previews.show({ ...(response as unknown as PreviewResponse), label: response.message });
      return;
    case "cancelled":
      void vscode.window.showInformationMessage(summary);
      return;
    case "noTests":
      return; // the server's warning says how to name the tests
    case "failed":
      if (response.outcome) {
        // The honest "no candidate passed": the failures are what the user needs next, so show them at once
        // (the server's own warning already said it).
        await session.viewer.show(renderFixWithTests(response, title), "make-tests-pass");
      }
      return;
    case "passed": {
      session.viewer.remember(renderFixWithTests(response, title), "make-tests-pass");
      const choice = await vscode.window.showInformationMessage(summary, "Show Details");
      if (choice === "Show Details") {
        await session.viewer.showLast();
      }
      return;
    }
    default:
      // already_passing / stale / rejected / proposed: keep the details one click away.
      if (response.outcome) {
        session.viewer.remember(renderFixWithTests(response, title), "make-tests-pass");
      }
      if (response.status !== "already_passing" && response.status !== "stale") {
        const choice = await vscode.window.showWarningMessage(summary, ...(response.outcome ? ["Show Details"] : []));
        if (choice === "Show Details") {
          await session.viewer.showLast();
        }
      }
  }
}

/** "Generate Tests": the server asks the ensemble for tests, keeps those the models agree on and creates the
 * file (workspace/applyEdit); the user can open it or read why each test was kept or not. */
async function generateTests(session: Session): Promise<void> {
  const editor = codeEditor(true);
  if (!editor) {
    return;
  }
  const response = await execute<GenerateTestsResponse>(session, ServerCommand.generateTests, {
    uri: editor.document.uri.toString(),
    range: wire(targetRange(editor)),
    apply: true,
  });
  if (!response) {
    return;
  }
  const title = `CodeConductor: generate tests${response.outcome?.function ? ` (${response.outcome.function})` : ""}`;
  session.output.info(`[extension] ${title}: ${response.status ?? "?"}: ${response.message ?? ""}`);
  if (response.status === "cancelled") {
    void vscode.window.showInformationMessage("CodeConductor: Generate Tests cancelled.");
    return;
  }
  if (!response.outcome) {
    return; // failed: the server showed the error
  }
  const markdown = renderGenerateTests(response, title);
  if (response.status !== "generated") {
    await session.viewer.show(markdown, "generate-tests"); // why no test was kept, test by test
    return;
  }
  session.viewer.remember(markdown, "generate-tests");
  const created = response.applied ? "" : " (the file was not created)";
  const buttons = [...(response.applied && response.uri ? ["Open Tests"] : []), "Show Details"];
  const choice = await vscode.window.showInformationMessage(`CodeConductor: ${response.message ?? "tests generated"}${created}.`, ...buttons);
  if (choice === "Open Tests" && response.uri) {
    await vscode.window.showTextDocument(vscode.Uri.parse(response.uri));
  } else if (choice === "Show Details") {
    await session.viewer.showLast();
  }
}

async function review(session: Session): Promise<void> {
  const editor = codeEditor();
  if (!editor) {
    return;
  }
  const arg: Record<string, unknown> = { uri: editor.document.uri.toString(), version: editor.document.version };
  if (!editor.selection.isEmpty) {
    arg.range = wire(targetRange(editor));
  }
  const response = await execute<RunResponse>(session, ServerCommand.review, arg);
  if (!response) {
    return;
  }
  if (response.status !== "reviewed") {
    await reportUnapplied(session, response, "CodeConductor: review");
    return;
  }
  const n = response.findings?.length ?? response.result?.consensus?.findings?.length ?? 0;
  const message = `CodeConductor review: ${n} finding${n === 1 ? "" : "s"} (see Problems).`;
  await offerDetails(session, "info", message, response, "CodeConductor: review");
}

async function ask(session: Session): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const question = await vscode.window.showInputBox({
    title: "Ask the Ensemble",
    prompt: editor && !editor.selection.isEmpty ? "A question about the selected code" : "A question (about the open file)",
    placeHolder: "What does this function return for an empty list?",
    ignoreFocusOut: true,
  });
  if (!question?.trim()) {
    return;
  }
  const arg: Record<string, unknown> = { question };
  if (editor) {
    arg.uri = editor.document.uri.toString();
    if (!editor.selection.isEmpty) {
      arg.range = wire(targetRange(editor));
    }
  }
  const response = await execute<RunResponse>(session, ServerCommand.ask, arg);
  if (!response) {
    return;
  }
  if (response.status === "cancelled") {
    void vscode.window.showInformationMessage("CodeConductor: question cancelled.");
    return;
  }
  await session.viewer.show(renderResult(response, `Ask: ${question}`), "ask");
}

async function listModels(session: Session, refresh: boolean): Promise<void> {
  const response = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Window, title: refresh ? "CodeConductor: probing models…" : "CodeConductor" },
    () => execute<{ models?: ModelInfo[] }>(session, refresh ? ServerCommand.refreshModels : ServerCommand.listModels, refresh ? { refresh: true } : undefined),
  );
  if (!response) {
    return;
  }
  const models = response.models ?? [];
  if (refresh) {
    void vscode.window.showInformationMessage(`CodeConductor: ${models.length} model${models.length === 1 ? "" : "s"} up.`);
    return;
  }
  const refreshItem: vscode.QuickPickItem = { label: "$(refresh) Refresh models", alwaysShow: true };
  const items: vscode.QuickPickItem[] = [
    ...models.map(modelLabel),
    { label: "", kind: vscode.QuickPickItemKind.Separator },
    refreshItem,
  ];
  const picked = await vscode.window.showQuickPick(items, {
    title: `CodeConductor: ${models.length} model${models.length === 1 ? "" : "s"} up`,
    placeHolder: models.length === 0 ? "No model is up: start Ollama / LM Studio / llama.cpp, or set codeconductor.endpoints" : "Models in the ensemble",
    matchOnDetail: true,
  });
  if (picked === refreshItem) {
    await listModels(session, true);
  }
}

async function cancel(session: Session): Promise<void> {
  const response = await execute<{ cancelled?: string[] }>(session, ServerCommand.cancel);
  if (response) {
    const n = response.cancelled?.length ?? 0;
    void vscode.window.showInformationMessage(n === 0 ? "CodeConductor: nothing to cancel." : `CodeConductor: cancelled ${n} run${n === 1 ? "" : "s"}.`);
  }
}

export function registerCommands(session: Session): vscode.Disposable[] {
  const reg = vscode.commands.registerCommand;
  return [
    reg(PaletteCommand.ask, () => ask(session)),
    reg(PaletteCommand.review, () => review(session)),
    reg(PaletteCommand.fix, () => runTask(session, "fix")),
    reg(PaletteCommand.improve, () => runTask(session, "improve")),
    reg(PaletteCommand.makeTestsPass, () => makeTestsPass(session)),
    reg(PaletteCommand.generateTests, () => generateTests(session)),
    reg(PaletteCommand.listModels, () => listModels(session, false)),
    reg(PaletteCommand.refreshModels, () => listModels(session, true)),
    reg(PaletteCommand.showLastResult, async () => {
      if (!(await session.viewer.showLast())) {
        void vscode.window.showInformationMessage("CodeConductor: no result yet in this window.");
      }
    }),
    reg(PaletteCommand.cancel, () => cancel(session)),
    reg(PaletteCommand.showOutput, () => session.output.show(true)),
    reg(PaletteCommand.restart, () => session.restart()),
    reg(PaletteCommand.statusMenu, () => session.statusMenu()),
    reg(PaletteCommand.dashboard, () => openDashboard(session)),
  ];
}

/** The history dashboard (`codeconductor stats --html`, rendered by the server from its history) in a webview. */
export async function openDashboard(session: Session): Promise<void> {
  const reply = await execute<{ html?: string; message?: string }>(session, ServerCommand.historyReport);
  if (!reply) {
    return;
  }
  if (!reply.html) {
    void vscode.window.showInformationMessage(`CodeConductor: ${reply.message ?? "no history to show"}`);
    return;
  }
  // Scripts stay off: the page is static HTML with inline SVG plots.
  const panel = vscode.window.createWebviewPanel("codeconductor.history", "CodeConductor History", vscode.ViewColumn.Active, {
    enableScripts: false,
  });
  panel.webview.html = reply.html;
}
