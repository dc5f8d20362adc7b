"""DingTalk (`type: dingtalk`) through the real Envoy against the DingTalk mock
(tests/e2e/idp/cn/dingtalk.py), which checks every request the filter makes, including the
HMAC-SHA256 signature of the old sns login."""

from __future__ import annotations

import json

import pytest

import cn_support as cs
from harness import assert_nobody_let_in
from idp.cn import dingtalk as D

METHOD = "dingtalk"
SEED_APP = f"/?activeAuth=dingtalk&dtLoginType=authCode&corpId={D.CORP_ID}"
JSAPI = "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js"


def dingtalk_method(base: str, **extra) -> dict:
    method = {
        "type": "dingtalk", "label": "DingTalk",
        "corp_id": D.CORP_ID, "app_key": D.APP_KEY, "app_secret": D.APP_SECRET,
        "sso_secret": D.SSO_SECRET,
        "api_base": base, "oapi_base": base, "login_base": base,
        "org_from_departments": True,
        "mapping": {"email": "$['org_email','email']", "roles": "$.role_list[*].name"},
    }
    method.update(extra)
    return method


@pytest.fixture(scope="module")
def mock():
    m = D.DingTalkMock().start()
    yield m
    m.stop()


@pytest.fixture(autouse=True)
def _fresh(mock):
    mock.reset()
    yield
    assert mock.violations == [], "the filter sent what DingTalk does not accept"


@pytest.fixture(scope="module")
def envoy(envoys, mock):
    cfg = cs.config_with(METHOD, dingtalk_method(mock.base_url))
    return envoys.start(cfg, name="dingtalk", clusters=[("127.0.0.1", mock.port)])


@pytest.fixture(scope="module")
def envoy_sns(envoys, mock):
    method = dingtalk_method(mock.base_url, qr_login="sns", default_login="qr",
                             qr_app_id=D.QR_APP_ID, qr_app_secret=D.QR_APP_SECRET,
                             org_from_departments=False, organization="DEFAULT")
    cfg = cs.config_with(METHOD, method)
    return envoys.start(cfg, name="dingtalk-sns", clusters=[("127.0.0.1", mock.port)])


def expect_u001(who: dict, org: str = "研发部/数据组") -> None:
    assert who["login"] == "u001"
    assert who["name"] == "张三"
    assert who["email"] == "zhangsan@corp.example"
    assert who["phone"] == "13800000002"
    assert who["roles"] == ["data analyst"]
    assert who["org"] == org
    assert who["method"] == METHOD
    assert who["attributes"]["corpid"] == D.CORP_ID


def test_seed_url_in_app_login_posting_the_code(envoy, mock, recorder):
    client = envoy.client()
    page = cs.inapp_page(client, SEED_APP, cs.DINGTALK_UA)
    assert f'<script src="{JSAPI}">' in page.text
    data = cs.page_data(page)
    assert data["cfg"] == {"corpId": D.CORP_ID, "clientId": D.APP_KEY}
    assert D.APP_SECRET not in page.text
    answer = cs.post_code(client, data["post"], {"state": data["state"],
                                                 "code": mock.issue_inapp_code("u001")})
    assert answer.status == 200, answer
    assert answer.json()["location"] == SEED_APP
    assert answer.session_cookies_set
    expect_u001(cs.landed_identity(client, recorder, SEED_APP))
    assert mock.calls(tokens=False) == ["POST /topapi/v2/user/getuserinfo",
                            "POST /topapi/v2/user/get",
                            "POST /topapi/v2/department/listparentbyuser",
                            "POST /topapi/v2/department/get", "POST /topapi/v2/department/get"]


