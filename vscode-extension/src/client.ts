/**
 * Starts and stops the CodeConductor language server (`<python> -I -u -m codeconductor.server` over stdio, the
 * interpreter by the absolute path its handshake gave: see python.ts) and keeps its settings
 * in step with VS Code's: every change of the "codeconductor" section reaches the running server without a
 * restart; a change of the interpreter restarts it.
 */
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  State,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";

import { serverSettings, withProjectPython } from "./config";
import { pythonExtensionInterpreter } from "./interpreter";
import { SUPPORTED_LANGUAGES } from "./languages";
import { SERVER_ARGS, serverEnv } from "./python";
import { ServerCommand, STATUS_NOTIFICATION, type RunResponse, type StatusNotification } from "./protocol";

export const SECTION = "codeconductor";

export interface ClientHooks {
  onStatus(status: StatusNotification): void;
  onStateChange(running: boolean): void;
  /** A server command run from a code action (lightbulb) returned: keep it for "Show Last Result". */
  onCommandResult(command: string, response: RunResponse): void;
}

export function currentServerSettings(): Record<string, unknown> {
  return serverSettings(vscode.workspace.getConfiguration(SECTION));
}

/** The interpreter the Python extension selected for the active document's folder (else the first folder). */
async function editorProjectInterpreter(): Promise<string | undefined> {
  const resource = vscode.window.activeTextEditor?.document.uri ?? vscode.workspace.workspaceFolders?.[0]?.uri;
  try {
    return await pythonExtensionInterpreter(resource);
  } catch {
    return undefined;
  }
}

/** What the server receives: the section's server keys, with the project's interpreter the editor reports. */
export async function serverSettingsWithProject(section: unknown): Promise<Record<string, unknown>> {
  return withProjectPython(serverSettings(section), await editorProjectInterpreter());
}

export async function startClient(
  python: string,
  output: vscode.LogOutputChannel,
  trace: vscode.LogOutputChannel,
  hooks: ClientHooks,
): Promise<LanguageClient> {
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const serverOptions: ServerOptions = {
    command: python,
    // -I: neither the workspace folder (its own server.py, server/ or codeconductor/) nor PYTHONPATH can stand in
    // for our package; the cwd only matters to what the server itself does with relative paths.
    args: [...SERVER_ARGS],
    options: { cwd, env: serverEnv(process.env) },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: SUPPORTED_LANGUAGES.flatMap((language) => [
      { scheme: "file", language },
      { scheme: "untitled", language },
    ]),
    outputChannel: output,
    // JSON-RPC traces: set this channel's log level to Trace (Output panel) and pick codeconductor.trace.server.
    traceOutputChannel: trace,
    initializationOptions: await serverSettingsWithProject(vscode.workspace.getConfiguration(SECTION)),
    middleware: {
      executeCommand: async (command, args, next) => {
        const response: unknown = await next(command, args);
        // The fix loop and test generation answer with an `outcome` instead of an ensemble `result`.
        if (response && typeof response === "object" && ("result" in response || "outcome" in response)) {
          hooks.onCommandResult(command, response as RunResponse);
        }
        return response;
      },
      workspace: {
        // The server asks for section "codeconductor": hand it only the keys its settings model knows.
        configuration: async (params, token, next) => {
          const values = await next(params, token);
          if (!Array.isArray(values)) {
            return values;
          }
          return Promise.all(
            values.map((value, i) => (params.items[i]?.section === SECTION ? serverSettingsWithProject(value) : value)),
          );
        },
      },
    },
  };
  const client = new LanguageClient(SECTION, "CodeConductor", serverOptions, clientOptions);
  // This extension shows edits as a diff to accept or reject (preview.ts): the server then sends them back
  // instead of applying them (server/preview.py).
  client.registerFeature({
    fillClientCapabilities(capabilities) {
      capabilities.experimental = { ...(capabilities.experimental as object | undefined), codeconductor: { preview: true } };
    },
    initialize() {},
    getState: () => ({ kind: "static" }),
    clear() {},
  });
  client.onDidChangeState((event) => hooks.onStateChange(event.newState === State.Running));
  // Registered before start: the server sends its first status right after initialization.
  client.onNotification(STATUS_NOTIFICATION, (status: StatusNotification) => hooks.onStatus(status));
  await client.start();
  try {
    // And ask once, in case discovery finished before the handler could see it.
    const status = (await client.sendRequest(ExecuteCommandRequest.type, {
      command: ServerCommand.status,
      arguments: [],
    })) as StatusNotification | null;
    if (status) {
      hooks.onStatus(status);
    }
  } catch (err) {
    output.warn(`[extension] codeconductor.status failed: ${String(err)}`);
  }
  return client;
}

/** Push the current settings to the server (didChangeConfiguration, settings nested under "codeconductor"). */
export async function pushSettings(client: LanguageClient): Promise<void> {
  await client.sendNotification(DidChangeConfigurationNotification.type, {
    settings: { [SECTION]: await serverSettingsWithProject(vscode.workspace.getConfiguration(SECTION)) },
  });
}
