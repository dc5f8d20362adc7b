"""OAuth2 and OpenID Connect (`type: oauth2`, `type: oidc`; docs/behaviour.md "OAuth2 and OpenID
Connect", issue 3) through the real Envoy and the built .wasm, against:

- a real OpenID Provider: npm `oidc-provider` (OpenID Certified), tests/e2e/idp/oidc/server.mjs,
  with its own login and consent pages, driven by Debian's chromium (playwright-core) and by a
  plain HTTP agent;
- a scripted misbehaving provider, tests/e2e/idp/bad_oauth.py, one issuer per failure mode.

The app runs at `http://localhost:<port>` and the real provider at `http://127.0.0.1:<port>`:
two different sites, as in production, so the flow cookie's SameSite is exercised for real.
The filter reaches both providers through Envoy clusters `sso_<host>_<port>`.
"""

from __future__ import annotations

import json
import re
import select
import shutil
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

import harness
from harness import API, NAV, assert_nobody_let_in, decode_identity_of

IDP_DIR = harness.REPO / "tests" / "e2e" / "idp"
OP_DIR = IDP_DIR / "oidc"
BROWSER_DIR = harness.REPO / "tests" / "e2e" / "browser"
PLUGIN_DIR = harness.REPO / "envoy" / "plugin"

# The real provider's test clients and users (tests/e2e/idp/oidc/server.mjs).
OP_CLIENT, OP_SECRET = "app", "app-secret-0123456789"
OP_POST_CLIENT, OP_POST_SECRET = "app-post", "post-secret-0123456789"
OP_USERS = {
    "alice": {"password": "alice-pw", "sub": "u-1001-alice", "name": "Alice Liddell",
              "email": "alice@example.com", "groups": ["data analysts", "admins"]},
    "bob": {"password": "bob-pw", "sub": "u-1002-bob", "name": "Bob Builder",
            "email": "bob@example.com", "groups": ["viewers"]},
    "zhangsan": {"password": "zhangsan-pw", "sub": "u-1003-zhangsan", "name": "张三",
                 "email": "zhangsan@example.com", "groups": ["数据分析"]},
}
# bad_oauth.py's client and its one user (mode `ok`).
BAD_CLIENT, BAD_SECRET = "app", "app-secret-0123456789"
BAD_USER = {"login": "carol", "name": "Carol Okafor", "email": "carol@example.com"}

TIMEOUT_MS = 2000
SLOW_SECONDS = 4  # bad_oauth's slow modes sleep this long: past the filter's timeout_ms
CALLBACK_PREFIXES = ("/sso/callback/", "/oauth2/callback")
REDIRECTS = (301, 302, 303, 307, 308)


# =============================================================================== processes

def _wait_ready(proc: subprocess.Popen, what: str, log: Path, timeout: float = 30.0) -> dict:
    """Reads the child's stdout until its `READY {json}` line."""
    deadline = time.monotonic() + timeout
    buf = b""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited with {proc.returncode}:\n"
                                 + log.read_text(errors="replace")[-3000:])
        ready, _, _ = select.select([proc.stdout], [], [], 0.2)
        if ready:
            chunk = proc.stdout.read1(4096) if hasattr(proc.stdout, "read1") else b""
            buf += chunk
            for line in buf.splitlines():
                if line.startswith(b"READY "):
                    return json.loads(line[6:])
    proc.kill()
    raise AssertionError(f"{what} not ready after {timeout}s:\n"
                         + log.read_text(errors="replace")[-3000:])


def _spawn(argv: list[str], cwd: Path, what: str, logdir: Path):
    logdir.mkdir(parents=True, exist_ok=True)
    log = logdir / f"{what}.stderr.log"
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=open(log, "wb"), start_new_session=True,
                            preexec_fn=harness._die_with_parent)
    info = _wait_ready(proc, what, log)
    return proc, info, log


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _get_json(url: str):
    parts = urllib.parse.urlsplit(url)
    c = harness.Client(parts.port, parts.hostname)
    resp = c.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""),
                     API, use_jar=False)
    assert resp.status == 200, resp
    return resp.json()


def _post_json(url: str, body: dict) -> None:
    parts = urllib.parse.urlsplit(url)
    c = harness.Client(parts.port, parts.hostname)
    resp = c.request("POST", parts.path, {"Content-Type": "application/json"},
                     json.dumps(body), use_jar=False)
    assert resp.status == 200, resp


class OpenIdProvider:
    def __init__(self, proc, info, log):
        self.proc, self.info, self.log = proc, info, log
        self.issuer = info["issuer"]
        self.port = info["port"]

    def events(self) -> list[dict]:
        return _get_json(self.issuer + "/_test/events")

    def event_names(self) -> list[str]:
        return [e["event"] for e in self.events()]

    def discovery(self) -> dict:
        return _get_json(self.issuer + "/.well-known/openid-configuration")


class BadProvider:
    def __init__(self, proc, info, log):
        self.proc, self.info, self.log = proc, info, log
        self.origin = info["issuer"]
        self.port = info["port"]
        self.modes = info["modes"]

    def issuer(self, mode: str) -> str:
        return f"{self.origin}/m/{mode}"

    def requests(self) -> list[dict]:
        return _get_json(self.origin + "/_log")

    def reset(self) -> None:
        _post_json(self.origin + "/_reset", {})


# =============================================================================== HTTP agent

