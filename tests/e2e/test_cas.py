"""CAS through the real Envoy against a real CAS server: django-mama-cas (tests/e2e/idp/cas/),
reached by callout through the cluster sso_127_0_0_1_<port>. A scripted browser (requests,
following redirects, filling the CAS login form) logs in with CAS 2.0 and 3.0, logs out, and
the server's single logout ends the filter's session.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.parse

import pytest
import requests

import harness
from harness import NAV, assert_nobody_let_in, decode_identity_of

CAS_DIR = harness.REPO / "tests" / "e2e" / "idp" / "cas"


class CasServer:
    def __init__(self, workdir):
        self.port = harness.free_port()
        self.log = open(workdir / "cas.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(CAS_DIR / "server.py"), str(self.port), str(workdir)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=harness._die_with_parent)
        self.workdir = workdir
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("CAS server exited:\n" + self.log_text())
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("CAS server not listening:\n" + self.log_text())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/cas"

    def log_text(self) -> str:
        return (self.workdir / "cas.log").read_text(errors="replace")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def cas(tmp_path_factory):
    server = CasServer(tmp_path_factory.mktemp("cas"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cas_envoy(envoys, cas):
    config = harness.base_config(None)
    config["methods"]["cas3"] = {
        "type": "cas", "server_url": cas.url, "protocol": "3.0", "label": "CAS 3",
        # The real CAS server sends its logout requests from loopback.
        "logout_sources": ["127.0.0.1/32"],
        "mapping": {"login": "user", "name": "displayName", "email": "mail",
                    "groups": "memberOf"}}
    config["methods"]["cas2"] = {
        "type": "cas", "server_url": cas.url, "protocol": "2.0", "label": "CAS 2"}
    config["methods"]["cas-renew"] = {
        "type": "cas", "server_url": cas.url, "renew": True}
    return envoys.start(config, name="cas", clusters=[("127.0.0.1", cas.port)])


def cas_login(browser: requests.Session, envoy, path: str, method: str, user: str,
              password: str | None = None) -> requests.Response:
    """Open a protected page, get sent to CAS, fill its form, come back through the filter."""
    sep = "&" if "?" in path else "?"
    page = browser.get(f"{envoy.base_url}{path}{sep}activeAuth={method}", headers=NAV,
                       timeout=30)
    assert page.status_code == 200 and page.url.startswith(f"http://127.0.0.1:"), page.url
    assert "/cas/login?service=" in page.url, page.url
    service = urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["service"][0]
    assert service.startswith(f"{envoy.base_url}/sso/callback/{method}?state="), service
    form = [f for f in harness.parse_forms(page.text) if "password" in f["fields"]][0]
    fields = dict(form["fields"])
    fields.update(username=user, password=password or f"{user}-password")
    return browser.post(page.url, data=fields, headers={**NAV, "Referer": page.url},
                        timeout=30)


def test_cas3_login_with_attributes_and_logout(cas_envoy, cas, recorder):
    browser = requests.Session()
    landed = cas_login(browser, cas_envoy, "/reports?id=7", "cas3", "jdoe")
    assert landed.status_code == 200, (landed.status_code, landed.text[:500])
    # Back on the page asked for (the method parameter stays in the return URL).
    assert landed.url == f"{cas_envoy.base_url}/reports?id=7&activeAuth=cas3", landed.url
    assert "ticket=" not in landed.url
    hits = [e for e in recorder.requests() if e["path"].startswith("/reports?id=7")]
    assert len(hits) == 1, recorder.requests()
    ident = decode_identity_of(hits[0])
    assert ident["login"] == "jdoe"
    assert ident["name"] == "张三"
    assert ident["email"] == "jdoe@example.org"
    assert ident["groups"] == ["faculty", "staff"]
    assert ident["method"] == "cas3"
    # Logout: the session ends here and the browser goes to the CAS server's /logout, which
    # (MAMA_CAS_FOLLOW_LOGOUT_URL) sends it back to the configured origin.
    out = browser.get(f"{cas_envoy.base_url}/sso/logout", headers=NAV, allow_redirects=False)
    assert out.status_code == 302
    loc = urllib.parse.urlsplit(out.headers["location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == f"{cas.url}/logout"
    assert urllib.parse.parse_qs(loc.query)["service"] == [
        f"{cas_envoy.base_url}/?activeAuth=cas3"]
    assert "sso_session" not in browser.cookies.get_dict()
    recorder.clear()
    again = browser.get(f"{cas_envoy.base_url}/reports", headers=harness.API,
                        allow_redirects=False)
    assert again.status_code == 401 and recorder.requests() == []


def test_cas2_login(cas_envoy, recorder):
    browser = requests.Session()
    landed = cas_login(browser, cas_envoy, "/two", "cas2", "bob")
    assert landed.status_code == 200
    assert landed.url == f"{cas_envoy.base_url}/two?activeAuth=cas2"
    ident = decode_identity_of(recorder.requests()[-1])
    assert ident["login"] == "bob" and ident["method"] == "cas2"


def test_renew_asks_for_credentials_again(cas_envoy, cas, recorder):
    browser = requests.Session()
    assert cas_login(browser, cas_envoy, "/r", "cas3", "jdoe").status_code == 200
    # Without the filter's session but with the CAS single sign-on session, a plain CAS
    # method comes straight back; with renew=true CAS shows its form again.
    for name in [n for n in browser.cookies.keys() if n.startswith("sso_")]:
        browser.cookies.pop(name)
    sso = browser.get(f"{cas_envoy.base_url}/r?activeAuth=cas2", headers=NAV)
    assert sso.url == f"{cas_envoy.base_url}/r?activeAuth=cas2", sso.url
    for name in [n for n in browser.cookies.keys() if n.startswith("sso_")]:
        browser.cookies.pop(name)
    page = browser.get(f"{cas_envoy.base_url}/r?activeAuth=cas-renew", headers=NAV)
    assert "/cas/login?service=" in page.url and "renew=true" in page.url
    assert "password" in page.text


def test_reload_user_checks_the_cas_session_with_gateway(cas_envoy, cas, recorder):
    """The seeds' reload with the real CAS server (issue 17 item 2): `reloadUser=true` goes
    to CAS with gateway=true; with the CAS single sign-on session it comes straight back with a
    ticket and a new session, without it (after logging out at CAS) the local session ends."""
    browser = requests.Session()
    assert cas_login(browser, cas_envoy, "/r", "cas3", "jdoe").status_code == 200
    first = browser.cookies.get("sso_session")
    # django-mama-cas answers gateway with a ticket while its session lives.
    time.sleep(1.1)  # a new session is visibly new (iat in seconds)
    again = browser.get(f"{cas_envoy.base_url}/r?activeAuth=cas3&reloadUser=true", headers=NAV)
    assert again.status_code == 200, again.url
    assert again.url == f"{cas_envoy.base_url}/r?activeAuth=cas3", again.url
    hops = [h.headers.get("location", "") for h in again.history]
    assert any("gateway=true" in h and "/cas/login" in h for h in hops), hops
    assert browser.cookies.get("sso_session") not in (None, first), "the session was replaced"
    # A cas2 session (its single logout is refused: no logout_sources) outlives a logout at
    # CAS; its next reload comes back without a ticket and ends it.
    other = requests.Session()
    assert cas_login(other, cas_envoy, "/r", "cas2", "bob").status_code == 200
    other.get(f"{cas.url}/logout", headers=NAV)
    assert other.get(f"{cas_envoy.base_url}/r", headers=harness.API).status_code == 200
    recorder.clear()
    gone = other.get(f"{cas_envoy.base_url}/r?activeAuth=cas2&reloadUser=true", headers=NAV)
    assert gone.status_code == 401, (gone.status_code, gone.url)
    assert "sso_session" not in other.cookies.get_dict()
    assert recorder.requests() == []


def test_wrong_password_never_reaches_the_filter(cas_envoy, recorder):
    browser = requests.Session()
    resp = cas_login(browser, cas_envoy, "/x", "cas3", "jdoe", password="wrong")
    assert resp.url.startswith("http://127.0.0.1:") and "/cas/login" in resp.url
    assert recorder.requests() == []
    assert "sso_session" not in browser.cookies.get_dict()


def _ticket_from_cas(browser, envoy, method="cas3", user="jdoe"):
    """Logs in at CAS but stops at the redirect back: returns the callback URL with the
    ticket (not yet used)."""
    page = browser.get(f"{envoy.base_url}/t?activeAuth={method}", headers=NAV)
    form = [f for f in harness.parse_forms(page.text) if "password" in f["fields"]][0]
    fields = dict(form["fields"])
    fields.update(username=user, password=f"{user}-password")
    back = browser.post(page.url, data=fields, headers={**NAV, "Referer": page.url},
                        allow_redirects=False)
    assert back.status_code == 302, back.text[:300]
    return back.headers["location"]


def test_replayed_forged_and_injected_tickets_are_refused(cas_envoy, recorder):
    browser = requests.Session()
    callback = _ticket_from_cas(browser, cas_envoy)
    assert "ticket=ST-" in callback
    first = browser.get(callback, headers=NAV, allow_redirects=False)
    assert first.status_code == 302 and first.headers["location"] == "/t?activeAuth=cas3"
    # The same callback again: the flow is used up.
    client = harness.Client(cas_envoy.port)
    path = harness.path_of(callback, cas_envoy.base_url)
    client.jar = {k: v for k, v in browser.cookies.get_dict().items() if k.startswith("sso_")}
    client.jar.pop("sso_session", None)
    recorder.clear()
    assert_nobody_let_in(client.get(path), recorder, cas_envoy, statuses=(401,))
    # The used ticket with a fresh flow of a new browser: CAS says INVALID_TICKET.
    fresh = requests.Session()
    start = fresh.get(f"{cas_envoy.base_url}/t?activeAuth=cas3", headers=NAV,
                      allow_redirects=False)
    login = fresh.get(f"{cas_envoy.base_url}{start.headers['location']}", headers=NAV,
                      allow_redirects=False)
    service = urllib.parse.parse_qs(urllib.parse.urlsplit(login.headers["location"]).query)[
        "service"][0]
    ticket = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)["ticket"][0]
    fc = harness.Client(cas_envoy.port)
    fc.jar = dict(fresh.cookies.get_dict())
    svc_path = harness.path_of(service, cas_envoy.base_url)
    replay = fc.get(f"{svc_path}&ticket={ticket}")
    assert_nobody_let_in(replay, recorder, cas_envoy, statuses=(401,))
    # Forged and injected tickets (security.md H1): refused before any callout.
    for bad in ("ST-1-forged", "ST-1%26service%3Dhttp%3A%2F%2Fevil", "PT-1-abc",
                "ST-" + "a" * 300):
        start = fresh.get(f"{cas_envoy.base_url}/t?activeAuth=cas3", headers=NAV,
                          allow_redirects=False)
        login = fresh.get(f"{cas_envoy.base_url}{start.headers['location']}", headers=NAV,
                          allow_redirects=False)
        service = urllib.parse.parse_qs(
            urllib.parse.urlsplit(login.headers["location"]).query)["service"][0]
        fc.jar = dict(fresh.cookies.get_dict())
        resp = fc.get(f"{harness.path_of(service, cas_envoy.base_url)}&ticket={bad}")
        assert_nobody_let_in(resp, recorder, cas_envoy, statuses=(400, 401))
    stats = cas_envoy.stats("sso_")
    # The counter names the kind of failure only; the CAS code is in the deny log line.
    assert stats.get("wasmcustom.sso_login_failure.cas3.refused", 0) >= 1, stats
    assert not any("INVALID_TICKET" in k for k in stats), stats


def test_single_logout_ends_the_session_on_the_next_request(cas_envoy, cas, recorder):
    browser = requests.Session()
    assert cas_login(browser, cas_envoy, "/slo", "cas3", "jdoe").status_code == 200
    # A second request: the session is now in the worker's memo as well.
    ok = browser.get(f"{cas_envoy.base_url}/slo", headers=harness.API, allow_redirects=False)
    assert ok.status_code == 200
    session = {k: v for k, v in browser.cookies.get_dict().items()
               if harness.SESSION_COOKIE_RE.match(k)}
    assert session
    # Logging out at the CAS server directly (another application's logout link): mama-cas
    # POSTs logoutRequest to the service URL, through Envoy, to the filter.
    before = cas_envoy.stats("sso_slo")
    if not harness.host_knows_client_address():
        # No client address (local workerd): the unsigned logout POST is refused, fail closed,
        # and the session lives on.
        denied = cas_envoy.stats("sso_deny.forbidden")
        browser.get(f"{cas.url}/logout", headers=NAV)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and cas_envoy.stats("sso_deny.forbidden") == denied:
            time.sleep(0.1)
        assert cas_envoy.stats("sso_deny.forbidden") != denied, cas.log_text()[-2000:]
        assert cas_envoy.stats("sso_slo") == before
        return
    browser.get(f"{cas.url}/logout", headers=NAV)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and cas_envoy.stats("sso_slo") == before:
        time.sleep(0.1)
    assert cas_envoy.stats("sso_slo") != before, cas.log_text()[-2000:]
    # The filter's session cookie is still in the browser, but it no longer opens (on either
    # worker: the logged-out list is in Envoy's shared data).
    recorder.clear()
    for _ in range(4):
        c = harness.Client(cas_envoy.port)
        c.jar = dict(session)
        resp = c.get("/slo", headers=harness.API)
        assert_nobody_let_in(resp, recorder, cas_envoy, statuses=(401,))


def test_cas_preset_validates_and_loads(envoys, recorder):
    """envoy/plugin/cas.json: `sso-filter validate` accepts it, `clusters` names the CAS
    server's cluster, Envoy loads it, and a protected navigation goes to sign in."""
    import json as _json
    path = harness.REPO / "envoy" / "plugin" / "cas.json"
    proc = subprocess.run([str(harness.CLI), "validate", str(path)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "cas (cas)" in proc.stdout, proc
    proc = subprocess.run([str(harness.CLI), "clusters", str(path)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "sso_cas_example_org_443" in proc.stdout, proc.stdout
    inst = envoys.get(_json.loads(path.read_text()), name="cas-preset")
    start = inst.client().get("/sso/login?rd=/x")
    assert start.status == 302 and start.location.startswith(
        "https://cas.example.org/cas/login?service=https%3A%2F%2Fapp.example.com%2Fsso%2Fcallback%2Fcas%3Fstate%3D"), start
    assert recorder.requests() == []
