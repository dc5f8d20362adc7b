// Twelve iframes of one page log in at the same moment (issue 17 item 1, HENGSHI's embedded
// dashboards): four through OpenID Connect, four through CAS, four through SAML, in Debian's
// chromium, through the proxy and sso-filter against the real IdPs of tests/e2e/test_iframes.py.
//
//   node iframes.mjs '{"app": "http://127.0.0.1:APP", "warm": [{"url": ..., "idp": ...,
//                      "username": ..., "password": ...}], "embed": URL, "frames": [URL, ...],
//                      "screenshot": "/tmp/x.png"}'
//
// First one top-level login per IdP, so each IdP holds a single sign-on session (as the user
// of a portal has); then the application's cookies are dropped (no session, no binding
// cookie) and a page of the application's origin with twelve iframes opens (`embed`; `frames`
// are the iframes' URLs in order): every iframe's
// protected URL starts its own login at once. Each must end on its own URL showing who logged
// in. Prints one JSON line; pytest asserts.
import {
  launch, newContext, shownIdentity, cookieSummary, isOn,
} from './oidc-lib.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const app = args.app;
const out = { ok: false, warm: [], frames: [], navigations: [] };

// Drops the application's cookies (session, binding); the IdPs' stay.
async function dropAppCookies(context) {
  const all = await context.cookies();
  const kept = all.filter((c) => !c.name.startsWith('sso_session'));
  await context.clearCookies();
  await context.addCookies(kept);
  return all.length - kept.length;
}

async function warmUp(page, w) {
  const step = { url: w.url };
  out.warm.push(step);
  await page.goto(w.url, { waitUntil: 'load' });
  await page.locator('input[name="username"]').waitFor({ state: 'visible' });
  step.idp_page = page.url();
  await page.locator('input[name="username"]').fill(w.username);
  await page.locator('input[name="password"]').fill(w.password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.locator('input[name="password"]').press('Enter'),
  ]);
  // The OpenID Provider asks for consent once.
  const allow = page.locator('form#consent button#allow');
  if (isOn(page.url(), w.idp) && (await allow.count()) > 0) {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), allow.click()]);
  }
  await page.waitForURL((u) => isOn(u.href, app) && !u.pathname.startsWith('/sso/'),
    { timeout: 20000 });
  step.final_url = page.url();
}

const browser = await launch();
try {
  const context = await newContext(browser, out);
  const page = await context.newPage();
  page.setDefaultTimeout(30000);
  for (const w of args.warm) {
    await dropAppCookies(context);
    await warmUp(page, w);
  }
  // The IdPs keep their sessions; the application forgets the browser.
  out.app_cookies_dropped = await dropAppCookies(context);

  page.on('response', (r) => {
    const req = r.request();
    if (req.isNavigationRequest() && req.frame() !== page.mainFrame()) {
      out.navigations.push({ url: r.url(), status: r.status(), location: r.headers().location ?? null });
    }
  });
  out.failed = [];
  page.on('requestfailed', (r) => {
    out.failed.push({ url: r.url().slice(0, 200), error: r.failure()?.errorText ?? null });
  });
  // The dashboard page of the application's origin (demo/upstream.py, a public path).
  await page.goto(args.embed, { waitUntil: 'load' });
  await Promise.all(args.frames.map(async (target, i) => {
    const entry = { target };
    out.frames[i] = entry;
    const frame = await (await page.$(`#f${i}`)).contentFrame();
    try {
      await frame.waitForURL(target, { timeout: 45000 });
      await frame.waitForLoadState('load');
      entry.identity = await shownIdentity(frame);
    } catch (err) {
      entry.error = String(err).slice(0, 500);
    }
    entry.final_url = frame.url();
    entry.text = (await frame.locator('body').innerText().catch(() => '')).slice(0, 300);
  }));
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
  out.cookies = await cookieSummary(context);
  out.ok = true;
} catch (err) {
  out.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
// exitCode, not exit(): exit() may cut a long line still in the pipe.
process.stdout.write(JSON.stringify(out) + '\n');
process.exitCode = out.ok ? 0 : 1;