@pytest.mark.browser
def test_seed_url_in_app_login_in_a_browser_with_the_jsapi_stubbed(envoy, mock, recorder,
                                                                   tmp_path):
    code = mock.issue_inapp_code("u001")
    stub = """
      window.dd = {
        ready: function (cb) { setTimeout(cb, 0); },
        error: function () {},
        requestAuthCode: function (o) {
          if (o.corpId !== %s || o.clientId !== %s) {
            o.onFail({errorCode: '3', errorMessage: 'wrong corpId/clientId'}); return;
          }
          setTimeout(function () { o.onSuccess({code: %s}); }, 20);
        }
      };""" % (json.dumps(D.CORP_ID), json.dumps(D.APP_KEY), json.dumps(code))
    out = cs.run_browser({"url": envoy.base_url + SEED_APP, "userAgent": cs.DINGTALK_UA,
                          "sdkUrl": JSAPI, "sdk": stub,
                          "waitFor": envoy.base_url + "/?activeAuth=dingtalk"}, tmp_path)
    assert out["ok"], out
    assert out["blocked"] == [], out
    assert out["final_url"] == envoy.base_url + SEED_APP, out
    assert out["login"] == "u001", out
    assert [p["status"] for p in out["posts"]] == [200], out
    hits = [e for e in recorder.requests() if e["path"] == SEED_APP]
    assert hits, recorder.requests()
    session = [c for c in out["cookies"] if c["name"] == "sso_session"]
    assert session and session[0]["httpOnly"], out


@pytest.mark.browser
def test_in_app_page_shows_the_refusal_of_a_used_code(envoy, mock, recorder, tmp_path):
    code = mock.issue_inapp_code("u001")
    client = envoy.client()
    page = cs.inapp_page(client, SEED_APP, cs.DINGTALK_UA)
    data = cs.page_data(page)
    assert cs.post_code(client, data["post"], {"state": data["state"], "code": code}).status == 200
    stub = ("window.dd={ready:function(cb){cb();},requestAuthCode:function(o){"
            "o.onSuccess({code:%s});}};" % json.dumps(code))
    recorder.clear()
    out = cs.run_browser({"url": envoy.base_url + SEED_APP, "userAgent": cs.DINGTALK_UA,
                          "sdkUrl": JSAPI, "sdk": stub, "waitFor": "http://never/"}, tmp_path)
    assert "40078" in (out["status_text"] or ""), out
    assert [p["status"] for p in out["posts"]] == [401], out
    assert recorder.requests() == [], recorder.requests()


def test_qr_login_maps_the_member(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, "/reports?activeAuth=dingtalk&dtLoginType=qr")
    assert provider.startswith(mock.base_url + "/oauth2/auth?")
    _, answer = cs.back_from_provider(client, provider)
    assert answer.status == 302, answer
    expect_u001(cs.landed_identity(client, recorder, answer.location))
    assert mock.calls(tokens=False)[:4] == [
        "GET /oauth2/auth", "POST /v1.0/oauth2/userAccessToken", "GET /v1.0/contact/users/me",
        "POST /topapi/user/getbyunionid"]


def test_user_agent_picks_in_app_and_default_is_in_app(envoy, mock):
    client = envoy.client()
    assert cs.inapp_page(client, "/?activeAuth=dingtalk", cs.DINGTALK_UA).status == 200
    # default_login is authCode (the seeds' default): the page even on a desktop browser.
    assert cs.inapp_page(client, "/?activeAuth=dingtalk", cs.DESKTOP).status == 200
    assert cs.to_provider(client, "/?activeAuth=dingtalk&dtLoginType=qr",
                          cs.DINGTALK_UA).startswith(mock.base_url + "/oauth2/auth?")


def test_old_signed_sns_login(envoy_sns, mock, recorder):
    client = envoy_sns.client()
    provider = cs.to_provider(client, "/?activeAuth=dingtalk")
    assert provider.startswith(mock.base_url + "/connect/qrconnect?")
    _, answer = cs.back_from_provider(client, provider)
    assert answer.status == 302, answer
    who = cs.landed_identity(client, recorder, answer.location)
    expect_u001(who, org="DEFAULT")
    sns = [e for e in mock.log if e["path"] == "/sns/getuserinfo_bycode"]
    assert len(sns) == 1 and set(sns[0]["query"]) == {"accessKey", "timestamp", "signature"}


def test_qr_outsider_is_refused(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, "/?activeAuth=dingtalk&dtLoginType=qr")
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider, mock_user="eve")
    assert_nobody_let_in(answer, recorder, envoy, statuses=(403,))
    assert "60121" in answer.text


def test_in_app_url_naming_another_org_is_refused(envoy, mock, recorder):
    client = envoy.client()
    resp = client.get("/?activeAuth=dingtalk&dtLoginType=authCode&corpId=dingother")
    login = resp.location
    recorder.clear()
    answer = client.get(login)
    assert_nobody_let_in(answer, recorder, envoy, statuses=(403,))
    assert mock.calls() == []


