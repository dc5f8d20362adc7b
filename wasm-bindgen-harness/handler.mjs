// sso-filter as a Workers-style `fetch(request, env)` handler: everything but loading the .wasm
// (worker.mjs does that, then re-exports this module).
//
// Bindings (env):
//   SSO_CONFIG  the filter configuration JSON (a string; the same JSON as Envoy's)
//   ORIGIN      base URL of the upstream to protect, e.g. "https://app.internal:8443"
//
// This file is transport only: it turns the Request into the engine's input, carries out the
// step the engine returns (read the body, fetch a callout, answer, or forward to ORIGIN with
// the engine's header edits) and loops until the request is answered or forwarded. Every
// decision (routing, sessions, tokens, which headers to strip or set) is the engine's, in Rust.
// The module must be initialised (initSync) before the first request.
//
// Byte streams (LDAP): a `stream` step runs on a socket from `connect()`, the socket API of
// Workers-style runtimes (`import { connect } from 'cloudflare:sockets'`), which the entry hands
// over with useSockets(connect); under Node, node/sockets.mjs provides the same shape. Without
// it, every stream round fails and the engine shows its login-failure page.

import { SsoFilter } from './pkg/sso_filter_edge.js';

// Steps per request at most: a login needs a few (body, then a callout or two; an LDAP login
// six socket rounds, more when a reply comes in pieces); a loop longer than this is an engine
// bug and must not spin forever.
const MAX_STEPS = 64;

// Headers that belong to one hop and must not be copied to the next (RFC 9110 §7.6.1), plus
// `host` (the origin's comes from its URL) and `content-length` (fetch sets it from the body).
const HOP_BY_HOP = [
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te',
  'trailer', 'host', 'content-length',
];

// One filter per configuration text, built on first use and kept for the isolate's life. A
// replaced one is not freed here (a request may still be waiting on a callout with it); the
// FinalizationRegistry wasm-bindgen registers reclaims it once unreachable.
let current = null;

// The runtime's socket API: connect({hostname, port}, {secureTransport}) -> Socket.
let connectSocket = null;

/** Hands the handler the runtime's `connect()` (cloudflare:sockets, or node/sockets.mjs). */
export function useSockets(connect) {
  connectSocket = connect;
}

function filterFor(env) {
  const source = typeof env?.SSO_CONFIG === 'string' ? env.SSO_CONFIG : '';
  if (current && current.source === source) return current;
  try {
    current = { source, filter: new SsoFilter(source) };
    console.log(`sso-filter: ${current.filter.summary()}`);
  } catch (err) {
    // A refused configuration serves nothing: every request gets 503 (the Envoy host refuses
    // to load). Logged once per configuration, with the JSON path the error names.
    current = { source, error: String(err?.message ?? err) };
    console.error(`sso-filter: configuration refused: ${current.error}`);
  }
  return current;
}

// The engine's timer (docs: README "Organisation sync"). The engine decides what is due; the
// host only calls it: the Node server every second, a Workers cron through `scheduled`, and in
// any runtime at most once a second from requests (a Workers isolate has its own cache, and
// crons may run in another isolate than the requests, so requests keep each isolate's copy
// current). Callouts run outside any request; their answers go back to the engine.
const TICK_MS = 1000;
let lastTick = 0;

/**
 * Runs the engine's timer once and carries out its callouts (and the ones their answers ask
 * for) until none is left. Resolves when done; never rejects.
 */
export async function tick(env) {
  const state = filterFor(env);
  if (!state.filter) return;
  const filter = state.filter;
  try {
    let pending = JSON.parse(filter.timer(Date.now())).callouts;
    while (pending.length > 0) {
      const next = await Promise.all(
        pending.map(async (p) => {
          const answer = await callout(p.callout);
          const out = filter.timerResponse(p.pending, answer.json, answer.bytes, Date.now());
          return JSON.parse(out).callouts;
        }),
      );
      pending = next.flat();
    }
  } catch (err) {
    console.error(`sso-filter: timer: ${err?.stack ?? err}`);
  }
}

/** The timer from a request, at most once a second per isolate, never delaying it. */
function tickFromRequest(env, ctx) {
  const now = Date.now();
  if (now - lastTick < TICK_MS) return;
  lastTick = now;
  const work = tick(env);
  if (typeof ctx?.waitUntil === 'function') ctx.waitUntil(work);
}

/** The counters of the current filter in this isolate, `{name: count}`. */
export function stats() {
  return current?.filter ? JSON.parse(current.filter.stats()) : {};
}

function plain(status, text) {
  return new Response(text + '\n', {
    status,
    headers: {
      'content-type': 'text/plain; charset=utf-8',
      'cache-control': 'no-store',
      date: new Date().toUTCString(),
    },
  });
}

// A Host that is a plain host[:port] (a DNS name or an IP literal).
const PLAIN_HOST = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