class Agent:
    """A cookie-keeping user agent over harness.Client (one jar per origin) that follows
    redirects across the app and the provider, recording every hop."""

    def __init__(self):
        self.clients: dict[tuple[str, int], harness.Client] = {}

    def client(self, url: str) -> tuple[harness.Client, str]:
        parts = urllib.parse.urlsplit(url)
        key = (parts.hostname, parts.port or 80)
        if key not in self.clients:
            self.clients[key] = harness.Client(key[1], key[0])
        return self.clients[key], (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def jar(self, origin: str) -> dict[str, str]:
        return self.client(origin + "/")[0].jar

    def get(self, url: str, headers=None) -> harness.Response:
        c, path = self.client(url)
        return c.get(path, headers if headers is not None else NAV)

    def post_form(self, url: str, fields: dict) -> harness.Response:
        c, path = self.client(url)
        return c.post_form(path, fields)

    def walk(self, url: str, stop_before=None, headers=None, max_hops: int = 20):
        """GETs `url` and follows redirects. Returns (trail, next_url): trail is [(url,
        response)]; next_url is the URL `stop_before(url)` stopped at, else None."""
        trail = []
        for _ in range(max_hops):
            if stop_before is not None and stop_before(url):
                return trail, url
            resp = self.get(url, headers)
            trail.append((url, resp))
            if resp.status in REDIRECTS and resp.location:
                url = urllib.parse.urljoin(url, resp.location)
                continue
            return trail, None
        raise AssertionError("redirect loop:\n" + _trail_text(trail))


def _trail_text(trail) -> str:
    lines = []
    for url, resp in trail:
        cookies = ",".join(f"{c.name}{'(del)' if c.deletes else ''}" for c in resp.set_cookies)
        lines.append(f"  {resp.status} {url[:160]} -> {str(resp.location)[:160]} "
                     f"[set-cookie: {cookies}]")
    return "\n".join(lines)


def _path(url: str) -> str:
    return urllib.parse.urlsplit(url).path


def _query(url: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query,
                                       keep_blank_values=True))


def _is_callback(url: str) -> bool:
    return _path(url).startswith(CALLBACK_PREFIXES)


def _callback_hops(trail):
    return [(u, r) for u, r in trail if _is_callback(u)]


def _authorize_hop(trail, idp_origin: str):
    """The authorization request the filter sent the browser to (its URL)."""
    for url, _ in trail:
        if url.startswith(idp_origin) and ("/auth?" in url or "/authorize?" in url):
            return url
    raise AssertionError("no authorization request in:\n" + _trail_text(trail))


def _sessions_set(trail) -> list:
    return [(u, c) for u, r in trail for c in r.session_cookies_set]


def op_login(agent: Agent, start_url: str, username: str, password: str, idp: str,
             stop_before=None):
    """From a protected URL through the real provider's login form (and consent page when
    shown) back to the app. Returns (trail, next_url) as Agent.walk."""
    trail, nxt = agent.walk(start_url, stop_before)
    if nxt is not None:
        return trail, nxt
    url, page = trail[-1]
    if not (url.startswith(idp + "/interaction/") and page.status == 200):
        return trail, None  # no login form (already signed in at the provider, or a denial)
    form = harness.login_form(page.text)
    action = urllib.parse.urljoin(url, form["action"])
    resp = agent.post_form(action, {"username": username, "password": password})
    trail.append((action, resp))
    for _ in range(3):
        assert resp.status in REDIRECTS, \
            f"provider refused {username}'s login:\n{_trail_text(trail)}\n{resp.text[:500]}"
        more, nxt = agent.walk(urllib.parse.urljoin(action, resp.location), stop_before)
        trail += more
        if nxt is not None:
            return trail, nxt
        url, page = trail[-1]
        consent = [f for f in harness.parse_forms(page.text)
                   if (f["action"] or "").endswith("/confirm")] if url.startswith(idp) else []
        if not consent:
            return trail, None
        action = urllib.parse.urljoin(url, consent[0]["action"])
        resp = agent.post_form(action, {"allow": "yes"})
        trail.append((action, resp))
    raise AssertionError("consent loop:\n" + _trail_text(trail))


# =============================================================================== configs

def oidc_method(issuer: str, **over) -> dict:
    m = {"type": "oidc", "issuer": issuer, "client_id": OP_CLIENT, "client_secret": OP_SECRET,
         "scope": "openid profile email", "timeout_ms": TIMEOUT_MS,
         "mapping": {"login": "preferred_username", "name": "name", "email": "email",
                     "groups": "groups"}}
    m.update(over)
    return m


def op_config(base_url: str, op: str) -> dict:
    cfg = harness.base_config(base_url, users=[harness.USERS["admin"]])
    cfg["default_method"] = "oidc"
    cfg["methods"]["oidc"] = oidc_method(op, id_token_hint=True)
    cfg["methods"]["oidc-sub"] = oidc_method(
        op, mapping={"login": "sub", "name": "name", "email": "email", "groups": "groups"})
    # Generic OAuth2 (HENGSHI/Mobi fields) against the same provider's endpoints: user-info
    # JSON paths, the seeds' callback path, client_secret_post, user-info by POST.
    cfg["methods"]["oauth2"] = {
        "type": "oauth2", "client_id": OP_POST_CLIENT, "client_secret": OP_POST_SECRET,
        "client_auth": "client_secret_post",
        "authorize_url": op + "/auth", "token_url": op + "/token", "userinfo_url": op + "/me",
        "userinfo_method": "POST", "scope": "openid profile email",
        "user_id_path": "$.preferred_username", "user_name_path": "$.name",
        "email_path": "$.email", "callback_path": "/oauth2/callback",
        "timeout_ms": TIMEOUT_MS,
    }
    return cfg


