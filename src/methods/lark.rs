//! `type: lark`: Feishu (飞书) and Lark self-built app login (`reference/providers.md` §3).
//!
//! `larkLoginType` (the seeds' parameter) picks the road:
//!
//! - **`desktop`** (the app's desktop homepage; also the default in a plain browser, where the
//!   provider shows its QR page): 302 to `accounts.feishu.cn/open-apis/authen/v1/authorize`,
//!   back to `/lark/callback` with a code, redeemed at `authen/v2/oauth/token` with the client
//!   secret, then `authen/v1/user_info` with the user token;
//! - **`app`** (the mobile homepage, or a Feishu/Lark client's `User-Agent`): a page that calls
//!   the JSAPI `tt.requestAccess` (falling back to `tt.requestAuthCode`) and posts the code; a
//!   `requestAccess` code is redeemed like the web one (without `redirect_uri`), a
//!   `requestAuthCode` code at `authen/v1/oidc/access_token` with the cached app access token;
//! - **`larkAdminBackend`** (the admin-console homepage): the web login, then
//!   `application/v3/is_user_admin` with the cached tenant access token; only app admins pass.
//!
//! The user's `tenant_key` must be the configured one (security.md G1). With
//! `org_from_departments`, the user's department path follows (`departments.rs`).

mod departments;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::deny::Deny;
use crate::error::ConfigError;
use crate::http::{Callout, CalloutResponse, Query};
use crate::idp::{json_body, CodeKind, IdpFailure, ProviderCode, MAX_SMALL_BODY};
use crate::mapping::RawMapping;
use crate::methods::cn::org::{self, OrgSync, TreeSource};
use crate::methods::cn::{
    self, text_field, Answer, ApiBase, Begin, Entry, Fetched, JsPage, Provider, Secret, TokenKind,
};
use departments::{department, user_departments};

/// Login variant: web OAuth (desktop homepage, browsers).
pub const DESKTOP: &str = "desktop";
/// Login variant: in-app JSAPI code (mobile homepage).
pub const APP: &str = "app";
/// Login variant: from the admin console; app admins only.
pub const ADMIN: &str = "larkAdminBackend";

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLark {
    app_id: String,
    app_secret: Secret,
    #[serde(default)]
    region: Region,
    #[serde(default)]
    tenant_key: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    default_login: DefaultLogin,
    #[serde(default = "default_login_param")]
    login_type_param: String,
    #[serde(default)]
    org_from_departments: bool,
    #[serde(default)]
    sync_minutes: Option<u64>,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default = "default_callback")]
    callback_path: String,
    #[serde(default = "default_jsapi")]
    jsapi_url: String,
    #[serde(default)]
    accounts_base: Option<String>,
    #[serde(default)]
    open_base: Option<String>,
    #[serde(default = "cn::default_timeout")]
    timeout_ms: u64,
}

cn::text_defaults! {
    default_login_param = "larkLoginType";
    default_callback = "/lark/callback";
    default_jsapi = "https://lf1-cdn-tos.bytegoofy.com/goofy/lark/op/h5-js-sdk-1.5.30.js";
}

/// Which cloud: Feishu (China) or Lark (global).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// `open.feishu.cn`, `accounts.feishu.cn`.
    #[default]
    Feishu,
    /// `open.larksuite.com`, `accounts.larksuite.com`.
    Lark,
}

/// The login used when neither the URL nor the `User-Agent` decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultLogin {
    /// Web OAuth.
    #[default]
    Desktop,
    /// In-app JSAPI code.
    App,
}

/// A configured Feishu / Lark method.
#[derive(Debug)]
pub struct Lark {
    app_id: String,
    app_secret: Secret,
    region: Region,
    tenant_key: Option<String>,
    scope: String,
    default_login: DefaultLogin,
    login_type_param: String,
    org_from_departments: bool,
    sync: Option<OrgSync>,
    organization: Option<String>,
    callback_path: String,
    jsapi_url: String,
    accounts: ApiBase,
    open: ApiBase,
    timeout_ms: u64,
}

