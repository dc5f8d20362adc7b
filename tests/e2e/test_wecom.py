"""WeCom (`type: wecom`, URL name `wechat-work`) through the real Envoy against the WeCom mock
(tests/e2e/idp/cn/wecom.py), which checks every request the filter makes."""

from __future__ import annotations

import pytest

import cn_support as cs
from harness import assert_nobody_let_in
from idp.cn import wecom as W

METHOD = "wechat-work"
APP = f"/?activeAuth={METHOD}"


def wecom_method(base: str, **extra) -> dict:
    method = {
        "type": "wecom", "label": "WeCom",
        "corp_id": W.CORP_ID, "agent_id": int(W.AGENT_ID), "secret": W.SECRET,
        "api_base": base, "oauth_base": base, "login_base": base,
        "organization": "DEFAULT",
        # JumpServer's example mapping, plus a JSONPath filter by attribute name.
        "mapping": {
            "login": "userid",
            "name": "alias",
            "email": "extattr.attrs[2].value",
            "phone": "mobile",
            "roles": "$.extattr.attrs[?@.name=='角色'].text.value",
        },
    }
    method.update(extra)
    return method


@pytest.fixture(scope="module")
def mock():
    m = W.WecomMock().start()
    yield m
    m.stop()


@pytest.fixture(autouse=True)
def _fresh(mock):
    mock.reset()
    yield
    assert mock.violations == [], "the filter sent what WeCom does not accept"


@pytest.fixture(scope="module")
def envoy(envoys, mock):
    cfg = cs.config_with(METHOD, wecom_method(mock.base_url))
    return envoys.start(cfg, name="wecom", clusters=[("127.0.0.1", mock.port)])


@pytest.fixture(scope="module")
def envoy_private(envoys, mock):
    """snsapi_privateinfo (user_ticket -> getuserdetail), in-app login by default, the legacy
    getuserinfo path (`UserId`)."""
    method = wecom_method(mock.base_url, scope="snsapi_privateinfo", default_login="oauth2",
                          legacy_getuserinfo=True)
    method["mapping"]["email"] = "email"
    cfg = cs.config_with(METHOD, method)
    return envoys.start(cfg, name="wecom-private", clusters=[("127.0.0.1", mock.port)])


def test_qr_login_lands_with_the_mapped_identity(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, f"/?activeAuth={METHOD}")
    assert provider.startswith(mock.base_url + "/wwlogin/sso/login?login_type=CorpApp&")
    _, answer = cs.back_from_provider(client, provider)
    assert answer.status == 302, answer
    assert answer.location == f"/?activeAuth={METHOD}"
    assert answer.session_cookies_set
    who = cs.landed_identity(client, recorder, f"/?activeAuth={METHOD}")
    assert who["login"] == "zhangsan"
    assert who["name"] == "San Zhang"
    assert who["email"] == "san.zhang@ext.example"      # extattr.attrs[2].value (legacy shape)
    assert who["roles"] == ["data analyst"]              # JSONPath filter by attribute name
    assert who["org"] == "DEFAULT"
    assert who["method"] == METHOD
    assert who["attributes"]["corpid"] == W.CORP_ID
    assert "user_ticket" not in who["attributes"]
    assert mock.calls(tokens=False) == ["GET /wwlogin/sso/login",
                                        "GET /cgi-bin/auth/getuserinfo", "GET /cgi-bin/user/get"]


def test_seed_url_in_app_oauth_with_user_detail(envoy_private, mock, recorder):
    """The seed's application homepage `?activeAuth=wechat-work&wcwLoginType=oauth2`, opened in
    the WeCom client: silent OAuth with snsapi_privateinfo, then the user ticket's detail."""
    client = envoy_private.client()
    app = f"/?activeAuth=wechat-work&wcwLoginType=oauth2"
    provider = cs.to_provider(client, app, cs.MOBILE_WECOM)
    assert provider.startswith(mock.base_url + "/connect/oauth2/authorize?appid=")
    assert provider.endswith("#wechat_redirect")
    _, answer = cs.back_from_provider(client, provider, cs.MOBILE_WECOM)
    assert answer.status == 302, answer
    who = cs.landed_identity(client, recorder, app)
    assert who["login"] == "zhangsan"
    assert who["email"] == "zhangsan@corp.example"
    assert who["phone"] == "13800000001"
    assert who["roles"] == ["data analyst"]
    assert who["org"] == "DEFAULT"
    assert mock.calls("/cgi-bin/user/getuserinfo") == ["GET /cgi-bin/user/getuserinfo"]
    assert mock.calls("/cgi-bin/auth/getuserdetail") == ["POST /cgi-bin/auth/getuserdetail"]


