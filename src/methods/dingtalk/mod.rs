//! `type: dingtalk`: DingTalk (钉钉) internal-app login (`reference/providers.md` §1).
//!
//! Four ways in, chosen by `dtLoginType` (the seeds' parameter), the `User-Agent` or
//! `default_login`:
//!
//! - **in-app silent login** (`dtLoginType=authCode`, or the DingTalk client): a page served
//!   by the filter calls the JSAPI `dd.requestAuthCode` and posts the code; the filter resolves
//!   it with `topapi/v2/user/getuserinfo` and the app token;
//! - **web QR / account login** (`dtLoginType=qr`): the new `login.dingtalk.com/oauth2/auth`
//!   (`authCode` back, `userAccessToken`, `contact/users/me`), or with `qr_login: "sns"` the
//!   older `connect/qrconnect` and the HMAC-SHA256-signed `sns/getuserinfo_bycode`; either way
//!   the `unionid` becomes the org `userid` with `topapi/user/getbyunionid`, and an account
//!   outside the configured organisation (60121) is refused;
//! - **admin-console login** (`dtLoginType=code&code=...`, CorpId + SSOsecret): the code on the
//!   URL goes to `sso/getuserinfo` with the SSO token; only an admin of the configured corp
//!   passes.
//!
//! Then `topapi/v2/user/get` for the profile, and optionally the department path for `org`
//! (JumpServer/HENGSHI "auto-join organisation"), from the department tree synced on the
//! host's timer when it knows the member's department, else per login (`departments.rs`).

mod answers;
mod departments;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use sha2::Sha256;

use crate::cache::SharedCache;
use crate::deny::Deny;
use crate::error::ConfigError;
use crate::http::{cluster_name, Callout, CalloutResponse, Query};
use crate::idp::{CodeKind, IdpFailure};
use crate::jose::B64STD;
use crate::mapping::RawMapping;
use crate::methods::cn::org::{self, OrgSync, TreeSource};
use crate::methods::cn::{
    self, errcode_body, Answer, ApiBase, Begin, Entry, Fetched, JsPage, Provider, Secret, Settled,
    TokenKind, UrlLogin,
};

/// Login variant: in-app silent login (JSAPI `requestAuthCode`).
pub const IN_APP: &str = "authCode";
/// Login variant: web QR / account login.
pub const QR: &str = "qr";
/// Login variant: admin-console login (a `code` on the URL).
pub const ADMIN: &str = "code";

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDingTalk {
    corp_id: String,
    app_key: String,
    app_secret: Secret,
    #[serde(default)]
    qr_app_id: Option<String>,
    #[serde(default)]
    qr_app_secret: Option<Secret>,
    #[serde(default)]
    sso_secret: Option<Secret>,
    #[serde(default)]
    default_login: DefaultLogin,
    #[serde(default)]
    qr_login: QrLogin,
    #[serde(default = "default_login_param")]
    login_type_param: String,
    #[serde(default)]
    exclusive_login: bool,
    #[serde(default = "cn::default_true")]
    user_details: bool,
    #[serde(default)]
    org_from_departments: bool,
    #[serde(default)]
    sync_minutes: Option<u64>,
    #[serde(default)]
    organization: Option<String>,
    /// The seeds' AgentId: for work notifications (subscriptions, alerts), which login does not
    /// use. Accepted so a pasted configuration loads; ignored.
    #[serde(default)]
    #[allow(dead_code)]
    agent_id: Option<serde_json::Value>,
    #[serde(default)]
    callback_path: Option<String>,
    #[serde(default = "default_jsapi")]
    jsapi_url: String,
    #[serde(default = "default_api_base")]
    api_base: String,
    #[serde(default = "default_oapi_base")]
    oapi_base: String,
    #[serde(default = "default_login_base")]
    login_base: String,
    #[serde(default = "cn::default_timeout")]
    timeout_ms: u64,
}

