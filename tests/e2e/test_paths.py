"""Path normalisation and public paths (docs/behaviour.md "Path handling", "Paths",
"public_paths"; security.md C1, C2, C5). The test config has public_paths
["/healthz", "/static/", "/public/"]."""

from __future__ import annotations

import socket
import urllib.parse

import pytest

import harness
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
    # Path parameters (issue 10): public only when public both as forwarded and with `;...`
    # cut from every segment (docs/behaviour.md "Paths").
    ("/healthz;a", "/healthz;a"),
    ("/healthz;", "/healthz;"),
    ("/healthz;jsessionid=1", "/healthz;jsessionid=1"),
    ("/healthz%3B", "/healthz%3B"),
    ("/static;/app.js", "/static;/app.js"),
    ("/static;x=1/app.js", "/static;x=1/app.js"),
    ("/static;x=1/../admin", "/admin"),
    ("/static/x;a/../../admin", "/admin"),
    ("/;/admin", "/;/admin"),
    ("/;/static/app.js", "/;/static/app.js"),
    ("/;/healthz", "/;/healthz"),
    ("//;x//admin", "/;x/admin"),
    ("/admin;", "/admin;"),
    ("/admin;/", "/admin;/"),
    ("/admin;.css", "/admin;.css"),
    ("/static%3B/app.js", "/static%3B/app.js"),
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
    # Path parameters on public paths (issue 10): public in both readings.
    ("/static/app.js;jsessionid=1", "/static/app.js;jsessionid=1"),
    ("/static/app.js;", "/static/app.js;"),
    ("/static/;", "/static/;"),
    ("/static/;/app.js", "/static/;/app.js"),
    ("/static/x;a/../app.js", "/static/app.js"),
    ("//static//app.js", "/static/app.js"),
    ("/static/a%EF%BC%8Eb", "/static/a%EF%BC%8Eb"),
    ("/static/100%25", "/static/100%25"),
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


# --------------------------------------------------------------------------- path parameters
# Issue 10: `/static/..;/admin` was forwarded as public; Tomcat, Jetty and Spring cut `;...`
# from a segment before resolving dots and served /admin. docs/behaviour.md "Paths" has the
# rule and its table. Vectors: the report, security.md C1/C5, Jetty's HttpURITest
# "ambiguous parameter inclusions" / "empty segment" / "ambiguous encoding" lists, and the
# usual Tomcat/Spring confusions (`..;/`, `/;/`, `/.;/`, `%2e;`, `//`, trailing `;`).

REFUSED = [
    # encoded separators, NUL and control characters, invalid UTF-8 (security.md C1)
    "/public%2f..%2fadmin",
    "/public/..%2Fadmin",
    "/static%2f..%2fadmin",
    "/static/..%2fadmin",
    "/admin%2Fx",
    "/static/%5c..%5cadmin",
    "/admin%00",
    "/admin%0a",
    "/static/%ff/admin",
    # dot segments with parameters
    "/static/..;/admin",
    "/static/%2e%2e;/admin",
    "/static/%2E%2E;/admin",
    "/static/..;jsessionid=x/admin",
    "/static/.%2e;x/admin",
    "/static/%2e.;/admin",
    "/static/..;a;b/admin",
    "/static/.;/admin",
    "/static/%2e;/admin",
    "/.;/admin",
    "/static/..;",
    "/healthz/..;/admin",
    "/public/..;/admin",
    "/static/..%3B/admin",
    "/static/..%3b/admin",
    "/static/%2e%2e%3bx/admin",
    # `..` after an empty or parameter-only segment (RFC 3986 and Tomcat disagree)
    "/static//../admin",
    "/static///../../admin",
    "/static//./../admin",
    "/static/;/../admin",
    "/static/;x=1/../admin",
    "/static/%3B/../admin",
    # decoded twice, folded, dot-only names
    "/public/%252e%252e/admin",
    "/static/%252e%252e/admin",
    "/static/%252E%252E/admin",
    "/static/%25252e%25252e/admin",
    "/static/..%252f/admin",
    "/static%252f..%252fadmin",
    "/static/%255c..%255cadmin",
    "/static/%2500/admin",
    "/static/%2509/admin",
    "/static/%EF%BC%8E%EF%BC%8E/admin",
    "/static/%ef%bc%8e/admin",
    "/static/%E2%80%A5/admin",
    "/static/%EF%BC%8F..%EF%BC%8Fadmin",
    "/static/%EF%BC%BC..%EF%BC%BCadmin",
    "/static/..%EF%BC%9B/admin",
    "/static/.../admin",
    "/static/..%20/admin",
    # malformed or overlong
    "/static/%c0%ae%c0%ae/admin",
    "/static/%25c0%25ae/admin",
    "/static/%u002e%u002e/admin",
    "/static/%09/admin",
    "/static/%3B%2F../admin",
]


