"""SAML 2.0 through the real Envoy against a real IdP: pysaml2 (tests/e2e/idp/saml/server.py),
signing with xmlsec1. Headless Chromium logs in with the HTTP-Redirect and the HTTP-POST
bindings (the IdP's auto-submitting form included), and with an encrypted assertion; a scripted browser logs in with a signed
AuthnRequest; and every wrapping and tampering variant of a Response the IdP's key signed for
the filter's own pending request is posted to the ACS through Envoy and refused with nothing
reaching the upstream.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
import urllib.parse
import zlib

import pytest
import requests

import harness
from harness import NAV, assert_nobody_let_in, decode_identity_of

IDP_DIR = harness.REPO / "tests" / "e2e" / "idp" / "saml"
BROWSER_DIR = harness.REPO / "tests" / "e2e" / "browser"
sys.path.insert(0, str(harness.REPO / "tests" / "fixtures" / "saml2"))
import generate  # noqa: E402  (pysaml2 IdP config, responses and attack constructions)

METHODS = ["saml", "saml-signed", "saml-post", "saml-enc", "saml-post-signed", "saml-attr",
           "saml-friendly", "saml-short"]


class SamlIdp:
    def __init__(self, workdir, app: str, sp_cert_path, sign: str, methods=METHODS,
                 slo_binding: str = "redirect"):
        self.port = harness.free_port()
        self.workdir = workdir
        self.log = open(workdir / "idp.log", "wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(IDP_DIR / "server.py"), "--port", str(self.port),
             "--workdir", str(workdir), "--app", app, "--methods", ",".join(methods),
             "--sp-cert", str(sp_cert_path), "--sign", sign, "--encrypt-methods", "saml-enc",
             "--slo-binding", slo_binding],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log,
            start_new_session=True, preexec_fn=harness._die_with_parent)
        line = self.proc.stdout.readline().decode()
        if not line.startswith("{"):
            raise RuntimeError("SAML IdP did not start:\n"
                               + (workdir / "idp.log").read_text(errors="replace")[-3000:])
        self.entity_id = json.loads(line)["entity_id"]
        self.metadata = (workdir / "idp-metadata.xml").read_text()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self) -> list[dict]:
        return requests.get(f"{self.base}/log", timeout=5).json()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def start_idp(tmp_path_factory, name: str, **kw):
    """A fresh SP key pair and the pysaml2 IdP for the filter on a free port; returns (port,
    app origin, SP key, SP certificate, IdP)."""
    work = tmp_path_factory.mktemp(name)
    port = harness.free_port()
    app = f"http://127.0.0.1:{port}"
    sp_key, sp_cert = generate.keypair("sp.e2e")
    (work / "sp.crt").write_bytes(sp_cert)
    idp = SamlIdp(work, app, work / "sp.crt", sign="assertion", **kw)
    return port, app, sp_key, sp_cert, idp


@pytest.fixture(scope="module")
def saml(envoys, tmp_path_factory):
    port, app, sp_key, sp_cert, idp = start_idp(tmp_path_factory, "saml")
    config = harness.base_config(app)
    common = {"type": "saml2", "idp_metadata_xml": idp.metadata,
              "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
              "mapping": {"name": "displayName", "email": "mail",
                          "groups": "eduPersonAffiliation"}}
    # This one reads the IdP metadata from its URL through a callout (cached in shared data).
    config["methods"]["saml"] = dict({k: v for k, v in common.items() if k != "idp_metadata_xml"},
                                     idp_metadata_url=f"{idp.base}/metadata")
    config["methods"]["saml-signed"] = dict(common, sign_authn_request=True,
                                            sp_private_key=sp_key.decode(),
                                            sp_certificate=sp_cert.decode(), force_authn=True)
    config["methods"]["saml-post"] = dict(common, binding="post")
    config["methods"]["saml-post-signed"] = dict(common, binding="post", sign_authn_request=True,
                                                 sp_private_key=sp_key.decode())
    config["methods"]["saml-enc"] = dict(common, sp_private_key=sp_key.decode(),
                                         sp_certificate=sp_cert.decode(), binding="post")
    # Mobi's principals: the login from an attribute by Name (pysaml2 sends the OID form) or
    # by FriendlyName, with a TRANSIENT NameID policy (allowed with these, not with SUBJECT).
    config["methods"]["saml-attr"] = dict(common, name_id_format="TRANSIENT",
                                          principal="ATTRIBUTE",
                                          principal_attribute="urn:oid:0.9.2342.19200300.100.1.1")
    config["methods"]["saml-friendly"] = dict(common, name_id_format="PERSISTENT",
                                              principal="FRIENDLY_ATTRIBUTE",
                                              principal_attribute="uid")
    # RelayState within the bindings' 80 bytes: the flow in a cookie of its own.
    config["methods"]["saml-short"] = dict(common, short_relay_state=True)
    envoy = envoys.start(config, name="saml", port=port, clusters=[("127.0.0.1", idp.port)])
    yield envoy, idp
    idp.stop()


def browser_login(envoy, idp, method: str, path: str, tmp_path, **more) -> dict:
    """saml-login.mjs in Chromium (`more`: its other arguments, e.g. a logout to follow)."""
    node = shutil.which("node")
    assert node, "node is missing (scripts/setup.sh)"
    assert (BROWSER_DIR / "node_modules" / "playwright-core").exists(), \
        "playwright-core missing: scripts/setup.sh runs npm ci in tests/e2e/browser"
    args = {"url": f"{envoy.base_url}{path}&activeAuth={method}", "idp": idp.base,
            "username": "jdoe", "password": "jdoe-password", "screenshots": str(tmp_path),
            **more}
    proc = subprocess.run([node, str(BROWSER_DIR / "saml-login.mjs"), json.dumps(args)],
                          cwd=BROWSER_DIR, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    assert lines, f"no result from saml-login.mjs (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    out = json.loads(lines[-1])
    assert out.get("ok"), f"browser run failed: {out.get('error')}\nsteps: {out.get('steps')}"
    assert not out.get("blocked"), out["blocked"]
    assert out["final_url"] == args["url"], out
    return out


@pytest.mark.browser
@pytest.mark.parametrize("method,binding", [("saml", "redirect"), ("saml-post", "post"),
                                            ("saml-enc", "post")])
def test_browser_login(saml, recorder, tmp_path, method, binding):
    envoy, idp = saml
    out = browser_login(envoy, idp, method, "/private/report?year=2026", tmp_path)
    assert out["idp_login_url"].startswith(idp.base), out
    ident = out["identity"]
    assert ident["login"] == "jdoe@example.org" and ident["name"] == "张三", out
    assert ident["method"] == method
    req = idp.received()[-1]
    assert req["binding"] == binding and req["signature"] is None, req
    assert req["encrypted"] is (method == "saml-enc"), req
    assert req["acs"] == f"{envoy.base_url}/sso/saml/{method}/acs"
    assert req["name_id_format"].endswith("emailAddress") and req["allow_create"] == "true"
    hits = [e for e in recorder.requests() if e["path"].startswith("/private/report")]
    assert hits and decode_identity_of(hits[-1])["groups"] == ["staff", "faculty"]
    assert (tmp_path / "2-after-login.png").exists()


def test_signed_request_scripted_login(saml, recorder):
    envoy, idp = saml
    browser = requests.Session()
    form_page = browser.get(f"{envoy.base_url}/signed?activeAuth=saml-signed", headers=NAV)
    assert form_page.url.startswith(f"{idp.base}/sso/redirect?"), form_page.url
    assert "Signature=" in form_page.url and "SigAlg=" in form_page.url
    req = idp.received()[-1]
    assert req["signature"] is True and req["force_authn"] is True, req
    form = harness.parse_forms(form_page.text)[0]
    posted = browser.post(f"{idp.base}/login",
                          data=dict(form["fields"], username="jdoe", password="jdoe-password"))
    auto = harness.parse_forms(posted.text)[0]
    assert auto["action"] == f"{envoy.base_url}/sso/saml/saml-signed/acs"
    landed = browser.post(auto["action"], data=auto["fields"], headers=NAV)
    assert landed.status_code == 200 and landed.url == f"{envoy.base_url}/signed?activeAuth=saml-signed"
    assert decode_identity_of(recorder.requests()[-1])["login"] == "jdoe@example.org"
    # The same Response again (another tab, a replay): refused, nothing upstream.
    recorder.clear()
    again = requests.Session()
    start = again.get(f"{envoy.base_url}/sso/login?activeAuth=saml-signed&rd=%2F",
                      allow_redirects=False)
    relay = urllib.parse.parse_qs(urllib.parse.urlsplit(start.headers["location"]).query)[
        "RelayState"][0]
    client = harness.Client(envoy.port)
    client.jar = dict(again.cookies.get_dict())
    resp = client.post_form(urllib.parse.urlsplit(auto["action"]).path,
                            dict(auto["fields"], RelayState=relay))
    assert_nobody_let_in(resp, recorder, envoy, statuses=(401,))


def pending_request(envoy, method="saml"):
    """Starts a login in a fresh browser; returns (client with its flow cookie, request ID,
    RelayState)."""
    client = harness.Client(envoy.port)
    start = client.get(f"/sso/login?activeAuth={method}&rd=%2Fprivate")
    assert start.status == 302, start
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(start.location).query)
    xml = zlib.decompress(base64.b64decode(q["SAMLRequest"][0]), -15).decode()
    request_id = xml.split(' ID="', 1)[1].split('"', 1)[0]
    return client, request_id, q["RelayState"][0]


def idp_responses(idp, envoy, request_id, tmp_path, method="saml"):
    """Responses the IdP's own key signs for this pending request (pysaml2, as the running IdP
    would make them): signed assertion, signed response, and one for a look-alike user."""
    sp = f"{envoy.base_url}/sso/saml/{method}/metadata"
    acs = f"{envoy.base_url}/sso/saml/{method}/acs"
    work = tmp_path / f"srv-{request_id[:8]}"
    work.mkdir()
    srv = generate.server(work, (idp.workdir / "idp.key").read_bytes(),
                          (idp.workdir / "idp.crt").read_bytes(), [(sp, acs)],
                          idp=idp.entity_id, base=idp.base)
    kw = dict(in_response_to=request_id, acs=acs, sp=sp, authority=idp.entity_id)
    sa = generate.respond(srv, sign_response=False, sign_assertion=True, **kw)
    sr = generate.respond(srv, sign_response=True, sign_assertion=False, **kw)
    cs = generate.respond(srv, login="jdoe@example.org.evil.example", sign_response=False,
                          sign_assertion=True, **kw)
    return sa, sr, cs, acs


ATTACKS = ["xsw1", "xsw2", "xsw3", "xsw4", "xsw5", "xsw6", "xsw7", "xsw8", "comment_in_nameid",
           "second_unsigned_assertion", "signature_over_other_id", "doctype", "tampered_nameid",
           "signature_stripped"]


def test_every_wrapping_and_tampering_variant_is_refused(saml, recorder, tmp_path):
    envoy, idp = saml
    before = envoy.stats("sso_login_failure")
    for name in ATTACKS:
        client, request_id, relay = pending_request(envoy)
        sa, sr, cs, acs = idp_responses(idp, envoy, request_id, tmp_path)
        evil = generate.make_attacks(sa, sr, cs)[name]
        recorder.clear()
        resp = client.post_form(urllib.parse.urlsplit(acs).path,
                                {"SAMLResponse": base64.b64encode(evil).decode(),
                                 "RelayState": relay})
        assert_nobody_let_in(resp, recorder, envoy, statuses=(401,))
        assert "sso_session" not in client.jar, name
        # The flow is used up: even the genuine Response cannot follow on it.
        again = client.post_form(urllib.parse.urlsplit(acs).path,
                                 {"SAMLResponse": base64.b64encode(sa).decode(),
                                  "RelayState": relay})
        assert_nobody_let_in(again, recorder, envoy, statuses=(401,))
    after = envoy.stats("sso_login_failure")
    rejected = {k: v - before.get(k, 0) for k, v in after.items()
                if k.endswith("saml.rejected") and v - before.get(k, 0) > 0}
    assert sum(rejected.values()) >= len(ATTACKS), rejected
    # Positive control: the genuine Response for a pending request logs in.
    client, request_id, relay = pending_request(envoy)
    sa, _, _, acs = idp_responses(idp, envoy, request_id, tmp_path)
    ok = client.post_form(urllib.parse.urlsplit(acs).path,
                          {"SAMLResponse": base64.b64encode(sa).decode(), "RelayState": relay})
    assert ok.status == 303 and ok.location == "/private", ok
    assert "sso_session" in client.jar
    assert not envoy.wasm_crashes()


def test_unsolicited_and_foreign_responses_are_refused(saml, recorder, tmp_path):
    envoy, idp = saml
    client, request_id, relay = pending_request(envoy)
    sa, _, _, acs = idp_responses(idp, envoy, request_id, tmp_path)
    path = urllib.parse.urlsplit(acs).path
    body = base64.b64encode(sa).decode()
    # IdP-initiated (no RelayState), another browser (no flow cookie), wrong ACS method.
    for c, fields, p in [(client, {"SAMLResponse": body}, path),
                         (harness.Client(envoy.port), {"SAMLResponse": body, "RelayState": relay},
                          path),
                         (client, {"SAMLResponse": body, "RelayState": relay},
                          "/sso/saml/saml-post/acs")]:
        recorder.clear()
        assert_nobody_let_in(c.post_form(p, fields), recorder, envoy, statuses=(401,))


def test_saml_preset_validates_and_loads(envoys, recorder):
    """envoy/plugin/saml2.json: accepted by `sso-filter validate`, `clusters` names the
    metadata host, Envoy loads it; the SP metadata is served without any callout."""
    path = harness.REPO / "envoy" / "plugin" / "saml2.json"
    proc = subprocess.run([str(harness.CLI), "validate", str(path)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0 and "saml (saml2)" in proc.stdout, proc
    proc = subprocess.run([str(harness.CLI), "clusters", str(path)], capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "sso_idp_example_org_443" in proc.stdout, proc.stdout
    inst = envoys.get(json.loads(path.read_text()), name="saml-preset")
    md = inst.client().get("/sso/saml/saml/metadata")
    assert md.status == 200 and b'WantAssertionsSigned="true"' in md.body, md
    assert inst.client().get("/private/x").status == 302
    assert recorder.requests() == []


def scripted_login(envoy, idp, method="saml", path="/slo-test") -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{envoy.base_url}{path}?activeAuth={method}", headers=NAV)
    assert page.url.startswith(idp.base), page.url
    form = harness.parse_forms(page.text)[0]
    posted = browser.post(f"{idp.base}/login",
                          data=dict(form["fields"], username="jdoe", password="jdoe-password"))
    auto = harness.parse_forms(posted.text)[0]
    landed = browser.post(auto["action"], data=auto["fields"], headers=NAV)
    assert landed.status_code == 200 and landed.url.startswith(f"{envoy.base_url}{path}")
    return browser


@pytest.mark.parametrize("method,policy", [
    ("saml-attr", "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"),
    ("saml-friendly", "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")])
def test_attribute_principals_and_name_id_policies(saml, recorder, method, policy):
    """Mobi's ATTRIBUTE (by Name) and FRIENDLY_ATTRIBUTE (by FriendlyName) principals against
    the real pysaml2 IdP, with the NameID policy given by its short name (issue 17 item 7)."""
    envoy, idp = saml
    scripted_login(envoy, idp, method=method, path=f"/{method}")
    req = [e for e in idp.received() if e.get("issuer", "").endswith(f"/{method}/metadata")][-1]
    assert req["name_id_format"] == policy, req
    ident = decode_identity_of([e for e in recorder.requests()
                                if e["path"].startswith(f"/{method}")][-1])
    assert ident["login"] == "jdoe" and ident["method"] == method, ident


def test_short_relay_state_logs_in(saml, recorder):
    """`short_relay_state`: RelayState is a 43-character id (the bindings allow 80 bytes) and
    the flow travels in its own cookie; the real IdP's answer logs the user in."""
    envoy, idp = saml
    browser = scripted_login(envoy, idp, method="saml-short", path="/saml-short")
    to_idp = [r for r in browser.get(f"{envoy.base_url}/saml-short-again?activeAuth=saml-short",
                                     headers=NAV).history if r.status_code == 302]
    assert not to_idp, "a session: no second trip to the IdP"
    fresh = requests.Session()
    first = fresh.get(f"{envoy.base_url}/x?activeAuth=saml-short", headers=NAV)
    hops = [r.headers.get("location", "") for r in first.history]
    relay = [urllib.parse.parse_qs(urllib.parse.urlsplit(h).query).get("RelayState", [""])[0]
             for h in hops if "SAMLRequest=" in h]
    assert relay and len(relay[0]) == 43, hops
    assert [c for c in fresh.cookies if c.name.startswith("sso_session_flow_")], fresh.cookies
    ident = decode_identity_of([e for e in recorder.requests()
                                if e["path"].startswith("/saml-short")][-1])
    assert ident["login"] == "jdoe@example.org" and ident["method"] == "saml-short", ident


