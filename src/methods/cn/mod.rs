//! What the enterprise IdPs of China share (DingTalk, WeCom, Feishu/Lark, Yunzhijia, WeChat):
//! secrets and endpoint bases in configuration, the choice between QR/web login and in-app
//! silent login, app access tokens cached process-wide, and error codes inside HTTP-200
//! bodies (`reference/providers.md` §0).
//!
//! Each provider module implements [`Provider`]: how a login starts, which step the code (or
//! ticket) starts at, which callout each step makes and how its answer is judged. Every
//! provider is a [`crate::login::LoginMethod`] through the one generic implementation in
//! [`login`], which drives the steps as typed waits, fetching and caching app tokens on the way:
//! a new provider is one module implementing [`Provider`] and one line in the registry
//! (`config::parse_methods`).

use std::fmt;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::cache::SharedCache;
use crate::deny::Deny;
use crate::error::ConfigError;
use crate::http::{cluster_name, Callout, CalloutResponse, Query};
use crate::idp::{json_body, IdpFailure, MAX_SMALL_BODY};
use crate::idp::{CodeKind, ProviderCode};
use crate::mapping::RawMapping;
use crate::pages::lang::Text;
use crate::pages::login::{Offer, Way};

mod exchange;
pub mod login;
pub mod org;
mod sync;

pub use crate::secret::Secret;

/// An identifier that configuration may write as a JSON string or a number (`agent_id`).
///
/// # Errors
///
/// [`ConfigError`] at `at` for any other JSON type.
pub fn id_text(value: &Value, at: &str) -> Result<String, ConfigError> {
    match value {
        Value::String(t) => Ok(t.trim().to_owned()),
        Value::Number(n) if n.is_u64() => Ok(n.to_string()),
        _ => Err(ConfigError {
            path: at.to_owned(),
            reason: "must be a string or a non-negative integer".into(),
        }),
    }
}

/// A provider host (`https://qyapi.weixin.qq.com`), configurable so private clouds and tests
/// point elsewhere. It may carry a path prefix, which endpoint paths are appended to.
#[derive(Clone, Debug)]
pub struct ApiBase(url::Url);

