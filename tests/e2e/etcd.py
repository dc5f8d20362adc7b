"""A real etcd (Debian's etcd-server, v3.4) for the fleet-store tests: one member on loopback,
its data in a temporary directory, stopped and started again by the outage test. The tests
read what the filter wrote through etcd's own v3 JSON gateway, the API the filter uses.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import harness
from slapd import make_certs

# The user the filter logs in as (store.auth), allowed read-write on PREFIX_ALLOWED only.
FILTER_USER, FILTER_PASSWORD = "sso-filter", "etcd-filter-password-0123"
ROOT_PASSWORD = "etcd-root-password-0123"


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class Etcd:
    """`secure=True`: TLS with a private CA (`ca`), and authentication on: a root user, and
    FILTER_USER with read-write on `allowed_prefix` only (etcd's role-based access)."""

    def __init__(self, workdir: Path, secure: bool = False, allowed_prefix: str = ""):
        binary = shutil.which("etcd")
        assert binary, "etcd is missing (scripts/setup.sh installs etcd-server)"
        self.binary = binary
        self.workdir = workdir
        self.port = harness.free_port()
        self.peer = harness.free_port()
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "etcd.log"
        self.secure = secure
        self.token: str | None = None
        self.ssl: ssl.SSLContext | None = None
        if secure:
            make_certs(workdir)
            self.ca = str(workdir / "ca.pem")
            self.ssl = ssl.create_default_context(cafile=self.ca)
        self.start()
        if secure:
            self._enable_auth(allowed_prefix)

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://127.0.0.1:{self.port}"

    def _enable_auth(self, prefix: str) -> None:
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        for path, body in [
            ("/v3/auth/user/add", {"name": "root", "password": ROOT_PASSWORD}),
            ("/v3/auth/role/add", {"name": "root"}),
            ("/v3/auth/user/grant", {"user": "root", "role": "root"}),
            ("/v3/auth/role/add", {"name": "sso-filter"}),
            ("/v3/auth/role/grant", {"name": "sso-filter", "perm": {
                "permType": "READWRITE", "key": b64(prefix), "range_end": b64(end)}}),
            ("/v3/auth/user/add", {"name": FILTER_USER, "password": FILTER_PASSWORD}),
            ("/v3/auth/user/grant", {"user": FILTER_USER, "role": "sso-filter"}),
            ("/v3/auth/enable", {}),
        ]:
            self.call(path, body)
        self.token = self.call("/v3/auth/authenticate",
                               {"name": "root", "password": ROOT_PASSWORD})["token"]

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log, "ab")
        tls = (["--cert-file", str(self.workdir / "server.pem"),
                "--key-file", str(self.workdir / "server.key")] if self.secure else [])
        self.proc = subprocess.Popen(
            [self.binary, "--name", "fleet", "--data-dir", str(self.workdir / "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url, *tls,
             "--listen-peer-urls", f"http://127.0.0.1:{self.peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer}",
             "--initial-cluster", f"fleet=http://127.0.0.1:{self.peer}",
             "--log-level", "warn"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=harness._die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("etcd exited:\n" + self.log.read_text(errors="replace"))
            try:
                self.call("/v3/kv/range", {"key": b64("probe")})
                return
            except urllib.error.HTTPError:
                # Answering (a refusal: auth on, and a token from before a restart): up.
                if self.token:
                    self.token = None
                    self.token = self.call("/v3/auth/authenticate",
                                           {"name": "root", "password": ROOT_PASSWORD})["token"]
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("etcd not ready:\n" + self.log.read_text(errors="replace"))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # Nothing may answer on the port while "down".
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", self.port)) != 0

    def call(self, path: str, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = self.token
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers=headers)
        with urllib.request.urlopen(req, timeout=5, context=self.ssl) as resp:
            return json.load(resp)

    def keys(self, prefix: str) -> list[dict]:
        """The keys under `prefix`, each {key, lease, ttl} (ttl: the lease's remaining
        seconds, from etcd's lease API)."""
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        out = self.call("/v3/kv/range", {"key": b64(prefix), "range_end": b64(end)})
        keys = []
        leases: dict[str, int] = {}
        for kv in out.get("kvs", []):
            lease = kv.get("lease", "0")
            if lease != "0" and lease not in leases:
                ttl = self.call("/v3/lease/timetolive", {"ID": lease})
                leases[lease] = int(ttl.get("TTL", "-1"))
            keys.append({"key": base64.b64decode(kv["key"]).decode(), "lease": lease,
                         "ttl": leases.get(lease, -1)})
        return keys

    def close(self) -> None:
        self.stop()