def test_reload_user_is_passive_at_the_idp(saml, recorder):
    """The seeds' reload with SAML against the real pysaml2 IdP (issue 17 item 2):
    `reloadUser=true` sends an IsPassive AuthnRequest; with the IdP session the assertion comes
    back at once (no form) and replaces the session; without it the IdP answers NoPassive and
    the local session ends."""
    envoy, idp = saml
    browser = scripted_login(envoy, idp, path="/reload")
    first = {k: v for k, v in browser.cookies.get_dict().items() if k == "sso_session"}
    again = browser.get(f"{envoy.base_url}/reload?activeAuth=saml&reloadUser=true", headers=NAV)
    assert again.url.startswith(f"{idp.base}/sso/redirect"), again.url
    assert "password" not in again.text, "a passive request must not show the IdP's form"
    assert [e for e in idp.received() if e.get("is_passive")], idp.received()[-1]
    auto = harness.parse_forms(again.text)[0]
    landed = browser.post(auto["action"], data=auto["fields"], headers=NAV)
    assert landed.status_code == 200 and landed.url.startswith(f"{envoy.base_url}/reload"), \
        landed.url
    assert browser.cookies.get("sso_session") not in (None, first.get("sso_session"))
    # Without the IdP session: NoPassive, and the local session ends.
    for cookie in [c for c in browser.cookies if c.name == "idp_session"]:
        browser.cookies.clear(cookie.domain, cookie.path, cookie.name)
    recorder.clear()
    again = browser.get(f"{envoy.base_url}/reload?activeAuth=saml&reloadUser=true", headers=NAV)
    assert "password" not in again.text
    auto = harness.parse_forms(again.text)[0]
    refused = browser.post(auto["action"], data=auto["fields"], headers=NAV)
    assert refused.status_code == 401, (refused.status_code, refused.text[:300])
    assert "sso_session" not in browser.cookies.get_dict()
    assert not [e for e in recorder.requests() if e["path"].startswith("/reload")]


