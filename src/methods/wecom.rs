//! `type: wecom`: WeCom (Enterprise WeChat, 企业微信) self-built app login
//! (`reference/providers.md` §2).
//!
//! Two ways in, one exchange:
//!
//! - **in-app OAuth** (`wcwLoginType=oauth2`, or a WeCom client's `User-Agent`): 302 to
//!   `open.weixin.qq.com/connect/oauth2/authorize` with the corp id, `snsapi_base` (silent) or
//!   `snsapi_privateinfo` (consent, yields a `user_ticket`), and `#wechat_redirect`;
//! - **web QR login** (`wcwLoginType=qr`, the default elsewhere): 302 to
//!   `login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp`.
//!
//! The code comes back to the callback and is exchanged with the corp's app token:
//! `cgi-bin/auth/getuserinfo` (member `userid`; non-members get only `openid` /
//! `external_userid` and are refused), then `cgi-bin/user/get` for the profile (mapped
//! attributes such as `extattr.attrs[2].value`), then `cgi-bin/auth/getuserdetail` with the
//! `user_ticket` for mobile and e-mail, and with `org_from_departments` the member's
//! department path (`departments.rs`).

mod departments;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::deny::Deny;
use crate::error::ConfigError;
use crate::http::{Callout, CalloutResponse, Query};
use crate::idp::CodeKind;
use crate::idp::IdpFailure;
use crate::mapping::RawMapping;
use crate::methods::cn::org::{self, OrgSync, TreeSource};
use crate::methods::cn::{
    self, errcode_body, text_field, Answer, ApiBase, Begin, Entry, Fetched, Provider, Secret,
    TokenKind,
};
use departments::department;

/// Login variant: in-app OAuth.
pub const OAUTH2: &str = "oauth2";
/// Login variant: web QR login.
pub const QR: &str = "qr";

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWecom {
    corp_id: String,
    agent_id: Value,
    secret: Secret,
    #[serde(default)]
    scope: Scope,
    #[serde(default)]
    default_login: DefaultLogin,
    #[serde(default = "default_login_param")]
    login_type_param: String,
    #[serde(default = "cn::default_true")]
    user_details: bool,
    #[serde(default)]
    legacy_getuserinfo: bool,
    #[serde(default)]
    org_from_departments: bool,
    #[serde(default)]
    sync_minutes: Option<u64>,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    callback_path: Option<String>,
    #[serde(default)]
    lang: Option<String>,
    #[serde(default = "default_api_base")]
    api_base: String,
    #[serde(default = "default_oauth_base")]
    oauth_base: String,
    #[serde(default = "default_login_base")]
    login_base: String,
    #[serde(default = "cn::default_timeout")]
    timeout_ms: u64,
}

cn::text_defaults! {
    default_login_param = "wcwLoginType";
    default_api_base = "https://qyapi.weixin.qq.com";
    default_oauth_base = "https://open.weixin.qq.com";
    default_login_base = "https://login.work.weixin.qq.com";
}

/// The in-app OAuth scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Silent; the member's `userid` only.
    #[default]
    SnsapiBase,
    /// With consent; a `user_ticket` for mobile, e-mail and the like.
    SnsapiPrivateinfo,
}

/// The login used when neither the URL nor the `User-Agent` decides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultLogin {
    /// Web QR login.
    #[default]
    Qr,
    /// In-app OAuth.
    Oauth2,
}

/// A configured WeCom method.
#[derive(Debug)]
pub struct Wecom {
    corp_id: String,
    agent_id: String,
    secret: Secret,
    scope: Scope,
    default_login: DefaultLogin,
    login_type_param: String,
    user_details: bool,
    legacy_getuserinfo: bool,
    org_from_departments: bool,
    sync: Option<OrgSync>,
    organization: Option<String>,
    callback_path: Option<String>,
    lang: Option<String>,
    api: ApiBase,
    oauth: ApiBase,
    login: ApiBase,
    timeout_ms: u64,
}