cn::text_defaults! {
    default_login_param = "dtLoginType";
    default_jsapi = "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js";
    default_api_base = "https://api.dingtalk.com";
    default_oapi_base = "https://oapi.dingtalk.com";
    default_login_base = "https://login.dingtalk.com";
}

/// The login used when neither the URL nor the `User-Agent` decides (the seeds' "登录方式").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum DefaultLogin {
    /// In-app silent login.
    #[default]
    #[serde(rename = "authCode")]
    AuthCode,
    /// Web QR login.
    #[serde(rename = "qr")]
    Qr,
}

/// Which web QR login to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QrLogin {
    /// `login.dingtalk.com/oauth2/auth` with the app's AppKey.
    #[default]
    Oauth2,
    /// `oapi.dingtalk.com/connect/qrconnect` with the login app's appId (signed exchange).
    Sns,
}

/// A configured DingTalk method.
#[derive(Debug)]
pub struct DingTalk {
    corp_id: String,
    app_key: String,
    app_secret: Secret,
    qr_app_id: String,
    qr_app_secret: Secret,
    sso_secret: Option<Secret>,
    default_login: DefaultLogin,
    qr_login: QrLogin,
    login_type_param: String,
    exclusive_login: bool,
    user_details: bool,
    org_from_departments: bool,
    sync: Option<OrgSync>,
    organization: Option<String>,
    callback_path: Option<String>,
    jsapi_url: String,
    api: ApiBase,
    oapi: ApiBase,
    login: ApiBase,
    timeout_ms: u64,
}

/// What a DingTalk login waits for.
#[derive(Debug)]
pub enum Step {
    /// In-app: `topapi/v2/user/getuserinfo` turns the JSAPI code into the member.
    ExpectInAppUser {
        /// The JSAPI code (single use, 5 minutes).
        code: Secret,
    },
    /// Web: `v1.0/oauth2/userAccessToken` redeems the `authCode`.
    ExpectUserToken {
        /// The authorization code.
        code: Secret,
    },
    /// Web: `v1.0/contact/users/me` with the user token.
    ExpectMe {
        /// The user access token.
        user_token: Secret,
    },
    /// Web (sns): the signed `sns/getuserinfo_bycode`.
    ExpectSnsUser {
        /// The temporary auth code.
        code: Secret,
    },
    /// `topapi/user/getbyunionid`: the account's `userid` in this organisation.
    ExpectUserId {
        /// The account's union id.
        unionid: String,
        /// Claims so far.
        claims: Map<String, Value>,
    },
    /// Admin console: `sso/getuserinfo` with the SSO token.
    ExpectAdmin {
        /// The code DingTalk appended to the admin URL.
        code: Secret,
    },
    /// `topapi/v2/user/get`: the member's profile.
    ExpectDetails {
        /// The member.
        userid: String,
        /// Claims so far.
        claims: Map<String, Value>,
    },
    /// `topapi/v2/department/listparentbyuser`: the member's department chain.
    ExpectDeptPath {
        /// The member.
        userid: String,
        /// Claims so far.
        claims: Map<String, Value>,
    },
    /// `topapi/v2/department/get`, one department at a time, up to the root.
    ExpectDeptName {
        /// Departments still to name, the asked one first.
        pending: Vec<u64>,
        /// Names so far, from the member's department upwards.
        names: Vec<String>,
        /// Claims so far.
        claims: Map<String, Value>,
    },
}

