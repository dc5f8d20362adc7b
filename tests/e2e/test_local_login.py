"""Built-in users and return URLs (docs/behaviour.md "{login_page}", "{prefix}/login",
"Return URLs"; security.md D1, D5)."""

from __future__ import annotations

import re
import urllib.parse

import pytest

import harness
from harness import (NAV, USERS, assert_nobody_let_in, decode_identity_of, local_login,
                     login_form, only_request, path_of, start_local_login)

GENERIC = "Invalid user name or password."


def _normalise_page(text: str) -> str:
    """Form page without the per-request parts (state value, nonces)."""
    text = re.sub(r'value="[^"]*"', 'value=""', text)
    return re.sub(r'nonce="[^"]*"', "", text)


def test_login_form_and_binding_cookie(main_envoy, recorder):
    """The flow is sealed into the form's state; the browser gets one binding cookie."""
    c = main_envoy.client()
    resp, form, _ = start_local_login(c, rd="/after")
    assert "state" in form["fields"] and len(form["fields"]["state"]) > 300, form
    assert form["method"] == "post", form
    flows = [sc for sc in resp.set_cookies if harness.FLOW_COOKIE_RE.match(sc.name)]
    assert len(flows) == 1 and flows[0].name == "sso_session_bind", \
        resp.header_all("set-cookie")
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", flows[0].value), flows[0]
    assert flows[0].attrs.get("httponly") is True, flows[0]
    assert not resp.session_cookies_set
    assert recorder.requests() == []


def test_right_password_logs_in(main_envoy, recorder):
    user = USERS["admin"]
    c = main_envoy.client()
    resp = local_login(c, user.login, user.password, rd="/after?x=1")
    assert resp.status == 303, resp
    assert path_of(resp.location, main_envoy.base_url) == "/after?x=1", resp
    assert resp.session_cookies_set, resp
    assert not [sc for sc in resp.set_cookies if sc.name.startswith("sso_session_flow_")], \
        "no cookie per flow"
    assert recorder.requests() == []
    assert c.get("/after?x=1").status == 200
    ident = decode_identity_of(only_request(recorder))
    assert ident.get("login") == "admin", ident
    assert ident.get("name") == "Admin" and ident.get("email") == "admin@example.com", ident
    assert ident.get("roles") == ["system admin"], ident
    assert ident.get("method") == "local", ident


def test_non_ascii_name_is_rfc8187(main_envoy, recorder):
    user = USERS["zhang"]
    c = main_envoy.client()
    assert local_login(c, user.login, user.password).status == 303
    assert c.get("/").status == 200
    entry = only_request(recorder)
    raw = {k.lower(): v for k, v in entry["headers"]}
    assert raw.get("x-sso-name") == "UTF-8''%E5%BC%A0%E4%B8%89", raw
    assert decode_identity_of(entry).get("name") == "张三"


def test_wrong_password_and_unknown_user_look_the_same(main_envoy, recorder):
    user = USERS["admin"]
    c = main_envoy.client()
    wrong = local_login(c, user.login, "not-the-password")
    assert_nobody_let_in(wrong, recorder, main_envoy, statuses=(401,))
    assert GENERIC in wrong.text, wrong
    login_form(wrong.text)  # the form is shown again
    d = main_envoy.client()
    unknown = local_login(d, "no-such-user", "not-the-password")
    assert_nobody_let_in(unknown, recorder, main_envoy, statuses=(401,))
    assert GENERIC in unknown.text, unknown
    assert _normalise_page(wrong.text) == _normalise_page(unknown.text), \
        "wrong password and unknown user must give the same page"
    assert "not-the-password" not in wrong.text + unknown.text
    assert "not-the-password" not in main_envoy.log_text(), "password in Envoy's log"


def test_lockout_after_max_failures(main_envoy, recorder):
    user = USERS["lockme"]
    for i in range(5):
        c = main_envoy.client()
        resp = local_login(c, user.login, f"wrong-{i}")
        assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))
    c = main_envoy.client()
    resp = local_login(c, user.login, user.password)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(429,))
    assert "Too many failed attempts" in resp.text, resp


def test_missing_state_is_refused(main_envoy, recorder):
    user = USERS["admin"]
    c = main_envoy.client()
    _, form, action = start_local_login(c)
    fields = {k: v for k, v in form["fields"].items() if k != "state"}
    fields.update(username=user.login, password=user.password)
    resp = c.post_form(action, fields)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(400, 401))


