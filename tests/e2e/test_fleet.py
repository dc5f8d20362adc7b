"""The fleet store (issue 16): two replicas of the host under test (two Envoys, two Node
workers or two workerd instances, per SSO_E2E_HOST) in front of one upstream, sharing session
keys and one real etcd (tests/e2e/etcd.py), with the real django-mama-cas and the real
oidc-provider as identity providers. What one replica learns, the other enforces:

- a one-time token used on A is refused on B;
- an OIDC callback replayed on B is refused before B calls the provider;
- a CAS single logout received by A ends the session on B at its next request;
- failed passwords on A and B count against one lockout;
- with etcd stopped, whatever needs it fails closed (503, a counter, a log line), except
  sessions on a replica whose operator chose `insecure_serve_sessions`; it recovers when etcd
  is back;
- a flood of logouts stays bounded in etcd: every key has a lease, and past the write budget
  the replica refuses rather than writes.

Every refusal is checked against security.md §0.2 (harness.assert_nobody_let_in).
"""

from __future__ import annotations

import os
import secrets
import time
import urllib.parse

import pytest
import requests

import harness
from etcd import Etcd
from harness import API, NAV, assert_nobody_let_in
from test_cas import CasServer, cas, cas_login, _ticket_from_cas  # noqa: F401 (cas: fixture)
from messages import cas_logout_body

PREFIX = "e2e-fleet/"


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    server = Etcd(tmp_path_factory.mktemp("etcd"))
    yield server
    server.close()


def fleet_config(etcd: Etcd, cas: CasServer, keys: list[str], **store) -> dict:
    cfg = harness.base_config(None, keys=keys)
    cfg["store"] = {"type": "etcd", "url": etcd.url, "prefix": PREFIX, "timeout_ms": 1000,
                    **store}
    cfg["methods"]["jwt-once"] = {
        "type": "jwt", "param": "jwtParam", "one_time": True,
        "verify": {"alg": "HS256", "secret": harness.SEED_SECRET},
        "mapping": {"login": "loginName", "roles": "roles"}}
    cfg["methods"]["cas3"] = {
        "type": "cas", "server_url": cas.url, "protocol": "3.0",
        "logout_sources": ["127.0.0.1/32"], "mapping": {"login": "user"}}
    return cfg


class Pair:
    def __init__(self, envoys, etcd, cas, **store):
        self.keys = [harness.new_session_key()]
        clusters = [("127.0.0.1", etcd.port), ("127.0.0.1", cas.port)]
        cfg = fleet_config(etcd, cas, self.keys, **store)
        self.a = envoys.start(cfg, name="fleet-a", clusters=clusters)
        self.b = envoys.start(cfg, name="fleet-b", clusters=clusters)

    def counter(self, inst, name: str) -> int:
        return inst.stats(name).get(f"wasmcustom.{name}", 0)


@pytest.fixture(scope="module")
def pair(envoys, etcd, cas):
    return Pair(envoys, etcd, cas)


def one_time_token(login: str = "alice") -> str:
    return harness.mint_hs256({"loginName": login, "roles": ["data viewer"],
                               "jti": secrets.token_hex(8), "exp": int(time.time()) + 600})


def test_one_time_token_used_on_a_is_refused_on_b(pair, etcd, recorder):
    url = harness.jwt_url(one_time_token(), method="jwt-once", path="/once")
    first = pair.a.client().get(url, API)
    assert first.status == 302 and first.session_cookies_set, first
    recorder.clear()
    before = pair.counter(pair.b, "sso_fleet.replay")
    replay = pair.b.client().get(url, API)
    assert_nobody_let_in(replay, recorder, pair.b, statuses=(401,))
    assert replay.json()["error"] == "invalid_token"
    assert pair.counter(pair.b, "sso_fleet.replay") == before + 1
    # What etcd holds for it: one key named by a digest, with a lease.
    once = etcd.keys(PREFIX + "once/")
    assert once and all(k["lease"] != "0" and 0 < k["ttl"] <= 600 + 60 + 60 + 120
                        for k in once), once
    assert not any("alice" in k["key"] for k in once)


