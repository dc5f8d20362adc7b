"""What every host does around the filter, the same way: a Host header that is not host[:port]
is refused before anything is decided, and an origin that cannot be reached is a 5xx that
lets nobody in and crashes nothing.

Why these are here: workerd joins the Host header and the request target into `request.url`
as received, so `Host: a/b` would change the path the worker parses (handler.mjs refuses it, as
Envoy's codec and node-server do); and a failed fetch() of the origin used to surface as the
worker's "internal error" 500.
"""

from __future__ import annotations

import pytest

import harness
from harness import NAV, assert_nobody_let_in, jwt_login


@pytest.mark.parametrize("host", ["evil/static", "a?b", "a b", "x/../admin"])
def test_a_host_that_is_not_a_host_is_400(main_envoy, recorder, host):
    # /admin is protected; with a Host like "x/static" the parsed path would have moved under a
    # public prefix, so only 400 and nothing forwarded is right.
    c = main_envoy.client()
    resp = c.get("/admin", headers=[("Host", host), *NAV.items()])
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(400,))
    resp = c.get("/healthz", headers=[("Host", host), *NAV.items()])
    assert_nobody_let_in(resp, recorder, main_envoy, statuses=(400,))


def test_a_plain_host_with_a_port_is_served(main_envoy, recorder):
    c = main_envoy.client()
    resp = c.get("/healthz", headers=[("Host", f"sso.example.test:{main_envoy.port}")])
    assert resp.status == 200, resp
    assert [e["path"] for e in recorder.requests()] == ["/healthz"]


def test_origin_down_is_a_5xx_and_nobody_gets_in(envoys, recorder):
    dead = harness.free_port()  # nothing listens there
    port = harness.free_port()
    cfg = harness.base_config(f"http://127.0.0.1:{port}")
    inst = envoys.cls(envoys.workdir, cfg, dead, listen_port=port, name="origin-down")
    envoys.all.append(inst)
    inst.start()
    c = inst.client()
    # Public path, then a protected one after a real login: the filter lets both through and
    # the front's fetch fails. Envoy's router answers 503, the edge worker 502.
    resp = c.get("/healthz", headers=NAV)
    assert resp.status in (502, 503), resp
    resp = jwt_login(c)
    assert resp.status == 302 and resp.session_cookies_set, resp
    resp = c.get("/admin", headers=NAV)
    assert resp.status in (502, 503), resp
    assert not inst.wasm_crashes(), "\n".join(inst.wasm_crashes())
    inst.stop()