impl ApiBase {
    /// Parses a base URL from configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] at `at` when it is not an absolute http(s) URL without query.
    pub fn parse(text: &str, at: &str) -> Result<Self, ConfigError> {
        let err = |reason: &str| ConfigError {
            path: at.to_owned(),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(text.trim_end_matches('/'))
            .map_err(|e| err(&format!("not an absolute URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(err("must be an http(s) URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(err("must not have a query or fragment"));
        }
        Ok(ApiBase(url))
    }

    /// `base + path` with the query pairs appended (form-encoded).
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> url::Url {
        let mut url = self.0.clone();
        let joined = format!("{}{path}", self.0.path().trim_end_matches('/'));
        url.set_path(&joined);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// The origin URL (for `sso-filter clusters`).
    pub fn origin(&self) -> url::Url {
        self.url("/", &[])
    }
}

/// Which app-level token a step needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    /// The app's (corp's) access token.
    App,
    /// DingTalk's admin-console SSO token (CorpId + SSOSecret).
    AdminSso,
    /// Feishu's tenant access token.
    Tenant,
}

impl TokenKind {
    fn label(self) -> &'static str {
        match self {
            TokenKind::App => "app",
            TokenKind::AdminSso => "sso",
            TokenKind::Tenant => "tenant",
        }
    }
}

/// A freshly fetched app token and its lifetime.
#[derive(Clone)]
pub struct Fetched {
    /// The token.
    pub token: String,
    /// Seconds it stays valid.
    pub expires_in: u64,
}

impl Fetched {
    /// The app token of a token answer the provider's judge accepted: the `token` field (at
    /// most 1 KiB) and its lifetime from the `lifetime` field, else `default` seconds (kept
    /// within [`lifetime`]'s bounds). Every provider reads its token answer so; only the field
    /// names differ.
    ///
    /// # Errors
    ///
    /// [`IdpFailure::BadAnswer`] without a usable token.
    pub fn from_body(
        body: &Map<String, Value>,
        token: &str,
        lifetime_field: &str,
        default: u64,
    ) -> Result<Self, IdpFailure> {
        let token = text_field(body, token)
            .filter(|t| t.len() <= 1024)
            .ok_or(IdpFailure::BadAnswer("no_access_token"))?;
        Ok(Fetched {
            token: token.to_owned(),
            expires_in: lifetime(body.get(lifetime_field), default),
        })
    }
}

impl fmt::Debug for Fetched {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fetched([redacted], {}s)", self.expires_in)
    }
}

/// The shared-cache key of an app token: provider, token kind, app id and a digest of the
/// secret (a rotated secret never reuses the old secret's token).
pub fn token_key(provider: &str, kind: TokenKind, app_id: &str, secret: &Secret) -> String {
    format!(
        "sso:apptoken:{provider}:{}:{app_id}:{}",
        kind.label(),
        secret_tag(secret)
    )
}

/// The shared-cache key prefix of an app's department tree (what the app sees depends on its
/// secret's app, as for its token).
pub fn org_key(provider: &str, app_id: &str, secret: &Secret) -> String {
    format!("sso:org:{provider}:{app_id}:{}", secret_tag(secret))
}

/// A short digest of a secret: keys differ when the secret does, without holding it.
fn secret_tag(secret: &Secret) -> String {
    let digest = Sha256::digest(secret.expose().as_bytes());
    digest.iter().take(6).map(|b| format!("{b:02x}")).collect()
}

/// A cached app token still good for `margin` seconds (refetched early, providers.md §0.2).
pub fn cached_token(cache: &dyn SharedCache, key: &str, now: u64, margin: u64) -> Option<String> {
    let (bytes, _) = cache.get(key).ok()??;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = v.get("exp")?.as_u64()?;
    if now.saturating_add(margin) >= exp {
        return None;
    }
    v.get("token")?.as_str().map(str::to_owned)
}

/// Stores a fetched app token (a failure only costs a refetch next time).
pub fn store_token(cache: &dyn SharedCache, key: &str, fetched: &Fetched, now: u64) {
    let value =
        serde_json::json!({"token": fetched.token, "exp": now.saturating_add(fetched.expires_in)});
    if cache.set(key, value.to_string().as_bytes(), None).is_err() {
        log::info!("sso-filter: could not cache an app token");
    }
}

/// Drops a cached app token the provider refused, so the next use fetches a new one.
pub fn forget_token(cache: &dyn SharedCache, key: &str) {
    if cache.set(key, b"{}", None).is_err() {
        log::info!("sso-filter: could not drop an app token");
    }
}

/// What a provider answer leads to.
#[derive(Debug)]
pub enum Answer<S> {
    /// Another callout, for this step.
    Next(S),
    /// The user's claims: the login is complete.
    Claims(Map<String, Value>),
    /// The provider refused the app token (expired, revoked): refetch it once and redo the step.
    TokenRejected(S),
}

/// A login the request URL carries (a light-app ticket, an admin-console code).
#[derive(Debug)]
pub struct UrlLogin<S> {
    /// The first step.
    pub step: S,
    /// The URL parameters to drop from the address the browser lands on.
    pub strip: Vec<String>,
}

/// How a login starts.
#[derive(Debug)]
pub enum Begin {
    /// Send the browser to this URL (QR page, in-app OAuth).
    Redirect(String),
    /// Serve a page that runs the client's JSAPI and posts the code back.
    Page(JsPage),
}

/// A small page that asks the client app for a code and posts it to the filter.
#[derive(Clone, Debug)]
pub struct JsPage {
    /// Page title.
    pub title: String,
    /// The client SDK to load first (the provider's JSAPI), if any.
    pub sdk: Option<String>,
    /// Values the script reads as `CFG` (ids only, never secrets).
    pub config: Value,
    /// The script: must call `send({code: ..., ...})` with what the JSAPI gave, or
    /// `fail(message)`.
    pub script: String,
    /// The CSP `frame-ancestors` sources, for pages that live in another site's iframe.
    pub frame_ancestors: Option<String>,
}

/// What a step needs before its callout, decided from the shared cache.
#[derive(Debug)]
pub enum Settled<S> {
    /// Send the step's callout.
    Call(S),
    /// The cache already answers it.
    Done(Answer<S>),
}

/// What a login start knows: the parameters of `/sso/login` and of the page that asked for
/// login (the seeds put `wcwLoginType`, `dtLoginType`, `corpId` on the application's URL), and
/// the `User-Agent`.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The query of `/sso/login`.
    pub login: &'a Query,
    /// The query of the return URL.
    pub page: Query,
    /// The `User-Agent` header ("" when absent).
    pub user_agent: &'a str,
}

