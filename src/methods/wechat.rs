//! `type: wechat`: WeChat (微信) login (`reference/providers.md` §5), three ways:
//!
//! - **website QR login** (open platform, `snsapi_login`): 302 to
//!   `open.weixin.qq.com/connect/qrconnect`;
//! - **official-account login inside WeChat** (`snsapi_base` silent, `snsapi_userinfo` with
//!   consent): 302 to `open.weixin.qq.com/connect/oauth2/authorize`, chosen by the
//!   `MicroMessenger` `User-Agent` when the URL does not say; "snapshot page" virtual users
//!   (`is_snapshotuser: 1`) are refused;
//! - **mini-program web-view**: the web-view URL carries `auth_code`, `encryptedData` and
//!   `iv`; `sns/jscode2session` gives the session key, which decrypts `encryptedData`
//!   (AES-128-CBC, PKCS#7) whose `watermark.appid` must be the mini program's.
//!
//! WeChat has no organisation: who may sign in is an explicit list of `unionid`/`openid`
//! values (security.md G1), unless `insecure_allow_any_user` opens the door to every WeChat
//! user. No app access token is involved in these logins.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, KeyIvInit};
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::deny::Deny;
use crate::error::ConfigError;
use crate::http::{Callout, CalloutResponse, Query};
use crate::idp::CodeKind;
use crate::idp::IdpFailure;
use crate::jose::B64STD;
use crate::mapping::RawMapping;
use crate::methods::cn::{
    self, errcode_body, text_field, Answer, ApiBase, Begin, Entry, Fetched, Provider, Secret,
    TokenKind, UrlLogin,
};

/// Login variant: website QR login (open platform).
pub const QR: &str = "qr";
/// Login variant: official-account login inside WeChat.
pub const MP: &str = "mp";

/// The largest `encryptedData` accepted (base64 characters).
const MAX_ENCRYPTED: usize = 8 * 1024;

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWechat {
    #[serde(default)]
    open_app_id: Option<String>,
    #[serde(default)]
    open_app_secret: Option<Secret>,
    #[serde(default)]
    mp_app_id: Option<String>,
    #[serde(default)]
    mp_app_secret: Option<Secret>,
    #[serde(default)]
    mp_scope: MpScope,
    #[serde(default)]
    mini_app_id: Option<String>,
    #[serde(default)]
    mini_app_secret: Option<Secret>,
    #[serde(default)]
    allowed_users: Vec<String>,
    #[serde(default)]
    insecure_allow_any_user: bool,
    #[serde(default = "default_login_param")]
    login_type_param: String,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default)]
    callback_path: Option<String>,
    #[serde(default = "default_api_base")]
    api_base: String,
    #[serde(default = "default_open_base")]
    open_base: String,
    #[serde(default = "cn::default_timeout")]
    timeout_ms: u64,
}

cn::text_defaults! {
    default_login_param = "wxLoginType";
    default_api_base = "https://api.weixin.qq.com";
    default_open_base = "https://open.weixin.qq.com";
}

/// The official-account scope.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MpScope {
    /// Silent; the `openid` (and `unionid` when bound) only.
    SnsapiBase,
    /// With consent; the profile from `sns/userinfo`.
    #[default]
    SnsapiUserinfo,
}

/// One WeChat app: id and secret.
#[derive(Clone, Debug)]
struct App {
    id: String,
    secret: Secret,
}

/// A configured WeChat method.
#[derive(Debug)]
pub struct Wechat {
    open: Option<App>,
    mp: Option<App>,
    mp_scope: MpScope,
    mini: Option<App>,
    allowed_users: Vec<String>,
    allow_any: bool,
    login_type_param: String,
    organization: Option<String>,
    callback_path: Option<String>,
    api: ApiBase,
    open_base: ApiBase,
    timeout_ms: u64,
}

/// Which app a web code belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebApp {
    /// The open-platform website app (QR login).
    Open,
    /// The official account.
    Mp,
}

