// The entry for Cloudflare Workers and workerd: worker.mjs with the runtime's socket API handed
// over (LDAP's byte streams run on `connect()` from cloudflare:sockets), plus an `admin`
// entrypoint for the counters.
//
// wrangler.toml's `main` and workerd/sso.capnp's first module are this file, so `wrangler deploy`
// ships the modules the end-to-end suite ran in workerd (SSO_E2E_HOST=workerd).
//
// `admin` is a named entrypoint: it has no public route. workerd/sso.capnp serves it on its own
// loopback socket (like Envoy's admin port); on Cloudflare only a Worker with a service binding
// that names this entrypoint can reach it. It answers GET /ready ("LIVE") and GET /stats (the
// counters of this isolate in Envoy's text form, `wasmcustom.<name>: <n>`).

import { connect } from 'cloudflare:sockets';
import worker, { stats, useSockets } from './worker.mjs';

useSockets(connect);

export default worker;

export const admin = {
  async fetch(request) {
    const { pathname } = new URL(request.url);
    if (pathname === '/ready') return new Response('LIVE\n');
    if (pathname === '/stats') {
      const lines = Object.entries(stats()).map(([k, v]) => `wasmcustom.${k}: ${v}`);
      return new Response(lines.sort().join('\n') + '\n');
    }
    return new Response('not found\n', { status: 404 });
  },
};
