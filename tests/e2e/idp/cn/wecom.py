"""WeCom (Enterprise WeChat) mock, after `reference/providers.md` §2.

One server plays all three hosts (qyapi.weixin.qq.com, open.weixin.qq.com,
login.work.weixin.qq.com): the paths do not overlap.

    GET  /cgi-bin/gettoken?corpid&corpsecret            app token (7200 s); bad -> 40001
    GET  /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state&agentid
    GET  /wwlogin/sso/login?login_type=CorpApp&appid&agentid&redirect_uri&state[&lang]
         both 302 to redirect_uri?code=W<n>&state=... ; the scanning user is `mock_user`
         (a test-only parameter the test appends; default zhangsan)
    GET  /cgi-bin/auth/getuserinfo?access_token&code    member: userid (+ user_ticket with
         snsapi_privateinfo); non-member: openid + external_userid; used/unknown code: 40029;
         expired token 42001, unknown token 40014
    GET  /cgi-bin/user/getuserinfo?access_token&code    the legacy shape (`UserId`, `DeviceId`)
    POST /cgi-bin/auth/getuserdetail?access_token       JSON {"user_ticket"} -> mobile, email...
    GET  /cgi-bin/user/get?access_token&userid          full profile with extattr: one type-0
         (text) attribute, one type-1 (web) attribute and one legacy `value` element
    GET  /cgi-bin/department/list?access_token[&id]     every department under `id` (with it),
         or all: id, name, name_en, department_leader, parentid, order (root 1, parentid 0)
    GET  /cgi-bin/department/get?access_token&id        one department; unknown id: 60123

Checks (violations): exact parameter sets, methods, JSON content type, the alphanumeric
`state` (<= 128), `response_type=code`, a known scope, `login_type=CorpApp`, the agent id.
"""

from __future__ import annotations

import time

from .common import ALNUM_STATE, MockServer, Req, route, serve_forever

CORP_ID = "ww-mock-corp"
AGENT_ID = "1000002"
SECRET = "wecom-corp-secret-0123456789"

USERS = {
    "zhangsan": {
        "member": True,
        "profile": {
            "userid": "zhangsan", "name": "张三", "alias": "San Zhang", "department": [1, 3],
            "main_department": 3,
            "order": [0, 0], "position": "数据分析师", "mobile": "", "gender": "1", "email": "",
            "biz_mail": "zhangsan@corp.example", "is_leader_in_dept": [0, 0], "avatar": "",
            "telephone": "", "main_department": 3, "status": 1,
            "extattr": {"attrs": [
                {"type": 0, "name": "角色", "text": {"value": "data analyst"}},
                {"type": 1, "name": "主页", "web": {"url": "http://www.example.com", "title": "主页"}},
                {"name": "邮箱", "value": "san.zhang@ext.example"},
            ]},
        },
        "detail": {"mobile": "13800000001", "email": "zhangsan@corp.example", "gender": "1",
                   "biz_mail": "zhangsan@corp.example", "avatar": "", "address": ""},
    },
    "lisi": {
        "member": True,
        "profile": {"userid": "lisi", "name": "李四", "department": [2], "status": 5},
        "detail": {},
    },
    "outsider": {"member": False},
}
# id: (name, parentid); the root is 1 (its parentid 0), as WeCom numbers it.
DEPARTMENTS = {1: ("Mock Corp", 0), 2: ("研发部", 1), 3: ("数据组", 2)}


def department(dept: int) -> dict:
    name, parent = DEPARTMENTS[dept]
    return {"id": dept, "name": name, "name_en": "", "department_leader": [], "parentid": parent,
            "order": 100000000 - dept}


