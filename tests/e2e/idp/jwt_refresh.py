"""Our own mock of Mobi's JWT keep-alive endpoint, as sso-filter's `keep_alive.refresh_url`
sees it. Not Mobi's API: Mobi's RefreshJWTUserToken is an Alibaba Cloud OpenAPI call signed with
the operator's access key, so an operator runs a small service in front of it, and this is that
service's contract as README.md and docs/behaviour.md ("JWT keep-alive") define it:

    POST /refresh   application/x-www-form-urlencoded
                    grant_type=refresh_token&refresh_token=RT
    200 {"auth_code": "<new JWT>", "refresh_token": "<rotated>", "expires_in": <seconds>}

It is also the issuer of the login URL's parameters (what GenerateJWTUserToken gives a host
application: `auth_code`, `refresh_token`, `expires_in`), minting tokens with PyJWT (HS256), an
implementation independent of the filter's.

Test hooks (the suite runs it in-process):
    ep.issue(login, expires_in)   the login URL's parameters for `login`
    ep.mode = "ok" | "down" | "other"   answer new tokens / 503 / a token for another login
    ep.hold = 1.5                 hold every refresh that long before answering (in flight)
    ep.calls()                    the refresh tokens received, in order
    ep.violations                 requests that broke the contract (wrong method, path, form)
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt  # PyJWT

SECRET = "mobi-keep-alive-test-secret-0123456789"
ISSUER = "https://mobi.example.com"
AUDIENCE = "app"
# Lifetime of the tokens a refresh gives (expires_in): long enough that a test's timeline sees
# one refresh, not a chain of them.
REFRESHED_LIFETIME = 60


class RefreshEndpoint:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.lock = threading.Lock()
        self.mode = "ok"
        self.hold = 0.0
        self.issued: dict[str, str] = {}      # refresh token -> login
        self.received: list[str] = []
        self.violations: list[str] = []
        ep = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "mobi-refresh-mock/1"

            def log_message(self, fmt, *args):
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass      # the filter gave up on the call

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode("utf-8", "replace")
                form = urllib.parse.parse_qs(raw, keep_blank_values=True)
                status, body = ep._answer(self.path, self.headers.get("content-type", ""), form)
                if isinstance(body, dict):
                    self._send(status, json.dumps(body).encode(), "application/json")
                else:
                    self._send(status, body, "text/html")

            def do_GET(self):
                with ep.lock:
                    ep.violations.append(f"GET {self.path}")
                self._send(405, b"", "text/plain")

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host = host
        self.port = self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/refresh"

    def start(self) -> "RefreshEndpoint":
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self.lock:
            self.mode, self.hold = "ok", 0.0
            self.received, self.violations = [], []

    def calls(self) -> list[str]:
        with self.lock:
            return list(self.received)

    def token(self, login: str, lifetime: int = 600) -> str:
        now = int(time.time())
        return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": f"sub-{login}",
                           "loginName": login, "roles": ["viewer"], "iat": now,
                           "exp": now + lifetime}, SECRET, algorithm="HS256")

    def _refresh_token(self, login: str) -> str:
        rt = f"rt-{secrets.token_urlsafe(24)}"
        with self.lock:
            self.issued[rt] = login
        return rt

    def issue(self, login: str, expires_in: int) -> dict[str, str]:
        """What GenerateJWTUserToken gives a host application, as URL parameters."""
        return {"auth_code": self.token(login), "refresh_token": self._refresh_token(login),
                "expires_in": str(expires_in)}

    def _answer(self, path: str, ctype: str, form: dict) -> tuple[int, dict | bytes]:
        rts = form.get("refresh_token", [])
        with self.lock:
            if (path != "/refresh" or not ctype.startswith("application/x-www-form-urlencoded")
                    or form.get("grant_type") != ["refresh_token"] or len(rts) != 1):
                self.violations.append(f"POST {path} {ctype} {sorted(form)}")
                return 400, {"error": "invalid_request"}
            rt = rts[0]
            self.received.append(rt)
            mode, hold = self.mode, self.hold
            login = self.issued.get(rt)
        if hold:
            time.sleep(hold)
        if mode == "down":
            return 503, b"<html><body><h1>503 Service Unavailable</h1></body></html>"
        if login is None:
            return 400, {"error": "invalid_grant"}
        if mode == "other":
            login = "mallory"
        return 200, {"auth_code": self.token(login), "refresh_token": self._refresh_token(login),
                     "expires_in": REFRESHED_LIFETIME}