/// What a Feishu / Lark login waits for.
#[derive(Debug)]
pub enum Step {
    /// `authen/v2/oauth/token`: the code (web, or `requestAccess`) becomes a user token.
    ExpectUserToken {
        /// The code (single use).
        code: Secret,
        /// The `redirect_uri` of the authorization request (web logins only).
        redirect_uri: Option<String>,
        /// Whether the login must be an app admin's.
        admin: bool,
    },
    /// `authen/v1/oidc/access_token` with the app token: a `requestAuthCode` code.
    ExpectOidcToken {
        /// The code.
        code: Secret,
    },
    /// `authen/v1/user_info` with the user token.
    ExpectUserInfo {
        /// The user access token.
        user_token: Secret,
        /// Whether the login must be an app admin's.
        admin: bool,
    },
    /// `application/v3/is_user_admin` with the tenant token.
    ExpectAdminCheck {
        /// The user's `open_id`.
        open_id: String,
        /// Claims so far.
        claims: Map<String, Value>,
    },
    /// `contact/v3/users/:open_id` with the tenant token: the user's departments.
    ExpectUserDepartments {
        /// The user's `open_id`.
        open_id: String,
        /// Claims so far.
        claims: Map<String, Value>,
    },
    /// `contact/v3/departments/:id` with the tenant token: one department of the path.
    ExpectDepartment {
        /// The department (`open_department_id`).
        id: String,
        /// Names so far, the user's department first.
        names: Vec<String>,
        /// Claims so far.
        claims: Map<String, Value>,
    },
}

impl Lark {
    /// Parses the method's configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawLark, at: &str) -> Result<Self, ConfigError> {
        let here = |f: &str| format!("{at}.{f}");
        cn::require_id(&raw.app_id, &here("app_id"))?;
        cn::require_secret(&raw.app_secret, &here("app_secret"))?;
        if let Some(t) = &raw.tenant_key {
            cn::require_id(t, &here("tenant_key"))?;
        }
        cn::check_callback_path(&Some(raw.callback_path.clone()), &here("callback_path"))?;
        cn::check_timeout(raw.timeout_ms, &here("timeout_ms"))?;
        let jsapi = url::Url::parse(&raw.jsapi_url).map_err(|e| ConfigError {
            path: here("jsapi_url"),
            reason: format!("not an absolute URL: {e}"),
        })?;
        let scope = raw.scope.unwrap_or_default();
        if scope.split(' ').count() > 50 || scope.chars().any(char::is_control) {
            return Err(ConfigError {
                path: here("scope"),
                reason: "at most 50 space-separated scopes".into(),
            });
        }
        let sync = org::sync_of(
            raw.org_from_departments,
            raw.sync_minutes,
            &here("sync_minutes"),
            || cn::org_key("lark", &raw.app_id, &raw.app_secret),
        )?;
        let (accounts, open) = match raw.region {
            Region::Feishu => ("https://accounts.feishu.cn", "https://open.feishu.cn"),
            Region::Lark => (
                "https://accounts.larksuite.com",
                "https://open.larksuite.com",
            ),
        };
        Ok(Lark {
            app_id: raw.app_id,
            app_secret: raw.app_secret,
            region: raw.region,
            tenant_key: raw.tenant_key,
            scope,
            default_login: raw.default_login,
            login_type_param: raw.login_type_param,
            org_from_departments: raw.org_from_departments,
            sync,
            organization: raw.organization,
            callback_path: raw.callback_path,
            jsapi_url: jsapi.to_string(),
            accounts: ApiBase::parse(
                raw.accounts_base.as_deref().unwrap_or(accounts),
                &here("accounts_base"),
            )?,
            open: ApiBase::parse(raw.open_base.as_deref().unwrap_or(open), &here("open_base"))?,
            timeout_ms: raw.timeout_ms,
        })
    }

    fn label(&self) -> &'static str {
        match self.region {
            Region::Feishu => "Feishu",
            Region::Lark => "Lark",
        }
    }

    fn failure(&self, code: i64, kind: CodeKind) -> IdpFailure {
        IdpFailure::Code(ProviderCode {
            provider: self.label(),
            code: code.to_string(),
            kind,
        })
    }

    /// Judges a Feishu answer: a JSON object whose `code` is 0 (HTTP 200), or an error `code`
    /// (in HTTP 200 or 4xx/5xx alike).
    fn body(
        &self,
        response: &CalloutResponse,
        classify: fn(i64) -> CodeKind,
    ) -> Result<Map<String, Value>, IdpFailure> {
        self.body_within(response, classify, MAX_SMALL_BODY)
    }

    /// [`Lark::body`] for answers up to `limit` bytes (a department list).
    fn body_within(
        &self,
        response: &CalloutResponse,
        classify: fn(i64) -> CodeKind,
        limit: usize,
    ) -> Result<Map<String, Value>, IdpFailure> {
        let body = json_body(response, limit)?;
        let code = match body.get("code") {
            None => None,
            Some(Value::Number(n)) => Some(n.as_i64().unwrap_or(-1)),
            Some(_) => Some(-1),
        };
        match code {
            Some(0) if response.status == Some(200) => Ok(body),
            Some(0) | None => Err(IdpFailure::BadAnswer("status")),
            Some(c) => {
                let text = text_field(&body, "error_description")
                    .or_else(|| text_field(&body, "msg"))
                    .unwrap_or("");
                log::warn!(
                    "sso-filter: {} error code={c} msg={}",
                    self.label(),
                    crate::deny::sanitize(text)
                );
                Err(self.failure(c, classify(c)))
            }
        }
    }

    fn with_bearer(mut callout: Callout, token: &str) -> Callout {
        callout
            .headers
            .push(("authorization".into(), format!("Bearer {token}")));
        callout
    }
}

