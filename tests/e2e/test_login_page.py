"""The login page users recognise (issue 17 item 9), through the real host: the form offers the
other enabled methods of the request's scope as buttons that start them, in English or Chinese
by Accept-Language (Vary, Content-Language), with the configured title and logo under a CSP
that allows exactly them. Then in a real browser (Debian chromium, playwright-core): the
accessibility tree, the keyboard's focus order and ring, contrast, the alert after a failed
attempt, a keyboard-only login; screenshots into target/login-page/ (not committed).

Runs through Envoy, and through the Node worker and workerd with SSO_E2E_HOST."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.parse
from html.parser import HTMLParser

import pytest

import harness
from harness import USERS

BROWSER_DIR = harness.REPO / "tests" / "e2e" / "browser"
SHOTS = harness.REPO / "target" / "login-page"
LOGO = "/static/acme-logo.svg"

EN = ["Sign in with University CAS", "Sign in with DingTalk (QR code)", "Sign in with Okta",
      "Sign in with WeChat (QR code)"]
ZH = ["使用统一身份认证登录", "使用钉钉扫码登录", "使用 Okta 登录", "使用微信扫码登录"]


def page_config(**overrides) -> dict:
    """Built-in users (the default) beside CAS, DingTalk, OIDC and WeChat; the seed's JWT
    method (nothing to click) and a switched-off OIDC; tenant1 adds Feishu."""
    cfg = harness.base_config(None)
    okta = {"type": "oidc", "issuer": "https://idp.example.org", "client_id": "app",
            "client_secret": "s3cret"}
    cfg["login_page_title"] = {"en": "Acme Analytics", "zh": "Acme 数据分析"}
    cfg["login_page_logo"] = LOGO
    cfg["methods"].update({
        "cas": {"type": "cas", "server_url": "https://cas.example.org/cas",
                "label": {"en": "University CAS", "zh": "统一身份认证"}},
        "dingtalk": {"type": "dingtalk", "corp_id": "dingcorp", "app_key": "dingappkey",
                     "app_secret": "app-secret", "login_base": "https://login.example.test"},
        "okta": dict(okta, label="Okta"),
        "wechat": {"type": "wechat", "open_app_id": "wxo", "open_app_secret": "s",
                   "allowed_users": ["u"]},
        "old-sso": dict(okta, enabled=False),
    })
    cfg["tenants"]["tenant1"]["methods"] = {
        "feishu": {"type": "lark", "app_id": "cli_x", "app_secret": "s", "tenant_key": "tk",
                   "accounts_base": "https://accounts.example.test"}}
    cfg.update(overrides)
    return cfg


class _Buttons(HTMLParser):
    """The method buttons of a page: (href, text)."""

    def __init__(self):
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._href: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "a" and a.get("class") == "way":
            self._href = a.get("href")

    def handle_data(self, data):
        if self._href is not None:
            self.found.append((self._href, data))
            self._href = None


def buttons(html: str) -> list[tuple[str, str]]:
    p = _Buttons()
    p.feed(html)
    return p.found


def nav(lang: str | None) -> dict:
    headers = dict(harness.NAV)
    if lang is not None:
        headers["Accept-Language"] = lang
    return headers


def test_the_form_offers_the_other_methods_in_the_readers_language(envoys):
    inst = envoys.get(page_config(), name="login-page")
    c = inst.client()
    rd = urllib.parse.quote("/reports?q=1", safe="")
    for lang, texts, tag in [(None, EN, "en"), ("en-GB,en;q=0.9,zh;q=0.8", EN, "en"),
                             ("zh-CN,zh;q=0.9,en;q=0.8", ZH, "zh-CN"), ("zh-Hant", ZH, "zh-CN"),
                             ("fr, zh;q=0.5, en;q=0.4", ZH, "zh-CN")]:
        page = c.get(f"/login?rd={rd}", headers=nav(lang))
        assert page.status == 200, page
        assert page.header("content-language") == tag, (lang, page)
        assert page.header("vary") == "Accept-Language", page
        assert f'<html lang="{tag}">' in page.text
        got = buttons(page.text)
        assert [t for _, t in got] == texts, (lang, got)
        # Each starts its method at {prefix}/login, keeping the return URL.
        assert [h for h, _ in got] == [
            f"/sso/login?activeAuth=cas&rd={rd}",
            f"/sso/login?activeAuth=dingtalk&rd={rd}&dtLoginType=qr",
            f"/sso/login?activeAuth=okta&rd={rd}",
            f"/sso/login?activeAuth=wechat&rd={rd}",
        ], got
    csp = page.header("content-security-policy")
    assert re.fullmatch(
        r"default-src 'none'; style-src 'sha256-[A-Za-z0-9+/]{43}='; "
        rf"img-src {re.escape(inst.base_url + LOGO)}; form-action 'self'; base-uri 'none'; "
        r"frame-ancestors 'self'", csp), csp
    assert page.header("referrer-policy") == "no-referrer"
    # A return URL off this site becomes / in every button.
    evil = c.get("/login?rd=" + urllib.parse.quote("https://evil.example/", safe=""))
    assert all("&rd=%2F" in h and "evil" not in h for h, _ in buttons(evil.text)), evil.text


def test_a_button_starts_its_method_and_a_tenant_keeps_its_own(envoys):
    inst = envoys.get(page_config(), name="login-page")
    c = inst.client()
    page = c.get("/login?rd=%2Fx&tenantId=t-1", headers=nav("zh-CN"))
    got = buttons(page.text)
    assert [t for _, t in got] == ["使用统一身份认证登录", "使用钉钉扫码登录", "使用飞书扫码登录",
                                   "使用 Okta 登录", "使用微信扫码登录"], got
    assert all(h.endswith("tenantCode=tenant1") or "&tenantCode=tenant1&" in h
               for h, _ in got), got
    # DingTalk's button starts the QR login (its default is the in-app one).
    dingtalk = next(h for h, _ in got if "activeAuth=dingtalk" in h)
    start = c.get(dingtalk)
    assert start.status == 302, start
    to = urllib.parse.urlsplit(start.location)
    assert (to.scheme, to.netloc, to.path) == ("https", "login.example.test", "/oauth2/auth"), start
    assert any(ck.name.startswith("sso_session_flow_") for ck in start.set_cookies), start
    # The failed attempt: the message in the page's language, the tenant's buttons again.
    form = harness.login_form(page.text)
    again = c.post_form("/login", dict(form["fields"], username="admin", password="wrong"),
                        headers={"Accept-Language": "zh-CN"})
    assert again.status == 401, again
    assert '<p class="msg" id="msg" role="alert">用户名或密码错误。</p>' in again.text
    assert [h for h, _ in buttons(again.text)] == [h for h, _ in got]


def test_the_chooser_speaks_chinese_too(envoys):
    cfg = page_config()
    cfg.pop("default_method")
    inst = envoys.get(cfg, name="login-chooser")
    page = inst.client().get("/sso/login?rd=%2F", headers=nav("zh"))
    assert page.status == 200, page
    assert page.header("content-language") == "zh-CN" and page.header("vary") == "Accept-Language"
    assert "<h1>选择登录方式</h1>" in page.text and "<form" not in page.text
    texts = [t for _, t in buttons(page.text)]
    assert texts == ["使用统一身份认证登录", "使用钉钉扫码登录", "使用 jwt-param 登录",
                     "使用 local 账号密码登录", "使用 Okta 登录", "使用微信扫码登录"], texts


def test_a_bad_logo_is_refused_at_load(envoys, recorder):
    port = harness.free_port()
    cfg = page_config(base_url=f"http://127.0.0.1:{port}",
                      login_page_logo="http://cdn.example.com/l.png")
    inst = envoys.cls(envoys.workdir, cfg, envoys.upstream_port, listen_port=port,
                      name="bad-logo")
    envoys.all.append(inst)
    state = inst.start_expecting_refusal()
    try:
        if state == "live":
            # Up (the edge worker loads its configuration per isolate): nothing is served.
            try:
                served = inst.client().get("/login", timeout=5).status
            except OSError:
                served = None
            assert served is None or served >= 500, served
        log = inst.log_text()
        assert "login_page_logo: must be an https URL or a path on this site" in log, log[-2000:]
        assert recorder.requests() == []
    finally:
        inst.stop()


def aria_lines(snapshot: str) -> list[str]:
    return [ln.strip() for ln in snapshot.splitlines()]


@pytest.mark.browser
def test_login_page_in_a_browser(envoys):
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh)"
    assert (BROWSER_DIR / "node_modules" / "playwright-core").exists(), \
        "playwright-core missing: scripts/setup.sh runs npm ci in tests/e2e/browser"
    inst = envoys.get(page_config(), name="login-page")
    cfg = page_config()
    cfg.pop("default_method")
    chooser = envoys.get(cfg, name="login-chooser")
    SHOTS.mkdir(parents=True, exist_ok=True)
    user = USERS["browser"]
    target = "/private/reports?tab=1"
    args = {"base": inst.base_url, "target": target, "logo": LOGO, "username": user.login,
            "password": user.password, "shots": str(SHOTS),
            "chooser": chooser.base_url + "/sso/login?rd=%2F"}
    proc = subprocess.run([node, str(BROWSER_DIR / "login-page.mjs"), json.dumps(args)],
                          cwd=BROWSER_DIR, capture_output=True, text=True, timeout=150,
                          stdin=subprocess.DEVNULL)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from login-page.mjs (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    out = json.loads(lines[-1])
    assert out.get("ok"), f"browser run failed: {out.get('error')}"
    assert out["blocked"] == [], out["blocked"]
    (SHOTS / "report.json").write_text(json.dumps(out, ensure_ascii=False, indent=1))
    words = {"en": ("User name", "Password", "Sign in", "Other ways to sign in", EN,
                    "Invalid user name or password."),
             "zh": ("用户名", "密码", "登录", "其他登录方式", ZH, "用户名或密码错误。")}
    for lang, run in out["runs"].items():
        user_label, pw_label, submit, others, methods, alert = words[lang]
        assert run["url"].startswith(inst.base_url + "/login?"), run["url"]
        assert run["html_lang"] == ("en" if lang == "en" else "zh-CN")
        assert run["headers"]["content-language"] == run["html_lang"]
        # The CSP let the style and the logo in, and keeps another image out; no other
        # violation was reported.
        assert run["style_applied"] == "416px", run["style_applied"]
        assert run["logo_width"] > 0, "the logo did not load"
        assert run["other_image"] and run["other_image"]["directive"] == "img-src", run
        csp_errors = [m for m in run["console"] if "Content Security Policy" in m]
        assert len(csp_errors) == 1 and "other.png" in csp_errors[0], csp_errors
        # What a screen reader meets: named fields, the submit button, the other methods as
        # links named by method and way, in a region named by its heading.
        aria = aria_lines(run["aria"])
        assert f'- heading "{submit}" [level=1]' in aria, run["aria"]
        assert f'- textbox "{user_label}"' in aria, run["aria"]
        assert f'- textbox "{pw_label}"' in aria, run["aria"]
        assert f'- button "{submit}"' in aria, run["aria"]
        assert f'- region "{others}":' in aria, run["aria"]
        links = [ln for ln in aria if ln.startswith("- link ")]
        assert links == [f'- link "{m}":' for m in methods], links
        # The keyboard: the user name first (autofocus), then password, submit, the methods,
        # each with a visible 3px ring.
        focus = run["focus"]
        assert [f.get("id") or f.get("type") or f.get("text") for f in focus[:3]] == \
            ["username", "password", "submit"], focus
        assert [f["text"] for f in focus[3:3 + len(methods)]] == methods, focus
        for f in focus[:3 + len(methods)]:
            assert f["outline"].startswith("solid 3px"), f
        # Contrast: every text at least 4.5:1, field borders at least 3:1.
        for item in run["contrast"] + run["error_contrast"]:
            need = 3 if item.get("nonText") else 4.5
            assert item["ratio"] >= need, item
        # The failed attempt: announced as an alert, focus back on the user name; then a
        # keyboard-only login lands where the user was going.
        assert run["error_status"] == 401
        assert run["alert"] == alert
        assert f'- alert: {alert}' in aria_lines(run["error_aria"]), run["error_aria"]
        assert run["focus_after_error"] == "username"
        assert run["final_url"] == inst.base_url + target, run["final_url"]
    assert out["chooser"]["html_lang"] == "zh-CN"
    assert "- heading \"选择登录方式\" [level=1]" in aria_lines(out["chooser"]["aria"])
    for item in out["chooser"]["contrast"]:
        assert item["ratio"] >= (3 if item.get("nonText") else 4.5), item
    for shot in ["en-form", "en-focus-on-a-method", "en-error", "zh-form", "zh-error",
                 "zh-chooser"]:
        assert (SHOTS / f"{shot}.png").stat().st_size > 0, shot
