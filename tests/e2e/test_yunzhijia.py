"""Yunzhijia (`type: yunzhijia`) through the real Envoy against the Yunzhijia mock
(tests/e2e/idp/cn/yunzhijia.py), with the seeds' light-app URL
`?activeAuth=yunzhijia&tenantCode=tenant1#/publish` plus the client's `ticket`."""

from __future__ import annotations

import pytest

import cn_support as cs
from harness import assert_nobody_let_in
from idp.cn import yunzhijia as Y

METHOD = "yunzhijia"
SEED = "/?activeAuth=yunzhijia&tenantCode=tenant1"


def yunzhijia_method(base: str, **extra) -> dict:
    method = {
        "type": "yunzhijia", "label": "Yunzhijia",
        "app_id": Y.APP_ID, "app_secret": Y.APP_SECRET, "eid": Y.EID,
        "base": base, "organization": "DEFAULT",
        "mapping": {"login": "jobNo", "role_rules": [
            {"claim": "eid", "equals": Y.EID, "roles": ["data viewer"]}]},
    }
    method.update(extra)
    return method


@pytest.fixture(scope="module")
def mock():
    m = Y.YunzhijiaMock().start()
    yield m
    m.stop()


@pytest.fixture(autouse=True)
def _fresh(mock):
    mock.reset()
    yield
    assert mock.violations == [], "the filter sent what Yunzhijia does not accept"


@pytest.fixture(scope="module")
def envoy(envoys, mock):
    cfg = cs.config_with(METHOD, yunzhijia_method(mock.base_url))
    return envoys.start(cfg, name="yunzhijia", clusters=[("127.0.0.1", mock.port)])


def test_seed_url_with_a_ticket_lands_in_the_tenant(envoy, mock, recorder):
    client = envoy.client()
    answer = client.get(f"{SEED}&ticket={mock.issue_ticket()}")
    assert answer.status == 302, answer
    assert answer.location == SEED                      # the ticket is gone from the URL
    who = cs.landed_identity(client, recorder, SEED)
    assert who["login"] == "E010"
    assert who["name"] == "张三"
    assert who["email"] == "zhangsan@corp.example"
    assert who["phone"] == "13800000007"
    assert who["org"] == "DEFAULT"
    assert who["roles"] == ["data viewer"]
    assert who["tenant"] == "tenant1"
    assert who["attributes"]["openid"] == "op-zhangsan"
    assert mock.calls(tokens=False) == ["POST /gateway/ticket/user/acquirecontext"]


def test_without_a_ticket_the_page_says_to_open_it_from_yunzhijia(envoy, mock, recorder):
    client = envoy.client()
    first = client.get(SEED)
    assert first.status == 302
    recorder.clear()
    page = client.get(first.location)
    assert_nobody_let_in(page, recorder, envoy, statuses=(401,))
    assert mock.calls() == []


def test_another_team_is_refused(envoy, mock, recorder):
    client = envoy.client()
    recorder.clear()
    answer = client.get(f"{SEED}&ticket={mock.issue_ticket('outsider')}")
    assert_nobody_let_in(answer, recorder, envoy, statuses=(403,))
    assert "not a member" in answer.text


def test_expired_app_token_is_refreshed_once(envoy, mock, recorder):
    client = envoy.client()
    assert client.get(f"{SEED}&ticket={mock.issue_ticket()}").status == 302
    mock.expire_tokens()
    mock.log.clear()
    client = envoy.client()
    answer = client.get(f"{SEED}&ticket={mock.issue_ticket()}")
    assert answer.status == 302, answer
    assert mock.calls() == ["POST /gateway/ticket/user/acquirecontext",
                            "POST /gateway/oauth2/token/getAccessToken",
                            "POST /gateway/ticket/user/acquirecontext"]
    assert cs.landed_identity(client, recorder, SEED)["login"] == "E010"


def test_reused_ticket_is_refused(envoy, mock, recorder):
    ticket = mock.issue_ticket()
    assert envoy.client().get(f"{SEED}&ticket={ticket}").status == 302
    recorder.clear()
    again = envoy.client().get(f"{SEED}&ticket={ticket}")
    assert_nobody_let_in(again, recorder, envoy, statuses=(401,))
    assert "1001" in again.text


def test_bad_app_secret_is_a_clear_page(envoys, mock, recorder):
    cfg = cs.config_with(METHOD, yunzhijia_method(mock.base_url, app_secret="wrong"))
    envoy = envoys.start(cfg, name="yunzhijia-bad", clusters=[("127.0.0.1", mock.port)])
    recorder.clear()
    answer = envoy.client().get(f"{SEED}&ticket={mock.issue_ticket()}")
    assert_nobody_let_in(answer, recorder, envoy, statuses=(502,))
    assert "not set up correctly at Yunzhijia" in answer.text and "10000101" in answer.text
    envoy.stop()