def test_user_agent_picks_in_app_login(envoy, mock):
    client = envoy.client()
    assert cs.to_provider(client, APP, cs.MOBILE_WECOM).startswith(
        mock.base_url + "/connect/oauth2/authorize?")
    assert cs.to_provider(client, APP, cs.DESKTOP).startswith(
        mock.base_url + "/wwlogin/sso/login?")
    assert cs.to_provider(client, APP + "&wcwLoginType=qr", cs.MOBILE_WECOM).startswith(
        mock.base_url + "/wwlogin/sso/login?")


def test_outsider_is_refused(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, f"/?activeAuth={METHOD}")
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider, mock_user="outsider")
    assert_nobody_let_in(answer, recorder, envoy, statuses=(403,))
    assert "not a member" in answer.text


def test_member_who_left_is_refused(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, f"/?activeAuth={METHOD}")
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider, mock_user="lisi")
    assert_nobody_let_in(answer, recorder, envoy, statuses=(403,))


def test_expired_app_token_is_refreshed_once_and_login_succeeds(envoy, mock, recorder):
    client = envoy.client()
    assert cs.login(client, APP).status == 302          # the app token is now cached
    mock.expire_tokens()
    mock.log.clear()
    client = envoy.client()
    answer = cs.login(client, APP)
    assert answer.status == 302, answer
    assert mock.calls() == ["GET /wwlogin/sso/login", "GET /cgi-bin/auth/getuserinfo",
                            "GET /cgi-bin/gettoken", "GET /cgi-bin/auth/getuserinfo",
                            "GET /cgi-bin/user/get"]
    assert cs.landed_identity(client, recorder, APP)["login"] == "zhangsan"


def test_reused_code_is_refused(envoy, mock, recorder):
    client = envoy.client()
    provider = cs.to_provider(client, APP)
    callback, answer = cs.back_from_provider(client, provider)
    assert answer.status == 302
    code = dict(p.split("=", 1) for p in callback.split("?", 1)[1].split("&"))["code"]
    # A fresh login whose callback carries the already used code.
    attacker = envoy.client()
    provider = cs.to_provider(attacker, APP)
    state = dict(p.split("=", 1) for p in provider.split("?", 1)[1].split("#")[0]
                 .split("&"))["state"]
    recorder.clear()
    replay = attacker.get(f"/sso/callback/{METHOD}?code={code}&state={state}")
    assert_nobody_let_in(replay, recorder, envoy, statuses=(401,))
    assert "40029" in replay.text and "already used" in replay.text
    # The same callback URL again: the flow is gone.
    again = client.get(callback)
    assert_nobody_let_in(again, recorder, envoy, statuses=(401,))


@pytest.mark.parametrize("errcode,status,words", [
    (60020, 502, "not set up correctly at WeCom"),
    (48002, 502, "not set up correctly at WeCom"),
    (45009, 503, "limiting requests"),
    (60011, 403, "may not use this application"),
    (40029, 401, "already used"),
])
def test_provider_error_codes_become_clear_pages(envoy, mock, recorder, errcode, status, words):
    client = envoy.client()
    provider = cs.to_provider(client, APP)
    mock.fail_next("/cgi-bin/auth/getuserinfo", {"errcode": errcode, "errmsg": "scripted"})
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider)
    assert_nobody_let_in(answer, recorder, envoy, statuses=(status,))
    assert words in answer.text and str(errcode) in answer.text
    assert answer.header("content-type").startswith("text/html")


def test_bad_corp_secret_is_a_clear_page(envoys, mock, recorder):
    cfg = cs.config_with(METHOD, wecom_method(mock.base_url, secret="wrong-secret"))
    envoy = envoys.start(cfg, name="wecom-badsecret", clusters=[("127.0.0.1", mock.port)])
    client = envoy.client()
    provider = cs.to_provider(client, APP)
    recorder.clear()
    _, answer = cs.back_from_provider(client, provider)
    assert_nobody_let_in(answer, recorder, envoy, statuses=(502,))
    assert "40001" in answer.text
    envoy.stop()