def test_cas_callback_replayed_on_b_is_refused_before_the_ticket_is_validated(pair, cas,
                                                                                 recorder):
    browser = requests.Session()
    callback = _ticket_from_cas(browser, pair.a)
    landed = browser.get(callback, headers=NAV, allow_redirects=False)
    assert landed.status_code == 302 and "sso_session" in browser.cookies.get_dict()
    # The same callback on B, with the browser's binding cookie: the flow was used on A.
    c = harness.Client(pair.b.port)
    c.jar = {k: v for k, v in browser.cookies.get_dict().items()
             if k.startswith("sso_") and not harness.SESSION_COOKIE_RE.match(k)}
    ticket = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)["ticket"][0]
    recorder.clear()
    replay = c.get(harness.path_of(callback, pair.a.base_url))
    assert_nobody_let_in(replay, recorder, pair.b, statuses=(401,))
    assert pair.counter(pair.b, "sso_fleet.replay") >= 1
    # The CAS server was asked about the ticket once, by A; B never asked.
    time.sleep(0.5)  # the server's access log is written after its answer
    asked = [line for line in cas.log_text().splitlines()
             if "serviceValidate" in line and ticket in line]
    assert len(asked) == 1, asked


def test_cas_logout_received_by_a_ends_the_session_on_b(pair, cas, recorder):
    browser = requests.Session()
    landed = cas_login(browser, pair.a, "/slo", "cas3", "jdoe")
    assert landed.status_code == 200, landed.text[:300]
    session = {k: v for k, v in browser.cookies.get_dict().items()
               if harness.SESSION_COOKIE_RE.match(k)}
    # The session works on B too (stateless cookie, shared keys), checked against etcd.
    on_b = harness.Client(pair.b.port)
    on_b.jar = dict(session)
    assert on_b.get("/slo", API).status == 200
    if not harness.host_knows_client_address():
        # A local workerd has no client address: the CAS server's unsigned logout is refused
        # (logout_sources fail closed), so nothing is recorded and the session lives on B.
        denied = pair.counter(pair.a, "sso_deny.forbidden")
        browser.get(f"{cas.url}/logout", headers=NAV)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and pair.counter(pair.a, "sso_deny.forbidden") == denied:
            time.sleep(0.1)
        assert pair.counter(pair.a, "sso_deny.forbidden") == denied + 1
        assert on_b.get("/slo", API).status == 200
        return
    before = pair.counter(pair.a, "sso_slo.cas3")
    browser.get(f"{cas.url}/logout", headers=NAV)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and pair.counter(pair.a, "sso_slo.cas3") == before:
        time.sleep(0.1)
    assert pair.counter(pair.a, "sso_slo.cas3") == before + 1, cas.log_text()[-2000:]
    recorder.clear()
    gone = pair.counter(pair.b, "sso_fleet.logged_out")
    assert_nobody_let_in(on_b.get("/slo", API), recorder, pair.b, statuses=(401,))
    assert pair.counter(pair.b, "sso_fleet.logged_out") == gone + 1
    # B remembers it now: the next request is refused without asking etcd again.
    assert_nobody_let_in(on_b.get("/slo", API), recorder, pair.b, statuses=(401,))
    assert pair.counter(pair.b, "sso_fleet.logged_out") == gone + 1


def test_failed_passwords_on_both_replicas_count_against_one_lockout(pair, recorder):
    user = harness.USERS["lockme"]
    # base_config: max_failures 5 per (user, client address); 3 on A, 2 on B.
    for inst in (pair.a, pair.a, pair.a, pair.b, pair.b):
        resp = harness.local_login(inst.client(), user.login, "wrong password")
        assert resp.status == 401 and not resp.session_cookies_set, resp
    recorder.clear()
    before = pair.counter(pair.a, "sso_fleet.throttled")
    # A has counted 3 on its own, under the limit; the fleet has counted 5.
    right = harness.local_login(pair.a.client(), user.login, user.password)
    assert_nobody_let_in(right, recorder, pair.a, statuses=(429,))
    assert pair.counter(pair.a, "sso_fleet.throttled") == before + 1


