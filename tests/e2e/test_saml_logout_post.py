"""SAML single logout by the HTTP-POST binding (issue 17 item 7), both ways, through the real
Envoy (or the Node worker) against the real pysaml2 IdP (tests/e2e/idp/saml/server.py) whose
metadata offers single logout by HTTP-POST only (`--slo-binding post`):

- SP-initiated: `/sso/logout` answers with the filter's auto-submitting form carrying a
  LogoutRequest signed inside the XML; pysaml2 and the xmlsec1 binary verify it with the SP
  certificate, the IdP posts a signed LogoutResponse back, and the filter checks it (signature,
  InResponseTo of its own request, once) before going on to the return URL. Headless Chromium
  runs it too, under the filter's CSP (its one script allowed by hash).
- IdP-initiated: the IdP's LogoutRequest, signed inside the XML, posted by its form to the
  filter's SLO endpoint, ends the session on every worker; the filter answers with a signed
  LogoutResponse by its own form, which pysaml2 and xmlsec1 verify.
- The bad twins (unsigned, signed by another key, tampered, answering another request,
  replayed) are refused with nobody let in (security.md §0.2).
"""

from __future__ import annotations

import base64
import urllib.parse

import pytest
import requests
from saml2.samlp import LogoutRequest

import harness
from harness import NAV, assert_nobody_let_in, identity_headers_of
from test_saml import browser_login, generate, logged_in_session, scripted_login, start_idp

METHOD = "saml"


@pytest.fixture(scope="module")
def slo_post(envoys, tmp_path_factory):
    port, app, sp_key, sp_cert, idp = start_idp(tmp_path_factory, "saml-slo-post",
                                                methods=[METHOD], slo_binding="post")
    assert "HTTP-POST\" Location=\"" + idp.base + "/slo\"" in idp.metadata.replace("'", '"')
    config = harness.base_config(app)
    # No single_logout_binding: the IdP's metadata offers HTTP-POST only, so it is used.
    config["methods"][METHOD] = {
        "type": "saml2", "idp_metadata_xml": idp.metadata,
        "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        "sp_private_key": sp_key.decode(), "sp_certificate": sp_cert.decode(),
        "mapping": {"name": "displayName", "email": "mail", "groups": "eduPersonAffiliation"}}
    envoy = envoys.start(config, name="saml-slo-post", port=port,
                         clusters=[("127.0.0.1", idp.port)])
    yield envoy, idp
    idp.stop()


def filter_page(resp) -> dict:
    """The filter's auto-submitting form: its CSP allows its one script by hash only."""
    csp = resp.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "script-src 'sha256-" in csp, csp
    forms = harness.parse_forms(resp.text)
    assert len(forms) == 1, resp.text[:500]
    return forms[0]


def sp_entity(envoy) -> str:
    return f"{envoy.base_url}/sso/saml/{METHOD}/metadata"


def sls(envoy) -> str:
    return f"{envoy.base_url}/sso/saml/{METHOD}/slo"


def idp_server(idp, envoy, tmp_path, key=None, cert=None):
    """pysaml2 with the running IdP's key (or another), for messages the IdP itself would not
    send."""
    work = tmp_path / f"srv-{harness.free_port()}"
    work.mkdir()
    return generate.server(work, key or (idp.workdir / "idp.key").read_bytes(),
                           cert or (idp.workdir / "idp.crt").read_bytes(),
                           [(sp_entity(envoy), f"{envoy.base_url}/sso/saml/{METHOD}/acs")],
                           idp=idp.entity_id, base=idp.base,
                           slo_binding=generate.BINDING_HTTP_POST)


