// Shared pieces of the OIDC browser scripts (oidc-login.mjs, oidc-two-tabs.mjs): Debian's
// chromium through playwright-core, every request off loopback refused (and reported), the
// navigation chain of each page recorded, and the steps on the test OpenID Provider's pages
// (tests/e2e/idp/oidc/server.mjs): its login form and its consent page.
import { chromium } from 'playwright-core';

export const LOOPBACK = /^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\//;

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run',
    ],
  });
}

// A context whose requests stay on this machine: anything else is aborted and listed in
// `out.blocked` (the tests fail on it).
export async function newContext(browser, out) {
  const context = await browser.newContext();
  out.blocked = out.blocked ?? [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (LOOPBACK.test(url) || url.startsWith('data:') || url.startsWith('about:')) {
      return route.continue();
    }
    out.blocked.push(url);
    return route.abort();
  });
  return context;
}

// Records every navigation response of `page` into `steps` (url, status, location).
export function recordNavigations(page, steps) {
  page.on('response', (r) => {
    if (r.request().isNavigationRequest() && r.request().frame() === page.mainFrame()) {
      steps.push({ url: r.url(), status: r.status(), location: r.headers().location ?? null });
    }
  });
}

export const isOn = (url, origin) => url === origin || url.startsWith(`${origin}/`);

// On the provider's login form: fill and submit; returns when the next page has loaded.
export async function submitLogin(page, username, password) {
  const user = page.locator('input[name="username"]');
  const pass = page.locator('input[name="password"]');
  await user.waitFor({ state: 'visible' });
  await user.fill(username);
  await pass.fill(password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.locator('#sign-in').click(),
  ]);
}

// If the provider shows its consent page, allow; returns whether it was shown.
export async function consentIfShown(page, idpOrigin) {
  if (!isOn(page.url(), idpOrigin)) return false;
  const allow = page.locator('form#consent button#allow');
  if ((await allow.count()) === 0) return false;
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), allow.click()]);
  return true;
}

// What the demo upstream page shows (demo/upstream.py): the login and the decoded fields.
export async function shownIdentity(page) {
  const read = async (sel) => {
    const el = page.locator(sel);
    return (await el.count()) > 0 ? (await el.first().innerText()).trim() : null;
  };
  const list = async (sel) => {
    const el = page.locator(`${sel} li`);
    return (await el.count()) > 0 ? (await el.allInnerTexts()).map((t) => t.trim()) : null;
  };
  return {
    login: await read('span#login'),
    name: await read('#sso-name'),
    email: await read('#sso-email'),
    method: await read('#sso-method'),
    groups: await list('#sso-groups'),
  };
}

export async function cookieSummary(context) {
  return (await context.cookies()).map((c) => ({
    name: c.name, domain: c.domain, path: c.path, httpOnly: c.httpOnly, sameSite: c.sameSite,
    secure: c.secure,
  }));
}

export async function onProviderLoginForm(page, idpOrigin) {
  return isOn(page.url(), idpOrigin)
    && (await page.locator('form#login input[name="username"]').count()) > 0;
}
