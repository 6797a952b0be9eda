/**
 * Drives a real VS Code (code-server in headless Debian chromium, via playwright-core) through what a user of the
 * CodeConductor extension does, saves a screenshot of each step and prints one JSON line of observations on stdout
 * for tests/editors/test_vscode.py to assert on.
 *
 * Usage: node drive.cjs '<json config>'
 *   {url, folder, file, shots, scenario: "smoke" | "full" | "ask" | "palette" | "makeTestsPass" | "preview",
 *    selectLines?: [start, end] (1-based, inclusive), timeoutMs?}
 * Everything goes to 127.0.0.1 only; chromium runs with a fresh profile and no background networking.
 */
"use strict";
const path = require("node:path");
const fs = require("node:fs");
const os = require("node:os");
const { createRequire } = require("node:module");

const repo = path.resolve(__dirname, "..", "..", "..");
const { chromium } = createRequire(path.join(repo, "vscode-extension", "package.json"))("playwright-core");

const cfg = JSON.parse(process.argv[2]);
const T = cfg.timeoutMs ?? 60000;
const obs = { steps: [], notifications: [], errors: [] };
const log = (msg) => process.stderr.write(`[drive] ${msg}\n`);

async function shot(page, name) {
  const file = path.join(cfg.shots, `${name}.png`);
  await page.screenshot({ path: file });
  obs.steps.push(name);
  log(`screenshot ${file}`);
}

async function notificationsText(page) {
  return page.locator(".notifications-toasts .notification-toast, .notifications-center .notification-list-item").allInnerTexts();
}

async function statusBarText(page) {
  return (await page.locator("#workbench\\.parts\\.statusbar").innerText()).replace(/\s+/g, " ");
}

async function waitStatusBar(page, re, timeout = T) {
  const deadline = Date.now() + timeout;
  let text = "";
  while (Date.now() < deadline) {
    text = await statusBarText(page);
    if (re.test(text)) {
      return text;
    }
    await page.waitForTimeout(100);
  }
  throw new Error(`status bar never matched ${re}: ${text}`);
}

async function palette(page, command) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await input.waitFor({ state: "visible", timeout: T });
  await input.fill(`>${command}`);
  const row = page.locator(".quick-input-widget .monaco-list-row", { hasText: command }).first();
  await row.waitFor({ state: "visible", timeout: T });
  await page.keyboard.press("Enter");
}

async function openFile(page, name) {
  const row = page.locator(".explorer-folders-view .monaco-list-row", { hasText: name }).first();
  await row.waitFor({ state: "visible", timeout: T });
  await row.dblclick();
  await page.locator(`.tabs-container .tab`, { hasText: name }).first().waitFor({ timeout: T });
  await page.locator(".monaco-editor .view-lines").first().waitFor({ timeout: T });
}

async function editorText(page) {
  // The model's text, not the DOM's (the DOM only holds visible lines): read it through the clipboard-free API
  // exposed to the page by Monaco is not available in code-server, so select-all + copy would need permissions;
  // instead read the visible view lines, which is enough for a short file.
  const lines = await page.locator(".monaco-editor .view-lines .view-line").evaluateAll((els) =>
    els
      .map((el) => ({ top: parseFloat(el.style.top || "0"), text: el.textContent.replace(/\u00a0/g, " ") }))
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text),
  );
  return lines.join("\n");
}

async function selectLines(page, start, end) {
  // Ctrl+G: go to the first line, then extend with Shift+Down to the line after `end`.
  await page.locator(".monaco-editor .view-lines").first().click();
  await page.keyboard.press("Control+g");
  await page.keyboard.type(String(start));
  await page.keyboard.press("Enter");
  await page.keyboard.press("Home");
  await page.keyboard.press("Home"); // twice: the first may stop at the indentation
  for (let i = start; i <= end; i++) {
    await page.keyboard.press("Shift+ArrowDown");
  }
}

