// The worker module end to end, with a fake origin: configuration errors, sessions, the login
// form (a read_body step), header stripping, and a callout (OIDC discovery) through fetch().

import { test } from 'node:test';
import assert from 'node:assert/strict';

import worker, { stats } from '../worker.mjs';
import { SsoFilter } from '../pkg/sso_filter_edge.js';
import {
  API, BASE, NAV, ORIGIN, SEED_TOKEN, config, cookieHeader, env, fakeFetch, get, setCookies,
} from './helpers.mjs';

test('a bad configuration is a JS Error naming the JSON path, and the worker answers 503', async (t) => {
  const cfg = config();
  cfg.methods['jwt-param'].verify.alg = 'HS257';
  assert.throws(() => new SsoFilter(JSON.stringify(cfg)), (err) => {
    assert.ok(err instanceof Error);
    assert.match(err.message, /methods\.jwt-param\.verify\.alg/);
    return true;
  });
  assert.throws(() => new SsoFilter('{"base_url": '), Error);

  const seen = fakeFetch(t);
  const errors = [];
  t.mock.method(console, 'error', (line) => errors.push(String(line)));
  const res = await worker.fetch(get('/healthz'), env(cfg));
  assert.equal(res.status, 503);
  assert.equal(seen.length, 0, 'a refused configuration forwards nothing');
  assert.ok(errors.some((l) => l.includes('configuration refused') && l.includes('methods.jwt-param.verify.alg')), errors);
});

test('without a session: navigation redirects to login, API gets 401 JSON, origin untouched', async (t) => {
  const seen = fakeFetch(t);
  const nav = await worker.fetch(get('/private?x=1'), env());
  assert.equal(nav.status, 302);
  const loc = new URL(nav.headers.get('location'), BASE);
  assert.equal(loc.pathname, '/sso/login');
  assert.equal(loc.searchParams.get('rd'), '/private?x=1');
  const api = await worker.fetch(get('/private', API), env());
  assert.equal(api.status, 401);
  assert.equal((await api.json()).error, 'login_required');
  assert.equal(seen.length, 0);
});

test('token landing, then a session request reaches the origin with the identity and no forgeries', async (t) => {
  const seen = fakeFetch(t);
  const landing = await worker.fetch(get(`/reports?view=1&activeAuth=jwt-param&jwtParam=${SEED_TOKEN}`), env());
  assert.equal(landing.status, 302);
  assert.equal(landing.headers.get('location'), '/reports?view=1');
  assert.equal(landing.headers.get('referrer-policy'), 'no-referrer');
  const cookie = cookieHeader(landing);
  assert.match(cookie, /^sso_session=/);
  assert.equal(seen.length, 0, 'the landing itself is not forwarded');

  const res = await worker.fetch(
    get('//reports/./q?view=1', {
      ...NAV,
      cookie: `${cookie}; theme=dark`,
      x_sso_login: 'mallory',
      'X-SSO-Roles': 'superuser',
      'x-sso-assertion': 'forged',
    }),
    env(),
  );
  assert.equal(res.status, 200);
  assert.equal(await res.text(), 'origin');
  assert.equal(seen.length, 1);
  const sent = seen[0];
  assert.equal(sent.url, `${ORIGIN}/reports/q?view=1`, 'the normalised path is forwarded');
  assert.equal(sent.headers['x-sso-login'], 'alice');
  assert.equal(sent.headers['x-sso-method'], 'jwt-param');
  assert.match(sent.headers['x-sso-roles'], /system admin/);
  assert.equal(sent.headers.x_sso_login, undefined);
  assert.equal(sent.headers['x-sso-assertion'], undefined);
  assert.equal(sent.headers.cookie, 'theme=dark', 'filter cookies are not forwarded');
  assert.ok(!JSON.stringify(sent).includes('mallory') && !JSON.stringify(sent).includes('superuser'));
  assert.equal(sent.headers['x-forwarded-host'], 'edge.test');
});

test('public paths are forwarded with forged identity headers stripped', async (t) => {
  const seen = fakeFetch(t);
  const res = await worker.fetch(get('/static/app.js', { ...API, 'x-sso-login': 'mallory', 'X_SSO_EMAIL': 'm@x' }), env());
  assert.equal(res.status, 200);
  assert.equal(seen.length, 1);
  assert.equal(seen[0].url, `${ORIGIN}/static/app.js`);
  assert.ok(!Object.keys(seen[0].headers).some((h) => h.replace(/_/g, '-').startsWith('x-sso-')), seen[0].headers);
});