# The edge host hands the engine WHATWG's parse of the URL (wasm-bindgen-harness/handler.mjs:
# `url.pathname`; a Workers runtime offers nothing else), which has already removed these `..`
# together with the empty or parameter-only segment before them, as RFC 3986 does. The engine
# judges that resolved path and the worker forwards it, so the upstream reads what was judged.
WHATWG_RESOLVED = {
    "/static//../admin": "/static/admin",
    "/static///../../admin": "/static/admin",
    "/static//./../admin": "/static/admin",
    "/static/;/../admin": "/static/admin",
    "/static/;x=1/../admin": "/static/admin",
    "/static/%3B/../admin": "/static/admin",
}


def assert_refused(host, recorder, client, raw, headers):
    resp = client.get(raw, headers=headers)
    if isinstance(host, harness.NodeWorker) and raw in WHATWG_RESOLVED:
        assert resp.status == 200, resp
        entry = only_request(recorder)
        assert entry["path"] == WHATWG_RESOLVED[raw], entry["path"]
        assert_nobody_let_in(resp, recorder, host, statuses=(200,), public=True)
        recorder.clear()
    else:
        assert_nobody_let_in(resp, recorder, host, statuses=(400,))


@pytest.mark.parametrize("raw", REFUSED)
def test_path_confusions_are_400(main_envoy, recorder, raw):
    c = main_envoy.client()
    for headers in (NAV, API):
        assert_refused(main_envoy, recorder, c, raw, headers)


@pytest.mark.parametrize("raw", ["/static/..;/admin", "/static//../admin",
                                 "/static/%252e%252e/admin"])
def test_path_confusions_are_400_with_a_session_too(main_envoy, recorder, raw):
    c = main_envoy.client()
    jwt_login(c)
    assert_refused(main_envoy, recorder, c, raw, API)


def test_a_protected_path_with_parameters_is_forwarded_with_identity(main_envoy, recorder):
    """`/healthz;a` is protected: with a session it reaches the upstream as it is, with the
    identity (Tomcat serves /healthz to a signed-in user, nothing more)."""
    c = main_envoy.client()
    jwt_login(c)
    resp = c.get("/healthz;a", headers=API)
    assert resp.status == 200, resp
    entry = only_request(recorder)
    assert entry["path"] == "/healthz;a", entry["path"]
    assert decode_identity_of(entry).get("login") == "alice"


def raw_status(host, target: bytes) -> int:
    """Sends `GET <target> HTTP/1.1` byte for byte (http.client refuses tabs and non-ASCII)
    and returns the status of the answer."""
    port = urllib.parse.urlsplit(host.base_url).port
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        s.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1:" + str(port).encode()
                  + b"\r\nAccept: application/json\r\nConnection: close\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return int(data.split(b" ", 2)[1])


@pytest.mark.parametrize("target", [
    b"/static/\t../admin",
    "/static/\uff0e\uff0e/admin".encode(),
    "/static/\u2025/admin".encode(),
    "/static/..\uff1b/admin".encode(),
    b"/static/..\\admin",
])
def test_raw_tabs_backslashes_and_fullwidth_dots_are_400(main_envoy, recorder, target):
    """Raw bytes: refused by the codec in front of the filter or by the filter itself."""
    assert raw_status(main_envoy, target) == 400
    assert recorder.requests() == [], recorder.requests()
    assert not main_envoy.wasm_crashes()
