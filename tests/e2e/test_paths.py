"""Path normalisation and public paths (docs/behaviour.md "Path handling", "public_paths";
security.md C1, C2, C5). The test config has public_paths ["/healthz", "/static/", "/public/"]."""

from __future__ import annotations

import urllib.parse

import pytest

from harness import (API, NAV, assert_nobody_let_in, decode_identity_of, jwt_login,
                     only_request, path_of)


@pytest.mark.parametrize("raw,normalised", [
    ("/public/../admin", "/admin"),
    ("/public/./../admin/", "/admin/"),
    ("/public/%2e%2e/admin", "/admin"),
    ("/static/../admin", "/admin"),
    ("/static/%2e%2e/admin", "/admin"),
    ("/static/%2E%2E/admin", "/admin"),
    ("/static/.%2e/admin", "/admin"),
    ("//admin", "/admin"),
    ("///admin", "/admin"),
    ("/./admin", "/admin"),
    ("/%61dmin", "/admin"),
    ("/static", "/static"),
    ("/healthz/", "/healthz/"),
    ("/healthzX", "/healthzX"),
    ("/admin?x=/healthz", "/admin?x=/healthz"),
    ("/admin?/../healthz", "/admin?/../healthz"),
])
def test_protected_after_normalisation(main_envoy, recorder, raw, normalised):
    c = main_envoy.client()
    nav = c.get(raw, headers=NAV)
    assert_nobody_let_in(nav, recorder, main_envoy, statuses=(302,))
    loc = urllib.parse.urlsplit(path_of(nav.location, main_envoy.base_url))
    assert loc.path == "/sso/login", nav
    assert urllib.parse.parse_qs(loc.query).get("rd") == [normalised], \
        f"rd should be the normalised path+query {normalised!r}: {nav.location!r}"
    api = c.get(raw, headers=API)
    assert_nobody_let_in(api, recorder, main_envoy, statuses=(401,))


@pytest.mark.parametrize("raw,forwarded", [
    ("/healthz", "/healthz"),
    ("//healthz", "/healthz"),
    ("/static/app.js", "/static/app.js"),
    ("/static/./css/../app.js", "/static/app.js"),
    ("/static/%61pp.js", "/static/app.js"),
    ("/healthz?probe=1", "/healthz?probe=1"),
    ("/public/x/../index.html", "/public/index.html"),
])
def test_public_paths_forward_normalised_without_identity(main_envoy, recorder, raw,
                                                          forwarded):
    c = main_envoy.client()
    jwt_login(c)  # even with a session, public requests carry no identity
    resp = c.get(raw, headers=API)
    assert resp.status == 200, resp
    entry = only_request(recorder)
    assert entry["path"] == forwarded, f"forwarded {entry['path']!r}, expected {forwarded!r}"
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(200,), public=True)


@pytest.mark.parametrize("raw", [
    "/public%2f..%2fadmin",
    "/public/..%2Fadmin",
    "/static%2f..%2fadmin",
    "/static/..%2fadmin",
    "/admin%2Fx",
    "/static/%5c..%5cadmin",
    "/admin%00",
    "/admin%0a",
    "/static/%c0%ae%c0%ae/admin",
    "/static/%ff/admin",
])
def test_ambiguous_paths_are_400(main_envoy, recorder, raw):
    c = main_envoy.client()
    for headers in (NAV, API):
        resp = c.get(raw, headers=headers)
        assert_nobody_let_in(resp, recorder, main_envoy, statuses=(400,))


def test_raw_backslash_is_400(main_envoy, recorder):
    """`\\` in the path: 400 (from the filter or from Envoy's codec), never forwarded."""
    c = main_envoy.client()
    resp = c.get("/static\\..\\admin", headers=NAV)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(400,))


def test_what_is_matched_is_what_is_forwarded(main_envoy, recorder):
    c = main_envoy.client()
    jwt_login(c)
    resp = c.get("/static/../admin/./x//y?q=%2e", headers=API)
    assert resp.status == 200, resp
    entry = only_request(recorder)
    assert entry["path"].split("?")[0] == "/admin/x/y", entry["path"]
    assert decode_identity_of(entry).get("login") == "alice"


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-Uri": "/healthz"},
    {"X-Original-URL": "/healthz"},
    {"X-Rewrite-URL": "/static/x"},
    {"x-envoy-original-path": "/healthz"},
    {"User-Agent": "kube-probe/1.29"},
    {"X-HTTP-Method-Override": "OPTIONS"},
])
def test_forwarding_headers_do_not_make_a_path_public(main_envoy, recorder, headers):
    c = main_envoy.client()
    resp = c.get("/admin", headers={**API, **headers})
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))


def test_options_preflight_without_session(main_envoy, recorder):
    c = main_envoy.client()
    resp = c.request("OPTIONS", "/admin", headers={
        "Origin": "http://127.0.0.1", "Access-Control-Request-Method": "GET",
        "x-sso-login": "mallory"})
    # Not a navigation (not GET/HEAD): 401 JSON per the contract's item 7.
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))