async function main() {
  fs.mkdirSync(cfg.shots, { recursive: true });
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "cc-chromium-"));
  // A fresh --user-data-dir per run (playwright's persistent context is how it takes one).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: cfg.chromium ?? "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", (err) => obs.errors.push(String(err)));
    const tNav = Date.now();
    await page.goto(`${cfg.url}/?folder=${encodeURIComponent(cfg.folder)}`, { timeout: T });
    await page.locator(".monaco-workbench").waitFor({ timeout: T });
    const tWorkbench = Date.now();
    await openFile(page, cfg.file);
    // The extension activates on the Python file; the status bar says what the server found.
    obs.statusBar = await waitStatusBar(page, cfg.expectStatus ? new RegExp(cfg.expectStatus) : /⚖|CodeConductor/);
    obs.timings = { workbenchMs: tWorkbench - tNav, openToStatusMs: Date.now() - tWorkbench };
    if (cfg.waitNotification) {
      await page
        .locator(".notifications-toasts .notification-toast", { hasText: cfg.waitNotification })
        .first()
        .waitFor({ state: "visible", timeout: T });
    }
    await page.waitForTimeout(500);
    obs.notifications = await notificationsText(page);
    await shot(page, "01-activated");
    if (cfg.scenario === "smoke") {
      return;
    }
    if (cfg.scenario === "ask") {
      await ask(page);
      return;
    }
    if (cfg.scenario === "makeTestsPass") {
      await makeTestsPass(page);
      return;
    }
    if (cfg.scenario === "preview") {
      await preview(page);
      return;
    }
    if (cfg.scenario === "palette") {
      await selectLines(page, ...cfg.selectLines);
      await palette(page, cfg.command);
      await page.waitForTimeout(cfg.waitMs ?? 15000);
      obs.notifications = await notificationsText(page);
      obs.after = await editorText(page);
      await shot(page, "palette");
      return;
    }
    await full(page);
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
}

/** Live settings, then Ask the Ensemble… from the palette: the answer opens as a markdown preview. */
async function ask(page) {
  if (cfg.newSettings) {
    // Edit settings.json in the editor as a user would (Preferences: Open User Settings (JSON), save); the
    // extension must pass the change on to the running server without a restart.
    await palette(page, "Preferences: Open User Settings (JSON)");
    await page.locator(".tabs-container .tab", { hasText: "settings.json" }).first().waitFor({ timeout: T });
    await page.locator(".monaco-editor .view-lines").first().click();
    await page.keyboard.press("Control+a");
    await page.keyboard.insertText(JSON.stringify(cfg.newSettings.content));
    await page.keyboard.press("Control+s");
    obs.statusBarAfterSettings = await waitStatusBar(page, new RegExp(cfg.newSettings.expectStatus));
    await shot(page, "02-settings-applied");
    await page.keyboard.press("Control+w"); // back to sample.py
  }
  await selectLines(page, ...cfg.selectLines);
  await palette(page, "CodeConductor: Ask the Ensemble");
  const input = page.locator(".quick-input-widget .quick-input-box input");
  await page.locator(".quick-input-widget", { hasText: "Ask the Ensemble" }).waitFor({ state: "visible", timeout: T });
  await input.fill(cfg.question);
  await shot(page, "03-ask-input");
  await page.keyboard.press("Enter");
  obs.preview = await previewText(page);
  await shot(page, "04-ask-preview");
}

/** "Make Tests Pass (Fix Selection with Tests)…" from the palette: accept the automatic choice of tests (empty
 * input), wait for the outcome notification, read the edited text, then open the outcome's preview. */
async function makeTestsPass(page) {
  obs.before = await editorText(page);
  await selectLines(page, ...cfg.selectLines);
  await palette(page, "CodeConductor: Make Tests Pass");
  await page.locator(".quick-input-widget", { hasText: "Make Tests Pass" }).waitFor({ state: "visible", timeout: T });
  obs.testsPrompt = (await page.locator(".quick-input-widget").first().innerText()).replace(/\s+/g, " ");
  await shot(page, "02-which-tests");
  await page.keyboard.press("Enter"); // empty: the tests that mention the function
  const toast = page.locator(".notifications-toasts .notification-toast", { hasText: cfg.expectOutcome ?? "candidates pass the tests" }).first();
  await toast.waitFor({ state: "visible", timeout: T * 3 });
  obs.outcome = (await toast.innerText()).replace(/\s+/g, " ");
  await shot(page, "03-outcome");
  obs.after = await editorText(page);
  await toast.locator("a.monaco-button, .monaco-button", { hasText: "Show Details" }).first().click();
  obs.preview = await previewText(page);
  await shot(page, "04-outcome-preview");
}

/** Move the code action menu's focus with the keyboard to the action titled `title`, then press Enter. */
async function chooseAction(page, menu, title) {
  for (let i = 0; i < 20; i++) {
    const focused = await menu.locator(".monaco-list-row.focused").first().getAttribute("aria-label");
    if (focused === title) {
      await page.keyboard.press("Enter");
      return;
    }
    await page.keyboard.press("ArrowDown");
  }
  throw new Error(`code action ${title} not found in the menu`);
}

