"""Entra ID (Azure AD) mock for Teams tab SSO, after `reference/providers.md` §6.5.

    GET /{tenant}/discovery/v2.0/keys                       the JWKS (one RSA key, kid, n, e)
    GET /{tenant}/v2.0/.well-known/openid-configuration     pointing at the above

    GET /teams-tab?app=<url>                                a stand-in for the Teams client page:
                                                            it frames the tab at <url>

Hook: `mint(version="1.0"|"2.0", kid=None, key=None, **claims)` returns a Teams SSO token as
`microsoftTeams.authentication.getAuthToken()` would hand it to the tab: an RS256 access token
for the app, v1 (`iss https://sts.windows.net/{tid}/`, `aud api://{domain}/{appId}`, `appid`)
or v2 (`iss https://login.microsoftonline.com/{tid}/v2.0`, `aud {appId}`, `azp`); keyword
arguments replace claims (None removes one).
"""

from __future__ import annotations

import json
import time

from jwcrypto import jwk, jwt

from .common import MockServer, Req, serve_forever

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "0b6f2a54-58a7-4bde-9d4a-2c3b4d5e6f70"
APP_ID_URI_HOST = "app.example.com"
TEAMS_DESKTOP = "1fec8e78-bce4-4aaf-ab1b-5451cc387264"
TEAMS_WEB = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346"

USER = {"oid": "9f3c1a2b-0000-4000-8000-00000000a11c", "name": "Alice Wang",
        "upn": "alice@contoso.example", "email": "alice@contoso.example",
        "roles": ["data.analyst"], "groups": ["g-analytics"]}


class TeamsMock(MockServer):
    name = "entra"

    def __init__(self, *a, **kw):
        self.key = jwk.JWK.generate(kty="RSA", size=2048, kid="entra-k1", use="sig")
        self.other = jwk.JWK.generate(kty="RSA", size=2048, kid="never-published")
        super().__init__(*a, **kw)

    def mint(self, version: str = "1.0", kid: str | None = None, key=None, **changes) -> str:
        now = int(time.time())
        if version == "1.0":
            claims = {"aud": f"api://{APP_ID_URI_HOST}/{CLIENT_ID}",
                      "iss": f"https://sts.windows.net/{TENANT}/", "appid": TEAMS_DESKTOP,
                      "upn": USER["upn"], "unique_name": USER["upn"], "appidacr": "0"}
        else:
            claims = {"aud": CLIENT_ID, "iss": f"https://login.microsoftonline.com/{TENANT}/v2.0",
                      "azp": TEAMS_WEB, "preferred_username": USER["upn"], "azpacr": "0"}
        claims.update({"iat": now, "nbf": now, "exp": now + 3600, "ver": version,
                       "scp": "access_as_user", "tid": TENANT, "oid": USER["oid"],
                       "name": USER["name"], "roles": USER["roles"], "groups": USER["groups"],
                       "aio": "mock", "uti": "mock", "rh": "mock"})
        for k, v in changes.items():
            if v is None:
                claims.pop(k, None)
            else:
                claims[k] = v
        key = key or self.key
        token = jwt.JWT(header={"alg": "RS256", "typ": "JWT", "kid": kid or key.key_id},
                        claims=json.dumps(claims))
        token.make_signed_token(key)
        return token.serialize()

    def keys(self, req: Req):
        self.require_params(req, set(), set())
        return 200, {"keys": [dict(self.key.export_public(as_dict=True), use="sig")]}

    def tab_host(self, req: Req):
        import html
        app = html.escape(req.query.get("app", ""), quote=True)
        page = (f'<!doctype html><title>Microsoft Teams</title><h1>Teams</h1>'
                f'<iframe id="tab" src="{app}" width="900" height="700"></iframe>')
        return 200, page.encode()

    def discovery(self, req: Req):
        base = self.base_url
        return 200, {"issuer": f"https://login.microsoftonline.com/{TENANT}/v2.0",
                     "jwks_uri": f"{base}/{TENANT}/discovery/v2.0/keys",
                     "authorization_endpoint": f"{base}/{TENANT}/oauth2/v2.0/authorize",
                     "token_endpoint": f"{base}/{TENANT}/oauth2/v2.0/token"}


# The routes carry the tenant id, so they are registered here rather than with @route.
TeamsMock.keys._route = ("GET", f"/{TENANT}/discovery/v2.0/keys")
TeamsMock.discovery._route = ("GET", f"/{TENANT}/v2.0/.well-known/openid-configuration")
TeamsMock.tab_host._route = ("GET", "/teams-tab")


if __name__ == "__main__":
    serve_forever(TeamsMock)
