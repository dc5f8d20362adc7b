// The login page in a real browser (tests/e2e/test_login_page.py): Debian chromium driven by
// playwright-core, through the host under test (Envoy, or the edge worker).
//
//   node login-page.mjs '{"base": "http://127.0.0.1:PORT", "target": "/private/x",
//                         "chooser": "http://127.0.0.1:PORT2/sso/login?rd=%2F",
//                         "logo": "/static/acme-logo.svg", "username": "...", "password": "...",
//                         "shots": "/abs/dir"}'
//
// For English (locale en-US) and Chinese (zh-CN): opens the protected URL, lands on the login
// form, and reports what a keyboard and a screen reader meet there: the page language, the
// accessibility tree (Playwright's ARIA snapshot), the element focused after each Tab, whether
// the focus ring shows, the WCAG contrast of every piece of text, whether the CSP let the style
// and the logo in (and kept another image out). Then it signs in wrongly (the error, announced
// as an alert) and rightly, by keyboard only. Screenshots go to `shots`. Prints one JSON line.
import { LOOPBACK, launch } from './oidc-lib.mjs';

const args = JSON.parse(process.argv[2] ?? '{}');
const out = { ok: false, runs: {}, blocked: [] };

const LOGO_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40" viewBox="0 0 120 40">'
  + '<rect width="40" height="40" rx="8" fill="#0b57d0"/><text x="48" y="27" font-family="sans-serif" '
  + 'font-size="18" font-weight="700" fill="#1f2328">ACME</text></svg>';

// What is focused: its tag, id, text, and the outline drawn around it.
function describeFocus() {
  const el = document.activeElement;
  if (!el || el === document.body) return { tag: 'body' };
  const s = getComputedStyle(el);
  return {
    tag: el.tagName.toLowerCase(),
    id: el.id || null,
    type: el.getAttribute('type'),
    text: (el.innerText || '').trim() || null,
    href: el.getAttribute('href'),
    outline: `${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}`,
  };
}

// WCAG 2 contrast of every text node (and the fields' own text) against the first opaque
// background behind it, and of the focus ring against the card.
function contrast() {
  const rgb = (c) => {
    const p = c.match(/[\d.]+/g).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const lum = ({ r, g, b }) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const ratio = (a, b) => {
    const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
    return Math.round(((x + 0.05) / (y + 0.05)) * 100) / 100;
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.a > 0) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const hex = ({ r, g, b }) => '#' + [r, g, b].map((v) => v.toString(16).padStart(2, '0')).join('');
  const items = [];
  const add = (what, el) => {
    const fg = rgb(getComputedStyle(el).color);
    const bg = background(el);
    items.push({ what, fg: hex(fg), bg: hex(bg), ratio: ratio(fg, bg) });
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const t = walker.currentNode;
    if (t.textContent.trim()) add(t.textContent.trim().slice(0, 48), t.parentElement);
  }
  for (const input of document.querySelectorAll('input:not([type=hidden])')) add(`input#${input.id}`, input);
  const main = document.querySelector('main');
  for (const input of document.querySelectorAll('input:not([type=hidden])')) {
    const border = rgb(getComputedStyle(input).borderTopColor);
    items.push({ what: `border of input#${input.id}`, fg: hex(border), bg: hex(background(main)),
                 ratio: ratio(border, background(main)), nonText: true });
  }
  return items;
}

async function visit(context, url, lang, shots) {
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  const run = { console: [] };
  page.on('console', (m) => run.console.push(m.text()));
  await page.route(`**${args.logo}`, (r) => r.fulfill({ status: 200, contentType: 'image/svg+xml', body: LOGO_SVG }));
  const response = await page.goto(url, { waitUntil: 'load' });
  run.url = page.url();
  run.status = response.status();
  run.headers = await response.allHeaders();
  run.html_lang = await page.getAttribute('html', 'lang');
  run.title = await page.title();
  // The CSP let the style in (by its hash) and the logo (by its URL)...
  run.style_applied = await page.evaluate(() => getComputedStyle(document.querySelector('main')).maxWidth);
  run.logo_width = await page.locator('.brand img').evaluate((i) => i.naturalWidth);
  run.aria = await page.locator('main').ariaSnapshot();
  run.contrast = await page.evaluate(contrast);
  await page.screenshot({ path: `${shots}/${lang}-form.png`, fullPage: true });
  // ...and keeps any other image out.
  run.other_image = await page.evaluate(() => new Promise((resolve) => {
    const img = new Image();
    const done = (v) => { img.remove(); resolve(v); };
    document.addEventListener('securitypolicyviolation',
      (e) => done({ blocked: e.blockedURI, directive: e.effectiveDirective }), { once: true });
    img.src = '/static/other.png';
    document.body.appendChild(img);
    setTimeout(() => done(null), 3000);
  }));
  // The keyboard: where focus starts, then each Tab.
  run.focus = [await page.evaluate(describeFocus)];
  const stops = await page.locator('input:not([type=hidden]), button, a[href]').count();
  for (let i = 0; i < stops; i++) {
    await page.keyboard.press('Tab');
    run.focus.push(await page.evaluate(describeFocus));
    if (i === 2) await page.screenshot({ path: `${shots}/${lang}-focus-on-a-method.png`, fullPage: true });
  }
  // The focus ring against the card.
  run.ring = await page.evaluate(() => {
    const a = document.querySelector('a.way');
    a.focus();
    return getComputedStyle(a).outlineColor;
  });
  return { page, run };
}

// A context in `locale` whose requests stay on this machine (anything else is aborted and
// listed in `out.blocked`; the page asks for nothing else).
async function newContext(browser, locale) {
  const context = await browser.newContext({ locale, viewport: { width: 720, height: 900 } });
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (LOOPBACK.test(url)) return route.continue();
    out.blocked.push(url);
    return route.abort();
  });
  return context;
}