def test_admin_console_login(envoy, mock, recorder):
    client = envoy.client()
    code = mock.issue_admin_code("admin1")
    answer = client.get(f"/admin?activeAuth=dingtalk&dtLoginType=code&code={code}")
    assert answer.status == 302, answer
    assert answer.location == "/admin?activeAuth=dingtalk&dtLoginType=code"
    who = cs.landed_identity(client, recorder, answer.location)
    assert who["login"] == "admin1" and who["email"] == "admin@corp.example"
    assert mock.calls(tokens=False)[:1] == ["GET /sso/getuserinfo"]
    # Not an admin, another corp, a used code: refused.
    for code, status in ((mock.issue_admin_code("u001", is_sys=False), 403),
                         (mock.issue_admin_code("admin1", corpid="dingother"), 403),
                         (code, 401)):
        fresh = envoy.client()
        recorder.clear()
        resp = fresh.get(f"/admin?activeAuth=dingtalk&dtLoginType=code&code={code}")
        assert_nobody_let_in(resp, recorder, envoy, statuses=(status,))


def test_expired_app_token_is_refreshed_once(envoy, mock, recorder):
    client = envoy.client()
    page = cs.inapp_page(client, SEED_APP, cs.DINGTALK_UA)
    data = cs.page_data(page)
    assert cs.post_code(client, data["post"], {"state": data["state"],
                                               "code": mock.issue_inapp_code()}).status == 200
    mock.expire_tokens()
    mock.log.clear()
    client = envoy.client()
    page = cs.inapp_page(client, SEED_APP, cs.DINGTALK_UA)
    data = cs.page_data(page)
    answer = cs.post_code(client, data["post"], {"state": data["state"],
                                                 "code": mock.issue_inapp_code()})
    assert answer.status == 200, answer
    assert mock.calls()[:4] == ["POST /topapi/v2/user/getuserinfo", "GET /gettoken",
                                "POST /topapi/v2/user/getuserinfo", "POST /topapi/v2/user/get"]
    expect_u001(cs.landed_identity(client, recorder, SEED_APP))


def test_reused_code_is_refused(envoy, mock, recorder):
    code = mock.issue_inapp_code()
    client = envoy.client()
    for expected in (200, 401):
        page = cs.inapp_page(client, SEED_APP, cs.DINGTALK_UA)
        data = cs.page_data(page)
        recorder.clear()
        answer = cs.post_code(client, data["post"], {"state": data["state"], "code": code})
        assert answer.status == expected, answer
        client.jar.clear()
    assert "40078" in answer.json()["message"]
    assert_nobody_let_in(answer, recorder, envoy, statuses=(401,))


@pytest.mark.parametrize("errcode,status,words", [
    (60020, 502, "not set up correctly at DingTalk"),
    (90018, 503, "limiting requests"),
    (60011, 403, "may not use this application"),
])
def test_provider_error_codes_become_clear_pages(envoy, mock, recorder, errcode, status, words):
    client = envoy.client()
    provider = cs.to_provider(client, "/?activeAuth=dingtalk&dtLoginType=qr")
    mock.fail_next("/topapi/user/getbyunionid", {"errcode": errcode, "errmsg": "scripted"})
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider)
    assert_nobody_let_in(answer, recorder, envoy, statuses=(status,))
    assert words in answer.text and str(errcode) in answer.text


def test_code_post_needs_json_and_its_flow(envoy, mock, recorder):
    client = envoy.client()
    page = cs.inapp_page(client, SEED_APP, cs.DINGTALK_UA)
    data = cs.page_data(page)
    recorder.clear()
    form = client.request("POST", data["post"],
                          {"Content-Type": "application/x-www-form-urlencoded"},
                          f"state={data['state']}&code=x")
    assert_nobody_let_in(form, recorder, envoy, statuses=(400,))
    other = envoy.client()  # another browser: no flow cookie for this state
    stolen = cs.post_code(other, data["post"], {"state": data["state"],
                                                "code": mock.issue_inapp_code()})
    assert_nobody_let_in(stolen, recorder, envoy, statuses=(401,))