impl Entry<'_> {
    /// A parameter from `/sso/login`, else from the return URL (repeated values refused).
    ///
    /// # Errors
    ///
    /// [`Deny::BadRequest`] when the parameter is repeated.
    pub fn param(&self, name: &str) -> Result<Option<&str>, Deny> {
        let dup = |_| Deny::BadRequest("duplicate_param");
        match self.login.single(name).map_err(dup)? {
            Some(v) => Ok(Some(v)),
            None => self.page.single(name).map_err(dup),
        }
    }

    /// Whether the `User-Agent` contains `needle` (ASCII case-insensitive).
    pub fn agent_has(&self, needle: &str) -> bool {
        self.user_agent
            .to_ascii_lowercase()
            .contains(&needle.to_ascii_lowercase())
    }
}

/// The QR login of a provider on the login page, named `en` / `zh`; `login_type` is the
/// provider's login-type parameter and its QR value, for a method whose default login is
/// another (the button must start the QR login in a browser).
pub fn qr_offer(en: &'static str, zh: &'static str, login_type: Option<(&str, &str)>) -> Offer {
    Offer {
        way: Way::QrCode,
        name: Some(Text::new(en, zh)),
        params: login_type
            .map(|(k, v)| vec![(k.to_owned(), v.to_owned())])
            .unwrap_or_default(),
    }
}

