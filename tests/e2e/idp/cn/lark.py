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


class LarkMock(MockServer):
    name = "lark"
    token_paths = ("/open-apis/auth/v3/app_access_token/internal",
                   "/open-apis/auth/v3/tenant_access_token/internal")

    def on_reset(self) -> None:
        self.user_tokens: dict[str, str] = {}

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


if __name__ == "__main__":
    serve_forever(LarkMock)