impl DingTalk {
    /// Parses the method's configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawDingTalk, at: &str) -> Result<Self, ConfigError> {
        let here = |f: &str| format!("{at}.{f}");
        cn::require_id(&raw.corp_id, &here("corp_id"))?;
        cn::require_id(&raw.app_key, &here("app_key"))?;
        cn::require_secret(&raw.app_secret, &here("app_secret"))?;
        if let Some(s) = &raw.sso_secret {
            cn::require_secret(s, &here("sso_secret"))?;
        }
        let qr_app_id = match &raw.qr_app_id {
            Some(id) => {
                cn::require_id(id, &here("qr_app_id"))?;
                id.clone()
            }
            None => raw.app_key.clone(),
        };
        let qr_app_secret = match (&raw.qr_app_id, raw.qr_app_secret) {
            (Some(_), Some(s)) => {
                cn::require_secret(&s, &here("qr_app_secret"))?;
                s
            }
            (Some(_), None) => {
                return Err(ConfigError {
                    path: here("qr_app_secret"),
                    reason: "required with qr_app_id".into(),
                })
            }
            (None, Some(_)) => {
                return Err(ConfigError {
                    path: here("qr_app_id"),
                    reason: "required with qr_app_secret".into(),
                })
            }
            (None, None) => raw.app_secret.clone(),
        };
        cn::check_callback_path(&raw.callback_path, &here("callback_path"))?;
        cn::check_timeout(raw.timeout_ms, &here("timeout_ms"))?;
        let sync = org::sync_of(
            raw.org_from_departments,
            raw.sync_minutes,
            &here("sync_minutes"),
            || cn::org_key("dingtalk", &raw.app_key, &raw.app_secret),
        )?;
        let jsapi = url::Url::parse(&raw.jsapi_url).map_err(|e| ConfigError {
            path: here("jsapi_url"),
            reason: format!("not an absolute URL: {e}"),
        })?;
        if !matches!(jsapi.scheme(), "http" | "https") {
            return Err(ConfigError {
                path: here("jsapi_url"),
                reason: "must be an http(s) URL".into(),
            });
        }
        Ok(DingTalk {
            corp_id: raw.corp_id,
            app_key: raw.app_key,
            app_secret: raw.app_secret,
            qr_app_id,
            qr_app_secret,
            sso_secret: raw.sso_secret,
            default_login: raw.default_login,
            qr_login: raw.qr_login,
            login_type_param: raw.login_type_param,
            exclusive_login: raw.exclusive_login,
            user_details: raw.user_details,
            org_from_departments: raw.org_from_departments,
            sync,
            organization: raw.organization,
            callback_path: raw.callback_path,
            jsapi_url: jsapi.to_string(),
            api: ApiBase::parse(&raw.api_base, &here("api_base"))?,
            oapi: ApiBase::parse(&raw.oapi_base, &here("oapi_base"))?,
            login: ApiBase::parse(&raw.login_base, &here("login_base"))?,
            timeout_ms: raw.timeout_ms,
        })
    }

    fn oapi_post(&self, path: &str, token: &str, body: &Value) -> Callout {
        cn::post_json(
            self.oapi.url(path, &[("access_token", token)]),
            body,
            self.timeout_ms,
        )
    }

    /// The claims every login starts with.
    fn base_claims(&self, userid: &str) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("userid".into(), json!(userid));
        claims.insert("corpid".into(), json!(self.corp_id));
        if let Some(org) = &self.organization {
            claims.insert("organization".into(), json!(org));
        }
        claims
    }

    /// After the member is known: details, the department path, or the end.
    fn after_member(&self, userid: String, claims: Map<String, Value>) -> Answer<Step> {
        if self.user_details {
            Answer::Next(Step::ExpectDetails { userid, claims })
        } else if self.org_from_departments {
            Answer::Next(Step::ExpectDeptPath { userid, claims })
        } else {
            Answer::Claims(claims)
        }
    }

    /// `v1.0/contact/users/me` with the user token.
    fn me_request(&self, user_token: &Secret) -> Callout {
        let url = self.api.url("/v1.0/contact/users/me", &[]);
        Callout {
            upstream: cluster_name(&url),
            url: url.to_string(),
            method: "GET".into(),
            headers: vec![
                // Not `Authorization: Bearer` (providers.md §1.3 step 4).
                (
                    "x-acs-dingtalk-access-token".into(),
                    user_token.expose().to_owned(),
                ),
                ("accept".into(), "application/json".into()),
            ],
            body: Vec::new(),
            timeout_ms: self.timeout_ms,
        }
    }

    /// The signed `sns/getuserinfo_bycode` (the older QR login).
    fn sns_request(&self, code: &Secret, now_ms: u64) -> Callout {
        let signature = sns_signature(self.qr_app_secret.expose(), now_ms);
        let url = self.oapi.url(
            "/sns/getuserinfo_bycode",
            &[
                ("accessKey", self.qr_app_id.as_str()),
                ("timestamp", &now_ms.to_string()),
                ("signature", &signature),
            ],
        );
        cn::post_json(
            url,
            &json!({"tmp_auth_code": code.expose()}),
            self.timeout_ms,
        )
    }

    fn not_member(why: &'static str) -> IdpFailure {
        IdpFailure::NotMember {
            provider: Self::LABEL,
            why,
        }
    }
}

