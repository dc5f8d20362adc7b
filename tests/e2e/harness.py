"""Harness of the end-to-end suite: real Envoy instances loading the built .wasm, a raw HTTP
client with a cookie jar, filter-config builders and the security.md §0.2 oracle.

Everything listens on 127.0.0.1 only, on ports chosen at run time.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "demo"))
import upstream as demo_upstream  # noqa: E402  (demo/upstream.py)

ENVOY = Path(os.environ.get("SSO_E2E_ENVOY", REPO / ".venv" / "bin" / "envoy"))
WASM = Path(os.environ.get("SSO_E2E_WASM",
                           REPO / "target" / "wasm32-wasip1" / "release" / "sso_filter.wasm"))
CLI = Path(os.environ.get("SSO_E2E_CLI", REPO / "target" / "release" / "sso-filter"))

# The seed's example (HENGSHI SENSE manual): HS256 with a UTF-8 secret, no `exp`.
SEED_SECRET = "4b117a14-c652-410a-83b2-9839c16e7ae1"
SEED_TOKEN = ("eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZS1zdWJqZWN0IiwiYWJjIjoiMTIz"
              "Iiwicm9sZXMiOlsic3lzdGVtIGFkbWluIiwiZGF0YSBhZG1pbiIsImRhdGEgYW5hbHlzdCIsImRhdGEgdmll"
              "d2VyIiwiYXBpIGFkbWluIl0sImxvZ2luTmFtZSI6ImFsaWNlIn0.PGA9DNa-B_4e4WS-fVG57tvxYe0dlu0r8"
              "O_Lw1vEtAQ")
SEED_ROLES = ["system admin", "data admin", "data analyst", "data viewer", "api admin"]

SESSION_COOKIE_RE = re.compile(r"^sso_session(_[1-7])?$")
FLOW_COOKIE_RE = re.compile(r"^sso_session_(flow_|bind$)")
IDENTITY_HEADER_NAMES = set(demo_upstream.IDENTITY_HEADERS.values())


# --------------------------------------------------------------------------- secrets, hashes

def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_session_key() -> str:
    """A session key as the contract wants it: base64url of 32 random bytes."""
    return b64url(secrets.token_bytes(32))


def hash_password(password: str, iterations: int = 100_000, salt: bytes | None = None) -> str:
    """`$pbkdf2-sha256$i=<iter>,l=32$<b64 salt>$<b64 hash>` (standard alphabet, no padding),
    the format `sso-filter hash-password` prints."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, 32)
    enc = lambda b: base64.b64encode(b).rstrip(b"=").decode()  # noqa: E731
    return f"$pbkdf2-sha256$i={iterations},l=32${enc(salt)}${enc(digest)}"


def verify_password_hash(password: str, phc: str) -> bool:
    m = re.fullmatch(r"\$pbkdf2-sha256\$i=(\d+),l=32\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)", phc)
    if not m:
        return False
    dec = lambda s: base64.b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
    iterations, salt, digest = int(m.group(1)), dec(m.group(2)), dec(m.group(3))
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations, len(digest)) == digest


# --------------------------------------------------------------------------- configs

@dataclass
class User:
    login: str
    password: str
    roles: list[str] = field(default_factory=list)
    name: str | None = None
    email: str | None = None


# Users of the shared test configuration. `lockme` is only used by the lockout test.
USERS = {
    "admin": User("admin", "correct horse battery staple", ["system admin"], "Admin",
                  "admin@example.com"),
    "zhang": User("zhang", "zhang-secret-password", ["data viewer"], "张三", "zhang@example.com"),
    "browser": User("browser", "browser-secret-password", ["data analyst"], "Browser User",
                    "browser@example.com"),
    "lockme": User("lockme", "lockme-secret-password", ["data viewer"]),
}

_HASH_CACHE: dict[str, str] = {}


def user_entry(user: User) -> dict:
    if user.password not in _HASH_CACHE:
        _HASH_CACHE[user.password] = hash_password(user.password)
    entry = {"login": user.login, "password_hash": _HASH_CACHE[user.password],
             "roles": user.roles, "groups": []}
    if user.name:
        entry["name"] = user.name
    if user.email:
        entry["email"] = user.email
    return entry


def seed_jwt_method(**overrides) -> dict:
    method = {
        "type": "jwt",
        "param": "jwtParam",
        "verify": {"alg": "HS256", "secret": SEED_SECRET},
        "insecure_allow_missing_exp": True,
        "mapping": {"login": "loginName", "roles": "roles"},
    }
    method.update(overrides)
    return method


