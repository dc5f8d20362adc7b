"""Mobi's JWT keep-alive through Envoy (and the Node worker with SSO_E2E_HOST=node): the login
URL carries `auth_code`, `refresh_token` and `expires_in`; shortly before the token ends the
filter calls the refresh endpoint (tests/e2e/idp/jwt_refresh.py, our own mock of the service an
operator puts in front of Mobi's RefreshJWTUserToken) and the session lives on, or ends with
its token (docs/behaviour.md "JWT keep-alive").

Times are whole seconds at the filter, and Envoy's clock on the session path may be up to a
second old (docs/behaviour.md "Time"). Each test logs in just after a second begins and asks at
fixed offsets that hold whichever way that second falls: with expires_in 6 and window 3 the
refresh is due from 3 s and the session (without a refresh) is over from 6 s.
"""

from __future__ import annotations

import threading
import time
import urllib.parse

import pytest

import harness
from harness import API, NAV, decode_identity_of, only_request, path_of
from idp import jwt_refresh as M
from idp.jwt_refresh import RefreshEndpoint

EXPIRES_IN = 6
WINDOW = 3
DUE = 4.5        # refresh due (>= 3 s at the filter), token not yet over (< 6 s)
OVER = 7.5       # past the first token's end (>= 6 s at the filter)


@pytest.fixture(scope="module")
def endpoint():
    ep = RefreshEndpoint().start()
    yield ep
    ep.stop()


@pytest.fixture(scope="module")
def mobi(envoys, endpoint):
    config = harness.base_config(None)
    config["methods"]["mobi"] = {
        "type": "jwt", "param": "auth_code",
        "verify": {"alg": "HS256", "secret": M.SECRET},
        "issuer": M.ISSUER, "audience": M.AUDIENCE,
        "mapping": {"login": "loginName", "roles": "roles"},
        "keep_alive": {"refresh_url": endpoint.url, "window_seconds": WINDOW,
                       "timeout_ms": 3000},
    }
    return envoys.start(config, name="keep-alive",
                        clusters=[(endpoint.host, endpoint.port)])


@pytest.fixture
def ep(endpoint):
    endpoint.reset()
    yield endpoint
    assert endpoint.violations == [], endpoint.violations


def _login(mobi, ep, login: str = "alice") -> tuple[harness.Client, float, dict]:
    """Logs in just after a second begins; returns the browser, the moment and the URL's
    parameters."""
    frac = time.time() % 1
    time.sleep((1.05 - frac) % 1)
    start = time.time()
    params = ep.issue(login, EXPIRES_IN)
    c = mobi.client()
    query = urllib.parse.urlencode([("activeAuth", "mobi"), ("x", "1")] + list(params.items()))
    resp = c.get(f"/app/page?{query}")
    assert resp.status == 302 and resp.session_cookies_set, resp
    # The token and the keep-alive parameters never reach the application.
    assert path_of(resp.location, mobi.base_url) == "/app/page?x=1", resp
    return c, start, params


def _at(start: float, offset: float) -> None:
    left = start + offset - time.time()
    if left > 0:
        time.sleep(left)


def _logged(mobi, needle: str) -> str:
    """The host's log once it has `needle` (log lines reach the file a moment later)."""
    deadline = time.time() + 5
    while True:
        log = mobi.log_text()
        if needle in log or time.time() > deadline:
            assert needle in log, mobi.log_tail()
            return log
        time.sleep(0.1)


def _no_secret_upstream(entry: dict, params: dict) -> None:
    for name, value in entry["headers"]:
        assert params["refresh_token"] not in value, f"refresh token upstream in {name}"
        assert name.lower() != "authorization", entry["headers"]
    assert "refresh_token" not in entry["path"] and "auth_code" not in entry["path"], entry