def test_a_success_clears_the_fleet_counter(pair, etcd):
    user = harness.USERS["zhang"]
    for inst in (pair.a, pair.b):
        resp = harness.local_login(inst.client(), user.login, "wrong password")
        assert resp.status == 401, resp
    assert etcd.keys(PREFIX + "thr/"), "failures are counted in etcd"
    ok = harness.local_login(pair.b.client(), user.login, user.password)
    assert ok.status == 303 and ok.session_cookies_set, ok
    left = [k for k in etcd.keys(PREFIX + "thr/")]
    # zhang's counter is gone; lockme's (previous test) may remain until its lease ends.
    assert len(left) <= 5, left


def test_store_down_fails_closed_serves_sessions_only_when_chosen_and_recovers(
        envoys, etcd, cas, pair, recorder):
    lenient = envoys.start(fleet_config(etcd, cas, pair.keys,
                                        on_store_error="insecure_serve_sessions"),
                           name="fleet-c",
                           clusters=[("127.0.0.1", etcd.port), ("127.0.0.1", cas.port)])
    browser = requests.Session()
    assert cas_login(browser, pair.a, "/down", "cas3", "jdoe").status_code == 200
    session = {k: v for k, v in browser.cookies.get_dict().items()
               if harness.SESSION_COOKIE_RE.match(k)}
    etcd.stop()
    try:
        recorder.clear()
        down = pair.counter(pair.b, "sso_fleet.unavailable")
        on_b = harness.Client(pair.b.port)
        on_b.jar = dict(session)
        assert_nobody_let_in(on_b.get("/down", API), recorder, pair.b, statuses=(503,))
        assert pair.counter(pair.b, "sso_fleet.unavailable") == down + 1
        deadline = time.monotonic() + 5
        while "fleet store unavailable" not in pair.b.log_text():
            assert time.monotonic() < deadline, pair.b.log_tail()
            time.sleep(0.1)
        # Single use fails closed on every replica, whatever on_store_error says.
        url = harness.jwt_url(one_time_token(), method="jwt-once", path="/down")
        assert_nobody_let_in(lenient.client().get(url, API), recorder, lenient,
                             statuses=(503,))
        # The replica that chose it serves the session on its own logout list.
        on_c = harness.Client(lenient.port)
        on_c.jar = dict(session)
        served = lenient.stats("sso_fleet.served_without_store").get(
            "wasmcustom.sso_fleet.served_without_store", 0)
        assert on_c.get("/down", API).status == 200
        assert lenient.stats("sso_fleet.served_without_store").get(
            "wasmcustom.sso_fleet.served_without_store", 0) == served + 1
    finally:
        etcd.start()
    # Back: the session and a fresh one-time token work again.
    assert on_b.get("/down", API).status == 200
    url = harness.jwt_url(one_time_token(), method="jwt-once", path="/up")
    resp = pair.b.client().get(url, API)
    assert resp.status == 302 and resp.session_cookies_set, resp


def test_a_logout_flood_stays_bounded_by_leases_and_the_write_budget(envoys, etcd, cas,
                                                                    recorder):
    cfg = fleet_config(etcd, cas, [harness.new_session_key()], writes_per_second=20,
                       write_burst=40, prefix="e2e-flood/")
    # The posts name their sender in a header the configuration trusts, so every host (a
    # local workerd knows no client address) takes them as the CAS server's.
    cfg["client_ip_header"] = "x-test-client"
    inst = envoys.start(cfg, name="fleet-flood",
                        clusters=[("127.0.0.1", etcd.port), ("127.0.0.1", cas.port)])
    c = inst.client()
    statuses: dict[int, int] = {}
    t0 = time.monotonic()
    for i in range(200):
        resp = c.request("POST", "/sso/callback/cas3",
                         {"Content-Type": "application/x-www-form-urlencoded",
                          "X-Test-Client": "127.0.0.1"},
                         cas_logout_body(f"ST-{i}-{secrets.token_hex(8)}"), use_jar=False)
        statuses[resp.status] = statuses.get(resp.status, 0) + 1
    took = time.monotonic() - t0
    assert set(statuses) <= {200, 503}, statuses
    busy = inst.stats("sso_fleet.busy").get("wasmcustom.sso_fleet.busy", 0)
    assert busy == statuses.get(503, 0) > 0, (statuses, busy)
    keys = etcd.keys("e2e-flood/")
    # Written: at most the burst plus the rate over the time taken, per worker (the budget is
    # a worker's, like the password budget: Envoy runs two here, the edge hosts one).
    workers = 2 if os.environ.get("SSO_E2E_HOST", "envoy") == "envoy" else 1
    assert statuses[200] == len(keys) <= workers * (40 + 20 * took + 1), (
        statuses, len(keys), took)
    # Each remembered for the session lifetime and no longer (ttl_seconds 28800 + 60, in a
    # one-hour lease window, granted 120 s past it).
    assert all(k["lease"] != "0" and 0 < k["ttl"] <= 28_860 + 3600 + 120 for k in keys), keys
    assert len({k["lease"] for k in keys}) <= 2, "items of one window share a lease"
    assert recorder.requests() == []


