// ES module hooks registered by _node_preload.cjs: the module's file is read as the text under test.
let target = "";
let source = "";

export async function initialize(data) {
  target = data.url;
  source = data.source;
}

export async function load(url, context, nextLoad) {
  const loaded = await nextLoad(url, context);
  if (url !== target) return loaded;
  return { format: loaded.format, source, shortCircuit: true };
}
