"""Fixtures of the end-to-end suite (real Envoy + the built sso_filter.wasm).

- `upstream`: one recording upstream (demo/upstream.py) for the whole session; its recorder is
  cleared before every test, so `upstream.recorder` holds only the current test's requests.
- `envoys`: starts Envoy instances on free loopback ports, caches them by configuration, and
  stops them all at the end. `envoys.get(config)` fills `base_url` when it is None.
- `main_envoy`: the shared instance with built-in users, the seed's jwt-param and a tenant.

Nothing is skipped when a piece is missing: a missing Envoy, .wasm or fixture file fails.

The host the filter runs in: SSO_E2E_HOST=envoy (default: the real Envoy and the proxy-wasm
.wasm) or SSO_E2E_HOST=node (the JS edge worker of wasm-bindgen-harness/ under Node, through
harness.NodeWorker, which has Envoy's interface) or SSO_E2E_HOST=workerd (the same worker in
workerd, Cloudflare's Workers runtime: harness.WorkerdWorker). The same tests run against each.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import threading

import pytest

import harness
from harness import Envoy, EnvoyError

HOST = os.environ.get("SSO_E2E_HOST", "envoy")
HOSTS = {"envoy": Envoy, "node": harness.NodeWorker, "workerd": harness.WorkerdWorker}
if HOST not in HOSTS:
    raise pytest.UsageError(f"SSO_E2E_HOST={HOST!r}: expected one of {sorted(HOSTS)}")

# Tests of one host's own ways, collected only when the suite runs through that host.
collect_ignore = [] if HOST == "workerd" else ["test_workerd.py"]


def pytest_report_header(config):
    return f"sso-filter host: {HOST} (SSO_E2E_HOST)"


class Upstream:
    def __init__(self):
        self.recorder = harness.demo_upstream.Recorder()
        self.server = harness.demo_upstream.make_server("127.0.0.1", 0, self.recorder)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def upstream():
    up = Upstream()
    yield up
    up.close()


@pytest.fixture(autouse=True)
def _clear_recorder(upstream):
    upstream.recorder.clear()
    yield


@pytest.fixture
def recorder(upstream):
    return upstream.recorder


_MGR_KEY = pytest.StashKey["Envoys"]()
_MARKS_KEY = pytest.StashKey[dict]()


class Envoys:
    """Starts and caches Envoy instances; every one is stopped at session end."""

    def __init__(self, workdir, upstream_port: int):
        self.workdir = workdir
        self.upstream_port = upstream_port
        # The host class (Envoy or harness.NodeWorker); tests that build an instance by hand
        # use `envoys.cls(...)`.
        self.cls = HOSTS[HOST]
        self.cache: dict[str, Envoy] = {}
        self.all: list[Envoy] = []

    def _materialise(self, config: dict, port: int) -> dict:
        cfg = copy.deepcopy(config)
        if cfg.get("base_url") is None:
            cfg["base_url"] = f"http://127.0.0.1:{port}"
        return cfg

    def start(self, config: dict, name: str = "envoy", port: int | None = None,
              attempts: int = 3, env: dict | None = None,
              clusters: list[tuple[str, int]] | None = None,
              hcm_options: dict | None = None) -> Envoy:
        """A new instance (not cached). `config["base_url"] = None` -> its own origin.
        `clusters`: (host, port) of IdPs to add as `sso_<host>_<port>` clusters.
        `hcm_options`: extra fields of the listener's HttpConnectionManager (harness.envoy_yaml)."""
        last = None
        for _ in range(attempts):
            p = port or harness.free_port()
            inst = self.cls(self.workdir, self._materialise(config, p), self.upstream_port,
                            listen_port=p, name=name, env=env, clusters=clusters,
                            hcm_options=hcm_options)
            self.all.append(inst)
            try:
                return inst.start()
            except EnvoyError as err:
                last = err
                if "ddress already in use" not in str(err) or port is not None:
                    raise
        raise last

    def get(self, config: dict, name: str = "envoy", env: dict | None = None) -> Envoy:
        """A cached instance per distinct configuration (and environment)."""
        key = json.dumps([config, env], sort_keys=True)
        inst = self.cache.get(key)
        if inst is None or inst.proc.poll() is not None:
            inst = self.start(config, name=name, env=env)
            self.cache[key] = inst
        return inst

    def stop_all(self):
        for inst in self.all:
            inst.stop()


@pytest.fixture(scope="session")
def envoys(request, tmp_path_factory, upstream):
    needs = {"envoy": ((harness.ENVOY, "Envoy (scripts/setup.sh)"),
                       (harness.WASM, "the filter (make wasm)")),
             "node": ((harness.EDGE_WASM, "the edge module (make edge)"),),
             "workerd": ((harness.EDGE_WASM, "the edge module (make edge)"),
                         (harness.WORKERD, "workerd (scripts/setup.sh)"))}[HOST]
    for path, what in needs:
        if not path.exists():
            pytest.fail(f"{path} is missing: build {what} first", pytrace=False)
    if HOST == "workerd" and harness.workerd_dist_problem():
        pytest.fail(harness.workerd_dist_problem(), pytrace=False)
    mgr = Envoys(tmp_path_factory.mktemp("envoy"), upstream.port)
    request.session.stash[_MGR_KEY] = mgr
    yield mgr
    mgr.stop_all()
    timings = ", ".join(f"{e.name}={e.ready_seconds:.1f}s" for e in mgr.all if e.ready_seconds)
    print(f"\n{HOST} startup times: {timings}\n{HOST} work dirs under {mgr.workdir}")


@pytest.fixture(scope="session")
def main_config():
    """Shared configuration; base_url None = the instance's own origin."""
    return harness.base_config(None)


@pytest.fixture(scope="session")
def main_envoy(envoys, main_config) -> Envoy:
    return envoys.get(main_config, name="main")


@pytest.fixture
def client(main_envoy) -> harness.Client:
    return main_envoy.client()


@pytest.fixture(scope="session")
def fixed_clock_lib(tmp_path_factory) -> str:
    """tests/e2e/clock/fixed_clock.c built as an LD_PRELOAD library (needs a C compiler)."""
    src = harness.REPO / "tests" / "e2e" / "clock" / "fixed_clock.c"
    out = tmp_path_factory.mktemp("clock") / "fixed_clock.so"
    cc = os.environ.get("CC", "cc")
    proc = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(out), str(src)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"building {src} failed:\n{proc.stderr}", pytrace=False)
    return str(out)


# ---------------------------------------------------------------- Envoy logs on failure

@pytest.fixture(autouse=True)
def _envoy_log_marks(request):
    mgr = request.session.stash.get(_MGR_KEY, None)
    marks = {}
    if mgr is not None:
        for env in mgr.all:
            try:
                marks[env.name] = env.log_path.stat().st_size
            except OSError:
                marks[env.name] = 0
    request.node.stash[_MARKS_KEY] = marks
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    mgr = item.session.stash.get(_MGR_KEY, None)
    if mgr is None:
        return
    marks = item.stash.get(_MARKS_KEY, {})
    for env in mgr.all:
        try:
            data = env.log_path.read_bytes()[marks.get(env.name, 0):]
        except OSError:
            continue
        lines = data.decode("utf-8", "replace").splitlines()
        interesting = [ln for ln in lines if "wasm" in ln or "critical" in ln or "error" in ln]
        if interesting:
            report.sections.append((f"Envoy log {env.name} (wasm/error lines during test)",
                                    "\n".join(interesting[-40:])))