def base_config(base_url: str, keys: list[str] | None = None, users=None, **overrides) -> dict:
    """The filter JSON of docs/behaviour.md with built-in users and the seed's jwt-param."""
    users = list(USERS.values()) if users is None else users
    config = {
        "base_url": base_url,
        "prefix": "/sso",
        "login_page": "/login",
        "method_param": "activeAuth",
        "default_method": "local",
        "tenant_params": ["tenantCode", "tenantId"],
        "public_paths": ["/healthz", "/static/", "/public/"],
        "session": {
            "cookie": "sso_session",
            "keys": keys or [new_session_key()],
            "ttl_seconds": 28800,
            "secure": False,
            "same_site": "lax",
        },
        "methods": {
            "local": {"type": "local", "users": [user_entry(u) for u in users],
                      "max_failures": 5, "lockout_seconds": 300},
            "jwt-param": seed_jwt_method(),
        },
        "tenants": {
            "tenant1": {"id": "t-1", "name": "Tenant One", "default_method": "jwt-param",
                        "methods": {}, "mapping": {}},
        },
        "limits": dict(SUITE_LIMITS),
    }
    config.update(overrides)
    return config


def host_knows_client_address() -> bool:
    """Whether the host under test tells the filter the client's address: Envoy does
    (`source.address`), node-server.mjs does (CF-Connecting-IP from the socket, as Cloudflare's
    edge sets it). A local `workerd serve` has no such header, so there the per-address checks
    (CAS `logout_sources`) fail closed, and the tests assert that instead."""
    return os.environ.get("SSO_E2E_HOST", "envoy") != "workerd"


# The suite signs in hundreds of times from one address within minutes; the password budget's
# own defaults are exercised by test_bounds.py, which builds its configuration without this.
SUITE_LIMITS = {"password_checks_per_second": 1000, "password_burst": 1000,
                "client_password_checks_per_minute": 10000, "client_password_burst": 1000}


# --------------------------------------------------------------------------- ports

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- Envoy

class EnvoyError(RuntimeError):
    pass


def idp_cluster_name(host: str, port: int) -> str:
    """The Envoy cluster the filter calls an IdP endpoint through (docs/behaviour.md):
    `sso_<host>_<port>`, every non-alphanumeric character of the host as `_`."""
    return "sso_" + re.sub(r"[^a-z0-9]", "_", host.lower()) + f"_{port}"


def idp_cluster(host: str, port: int, ca: str | None = None) -> dict:
    """A cluster for an IdP on this machine: an IPv4 literal host is dialled as is, any other
    name at 127.0.0.1 (the tests' IdPs listen on loopback only). Plain HTTP, or TLS verified
    against the private CA file `ca` when given."""
    address = host if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", host) else "127.0.0.1"
    name = idp_cluster_name(host, port)
    cluster = {"name": name, "type": "STATIC", "connect_timeout": "2s",
               "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{
                   "endpoint": {"address": {"socket_address": {
                       "address": address, "port_value": port}}}}]}]}}
    if ca:
        cluster["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3"
                     ".UpstreamTlsContext",
            "sni": "localhost",
            "common_tls_context": {"validation_context": {"trusted_ca": {"filename": ca}}}}}
    return cluster


