"""WeChat (`type: wechat`) through the real Envoy against the WeChat mock
(tests/e2e/idp/cn/wechat.py): website QR login, official-account login inside WeChat (chosen by
the User-Agent), mini-program web-view login with auth_code + encryptedData + iv."""

from __future__ import annotations

import urllib.parse

import pytest

import cn_support as cs
from harness import assert_nobody_let_in
from idp.cn import wechat as X

METHOD = "wechat"
APP = f"/?activeAuth={METHOD}"
WECHAT_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
             "(KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) "
             "NetType/WIFI Language/zh_CN")


def wechat_method(base: str, **extra) -> dict:
    method = {
        "type": "wechat", "label": "WeChat",
        "open_app_id": X.OPEN_APP[0], "open_app_secret": X.OPEN_APP[1],
        "mp_app_id": X.MP_APP[0], "mp_app_secret": X.MP_APP[1],
        "mini_app_id": X.MINI_APP[0], "mini_app_secret": X.MINI_APP[1],
        "allowed_users": ["un_alice"],
        "api_base": base, "open_base": base,
        "organization": "DEFAULT",
        "mapping": {"role_rules": [{"claim": "unionid", "equals": "un_alice",
                                    "roles": ["data analyst"]}]},
    }
    method.update(extra)
    return method


@pytest.fixture(scope="module")
def mock():
    m = X.WechatMock().start()
    yield m
    m.stop()


@pytest.fixture(autouse=True)
def _fresh(mock):
    mock.reset()
    yield
    assert mock.violations == [], "the filter sent what WeChat does not accept"


@pytest.fixture(scope="module")
def envoy(envoys, mock):
    cfg = cs.config_with(METHOD, wechat_method(mock.base_url))
    return envoys.start(cfg, name="wechat", clusters=[("127.0.0.1", mock.port)])


def expect_alice(who: dict) -> None:
    assert who["login"] == "un_alice"
    assert who["name"] == "爱丽丝"
    assert who["org"] == "DEFAULT"
    assert who["roles"] == ["data analyst"]
    assert who["method"] == METHOD


def test_website_qr_login(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, APP)
    assert provider.startswith(mock.base_url + "/connect/qrconnect?appid=" + X.OPEN_APP[0])
    assert provider.endswith("#wechat_redirect")
    _, answer = cs.back_from_provider(client, provider)
    assert answer.status == 302, answer
    who = cs.landed_identity(client, recorder, APP)
    expect_alice(who)
    assert who["attributes"]["openid"] == X.openid(X.OPEN_APP[0], "alice")
    assert mock.calls() == ["GET /connect/qrconnect", "GET /sns/oauth2/access_token",
                            "GET /sns/userinfo"]


def test_official_account_login_inside_wechat(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, APP, WECHAT_UA)
    assert provider.startswith(mock.base_url + "/connect/oauth2/authorize?appid=" + X.MP_APP[0])
    _, answer = cs.back_from_provider(client, provider, WECHAT_UA)
    assert answer.status == 302, answer
    who = cs.landed_identity(client, recorder, APP)
    expect_alice(who)
    assert who["attributes"]["openid"] == X.openid(X.MP_APP[0], "alice")


def test_snapshot_page_user_is_refused(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, APP, WECHAT_UA)
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider, WECHAT_UA, mock_snapshot="1")
    assert_nobody_let_in(answer, recorder, envoy, statuses=(403,))
    assert "snapshot" in answer.text


def test_mini_program_web_view_login(envoy, mock, recorder):
    code, data, iv = mock.mini_login("alice")
    client = envoy.client()
    query = urllib.parse.urlencode({"activeAuth": METHOD, "iv": iv, "encryptedData": data,
                                    "auth_code": code})
    answer = client.get("/apps/1/?" + query, headers=dict(cs.NAV, **{"User-Agent": WECHAT_UA}))
    assert answer.status == 302, answer
    assert answer.location == f"/apps/1/?activeAuth={METHOD}"   # code and data stripped
    who = cs.landed_identity(client, recorder, answer.location)
    expect_alice(who)
    assert who["phone"] == "+8613800000005"
    assert who["attributes"]["openid"] == X.openid(X.MINI_APP[0], "alice")
    assert "session_key" not in who["attributes"]
    assert mock.calls() == ["GET /sns/jscode2session"]


def test_mini_program_data_for_another_app_is_refused(envoy, mock, recorder):
    code, data, iv = mock.mini_login("alice")
    # The same ciphertext with another (wrong) IV decrypts to garbage: refused, never a pass.
    bad_iv = "AAAAAAAAAAAAAAAAAAAAAA=="
    client = envoy.client()
    recorder.clear()
    query = urllib.parse.urlencode({"activeAuth": METHOD, "iv": bad_iv, "encryptedData": data,
                                    "auth_code": code})
    answer = client.get("/?" + query)
    assert_nobody_let_in(answer, recorder, envoy, statuses=(502,))


def test_user_not_on_the_list_is_refused(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, APP)
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider, mock_user="mallory")
    assert_nobody_let_in(answer, recorder, envoy, statuses=(403,))
    assert "not on the list" in answer.text
    code, data, iv = mock.mini_login("mallory")
    query = urllib.parse.urlencode({"activeAuth": METHOD, "iv": iv, "encryptedData": data,
                                    "auth_code": code})
    answer = envoy.client().get("/?" + query)
    assert_nobody_let_in(answer, recorder, envoy, statuses=(403,))


def test_reused_code_is_refused(envoy, mock, recorder):
    client = envoy.client()
    callback, answer = cs.back_from_provider(client, cs.to_provider(client, APP))
    assert answer.status == 302
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(callback).query)["code"][0]
    other = envoy.client()
    provider = cs.to_provider(other, APP)
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(provider).query)["state"][0]
    recorder.clear()
    replay = other.get(f"/sso/callback/{METHOD}?code={code}&state={state}")
    assert_nobody_let_in(replay, recorder, envoy, statuses=(401,))
    assert "40163" in replay.text
    mini_code, data, iv = mock.mini_login("alice")
    query = urllib.parse.urlencode({"activeAuth": METHOD, "iv": iv, "encryptedData": data,
                                    "auth_code": mini_code})
    assert envoy.client().get("/?" + query).status == 302
    again = envoy.client().get("/?" + query)
    assert_nobody_let_in(again, recorder, envoy, statuses=(401,))
    assert "40029" in again.text


@pytest.mark.parametrize("errcode,status,words", [
    (40125, 502, "not set up correctly at WeChat"),
    (45011, 503, "limiting requests"),
    (40226, 403, "may not use this application"),
])
def test_provider_error_codes_become_clear_pages(envoy, mock, recorder, errcode, status, words):
    client = envoy.client()
    provider = cs.to_provider(client, APP)
    mock.fail_next("/sns/oauth2/access_token", {"errcode": errcode, "errmsg": "scripted"})
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider)
    assert_nobody_let_in(answer, recorder, envoy, statuses=(status,))
    assert words in answer.text and str(errcode) in answer.text
