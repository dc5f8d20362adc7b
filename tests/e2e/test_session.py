"""The sealed session cookie: tampering, key rotation across Envoy restarts, userinfo and
logout (docs/behaviour.md "Session cookie", "{prefix}/userinfo", "{prefix}/logout";
security.md E1, E7, D6)."""

from __future__ import annotations

import secrets
import urllib.parse

import pytest

import harness
from harness import (API, NAV, assert_nobody_let_in, decode_identity_of, jwt_login,
                     only_request, path_of)


def _flip(value: str, at: int | None = None) -> str:
    i = len(value) // 2 if at is None else at
    ch = value[i]
    repl = "A" if ch != "A" else "B"
    return value[:i] + repl + value[i + 1:]


def _assert_login_required(envoy, client, recorder, path="/private/page?x=1"):
    nav = client.get(path, headers=NAV)
    assert_nobody_let_in(nav, recorder, envoy, statuses=(302,))
    loc = path_of(nav.location, envoy.base_url)
    parts = urllib.parse.urlsplit(loc)
    assert parts.path == "/sso/login", nav
    assert urllib.parse.parse_qs(parts.query).get("rd") == [path], nav
    api = client.get(path, headers=API)
    assert_nobody_let_in(api, recorder, envoy, statuses=(401,))
    body = api.json()
    assert body.get("error") == "login_required", body
    assert body.get("login_url", "").startswith(envoy.base_url + "/sso/login?rd="), body
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(body["login_url"]).query).get("rd") \
        == [path], body


@pytest.mark.parametrize("where", ["middle", "first", "last", "header"])
def test_tampered_session_cookie_is_no_session(main_envoy, recorder, where):
    c = main_envoy.client()
    jwt_login(c)
    value = c.jar["sso_session"]
    at = {"middle": None, "first": 0, "last": len(value) - 1,
          "header": value.index(".") - 3 if "." in value else 3}[where]
    # Changing the last base64url character may only touch padding bits: change two.
    tampered = _flip(value, at)
    if where == "last":
        tampered = _flip(tampered, len(value) - 2)
    assert tampered != value
    c.jar["sso_session"] = tampered
    _assert_login_required(main_envoy, c, recorder)


@pytest.mark.parametrize("value", ["", "garbage", "a.b.c.d.e", "....", "x" * 5000])
def test_garbage_session_cookie_is_no_session(main_envoy, recorder, value):
    c = main_envoy.client()
    c.jar["sso_session"] = value
    _assert_login_required(main_envoy, c, recorder)


def test_session_value_under_another_cookie_name_is_no_session(main_envoy, recorder):
    """The JWE header binds the cookie name: a flow cookie's name does not open it."""
    c = main_envoy.client()
    jwt_login(c)
    value = c.jar.pop("sso_session")
    c.jar["sso_session_flow_abcdefgh"] = value
    _assert_login_required(main_envoy, c, recorder)


def test_session_cookie_works_and_is_not_forwarded(main_envoy, recorder):
    c = main_envoy.client()
    jwt_login(c)
    c.jar["theme"] = "dark"
    resp = c.get("/private/page?x=1")
    assert resp.status == 200, resp
    entry = only_request(recorder)
    cookie = [v for k, v in entry["headers"] if k.lower() == "cookie"]
    assert cookie == ["theme=dark"], f"filter cookies must be removed from Cookie: {cookie}"


def test_key_rotation_across_restarts(envoys, recorder):
    k1, k2 = harness.new_session_key(), harness.new_session_key()
    users = [harness.USERS["admin"]]
    first = envoys.start(harness.base_config(None, keys=[k1], users=users), name="rot-k1")
    base_url, port = first.base_url, first.port
    c = first.client()
    jwt_login(c)
    assert c.get("/r").status == 200
    assert decode_identity_of(only_request(recorder)).get("login") == "alice"
    first.stop()

    def restart(keys, name):
        return envoys.start(harness.base_config(base_url, keys=keys, users=users),
                            name=name, port=port)

    second = restart([k2, k1], "rot-k2k1")
    recorder.clear()
    resp = c.get("/r")
    assert resp.status == 200, f"old cookie must open with [K2, K1]: {resp!r}"
    assert decode_identity_of(only_request(recorder)).get("login") == "alice"
    # A new session made now is sealed with K2.
    d = second.client()
    jwt_login(d)
    second.stop()

    third = restart([k2], "rot-k2")
    recorder.clear()
    _assert_login_required(third, c, recorder, path="/r")
    recorder.clear()
    resp = d.get("/r")
    assert resp.status == 200, f"a K2 cookie must open with [K2]: {resp!r}"
    assert decode_identity_of(only_request(recorder)).get("login") == "alice"
    third.stop()


def test_userinfo(main_envoy, recorder):
    c = main_envoy.client()
    resp = c.get("/sso/userinfo", headers=API)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))
    resp.json()
    jwt_login(c)
    resp = c.get("/sso/userinfo", headers=API)
    assert resp.status == 200, resp
    info = resp.json()
    assert info.get("login") == "alice", info
    assert recorder.requests() == [], "userinfo is answered by the filter"
    assert harness.SEED_TOKEN not in resp.text


def test_logout_clears_session_and_chunks(main_envoy, recorder):
    c = main_envoy.client()
    jwt_login(c)
    resp = c.get("/sso/logout")
    assert resp.status == 302, resp
    assert harness.is_same_origin_root(resp.location, main_envoy.base_url), resp
    deleted = {sc.name for sc in resp.set_cookies if sc.deletes}
    assert "sso_session" in deleted, resp
    assert not resp.session_cookies_set, resp
    assert recorder.requests() == []
    assert c.session_jar() == {}
    resp = c.get("/sso/userinfo", headers=API)
    assert resp.status == 401, resp
    _assert_login_required(main_envoy, c, recorder)


def test_logout_of_split_session_deletes_every_chunk(main_envoy, recorder):
    token = harness.mint_hs256({"loginName": "dave", "roles": [],
                                "blob": secrets.token_hex(3000)})
    c = main_envoy.client()
    jwt_login(c, token)
    chunks = set(c.session_jar())
    assert len(chunks) >= 2, chunks
    resp = c.request("POST", "/sso/logout", headers=NAV, body=b"")
    assert resp.status == 302, resp
    deleted = {sc.name for sc in resp.set_cookies if sc.deletes}
    assert chunks <= deleted, f"chunks left after logout: {chunks - deleted}"


@pytest.mark.parametrize("rd,expected", [
    ("/bye?x=1", "/bye?x=1"),
    ("https://evil.com/", "/"),
    ("//evil.com/", "/"),
    ("/\\evil.com", "/"),
])
def test_logout_redirect_same_origin_only(main_envoy, recorder, rd, expected):
    c = main_envoy.client()
    jwt_login(c)
    resp = c.get("/sso/logout?rd=" + urllib.parse.quote(rd, safe=""))
    assert resp.status == 302, resp
    assert path_of(resp.location, main_envoy.base_url) == expected, resp
