"""Observability (docs/behaviour.md "Observability"): Envoy stats `wasmcustom.` counters
`sso_login_success.<method>`, `sso_login_failure.<method>.<reason>`, `sso_deny.<reason>`, and
one log line per denial that never carries a token, password or cookie."""

from __future__ import annotations

import harness
from harness import API, SEED_TOKEN, USERS, jwt_login, jwt_url, local_login


def _sum(stats: dict, prefix: str) -> int:
    return sum(v for k, v in stats.items() if k.startswith(prefix))


def test_login_counters_and_deny_log(envoys, recorder):
    # A dedicated instance, so the counts are this test's own.
    cfg = harness.base_config(None, keys=[harness.new_session_key()], users=[USERS["admin"]])
    inst = envoys.get(cfg, name="counters")
    c = inst.client()
    jwt_login(c)
    bad = SEED_TOKEN[:-3] + ("xyz" if not SEED_TOKEN.endswith("xyz") else "abc")
    assert c.get(jwt_url(bad), headers=API).status == 401
    assert local_login(inst.client(), "admin", "wrong-password-123").status == 401
    assert local_login(inst.client(), "admin", USERS["admin"].password).status == 303

    stats = inst.stats("sso_")
    names = sorted(stats)
    assert stats.get("wasmcustom.sso_login_success.jwt-param") == 1, names
    assert stats.get("wasmcustom.sso_login_success.local") == 1, names
    assert _sum(stats, "wasmcustom.sso_login_failure.jwt-param.") == 1, names
    assert _sum(stats, "wasmcustom.sso_login_failure.local.") == 1, names

    log = inst.log_text()
    assert "sso-filter: deny reason=" in log, inst.log_tail()
    assert bad not in log and SEED_TOKEN not in log, "token in Envoy's log"
    assert "wrong-password-123" not in log, "password in Envoy's log"
    for value in c.session_jar().values():
        assert value not in log, "session cookie in Envoy's log"


def test_no_wasm_crash_in_shared_instance(main_envoy):
    """security.md §0.2 item 4 over everything the shared instance has served so far."""
    assert not main_envoy.wasm_crashes(), "\n".join(main_envoy.wasm_crashes())
    assert main_envoy.proc.poll() is None, "Envoy died"