/// What Feishu's codes mean (providers.md §3.1-§3.3).
fn classify(code: i64) -> CodeKind {
    match code {
        99_991_663 | 99_991_664 | 99_991_661 | 20013 | 20014 => CodeKind::TokenInvalid,
        20003 | 20004 | 20024 | 20049 | 20065 | 20063 => CodeKind::CodeInvalid,
        20008 | 20010 | 20021 | 20022 | 20023 | 20066 => CodeKind::NotMember,
        20001 | 20002 | 20009 | 20027 | 20029 | 20035 | 20036 | 20070 | 20071 | 10003 | 10014 => {
            CodeKind::Misconfigured
        }
        // Contact API: the department or user outside the app's contact range, no parent
        // department permission (the app's 通讯录权限范围).
        40004 | 40014 | 41050 => CodeKind::Misconfigured,
        99_991_400 | 11232 => CodeKind::Throttled,
        _ => CodeKind::Other,
    }
}

fn code_value(value: Option<&str>) -> Option<Secret> {
    value
        .filter(|c| !c.is_empty() && c.len() <= 512)
        .filter(|c| {
            c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        })
        .map(Secret::new)
}

impl Provider for Lark {
    type Step = Step;

    const TYPE: &'static str = "lark";

    const LABEL: &'static str = "Feishu";

