// In-app silent login in a real browser: Debian's chromium (playwright-core) opens an
// application URL through Envoy with a provider client's User-Agent. The filter serves its
// JSAPI page; the provider's SDK URL is answered with a stub (the "client app") that hands out
// the code or token given in the arguments; the page posts it and navigates on.
//
//   node jsapi-login.mjs '{"url": ..., "userAgent": ..., "sdkUrl": ..., "sdk": "<js>",
//                          "waitFor": "<url prefix of the landing page>", "screenshot": ...}'
//
// Prints one JSON line: {ok, final_url, status_text, steps, posts, cookies, blocked, error}.
// Every request off loopback other than the SDK is aborted and listed in `blocked`.
import { chromium } from 'playwright-core';

const args = JSON.parse(process.argv[2]);
const LOOPBACK = /^https?:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?\//;
const out = { ok: false, steps: [], posts: [], blocked: [] };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--no-first-run'],
});
try {
  const context = await browser.newContext({ userAgent: args.userAgent });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (args.sdkUrl && url === args.sdkUrl) {
      return route.fulfill({ status: 200, contentType: 'application/javascript', body: args.sdk });
    }
    if (LOOPBACK.test(url) || url.startsWith('data:') || url.startsWith('about:')) {
      return route.continue();
    }
    out.blocked.push(url);
    return route.abort();
  });
  const page = await context.newPage();
  page.on('response', async (r) => {
    const req = r.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      out.steps.push({ url: r.url(), status: r.status() });
    }
    if (req.method() === 'POST') {
      let body = null;
      try { body = await r.json(); } catch { /* not JSON */ }
      out.posts.push({ url: r.url(), status: r.status(), request: req.postDataJSON?.() ?? null, body });
    }
  });
  page.on('console', (m) => out.steps.push({ console: m.text() }));
  await page.goto(args.url, { waitUntil: 'load' });
  try {
    await page.waitForURL((u) => u.toString().startsWith(args.waitFor), { timeout: 15000 });
    await page.waitForLoadState('load');
  } catch (e) {
    out.error = `did not reach ${args.waitFor}: ${e.message.split('\n')[0]}`;
  }
  out.final_url = page.url();
  out.status_text = await page.locator('#status').count() > 0
    ? (await page.locator('#status').innerText()).trim() : null;
  out.login = await page.locator('#login').count() > 0
    ? (await page.locator('#login').first().innerText()).trim() : null;
  out.cookies = await context.cookies();
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
  out.ok = !out.error;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
