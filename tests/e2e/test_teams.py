"""Microsoft Teams tab SSO (`type: teams`, URL `?activeAuth=teams`) through the real Envoy,
against an Entra ID JWKS mock (tests/e2e/idp/cn/teams.py) that also mints the tokens TeamsJS
would hand the tab. The browser test runs the tab in a cross-site iframe, as Teams does."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest

import cn_support as cs
from harness import assert_nobody_let_in
from idp.cn import teams as T

METHOD = "teams"
APP = "/?activeAuth=teams"
TEAMS_JS = "https://res.cdn.office.net/teams-js/2.22.0/js/MicrosoftTeams.min.js"
TEAMS_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0 Safari/537.36 Teams/24215.1007.3082.1590")


def teams_method(base: str, **extra) -> dict:
    method = {
        "type": "teams", "label": "Microsoft Teams",
        "client_id": T.CLIENT_ID, "client_secret": "teams-client-secret-unused-for-tab-sso",
        "tenant_id": T.TENANT,
        "jwks_url": f"{base}/{T.TENANT}/discovery/v2.0/keys",
        # The mock's stand-in Teams page (another site: localhost, not 127.0.0.1).
        "frame_ancestors": ["https://teams.microsoft.com", "https://*.teams.microsoft.com",
                            base.replace("127.0.0.1", "localhost")],
        "organization": "Contoso",
        "mapping": {"phone": "mobilePhone"},
    }
    method.update(extra)
    return method


@pytest.fixture(scope="module")
def mock():
    m = T.TeamsMock().start()
    yield m
    m.stop()


@pytest.fixture(autouse=True)
def _fresh(mock):
    mock.reset()
    yield
    assert mock.violations == [], "the filter sent what Entra ID does not accept"


@pytest.fixture(scope="module")
def envoy(envoys, mock):
    cfg = cs.config_with(METHOD, teams_method(mock.base_url))
    # The tab is in Teams' iframe: iframe-safe session cookies.
    cfg["session"].update(secure=True, same_site="none", partitioned=True)
    return envoys.start(cfg, name="teams", clusters=[("127.0.0.1", mock.port)])


def tab_login(envoy, token: str):
    client = envoy.client()
    page = cs.inapp_page(client, APP, TEAMS_UA)
    data = cs.page_data(page)
    return client, page, cs.post_code(client, data["post"], {"state": data["state"],
                                                             "token": token}, TEAMS_UA)


@pytest.mark.parametrize("version", ["1.0", "2.0"])
def test_seed_url_tab_sso_with_v1_and_v2_tokens(envoy, mock, recorder, version):
    client, page, answer = tab_login(envoy, mock.mint(version, mobilePhone="+1 555 0100"))
    assert f'<script src="{TEAMS_JS}">' in page.text
    assert "frame-ancestors https://teams.microsoft.com" in page.header("content-security-policy")
    assert answer.status == 200, answer
    session = [c for c in answer.set_cookies if c.name == "sso_session"]
    assert session and session[0].attrs.get("samesite") == "None", answer
    assert session[0].attrs.get("secure") and session[0].attrs.get("partitioned"), answer
    who = cs.landed_identity(client, recorder, APP)
    assert who["login"] == T.USER["upn"]
    assert who["name"] == T.USER["name"]
    assert who["email"] == T.USER["email"]
    assert who["phone"] == "+1 555 0100"
    assert who["roles"] == T.USER["roles"]
    assert who["groups"] == T.USER["groups"]
    assert who["org"] == "Contoso"
    assert who["attributes"]["tid"] == T.TENANT and who["attributes"]["oid"] == T.USER["oid"]


@pytest.mark.browser
def test_tab_in_a_cross_site_iframe_with_teamsjs_stubbed(envoy, mock, recorder, tmp_path):
    token = mock.mint("1.0")
    stub = """
      window.microsoftTeams = {
        app: {initialize: function () { return Promise.resolve(); }},
        authentication: {getAuthToken: function () { return Promise.resolve(%s); }}
      };""" % json.dumps(token)
    wrapper = (mock.base_url.replace("127.0.0.1", "localhost") + "/teams-tab?app="
               + urllib.parse.quote(envoy.base_url + APP, safe=""))
    out = cs.run_browser({"url": envoy.base_url + APP, "wrapper": wrapper,
                          "userAgent": TEAMS_UA, "sdkUrl": TEAMS_JS, "sdk": stub,
                          "waitFor": envoy.base_url + APP}, tmp_path)
    assert out["ok"], json.dumps(out)[:4000]
    assert out["blocked"] == [], out
    assert out["login"] == T.USER["upn"], out
    assert out["final_url"] == envoy.base_url + APP, out
    post = out["posts"][0]
    assert post["status"] == 200, out
    assert any("Partitioned" in c and "SameSite=None" in c for c in post["setCookies"]), out
    hits = [e for e in recorder.requests() if e["path"] == APP]
    assert hits, recorder.requests()


def test_jwks_is_fetched_once_and_cached(envoy, mock):
    for _ in range(2):
        _, _, answer = tab_login(envoy, mock.mint("2.0"))
        assert answer.status == 200, answer
    assert mock.calls() in ([], [f"GET /{T.TENANT}/discovery/v2.0/keys"])


@pytest.mark.parametrize("what,claims,status", [
    ("another tenant", {"tid": "11111111-2222-3333-4444-555555555555",
                        "iss": "https://sts.windows.net/11111111-2222-3333-4444-555555555555/"},
     403),
    ("another app's audience", {"aud": "api://app.example.com/00000000-1111-2222-3333-444444444444"},
     401),
    ("expired", {"exp": int(time.time()) - 3600, "nbf": int(time.time()) - 7200}, 401),
    ("no access_as_user", {"scp": "User.Read"}, 401),
    ("not a Teams client", {"appid": "00000000-0000-0000-0000-000000000001"}, 401),
    ("v2 issuer on a v1 token", {"iss": f"https://login.microsoftonline.com/{T.TENANT}/v2.0"},
     401),
])
def test_refused_tokens(envoy, mock, recorder, what, claims, status):
    _, _, answer = tab_login(envoy, mock.mint("1.0", **claims))
    recorder.clear()
    assert_nobody_let_in(answer, recorder, envoy, statuses=(status,))
    assert answer.json()["message"], answer


def test_forged_signature_and_unknown_key_are_refused(envoy, mock, recorder):
    # Signed by a key Entra never published, under the published kid / under its own kid.
    for token in (mock.mint("1.0", key=mock.other, kid=mock.key.key_id),
                  mock.mint("1.0", key=mock.other)):
        _, _, answer = tab_login(envoy, token)
        recorder.clear()
        assert_nobody_let_in(answer, recorder, envoy, statuses=(401,))


def test_a_used_flow_is_refused(envoy, mock, recorder):
    client = envoy.client()
    page = cs.inapp_page(client, APP, TEAMS_UA)
    data = cs.page_data(page)
    fields = {"state": data["state"], "token": mock.mint("2.0")}
    assert cs.post_code(client, data["post"], fields, TEAMS_UA).status == 200
    recorder.clear()
    again = cs.post_code(client, data["post"], fields, TEAMS_UA)
    assert_nobody_let_in(again, recorder, envoy, statuses=(401,))
