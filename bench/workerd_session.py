#!/usr/bin/env python3
"""The edge worker in workerd (Cloudflare's Workers runtime): per-request time of a
session-cookie request, timed by the runtime itself, and the module's cold start.

    .venv/bin/python bench/workerd_session.py [N]      (default 10000)

Per request: N sequential GETs with a session cookie (got by a real JWT landing) through
`workerd serve wasm-bindgen-harness/sso-filter.capnp` to a local origin, after 500 not
recorded (V8 tiers up). workerd's --async-trace records every request context and every turn
of JavaScript with its start, lock and end (monotonic ns). From it:
  - JS time: the sum over the request's turns of (end - locked), the time the request held the
    isolate: everything the worker ran (URL, headers, the engine in Wasm, JSON) but not the
    waits. This is the time Cloudflare's CPU limit counts (it counts no I/O wait);
  - in-runtime wall time: request context start to end, so it includes the origin's answer.
The same loop through a worker that only forwards (the runtime floor: fetch the origin and
return its response) tells the filter's share. The client's own wall time is printed too.
(workerd's tail events carry cpuTime and wallTime, but workerd leaves them 0: only
Cloudflare's production runtime fills them.)

Cold start: `workerd serve` started 10 times; the time from exec to the first answer of the
admin socket, and to the first answer through the filter, and that first request's JS time
(it builds the filter from its JSON). The forwarding-only worker's exec-to-first-answer is the
runtime's own start; the difference is the module's (compiling and instantiating the .wasm).
Also the module's size, raw and compressed.

Needs `make edge` and scripts/setup.sh (workerd). Loopback and free ports only; every process
started here is stopped on exit.
"""

from __future__ import annotations

import gzip
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import harness  # noqa: E402

WARMUP = 500
COLD_RUNS = 10

# The runtime floor: a worker that only forwards to ORIGIN, and an admin entrypoint for /ready.
FLOOR_JS = """
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    return fetch(env.ORIGIN + url.pathname + url.search,
                 { method: request.method, headers: request.headers, redirect: 'manual' });
  },
};
export const admin = { async fetch() { return new Response('LIVE\\n'); } };
"""
FLOOR_CAPNP = """using Workerd = import "/workerd/workerd.capnp";
using Sso = import "/sso-filter.capnp";
const config :Workerd.Config = (
  services = [(name = "sso-filter", worker = (
                 modules = [(name = "floor.mjs", esModule = embed "floor.mjs")],
                 compatibilityDate = "2024-09-23",
                 bindings = [(name = "ORIGIN", fromEnvironment = "ORIGIN")],
                 globalOutbound = "loopback")),
              (name = "loopback", network = (allow = ["local"]))],
  sockets = Sso.sockets,
);
"""


class TracedWorkerd(harness.WorkerdWorker):
    """The suite's workerd host with --async-trace into its directory."""

    def _launch(self) -> None:
        self.trace = self.dir / "async-trace.jsonl"
        self.workerd_args = ("--async-trace", str(self.trace))
        super()._launch()


class FloorWorkerd(TracedWorkerd):
    """The same process setup serving FLOOR_JS instead of the filter."""

    def capnp_text(self, ca_files: list[str]) -> str:
        (self.dir / "floor.mjs").write_text(FLOOR_JS)
        return FLOOR_CAPNP


def request_times(trace: Path, worker: str = "sso-filter") -> list[tuple[float, float]]:
    """(JS ms, wall ms) of every fetch request context of `worker`, in order."""
    ctx_start, ctx_end, js, fetch_ctx = {}, {}, {}, set()
    with trace.open() as f:
        for line in f:
            e = json.loads(line)
            kind = e.get("e")
            if kind == "ctx" and e.get("worker") == worker:
                ctx_start[e["ctx"]] = e["at"]
            elif kind == "ctx_end":
                ctx_end[e["ctx"]] = e["at"]
            elif kind == "init" and e.get("kind") == "request" and e.get("name") == "fetch":
                fetch_ctx.add(e["ctx"])
            elif kind == "turn":
                js[e["ctx"]] = js.get(e["ctx"], 0) + (e["end"] - e["locked"])
    out = []
    for ctx in sorted(ctx_start):
        if ctx in fetch_ctx and ctx in ctx_end:
            out.append((js.get(ctx, 0) / 1e6, (ctx_end[ctx] - ctx_start[ctx]) / 1e6))
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def line(label: str, values: list[float]) -> str:
    return (f"{label:46s} median {statistics.median(values):7.3f} ms   "
            f"p90 {pct(values, 0.90):7.3f}   p99 {pct(values, 0.99):7.3f}   n={len(values)}")