def envoy_yaml(filter_config_json: str, listen_port: int, upstream_port: int,
               wasm: Path = WASM, clusters: list[tuple[str, int]] | None = None,
               hcm_options: dict | None = None, access_log: Path | None = None) -> str:
    """Bootstrap for one instance. JSON is valid YAML, so the bootstrap is written as JSON.
    `clusters`: (host, port) of IdPs the filter reaches by callout, or (host, port, CA file)
    for one that speaks TLS (`idp_cluster`).
    `hcm_options`: fields added to the listener's HttpConnectionManager (e.g.
    `{"http_protocol_options": {"enable_trailers": True}}`, without which Envoy's HTTP/1 codec
    drops request trailers before any filter sees them). The codec is Envoy's default, AUTO:
    HTTP/1.1, or HTTP/2 when the connection opens with the HTTP/2 preface (h2c prior
    knowledge).
    `access_log`: a file for one line per request, `METHOD PATH STATUS DURATION_MS CLIENT`."""
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager"
                 ".v3.HttpConnectionManager",
        "stat_prefix": "e2e",
        "route_config": {"virtual_hosts": [{
            "name": "all", "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "upstream"}}]}]},
        "http_filters": [
            {"name": "sso_filter", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "sso_filter",
                    "root_id": "sso_filter",
                    # Without it Envoy turns the filter's pause on request headers into
                    # StopAllIterationAndWatermark and never delivers the form / ACS body
                    # (proxy-wasm-cpp-host #143); with it the body arrives while the headers
                    # are held back from the upstream.
                    "allow_on_headers_stop_iteration": True,
                    "vm_config": {"vm_id": "sso_filter", "runtime": "envoy.wasm.runtime.v8",
                                  "code": {"local": {"filename": str(wasm)}}},
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                      "value": filter_config_json},
                }}},
            {"name": "envoy.filters.http.router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
        ],
    }
    hcm.update(hcm_options or {})
    if access_log is not None:
        hcm["access_log"] = [{"name": "envoy.access_loggers.file", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
            "path": str(access_log),
            "log_format": {"text_format_source": {"inline_string":
                "%REQ(:METHOD)% %REQ(:PATH)% %RESPONSE_CODE% %DURATION% "
                "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%\n"}}}}]
    bootstrap = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "sso",
                "address": {"socket_address": {"address": "127.0.0.1",
                                               "port_value": listen_port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": hcm}]}],
            }],
            "clusters": [{
                "name": "upstream", "type": "STATIC", "connect_timeout": "2s",
                "load_assignment": {"cluster_name": "upstream", "endpoints": [{"lb_endpoints": [{
                    "endpoint": {"address": {"socket_address": {
                        "address": "127.0.0.1", "port_value": upstream_port}}}}]}]},
            }] + [idp_cluster(*c) for c in dict.fromkeys(clusters or [])],
        },
    }
    return json.dumps(bootstrap, indent=1)