# mode -> (statuses per the contract, where the denial comes, the provider endpoint whose
# answer is the reason (None: no provider call must follow the authorization response)).
# Statuses: 502 when the IdP misbehaves (5xx, unusable answer, unreachable), 504 past
# timeout_ms, 401 for refusals and failed checks (docs/behaviour.md).
DISC = "/.well-known/openid-configuration"
BAD_MODES = {
    "discovery-500": ((502,), "start", DISC),
    "discovery-malformed": ((502,), "start", DISC),
    "discovery-huge": ((502,), "start", DISC),
    "discovery-slow": ((504,), "start", DISC),
    "discovery-wrong-issuer": ((502,), "start", DISC),
    "jwks-500": ((502,), "callback", "/jwks"),
    "jwks-malformed": ((502,), "callback", "/jwks"),
    "jwks-huge": ((502,), "callback", "/jwks"),
    "jwks-empty": ((401,), "callback", "/token"),
    "callback-error": ((401,), "callback", None),
    "iss-wrong": ((401,), "callback", None),
    "iss-missing": ((401,), "callback", None),
    "token-400": ((401,), "callback", "/token"),
    "token-401": ((401,), "callback", "/token"),
    "token-500": ((502,), "callback", "/token"),
    "token-503-html": ((502,), "callback", "/token"),
    "token-malformed": ((502,), "callback", "/token"),
    "token-huge": ((502,), "callback", "/token"),
    "token-html": ((502,), "callback", "/token"),
    "token-slow": ((504,), "callback", "/token"),
    "token-reset": ((502,), "callback", "/token"),
    "token-no-id-token": ((401, 502), "callback", "/token"),
    "token-error-200": ((401, 502), "callback", "/token"),
    "idtoken-wrong-iss": ((401,), "callback", "/token"),
    "idtoken-wrong-aud": ((401,), "callback", "/token"),
    "idtoken-azp-wrong": ((401,), "callback", "/token"),
    "idtoken-wrong-nonce": ((401,), "callback", "/token"),
    "idtoken-no-nonce": ((401,), "callback", "/token"),
    "idtoken-expired": ((401,), "callback", "/token"),
    "idtoken-iat-future": ((401,), "callback", "/token"),
    "idtoken-alg-none": ((401,), "callback", "/token"),
    "idtoken-bad-signature": ((401,), "callback", "/token"),
    "idtoken-unknown-kid": ((401,), "callback", "/token"),
    "idtoken-hs256-confusion": ((401,), "callback", "/token"),
    "userinfo-500": ((502,), "callback", "/userinfo"),
    "userinfo-malformed": ((502,), "callback", "/userinfo"),
    "userinfo-huge": ((502,), "callback", "/userinfo"),
    "userinfo-slow": ((504,), "callback", "/userinfo"),
    "userinfo-sub-mismatch": ((401,), "callback", "/userinfo"),
    "userinfo-401": ((401, 502), "callback", "/userinfo"),
}
# The generic oauth2 type against the same misbehaviours where they apply to it.
O2_MODES = {
    "ok": None,
    "token-400": ((401,), "callback", "/token"),
    "token-500": ((502,), "callback", "/token"),
    "token-malformed": ((502,), "callback", "/token"),
    "token-huge": ((502,), "callback", "/token"),
    "token-slow": ((504,), "callback", "/token"),
    "callback-error": ((401,), "callback", None),
    "userinfo-500": ((502,), "callback", "/userinfo"),
    "userinfo-malformed": ((502,), "callback", "/userinfo"),
    "userinfo-huge": ((502,), "callback", "/userinfo"),
    "userinfo-slow": ((504,), "callback", "/userinfo"),
    "userinfo-401": ((401, 502), "callback", "/userinfo"),
}


def o2_method(bad: str, mode: str, token_base: str | None = None) -> dict:
    base = f"{bad}/m/{mode}"
    tb = token_base or base
    return {"type": "oauth2", "client_id": BAD_CLIENT, "client_secret": BAD_SECRET,
            "authorize_url": base + "/authorize", "token_url": tb + "/token",
            "userinfo_url": tb + "/userinfo", "scope": "profile",
            "user_id_path": "$.preferred_username", "user_name_path": "$.name",
            "email_path": "$.email", "timeout_ms": TIMEOUT_MS}


def bad_config(bad_origin: str, closed_port: int) -> dict:
    cfg = harness.base_config(None, users=[harness.USERS["admin"]])
    methods = cfg["methods"]
    methods["bad-ok"] = oidc_method(bad_origin + "/m/ok", client_id=BAD_CLIENT,
                                    client_secret=BAD_SECRET, id_token_hint=True)
    for mode in BAD_MODES:
        methods[f"bad-{mode}"] = oidc_method(f"{bad_origin}/m/{mode}", client_id=BAD_CLIENT,
                                             client_secret=BAD_SECRET)
    for mode in O2_MODES:
        methods[f"o2-{mode}"] = o2_method(bad_origin, mode)
    closed = f"http://127.0.0.1:{closed_port}"
    methods["down"] = oidc_method(closed, client_id=BAD_CLIENT, client_secret=BAD_SECRET)
    # Authorization works, then the token endpoint is down.
    methods["down-token"] = o2_method(bad_origin, "ok", token_base=closed)
    cfg["default_method"] = "bad-ok"
    return cfg


# =============================================================================== fixtures

@pytest.fixture(scope="module")
def op_setup(envoys, tmp_path_factory):
    """The real provider and the Envoy in front of the app that uses it."""
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh)"
    assert (OP_DIR / "node_modules" / "oidc-provider").exists(), \
        "oidc-provider missing: scripts/setup.sh runs npm ci in tests/e2e/idp/oidc"
    app_port, op_port = harness.free_port(), harness.free_port()
    app = f"http://localhost:{app_port}"
    proc, info, log = _spawn(
        [node, str(OP_DIR / "server.mjs"), "--port", str(op_port), "--app", app,
         "--redirect-uri", f"{app}/sso/callback/oidc-sub"],
        OP_DIR, "oidc-provider", tmp_path_factory.mktemp("idp"))
    op = OpenIdProvider(proc, info, log)
    try:
        cfg = op_config(app, op.issuer)
        envoy = envoys.start(cfg, name="oidc", port=app_port, clusters=[("127.0.0.1", op_port)])
        yield envoy, op, app
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def bad_setup(envoys, tmp_path_factory):
    """bad_oauth.py and an Envoy with one method per failure mode, plus `down` methods whose
    provider port is closed."""
    port = harness.free_port()
    proc, info, log = _spawn(
        [str(harness.REPO / ".venv" / "bin" / "python"), str(IDP_DIR / "bad_oauth.py"),
         str(port), "--slow-seconds", str(SLOW_SECONDS)],
        IDP_DIR, "bad_oauth", tmp_path_factory.mktemp("bad-idp"))
    bad = BadProvider(proc, info, log)
    missing = sorted(set(BAD_MODES) - set(bad.modes))
    assert not missing, f"bad_oauth.py lacks modes {missing}"
    closed = harness.free_port()  # nothing listens there: the provider is down
    try:
        cfg = bad_config(bad.origin, closed)
        envoy = envoys.start(cfg, name="bad-idp",
                             clusters=[("127.0.0.1", port), ("127.0.0.1", closed)])
        yield envoy, bad, closed
    finally:
        _stop(proc)


@pytest.fixture
def bad(bad_setup):
    bad_setup[1].reset()
    return bad_setup


