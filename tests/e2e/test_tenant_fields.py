"""The seeds' tenant fields through the real Envoy (or the Node worker), issue 17 item 4:
`tenant_name` reaches the upstream (`x-sso-tenant-name`), and a user whose tenant code (from
the claims, compared exactly) equals the configured `mapping.platform_id` belongs to the
platform party: `x-sso-platform: true` and `"platform": true` in the signed assertion, which
PyJWT verifies here. Anyone else gets neither, and a client-sent copy of either header is
removed before anything reaches the upstream.
"""

from __future__ import annotations

import base64
import secrets

import jwt
import pytest

import harness
from harness import API, assert_nobody_let_in, decode_identity_of, jwt_url, mint_hs256, normalised

PLATFORM = "PLATFORM"
SECRET = secrets.token_bytes(32)
FORGED = [("x-sso-platform", "true"), ("X_SSO_PLATFORM", "true"),
          ("X-Sso-Tenant-Name", "forged-name"), ("x_sso_tenant_name", "forged-name")]


@pytest.fixture(scope="module")
def tenant_envoy(envoys):
    config = harness.base_config(None)
    config["mapping"] = {"tenant_code": "tenantCode", "tenant_name": "tenantName",
                         "platform_id": PLATFORM}
    config["assertion"] = {"alg": "HS256", "secret_base64": base64.b64encode(SECRET).decode(),
                           "audience": "app"}
    config["methods"]["jwt-param"] = harness.seed_jwt_method(
        mapping={"login": "loginName", "roles": "roles"})
    # A tenant scope whose code is the platform ID: choosing it in the URL stamps the tenant
    # and its name, and makes nobody a platform user.
    config["tenants"][PLATFORM] = {"name": "Platform by URL", "default_method": "jwt-param",
                                   "methods": {}, "mapping": {}}
    return envoys.get(config, name="tenant-fields")


def landed(envoy, recorder, claims: dict, before=None) -> tuple[dict, dict, harness.Client]:
    """Logs the token's user in, then one API call: (decoded identity, verified assertion,
    client)."""
    c = envoy.client()
    harness.jwt_login(c, mint_hs256(claims), before=before)
    recorder.clear()
    query = "".join(f"{k}={v}&" for k, v in (before or []))
    resp = c.get(f"/tenant-fields?{query}", headers=list(API.items()) + FORGED)
    assert resp.status == 200, resp
    entry = harness.only_request(recorder)
    names = [normalised(k) for k, _ in entry["headers"]]
    assert names.count("x-sso-platform") <= 1 and names.count("x-sso-tenant-name") <= 1, names
    assert "forged-name" not in str(entry["headers"]), entry
    ident = decode_identity_of(entry)
    claims = jwt.decode(ident["assertion"], SECRET, algorithms=["HS256"], audience="app")
    return ident, claims, c


def test_platform_user_and_tenant_name(tenant_envoy, recorder):
    ident, claims, c = landed(tenant_envoy, recorder, {"loginName": "pat", "tenantCode": PLATFORM,
                                                       "tenantName": "平台方"})
    assert ident["platform"] == "true" and ident["tenant"] == PLATFORM, ident
    assert ident["tenant_name"] == "平台方", ident
    assert claims["platform"] is True and claims["tenant_name"] == "平台方", claims
    info = c.get("/sso/userinfo", headers=API)
    assert info.status == 200 and info.json()["platform"] is True, info


def test_other_tenants_are_not_the_platform(tenant_envoy, recorder):
    for code in ("acme", "platform", "PLATFORM "):
        ident, claims, _ = landed(tenant_envoy, recorder,
                                  {"loginName": "nina", "tenantCode": code,
                                   "tenantName": "Acme Ltd"})
        assert "platform" not in ident and "platform" not in claims, (code, ident, claims)
        assert ident["tenant_name"] == "Acme Ltd" and ident["tenant"] == code, ident
    # The tenant chosen in the URL is stamped, with its configured name, not the platform.
    ident, claims, _ = landed(tenant_envoy, recorder, {"loginName": "url"},
                              before=[("tenantCode", PLATFORM)])
    assert ident["tenant"] == PLATFORM and ident["tenant_name"] == "Platform by URL", ident
    assert "platform" not in ident and "platform" not in claims, (ident, claims)


def test_client_sent_platform_headers_never_pass(tenant_envoy, recorder):
    c = tenant_envoy.client()
    # Public path: forwarded without them; protected path without a session: nobody let in.
    resp = c.get("/healthz", headers=list(API.items()) + FORGED)
    assert_nobody_let_in(resp, recorder, tenant_envoy, statuses=(200,), public=True)
    recorder.clear()
    resp = c.get("/tenant-fields", headers=list(API.items()) + FORGED)
    assert_nobody_let_in(resp, recorder, tenant_envoy, statuses=(401,))
    # With a token landing that carries them too.
    recorder.clear()
    url = jwt_url(mint_hs256({"loginName": "nina", "tenantCode": "acme"}), path="/tenant-fields")
    resp = c.get(url, headers=FORGED)
    assert resp.status == 302 and recorder.requests() == [], resp