/**
 * What a front refuses before the filter sees the request; null when the request is fine.
 * Envoy's codec refuses both; node-server.mjs does for Node. workerd hands the worker the Host
 * header and the request target exactly as received, joined into `request.url`, so the worker
 * itself must refuse them (on Cloudflare the edge has already normalised the URL and routed by
 * a real host name, and neither ever triggers):
 * - a raw `\` in the path: the URL parser reads it as `/` (and `\..\` as a parent segment);
 * - a Host that is not host[:port]: `a/b` or `a?b` in the Host would change the path parsed
 *   from `request.url`.
 */
function badTarget(request) {
  const host = request.headers.get('host');
  if (host !== null && !PLAIN_HOST.test(host)) return 'bad host';
  const target = request.url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '');
  if (target.split('?', 1)[0].includes('\\')) return 'bad request target';
  return null;
}

function decodeBase64(text) {
  const bin = atob(text);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function bodyOf(step) {
  if (typeof step.body === 'string') return step.body;
  if (typeof step.body_base64 === 'string') return decodeBase64(step.body_base64);
  return null;
}

/** Reads at most `max` bytes of a body stream; stops (and cancels) as soon as it has more. */
async function readCapped(stream, max) {
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size > max) {
        await reader.cancel().catch(() => {});
        break;
      }
    }
  } finally {
    reader.releaseLock?.();
  }
  const out = new Uint8Array(Math.min(size, max));
  let at = 0;
  for (const c of chunks) {
    if (at >= out.length) break;
    const part = c.subarray(0, out.length - at);
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

function respond(step) {
  const headers = new Headers();
  for (const [name, value] of step.headers) headers.append(name, value);
  // RFC 9110 §6.6.1: a server with a clock sends Date. Envoy and Node's HTTP server add it to
  // the filter's own replies; workerd does not, so the worker does (the isolate's clock, the
  // same one the engine is given).
  if (!headers.has('date')) headers.set('date', new Date().toUTCString());
  // A 204/304 (or 1xx) response cannot carry a body.
  const body = [204, 304].includes(step.status) ? null : bodyOf(step);
  return new Response(body, { status: step.status, headers });
}

function stripHopByHop(headers) {
  const listed = (headers.get('connection') ?? '').split(',').map((s) => s.trim().toLowerCase());
  for (const name of [...HOP_BY_HOP, ...listed]) if (name) headers.delete(name);
}

async function forward(request, url, step, body, env) {
  const origin = String(env.ORIGIN ?? '').replace(/\/+$/, '');
  const headers = new Headers(request.headers);
  const onResponse = [];
  for (const edit of step.edits) {
    if (edit.op === 'remove') headers.delete(edit.name);
    else if (edit.op === 'set') headers.set(edit.name, edit.value);
    else if (edit.op === 'add_response') onResponse.push([edit.name, edit.value]);
    else throw new Error(`unknown header edit ${edit.op}`);
  }
  stripHopByHop(headers);
  headers.set('x-forwarded-host', url.host);
  headers.set('x-forwarded-proto', url.protocol.replace(/:$/, ''));
  // The target the engine decided on: its normalised path when it changed it, else the request's
  // own. Joined as text, never resolved as a relative URL, so it cannot change the origin.
  const target = step.path ?? url.pathname + url.search;
  const init = { method: request.method, headers, redirect: 'manual' };
  if (body !== null) {
    init.body = body;
  } else if (request.body && !['GET', 'HEAD'].includes(request.method)) {
    init.body = request.body;
    init.duplex = 'half'; // required by Node's fetch for a streamed body; ignored elsewhere
  }
  let response;
  try {
    response = await fetch(origin + target, init);
  } catch (err) {
    // Refused, reset, or a name that does not resolve: the origin is down, not the filter.
    // 502 like a proxy's (Envoy answers 503 from its own router); the URL is not logged, its
    // query may hold a token.
    console.warn(`sso-filter: origin ${origin} could not be reached: ${err?.name ?? 'error'}`);
    return plain(502, 'sso-filter: the origin could not be reached');
  }
  if (onResponse.length === 0) return response;
  // A fetched response's headers are immutable: copy it to add the engine's headers.
  const out = new Response(response.body, response);
  for (const [name, value] of onResponse) out.headers.append(name, value);
  return out;
}

async function callout(c) {
  const init = { method: c.method, headers: c.headers, redirect: 'manual' };
  const body = bodyOf(c);
  if (body !== null) init.body = body;
  if (c.timeout_ms > 0) init.signal = AbortSignal.timeout(c.timeout_ms);
  try {
    const res = await fetch(c.url, init);
    const headers = [...res.headers].map(([k, v]) => [k.toLowerCase(), v]);
    const bytes = await readCapped(res.body, c.max_response_bytes);
    return { json: JSON.stringify({ status: res.status, headers }), bytes };
  } catch (err) {
    // Refused, reset or timed out: the engine gets "no status" and decides.
    console.warn(`sso-filter: callout to ${c.upstream} failed: ${err?.name ?? 'error'}`);
    return { json: JSON.stringify({ status: null, headers: [] }), bytes: new Uint8Array(0) };
  }
}

/** Resolves to `fallback` after `ms`; the timer never keeps the isolate alive. */
function within(promise, ms, fallback) {
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

const TIMED_OUT = Symbol('timed out');

/**
 * One round of a `stream` step on the request's socket (opened on the first round): write,
 * read until at least `read_at_least` bytes came, close when asked. Returns what the engine
 * hands to streamReply. Any failure or timeout closes the socket and reports "failed".
 */
async function streamRound(conn, s) {
  const chunks = [];
  let size = 0;
  let end = 'open';
  try {
    if (!conn.socket) {
      if (!connectSocket) throw new Error('no socket API (useSockets was not called)');
      conn.socket = connectSocket(
        { hostname: s.host, port: s.port },
        { secureTransport: s.tls ? 'on' : 'off', allowHalfOpen: false },
      );
      conn.reader = conn.socket.readable.getReader();
      conn.writer = conn.socket.writable.getWriter();
    }
    const deadline = Date.now() + s.timeout_ms;
    const left = () => Math.max(1, deadline - Date.now());
    if (s.send_base64) {
      const wrote = await within(conn.writer.write(decodeBase64(s.send_base64)), left(), TIMED_OUT);
      if (wrote === TIMED_OUT) throw new Error('write timed out');
    }
    while (size < s.read_at_least) {
      const got = await within(conn.reader.read(), left(), TIMED_OUT);
      if (got === TIMED_OUT) throw new Error('read timed out');
      if (got.done) {
        end = 'peer_closed';
        break;
      }
      const room = s.read_limit - size;
      const part = got.value.byteLength > room ? got.value.subarray(0, room) : got.value;
      chunks.push(part);
      size += part.byteLength;
      if (size >= s.read_limit) break;
    }
    if (s.close || end !== 'open') closeStream(conn);
  } catch (err) {
    console.warn(`sso-filter: stream to ${s.host}:${s.port} failed: ${err?.message ?? err}`);
    end = 'failed';
    closeStream(conn);
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return { json: JSON.stringify({ end }), bytes };
}

function closeStream(conn) {
  if (!conn.socket) return;
  const socket = conn.socket;
  conn.socket = null;
  try {
    conn.reader?.releaseLock?.();
  } catch {}
  Promise.resolve(socket.close()).catch(() => {});
}

async function handle(request, env) {
  const conn = { socket: null };
  try {
    return await handleSteps(request, env, conn);
  } finally {
    // A request never leaves a socket open behind it.
    closeStream(conn);
  }
}

async function handleSteps(request, env, conn) {
  const state = filterFor(env);
  if (state.error) return plain(503, 'sso-filter: configuration refused');
  if (!env?.ORIGIN) {
    console.error('sso-filter: ORIGIN binding missing');
    return plain(503, 'sso-filter: no origin configured');
  }
  const filter = state.filter;
  const bad = badTarget(request);
  if (bad) return plain(400, bad);
  const url = new URL(request.url);
  const head = {
    method: request.method,
    path: url.pathname + url.search,
    headers: [...request.headers],
    // The client address: Cloudflare sets CF-Connecting-IP on every request (a client cannot
    // choose it there); node-server.mjs does the same from the socket. Other fronts: set
    // `client_ip_header` in the configuration instead.
    client: request.headers.get('cf-connecting-ip'),
  };
  let step = JSON.parse(filter.handle(JSON.stringify(head), Date.now()));
  let body = null;
  for (let n = 0; n < MAX_STEPS; n++) {
    if (request.signal?.aborted) {
      // The client went away while the engine waited (docs/behaviour.md, "Request
      // lifecycle"): the request ends here, whatever the engine decided or waits for, and
      // nothing of it is forwarded. The answer goes to no one.
      if (typeof step.pending === 'number') filter.abandon(step.pending);
      return plain(499, 'sso-filter: the client closed the request');
    }
    switch (step.step) {
      case 'continue':
        return forward(request, url, step, body, env);
      case 'respond':
        return respond(step);
      case 'read_body': {
        let bytes;
        try {
          // One byte past the limit lets the engine see "too large" and answer 413.
          bytes = await readCapped(request.body, step.limit + 1);
        } catch {
          filter.abandon(step.pending);
          return plain(400, 'sso-filter: the request body could not be read');
        }
        body = bytes;
        step = JSON.parse(filter.body(step.pending, bytes, Date.now()));
        break;
      }
      case 'stream': {
        const answer = await streamRound(conn, step.stream);
        step = JSON.parse(filter.streamReply(step.pending, answer.json, answer.bytes, Date.now()));
        break;
      }
      case 'callout': {
        const answer = await callout(step.callout);
        step = JSON.parse(filter.calloutResponse(step.pending, answer.json, answer.bytes, Date.now()));
        break;
      }
      default:
        throw new Error(`unknown step ${step.step}`);
    }
  }
  console.error('sso-filter: too many steps for one request');
  return plain(500, 'sso-filter: internal error');
}

export default {
  async fetch(request, env, ctx) {
    tickFromRequest(env, ctx);
    try {
      return await handle(request, env);
    } catch (err) {
      // Fail closed: an error anywhere answers 500; the request is never forwarded.
      console.error(`sso-filter: internal error: ${err?.stack ?? err}`);
      return plain(500, 'sso-filter: internal error');
    }
  },

  // A Workers cron (wrangler.toml [triggers]): the engine's timer in this isolate.
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(tick(env));
  },
};
