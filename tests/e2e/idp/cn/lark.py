"""Feishu / Lark mock, after `reference/providers.md` §3 (table §3.6).

One server plays accounts.feishu.cn and open.feishu.cn (or the larksuite.com pair).

    POST /open-apis/auth/v3/app_access_token/internal     {app_id, app_secret} -> a-APP<n>
    POST /open-apis/auth/v3/tenant_access_token/internal  {app_id, app_secret} -> t-TEN<n>
    GET  /open-apis/authen/v1/authorize?client_id&response_type=code&redirect_uri&state[&scope]
         (also the legacy /open-apis/authen/v1/index?app_id&redirect_uri&state)
         302 redirect_uri?code=F<n>&state=...    (user: `mock_user`, default zhangsan)
    POST /open-apis/authen/v2/oauth/token   {grant_type, client_id, client_secret, code,
         redirect_uri?}: top-level token JSON; used code -> 400 20065, wrong secret -> 400 20002,
         redirect_uri differing from the authorize request's -> 400 20071, an Authorization
         header as well -> 400 20070; an in-app requestAccess code has no redirect_uri
    POST /open-apis/authen/v1/oidc/access_token  (also /authen/v1/access_token)
         Authorization: Bearer <app_access_token> (a tenant token accepted too), {grant_type,
         code}: `data` wrapper; expired app token -> 99991664
    GET  /open-apis/authen/v1/user_info      Authorization: Bearer u-... -> data (open_id,
         union_id, user_id, email, enterprise_email, mobile, tenant_key, ...); bad -> 20005
    GET  /open-apis/application/v3/is_user_admin?open_id   Bearer t-TEN -> data.is_app_admin
Contact API (Bearer t-TEN; `department_id_type` open_department_id or department_id, ids as
asked; errors as HTTP 4xx with a `code`):
    GET  /open-apis/contact/v3/users/:user_id?user_id_type&department_id_type
         data.user (open_id, union_id, user_id, name, department_ids); unknown: 400 41050
    GET  /open-apis/contact/v3/departments/:department_id?department_id_type&user_id_type
         data.department (name, i18n_name, parent_department_id, department_id,
         open_department_id, leader_user_id, chat_id, order, member_count, status); unknown:
         403 40004
    GET  /open-apis/contact/v3/departments/:department_id/children?department_id_type
         &user_id_type&fetch_child&page_size&page_token
         data.items, data.has_more, data.page_token: the children (every level below with
         fetch_child=true), page_size 1-50 (default 10, else 400 40011), page_token one this
         mock gave for the same listing (else 400 40012); unknown department: 403 40004

Hook: `issue_inapp_code(user, api="requestAccess"|"requestAuthCode")`.
"""

from __future__ import annotations

from .common import MockServer, Req, route, serve_forever

APP_ID = "cli_mock0123456789"
APP_SECRET = "lark-app-secret-0123456789"
TENANT_KEY = "mock-tenant-1"

USERS = {
    "zhangsan": {"tenant_key": TENANT_KEY, "admin": False, "data": {
        "name": "张三", "en_name": "San Zhang", "avatar_url": "", "open_id": "ou_zhangsan",
        "union_id": "on_zhangsan", "user_id": "zhangsan", "email": "zs@personal.example",
        "enterprise_email": "zhangsan@corp.example", "mobile": "+8613800000003",
        "employee_no": "E003"}},
    "boss": {"tenant_key": TENANT_KEY, "admin": True, "data": {
        "name": "老板", "en_name": "Boss", "open_id": "ou_boss", "union_id": "on_boss",
        "user_id": "boss", "enterprise_email": "boss@corp.example", "mobile": "+8613800000004"}},
    "outsider": {"tenant_key": "another-tenant", "admin": False, "data": {
        "name": "Eve", "en_name": "Eve", "open_id": "ou_eve", "union_id": "on_eve",
        "user_id": "eve", "email": "eve@elsewhere.example"}},
}
# open_department_id: (name, parent); the root is "0". 60 teams under 研发部 make the recursive
# listing longer than a page of 50.
DEPARTMENTS = {"od-rd": ("研发部", "0"), "od-data": ("数据组", "od-rd"),
               **{f"od-team{i:02d}": (f"小组{i:02d}", "od-rd") for i in range(60)}}
