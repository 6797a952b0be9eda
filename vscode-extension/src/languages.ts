/** The languages the CodeConductor server supports (ensemble/languages: `supported_language_ids()`); the same
 * list is in package.json's activationEvents and menus (tests/unit/test_languages.py checks they agree). */
export const SUPPORTED_LANGUAGES: readonly string[] = [
  "python",
  "javascript",
  "javascriptreact",
  "typescript",
  "typescriptreact",
  "go",
  "rust",
  "java",
  "c",
  "cpp",
];

/** Test commands (fix until green, generate tests) run pytest: Python only. */
export const TEST_LANGUAGES: readonly string[] = ["python"];

export function isSupported(languageId: string, pythonOnly = false): boolean {
  return (pythonOnly ? TEST_LANGUAGES : SUPPORTED_LANGUAGES).includes(languageId);
}
