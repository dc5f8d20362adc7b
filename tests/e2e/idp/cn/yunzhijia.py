"""Yunzhijia mock, after `reference/providers.md` §4 (table §4.2).

    POST /gateway/oauth2/token/getAccessToken   JSON {appId, secret, timestamp (ms), scope}:
         scope must be "app" and |now - timestamp| <= 180 s -> data {accessToken, expireIn: 6400,
         refreshToken}; otherwise success:false
    POST /gateway/ticket/user/acquirecontext?accessToken=...   JSON {appid, ticket} (lower-case
         `appid` here): data {appid, xtid, oid, eid, username, userid, uid, tid, openid, jobNo,
         networkid, deviceId}; expired token -> success:false errorCode 10000401; unknown or used
         ticket -> success:false errorCode 1001

Hook: `issue_ticket(user)` is what the Yunzhijia client appends to the light app's URL. The mock
treats tickets as single use (the documentation only says they live one hour).
"""

from __future__ import annotations

import time

from .common import MockServer, Req, route, serve_forever

APP_ID = "500123456"
APP_SECRET = "yunzhijia-app-secret-0123456789"
EID = "17120001"

USERS = {
    "zhangsan": {"eid": EID, "openid": "op-zhangsan", "username": "张三", "userid": "u-zs",
                 "uid": "1001", "oid": "oid-zs", "xtid": "xt-zs", "tid": "t-1",
                 "jobNo": "E010", "networkid": "net-1", "email": "zhangsan@corp.example",
                 "phone": "13800000007"},
    "outsider": {"eid": "99999999", "openid": "op-eve", "username": "Eve", "userid": "u-eve",
                 "uid": "2001", "oid": "oid-eve", "xtid": "xt-eve", "tid": "t-9",
                 "jobNo": "X1", "networkid": "net-9"},
}


def fail(code: int, text: str):
    return 200, {"success": False, "errorCode": code, "error": text, "data": None}


class YunzhijiaMock(MockServer):
    name = "yunzhijia"
    token_paths = ("/gateway/oauth2/token/getAccessToken",)

    def issue_ticket(self, user: str = "zhangsan") -> str:
        return self.issue_code("TK", ttl=3600, user=user)

    @route("POST", "/gateway/oauth2/token/getAccessToken")
    def get_access_token(self, req: Req):
        self.require_params(req, set(), set())
        body = self.require_json(req) or {}
        self.require(req, set(body) == {"appId", "secret", "timestamp", "scope"},
                     f"body keys {sorted(body)}")
        ts = body.get("timestamp")
        self.require(req, isinstance(ts, int) and ts > 10**12, f"timestamp must be ms: {ts!r}")
        if body.get("appId") != APP_ID or body.get("secret") != APP_SECRET:
            return fail(10000101, "appId or secret invalid")
        if body.get("scope") != "app":
            return fail(10000102, "scope invalid")
        if not isinstance(ts, int) or abs(ts / 1000 - time.time()) > 180:
            return fail(10000103, "timestamp expired")
        return 200, {"success": True, "errorCode": 0, "error": None,
                     "data": {"accessToken": self.issue_token("YT", ttl=6400),
                              "expireIn": 6400, "refreshToken": "YR-mock"}}

    @route("POST", "/gateway/ticket/user/acquirecontext")
    def acquire_context(self, req: Req):
        self.require_params(req, {"accessToken"}, {"accessToken"})
        body = self.require_json(req) or {}
        self.require(req, set(body) <= {"appid", "ticket", "disposable"},
                     f"body keys {sorted(body)}")
        self.require(req, "appId" not in body, "acquirecontext spells it `appid`")
        if self.token_state(req.query.get("accessToken")) != "ok":
            return fail(10000401, "accessToken invalid or expired")
        if body.get("appid") != APP_ID:
            return fail(10000104, "appid invalid")
        status, data = self.use_code(body.get("ticket"))
        if status != "ok":
            return fail(1001, "ticket invalid or expired")
        user = USERS[data["user"]]
        return 200, {"success": True, "errorCode": 0, "error": None,
                     "data": dict(user, appid=APP_ID, deviceId="dev-1")}


if __name__ == "__main__":
    serve_forever(YunzhijiaMock)