test('login form: GET renders it, POST goes through read_body and logs in', async (t) => {
  const seen = fakeFetch(t);
  const page = await worker.fetch(get('/login?rd=%2Fafter'), env());
  assert.equal(page.status, 200);
  const html = await page.text();
  const state = /name="state" value="([^"]+)"/.exec(html)?.[1];
  assert.ok(state, html);
  // The flow is sealed in `state`; the browser holds one binding cookie for every flow.
  const flow = setCookies(page).find(([n]) => n === 'sso_session_bind');
  assert.ok(flow, 'binding cookie');
  assert.ok(!setCookies(page).some(([n]) => n.startsWith('sso_session_flow_')), 'no cookie per flow');

  const post = (password, cookie) =>
    worker.fetch(
      new Request(`${BASE}/login`, {
        method: 'POST',
        headers: { ...NAV, 'content-type': 'application/x-www-form-urlencoded', cookie },
        body: new URLSearchParams({ state, username: 'admin', password }).toString(),
      }),
      env(),
    );
  const ok = await post('password', `${flow[0]}=${flow[1]}`);
  assert.equal(ok.status, 303);
  assert.equal(ok.headers.get('location'), '/after');
  assert.ok(setCookies(ok).some(([n, v]) => n === 'sso_session' && v.length > 20));
  // Used once: the same state again is refused.
  const replay = await post('password', `${flow[0]}=${flow[1]}`);
  assert.equal(replay.status, 401);

  const again = await worker.fetch(get('/after', { ...NAV, cookie: cookieHeader(ok) }), env());
  assert.equal(again.status, 200);
  assert.equal(seen.at(-1).headers['x-sso-login'], 'admin');
  assert.ok((stats()['sso_login_success.local'] ?? 0) >= 1, stats());
});

test('login form: wrong password is 401 with the form; an oversized body is 413', async (t) => {
  fakeFetch(t);
  const page = await worker.fetch(get('/login'), env());
  const state = /name="state" value="([^"]+)"/.exec(await page.text())[1];
  const cookie = cookieHeader(page);
  const form = (fields) =>
    new Request(`${BASE}/login`, {
      method: 'POST',
      headers: { ...NAV, 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams(fields).toString(),
    });
  const bad = await worker.fetch(form({ state, username: 'admin', password: 'nope' }), env());
  assert.equal(bad.status, 401);
  assert.match(await bad.text(), /Invalid user name or password/);
  const big = await worker.fetch(form({ state, username: 'admin', password: 'x'.repeat(64 * 1024) }), env());
  assert.equal(big.status, 413);
});

test('a callout goes out through fetch() and its answer comes back to the engine', async (t) => {
  const issuer = 'https://idp.test';
  const seen = fakeFetch(t, {
    [`${issuer}/.well-known/openid-configuration`]: () =>
      Response.json({
        issuer,
        authorization_endpoint: `${issuer}/auth`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
      }),
  });
  const cfg = config({ default_method: 'oidc' });
  cfg.methods.oidc = { type: 'oidc', issuer, client_id: 'app', client_secret: 'secret-value' };
  const res = await worker.fetch(get('/sso/login?rd=%2Fx'), env(cfg));
  assert.equal(res.status, 302, await res.clone().text());
  const to = new URL(res.headers.get('location'));
  assert.equal(to.origin + to.pathname, `${issuer}/auth`);
  assert.equal(to.searchParams.get('client_id'), 'app');
  assert.ok(seen.some((r) => r.url === `${issuer}/.well-known/openid-configuration`), seen);
});

test('a failed callout fails closed', async (t) => {
  const issuer = 'https://down.test';
  const seen = fakeFetch(t, {
    [issuer]: () => {
      throw new TypeError('fetch failed');
    },
  });
  const cfg = config({ default_method: 'oidc' });
  cfg.methods.oidc = { type: 'oidc', issuer, client_id: 'app', client_secret: 'secret-value' };
  t.mock.method(console, 'warn', () => {});
  const res = await worker.fetch(get('/sso/login?rd=%2Fx'), env(cfg));
  assert.ok(res.status >= 500, `status ${res.status}`);
  assert.ok(!res.headers.getSetCookie().some((c) => c.startsWith('sso_session=')));
  assert.ok(!seen.some((r) => r.url.startsWith(ORIGIN)), 'nothing reached the origin');
});