def _die_with_parent() -> None:
    """Envoy gets SIGTERM when the test process dies (Linux PR_SET_PDEATHSIG)."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)
    except OSError:
        pass


class Envoy:
    """One Envoy process with the filter in front of `upstream_port`."""

    _serial = 0
    # Set before start() for an access log (envoy_yaml's `access_log`).
    access_log: Path | None = None

    def __init__(self, workdir: Path, filter_config: dict | str, upstream_port: int,
                 listen_port: int | None = None, name: str = "envoy",
                 env: dict | None = None, clusters: list[tuple[str, int]] | None = None,
                 hcm_options: dict | None = None):
        Envoy._serial += 1
        self.name = f"{name}-{Envoy._serial}"
        self.dir = Path(workdir) / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_json = (filter_config if isinstance(filter_config, str)
                            else json.dumps(filter_config, ensure_ascii=False))
        self.upstream_port = upstream_port
        self.env = dict(env or {})
        self.clusters = list(clusters or [])
        self.hcm_options = dict(hcm_options or {})
        self.port = listen_port or free_port()
        self.admin: str | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "envoy.log"
        self.stderr_path = self.dir / "stderr.log"
        self.started_at = 0.0
        self.ready_seconds = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _launch(self) -> None:
        if not ENVOY.exists():
            raise EnvoyError(f"{ENVOY} missing: run scripts/setup.sh")
        if not WASM.exists():
            raise EnvoyError(f"{WASM} missing: run `make wasm`")
        (self.dir / "filter.json").write_text(self.config_json)
        yaml_path = self.dir / "envoy.yaml"
        yaml_path.write_text(envoy_yaml(self.config_json, self.port, self.upstream_port,
                                        clusters=self.clusters, hcm_options=self.hcm_options,
                                        access_log=self.access_log))
        admin_path = self.dir / "admin-address"
        admin_path.unlink(missing_ok=True)
        self._admin_path = admin_path
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            [str(ENVOY), "-c", str(yaml_path), "--disable-hot-restart", "--concurrency", "2",
             "-l", "info", "--log-path", str(self.log_path),
             # Envoy flushes its log file every 10 s by default; tests read it at once.
             "--file-flush-interval-msec", "50",
             "--admin-address-path", str(admin_path)],
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(self.stderr_path, "wb"), start_new_session=True,
            preexec_fn=_die_with_parent)

    def start(self, timeout: float = 60.0) -> "Envoy":
        """Start and wait for /ready = LIVE and the listener. Raises EnvoyError with the log."""
        self._launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EnvoyError(f"{self.name} exited with {self.proc.returncode}\n"
                                 + self.log_tail())
            if self.admin is None and self._admin_path.exists():
                text = self._admin_path.read_text().strip()
                if text:
                    self.admin = text
            if self.admin:
                try:
                    if self.admin_get("/ready").strip() == "LIVE" and self._listening():
                        self.ready_seconds = time.monotonic() - self.started_at
                        return self
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise EnvoyError(f"{self.name} not ready after {timeout}s\n" + self.log_tail())

    def start_expecting_refusal(self, timeout: float = 30.0) -> str:
        """Start with a configuration that must be refused. Returns 'exited' when Envoy quit,
        'not-live' when it never became LIVE, 'live' when it came up (the caller then checks
        that the listener does not serve)."""
        self._launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited"
            if self.admin is None and self._admin_path.exists():
                self.admin = self._admin_path.read_text().strip() or None
            if self.admin:
                try:
                    if self.admin_get("/ready").strip() == "LIVE":
                        time.sleep(0.5)  # let the workers log what they refused
                        return "live"
                except OSError:
                    pass
            time.sleep(0.05)
        return "not-live"

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def admin_get(self, path: str) -> str:
        host, port = self.admin.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stats(self, filter_regex: str = "") -> dict[str, int]:
        """Counters and gauges from admin /stats (text format), name -> value."""
        path = "/stats" + (f"?filter={urllib.parse.quote(filter_regex)}" if filter_regex else "")
        out = {}
        for line in self.admin_get(path).splitlines():
            name, sep, value = line.rpartition(": ")
            if sep and value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out

    def log_text(self) -> str:
        parts = []
        for p in (self.log_path, self.stderr_path):
            if p.exists():
                parts.append(p.read_text(errors="replace"))
        return "\n".join(parts)

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wasm_crashes(self) -> list[str]:
        """Log lines that show a Wasm trap or a Rust panic (security.md §0.2 item 4)."""
        # A V8 trap reads "RuntimeError: unreachable"; a bare "unreachable" would also match the
        # engine's own `reason=idp.unreachable` denials.
        pat = re.compile(r"panicked at|wasm trap|Function: proxy_on_\w+ failed|"
                         r"Wasm VM failed|unreachable executed|RuntimeError|Uncaught", re.I)
        return [line for line in self.log_text().splitlines() if pat.search(line)]

    def client(self) -> "Client":
        return Client(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# --------------------------------------------------------------------------- Node worker host

# The same filter as a JS edge worker (wasm-bindgen-harness/): worker.mjs under Node 20's HTTP
# server (node-server.mjs). The suite runs through it with SSO_E2E_HOST=node (conftest.py).
EDGE_DIR = REPO / "wasm-bindgen-harness"
NODE_SERVER = EDGE_DIR / "node-server.mjs"
EDGE_WASM = Path(os.environ.get("SSO_E2E_EDGE_WASM",
                                EDGE_DIR / "pkg" / "sso_filter_edge_bg.wasm"))
NODE = os.environ.get("SSO_E2E_NODE", "node")


class NodeWorker:
    """One node-server.mjs process running the worker in front of `upstream_port`, with the
    interface of `Envoy`: start/stop, base_url, port, client(), log_text(), wasm_crashes(),
    stats() (the worker's counters from node-server's admin listener, under Envoy's
    `wasmcustom.` names so the same checks read both hosts).

    A refused configuration: node-server starts and the worker answers 503 to every request,
    logging `sso-filter: configuration refused: <error naming the JSON path>` (Envoy refuses to
    load instead). `clusters` and `hcm_options` are accepted and unused: the worker reaches IdPs
    with fetch() by URL, not through named clusters, and Node's HTTP server has no codec
    options (it speaks HTTP/1.1 and passes request trailers to no one)."""

    _serial = 0

    def __init__(self, workdir: Path, filter_config: dict | str, upstream_port: int,
                 listen_port: int | None = None, name: str = "node",
                 env: dict | None = None, clusters: list[tuple[str, int]] | None = None,
                 hcm_options: dict | None = None):
        NodeWorker._serial += 1
        self.name = f"node-{name}-{NodeWorker._serial}"
        self.dir = Path(workdir) / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.config_json = (filter_config if isinstance(filter_config, str)
                            else json.dumps(filter_config, ensure_ascii=False))
        self.upstream_port = upstream_port
        self.env = dict(env or {})
        self.clusters = list(clusters or [])
        self.port = listen_port or free_port()
        self.admin: str | None = None
        self.proc: subprocess.Popen | None = None
        self.log_path = self.dir / "node.log"
        self.stderr_path = self.log_path  # one file: stdout and stderr interleaved in order
        self.started_at = 0.0
        self.ready_seconds = 0.0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _launch(self) -> None:
        if not EDGE_WASM.exists():
            raise EnvoyError(f"{EDGE_WASM} missing: run `npm run build` in wasm-bindgen-harness")
        config_path = self.dir / "filter.json"
        config_path.write_text(self.config_json)
        self.admin = f"127.0.0.1:{free_port()}"
        self.started_at = time.monotonic()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [NODE, str(NODE_SERVER), "--port", str(self.port), "--host", "127.0.0.1",
             "--origin", f"http://127.0.0.1:{self.upstream_port}", "--config", str(config_path),
             "--admin-port", self.admin.rsplit(":", 1)[1]],
            cwd=EDGE_DIR, env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent)
        log.close()

    def _ready(self) -> bool:
        try:
            return self.admin_get("/ready").strip() == "LIVE" and self._listening()
        except OSError:
            return False

    def start(self, timeout: float = 30.0) -> "NodeWorker":
        self._launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EnvoyError(f"{self.name} exited with {self.proc.returncode}\n"
                                 + self.log_tail())
            if self._ready():
                self.ready_seconds = time.monotonic() - self.started_at
                return self
            time.sleep(0.05)
        self.stop()
        raise EnvoyError(f"{self.name} not ready after {timeout}s\n" + self.log_tail())

    def start_expecting_refusal(self, timeout: float = 30.0) -> str:
        """As Envoy.start_expecting_refusal. The worker does come up ('live') and must then
        answer 503 without forwarding; the configuration error is logged on its first request,
        which the caller makes."""
        self._launch()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited"
            if self._ready():
                return "live"
            time.sleep(0.05)
        return "not-live"

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def admin_get(self, path: str) -> str:
        host, port = self.admin.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            conn.request("GET", path)
            return conn.getresponse().read().decode("utf-8", "replace")
        finally:
            conn.close()

    def stats(self, filter_regex: str = "") -> dict[str, int]:
        out = {}
        for line in self.admin_get("/stats").splitlines():
            name, sep, value = line.rpartition(": ")
            if sep and value.strip().isdigit() and re.search(filter_regex, name):
                out[name] = int(value)
        return out

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def wasm_crashes(self) -> list[str]:
        """Log lines that show a Wasm trap, a Rust panic or an error thrown out of the worker.
        A panic aborts as a V8 `RuntimeError: unreachable`; a bare "unreachable" is not
        matched, since the engine's own denials log `reason=idp.unreachable`."""
        pat = re.compile(r"panicked at|wasm trap|RuntimeError|Uncaught|"
                         r"sso-filter: internal error|node-server: error", re.I)
        return [line for line in self.log_text().splitlines() if pat.search(line)]

    def client(self) -> "Client":
        return Client(self.port)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# --------------------------------------------------------------------------- workerd host

