"""Messages the tests and the bench make without an identity provider: the filter's session
cookie of a shape no login here produces (a CAS ticket digest without a CAS server, a token
due for refresh; jwcrypto does the JWE, independent of the Rust code), and a CAS server's
single-logout POST body.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def seal_session(config: dict, payload: dict) -> str:
    """A session cookie value as the filter seals it (src/session.rs): a compact JWE, `dir` +
    A256CBC-HS512, with the key HMAC-SHA512(secret, "sso-filter session cookie v1"), its `kid`
    the first 6 bytes of the key's SHA-256, and the cookie name in the protected header. Made
    here with jwcrypto, so the test reaches session-holder pause points (refresh, reload)
    without an IdP that answers."""
    from jwcrypto import jwe, jwk
    secret = config["session"]["keys"][0]
    raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    cek = hmac.new(raw, b"sso-filter session cookie v1", hashlib.sha512).digest()
    kid = b64url(hashlib.sha256(cek).digest()[:6])
    header = {"alg": "dir", "enc": "A256CBC-HS512", "kid": kid,
              "cn": config["session"]["cookie"]}
    token = jwe.JWE(json.dumps(payload).encode(), protected=json.dumps(header))
    token.add_recipient(jwk.JWK(kty="oct", k=b64url(cek)))
    return token.serialize(compact=True)


def cas_logout_body(ticket: str) -> bytes:
    """The form a CAS server POSTs to a service for single logout (CAS protocol 3.0 appendix
    C): `logoutRequest`, a SAML 1-style LogoutRequest naming the service ticket."""
    xml = ('<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
           'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="LR-1" Version="2.0" '
           'IssueInstant="2026-01-01T00:00:00Z"><saml:NameID>@NOT_USED@</saml:NameID>'
           f'<samlp:SessionIndex>{ticket}</samlp:SessionIndex></samlp:LogoutRequest>')
    return urllib.parse.urlencode({"logoutRequest": xml}).encode()
