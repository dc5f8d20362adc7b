"""A real SAML 2.0 IdP for the end-to-end suite: pysaml2's `saml2.server.Server` behind a small
WSGI app, on loopback only, signing with xmlsec1.

    python server.py --port P --workdir W --app http://127.0.0.1:ENVOY --methods saml,saml-post
                     [--sp-cert FILE] [--sign assertion|response|both] [--encrypt-methods m,..]
                     [--slo-binding redirect|post]

- The SPs it answers are the filter's methods: entity ID `{app}/sso/saml/{m}/metadata`, ACS
  `{app}/sso/saml/{m}/acs`.
- `GET /metadata`: the IdP metadata (also written to W/idp-metadata.xml before the port opens).
  Its key and certificate are W/idp.key, W/idp.crt (made fresh at start).
- `GET /sso/redirect` (HTTP-Redirect) and `POST /sso/post` (HTTP-POST): the AuthnRequest is
  parsed by pysaml2; a redirect request carrying `Signature` is verified with --sp-cert over the
  raw `SAMLRequest=…&RelayState=…&SigAlg=…` octets; a POST request's enveloped signature is
  checked by the xmlsec1 binary with --sp-cert. Without an IdP session (or with
  ForceAuthn) a login form is shown; then the Response goes back by an auto-submitting form
  (HTTP-POST binding) to the request's ACS, with the RelayState.
- `GET /slo?SAMLRequest=…` (SP-initiated single logout, HTTP-Redirect): the IdP session ends
  and a signed LogoutResponse goes to the SP's SingleLogoutService. `GET
  /logout-everywhere?user=jdoe&sp=<entity ID>` (IdP-initiated): a LogoutRequest for the last
  assertion issued to that SP (NameID + SessionIndex), signed by the HTTP-Redirect binding
  (pysaml2 `create_logout_request` + `apply_binding`), to the SP's SingleLogoutService;
  `GET /slo?SAMLResponse=…`: the SP's answer, a "signed out" page.
- `--slo-binding post`: the metadata offers single logout by HTTP-POST only. `POST /slo` with a
  `SAMLRequest` (SP-initiated): its enveloped signature is checked by pysaml2 and by the xmlsec1
  binary with --sp-cert (unsigned or bad: 403), the IdP session ends, and a LogoutResponse
  signed inside the XML goes back by an auto-submitting form to the SP's HTTP-POST
  SingleLogoutService. `/logout-everywhere` then sends the LogoutRequest signed inside the XML
  by an auto-submitting form; `POST /slo` with the SP's `SAMLResponse` checks its signature the
  same way and shows the "signed out" page. Both are logged (binding, signature verdict).
- `GET /log`: JSON list of the AuthnRequests received (id, binding, signature verdict,
  ForceAuthn, NameIDPolicy, whether the answer's assertion was encrypted), for the tests.
- `--encrypt-methods`: those methods get an `EncryptedAssertion` for --sp-cert (pysaml2 +
  xmlsec1, RSA-OAEP and AES-128-CBC).
Users: jdoe / jdoe-password (NameID jdoe@example.org, attributes uid, mail, displayName 张三,
eduPersonAffiliation staff+faculty).
"""

from __future__ import annotations

import argparse
import base64
import html
import json
import re
import secrets
import shutil
import subprocess
import sys
import time
import tempfile
import threading
import urllib.parse
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "fixtures" / "saml2"))
import generate  # noqa: E402  (tests/fixtures/saml2/generate.py: keys, IdP config, responses)

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT  # noqa: E402
from saml2.metadata import create_metadata_string  # noqa: E402
from saml2.saml import NAMEID_FORMAT_EMAILADDRESS, NameID  # noqa: E402

USERS = {"jdoe": ("jdoe-password", "jdoe@example.org")}
SIGALGS = {"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256(),
           "http://www.w3.org/2000/09/xmldsig#rsa-sha1": hashes.SHA1()}


class Threaded(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


def page(title: str, body: str, status="200 OK", headers=None):
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
           f"<body>{body}</body></html>").encode()
    return status, [("Content-Type", "text/html; charset=utf-8")] + (headers or []), doc