# The same worker in workerd, Cloudflare's open-source Workers runtime (npm `workerd`, pinned in
# wasm-bindgen-harness/package.json and its lock file; scripts/setup.sh installs it). The suite
# runs through it with SSO_E2E_HOST=workerd (conftest.py).
WORKERD_CAPNP = EDGE_DIR / "sso-filter.capnp"


def _workerd_binary() -> Path:
    """The runtime's own executable from the npm package (its platform package ships it), not
    the `.bin` shim, so that signals reach workerd itself."""
    override = os.environ.get("SSO_E2E_WORKERD")
    if override:
        return Path(override)
    found = sorted((EDGE_DIR / "node_modules" / "@cloudflare").glob("workerd-*/bin/workerd"))
    return found[0] if found else EDGE_DIR / "node_modules" / ".bin" / "workerd"


WORKERD = _workerd_binary()


def workerd_capnp(ca_files: list[str]) -> str:
    """A config that is wasm-bindgen-harness/sso-filter.capnp with one change: its loopback
    network also trusts `ca_files` (the tests' private CA, for ldaps; paths relative to the
    config, as capnp's embed reads them). Modules, bindings, compatibility date and sockets are
    imported from sso-filter.capnp itself (`workerd serve -I wasm-bindgen-harness`), so the suite
    runs the file a user runs."""
    trusted = ", ".join(f"embed {json.dumps(p)}" for p in ca_files)
    return (
        'using Workerd = import "/workerd/workerd.capnp";\n'
        'using Sso = import "/sso-filter.capnp";\n'
        "const config :Workerd.Config = (\n"
        '  services = [(name = "sso-filter", worker = Sso.worker),\n'
        '              (name = "loopback", network = (allow = ["local"], tlsOptions = (\n'
        f"                 trustBrowserCas = true, trustedCertificates = [{trusted}])))],\n"
        "  sockets = Sso.sockets,\n"
        ");\n")


