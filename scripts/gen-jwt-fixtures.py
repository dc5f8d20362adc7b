#!/usr/bin/env python3
# gen-jwt-fixtures.py: JWT/JWE test fixtures for sso-filter, made by an independent
# implementation (Python jwcrypto), not by the filter's own Rust code.
#
# Pinned: jwcrypto==1.6.1 (on cryptography==50.0.2, Python 3.11). Other versions probably
# work, but the committed fixtures were generated with exactly these.
#
#   python3 -m venv /tmp/fixvenv && /tmp/fixvenv/bin/pip install jwcrypto==1.6.1
#   /tmp/fixvenv/bin/python scripts/gen-jwt-fixtures.py           # regenerate everything
#   /tmp/fixvenv/bin/python scripts/gen-jwt-fixtures.py --check   # re-check committed cases
#
# Writes tests/fixtures/jwt/cases.json and tests/fixtures/jwt/keys/*. Keys, secrets and
# tokens are new on every run (RSA-PSS salts, ECDSA nonces and JWE CEKs/IVs are random anyway);
# the list of cases, their names, order, configurations and expected outcomes do not change.
# Provenance and the rules behind `attributes` are in tests/fixtures/README.md.
#
# Every case is checked before it is written by a small reference verifier (bottom of this
# file) built on jwcrypto plus the policy of docs/behaviour.md (exact alg allowlist, no
# crit/b64/zip, nested signed JWT inside a JWE, exp required, numeric time claims, ...).
# Every deny case also carries an internal "control": the same case with its single defect
# removed, which the reference verifier must accept. Controls are not written out.

import argparse
import base64
import hashlib
import json
import os
import secrets
import sys

try:
    import jwcrypto
    from jwcrypto import jwe, jwk, jws
    from jwcrypto.common import base64url_decode, base64url_encode
except ImportError:  # pragma: no cover
    sys.exit("jwcrypto is missing: python3 -m venv /tmp/fixvenv && "
             "/tmp/fixvenv/bin/pip install jwcrypto==1.6.1")

from cryptography.hazmat.primitives import serialization
from importlib.metadata import version as pkg_version

PINNED = "1.6.1"
NOW = 1767225600  # 2026-01-01T00:00:00Z; the time every verifier must assume
EXP = NOW + 3600
PARAM = "jwtParam"
SEED_SECRET = "4b117a14-c652-410a-83b2-9839c16e7ae1"
SEED_TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9."
    "eyJzdWIiOiJhbGljZS1zdWJqZWN0IiwiYWJjIjoiMTIzIiwicm9sZXMiOlsic3lzdGVtIGFkbWluIiwiZGF0YSBh"
    "ZG1pbiIsImRhdGEgYW5hbHlzdCIsImRhdGEgdmlld2VyIiwiYXBpIGFkbWluIl0sImxvZ2luTmFtZSI6ImFsaWNl"
    "In0.PGA9DNa-B_4e4WS-fVG57tvxYe0dlu0r8O_Lw1vEtAQ"
)
ROLES = ["system admin", "data admin", "data analyst", "data viewer", "api admin"]
MAPPING = {"login": "loginName", "roles": "roles"}
ISSUER = "https://idp.example.com"
AUDIENCE = "sso-filter"
KID = "sso-test-rs256"
MAX_TOKEN_LEN = 16 * 1024  # the reference verifier's length cap (the filter may use less)
DEFAULT_LEEWAY = 60
# Claims never reported as attributes (besides the ones a mapping field names).
REGISTERED = ("exp", "nbf", "iat", "jti", "iss", "aud", "sub")
MAPPING_FIELDS = ("login", "name", "email", "phone", "roles", "groups", "org")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "jwt")


# --------------------------------------------------------------------------- helpers

def js(obj):
    """Compact JSON, UTF-8 kept as is (as most issuers emit it)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def b64u(data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return base64url_encode(data)


def claims(**over):
    """The seed's claims plus exp = now + 3600; keyword None removes a claim."""
    c = {"sub": "alice-subject", "abc": "123", "roles": list(ROLES), "loginName": "alice",
         "exp": EXP}
    for k, v in over.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def sign(key, header, payload, algs=None, core=False, alg=None):
    """Compact JWS via jwcrypto. header/payload may be dicts or exact strings. core=True
    goes through jwcrypto's JWSCore, which signs the header text as given without the
    JWS object's header checks (jwcrypto refuses to sign an unknown crit otherwise)."""
    hdr = header if isinstance(header, str) else js(header)
    pl = payload if isinstance(payload, (str, bytes)) else js(payload)
    if isinstance(pl, str):
        pl = pl.encode("utf-8")
    alg = alg or json.loads(hdr)["alg"]
    if core or algs is not None or hdr_has_dup(hdr):
        # JWSCore keeps the header text exactly as given (duplicate keys, odd algs).
        core = jws.JWSCore(alg, key, hdr, pl, algs)
        sig = core.sign()
        payload_seg = pl.decode("utf-8") if not json.loads(hdr).get("b64", True) else b64u(pl)
        return "%s.%s.%s" % (sig["protected"], payload_seg, sig["signature"])
    s = jws.JWS(pl)
    s.add_signature(key, None, protected=hdr)
    return s.serialize(compact=True)