def loop(inst, n: int, cookie: str | None) -> list[float]:
    """n sequential GETs on one keep-alive connection; the client's wall time of each (ms)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", inst.port, timeout=15)
    headers = {"Accept": "application/json", "Host": f"127.0.0.1:{inst.port}"}
    if cookie:
        headers["Cookie"] = cookie
    times = []
    try:
        for i in range(n):
            start = time.perf_counter()
            conn.request("GET", f"/app/item?i={i}", headers=headers)
            resp = conn.getresponse()
            resp.read()
            times.append((time.perf_counter() - start) * 1000)
            if resp.status != 200:
                raise SystemExit(f"request {i + 1}: status {resp.status}")
    finally:
        conn.close()
    return times


def measure(cls, work: Path, upstream_port: int, n: int, name: str, login: bool):
    port = harness.free_port()
    cfg = harness.base_config(f"http://127.0.0.1:{port}")
    inst = cls(work, cfg, upstream_port, listen_port=port, name=name).start()
    try:
        cookie = None
        if login:
            c = inst.client()
            harness.jwt_login(c)
            cookie = c.cookie_header()
        loop(inst, WARMUP, cookie)
        client = loop(inst, n, cookie)
    finally:
        inst.stop()
    runtime = request_times(inst.trace)[-n:]
    assert len(runtime) == n, f"{len(runtime)} request contexts traced, expected {n}"
    return [js for js, _ in runtime], [wall for _, wall in runtime], client


def cold_starts(cls, work: Path, upstream_port: int, name: str):
    """exec -> admin answers, exec -> first answer, and the first request's JS time (ms)."""
    ready, first, first_js = [], [], []
    for i in range(COLD_RUNS):
        port = harness.free_port()
        cfg = harness.base_config(f"http://127.0.0.1:{port}")
        inst = cls(work, cfg, upstream_port, listen_port=port, name=f"{name}-cold{i}")
        inst.start()  # polls the admin socket every 50 ms: only to know it is up
        inst.stop()
        # Timed run: exec, then poll both sockets as fast as possible.
        inst = cls(work, cfg, upstream_port, listen_port=port, name=f"{name}-cold{i}b")
        t0 = time.perf_counter()
        inst._launch()
        try:
            while not inst._ready():
                if inst.proc.poll() is not None:
                    raise SystemExit(inst.log_tail())
                time.sleep(0.002)
            ready.append((time.perf_counter() - t0) * 1000)
            c = inst.client()
            resp = c.get("/healthz", headers={"Accept": "application/json"})
            first.append((time.perf_counter() - t0) * 1000)
            if resp.status != 200:
                raise SystemExit(f"cold start: /healthz {resp!r}")
        finally:
            inst.stop()
        # The last request context: the admin polls came before it (same worker, no entrypoint
        # name in the trace).
        first_js.append(request_times(inst.trace)[-1][0])
    return ready, first, first_js


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    work = Path(tempfile.mkdtemp(prefix="workerd-bench-"))
    up = harness.demo_upstream.make_server("127.0.0.1", 0, harness.demo_upstream.Recorder())
    # The origin writes its head and body in two sends; with Nagle on, the second waits for an
    # ACK that the runtime delays (40 ms): not what is measured here.
    up.RequestHandlerClass.disable_nagle_algorithm = True
    threading.Thread(target=up.serve_forever, daemon=True).start()
    upstream_port = up.server_address[1]
    try:
        version = harness.subprocess.run([str(harness.WORKERD), "--version"],
                                         capture_output=True, text=True).stdout.strip()
        print(f"{version}; sso-filter.capnp; {n} requests after {WARMUP} warm-up, one keep-alive"
              " connection, sequential; origin demo/upstream.py")
        js, wall, client = measure(TracedWorkerd, work, upstream_port, n, "session", True)
        fjs, fwall, fclient = measure(FloorWorkerd, work, upstream_port, n, "floor", False)
        print(line("session cookie: JS time in the isolate", js))
        print(line("forward only (floor): JS time in the isolate", fjs))
        print(line("session cookie: wall in the runtime", wall))
        print(line("forward only (floor): wall in the runtime", fwall))
        print(line("session cookie: client wall", client))
        print(line("forward only (floor): client wall", fclient))
        print(f"the filter's share of JS time (medians): "
              f"{statistics.median(js) - statistics.median(fjs):+.3f} ms")

        ready, first, first_js = cold_starts(TracedWorkerd, work, upstream_port, "filter")
        fready, ffirst, _ = cold_starts(FloorWorkerd, work, upstream_port, "floor")
        print(line("cold start, exec -> admin answers (filter)", ready))
        print(line("cold start, exec -> admin answers (floor)", fready))
        print(line("cold start, exec -> first answer through the filter", first))
        print(line("cold start, exec -> first answer (floor)", ffirst))
        print(line("first request's JS time (builds the filter)", first_js))
        print(f"the module's start-up (medians, exec -> first answer): "
              f"{statistics.median(first) - statistics.median(ffirst):+.1f} ms")

        wasm = harness.EDGE_DIR / "dist" / "pkg" / "sso_filter_edge_bg.wasm"
        total = sum(p.stat().st_size for p in (harness.EDGE_DIR / "dist").rglob("*")
                    if p.is_file())
        gz = sum(len(gzip.compress(p.read_bytes(), 9))
                 for p in (harness.EDGE_DIR / "dist").rglob("*") if p.is_file())
        print(f"module: {wasm.name} {wasm.stat().st_size:,} bytes; the upload (dist/, "
              f"5 modules) {total:,} bytes, {gz:,} gzip -9")
    finally:
        up.shutdown()


if __name__ == "__main__":
    main()