def workerd_dist_problem() -> str | None:
    """Why dist/ (what sso-filter.capnp embeds, built by build.sh) is not the current build:
    a missing file, or one that differs from its source (handler.mjs edited, pkg/ rebuilt)."""
    dist = EDGE_DIR / "dist"
    for name in ("cloudflare.mjs", "worker.mjs", "handler.mjs", "pkg/sso_filter_edge.js",
                 "pkg/sso_filter_edge_bg.wasm"):
        if not (dist / name).exists():
            return f"{dist / name} missing: run `make edge`"
        if (dist / name).read_bytes() != (EDGE_DIR / name).read_bytes():
            return f"{dist / name} differs from {EDGE_DIR / name}: run `make edge`"
    return None


class WorkerdWorker(NodeWorker):
    """One `workerd serve` process running the worker (cloudflare.mjs, the wrangler.toml entry)
    in front of `upstream_port`, with the interface of `Envoy` (start/stop, base_url, client(),
    log_text(), wasm_crashes(), stats()). The filter JSON and the origin are the SSO_CONFIG and
    ORIGIN bindings (from the environment, as sso-filter.capnp declares them); the protected
    and admin listeners are its `http` and `admin` sockets moved to free loopback ports with
    --socket-addr. stats() reads the `admin` entrypoint (GET /stats), which serves the counters
    of the same isolate.

    `env` is the process environment, as for the other hosts; NODE_EXTRA_CA_CERTS in it (what
    the Node host takes) is trusted by the loopback network too, so one test hands its private
    CA to both edge hosts. A refused configuration: workerd starts and the worker answers 503,
    logging the error, as under Node."""

    # More `workerd serve` arguments (bench/workerd_session.py adds --async-trace).
    workerd_args: tuple[str, ...] = ()

    def __init__(self, workdir: Path, filter_config: dict | str, upstream_port: int,
                 listen_port: int | None = None, name: str = "workerd",
                 env: dict | None = None, clusters: list[tuple[str, int]] | None = None,
                 hcm_options: dict | None = None):
        super().__init__(workdir, filter_config, upstream_port, listen_port=listen_port,
                         name=name, env=env, clusters=clusters, hcm_options=hcm_options)
        old = self.dir
        self.name = self.name.replace("node-", "workerd-", 1)
        self.dir = Path(workdir) / self.name
        self.dir.mkdir(parents=True, exist_ok=True)
        old.rmdir()
        self.log_path = self.dir / "workerd.log"
        self.stderr_path = self.log_path

    def _launch(self) -> None:
        if not WORKERD.exists():
            raise EnvoyError(f"{WORKERD} missing: run scripts/setup.sh (npm ci in "
                             "wasm-bindgen-harness)")
        problem = workerd_dist_problem()
        if problem:
            raise EnvoyError(problem)
        (self.dir / "filter.json").write_text(self.config_json)
        # capnp's embed reads paths below the config's own directory only: copy the CAs there.
        ca = []
        for i, src in enumerate(p for p in self.env.get("NODE_EXTRA_CA_CERTS", "").split(
                os.pathsep) if p):
            (self.dir / f"ca-{i}.pem").write_bytes(Path(src).read_bytes())
            ca.append(f"ca-{i}.pem")
        capnp = self.dir / "workerd.capnp"
        capnp.write_text(self.capnp_text(ca))
        self.admin = f"127.0.0.1:{free_port()}"
        env = {**os.environ, **self.env, "SSO_CONFIG": self.config_json,
               "ORIGIN": f"http://127.0.0.1:{self.upstream_port}"}
        self.started_at = time.monotonic()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(WORKERD), "serve", "-I", str(WORKERD_CAPNP.parent), str(capnp),
             "--socket-addr", f"http=127.0.0.1:{self.port}",
             "--socket-addr", f"admin={self.admin}", *self.workerd_args],
            cwd=self.dir, env=env,
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent)
        log.close()

    def capnp_text(self, ca_files: list[str]) -> str:
        """The config `workerd serve` gets (bench/workerd_session.py swaps in another worker)."""
        return workerd_capnp(ca_files)

    def wasm_crashes(self) -> list[str]:
        """As NodeWorker's, plus workerd's own report of an exception thrown out of a handler
        ("Uncaught" is already matched), of a request left hanging, and of a CPU or memory
        limit exceeded."""
        pat = re.compile(r"panicked at|wasm trap|RuntimeError|Uncaught|"
                         r"sso-filter: internal error|will never generate a response|"
                         r"exceeded (?:CPU|memory)", re.I)
        return [line for line in self.log_text().splitlines() if pat.search(line)]


