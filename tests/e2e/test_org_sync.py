"""The organisation path (`org_from_departments`, "join the organisation on login") of DingTalk,
WeCom and Feishu, through the real Envoy (or SSO_E2E_HOST=node / workerd) against the
providers' mocks (tests/e2e/idp/cn), which follow the documented department APIs and count every
call:

- with `sync_minutes`, the host's timer fetches the department tree (DingTalk
  `topapi/v2/department/listsub` level by level, WeCom `cgi-bin/department/list`, Feishu
  `contact/v3/departments/0/children?fetch_child=true` in pages of 50), one worker for all
  (Envoy runs several VMs here: the main thread's and two workers'), and a login then makes no
  department call: the path reaches the upstream from the cached tree;
- with `sync_minutes: 0` (the default) WeCom and Feishu logins name the path per login (the
  DingTalk per-login path is test_dingtalk.py's).

The first sync runs on the first tick after start (Envoy's root-context tick, the Node server's
interval, a request in workerd), so no test waits a period."""

from __future__ import annotations

import time

import pytest

import cn_support as cs
from idp.cn import dingtalk as D
from idp.cn import lark as L
from idp.cn import wecom as W
from test_dingtalk import SEED_APP, dingtalk_method
from test_lark import DESKTOP, lark_method
from test_wecom import wecom_method

PATH = "研发部/数据组"


