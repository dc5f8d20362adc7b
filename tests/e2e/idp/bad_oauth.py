#!/usr/bin/env python3
"""A scripted OpenID Provider that misbehaves on request, for the sso-filter failure tests.

    python tests/e2e/idp/bad_oauth.py PORT [--host 127.0.0.1] [--slow-seconds 5]

Prints one line `READY {"issuer": ..., "port": ...}` when listening.

Every mode is its own issuer, so the filter's process-wide discovery and JWKS caches never mix
two modes:  issuer `http://HOST:PORT/m/<mode>` serves

    /m/<mode>/.well-known/openid-configuration   /m/<mode>/jwks
    /m/<mode>/authorize   /m/<mode>/token   /m/<mode>/userinfo   /m/<mode>/logout

and the root issuer `http://HOST:PORT` serves the same endpoints with the mode last set by
`POST /_mode {"mode": "...", "slow_seconds": N}` (default `ok`).

There is no login page: `authorize` redirects straight back to `redirect_uri` with a fresh
`code` and the `state`, remembering per code the `nonce`, `client_id`, `redirect_uri` and PKCE
challenge it was given, so its ID tokens echo the nonce the filter sent. The token endpoint
is a real one in mode `ok`: it checks client authentication (`client_secret_basic` or
`client_secret_post` with the client below), `grant_type`, `redirect_uri`, the PKCE S256
verifier, and that a code is used once (a second use is 400 `invalid_grant`, in every mode).
ID tokens are RS256 with this server's own RSA key (jwcrypto).

Clients: `app` / `app-secret-0123456789` (the same as the oidc-provider fixture).
User (mode `ok`): sub `bad-idp-carol`, preferred_username `carol`, name `Carol Okafor`,
email `carol@example.com`, groups `["ok-group"]`.

Control endpoints (not part of any protocol):
    GET /_log           JSON list of the requests served, oldest first (no secrets)
    POST /_reset        clears the log
    POST /_mode         sets the root issuer's mode (and slow_seconds)
    GET /_health        "ok"

Modes (`MODES` below has the list with what each one does).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jwcrypto import jwk, jwt

CLIENTS = {"app": "app-secret-0123456789", "app-post": "post-secret-0123456789"}

USER = {
    "sub": "bad-idp-carol",
    "preferred_username": "carol",
    "name": "Carol Okafor",
    "email": "carol@example.com",
    "email_verified": True,
    "groups": ["ok-group"],
}

# mode -> what it does (the tests read this to know the list; keep it in step with the code)
MODES = {
    "ok": "a correct provider",
    # discovery
    "discovery-500": "discovery answers 500",
    "discovery-malformed": "discovery answers 200 with broken JSON",
    "discovery-huge": "discovery answers 2 MB of valid JSON",
    "discovery-slow": "discovery answers after slow_seconds",
    "discovery-wrong-issuer": "discovery names another issuer (OIDC Discovery 4.3)",
    # jwks
    "jwks-500": "JWKS answers 500",
    "jwks-malformed": "JWKS answers 200 with broken JSON",
    "jwks-huge": "JWKS answers 2 MB of valid JSON",
    "jwks-empty": "JWKS has no key",
    # authorization response
    "callback-error": "authorize redirects back with error=access_denied",
    "iss-wrong": "authorize adds iss=<another issuer> (RFC 9207 advertised)",
    "iss-missing": "discovery advertises RFC 9207 but authorize sends no iss",
    # token endpoint
    "token-400": "token answers 400 invalid_grant with a description",
    "token-401": "token answers 401 invalid_client",
    "token-500": "token answers 500 server_error",
    "token-503-html": "token answers 503 with an HTML page",
    "token-malformed": "token answers 200 with broken JSON",
    "token-huge": "token answers 2 MB of valid JSON",
    "token-html": "token answers 200 text/html",
    "token-slow": "token answers after slow_seconds",
    "token-reset": "token closes the connection without answering",
    "token-no-id-token": "token answer lacks id_token",
    "token-error-200": "token answers 200 with {error: invalid_grant}",
    # ID token
    "idtoken-wrong-iss": "ID token iss is another issuer",
    "idtoken-wrong-aud": "ID token aud is another client",
    "idtoken-azp-wrong": "ID token aud [app, other] with azp other",
    "idtoken-wrong-nonce": "ID token nonce is not the one sent",
    "idtoken-no-nonce": "ID token has no nonce",
    "idtoken-expired": "ID token exp an hour ago",
    "idtoken-iat-future": "ID token iat an hour ahead",
    "idtoken-alg-none": "ID token alg none, no signature",
    "idtoken-bad-signature": "ID token signed by another key under the published kid",
    "idtoken-unknown-kid": "ID token signed by a key the JWKS never publishes",
    "idtoken-hs256-confusion": "ID token HS256 with the RSA public key (PEM) as secret",
    # user-info
    "userinfo-500": "user-info answers 500",
    "userinfo-malformed": "user-info answers 200 with broken JSON",
    "userinfo-huge": "user-info answers 2 MB of valid JSON",
    "userinfo-slow": "user-info answers after slow_seconds",
    "userinfo-sub-mismatch": "user-info names another sub",
    "userinfo-401": "user-info answers 401 invalid_token",
}

HUGE = 2 * 1024 * 1024


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def huge_json(base: dict) -> bytes:
    doc = dict(base)
    doc["padding"] = "x" * HUGE
    return json.dumps(doc).encode()


class State:
    def __init__(self, host: str, port: int, slow_seconds: float):
        self.host, self.port = host, port
        self.origin = f"http://{host}:{port}"
        self.lock = threading.Lock()
        self.mode = "ok"
        self.slow_seconds = slow_seconds
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.log: list[dict] = []
        self.key = jwk.JWK.generate(kty="RSA", size=2048, kid="bad-rsa-1", alg="RS256", use="sig")
        # Same kid as the published key, different key material.
        self.impostor = jwk.JWK.generate(kty="RSA", size=2048, kid="bad-rsa-1")
        self.hidden = jwk.JWK.generate(kty="RSA", size=2048, kid="never-published")

    def issuer(self, prefix: str) -> str:
        return self.origin + prefix


def sign(key: jwk.JWK, claims: dict, alg: str = "RS256") -> str:
    token = jwt.JWT(header={"alg": alg, "kid": key.key_id, "typ": "JWT"}, claims=claims)
    token.make_signed_token(key)
    return token.serialize()


def id_token_for(state: State, mode: str, issuer: str, code: dict) -> str:
    now = int(time.time())
    claims = {"iss": issuer, "sub": USER["sub"], "aud": code["client_id"], "exp": now + 300,
              "iat": now, "auth_time": now - 5}
    if code.get("nonce") is not None:
        claims["nonce"] = code["nonce"]
    if mode == "idtoken-wrong-iss":
        claims["iss"] = "http://127.0.0.1:1/evil-issuer"
    elif mode == "idtoken-wrong-aud":
        claims["aud"] = "someone-else"
    elif mode == "idtoken-azp-wrong":
        claims["aud"] = [code["client_id"], "someone-else"]
        claims["azp"] = "someone-else"
    elif mode == "idtoken-wrong-nonce":
        claims["nonce"] = "not-the-nonce-" + secrets.token_urlsafe(8)
    elif mode == "idtoken-no-nonce":
        claims.pop("nonce", None)
    elif mode == "idtoken-expired":
        claims["exp"], claims["iat"], claims["auth_time"] = now - 3600, now - 7200, now - 7200
    elif mode == "idtoken-iat-future":
        claims["iat"], claims["exp"] = now + 3600, now + 7200
    if mode == "idtoken-alg-none":
        header = {"alg": "none", "typ": "JWT"}
        return (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())
                + ".")
    if mode == "idtoken-hs256-confusion":
        header = {"alg": "HS256", "kid": state.key.key_id, "typ": "JWT"}
        signing_input = (b64url(json.dumps(header).encode()) + "."
                         + b64url(json.dumps(claims).encode()))
        secret = state.key.export_to_pem()  # the public key's PEM
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return signing_input + "." + b64url(mac)
    if mode == "idtoken-bad-signature":
        return sign(state.impostor, claims)
    if mode == "idtoken-unknown-kid":
        return sign(state.hidden, claims)
    return sign(state.key, claims)


class Handler(BaseHTTPRequestHandler):
    server_version = "bad-oauth/1"
    protocol_version = "HTTP/1.1"
    state: State  # set on the class by main()

    def log_message(self, fmt, *args):  # quiet; the /_log endpoint tells what happened
        pass

    # ---------------------------------------------------------------- plumbing

    def _body(self) -> bytes:
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def _send(self, status: int, body: bytes | str | dict, ctype: str = "application/json",
              headers: dict | None = None) -> None:
        if isinstance(body, dict):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self._status = status
        try:
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(body)))
            self.send_header("cache-control", "no-store")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            self._status = -1  # the filter gave up first (slow modes)

    def _redirect(self, location: str) -> None:
        self._send(302, b"", "text/plain", {"location": location})

    def _slow(self) -> None:
        time.sleep(self.state.slow_seconds)

    def _record(self, **entry) -> dict:
        entry.setdefault("at", time.time())
        with self.state.lock:
            self.state.log.append(entry)
            if len(self.state.log) > 5000:
                del self.state.log[:1000]
        return entry

    def _route(self):
        """(prefix, mode, endpoint) for a path, or None."""
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/m/"):
            rest = path[3:]
            mode, _, endpoint = rest.partition("/")
            if mode not in MODES:
                return None
            return f"/m/{mode}", mode, "/" + endpoint
        return "", self.state.mode, path

    # ---------------------------------------------------------------- dispatch

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    def do_HEAD(self):
        self._dispatch()

    def _dispatch(self):
        self._status = 0
        path = urllib.parse.urlsplit(self.path).path
        if path.startswith("/_"):
            return self._control(path)
        route = self._route()
        if route is None:
            return self._send(404, {"error": "not_found"})
        prefix, mode, endpoint = route
        body = self._body() if self.command == "POST" else b""
        entry = self._record(method=self.command, path=path, mode=mode, endpoint=endpoint,
                             host=self.headers.get("host"))
        handler = {
            "/.well-known/openid-configuration": self._discovery,
            "/jwks": self._jwks,
            "/authorize": self._authorize,
            "/token": self._token,
            "/userinfo": self._userinfo,
            "/logout": self._logout,
        }.get(endpoint)
        try:
            if handler is None:
                self._send(404, {"error": "not_found"})
            else:
                handler(prefix, mode, body, entry)
        finally:
            entry["status"] = self._status

    def _control(self, path):
        st = self.state
        if path == "/_health":
            return self._send(200, "ok", "text/plain")
        if path == "/_log":
            with st.lock:
                return self._send(200, json.dumps(st.log).encode())
        if path == "/_reset" and self.command == "POST":
            self._body()
            with st.lock:
                st.log.clear()
            return self._send(200, {})
        if path == "/_mode" and self.command == "POST":
            try:
                req = json.loads(self._body() or b"{}")
            except ValueError:
                return self._send(400, {"error": "bad json"})
            mode = req.get("mode", st.mode)
            if mode not in MODES:
                return self._send(400, {"error": f"unknown mode {mode!r}", "modes": list(MODES)})
            with st.lock:
                st.mode = mode
                if "slow_seconds" in req:
                    st.slow_seconds = float(req["slow_seconds"])
            return self._send(200, {"mode": st.mode, "slow_seconds": st.slow_seconds})
        if path == "/_modes":
            return self._send(200, MODES)
        return self._send(404, {"error": "not_found"})

    # ---------------------------------------------------------------- endpoints

    def _discovery(self, prefix, mode, _body, _entry):
        iss = self.state.issuer(prefix)
        doc = {
            "issuer": iss,
            "authorization_endpoint": iss + "/authorize",
            "token_endpoint": iss + "/token",
            "userinfo_endpoint": iss + "/userinfo",
            "jwks_uri": iss + "/jwks",
            "end_session_endpoint": iss + "/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "scopes_supported": ["openid", "profile", "email"],
        }
        if mode in ("iss-wrong", "iss-missing", "ok"):
            doc["authorization_response_iss_parameter_supported"] = True
        if mode == "discovery-500":
            return self._send(500, {"error": "server_error"})
        if mode == "discovery-malformed":
            return self._send(200, b'{"issuer": "' + iss.encode() + b'", "authorization_')
        if mode == "discovery-huge":
            return self._send(200, huge_json(doc))
        if mode == "discovery-slow":
            self._slow()
        if mode == "discovery-wrong-issuer":
            doc["issuer"] = "http://127.0.0.1:1/another-issuer"
        self._send(200, doc)

    def _jwks(self, _prefix, mode, _body, _entry):
        keys = {"keys": [json.loads(self.state.key.export_public())]}
        if mode == "jwks-500":
            return self._send(500, {"error": "server_error"})
        if mode == "jwks-malformed":
            return self._send(200, b'{"keys": [{"kty": "RSA", ')
        if mode == "jwks-huge":
            return self._send(200, huge_json(keys))
        if mode == "jwks-empty":
            return self._send(200, {"keys": []})
        self._send(200, keys)

    def _authorize(self, prefix, mode, _body, entry):
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query,
                                        keep_blank_values=True))
        entry["params"] = {k: q.get(k) for k in (
            "response_type", "client_id", "redirect_uri", "scope", "state",
            "code_challenge_method")}
        entry["has"] = sorted(q)
        redirect_uri = q.get("redirect_uri")
        if not redirect_uri or q.get("client_id") not in CLIENTS:
            return self._send(400, "<h1>invalid_request: client_id/redirect_uri</h1>",
                              "text/html")
        back: list[tuple[str, str]] = []
        if mode == "callback-error":
            back += [("error", "access_denied"),
                     ("error_description", "The user said no (bad_oauth callback-error)")]
        else:
            code = secrets.token_urlsafe(24)
            with self.state.lock:
                self.state.codes[code] = {
                    "client_id": q["client_id"], "redirect_uri": redirect_uri,
                    "nonce": q.get("nonce"), "challenge": q.get("code_challenge"),
                    "method": q.get("code_challenge_method"), "used": False,
                    "issued": time.time(), "prefix": prefix,
                }
            back.append(("code", code))
        if "state" in q:
            back.append(("state", q["state"]))
        if mode == "iss-wrong":
            back.append(("iss", "http://127.0.0.1:1/another-issuer"))
        elif mode not in ("iss-missing",):
            back.append(("iss", self.state.issuer(prefix)))
        sep = "&" if "?" in redirect_uri else "?"
        self._redirect(redirect_uri + sep + urllib.parse.urlencode(back))

    def _client_auth(self, form: dict, entry: dict):
        """(client_id, error) from Basic or the form (RFC 6749 2.3.1)."""
        auth = self.headers.get("authorization") or ""
        if auth.lower().startswith("basic "):
            entry["client_auth"] = "client_secret_basic"
            try:
                raw = base64.b64decode(auth[6:].strip(), validate=True).decode()
                cid, _, secret = raw.partition(":")
                cid, secret = urllib.parse.unquote(cid), urllib.parse.unquote(secret)
            except (ValueError, UnicodeDecodeError):
                return None, "invalid_client"
        elif "client_secret" in form:
            entry["client_auth"] = "client_secret_post"
            cid, secret = form.get("client_id", ""), form["client_secret"]
        else:
            entry["client_auth"] = None
            return None, "invalid_client"
        if CLIENTS.get(cid) is None or not hmac.compare_digest(CLIENTS[cid], secret):
            return None, "invalid_client"
        return cid, None

    def _token(self, prefix, mode, body, entry):
        form = dict(urllib.parse.parse_qsl(body.decode("utf-8", "replace"),
                                           keep_blank_values=True))
        entry["has"] = sorted(k for k in form if k != "client_secret")
        entry["grant_type"] = form.get("grant_type")
        cid, err = self._client_auth(form, entry)
        if err:
            return self._send(401, {"error": err, "error_description": "client auth failed"},
                              headers={"www-authenticate": 'Basic realm="bad-oauth"'})
        if form.get("grant_type") != "authorization_code":
            return self._send(400, {"error": "unsupported_grant_type"})
        code_value = form.get("code", "")
        with self.state.lock:
            code = self.state.codes.get(code_value)
            replay = bool(code and code["used"])
            if code:
                code["used"] = True
        if code is None or replay:
            entry["error"] = "replayed code" if replay else "unknown code"
            return self._send(400, {"error": "invalid_grant",
                                    "error_description": entry["error"]})
        if code["client_id"] != cid or code["redirect_uri"] != form.get("redirect_uri"):
            entry["error"] = "client_id or redirect_uri mismatch"
            return self._send(400, {"error": "invalid_grant",
                                    "error_description": entry["error"]})
        verifier = form.get("code_verifier")
        if code["challenge"] is not None or verifier is not None:
            ok = (code["method"] == "S256" and verifier is not None and code["challenge"]
                  == b64url(hashlib.sha256(verifier.encode()).digest()))
            if not ok:
                entry["error"] = "PKCE verification failed"
                return self._send(400, {"error": "invalid_grant",
                                        "error_description": entry["error"]})
        entry["pkce"] = code["challenge"] is not None
        # The request was right; now misbehave as asked.
        if mode == "token-400":
            return self._send(400, {"error": "invalid_grant",
                                    "error_description": "Code not valid (bad_oauth token-400)"})
        if mode == "token-401":
            return self._send(401, {"error": "invalid_client",
                                    "error_description": "Client unknown (bad_oauth token-401)"})
        if mode == "token-500":
            return self._send(500, {"error": "server_error",
                                    "error_description": "Database on fire (bad_oauth)"})
        if mode == "token-503-html":
            return self._send(503, "<html><body><h1>Service Unavailable</h1></body></html>",
                              "text/html")
        if mode == "token-malformed":
            return self._send(200, b'{"access_token": "abc", "token_type": "Bearer", "id_to')
        if mode == "token-html":
            return self._send(200, "<html><body>Welcome!</body></html>", "text/html")
        if mode == "token-error-200":
            return self._send(200, {"error": "invalid_grant",
                                    "error_description": "error in a 200 (bad_oauth)"})
        if mode == "token-reset":
            self._status = -2
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return None
        if mode == "token-slow":
            self._slow()
        access = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.tokens[access] = {"client_id": cid, "issued": time.time()}
        resp = {"access_token": access, "token_type": "Bearer", "expires_in": 600,
                "scope": "openid profile email"}
        if mode != "token-no-id-token":
            resp["id_token"] = id_token_for(self.state, mode, self.state.issuer(prefix), code)
        if mode == "token-huge":
            return self._send(200, huge_json(resp))
        self._send(200, resp)

    def _userinfo(self, _prefix, mode, body, entry):
        auth = self.headers.get("authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        entry["bearer"] = token is not None
        with self.state.lock:
            known = token is not None and token in self.state.tokens
        if not known or mode == "userinfo-401":
            return self._send(401, {"error": "invalid_token"},
                              headers={"www-authenticate": 'Bearer error="invalid_token"'})
        claims = dict(USER)
        if mode == "userinfo-500":
            return self._send(500, {"error": "server_error"})
        if mode == "userinfo-malformed":
            return self._send(200, b'{"sub": "bad-idp-carol", "name": ')
        if mode == "userinfo-huge":
            return self._send(200, huge_json(claims))
        if mode == "userinfo-slow":
            self._slow()
        if mode == "userinfo-sub-mismatch":
            claims["sub"] = "someone-else-entirely"
            claims["preferred_username"] = "mallory"
        self._send(200, claims)

    def _logout(self, _prefix, _mode, _body, entry):
        q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
        entry["has"] = sorted(q)
        target = q.get("post_logout_redirect_uri") or q.get("redirect_uri")
        if target:
            return self._redirect(target)
        self._send(200, "<h1>signed out</h1>", "text/html")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("port", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--slow-seconds", type=float, default=5.0)
    args = ap.parse_args(argv)
    state = State(args.host, args.port, args.slow_seconds)
    Handler.state = state
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    print("READY " + json.dumps({"issuer": state.origin, "port": args.port,
                                 "modes": list(MODES)}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
