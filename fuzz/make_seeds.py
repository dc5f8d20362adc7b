"""Writes fuzz/seeds/<target>/: the starting inputs of every fuzz target, made from the
repository's fixtures (tests/fixtures) and from the formats each target reads. Run from the
repository root: `python3 fuzz/make_seeds.py` (plain Python 3, no packages). The input layout
of each target is documented in src/fuzzing/targets/ (one file a subject); a leading byte
usually selects a mode.
"""

import base64
import hashlib
import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "fuzz" / "seeds"
FIX = ROOT / "tests" / "fixtures"


def write(target: str, data: bytes | str, name: str | None = None) -> None:
    if isinstance(data, str):
        data = data.encode()
    d = SEEDS / target
    d.mkdir(parents=True, exist_ok=True)
    name = name or hashlib.sha1(data).hexdigest()[:16]
    (d / name).write_bytes(data)


def b(*parts) -> bytes:
    out = b""
    for p in parts:
        out += bytes([p]) if isinstance(p, int) else (p.encode() if isinstance(p, str) else p)
    return out


cases = json.loads((FIX / "jwt" / "cases.json").read_text())["cases"]
saml_names = ["signed_response", "signed_assertion", "signed_both", "encrypted_aes128_cbc",
              "encrypted_aes256_gcm", "signed_sha1"]

# cookie_header: raw headers (mod_auth_openidc fuzz_cookie style), and the real sealed value
# split over 1-4 chunks, edited or not.
for raw in ["sso_session=abc", "foo=1; ; bar=2", 'a="quoted"; b=2', "=x; noeq; ;;",
            "sso_session=a; sso_session=b", "sso_session_1=x; sso_session_2=y",
            "sso_session_flow_abc=1\nsso_session=2", "a=b; " * 50]:
    write("cookie_header", b(0, raw))
for parts in range(4):
    write("cookie_header", b(1, parts, 0))
    write("cookie_header", b(1, parts, 1, 0, 0, 10, 1))
    write("cookie_header", b(2, parts, "other=1"))

# session_seal / flow_state: payloads and edit programs.
for s in [b"", b"{}", b'{"v":1}', b"\x01\x00\x00\x05\x01", b"\x02\x00\x01\x00\x07" + b"x" * 40]:
    write("session_seal", s)
for s in [b"\x00", b"\x01st-0123456789abcdefghijklmnopqrstuvwxyzABCD", b"\x00\x01\x03\x00\x10\x00",
          b"\x01"]:
    write("flow_state", s)

# path_query: request targets (security.md C1-C5 vectors).
for p in ["/", "/healthz", "/static/app.js", "/static/../admin", "/public/../admin", "//admin",
          "/%2e%2e/admin", "/static/%2e%2e/admin", "/static%2f..%2fadmin", "/a;/../admin",
          "/admin;.css", "/static/..;/admin", "/%c0%ae%c0%ae/admin", "/a%00", "/a\\b",
          "/healthz/", "/HEALTHZ", "/healthz?x=1&jwtParam=a&activeAuth=b", "/x?a=1&a=2&b",
          "/static/./x", "/sso/logout", "/login", "/?=&&=", "/static/%252e%252e/admin"]:
    write("path_query", p)

# form_body: raw bodies, username/password pairs, state-prefixed bodies, SAML posts.
for s in [b(0, "username=alice&password=x&state=s"), b(0, "a=%zz&&="),
          b(1, "alice\nwrong"), b(1, "alice\n"), b(1, "\n"),
          b(2, "username=alice&password=correct"), b(2, "username=alice&username=bob&password=x"),
          b(3, "SAMLResponse=PHg%2BPC94Pg%3D%3D&RelayState=x"),
          b(3, "SAMLResponse=" + base64.b64encode((FIX / "saml2" / "signed_response.xml").read_bytes()).decode().replace("+", "%2B").replace("=", "%3D").replace("/", "%2F") + "&RelayState=state-0")]:
    write("form_body", s)

