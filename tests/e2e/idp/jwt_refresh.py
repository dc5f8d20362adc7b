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

Built on the provider mocks' `MockServer` (tests/e2e/idp/cn/common.py). Test hooks (the suite
runs it in-process):
    ep.issue(login, expires_in)   the login URL's parameters for `login`
    ep.mode = "ok" | "down" | "other"   answer new tokens / 503 / a token for another login
    ep.hold = 1.5                 hold every refresh that long before answering (in flight)
    ep.refreshes()                the refresh tokens received, in order
    ep.violations                 requests that broke the contract (wrong method, path, form)
    ep.reset()                    forget calls and violations, back to "ok" (issued tokens stay)
"""

from __future__ import annotations

import secrets
import time
import urllib.parse

import jwt  # PyJWT

from idp.cn.common import MockServer, Req, route

SECRET = "mobi-keep-alive-test-secret-0123456789"
ISSUER = "https://mobi.example.com"
AUDIENCE = "app"
# Lifetime of the tokens a refresh gives (expires_in): long enough that a test's timeline sees
# one refresh, not a chain of them.
REFRESHED_LIFETIME = 60


class RefreshEndpoint(MockServer):
    name = "mobi-refresh"

    def on_reset(self) -> None:
        self.mode = "ok"
        self.hold = 0.0
        self.received: list[str] = []
        if not hasattr(self, "issued"):
            self.issued: dict[str, str] = {}      # refresh token -> login (kept across tests)

    @property
    def url(self) -> str:
        return f"{self.base_url}/refresh"

    def refreshes(self) -> list[str]:
        """The refresh tokens received, in order."""
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

    @route("POST", "/refresh")
    def refresh(self, req: Req):
        ctype = req.header("content-type") or ""
        form = urllib.parse.parse_qs(req.body.decode("utf-8", "replace"),
                                     keep_blank_values=True)
        rts = form.get("refresh_token", [])
        if not (self.require(req, ctype.startswith("application/x-www-form-urlencoded"),
                             f"content-type {ctype!r}")
                and self.require(req, form.get("grant_type") == ["refresh_token"]
                                 and len(rts) == 1, f"form fields {sorted(form)}")):
            return 400, {"error": "invalid_request"}
        with self.lock:
            self.received.append(rts[0])
            mode, hold = self.mode, self.hold
            login = self.issued.get(rts[0])
        if hold:
            time.sleep(hold)
        if mode == "down":
            return 503, b"<!doctype html><h1>503 Service Unavailable</h1>"
        if login is None:
            return 400, {"error": "invalid_grant"}
        if mode == "other":
            login = "mallory"
        return 200, {"auth_code": self.token(login), "refresh_token": self._refresh_token(login),
                     "expires_in": REFRESHED_LIFETIME}
