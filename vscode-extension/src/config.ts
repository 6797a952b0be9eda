/**
 * The settings the server receives: the "codeconductor" section minus the keys only the extension reads (the
 * server's pydantic model forbids unknown keys, so sending them would make it reject every setting).
 */

/** Top-level keys of the "codeconductor" section that stay in the extension. */
export const EXTENSION_ONLY_KEYS: readonly string[] = ["python", "trace"];

export function serverSettings(section: unknown): Record<string, unknown> {
  if (section === null || typeof section !== "object" || Array.isArray(section)) {
    return {};
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(section as Record<string, unknown>)) {
    if (!EXTENSION_ONLY_KEYS.includes(key) && typeof value !== "function") {
      out[key] = value;
    }
  }
  // A WorkspaceConfiguration is a proxy-like object; a JSON round trip yields plain data for the wire.
  return JSON.parse(JSON.stringify(out)) as Record<string, unknown>;
}

/**
 * The settings with the project's interpreter the editor reports (the Python extension's choice for the folder)
 * as `projectPython`: the server runs the user's code and tests with it when it checks answers. The editor's
 * choice comes first, the user's `codeconductor.projectPython` only when the editor names none.
 */
export function withProjectPython(
  settings: Record<string, unknown>,
  editorInterpreter: string | undefined,
): Record<string, unknown> {
  const chosen = editorInterpreter?.trim();
  return chosen ? { ...settings, projectPython: chosen } : settings;
}