def test_the_session_lives_on_across_the_tokens_end(mobi, ep, recorder):
    c, start, params = _login(mobi, ep)
    assert c.get("/app/page?x=1").status == 200
    entry = only_request(recorder)
    assert decode_identity_of(entry).get("login") == "alice"
    _no_secret_upstream(entry, params)
    assert ep.refreshes() == [], "refreshed before the window"

    _at(start, DUE)
    recorder.clear()
    resp = c.get("/app/data", headers=API)
    assert resp.status == 200, resp
    assert resp.session_cookies_set, "the renewed session rides on the upstream's response"
    assert ep.refreshes() == [params["refresh_token"]]
    _no_secret_upstream(only_request(recorder), params)

    _at(start, OVER)
    recorder.clear()
    resp = c.get("/app/data", headers=API)
    assert resp.status == 200, f"the session ended with the first token: {resp!r}"
    assert decode_identity_of(only_request(recorder)).get("login") == "alice"
    assert len(ep.refreshes()) == 1, ep.refreshes()
    stats = mobi.stats("sso_refresh")
    assert stats.get("wasmcustom.sso_refresh_success.mobi", 0) >= 1, stats


def test_refresh_endpoint_down_ends_the_session_with_its_token(mobi, ep, recorder):
    c, start, params = _login(mobi, ep)
    ep.mode = "down"
    before = mobi.stats("sso_refresh").get("wasmcustom.sso_refresh_failure.mobi", 0)
    _at(start, DUE)
    resp = c.get("/app/data", headers=API)
    assert resp.status == 200, "the still-valid session goes on"
    assert not resp.session_cookies_set, resp
    assert ep.refreshes() == [params["refresh_token"]]
    after = mobi.stats("sso_refresh").get("wasmcustom.sso_refresh_failure.mobi", 0)
    assert after == before + 1
    log = _logged(mobi, "refresh failed method=mobi cause=bad_answer_refresh_status")
    assert params["refresh_token"] not in log, "the refresh token was logged"

    _at(start, OVER)
    recorder.clear()
    resp = c.get("/app/page", headers=NAV)
    assert resp.status == 302, resp
    assert path_of(resp.location, mobi.base_url).startswith("/sso/login?rd=%2Fapp%2Fpage"), resp
    assert any(sc.deletes for sc in resp.set_cookies if sc.name == "sso_session"), resp
    assert recorder.requests() == []
    assert c.session_jar() == {}
    assert c.get("/app/data", headers=API).status == 401
    assert len(ep.refreshes()) == 1, "no refresh after the token's end"


def test_a_token_for_another_login_ends_the_session(mobi, ep, recorder):
    c, start, params = _login(mobi, ep)
    ep.mode = "other"
    _at(start, DUE)
    recorder.clear()
    resp = c.get("/app/data", headers=API)
    assert resp.status == 401, resp
    assert recorder.requests() == [], "mallory's token let a request through"
    assert c.session_jar() == {}, "the session cookie was kept"
    assert ep.refreshes() == [params["refresh_token"]]
    _logged(mobi, "refresh failed method=mobi cause=another_login")
    assert c.get("/app/data", headers=API).status == 401


def test_parallel_requests_make_one_call(mobi, ep, recorder):
    c, start, params = _login(mobi, ep)
    ep.hold = 1.5          # the refresh stays in flight while the others arrive
    _at(start, DUE)
    results: list[harness.Response] = []
    lock = threading.Lock()

    cookie = c.cookie_header()

    def one(i: int) -> None:
        # Every request carries the session as it was (none has seen the renewed one).
        resp = c.request("GET", f"/app/item/{i}",
                         [("Accept", "application/json"), ("Cookie", cookie)], use_jar=False)
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert len(results) == 8 and all(r.status == 200 for r in results), results
    assert ep.refreshes() == [params["refresh_token"]], "more than one refresh call"
    renewed = [r for r in results if r.session_cookies_set]
    assert len(renewed) == 1, f"{len(renewed)} responses carry a renewed session"
    assert len(recorder.requests()) == 8
    # The browser takes the renewed session; past the first token's end it still works.
    for sc in renewed[0].set_cookies:
        if sc.deletes:
            c.jar.pop(sc.name, None)
        else:
            c.jar[sc.name] = sc.value
    _at(start, OVER)
    assert c.get("/app/data", headers=API).status == 200
    assert len(ep.refreshes()) == 1