async function full(page) {
  const [start, end] = cfg.selectLines;
  obs.before = await editorText(page);
  await selectLines(page, start, end);
  // The code action menu, from the keyboard (Ctrl+.).
  await page.keyboard.press("Control+.");
  const menu = page.locator(".action-widget");
  await menu.waitFor({ state: "visible", timeout: T });
  obs.actions = (await menu.locator(".monaco-list-row").allInnerTexts()).map((t) => t.trim());
  await shot(page, "02-code-action-menu");
  await page.waitForTimeout(500); // the widget takes keys only once laid out
  await chooseAction(page, menu, cfg.action ?? "Fix with ensemble");
  // Progress: the server's work-done progress shows in the status bar ("CodeConductor: fix … models answered");
  // poll quickly, since a run on small models can be short.
  const progressRe = new RegExp(cfg.progressRe ?? "models answered|CodeConductor: fix");
  const until = Date.now() + T;
  while (Date.now() < until) {
    const text = `${await statusBarText(page)} ${(await notificationsText(page)).join(" ")}`;
    if (progressRe.test(text)) {
      obs.progress = text;
      await shot(page, "03-progress");
      break;
    }
    await page.waitForTimeout(100);
  }
  if (!obs.progress) {
    obs.errors.push("no progress seen");
  }
  // The edit lands in the editor.
  const deadline = Date.now() + T * 3;
  let after = obs.before;
  while (Date.now() < deadline && after === obs.before) {
    await page.waitForTimeout(500);
    after = await editorText(page);
  }
  obs.after = after;
  obs.notificationsAfterRun = await notificationsText(page);
  await page.keyboard.press("Escape");
  await shot(page, "04-applied-edit");
  // The hover over the changed range: keyboard (Ctrl+K Ctrl+I) with the cursor inside it.
  await page.keyboard.press("Control+g");
  await page.keyboard.type(String(start));
  await page.keyboard.press("Enter");
  await page.keyboard.press("Control+k");
  await page.keyboard.press("Control+i");
  const hover = page.locator(".monaco-hover:not(.hidden) .monaco-hover-content, .monaco-hover .hover-contents").first();
  await hover.waitFor({ state: "visible", timeout: T });
  await page.waitForTimeout(300);
  obs.hover = await hover.innerText();
  await shot(page, "05-disagreement-hover");
  // The run came from the lightbulb; the extension kept its result for "Show Last Result".
  await page.keyboard.press("Escape");
  await palette(page, "CodeConductor: Show Last Result");
  obs.lastResult = await previewText(page);
  await shot(page, "06-last-result");
}

/** The text of editor group `index`'s (non-diff) editor, visible lines in order. */
async function groupText(page, index) {
  const lines = await page
    .locator(".editor-group-container")
    .nth(index)
    .locator(".monaco-editor .view-lines .view-line")
    .evaluateAll((els) =>
      els
        .map((el) => ({ top: parseFloat(el.style.top || "0"), text: el.textContent.replace(/\u00a0/g, " ") }))
        .sort((a, b) => a.top - b.top)
        .map((l) => l.text),
    );
  return lines.join("\n");
}

/** The proposed (right-hand) side of the open diff editor. */
async function proposedText(page) {
  const lines = await page.locator(".monaco-diff-editor .editor.modified .view-lines .view-line").evaluateAll((els) =>
    els
      .map((el) => ({ top: parseFloat(el.style.top || "0"), text: el.textContent.replace(/\u00a0/g, " ") }))
      .sort((a, b) => a.top - b.top)
      .map((l) => l.text),
  );
  return lines.join("\n");
}

async function waitFor(what, probe, timeout = T) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) {
      return last;
    }
    await page_.waitForTimeout(200);
  }
  await shot(page_, "timeout");
  throw new Error(`timed out waiting for ${what}`);
}

let page_;

/** Fix Selection from the palette with the cursor in the function; wait for the diff editor. */
async function fixToPreview(page, expect) {
  await selectLines(page, ...cfg.selectLines);
  await palette(page, "CodeConductor: Fix Selection");
  await page.locator(".monaco-diff-editor").first().waitFor({ state: "visible", timeout: T * 2 });
  return waitFor("the proposed text", async () => {
    const text = await proposedText(page);
    return text.includes(expect) ? text : "";
  });
}

async function titleAction(page, name) {
  await page.locator(`.editor-actions a.action-label[aria-label^="${name}"]`).first().click();
}

async function toast(page, text) {
  const found = page.locator(".notifications-toasts .notification-toast", { hasText: text }).first();
  await found.waitFor({ state: "visible", timeout: T });
  return (await found.innerText()).replace(/\s+/g, " ");
}

/** The preview before any edit: diff editor, CodeLens, an alternative's diff, reject, a stale accept refused,
 * accept, then the status bar menu and the history dashboard. */