def test_mismatched_state_is_refused(main_envoy, recorder):
    user = USERS["admin"]
    c = main_envoy.client()
    _, form, action = start_local_login(c)
    fields = dict(form["fields"])
    fields["state"] = fields["state"][:-2] + ("xy" if not fields["state"].endswith("xy") else "zz")
    fields.update(username=user.login, password=user.password)
    resp = c.post_form(action, fields)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(400, 401))


def test_state_from_another_browser_is_refused(main_envoy, recorder):
    """Login CSRF: the victim's browser has no (or another) flow cookie."""
    user = USERS["admin"]
    attacker = main_envoy.client()
    _, form, action = start_local_login(attacker)
    fields = dict(form["fields"])
    fields.update(username=user.login, password=user.password)
    victim = main_envoy.client()
    resp = victim.post_form(action, fields)
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(400, 401))
    other = main_envoy.client()
    start_local_login(other)  # a binding cookie of its own
    resp = other.post_form(action, fields)
    # The state is not used: that browser starts its own login again (303 to the form).
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(303,))
    assert urllib.parse.urlsplit(resp.location).path == "/login", resp


def test_sso_login_starts_local_login(main_envoy, recorder):
    c = main_envoy.client()
    resp = c.get("/sso/login?rd=%2Freports")
    assert resp.status == 302, resp
    loc = path_of(resp.location, main_envoy.base_url)
    parts = urllib.parse.urlsplit(loc)
    assert parts.path == "/login", resp
    assert recorder.requests() == []


def _login_via_sso_login(envoy, rd_raw: str) -> tuple[harness.Response, list[str]]:
    """GET /sso/login?rd=<rd_raw> (rd_raw sent as given), follow to the form, log in.
    Returns the final response and every Location seen."""
    user = USERS["admin"]
    c = envoy.client()
    locations = []
    page = "/sso/login?rd=" + rd_raw
    resp = c.get(page)
    steps = 0
    while resp.status in (301, 302, 303, 307, 308) and steps < 5:
        locations.append(resp.location)
        page = path_of(resp.location, envoy.base_url)
        if urllib.parse.urlsplit(page).path != "/login":
            break
        resp = c.get(page)
        steps += 1
    assert resp.status == 200, f"no login form after /sso/login?rd={rd_raw}: {resp!r}"
    form = login_form(resp.text)
    fields = dict(form["fields"])
    fields.update(username=user.login, password=user.password)
    final = c.post_form(harness.resolve_action(form["action"], page), fields)
    assert final.status == 303, final
    locations.append(final.location)
    return final, locations


@pytest.mark.parametrize("rd_raw", [
    "//evil.com",
    "https://evil.com",
    "/\\evil.com",
    "%2F%2Fevil.com",
    "https%3A%2F%2Fevil.com%2F",
    "%2F%5Cevil.com",
    "%2F%09%2Fevil.com",
    "javascript%3Aalert(1)",
    "http%3A%2F%2F127.0.0.1.evil.com%2F",
    "%2Fok%0d%0aSet-Cookie%3A%20x%3D1",
])
def test_return_url_is_same_origin(main_envoy, recorder, rd_raw):
    final, locations = _login_via_sso_login(main_envoy, rd_raw)
    for loc in locations:
        path_of(loc, main_envoy.base_url)  # asserts same origin
        assert "evil" not in urllib.parse.urlsplit(loc).netloc, locations
    assert harness.is_same_origin_root(final.location, main_envoy.base_url), \
        f"rd={rd_raw!r} ended at {final.location!r}"
    assert "\r" not in final.location and "\n" not in final.location
    assert not any(sc.name == "x" for sc in final.set_cookies), "header injection via rd"


def test_return_url_same_origin_path_is_kept(main_envoy, recorder):
    final, _ = _login_via_sso_login(main_envoy, urllib.parse.quote("/reports/7?tab=a&b=c",
                                                                    safe=""))
    assert path_of(final.location, main_envoy.base_url) == "/reports/7?tab=a&b=c", final


def test_return_url_absolute_on_base_url_is_kept(main_envoy, recorder):
    rd = main_envoy.base_url + "/deep/link"
    final, _ = _login_via_sso_login(main_envoy, urllib.parse.quote(rd, safe=""))
    assert path_of(final.location, main_envoy.base_url) == "/deep/link", final


def test_login_page_is_reachable_whatever_the_session(main_envoy, recorder):
    c = main_envoy.client()
    harness.jwt_login(c)
    resp = c.get("/login", headers=NAV)
    assert resp.status == 200 and login_form(resp.text), resp
    assert recorder.requests() == []
