/**
 * The preview before any edit, the way users of editor assistants know it: the server (setting
 * `codeconductor.apply`, default "preview") answers with the edit instead of applying it, and this opens a diff
 * editor (current file vs the proposed text, served read-only by a TextDocumentContentProvider) with Accept /
 * Reject / Alternatives in the editor title, and the same three as a CodeLens over the range in the file.
 *
 * Accept asks the server to apply exactly the previewed edit (`codeconductor.applySuggestion`), which it refuses
 * when the document changed since the preview; Reject tells the server (`codeconductor.reject`) and changes
 * nothing. Both are recorded in the history, which the learned weights read. Alternatives lists the dissenting
 * clusters; picking one previews its own diff (`codeconductor.preview`).
 */
import * as vscode from "vscode";

import type { Cluster, RunResponse } from "./protocol";
import { ServerCommand } from "./protocol";
import { alternativeItems } from "./status";

export const PROPOSED_SCHEME = "codeconductor-proposed";

export const PreviewCommand = {
  accept: "codeconductor.acceptPreview",
  reject: "codeconductor.rejectPreview",
  alternatives: "codeconductor.previewAlternatives",
} as const;

/** What the server sends for an edit waiting to be accepted (codeconductor.run / preview / fixWithTests). */
export type PreviewResponse = RunResponse;

interface Pending {
  runId: string;
  cluster: number;
  version: number | null;
  label: string;
  document: vscode.Uri;
  proposed: vscode.Uri;
  range: vscode.Range;
  clusters: Cluster[];
}

export type Execute = <T>(command: string, arg?: object) => Promise<T | undefined>;

export class PreviewManager implements vscode.TextDocumentContentProvider, vscode.CodeLensProvider, vscode.Disposable {
  private readonly pending = new Map<string, Pending>(); // document uri -> its preview
  private readonly proposedText = new Map<string, string>(); // proposed uri -> text
  private readonly clustersByRun = new Map<string, Cluster[]>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  private readonly lensesChanged = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;
  readonly onDidChangeCodeLenses = this.lensesChanged.event;
  private readonly disposables: vscode.Disposable[];
  private counter = 0;

  constructor(
    private readonly execute: Execute,
    private readonly output: vscode.LogOutputChannel,
  ) {
    this.disposables = [
      vscode.workspace.registerTextDocumentContentProvider(PROPOSED_SCHEME, this),
      vscode.languages.registerCodeLensProvider([{ scheme: "file", language: "python" }, { scheme: "untitled", language: "python" }], this),
      vscode.commands.registerCommand(PreviewCommand.accept, (uri?: vscode.Uri) => this.accept(uri)),
      vscode.commands.registerCommand(PreviewCommand.reject, (uri?: vscode.Uri) => this.reject(uri)),
      vscode.commands.registerCommand(PreviewCommand.alternatives, (uri?: vscode.Uri) => this.alternatives(uri)),
      // An edit to the file inside the previewed range makes the preview a lie: the server would refuse it anyway.
      vscode.workspace.onDidCloseTextDocument((doc) => this.forget(doc.uri.toString())),
    ];
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.proposedText.get(uri.toString()) ?? "";
  }

  provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
    const p = this.pending.get(document.uri.toString());
    if (!p) {
      return [];
    }
    const at = new vscode.Range(p.range.start, p.range.start);
    const lenses = [
      new vscode.CodeLens(at, { title: "Accept", command: PreviewCommand.accept, arguments: [document.uri], tooltip: p.label }),
      new vscode.CodeLens(at, { title: "Reject", command: PreviewCommand.reject, arguments: [document.uri], tooltip: "Nothing in the file changes" }),
    ];
    if (p.clusters.length > 1) {
      lenses.push(new vscode.CodeLens(at, { title: "Alternatives", command: PreviewCommand.alternatives, arguments: [document.uri] }));
    }
    return lenses;
  }

  /** Open the diff for a response with status "preview" (returns false for any other response). */
  async show(response: PreviewResponse): Promise<boolean> {
    if (response.status !== "preview" || !response.runId || !response.uri || !response.range || response.newText === undefined) {
      return false;
    }
    const documentUri = vscode.Uri.parse(response.uri);
    const document = await vscode.workspace.openTextDocument(documentUri);
    const r = response.range;
    const range = new vscode.Range(r.start.line, r.start.character, r.end.line, r.end.character);
    const text = document.getText();
    const proposed = text.slice(0, document.offsetAt(range.start)) + response.newText + text.slice(document.offsetAt(range.end));
    const clusters = response.result?.consensus?.clusters ?? this.clustersByRun.get(response.runId) ?? [];
    this.clustersByRun.set(response.runId, clusters);
    await this.closeDiff(this.pending.get(documentUri.toString()));
    this.counter += 1;
    const base = documentUri.path.split("/").pop() ?? "file";
    const proposedUri = vscode.Uri.from({ scheme: PROPOSED_SCHEME, path: `/${this.counter}/${base}`, query: documentUri.toString() });
    this.proposedText.set(proposedUri.toString(), proposed);
    const pending: Pending = {
      runId: response.runId,
      cluster: response.cluster ?? 0,
      version: response.version ?? document.version,
      label: response.label ?? response.message ?? "CodeConductor edit",
      document: documentUri,
      proposed: proposedUri,
      range,
      clusters,
    };
    this.pending.set(documentUri.toString(), pending);
    await vscode.commands.executeCommand("setContext", "codeconductor.previewing", true);
    this.output.info(`[extension] preview of ${pending.label} (run ${pending.runId}, cluster ${pending.cluster})`);
    await vscode.commands.executeCommand("vscode.diff", documentUri, proposedUri, `${base} ↔ CodeConductor: ${pending.label}`, {
      preview: true,
      viewColumn: vscode.ViewColumn.Beside,
    });
    // Only now: VS Code drops a CodeLens refresh still waiting in an editor that loses focus, and the diff just
    // took it from the file's editor, so a change signalled before the diff opened could leave the file bare.
    this.lensesChanged.fire();
    return true;
  }

  async accept(uri?: vscode.Uri): Promise<void> {
    const p = this.find(uri);
    if (!p) {
      return;
    }
    const reply = await this.execute<RunResponse>(ServerCommand.applySuggestion, { runId: p.runId, cluster: p.cluster, version: p.version });
    if (!reply) {
      return;
    }
    await this.finish(p);
    if (reply.applied) {
      void vscode.window.showInformationMessage(`CodeConductor: ${p.label} — applied.`);
    } else if (reply.status !== "stale" && reply.status !== "gone") {
      // stale / gone: the server already said why (the document changed since the preview).
      void vscode.window.showWarningMessage(`CodeConductor: not applied: ${reply.message ?? reply.status ?? "refused"}`);
    }
  }

  async reject(uri?: vscode.Uri): Promise<void> {
    const p = this.find(uri);
    if (!p) {
      return;
    }
    await this.execute<RunResponse>(ServerCommand.reject, { runId: p.runId, cluster: p.cluster });
    await this.finish(p);
    void vscode.window.showInformationMessage("CodeConductor: rejected — nothing was changed.");
  }

  async alternatives(uri?: vscode.Uri): Promise<void> {
    const p = this.find(uri);
    if (!p) {
      return;
    }
    const items = alternativeItems(p.clusters, p.cluster);
    if (items.length === 0) {
      void vscode.window.showInformationMessage("CodeConductor: the models gave no other answer.");
      return;
    }
    const picked = await vscode.window.showQuickPick(items, { title: "CodeConductor: preview another answer", matchOnDetail: true });
    if (!picked) {
      return;
    }
    const reply = await this.execute<PreviewResponse>(ServerCommand.preview, { runId: p.runId, cluster: picked.cluster });
    if (reply && !(await this.show(reply))) {
      void vscode.window.showWarningMessage(`CodeConductor: ${reply.message ?? "that answer cannot be previewed"}`);
    }
  }

  private find(uri?: vscode.Uri): Pending | undefined {
    const key = uri?.toString();
    const byKey = key ? this.pending.get(key) ?? [...this.pending.values()].find((p) => p.proposed.toString() === key) : undefined;
    const active = vscode.window.activeTextEditor?.document.uri.toString();
    const found =
      byKey ??
      (active ? this.pending.get(active) ?? [...this.pending.values()].find((p) => p.proposed.toString() === active) : undefined) ??
      (this.pending.size === 1 ? [...this.pending.values()][0] : undefined);
    if (!found) {
      void vscode.window.showInformationMessage("CodeConductor: no edit is waiting for you here.");
    }
    return found;
  }

  private async finish(p: Pending): Promise<void> {
    this.forget(p.document.toString());
    await this.closeDiff(p);
  }

  private forget(documentUri: string): void {
    const p = this.pending.get(documentUri);
    if (!p) {
      return;
    }
    this.pending.delete(documentUri);
    this.proposedText.delete(p.proposed.toString());
    this.lensesChanged.fire();
    if (this.pending.size === 0) {
      void vscode.commands.executeCommand("setContext", "codeconductor.previewing", false);
    }
  }

  private async closeDiff(p: Pending | undefined): Promise<void> {
    if (!p) {
      return;
    }
    const tabs = vscode.window.tabGroups.all
      .flatMap((group) => group.tabs)
      .filter((tab) => tab.input instanceof vscode.TabInputTextDiff && tab.input.modified.toString() === p.proposed.toString());
    if (tabs.length > 0) {
      await vscode.window.tabGroups.close(tabs);
    }
  }

  dispose(): void {
    for (const d of this.disposables) {
      d.dispose();
    }
    this.changed.dispose();
    this.lensesChanged.dispose();
  }
}
