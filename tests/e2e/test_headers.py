"""Client-sent identity headers never reach the upstream (security.md B1, B2, B8;
docs/behaviour.md "Requests": names compared case-insensitively with `_` equal to `-`)."""

from __future__ import annotations

from harness import (API, NAV, assert_nobody_let_in, decode_identity_of, filter_cookies_of,
                     jwt_login, normalised, only_request)

FORGED = [
    ("x-sso-login", "mallory"),
    ("X_SSO_LOGIN", "mallory"),
    ("X-Sso-Login", "mallory"),
    ("X-SSO-ROLES", "superuser"),
    ("x_sso_roles", "superuser"),
    ("X-Sso-Tenant", "evil-tenant"),
    ("x-sso-method", "forged"),
    ("X-SSO-Attributes", '{"admin":"mallory"}'),
    ("x-sso-assertion", "forged.assertion.value"),
    ("X-Sso_Email", "mallory@evil.example"),
]


def _values(entry, header):
    return [v for k, v in entry["headers"] if normalised(k) == header]


FORGED_MARKERS = ("mallory", "superuser", "evil-tenant", "forged")


def _assert_no_forgery(entry):
    leaked = [f"{k}: {v}" for k, v in entry["headers"] if any(m in v for m in FORGED_MARKERS)]
    assert not leaked, f"forged headers reached the upstream: {leaked}"


def test_forged_identity_with_valid_session_is_replaced(main_envoy, recorder):
    c = main_envoy.client()
    jwt_login(c)
    resp = c.get("/app", headers=list(NAV.items()) + FORGED)
    assert resp.status == 200, resp
    entry = only_request(recorder)
    _assert_no_forgery(entry)
    assert _values(entry, "x-sso-login") == ["alice"], entry
    assert decode_identity_of(entry).get("method") == "jwt-param"
    assert len(_values(entry, "x-sso-roles")) == 1, entry


def test_forged_identity_on_public_path_is_stripped(main_envoy, recorder):
    c = main_envoy.client()
    resp = c.get("/healthz", headers=list(NAV.items()) + FORGED)
    assert resp.status == 200, resp
    entry = only_request(recorder)
    _assert_no_forgery(entry)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(200,), public=True)


def test_forged_identity_on_public_path_with_session_sends_no_identity(main_envoy, recorder):
    """Public requests are forwarded with no identity headers, even with a session."""
    c = main_envoy.client()
    jwt_login(c)
    resp = c.get("/static/app.js", headers=list(API.items()) + FORGED)
    assert resp.status == 200, resp
    entry = only_request(recorder)
    _assert_no_forgery(entry)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(200,), public=True)
    assert not filter_cookies_of(entry), entry


def test_forged_identity_without_session_is_not_let_in(main_envoy, recorder):
    c = main_envoy.client()
    resp = c.get("/admin", headers=list(API.items()) + FORGED)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))
    resp = c.get("/admin", headers=list(NAV.items()) + FORGED)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(302,))


def test_forged_identity_on_filter_endpoint(main_envoy, recorder):
    """/sso/userinfo answers from the session, never from request headers."""
    c = main_envoy.client()
    resp = c.get("/sso/userinfo", headers=list(API.items()) + FORGED)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))
    assert "mallory" not in resp.text


def test_bearer_without_accept_bearer_grants_nothing(main_envoy, recorder):
    """security.md B4: `Authorization: Bearer <valid token>` with accept_bearer off."""
    from harness import SEED_TOKEN
    c = main_envoy.client()
    resp = c.get("/api/data", headers={"Accept": "application/json",
                                        "Authorization": f"Bearer {SEED_TOKEN}"})
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))