def test_logout_ends_the_idp_session_too(saml, recorder):
    envoy, idp = saml
    browser = scripted_login(envoy, idp)
    out = browser.get(f"{envoy.base_url}/sso/logout", headers=NAV)
    # filter -> IdP /slo (LogoutRequest) -> filter SLS (LogoutResponse) -> / (needs login)
    hops = [r.url for r in out.history]
    assert any(u.startswith(f"{idp.base}/slo?SAMLRequest=") for u in hops), hops
    assert any(u.startswith(f"{envoy.base_url}/sso/saml/saml/slo?SAMLResponse=") for u in hops), \
        hops
    req = [e for e in idp.received() if "logout_request" in e][-1]
    assert req["name_id"] == "jdoe@example.org" and req["session_index"], req
    assert req["issuer"] == f"{envoy.base_url}/sso/saml/saml/metadata"
    assert "sso_session" not in browser.cookies.get_dict()
    # The IdP session is gone as well: signing in again shows the IdP's form.
    again = browser.get(f"{envoy.base_url}/x?activeAuth=saml", headers=NAV)
    assert again.url.startswith(f"{idp.base}/sso/redirect") and "password" in again.text


def logged_in_session(envoy, idp, path: str, method: str = "saml") -> tuple[dict, object]:
    """A scripted login; returns its session cookies and a client holding them (checked to
    reach `path`)."""
    browser = scripted_login(envoy, idp, method=method, path=path)
    session = {k: v for k, v in browser.cookies.get_dict().items()
               if harness.SESSION_COOKIE_RE.match(k)}
    ok = harness.Client(envoy.port)
    ok.jar = dict(session)
    assert ok.get(path, headers=harness.API).status == 200
    return session, ok