class Idp:
    def __init__(self, args):
        self.work = Path(args.workdir)
        self.base = f"http://127.0.0.1:{args.port}"
        self.entity = f"{self.base}/metadata"
        key, cert = generate.keypair("saml-idp.e2e")
        (self.work / "idp.key").write_bytes(key)
        (self.work / "idp.crt").write_bytes(cert)
        self.sps = [(f"{args.app}/sso/saml/{m}/metadata", f"{args.app}/sso/saml/{m}/acs")
                    for m in args.methods.split(",")]
        (self.work / "srv").mkdir(exist_ok=True)
        sp_cert_pem = Path(args.sp_cert).read_bytes() if args.sp_cert else None
        self.slo_binding = (BINDING_HTTP_POST if args.slo_binding == "post"
                            else BINDING_HTTP_REDIRECT)
        self.srv = generate.server(self.work / "srv", key, cert, self.sps, idp=self.entity,
                                   base=self.base, sp_cert=sp_cert_pem,
                                   slo_binding=self.slo_binding)
        self.metadata = create_metadata_string(None, config=self.srv.config).decode()
        (self.work / "idp-metadata.xml").write_text(self.metadata)
        self.sp_cert_pem = Path(args.sp_cert).read_bytes() if args.sp_cert else None
        self.sp_cert = (x509.load_pem_x509_certificate(self.sp_cert_pem)
                        if self.sp_cert_pem else None)
        self.encrypt_for = {f"{args.app}/sso/saml/{m}/acs"
                            for m in (args.encrypt_methods or "").split(",") if m}
        self.sign = args.sign
        self.pending: dict[str, dict] = {}
        self.sessions: dict[str, str] = {}
        self.log: list[dict] = []
        # (user, SP entity ID) -> (NameID, SessionIndex) of the last assertion issued.
        self.issued: dict[tuple[str, str], tuple[str, str]] = {}
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ requests
    def verify_redirect_signature(self, raw_query: str) -> bool | None:
        parts = dict(p.split("=", 1) for p in raw_query.split("&") if "=" in p)
        if "Signature" not in parts:
            return None
        if self.sp_cert is None:
            return False
        signed = "&".join(f"{k}={parts[k]}" for k in ("SAMLRequest", "RelayState", "SigAlg")
                          if k in parts)
        alg = SIGALGS.get(urllib.parse.unquote_plus(parts.get("SigAlg", "")))
        if alg is None:
            return False
        try:
            self.sp_cert.public_key().verify(
                base64.b64decode(urllib.parse.unquote_plus(parts["Signature"])),
                signed.encode(), padding.PKCS1v15(), alg)
            return True
        except Exception:  # noqa: BLE001  (any failure is a bad signature)
            return False

    def verify_post_signature(self, saml_message: str, element: str = "AuthnRequest") -> bool | None:
        """An HTTP-POST message's enveloped signature (an AuthnRequest, a LogoutRequest, a
        LogoutResponse), checked by xmlsec1 itself with --sp-cert (an implementation
        independent of the filter's)."""
        xml = base64.b64decode(saml_message)
        if b"Signature" not in xml:
            return None
        if self.sp_cert_pem is None:
            return False
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "req.xml").write_bytes(xml)
            (Path(tmp) / "sp.crt").write_bytes(self.sp_cert_pem)
            proc = subprocess.run(
                [shutil.which("xmlsec1") or "xmlsec1", "--verify", "--pubkey-cert-pem",
                 f"{tmp}/sp.crt", "--id-attr:ID",
                 f"urn:oasis:names:tc:SAML:2.0:protocol:{element}", f"{tmp}/req.xml"],
                capture_output=True, timeout=30)
        return proc.returncode == 0

    def authn_request(self, binding: str, saml_request: str, relay: str, signed):
        try:
            req = self.srv.parse_authn_request(saml_request, binding).message
        except Exception as err:  # noqa: BLE001  (pysaml2 refused it: e.g. a bad signature)
            with self.lock:
                self.log.append({"binding": "redirect" if binding == BINDING_HTTP_REDIRECT
                                 else "post", "signature": signed, "refused": repr(err)[:200]})
            return page("Refused", "<p>Bad request.</p>", "403 Forbidden")
        nip = req.name_id_policy
        entry = {"id": req.id, "binding": "redirect" if binding == BINDING_HTTP_REDIRECT
                 else "post", "signature": signed, "issuer": req.issuer.text,
                 "acs": req.assertion_consumer_service_url,
                 "force_authn": req.force_authn == "true",
                 "is_passive": req.is_passive == "true",
                 "name_id_format": nip.format if nip is not None else None,
                 "allow_create": nip.allow_create if nip is not None else None}
        with self.lock:
            self.log.append(entry)
        if signed is False:
            return page("Refused", "<p>Bad request signature.</p>", "403 Forbidden")
        if (entry["issuer"], entry["acs"]) not in self.sps:
            return page("Refused", "<p>Unknown service provider.</p>", "403 Forbidden")
        key = secrets.token_urlsafe(16)
        with self.lock:
            self.pending[key] = {"req": entry, "relay": relay}
        return key

    def login_form(self, key: str, error: str = ""):
        msg = f"<p id='error'>{html.escape(error)}</p>" if error else ""
        return page("IdP sign-in", f"""<h1>Test IdP</h1>{msg}
<form method="post" action="/login"><input type="hidden" name="key" value="{key}">
<label>User <input name="username"></label> <label>Password
<input name="password" type="password"></label>
<button id="sign-in" type="submit">Sign in</button></form>""")

    def answer(self, key: str, user: str, extra_headers=None):
        with self.lock:
            pend = self.pending.pop(key, None)
        if pend is None:
            return page("Expired", "<p>Unknown request.</p>", "400 Bad Request")
        req = pend["req"]
        _, login = USERS[user]
        kw = dict(login=login, sign_response=self.sign in ("response", "both"),
                  sign_assertion=self.sign in ("assertion", "both"), in_response_to=req["id"],
                  acs=req["acs"], sp=req["issuer"], authority=self.entity)
        req["encrypted"] = req["acs"] in self.encrypt_for
        if req["encrypted"]:
            # EncryptedAssertion for the SP certificate: RSA-OAEP + AES-128-CBC.
            xml = generate.respond_encrypted(self.srv, self.sp_cert_pem, generate.AES128_CBC,
                                             **kw)
        else:
            xml = generate.respond(self.srv, **kw)
            index = re.search(rb'SessionIndex="([^"]+)"', xml)
            if index:
                with self.lock:
                    self.issued[(user, req["issuer"])] = (login, index.group(1).decode())
        data = base64.b64encode(xml).decode()
        body = (f'<form method="post" action="{html.escape(req["acs"])}">'
                f'<input type="hidden" name="SAMLResponse" value="{data}">'
                f'<input type="hidden" name="RelayState" value="{html.escape(pend["relay"])}">'
                '<noscript><button type="submit">Continue</button></noscript></form>'
                '<script>document.forms[0].submit()</script>')
        return page("Continue", body, headers=extra_headers)

    def no_passive(self, key: str):
        """A Response with status Responder/NoPassive, auto-posted to the SP's ACS."""
        with self.lock:
            pend = self.pending.pop(key, None)
        if pend is None:
            return page("Expired", "<p>Unknown request.</p>", "400 Bad Request")
        req = pend["req"]
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        xml = (f'<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
               f'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
               f'ID="_{secrets.token_hex(16)}" Version="2.0" IssueInstant="{now}" '
               f'InResponseTo="{html.escape(req["id"])}" Destination="{html.escape(req["acs"])}">'
               f'<saml:Issuer>{html.escape(self.entity)}</saml:Issuer><samlp:Status>'
               '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder">'
               '<samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:NoPassive"/>'
               '</samlp:StatusCode></samlp:Status></samlp:Response>')
        data = base64.b64encode(xml.encode()).decode()
        body = (f'<form method="post" action="{html.escape(req["acs"])}">'
                f'<input type="hidden" name="SAMLResponse" value="{data}">'
                f'<input type="hidden" name="RelayState" value="{html.escape(pend["relay"])}">'
                '<noscript><button type="submit">Continue</button></noscript></form>'
                '<script>document.forms[0].submit()</script>')
        return page("Continue", body)

    def sls_of(self, sp: str, binding: str = BINDING_HTTP_REDIRECT) -> str:
        """The SP's SingleLogoutService for `binding`, from its metadata."""
        found = self.srv.metadata.single_logout_service(sp, binding, "spsso")
        if isinstance(found, dict):
            found = found[binding]
        return found[0]["location"]

    def posted_logout(self, form: dict, cookies: dict):
        """`POST /slo` (HTTP-POST binding): the SP's LogoutRequest (verified, answered with a
        signed LogoutResponse by an auto-submitting form) or its LogoutResponse."""
        if "SAMLResponse" in form:
            signed = self.verify_post_signature(form["SAMLResponse"], "LogoutResponse")
            entry = {"logout_response": True, "binding": "post", "signature": signed}
            try:
                resp = self.srv.parse_logout_request_response(form["SAMLResponse"],
                                                              BINDING_HTTP_POST).response
                entry.update(in_response_to=resp.in_response_to, issuer=resp.issuer.text,
                             status=resp.status.status_code.value, parsed=True)
            except Exception as err:  # noqa: BLE001  (pysaml2 refused it)
                entry.update(parsed=False, refused=repr(err)[:200])
            with self.lock:
                self.log.append(entry)
            if not (signed and entry["parsed"]):
                return page("Refused", "<p>Bad logout response.</p>", "403 Forbidden")
            return page("Signed out", "<p id='signed-out'>Signed out everywhere.</p>")
        signed = self.verify_post_signature(form.get("SAMLRequest", ""), "LogoutRequest")
        try:
            req = self.srv.parse_logout_request(form.get("SAMLRequest", ""),
                                                BINDING_HTTP_POST).message
        except Exception as err:  # noqa: BLE001  (pysaml2 refused it: a bad signature)
            with self.lock:
                self.log.append({"logout_request": None, "binding": "post",
                                 "signature": signed, "refused": repr(err)[:200]})
            return page("Refused", "<p>Bad logout request.</p>", "403 Forbidden")
        entry = {"logout_request": req.id, "binding": "post", "issuer": req.issuer.text,
                 "name_id": req.name_id.text if req.name_id is not None else None,
                 "session_index": [i.text for i in req.session_index], "signature": signed,
                 "destination": req.destination}
        with self.lock:
            self.log.append(entry)
        if not signed:
            return page("Refused", "<p>Unsigned logout request.</p>", "403 Forbidden")
        with self.lock:
            self.sessions.pop(cookies.get("idp_session", ""), None)
        sls = self.sls_of(req.issuer.text, BINDING_HTTP_POST)
        resp = self.srv.create_logout_response(req, [BINDING_HTTP_POST], sign=True,
                                               sign_alg=generate.RSA_SHA256,
                                               digest_alg=generate.SHA256)
        info = self.srv.apply_binding(BINDING_HTTP_POST, str(resp), sls,
                                      form.get("RelayState", ""), response=True)
        return "200 OK", [("Content-Type", "text/html; charset=utf-8"),
                          ("Set-Cookie", "idp_session=; Path=/; Max-Age=0")], \
            info["data"].encode()

    # ------------------------------------------------------------------ WSGI
    def __call__(self, environ, start_response):
        status, headers, body = self.route(environ)
        start_response(status, headers)
        return [body]

    def route(self, environ):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        raw_query = environ.get("QUERY_STRING", "")
        query = dict(urllib.parse.parse_qsl(raw_query))
        form = {}
        if method == "POST":
            size = int(environ.get("CONTENT_LENGTH") or 0)
            form = dict(urllib.parse.parse_qsl(environ["wsgi.input"].read(size).decode()))
        cookies = dict(c.strip().split("=", 1) for c in environ.get("HTTP_COOKIE", "").split(";")
                       if "=" in c)
        if path == "/metadata":
            return "200 OK", [("Content-Type", "application/samlmetadata+xml")], \
                self.metadata.encode()
        if path == "/log":
            with self.lock:
                return "200 OK", [("Content-Type", "application/json")], \
                    json.dumps(self.log).encode()
        if path in ("/sso/redirect", "/sso/post"):
            if path == "/sso/redirect":
                key = self.authn_request(BINDING_HTTP_REDIRECT, query.get("SAMLRequest", ""),
                                         query.get("RelayState", ""),
                                         self.verify_redirect_signature(raw_query))
            else:
                key = self.authn_request(BINDING_HTTP_POST, form.get("SAMLRequest", ""),
                                         form.get("RelayState", ""),
                                         self.verify_post_signature(form.get("SAMLRequest", "")))
            if not isinstance(key, str):
                return key
            user = self.sessions.get(cookies.get("idp_session", ""))
            if user and not self.pending[key]["req"]["force_authn"]:
                return self.answer(key, user)
            if self.pending[key]["req"]["is_passive"]:
                # IsPassive and no session here: the IdP may not show its form; it answers
                # at once with a NoPassive status (SAML core §3.4.1).
                return self.no_passive(key)
            return self.login_form(key)
        if path == "/slo" and "SAMLRequest" in query:
            # SP-initiated single logout (HTTP-Redirect): the IdP session ends; a
            # LogoutResponse goes back to the SP's SingleLogoutService.
            msg = self.srv.parse_logout_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT)
            req = msg.message
            entry = {"logout_request": req.id, "issuer": req.issuer.text,
                     "name_id": req.name_id.text if req.name_id is not None else None,
                     "session_index": [i.text for i in req.session_index],
                     "signature": self.verify_redirect_signature(raw_query)}
            with self.lock:
                self.log.append(entry)
                self.sessions.pop(cookies.get("idp_session", ""), None)
            sls = self.sls_of(req.issuer.text)
            resp = self.srv.create_logout_response(req, [BINDING_HTTP_REDIRECT])
            info = self.srv.apply_binding(BINDING_HTTP_REDIRECT, str(resp), sls,
                                          query.get("RelayState", ""), response=True, sign=True,
                                          sigalg=generate.RSA_SHA256)
            return "302 Found", list(info["headers"]) + [
                ("Set-Cookie", "idp_session=; Path=/; Max-Age=0")], b""
        if path == "/slo" and method == "POST":
            return self.posted_logout(form, cookies)
        if path == "/slo":
            with self.lock:
                self.log.append({"logout_response": "SAMLResponse" in query})
            return page("Signed out", "<p id='signed-out'>Signed out everywhere.</p>")
        if path == "/logout-everywhere":
            # IdP-initiated single logout: a signed LogoutRequest (HTTP-Redirect) to the SP.
            user, sp = query.get("user", ""), query.get("sp", "")
            with self.lock:
                issued = self.issued.get((user, sp))
            if issued is None:
                return page("Unknown", "<p>No session there.</p>", "404 Not Found")
            name_id, index = issued
            sls = self.sls_of(sp, self.slo_binding)
            post = self.slo_binding == BINDING_HTTP_POST
            _, req = self.srv.create_logout_request(
                sls, sp, name_id=NameID(format=NAMEID_FORMAT_EMAILADDRESS, text=name_id),
                session_indexes=[index], sign=post, sign_alg=generate.RSA_SHA256,
                digest_alg=generate.SHA256)
            if post:
                # Signed inside the XML, posted by an auto-submitting form.
                info = self.srv.apply_binding(BINDING_HTTP_POST, str(req), sls, "idp-initiated")
                return "200 OK", [("Content-Type", "text/html; charset=utf-8")], \
                    info["data"].encode()
            info = self.srv.apply_binding(BINDING_HTTP_REDIRECT, str(req), sls, "idp-initiated",
                                          sign=True, sigalg=generate.RSA_SHA256)
            return "302 Found", list(info["headers"]), b""
        if path == "/login" and method == "POST":
            key, user, password = form.get("key", ""), form.get("username", ""), \
                form.get("password", "")
            if user not in USERS or USERS[user][0] != password:
                return self.login_form(key, "Wrong user name or password.")
            sid = secrets.token_urlsafe(16)
            self.sessions[sid] = user
            return self.answer(key, user, [("Set-Cookie", f"idp_session={sid}; Path=/; "
                                            "HttpOnly; SameSite=Lax")])
        return page("Not found", "<p>Not found.</p>", "404 Not Found")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--app", required=True)
    ap.add_argument("--methods", required=True)
    ap.add_argument("--sp-cert")
    ap.add_argument("--sign", choices=["assertion", "response", "both"], default="both")
    ap.add_argument("--encrypt-methods", help="methods whose assertions are encrypted")
    ap.add_argument("--slo-binding", choices=["redirect", "post"], default="redirect",
                    help="the binding of the IdP's single logout (its metadata offers only it)")
    args = ap.parse_args()
    idp = Idp(args)
    httpd = make_server("127.0.0.1", args.port, idp, server_class=Threaded, handler_class=Quiet)
    print(json.dumps({"ready": True, "entity_id": idp.entity}), flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
