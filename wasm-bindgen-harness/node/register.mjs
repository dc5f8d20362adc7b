// `node --import ./node/register.mjs ...`: lets worker.mjs import its .wasm (node/wasm-loader.mjs).
import { register } from 'node:module';

register('./wasm-loader.mjs', import.meta.url);