# =============================================================================== helpers

def _assert_denied(envoy, recorder, trail, statuses, where: str, agent: Agent,
                   app: str) -> harness.Response:
    """The flow ended in a denial at `where` (a path prefix): status per the contract, nothing
    reached the upstream, no session cookie anywhere in the trail, a retry link, and the flow
    cookie did not become a session."""
    url, resp = trail[-1]
    assert _path(url).startswith(where), \
        f"denial expected at {where}, flow ended at {url}:\n{_trail_text(trail)}"
    assert_nobody_let_in(resp, recorder, envoy, statuses=statuses)
    assert not _sessions_set(trail), f"session cookie set in the flow:\n{_trail_text(trail)}"
    assert "Sign in again" in resp.text, f"no retry link on the error page: {resp!r}"
    jar = agent.jar(app)
    assert not [k for k in jar if harness.SESSION_COOKIE_RE.match(k)], jar
    after = agent.get(app + "/private/after-denial", API)
    assert after.status == 401 and after.json().get("error") == "login_required", after
    assert recorder.requests() == [], recorder.requests()
    return resp


def _failure_count(envoy, method: str) -> int:
    prefix = f"wasmcustom.sso_login_failure.{method}."
    return sum(v for k, v in envoy.stats("sso_login_failure").items() if k.startswith(prefix))


def _wait_failure_count(envoy, method: str, timeout: float = 3.0) -> int:
    deadline = time.monotonic() + timeout
    n = _failure_count(envoy, method)
    while n == 0 and time.monotonic() < deadline:
        time.sleep(0.1)
        n = _failure_count(envoy, method)
    return n