async function preview(page) {
  page_ = page;
  obs.before = await groupText(page, 0);
  // 1. The fix opens as a diff beside the file; nothing is applied.
  obs.proposed = await fixToPreview(page, cfg.fixedText);
  obs.previewTab = (await page.locator(".tabs-container .tab", { hasText: "CodeConductor" }).first().innerText()).trim();
  obs.lenses = await waitFor("the CodeLens", async () => (await page.locator(".codelens-decoration").allInnerTexts()).join(" / "));
  obs.afterPreview = await groupText(page, 0);
  await shot(page, "02-preview");
  // 2. Alternatives (CodeLens): the dissenting answer previews its own diff.
  await page.locator(".codelens-decoration a", { hasText: "Alternatives" }).first().click();
  await page.locator(".quick-input-widget", { hasText: "another answer" }).waitFor({ state: "visible", timeout: T });
  obs.alternatives = (await page.locator(".quick-input-widget .monaco-list-row").allInnerTexts()).map((t) => t.replace(/\s+/g, " "));
  await page.keyboard.press("Enter");
  obs.alternativeProposed = await waitFor("the alternative's diff", async () => {
    const text = await proposedText(page);
    return text.includes(cfg.alternativeText) ? text : "";
  });
  await shot(page, "03-alternative");
  // 3. Reject (editor title): the diff closes and the file is as it was.
  await titleAction(page, "Reject");
  obs.rejectedToast = await toast(page, "rejected");
  await page.locator(".monaco-diff-editor").first().waitFor({ state: "hidden", timeout: T });
  obs.afterReject = await groupText(page, 0);
  await shot(page, "04-rejected");
  // 4. Preview again, then the user types in the file: Accept is refused (the text changed since the request).
  await fixToPreview(page, cfg.fixedText);
  await page.locator(".editor-group-container").nth(0).locator(".view-lines").first().click();
  await page.keyboard.press("Control+End");
  await page.keyboard.type("# edited");
  // The file's editor is the active one now: accept from its CodeLens.
  await page.locator(".codelens-decoration a", { hasText: "Accept" }).first().click();
  obs.staleToast = await toast(page, "changed");
  obs.afterStale = await groupText(page, 0);
  await shot(page, "05-stale-refused");
  // 5. Preview on the current text and Accept: the edit lands.
  await fixToPreview(page, cfg.fixedText);
  await titleAction(page, "Accept");
  obs.acceptedToast = await toast(page, "applied");
  // Back to the top of the file (the typing above scrolled it): only visible lines are read.
  await page.locator(".editor-group-container").nth(0).locator(".view-lines").first().click();
  await page.keyboard.press("Control+Home");
  obs.afterAccept = await waitFor("the accepted edit", async () => {
    const text = await groupText(page, 0);
    return text.includes(cfg.fixedText) ? text : "";
  });
  await shot(page, "06-accepted");
  // 6. The status bar menu: servers, the last run, the actions; then the history dashboard in a webview.
  await page.keyboard.press("Escape");
  await page.locator("#workbench\\.parts\\.statusbar .statusbar-item", { hasText: "⚖" }).first().click();
  const menu = page.locator(".quick-input-widget", { hasText: "Open History Dashboard" });
  await menu.waitFor({ state: "visible", timeout: T });
  obs.statusMenu = (await page.locator(".quick-input-widget .monaco-list-row").allInnerTexts()).map((t) => t.replace(/\s+/g, " "));
  await shot(page, "07-status-menu");
  await page.locator(".quick-input-widget .quick-input-box input").fill("History Dashboard");
  await page.keyboard.press("Enter");
  await page.locator(".tabs-container .tab", { hasText: "CodeConductor History" }).first().waitFor({ timeout: T });
  const body = page.frameLocator("iframe.webview.ready").first().frameLocator("iframe#active-frame").locator("body");
  await body.locator("table").first().waitFor({ state: "visible", timeout: T });
  obs.dashboard = await body.innerText();
  await shot(page, "08-history-dashboard");
}

/** The text of the markdown preview that just opened (a webview: an iframe holding the active frame). */
async function previewText(page) {
  const tab = page.locator(".tabs-container .tab", { hasText: "Preview" }).first();
  await tab.waitFor({ state: "visible", timeout: T * 3 });
  obs.previewTab = (await tab.innerText()).trim();
  const body = page.frameLocator("iframe.webview.ready").first().frameLocator("iframe#active-frame").locator("body");
  await body.locator("table").first().waitFor({ state: "visible", timeout: T });
  return body.innerText();
}

main()
  .then(() => {
    process.stdout.write(`${JSON.stringify({ ok: true, ...obs })}\n`);
  })
  .catch((err) => {
    process.stdout.write(`${JSON.stringify({ ok: false, error: String(err && err.stack ? err.stack : err), ...obs })}\n`);
    process.exitCode = 1;
  });
