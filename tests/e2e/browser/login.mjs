// Real-browser login through Envoy + sso-filter, driven by pytest (tests/e2e/test_browser.py).
//
//   node login.mjs '{"url": "http://127.0.0.1:PORT/private/page", "username": "...",
//                    "password": "...", "screenshot": "/tmp/x.png"}'
//
// Opens the protected URL, expects to land on the built-in login form, types the credentials,
// submits, and prints one JSON line: every URL the page went through, the final URL, status,
// title and text, so pytest can assert on it. Uses Debian's chromium (no browser download).
import { chromium } from 'playwright-core';

const args = JSON.parse(process.argv[2] ?? '{}');
const out = { steps: [], ok: false };
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run',
  ],
});
try {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  page.on('response', (r) => {
    if (r.request().isNavigationRequest()) {
      out.steps.push({ url: r.url(), status: r.status(), location: r.headers()['location'] ?? null });
    }
  });
  await page.goto(args.url, { waitUntil: 'load' });
  out.login_page_url = page.url();
  out.login_page_title = await page.title();
  const user = page.locator('input[name="username"]');
  const pass = page.locator('input[name="password"]');
  await user.waitFor({ state: 'visible' });
  await user.fill(args.username);
  await pass.fill(args.password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    pass.press('Enter'),
  ]);
  out.final_url = page.url();
  out.title = await page.title();
  out.text = await page.locator('body').innerText();
  const loginEl = page.locator('#login');
  out.login = (await loginEl.count()) > 0 ? (await loginEl.innerText()).trim() : null;
  out.cookies = (await context.cookies()).map((c) => ({
    name: c.name, httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path,
  }));
  if (args.screenshot) {
    await page.screenshot({ path: args.screenshot, fullPage: true });
  }
  out.ok = true;
} catch (err) {
  out.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(out.ok ? 0 : 1);
