//! Login methods: one folder (or file) per method, each implementing
//! [`crate::login::LoginMethod`], and the registry that maps a configuration `type` to one.
//! The building blocks several methods share sit here too: `cn` (the app-token providers'
//! machinery), `form` (the login form of `local` and `ldap`), `refresh` (keeping a session's
//! token alive: OIDC's forwarded access token, the JWT keep-alive) and `throttle`.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{parse_at, ConfigError};
use crate::login::LoginMethod;

pub mod cas;
pub mod cn;
pub mod dingtalk;
pub mod form;
pub mod jwt;
pub mod lark;
pub mod ldap;
pub mod local;
pub mod oauth2;
pub mod refresh;
pub mod saml2;
pub mod teams;
pub mod throttle;
pub mod wechat;
pub mod wecom;
pub mod yunzhijia;

/// Builds a method from its configuration fields (`type`, `label` and `mapping` already
/// taken out); `at` is its JSON path.
type Build = fn(Value, &str) -> Result<Arc<dyn LoginMethod>, ConfigError>;

/// Parses `fields` as `T` and builds the method with `make`.
fn build<T: DeserializeOwned, M: LoginMethod>(
    fields: Value,
    at: &str,
    make: impl FnOnce(T, &str) -> Result<M, ConfigError>,
) -> Result<Arc<dyn LoginMethod>, ConfigError> {
    Ok(Arc::new(make(parse_at(fields, at)?, at)?))
}

/// The registry: every configuration `type` and the implementation it builds. A new method is
/// a folder below `methods/` plus one line here.
const REGISTRY: &[(&str, Build)] = &[
    ("local", |f, at| build(f, at, local::Local::from_raw)),
    ("ldap", |f, at| build(f, at, ldap::Ldap::from_raw)),
    ("jwt", |f, at| build(f, at, jwt::Jwt::from_raw)),
    ("oauth2", |f, at| {
        build(f, at, |raw, at| oauth2::OAuth2::from_raw(raw, false, at))
    }),
    ("oidc", |f, at| {
        build(f, at, |raw, at| oauth2::OAuth2::from_raw(raw, true, at))
    }),
    ("cas", |f, at| build(f, at, cas::Cas::from_raw)),
    ("saml2", |f, at| build(f, at, saml2::Saml2::from_raw)),
    ("wecom", |f, at| build(f, at, wecom::Wecom::from_raw)),
    ("dingtalk", |f, at| {
        build(f, at, dingtalk::DingTalk::from_raw)
    }),
    ("lark", |f, at| build(f, at, lark::Lark::from_raw)),
    ("wechat", |f, at| build(f, at, wechat::Wechat::from_raw)),
    ("yunzhijia", |f, at| {
        build(f, at, yunzhijia::Yunzhijia::from_raw)
    }),
    ("teams", |f, at| build(f, at, teams::Teams::from_raw)),
];

/// The configuration types, for error messages.
pub fn type_names() -> Vec<&'static str> {
    REGISTRY.iter().map(|(name, _)| *name).collect()
}

/// Builds the method of configuration type `type_name` from its fields.
///
/// # Errors
///
/// [`ConfigError`] for an unknown type (at `{at}.type`) or the method's own fields.
pub fn from_config(
    type_name: &str,
    fields: Value,
    at: &str,
) -> Result<Arc<dyn LoginMethod>, ConfigError> {
    let (_, make) = REGISTRY
        .iter()
        .find(|(name, _)| *name == type_name)
        .ok_or_else(|| ConfigError {
            path: format!("{at}.type"),
            reason: format!(
                "unknown method type {type_name:?} (one of: {})",
                type_names().join(", ")
            ),
        })?;
    make(fields, at)
}

impl std::fmt::Debug for dyn LoginMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoginMethod({})", self.type_name())
    }
}
