// ES module hooks registered by _node_preload.mjs: the module's file is read as the text under test, and, for a
// TypeScript project (data.esbuild: the esbuild package to load), .ts files are turned into JavaScript (types
// stripped, nothing else rewritten) and imports written without the .ts extension are found.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const TYPESCRIPT = /\.(ts|mts|cts)$/;
let target = "";
let source = "";
let esbuild = null;

export async function initialize(data) {
  target = data.url;
  source = data.source;
  if (data.esbuild) esbuild = createRequire(import.meta.url)(data.esbuild);
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (esbuild === null || !specifier.startsWith(".") || !context.parentURL) throw error;
    for (const attempt of [specifier.replace(/\.[cm]?js$/, ".ts"), `${specifier}.ts`, `${specifier}/index.ts`]) {
      const url = new URL(attempt, context.parentURL);
      if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true };
    }
    throw error;
  }
}

export async function load(url, context, nextLoad) {
  if (esbuild !== null && TYPESCRIPT.test(url)) {
    const path = fileURLToPath(url);
    const text = url === target ? source : readFileSync(path, "utf8");
    const out = esbuild.transformSync(text, { loader: "ts", format: "esm", sourcefile: path });
    return { format: "module", source: out.code, shortCircuit: true };
  }
  const loaded = await nextLoad(url, context);
  if (url !== target) return loaded;
  return { format: loaded.format, source, shortCircuit: true };
}