def hdr_has_dup(text):
    try:
        json.loads(text, object_pairs_hook=_no_dups)
        return False
    except ValueError:
        return True


def _no_dups(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise ValueError("duplicate key %r" % k)
        d[k] = v
    return d


def encrypt(pub, inner, alg="RSA-OAEP-256", enc="A128CBC-HS256", cty="JWT", extra=None):
    hdr = {"alg": alg, "enc": enc}
    if cty:
        hdr["cty"] = cty
    if extra:
        hdr.update(extra)
    e = jwe.JWE(inner.encode("utf-8") if isinstance(inner, str) else inner,
                protected=js(hdr), algs=[alg, enc])
    e.add_recipient(pub)
    return e.serialize(compact=True)


def oct_key(raw):
    return jwk.JWK(kty="oct", k=b64u(raw))


def pem_public(k):
    return k.export_to_pem(private_key=False).decode("ascii")


def pem_private(k):
    return k.export_to_pem(private_key=True, password=None).decode("ascii")


def der_b64(pem_text):
    """PEM -> standard base64 of the DER body, one line (Java's getEncoded() + Base64)."""
    body = "".join(l for l in pem_text.strip().splitlines() if not l.startswith("-----"))
    return base64.b64encode(base64.b64decode(body)).decode("ascii")


def flip_last_char(seg):
    """Change the last base64url character so the decoded bytes differ and the encoding
    stays canonical (unused trailing bits still zero)."""
    raw = bytearray(base64url_decode(seg))
    raw[-1] ^= 1  # bit 0 of the last byte always lives in the last character
    out = b64u(bytes(raw))
    assert out != seg and out[:-1] == seg[:-1], (seg, out)
    return out


def hs256_mac_ok(token, secret):
    """Plain-stdlib HS256 check over the received bytes (independent of jwcrypto)."""
    import hmac
    h, p, s = token.split(".")
    mac = hmac.new(secret, ("%s.%s" % (h, p)).encode("utf-8"), hashlib.sha256).digest()
    return hmac.compare_digest(mac, base64url_decode(s))


def flip_first_char(seg):
    c = seg[0]
    n = "B" if c != "B" else "C"
    out = n + seg[1:]
    assert base64url_decode(out) != base64url_decode(seg)
    return out


def method(verify, **kw):
    m = {"type": "jwt", "param": PARAM, "verify": verify}
    for key in ("decrypt", "issuer", "audience", "leeway_seconds", "max_age_seconds",
                "one_time", "insecure_allow_missing_exp", "accept_bearer"):
        if key in kw:
            m[key] = kw.pop(key)
    m["mapping"] = kw.pop("mapping", dict(MAPPING))
    assert not kw, kw
    return m


def expected_identity(payload, mapping):
    consumed = {mapping[f] for f in MAPPING_FIELDS if f in mapping}
    login = payload[mapping["login"]]
    roles = payload.get(mapping.get("roles", ""), [])
    attrs = {k: v for k, v in payload.items() if k not in consumed and k not in REGISTERED}
    out = {"login": login, "roles": roles, "attributes": attrs}
    if "name" in mapping:
        # not "name": that key is the case's own name
        out["mapped_name"] = payload[mapping["name"]]
    return out


# --------------------------------------------------------------------------- keys

class Keys:
    def __init__(self):
        self.rsa = jwk.JWK.generate(kty="RSA", size=2048, kid=KID)
        self.attacker = jwk.JWK.generate(kty="RSA", size=2048, kid="attacker")
        self.enc = jwk.JWK.generate(kty="RSA", size=2048, kid="sso-test-enc")
        self.ec = jwk.JWK.generate(kty="EC", crv="P-256")
        self.ed = jwk.JWK.generate(kty="OKP", crv="Ed25519")
        self.hs384_secret = secrets.token_urlsafe(48)          # 64 ASCII chars
        self.hs512_secret_b64 = self._b64_secret(66)            # 88 chars, no '+', '/', '='
        self.wrong_secret = secrets.token_urlsafe(36)           # 48 ASCII chars

        self.rsa_pub_pem = pem_public(self.rsa)
        self.rsa_pub_der_b64 = der_b64(self.rsa_pub_pem)
        self.rsa_jwks = {"keys": [dict(json.loads(self.rsa.export_public()),
                                       alg="RS256", use="sig")]}
        self.enc_priv_pem = pem_private(self.enc)
        self.enc_priv_der_b64 = der_b64(self.enc_priv_pem)
        self.ec_pub_pem = pem_public(self.ec)
        self.ed_pub_pem = pem_public(self.ed)
        assert "BEGIN PRIVATE KEY" in self.enc_priv_pem  # PKCS#8
        assert "BEGIN PUBLIC KEY" in self.rsa_pub_pem    # SubjectPublicKeyInfo

    @staticmethod
    def _b64_secret(n):
        while True:
            raw = secrets.token_bytes(n)
            s = base64.b64encode(raw).decode("ascii")
            if "+" not in s and "/" not in s:
                # identical in the standard and the URL-safe alphabet, no padding
                return s

    def write(self, d):
        os.makedirs(d, exist_ok=True)
        files = {
            "rsa-sign.private.pem": pem_private(self.rsa),
            "rsa-sign.public.pem": self.rsa_pub_pem,
            "rsa-sign.public.der.b64": self.rsa_pub_der_b64 + "\n",
            "rsa-sign.jwks.json": json.dumps(self.rsa_jwks, indent=2) + "\n",
            "rsa-attacker.private.pem": pem_private(self.attacker),
            "rsa-attacker.public.pem": pem_public(self.attacker),
            "rsa-enc.private.pem": self.enc_priv_pem,
            "rsa-enc.private.der.b64": self.enc_priv_der_b64 + "\n",
            "rsa-enc.public.pem": pem_public(self.enc),
            "ec-p256.private.pem": pem_private(self.ec),
            "ec-p256.public.pem": self.ec_pub_pem,
            "ed25519.private.pem": pem_private(self.ed),
            "ed25519.public.pem": self.ed_pub_pem,
            "hmac-secrets.json": json.dumps({
                "seed_hs256_secret": SEED_SECRET,
                "hs384_secret": self.hs384_secret,
                "hs512_secret_base64": self.hs512_secret_b64,
                "wrong_hs256_secret": self.wrong_secret,
            }, indent=2) + "\n",
        }
        for name in sorted(os.listdir(d)):
            if name not in files:
                os.remove(os.path.join(d, name))
        for name, text in files.items():
            with open(os.path.join(d, name), "w", encoding="utf-8") as f:
                f.write(text)
        return sorted(files)


# --------------------------------------------------------------------------- cases

def build_cases(K):
    cases = []
    seed_key = oct_key(SEED_SECRET.encode())
    rsa_pub = jwk.JWK.from_pem(K.rsa_pub_pem.encode())
    enc_pub = jwk.JWK.from_pem(pem_public(K.enc).encode())

    V_HS256 = {"alg": "HS256", "secret": SEED_SECRET}
    V_RS256_PEM = {"alg": "RS256", "public_key": K.rsa_pub_pem}
    V_RS256_DER = {"alg": "RS256", "public_key": K.rsa_pub_der_b64}
    V_RS256_JWKS = {"alg": "RS256", "jwks": K.rsa_jwks}
    D_DEFAULT = {"alg": "RSA-OAEP-256", "enc": "A128CBC-HS256", "private_key": K.enc_priv_der_b64}
    H_HS256 = {"typ": "JWT", "alg": "HS256"}
    H_RS256 = {"typ": "JWT", "alg": "RS256"}

    def hs256(c=None, header=None):
        return sign(seed_key, header or H_HS256, c if c is not None else claims())

    def rs256(c=None, header=None, key=None):
        return sign(key or K.rsa, header or H_RS256, c if c is not None else claims())

    def jwe_default(inner=None, **kw):
        return encrypt(enc_pub, inner if inner is not None else rs256(), **kw)

    def accept(name, description, m, token, payload=None):
        if payload is None:
            payload = claims()
        case = {"name": name, "description": description, "method": m, "token": token,
                "expect": "accept"}
        case.update(expected_identity(payload, m["mapping"]))
        cases.append(case)

    def deny(name, description, why, m, token, control):
        """control = (method, token) with the single defect removed; must be accepted."""
        cases.append({"name": name, "description": description, "method": m, "token": token,
                      "expect": "deny", "why": why, "_control": control})

    # ---------------------------------------------------------------- accept
    seed_payload = {"sub": "alice-subject", "abc": "123", "roles": list(ROLES),
                    "loginName": "alice"}
    accept("seed_hs256", "the HENGSHI seed's sample token, verbatim (HS256, no exp)",
           method(V_HS256, insecure_allow_missing_exp=True), SEED_TOKEN, seed_payload)
    accept("hs256_exp", "HS256 with the seed's secret and exp = now + 3600",
           method(V_HS256), hs256())
    accept("hs384", "HS384 with a 64-character UTF-8 secret",
           method({"alg": "HS384", "secret": K.hs384_secret}),
           sign(oct_key(K.hs384_secret.encode()), {"typ": "JWT", "alg": "HS384"}, claims()))
    accept("hs512_secret_base64", "HS512 keyed with 66 random bytes given as secret_base64 "
           "(the text has no '+', '/' or '=', so standard and URL-safe base64 agree)",
           method({"alg": "HS512", "secret_base64": K.hs512_secret_b64}),
           sign(oct_key(base64.b64decode(K.hs512_secret_b64)), {"typ": "JWT", "alg": "HS512"},
                claims()))
    accept("rs256_spki_der_base64", "RS256; public_key is base64 DER SubjectPublicKeyInfo, "
           "no PEM armour (what Java's getEncoded() + Base64 prints)",
           method(V_RS256_DER), rs256())
    accept("rs256_pem", "RS256; public_key is a PEM SubjectPublicKeyInfo",
           method(V_RS256_PEM), rs256())
    accept("rs384", "RS384 with the PEM public key",
           method({"alg": "RS384", "public_key": K.rsa_pub_pem}),
           sign(K.rsa, {"typ": "JWT", "alg": "RS384"}, claims()))
    accept("rs512", "RS512 with the base64 DER public key",
           method({"alg": "RS512", "public_key": K.rsa_pub_der_b64}),
           sign(K.rsa, {"typ": "JWT", "alg": "RS512"}, claims()))
    accept("ps256", "PS256 (RSASSA-PSS, SHA-256, salt 32) with the PEM public key",
           method({"alg": "PS256", "public_key": K.rsa_pub_pem}),
           sign(K.rsa, {"typ": "JWT", "alg": "PS256"}, claims()))
    accept("es256", "ES256 (P-256, raw r||s signature) with a PEM public key",
           method({"alg": "ES256", "public_key": K.ec_pub_pem}),
           sign(K.ec, {"typ": "JWT", "alg": "ES256"}, claims()))
    accept("eddsa_ed25519", "EdDSA over Ed25519 with a PEM public key",
           method({"alg": "EdDSA", "public_key": K.ed_pub_pem}),
           sign(K.ed, {"typ": "JWT", "alg": "EdDSA"}, claims()))
    accept("rs256_jwks_kid", "RS256 verified through an inline JWKS; the header kid names "
           "the one key", method(V_RS256_JWKS),
           rs256(header={"typ": "JWT", "alg": "RS256", "kid": KID}))
    accept("jwe_rsa_oaep_256_a128cbc_hs256",
           "JWE RSA-OAEP-256 + A128CBC-HS256 (cty JWT) around an RS256 JWT; private_key is "
           "base64 DER PKCS#8 (Java getEncoded() style)",
           method(V_RS256_PEM, decrypt=dict(D_DEFAULT)), jwe_default())
    accept("jwe_rsa_oaep_256_a256cbc_hs512", "JWE RSA-OAEP-256 + A256CBC-HS512 around an "
           "RS256 JWT", method(V_RS256_PEM, decrypt=dict(D_DEFAULT, enc="A256CBC-HS512")),
           jwe_default(enc="A256CBC-HS512"))
    accept("jwe_rsa_oaep_a128gcm", "JWE RSA-OAEP (SHA-1) + A128GCM around an RS256 JWT",
           method(V_RS256_PEM, decrypt=dict(D_DEFAULT, alg="RSA-OAEP", enc="A128GCM")),
           jwe_default(alg="RSA-OAEP", enc="A128GCM"))
    accept("jwe_rsa_oaep_256_a256gcm", "JWE RSA-OAEP-256 + A256GCM around an RS256 JWT",
           method(V_RS256_DER, decrypt=dict(D_DEFAULT, enc="A256GCM")),
           jwe_default(enc="A256GCM"))
    accept("jwe_private_key_pem", "JWE RSA-OAEP-256 + A128CBC-HS256; private_key is a PEM "
           "PKCS#8 (BEGIN PRIVATE KEY)",
           method(V_RS256_PEM, decrypt=dict(D_DEFAULT, private_key=K.enc_priv_pem)),
           jwe_default())
    zh = claims(name="张三")
    accept("name_chinese", "HS256; a `name` claim 张三 (UTF-8 JSON) mapped by mapping.name; "
           "the case also carries the expected value as `mapped_name`",
           method(V_HS256, mapping=dict(MAPPING, name="name")), hs256(zh), zh)
    full = claims(iss=ISSUER, aud=AUDIENCE, nbf=NOW - 10, iat=NOW - 10)
    accept("nbf_iat_issuer_audience", "HS256 with nbf = iat = now - 10 and iss/aud matching "
           "the configured issuer and audience",
           method(V_HS256, issuer=ISSUER, audience=AUDIENCE), hs256(full), full)
    lee = claims(exp=NOW - 30)
    accept("exp_within_leeway", "HS256 with exp = now - 30 and leeway_seconds 60",
           method(V_HS256, leeway_seconds=60), hs256(lee), lee)

    # ---------------------------------------------------------------- deny
    m_hs = method(V_HS256)
    good_hs = hs256()
    h, p, s = good_hs.split(".")

    deny("bad_signature", "HS256 token whose last signature character is changed (decoded "
         "MAC differs, encoding still canonical)", "signature mismatch",
         m_hs, "%s.%s.%s" % (h, p, flip_last_char(s)), (m_hs, good_hs))
    deny("signature_truncated", "HS256 token with the last 4 signature characters dropped",
         "signature truncated", m_hs, good_hs[:-4], (m_hs, good_hs))

    payload_seg = b64u(js(claims()))
    for name, alg, with_sig in (
            ("alg_none", "none", False),
            ("alg_none_with_signature", "none", True),
            ("alg_none_capitalised", "None", False),
            ("alg_none_capitalised_with_signature", "None", True),
            ("alg_none_upper", "NONE", False),
            ("alg_none_upper_with_signature", "NONE", True),
            ("alg_none_mixed_case", "nOnE", False)):
        hdr = b64u(js({"typ": "JWT", "alg": alg}))
        if alg == "none" and not with_sig:
            tok = sign(oct_key(b"unused"), js({"typ": "JWT", "alg": "none"}), js(claims()),
                       algs=["none"])  # jwcrypto's own 'none' implementation
        else:
            tok = "%s.%s.%s" % (hdr, payload_seg, s if with_sig else "")
        deny(name, "unsecured JWS, header alg %r, %s" % (
             alg, "followed by a valid HS256 signature of another header" if with_sig
             else "empty signature segment"), "alg %s" % alg, m_hs, tok, (m_hs, good_hs))
    deny("alg_none_no_trailing_dot", "unsecured JWS alg none with only two segments (no "
         "trailing dot)", "alg none, two segments", m_hs,
         "%s.%s" % (b64u(js({"typ": "JWT", "alg": "none"})), payload_seg), (m_hs, good_hs))

    # HS/RS key confusion (CVE-2016-10555 class)
    m_rs_pem = method(V_RS256_PEM)
    m_rs_der = method(V_RS256_DER)
    good_rs = rs256()
    spki_der = base64.b64decode(K.rsa_pub_der_b64)
    pkcs1_der = rsa_pub.get_op_key("verify").public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    for name, m, secret, what in (
            ("hs_rs_confusion_pem", m_rs_pem, K.rsa_pub_pem.encode(),
             "the configured PEM text (exact bytes, trailing newline included)"),
            ("hs_rs_confusion_spki_base64_text", m_rs_der, K.rsa_pub_der_b64.encode(),
             "the configured base64 DER text (ASCII bytes)"),
            ("hs_rs_confusion_spki_der", m_rs_der, spki_der,
             "the DER SubjectPublicKeyInfo bytes"),
            ("hs_rs_confusion_pkcs1_der", m_rs_der, pkcs1_der,
             "the DER PKCS#1 RSAPublicKey bytes")):
        deny(name, "config RS256 with an RSA public key; token is HS256 keyed with %s" % what,
             "HS256 token where RS256 is configured (key confusion)", m,
             sign(oct_key(secret), H_HS256, claims()), (m, good_rs))

    deny("expired", "HS256 with exp = now - 3600 (leeway 60)", "expired",
         method(V_HS256, leeway_seconds=60), hs256(claims(exp=NOW - 3600)),
         (method(V_HS256, leeway_seconds=60), good_hs))
    deny("not_yet_valid", "HS256 with nbf = now + 3600 (leeway 60)", "nbf in the future",
         method(V_HS256, leeway_seconds=60), hs256(claims(nbf=NOW + 3600)),
         (method(V_HS256, leeway_seconds=60), hs256(claims(nbf=NOW - 10))))
    deny("wrong_hmac_secret", "HS256 signed with a different 48-byte secret", "wrong key",
         m_hs, sign(oct_key(K.wrong_secret.encode()), H_HS256, claims()), (m_hs, good_hs))
    deny("wrong_rsa_key", "RS256 signed with an unrelated RSA key", "wrong key",
         m_rs_pem, rs256(key=K.attacker), (m_rs_pem, good_rs))

    # JWE
    m_jwe = method(V_RS256_PEM, decrypt=dict(D_DEFAULT))
    good_jwe = jwe_default()
    deny("jwe_bare_claims", "JWE RSA-OAEP-256 + A128CBC-HS256 whose plaintext is the claims "
         "JSON itself (no inner JWS, no cty)", "JWE without a signed inner JWT", m_jwe,
         encrypt(enc_pub, js(claims()), cty=None), (m_jwe, good_jwe))
    none_inner = sign(oct_key(b"unused"), js({"typ": "JWT", "alg": "none"}), js(claims()),
                      algs=["none"])
    deny("jwe_inner_alg_none", "JWE (cty JWT) around an unsigned alg none JWT "
         "(CVE-2026-29000 class)", "inner JWT alg none", m_jwe, jwe_default(none_inner),
         (m_jwe, good_jwe))
    parts = good_jwe.split(".")
    deny("jwe_modified_tag", "valid JWE with the first character of the tag changed",
         "JWE tag mismatch", m_jwe, ".".join(parts[:4] + [flip_first_char(parts[4])]),
         (m_jwe, good_jwe))
    deny("jwe_modified_ciphertext", "valid JWE with the first character of the ciphertext "
         "changed", "JWE tag mismatch (ciphertext modified)", m_jwe,
         ".".join(parts[:3] + [flip_first_char(parts[3]), parts[4]]), (m_jwe, good_jwe))
    deny("jwe_rsa1_5", "JWE RSA1_5 + A128CBC-HS256 while decrypt.alg is RSA-OAEP-256",
         "JWE alg not the configured one", m_jwe, jwe_default(alg="RSA1_5"), (m_jwe, good_jwe))
    deny("jwe_zip_def", "JWE with \"zip\":\"DEF\" (DEFLATE-compressed inner JWT)",
         "JWE compression", m_jwe, jwe_default(extra={"zip": "DEF"}), (m_jwe, good_jwe))
    deny("jws_when_decrypt_configured", "a valid RS256 JWS given where decrypt is configured",
         "not encrypted", m_jwe, good_rs, (m_jwe, good_jwe))

    # structure and size
    deny("truncated_token", "the first 20 characters of a valid HS256 token", "malformed",
         m_hs, good_hs[:20], (m_hs, good_hs))
    pad_small = claims(padding="x" * 100)
    pad_big = claims(padding="x" * 20000)
    big = hs256(pad_big)
    assert len(big) > MAX_TOKEN_LEN
    deny("oversized_token", "a correctly signed HS256 token with a 20000-character `padding` "
         "claim (%d characters in all)" % len(big), "token longer than 16 KiB",
         m_hs, big, (m_hs, hs256(pad_small)))
    deny("garbage", "the string not-a-jwt", "malformed", m_hs, "not-a-jwt", (m_hs, good_hs))
    deny("empty", "the empty string", "malformed", m_hs, "", (m_hs, good_hs))
    deny("four_segments", "a valid HS256 token followed by '.' and its signature again",
         "four segments", m_hs, good_hs + "." + s, (m_hs, good_hs))

    # claims
    m_strict = method(V_HS256, insecure_allow_missing_exp=False)
    deny("missing_exp", "HS256 without exp while insecure_allow_missing_exp is false",
         "exp missing", m_strict, hs256(claims(exp=None)), (m_strict, good_hs))
    m_iss = method(V_HS256, issuer=ISSUER)
    deny("wrong_issuer", "iss https://evil.example.com where the issuer is %s" % ISSUER,
         "issuer mismatch", m_iss, hs256(claims(iss="https://evil.example.com")),
         (m_iss, hs256(claims(iss=ISSUER))))
    m_aud = method(V_HS256, audience=AUDIENCE)
    deny("wrong_audience", "aud other-app where the audience is %s" % AUDIENCE,
         "audience mismatch", m_aud, hs256(claims(aud="other-app")),
         (m_aud, hs256(claims(aud=AUDIENCE))))
    m_age = method(V_HS256, max_age_seconds=300)
    deny("iat_too_old", "iat = now - 4000 with max_age_seconds 300 (exp still in the future)",
         "token older than max_age_seconds", m_age, hs256(claims(iat=NOW - 4000)),
         (m_age, hs256(claims(iat=NOW - 10))))
    deny("exp_string", "exp given as the string \"9999999999\"", "exp not a number",
         m_hs, hs256(claims(exp="9999999999")), (m_hs, good_hs))

    # header tricks
    deny("crit_unknown", "HS256 with \"crit\":[\"x-unknown\"] and that header present "
         "(signed through jwcrypto's JWSCore: its JWS object refuses unknown crit)",
         "unknown crit extension", m_hs,
         sign(seed_key, {"typ": "JWT", "alg": "HS256", "crit": ["x-unknown"], "x-unknown": 1},
              claims(), core=True),
         (m_hs, good_hs))
    deny("b64_false", "HS256 with RFC 7797 \"b64\":false (crit [\"b64\"]), payload unencoded "
         "in the compact form (percent-encode it in a URL)", "b64 false", m_hs,
         hs256(header={"typ": "JWT", "alg": "HS256", "b64": False, "crit": ["b64"]}),
         (m_hs, good_hs))
    dup_hdr = '{"alg":"HS256","alg":"none","typ":"JWT"}'
    deny("duplicate_alg_header", "header text %s with a correct HS256 MAC over it" % dup_hdr,
         "duplicate header key", m_hs, sign(seed_key, dup_hdr, js(claims()), alg="HS256"), (m_hs, good_hs))
    m_jwks = method(V_RS256_JWKS)
    good_kid = rs256(header={"typ": "JWT", "alg": "RS256", "kid": KID})
    deny("kid_injection_path", "RS256 signed with the right key but kid \"../../dev/null\", "
         "which the inline JWKS does not contain", "unknown kid", m_jwks,
         rs256(header={"typ": "JWT", "alg": "RS256", "kid": "../../dev/null"}),
         (m_jwks, good_kid))
    deny("jku_attacker_key", "RS256 with kid %s and jku http://127.0.0.1:9/, signed by an "
         "attacker key (the filter must neither fetch jku nor trust it)" % KID,
         "signature mismatch (jku ignored)", m_jwks,
         rs256(header={"typ": "JWT", "alg": "RS256", "kid": KID, "jku": "http://127.0.0.1:9/"},
               key=K.attacker),
         (m_jwks, rs256(header={"typ": "JWT", "alg": "RS256", "kid": KID,
                                "jku": "http://127.0.0.1:9/"})))
    attacker_jwk = json.loads(K.attacker.export_public())
    deny("embedded_jwk_attacker_key", "RS256 signed by an attacker key that is embedded as "
         "the header jwk (CVE-2018-0114 class)", "signature mismatch (embedded jwk ignored)",
         m_rs_pem, rs256(header={"typ": "JWT", "alg": "RS256", "jwk": attacker_jwk},
                         key=K.attacker), (m_rs_pem, good_rs))
    m_es = method({"alg": "ES256", "public_key": K.ec_pub_pem})
    es_hdr = b64u(js({"typ": "JWT", "alg": "ES256"}))
    deny("es256_psychic_signature", "ES256 with r = s = 0 (64 zero signature bytes, "
         "CVE-2022-21449)", "invalid ECDSA signature", m_es,
         "%s.%s.%s" % (es_hdr, payload_seg, b64u(bytes(64))),
         (m_es, sign(K.ec, {"typ": "JWT", "alg": "ES256"}, claims())))
    # The hand-made headers carry a correct MAC: their header is their only defect.
    for c in cases:
        if c["name"] in ("crit_unknown", "b64_false", "duplicate_alg_header",
                         "alg_none_with_signature") or c["name"] == "hs256_exp":
            ok = hs256_mac_ok(c["token"], SEED_SECRET.encode())
            assert ok == (c["name"] != "alg_none_with_signature"), c["name"]
    return cases


# --------------------------------------------------------------------------- reference

class Deny(Exception):
    pass


def _json(raw, what):
    try:
        v = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_dups)
    except (ValueError, UnicodeDecodeError) as e:
        raise Deny("%s: %s" % (what, e))
    if not isinstance(v, dict):
        raise Deny("%s: not an object" % what)
    return v


