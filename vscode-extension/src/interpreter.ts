/**
 * Where the server's Python comes from inside VS Code: the Python extension's selected interpreter
 * (ms-python.python API), the `codeconductor.python` setting, or python3 on PATH — see python.ts for the order
 * and the handshake.
 */
import * as vscode from "vscode";

import type { CandidateSources } from "./python";

interface PythonEnvironmentsApi {
  getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
  resolveEnvironment(env: { path: string } | string): Promise<{ executable?: { uri?: vscode.Uri } } | undefined>;
  onDidChangeActiveEnvironmentPath?: vscode.Event<unknown>;
}

interface PythonExtensionApi {
  environments?: PythonEnvironmentsApi;
  settings?: { getExecutionDetails?(resource?: vscode.Uri): { execCommand?: string[] } | undefined };
}

async function pythonApi(): Promise<PythonExtensionApi | undefined> {
  const ext = vscode.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (!ext) {
    return undefined;
  }
  return ext.isActive ? ext.exports : await ext.activate();
}

export async function pythonExtensionInterpreter(resource?: vscode.Uri): Promise<string | undefined> {
  const api = await pythonApi();
  if (!api) {
    return undefined;
  }
  const envPath = api.environments?.getActiveEnvironmentPath(resource);
  if (envPath) {
    const env = await api.environments?.resolveEnvironment(envPath);
    return env?.executable?.uri?.fsPath ?? envPath.path;
  }
  // Older Python extensions only have the settings API.
  return api.settings?.getExecutionDetails?.(resource)?.execCommand?.[0];
}

/** Subscribe to interpreter changes in the Python extension (no-op without it). */
export async function onPythonInterpreterChange(listener: () => void): Promise<vscode.Disposable | undefined> {
  try {
    const api = await pythonApi();
    return api?.environments?.onDidChangeActiveEnvironmentPath?.(listener);
  } catch {
    return undefined;
  }
}

export function vscodeCandidateSources(): CandidateSources {
  const resource = vscode.window.activeTextEditor?.document.uri ?? vscode.workspace.workspaceFolders?.[0]?.uri;
  return {
    pythonExtension: () => pythonExtensionInterpreter(resource),
    setting: () => vscode.workspace.getConfiguration("codeconductor", resource).get<string>("python", ""),
  };
}