def synced(inst, client, method: str, timeout: float = 30.0) -> int:
    """Waits for the first successful sync of `method` (a request on the way gives workerd's
    isolate its tick); the number of successful syncs. A failed sync fails the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        client.get("/healthz")
        stats = inst.stats("sso_org_sync")
        failed = sum(v for k, v in stats.items() if k.endswith(f"sso_org_sync_failure.{method}"))
        assert failed == 0, f"sync failed: {stats}\n{inst.log_tail()}"
        done = sum(v for k, v in stats.items() if k.endswith(f"sso_org_sync_success.{method}"))
        if done:
            return done
        time.sleep(0.2)
    raise AssertionError(f"no sync of {method} within {timeout}s:\n{inst.log_tail()}")


def start(envoys, mock, name: str, method_name: str, method: dict):
    """An instance with one provider method in front of its mock."""
    return envoys.start(cs.config_with(method_name, method), name=name,
                        clusters=[("127.0.0.1", mock.port)])


def department_calls(mock) -> list[str]:
    return [c for c in mock.calls() if "department" in c]


def once_for_all_workers(inst, client, mock, method: str, per_sync: list[str]) -> None:
    """The tree was fetched once per successful sync, by one worker, and nobody fetches again
    before the period ends."""
    syncs = synced(inst, client, method)
    assert department_calls(mock) == per_sync * syncs, mock.calls()
    time.sleep(2.5)     # every worker ticks a few times more
    assert department_calls(mock) == per_sync * syncs, mock.calls()
    assert mock.violations == [], mock.violations


# --------------------------------------------------------------------------- DingTalk

@pytest.fixture(scope="module")
def dt_mock():
    m = D.DingTalkMock().start()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def dt_synced(envoys, dt_mock):
    method = dingtalk_method(dt_mock.base_url, sync_minutes=1)
    return start(envoys, dt_mock, "dingtalk-org-sync", "dingtalk", method)


def test_dingtalk_logins_take_the_path_from_the_synced_tree(dt_synced, dt_mock, recorder):
    client = dt_synced.client()
    once_for_all_workers(dt_synced, client, dt_mock, "dingtalk",
                         ["POST /topapi/v2/department/listsub"] * 3)
    dt_mock.reset()
    page = cs.inapp_page(client, SEED_APP, cs.DINGTALK_UA)
    data = cs.page_data(page)
    answer = cs.post_code(client, data["post"], {"state": data["state"],
                                                 "code": dt_mock.issue_inapp_code("u001")})
    assert answer.status == 200, answer
    who = cs.landed_identity(client, recorder, SEED_APP)
    assert who["login"] == "u001" and who["org"] == PATH, who
    assert dt_mock.calls(tokens=False) == ["POST /topapi/v2/user/getuserinfo",
                                           "POST /topapi/v2/user/get"]
    assert dt_mock.violations == []


# --------------------------------------------------------------------------- WeCom

@pytest.fixture(scope="module")
def wc_mock():
    m = W.WecomMock().start()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def wc_synced(envoys, wc_mock):
    method = wecom_method(wc_mock.base_url, org_from_departments=True, sync_minutes=1)
    return start(envoys, wc_mock, "wecom-org-sync", "wechat-work", method)


@pytest.fixture(scope="module")
def wc_per_login(envoys, wc_mock):
    method = wecom_method(wc_mock.base_url, org_from_departments=True)
    return start(envoys, wc_mock, "wecom-org", "wechat-work", method)


def redirect_login(inst, recorder, app: str) -> dict:
    """A whole redirect login (QR / web), then the identity the upstream gets."""
    client = inst.client()
    answer = cs.login(client, app)
    assert answer.status == 302, answer
    return cs.landed_identity(client, recorder, answer.location)


def wecom_login(inst, recorder) -> dict:
    return redirect_login(inst, recorder, "/?activeAuth=wechat-work")


def test_wecom_logins_take_the_path_from_the_synced_tree(wc_synced, wc_mock, recorder):
    once_for_all_workers(wc_synced, wc_synced.client(), wc_mock, "wechat-work",
                         ["GET /cgi-bin/department/list"])
    wc_mock.reset()
    who = wecom_login(wc_synced, recorder)
    assert who["login"] == "zhangsan" and who["org"] == PATH, who
    assert wc_mock.calls(tokens=False) == ["GET /wwlogin/sso/login",
                                           "GET /cgi-bin/auth/getuserinfo",
                                           "GET /cgi-bin/user/get"]
    assert wc_mock.violations == []


def test_wecom_without_sync_names_the_path_per_login(wc_per_login, wc_mock, recorder):
    wc_mock.reset()
    who = wecom_login(wc_per_login, recorder)
    assert who["org"] == PATH, who
    # The member's main department (3), then its parent (2), up to the root (1).
    assert wc_mock.calls(tokens=False)[-2:] == ["GET /cgi-bin/department/get"] * 2
    assert [e["query"]["id"] for e in wc_mock.log if e["path"] == "/cgi-bin/department/get"] \
        == ["3", "2"]
    assert wc_mock.violations == []


# --------------------------------------------------------------------------- Feishu

@pytest.fixture(scope="module")
def lk_mock():
    m = L.LarkMock().start()
    yield m
    m.stop()


@pytest.fixture(scope="module")
def lk_synced(envoys, lk_mock):
    method = lark_method(lk_mock.base_url, org_from_departments=True, sync_minutes=1)
    return start(envoys, lk_mock, "lark-org-sync", "lark", method)


@pytest.fixture(scope="module")
def lk_per_login(envoys, lk_mock):
    method = lark_method(lk_mock.base_url, org_from_departments=True)
    return start(envoys, lk_mock, "lark-org", "lark", method)


def lark_login(inst, recorder) -> dict:
    return redirect_login(inst, recorder, DESKTOP)


def test_feishu_logins_take_the_path_from_the_synced_tree(lk_synced, lk_mock, recorder):
    # 62 departments below the root: two pages of at most 50.
    children = "GET /open-apis/contact/v3/departments/0/children"
    once_for_all_workers(lk_synced, lk_synced.client(), lk_mock, "lark", [children] * 2)
    lk_mock.reset()
    who = lark_login(lk_synced, recorder)
    assert who["login"] == "on_zhangsan" and who["org"] == PATH, who
    # The user's departments still come from the user (no department call).
    assert lk_mock.calls(tokens=False) == ["GET /open-apis/authen/v1/authorize",
                                           "POST /open-apis/authen/v2/oauth/token",
                                           "GET /open-apis/authen/v1/user_info",
                                           "GET /open-apis/contact/v3/users/ou_zhangsan"]
    assert lk_mock.violations == []


def test_feishu_without_sync_names_the_path_per_login(lk_per_login, lk_mock, recorder):
    lk_mock.reset()
    who = lark_login(lk_per_login, recorder)
    assert who["org"] == PATH, who
    assert lk_mock.calls(tokens=False)[-3:] == ["GET /open-apis/contact/v3/users/ou_zhangsan",
                                                "GET /open-apis/contact/v3/departments/od-data",
                                                "GET /open-apis/contact/v3/departments/od-rd"]
    assert lk_mock.violations == []