def _deny_lines(envoy, method: str, timeout: float = 3.0) -> list[str]:
    """The filter's deny log lines for `method` (waits for Envoy's log flush)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [ln for ln in envoy.log_text().splitlines()
                 if "sso-filter: deny" in ln and f"method={method} " in ln]
        if lines or time.monotonic() > deadline:
            return lines
        time.sleep(0.1)


def _sans_active_auth(target: str) -> str:
    """path?query without `activeAuth` (the return URL keeps the query the browser asked
    with, and the method choice is part of it)."""
    parts = urllib.parse.urlsplit(target)
    q = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
         if k != "activeAuth"]
    return parts.path + (f"?{urllib.parse.urlencode(q)}" if q else "")


def _last_upstream(recorder, path: str) -> dict:
    hits = [e for e in recorder.requests() if _sans_active_auth(e["path"]) == path]
    assert hits, f"upstream never got {path}: {[e['path'] for e in recorder.requests()]}"
    return hits[-1]


def _run_node(script: str, args: dict, timeout: int = 150) -> dict:
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh)"
    assert (BROWSER_DIR / "node_modules" / "playwright-core").exists(), \
        "playwright-core missing: scripts/setup.sh runs npm ci in tests/e2e/browser"
    proc = subprocess.run([node, str(BROWSER_DIR / script), json.dumps(args)],
                          cwd=BROWSER_DIR, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from {script} (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1])


def _steps_text(steps) -> str:
    return "\n".join(f"  {s['status']} {s['url'][:160]} -> {str(s['location'])[:160]}"
                     for s in steps)


# =============================================================================== (a) browser

@pytest.mark.browser
def test_browser_oidc_login_and_logout(op_setup, recorder, tmp_path):
    envoy, op, app = op_setup
    target = app + "/private/report?year=2026&q=%E6%8A%A5%E8%A1%A8"
    out = _run_node("oidc-login.mjs", {
        "url": target, "idp": op.issuer, "username": "alice",
        "password": OP_USERS["alice"]["password"], "logout": "/sso/logout",
        "screenshots": str(tmp_path)})
    steps = _steps_text(out.get("steps", []))
    assert out.get("ok"), f"browser run failed: {out.get('error')}\n{steps}\n" \
                          f"logout:\n{_steps_text(out.get('logout_steps', []))}"
    assert out["blocked"] == [], f"requests off this machine: {out['blocked']}"

    # Login: the provider's own form, then back on the page first asked for.
    assert out["login_page_url"].startswith(op.issuer + "/interaction/"), out["login_page_url"]
    assert out["final_url"] == target, f"ended at {out['final_url']}\n{steps}"
    who = OP_USERS["alice"]
    assert out["identity"] == {"login": "alice", "name": who["name"], "email": who["email"],
                               "method": "oidc", "groups": who["groups"]}, out["identity"]
    auth_url = next(s["url"] for s in out["steps"] if s["url"].startswith(op.issuer + "/auth?"))
    q = _query(auth_url)
    assert q["redirect_uri"] == app + "/sso/callback/oidc", q
    assert q["code_challenge_method"] == "S256" and q["code_challenge"] and q["nonce"], q
    cookies = {c["name"]: c for c in out["cookies"] if c["domain"] == "localhost"}
    assert "sso_session" in cookies, out["cookies"]
    assert cookies["sso_session"]["httpOnly"] and cookies["sso_session"]["sameSite"] == "Lax"
    assert not [n for n in cookies if n.startswith("sso_session_flow_")], \
        f"flow cookie left after the login: {sorted(cookies)}"
    entry = _last_upstream(recorder, urllib.parse.urlsplit(target).path + "?"
                           + urllib.parse.urlsplit(target).query)
    ident = decode_identity_of(entry)
    assert ident.get("login") == "alice" and ident.get("email") == who["email"], ident

    # Logout: the filter's session ends, then the provider's end-session endpoint.
    lsteps = out["logout_steps"]
    first = lsteps[0]
    assert first["url"] == app + "/sso/logout" and first["status"] == 302, _steps_text(lsteps)
    end_session = op.discovery()["end_session_endpoint"]
    assert first["location"].startswith(end_session + "?"), _steps_text(lsteps)
    lq = _query(first["location"])
    # docs/behaviour.md says `<base_url>/`; issue 3 keeps `activeAuth` in the return address.
    assert lq.get("post_logout_redirect_uri") in (app + "/", app + "/?activeAuth=oidc"), lq
    assert lq.get("id_token_hint", "").count(".") == 2, f"no id_token_hint: {lq}"
    assert out["logout_confirm_shown"], \
        f"provider's end-session page not shown (hint refused?):\n{_steps_text(lsteps)}\n" \
        f"{out.get('after_logout_text')}"
    assert "end_session.success" in op.event_names(), op.events()[-5:]
    assert not [c for c in out["cookies_after_logout"] if c["name"] == "sso_session"], \
        out["cookies_after_logout"]
    # Back at the app's root, which (no session any more) sends the browser to sign in.
    assert any(s["url"].startswith(app + "/") and _path(s["url"]) == "/" for s in lsteps), \
        _steps_text(lsteps)

    # A new visit needs the provider's login form again: its session ended too.
    assert out["relogin_form_shown"], \
        f"not asked to sign in again:\n{_steps_text(out['relogin_steps'])}"
    assert out["relogin_identity"]["login"] is None
    assert (tmp_path / "2-after-login.png").exists()
    assert not envoy.wasm_crashes(), envoy.wasm_crashes()


# =============================================================================== (b) two tabs

@pytest.mark.browser
def test_browser_two_tabs_login_at_once(op_setup, recorder):
    envoy, op, app = op_setup
    urls = [app + "/private/tab-one?n=1", app + "/private/tab-two?n=2"]
    out = _run_node("oidc-two-tabs.mjs", {"urls": urls, "idp": op.issuer, "username": "bob",
                                          "password": OP_USERS["bob"]["password"]})
    detail = "\n".join(f"tab {i}: {t.get('final_url')}\n{_steps_text(t['steps'])}"
                       for i, t in enumerate(out.get("tabs", [])))
    assert out.get("ok"), f"browser run failed: {out.get('error')}\n{detail}"
    assert out["blocked"] == [], out["blocked"]
    assert all(out["states"]) and out["states"][0] != out["states"][1], out["states"]
    for url, tab in zip(urls, out["tabs"]):
        assert tab["login_form_shown"], detail
        assert tab["final_url"] == url, f"tab for {url} ended at {tab['final_url']}\n{detail}"
        assert tab["identity"]["login"] == "bob", f"{url}: {tab['identity']}\n{detail}"
        path = urllib.parse.urlsplit(url)
        assert decode_identity_of(_last_upstream(recorder, f"{path.path}?{path.query}")) \
            .get("login") == "bob"
    names = [c["name"] for c in out["cookies"] if c["domain"] == "localhost"]
    assert "sso_session" in names, names
    assert not [n for n in names if n.startswith("sso_session_flow_")], names


# =============================================================================== real provider, HTTP

def test_oidc_login_maps_claims_and_userinfo(op_setup, recorder):
    """alice through the real provider: ID token verified, user-info merged (the provider
    keeps profile/email claims out of the ID token, so name/email/groups come from there)."""
    envoy, op, app = op_setup
    agent = Agent()
    trail, _ = op_login(agent, app + "/private/dash?tab=2", "alice", "alice-pw", op.issuer)
    url, last = trail[-1]
    assert url == app + "/private/dash?tab=2" and last.status == 200, _trail_text(trail)
    auth = _query(_authorize_hop(trail, op.issuer))
    assert auth["response_type"] == "code" and auth["client_id"] == OP_CLIENT, auth
    assert auth["redirect_uri"] == app + "/sso/callback/oidc", auth
    assert set(auth["scope"].split()) == {"openid", "profile", "email"}, auth
    assert auth["code_challenge_method"] == "S256" and len(auth["code_challenge"]) == 43, auth
    assert auth["state"] and auth["nonce"] and auth["state"] != auth["nonce"], auth
    (cb_url, cb), = _callback_hops(trail)
    assert cb.status in (302, 303) and cb.session_cookies_set, _trail_text(trail)
    assert cb.location in ("/private/dash?tab=2", app + "/private/dash?tab=2"), cb.location
    # The flow travelled sealed in `state`: no cookie per flow, the binding cookie stays for
    # other logins on their way (single use is test_state_replayed_refused).
    assert len(auth["state"]) > 300, auth["state"]
    assert not [c for _, r in trail for c in r.set_cookies
                if c.name.startswith("sso_session_flow_")], _trail_text(trail)
    assert "sso_session_bind" in agent.jar(app), agent.jar(app)
    ident = decode_identity_of(_last_upstream(recorder, "/private/dash?tab=2"))
    who = OP_USERS["alice"]
    assert ident.get("login") == "alice", ident
    assert ident.get("name") == who["name"] and ident.get("email") == who["email"], ident
    assert ident.get("groups") == who["groups"], ident
    assert ident.get("method") == "oidc", ident
    me = agent.get(app + "/sso/userinfo", API)
    assert me.status == 200 and me.json().get("login") == "alice", me
    assert "grant.success" in op.event_names()


def test_oidc_login_by_sub_and_unicode_name(op_setup, recorder):
    """`mapping.login: sub`, and 张三 travels as an RFC 8187 header value."""
    envoy, op, app = op_setup
    agent = Agent()
    trail, _ = op_login(agent, app + "/private/zh?activeAuth=oidc-sub", "zhangsan",
                        "zhangsan-pw", op.issuer)
    assert trail[-1][1].status == 200, _trail_text(trail)
    entry = _last_upstream(recorder, "/private/zh")
    ident = decode_identity_of(entry)
    assert ident.get("login") == OP_USERS["zhangsan"]["sub"], ident
    assert ident.get("name") == "张三" and ident.get("groups") == ["数据分析"], ident
    raw = {k.lower(): v for k, v in entry["headers"]}
    assert raw.get("x-sso-name") == "UTF-8''%E5%BC%A0%E4%B8%89", raw.get("x-sso-name")


def test_oauth2_generic_userinfo_paths(op_setup, recorder):
    """(d) `type: oauth2` with Mobi-style user-info JSON paths, client_secret_post and
    user-info by POST, against the real provider."""
    envoy, op, app = op_setup
    agent = Agent()
    trail, _ = op_login(agent, app + "/private/o2?activeAuth=oauth2", "bob", "bob-pw",
                        op.issuer)
    url, last = trail[-1]
    assert last.status == 200 and _path(url) == "/private/o2", _trail_text(trail)
    auth = _query(_authorize_hop(trail, op.issuer))
    assert auth["client_id"] == OP_POST_CLIENT and auth["code_challenge_method"] == "S256", auth
    ident = decode_identity_of(_last_upstream(recorder, "/private/o2"))
    who = OP_USERS["bob"]
    assert ident.get("login") == "bob", ident                   # user_id_path
    assert ident.get("name") == who["name"], ident              # user_name_path
    assert ident.get("email") == who["email"], ident            # email_path
    assert ident.get("method") == "oauth2", ident
    grants = [e for e in op.events() if e["event"] == "grant.success"]
    assert grants and grants[-1]["client_id"] == OP_POST_CLIENT, op.events()[-6:]


def test_oauth2_callback_compat_path(op_setup, recorder):
    """(e) `callback_path: /oauth2/callback`: the redirect URI sent is base_url + that path,
    and the provider's answer there completes the login."""
    envoy, op, app = op_setup
    agent = Agent()
    trail, _ = op_login(agent, app + "/private/compat?x=1&activeAuth=oauth2", "alice",
                        "alice-pw", op.issuer)
    auth = _query(_authorize_hop(trail, op.issuer))
    assert auth["redirect_uri"] == app + "/oauth2/callback", auth
    hops = _callback_hops(trail)
    assert [(_path(u)) for u, _ in hops] == ["/oauth2/callback"], _trail_text(trail)
    cb = hops[0][1]
    assert cb.status in (302, 303) and cb.session_cookies_set, _trail_text(trail)
    assert trail[-1][1].status == 200, _trail_text(trail)
    assert decode_identity_of(_last_upstream(recorder, "/private/compat?x=1")).get("login") \
        == "alice"


