"""DingTalk mock, after `reference/providers.md` §1 (tables §1.9).

One server plays login.dingtalk.com, api.dingtalk.com and oapi.dingtalk.com.

Browser pages:
    GET  /oauth2/auth?client_id&redirect_uri&response_type=code&scope&state&prompt[&exclusiveLogin&exclusiveCorpId]
         302 redirect_uri?authCode=C<n>&code=C<n>&state=...   (user: `mock_user`, default u001)
    GET  /connect/qrconnect?appid&response_type=code&scope=snsapi_login&state&redirect_uri
         302 redirect_uri?code=S<n>&state=...
api.dingtalk.com (camelCase JSON, errors as HTTP 4xx {"code","message","requestid"}):
    POST /v1.0/oauth2/userAccessToken   {clientId, clientSecret, code, grantType}
    GET  /v1.0/contact/users/me         header x-acs-dingtalk-access-token (not Authorization)
    POST /v1.0/oauth2/accessToken       {appKey, appSecret} (the new app-token endpoint)
oapi.dingtalk.com (HTTP 200, {"errcode","errmsg"}; token in ?access_token):
    GET  /gettoken?appkey&appsecret                       app token APPT<n>, 7200 s
    POST /topapi/v2/user/getuserinfo    {code}             in-app code -> result.userid
    POST /topapi/user/getbyunionid      {unionid}          member -> userid; else 60121
    POST /topapi/v2/user/get            {userid, language}
    POST /topapi/v2/department/listparentbyuser {userid}
    POST /topapi/v2/department/get      {dept_id, language}
    POST /topapi/v2/department/listsub  {dept_id?, language?}   the department's children (one
         level: dept_id, name, parent_id, create_dept_group, auto_add_user); no dept_id: the
         root's (1); an unknown department: 60003
    POST /sns/getuserinfo_bycode?accessKey&timestamp&signature  {tmp_auth_code}: the signature
         recomputed as Base64(HMAC-SHA256(qr secret, timestamp)); mismatch -> 853001; timestamp
         more than 5 minutes off -> 853002
    GET  /sso/gettoken?corpid&corpsecret                  admin-console SSO token
    GET  /sso/getuserinfo?access_token&code               admin: is_sys, corp_info, user_info

Test hooks: `issue_inapp_code(user)` (what `dd.requestAuthCode` gives the page) and
`issue_admin_code(user, corpid=CORP_ID, is_sys=True)` (what the admin console appends).
Expired app tokens: 42001 (oapi), 401 InvalidAuthentication (api).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from .common import ALNUM_STATE, MockServer, Req, route, serve_forever

CORP_ID = "dingmockcorp"
APP_KEY = "dingmockappkey"
APP_SECRET = "dingtalk-app-secret-0123456789"
QR_APP_ID = "dingoamockqr"
QR_APP_SECRET = "dingtalk-qr-secret-0123456789"
SSO_SECRET = "dingtalk-sso-secret-0123456789"

USERS = {
    "u001": {"unionid": "U1", "member": True, "profile": {
        "userid": "u001", "unionid": "U1", "name": "张三", "avatar": "", "state_code": "86",
        "mobile": "13800000002", "hide_mobile": False, "telephone": "", "job_number": "E001",
        "title": "数据分析师", "email": "", "org_email": "zhangsan@corp.example",
        "work_place": "", "remark": "", "dept_id_list": [3], "extension": "{\"爱好\":\"旅游\"}",
        "active": True, "admin": False, "boss": False, "senior": False,
        "role_list": [{"id": 11, "name": "data analyst", "group_name": "默认"}],
        "leader_in_dept": [{"dept_id": 3, "leader": False}]}},
    "admin1": {"unionid": "UA", "member": True, "profile": {
        "userid": "admin1", "unionid": "UA", "name": "管理员", "mobile": "13800000009",
        "email": "admin@corp.example", "org_email": "", "dept_id_list": [2], "active": True,
        "admin": True, "role_list": [{"id": 1, "name": "主管理员", "group_name": "默认"}]}},
    "eve": {"unionid": "U-EVE", "member": False},
}
DEPARTMENTS = {1: ("Mock Corp", None), 2: ("研发部", 1), 3: ("数据组", 2)}


def sign(secret: str, timestamp: str) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


class DingTalkMock(MockServer):
    name = "dingtalk"
    token_paths = ("/gettoken", "/sso/gettoken", "/v1.0/oauth2/accessToken")

    def on_reset(self) -> None:
        self.user_tokens: dict[str, str] = {}

    # ---------------------------------------------------------------- hooks

    def issue_inapp_code(self, user: str = "u001") -> str:
        return self.issue_code("M", kind="inapp", user=user)

    def issue_admin_code(self, user: str = "admin1", corpid: str = CORP_ID,
                         is_sys: bool = True) -> str:
        return self.issue_code("A", kind="admin", user=user, corpid=corpid, is_sys=is_sys)

    # ---------------------------------------------------------------- helpers

    def app_token_error(self, req: Req, prefix: str = "APPT"):
        token = req.query.get("access_token") or ""
        state = self.token_state(token)
        if state == "ok" and not token.startswith(prefix):
            self.violation(req, f"wrong kind of token: {token[:4]}… where {prefix}… is needed")
            state = "unknown"
        if state != "ok":
            return 200, {"errcode": 42001 if state == "expired" else 40014,
                         "errmsg": "不合法的access_token"}
        return None

    def topapi(self, req: Req, keys: set[str]) -> tuple[dict | None, tuple | None]:
        self.require_params(req, {"access_token"}, {"access_token"})
        body = self.require_json(req) or {}
        self.require(req, set(body) <= keys, f"body keys {sorted(body)} not in {sorted(keys)}")
        return body, self.app_token_error(req)

    @staticmethod
    def v1_error(status: int, code: str, message: str):
        return status, {"code": code, "message": message, "requestid": "mock-request"}

    # ---------------------------------------------------------------- browser pages

    @route("GET", "/oauth2/auth")
    def oauth2_auth(self, req: Req):
        names = {"client_id", "redirect_uri", "response_type", "scope", "state", "prompt"}
        self.require_params(req, names | {"exclusiveLogin", "exclusiveCorpId", "mock_user",
                                          "org_type", "corpId"}, names)
        self.require(req, req.query.get("client_id") == APP_KEY, "client_id must be the AppKey")
        self.require(req, req.query.get("response_type") == "code", "response_type must be code")
        self.require(req, "openid" in req.query.get("scope", "").split(" "), "scope needs openid")
        self.require(req, req.query.get("prompt") == "consent", "prompt must be consent")
        user = req.query.get("mock_user", "u001")
        code = self.issue_code("C", kind="oauth2", user=user)
        return 302, self.redirect_back(req.query["redirect_uri"],
                                       {"authCode": code, "code": code,
                                        "state": req.query.get("state", "")})

    @route("GET", "/connect/qrconnect")
    def qrconnect(self, req: Req):
        names = {"appid", "response_type", "scope", "state", "redirect_uri"}
        self.require_params(req, names | {"mock_user"}, names)
        self.require(req, req.query.get("appid") == QR_APP_ID, "appid must be the login app's")
        self.require(req, req.query.get("scope") in ("snsapi_login", "snsapi_auth"), "scope")
        self.require(req, bool(ALNUM_STATE.match(req.query.get("state", ""))), "state")
        code = self.issue_code("S", kind="sns", user=req.query.get("mock_user", "u001"))
        return 302, self.redirect_back(req.query["redirect_uri"],
                                       {"code": code, "state": req.query.get("state", "")})

    # ---------------------------------------------------------------- api.dingtalk.com

    @route("POST", "/v1.0/oauth2/userAccessToken")
    def user_access_token(self, req: Req):
        self.require_params(req, set(), set())
        body = self.require_json(req) or {}
        self.require(req, set(body) == {"clientId", "clientSecret", "code", "grantType"},
                     f"body keys {sorted(body)}")
        if body.get("clientId") != APP_KEY or body.get("clientSecret") != APP_SECRET:
            return self.v1_error(400, "invalidClientIdOrSecret", "无效的clientId或者clientSecret")
        if body.get("grantType") != "authorization_code":
            return self.v1_error(400, "invalidParameter.grantType", "grantType")
        status, data = self.use_code(body.get("code"))
        if status != "ok" or data.get("kind") != "oauth2":
            return self.v1_error(400, "invalidParameter.authCode.notFound", "不合法的临时授权码")
        token = self.issue_token("UAT", user=data["user"])
        self.user_tokens[token] = data["user"]
        return 200, {"accessToken": token, "refreshToken": "RT-mock", "expireIn": 7200,
                     "corpId": CORP_ID}

    @route("GET", "/v1.0/contact/users/me")
    def users_me(self, req: Req):
        self.require_params(req, set(), set())
        self.require(req, req.header("authorization") is None,
                     "the token goes in x-acs-dingtalk-access-token, not Authorization")
        token = req.header("x-acs-dingtalk-access-token")
        who = self.user_tokens.get(token or "")
        if who is None or self.token_state(token) != "ok":
            return self.v1_error(401, "InvalidAuthentication", "不合法的access_token")
        user = USERS[who]
        profile = user.get("profile", {})
        return 200, {"nick": profile.get("name", who), "avatarUrl": "", "mobile":
                     profile.get("mobile", ""), "openId": "O-" + who, "unionId": user["unionid"],
                     "email": "personal@" + who + ".example", "stateCode": "86"}

    @route("POST", "/v1.0/oauth2/accessToken")
    def new_app_token(self, req: Req):
        body = self.require_json(req) or {}
        if body.get("appKey") != APP_KEY or body.get("appSecret") != APP_SECRET:
            return self.v1_error(400, "invalidClientIdOrSecret", "bad app")
        return 200, {"accessToken": self.issue_token("APPT"), "expireIn": 7200}

    # ---------------------------------------------------------------- oapi.dingtalk.com

    @route("GET", "/gettoken")
    def gettoken(self, req: Req):
        self.require_params(req, {"appkey", "appsecret"}, {"appkey", "appsecret"})
        if req.query.get("appkey") != APP_KEY or req.query.get("appsecret") != APP_SECRET:
            return 200, {"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"}
        return 200, {"errcode": 0, "errmsg": "ok", "access_token": self.issue_token("APPT"),
                     "expires_in": 7200}

    @route("POST", "/topapi/v2/user/getuserinfo")
    def inapp_userinfo(self, req: Req):
        body, err = self.topapi(req, {"code"})
        if err:
            return err
        status, data = self.use_code(body.get("code"))
        if status != "ok" or data.get("kind") != "inapp":
            return 200, {"errcode": 40078, "errmsg": "不存在的临时授权码"}
        user = USERS[data["user"]]
        profile = user["profile"]
        return 200, {"errcode": 0, "errmsg": "ok", "request_id": "mock", "result": {
            "userid": profile["userid"], "unionid": user["unionid"], "associated_unionid": "",
            "device_id": "device-1", "sys": bool(profile.get("admin")),
            "sys_level": 1 if profile.get("admin") else 0, "name": profile["name"]}}

    @route("POST", "/topapi/user/getbyunionid")
    def getbyunionid(self, req: Req):
        body, err = self.topapi(req, {"unionid"})
        if err:
            return err
        for user in USERS.values():
            if user["unionid"] == body.get("unionid") and user["member"]:
                return 200, {"errcode": 0, "errmsg": "ok", "request_id": "mock",
                             "result": {"contact_type": 0, "userid": user["profile"]["userid"]}}
        return 200, {"errcode": 60121, "errmsg": "找不到该用户"}

    @route("POST", "/topapi/v2/user/get")
    def user_get(self, req: Req):
        body, err = self.topapi(req, {"userid", "language"})
        if err:
            return err
        for user in USERS.values():
            if user.get("profile", {}).get("userid") == body.get("userid"):
                return 200, {"errcode": 0, "errmsg": "ok", "request_id": "mock",
                             "result": user["profile"]}
        return 200, {"errcode": 60121, "errmsg": "找不到该用户"}

    @route("POST", "/topapi/v2/department/listparentbyuser")
    def listparentbyuser(self, req: Req):
        body, err = self.topapi(req, {"userid"})
        if err:
            return err
        for user in USERS.values():
            if user.get("profile", {}).get("userid") == body.get("userid"):
                chains = []
                for dept in user["profile"]["dept_id_list"]:
                    chain, d = [], dept
                    while d is not None:
                        chain.append(d)
                        d = DEPARTMENTS[d][1]
                    chains.append({"parent_dept_id_list": chain})
                return 200, {"errcode": 0, "errmsg": "ok", "result": {"parent_list": chains}}
        return 200, {"errcode": 60121, "errmsg": "找不到该用户"}

    @route("POST", "/topapi/v2/department/get")
    def department_get(self, req: Req):
        body, err = self.topapi(req, {"dept_id", "language"})
        if err:
            return err
        dept = DEPARTMENTS.get(body.get("dept_id"))
        if dept is None:
            return 200, {"errcode": 60003, "errmsg": "部门不存在"}
        return 200, {"errcode": 0, "errmsg": "ok", "result": {
            "dept_id": body["dept_id"], "name": dept[0], "parent_id": dept[1] or 0}}

    @route("POST", "/topapi/v2/department/listsub")
    def department_listsub(self, req: Req):
        body, err = self.topapi(req, {"dept_id", "language"})
        if err:
            return err
        self.require(req, body.get("language", "zh_CN") in ("zh_CN", "en_US"), "language")
        parent = body.get("dept_id", 1)
        if parent not in DEPARTMENTS:
            return 200, {"errcode": 60003, "errmsg": "部门不存在"}
        children = [{"dept_id": d, "name": name, "parent_id": up, "create_dept_group": True,
                     "auto_add_user": True}
                    for d, (name, up) in DEPARTMENTS.items() if up == parent]
        return 200, {"errcode": 0, "errmsg": "ok", "request_id": "mock", "result": children}

    @route("POST", "/sns/getuserinfo_bycode")
    def sns_userinfo(self, req: Req):
        names = {"accessKey", "timestamp", "signature"}
        self.require_params(req, names, names)
        body = self.require_json(req) or {}
        self.require(req, set(body) == {"tmp_auth_code"}, f"body keys {sorted(body)}")
        self.require(req, req.query.get("accessKey") == QR_APP_ID, "accessKey must be the appId")
        ts = req.query.get("timestamp", "")
        self.require(req, ts.isdigit() and len(ts) == 13, f"timestamp must be ms: {ts!r}")
        # The query value as sent must be the URL-encoded standard Base64 (%2B %2F %3D).
        raw_sig = req.raw_path.split("signature=", 1)[-1].split("&", 1)[0]
        self.require(req, "+" not in raw_sig and "/" not in raw_sig and "=" not in raw_sig,
                     f"signature not URL-encoded: {raw_sig!r}")
        if req.query.get("signature") != sign(QR_APP_SECRET, ts):
            return 200, {"errcode": 853001, "errmsg": "签名不匹配"}
        if ts.isdigit() and abs(int(ts) / 1000 - time.time()) > 300:
            return 200, {"errcode": 853002, "errmsg": "时间戳过期"}
        status, data = self.use_code(body.get("tmp_auth_code"))
        if status != "ok" or data.get("kind") != "sns":
            return 200, {"errcode": 40078, "errmsg": "不存在的临时授权码"}
        user = USERS[data["user"]]
        return 200, {"errcode": 0, "errmsg": "ok", "user_info": {
            "nick": user.get("profile", {}).get("name", data["user"]),
            "unionid": user["unionid"], "openid": "O-" + data["user"],
            "main_org_auth_high_level": True}}

    @route("GET", "/sso/gettoken")
    def sso_gettoken(self, req: Req):
        self.require_params(req, {"corpid", "corpsecret"}, {"corpid", "corpsecret"})
        if req.query.get("corpid") != CORP_ID or req.query.get("corpsecret") != SSO_SECRET:
            return 200, {"errcode": 40089, "errmsg": "不合法的corpid或corpsecret"}
        return 200, {"errcode": 0, "errmsg": "ok", "access_token": self.issue_token("SSOT")}

    @route("GET", "/sso/getuserinfo")
    def sso_getuserinfo(self, req: Req):
        self.require_params(req, {"access_token", "code"}, {"access_token", "code"})
        err = self.app_token_error(req, prefix="SSOT")
        if err:
            return err
        status, data = self.use_code(req.query.get("code"))
        if status != "ok" or data.get("kind") != "admin":
            return 200, {"errcode": 40029, "errmsg": "invalid code"}
        profile = USERS[data["user"]]["profile"]
        return 200, {"errcode": 0, "errmsg": "ok", "is_sys": data["is_sys"],
                     "corp_info": {"corp_name": "Mock Corp", "corpid": data["corpid"]},
                     "user_info": {"avatar": "", "email": profile.get("email", ""),
                                   "name": profile["name"], "userid": profile["userid"]}}


if __name__ == "__main__":
    serve_forever(DingTalkMock)