# =============================================================================== etcd with TLS
# and a user: the filter authenticates, sends its token, and is held to its prefix by etcd.

SECURE_PREFIX = "e2e-secure/"


@pytest.fixture(scope="module")
def secure_etcd(tmp_path_factory):
    server = Etcd(tmp_path_factory.mktemp("etcd-secure"), secure=True,
                  allowed_prefix=SECURE_PREFIX)
    yield server
    server.close()


def secure_replica(envoys, etcd: Etcd, cas: CasServer, keys: list[str], name: str,
                   prefix: str = SECURE_PREFIX, password: str | None = None):
    import etcd as etcd_mod
    cfg = fleet_config(etcd, cas, keys, prefix=prefix,
                       auth={"username": etcd_mod.FILTER_USER,
                             "password": password or etcd_mod.FILTER_PASSWORD})
    return envoys.start(cfg, name=name, env={"NODE_EXTRA_CA_CERTS": etcd.ca},
                        clusters=[("127.0.0.1", etcd.port, etcd.ca), ("127.0.0.1", cas.port)])


def test_over_tls_as_a_user_confined_to_its_prefix(envoys, secure_etcd, cas, recorder):
    keys = [harness.new_session_key()]
    a = secure_replica(envoys, secure_etcd, cas, keys, "fleet-tls-a")
    b = secure_replica(envoys, secure_etcd, cas, keys, "fleet-tls-b")
    url = harness.jwt_url(one_time_token(), method="jwt-once", path="/tls")
    first = a.client().get(url, API)
    assert first.status == 302 and first.session_cookies_set, first
    recorder.clear()
    assert_nobody_let_in(b.client().get(url, API), recorder, b, statuses=(401,))
    assert secure_etcd.keys(SECURE_PREFIX + "once/"), "written under the user's prefix"
    # etcd holds the filter to its prefix: a configuration pointing elsewhere fails closed.
    elsewhere = secure_replica(envoys, secure_etcd, cas, keys, "fleet-tls-other",
                               prefix="another-app/")
    url = harness.jwt_url(one_time_token(), method="jwt-once", path="/tls")
    assert_nobody_let_in(elsewhere.client().get(url, API), recorder, elsewhere,
                         statuses=(503,))
    # A wrong password: closed, and the log says where to look, without the password.
    wrong = secure_replica(envoys, secure_etcd, cas, keys, "fleet-tls-wrong",
                           password="not-the-password")
    url = harness.jwt_url(one_time_token(), method="jwt-once", path="/tls")
    assert_nobody_let_in(wrong.client().get(url, API), recorder, wrong, statuses=(503,))
    deadline = time.monotonic() + 5
    while "check store.auth" not in wrong.log_text():
        assert time.monotonic() < deadline, wrong.log_tail()
        time.sleep(0.1)
    assert "not-the-password" not in wrong.log_text()


def test_a_token_etcd_forgot_is_replaced(envoys, secure_etcd, cas, recorder):
    """etcd keeps its simple tokens in memory: after a restart every replica's token is
    unknown (401), and the next request authenticates again and goes through."""
    keys = [harness.new_session_key()]
    a = secure_replica(envoys, secure_etcd, cas, keys, "fleet-tls-restart")
    url = harness.jwt_url(one_time_token(), method="jwt-once", path="/r1")
    assert a.client().get(url, API).status == 302
    secure_etcd.stop()
    secure_etcd.start()
    url = harness.jwt_url(one_time_token(), method="jwt-once", path="/r2")
    resp = a.client().get(url, API)
    assert resp.status == 302 and resp.session_cookies_set, resp
    assert "etcd refused the token; authenticating again" in a.log_text()