def test_oauth2_logout_without_logout_url_is_local(op_setup, recorder):
    """No logout endpoint configured: `{prefix}/logout` ends the local session only."""
    envoy, op, app = op_setup
    agent = Agent()
    trail, _ = op_login(agent, app + "/private/o2out?activeAuth=oauth2", "bob", "bob-pw",
                        op.issuer)
    assert trail[-1][1].status == 200, _trail_text(trail)
    out = agent.get(app + "/sso/logout?rd=/bye")
    assert out.status == 302 and out.location in ("/bye", app + "/bye"), out
    assert any(c.deletes and c.name == "sso_session" for c in out.set_cookies), out
    assert agent.get(app + "/private/o2out", API).status == 401


def test_real_provider_replayed_code_refused(op_setup, recorder):
    """A code the provider already redeemed, presented with a fresh state of the same
    browser: the provider says invalid_grant, the filter refuses (401)."""
    envoy, op, app = op_setup
    agent = Agent()
    trail, _ = op_login(agent, app + "/private/first", "alice", "alice-pw", op.issuer)
    (first_cb, resp), = _callback_hops(trail)
    assert resp.session_cookies_set, _trail_text(trail)
    used_code = _query(first_cb)["code"]
    # A second login (the provider still has alice's session: straight back with a new code).
    agent.get(app + "/sso/logout")
    trail2, cb2 = op_login(agent, app + "/private/second", "alice", "alice-pw", op.issuer,
                           stop_before=_is_callback)
    assert cb2, _trail_text(trail2)
    q = _query(cb2)
    q["code"] = used_code
    recorder.clear()
    before = len([e for e in op.events() if e["event"] == "grant.error"])
    resp = agent.get(cb2.split("?")[0] + "?" + urllib.parse.urlencode(q))
    _assert_denied(envoy, recorder, [(cb2, resp)], (401,), _path(cb2), agent, app)
    errors = [e for e in op.events() if e["event"] == "grant.error"]
    assert len(errors) == before + 1 and errors[-1]["error"] == "invalid_grant", errors[-3:]


# =============================================================================== (c) bad provider

def test_bad_provider_correct_mode_logs_in(bad, recorder):
    """The control: the scripted provider in mode `ok` lets the login through, so the modes
    below fail for their own reason."""
    envoy, prov, _ = bad
    agent = Agent()
    trail, _ = agent.walk(envoy.base_url + "/private/ok?activeAuth=bad-ok")
    url, last = trail[-1]
    assert last.status == 200 and _path(url) == "/private/ok", _trail_text(trail)
    ident = decode_identity_of(_last_upstream(recorder, "/private/ok"))
    assert ident.get("login") == BAD_USER["login"] and ident.get("name") == BAD_USER["name"]
    assert ident.get("email") == BAD_USER["email"], ident
    log = prov.requests()
    tok = [e for e in log if e["endpoint"] == "/token"]
    assert len(tok) == 1 and tok[0]["status"] == 200, log
    assert tok[0]["client_auth"] == "client_secret_basic" and tok[0]["pkce"], tok
    auth = [e for e in log if e["endpoint"] == "/authorize"][0]
    assert {"state", "nonce", "code_challenge", "code_challenge_method"} <= set(auth["has"])
    assert [e for e in log if e["endpoint"] == "/userinfo"], log


def test_callouts_name_the_provider_host_and_port(bad, recorder):
    """Every callout carries `Host: <host>:<port>` of the endpoint's URL (RFC 9110 7.2: the
    port is part of Host unless it is the scheme's default). Providers that build their
    endpoint URLs from Host (oidc-provider, Keycloak without a fixed hostname) otherwise
    advertise unusable endpoints."""
    envoy, prov, _ = bad
    agent = Agent()
    trail, _ = agent.walk(envoy.base_url + "/private/host?activeAuth=bad-ok")
    calls = [e for e in prov.requests() if e["endpoint"] != "/authorize"]
    assert calls, f"no callout reached the provider:\n{_trail_text(trail)}"
    want = f"127.0.0.1:{prov.port}"
    wrong = sorted({(e["endpoint"], e["host"]) for e in calls if e["host"] != want})
    assert not wrong, f"callouts sent Host other than {want!r}: {wrong}"


