"""Feishu / Lark (`type: lark`) through the real Envoy against the Feishu mock
(tests/e2e/idp/cn/lark.py), with the seeds' URLs: `?activeAuth=lark&larkLoginType=desktop`,
`...=app` and `...=larkAdminBackend`, redirect URL `/lark/callback`."""

from __future__ import annotations

import json

import pytest

import cn_support as cs
from harness import assert_nobody_let_in
from idp.cn import lark as L

METHOD = "lark"
DESKTOP = "/?activeAuth=lark&larkLoginType=desktop"
APP = "/?activeAuth=lark&larkLoginType=app"
ADMIN = "/?activeAuth=lark&larkLoginType=larkAdminBackend"
JSAPI = "https://lf1-cdn-tos.bytegoofy.com/goofy/lark/op/h5-js-sdk-1.5.30.js"
LARK_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
           "(KHTML, like Gecko) Mobile/15E148 Lark/7.14.0 LarkLocale/zh_CN ChannelName/Feishu")


def lark_method(base: str, **extra) -> dict:
    method = {
        "type": "lark", "label": "Feishu",
        "app_id": L.APP_ID, "app_secret": L.APP_SECRET, "tenant_key": L.TENANT_KEY,
        "accounts_base": base, "open_base": base,
        "scope": "contact:user.email:readonly contact:user.phone:readonly",
        "organization": "DEFAULT",
        "mapping": {"role_rules": [
            {"claim": "tenant_key", "equals": L.TENANT_KEY, "roles": ["data viewer"]},
            {"claim": "is_app_admin", "equals": "true", "roles": ["system admin"]}]},
    }
    method.update(extra)
    return method


@pytest.fixture(scope="module")
def mock():
    m = L.LarkMock().start()
    yield m
    m.stop()


@pytest.fixture(autouse=True)
def _fresh(mock):
    mock.reset()
    yield
    assert mock.violations == [], "the filter sent what Feishu does not accept"


@pytest.fixture(scope="module")
def envoy(envoys, mock):
    cfg = cs.config_with(METHOD, lark_method(mock.base_url))
    return envoys.start(cfg, name="lark", clusters=[("127.0.0.1", mock.port)])


def expect_zhangsan(who: dict) -> None:
    assert who["login"] == "on_zhangsan"          # the seeds' default login: union_id
    assert who["name"] == "张三"
    assert who["email"] == "zhangsan@corp.example"
    assert who["phone"] == "+8613800000003"
    assert who["org"] == "DEFAULT"
    assert who["roles"] == ["data viewer"]
    assert who["attributes"]["tenant_key"] == L.TENANT_KEY


def test_desktop_seed_url_web_login(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, DESKTOP)
    assert provider.startswith(mock.base_url + "/open-apis/authen/v1/authorize?client_id=")
    callback, answer = cs.back_from_provider(client, provider)
    assert callback.startswith("/lark/callback?code=")
    assert answer.status == 302 and answer.location == DESKTOP, answer
    expect_zhangsan(cs.landed_identity(client, recorder, DESKTOP))
    assert mock.calls(tokens=False) == ["GET /open-apis/authen/v1/authorize",
                                        "POST /open-apis/authen/v2/oauth/token",
                                        "GET /open-apis/authen/v1/user_info"]


def test_app_seed_url_posting_a_request_access_code(envoy, mock, recorder):
    client = envoy.client()
    page = cs.inapp_page(client, APP, LARK_UA)
    assert f'<script src="{JSAPI}">' in page.text
    data = cs.page_data(page)
    assert data["cfg"] == {"appId": L.APP_ID}
    answer = cs.post_code(client, data["post"], {"state": data["state"], "api": "requestAccess",
                                                 "code": mock.issue_inapp_code()}, LARK_UA)
    assert answer.status == 200, answer
    expect_zhangsan(cs.landed_identity(client, recorder, APP))


STUB = """
  window.h5sdk = {ready: function (cb) { setTimeout(cb, 0); }, error: function () {}};
  window.tt = {
    %s
    requestAuthCode: function (o) {
      if (o.appId !== %s) { o.fail({errno: 10200}); return; }
      setTimeout(function () { o.success({code: %s}); }, 10);
    }
  };"""


