#!/usr/bin/env python3
"""The Envoy candidate for LDAP, measured: an HTTP POST whose body Envoy forwards as raw TCP to
slapd (route `upgrade_configs: CONNECT` with `allow_post: true`, the only raw-TCP path an HTTP
callout can take), 100 attempts per variant, against a real slapd on loopback. Counts the
attempts whose reply carried the complete answer (bind response and SearchResultDone).

    .venv/bin/python bench/ldap_envoy_tunnel.py [N]

The POST here comes from a plain HTTP client into Envoy, which is what `dispatch_http_call`
hands Envoy too: the body goes out, Envoy half-closes the upstream when it ends.
"""

from __future__ import annotations

import http.client
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
sys.path.insert(0, str(REPO / "src"))
import harness  # noqa: E402
import slapd  # noqa: E402


def tlv(tag, content):
    n = len(content)
    head = bytes([tag, n]) if n < 0x80 else bytes([tag, 0x82]) + n.to_bytes(2, "big")
    return head + content


def msg(i, op):
    return tlv(0x30, tlv(0x02, bytes([i])) + op)


def bind(i, dn, pw):
    return msg(i, tlv(0x60, tlv(0x02, b"\x03") + tlv(0x04, dn.encode()) + tlv(0x80, pw.encode())))


def search(i, base, uid):
    flt = tlv(0xA3, tlv(0x04, b"uid") + tlv(0x04, uid.encode()))
    body = (tlv(0x04, base.encode()) + tlv(0x0A, b"\x02") + tlv(0x0A, b"\x00")
            + tlv(0x02, b"\x02") + tlv(0x02, b"\x05") + tlv(0x01, b"\x00") + flt
            + tlv(0x30, tlv(0x04, b"displayName")))
    return msg(i, tlv(0x63, body))


def unbind(i):
    return msg(i, b"\x42\x00")


YAML = """
admin: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}}}
static_resources:
  listeners:
  - name: tunnel
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: tunnel
          upgrade_configs: [{{upgrade_type: CONNECT}}]
          route_config:
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                route:
                  cluster: slapd
                  timeout: 5s
                  upgrade_configs:
                  - upgrade_type: CONNECT
                    connect_config: {{allow_post: true}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  clusters:
  - name: slapd
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: slapd
      endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {ldap}}}}}}}}}]}}]
"""


def complete(data: bytes) -> bool:
    # The bind response (tag 0x61) and a SearchResultDone (0x65) with the right id.
    return b"\x61" in data and b"\x02\x01\x02\x65" in data


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    work = Path(tempfile.mkdtemp(prefix="ldap-tunnel-"))
    directory = slapd.Slapd(work / "slapd").start()
    port, admin = harness.free_port(), harness.free_port()
    (work / "envoy.yaml").write_text(YAML.format(port=port, admin=admin, ldap=directory.port))
    envoy = subprocess.Popen([str(harness.ENVOY), "-c", str(work / "envoy.yaml"), "-l", "error",
                              "--concurrency", "1"], stdout=subprocess.DEVNULL,
                             stderr=open(work / "envoy.log", "wb"))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                http.client.HTTPConnection("127.0.0.1", admin, timeout=1).request("GET", "/ready")
                break
            except OSError:
                time.sleep(0.1)
        dn, base = "uid=alice,ou=people," + slapd.SUFFIX, "ou=people," + slapd.SUFFIX
        variants = {
            "bind + search": bind(1, dn, "alice-pw") + search(2, base, "alice"),
            "bind + search + unbind": bind(1, dn, "alice-pw") + search(2, base, "alice")
            + unbind(3),
        }
        # Sanity: the same bytes straight to slapd, on a socket that is not half-closed.
        import socket
        ok = 0
        for _ in range(n):
            with socket.create_connection(("127.0.0.1", directory.port), timeout=3) as s:
                s.sendall(variants["bind + search"])
                data = b""
                while not complete(data):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                ok += complete(data)
        print(f"{'direct TCP (no half-close)':34s} {ok}/{n} complete")
        for name, body in variants.items():
            ok = statuses = 0
            for _ in range(n):
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
                try:
                    c.request("POST", "/", body=body,
                              headers={"content-type": "application/octet-stream"})
                    r = c.getresponse()
                    statuses += r.status == 200
                    data = r.read()
                except OSError:
                    data = b""
                finally:
                    c.close()
                ok += complete(data)
            print(f"{'Envoy POST tunnel: ' + name:34s} {ok}/{n} complete ({statuses} HTTP 200)")
    finally:
        envoy.terminate()
        envoy.wait()
        directory.stop()


if __name__ == "__main__":
    main()