def test_generic_oauth2_correct_mode_logs_in(bad, recorder):
    envoy, prov, _ = bad
    agent = Agent()
    trail, _ = agent.walk(envoy.base_url + "/private/o2ok?activeAuth=o2-ok")
    assert trail[-1][1].status == 200, _trail_text(trail)
    ident = decode_identity_of(_last_upstream(recorder, "/private/o2ok"))
    assert (ident.get("login"), ident.get("name"), ident.get("email")) == \
        (BAD_USER["login"], BAD_USER["name"], BAD_USER["email"]), ident


def _bad_flow(envoy, prov, recorder, method: str, expect):
    statuses, stage, reason_endpoint = expect
    agent = Agent()
    trail, _ = agent.walk(envoy.base_url + f"/private/p?x=1&activeAuth={method}")
    where = "/sso/login" if stage == "start" else "/sso/callback/"
    resp = _assert_denied(envoy, recorder, trail, statuses, where, agent, envoy.base_url)
    log = prov.requests()
    if stage == "callback":
        assert [e for e in log if e["endpoint"] == "/authorize"], log
    provider_calls = [e for e in log if e["endpoint"] not in ("/authorize",)]
    if reason_endpoint is None:
        # Refused on the authorization response itself: no code redeemed.
        assert not [e for e in provider_calls if e["endpoint"] == "/token"], provider_calls
    else:
        assert [e for e in provider_calls if e["endpoint"] == reason_endpoint], \
            f"the provider's {reason_endpoint} was never asked: {log}"
    assert _wait_failure_count(envoy, method) >= 1, \
        f"no sso_login_failure.{method}.* counter: {envoy.stats('sso_login_failure')}"
    assert _deny_lines(envoy, method), f"no deny log line for {method}"
    return resp, log


@pytest.mark.parametrize("mode", sorted(BAD_MODES))
def test_bad_provider_denied(bad, recorder, mode):
    """(c) each misbehaviour of the provider: denied with the contract's status, nothing
    reaches the upstream, no session cookie, the flow cookie not turned into a session."""
    envoy, prov, _ = bad
    _bad_flow(envoy, prov, recorder, f"bad-{mode}", BAD_MODES[mode])


@pytest.mark.parametrize("mode", sorted(m for m in O2_MODES if m != "ok"))
def test_generic_oauth2_bad_provider_denied(bad, recorder, mode):
    envoy, prov, _ = bad
    _bad_flow(envoy, prov, recorder, f"o2-{mode}", O2_MODES[mode])


def test_provider_down(bad, recorder):
    """Nothing listens on the issuer's port: discovery fails, 502 at the login start."""
    envoy, _, _ = bad
    agent = Agent()
    trail, _ = agent.walk(envoy.base_url + "/private/p?activeAuth=down")
    _assert_denied(envoy, recorder, trail, (502,), "/sso/login", agent, envoy.base_url)
    assert _wait_failure_count(envoy, "down") >= 1


def test_token_endpoint_down(bad, recorder):
    """Authorization works, then the token endpoint's port is closed: 502 at the callback."""
    envoy, prov, _ = bad
    agent = Agent()
    trail, _ = agent.walk(envoy.base_url + "/private/p?activeAuth=down-token")
    _assert_denied(envoy, recorder, trail, (502,), "/sso/callback/", agent, envoy.base_url)
    assert [e for e in prov.requests() if e["endpoint"] == "/authorize"]


def test_provider_error_is_logged(bad, recorder):
    """The provider's `error` reaches the log line (never the client's page)."""
    envoy, prov, _ = bad
    resp, _ = _bad_flow(envoy, prov, recorder, "bad-token-400", BAD_MODES["token-400"])
    lines = _deny_lines(envoy, "bad-token-400")
    assert any("invalid_grant" in ln for ln in lines), lines


def test_failure_answers_json_to_api_clients(bad, recorder):
    """An API request to the callback gets JSON with the login URL, not a page."""
    envoy, prov, _ = bad
    agent = Agent()
    _, cb = agent.walk(envoy.base_url + "/sso/login?activeAuth=bad-token-malformed&rd=/api/x",
                       stop_before=_is_callback)
    assert cb, "no callback"
    resp = agent.get(cb, API)
    assert_nobody_let_in(resp, recorder, envoy, statuses=(502,))
    body = resp.json()
    assert body.get("error") and "/sso/login" in body.get("login_url", ""), body


def test_replayed_code_refused(bad, recorder):
    """A code the provider has seen, with the browser's next fresh state: the provider answers
    400 invalid_grant to the second use and the filter refuses."""
    envoy, prov, _ = bad
    agent = Agent()
    trail, _ = agent.walk(envoy.base_url + "/private/one?activeAuth=bad-ok")
    assert trail[-1][1].status == 200, _trail_text(trail)
    (first_cb, _), = _callback_hops(trail)
    _fresh_after(agent, envoy.base_url)  # signed out locally, so the next visit logs in again
    _, cb2 = agent.walk(envoy.base_url + "/private/two?activeAuth=bad-ok",
                        stop_before=_is_callback)
    assert cb2, "second login did not reach the provider"
    q = _query(cb2)
    q["code"] = _query(first_cb)["code"]
    recorder.clear()
    prov.reset()
    url = cb2.split("?")[0] + "?" + urllib.parse.urlencode(q)
    resp = agent.get(url)
    # the first session must not count: drop it before judging
    _assert_denied(envoy, recorder, [(url, resp)], (401,), "/sso/callback/",
                   _fresh_after(agent, envoy.base_url), envoy.base_url)
    tok = [e for e in prov.requests() if e["endpoint"] == "/token"]
    assert tok and tok[-1]["status"] == 400 and tok[-1].get("error") == "replayed code", tok


def _fresh_after(agent: Agent, app: str) -> Agent:
    """The agent with its (earlier, legitimate) session removed, for _assert_denied's check
    that the refused callback did not leave a session behind."""
    jar = agent.jar(app)
    for k in [k for k in jar if harness.SESSION_COOKIE_RE.match(k)]:
        jar.pop(k)
    return agent


# =============================================================================== (f) state

def _to_callback(envoy, agent: Agent, path="/private/s?x=1", method="bad-ok") -> str:
    trail, cb = agent.walk(envoy.base_url + f"{path}&activeAuth={method}",
                           stop_before=_is_callback)
    assert cb, "the provider did not send the browser back:\n" + _trail_text(trail)
    assert [k for k in agent.jar(envoy.base_url) if harness.FLOW_COOKIE_RE.match(k)], \
        f"no flow cookie after the login start: {agent.jar(envoy.base_url)}"
    return cb