# --------------------------------------------------------------------------- HTTP client

@dataclass
class SetCookie:
    name: str
    value: str
    attrs: dict

    @property
    def deletes(self) -> bool:
        if self.attrs.get("max-age", "").strip() in ("0", "-1") or self.value == "":
            return True
        exp = self.attrs.get("expires", "")
        return "1970" in exp

    @property
    def is_session(self) -> bool:
        return bool(SESSION_COOKIE_RE.match(self.name))


def parse_set_cookie(header: str) -> SetCookie:
    parts = [p.strip() for p in header.split(";")]
    name, _, value = parts[0].partition("=")
    attrs = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        attrs[k.strip().lower()] = v.strip() if _ else True
    return SetCookie(name.strip(), value.strip(), attrs)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body)

    @property
    def set_cookies(self) -> list[SetCookie]:
        return [parse_set_cookie(v) for v in self.header_all("set-cookie")]

    @property
    def session_cookies_set(self) -> list[SetCookie]:
        """Set-Cookie headers that establish or extend a session (security.md §0.2 item 2)."""
        return [c for c in self.set_cookies if c.is_session and not c.deletes]

    @property
    def location(self) -> str | None:
        return self.header("location")

    def __repr__(self) -> str:
        hdrs = "; ".join(f"{k}: {v[:120]}" for k, v in self.headers)
        return f"<Response {self.status} [{hdrs}] body={self.body[:300]!r}>"


NAV = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
API = {"Accept": "application/json"}


class Client:
    """http.client with a simple cookie jar (Path=/ cookies of one origin). Paths are sent
    exactly as given: no normalisation, no redirects followed."""

    def __init__(self, port: int, host: str = "127.0.0.1"):
        self.host, self.port = host, port
        self.jar: dict[str, str] = {}

    def cookie_header(self) -> str | None:
        return "; ".join(f"{k}={v}" for k, v in self.jar.items()) or None

    def request(self, method: str, path: str, headers: dict | list | None = None,
                body: bytes | str | None = None, use_jar: bool = True,
                timeout: float = 15.0) -> Response:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
            names = {k.lower() for k, _ in items}
            if "host" not in names:
                conn.putheader("Host", f"{self.host}:{self.port}")
            if use_jar and self.jar and "cookie" not in names:
                conn.putheader("Cookie", self.cookie_header())
            if isinstance(body, str):
                body = body.encode()
            if body is not None and "content-length" not in names:
                conn.putheader("Content-Length", str(len(body)))
            for k, v in items:
                conn.putheader(k, v)
            conn.endheaders(body)
            resp = conn.getresponse()
            out = Response(resp.status, resp.getheaders(), resp.read())
        finally:
            conn.close()
        if use_jar:
            for c in out.set_cookies:
                if c.deletes:
                    self.jar.pop(c.name, None)
                else:
                    self.jar[c.name] = c.value
        return out

    def get(self, path: str, headers=None, **kw) -> Response:
        return self.request("GET", path, headers if headers is not None else NAV, **kw)

    def post_form(self, path: str, fields: dict, headers=None, **kw) -> Response:
        hdrs = dict(NAV)
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        hdrs.update(headers or {})
        return self.request("POST", path, hdrs, urllib.parse.urlencode(fields), **kw)

    def session_jar(self) -> dict[str, str]:
        return {k: v for k, v in self.jar.items() if SESSION_COOKIE_RE.match(k)}


# --------------------------------------------------------------------------- HTML forms

class _FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._cur: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._cur = {"action": a.get("action"), "method": (a.get("method") or "get").lower(),
                         "fields": {}, "inputs": []}
            self.forms.append(self._cur)
        elif tag in ("input", "button") and self._cur is not None:
            self._cur["inputs"].append(a)
            if a.get("name") and a.get("type", "text") not in ("submit", "button", "image"):
                self._cur["fields"][a["name"]] = a.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._cur = None


def parse_forms(html_text: str) -> list[dict]:
    p = _FormParser()
    p.feed(html_text)
    return p.forms


def login_form(html_text: str) -> dict:
    for form in parse_forms(html_text):
        if "username" in form["fields"] and "password" in form["fields"]:
            return form
    raise AssertionError(f"no login form (username/password) in page:\n{html_text[:2000]}")


