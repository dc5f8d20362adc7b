// Real-browser SAML 2.0 login through Envoy + sso-filter against the real pysaml2 IdP
// (tests/e2e/idp/saml/server.py), driven by tests/e2e/test_saml.py.
//
//   node saml-login.mjs '{"url": "http://127.0.0.1:APP/private?x=1&activeAuth=saml",
//                         "idp": "http://127.0.0.1:IDP", "username": "jdoe",
//                         "password": "jdoe-password", "screenshots": "/tmp/dir"}'
//
// Opens the protected URL; the filter sends the AuthnRequest (a redirect, or its own
// auto-posting form for the POST binding) and the IdP shows its form; types the credentials;
// the IdP's auto-submitting form posts the Response to the ACS; expects to land back on the URL
// with the demo upstream showing who it received. With `"logout": "/sso/logout?rd=/bye"`, then
// opens that URL and follows the single logout to its end on the app (`logout_url`); every
// Content-Security-Policy report of the pages is listed in `csp` (an auto-submitting form whose
// script the CSP blocks would stop there). Prints one JSON line; pytest asserts.
import {
  launch, newContext, recordNavigations, shownIdentity, cookieSummary, isOn,
} from './oidc-lib.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const appOrigin = new URL(args.url).origin;
const out = { ok: false, steps: [] };
const shot = async (page, name) => {
  if (args.screenshots) await page.screenshot({ path: `${args.screenshots}/${name}.png`, fullPage: true });
};

const browser = await launch();
try {
  const context = await newContext(browser, out);
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  recordNavigations(page, out.steps);
  out.csp = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) out.csp.push(`${page.url()}: ${m.text()}`);
  });
  await page.goto(args.url, { waitUntil: 'load' });
  if (!isOn(page.url(), args.idp)) {
    await page.waitForURL((u) => isOn(u.href, args.idp), { timeout: 15000 });
  }
  await page.locator('input[name="username"]').waitFor({ state: 'visible' });
  out.idp_login_url = page.url();
  await shot(page, '1-idp-login');
  await page.locator('input[name="username"]').fill(args.username);
  await page.locator('input[name="password"]').fill(args.password);
  await page.locator('#sign-in').click();
  await page.waitForURL((u) => u.origin === appOrigin && !u.pathname.startsWith('/sso/'),
    { timeout: 15000 });
  await page.waitForLoadState('load');
  out.final_url = page.url();
  out.identity = await shownIdentity(page);
  out.cookies = await cookieSummary(context);
  await shot(page, '2-after-login');
  if (args.logout) {
    const end = new URL(args.logout_end, appOrigin).href;
    await page.goto(new URL(args.logout, appOrigin).href, { waitUntil: 'commit' });
    await page.waitForURL((u) => u.href === end, { timeout: 15000 });
    await page.waitForLoadState('load');
    out.logout_url = page.url();
    await shot(page, '3-after-logout');
  }
  out.ok = true;
} catch (err) {
  out.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
  console.log(JSON.stringify(out));
}