    /// The web login (a QR code, or the account's password at Feishu); a method whose default
    /// is the in-app login names it in the button.
    fn offer(&self) -> Option<crate::pages::login::Offer> {
        let login_type = (self.default_login != DefaultLogin::Desktop)
            .then_some((self.login_type_param.as_str(), "qr"));
        let (en, zh) = match self.region {
            Region::Feishu => ("Feishu", "飞书"),
            Region::Lark => ("Lark", "Lark"),
        };
        Some(crate::methods::cn::qr_offer(en, zh, login_type))
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    fn callback_path(&self) -> Option<Option<&str>> {
        Some(Some(&self.callback_path))
    }

    /// Mapping defaults: login `union_id` (the seeds' default), the name in the region's
    /// language first, the enterprise e-mail before the (unverified) contact e-mail.
    fn default_mapping(&self) -> RawMapping {
        let name = match self.region {
            Region::Feishu => "$['name','en_name']",
            Region::Lark => "$['en_name','name']",
        };
        RawMapping::defaults(&[
            ("login", "union_id"),
            ("name", name),
            ("email", "$['enterprise_email','email']"),
            ("phone", "mobile"),
            ("org", "organization"),
        ])
    }

    /// Every URL the method calls out to (for `sso-filter clusters`).
    fn outbound_urls(&self) -> Vec<url::Url> {
        vec![self.open.origin()]
    }

    fn refresh_margin(&self) -> u64 {
        // Within 30 minutes of expiry Feishu hands out a new token (providers.md §3.1).
        1800
    }

    fn choose(&self, entry: &Entry<'_>) -> Result<&'static str, Deny> {
        match entry.param(&self.login_type_param)? {
            Some("desktop" | "web" | "qr") => return Ok(DESKTOP),
            Some("app" | "mobile") => return Ok(APP),
            Some("larkAdminBackend") => return Ok(ADMIN),
            Some(_) => return Err(Deny::BadRequest("login_type")),
            None => {}
        }
        // The clients' browsers say `Lark/<version>` or `Feishu/<version>`.
        if entry.agent_has("lark/") || entry.agent_has("feishu") {
            return Ok(APP);
        }
        Ok(match self.default_login {
            DefaultLogin::Desktop => DESKTOP,
            DefaultLogin::App => APP,
        })
    }

    fn begin(
        &self,
        variant: &str,
        _entry: &Entry<'_>,
        state: &str,
        redirect_uri: &str,
    ) -> Result<Begin, Deny> {
        if variant == APP {
            return Ok(Begin::Page(JsPage {
                title: format!("Signing in with {}", self.label()),
                sdk: Some(self.jsapi_url.clone()),
                config: json!({"appId": self.app_id}),
                script: IN_APP_SCRIPT.into(),
                frame_ancestors: None,
            }));
        }
        let mut query = vec![
            ("client_id", self.app_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("state", state),
        ];
        if !self.scope.is_empty() {
            query.push(("scope", &self.scope));
        }
        let url = self.accounts.url("/open-apis/authen/v1/authorize", &query);
        Ok(Begin::Redirect(url.to_string()))
    }

    fn callback(&self, variant: &str, query: &Query, redirect_uri: &str) -> Result<Step, Deny> {
        let dup = |_| Deny::BadRequest("duplicate_callback_param");
        if let Some(error) = query.single("error").map_err(dup)? {
            log::warn!(
                "sso-filter: {} callback error={}",
                self.label(),
                crate::deny::sanitize(error)
            );
            return Err(Deny::Idp {
                method: String::new(),
                failure: IdpFailure::Refused(error.chars().take(40).collect()),
            });
        }
        let code = code_value(query.single("code").map_err(dup)?).ok_or(Deny::Idp {
            method: String::new(),
            failure: IdpFailure::Refused("no_code".into()),
        })?;
        Ok(Step::ExpectUserToken {
            code,
            redirect_uri: Some(redirect_uri.to_owned()),
            admin: variant == ADMIN,
        })
    }

    fn posted(&self, variant: &str, fields: &Map<String, Value>) -> Result<Step, Deny> {
        if variant != APP {
            return Err(Deny::BadRequest("no_posted_code"));
        }
        let code = code_value(fields.get("code").and_then(Value::as_str))
            .ok_or(Deny::BadRequest("no_code"))?;
        match fields.get("api").and_then(Value::as_str) {
            Some("requestAuthCode") => Ok(Step::ExpectOidcToken { code }),
            Some("requestAccess") | None => Ok(Step::ExpectUserToken {
                code,
                redirect_uri: None,
                admin: false,
            }),
            Some(_) => Err(Deny::BadRequest("code_api")),
        }
    }

    fn token_for(&self, step: &Step) -> Option<TokenKind> {
        match step {
            Step::ExpectOidcToken { .. } => Some(TokenKind::App),
            Step::ExpectAdminCheck { .. }
            | Step::ExpectUserDepartments { .. }
            | Step::ExpectDepartment { .. } => Some(TokenKind::Tenant),
            Step::ExpectUserToken { .. } | Step::ExpectUserInfo { .. } => None,
        }
    }

    fn token_key(&self, kind: TokenKind) -> String {
        cn::token_key("lark", kind, &self.app_id, &self.app_secret)
    }

    fn token_request(&self, kind: TokenKind, _now_ms: u64) -> Callout {
        let path = match kind {
            TokenKind::Tenant => "/open-apis/auth/v3/tenant_access_token/internal",
            TokenKind::App | TokenKind::AdminSso => "/open-apis/auth/v3/app_access_token/internal",
        };
        cn::post_json(
            self.open.url(path, &[]),
            &json!({"app_id": self.app_id, "app_secret": self.app_secret.expose()}),
            self.timeout_ms,
        )
    }

    fn token_answer(
        &self,
        kind: TokenKind,
        response: &CalloutResponse,
    ) -> Result<Fetched, IdpFailure> {
        let body = self.body(response, |c| match classify(c) {
            CodeKind::TokenInvalid | CodeKind::CodeInvalid => CodeKind::Misconfigured,
            other => other,
        })?;
        let field = match kind {
            TokenKind::Tenant => "tenant_access_token",
            TokenKind::App | TokenKind::AdminSso => "app_access_token",
        };
        Fetched::from_body(&body, field, "expire", 7200)
    }

    fn request(&self, step: &Step, token: Option<&str>, _now_ms: u64) -> Callout {
        let token = token.unwrap_or_default();
        match step {
            Step::ExpectUserToken {
                code, redirect_uri, ..
            } => {
                let mut body = json!({
                    "grant_type": "authorization_code",
                    "client_id": self.app_id,
                    "client_secret": self.app_secret.expose(),
                    "code": code.expose(),
                });
                if let (Some(uri), Some(map)) = (redirect_uri, body.as_object_mut()) {
                    map.insert("redirect_uri".into(), json!(uri));
                }
                cn::post_json(
                    self.open.url("/open-apis/authen/v2/oauth/token", &[]),
                    &body,
                    self.timeout_ms,
                )
            }
            Step::ExpectOidcToken { code } => Self::with_bearer(
                cn::post_json(
                    self.open.url("/open-apis/authen/v1/oidc/access_token", &[]),
                    &json!({"grant_type": "authorization_code", "code": code.expose()}),
                    self.timeout_ms,
                ),
                token,
            ),
            Step::ExpectUserInfo { user_token, .. } => Self::with_bearer(
                cn::get(
                    self.open.url("/open-apis/authen/v1/user_info", &[]),
                    self.timeout_ms,
                ),
                user_token.expose(),
            ),
            Step::ExpectAdminCheck { open_id, .. } => Self::with_bearer(
                cn::get(
                    self.open.url(
                        "/open-apis/application/v3/is_user_admin",
                        &[("open_id", open_id)],
                    ),
                    self.timeout_ms,
                ),
                token,
            ),
            Step::ExpectUserDepartments { open_id, .. } => self.user_request(open_id, token),
            Step::ExpectDepartment { id, .. } => self.department_request(id, token),
        }
    }

    fn org_sync(&self) -> Option<(&OrgSync, &dyn TreeSource)> {
        self.sync.as_ref().map(|s| (s, self as &dyn TreeSource))
    }

    /// The first department of the path settles from the synced tree when it knows it.
    fn department_walk<'s>(&self, step: &'s Step) -> Option<org::DepartmentWalk<'s>> {
        match step {
            Step::ExpectDepartment { id, names, claims } => {
                Some((id.as_str(), names.as_slice(), departments::ROOT, claims))
            }
            _ => None,
        }
    }

    fn answer(&self, step: Step, response: &CalloutResponse) -> Result<Answer<Step>, IdpFailure> {
        let app_token_step = self.token_for(&step).is_some();
        let body = match self.body(response, classify) {
            Ok(body) => body,
            Err(failure) if app_token_step && cn::is_token_rejection(&failure) => {
                return Ok(Answer::TokenRejected(step))
            }
            Err(failure) => return Err(failure),
        };
        match step {
            Step::ExpectUserToken { admin, .. } => {
                // The v2 endpoint answers at the top level, no `data` wrapper.
                let token = text_field(&body, "access_token")
                    .filter(|t| t.len() <= 4096)
                    .ok_or(IdpFailure::BadAnswer("no_access_token"))?;
                Ok(Answer::Next(Step::ExpectUserInfo {
                    user_token: Secret::new(token),
                    admin,
                }))
            }
            Step::ExpectOidcToken { .. } => {
                let token = body
                    .get("data")
                    .and_then(Value::as_object)
                    .and_then(|d| text_field(d, "access_token"))
                    .filter(|t| t.len() <= 4096)
                    .ok_or(IdpFailure::BadAnswer("no_access_token"))?;
                Ok(Answer::Next(Step::ExpectUserInfo {
                    user_token: Secret::new(token),
                    admin: false,
                }))
            }
            Step::ExpectUserInfo { admin, .. } => self.user_info(admin, &body),
            Step::ExpectAdminCheck { mut claims, .. } => {
                let is_admin = body
                    .get("data")
                    .and_then(|d| d.get("is_app_admin"))
                    .and_then(Value::as_bool);
                if is_admin != Some(true) {
                    return Err(IdpFailure::NotMember {
                        provider: self.label(),
                        why: "not_app_admin",
                    });
                }
                claims.insert("is_app_admin".into(), json!(true));
                self.profile_done(claims)
            }
            Step::ExpectUserDepartments { claims, .. } => user_departments(claims, &body),
            Step::ExpectDepartment { names, claims, .. } => department(names, claims, &body),
        }
    }
}

impl Lark {
    /// `authen/v1/user_info`: the user of this tenant, then the admin check or the
    /// department path, or the end.
    fn user_info(
        &self,
        admin: bool,
        body: &Map<String, Value>,
    ) -> Result<Answer<Step>, IdpFailure> {
        let data = body
            .get("data")
            .and_then(Value::as_object)
            .ok_or(IdpFailure::BadAnswer("no_data"))?;
        if let Some(want) = &self.tenant_key {
            if text_field(data, "tenant_key") != Some(want.as_str()) {
                return Err(IdpFailure::NotMember {
                    provider: self.label(),
                    why: "another_tenant",
                });
            }
        }
        cn::user_id(text_field(data, "union_id")).ok_or(IdpFailure::BadAnswer("no_union_id"))?;
        let mut claims = Map::new();
        for (k, v) in data {
            if k.contains("token") || v.is_null() {
                continue;
            }
            claims.insert(k.clone(), v.clone());
        }
        if let Some(org) = &self.organization {
            claims.insert("organization".into(), json!(org));
        }
        if admin {
            let open_id = cn::user_id(text_field(data, "open_id"))
                .ok_or(IdpFailure::BadAnswer("no_open_id"))?;
            return Ok(Answer::Next(Step::ExpectAdminCheck { open_id, claims }));
        }
        self.profile_done(claims)
    }
}

/// The in-app page's script: `tt.requestAccess` (client 6.9+), else the older
/// `tt.requestAuthCode` (providers.md §3.4).
const IN_APP_SCRIPT: &str = "\
const go=function(){\
if(!window.tt){fail('Open this page in the Feishu / Lark app.');return;}\
const byAuthCode=function(){\
if(typeof tt.requestAuthCode!=='function'){fail('This app version cannot sign in here.');return;}\
tt.requestAuthCode({appId:CFG.appId,\
success:function(r){send({code:r.code,api:'requestAuthCode'});},\
fail:function(e){fail('No sign-in code: '+JSON.stringify(e));}});};\
if(typeof tt.requestAccess==='function'){\
tt.requestAccess({appID:CFG.appId,scopeList:[],\
success:function(r){send({code:r.code,api:'requestAccess'});},\
fail:function(e){if(e&&e.errno===103){byAuthCode();}\
else{fail('No sign-in code: '+JSON.stringify(e));}}});}\
else{byAuthCode();}};\
if(window.h5sdk&&typeof h5sdk.ready==='function'){\
if(typeof h5sdk.error==='function'){h5sdk.error(function(e){fail('Feishu: '+JSON.stringify(e));});}\
h5sdk.ready(go);}else{go();}";

#[cfg(test)]
mod tests {
    use super::*;

    fn lark(extra: Value) -> Lark {
        let mut raw = json!({"app_id": "cli_a", "app_secret": "s"});
        if let (Some(m), Some(e)) = (raw.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        Lark::from_raw(serde_json::from_value(raw).unwrap(), "methods.lark").unwrap()
    }

    #[test]
    fn regions_pick_their_hosts_and_names() {
        let q = Query::parse("");
        let entry = Entry {
            login: &q,
            page: Query::parse(""),
            user_agent: "",
        };
        for (region, host) in [
            ("feishu", "accounts.feishu.cn"),
            ("lark", "accounts.larksuite.com"),
        ] {
            let l = lark(json!({"region": region}));
            let Begin::Redirect(url) = l
                .begin(DESKTOP, &entry, "s", "https://a/lark/callback")
                .unwrap()
            else {
                panic!()
            };
            assert!(url.starts_with(&format!("https://{host}/open-apis/authen/v1/authorize?")));
        }
        assert_eq!(
            Provider::callback_path(&lark(json!({}))),
            Some(Some("/lark/callback"))
        );
        assert_eq!(lark(json!({"region": "lark"})).label(), "Lark");
    }
}