class WecomMock(MockServer):
    name = "wecom"
    token_paths = ("/cgi-bin/gettoken",)

    def on_reset(self) -> None:
        self.tickets: dict[str, str] = {}

    # ---------------------------------------------------------------- app token

    @route("GET", "/cgi-bin/gettoken")
    def gettoken(self, req: Req):
        self.require_params(req, {"corpid", "corpsecret"}, {"corpid", "corpsecret"})
        if req.query.get("corpid") != CORP_ID or req.query.get("corpsecret") != SECRET:
            return 200, {"errcode": 40001, "errmsg": "invalid credential"}
        return 200, {"errcode": 0, "errmsg": "ok",
                     "access_token": self.issue_token("WT"), "expires_in": 7200}

    def token_error(self, req: Req):
        state = self.token_state(req.query.get("access_token"))
        if state == "expired":
            return 200, {"errcode": 42001, "errmsg": "access_token expired"}
        if state == "unknown":
            return 200, {"errcode": 40014, "errmsg": "invalid access_token"}
        return None

    # ---------------------------------------------------------------- browser pages

    def _authorize(self, req: Req, scope: str):
        user = req.query.get("mock_user", "zhangsan")
        state = req.query.get("state", "")
        self.require(req, bool(ALNUM_STATE.match(state)), f"state must be [A-Za-z0-9]{{1,128}}: {state!r}")
        self.require(req, req.query.get("appid") == CORP_ID, "appid must be the corp id")
        self.require(req, req.query.get("agentid") == AGENT_ID, "agentid must be the agent id")
        code = self.issue_code("W", user=user, scope=scope)
        return 302, self.redirect_back(req.query["redirect_uri"], {"code": code, "state": state})

    @route("GET", "/connect/oauth2/authorize")
    def oauth2_authorize(self, req: Req):
        names = {"appid", "redirect_uri", "response_type", "scope", "state", "agentid"}
        self.require_params(req, names | {"mock_user"}, names)
        order = [k for k, _ in req.query_list if k != "mock_user"]
        self.require(req, order == ["appid", "redirect_uri", "response_type", "scope", "state",
                                    "agentid"], f"parameter order {order}")
        self.require(req, req.query.get("response_type") == "code", "response_type must be code")
        scope = req.query.get("scope", "")
        self.require(req, scope in ("snsapi_base", "snsapi_privateinfo"), f"scope {scope!r}")
        return self._authorize(req, scope)

    @route("GET", "/wwlogin/sso/login")
    def sso_login(self, req: Req):
        names = {"login_type", "appid", "agentid", "redirect_uri", "state"}
        self.require_params(req, names | {"lang", "mock_user"}, names)
        self.require(req, req.query.get("login_type") == "CorpApp", "login_type must be CorpApp")
        return self._authorize(req, "snsapi_base")

    # ---------------------------------------------------------------- code exchange

    def _userinfo(self, req: Req, legacy: bool):
        self.require_params(req, {"access_token", "code"}, {"access_token", "code"})
        err = self.token_error(req)
        if err:
            return err
        status, data = self.use_code(req.query.get("code"))
        if status != "ok":
            return 200, {"errcode": 40029, "errmsg": "invalid code"}
        user = USERS.get(data["user"])
        if user is None or not user["member"]:
            key = "OpenId" if legacy else "openid"
            return 200, {"errcode": 0, "errmsg": "ok", key: "o-" + data["user"],
                         "external_userid": "wm-" + data["user"]}
        uid = user["profile"]["userid"]
        body = {"errcode": 0, "errmsg": "ok"}
        if legacy:
            body.update({"UserId": uid, "DeviceId": "dev-1"})
        else:
            body["userid"] = uid
        if data["scope"] == "snsapi_privateinfo":
            ticket = f"UT{self.next_serial()}"
            self.tickets[ticket] = data["user"]
            body.update({"user_ticket": ticket, "expires_in": 1800})
        return 200, body

    @route("GET", "/cgi-bin/auth/getuserinfo")
    def auth_getuserinfo(self, req: Req):
        return self._userinfo(req, legacy=False)

    @route("GET", "/cgi-bin/user/getuserinfo")
    def legacy_getuserinfo(self, req: Req):
        return self._userinfo(req, legacy=True)

    @route("POST", "/cgi-bin/auth/getuserdetail")
    def getuserdetail(self, req: Req):
        self.require_params(req, {"access_token"}, {"access_token"})
        body = self.require_json(req) or {}
        self.require(req, set(body) == {"user_ticket"}, f"body keys {sorted(body)}")
        err = self.token_error(req)
        if err:
            return err
        who = self.tickets.get(body.get("user_ticket", ""))
        if who is None:
            return 200, {"errcode": 40029, "errmsg": "invalid user_ticket"}
        user = USERS[who]
        return 200, {"errcode": 0, "errmsg": "ok", "userid": user["profile"]["userid"],
                     **user["detail"]}

    @route("GET", "/cgi-bin/user/get")
    def user_get(self, req: Req):
        self.require_params(req, {"access_token", "userid"}, {"access_token", "userid"})
        err = self.token_error(req)
        if err:
            return err
        for user in USERS.values():
            if user.get("profile", {}).get("userid") == req.query.get("userid"):
                return 200, {"errcode": 0, "errmsg": "ok", **user["profile"]}
        return 200, {"errcode": 60111, "errmsg": "userid not found"}

    # ---------------------------------------------------------------- departments

    @route("GET", "/cgi-bin/department/list")
    def department_list(self, req: Req):
        self.require_params(req, {"access_token", "id"}, {"access_token"})
        err = self.token_error(req)
        if err:
            return err
        top = req.query.get("id")
        if top is not None and (not top.isdigit() or int(top) not in DEPARTMENTS):
            return 200, {"errcode": 60123, "errmsg": "invalid party id"}

        def under(dept: int) -> bool:
            while dept:
                if top is None or dept == int(top):
                    return True
                dept = DEPARTMENTS[dept][1]
            return False
        return 200, {"errcode": 0, "errmsg": "ok",
                     "department": [department(d) for d in DEPARTMENTS if under(d)]}

    @route("GET", "/cgi-bin/department/get")
    def department_get(self, req: Req):
        self.require_params(req, {"access_token", "id"}, {"access_token", "id"})
        err = self.token_error(req)
        if err:
            return err
        dept = req.query.get("id", "")
        if not dept.isdigit() or int(dept) not in DEPARTMENTS:
            return 200, {"errcode": 60123, "errmsg": "invalid party id"}
        return 200, {"errcode": 0, "errmsg": "ok", "department": department(int(dept))}


if __name__ == "__main__":
    serve_forever(WecomMock)
