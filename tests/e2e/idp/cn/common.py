"""The base of the provider mocks: a threaded HTTP server on loopback that routes requests to
handler methods, records every request (secrets masked) and every *violation* — anything the
filter sent that the provider's documentation does not allow (wrong path, method, parameter
name, content type, signature, token header). A test asserts `mock.violations == []`.

A provider subclass declares routes with `@route("GET", "/cgi-bin/gettoken")`; a handler gets a
`Req` and returns `(status, body)` where body is a dict (JSON), bytes, or a `Redirect`. A path
segment written `:name` (`/open-apis/contact/v3/users/:user_id`) matches one segment, handed to
the handler as `req.params["name"]`; exact routes win over such patterns.

Test hooks (Python calls, the suite runs the mock in-process):
    mock.reset()                 forget codes, logs, violations and scripted failures (issued
                                 app tokens stay valid, as at a real provider)
    mock.expire_tokens()         every app token issued so far stops working (server side)
    mock.fail_next(path, body)   the next call to `path` answers `body` instead
    mock.calls(path=None)        the recorded requests ("METHOD path"), optionally one path

Run standalone for manual tries:  python -m idp.cn.<provider> [PORT]   (from tests/e2e)
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET_PARAMS = {"corpsecret", "appsecret", "secret", "client_secret", "clientSecret",
                 "appSecret", "access_token", "code", "authCode", "tmp_auth_code", "ticket",
                 "user_ticket", "accessToken", "signature", "js_code", "ssoSecret"}


@dataclass
class Redirect:
    location: str


@dataclass
class Req:
    method: str
    path: str
    query: dict[str, str]
    query_list: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    raw_path: str
    params: dict[str, str] = field(default_factory=dict)

    def json(self):
        try:
            value = json.loads(self.body or b"null")
        except ValueError:
            return None
        return value

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


def route(method: str, path: str):
    def mark(fn):
        fn._route = (method, path)
        return fn
    return mark


def masked(items) -> dict:
    return {k: ("***" if k in SECRET_PARAMS else v) for k, v in items}


class MockServer:
    """Subclass and add @route methods."""

    name = "mock"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.lock = threading.RLock()
        self.routes = {}
        for attr in dir(type(self)):
            fn = getattr(type(self), attr)
            r = getattr(fn, "_route", None)
            if r:
                self.routes[r] = getattr(self, attr)
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = f"{mock.name}-mock/1"

            def log_message(self, fmt, *args):
                pass

            def _serve(self):
                mock._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]
        self.thread: threading.Thread | None = None
        self.reset()

    # ------------------------------------------------------------------ lifecycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "MockServer":
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.log: list[dict] = []
            self.violations: list[str] = []
            self.scripted: dict[str, list] = {}
            if not hasattr(self, "tokens"):
                self.tokens: dict[str, dict] = {}
                self.serial = 0
            self.codes: dict[str, dict] = {}
            self.on_reset()

    def on_reset(self) -> None:
        """Provider state to clear on reset."""

    # ------------------------------------------------------------------ test hooks

    def expire_tokens(self) -> None:
        with self.lock:
            for t in self.tokens.values():
                t["expired"] = True

    def fail_next(self, path: str, body, status: int = 200) -> None:
        with self.lock:
            self.scripted.setdefault(path, []).append((status, body))

    def calls(self, path: str | None = None, tokens: bool = True) -> list[str]:
        """Requests seen; `tokens=False` leaves out app-token fetches (whether one happens
        depends on what earlier tests left in the filter's cache)."""
        with self.lock:
            return [f"{e['method']} {e['path']}" for e in self.log
                    if (path is None or e["path"] == path)
                    and (tokens or e["path"] not in self.token_paths)]

    token_paths: tuple[str, ...] = ()

    # ------------------------------------------------------------------ helpers for handlers

    def violation(self, req: Req, text: str) -> None:
        with self.lock:
            self.violations.append(f"{req.method} {req.path}: {text}")

    def require(self, req: Req, cond: bool, text: str) -> bool:
        if not cond:
            self.violation(req, text)
        return cond

    def require_method(self, req: Req, method: str) -> bool:
        return self.require(req, req.method == method, f"method must be {method}")

    def require_params(self, req: Req, allowed: set[str], required: set[str]) -> bool:
        names = [k for k, _ in req.query_list]
        ok = True
        if len(names) != len(set(names)):
            ok = self.require(req, False, f"repeated query parameter in {names}")
        extra = set(names) - allowed
        missing = required - set(names)
        if extra:
            ok = self.require(req, False, f"unexpected query parameters {sorted(extra)}") and ok
        if missing:
            ok = self.require(req, False, f"missing query parameters {sorted(missing)}") and ok
        return ok

    def require_json(self, req: Req) -> dict | None:
        ctype = (req.header("content-type") or "").lower()
        self.require(req, ctype.startswith("application/json"),
                     f"content-type must be application/json, got {ctype!r}")
        body = req.json()
        self.require(req, isinstance(body, dict), "body must be a JSON object")
        return body if isinstance(body, dict) else None

    def next_serial(self) -> int:
        with self.lock:
            self.serial += 1
            return self.serial

    def issue_token(self, prefix: str, ttl: int = 7200, **extra) -> str:
        token = f"{prefix}{self.next_serial()}"
        with self.lock:
            self.tokens[token] = {"exp": time.time() + ttl, "expired": False, **extra}
        return token

    def token_state(self, token: str | None) -> str:
        """'ok', 'expired' or 'unknown'."""
        with self.lock:
            t = self.tokens.get(token or "")
            if t is None:
                return "unknown"
            if t["expired"] or t["exp"] < time.time():
                return "expired"
            return "ok"

    def issue_code(self, prefix: str, ttl: int = 300, **data) -> str:
        code = f"{prefix}{self.next_serial()}"
        with self.lock:
            self.codes[code] = {"exp": time.time() + ttl, "used": False, **data}
        return code

    def use_code(self, code: str | None) -> tuple[str, dict | None]:
        """('ok', data) the first time; ('used', data) after; ('unknown'|'expired', None)."""
        with self.lock:
            c = self.codes.get(code or "")
            if c is None:
                return "unknown", None
            if c["used"]:
                return "used", c
            if c["exp"] < time.time():
                return "expired", None
            c["used"] = True
            return "ok", c

    @staticmethod
    def redirect_back(redirect_uri: str, params: dict) -> Redirect:
        parts = urllib.parse.urlsplit(redirect_uri)
        query = parts.query + ("&" if parts.query else "") + urllib.parse.urlencode(params)
        return Redirect(urllib.parse.urlunsplit(parts._replace(query=query, fragment="")))

    # ------------------------------------------------------------------ dispatch

    def _dispatch(self, h: BaseHTTPRequestHandler) -> None:
        parts = urllib.parse.urlsplit(h.path)
        qlist = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        length = int(h.headers.get("content-length") or 0)
        body = h.rfile.read(length) if length else b""
        req = Req(h.command, parts.path, dict(qlist), qlist,
                  {k.lower(): v for k, v in h.headers.items()}, body, h.path)
        with self.lock:
            self.log.append({"method": req.method, "path": req.path,
                             "query": masked(qlist), "time": time.time()})
            scripted = self.scripted.get(req.path)
            canned = scripted.pop(0) if scripted else None
        if canned is not None:
            status, result = canned
        else:
            handler = self.routes.get((req.method, req.path))
            if handler is None:
                handler, req.params = self._pattern(req)
            if handler is None:
                other = [m for (m, p) in self.routes if p == req.path]
                self.violation(req, "no such endpoint" if not other
                               else f"method must be one of {other}")
                status, result = 404, {"errcode": 404, "errmsg": "not found"}
            else:
                try:
                    status, result = handler(req)
                except Exception as exc:  # a bug in the mock must show, not hang the filter
                    self.violation(req, f"mock error {exc!r}")
                    status, result = 500, {"errcode": -1, "errmsg": "mock error"}
        self._send(h, status, result)

    def _pattern(self, req: Req):
        """The route whose `:name` segments match the path, and the segments' values."""
        parts = req.path.split("/")
        for (method, path), handler in self.routes.items():
            pattern = path.split("/")
            if method != req.method or ":" not in path or len(pattern) != len(parts):
                continue
            params = {}
            for want, got in zip(pattern, parts):
                if want.startswith(":") and got:
                    params[want[1:]] = urllib.parse.unquote(got)
                elif want != got:
                    break
            else:
                return handler, params
        return None, {}

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, result) -> None:
        headers = []
        if isinstance(result, Redirect):
            status = 302
            headers.append(("Location", result.location))
            data = b""
        elif isinstance(result, (bytes, bytearray)):
            data = bytes(result)
            kind = "text/html" if data.startswith(b"<!doctype html>") else "text/plain"
            headers.append(("Content-Type", kind + "; charset=utf-8"))
        else:
            data = json.dumps(result, ensure_ascii=False).encode()
            headers.append(("Content-Type", "application/json; charset=utf-8"))
        h.send_response(status)
        for k, v in headers:
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)


ALNUM_STATE = re.compile(r"^[A-Za-z0-9]{1,128}$")


def serve_forever(cls) -> None:
    import sys
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    mock = cls(port=port)
    print(f"READY {json.dumps({'base_url': mock.base_url})}", flush=True)
    mock.server.serve_forever()