USER_DEPARTMENTS = {"zhangsan": ["od-data"], "boss": ["od-rd"], "outsider": []}


def department(dept: str, id_type: str) -> dict:
    """A department as the contact API gives it, its ids of the type asked for."""
    name, parent = DEPARTMENTS[dept]

    def ident(d: str) -> str:
        return d if id_type == "open_department_id" or d == "0" else d.replace("od-", "D-")
    return {"name": name, "i18n_name": {"zh_cn": name, "ja_jp": "", "en_us": ""},
            "parent_department_id": ident(parent), "department_id": ident(dept),
            "open_department_id": dept, "leader_user_id": "ou_boss", "chat_id": "oc_mock",
            "order": "100", "unit_ids": [], "member_count": 1, "status": {"is_deleted": False}}


class LarkMock(MockServer):
    name = "lark"
    token_paths = ("/open-apis/auth/v3/app_access_token/internal",
                   "/open-apis/auth/v3/tenant_access_token/internal")

    def on_reset(self) -> None:
        self.user_tokens: dict[str, str] = {}
        self.pages: dict[str, tuple[str, int]] = {}

    def issue_inapp_code(self, user: str = "zhangsan", api: str = "requestAccess") -> str:
        return self.issue_code("A", kind=api, user=user, redirect_uri=None, ttl=180)

    # ---------------------------------------------------------------- helpers

    def bearer(self, req: Req) -> str | None:
        auth = req.header("authorization") or ""
        return auth[7:] if auth.startswith("Bearer ") else None

    @staticmethod
    def err(status: int, code: int, text: str):
        return status, {"code": code, "msg": text, "error": "invalid_grant",
                        "error_description": text}

    def user_token_for(self, user: str) -> str:
        token = self.issue_token("u-", user=user)
        self.user_tokens[token] = user
        return token

    # ---------------------------------------------------------------- app tokens

    def _app_token(self, req: Req, prefix: str, field: str):
        self.require_params(req, set(), set())
        body = self.require_json(req) or {}
        self.require(req, set(body) == {"app_id", "app_secret"}, f"body keys {sorted(body)}")
        if body.get("app_id") != APP_ID or body.get("app_secret") != APP_SECRET:
            return 200, {"code": 10014, "msg": "app secret invalid"}
        return 200, {"code": 0, "msg": "ok", field: self.issue_token(prefix), "expire": 7200}

    @route("POST", "/open-apis/auth/v3/app_access_token/internal")
    def app_access_token(self, req: Req):
        return self._app_token(req, "a-APP", "app_access_token")

    @route("POST", "/open-apis/auth/v3/tenant_access_token/internal")
    def tenant_access_token(self, req: Req):
        return self._app_token(req, "t-TEN", "tenant_access_token")

    # ---------------------------------------------------------------- browser pages

    def _authorize(self, req: Req, client_key: str, names: set[str]):
        optional = {"scope", "code_challenge", "code_challenge_method", "mock_user"}
        self.require_params(req, names | optional, names)
        self.require(req, req.query.get(client_key) == APP_ID, f"{client_key} must be the App ID")
        user = req.query.get("mock_user", "zhangsan")
        code = self.issue_code("F", kind="web", user=user, redirect_uri=req.query["redirect_uri"])
        return 302, self.redirect_back(req.query["redirect_uri"],
                                       {"code": code, "state": req.query.get("state", "")})

    @route("GET", "/open-apis/authen/v1/authorize")
    def authorize(self, req: Req):
        self.require(req, req.query.get("response_type") == "code", "response_type must be code")
        return self._authorize(req, "client_id",
                               {"client_id", "response_type", "redirect_uri", "state"})

    @route("GET", "/open-apis/authen/v1/index")
    def legacy_index(self, req: Req):
        return self._authorize(req, "app_id", {"app_id", "redirect_uri", "state"})

    # ---------------------------------------------------------------- code exchange

    @route("POST", "/open-apis/authen/v2/oauth/token")
    def v2_token(self, req: Req):
        self.require_params(req, set(), set())
        body = self.require_json(req) or {}
        allowed = {"grant_type", "client_id", "client_secret", "code", "redirect_uri",
                   "code_verifier"}
        self.require(req, set(body) <= allowed, f"body keys {sorted(body)}")
        if req.header("authorization"):
            return self.err(400, 20070, "both Authorization and client_secret")
        if body.get("grant_type") != "authorization_code":
            return self.err(400, 20036, "grant_type")
        if body.get("client_id") != APP_ID or body.get("client_secret") != APP_SECRET:
            return self.err(400, 20002, "client secret invalid")
        status, data = self.use_code(body.get("code"))
        if status == "used":
            return self.err(400, 20065, "authorization code has been used")
        if status != "ok" or data["kind"] not in ("web", "requestAccess"):
            return self.err(400, 20003, "authorization code not found")
        if data["redirect_uri"] != body.get("redirect_uri"):
            return self.err(400, 20071, "redirect_uri mismatch")
        return 200, {"code": 0, "access_token": self.user_token_for(data["user"]),
                     "expires_in": 7200, "token_type": "Bearer", "scope": ""}

    def _v1_token(self, req: Req, with_user: bool):
        self.require_params(req, set(), set())
        body = self.require_json(req) or {}
        self.require(req, set(body) == {"grant_type", "code"}, f"body keys {sorted(body)}")
        token = self.bearer(req)
        self.require(req, token is not None, "Authorization: Bearer <app_access_token> missing")
        state = self.token_state(token)
        if state != "ok" or not (token or "").startswith(("a-APP", "t-TEN")):
            return 200, {"code": 99991664, "msg": "app access token invalid"}
        status, data = self.use_code(body.get("code"))
        if status != "ok" or data["kind"] != "requestAuthCode":
            return 200, {"code": 20003, "msg": "invalid code"}
        out = {"access_token": self.user_token_for(data["user"]), "token_type": "Bearer",
               "expires_in": 7200, "refresh_token": "ur-mock", "refresh_expires_in": 2592000,
               "scope": ""}
        if with_user:
            out.update(USERS[data["user"]]["data"], tenant_key=USERS[data["user"]]["tenant_key"])
        return 200, {"code": 0, "msg": "success", "data": out}

    @route("POST", "/open-apis/authen/v1/oidc/access_token")
    def oidc_access_token(self, req: Req):
        return self._v1_token(req, with_user=False)

    @route("POST", "/open-apis/authen/v1/access_token")
    def old_access_token(self, req: Req):
        return self._v1_token(req, with_user=True)

    @route("GET", "/open-apis/authen/v1/user_info")
    def user_info(self, req: Req):
        self.require_params(req, set(), set())
        token = self.bearer(req)
        who = self.user_tokens.get(token or "")
        if who is None or self.token_state(token) != "ok":
            return 401, {"code": 20005, "msg": "invalid user access token"}
        user = USERS[who]
        return 200, {"code": 0, "msg": "success",
                     "data": dict(user["data"], tenant_key=user["tenant_key"])}

    @route("GET", "/open-apis/application/v3/is_user_admin")
    def is_user_admin(self, req: Req):
        self.require_params(req, {"open_id"}, {"open_id"})
        token = self.bearer(req)
        if self.token_state(token) != "ok" or not (token or "").startswith("t-TEN"):
            self.require(req, (token or "").startswith("t-TEN") or self.token_state(token) != "ok",
                         "is_user_admin needs the tenant access token")
            return 200, {"code": 99991663, "msg": "tenant access token invalid"}
        for user in USERS.values():
            if user["data"]["open_id"] == req.query.get("open_id"):
                return 200, {"code": 0, "msg": "ok", "data": {"is_app_admin": user["admin"]}}
        return 200, {"code": 0, "msg": "ok", "data": {"is_app_admin": False}}

    # ---------------------------------------------------------------- contact API

    def contact(self, req: Req, names: set[str]) -> tuple[str, tuple | None]:
        """Checks a contact call: its parameters, the tenant token; the id type asked for."""
        self.require_params(req, names | {"user_id_type", "department_id_type"}, set())
        id_type = req.query.get("department_id_type", "open_department_id")
        self.require(req, id_type in ("open_department_id", "department_id"), "department_id_type")
        token = self.bearer(req) or ""
        if self.token_state(token) == "ok" and not token.startswith("t-TEN"):
            self.violation(req, "the contact API needs the tenant access token")
        if self.token_state(token) != "ok" or not token.startswith("t-TEN"):
            return id_type, (400, {"code": 99991663, "msg": "tenant access token invalid"})
        return id_type, None

    @staticmethod
    def dept_of(raw: str, id_type: str) -> str | None:
        dept = raw if id_type == "open_department_id" else raw.replace("D-", "od-", 1)
        return dept if dept == "0" or dept in DEPARTMENTS else None

    @route("GET", "/open-apis/contact/v3/users/:user_id")
    def contact_user(self, req: Req):
        id_type, err = self.contact(req, set())
        if err:
            return err
        key = {"open_id": "open_id", "union_id": "union_id",
               "user_id": "user_id"}.get(req.query.get("user_id_type", "open_id"))
        for who, user in USERS.items():
            if key and user["data"].get(key) == req.params["user_id"]:
                data = user["data"]
                depts = [d if id_type == "open_department_id" else d.replace("od-", "D-")
                         for d in USER_DEPARTMENTS[who]]
                return 200, {"code": 0, "msg": "success", "data": {"user": {
                    "open_id": data["open_id"], "union_id": data["union_id"],
                    "user_id": data["user_id"], "name": data["name"],
                    "department_ids": depts, "status": {"is_activated": True}}}}
        return 400, {"code": 41050, "msg": "no user authority error"}

    @route("GET", "/open-apis/contact/v3/departments/:department_id")
    def contact_department(self, req: Req):
        id_type, err = self.contact(req, set())
        if err:
            return err
        dept = self.dept_of(req.params["department_id"], id_type)
        if dept is None or dept == "0":
            return 403, {"code": 40004, "msg": "no dept authority error"}
        return 200, {"code": 0, "msg": "success",
                     "data": {"department": department(dept, id_type)}}

    @route("GET", "/open-apis/contact/v3/departments/:department_id/children")
    def contact_children(self, req: Req):
        id_type, err = self.contact(req, {"fetch_child", "page_size", "page_token"})
        if err:
            return err
        top = self.dept_of(req.params["department_id"], id_type)
        if top is None:
            return 403, {"code": 40004, "msg": "no dept authority error"}
        size = req.query.get("page_size", "10")
        if not size.isdigit() or not 1 <= int(size) <= 50:
            return 400, {"code": 40011, "msg": "page size is invalid"}
        listing = f"{top}:{req.query.get('fetch_child', 'false')}:{id_type}"
        start = 0
        if "page_token" in req.query:
            got = self.pages.get(req.query["page_token"])
            if got is None or got[0] != listing:
                return 400, {"code": 40012, "msg": "page token is invalid error"}
            start = got[1]
        deep = req.query.get("fetch_child") == "true"

        def below(dept: str) -> bool:
            parent = DEPARTMENTS[dept][1]
            return parent == top or (deep and parent != "0" and below(parent))
        items = [department(d, id_type) for d in DEPARTMENTS if below(d)]
        page = items[start:start + int(size)]
        more = start + int(size) < len(items)
        data = {"has_more": more, "items": page}
        if more:
            token = f"PT{self.next_serial()}"
            self.pages[token] = (listing, start + int(size))
            data["page_token"] = token
        return 200, {"code": 0, "msg": "success", "data": data}


if __name__ == "__main__":
    serve_forever(LarkMock)
