"""The fleet store's price (issue 16), measured by `make bench` in the same run as the wrk
configurations: a real etcd (Debian's etcd-server) on the upstream's CPU, and two front Envoys
with the same filter and methods, one keeping single use and logouts in its own memory
(`store` local), one in etcd. Single requests on idle Envoys, interleaved, one keep-alive
connection each, BENCH_LOGIN_N of every kind:

- a one-time JWT login (`one_time: true`: the `jti` is used once) -> 302 and a session;
- a CAS single-logout POST (a new ticket each time) -> 200;
- a request with a CAS session (its ticket digest is checked against the logged-out list on
  every request) -> proxied, 200;
- a request with a session of a method without single logout -> proxied, 200; with etcd this
  must make no store call at all (checked on the etcd cluster's request counter);

then wrk with the CAS session through each front (BENCH_FLEET_WRK_ROUNDS x
BENCH_FLEET_WRK_SECONDS): requests/s, p99 and the front's CPU per request under load.

The difference of the medians (etcd minus local) is what the fleet store adds to each.
"""

from __future__ import annotations

import http.client
import secrets
import shutil
import statistics
import sys
import time
import urllib.parse
from pathlib import Path

from jwcrypto import jwk, jwt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))
from messages import cas_logout_body, seal_session  # noqa: E402


def _config(b, port: int, keys, etcd_url: str | None) -> dict:
    conf = b.sso_base(port, keys)
    conf["default_method"] = "jwt-param"
    conf["methods"] = {
        "jwt-once": {"type": "jwt", "param": "jwtParam", "one_time": True,
                     "verify": {"alg": "HS256", "secret": keys.hs_secret},
                     "mapping": {"login": "sub"}},
        "jwt-param": {"type": "jwt", "param": "jwtParam",
                      "verify": {"alg": "HS256", "secret": keys.hs_secret}},
        # Only its logout endpoint is used: no CAS server is called.
        "cas": {"type": "cas", "server_url": "http://127.0.0.1:9/cas",
                "logout_sources": ["127.0.0.1/32"]},
    }
    if etcd_url:
        conf["store"] = {"type": "etcd", "url": etcd_url, "prefix": "bench/"}
    return conf


def _start_etcd(b, workdir: Path, cpu: str) -> tuple[object, int]:
    binary = shutil.which("etcd")
    if not binary:
        raise b.BenchError("etcd is missing (bench/run.sh installs etcd-server)")
    port, peer = b.free_port(), b.free_port()
    url = f"http://127.0.0.1:{port}"
    proc = b.spawn(["taskset", "-c", cpu, binary, "--name", "bench",
                    "--data-dir", str(workdir / "etcd-data"),
                    "--listen-client-urls", url, "--advertise-client-urls", url,
                    "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                    "--initial-cluster", f"bench=http://127.0.0.1:{peer}",
                    "--log-level", "warn"], workdir / "etcd.log")
    deadline = time.time() + 30
    while True:
        if proc.poll() is not None:
            raise b.BenchError(f"etcd exited:\n{b.tail(workdir / 'etcd.log')}")
        try:
            if b.request(port, "POST", "/v3/kv/range", {"Content-Type": "application/json"},
                         b'{"key":"cHJvYmU="}').status == 200:
                return proc, port
        except OSError:
            pass
        if time.time() > deadline:
            raise b.BenchError(f"etcd not ready:\n{b.tail(workdir / 'etcd.log')}")
        time.sleep(0.2)