def test_idp_initiated_logout_ends_the_session_everywhere(saml, recorder):
    envoy, idp = saml
    session, _ = logged_in_session(envoy, idp, "/everywhere")
    # Another window at the IdP: "log out everywhere" sends a signed LogoutRequest through the
    # browser to the filter, which answers the IdP with a LogoutResponse.
    other = requests.Session()
    sp = f"{envoy.base_url}/sso/saml/saml/metadata"
    done = other.get(f"{idp.base}/logout-everywhere",
                     params={"user": "jdoe", "sp": sp}, headers=NAV)
    assert done.status_code == 200 and "signed-out" in done.text, (done.url, done.text[:300])
    assert any(f"{envoy.base_url}/sso/saml/saml/slo?SAMLRequest=" in r.url
               for r in done.history), [r.url for r in done.history]
    # The first browser's cookie no longer opens a session, on every worker.
    recorder.clear()
    for _ in range(4):
        c = harness.Client(envoy.port)
        c.jar = dict(session)
        assert_nobody_let_in(c.get("/everywhere", headers=harness.API), recorder, envoy,
                             statuses=(401,))


def test_signed_post_request_verified_by_xmlsec1(saml, recorder):
    """HTTP-POST binding with a signed AuthnRequest: pysaml2 checks the enveloped signature
    against the SP certificate in its metadata, and the xmlsec1 binary checks it again (neither
    is the filter's code), before the IdP shows its form."""
    envoy, idp = saml
    browser = requests.Session()
    page = browser.get(f"{envoy.base_url}/sso/login?activeAuth=saml-post-signed&rd=%2Fps",
                       headers=NAV)
    form = harness.parse_forms(page.text)[0]
    assert form["action"] == f"{idp.base}/sso/redirect" or form["action"].startswith(idp.base)
    idp_page = browser.post(form["action"], data=form["fields"])
    assert "password" in idp_page.text, idp_page.text[:300]
    req = idp.received()[-1]
    assert req["binding"] == "post" and req["signature"] is True, req
    # A request changed after signing fails the IdP's check.
    xml = base64.b64decode(form["fields"]["SAMLRequest"])
    evil = xml.replace(b'AllowCreate="true"', b'AllowCreate="false"')
    refused = browser.post(form["action"], data=dict(form["fields"],
                                                     SAMLRequest=base64.b64encode(evil).decode()))
    assert refused.status_code == 403, refused.text[:300]
    assert idp.received()[-1]["signature"] is False
