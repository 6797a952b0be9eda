/** The status bar item: models up ("⚖ 4 models"), a spinner while a run is in flight; click -> model list. */
import * as vscode from "vscode";

import { statusView, type ServerState } from "./status";

export class StatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;
  private state: ServerState = "starting";
  private models: number | undefined;
  private running: number | undefined;

  constructor(command: string) {
    this.item = vscode.window.createStatusBarItem("codeconductor.status", vscode.StatusBarAlignment.Right, 100);
    this.item.name = "CodeConductor";
    this.item.command = command;
    this.render();
    this.item.show();
  }

  setState(state: ServerState): void {
    this.state = state;
    this.render();
  }

  update(models: number | undefined, running: number | undefined): void {
    if (models !== undefined) {
      this.models = models;
    }
    if (running !== undefined) {
      this.running = running;
    }
    this.render();
  }

  private render(): void {
    const view = statusView(this.state, this.models, this.running);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor = view.warning ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
  }

  dispose(): void {
    this.item.dispose();
  }
}
