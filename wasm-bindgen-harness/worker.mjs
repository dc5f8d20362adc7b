// The worker entry: loads the engine's .wasm, then serves handler.mjs's `fetch(request, env)`.
//
// The .wasm is imported as a compiled WebAssembly.Module, as Workers-style bundlers do for
// `*.wasm` imports (wrangler's CompiledWasm rule). Under Node, `node/register.mjs` installs a
// loader that does the same (see README.md). On a runtime that imports `*.wasm` differently,
// write an entry like this one that obtains the Module its own way.

import wasmModule from './pkg/sso_filter_edge_bg.wasm';
import { initSync } from './pkg/sso_filter_edge.js';

// Synchronous instantiation of an already compiled module is allowed at start-up in Workers
// (compiling bytes at run time is not), and it is the cheapest path in Node too.
initSync({ module: wasmModule });

export { default, stats, tick, useSockets } from './handler.mjs';