def _seg(s, what):
    if not s:
        raise Deny("%s: empty" % what)
    try:
        raw = base64url_decode(s)
    except Exception as e:  # noqa: BLE001
        raise Deny("%s: %s" % (what, e))
    if b64u(raw) != s:
        raise Deny("%s: not canonical base64url" % what)
    return raw


def _verify_key(v):
    if "secret" in v:
        return oct_key(v["secret"].encode("utf-8"))
    if "secret_base64" in v:
        return oct_key(base64.b64decode(v["secret_base64"]))
    if "public_key" in v:
        pk = v["public_key"]
        if pk.lstrip().startswith("-----BEGIN"):
            return jwk.JWK.from_pem(pk.encode())
        return jwk.JWK.from_pyca(serialization.load_der_public_key(base64.b64decode(pk)))
    if "jwks" in v:
        ks = jwk.JWKSet()
        ks.import_keyset(json.dumps(v["jwks"]))
        return ks
    raise AssertionError(v)


def _decrypt_key(pk):
    if pk.lstrip().startswith("-----BEGIN"):
        return jwk.JWK.from_pem(pk.encode())
    return jwk.JWK.from_pyca(
        serialization.load_der_private_key(base64.b64decode(pk), password=None))


def _num(c, k):
    v = c[k]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise Deny("%s is not a number" % k)
    return v


