#!/usr/bin/env python3
"""What one LDAP login adds: N consecutive form logins through the edge worker, under Node or in
workerd (Cloudflare's Workers runtime, sockets from cloudflare:sockets' connect()), against a
real slapd on loopback (tests/e2e/slapd.py), next to N logins of a built-in user through the
same worker. Every login must succeed. Prints the median and p95 of the POST.

    .venv/bin/python bench/ldap_login.py [N] [--host node|workerd]   (default 100, node)

Needs the edge build (wasm-bindgen-harness/build.sh) and slapd (scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
import harness  # noqa: E402
import slapd  # noqa: E402


def timed_logins(worker, user, password, n):
    times = []
    for i in range(n):
        c = worker.client()
        _, form, action = harness.start_local_login(c)
        fields = dict(form["fields"], username=user, password=password)
        start = time.perf_counter()
        resp = c.post_form(action, fields)
        times.append((time.perf_counter() - start) * 1000)
        if resp.status != 303:
            raise SystemExit(f"login {i + 1} of {n} failed: {resp!r}")
    return times


def report(label, times):
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    print(f"{label:32s} {len(times)}/{len(times)} ok  median {statistics.median(times):6.2f} ms"
          f"  p95 {p95:6.2f} ms")
    return statistics.median(times)


def main():
    args = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    args.add_argument("n", nargs="?", type=int, default=100)
    args.add_argument("--host", choices=["node", "workerd"], default="node")
    args = args.parse_args()
    n = args.n
    host = {"node": harness.NodeWorker, "workerd": harness.WorkerdWorker}[args.host]
    print(f"edge worker host: {args.host}")
    work = Path(tempfile.mkdtemp(prefix="ldap-bench-"))
    up = harness.demo_upstream.make_server("127.0.0.1", 0, harness.demo_upstream.Recorder())
    threading.Thread(target=up.serve_forever, daemon=True).start()
    directory = slapd.Slapd(work / "slapd").start()
    workers = []
    try:
        user = harness.USERS["admin"]
        results = {}
        for label, method in [
            ("local (built-in user)", None),
            ("ldap (search + groups)", directory.method()),
            ("ldaps (search + groups)", directory.method(tls=True)),
        ]:
            port = harness.free_port()
            cfg = harness.base_config(f"http://127.0.0.1:{port}")
            cfg["tenants"] = {}
            if method is not None:
                cfg["methods"] = {"ldap": dict(method, max_failures=1000)}
                cfg["default_method"] = "ldap"
            w = host(work, cfg, up.server_address[1], listen_port=port, name=label.split()[0],
                     env={"NODE_EXTRA_CA_CERTS": str(directory.ca)}).start()
            workers.append(w)
            login = ("alice", "alice-pw") if method else (user.login, user.password)
            timed_logins(w, *login, 5)  # warm-up
            results[label] = report(label, timed_logins(w, *login, n))
        # The floor: one request through the same worker that it answers itself (the login
        # form's POST with a wrong state costs one engine call and no directory).
        c = workers[1].client()
        _, form, action = harness.start_local_login(c)
        floor = []
        for _ in range(n):
            start = time.perf_counter()
            resp = c.post_form(action, dict(form["fields"], state="x", username="a", password="b"))
            floor.append((time.perf_counter() - start) * 1000)
        base = report("form POST, no directory (floor)", floor)
        for label in ("ldap (search + groups)", "ldaps (search + groups)"):
            print(f"{label}: the directory conversation adds {results[label] - base:+.2f} ms"
                  " (median)")
        print("(a built-in user's login is dominated by PBKDF2-SHA256, 100 000 iterations)")
    finally:
        for w in workers:
            w.stop()
        directory.stop()
        up.shutdown()


if __name__ == "__main__":
    main()