# =============================================================================== LDAP
# The directory's answer arrives as a stream reply (edge hosts only: the Wasm build in Envoy
# has no sockets). The lockout's fleet question goes out after the bind, from that input.

def test_ldap_lockout_counts_both_replicas(envoys, etcd, tmp_path_factory, recorder):
    import slapd as slapd_mod
    directory = slapd_mod.Slapd(tmp_path_factory.mktemp("fleet-slapd")).start()
    try:
        keys = [harness.new_session_key()]
        replicas = []
        for name in ("fleet-ldap-a", "fleet-ldap-b"):
            port = harness.free_port()
            cfg = harness.base_config(f"http://127.0.0.1:{port}", keys=keys)
            cfg["methods"] = {"ldap": directory.method()}
            cfg["default_method"] = "ldap"
            cfg["tenants"] = {}
            cfg["store"] = {"type": "etcd", "url": etcd.url, "prefix": "e2e-ldap/"}
            cls = harness.NodeWorker if envoys.cls is harness.Envoy else envoys.cls
            inst = cls(envoys.workdir, cfg, envoys.upstream_port, listen_port=port, name=name)
            envoys.all.append(inst)
            replicas.append(inst.start())
        a, b = replicas
        # The method allows 3 failures: 2 on A, 1 on B.
        for inst in (a, a, b):
            resp = harness.local_login(inst.client(), "carol", "wrong")
            assert resp.status == 401 and not resp.session_cookies_set, resp
        assert len(etcd.keys("e2e-ldap/thr/")) == 3
        recorder.clear()
        right = harness.local_login(a.client(), "carol", "carol-pw")
        assert_nobody_let_in(right, recorder, a, statuses=(429,))
        # Another user is not held back by carol's lockout, and a success clears its own count.
        assert harness.local_login(b.client(), "bob", "wrong").status == 401
        ok = harness.local_login(a.client(), "bob", "bob-pw")
        assert ok.status == 303 and ok.session_cookies_set, ok
        assert len(etcd.keys("e2e-ldap/thr/")) == 3, "bob's failure is gone, carol's stay"
    finally:
        directory.stop()


# =============================================================================== OIDC

def test_oidc_callback_replayed_on_b_never_reaches_the_provider(envoys, etcd, tmp_path_factory,
                                                                 recorder):
    """The real oidc-provider (tests/e2e/idp/oidc): alice logs in through A; the callback URL
    (code and state), replayed on B with the browser's binding cookie, is refused by B before
    B redeems the code: the provider sees one token request, A's."""
    import shutil
    from test_oidc import (OP_DIR, Agent, OpenIdProvider, _is_callback, _spawn, _stop,
                           oidc_method, op_login)
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh)"
    a_port, b_port, op_port = harness.free_port(), harness.free_port(), harness.free_port()
    app = f"http://localhost:{a_port}"
    proc, info, log = _spawn(
        [node, str(OP_DIR / "server.mjs"), "--port", str(op_port), "--app", app,
         "--redirect-uri", f"{app}/sso/callback/oidc"],
        OP_DIR, "oidc-provider", tmp_path_factory.mktemp("fleet-op"))
    try:
        op = OpenIdProvider(proc, info, log)
        keys = [harness.new_session_key()]
        clusters = [("127.0.0.1", etcd.port), ("127.0.0.1", op_port)]
        replicas = []
        for name, port in (("fleet-oidc-a", a_port), ("fleet-oidc-b", b_port)):
            cfg = harness.base_config(f"http://localhost:{port}", keys=keys)
            cfg["methods"]["oidc"] = oidc_method(op.issuer)
            cfg["default_method"] = "oidc"
            cfg["tenants"] = {}
            cfg["store"] = {"type": "etcd", "url": etcd.url, "prefix": "e2e-oidc/"}
            replicas.append(envoys.start(cfg, name=name, port=port, clusters=clusters))
        a, b = replicas
        agent = Agent()
        _, callback = op_login(agent, f"{app}/reports", "alice", "alice-pw", op.issuer,
                               stop_before=_is_callback)
        assert callback and "code=" in callback, callback
        landed = agent.get(callback)
        assert landed.status in (302, 303) and landed.session_cookies_set, landed
        grants = [e["event"] for e in op.events()].count("grant.success")
        assert grants == 1, op.events()
        # The same callback on B, with the browser's binding cookie (sessions removed).
        c = harness.Client(b.port)
        c.jar = {k: v for k, v in agent.jar(app).items()
                 if k.startswith("sso_") and not harness.SESSION_COOKIE_RE.match(k)}
        recorder.clear()
        replay = c.get(urllib.parse.urlsplit(callback).path + "?"
                       + urllib.parse.urlsplit(callback).query)
        assert_nobody_let_in(replay, recorder, b, statuses=(401,))
        assert b.stats("sso_fleet.replay").get("wasmcustom.sso_fleet.replay", 0) == 1
        time.sleep(0.3)
        events = [e["event"] for e in op.events()]
        assert events.count("grant.success") == 1 and "grant.error" not in events, events
    finally:
        _stop(proc)


