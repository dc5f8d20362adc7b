#!/usr/bin/env node
// Runs worker.mjs under Node 20's HTTP server: each request becomes a fetch Request, goes
// through worker.fetch(request, env), and its Response is written back. The end-to-end suite
// runs its scenarios against this server (tests/e2e, SSO_E2E_HOST=node).
//
//   node node-server.mjs --port 8080 --origin http://127.0.0.1:8081 --config filter.json
//                        [--host 127.0.0.1] [--admin-port 9901]
//
// env.SSO_CONFIG is the text of --config (or the SSO_CONFIG environment variable); env.ORIGIN
// is --origin (or ORIGIN). The optional admin listener, like Envoy's, serves GET /ready and
// GET /stats (the worker's counters in Envoy's text form, `wasmcustom.<name>: <n>`) on its own
// port, never on the protected one. The engine's timer (the organisation sync) runs every second.

import http from 'node:http';
import { readFileSync } from 'node:fs';
import { register } from 'node:module';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';

// Before worker.mjs is imported: its `import ... from '*.wasm'` needs the loader.
register('./node/wasm-loader.mjs', import.meta.url);
const { default: worker, stats, tick, useSockets } = await import('./worker.mjs');
// TCP/TLS sockets for the engine's byte-stream steps (LDAP), in cloudflare:sockets' shape.
useSockets((await import('./node/sockets.mjs')).connect);

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8080' },
    host: { type: 'string', default: '127.0.0.1' },
    origin: { type: 'string' },
    config: { type: 'string' },
    'admin-port': { type: 'string' },
  },
});

const env = {
  SSO_CONFIG: args.config ? readFileSync(args.config, 'utf8') : (process.env.SSO_CONFIG ?? ''),
  ORIGIN: args.origin ?? process.env.ORIGIN ?? '',
};
const port = Number(args.port);
const self = `http://${args.host.includes(':') ? `[${args.host}]` : args.host}:${port}`;
// A Host header is used for the Request URL only when it is a plain host[:port]: a Host such
// as "a/b" or "a?b" would otherwise change the path the engine sees.
const PLAIN_HOST = /^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?$/i;

function authority(req) {
  const host = req.headers.host;
  return typeof host === 'string' && PLAIN_HOST.test(host) ? `http://${host}` : self;
}

// Encodings Node's fetch decodes on the way in while keeping the header: the body written back
// is then plain, so the header and the length must go.
const DECODED = new Set(['gzip', 'x-gzip', 'deflate', 'br']);

function toRequest(req, signal) {
  const headers = new Headers();
  // rawHeaders keeps every field as sent (names as sent, repeated fields repeated).
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    // Several Cookie fields are one list joined by "; " (RFC 9113 §8.2.3), not ", ".
    if (name === 'cookie' && headers.has('cookie')) {
      headers.set('cookie', `${headers.get('cookie')}; ${req.rawHeaders[i + 1]}`);
    } else {
      headers.append(name, req.rawHeaders[i + 1]);
    }
  }
  // Like Cloudflare's edge, this front says who connected in CF-Connecting-IP, replacing
  // whatever the client sent under that name (the handler trusts it as the client address).
  headers.delete('cf-connecting-ip');
  if (req.socket.remoteAddress) headers.set('cf-connecting-ip', req.socket.remoteAddress);
  const hasBody = !['GET', 'HEAD'].includes(req.method);
  return new Request(authority(req) + req.url, {
    method: req.method,
    headers,
    body: hasBody ? Readable.toWeb(req) : null,
    duplex: 'half',
    signal,
  });
}

async function write(res, response) {
  const encoding = (response.headers.get('content-encoding') ?? '').toLowerCase();
  const decoded = DECODED.has(encoding);
  for (const [name, value] of response.headers) {
    if (name === 'set-cookie') continue;
    if (decoded && (name === 'content-encoding' || name === 'content-length')) continue;
    if (name === 'transfer-encoding' || name === 'connection' || name === 'keep-alive') continue;
    res.setHeader(name, value);
  }
  const cookies = response.headers.getSetCookie();
  if (cookies.length) res.setHeader('set-cookie', cookies);
  res.statusCode = response.status;
  if (response.body) {
    for await (const chunk of response.body) res.write(chunk);
  }
  res.end();
}

// Request heads up to 60 KiB, Envoy's default (max_request_headers_kb), rather than Node's
// 16 KiB: the filter, not the front, is what refuses an oversized token in the URL.
const server = http.createServer({ maxHeaderSize: 60 * 1024 }, async (req, res) => {
  try {
    // Origin-form targets only. A raw `\` in the path is refused here, as Envoy's front refuses
    // it: the URL parser would silently turn it into `/` before the filter saw the path. (In the
    // query the parser keeps it as it is, and so does the engine.)
    if (!req.url.startsWith('/') || req.url.split('?', 1)[0].includes('\\')) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request target\n');
      return;
    }
    // request.signal aborts when the client goes away before its answer is written, as a
    // Workers runtime's does: the worker then forwards nothing of that request.
    const gone = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) gone.abort();
    });
    const response = await worker.fetch(toRequest(req, gone.signal), env);
    await write(res, response);
  } catch (err) {
    console.error(`node-server: error: ${err?.stack ?? err}`);
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end();
  }
});
server.listen(port, args.host, () => {
  console.log(`node-server: listening on ${self}, origin ${env.ORIGIN || '(none)'}`);
});

if (args['admin-port']) {
  const admin = http.createServer((req, res) => {
    if (req.url === '/ready') return res.end('LIVE\n');
    if (req.url.startsWith('/stats')) {
      const lines = Object.entries(stats()).map(([k, v]) => `wasmcustom.${k}: ${v}`);
      return res.end(lines.sort().join('\n') + '\n');
    }
    res.writeHead(404).end();
  });
  admin.listen(Number(args['admin-port']), '127.0.0.1');
}

// The engine's timer every second (the organisation sync; it decides what is due), as Envoy's
// tick does. Unref'd: it never keeps the process alive by itself.
setInterval(() => tick(env), 1000).unref();

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