/// What a WeCom login waits for.
#[derive(Debug)]
pub enum Step {
    /// `auth/getuserinfo`: the code becomes a member's `userid` (and a `user_ticket`).
    ExpectUserId {
        /// The authorization code (single use).
        code: Secret,
    },
    /// `user/get`: the member's profile.
    ExpectMember {
        /// The member.
        userid: String,
        /// The user ticket, for the detail step after this one.
        ticket: Option<Secret>,
        /// Claims so far.
        claims: Map<String, Value>,
    },
    /// `auth/getuserdetail`: the sensitive fields the user consented to.
    ExpectUserDetail {
        /// The member.
        userid: String,
        /// The user ticket.
        ticket: Secret,
        /// Claims so far.
        claims: Map<String, Value>,
    },
    /// `department/get`: one department of the member's path, from theirs up to the root.
    ExpectDepartment {
        /// The department to name.
        id: String,
        /// Names so far, the member's department first.
        names: Vec<String>,
        /// Claims so far.
        claims: Map<String, Value>,
    },
}

impl Wecom {
    /// Parses the method's configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawWecom, at: &str) -> Result<Self, ConfigError> {
        let here = |f: &str| format!("{at}.{f}");
        cn::require_id(&raw.corp_id, &here("corp_id"))?;
        let agent_id = cn::id_text(&raw.agent_id, &here("agent_id"))?;
        cn::require_id(&agent_id, &here("agent_id"))?;
        cn::require_secret(&raw.secret, &here("secret"))?;
        cn::check_callback_path(&raw.callback_path, &here("callback_path"))?;
        cn::check_timeout(raw.timeout_ms, &here("timeout_ms"))?;
        if raw.org_from_departments && !raw.user_details {
            return Err(ConfigError {
                path: here("org_from_departments"),
                reason: "needs user_details: the member's departments come from user/get".into(),
            });
        }
        let sync = org::sync_of(
            raw.org_from_departments,
            raw.sync_minutes,
            &here("sync_minutes"),
            || cn::org_key("wecom", &raw.corp_id, &raw.secret),
        )?;
        if let Some(lang) = &raw.lang {
            if lang != "zh" && lang != "en" {
                return Err(ConfigError {
                    path: here("lang"),
                    reason: "must be \"zh\" or \"en\"".into(),
                });
            }
        }
        Ok(Wecom {
            corp_id: raw.corp_id,
            agent_id,
            secret: raw.secret,
            scope: raw.scope,
            default_login: raw.default_login,
            login_type_param: raw.login_type_param,
            user_details: raw.user_details,
            legacy_getuserinfo: raw.legacy_getuserinfo,
            org_from_departments: raw.org_from_departments,
            sync,
            organization: raw.organization,
            callback_path: raw.callback_path,
            lang: raw.lang,
            api: ApiBase::parse(&raw.api_base, &here("api_base"))?,
            oauth: ApiBase::parse(&raw.oauth_base, &here("oauth_base"))?,
            login: ApiBase::parse(&raw.login_base, &here("login_base"))?,
            timeout_ms: raw.timeout_ms,
        })
    }

    fn api_url(&self, path: &str, token: &str, extra: &[(&str, &str)]) -> url::Url {
        let mut query = vec![("access_token", token)];
        query.extend_from_slice(extra);
        self.api.url(path, &query)
    }
}

/// What WeCom's global error codes mean (providers.md §2.5).
fn classify(code: i64) -> CodeKind {
    match code {
        40014 | 41001 | 42001 => CodeKind::TokenInvalid,
        40029 | 40163 | 41008 => CodeKind::CodeInvalid,
        60011 | 60111 | 46004 | 50002 => CodeKind::NotMember,
        40001 | 40013 | 40056 | 48002 | 50001 | 60020 | 301002 => CodeKind::Misconfigured,
        45009 | 45033 | -1 => CodeKind::Throttled,
        _ => CodeKind::Other,
    }
}

impl Provider for Wecom {
    type Step = Step;

    const TYPE: &'static str = "wecom";

    const LABEL: &'static str = "WeCom";