def reference_verify(m, token, now=NOW):
    """Returns the payload dict or raises Deny."""
    if len(token) > MAX_TOKEN_LEN:
        raise Deny("too long")
    if "decrypt" in m:
        d = m["decrypt"]
        parts = token.split(".")
        if len(parts) != 5:
            raise Deny("not a compact JWE")
        hdr = _json(_seg(parts[0], "JWE header"), "JWE header")
        if hdr.get("alg") != d["alg"] or hdr.get("enc") != d["enc"]:
            raise Deny("JWE alg/enc not allowed")
        if "zip" in hdr or "crit" in hdr:
            raise Deny("JWE zip/crit")
        if str(hdr.get("cty", "")).upper() != "JWT":
            raise Deny("JWE cty is not JWT")
        for i in (1, 2, 3, 4):
            _seg(parts[i], "JWE part %d" % i)
        try:
            e = jwe.JWE(algs=[d["alg"], d["enc"]])
            e.deserialize(token, key=_decrypt_key(d["private_key"]))
        except Exception as ex:  # noqa: BLE001
            raise Deny("JWE decryption: %s" % ex)
        try:
            token = e.payload.decode("ascii")
        except UnicodeDecodeError:
            raise Deny("inner JWT not ASCII")
    parts = token.split(".")
    if len(parts) != 3:
        raise Deny("not three segments")
    hdr = _json(_seg(parts[0], "header"), "header")
    v = m["verify"]
    if hdr.get("alg") != v["alg"]:
        raise Deny("alg %r not the configured %s" % (hdr.get("alg"), v["alg"]))
    if "crit" in hdr or "b64" in hdr:
        raise Deny("crit/b64")
    payload_raw = _seg(parts[1], "payload")
    _seg(parts[2], "signature")
    key = _verify_key(v)
    if isinstance(key, jwk.JWKSet):
        if "kid" not in hdr or key.get_key(hdr["kid"]) is None:
            raise Deny("kid not in JWKS")
        key = key.get_key(hdr["kid"])
    try:
        s = jws.JWS()
        s.allowed_algs = [v["alg"]]
        s.deserialize(token)
        s.verify(key, alg=v["alg"])
    except Exception as ex:  # noqa: BLE001
        raise Deny("signature: %s" % ex)
    c = _json(payload_raw, "payload")
    leeway = m.get("leeway_seconds", DEFAULT_LEEWAY)
    if "exp" in c:
        if now >= _num(c, "exp") + leeway:
            raise Deny("expired")
    elif not m.get("insecure_allow_missing_exp", False):
        raise Deny("exp missing")
    if "nbf" in c and _num(c, "nbf") > now + leeway:
        raise Deny("not yet valid")
    if "iat" in c:
        iat = _num(c, "iat")
        if iat > now + leeway:
            raise Deny("iat in the future")
        if "max_age_seconds" in m and now - iat > m["max_age_seconds"] + leeway:
            raise Deny("too old")
    elif "max_age_seconds" in m:
        raise Deny("iat missing with max_age_seconds")
    if "issuer" in m and c.get("iss") != m["issuer"]:
        raise Deny("issuer")
    if "audience" in m:
        aud = c.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if m["audience"] not in auds:
            raise Deny("audience")
    return c