/// `Base64(HMAC-SHA256(app secret, timestamp))`, the signature of `sns/getuserinfo_bycode`
/// (providers.md §1.4); URL-encoding happens with the rest of the query.
pub fn sns_signature(secret: &str, timestamp_ms: u64) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(timestamp_ms.to_string().as_bytes());
    B64STD.encode(mac.finalize().into_bytes())
}

/// What DingTalk's `oapi` error codes mean (providers.md §1.8).
fn classify(code: i64) -> CodeKind {
    match code {
        40014 | 42001 | 33001 | 40001 | 88 => CodeKind::TokenInvalid,
        40078 | 40029 | 40080 | 40100 => CodeKind::CodeInvalid,
        60121 | 60011 | 50002 | 60003 => CodeKind::NotMember,
        60020 | 43003 | 40089 | 853001 | 40002 | 60002 => CodeKind::Misconfigured,
        90018 | 90002 | -1 => CodeKind::Throttled,
        _ => CodeKind::Other,
    }
}

/// A short-lived code from a callback or a post.
fn code_value(value: Option<&str>) -> Option<Secret> {
    value
        .filter(|c| !c.is_empty() && c.len() <= 512 && !c.chars().any(char::is_control))
        .map(Secret::new)
}

impl Provider for DingTalk {
    type Step = Step;

    const TYPE: &'static str = "dingtalk";

    const LABEL: &'static str = "DingTalk";