    /// The web QR login; a method whose default is the in-app OAuth names it in the button.
    fn offer(&self) -> Option<crate::pages::login::Offer> {
        let login_type = (self.default_login != DefaultLogin::Qr)
            .then_some((self.login_type_param.as_str(), "qr"));
        Some(crate::methods::cn::qr_offer(
            "WeCom",
            "企业微信",
            login_type,
        ))
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    fn callback_path(&self) -> Option<Option<&str>> {
        Some(self.callback_path.as_deref())
    }

    /// Mapping defaults: JumpServer's (`userid`, `name`, `email` falling back to `biz_mail`),
    /// plus `mobile` and the configured organisation.
    fn default_mapping(&self) -> RawMapping {
        RawMapping::defaults(&[
            ("login", "userid"),
            ("name", "name"),
            ("email", "$['email','biz_mail']"),
            ("phone", "mobile"),
            ("org", "organization"),
        ])
    }

    /// Every URL the method calls out to (for `sso-filter clusters`).
    fn outbound_urls(&self) -> Vec<url::Url> {
        vec![self.api.origin()]
    }

    fn choose(&self, entry: &Entry<'_>) -> Result<&'static str, Deny> {
        match entry.param(&self.login_type_param)? {
            Some("oauth2" | "oauth") => return Ok(OAUTH2),
            Some("qr" | "qrcode" | "scan") => return Ok(QR),
            Some(_) => return Err(Deny::BadRequest("login_type")),
            None => {}
        }
        // The WeCom client's browser says `wxwork/<version>`.
        if entry.agent_has("wxwork") {
            return Ok(OAUTH2);
        }
        Ok(match self.default_login {
            DefaultLogin::Qr => QR,
            DefaultLogin::Oauth2 => OAUTH2,
        })
    }

    fn begin(
        &self,
        variant: &str,
        _entry: &Entry<'_>,
        state: &str,
        redirect_uri: &str,
    ) -> Result<Begin, Deny> {
        let url = if variant == OAUTH2 {
            let scope = match self.scope {
                Scope::SnsapiBase => "snsapi_base",
                Scope::SnsapiPrivateinfo => "snsapi_privateinfo",
            };
            // The order and the fragment are WeCom's: it matches the URL as written.
            let mut url = self.oauth.url(
                "/connect/oauth2/authorize",
                &[
                    ("appid", &self.corp_id),
                    ("redirect_uri", redirect_uri),
                    ("response_type", "code"),
                    ("scope", scope),
                    ("state", state),
                    ("agentid", &self.agent_id),
                ],
            );
            url.set_fragment(Some("wechat_redirect"));
            url
        } else {
            let mut query = vec![
                ("login_type", "CorpApp"),
                ("appid", self.corp_id.as_str()),
                ("agentid", self.agent_id.as_str()),
                ("redirect_uri", redirect_uri),
                ("state", state),
            ];
            if let Some(lang) = &self.lang {
                query.push(("lang", lang));
            }
            self.login.url("/wwlogin/sso/login", &query)
        };
        Ok(Begin::Redirect(url.to_string()))
    }

    fn callback(&self, _variant: &str, query: &Query, _redirect_uri: &str) -> Result<Step, Deny> {
        let code = query
            .single("code")
            .map_err(|_| Deny::BadRequest("duplicate_callback_param"))?
            .filter(|c| !c.is_empty() && c.len() <= 512)
            // A user who declines comes back with only the state.
            .ok_or(Deny::Idp {
                method: String::new(),
                failure: IdpFailure::Refused("no_code".into()),
            })?;
        Ok(Step::ExpectUserId {
            code: Secret::new(code),
        })
    }

    fn token_for(&self, _step: &Step) -> Option<TokenKind> {
        Some(TokenKind::App)
    }

    fn token_key(&self, kind: TokenKind) -> String {
        cn::token_key("wecom", kind, &self.corp_id, &self.secret)
    }

    fn token_request(&self, _kind: TokenKind, _now_ms: u64) -> Callout {
        let url = self.api.url(
            "/cgi-bin/gettoken",
            &[
                ("corpid", &self.corp_id),
                ("corpsecret", self.secret.expose()),
            ],
        );
        cn::get(url, self.timeout_ms)
    }

    fn token_answer(
        &self,
        _kind: TokenKind,
        response: &CalloutResponse,
    ) -> Result<Fetched, IdpFailure> {
        // A refused token fetch is a configuration problem (bad secret), never a retry.
        let body = errcode_body(response, Self::LABEL, |c| match classify(c) {
            CodeKind::TokenInvalid => CodeKind::Misconfigured,
            other => other,
        })?;
        Fetched::from_body(&body, "access_token", "expires_in", 7200)
    }

    fn request(&self, step: &Step, token: Option<&str>, _now_ms: u64) -> Callout {
        let token = token.unwrap_or_default();
        match step {
            Step::ExpectUserId { code } => {
                let path = if self.legacy_getuserinfo {
                    "/cgi-bin/user/getuserinfo"
                } else {
                    "/cgi-bin/auth/getuserinfo"
                };
                cn::get(
                    self.api_url(path, token, &[("code", code.expose())]),
                    self.timeout_ms,
                )
            }
            Step::ExpectMember { userid, .. } => cn::get(
                self.api_url("/cgi-bin/user/get", token, &[("userid", userid)]),
                self.timeout_ms,
            ),
            Step::ExpectUserDetail { ticket, .. } => cn::post_json(
                self.api_url("/cgi-bin/auth/getuserdetail", token, &[]),
                &json!({"user_ticket": ticket.expose()}),
                self.timeout_ms,
            ),
            Step::ExpectDepartment { id, .. } => cn::get(
                self.api_url("/cgi-bin/department/get", token, &[("id", id)]),
                self.timeout_ms,
            ),
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
        let body = match errcode_body(response, Self::LABEL, classify) {
            Ok(body) => body,
            Err(failure) if cn::is_token_rejection(&failure) => {
                return Ok(Answer::TokenRejected(step))
            }
            Err(failure) => return Err(failure),
        };
        match step {
            Step::ExpectUserId { .. } => self.member(&body),
            Step::ExpectMember {
                userid,
                ticket,
                mut claims,
            } => {
                if text_field(&body, "userid").is_some_and(|u| !u.eq_ignore_ascii_case(&userid)) {
                    return Err(IdpFailure::Subject);
                }
                // status: 1 active, 2 disabled, 4 not activated, 5 left the company.
                if let Some(status) = body.get("status").and_then(Value::as_i64) {
                    if status != 1 {
                        return Err(IdpFailure::NotMember {
                            provider: Self::LABEL,
                            why: "inactive",
                        });
                    }
                }
                merge_profile(&mut claims, body);
                Ok(match ticket {
                    Some(ticket) => Answer::Next(Step::ExpectUserDetail {
                        userid,
                        ticket,
                        claims,
                    }),
                    None => self.profile_done(claims),
                })
            }
            Step::ExpectUserDetail {
                userid, mut claims, ..
            } => {
                if text_field(&body, "userid").is_some_and(|u| !u.eq_ignore_ascii_case(&userid)) {
                    return Err(IdpFailure::Subject);
                }
                merge_profile(&mut claims, body);
                Ok(self.profile_done(claims))
            }
            Step::ExpectDepartment { names, claims, .. } => department(names, claims, &body),
        }
    }
}

impl Wecom {
    /// `auth/getuserinfo`: the code's member (outsiders and linked corps refused), then the
    /// profile or the user detail.
    fn member(&self, body: &Map<String, Value>) -> Result<Answer<Step>, IdpFailure> {
        // Current docs spell it `userid`; the old path (and JustAuth, JumpServer) `UserId`.
        let userid = text_field(body, "userid").or_else(|| text_field(body, "UserId"));
        let Some(userid) = cn::user_id(userid) else {
            let outsider = ["openid", "OpenId", "external_userid"]
                .iter()
                .any(|k| text_field(body, k).is_some());
            return Err(if outsider {
                IdpFailure::NotMember {
                    provider: Self::LABEL,
                    why: "not_a_member",
                }
            } else {
                IdpFailure::BadAnswer("no_userid")
            });
        };
        // A member of a linked corp comes as `CorpId/userid`: not one of ours.
        if userid.contains('/') {
            return Err(IdpFailure::NotMember {
                provider: Self::LABEL,
                why: "linked_corp",
            });
        }
        let ticket = text_field(body, "user_ticket")
            .filter(|_| self.scope == Scope::SnsapiPrivateinfo)
            .map(Secret::new);
        let mut claims = Map::new();
        claims.insert("userid".into(), json!(userid));
        claims.insert("corpid".into(), json!(self.corp_id));
        if let Some(org) = &self.organization {
            claims.insert("organization".into(), json!(org));
        }
        Ok(self.after_userid(userid, ticket, claims))
    }

    fn after_userid(
        &self,
        userid: String,
        ticket: Option<Secret>,
        claims: Map<String, Value>,
    ) -> Answer<Step> {
        if self.user_details {
            return Answer::Next(Step::ExpectMember {
                userid,
                ticket,
                claims,
            });
        }
        match ticket {
            Some(ticket) => Answer::Next(Step::ExpectUserDetail {
                userid,
                ticket,
                claims,
            }),
            None => self.profile_done(claims),
        }
    }
}

/// Adds a profile answer's fields to the claims: protocol fields dropped, the `userid` and
/// `corpid` already established kept, empty values never overwriting real ones (new apps get
/// empty `mobile`/`email` from `user/get` and the real ones from `getuserdetail`).
fn merge_profile(claims: &mut Map<String, Value>, body: Map<String, Value>) {
    for (k, v) in body {
        if matches!(
            k.as_str(),
            "errcode" | "errmsg" | "userid" | "corpid" | "user_ticket" | "expires_in"
        ) {
            continue;
        }
        let empty = matches!(&v, Value::Null) || v.as_str().is_some_and(str::is_empty);
        if empty && claims.contains_key(&k) {
            continue;
        }
        claims.insert(k, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wecom() -> Wecom {
        let raw: RawWecom = serde_json::from_value(json!({
            "corp_id": "ww1", "agent_id": 1000002, "secret": "s3cret",
            "scope": "snsapi_privateinfo", "api_base": "http://127.0.0.1:9/wx"
        }))
        .unwrap();
        Wecom::from_raw(raw, "methods.w").unwrap()
    }

    fn answer(body: Value) -> CalloutResponse {
        CalloutResponse {
            status: Some(200),
            headers: vec![],
            body: body.to_string().into_bytes(),
        }
    }

    #[test]
    fn outsiders_and_linked_corps_are_refused() {
        let w = wecom();
        let step = || Step::ExpectUserId {
            code: Secret::new("c"),
        };
        let e = w
            .answer(
                step(),
                &answer(json!({"errcode":0,"openid":"o1","external_userid":"x"})),
            )
            .unwrap_err();
        assert_eq!(e.status(), 403);
        let e = w
            .answer(
                step(),
                &answer(json!({"errcode":0,"userid":"wwother/zhang"})),
            )
            .unwrap_err();
        assert_eq!(e.status(), 403);
    }

    #[test]
    fn both_userid_spellings_and_token_rejection() {
        let w = wecom();
        let step = || Step::ExpectUserId {
            code: Secret::new("c"),
        };
        for body in [
            json!({"errcode":0,"userid":"zhang","user_ticket":"T"}),
            json!({"errcode":0,"UserId":"zhang","user_ticket":"T"}),
        ] {
            match w.answer(step(), &answer(body)).unwrap() {
                Answer::Next(Step::ExpectMember { userid, ticket, .. }) => {
                    assert_eq!(userid, "zhang");
                    assert!(ticket.is_some());
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            w.answer(step(), &answer(json!({"errcode":42001,"errmsg":"expired"})))
                .unwrap(),
            Answer::TokenRejected(_)
        ));
        let e = w
            .answer(
                step(),
                &answer(json!({"errcode":40029,"errmsg":"invalid code"})),
            )
            .unwrap_err();
        assert_eq!(e.status(), 401);
        assert!(e.message().unwrap().contains("40029"));
    }

    #[test]
    fn authorize_urls() {
        let w = wecom();
        let q = Query::parse("");
        let entry = Entry {
            login: &q,
            page: Query::parse("wcwLoginType=oauth2"),
            user_agent: "",
        };
        assert_eq!(w.choose(&entry).unwrap(), OAUTH2);
        let Begin::Redirect(url) = w.begin(OAUTH2, &entry, "S1", "https://a/cb").unwrap() else {
            panic!()
        };
        assert!(url.starts_with("https://open.weixin.qq.com/connect/oauth2/authorize?appid=ww1&redirect_uri=https%3A%2F%2Fa%2Fcb&response_type=code&scope=snsapi_privateinfo&state=S1&agentid=1000002#wechat_redirect"), "{url}");
        let entry = Entry {
            login: &q,
            page: Query::parse(""),
            user_agent: "Mozilla/5.0 wxwork/4.1.0 MicroMessenger/7.0.1",
        };
        assert_eq!(w.choose(&entry).unwrap(), OAUTH2);
        let entry = Entry {
            login: &q,
            page: Query::parse(""),
            user_agent: "Mozilla/5.0",
        };
        assert_eq!(w.choose(&entry).unwrap(), QR);
    }
}
