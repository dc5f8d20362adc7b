"""Any number of logins at once (issue 17 item 1): a page of the application with twelve
iframes, four per method (OpenID Connect against the real oidc-provider, CAS against the real
django-mama-cas server, SAML against the real pysaml2 IdP), all logging in at the same moment in
Debian's chromium. The flows travel sealed in their states; the browser holds one binding
cookie; first logins that raced for it start again by themselves.

The application and the IdPs are all on 127.0.0.1 (one site), as an IdP must be for its own
session cookie to reach it inside an iframe in today's browsers (docs/behaviour.md)."""

from __future__ import annotations

import json

import pytest

import harness
from test_cas import CasServer
from test_oidc import OP_DIR, OpenIdProvider, _run_node, _spawn, _stop, oidc_method
from test_saml import SamlIdp, generate

FRAMES_PER_METHOD = 4
METHODS = ("oidc", "cas", "saml")


@pytest.fixture(scope="module")
def three_idps(envoys, tmp_path_factory):
    work = tmp_path_factory.mktemp("iframes")
    port = harness.free_port()
    app = f"http://127.0.0.1:{port}"
    op_port = harness.free_port()
    proc, info, log = _spawn(
        ["node", str(OP_DIR / "server.mjs"), "--port", str(op_port), "--app", app],
        OP_DIR, "oidc-provider", work / "op")
    op = OpenIdProvider(proc, info, log)
    cas = CasServer(work)
    _, sp_cert = generate.keypair("sp.iframes")
    (work / "sp.crt").write_bytes(sp_cert)
    saml = SamlIdp(work, app, work / "sp.crt", sign="assertion")
    try:
        config = harness.base_config(app)
        config["methods"]["oidc"] = oidc_method(op.issuer)
        config["methods"]["cas"] = {"type": "cas", "server_url": cas.url, "protocol": "3.0",
                                    "mapping": {"login": "user", "name": "displayName"}}
        config["methods"]["saml"] = {
            "type": "saml2", "idp_metadata_xml": saml.metadata,
            "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
            "mapping": {"name": "displayName", "email": "mail"}}
        envoy = envoys.start(config, name="iframes", port=port,
                             clusters=[("127.0.0.1", op_port), ("127.0.0.1", cas.port),
                                       ("127.0.0.1", saml.port)])
        yield envoy, op, cas, saml
    finally:
        saml.stop()
        cas.stop()
        _stop(proc)


@pytest.mark.browser
def test_twelve_iframes_log_in_at_once(three_idps, recorder, tmp_path):
    envoy, op, cas, saml = three_idps
    app = envoy.base_url
    warm = [
        {"url": f"{app}/warm/oidc?activeAuth=oidc", "idp": op.issuer,
         "username": "alice", "password": "alice-pw"},
        {"url": f"{app}/warm/cas?activeAuth=cas", "idp": cas.url.rsplit("/cas", 1)[0],
         "username": "jdoe", "password": "jdoe-password"},
        {"url": f"{app}/warm/saml?activeAuth=saml", "idp": saml.base,
         "username": "jdoe", "password": "jdoe-password"},
    ]
    frames = [f"{app}/frame/{m}/{i}?activeAuth={m}"
              for m in METHODS for i in range(FRAMES_PER_METHOD)]
    shot = tmp_path / "twelve-iframes.png"
    embed = f"{app}/public/embed?frames=" + ",".join(f"{m}:{FRAMES_PER_METHOD}" for m in METHODS)
    out = _run_node("iframes.mjs", {"app": app, "warm": warm, "embed": embed, "frames": frames,
                                    "screenshot": str(shot)}, timeout=240)
    (tmp_path / "out.json").write_text(json.dumps(out, indent=1))  # for a failure's post-mortem
    assert out.get("ok"), f"browser run failed: {out.get('error')}\n{out}"
    # (mama-cas's login page links Bootstrap from a CDN; the browser may not leave the machine.)
    assert not [u for u in out["blocked"] if "bootstrapcdn.com" not in u], out["blocked"]
    assert [w["final_url"] for w in out["warm"]] == [w["url"] for w in warm], out["warm"]
    assert out["app_cookies_dropped"] >= 2, out  # the session and the binding cookie
    nav = out["navigations"]
    for f in out["frames"]:
        assert f["final_url"] == f["target"] and not f.get("error"), (f, nav)
        assert f["identity"] and f["identity"].get("login"), f
    # Every iframe's login went to its IdP: twelve flows, no cookie per flow.
    to_idp = [n for n in nav if n["url"].startswith(f"{app}/sso/login")
              and n["status"] in (302, 303)]
    assert len(to_idp) >= 12, nav
    names = [c["name"] for c in out["cookies"]]
    assert not [n for n in names if n.startswith("sso_session_flow_")], names
    assert names.count("sso_session_bind") == 1 and "sso_session" in names, names
    # Restarts (a first login sealed for a binding value the browser replaced) are 303s to
    # the login with retry=1 or 2, and only those.
    restarts = [n for n in nav if n["status"] == 303 and "retry=" in (n["location"] or "")]
    assert len(restarts) <= 11 * 2, restarts
    print(f"twelve iframes: {len(to_idp)} redirects to an IdP, {len(restarts)} restarts")
    # Every iframe's page reached the upstream with an identity.
    seen = {e["path"] for e in recorder.requests()
            if harness.decode_identity_of(e).get("login")}
    assert {t.removeprefix(app) for t in frames} <= seen, seen
    assert shot.exists()