@pytest.mark.browser
@pytest.mark.parametrize("access", ["ok", "errno103", "absent"])
def test_app_login_in_a_browser_with_the_jsapi_stubbed(envoy, mock, recorder, tmp_path, access):
    """tt.requestAccess gives the code; or fails with errno 103 (old client) or is absent, and
    the page falls back to tt.requestAuthCode, whose code goes to the v1 OIDC endpoint."""
    api = "requestAccess" if access == "ok" else "requestAuthCode"
    code = mock.issue_inapp_code("zhangsan", api=api)
    request_access = {
        "ok": "requestAccess: function (o) { setTimeout(function () { o.success({code: %s}); }, 10); },"
              % json.dumps(code),
        "errno103": "requestAccess: function (o) { o.fail({errno: 103}); },",
        "absent": "",
    }[access]
    stub = STUB % (request_access, json.dumps(L.APP_ID), json.dumps(code))
    out = cs.run_browser({"url": envoy.base_url + APP, "userAgent": LARK_UA, "sdkUrl": JSAPI,
                          "sdk": stub, "waitFor": envoy.base_url + APP}, tmp_path)
    assert out["ok"], out
    assert out["blocked"] == [], out
    assert out["login"] == "on_zhangsan", out
    assert out["posts"][0]["request"]["api"] == api, out
    wanted = ("/open-apis/authen/v2/oauth/token" if access == "ok"
              else "/open-apis/authen/v1/oidc/access_token")
    assert mock.calls(wanted), mock.calls()


def test_user_agent_picks_the_in_app_page(envoy, mock):
    client = envoy.client()
    assert cs.inapp_page(client, "/?activeAuth=lark", LARK_UA).status == 200
    assert cs.to_provider(client, "/?activeAuth=lark", cs.DESKTOP).startswith(
        mock.base_url + "/open-apis/authen/v1/authorize?")


def test_admin_backend_seed_url(envoy, mock, recorder):
    client = envoy.client()
    answer = cs.login(client, ADMIN, mock_user="boss")
    assert answer.status == 302, answer
    who = cs.landed_identity(client, recorder, ADMIN)
    assert who["login"] == "on_boss"
    assert who["roles"] == ["data viewer", "system admin"]
    assert "GET /open-apis/application/v3/is_user_admin" in mock.calls()
    # A member who is not an app admin.
    client = envoy.client()
    provider = cs.to_provider(client, ADMIN)
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider, mock_user="zhangsan")
    assert_nobody_let_in(answer, recorder, envoy, statuses=(403,))


def test_outsider_of_another_tenant_is_refused(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, DESKTOP)
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider, mock_user="outsider")
    assert_nobody_let_in(answer, recorder, envoy, statuses=(403,))
    assert "not a member" in answer.text


def test_expired_app_token_is_refreshed_once(envoy, mock, recorder):
    for _ in range(2):
        client = envoy.client()
        page = cs.inapp_page(client, APP, LARK_UA)
        data = cs.page_data(page)
        code = mock.issue_inapp_code(api="requestAuthCode")
        answer = cs.post_code(client, data["post"], {"state": data["state"], "code": code,
                                                     "api": "requestAuthCode"}, LARK_UA)
        assert answer.status == 200, answer
        mock.expire_tokens()
        mock.log.clear()
    # The second login found its cached token expired: one refetch, then success.
    client = envoy.client()
    page = cs.inapp_page(client, APP, LARK_UA)
    data = cs.page_data(page)
    code = mock.issue_inapp_code(api="requestAuthCode")
    answer = cs.post_code(client, data["post"], {"state": data["state"], "code": code,
                                                 "api": "requestAuthCode"}, LARK_UA)
    assert answer.status == 200, answer
    assert mock.calls() == ["POST /open-apis/authen/v1/oidc/access_token",
                            "POST /open-apis/auth/v3/app_access_token/internal",
                            "POST /open-apis/authen/v1/oidc/access_token",
                            "GET /open-apis/authen/v1/user_info"]
    expect_zhangsan(cs.landed_identity(client, recorder, APP))


def test_reused_code_is_refused(envoy, mock, recorder):
    client = envoy.client()
    callback, answer = cs.back_from_provider(client, cs.to_provider(client, DESKTOP))
    assert answer.status == 302
    code = callback.split("code=", 1)[1].split("&", 1)[0]
    other = envoy.client()
    provider = cs.to_provider(other, DESKTOP)
    state = provider.split("state=", 1)[1].split("&", 1)[0]
    recorder.clear()
    replay = other.get(f"/lark/callback?code={code}&state={state}")
    assert_nobody_let_in(replay, recorder, envoy, statuses=(401,))
    assert "20065" in replay.text


@pytest.mark.parametrize("code,status,words", [
    (20010, 403, "may not use this application"),
    (20071, 502, "not set up correctly at Feishu"),
    (20050, 502, "could not complete the sign-in"),
])
def test_provider_error_codes_become_clear_pages(envoy, mock, recorder, code, status, words):
    client = envoy.client()
    provider = cs.to_provider(client, DESKTOP)
    mock.fail_next("/open-apis/authen/v2/oauth/token",
                   {"code": code, "error": "x", "error_description": "scripted"}, status=400)
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider)
    assert_nobody_let_in(answer, recorder, envoy, statuses=(status,))
    assert words in answer.text and str(code) in answer.text
