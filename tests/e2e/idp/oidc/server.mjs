// A real OpenID Provider for the sso-filter end-to-end tests: panva/oidc-provider (OpenID
// Certified) on loopback, with test users, two confidential clients and its own login and
// consent pages (plain HTML forms a browser fills; no script, no external resource).
//
//   node server.mjs --port 9443 --app http://127.0.0.1:10000 [--app http://localhost:10001]
//                   [--redirect-uri URI]... [--post-logout-redirect-uri URI]...
//                   [--host 127.0.0.1] [--skip-consent]
//
// Environment fallbacks: OIDC_PORT, OIDC_HOST, OIDC_APPS, OIDC_REDIRECT_URIS and
// OIDC_POST_LOGOUT_REDIRECT_URIS (space-separated lists).
//
// Issuer: http://<host>:<port>. For every `--app BASE` the clients accept the redirect URIs
// BASE/sso/callback/oidc, BASE/sso/callback/oauth2, BASE/oauth2/callback and
// BASE/oauth2/callback?client_name=oauth2 (the seeds' registration), and after logout
// BASE/ (plus BASE/?activeAuth=oidc and BASE/?activeAuth=oauth2).
//
// Clients (test-only secrets):
//   app       / app-secret-0123456789   client_secret_basic
//   app-post  / post-secret-0123456789  client_secret_post
// Both: authorization code only, PKCE S256 required, RS256 ID tokens.
//
// Users (username / password): alice / alice-pw, bob / bob-pw, zhangsan / zhangsan-pw (张三).
//
// This is a test fixture, not a deployment: http issuer, in-memory storage, fixed cookie
// keys, generated signing keys. When listening it prints one line to stdout:
//   READY {"issuer": "...", "port": N, ...}
// Control endpoints for the tests (not part of any protocol):
//   GET /_test/health  -> "ok"
//   GET /_test/events  -> JSON list of provider events seen (name, client, error), oldest first
//   POST /_test/reset  -> clears the event list

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

// ------------------------------------------------------------------------------- arguments

function parseArgs(argv) {
  const out = { apps: [], redirectUris: [], postLogoutUris: [], skipConsent: false };
  const split = (v) => (v ? v.split(/\s+/).filter(Boolean) : []);
  out.port = Number(process.env.OIDC_PORT ?? 0);
  out.host = process.env.OIDC_HOST ?? '127.0.0.1';
  out.apps.push(...split(process.env.OIDC_APPS));
  out.redirectUris.push(...split(process.env.OIDC_REDIRECT_URIS));
  out.postLogoutUris.push(...split(process.env.OIDC_POST_LOGOUT_REDIRECT_URIS));
  for (let i = 0; i < argv.length; i += 1) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      i += 1;
      return argv[i];
    };
    switch (a) {
      case '--port': out.port = Number(next()); break;
      case '--host': out.host = next(); break;
      case '--app': out.apps.push(next()); break;
      case '--redirect-uri': out.redirectUris.push(next()); break;
      case '--post-logout-redirect-uri': out.postLogoutUris.push(next()); break;
      case '--skip-consent': out.skipConsent = true; break;
      default:
        if (/^\d+$/.test(a) && !out.port) { out.port = Number(a); break; }
        throw new Error(`unknown argument ${a}`);
    }
  }
  if (!Number.isInteger(out.port) || out.port <= 0 || out.port > 65535) {
    throw new Error('a port is required (--port N or OIDC_PORT)');
  }
  for (const app of out.apps) {
    const base = app.replace(/\/+$/, '');
    out.redirectUris.push(
      `${base}/sso/callback/oidc`,
      `${base}/sso/callback/oauth2`,
      `${base}/oauth2/callback`,
      `${base}/oauth2/callback?client_name=oauth2`,
    );
    out.postLogoutUris.push(`${base}/`, `${base}/?activeAuth=oidc`, `${base}/?activeAuth=oauth2`);
  }
  if (out.redirectUris.length === 0) {
    throw new Error('no redirect URI: give --app BASE or --redirect-uri URI');
  }
  return out;
}

let args;
try {
  args = parseArgs(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`server.mjs: ${err.message}\n`);
  process.exit(2);
}

const ISSUER = `http://${args.host}:${args.port}`;

// ------------------------------------------------------------------------------- users