# jws / jwe: each original unedited, then one or two edits.
for i in range(6):
    write("jws", b(i, 0))
    write("jws", b(i, 1, 0, 0, 5, 1))
    write("jws", b(i, 0, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIn0."))
for i in range(2):
    write("jwe", b(i, 0))
    write("jwe", b(i, 1, 0, 0, 40, 3))

# jwt_param: every jwcrypto case unedited (so the seeds replay the whole fixture set).
for i, c in enumerate(cases):
    write("jwt_param", b(i, 0, 0), f"case_{i:02d}_{c['name']}")
write("jwt_param", b(0, 1, "garbage"))

# idp_json: token / user-info / discovery / JWKS / edited ID token.
jwks = json.loads((FIX / "jwt" / "keys" / "rsa-sign.jwks.json").read_text())
for k in jwks["keys"]:
    k["kid"] = "k1"
for body in ['{"access_token":"a","token_type":"Bearer","expires_in":3600,"id_token":"x.y.z"}',
             '{"access_token":"a","token_type":"bearer"}', '{"error":"invalid_grant"}',
             '[1,2]', '{"access_token":1}', '{"access_token":"a","access_token":"b"}']:
    write("idp_json", b(0, 0, body))
for body in ['{"sub":"alice","email":"a@example.com"}', '{"sub":"mallory"}', '"x"']:
    write("idp_json", b(1, 0, body))
write("idp_json", b(2, 0, json.dumps({"issuer": "https://idp.example.com",
      "authorization_endpoint": "https://idp.example.com/auth",
      "token_endpoint": "https://idp.example.com/token", "jwks_uri": "https://idp.example.com/jwks"})))
write("idp_json", b(2, 0, '{"issuer":"https://evil.example"}'))
write("idp_json", b(3, 0, json.dumps(jwks)))
write("idp_json", b(3, 0, '{"keys":[{"kty":"oct","k":"AAAA","kid":"k1"}]}'))
write("idp_json", b(4, 0, 1, 0, 20, 1))

# fleet_answers: 0 a one-time JWT landing (lease grant, then the transaction), 1 a CAS session's
# logout check (the transaction only); pieces cut at \n--\n, each a status byte (0: 200, 12: 404,
# 15: 503) and etcd 3.4's JSON gateway answer.
def etcd(mode, *pieces):
    return b(mode, "\n--\n".join(p if isinstance(p, str) else p.decode("latin-1")
                                   for p in pieces))
OK_TXN = '{"header":{"revision":"3"},"succeeded":true,"responses":[{"response_put":{"header":{}}}]}'
write("fleet_answers", etcd(0, "\x00" + '{"ID":"7587899367537112837","TTL":"720"}', "\x00" + OK_TXN))
write("fleet_answers", etcd(0, "\x00" + '{"ID":"7"}',
                            "\x00" + '{"responses":[{"response_range":{"count":"1"}}]}'))
write("fleet_answers", etcd(0, "\x00" + '{"ID":"7"}', "\x0c" + '{"error":"etcdserver: requested lease not found","code":5}',
                            "\x00" + '{"ID":"8"}', "\x00" + OK_TXN))
write("fleet_answers", etcd(0, "\x0f" + "upstream connect error"))
write("fleet_answers", etcd(1, "\x00" + '{"succeeded":true,"responses":[{"response_range":{"header":{}}}]}'))
write("fleet_answers", etcd(1, "\x00" + '{"succeeded":true,"responses":[{"response_range":{"count":"1"}}]}'))
write("fleet_answers", etcd(1, "\x00" + '{"succeeded":"true","responses":[{}]}'))
# With authentication (bit 1): the token first; a token etcd no longer knows (401) is replaced.
TOKEN = "\x00" + '{"header":{"revision":"5"},"token":"TqHaRGCtDLmIHufK.22"}'
write("fleet_answers", etcd(2, TOKEN, "\x00" + '{"ID":"7"}', "\x00" + OK_TXN))
write("fleet_answers", etcd(3, TOKEN, "\x00" + '{"succeeded":true,"responses":[{"response_range":{}}]}'))
write("fleet_answers", etcd(3, TOKEN, "\x0a" + '{"error":"etcdserver: invalid auth token","code":16}',
                            TOKEN, "\x00" + '{"succeeded":true,"responses":[{"response_range":{}}]}'))
write("fleet_answers", etcd(2, "\x09" + '{"error":"etcdserver: authentication failed, invalid user ID or password","code":3}'))

# idp_answers: per provider (0 oidc, 1 cas, 2 dingtalk, 3 wecom, 4 lark, 5 wechat, 6 yunzhijia,
# 7 teams), the answers
# in order, "\n--\n" between them; the first byte of each is the status selector (0 = 200,
# 0xff = no answer).
SEP = b"\n--\n"
def answers(provider, *bodies):
    return bytes([provider]) + SEP.join(bytes([0]) + (x.encode() if isinstance(x, str) else x) for x in bodies)
disc = json.dumps({"issuer": "https://idp.example.com", "authorization_endpoint": "https://idp.example.com/auth",
                   "token_endpoint": "https://idp.example.com/token", "userinfo_endpoint": "https://idp.example.com/me",
                   "jwks_uri": "https://idp.example.com/jwks"})
write("idp_answers", answers(0, disc, '{"access_token":"a","token_type":"Bearer","id_token":"x.y.z"}', json.dumps(jwks), '{"sub":"alice"}'))
write("idp_answers", answers(0, disc, '{"error":"invalid_grant"}'))
cas_ok = ('<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess>'
          '<cas:user>alice</cas:user><cas:attributes><cas:mail>a@example.org</cas:mail></cas:attributes>'
          '</cas:authenticationSuccess></cas:serviceResponse>')
cas_fail = ('<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="INVALID_TICKET">'
            'nope</cas:authenticationFailure></cas:serviceResponse>')
write("idp_answers", answers(1, cas_ok))
write("idp_answers", answers(1, cas_fail))
write("idp_answers", bytes([1]) + b"\xff")
tok = '{"errcode":0,"errmsg":"ok","access_token":"T","expires_in":7200}'
write("idp_answers", answers(2, '{"accessToken":"UAT","expireIn":7200}', '{"nick":"Eve","unionId":"U1"}', tok,
                             '{"errcode":0,"errmsg":"ok","result":{"contact_type":0,"userid":"u001"}}',
                             '{"errcode":0,"errmsg":"ok","result":{"userid":"u001","unionid":"U1","name":"Eve"}}'))
write("idp_answers", answers(2, '{"errcode":60121,"errmsg":"not found"}'))
write("idp_answers", answers(3, tok, '{"errcode":0,"errmsg":"ok","userid":"zhangsan","user_ticket":"UT","expires_in":1800}',
                             '{"errcode":0,"errmsg":"ok","userid":"zhangsan","name":"Zhang"}'))
write("idp_answers", answers(3, tok, '{"errcode":0,"errmsg":"ok","openid":"o-outsider","external_userid":"wmx"}'))
write("idp_answers", answers(4, '{"code":0,"app_access_token":"A","expire":7200}',
                             '{"code":0,"data":{"access_token":"U","open_id":"ou1","union_id":"on1","tenant_key":"tenant-a","name":"L"}}'))
write("idp_answers", answers(5, '{"access_token":"A","openid":"oOPENID","unionid":"U","expires_in":7200}',
                             '{"openid":"oOPENID","nickname":"W"}'))

write("idp_answers", answers(6, '{"success":true,"errorCode":0,"error":null,"data":{"accessToken":"YT","expireIn":6400,"refreshToken":"R"}}',
                             '{"success":true,"errorCode":0,"error":null,"data":{"appid":"500000001","eid":"10109","openid":"op-zs","username":"Zhang","userid":"u-zs","uid":"1","tid":"t","oid":"o","jobNo":"E001","networkid":"n","xtid":"x","deviceId":"dev-1"}}'))
write("idp_answers", answers(6, '{"success":false,"errorCode":10000,"error":"bad ticket"}'))
write("idp_answers", answers(7, json.dumps(jwks)))
write("idp_answers", answers(7, '{"keys":[]}'))

# saml_response: every fixture unedited, byte edits, XML edits (op, element, target, dict).
for i in range(len(saml_names)):
    write("saml_response", b(i, 0, 0), f"{saml_names[i]}_unedited")
    for op in range(6):
        write("saml_response", b(i, 1, op, 3, 7, op + 2), f"{saml_names[i]}_xml_op{op}")
    write("saml_response", b(i, 0, 1, 4, 0, 8, 0, "<!---->"), f"{saml_names[i]}_bytes")

# saml_redirect: the signed redirect query (edited), logout requests, metadata (2), the posted
# signed LogoutRequest (3).
write("saml_redirect", b(0, 0))
write("saml_redirect", b(0, 1, 7, 0, 1, 0, "&SigAlg=x"))
write("saml_redirect", b(1, 0, 2, 1, 0))
write("saml_redirect", b(1, '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x" Version="2.0"/>'))
# 3: the IdP's LogoutRequest signed inside the XML (HTTP-POST), as is and edited.
write("saml_redirect", b(3))
write("saml_redirect", b(3, 2, 1, 0, 5))
write("saml_redirect", b(2, '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://e"><md:IDPSSODescriptor/></md:EntityDescriptor>'))

# xml_c14n: the c14n vectors (W3C + our own), the SAML fixtures, namespace corner cases.
for f in sorted((FIX / "vectors" / "c14n").glob("*.xml")):
    write("xml_c14n", b(0, f.read_bytes()), f.stem)
    write("xml_c14n", b(1, f.read_bytes()), f.stem + "_inclusive")
for n in saml_names[:3]:
    write("xml_c14n", b(0, (FIX / "saml2" / f"{n}.xml").read_bytes()), n)
for x in ['<a xmlns="u" xmlns:b="v"><b:c b:d="1" e="&lt;&amp;&#xD;"/></a>',
          '<a xml:lang="en"><b xmlns=""><c xmlns:a="x" a:y="1"/></b></a>',
          "<a attr='\t\n'>x\r\ny<![CDATA[<z>]]><?pi v?><!--c--></a>"]:
    write("xml_c14n", b(0, x))

# cas_xml: validation answers, logout requests, tickets.
for x in [cas_ok, cas_fail, cas_ok.replace("alice", "al<!---->ice"),
          cas_ok.replace("</cas:authenticationSuccess>", "</cas:authenticationSuccess><cas:authenticationFailure/>"),
          '<!DOCTYPE x [<!ENTITY e "y">]>' + cas_ok,
          '<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="1" Version="2.0">'
          '<samlp:SessionIndex>ST-1-abcdefghijklmnopqrstuvwxyz0123456789</samlp:SessionIndex></samlp:LogoutRequest>',
          "ST-1-abcdefghijklmnopqrstuvwxyz0123456789", "ST-1&service=https://evil", "PT-" + "a" * 40]:
    write("cas_xml", x)

# ldap_ber: BindResponse success and failure, a SearchResultEntry, SearchResultDone, junk.
bind_ok = bytes.fromhex("300c02010161070a010004000400")
bind_bad = bytes.fromhex("300c02010161070a013104000400")
entry = bytes.fromhex("303b020102643604216569643d616c6963652c6f753d70656f706c652c64633d6578616d706c65"
                      "2c64633d6f7267301130050403756964300404026c6963")
done = bytes.fromhex("300c02010265070a010004000400")
for s in [bind_ok, bind_bad, bind_ok + SEP + entry + done, bind_ok + entry + done,
          bytes.fromhex("3084000000"), bytes.fromhex("30820000"), b"\x30"]:
    write("ldap_ber", s)

# mapping: claim documents.
for c in [{"sub": "alice"}, {"user": {"name": "bob"}, "roles": ["a", "b"], "dept": "x", "org": {"id": 7}},
          {"id": "x", "nested": {"id": "y"}}, {"sub": ""}, {"sub": "a\nb"}, {"sub": 12},
          {"extattr": {"attrs": [{"name": "角色", "text": {"value": "r"}}]}, "id": "z"}, []]:
    write("mapping", json.dumps(c, ensure_ascii=False))

# config: the configurations of the scenario tests and the README examples.
key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"
for m in [c["method"] for c in cases[:3]] + [
        {"type": "oidc", "issuer": "https://idp.example.com", "client_id": "a", "client_secret": "s"},
        {"type": "cas", "server_url": "https://cas.example.org/cas"},
        {"type": "local", "users": []},
        {"type": "ldap", "host": "dir.test", "port": 389, "search_base": "dc=x", "user_filter": "(uid={user})"}]:
    write("config", json.dumps({"base_url": "https://app.example.com", "session": {"keys": [key]},
                                "public_paths": ["/healthz"], "methods": {"m": m}}))
write("config", "{}")
write("config", '{"base_url":"http://x","session":{"keys":[""]}}')

# return_url: a sample of the open-redirect payloads (tests/corpora runs the whole lists).
for p in ["/", "/app?x=1", "//evil.com", "/\\evil.com", "/%09/evil.com", "https://app.example.com/x",
          "https://app.example.com@evil.com", "https:evil.com", "javascript:alert(1)", "/./\\evil.com",
          "\t//evil.com", "/%2F%2Fevil.com", "https://app.example.com.evil.com/", "/x/../../\\evil"]:
    write("return_url", p)
print("seeds written:", sum(len(list((SEEDS / t).iterdir())) for t in os.listdir(SEEDS)))
