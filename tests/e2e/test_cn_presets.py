"""envoy/plugin/cn.json and teams.json: the provider examples are accepted by `sso-filter
validate`, `clusters` names every provider API host, Envoy loads them, and the seeds' URLs,
exactly as written, start the right login against the real provider hosts (no callout is made
before the provider answers, so nothing leaves the machine)."""

from __future__ import annotations

import json
import subprocess
import urllib.parse

import pytest

import cn_support as cs
import harness

PLUGIN = harness.REPO / "envoy" / "plugin"


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(harness.CLI), *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def cn_envoy(envoys):
    return envoys.get(json.loads((PLUGIN / "cn.json").read_text()), name="cn-preset")


def test_presets_validate_and_name_their_clusters():
    proc = cli("validate", str(PLUGIN / "cn.json"))
    assert proc.returncode == 0, proc
    for m in ("dingtalk (dingtalk)", "wechat-work (wecom)", "lark (lark)",
              "yunzhijia (yunzhijia)", "wechat (wechat)"):
        assert m in proc.stdout, proc.stdout
    clusters = cli("clusters", str(PLUGIN / "cn.json")).stdout
    for name in ("sso_oapi_dingtalk_com_443", "sso_api_dingtalk_com_443",
                 "sso_qyapi_weixin_qq_com_443", "sso_open_feishu_cn_443",
                 "sso_www_yunzhijia_com_443", "sso_api_weixin_qq_com_443"):
        assert name in clusters, clusters
    proc = cli("validate", str(PLUGIN / "teams.json"))
    assert proc.returncode == 0 and "teams (teams)" in proc.stdout, proc
    assert "sso_login_microsoftonline_com_443" in cli("clusters", str(PLUGIN / "teams.json")).stdout


def start(envoy, seed_url: str, agent: str = cs.DESKTOP) -> harness.Response:
    client = envoy.client()
    headers = dict(harness.NAV, **{"User-Agent": agent})
    first = client.get(seed_url, headers=headers)
    assert first.status == 302 and first.location.startswith("/sso/login?"), first
    return client.get(first.location, headers=headers)


def test_seed_urls_as_written(cn_envoy, recorder):
    cfg = json.loads((PLUGIN / "cn.json").read_text())
    corp = cfg["methods"]["dingtalk"]["corp_id"]
    # DingTalk in-app: the JSAPI page for the configured org.
    page = start(cn_envoy, f"/?activeAuth=dingtalk&dtLoginType=authCode&corpId={corp}",
                 cs.DINGTALK_UA)
    assert page.status == 200 and "requestAuthCode" in page.text, page
    # WeCom in-app OAuth.
    wecom = start(cn_envoy, "/?activeAuth=wechat-work&wcwLoginType=oauth2")
    assert wecom.status == 302
    assert wecom.location.startswith("https://open.weixin.qq.com/connect/oauth2/authorize?appid="
                                     + cfg["methods"]["wechat-work"]["corp_id"])
    assert wecom.location.endswith("#wechat_redirect")
    # Feishu desktop homepage: the authorize page, back to /lark/callback.
    lark = start(cn_envoy, "/?activeAuth=lark&larkLoginType=desktop")
    assert lark.status == 302
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(lark.location).query)
    assert lark.location.startswith("https://accounts.feishu.cn/open-apis/authen/v1/authorize?")
    assert q["redirect_uri"] == ["https://app.example.com/lark/callback"]
    # Yunzhijia light app without the client's ticket: told to open it from Yunzhijia.
    yzj = start(cn_envoy, "/?activeAuth=yunzhijia&tenantCode=tenant1")
    assert yzj.status == 401
    # WeChat in a browser: the website QR page.
    wechat = start(cn_envoy, "/?activeAuth=wechat")
    assert wechat.location.startswith("https://open.weixin.qq.com/connect/qrconnect?appid=")
    assert recorder.requests() == []


def test_teams_seed_url(envoys, recorder):
    inst = envoys.get(json.loads((PLUGIN / "teams.json").read_text()), name="teams-preset")
    page = start(inst, "/?activeAuth=teams")
    assert page.status == 200 and "getAuthToken" in page.text, page
    flow = [c for c in page.set_cookies if c.name.startswith("sso_session_flow_")]
    assert flow and flow[0].attrs.get("partitioned") and flow[0].attrs.get("samesite") == "None"
    assert recorder.requests() == []