/// A provider of this family, as [`login`] drives it.
pub trait Provider: Send + Sync + 'static {
    /// What a callout's answer is awaited as (kept in the callout wait).
    type Step: fmt::Debug + Send + 'static;

    /// The configuration `type` (`wecom`).
    const TYPE: &'static str;

    /// The provider's name for pages and logs (`WeCom`).
    const LABEL: &'static str;

    /// Callout deadline, milliseconds.
    fn timeout_ms(&self) -> u64;

    /// The redirect path the provider returns to: `Some(Some(path))` when configured,
    /// `Some(None)` for `{prefix}/callback/{method}`, `None` when the login never comes back to
    /// a callback (it arrives on the application's own URL, or is posted by a page), the
    /// default.
    fn callback_path(&self) -> Option<Option<&str>> {
        None
    }

    /// Mapping defaults the provider's answers imply.
    fn default_mapping(&self) -> RawMapping;

    /// Every URL the provider calls out to (for `sso-filter clusters`).
    fn outbound_urls(&self) -> Vec<url::Url>;

    /// Picks the login variant (QR, in-app, ...) for a start.
    ///
    /// # Errors
    ///
    /// [`Deny`] for an unknown or unusable login type.
    fn choose(&self, entry: &Entry<'_>) -> Result<&'static str, Deny>;

    /// What the browser is sent to (or shown) to start `variant`.
    ///
    /// # Errors
    ///
    /// [`Deny`] when the variant cannot start here.
    fn begin(
        &self,
        variant: &str,
        entry: &Entry<'_>,
        state: &str,
        redirect_uri: &str,
    ) -> Result<Begin, Deny>;

    /// The first step after the provider redirected back with a code; `redirect_uri` is the
    /// one the authorization request named.
    ///
    /// # Errors
    ///
    /// [`Deny`] when the callback carries no code or an error.
    fn callback(
        &self,
        variant: &str,
        query: &Query,
        redirect_uri: &str,
    ) -> Result<Self::Step, Deny>;

    /// The first step for a code an in-app page posted.
    ///
    /// # Errors
    ///
    /// [`Deny`] when the body carries no usable code.
    fn posted(&self, _variant: &str, _fields: &Map<String, Value>) -> Result<Self::Step, Deny> {
        Err(Deny::BadRequest("no_posted_code"))
    }

    /// The first step when the request URL itself carries the login (a light-app ticket, an
    /// admin-console code), with the parameters to strip from the URL afterwards.
    ///
    /// # Errors
    ///
    /// [`Deny`] for a malformed parameter.
    fn url_login(&self, _query: &Query) -> Result<Option<UrlLogin<Self::Step>>, Deny> {
        Ok(None)
    }

    /// How the login page offers this provider to a browser (its QR login); `None`, the
    /// default: only the provider's app client can start its login.
    fn offer(&self) -> Option<Offer> {
        None
    }

    /// Whether the login page lives in another site's iframe (its flow cookie must then be
    /// `SameSite=None`).
    fn cross_site(&self) -> bool {
        false
    }

    /// The organisation sync of this method and how it lists its department tree, when
    /// `org_from_departments` is on and `sync_minutes` is not 0 (`org.rs`, `sync.rs`).
    fn org_sync(&self) -> Option<(&org::OrgSync, &dyn org::TreeSource)> {
        None
    }

    /// The first step of a walk up a member's department path, as `(department id, names so
    /// far, the root's id, claims)`, so [`Self::settle`] can finish it from the synced tree.
    fn department_walk<'s>(&self, _step: &'s Self::Step) -> Option<org::DepartmentWalk<'s>> {
        None
    }

    /// Settles a step from the shared cache when it can (a cached JWKS; by default, a
    /// department walk the synced tree knows), before any callout.
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] when the cached material refuses the login.
    fn settle(
        &self,
        step: Self::Step,
        cache: &dyn SharedCache,
        now: u64,
    ) -> Result<Settled<Self::Step>, IdpFailure> {
        let sync = self.org_sync().map(|(s, _)| s);
        let settled = self
            .department_walk(&step)
            .and_then(|(id, names, root, claims)| {
                org::settled(sync, (cache, now), (id, names, root), claims)
            });
        Ok(match settled {
            Some(claims) => Settled::Done(Answer::Claims(claims)),
            None => Settled::Call(step),
        })
    }

    /// Keeps what a step's answer should leave in the shared cache (a JWKS), before it is
    /// judged.
    fn remember(
        &self,
        _step: &Self::Step,
        _response: &CalloutResponse,
        _cache: &dyn SharedCache,
        _now: u64,
    ) {
    }

    /// The app token a step's callout needs, if any.
    fn token_for(&self, step: &Self::Step) -> Option<TokenKind>;

    /// The shared-cache key of a token kind.
    fn token_key(&self, kind: TokenKind) -> String;

    /// The callout that fetches a token.
    fn token_request(&self, kind: TokenKind, now_ms: u64) -> Callout;

    /// Judges a token answer.
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for error codes and unusable answers.
    fn token_answer(
        &self,
        kind: TokenKind,
        response: &CalloutResponse,
    ) -> Result<Fetched, IdpFailure>;

    /// Seconds before expiry at which a cached token is refetched.
    fn refresh_margin(&self) -> u64 {
        300
    }

    /// The callout of a step (with its app token when [`Provider::token_for`] asked for one).
    fn request(&self, step: &Self::Step, token: Option<&str>, now_ms: u64) -> Callout;

    /// Judges a step's answer.
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for error codes, outsiders and unusable answers.
    fn answer(
        &self,
        step: Self::Step,
        response: &CalloutResponse,
    ) -> Result<Answer<Self::Step>, IdpFailure>;
}

