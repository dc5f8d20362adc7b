"""Helpers of the provider suites (WeCom, DingTalk, Feishu/Lark, Yunzhijia, WeChat, Teams):
configurations that point a provider method at its loopback mock, and the browser's side of a
redirect login (follow the filter to the provider, the provider back to the filter)."""

from __future__ import annotations

import copy
import http.client
import urllib.parse

import harness
from harness import NAV, Response

MOBILE_WECOM = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                "(KHTML, like Gecko) Mobile/15E148 wxwork/4.1.22 MicroMessenger/7.0.1 "
                "Language/zh ColorScheme/Light")
DESKTOP = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0 Safari/537.36")


def config_with(method_name: str, method: dict, mapping: dict | None = None, **top) -> dict:
    """The suite's base configuration plus one provider method (base_url: the instance's)."""
    cfg = harness.base_config(None)
    cfg["methods"][method_name] = copy.deepcopy(method)
    if mapping is not None:
        cfg["mapping"] = mapping
    cfg.update(top)
    return cfg


def fetch(url: str, headers: dict | None = None, method: str = "GET",
          body: bytes | None = None) -> Response:
    """One request to an absolute URL (a provider page), no redirect followed. The fragment
    stays in the browser, as a browser does."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=15)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request(method, target, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Response(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


def add_query(url: str, **params) -> str:
    parts = urllib.parse.urlsplit(url)
    query = parts.query + ("&" if parts.query else "") + urllib.parse.urlencode(params)
    return urllib.parse.urlunsplit(parts._replace(query=query))


def to_provider(client: harness.Client, app_path: str, agent: str = DESKTOP) -> str:
    """The browser opens `app_path` with no session: filter -> /sso/login -> provider URL."""
    headers = dict(NAV, **{"User-Agent": agent})
    first = client.get(app_path, headers=headers)
    assert first.status == 302, f"GET {app_path}: {first!r}"
    login = harness.path_of(first.location, f"http://127.0.0.1:{client.port}")
    assert login.startswith("/sso/login?"), first.location
    start = client.get(login, headers=headers)
    assert start.status == 302, f"GET {login}: {start!r}"
    return start.location


def back_from_provider(client: harness.Client, provider_url: str, agent: str = DESKTOP,
                       **mock_params) -> tuple[str, Response]:
    """The provider page redirects back (the user scanned / agreed); the browser follows to the
    filter's callback. Returns (callback path, the filter's answer)."""
    page = fetch(add_query(provider_url, **mock_params) if mock_params else provider_url,
                 headers={"User-Agent": agent, "Accept": NAV["Accept"]})
    assert page.status == 302, f"provider page: {page!r}"
    callback = harness.path_of(page.location, f"http://127.0.0.1:{client.port}")
    return callback, client.get(callback, headers=dict(NAV, **{"User-Agent": agent}))


def login(client: harness.Client, app_path: str, agent: str = DESKTOP,
          **mock_params) -> Response:
    """The whole redirect login; returns the filter's answer at the callback."""
    provider_url = to_provider(client, app_path, agent)
    _, answer = back_from_provider(client, provider_url, agent, **mock_params)
    return answer


def landed_identity(client: harness.Client, recorder, path: str) -> dict:
    """GET `path` with the session; the identity the upstream decoded from that request."""
    recorder.clear()
    resp = client.get(path)
    assert resp.status == 200, f"GET {path} after login: {resp!r}"
    return harness.decode_identity_of(harness.only_request(recorder))


# --------------------------------------------------------------------------- in-app pages

DINGTALK_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
               "(KHTML, like Gecko) Mobile/15E148 AliApp(DingTalk/7.6.0) "
               "com.laiwang.DingTalk/35000000 Channel/201200 language/zh-Hans-CN")


def inapp_page(client: harness.Client, app_path: str, agent: str) -> Response:
    """The browser opens `app_path` inside the client app: filter -> /sso/login -> the JSAPI
    page (200)."""
    headers = dict(NAV, **{"User-Agent": agent})
    first = client.get(app_path, headers=headers)
    assert first.status == 302, f"GET {app_path}: {first!r}"
    login = harness.path_of(first.location, f"http://127.0.0.1:{client.port}")
    page = client.get(login, headers=headers)
    assert page.status == 200, f"GET {login}: {page!r}"
    return page


def page_data(page: Response) -> dict:
    """The JSON the in-app page's script reads (`const D=...;`)."""
    import json
    import re
    m = re.search(r"const D=(\{.*?\});const CFG", page.text)
    assert m, f"no page data in {page.text[:500]}"
    return json.loads(m.group(1))


def post_code(client: harness.Client, post_path: str, fields: dict,
              agent: str = DINGTALK_UA) -> Response:
    """What the in-app page's `send()` does: POST JSON with the flow cookie."""
    import json
    return client.request("POST", post_path, {"Content-Type": "application/json",
                                              "Accept": "application/json",
                                              "User-Agent": agent},
                          json.dumps(fields))


def run_browser(args: dict, tmp_path) -> dict:
    """tests/e2e/browser/jsapi-login.mjs with `args`; its JSON result."""
    import json
    import shutil
    import subprocess
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh)"
    browser_dir = harness.REPO / "tests" / "e2e" / "browser"
    assert (browser_dir / "node_modules" / "playwright-core").exists(), \
        "playwright-core missing: scripts/setup.sh runs npm ci in tests/e2e/browser"
    args = dict(args, screenshot=str(tmp_path / "landing.png"))
    proc = subprocess.run([node, str(browser_dir / "jsapi-login.mjs"), json.dumps(args)],
                          cwd=browser_dir, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from jsapi-login.mjs (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1])
