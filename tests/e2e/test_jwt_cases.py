"""Every case of tests/fixtures/jwt/cases.json through the real Envoy and the built .wasm.

The cases were made by an independent implementation (jwcrypto) and are valid at the file's
`now`. Envoy runs here with its wall clock frozen at that instant (tests/e2e/clock/
fixed_clock.c, LD_PRELOAD), so time-dependent cases (expired, nbf, leeway, max_age) are
checked too. All distinct method configurations go into one filter configuration, one named
method each (`case-0`, `case-1`, ...), so one Envoy serves every case.

accept: 302 + session cookie, and the identity at the upstream equals the expected one.
deny:   401, no session cookie, nothing forwarded (security.md §0.2).
"""

from __future__ import annotations

import email.utils
import json
import urllib.parse

import pytest

import harness
from harness import API, assert_nobody_let_in, decode_identity_of, only_request, path_of

CASES_FILE = harness.REPO / "tests" / "fixtures" / "jwt" / "cases.json"


def _load():
    if not CASES_FILE.exists():
        return None, [pytest.param(None, id="cases.json-missing")]
    data = json.loads(CASES_FILE.read_text())
    return data, [pytest.param(case, id=case["name"]) for case in data["cases"]]


DATA, PARAMS = _load()


def _method_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for case in DATA["cases"]:
        key = json.dumps(case["method"], sort_keys=True)
        names.setdefault(key, f"case-{len(names)}")
    return names


@pytest.fixture(scope="module")
def cases_envoy(envoys, fixed_clock_lib):
    names = _method_names()
    methods = {name: json.loads(key) for key, name in names.items()}
    config = harness.base_config(None, keys=[harness.new_session_key()],
                                 users=[harness.USERS["admin"]])
    config["methods"].update(methods)
    config["tenants"] = {}
    env = {"LD_PRELOAD": fixed_clock_lib, "SSO_FIXED_TIME": str(DATA["now"])}
    inst = envoys.get(config, name="jwt-cases", env=env)
    # The frozen clock must be in effect, or the time cases prove nothing.
    # A local reply of the filter carries the Date of Envoy's own clock.
    date = inst.client().get("/sso/userinfo", headers=API).header("date") or ""
    expected = email.utils.formatdate(DATA["now"], usegmt=True)
    assert date == expected, f"Envoy's clock is not frozen at cases.now: Date {date!r}"
    return inst, names


@pytest.mark.parametrize("case", PARAMS)
def test_jwt_case(case, cases_envoy, recorder):
    if case is None:
        pytest.fail(f"{CASES_FILE} is missing (tests/fixtures/jwt/ is written by the fixtures "
                    "helper)", pytrace=False)
    envoy, names = cases_envoy
    method = names[json.dumps(case["method"], sort_keys=True)]
    param = case["method"].get("param", "jwtParam")
    c = envoy.client()
    url = "/case/" + case["name"] + "?" + urllib.parse.urlencode(
        [("keep", "1"), ("activeAuth", method), (param, case["token"])])

    if case["expect"] == "deny":
        resp = c.get(url)
        assert_nobody_let_in(resp, recorder, envoy, statuses=(401,))
        resp = c.get(url, headers=API)
        assert_nobody_let_in(resp, recorder, envoy, statuses=(401,))
        if case["token"]:
            assert case["token"] not in resp.text, "denial reflects the token"
        return

    assert case["expect"] == "accept", case["expect"]
    landing = c.get(url)
    assert landing.status == 302, f"{case['name']} ({case.get('description')}): {landing!r}"
    assert landing.session_cookies_set, landing
    target = path_of(landing.location, envoy.base_url)
    assert target == f"/case/{case['name']}?keep=1", landing
    assert recorder.requests() == [], "the token landing must not be forwarded"

    page = c.get(target)
    assert page.status == 200, page
    entry = only_request(recorder)
    ident = decode_identity_of(entry)
    assert ident.get("login") == case["login"], entry
    if "roles" in case:
        assert sorted(ident.get("roles", [])) == sorted(case["roles"]), entry
    if "attributes" in case:
        assert ident.get("attributes", {}) == case["attributes"], entry
    if "mapped_name" in case:
        assert ident.get("name") == case["mapped_name"], entry
        raw = dict((k.lower(), v) for k, v in entry["headers"]).get("x-sso-name", "")
        expected_raw = "UTF-8''" + urllib.parse.quote(case["mapped_name"].encode(), safe="")
        if not case["mapped_name"].isascii():
            assert raw == expected_raw, f"x-sso-name not RFC 8187: {raw!r}"
    assert ident.get("method") == method, entry
    assert case["token"] not in json.dumps(entry), "token reached the upstream"