/// Parses an answer of the `errcode` family (WeCom, DingTalk oapi, WeChat): a JSON object,
/// HTTP 200, `errcode` 0 or absent. `classify` names what a non-zero code means; token codes
/// come back as [`CodeKind::TokenInvalid`] for the caller to retry.
///
/// # Errors
///
/// [`IdpFailure`] for non-JSON, non-200 and non-zero `errcode`.
pub fn errcode_body(
    response: &CalloutResponse,
    provider: &'static str,
    classify: fn(i64) -> CodeKind,
) -> Result<Map<String, Value>, IdpFailure> {
    errcode_body_within(response, provider, classify, MAX_SMALL_BODY)
}

/// [`errcode_body`] for answers up to `limit` bytes (a department list).
///
/// # Errors
///
/// As [`errcode_body`].
pub fn errcode_body_within(
    response: &CalloutResponse,
    provider: &'static str,
    classify: fn(i64) -> CodeKind,
    limit: usize,
) -> Result<Map<String, Value>, IdpFailure> {
    let body = json_body(response, limit)?;
    let code = body.get("errcode").map(|c| match c {
        Value::Number(n) => n.as_i64().unwrap_or(-1),
        Value::String(s) => s.trim().parse::<i64>().unwrap_or(-1),
        _ => -1,
    });
    match code {
        None | Some(0) => {}
        Some(c) => {
            log::warn!(
                "sso-filter: {provider} error errcode={c} errmsg={}",
                crate::deny::sanitize(body.get("errmsg").and_then(Value::as_str).unwrap_or(""))
            );
            return Err(IdpFailure::Code(ProviderCode {
                provider,
                code: c.to_string(),
                kind: classify(c),
            }));
        }
    }
    if response.status != Some(200) {
        return Err(IdpFailure::BadAnswer("status"));
    }
    Ok(body)
}

/// Whether a failure is the provider refusing our app token.
pub fn is_token_rejection(failure: &IdpFailure) -> bool {
    matches!(failure, IdpFailure::Code(c) if c.kind == CodeKind::TokenInvalid)
}

/// A non-empty string field.
pub fn text_field<'a>(body: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// A provider user id fit to be a login: 1-128 bytes, no control characters.
pub fn user_id(value: Option<&str>) -> Option<String> {
    value
        .filter(|v| v.len() <= 128 && !v.chars().any(char::is_control))
        .map(str::to_owned)
}

/// An app token's lifetime from an answer: the number given, else `default`, kept within
/// one minute and one day (security.md L8: negative or huge values).
pub fn lifetime(value: Option<&Value>, default: u64) -> u64 {
    value
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .unwrap_or(default)
        .clamp(60, 86_400)
}

/// A GET callout.
pub fn get(url: url::Url, timeout_ms: u64) -> Callout {
    Callout {
        upstream: cluster_name(&url),
        url: url.to_string(),
        method: "GET".into(),
        headers: vec![("accept".into(), "application/json".into())],
        body: Vec::new(),
        timeout_ms,
    }
}

/// A POST callout with a JSON body.
pub fn post_json(url: url::Url, body: &Value, timeout_ms: u64) -> Callout {
    Callout {
        upstream: cluster_name(&url),
        url: url.to_string(),
        method: "POST".into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("accept".into(), "application/json".into()),
        ],
        body: body.to_string().into_bytes(),
        timeout_ms,
    }
}

/// Checks a secret from configuration.
///
/// # Errors
///
/// [`ConfigError`] when it is empty.
pub fn require_secret(secret: &Secret, at: &str) -> Result<(), ConfigError> {
    if secret.is_empty() {
        return Err(ConfigError {
            path: at.to_owned(),
            reason: "must not be empty".into(),
        });
    }
    Ok(())
}

/// Checks an identifier from configuration.
///
/// # Errors
///
/// [`ConfigError`] when it is empty or has characters that do not belong in a URL parameter.
pub fn require_id(value: &str, at: &str) -> Result<(), ConfigError> {
    let ok = !value.is_empty()
        && value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !ok {
        return Err(ConfigError {
            path: at.to_owned(),
            reason: format!("{value:?} must be 1-128 characters of A-Z a-z 0-9 - _ ."),
        });
    }
    Ok(())
}

