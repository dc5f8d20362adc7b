// Per-request time of a session-cookie request through the edge worker, under Node:
//
//   npm run bench [-- N]        (node --import ./node/register.mjs bench/session.mjs N)
//
// worker.fetch(request, env) is called directly; globalThis.fetch is a fake origin that answers
// at once, so the time is the worker's own: Request headers → JSON → engine (cookie check,
// identity headers) → header edits → the origin Response. Reported:
//
//   session (memo hit)   the same cookie again and again: the engine's per-worker memo of
//                        verified sessions answers, as for a user's second and later requests
//   session (first use)  a cookie the isolate has not seen: it is decrypted and checked
//   no filter            the same request through a handler that only forwards: the floor of
//                        Request/Headers/fetch handling in this runtime
//   engine only          SsoFilter.handle() on the same request JSON: engine + wasm boundary
//   worker logic         URL, header list, JSON both ways, the engine, the header edits: all
//                        the worker does before handing the request to fetch()
//
// plus the sizes of the .wasm (raw, gzip -9, brotli: Workers-style runtimes limit the
// compressed size). Sequential, one request at a time, on an idle machine.

import { readFileSync } from 'node:fs';
import { gzipSync, brotliCompressSync, constants } from 'node:zlib';
import { performance } from 'node:perf_hooks';

import worker from '../worker.mjs';
import { SsoFilter } from '../pkg/sso_filter_edge.js';
import { config, env as makeEnv, SEED_TOKEN, ORIGIN, BASE, NAV, cookieHeader } from '../test/helpers.mjs';

const N = Number(process.argv[2] ?? 5000);
const FIRST_USE = Math.min(500, N);

const originResponse = () => new Response('ok', { status: 200, headers: { 'content-type': 'text/plain' } });
globalThis.fetch = async () => originResponse();

const env = makeEnv(config());
const headers = (cookie) => ({ ...NAV, cookie, 'user-agent': 'bench', 'accept-language': 'en' });

async function login() {
  const res = await worker.fetch(new Request(`${BASE}/?activeAuth=jwt-param&jwtParam=${SEED_TOKEN}`), env);
  if (res.status !== 302) throw new Error(`landing: ${res.status}`);
  return cookieHeader(res);
}

function summary(name, samples) {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  const us = (ms) => Math.round(ms * 1000 * 10) / 10;
  return {
    name,
    n: s.length,
    median_us: us(at(0.5)),
    p90_us: us(at(0.9)),
    p99_us: us(at(0.99)),
    mean_us: us(s.reduce((a, b) => a + b, 0) / s.length),
  };
}

async function timeRequests(makeRequest, count, handler = worker) {
  const samples = [];
  for (let i = 0; i < count; i++) {
    const req = makeRequest(i);
    const t0 = performance.now();
    const res = await handler.fetch(req, env);
    await res.arrayBuffer();
    samples.push(performance.now() - t0);
    if (res.status !== 200) throw new Error(`status ${res.status}`);
  }
  return samples;
}

const cookie = await login();
const url = `${BASE}/app/dashboard?tab=1`;

// Warm-up: JIT, the memo, the isolate's caches.
await timeRequests(() => new Request(url, { headers: headers(cookie) }), 500);

const results = [];
results.push(summary('session (memo hit)', await timeRequests(() => new Request(url, { headers: headers(cookie) }), N)));

// Fresh cookies: each landing seals a new one (random IV), so each is a memo miss once.
const fresh = [];
for (let i = 0; i < FIRST_USE; i++) fresh.push(await login());
results.push(summary('session (first use)', await timeRequests((i) => new Request(url, { headers: headers(fresh[i]) }), FIRST_USE)));

const passThrough = {
  async fetch(request) {
    const u = new URL(request.url);
    return fetch(ORIGIN + u.pathname + u.search, { method: request.method, headers: new Headers(request.headers), redirect: 'manual' });
  },
};
results.push(summary('no filter (forward only)', await timeRequests(() => new Request(url, { headers: headers(cookie) }), N, passThrough)));

const filter = new SsoFilter(env.SSO_CONFIG);
const head = JSON.stringify({ method: 'GET', path: '/app/dashboard?tab=1', headers: Object.entries(headers(cookie)) });
const engine = [];
for (let i = 0; i < N; i++) {
  const t0 = performance.now();
  const step = filter.handle(head, Date.now());
  engine.push(performance.now() - t0);
  if (!step.includes('"continue"')) throw new Error(step);
}
results.push(summary('engine only (handle)', engine));

// What the worker itself does before fetch(): URL, header list, JSON both ways, the engine,
// the header edits. The rest of a request is the runtime's Request/Response/stream handling.
const own = [];
for (let i = 0; i < N; i++) {
  const req = new Request(url, { headers: headers(cookie) });
  const t0 = performance.now();
  const u = new URL(req.url);
  const json = JSON.stringify({ method: req.method, path: u.pathname + u.search, headers: [...req.headers] });
  const step = JSON.parse(filter.handle(json, Date.now()));
  const out = new Headers(req.headers);
  for (const e of step.edits) e.op === 'remove' ? out.delete(e.name) : out.set(e.name, e.value);
  own.push(performance.now() - t0);
}
results.push(summary('worker logic before fetch()', own));

const wasm = readFileSync(new URL('../pkg/sso_filter_edge_bg.wasm', import.meta.url));
const glue = readFileSync(new URL('../pkg/sso_filter_edge.js', import.meta.url));
const sizes = {
  wasm_bytes: wasm.length,
  wasm_gzip9_bytes: gzipSync(wasm, { level: 9 }).length,
  wasm_brotli_bytes: brotliCompressSync(wasm, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).length,
  glue_js_bytes: glue.length,
};

console.table(results);
console.log(JSON.stringify({ node: process.version, n: N, results, sizes }, null, 1));
