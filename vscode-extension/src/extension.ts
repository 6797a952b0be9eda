/**
 * CodeConductor for VS Code and Cursor: starts the ensemble language server with a Python that can run it, or
 * says clearly why it cannot (with a button to fix it); wires the palette commands, the status bar, the output
 * channel and live settings. Code actions, hovers, diagnostics and progress come from the server itself.
 */
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";

import { pushSettings, SECTION, startClient } from "./client";
import { execute, PaletteCommand, registerCommands, type Session } from "./commands";
import { onPythonInterpreterChange, vscodeCandidateSources } from "./interpreter";
import {
  describeAttempts,
  explainFailure,
  installCommand,
  resolveInterpreter,
  SERVER_ARGS,
  serverCommand,
  type Resolution,
} from "./python";
import { PreviewManager, type PreviewResponse } from "./preview";
import type { RunResponse } from "./protocol";
import { ServerCommand } from "./protocol";
import { renderResponse } from "./render";
import { ResultViewer } from "./results";
import { statusMenuItems, type EndpointInfo, type LastRun } from "./status";
import { StatusBar } from "./statusBar";

class Controller implements Session, vscode.Disposable {
  readonly output = vscode.window.createOutputChannel("CodeConductor", { log: true });
  readonly viewer = new ResultViewer();
  private readonly trace = vscode.window.createOutputChannel("CodeConductor Trace", { log: true });
  readonly previews: PreviewManager = new PreviewManager(
    <T>(command: string, arg?: object): Promise<T | undefined> => execute<T>(this, command, arg),
    this.output,
  );
  private readonly statusBar = new StatusBar(PaletteCommand.statusMenu);
  private lastRun: LastRun | undefined;
  private inFlight = 0;
  private running: LanguageClient | undefined;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private lastFailure: Resolution | undefined;

  /** @param version this extension's version: the server's must have the same major.minor. */
  constructor(private readonly version: string) {}

  async client(): Promise<LanguageClient | undefined> {
    if (this.running?.isRunning()) {
      return this.running;
    }
    const client = await this.start();
    if (!client) {
      void this.reportFailure();
    }
    return client;
  }

  start(): Promise<LanguageClient | undefined> {
    this.starting ??= this.doStart().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    this.statusBar.setState("starting");
    const resolution = await resolveInterpreter(vscodeCandidateSources(), undefined, {
      cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath,
      expectedVersion: this.version,
    });
    for (const line of describeAttempts(resolution)) {
      this.output.appendLine(`[extension] interpreter ${line}`);
    }
    if (!resolution.chosen) {
      this.lastFailure = resolution;
      this.statusBar.setState("failed");
      return undefined;
    }
    this.lastFailure = undefined;
    const python = serverCommand(resolution.chosen, resolution.handshake);
    this.output.appendLine(`[extension] starting: ${python} ${SERVER_ARGS.join(" ")}`);
    try {
      this.running = await startClient(python, this.output, this.trace, {
        onStatus: (status) => {
          this.inFlight = status.running ?? this.inFlight;
          this.statusBar.update(status.models, status.running);
        },
        onStateChange: (up) => this.statusBar.setState(up ? "running" : "stopped"),
        onCommandResult: (command, response) => {
          const task = response.result?.request?.task ?? command.replace(/^codeconductor\./, "");
          // Without an ensemble `result` (fix loop, test generation) the renderer names the function itself.
          const title = response.result ? `CodeConductor: ${task}` : undefined;
          this.viewer.remember(renderResponse(command, response, title), task);
          this.noteRun(task, response);
          // A lightbulb run or alternative in preview mode: show the diff to accept or reject.
          void this.previews.show(response as PreviewResponse);
        },
      });
      this.statusBar.setState("running");
      return this.running;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.output.appendLine(`[extension] the server failed to start: ${message}`);
      this.statusBar.setState("failed");
      this.lastFailure = {
        tried: [{ candidate: resolution.chosen, check: { ok: false, failure: "broken", detail: message } }],
      };
      return undefined;
    }
  }