# =============================================================================== SAML

def test_saml_logout_received_by_a_ends_the_session_on_b(envoys, etcd, tmp_path_factory,
                                                        recorder):
    """The real pysaml2 IdP (tests/e2e/idp/saml), single logout by HTTP-POST. Both replicas
    serve one public origin (A's `base_url`: one SP, as behind a load balancer). The IdP's
    signed LogoutRequest reaches A; the session ends on B at its next request."""
    from test_saml import logged_in_session, start_idp
    port, app, sp_key, sp_cert, idp = start_idp(tmp_path_factory, "fleet-saml",
                                                methods=["saml"], slo_binding="post")
    try:
        keys = [harness.new_session_key()]
        cfg = harness.base_config(app, keys=keys)
        cfg["methods"]["saml"] = {
            "type": "saml2", "idp_metadata_xml": idp.metadata,
            "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            "sp_private_key": sp_key.decode(), "sp_certificate": sp_cert.decode()}
        cfg["store"] = {"type": "etcd", "url": etcd.url, "prefix": "e2e-saml/"}
        clusters = [("127.0.0.1", idp.port), ("127.0.0.1", etcd.port)]
        a = envoys.start(cfg, name="fleet-saml-a", port=port, clusters=clusters)
        b = envoys.start(cfg, name="fleet-saml-b", clusters=clusters)
        session, _ = logged_in_session(a, idp, "/everywhere")
        on_b = harness.Client(b.port)
        on_b.jar = dict(session)
        assert on_b.get("/everywhere", headers=API).status == 200
        # The IdP's "log out everywhere": its signed LogoutRequest, posted through a browser
        # to A's single-logout endpoint.
        sp = f"{app}/sso/saml/saml/metadata"
        other = requests.Session()
        at_idp = other.get(f"{idp.base}/logout-everywhere", params={"user": "jdoe", "sp": sp},
                           headers=NAV)
        form = harness.parse_forms(at_idp.text)[0]
        assert form["action"] == f"{app}/sso/saml/saml/slo", form
        answered = other.post(form["action"], data=form["fields"], headers=NAV,
                              allow_redirects=False)
        assert answered.status_code == 200, answered.text[:300]
        assert a.stats("sso_slo.saml").get("wasmcustom.sso_slo.saml", 0) == 1
        recorder.clear()
        assert_nobody_let_in(on_b.get("/everywhere", headers=API), recorder, b,
                             statuses=(401,))
        assert b.stats("sso_fleet.logged_out").get("wasmcustom.sso_fleet.logged_out", 0) == 1
        # The request's ID is single-use across the fleet too: the same post on B is refused.
        replay = harness.Client(b.port).post_form("/sso/saml/saml/slo", form["fields"])
        assert_nobody_let_in(replay, recorder, b, statuses=(401,))
        assert b.stats("sso_fleet.replay").get("wasmcustom.sso_fleet.replay", 0) == 1
    finally:
        idp.stop()
