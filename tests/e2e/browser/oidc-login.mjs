// Real-browser OpenID Connect login and logout through Envoy + sso-filter against the real
// OpenID Provider (tests/e2e/idp/oidc/server.mjs), driven by tests/e2e/test_oidc.py.
//
//   node oidc-login.mjs '{"url": "http://localhost:APP/private/page?x=1",
//                         "idp": "http://127.0.0.1:IDP", "username": "alice",
//                         "password": "alice-pw", "logout": "/sso/logout",
//                         "screenshots": "/tmp/dir"}'
//
// 1. Opens the protected URL and expects the provider's login form; types the credentials,
//    allows on the consent page when it is shown, and expects to be back on the URL with the
//    demo upstream showing who it received.
// 2. With "logout": opens it on the app, confirms on the provider's end-session page when
//    asked, records where it lands, then opens the protected URL again, which must need the
//    provider's login form again (the provider's session ended, not only the app's).
// Prints one JSON line with every URL passed and what each page showed; pytest asserts.
import {
  launch, newContext, submitLogin, consentIfShown, shownIdentity,
  cookieSummary, onProviderLoginForm, isOn,
} from './oidc-lib.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const appOrigin = new URL(args.url).origin;
const out = { ok: false, steps: [], logout_steps: [], relogin_steps: [] };
const shot = async (page, name) => {
  if (args.screenshots) await page.screenshot({ path: `${args.screenshots}/${name}.png`, fullPage: true });
};

const browser = await launch();
try {
  const context = await newContext(browser, out);
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  let steps = out.steps;
  page.on('response', (r) => {
    if (r.request().isNavigationRequest() && r.request().frame() === page.mainFrame()) {
      steps.push({ url: r.url(), status: r.status(), location: r.headers().location ?? null });
    }
  });

  // ---- login
  await page.goto(args.url, { waitUntil: 'load' });
  out.login_page_url = page.url();
  out.login_form_shown = await onProviderLoginForm(page, args.idp);
  await shot(page, '1-provider-login');
  if (!out.login_form_shown) throw new Error(`not on the provider's login form: ${page.url()}`);
  await submitLogin(page, args.username, args.password);
  out.consent_shown = await consentIfShown(page, args.idp);
  if (!isOn(page.url(), appOrigin)) {
    await page.waitForURL((u) => u.origin === appOrigin, { timeout: 15000 }).catch(() => {});
  }
  await page.waitForLoadState('load');
  out.final_url = page.url();
  out.status = out.steps.length ? out.steps[out.steps.length - 1].status : null;
  out.title = await page.title();
  out.text = (await page.locator('body').innerText()).slice(0, 4000);
  out.identity = await shownIdentity(page);
  out.cookies = await cookieSummary(context);
  await shot(page, '2-after-login');

  // ---- logout
  if (args.logout) {
    steps = out.logout_steps;
    await page.goto(new URL(args.logout, appOrigin).href, { waitUntil: 'load' });
    out.logout_page_url = page.url();
    out.logout_confirm_shown = false;
    const yes = page.locator('#logout-yes');
    if (isOn(page.url(), args.idp) && (await yes.count()) > 0) {
      out.logout_confirm_shown = true;
      await shot(page, '3-provider-logout');
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), yes.click()]);
    }
    out.after_logout_url = page.url();
    out.after_logout_text = (await page.locator('body').innerText()).slice(0, 2000);
    out.cookies_after_logout = await cookieSummary(context);
    await shot(page, '4-after-logout');

    // ---- a new visit must need the provider's login again
    steps = out.relogin_steps;
    await page.goto(args.url, { waitUntil: 'load' });
    out.relogin_url = page.url();
    out.relogin_form_shown = await onProviderLoginForm(page, args.idp);
    out.relogin_identity = await shownIdentity(page);
    await shot(page, '5-new-visit');
  }
  out.ok = true;
} catch (err) {
  out.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(out.ok ? 0 : 1);
