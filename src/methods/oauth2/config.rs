//! The method's configuration: the fields as written, and their checks.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{parse_endpoint, ClientAuth, Explicit, OAuth2, Secret, UserInfoMethod};
use crate::error::ConfigError;
use crate::mapping::RawMapping;

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth2 {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    authorize_url: Option<String>,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    userinfo_url: Option<String>,
    #[serde(default)]
    logout_url: Option<String>,
    #[serde(default)]
    jwks_url: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    response_type: Option<String>,
    #[serde(default)]
    grant_type: Option<String>,
    #[serde(default)]
    client_auth: ClientAuth,
    #[serde(default)]
    userinfo_method: UserInfoMethod,
    #[serde(default)]
    userinfo: Option<bool>,
    #[serde(default)]
    user_id_path: Option<String>,
    #[serde(default)]
    user_name_path: Option<String>,
    #[serde(default)]
    email_path: Option<String>,
    #[serde(default)]
    callback_path: Option<String>,
    #[serde(default)]
    logout_redirect_param: Option<String>,
    #[serde(default = "default_true")]
    append_redirect_uri: bool,
    #[serde(default)]
    id_token_hint: bool,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    #[serde(default)]
    extra_authorize_params: BTreeMap<String, String>,
    #[serde(default)]
    reload_user: bool,
    #[serde(default)]
    forward_access_token: bool,
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> u64 {
    5000
}

/// Authorization-request parameters the filter sets itself (`extra_authorize_params` may not).
const RESERVED_PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "scope",
];

/// A configuration error at `{at}.{field}`.
fn err(at: &str, field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        path: format!("{at}.{field}"),
        reason: reason.into(),
    }
}

/// An optional endpoint URL field.
fn url_field(at: &str, field: &str, v: Option<&str>) -> Result<Option<url::Url>, ConfigError> {
    v.map(|u| parse_endpoint(u).map_err(|e| err(at, field, e)))
        .transpose()
}

impl RawOAuth2 {
    /// The client and the only supported flow.
    fn check_flow(&self, at: &str) -> Result<(), ConfigError> {
        if self.client_id.is_empty() {
            return Err(err(at, "client_id", "must not be empty"));
        }
        if self.client_secret.is_empty() {
            return Err(err(at, "client_secret", "must not be empty"));
        }
        if self.response_type.as_deref().is_some_and(|rt| rt != "code") {
            return Err(err(
                at,
                "response_type",
                "only \"code\" is supported (the implicit flow is unsafe)",
            ));
        }
        if self
            .grant_type
            .as_deref()
            .is_some_and(|gt| gt != "authorization_code")
        {
            return Err(err(
                at,
                "grant_type",
                "only \"authorization_code\" is supported",
            ));
        }
        Ok(())
    }

    /// The deadline, the callback path and the extra authorization parameters.
    fn check_rest(&self, at: &str) -> Result<(), ConfigError> {
        if self.timeout_ms == 0 || self.timeout_ms > 60_000 {
            return Err(err(at, "timeout_ms", "must be between 1 and 60000"));
        }
        if let Some(path) = &self.callback_path {
            // A query is allowed so existing registrations keep working
            // (`/oauth2/callback?client_name=oauth2`); the callback is matched on the path.
            if !path.starts_with('/') || path.contains('#') {
                return Err(err(
                    at,
                    "callback_path",
                    "must be an absolute path (a query is allowed, a fragment is not)",
                ));
            }
        }
        if let Some(k) = self
            .extra_authorize_params
            .keys()
            .find(|k| RESERVED_PARAMS.contains(&k.as_str()))
        {
            return Err(err(
                at,
                "extra_authorize_params",
                format!("{k} is set by the filter"),
            ));
        }
        Ok(())
    }

    /// The configured endpoints.
    fn explicit(&self, at: &str) -> Result<Explicit, ConfigError> {
        Ok(Explicit {
            authorize: url_field(at, "authorize_url", self.authorize_url.as_deref())?,
            token: url_field(at, "token_url", self.token_url.as_deref())?,
            userinfo: url_field(at, "userinfo_url", self.userinfo_url.as_deref())?,
            logout: url_field(at, "logout_url", self.logout_url.as_deref())?,
            jwks: url_field(at, "jwks_url", self.jwks_url.as_deref())?,
        })
    }

    /// The issuer without its trailing slash (required for oidc).
    fn issuer(&self, oidc: bool, at: &str) -> Result<Option<String>, ConfigError> {
        match (&self.issuer, oidc) {
            (Some(i), _) => {
                parse_endpoint(i).map_err(|e| err(at, "issuer", e))?;
                Ok(Some(i.trim_end_matches('/').to_owned()))
            }
            (None, true) => Err(err(at, "issuer", "required for oidc")),
            (None, false) => Ok(None),
        }
    }

    /// The scope (oidc's default asks for the usual claims; it must include `openid`).
    fn scope(&self, oidc: bool, at: &str) -> Result<String, ConfigError> {
        let scope = self.scope.clone().unwrap_or_else(|| {
            if oidc {
                "openid profile email".into()
            } else {
                String::new()
            }
        });
        if oidc && !scope.split(' ').any(|s| s == "openid") {
            return Err(err(at, "scope", "oidc needs the openid scope"));
        }
        Ok(scope)
    }
}

impl Explicit {
    /// Plain OAuth2 has no discovery, so it needs its own endpoints.
    fn check_required(&self, oidc: bool, at: &str) -> Result<(), ConfigError> {
        if !oidc {
            if self.authorize.is_none() {
                return Err(err(at, "authorize_url", "required for oauth2"));
            }
            if self.token.is_none() {
                return Err(err(at, "token_url", "required for oauth2"));
            }
            if self.userinfo.is_none() {
                return Err(err(
                    at,
                    "userinfo_url",
                    "required for oauth2 (the user comes from user-info)",
                ));
            }
        }
        Ok(())
    }
}

impl OAuth2 {
    /// Parses the method's configuration; `oidc` selects the OpenID Connect variant.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawOAuth2, oidc: bool, at: &str) -> Result<Self, ConfigError> {
        raw.check_flow(at)?;
        let explicit = raw.explicit(at)?;
        let issuer = raw.issuer(oidc, at)?;
        explicit.check_required(oidc, at)?;
        raw.check_rest(at)?;
        let scope = raw.scope(oidc, at)?;
        let mut default_mapping = RawMapping::default();
        default_mapping.set_paths(raw.user_id_path, raw.user_name_path, raw.email_path);
        Ok(OAuth2 {
            oidc,
            client_id: raw.client_id,
            client_secret: Secret::new(raw.client_secret),
            issuer,
            explicit,
            scope,
            client_auth: raw.client_auth,
            userinfo_method: raw.userinfo_method,
            use_userinfo: raw.userinfo.unwrap_or(true),
            callback_path: raw.callback_path,
            logout_redirect_param: raw.logout_redirect_param.unwrap_or_else(|| {
                if oidc {
                    "post_logout_redirect_uri".into()
                } else {
                    "redirect_uri".into()
                }
            }),
            append_redirect_uri: raw.append_redirect_uri,
            id_token_hint: raw.id_token_hint,
            timeout_ms: raw.timeout_ms,
            extra_authorize_params: raw.extra_authorize_params,
            reload_user: raw.reload_user,
            forward_access_token: raw.forward_access_token,
            default_mapping,
        })
    }
}