def _with(url: str, **changes) -> str:
    q = _query(url)
    for k, v in changes.items():
        if v is None:
            q.pop(k, None)
        else:
            q[k] = v
    return url.split("?")[0] + "?" + urllib.parse.urlencode(q)


def _no_code_redeemed(prov) -> None:
    tok = [e for e in prov.requests() if e["endpoint"] == "/token"]
    assert tok == [], f"the code was redeemed although the state was refused: {tok}"


def test_state_tampered_refused(bad, recorder):
    envoy, prov, _ = bad
    agent = Agent()
    cb = _to_callback(envoy, agent)
    state = _query(cb)["state"]
    forged = state[:-1] + ("A" if state[-1] != "A" else "B")
    resp = agent.get(_with(cb, state=forged))
    _assert_denied(envoy, recorder, [(cb, resp)], (401,), "/sso/callback/", agent,
                   envoy.base_url)
    _no_code_redeemed(prov)


def test_state_missing_refused(bad, recorder):
    envoy, prov, _ = bad
    agent = Agent()
    cb = _to_callback(envoy, agent)
    resp = agent.get(_with(cb, state=None))
    _assert_denied(envoy, recorder, [(cb, resp)], (400, 401), "/sso/callback/", agent,
                   envoy.base_url)
    _no_code_redeemed(prov)


def test_state_of_another_browser_refused(bad, recorder):
    """Login CSRF: a callback URL made in one browser, opened in another (no flow cookie)."""
    envoy, prov, _ = bad
    cb = _to_callback(envoy, Agent())
    victim = Agent()
    resp = victim.get(cb)
    _assert_denied(envoy, recorder, [(cb, resp)], (401,), "/sso/callback/", victim,
                   envoy.base_url)
    _no_code_redeemed(prov)


def test_state_replayed_refused(bad, recorder):
    """The same callback URL a second time, after it logged the browser in."""
    envoy, prov, _ = bad
    agent = Agent()
    cb = _to_callback(envoy, agent)
    first = agent.get(cb)
    assert first.status in (302, 303) and first.session_cookies_set, first
    recorder.clear()
    prov.reset()
    again = agent.get(cb)
    _assert_denied(envoy, recorder, [(cb, again)], (401,), "/sso/callback/",
                   _fresh_after(agent, envoy.base_url), envoy.base_url)
    _no_code_redeemed(prov)


# =============================================================================== clusters

def test_clusters_named_for_the_providers(bad_setup, tmp_path):
    """`sso-filter clusters CONFIG` names the clusters the harness defines."""
    envoy, prov, closed = bad_setup
    path = tmp_path / "bad.json"
    path.write_text(envoy.config_json)
    proc = _cli("clusters", str(path))
    assert proc.returncode == 0, proc
    for port in (prov.port, closed):
        assert harness.idp_cluster_name("127.0.0.1", port) in proc.stdout, proc.stdout


# =============================================================================== (g) presets

def _cli(*args) -> subprocess.CompletedProcess:
    if not harness.CLI.exists():
        pytest.fail(f"{harness.CLI} missing: `cargo build --release` (make test does it)",
                    pytrace=False)
    return subprocess.run([str(harness.CLI), *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


PRESETS = {
    "oidc-generic.json": {"clusters": ["sso_idp_example_com_443", "sso_oauth_example_com_443"]},
    "oidc-keycloak.json": {"clusters": ["sso_keycloak_example_com_443"]},
    "oidc-azure.json": {"clusters": ["sso_login_microsoftonline_com_443",
                                     "sso_graph_microsoft_com_443"]},
}


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_example_validates(name):
    """(g) each configuration example in envoy/plugin/ is accepted by `sso-filter validate`,
    which prints a summary naming its methods, and `clusters` names the IdP clusters."""
    path = PLUGIN_DIR / name
    assert path.exists(), f"{path} missing"
    cfg = json.loads(path.read_text())
    proc = _cli("validate", str(path))
    assert proc.returncode == 0, f"validate refused {name}:\n{proc.stdout}{proc.stderr}"
    assert proc.stdout.startswith("ok:"), proc.stdout
    for mname, m in cfg["methods"].items():
        assert f"{mname} ({m['type']})" in proc.stdout, proc.stdout
    proc = _cli("clusters", str(path))
    assert proc.returncode == 0, proc
    for cluster in PRESETS[name]["clusters"]:
        assert cluster in proc.stdout, proc.stdout
    # Pasted into a bootstrap as printed: Envoy refuses two clusters of one name.
    names = re.findall(r"^- name: (\S+)", proc.stdout, re.M)
    assert len(names) == len(set(names)), f"cluster defined twice: {sorted(names)}"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_example_loads_in_envoy(envoys, name, recorder):
    """Envoy loads each example as it is; a protected navigation goes to sign in."""
    cfg = json.loads((PLUGIN_DIR / name).read_text())
    inst = envoys.get(cfg, name=name.removesuffix(".json"))
    resp = inst.client().get("/private/x")
    assert resp.status == 302 and "/sso/login" in (resp.location or ""), resp
    assert recorder.requests() == []
    assert not inst.wasm_crashes(), inst.wasm_crashes()


def test_azure_preset_sends_v2_authorize_without_network(envoys, recorder):
    """The Azure example configures every endpoint (no discovery): the login start is a
    redirect to the tenant's v2 authorize endpoint with PKCE, built without any callout."""
    cfg = json.loads((PLUGIN_DIR / "oidc-azure.json").read_text())
    inst = envoys.get(cfg, name="oidc-azure")
    resp = inst.client().get("/sso/login?rd=/x")
    assert resp.status == 302, resp
    loc = resp.location
    assert loc.startswith("https://login.microsoftonline.com/") and \
        "/oauth2/v2.0/authorize?" in loc, loc
    q = _query(loc)
    assert q["code_challenge_method"] == "S256" and "openid" in q["scope"].split(), q
    assert q["redirect_uri"] == cfg["base_url"] + cfg["methods"]["oauth2"]["callback_path"], q
