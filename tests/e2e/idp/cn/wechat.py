"""WeChat mock, after `reference/providers.md` §5 (table §5.4).

One server plays open.weixin.qq.com and api.weixin.qq.com.

    GET /connect/qrconnect?appid&redirect_uri&response_type=code&scope=snsapi_login&state
    GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state
        both check the parameter ORDER (WeChat regex-matches the URL), the app id of the right
        app, an alphanumeric state; 302 redirect_uri?code=X<n>&state=...   (user: `mock_user`,
        default alice; `mock_snapshot=1` makes the official-account visitor a snapshot user)
    GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code
        the code must belong to that app; used -> 40163, unknown -> 40029, bad secret -> 40125;
        official-account codes answer `is_snapshotuser`
    GET /sns/userinfo?access_token&openid&lang=zh_CN
    GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code
        -> openid, session_key, unionid; else 40029

Hook: `mini_login(user, phone=True)` -> (auth_code, encryptedData, iv) as a mini program's
`wx.login` + `getUserInfo`/`getPhoneNumber` would hand them to the web-view: the data is
AES-128-CBC-encrypted under the session key jscode2session will return, with
`watermark.appid` = the mini program's app id.
"""

from __future__ import annotations

import base64
import json
import os
import time

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .common import ALNUM_STATE, MockServer, Req, route, serve_forever

OPEN_APP = ("wxopen0000000001", "wechat-open-secret-0123456789")
MP_APP = ("wxmp00000000000002", "wechat-mp-secret-0123456789")
MINI_APP = ("wxmini000000000003", "wechat-mini-secret-0123456789")

USERS = {
    "alice": {"unionid": "un_alice", "nickname": "爱丽丝", "sex": 2, "province": "Zhejiang",
              "city": "Hangzhou", "country": "CN", "headimgurl": "", "phone": "13800000005"},
    "mallory": {"unionid": "un_mallory", "nickname": "Mallory", "sex": 1, "province": "",
                "city": "", "country": "CN", "headimgurl": "", "phone": "13800000006"},
}


def openid(app_id: str, user: str) -> str:
    return f"o_{app_id[-2:]}_{user}"


class WechatMock(MockServer):
    name = "wechat"

    def on_reset(self) -> None:
        self.user_tokens: dict[str, tuple[str, str]] = {}

    # ---------------------------------------------------------------- hooks

    def mini_login(self, user: str = "alice", phone: bool = True) -> tuple[str, str, str]:
        key, iv = os.urandom(16), os.urandom(16)
        code = self.issue_code("J", kind="mini", user=user,
                               session_key=base64.b64encode(key).decode())
        info = {"openId": openid(MINI_APP[0], user), "nickName": USERS[user]["nickname"],
                "gender": USERS[user]["sex"], "unionId": USERS[user]["unionid"],
                "watermark": {"appid": MINI_APP[0], "timestamp": int(time.time())}}
        if phone:
            info.update(phoneNumber="+86" + USERS[user]["phone"],
                        purePhoneNumber=USERS[user]["phone"], countryCode="86")
        padder = padding.PKCS7(128).padder()
        data = padder.update(json.dumps(info, ensure_ascii=False).encode()) + padder.finalize()
        enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
        cipher = enc.update(data) + enc.finalize()
        return code, base64.b64encode(cipher).decode(), base64.b64encode(iv).decode()

    # ---------------------------------------------------------------- browser pages

    def _authorize(self, req: Req, app: tuple[str, str], scopes: tuple[str, ...], kind: str):
        names = ["appid", "redirect_uri", "response_type", "scope", "state"]
        self.require_params(req, set(names) | {"mock_user", "mock_snapshot"}, set(names))
        order = [k for k, _ in req.query_list if not k.startswith("mock_")]
        self.require(req, order == names, f"parameter order {order}")
        self.require(req, req.query.get("appid") == app[0], f"appid must be {app[0]}")
        self.require(req, req.query.get("response_type") == "code", "response_type")
        self.require(req, req.query.get("scope") in scopes, f"scope {req.query.get('scope')!r}")
        self.require(req, bool(ALNUM_STATE.match(req.query.get("state", ""))), "state")
        code = self.issue_code("X", kind=kind, app=app[0], scope=req.query.get("scope"),
                               user=req.query.get("mock_user", "alice"),
                               snapshot=req.query.get("mock_snapshot") == "1")
        return 302, self.redirect_back(req.query["redirect_uri"],
                                       {"code": code, "state": req.query.get("state", "")})

    @route("GET", "/connect/qrconnect")
    def qrconnect(self, req: Req):
        return self._authorize(req, OPEN_APP, ("snsapi_login",), "open")

    @route("GET", "/connect/oauth2/authorize")
    def mp_authorize(self, req: Req):
        return self._authorize(req, MP_APP, ("snsapi_base", "snsapi_userinfo"), "mp")

    # ---------------------------------------------------------------- api

    @route("GET", "/sns/oauth2/access_token")
    def access_token(self, req: Req):
        names = {"appid", "secret", "code", "grant_type"}
        self.require_params(req, names, names)
        self.require(req, req.query.get("grant_type") == "authorization_code", "grant_type")
        app = {OPEN_APP[0]: OPEN_APP, MP_APP[0]: MP_APP}.get(req.query.get("appid"))
        if app is None:
            return 200, {"errcode": 40013, "errmsg": "invalid appid"}
        if req.query.get("secret") != app[1]:
            return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
        status, data = self.use_code(req.query.get("code"))
        if status == "used":
            return 200, {"errcode": 40163, "errmsg": "code been used"}
        if status != "ok" or data.get("app") != app[0]:
            return 200, {"errcode": 40029, "errmsg": "invalid code"}
        oid = openid(app[0], data["user"])
        token = self.issue_token("WAT")
        self.user_tokens[token] = (oid, data["user"])
        body = {"access_token": token, "expires_in": 7200, "refresh_token": "WRT",
                "openid": oid, "scope": data["scope"], "unionid": USERS[data["user"]]["unionid"]}
        if data["kind"] == "mp":
            body["is_snapshotuser"] = 1 if data["snapshot"] else 0
        return 200, body

    @route("GET", "/sns/userinfo")
    def userinfo(self, req: Req):
        names = {"access_token", "openid", "lang"}
        self.require_params(req, names, {"access_token", "openid"})
        who = self.user_tokens.get(req.query.get("access_token", ""))
        if who is None or self.token_state(req.query.get("access_token")) != "ok":
            return 200, {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"}
        if who[0] != req.query.get("openid"):
            return 200, {"errcode": 40003, "errmsg": "invalid openid"}
        u = USERS[who[1]]
        return 200, {"openid": who[0], "nickname": u["nickname"], "sex": u["sex"],
                     "province": u["province"], "city": u["city"], "country": u["country"],
                     "headimgurl": u["headimgurl"], "privilege": [], "unionid": u["unionid"]}

    @route("GET", "/sns/jscode2session")
    def jscode2session(self, req: Req):
        names = {"appid", "secret", "js_code", "grant_type"}
        self.require_params(req, names, names)
        if req.query.get("appid") != MINI_APP[0] or req.query.get("secret") != MINI_APP[1]:
            return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
        status, data = self.use_code(req.query.get("js_code"))
        if status != "ok" or data.get("kind") != "mini":
            return 200, {"errcode": 40029, "errmsg": "invalid code"}
        return 200, {"openid": openid(MINI_APP[0], data["user"]),
                     "session_key": data["session_key"],
                     "unionid": USERS[data["user"]]["unionid"]}


if __name__ == "__main__":
    serve_forever(WechatMock)
