"""A real etcd (Debian's etcd-server, v3.4) for the fleet-store tests: one member on loopback,
its data in a temporary directory, stopped and started again by the outage test. The tests
read what the filter wrote through etcd's own v3 JSON gateway, the API the filter uses.
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import harness


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class Etcd:
    def __init__(self, workdir: Path):
        binary = shutil.which("etcd")
        assert binary, "etcd is missing (scripts/setup.sh installs etcd-server)"
        self.binary = binary
        self.workdir = workdir
        self.port = harness.free_port()
        self.peer = harness.free_port()
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "etcd.log"
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--name", "fleet", "--data-dir", str(self.workdir / "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
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
                if self.call("/v3/kv/range", {"key": b64("probe")}) is not None:
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
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
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