def resolve_action(action: str | None, page_path: str) -> str:
    """The path a form posts to (same origin), relative to the page it came from."""
    if not action:
        return page_path
    joined = urllib.parse.urljoin("http://origin" + page_path, action)
    parts = urllib.parse.urlsplit(joined)
    assert parts.netloc in ("origin", ""), f"form posts off-origin: {action!r}"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def path_of(location: str, base_url: str) -> str:
    """Location (relative or absolute on base_url) -> path+query; asserts same origin."""
    if location.startswith("/") and not location.startswith("//"):
        return location
    parts = urllib.parse.urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == base_url, \
        f"redirect leaves the origin {base_url}: {location!r}"
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def is_same_origin_root(location: str, base_url: str) -> bool:
    return location in ("/", base_url + "/", base_url)


# --------------------------------------------------------------------------- oracle

def normalised(name: str) -> str:
    return name.lower().replace("_", "-")


def identity_headers_of(entry: dict) -> list[tuple[str, str]]:
    return [(k, v) for k, v in entry["headers"] if normalised(k) in IDENTITY_HEADER_NAMES]


def filter_cookies_of(entry: dict) -> list[str]:
    names = []
    for k, v in entry["headers"]:
        if k.lower() == "cookie":
            for part in v.split(";"):
                n = part.strip().split("=", 1)[0]
                if SESSION_COOKIE_RE.match(n) or FLOW_COOKIE_RE.match(n):
                    names.append(n)
    return names


def assert_nobody_let_in(resp: Response, recorder, envoy: Envoy | None = None,
                         statuses=(401,), public: bool = False) -> None:
    """security.md §0.2: nothing (or, on public paths, nothing with identity) reached the
    upstream, no session Set-Cookie, the expected status, no Wasm crash."""
    assert resp.status in statuses, f"expected status in {statuses}, got {resp!r}"
    assert not resp.session_cookies_set, f"session cookie set on a denial: {resp!r}"
    reqs = recorder.requests()
    if public:
        for entry in reqs:
            assert not identity_headers_of(entry), f"identity reached upstream: {entry}"
            assert not filter_cookies_of(entry), f"filter cookie reached upstream: {entry}"
    else:
        assert reqs == [], f"upstream was reached on a denial: {reqs}"
    if envoy is not None:
        assert not envoy.wasm_crashes(), "wasm crash:\n" + "\n".join(envoy.wasm_crashes())


def only_request(recorder) -> dict:
    reqs = recorder.requests()
    assert len(reqs) == 1, f"expected exactly one upstream request, got {len(reqs)}: {reqs}"
    return reqs[0]


# --------------------------------------------------------------------------- flows

def jwt_url(token: str, method: str = "jwt-param", param: str = "jwtParam", path: str = "/",
            before: list[tuple[str, str]] | None = None) -> str:
    """`path?<before>&activeAuth=<method>&<param>=<token>` (the seed's URL shape)."""
    query = list(before or []) + [("activeAuth", method), (param, token)]
    return path + "?" + urllib.parse.urlencode(query)


def jwt_login(client: Client, token: str = SEED_TOKEN, **kw) -> Response:
    """Land with a token; asserts the contract's success shape (302 + session cookie)."""
    resp = client.get(jwt_url(token, **kw))
    assert resp.status == 302, f"token landing did not redirect: {resp!r}"
    assert resp.session_cookies_set, f"no session cookie after a valid token: {resp!r}"
    return resp


def start_local_login(client: Client, rd: str | None = None) -> tuple[Response, dict, str]:
    """GET the built-in login page; returns (response, form, path the form posts to)."""
    page = "/login" + (f"?rd={urllib.parse.quote(rd, safe='')}" if rd is not None else "")
    resp = client.get(page)
    assert resp.status == 200, f"GET {page}: {resp!r}"
    form = login_form(resp.text)
    return resp, form, resolve_action(form["action"], page)


def local_login(client: Client, username: str, password: str, rd: str | None = None,
                page_path: str | None = None) -> Response:
    """Fill and post the built-in form (hidden fields kept as rendered)."""
    if page_path is None:
        _, form, action = start_local_login(client, rd)
    else:
        resp = client.get(page_path)
        assert resp.status == 200, f"GET {page_path}: {resp!r}"
        form = login_form(resp.text)
        action = resolve_action(form["action"], page_path)
    fields = dict(form["fields"])
    fields.update(username=username, password=password)
    return client.post_form(action, fields)


def mint_hs256(claims: dict, secret: str = SEED_SECRET) -> str:
    import jwt  # PyJWT
    return jwt.encode(claims, secret.encode(), algorithm="HS256",
                      headers={"typ": "JWT"})


def decode_identity_of(entry: dict) -> dict:
    """The identity the upstream would decode from one recorded request."""
    return demo_upstream.decode_identity(entry["headers"])
