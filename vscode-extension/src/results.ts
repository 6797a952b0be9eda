/**
 * Shows a result as a markdown preview (confidence, per-model table, disagreement) from a read-only virtual
 * document, and remembers the last one for "Show Last Result".
 */
import * as vscode from "vscode";

export const RESULT_SCHEME = "codeconductor-result";

export class ResultViewer implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly docs = new Map<string, string>();
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;
  private last: vscode.Uri | undefined;
  private counter = 0;
  private readonly registration: vscode.Disposable;

  constructor() {
    this.registration = vscode.workspace.registerTextDocumentContentProvider(RESULT_SCHEME, this);
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.docs.get(uri.toString()) ?? "# CodeConductor\n\nThis result is no longer available.\n";
  }

  get hasLast(): boolean {
    return this.last !== undefined;
  }

  async show(markdown: string, name: string): Promise<void> {
    await this.open(this.remember(markdown, name));
  }

  /** Store a result as the last one without opening it. */
  remember(markdown: string, name: string): vscode.Uri {
    this.counter += 1;
    const safe = name.replace(/[^\w.-]+/g, "-");
    const uri = vscode.Uri.from({ scheme: RESULT_SCHEME, path: `/${this.counter}-${safe}.md` });
    this.docs.set(uri.toString(), markdown);
    // Keep memory bounded: results are small, but a long session could make many.
    while (this.docs.size > 20) {
      const oldest = this.docs.keys().next().value as string;
      this.docs.delete(oldest);
    }
    this.last = uri;
    return uri;
  }

  async showLast(): Promise<boolean> {
    if (!this.last) {
      return false;
    }
    await this.open(this.last);
    return true;
  }

  private async open(uri: vscode.Uri): Promise<void> {
    try {
      await vscode.commands.executeCommand("markdown.showPreviewToSide", uri);
    } catch {
      // No markdown extension (stripped-down editors): show the source instead.
      const doc = await vscode.workspace.openTextDocument(uri);
      await vscode.window.showTextDocument(doc, { viewColumn: vscode.ViewColumn.Beside, preview: true });
    }
  }

  dispose(): void {
    this.registration.dispose();
    this.changed.dispose();
  }
}
