// In-app silent login in a real browser: Debian's chromium (playwright-core) opens an
// application URL through Envoy with a provider client's User-Agent. The filter serves its
// JSAPI page; the provider's SDK URL is answered with a stub (the "client app") that hands out
// the code or token given in the arguments; the page posts it and navigates on.
//
//   node jsapi-login.mjs '{"url": ..., "userAgent": ..., "sdkUrl": ..., "sdk": "<js>",
//                          "waitFor": "<url prefix of the landing page>", "screenshot": ...,
//                          "wrapper": "<optional: a top-level URL whose page iframes url>"}'
//
// With `wrapper` (a Teams tab), the application runs in an iframe of another site: the wrapper
// is a page on loopback (the Teams mock serves one) that frames `url`, and the landing is
// looked for in that frame.
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
      const setCookies = (await r.headersArray()).filter((h) => h.name.toLowerCase() === 'set-cookie')
        .map((h) => h.value);
      out.posts.push({ url: r.url(), status: r.status(), request: req.postDataJSON?.() ?? null, body,
        setCookies });
    }
  });
  page.on('console', (m) => out.steps.push({ console: m.text() }));
  page.on('requestfailed', (r) => out.steps.push({ failed: r.url(), why: r.failure()?.errorText }));
  page.on('framenavigated', (f) => out.steps.push({ frame: f.url() }));
  await page.goto(args.wrapper ?? args.url, { waitUntil: 'load' });
  // The frame the application runs in: the page itself, or the wrapper's iframe.
  const appFrame = () => (args.wrapper
    ? page.frames().find((f) => f !== page.mainFrame()) : page.mainFrame());
  try {
    const deadline = Date.now() + 15000;
    for (;;) {
      const f = appFrame();
      if (f && f.url().startsWith(args.waitFor)) {
        await f.waitForLoadState('load');
        if (await f.locator('#login').count() > 0 || !args.wrapper) break;
      }
      if (Date.now() > deadline) throw new Error(`frame at ${f ? f.url() : '(none)'}`);
      await page.waitForTimeout(100);
    }
  } catch (e) {
    out.error = `did not reach ${args.waitFor}: ${e.message.split('\n')[0]}`;
  }
  const frame = appFrame();
  out.final_url = frame ? frame.url() : null;
  const text = async (sel) => (frame && await frame.locator(sel).count() > 0
    ? (await frame.locator(sel).first().innerText()).trim() : null);
  out.status_text = await text('#status');
  out.login = await text('#login');
  out.cookies = await context.cookies();
  if (args.screenshot) await page.screenshot({ path: args.screenshot, fullPage: true });
  out.ok = !out.error;
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