/// Checks a callback path from configuration.
///
/// # Errors
///
/// [`ConfigError`] when it is not an absolute path without query.
pub fn check_callback_path(path: &Option<String>, at: &str) -> Result<(), ConfigError> {
    if let Some(p) = path {
        if !p.starts_with('/') || p.contains(['?', '#']) {
            return Err(ConfigError {
                path: at.to_owned(),
                reason: "must be an absolute path without query".into(),
            });
        }
    }
    Ok(())
}

/// Checks a callout deadline from configuration.
///
/// # Errors
///
/// [`ConfigError`] when it is not 1..=60000 ms.
pub fn check_timeout(ms: u64, at: &str) -> Result<(), ConfigError> {
    if ms == 0 || ms > 60_000 {
        return Err(ConfigError {
            path: at.to_owned(),
            reason: "must be between 1 and 60000".into(),
        });
    }
    Ok(())
}

/// The default callout deadline.
pub fn default_timeout() -> u64 {
    5000
}

/// Writes serde defaults that are a fixed text (a parameter name, a provider's base URL):
/// serde takes a default only from a function, and every provider has several, so each is
/// one line here instead of a function of its own.
macro_rules! text_defaults {
    ($($name:ident = $text:literal;)+) => {
        $(
            fn $name() -> String {
                $text.into()
            }
        )+
    };
}
pub(crate) use text_defaults;

/// `true`, for serde defaults.
pub fn default_true() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    #[test]
    fn app_tokens_are_refetched_early_and_forgotten() {
        let cache = MemoryCache::default();
        let key = token_key("wecom", TokenKind::App, "ww1", &Secret::new("s"));
        assert!(key.starts_with("sso:apptoken:wecom:app:ww1:"));
        assert!(!key.contains('s') || !key.ends_with(":s"));
        let fetched = Fetched {
            token: "T".into(),
            expires_in: 7200,
        };
        store_token(&cache, &key, &fetched, 1000);
        assert_eq!(cached_token(&cache, &key, 1000, 300).as_deref(), Some("T"));
        assert_eq!(cached_token(&cache, &key, 7899, 300).as_deref(), Some("T"));
        assert_eq!(cached_token(&cache, &key, 7900, 300), None);
        forget_token(&cache, &key);
        assert_eq!(cached_token(&cache, &key, 1000, 300), None);
    }

    #[test]
    fn bases_keep_their_path_prefix() {
        let b = ApiBase::parse("http://127.0.0.1:9000/wecom/", "x").unwrap();
        assert_eq!(
            b.url("/cgi-bin/gettoken", &[("corpid", "a b")]).as_str(),
            "http://127.0.0.1:9000/wecom/cgi-bin/gettoken?corpid=a+b"
        );
        assert!(ApiBase::parse("qyapi.weixin.qq.com", "x").is_err());
    }

    #[test]
    fn errcodes_inside_http_200_are_errors() {
        let answer = |body: &str| CalloutResponse {
            status: Some(200),
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        let classify = |c: i64| {
            if c == 42001 {
                CodeKind::TokenInvalid
            } else {
                CodeKind::Other
            }
        };
        assert!(errcode_body(&answer(r#"{"errcode":0,"a":1}"#), "X", classify).is_ok());
        assert!(errcode_body(&answer(r#"{"a":1}"#), "X", classify).is_ok());
        let e = errcode_body(&answer(r#"{"errcode":42001}"#), "X", classify).unwrap_err();
        assert!(is_token_rejection(&e));
        assert!(errcode_body(&answer(r#"{"errcode":"40029"}"#), "X", classify).is_err());
        assert!(errcode_body(&answer("[1]"), "X", classify).is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter2")),
            "Secret([redacted])"
        );
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert_eq!(lifetime(Some(&serde_json::json!(7200)), 1), 7200);
        assert_eq!(lifetime(Some(&serde_json::json!(-5)), 7200), 7200);
        assert_eq!(lifetime(Some(&serde_json::json!(10)), 7200), 60);
        assert_eq!(lifetime(None, 6400), 6400);
    }
}