/// What a WeChat login waits for.
#[derive(Debug)]
pub enum Step {
    /// `sns/oauth2/access_token`: the code becomes a user token and an `openid`.
    ExpectToken {
        /// The code (single use).
        code: Secret,
        /// The app that issued it.
        app: WebApp,
    },
    /// `sns/userinfo`: the profile.
    ExpectUserInfo {
        /// The user access token.
        user_token: Secret,
        /// The user.
        openid: String,
        /// Claims so far.
        claims: Map<String, Value>,
    },
    /// `sns/jscode2session`: the mini program's code becomes the session key.
    ExpectSession {
        /// `auth_code` from the web-view URL.
        code: Secret,
        /// `encryptedData` and `iv`, when the URL carries them.
        encrypted: Option<(String, String)>,
    },
}

impl Wechat {
    /// Parses the method's configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawWechat, at: &str) -> Result<Self, ConfigError> {
        let here = |f: &str| format!("{at}.{f}");
        let app = |id: Option<String>, secret: Option<Secret>, name: &str| match (id, secret) {
            (Some(id), Some(secret)) => {
                cn::require_id(&id, &here(&format!("{name}_app_id")))?;
                cn::require_secret(&secret, &here(&format!("{name}_app_secret")))?;
                Ok(Some(App { id, secret }))
            }
            (None, None) => Ok(None),
            (Some(_), None) => Err(ConfigError {
                path: here(&format!("{name}_app_secret")),
                reason: format!("required with {name}_app_id"),
            }),
            (None, Some(_)) => Err(ConfigError {
                path: here(&format!("{name}_app_id")),
                reason: format!("required with {name}_app_secret"),
            }),
        };
        let open = app(raw.open_app_id, raw.open_app_secret, "open")?;
        let mp = app(raw.mp_app_id, raw.mp_app_secret, "mp")?;
        let mini = app(raw.mini_app_id, raw.mini_app_secret, "mini")?;
        if open.is_none() && mp.is_none() && mini.is_none() {
            return Err(ConfigError {
                path: at.to_owned(),
                reason: "configure at least one app: open_app_id, mp_app_id or mini_app_id".into(),
            });
        }
        if raw.allowed_users.is_empty() && !raw.insecure_allow_any_user {
            return Err(ConfigError {
                path: here("allowed_users"),
                reason: "list the unionid/openid values that may sign in, or set \
                         insecure_allow_any_user: true to admit every WeChat user"
                    .into(),
            });
        }
        cn::check_callback_path(&raw.callback_path, &here("callback_path"))?;
        cn::check_timeout(raw.timeout_ms, &here("timeout_ms"))?;
        Ok(Wechat {
            open,
            mp,
            mp_scope: raw.mp_scope,
            mini,
            allowed_users: raw.allowed_users,
            allow_any: raw.insecure_allow_any_user,
            login_type_param: raw.login_type_param,
            organization: raw.organization,
            callback_path: raw.callback_path,
            api: ApiBase::parse(&raw.api_base, &here("api_base"))?,
            open_base: ApiBase::parse(&raw.open_base, &here("open_base"))?,
            timeout_ms: raw.timeout_ms,
        })
    }

    fn web_app(&self, app: WebApp) -> Option<&App> {
        match app {
            WebApp::Open => self.open.as_ref(),
            WebApp::Mp => self.mp.as_ref(),
        }
    }

    /// The user must be on the list (unless every user is admitted).
    fn admit(&self, mut claims: Map<String, Value>) -> Result<Answer<Step>, IdpFailure> {
        let ids = ["unionid", "openid"]
            .iter()
            .filter_map(|k| text_field(&claims, k))
            .collect::<Vec<_>>();
        if !self.allow_any
            && !ids
                .iter()
                .any(|id| self.allowed_users.iter().any(|a| a == id))
        {
            return Err(IdpFailure::NotMember {
                provider: Self::LABEL,
                why: "not_allowed",
            });
        }
        if let Some(org) = &self.organization {
            claims.insert("organization".into(), json!(org));
        }
        Ok(Answer::Claims(claims))
    }
}

