// Shared pieces of the worker tests: a configuration, the seed's token, and a fake `fetch`
// that plays the origin (and IdPs) and records every request the worker sends out.

export const ORIGIN = 'http://origin.test';
export const BASE = 'http://edge.test';
export const SEED_SECRET = '4b117a14-c652-410a-83b2-9839c16e7ae1';
export const SEED_TOKEN =
  'eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZS1zdWJqZWN0IiwiYWJjIjoiMTIzIiwicm9sZXMiOlsic3lzdGVtIGFkbWluIiwiZGF0YSBhZG1pbiIsImRhdGEgYW5hbHlzdCIsImRhdGEgdmlld2VyIiwiYXBpIGFkbWluIl0sImxvZ2luTmFtZSI6ImFsaWNlIn0.PGA9DNa-B_4e4WS-fVG57tvxYe0dlu0r8O_Lw1vEtAQ';
// "password" hashed by Python's hashlib.pbkdf2_hmac (the engine's own test vector).
export const ADMIN_HASH =
  '$pbkdf2-sha256$i=10000,l=32$MDEyMzQ1Njc4OWFiY2RlZg$0YdT6cDcX5qiDagy0ie+FrM2RN8V8MC0buKrDrj+aAU';
export const NAV = { accept: 'text/html,application/xhtml+xml' };
export const API = { accept: 'application/json' };

export function config(extra = {}) {
  return {
    base_url: BASE,
    public_paths: ['/healthz', '/static/'],
    default_method: 'local',
    session: { keys: ['MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY'], secure: false },
    methods: {
      local: {
        type: 'local',
        users: [{ login: 'admin', password_hash: ADMIN_HASH, name: 'Admin', roles: ['system admin'] }],
      },
      'jwt-param': {
        type: 'jwt',
        param: 'jwtParam',
        verify: { alg: 'HS256', secret: SEED_SECRET },
        insecure_allow_missing_exp: true,
        mapping: { login: 'loginName', roles: 'roles' },
      },
    },
    ...extra,
  };
}

export function env(cfg = config()) {
  return { SSO_CONFIG: typeof cfg === 'string' ? cfg : JSON.stringify(cfg), ORIGIN };
}

/**
 * Replaces globalThis.fetch for the duration of a test. `routes` maps a URL prefix to a
 * handler (Request) => Response; anything else is the origin, which answers 200 "origin".
 * Returns the list of recorded requests (with their bodies read as text).
 */
export function fakeFetch(t, routes = {}) {
  const seen = [];
  const real = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const req = new Request(input, init);
    const body = ['GET', 'HEAD'].includes(req.method) ? '' : await req.clone().text();
    seen.push({ url: req.url, method: req.method, headers: Object.fromEntries(req.headers), body });
    for (const [prefix, handler] of Object.entries(routes)) {
      if (req.url.startsWith(prefix)) return handler(req);
    }
    return new Response('origin', { status: 200, headers: { 'content-type': 'text/plain' } });
  };
  t.after(() => {
    globalThis.fetch = real;
  });
  return seen;
}

export function get(path, headers = NAV) {
  return new Request(BASE + path, { headers });
}

/** name=value pairs a response sets (attributes dropped); deletions have an empty value. */
export function setCookies(response) {
  return response.headers.getSetCookie().map((line) => {
    const [pair] = line.split(';');
    const at = pair.indexOf('=');
    return [pair.slice(0, at), pair.slice(at + 1)];
  });
}

/** A Cookie header value from Set-Cookie lines, ignoring deletions. */
export function cookieHeader(response) {
  return setCookies(response)
    .filter(([, v]) => v !== '')
    .map(([n, v]) => `${n}=${v}`)
    .join('; ');
}
