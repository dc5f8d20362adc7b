// Node module hook: `import m from './x.wasm'` yields a compiled WebAssembly.Module, as
// Workers-style runtimes and their bundlers do (wrangler's CompiledWasm rule). With it,
// worker.mjs runs unchanged under Node 20. Installed by node/register.mjs.
export async function load(url, context, nextLoad) {
  if (url.startsWith('file:') && new URL(url).pathname.endsWith('.wasm')) {
    const source =
      "import { readFileSync } from 'node:fs';\n" +
      `export default new WebAssembly.Module(readFileSync(new URL(${JSON.stringify(url)})));\n`;
    return { format: 'module', source, shortCircuit: true };
  }
  return nextLoad(url, context);
}