def test_sp_initiated_logout_by_post(slo_post, recorder, tmp_path):
    envoy, idp = slo_post
    browser = scripted_login(envoy, idp, path="/slo-post")
    page = browser.get(f"{envoy.base_url}/sso/logout?rd=%2Fbye", headers=NAV,
                       allow_redirects=False)
    assert page.status_code == 200, page.text[:300]
    assert "sso_session" not in browser.cookies.get_dict()
    form = filter_page(page)
    assert form["action"] == f"{idp.base}/slo", form
    at_idp = browser.post(form["action"], data=form["fields"])
    assert at_idp.status_code == 200, at_idp.text[:300]
    req = [e for e in idp.received() if "logout_request" in e][-1]
    # pysaml2 parsed it and xmlsec1 verified the enveloped signature with the SP certificate.
    assert req["binding"] == "post" and req["signature"] is True, req
    assert req["name_id"] == "jdoe@example.org" and req["session_index"], req
    assert req["issuer"] == sp_entity(envoy) and req["destination"] == f"{idp.base}/slo", req
    answer = harness.parse_forms(at_idp.text)[0]
    assert answer["action"] == sls(envoy) and "SAMLResponse" in answer["fields"], answer
    recorder.clear()
    back = browser.post(answer["action"], data=answer["fields"], headers=NAV,
                        allow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == "/bye", \
        (back.status_code, back.text[:300])
    assert recorder.requests() == []
    # The IdP session is gone too: signing in again shows the IdP's form.
    again = browser.get(f"{envoy.base_url}/x?activeAuth={METHOD}", headers=NAV)
    assert again.url.startswith(f"{idp.base}/sso/redirect") and "password" in again.text
    # The IdP's answer again (a replay, the flow cookie put back or not): refused.
    for cookies in (dict(browser.cookies.get_dict()), {}):
        client = harness.Client(envoy.port)
        client.jar = cookies
        resp = client.post_form(urllib.parse.urlsplit(answer["action"]).path, answer["fields"])
        assert_nobody_let_in(resp, recorder, envoy, statuses=(401,))


def test_bad_logout_responses_are_refused(slo_post, recorder, tmp_path):
    """The IdP key signs a LogoutResponse to another request; another key signs one to ours;
    one has no signature: each is refused on this browser's live logout flow."""
    envoy, idp = slo_post
    evil_key, evil_cert = generate.keypair("idp.e2e")
    for what in ("other_request", "attacker", "unsigned"):
        browser = scripted_login(envoy, idp, path="/slo-bad")
        page = browser.get(f"{envoy.base_url}/sso/logout", headers=NAV, allow_redirects=False)
        form = filter_page(page)
        xml = base64.b64decode(form["fields"]["SAMLRequest"]).decode()
        ours = xml.split(' ID="', 1)[1].split('"', 1)[0]
        srv = (idp_server(idp, envoy, tmp_path, evil_key, evil_cert) if what == "attacker"
               else idp_server(idp, envoy, tmp_path))
        answered = LogoutRequest(id="_another" if what == "other_request" else ours,
                                 issuer=generate.saml.Issuer(text=sp_entity(envoy)),
                                 version="2.0")
        resp = srv.create_logout_response(answered, [generate.BINDING_HTTP_POST],
                                          sign=what != "unsigned",
                                          sign_alg=generate.RSA_SHA256,
                                          digest_alg=generate.SHA256)
        client = harness.Client(envoy.port)
        client.jar = dict(browser.cookies.get_dict())
        recorder.clear()
        refused = client.post_form(urllib.parse.urlsplit(sls(envoy)).path,
                                   {"SAMLResponse": base64.b64encode(str(resp).encode()).decode(),
                                    "RelayState": form["fields"]["RelayState"]})
        assert_nobody_let_in(refused, recorder, envoy, statuses=(401,))
        assert "sso_session" not in client.jar, what


def test_idp_initiated_logout_by_post(slo_post, recorder, tmp_path):
    envoy, idp = slo_post
    session, ok = logged_in_session(envoy, idp, "/everywhere", METHOD)
    # Another window at the IdP: "log out everywhere" posts a signed LogoutRequest through
    # the browser (pysaml2's auto-submitting form) to the filter.
    other = requests.Session()
    at_idp = other.get(f"{idp.base}/logout-everywhere",
                       params={"user": "jdoe", "sp": sp_entity(envoy)}, headers=NAV)
    request_form = harness.parse_forms(at_idp.text)[0]
    assert request_form["action"] == sls(envoy), request_form
    signed = base64.b64decode(request_form["fields"]["SAMLRequest"])
    index = signed.split(b"SessionIndex>", 1)[1].split(b"<", 1)[0]
    # Its bad twins first: tampered (another session index), unsigned, signed by another key.
    evil_key, evil_cert = generate.keypair("idp.e2e")
    name_id = generate.NameID(format=generate.NAMEID_FORMAT_EMAILADDRESS, text="jdoe@example.org")
    twins = {"tampered": signed.replace(index, b"id-another-index")}
    for what, srv, sign in [("unsigned", idp_server(idp, envoy, tmp_path), False),
                            ("attacker", idp_server(idp, envoy, tmp_path, evil_key, evil_cert),
                             True)]:
        _, req = srv.create_logout_request(sls(envoy), sp_entity(envoy), name_id=name_id,
                                           session_indexes=[index.decode()], sign=sign,
                                           sign_alg=generate.RSA_SHA256,
                                           digest_alg=generate.SHA256)
        twins[what] = str(req).encode()
    for what, xml in twins.items():
        recorder.clear()
        resp = harness.Client(envoy.port).post_form(
            urllib.parse.urlsplit(sls(envoy)).path,
            {"SAMLRequest": base64.b64encode(xml).decode(), "RelayState": "idp-initiated"})
        assert_nobody_let_in(resp, recorder, envoy, statuses=(401,))
        assert ok.get("/everywhere", headers=harness.API).status == 200, what
    # The genuine request: the filter answers with its own form, a signed LogoutResponse.
    page = other.post(request_form["action"], data=request_form["fields"], headers=NAV,
                      allow_redirects=False)
    assert page.status_code == 200, page.text[:300]
    answer = filter_page(page)
    assert answer["action"] == f"{idp.base}/slo", answer
    assert answer["fields"]["RelayState"] == "idp-initiated"
    done = other.post(answer["action"], data=answer["fields"])
    assert done.status_code == 200 and "signed-out" in done.text, done.text[:300]
    logged = [e for e in idp.received() if e.get("logout_response")][-1]
    assert logged["signature"] is True and logged["parsed"] is True, logged
    assert logged["status"].endswith(":Success") and logged["issuer"] == sp_entity(envoy)
    assert logged["in_response_to"] == signed.split(b' ID="', 1)[1].split(b'"', 1)[0].decode()
    # The first browser's cookie no longer opens a session, on every worker.
    recorder.clear()
    for _ in range(4):
        c = harness.Client(envoy.port)
        c.jar = dict(session)
        assert_nobody_let_in(c.get("/everywhere", headers=harness.API), recorder, envoy,
                             statuses=(401,))
    # The same request again (a replay): refused.
    replay = harness.Client(envoy.port).post_form(urllib.parse.urlsplit(sls(envoy)).path,
                                                  request_form["fields"])
    assert_nobody_let_in(replay, recorder, envoy, statuses=(401,))


@pytest.mark.browser
def test_browser_logs_out_by_post(slo_post, recorder, tmp_path):
    """Headless Chromium: log in, then `/sso/logout?rd=/bye`: the filter's form (its script
    allowed by the CSP's hash, nothing else) posts to the IdP, whose form posts the signed
    LogoutResponse back; the browser ends on the return URL, a public page the upstream serves
    with no identity."""
    envoy, idp = slo_post
    out = browser_login(envoy, idp, METHOD, "/private/report?year=2026", tmp_path,
                        logout="/sso/logout?rd=%2Fpublic%2Fbye", logout_end="/public/bye")
    assert not out["csp"], out
    assert out["identity"]["login"] == "jdoe@example.org", out
    assert out["logout_url"] == f"{envoy.base_url}/public/bye", out
    hops = [s["url"] for s in out["steps"]]
    assert f"{idp.base}/slo" in hops and sls(envoy) in hops, hops
    req = [e for e in idp.received() if "logout_request" in e][-1]
    assert req["binding"] == "post" and req["signature"] is True, req
    hits = [e for e in recorder.requests() if e["path"].startswith("/public/bye")]
    assert hits and not identity_headers_of(hits[-1]), hits
