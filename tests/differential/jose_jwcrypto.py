"""Accept/deny of compact JWS/JWE tokens by jwcrypto, for tests/differential.rs.

stdin: JSON list of {"token": str, "kind": "jws"|"jwe", "alg": str, "key": JWK dict or "pem": PEM text,
"enc": str (jwe)}; stdout: JSON list of booleans (true: jwcrypto accepts). A JWS is accepted
when jwcrypto verifies it with the key under exactly `alg`; a JWE when jwcrypto decrypts it
with the key, allowing only `alg` and `enc`.
"""
import json
import sys

from jwcrypto import jwe, jwk, jws

out = []
for case in json.load(sys.stdin):
    if "pem" in case:
        pem = case["pem"].encode()
        key = jwk.JWK.from_pem(pem)
    else:
        key = jwk.JWK(**case["key"])
    try:
        if case["kind"] == "jws":
            t = jws.JWS()
            t.deserialize(case["token"])
            t.verify(key, alg=case["alg"])
        else:
            t = jwe.JWE(algs=[case["alg"], case["enc"]])
            t.deserialize(case["token"], key=key)
        out.append(True)
    except Exception:  # noqa: BLE001 - any refusal is a deny
        out.append(False)
json.dump(out, sys.stdout)