const browser = await launch();
try {
  for (const [lang, locale] of [['en', 'en-US'], ['zh', 'zh-CN']]) {
    const context = await newContext(browser, locale);
    const { page, run } = await visit(context, args.base + args.target, lang, args.shots);
    // A wrong password: the form again, the message announced as an alert.
    await page.fill('#username', args.username);
    await page.fill('#password', 'not-the-password');
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.press('#password', 'Enter')]);
    run.error_status = (await page.evaluate(() => performance.getEntriesByType('navigation')[0].responseStatus)) ?? null;
    run.alert = await page.getByRole('alert').innerText();
    run.error_aria = await page.locator('main').ariaSnapshot();
    run.error_contrast = await page.evaluate(contrast);
    await page.screenshot({ path: `${args.shots}/${lang}-error.png`, fullPage: true });
    // Then by keyboard only: focus is on the user name again (autofocus).
    run.focus_after_error = await page.evaluate(() => document.activeElement && document.activeElement.id);
    await page.keyboard.type(args.username);
    await page.keyboard.press('Tab');
    await page.keyboard.type(args.password);
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), page.keyboard.press('Enter')]);
    run.final_url = page.url();
    out.runs[lang] = run;
    await context.close();
  }
  if (args.chooser) {
    const context = await newContext(browser, 'zh-CN');
    const page = await context.newPage();
    await page.route(`**${args.logo}`, (r) => r.fulfill({ status: 200, contentType: 'image/svg+xml', body: LOGO_SVG }));
    await page.goto(args.chooser, { waitUntil: 'load' });
    out.chooser = {
      html_lang: await page.getAttribute('html', 'lang'),
      aria: await page.locator('main').ariaSnapshot(),
      contrast: await page.evaluate(contrast),
    };
    await page.screenshot({ path: `${args.shots}/zh-chooser.png`, fullPage: true });
    await context.close();
  }
  out.ok = true;
} catch (err) {
  out.error = String(err && err.stack ? err.stack : err);
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + '\n');
process.exit(out.ok ? 0 : 1);