  /** The error notification with the buttons that fix the usual causes. */
  async reportFailure(): Promise<void> {
    const failure = this.lastFailure;
    if (!failure) {
      return;
    }
    const installable = failure.tried.find((t) => t.check.failure === "not-installed");
    const buttons = [
      ...(installable ? ["Install in Terminal"] : []),
      "Set Python Path",
      ...(vscode.extensions.getExtension("ms-python.python") ? ["Select Interpreter"] : []),
      "Show Output",
      "Retry",
    ];
    const choice = await vscode.window.showErrorMessage(explainFailure(failure), ...buttons);
    switch (choice) {
      case "Install in Terminal": {
        const terminal = vscode.window.createTerminal("CodeConductor: install");
        terminal.show();
        terminal.sendText(installCommand(installable?.candidate.command ?? "python3"));
        break;
      }
      case "Set Python Path":
        await vscode.commands.executeCommand("workbench.action.openSettings", `${SECTION}.python`);
        break;
      case "Select Interpreter":
        await vscode.commands.executeCommand("python.setInterpreter");
        break;
      case "Show Output":
        this.output.show(true);
        break;
      case "Retry":
        await this.restart();
        break;
      default:
        break;
    }
  }

  async restart(): Promise<void> {
    await this.stop();
    const client = await this.start();
    if (!client) {
      await this.reportFailure();
    }
  }

  async stop(): Promise<void> {
    const client = this.running;
    this.running = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (err) {
        this.output.appendLine(`[extension] stopping the server: ${String(err)}`);
      }
    }
  }

  async onConfigurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
    if (!event.affectsConfiguration(SECTION)) {
      return;
    }
    if (event.affectsConfiguration(`${SECTION}.python`)) {
      this.output.appendLine("[extension] codeconductor.python changed: restarting the server");
      await this.restart();
      return;
    }
    if (this.running?.isRunning()) {
      this.output.info("[extension] settings changed: sending them to the server");
      await pushSettings(this.running); // live: no restart for server settings
    }
  }

  noteRun(task: string, response: RunResponse): void {
    if (!response.result && response.confidence === undefined) {
      return; // cancelled or failed: nothing to report
    }
    this.lastRun = {
      task,
      confidence: response.confidence ?? response.result?.consensus?.confidence,
      agree: response.agree,
      asked: response.asked,
      wallS: response.result?.wall_s,
      unchecked: Boolean(response.unchecked ?? response.result?.consensus?.unchecked),
      at: new Date(),
    };
  }

  async statusMenu(): Promise<void> {
    const client = await this.client();
    let endpoints: EndpointInfo[] = [];
    if (client) {
      const reply = await execute<{ endpoints?: EndpointInfo[] }>(this, ServerCommand.listModels);
      endpoints = reply?.endpoints ?? [];
    }
    const items = statusMenuItems(endpoints, this.lastRun, this.inFlight).map((item) => ({
      ...item,
      kind: item.kind === -1 ? vscode.QuickPickItemKind.Separator : undefined,
    }));
    const picked = await vscode.window.showQuickPick(items, { title: "CodeConductor", matchOnDescription: true });
    switch (picked?.action) {
      case "cancel":
        await vscode.commands.executeCommand(PaletteCommand.cancel);
        break;
      case "output":
        this.output.show(true);
        break;
      case "dashboard":
        await vscode.commands.executeCommand(PaletteCommand.dashboard);
        break;
      case "refresh":
        await vscode.commands.executeCommand(PaletteCommand.refreshModels);
        break;
      case "models":
        await vscode.commands.executeCommand(PaletteCommand.listModels);
        break;
      default:
        break;
    }
  }

  dispose(): void {
    this.previews.dispose();
    this.statusBar.dispose();
    this.viewer.dispose();
    this.trace.dispose();
    this.output.dispose();
  }
}

let controller: Controller | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const ctl = new Controller(String((context.extension.packageJSON as { version?: unknown }).version ?? ""));
  controller = ctl;
  context.subscriptions.push(
    ctl,
    ...registerCommands(ctl),
    vscode.workspace.onDidChangeConfiguration((e) => ctl.onConfigurationChanged(e)),
  );
  const pythonChange = await onPythonInterpreterChange(() => {
    ctl.output.appendLine("[extension] the Python extension's interpreter changed: restarting the server");
    void ctl.restart();
  });
  if (pythonChange) {
    context.subscriptions.push(pythonChange);
  }
  const client = await ctl.start();
  if (!client) {
    void ctl.reportFailure(); // do not block activation on the user's answer
  }
}

export async function deactivate(): Promise<void> {
  await controller?.stop();
  controller = undefined;
}
