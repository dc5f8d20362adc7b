"""`type: ldap` against a real OpenLDAP (Debian slapd, started here on loopback; slapd.py),
through the edge build, in workerd with SSO_E2E_HOST=workerd and under Node otherwise (the Envoy
build refuses the method: docs/ldap.md).

Every test drives the built-in login form: login (plain and ldaps, memberOf and a group
search), wrong password, unknown user, empty password, an injection attempt, a throttled user,
and the directory being down, all with the one failure message.
"""

from __future__ import annotations

import re
import time

import pytest

import harness
import slapd as slapd_mod
from harness import assert_nobody_let_in, decode_identity_of, local_login, only_request

MESSAGE = "Sign-in failed. Check your user name and password, or try again later."


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    d = slapd_mod.Slapd(tmp_path_factory.mktemp("slapd")).start()
    yield d
    d.stop()


def _config(method: dict) -> dict:
    cfg = harness.base_config(None)
    cfg["methods"] = {"ldap": method}
    cfg["default_method"] = "ldap"
    cfg["tenants"] = {}
    return cfg


def _worker(envoys, directory, method: dict, name: str) -> harness.NodeWorker:
    """An edge worker: the host SSO_E2E_HOST names when it is an edge one (node, workerd), else
    a Node worker (only the edge build speaks LDAP)."""
    port = harness.free_port()
    cfg = _config(method)
    cfg["base_url"] = f"http://127.0.0.1:{port}"
    cls = harness.NodeWorker if envoys.cls is harness.Envoy else envoys.cls
    inst = cls(envoys.workdir, cfg, envoys.upstream_port, listen_port=port,
                              name=name, env={"NODE_EXTRA_CA_CERTS": str(directory.ca)})
    envoys.all.append(inst)
    return inst.start()


@pytest.fixture(scope="module")
def plain(envoys, directory):
    return _worker(envoys, directory, directory.method(), "ldap-plain")


@pytest.fixture(scope="module")
def tls(envoys, directory):
    # ldaps, groups from a group search as the service account rather than memberOf.
    method = directory.method(tls=True, attributes={},
                              group_search={"base": f"ou=groups,{slapd_mod.SUFFIX}"})
    return _worker(envoys, directory, method, "ldap-tls")


def _failure_page(resp) -> str:
    assert MESSAGE in resp.text, resp.text[:2000]
    # Only the per-request parts differ between two failure pages.
    return re.sub(r'value="[^"]*"', 'value=""', resp.text)


def test_login_carries_groups_and_the_chinese_name(plain, recorder):
    c = plain.client()
    resp = local_login(c, "alice", "alice-pw", rd="/after")
    assert resp.status == 303, resp
    assert resp.session_cookies_set
    assert c.get("/after").status == 200
    ident = decode_identity_of(only_request(recorder))
    assert ident["login"] == "alice", ident
    assert ident["name"] == "张伟", ident
    assert ident["email"] == "alice@example.org", ident
    assert sorted(ident["groups"]) == ["admins", "analysts"], ident
    assert ident["method"] == "ldap", ident


def test_ldaps_login_with_a_group_search(tls, recorder):
    c = tls.client()
    resp = local_login(c, "bob", "bob-pw")
    assert resp.status == 303, resp
    assert c.get("/").status == 200
    ident = decode_identity_of(only_request(recorder))
    assert (ident["login"], ident["name"], ident["groups"]) == \
        ("bob", "Bob Builder", ["analysts"]), ident


def test_every_failure_is_the_same_page(plain, recorder):
    pages = []
    for user, password in [("alice", "wrong"), ("nobody", "x"), ("alice", ""),
                           ("*)(uid=*", "x"), ("*", "*")]:
        resp = local_login(plain.client(), user, password)
        assert_nobody_let_in(resp, recorder)
        pages.append(_failure_page(resp))
    assert len(set(pages)) == 1


def test_injection_matches_nobody_even_with_a_real_password(plain, recorder):
    # `*)(uid=*` unescaped would match every user, and alice's password would then log in.
    for user in ["*)(uid=*", "*", "alice)(uid=*", "al*"]:
        resp = local_login(plain.client(), user, "alice-pw")
        assert_nobody_let_in(resp, recorder)


def test_throttled_after_repeated_failures(plain, recorder):
    for _ in range(3):
        assert local_login(plain.client(), "carol", "wrong").status == 401
    resp = local_login(plain.client(), "carol", "carol-pw")
    assert_nobody_let_in(resp, recorder, statuses=(429,))
    assert "Too many failed attempts" in resp.text


def test_directory_down_is_the_same_message(envoys, directory, recorder):
    dead = harness.free_port()
    inst = _worker(envoys, directory, directory.method(port=dead, timeout_ms=1000), "ldap-down")
    start = time.monotonic()
    resp = local_login(inst.client(), "alice", "alice-pw")
    assert_nobody_let_in(resp, recorder)
    _failure_page(resp)
    assert time.monotonic() - start < 5


def test_envoy_refuses_ldap_at_load(envoys, directory, recorder):
    port = harness.free_port()
    cfg = _config(directory.method())
    cfg["base_url"] = f"http://127.0.0.1:{port}"
    inst = harness.Envoy(envoys.workdir, cfg, envoys.upstream_port, listen_port=port,
                         name="ldap-envoy")
    envoys.all.append(inst)
    state = inst.start_expecting_refusal()
    try:
        if state == "live":
            try:
                served = inst.client().get("/healthz", timeout=5).status
            except OSError:
                served = None
            assert served is None or served >= 500, served
        log = inst.log_text()
        assert "methods.ldap: type ldap is not available in the Envoy build" in log, \
            inst.log_tail()
        assert "edge build" in log and "type oidc" in log
        assert recorder.requests() == []
    finally:
        inst.stop()