def check_case(case):
    """Raise AssertionError when the reference verifier disagrees with the case."""
    m, tok = case["method"], case["token"]
    if case["expect"] == "accept":
        try:
            c = reference_verify(m, tok)
        except Deny as e:
            raise AssertionError("%s: expected accept, reference denied: %s" % (case["name"], e))
        want = expected_identity(c, m["mapping"])
        got = {k: case[k] for k in want}
        assert got == want, (case["name"], got, want)
        return "ok"
    try:
        reference_verify(m, tok)
    except Deny as e:
        reason = str(e)
    else:
        raise AssertionError("%s: expected deny, reference accepted" % case["name"])
    if "_control" in case:
        cm, ct = case["_control"]
        try:
            reference_verify(cm, ct)
        except Deny as e:
            raise AssertionError("%s: control (defect removed) denied: %s" % (case["name"], e))
    return reason


# --------------------------------------------------------------------------- main

def describe_alg(case):
    m = case["method"]
    a = m["verify"]["alg"]
    if "decrypt" in m:
        a = "%s+%s/%s" % (m["decrypt"]["alg"], m["decrypt"]["enc"], a)
    return a


def table(cases, reasons):
    w = max(len(c["name"]) for c in cases)
    lines = ["%-*s  %-6s  %-36s %6s  %s" % (w, "case", "expect", "config alg", "len",
                                              "why / reference verifier's reason")]
    lines.append("-" * len(lines[0]))
    for c, r in zip(cases, reasons):
        why = c.get("why", "")
        if c["expect"] == "deny":
            why = "%s  [%s]" % (why, r[:60])
        lines.append("%-*s  %-6s  %-36s %6d  %s" % (w, c["name"], c["expect"], describe_alg(c),
                                                   len(c["token"]), why))
    n_a = sum(1 for c in cases if c["expect"] == "accept")
    lines.append("%d cases: %d accept, %d deny" % (len(cases), n_a, len(cases) - n_a))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true",
                    help="re-check the committed cases.json with the reference verifier "
                         "instead of regenerating")
    ap.add_argument("--out", default=OUT, help="output directory (default %(default)s)")
    args = ap.parse_args()

    ver = pkg_version("jwcrypto")
    if ver != PINNED:
        print("warning: jwcrypto %s, fixtures were pinned to %s" % (ver, PINNED),
              file=sys.stderr)
    path = os.path.join(args.out, "cases.json")

    if args.check:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        cases = doc["cases"]
        assert doc["now"] == NOW
    else:
        # the seed must verify as given (HS256, UTF-8 bytes of the secret)
        s = jws.JWS()
        s.deserialize(SEED_TOKEN)
        s.verify(oct_key(SEED_SECRET.encode()), alg="HS256")
        keys = Keys()
        cases = build_cases(keys)
        names = [c["name"] for c in cases]
        assert len(names) == len(set(names)), "duplicate case names"

    reasons = [check_case(c) for c in cases]
    print(table(cases, reasons))

    if args.check:
        print("\n%s: all cases agree with the reference verifier" % path)
        return
    out_cases = [{k: v for k, v in c.items() if not k.startswith("_")} for c in cases]
    doc = {"generator": "jwcrypto %s" % ver, "now": NOW, "cases": out_cases}
    os.makedirs(args.out, exist_ok=True)
    written = keys.write(os.path.join(args.out, "keys"))
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, ensure_ascii=False)
        f.write("\n")
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()[:16]
    print("\nwrote %s (sha256 %s…) and %d files in %s/keys" % (
        os.path.relpath(path, ROOT), digest, len(written), os.path.relpath(args.out, ROOT)))


if __name__ == "__main__":
    main()