/// What WeChat's codes mean (providers.md §5.2).
fn classify(code: i64) -> CodeKind {
    match code {
        40029 | 40163 | 41008 | 40030 => CodeKind::CodeInvalid,
        40013 | 40125 | 41002 | 41004 | 40164 | 10012 | 48001 => CodeKind::Misconfigured,
        40226 => CodeKind::NotMember,
        45011 | 45009 | -1 => CodeKind::Throttled,
        _ => CodeKind::Other,
    }
}

/// Decrypts a mini program's `encryptedData` (providers.md §5.3): AES-128-CBC with the
/// session key, PKCS#7; the plaintext must be a JSON object whose `watermark.appid` is the
/// mini program's.
///
/// # Errors
///
/// [`IdpFailure::BadAnswer`] for a bad key, IV, ciphertext, padding, JSON or watermark.
pub fn decrypt_user_data(
    session_key: &str,
    encrypted: &str,
    iv: &str,
    app_id: &str,
) -> Result<Map<String, Value>, IdpFailure> {
    let bad = |why| IdpFailure::BadAnswer(why);
    let key = B64STD.decode(session_key).map_err(|_| bad("session_key"))?;
    let iv = B64STD.decode(iv).map_err(|_| bad("iv"))?;
    let data = B64STD
        .decode(encrypted)
        .map_err(|_| bad("encrypted_data"))?;
    if key.len() != 16 || iv.len() != 16 {
        return Err(bad("key_or_iv_length"));
    }
    let plain = cbc::Decryptor::<aes::Aes128>::new_from_slices(&key, &iv)
        .map_err(|_| bad("key_or_iv_length"))?
        .decrypt_padded_vec_mut::<Pkcs7>(&data)
        .map_err(|_| bad("decryption"))?;
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&plain) else {
        return Err(bad("decrypted_json"));
    };
    let watermark = map
        .get("watermark")
        .and_then(|w| w.get("appid"))
        .and_then(Value::as_str);
    if watermark != Some(app_id) {
        return Err(bad("watermark"));
    }
    Ok(map)
}

/// A code from a callback or URL.
fn code_value(value: Option<&str>) -> Option<Secret> {
    value
        .filter(|c| !c.is_empty() && c.len() <= 256)
        .filter(|c| c.bytes().all(|b| b.is_ascii_graphic()))
        .map(Secret::new)
}

impl Provider for Wechat {
    type Step = Step;

    const TYPE: &'static str = "wechat";

    const LABEL: &'static str = "WeChat";

    /// The website app's QR login; with only an official account, its OAuth (which works
    /// inside WeChat only).
    fn offer(&self) -> Option<crate::pages::login::Offer> {
        if self.open.is_some() {
            return Some(crate::methods::cn::qr_offer("WeChat", "微信", None));
        }
        Some(crate::pages::login::Offer {
            name: Some(crate::pages::lang::Text::new("WeChat", "微信")),
            ..crate::pages::login::Offer::of(crate::pages::login::Way::Redirect)
        })
    }

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    fn callback_path(&self) -> Option<Option<&str>> {
        Some(self.callback_path.as_deref())
    }

    /// Mapping defaults: the `unionid` (one per open-platform account) when WeChat gives it,
    /// else the app's `openid`; the nickname.
    fn default_mapping(&self) -> RawMapping {
        RawMapping::defaults(&[
            ("login", "$['unionid','openid']"),
            ("name", "nickname"),
            ("phone", "$['phoneNumber','purePhoneNumber']"),
            ("org", "organization"),
        ])
    }

    /// Every URL the method calls out to (for `sso-filter clusters`).
    fn outbound_urls(&self) -> Vec<url::Url> {
        vec![self.api.origin()]
    }