// Accounts keyed by `sub`. `groups` is released with the `profile` scope (see `claims`).
const USERS = [
  {
    sub: 'u-1001-alice', username: 'alice', password: 'alice-pw',
    name: 'Alice Liddell', given_name: 'Alice', family_name: 'Liddell',
    email: 'alice@example.com', email_verified: true,
    groups: ['data analysts', 'admins'], locale: 'en',
  },
  {
    sub: 'u-1002-bob', username: 'bob', password: 'bob-pw',
    name: 'Bob Builder', given_name: 'Bob', family_name: 'Builder',
    email: 'bob@example.com', email_verified: false,
    groups: ['viewers'], locale: 'en',
  },
  {
    sub: 'u-1003-zhangsan', username: 'zhangsan', password: 'zhangsan-pw',
    name: '张三', given_name: '三', family_name: '张',
    email: 'zhangsan@example.com', email_verified: true,
    groups: ['数据分析'], locale: 'zh-CN',
  },
];
const BY_SUB = new Map(USERS.map((u) => [u.sub, u]));
const BY_USERNAME = new Map(USERS.map((u) => [u.username, u]));

function claimsOf(user) {
  const { password: _p, username, ...rest } = user;
  return { ...rest, preferred_username: username };
}

// ------------------------------------------------------------------------------- keys

function signingKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  // Two keys in the JWKS, as real providers publish: the filter must pick by `kid`.
  return [
    { ...rsa, kid: `rsa-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' },
    { ...ec, kid: `ec-${randomBytes(4).toString('hex')}`, alg: 'ES256', use: 'sig' },
  ];
}

// ------------------------------------------------------------------------------- pages

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(title, body) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;margin:3em auto;max-width:26em}
label{display:block;margin:.6em 0}input{display:block;width:100%;padding:.4em}
button{margin-top:1em;padding:.5em 1.5em}.error{color:#b00020}</style></head>
<body><p>Test OpenID Provider &middot; <code>${esc(ISSUER)}</code></p>
${body}
</body></html>`;
}

function loginPage(uid, clientId, error, username) {
  return page('Sign in - test OpenID Provider', `<h1>Sign in</h1>
<p>to continue to <strong>${esc(clientId)}</strong></p>
${error ? `<p class="error" id="error">${esc(error)}</p>` : ''}
<form id="login" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label>Username <input type="text" name="username" value="${esc(username ?? '')}" required autofocus></label>
<label>Password <input type="password" name="password" required></label>
<button type="submit" id="sign-in">Sign in</button>
</form>
<p><a href="/interaction/${esc(uid)}/abort">Cancel</a></p>`);
}

function consentPage(uid, clientId, scopes, claims) {
  const items = [...scopes, ...claims].map((s) => `<li>${esc(s)}</li>`).join('');
  return page('Authorize - test OpenID Provider', `<h1>Authorize ${esc(clientId)}</h1>
<p>The application asks for:</p><ul id="scopes">${items}</ul>
<form id="consent" method="post" action="/interaction/${esc(uid)}/confirm">
<button type="submit" id="allow" name="allow" value="yes">Allow</button>
</form>
<p><a href="/interaction/${esc(uid)}/abort">Deny</a></p>`);
}

// ------------------------------------------------------------------------------- provider

const events = [];
function record(name, ctx, arg) {
  // Only the `*.error` events carry an error as their second argument.
  const err = name.endsWith('error') ? arg : null;
  events.push({
    event: name,
    at: Date.now() / 1000,
    client_id: ctx?.oidc?.client?.clientId ?? null,
    error: err ? String(err.error ?? err.message ?? err) : null,
    error_description: err?.error_description ?? null,
  });
  if (events.length > 1000) events.shift();
}

const clientCommon = {
  grant_types: ['authorization_code'],
  response_types: ['code'],
  redirect_uris: args.redirectUris,
  post_logout_redirect_uris: args.postLogoutUris,
  id_token_signed_response_alg: 'RS256',
};

const configuration = {
  clients: [
    { ...clientCommon, client_id: 'app', client_secret: 'app-secret-0123456789',
      client_name: 'sso-filter e2e app', token_endpoint_auth_method: 'client_secret_basic' },
    { ...clientCommon, client_id: 'app-post', client_secret: 'post-secret-0123456789',
      client_name: 'sso-filter e2e app (client_secret_post)',
      token_endpoint_auth_method: 'client_secret_post' },
  ],
  jwks: { keys: signingKeys() },
  // Test-only, fixed: the provider signs its cookies with these.
  cookies: { keys: ['e2e-cookie-key-not-secret-0', 'e2e-cookie-key-not-secret-1'] },
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'locale', 'groups'],
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email'],
  pkce: { required: () => true },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      async logoutSource(ctx, form) {
        ctx.type = 'html';
        ctx.body = page('Sign out - test OpenID Provider', `<h1>Sign out of the test provider?</h1>
${form}
<button type="submit" form="op.logoutForm" id="logout-yes" name="logout" value="yes">Yes, sign me out</button>
<button type="submit" form="op.logoutForm" id="logout-no">No, stay signed in</button>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.type = 'html';
        ctx.body = page('Signed out - test OpenID Provider',
          '<h1 id="signed-out">You are signed out</h1>');
      },
    },
  },
  async findAccount(_ctx, sub) {
    const user = BY_SUB.get(sub);
    if (!user) return undefined;
    return { accountId: sub, async claims() { return claimsOf(user); } };
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error - test OpenID Provider', `<h1 id="op-error">${esc(out.error)}</h1>
<p id="op-error-description">${esc(out.error_description ?? '')}</p>`);
  },
  ttl: {
    AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600,
    Session: 3600, Grant: 3600,
  },
};

const provider = new Provider(ISSUER, configuration);
for (const name of ['authorization.success', 'authorization.error', 'grant.success',
  'grant.error', 'userinfo.error', 'end_session.success', 'end_session.error',
  'interaction.started', 'interaction.ended', 'session.destroyed', 'server_error',
  'jwks.error', 'discovery.error']) {
  provider.on(name, (ctx, arg) => record(name, ctx, arg));
}
provider.on('server_error', (_ctx, err) => process.stderr.write(`server_error: ${err?.stack ?? err}\n`));

// ------------------------------------------------------------------------------- interactions

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body, type = 'text/html; charset=utf-8') {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function consentResult(details) {
  const { prompt: { details: missing }, params, session } = details;
  let grant;
  if (details.grantId) {
    grant = await provider.Grant.find(details.grantId);
  } else {
    grant = new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  }
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  if (missing.missingResourceScopes) {
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
  }
  const grantId = await grant.save();
  return details.grantId ? {} : { consent: { grantId } };
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) {
    send(res, 400, page('Error', '<h1>interaction mismatch</h1>'));
    return;
  }
  const { prompt, params } = details;
  if (action === 'abort') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'The user cancelled the sign-in.',
    }, { mergeWithLastSubmission: false });
    return;
  }
  if (prompt.name === 'login') {
    if (req.method === 'POST' && action === 'login') {
      const form = await readForm(req);
      const username = form.get('username') ?? '';
      const user = BY_USERNAME.get(username);
      if (!user || user.password !== (form.get('password') ?? '')) {
        send(res, 200, loginPage(uid, params.client_id, 'Invalid username or password.', username));
        return;
      }
      const result = { login: { accountId: user.sub } };
      if (args.skipConsent) {
        // First-party shortcut: grant what was asked at once.
        const grant = new provider.Grant({ accountId: user.sub, clientId: params.client_id });
        grant.addOIDCScope(String(params.scope ?? 'openid'));
        result.consent = { grantId: await grant.save() };
      }
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      return;
    }
    send(res, 200, loginPage(uid, params.client_id));
    return;
  }
  if (prompt.name === 'consent') {
    if (req.method === 'POST' && action === 'confirm') {
      await readForm(req);
      const result = await consentResult(details);
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
      return;
    }
    const missing = prompt.details;
    send(res, 200, consentPage(uid, params.client_id, missing.missingOIDCScope ?? [],
      missing.missingOIDCClaims ?? []));
    return;
  }
  send(res, 400, page('Error', `<h1>unsupported prompt ${esc(prompt.name)}</h1>`));
}

// ------------------------------------------------------------------------------- server

const providerCallback = provider.callback();
const INTERACTION = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/;

const server = createServer(async (req, res) => {
  const url = new URL(req.url, ISSUER);
  try {
    if (url.pathname === '/_test/health') {
      send(res, 200, 'ok', 'text/plain');
      return;
    }
    if (url.pathname === '/_test/events') {
      send(res, 200, JSON.stringify(events), 'application/json');
      return;
    }
    if (url.pathname === '/_test/reset' && req.method === 'POST') {
      events.length = 0;
      send(res, 200, '{}', 'application/json');
      return;
    }
    const m = INTERACTION.exec(url.pathname);
    if (m) {
      await interaction(req, res, m[1], m[2] ?? null);
      return;
    }
    providerCallback(req, res);
  } catch (err) {
    if (err instanceof errors.SessionNotFound) {
      send(res, 400, page('Error', '<h1 id="op-error">session_not_found</h1><p>The sign-in expired or its cookie is missing.</p>'));
      return;
    }
    process.stderr.write(`interaction error: ${err?.stack ?? err}\n`);
    if (!res.headersSent) send(res, 500, page('Error', `<h1 id="op-error">server_error</h1><p>${esc(err.message)}</p>`));
  }
});

server.listen(args.port, args.host, () => {
  process.stdout.write(`READY ${JSON.stringify({
    issuer: ISSUER, port: args.port, redirect_uris: args.redirectUris,
    post_logout_redirect_uris: args.postLogoutUris,
  })}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
