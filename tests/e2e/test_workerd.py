"""What is particular to workerd, Cloudflare's Workers runtime (collected with
SSO_E2E_HOST=workerd only; conftest.py). The shared scenarios run through workerd like through
Envoy and Node; these check the artifact and the runtime's own ways:

- `wrangler deploy` (dry run, wrangler's own module collection) uploads exactly the modules
  sso-filter.capnp runs here: same names, types and bytes, same main module and compatibility
  date, and no Node compatibility flag;
- the `admin` entrypoint (counters) has no public route;
- repeated Cookie fields: workerd joins them with ", " (its rule for every repeated field), so
  a session cookie in such a request is not recognised and the request is treated as signed
  out: fail closed. Browsers send one Cookie field over HTTP/1.1; an HTTP/2 front joins cookie
  crumbs with "; " (RFC 9113 §8.2.3), as Cloudflare's edge and node-server do.
"""

from __future__ import annotations

import os
import re
import subprocess
import tomllib

import pytest

import harness
from harness import API, NAV, assert_nobody_let_in, jwt_login

EDGE = harness.EDGE_DIR


def _capnp_modules() -> list[tuple[str, str, str]]:
    """(name, kind, embedded path) of sso-filter.capnp's worker modules, in order."""
    text = harness.WORKERD_CAPNP.read_text()
    return re.findall(r'\(name = "([^"]+)", (esModule|wasm) = embed "([^"]+)"\)', text)


@pytest.fixture(scope="module")
def wrangler_upload(tmp_path_factory):
    """`wrangler deploy --dry-run --outdir`: what wrangler would upload, written to a folder,
    and its printed module table {name: type}."""
    out = tmp_path_factory.mktemp("wrangler-dist")
    wrangler = EDGE / "node_modules" / ".bin" / "wrangler"
    assert wrangler.exists(), "wrangler missing: scripts/setup.sh (npm ci in wasm-bindgen-harness)"
    env = {**os.environ, "WRANGLER_SEND_METRICS": "false", "NO_COLOR": "1", "CI": "true",
           "WRANGLER_LOG_PATH": str(out.parent / "wrangler-logs")}
    proc = subprocess.run([str(wrangler), "deploy", "--dry-run", "--outdir", str(out)],
                          cwd=EDGE, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    table = dict(re.findall(r"│\s*(\S+)\s*│\s*(esm|compiled-wasm|commonjs|text|data)\s*│",
                            proc.stdout))
    return out, table, proc.stdout


def test_wrangler_uploads_the_modules_workerd_runs(wrangler_upload):
    out, table, stdout = wrangler_upload
    modules = _capnp_modules()
    assert modules, "no module found in sso-filter.capnp"
    uploaded = sorted(str(p.relative_to(out)) for p in out.rglob("*")
                      if p.is_file() and p.name != "README.md")
    assert uploaded == sorted(name for name, _, _ in modules), stdout
    wrangler = tomllib.loads((EDGE / "wrangler.toml").read_text())
    # The main module: wrangler's `main` (relative to base_dir) is the capnp's first module.
    main = os.path.relpath(EDGE / wrangler["main"], EDGE / wrangler["base_dir"])
    assert modules[0][0] == main
    for name, kind, path in modules:
        assert (out / name).read_bytes() == (EDGE / path).read_bytes(), name
        if name != main:
            assert table.get(name) == {"esModule": "esm", "wasm": "compiled-wasm"}[kind], \
                (name, table)


def test_the_same_compatibility_and_no_node_apis():
    wrangler = tomllib.loads((EDGE / "wrangler.toml").read_text())
    capnp = harness.WORKERD_CAPNP.read_text()
    dates = re.findall(r'compatibilityDate = "([^"]+)"', capnp)
    assert dates == [wrangler["compatibility_date"]], dates
    # Neither asks for Node's APIs: the worker runs on the Workers APIs alone.
    assert "compatibilityFlags" not in capnp
    assert not [f for f in wrangler.get("compatibility_flags", []) if "node" in f]
    assert wrangler.get("no_bundle") is True


def test_dist_holds_the_sources_as_they_are():
    # build.sh copies them; a dist/ older than the sources would test stale code (every
    # WorkerdWorker checks it too, before it starts).
    assert harness.workerd_dist_problem() is None, harness.workerd_dist_problem()
    embedded = sorted(path for _, _, path in _capnp_modules())
    assert embedded == sorted(f"dist/{name}" for name, _, _ in _capnp_modules()), embedded


def test_admin_entrypoint_is_not_on_the_public_socket(main_envoy, recorder):
    c = main_envoy.client()
    jwt_login(c)
    counters = main_envoy.admin_get("/stats")
    assert "wasmcustom.sso_login_success" in counters, counters
    # On the protected socket /stats is just a path: the filter's, then the origin's.
    resp = main_envoy.client().get("/stats", headers=API)
    assert resp.status == 401 and "wasmcustom" not in resp.text, resp
    resp = c.get("/ready", headers=API)
    assert resp.status == 200 and resp.text != "LIVE\n", resp
    assert [e["path"] for e in recorder.requests()] == ["/ready"]


def test_repeated_cookie_fields_are_joined_with_a_comma_and_fail_closed(main_envoy, recorder):
    c = main_envoy.client()
    jwt_login(c)
    session = c.cookie_header()
    # One Cookie field: signed in.
    resp = c.request("GET", "/admin", [*API.items(), ("Cookie", f"{session}; theme=dark")],
                     use_jar=False)
    assert resp.status == 200, resp
    recorder.clear()
    # The same cookies in two fields, either order: workerd hands the worker "a, b", which is
    # not a session cookie. Signed out, nothing forwarded, nothing crashed.
    for fields in ([session, "theme=dark"], ["theme=dark", session]):
        resp = c.request("GET", "/admin", [*API.items(), *(("Cookie", f) for f in fields)],
                         use_jar=False)
        assert_nobody_let_in(resp, recorder, main_envoy, statuses=(401,))
        resp = c.request("GET", "/admin", [*NAV.items(), *(("Cookie", f) for f in fields)],
                         use_jar=False)
        assert resp.status == 302 and "/sso/login" in (resp.location or ""), resp
        assert recorder.requests() == []