    fn choose(&self, entry: &Entry<'_>) -> Result<&'static str, Deny> {
        let want = match entry.param(&self.login_type_param)? {
            Some("qr" | "open" | "scan") => Some(QR),
            Some("mp" | "oauth2" | "in_app") => Some(MP),
            Some(_) => return Err(Deny::BadRequest("login_type")),
            None => None,
        };
        // Inside WeChat a QR code cannot be scanned: the official account's login.
        let in_wechat = entry.agent_has("micromessenger") && !entry.agent_has("wxwork");
        let variant = want.unwrap_or(if in_wechat { MP } else { QR });
        let available = match variant {
            QR => self.open.is_some(),
            _ => self.mp.is_some(),
        };
        if available {
            return Ok(variant);
        }
        // Only one web app configured, and no explicit wish: use it.
        match (want, self.open.is_some(), self.mp.is_some()) {
            (None, true, _) => Ok(QR),
            (None, false, true) => Ok(MP),
            _ => Err(Deny::BadRequest("login_type_not_configured")),
        }
    }

    fn begin(
        &self,
        variant: &str,
        _entry: &Entry<'_>,
        state: &str,
        redirect_uri: &str,
    ) -> Result<Begin, Deny> {
        let (app, path, scope) = if variant == MP {
            let scope = match self.mp_scope {
                MpScope::SnsapiBase => "snsapi_base",
                MpScope::SnsapiUserinfo => "snsapi_userinfo",
            };
            (self.mp.as_ref(), "/connect/oauth2/authorize", scope)
        } else {
            (self.open.as_ref(), "/connect/qrconnect", "snsapi_login")
        };
        let app = app.ok_or(Deny::BadRequest("login_type_not_configured"))?;
        // WeChat matches the URL as written: this order, then #wechat_redirect.
        let mut url = self.open_base.url(
            path,
            &[
                ("appid", &app.id),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("scope", scope),
                ("state", state),
            ],
        );
        url.set_fragment(Some("wechat_redirect"));
        Ok(Begin::Redirect(url.to_string()))
    }

    fn callback(&self, variant: &str, query: &Query, _redirect_uri: &str) -> Result<Step, Deny> {
        // A user who declines comes back with the state only.
        let code = code_value(
            query
                .single("code")
                .map_err(|_| Deny::BadRequest("duplicate_callback_param"))?,
        )
        .ok_or(Deny::Idp {
            method: String::new(),
            failure: IdpFailure::Refused("no_code".into()),
        })?;
        let app = if variant == MP {
            WebApp::Mp
        } else {
            WebApp::Open
        };
        Ok(Step::ExpectToken { code, app })
    }

    fn url_login(&self, query: &Query) -> Result<Option<UrlLogin<Step>>, Deny> {
        let dup = |_| Deny::BadRequest("duplicate_param");
        let Some(code) = query.single("auth_code").map_err(dup)? else {
            return Ok(None);
        };
        if self.mini.is_none() {
            return Ok(None);
        }
        let code = code_value(Some(code)).ok_or(Deny::BadRequest("auth_code"))?;
        let encrypted = match (
            query.single("encryptedData").map_err(dup)?,
            query.single("iv").map_err(dup)?,
        ) {
            (Some(data), Some(iv)) if data.len() <= MAX_ENCRYPTED && iv.len() <= 64 => {
                Some((data.to_owned(), iv.to_owned()))
            }
            (None, None) => None,
            _ => return Err(Deny::BadRequest("encrypted_data")),
        };
        Ok(Some(UrlLogin {
            step: Step::ExpectSession { code, encrypted },
            strip: vec!["auth_code".into(), "encryptedData".into(), "iv".into()],
        }))
    }

    fn token_for(&self, _step: &Step) -> Option<TokenKind> {
        None
    }

    fn token_key(&self, kind: TokenKind) -> String {
        let id = self
            .mp
            .as_ref()
            .or(self.open.as_ref())
            .or(self.mini.as_ref());
        match id {
            Some(app) => cn::token_key("wechat", kind, &app.id, &app.secret),
            None => String::from("sso:apptoken:wechat:none"),
        }
    }

    fn token_request(&self, _kind: TokenKind, _now_ms: u64) -> Callout {
        // Never asked for: no step needs an app token.
        cn::get(self.api.url("/cgi-bin/token", &[]), self.timeout_ms)
    }

    fn token_answer(
        &self,
        _kind: TokenKind,
        _response: &CalloutResponse,
    ) -> Result<Fetched, IdpFailure> {
        Err(IdpFailure::BadAnswer("no_app_token"))
    }

    fn request(&self, step: &Step, _token: Option<&str>, _now_ms: u64) -> Callout {
        match step {
            Step::ExpectToken { code, app } => {
                let (id, secret) = self
                    .web_app(*app)
                    .map(|a| (a.id.as_str(), a.secret.expose()))
                    .unwrap_or_default();
                cn::get(
                    self.api.url(
                        "/sns/oauth2/access_token",
                        &[
                            ("appid", id),
                            ("secret", secret),
                            ("code", code.expose()),
                            ("grant_type", "authorization_code"),
                        ],
                    ),
                    self.timeout_ms,
                )
            }
            Step::ExpectUserInfo {
                user_token, openid, ..
            } => cn::get(
                self.api.url(
                    "/sns/userinfo",
                    &[
                        ("access_token", user_token.expose()),
                        ("openid", openid),
                        ("lang", "zh_CN"),
                    ],
                ),
                self.timeout_ms,
            ),
            Step::ExpectSession { code, .. } => {
                let (id, secret) = self
                    .mini
                    .as_ref()
                    .map(|a| (a.id.as_str(), a.secret.expose()))
                    .unwrap_or_default();
                cn::get(
                    self.api.url(
                        "/sns/jscode2session",
                        &[
                            ("appid", id),
                            ("secret", secret),
                            ("js_code", code.expose()),
                            ("grant_type", "authorization_code"),
                        ],
                    ),
                    self.timeout_ms,
                )
            }
        }
    }

    fn answer(&self, step: Step, response: &CalloutResponse) -> Result<Answer<Step>, IdpFailure> {
        let body = errcode_body(response, Self::LABEL, classify)?;
        match step {
            Step::ExpectToken { app, .. } => self.web_token(app, &body),
            Step::ExpectUserInfo { openid, claims, .. } => self.user_info(&openid, claims, &body),
            Step::ExpectSession { encrypted, .. } => self.mini_session(encrypted, &body),
        }
    }
}

type Judged = Result<Answer<Step>, IdpFailure>;

impl Wechat {
    /// `sns/oauth2/access_token`: the visitor's `openid`, then the profile unless the login is
    /// silent.
    fn web_token(&self, app: WebApp, body: &Map<String, Value>) -> Judged {
        let openid =
            cn::user_id(text_field(body, "openid")).ok_or(IdpFailure::BadAnswer("no_openid"))?;
        // A "snapshot page" visitor is a virtual user whose openid means nothing.
        if body.get("is_snapshotuser").and_then(Value::as_i64) == Some(1) {
            return Err(IdpFailure::NotMember {
                provider: Self::LABEL,
                why: "snapshot_user",
            });
        }
        let token = text_field(body, "access_token")
            .filter(|t| t.len() <= 1024)
            .ok_or(IdpFailure::BadAnswer("no_access_token"))?;
        let mut claims = Map::new();
        claims.insert("openid".into(), json!(openid));
        if let Some(u) = cn::user_id(text_field(body, "unionid")) {
            claims.insert("unionid".into(), json!(u));
        }
        let app_id = self.web_app(app).map(|a| a.id.clone()).unwrap_or_default();
        claims.insert("appid".into(), json!(app_id));
        let silent = app == WebApp::Mp && self.mp_scope == MpScope::SnsapiBase;
        if silent {
            return self.admit(claims);
        }
        Ok(Answer::Next(Step::ExpectUserInfo {
            user_token: Secret::new(token),
            openid,
            claims,
        }))
    }

