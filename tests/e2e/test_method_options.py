"""The seeds' per-method options through the real host (issue 17): a switch per method
(`enabled: false`), session expiry sync per method, and claim names with dots read as names
first. Runs through Envoy, and through the Node worker and workerd with SSO_E2E_HOST."""

from __future__ import annotations

import time
import urllib.parse

import harness
from harness import API, decode_identity_of, jwt_login, jwt_url, mint_hs256, only_request

SECRET = "5f0c2b3e-8f4a-4f7e-9d2c-1a6b7c8d9e0f"


def jwt_method(**extra) -> dict:
    method = {"type": "jwt", "param": "jwtParam",
              "verify": {"alg": "HS256", "secret": SECRET},
              "mapping": {"login": "loginName"}}
    method.update(extra)
    return method


def config(keys: list[str], **methods) -> dict:
    cfg = harness.base_config(None, keys=keys)
    cfg["methods"] = methods
    cfg.pop("default_method", None)
    cfg["tenants"] = {}
    return cfg


def test_a_switched_off_method_is_refused_and_its_sessions_end(envoys, recorder):
    keys = [harness.new_session_key()]
    on = envoys.get(config(keys, **{"portal": jwt_method(), "other": jwt_method(),
                                    "third": jwt_method()}), name="switch-on")
    off = envoys.get(config(keys, **{"portal": jwt_method(enabled=False), "other": jwt_method(),
                                     "third": jwt_method()}), name="switch-off")
    token = mint_hs256({"loginName": "dora", "exp": int(time.time()) + 600}, SECRET)
    c = on.client()
    jwt_login(c, token, method="portal")
    assert c.get("/", headers=API).status == 200
    assert decode_identity_of(only_request(recorder))["login"] == "dora"
    recorder.clear()

    # The same session cookie where the method is switched off: no session any more.
    d = off.client()
    d.jar = dict(c.jar)
    resp = d.get("/", headers=API)
    assert resp.status == 401, resp
    assert recorder.requests() == [], "a session of a switched-off method reached the upstream"
    # Not offered, refused when named, its token logs nobody in.
    chooser = d.get("/sso/login")
    assert chooser.status == 200 and "other" in chooser.text and "portal" not in chooser.text
    assert d.get("/sso/login?activeAuth=portal").status == 400
    fresh = off.client()
    resp = fresh.get(jwt_url(token, method="portal"))
    assert resp.status == 400, resp
    assert not resp.session_cookies_set, resp


def test_session_expiry_sync_is_per_method(envoys, recorder):
    keys = [harness.new_session_key()]
    inst = envoys.get(config(keys, synced=jwt_method(session_expiry_sync=True),
                             plain=jwt_method()), name="expiry-sync")
    now = int(time.time())
    token = mint_hs256({"loginName": "eve", "exp": now + 120}, SECRET)
    synced = jwt_login(inst.client(), token, method="synced")
    ages = {int(sc.attrs["max-age"]) for sc in synced.session_cookies_set}
    # The host's clock may be up to a second old on the request path (behaviour.md "Time").
    assert ages and all(115 <= a <= 121 for a in ages), ages
    plain = jwt_login(inst.client(), token, method="plain")
    assert {sc.attrs["max-age"] for sc in plain.session_cookies_set} == {"28800"}


def test_claim_names_with_dots_are_names_first(envoys, recorder):
    keys = [harness.new_session_key()]
    method = jwt_method(mapping={"login": "loginName", "email": "profile.email"})
    inst = envoys.get(config(keys, portal=method), name="dotted-names")
    token = mint_hs256({"loginName": "carol", "exp": int(time.time()) + 600,
                        "profile.email": "carol@example.org",
                        "profile": {"email": "nested@example.org"}}, SECRET)
    c = inst.client()
    jwt_login(c, token, method="portal")
    assert c.get("/", headers=API).status == 200
    assert decode_identity_of(only_request(recorder)).get("email") == "carol@example.org"


def test_reload_user_switches_to_the_named_method(main_envoy, recorder):
    """`?activeAuth=local&reloadUser=true` on a page holding a jwt-param session starts the
    local login (the login page), back to the same URL without the two parameters."""
    c = main_envoy.client()
    jwt_login(c)
    assert c.get("/reports?activeAuth=local", headers=API).status == 200
    recorder.clear()
    resp = c.get("/reports?id=7&activeAuth=local&reloadUser=true")
    assert resp.status == 302, resp
    target = urllib.parse.urlsplit(resp.location)
    query = dict(urllib.parse.parse_qsl(target.query))
    assert target.path == "/login" and query.get("activeAuth") == "local", resp.location
    assert query.get("rd") == "/reports?id=7", resp.location
    assert recorder.requests() == []