def measure(b, envoy: str, workdir: Path, up_port: int, keys) -> dict:
    """`b` is the bench module (bench.py, running as __main__): its process bookkeeping and
    Envoy helpers are reused, so every process started here is stopped with the others."""
    n = b.LOGIN_N
    _, etcd_port = _start_etcd(b, workdir, b.UPSTREAM_CPU)
    etcd_cluster = f"sso_127_0_0_1_{etcd_port}"
    fronts = {}
    for name, url in (("local", None), ("etcd", f"http://127.0.0.1:{etcd_port}")):
        port, admin = b.free_port(), b.free_port()
        conf = _config(b, port, keys, url)
        route = [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]
        clusters = [b.backend_cluster("backend", up_port)]
        if url:
            clusters.append(b.idp_cluster(etcd_port))
        boot = b.bootstrap(port, admin, b.hcm("ingress", [b.wasm_filter(conf)], route), clusters)
        fronts[name] = (b.start_envoy(envoy, f"fleet-{name}", boot, b.FRONT_CPU, workdir, port,
                                      admin), conf)
    for inst, _ in fronts.values():
        b.wait_ready(inst.admin_port, inst.proc, inst.logfile)
    log_n = f"fleet store: {n} of each kind, local vs etcd"
    b.log(log_n)
    signer = jwk.JWK(kty="oct", k=b.b64nopad(keys.hs_secret.encode(), urlsafe=True))
    now = int(time.time())

    def one_time() -> str:
        tok = jwt.JWT(header={"alg": "HS256", "typ": "JWT"},
                      claims={"sub": "bench", "jti": secrets.token_hex(8), "exp": now + 3600})
        tok.make_signed_token(signer)
        return tok.serialize()

    def session(conf: dict, sid: bool) -> str:
        payload = {"v": 1, "iat": now, "exp": now + 3600,
                   "id": {"login": "bench", "method": "cas" if sid else "jwt-param"}}
        if sid:
            payload["sid"] = secrets.token_hex(16)
        return f"sso_session={seal_session(conf, payload)}"

    kinds = ("once", "logout", "sid_session", "plain_session")
    t = {f"{k}_{f}": [] for k in kinds for f in fronts}
    conns = {f: http.client.HTTPConnection("127.0.0.1", inst.port, timeout=30)
             for f, (inst, _) in fronts.items()}
    cookies = {f: {"sid": session(conf, True), "plain": session(conf, False)}
               for f, (_, conf) in fronts.items()}
    form = {"Content-Type": "application/x-www-form-urlencoded"}

    def timed(key, f, method, path, headers, body, want):
        inst = fronts[f][0]
        t0 = time.perf_counter()
        r = b.request(inst.port, method, path, headers, body, conn=conns[f])
        took = time.perf_counter() - t0
        if r.status != want:
            raise b.BenchError(f"fleet {key} ({f}): status {r.status}, expected {want}: "
                               f"{r.body[:200]!r}")
        if key is not None:
            t[f"{key}_{f}"].append(took)

    def round_(key_of):
        for f in fronts:
            timed(key_of("once"), f, "GET",
                  "/app?activeAuth=jwt-once&jwtParam=" + urllib.parse.quote(one_time()),
                  {"Accept": "application/json"}, None, 302)
            timed(key_of("logout"), f, "POST", "/sso/callback/cas", form,
                  cas_logout_body(f"ST-{secrets.token_hex(12)}"), 200)
            timed(key_of("sid_session"), f, "GET", "/app",
                  {"Accept": "application/json", "Cookie": cookies[f]["sid"]}, None, 200)
            timed(key_of("plain_session"), f, "GET", "/app",
                  {"Accept": "application/json", "Cookie": cookies[f]["plain"]}, None, 200)

    try:
        round_(lambda k: None)  # warm: V8, connection pools, etcd's lease for this window
        etcd_inst = fronts["etcd"][0]
        plain_before = b.admin_counter(etcd_inst.admin_port,
                                       f"cluster.{etcd_cluster}.upstream_rq_total")
        for _ in range(n):
            round_(lambda k: k)
        # The plain sessions alone, to show they never reach etcd.
        calls_before = b.admin_counter(etcd_inst.admin_port,
                                       f"cluster.{etcd_cluster}.upstream_rq_total")
        for _ in range(n):
            timed(None, "etcd", "GET", "/app",
                  {"Accept": "application/json", "Cookie": cookies["etcd"]["plain"]}, None, 200)
        calls_after = b.admin_counter(etcd_inst.admin_port,
                                      f"cluster.{etcd_cluster}.upstream_rq_total")
    finally:
        for c in conns.values():
            c.close()
    if calls_after != calls_before:
        raise b.BenchError(f"sessions without single logout called etcd "
                           f"{calls_after - calls_before} times")
    ms = {k: round(1000 * statistics.median(v), 3) for k, v in t.items()}
    etcd_calls = (calls_before - plain_before) / n  # per round of once + logout + sid session
    return {
        "n": n,
        "median_ms": ms,
        "added_ms": {k: round(ms[f"{k}_etcd"] - ms[f"{k}_local"], 3) for k in kinds},
        "etcd_calls_per_round": round(etcd_calls, 2),
        "plain_session_etcd_calls": calls_after - calls_before,
        "wrk": _load(b, fronts, cookies),
    }


def _load(b, fronts: dict, cookies: dict) -> dict:
    """wrk with a CAS session (its logout checked on every request) through each front,
    alternating, BENCH_FLEET_WRK_ROUNDS rounds of BENCH_FLEET_WRK_SECONDS: requests/s and the
    front Envoy's CPU per request, so the session path's price under load is on record."""
    rounds = b.env_int("BENCH_FLEET_WRK_ROUNDS", 3)
    seconds = b.env_int("BENCH_FLEET_WRK_SECONDS", 5)
    runs: dict[str, list[dict]] = {f: [] for f in fronts}
    for f, (inst, _) in fronts.items():
        inst.headers = {"Accept": "application/json", "Cookie": cookies[f]["sid"]}
    for _ in range(rounds):
        for f, (inst, _) in fronts.items():
            runs[f].append(b.run_wrk(inst, seconds, None))
    out = {}
    for f, rs in runs.items():
        reqs = sum(r["requests"] for r in rs)
        out[f] = {
            "rps": round(statistics.median(r["rps"] for r in rs)),
            "p99_ms": round(statistics.median(r["p99_ms"] for r in rs), 2),
            "front_cpu_us_per_req": round(1e6 * sum(r["front_cpu_s"] for r in rs)
                                          / max(1, reqs), 1),
            "forwarded": f"{sum(r['forwarded_2xx'] for r in rs)}/{reqs}",
        }
    return out


def markdown(fleet: dict | None) -> list[str]:
    if not fleet:
        return []
    ms, add = fleet["median_ms"], fleet["added_ms"]
    names = {"once": "one-time JWT login", "logout": "CAS single-logout POST",
             "sid_session": "request with a CAS session (logout list checked)",
             "plain_session": "request with a session without single logout"}
    lines = ["", f"### Fleet store: etcd against local memory ({fleet['n']} of each, medians)",
             "", "| request | local ms | etcd ms | added ms |", "|---|---:|---:|---:|"]
    for k, label in names.items():
        lines.append(f"| {label} | {ms[k + '_local']} | {ms[k + '_etcd']} | {add[k]} |")
    lines += ["", f"etcd calls per round of the first three: {fleet['etcd_calls_per_round']}; "
              f"by {fleet['n']} requests with a session without single logout: "
              f"{fleet['plain_session_etcd_calls']}."]
    w = fleet.get("wrk")
    if w:
        lines += ["", "Under load (wrk, a CAS session whose logout is checked on every request):",
                  "", "| store | req/s | p99 ms | front CPU us/req | reached upstream |",
                  "|---|---:|---:|---:|---:|"]
        for f, r in w.items():
            lines.append(f"| {f} | {r['rps']} | {r['p99_ms']} | {r['front_cpu_us_per_req']} "
                         f"| {r['forwarded']} |")
    return lines