    /// The web QR login; a method whose default is the in-app login names it in the button.
    fn offer(&self) -> Option<crate::pages::login::Offer> {
        let login_type = (self.default_login != DefaultLogin::Qr)
            .then_some((self.login_type_param.as_str(), "qr"));
        Some(crate::methods::cn::qr_offer("DingTalk", "钉钉", login_type))
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    fn callback_path(&self) -> Option<Option<&str>> {
        Some(self.callback_path.as_deref())
    }

    /// Mapping defaults: JumpServer's (`userid`, `name`, `email` falling back to `org_email`),
    /// plus `mobile` and the organisation.
    fn default_mapping(&self) -> RawMapping {
        RawMapping::defaults(&[
            ("login", "userid"),
            ("name", "$['name','nick']"),
            ("email", "$['email','org_email']"),
            ("phone", "mobile"),
            ("org", "organization"),
        ])
    }

    /// Every URL the method calls out to (for `sso-filter clusters`).
    fn outbound_urls(&self) -> Vec<url::Url> {
        vec![self.api.origin(), self.oapi.origin()]
    }

    fn choose(&self, entry: &Entry<'_>) -> Result<&'static str, Deny> {
        // The seeds' homepage URL names the org: it must be ours.
        for name in ["corpId", "corpid"] {
            if let Some(corp) = entry.param(name)? {
                // DingTalk substitutes `$CORPID$` in homepage URLs; an unsubstituted one says
                // nothing.
                if corp != self.corp_id && corp != "$CORPID$" {
                    return Err(Deny::Idp {
                        method: String::new(),
                        failure: Self::not_member("another_corp_in_url"),
                    });
                }
            }
        }
        match entry.param(&self.login_type_param)? {
            Some("authCode" | "authcode") => return Ok(IN_APP),
            Some("code") => return Ok(ADMIN),
            Some("qr" | "qrcode" | "scan" | "sns") => return Ok(QR),
            Some(_) => return Err(Deny::BadRequest("login_type")),
            None => {}
        }
        if entry.agent_has("dingtalk") {
            return Ok(IN_APP);
        }
        Ok(match self.default_login {
            DefaultLogin::AuthCode => IN_APP,
            DefaultLogin::Qr => QR,
        })
    }

    fn begin(
        &self,
        variant: &str,
        _entry: &Entry<'_>,
        state: &str,
        redirect_uri: &str,
    ) -> Result<Begin, Deny> {
        match variant {
            IN_APP => Ok(Begin::Page(JsPage {
                title: "Signing in with DingTalk".into(),
                sdk: Some(self.jsapi_url.clone()),
                config: json!({"corpId": self.corp_id, "clientId": self.app_key}),
                script: IN_APP_SCRIPT.into(),
                frame_ancestors: None,
            })),
            // The admin console appends the code itself; without one there is nothing to do.
            ADMIN => Err(Deny::MethodNeedsToken {
                method: String::new(),
            }),
            _ => {
                let url = match self.qr_login {
                    QrLogin::Oauth2 => {
                        let mut query = vec![
                            ("redirect_uri", redirect_uri),
                            ("response_type", "code"),
                            ("client_id", self.app_key.as_str()),
                            ("scope", "openid"),
                            ("state", state),
                            ("prompt", "consent"),
                        ];
                        if self.exclusive_login {
                            query.push(("exclusiveLogin", "true"));
                            query.push(("exclusiveCorpId", &self.corp_id));
                        }
                        self.login.url("/oauth2/auth", &query)
                    }
                    QrLogin::Sns => self.oapi.url(
                        "/connect/qrconnect",
                        &[
                            ("appid", self.qr_app_id.as_str()),
                            ("response_type", "code"),
                            ("scope", "snsapi_login"),
                            ("state", state),
                            ("redirect_uri", redirect_uri),
                        ],
                    ),
                };
                Ok(Begin::Redirect(url.to_string()))
            }
        }
    }

    fn callback(&self, _variant: &str, query: &Query, _redirect_uri: &str) -> Result<Step, Deny> {
        let dup = |_| Deny::BadRequest("duplicate_callback_param");
        if let Some(error) = query.single("error").map_err(dup)? {
            log::warn!(
                "sso-filter: DingTalk callback error={}",
                crate::deny::sanitize(error)
            );
            return Err(Deny::Idp {
                method: String::new(),
                failure: IdpFailure::Refused(error.chars().take(40).collect()),
            });
        }
        let declined = || Deny::Idp {
            method: String::new(),
            failure: IdpFailure::Refused("no_code".into()),
        };
        match self.qr_login {
            // The new login page returns `authCode` (some deployments also `code`).
            QrLogin::Oauth2 => {
                let code = match query.single("authCode").map_err(dup)? {
                    Some(c) => Some(c),
                    None => query.single("code").map_err(dup)?,
                };
                let code = code_value(code).ok_or_else(declined)?;
                Ok(Step::ExpectUserToken { code })
            }
            QrLogin::Sns => {
                let code = code_value(query.single("code").map_err(dup)?).ok_or_else(declined)?;
                Ok(Step::ExpectSnsUser { code })
            }
        }
    }

    fn posted(&self, variant: &str, fields: &Map<String, Value>) -> Result<Step, Deny> {
        if variant != IN_APP {
            return Err(Deny::BadRequest("no_posted_code"));
        }
        let code = code_value(fields.get("code").and_then(Value::as_str))
            .ok_or(Deny::BadRequest("no_code"))?;
        Ok(Step::ExpectInAppUser { code })
    }

    fn url_login(&self, query: &Query) -> Result<Option<UrlLogin<Step>>, Deny> {
        let dup = |_| Deny::BadRequest("duplicate_param");
        if query.single(&self.login_type_param).map_err(dup)? != Some("code") {
            return Ok(None);
        }
        let Some(code) = query.single("code").map_err(dup)? else {
            return Ok(None);
        };
        if self.sso_secret.is_none() {
            return Err(Deny::MethodNeedsToken {
                method: String::new(),
            });
        }
        let code = code_value(Some(code)).ok_or(Deny::BadRequest("code"))?;
        Ok(Some(UrlLogin {
            step: Step::ExpectAdmin { code },
            strip: vec!["code".into()],
        }))
    }

    fn token_for(&self, step: &Step) -> Option<TokenKind> {
        match step {
            Step::ExpectUserToken { .. } | Step::ExpectMe { .. } | Step::ExpectSnsUser { .. } => {
                None
            }
            Step::ExpectAdmin { .. } => Some(TokenKind::AdminSso),
            _ => Some(TokenKind::App),
        }
    }

    fn token_key(&self, kind: TokenKind) -> String {
        match (kind, &self.sso_secret) {
            (TokenKind::AdminSso, Some(s)) => cn::token_key("dingtalk", kind, &self.corp_id, s),
            _ => cn::token_key("dingtalk", kind, &self.app_key, &self.app_secret),
        }
    }

    fn token_request(&self, kind: TokenKind, _now_ms: u64) -> Callout {
        let url = match (kind, &self.sso_secret) {
            (TokenKind::AdminSso, Some(s)) => self.oapi.url(
                "/sso/gettoken",
                &[
                    ("corpid", self.corp_id.as_str()),
                    ("corpsecret", s.expose()),
                ],
            ),
            _ => self.oapi.url(
                "/gettoken",
                &[
                    ("appkey", self.app_key.as_str()),
                    ("appsecret", self.app_secret.expose()),
                ],
            ),
        };
        cn::get(url, self.timeout_ms)
    }

    fn token_answer(
        &self,
        _kind: TokenKind,
        response: &CalloutResponse,
    ) -> Result<Fetched, IdpFailure> {
        let body = errcode_body(response, Self::LABEL, |c| match classify(c) {
            CodeKind::TokenInvalid | CodeKind::CodeInvalid => CodeKind::Misconfigured,
            other => other,
        })?;
        Fetched::from_body(&body, "access_token", "expires_in", 7200)
    }

    fn request(&self, step: &Step, token: Option<&str>, now_ms: u64) -> Callout {
        let token = token.unwrap_or_default();
        match step {
            Step::ExpectInAppUser { code } => self.oapi_post(
                "/topapi/v2/user/getuserinfo",
                token,
                &json!({"code": code.expose()}),
            ),
            Step::ExpectUserToken { code } => cn::post_json(
                self.api.url("/v1.0/oauth2/userAccessToken", &[]),
                &json!({
                    "clientId": self.app_key,
                    "clientSecret": self.app_secret.expose(),
                    "code": code.expose(),
                    "grantType": "authorization_code",
                }),
                self.timeout_ms,
            ),
            Step::ExpectMe { user_token } => self.me_request(user_token),
            Step::ExpectSnsUser { code } => self.sns_request(code, now_ms),
            Step::ExpectUserId { unionid, .. } => self.oapi_post(
                "/topapi/user/getbyunionid",
                token,
                &json!({"unionid": unionid}),
            ),
            Step::ExpectAdmin { code } => cn::get(
                self.oapi.url(
                    "/sso/getuserinfo",
                    &[("access_token", token), ("code", code.expose())],
                ),
                self.timeout_ms,
            ),
            Step::ExpectDetails { userid, .. } => self.oapi_post(
                "/topapi/v2/user/get",
                token,
                &json!({"userid": userid, "language": "zh_CN"}),
            ),
            Step::ExpectDeptPath { userid, .. } => self.oapi_post(
                "/topapi/v2/department/listparentbyuser",
                token,
                &json!({"userid": userid}),
            ),
            Step::ExpectDeptName { pending, .. } => self.oapi_post(
                "/topapi/v2/department/get",
                token,
                &json!({"dept_id": pending.first().copied().unwrap_or(1), "language": "zh_CN"}),
            ),
        }
    }

    fn answer(&self, step: Step, response: &CalloutResponse) -> Result<Answer<Step>, IdpFailure> {
        self.judge(step, response)
    }

    fn org_sync(&self) -> Option<(&OrgSync, &dyn TreeSource)> {
        self.sync.as_ref().map(|s| (s, self as &dyn TreeSource))
    }

    /// The department steps settle from the synced tree when it knows the member's
    /// department (`departments.rs`).
    fn settle(
        &self,
        step: Step,
        cache: &dyn SharedCache,
        now: u64,
    ) -> Result<Settled<Step>, IdpFailure> {
        Ok(self.settle_departments(step, cache, now))
    }
}

/// The in-app page's script: the current `dd.requestAuthCode`, else the older
/// `dd.runtime.permission.requestAuthCode` (providers.md §1.5).
const IN_APP_SCRIPT: &str = "\
const dd=window.dd;\
if(!dd){fail('Open this page in the DingTalk app.');}\
else{const go=function(){\
const opts={corpId:CFG.corpId,clientId:CFG.clientId,\
onSuccess:function(r){send({code:r.code});},\
onFail:function(e){fail('DingTalk did not give a sign-in code: '+JSON.stringify(e));}};\
if(typeof dd.requestAuthCode==='function'){dd.requestAuthCode(opts);}\
else if(dd.runtime&&dd.runtime.permission){dd.runtime.permission.requestAuthCode(opts);}\
else{fail('This DingTalk version cannot sign in here.');}};\
if(typeof dd.ready==='function'){dd.ready(go);}else{go();}\
if(typeof dd.error==='function'){dd.error(function(e){fail('DingTalk: '+JSON.stringify(e));});}}";

#[cfg(test)]
mod tests {
    use super::*;

    /// providers.md §1.4: secret `testsecret`, timestamp `1546084445901`.
    #[test]
    fn sns_signature_vector() {
        let sig = sns_signature("testsecret", 1_546_084_445_901);
        assert_eq!(sig, "n1K6DebPpGViUPI0wDyWek/7b2qSNZ2VuqpfdHwldqM=");
        let mut url = url::Url::parse("https://oapi.dingtalk.com/sns/getuserinfo_bycode").unwrap();
        url.query_pairs_mut().append_pair("signature", &sig);
        assert!(url
            .as_str()
            .ends_with("signature=n1K6DebPpGViUPI0wDyWek%2F7b2qSNZ2VuqpfdHwldqM%3D"));
    }

    /// A configuration pasted from the seeds' DingTalk page loads: AgentId, as a string or a
    /// number, is accepted (and unused); a field nobody knows is still refused.
    #[test]
    fn the_seeds_agent_id_is_accepted_and_unknown_fields_are_not() {
        let base = serde_json::json!({"corp_id": "ding1", "app_key": "k", "app_secret": "s"});
        for agent in [serde_json::json!(1_000_002), serde_json::json!("1000002")] {
            let mut raw = base.clone();
            raw["agent_id"] = agent;
            let raw: RawDingTalk = serde_json::from_value(raw).unwrap();
            assert!(DingTalk::from_raw(raw, "methods.dt").is_ok());
        }
        let mut raw = base;
        raw["agent_idd"] = serde_json::json!(1);
        assert!(serde_json::from_value::<RawDingTalk>(raw).is_err());
    }
}