    /// `sns/userinfo`: the profile of the same `openid`.
    fn user_info(
        &self,
        openid: &str,
        mut claims: Map<String, Value>,
        body: &Map<String, Value>,
    ) -> Judged {
        if text_field(body, "openid") != Some(openid) {
            return Err(IdpFailure::Subject);
        }
        for k in [
            "nickname",
            "sex",
            "province",
            "city",
            "country",
            "headimgurl",
            "unionid",
        ] {
            if let Some(v) = body.get(k).filter(|v| !v.is_null()) {
                if !(v.as_str().is_some_and(str::is_empty)) {
                    claims.insert(k.into(), v.clone());
                }
            }
        }
        self.admit(claims)
    }

    /// `sns/jscode2session`: the mini program's user, with the data it encrypted for us.
    fn mini_session(
        &self,
        encrypted: Option<(String, String)>,
        body: &Map<String, Value>,
    ) -> Judged {
        let openid =
            cn::user_id(text_field(body, "openid")).ok_or(IdpFailure::BadAnswer("no_openid"))?;
        let mini_id = self.mini.as_ref().map(|a| a.id.clone()).unwrap_or_default();
        let mut claims = Map::new();
        if let Some((data, iv)) = encrypted {
            // The session key decrypts; it never leaves this function.
            let key =
                text_field(body, "session_key").ok_or(IdpFailure::BadAnswer("no_session_key"))?;
            let plain = decrypt_user_data(key, &data, &iv, &mini_id)?;
            if text_field(&plain, "openId").is_some_and(|o| o != openid) {
                return Err(IdpFailure::Subject);
            }
            for (k, v) in plain {
                let k = match k.as_str() {
                    "nickName" => "nickname".to_owned(),
                    "unionId" => "unionid".to_owned(),
                    "openId" | "watermark" => continue,
                    _ => k,
                };
                claims.insert(k, v);
            }
        }
        claims.insert("openid".into(), json!(openid));
        if let Some(u) = cn::user_id(text_field(body, "unionid")) {
            claims.insert("unionid".into(), json!(u));
        }
        claims.insert("appid".into(), json!(mini_id));
        self.admit(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// providers.md §5.3 (generated with Python `cryptography`).
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODw==";
    const IV: &str = "EBESExQVFhcYGRobHB0eHw==";
    const DATA: &str = "LtwXY/thRoRMyUSJgcCEQPubqc36iBXOHVu0AQcgzO3/phhMeYhA9yGRCjE128aBlAb45i7+BT/NYGHFhLJ7+nw0zYy9RiBIdpvPtJJY4SGU/jj6+K+S2MS3SL1tDFrtPUGGZVGGCBGifIThPUis7g==";

    #[test]
    fn encrypted_data_vector() {
        let plain = decrypt_user_data(KEY, DATA, IV, "wx0000000000000000").unwrap();
        assert_eq!(plain["openId"], "oTEST_OPENID");
        assert_eq!(plain["nickName"], "tester");
        assert!(matches!(
            decrypt_user_data(KEY, DATA, IV, "wxother"),
            Err(IdpFailure::BadAnswer("watermark"))
        ));
        assert!(
            decrypt_user_data("AAECAwQFBgcICQoLDA0ODg==", DATA, IV, "wx0000000000000000").is_err()
        );
        assert!(decrypt_user_data(KEY, "AAAA", IV, "wx0000000000000000").is_err());
        assert!(decrypt_user_data(KEY, DATA, "AAAA", "wx0000000000000000").is_err());
    }
}
