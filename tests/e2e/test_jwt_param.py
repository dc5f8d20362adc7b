"""jwt-param through Envoy: the seed's example URL, the 6 KB split cookie, activeAuth and
tenants (docs/behaviour.md "Order of decisions" items 3-5, "Session cookie")."""

from __future__ import annotations

import secrets
import urllib.parse

from harness import (API, SEED_ROLES, SEED_TOKEN, assert_nobody_let_in, decode_identity_of,
                     filter_cookies_of, jwt_login, jwt_url, mint_hs256, only_request, path_of)


def test_seed_token_login_then_identity_reaches_upstream(main_envoy, recorder):
    c = main_envoy.client()
    landing = jwt_login(c)
    # 302 to the same URL without activeAuth and the token parameter
    assert path_of(landing.location, main_envoy.base_url) == "/", landing
    assert (landing.header("referrer-policy") or "").lower() == "no-referrer", landing
    assert recorder.requests() == [], "the token landing itself must not be forwarded"
    for sc in landing.session_cookies_set:
        assert sc.attrs.get("httponly") is True, sc
        assert sc.attrs.get("path") == "/", sc
        assert str(sc.attrs.get("samesite", "")).lower() == "lax", sc
        assert sc.attrs.get("max-age") == "28800", sc
        assert "secure" not in sc.attrs, "secure=false in the config (http base_url)"

    page = c.get("/")
    assert page.status == 200, page
    entry = only_request(recorder)
    ident = decode_identity_of(entry)
    assert ident.get("login") == "alice", entry
    assert sorted(ident.get("roles", [])) == sorted(SEED_ROLES), entry
    assert ident.get("attributes", {}).get("abc") == "123", entry
    assert ident.get("method") == "jwt-param", entry
    assert not filter_cookies_of(entry), f"filter cookies forwarded: {entry}"
    # The token never reaches the upstream: not in the path, not in any header.
    signature = SEED_TOKEN.rsplit(".", 1)[1]
    assert signature not in entry["path"] and "jwtParam" not in entry["path"], entry
    for name, value in entry["headers"]:
        assert signature not in value, f"token in upstream header {name}"


def test_landing_keeps_other_query_parameters(main_envoy, recorder):
    c = main_envoy.client()
    landing = jwt_login(c, path="/reports/q1", before=[("view", "summary"), ("x", "1")])
    target = path_of(landing.location, main_envoy.base_url)
    parts = urllib.parse.urlsplit(target)
    assert parts.path == "/reports/q1", landing
    assert urllib.parse.parse_qsl(parts.query) == [("view", "summary"), ("x", "1")], landing
    assert c.get(target).status == 200
    entry = only_request(recorder)
    assert entry["path"] == "/reports/q1?view=summary&x=1", entry
    assert decode_identity_of(entry).get("login") == "alice"


def test_bad_token_is_denied_html_and_json(main_envoy, recorder):
    forged = SEED_TOKEN[:-2] + ("AA" if not SEED_TOKEN.endswith("AA") else "BB")
    c = main_envoy.client()
    resp = c.get(jwt_url(forged))
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))
    assert "text/html" in (resp.header("content-type") or ""), resp
    resp = c.get(jwt_url(forged), headers=API)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))
    assert "json" in (resp.header("content-type") or ""), resp
    resp.json()
    assert forged not in resp.text and forged not in c.get(jwt_url(forged)).text, \
        "a denial must not reflect the token"


def test_six_kilobyte_identity_survives_split_cookie(main_envoy, recorder):
    blob = secrets.token_hex(3072)  # 6144 characters, incompressible
    token = mint_hs256({"sub": "carol-subject", "loginName": "carol", "roles": ["data viewer"],
                        "blob": blob})
    c = main_envoy.client()
    landing = jwt_login(c, token)
    names = [sc.name for sc in landing.session_cookies_set]
    assert "sso_session" in names and "sso_session_1" in names, \
        f"6 KB identity should be split over sso_session, sso_session_1, ...: {names}"
    assert len(names) <= 8, names
    for line in landing.header_all("set-cookie"):
        assert len(line) <= 4096, f"Set-Cookie line of {len(line)} bytes"
    assert c.get("/big").status == 200
    entry = only_request(recorder)
    ident = decode_identity_of(entry)
    assert ident.get("login") == "carol", entry
    assert ident.get("attributes", {}).get("blob") == blob, "attribute lost in the split cookie"
    assert not filter_cookies_of(entry), "session chunks forwarded to the upstream"

    # Missing one chunk: no session (and no crash).
    d = main_envoy.client()
    d.jar = {k: v for k, v in c.jar.items() if k != "sso_session_1"}
    recorder.clear()
    resp = d.get("/big", headers=API)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))


