// Two tabs of one browser start an OpenID Connect login at the same moment, through Envoy +
// sso-filter against the real OpenID Provider (tests/e2e/idp/oidc/server.mjs); both must end
// logged in on their own page (docs/behaviour.md: one flow cookie per state).
//
//   node oidc-two-tabs.mjs '{"urls": ["http://localhost:APP/a?tab=1", "http://localhost:APP/b?tab=2"],
//                            "idp": "http://127.0.0.1:IDP", "username": "alice", "password": "alice-pw"}'
//
// Both tabs open their protected URL together and must each show the provider's login form
// (two authorization requests, two states); then both forms are submitted together. A tab
// that the provider sends to its consent page allows. Prints one JSON line per run.
import {
  launch, newContext, recordNavigations, submitLogin, consentIfShown, shownIdentity,
  cookieSummary, onProviderLoginForm, isOn,
} from './oidc-lib.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const out = { ok: false, tabs: [] };

const browser = await launch();
try {
  const context = await newContext(browser, out);
  const pages = [];
  for (const url of args.urls) {
    const page = await context.newPage();
    page.setDefaultTimeout(20000);
    const tab = { url, steps: [] };
    recordNavigations(page, tab.steps);
    out.tabs.push(tab);
    pages.push(page);
  }
  // Both logins start at once: two authorization requests in flight together.
  await Promise.all(pages.map((p, i) => p.goto(args.urls[i], { waitUntil: 'load' })));
  for (const [i, page] of pages.entries()) {
    out.tabs[i].login_page_url = page.url();
    out.tabs[i].login_form_shown = await onProviderLoginForm(page, args.idp);
  }
  out.states = out.tabs.map((t) => new URL(t.steps.find((s) => isOn(s.url, args.idp)
    && s.url.includes('/auth?'))?.url ?? 'http://x/').searchParams.get('state'));
  if (!out.tabs.every((t) => t.login_form_shown)) {
    throw new Error(`a tab is not on the provider's login form: ${out.tabs.map((t) => t.login_page_url)}`);
  }
  // ... and both forms are submitted at once.
  await Promise.all(pages.map(async (page, i) => {
    const tab = out.tabs[i];
    await submitLogin(page, args.username, args.password);
    tab.consent_shown = await consentIfShown(page, args.idp);
    const appOrigin = new URL(tab.url).origin;
    if (!isOn(page.url(), appOrigin)) {
      await page.waitForURL((u) => u.origin === appOrigin, { timeout: 15000 }).catch(() => {});
    }
    await page.waitForLoadState('load');
    tab.final_url = page.url();
    tab.status = tab.steps.length ? tab.steps[tab.steps.length - 1].status : null;
    tab.text = (await page.locator('body').innerText()).slice(0, 2000);
    tab.identity = await shownIdentity(page);
  }));
  out.cookies = await cookieSummary(context);
  out.ok = true;
} catch (err) {
  out.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(out.ok ? 0 : 1);