def test_unknown_active_auth_is_400_listing_methods(main_envoy, recorder):
    c = main_envoy.client()
    resp = c.get("/?activeAuth=no-such-method")
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(400,))
    assert "local" in resp.text and "jwt-param" in resp.text, resp
    # Attacker-controlled method names are not reflected unescaped.
    resp = c.get("/?activeAuth=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(400,))
    assert "<script>alert(1)</script>" not in resp.text, resp


def test_tenant_parameter_stamps_tenant_header(main_envoy, recorder):
    c = main_envoy.client()
    landing = jwt_login(c, before=[("tenantCode", "tenant1")])
    target = path_of(landing.location, main_envoy.base_url)
    assert "tenantCode=tenant1" in target and "jwtParam" not in target, landing
    assert c.get(target).status == 200
    ident = decode_identity_of(only_request(recorder))
    assert ident.get("login") == "alice"
    # The contract does not say whether the tenant header carries the code or the id.
    assert ident.get("tenant") in ("tenant1", "t-1"), ident
    # The tenant's configured name travels too (issue 17 item 4); a stamped tenant is never
    # the platform party.
    assert ident.get("tenant_name") == "Tenant One" and "platform" not in ident, ident


def test_tenant_default_method_is_used_without_active_auth(main_envoy, recorder):
    """tenant1's default_method is jwt-param: `?tenantCode=tenant1&jwtParam=T` logs in."""
    c = main_envoy.client()
    resp = c.get("/?" + urllib.parse.urlencode([("tenantCode", "tenant1"),
                                                ("jwtParam", SEED_TOKEN)]))
    assert resp.status == 302 and resp.session_cookies_set, resp
    assert c.get(path_of(resp.location, main_envoy.base_url)).status == 200
    ident = decode_identity_of(only_request(recorder))
    assert ident.get("login") == "alice" and ident.get("tenant") in ("tenant1", "t-1"), ident


def test_list_item_with_comma_stays_one_item(main_envoy, recorder):
    """docs/behaviour.md: `admins,users` stays one item (RFC 8187-encoded); security.md B6."""
    token = mint_hs256({"loginName": "erin", "roles": ["admins,users", "plain role", "角色"]})
    c = main_envoy.client()
    jwt_login(c, token)
    assert c.get("/").status == 200
    entry = only_request(recorder)
    assert decode_identity_of(entry).get("roles") == ["admins,users", "plain role", "角色"], entry


def test_control_characters_in_claims_never_split_headers(main_envoy, recorder):
    """security.md B5: a login with CR/LF never becomes a second header (the contract encodes
    it as RFC 8187; a denial would also be safe)."""
    token = mint_hs256({"loginName": "eve\r\nX-Injected: 1", "roles": ["a\nb"]})
    c = main_envoy.client()
    resp = c.get(jwt_url(token))
    if resp.status == 302 and resp.session_cookies_set:
        assert c.get("/").status == 200
        entry = only_request(recorder)
        assert not any(k.lower() == "x-injected" for k, _ in entry["headers"]), entry
        for k, v in entry["headers"]:
            assert "\r" not in v and "\n" not in v, (k, v)
        assert decode_identity_of(entry).get("login") == "eve\r\nX-Injected: 1", entry
    else:
        assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401, 403))  # 403: a valid token whose identity cannot be carried


def test_duplicate_session_cookies_are_no_session(main_envoy, recorder):
    """security.md E5: several values for the session cookie -> no session, in both orders."""
    c = main_envoy.client()
    jwt_login(c)
    good = c.jar["sso_session"]
    for cookie in (f"sso_session={good}; sso_session=garbage",
                   f"sso_session=garbage; sso_session={good}"):
        recorder.clear()
        resp = c.request("GET", "/dup", headers={**API, "Cookie": cookie})
        assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))


def test_new_login_replaces_existing_session(main_envoy, recorder):
    """security.md E8: logging in writes a brand-new session for the new identity."""
    c = main_envoy.client()
    jwt_login(c)  # alice
    old = dict(c.session_jar())
    token = mint_hs256({"loginName": "frank", "roles": ["data viewer"]})
    jwt_login(c, token)
    assert c.session_jar() != old
    assert c.get("/").status == 200
    assert decode_identity_of(only_request(recorder)).get("login") == "frank"
