//! `type: oauth2` and `type: oidc`: the authorization-code flow with PKCE, reached through
//! proxy callouts. `oidc` adds discovery, JWKS and ID-token verification (OpenID Connect Core
//! 1.0 §3.1.3.7).
//!
//! This module holds the configured method and its endpoints; `config` parses it, `tokens`
//! builds the token and user-info requests and judges their answers, `id_token` verifies the
//! ID token, and `login` (with `callback`, `documents` and `session`) is the flow behind
//! [`crate::login::LoginMethod`].

use std::collections::BTreeMap;

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::http::{cluster_name, Callout};
use crate::idp::IdpFailure;
use crate::jose::B64URL;
use crate::mapping::RawMapping;

mod callback;
mod config;
mod documents;
mod id_token;
mod login;
mod session;
mod tokens;

pub use config::RawOAuth2;

/// How long discovery documents and JWKS are trusted before they are fetched again.
pub const DOC_TTL: u64 = 3600;
/// The shortest interval between two JWKS fetches forced by an unknown `kid` (security.md M5).
pub const JWKS_REFETCH_INTERVAL: u64 = 60;

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the URL-encoded id and secret.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// The user-info request's method (the seeds offer both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum UserInfoMethod {
    /// `GET` with `Authorization: Bearer`.
    #[default]
    #[serde(rename = "GET")]
    Get,
    /// `POST` with `Authorization: Bearer` and an empty form.
    #[serde(rename = "POST")]
    Post,
}

pub use crate::secret::Secret;
/// A configured OAuth2 / OIDC method.
#[derive(Debug)]
pub struct OAuth2 {
    /// Whether this is `oidc` (ID token required and verified).
    pub oidc: bool,
    client_id: String,
    client_secret: Secret,
    issuer: Option<String>,
    explicit: Explicit,
    scope: String,
    client_auth: ClientAuth,
    userinfo_method: UserInfoMethod,
    use_userinfo: bool,
    /// Callback path, when configured (else `{prefix}/callback/{method}`).
    pub callback_path: Option<String>,
    logout_redirect_param: String,
    append_redirect_uri: bool,
    /// Whether the ID token is kept in the session for `id_token_hint` at logout.
    pub id_token_hint: bool,
    /// Callout deadline.
    pub timeout_ms: u64,
    extra_authorize_params: BTreeMap<String, String>,
    /// Re-ask the IdP for the current user on every page load (the seeds' "reload user").
    pub reload_user: bool,
    /// Give the upstream the IdP's access token as `Authorization: Bearer`, refreshed before it
    /// expires.
    pub forward_access_token: bool,
    /// Mapping defaults from `user_id_path`, `user_name_path`, `email_path`.
    pub default_mapping: RawMapping,
}

#[derive(Debug, Default)]
struct Explicit {
    authorize: Option<url::Url>,
    token: Option<url::Url>,
    userinfo: Option<url::Url>,
    logout: Option<url::Url>,
    jwks: Option<url::Url>,
}

/// The endpoints a login uses: configured, discovered, or both (configuration wins).
#[derive(Clone, Debug)]
pub struct Endpoints {
    /// Authorization endpoint.
    pub authorize: url::Url,
    /// Token endpoint.
    pub token: url::Url,
    /// User-info endpoint.
    pub userinfo: Option<url::Url>,
    /// End-session / logout endpoint.
    pub logout: Option<url::Url>,
    /// JWKS.
    pub jwks: Option<url::Url>,
    /// Whether the provider adds `iss` to authorization responses (RFC 9207).
    pub iss_parameter: bool,
}

/// The tokens from a successful token response.
#[derive(Clone, Debug)]
pub struct Tokens {
    /// Access token (for user-info).
    pub access_token: String,
    /// ID token (required for oidc).
    pub id_token: Option<String>,
    /// Refresh token.
    pub refresh_token: Option<String>,
    /// Access-token lifetime in seconds (RFC 6749 §5.1 `expires_in`).
    pub expires_in: Option<u64>,
}

impl OAuth2 {
    /// Every URL the method may call (for `sso-filter clusters`).
    pub fn outbound_urls(&self) -> Vec<url::Url> {
        let mut out: Vec<url::Url> = [
            &self.explicit.token,
            &self.explicit.userinfo,
            &self.explicit.jwks,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
        if let Some(d) = self.discovery_url() {
            out.push(d);
        }
        out
    }

    /// The discovery URL (oidc without every endpoint configured).
    pub fn discovery_url(&self) -> Option<url::Url> {
        let issuer = self.issuer.as_ref()?;
        let e = &self.explicit;
        if e.authorize.is_some() && e.token.is_some() && (e.jwks.is_some() || !self.oidc) {
            return None;
        }
        url::Url::parse(&format!("{issuer}/.well-known/openid-configuration")).ok()
    }

    /// The endpoints from configuration alone, when discovery is not needed.
    pub fn configured_endpoints(&self) -> Option<Endpoints> {
        let e = &self.explicit;
        Some(Endpoints {
            authorize: e.authorize.clone()?,
            token: e.token.clone()?,
            userinfo: e.userinfo.clone(),
            logout: e.logout.clone(),
            jwks: e.jwks.clone(),
            iss_parameter: false,
        })
        .filter(|_| self.discovery_url().is_none())
    }

    /// Endpoints from a discovery document, with configured ones taking precedence.
    ///
    /// # Errors
    ///
    /// [`IdpFailure::BadAnswer`] when the document lacks what the flow needs or names another
    /// issuer (OpenID Connect Discovery §4.3).
    pub fn endpoints_from_discovery(&self, doc: &Value) -> Result<Endpoints, IdpFailure> {
        let url = |name: &str| {
            doc.get(name)
                .and_then(Value::as_str)
                .and_then(|u| parse_endpoint(u).ok())
        };
        if let Some(issuer) = &self.issuer {
            let doc_issuer = doc
                .get("issuer")
                .and_then(Value::as_str)
                .map(|i| i.trim_end_matches('/'));
            if doc_issuer != Some(issuer.as_str()) {
                return Err(IdpFailure::BadAnswer("discovery_issuer"));
            }
        }
        let e = &self.explicit;
        Ok(Endpoints {
            authorize: e
                .authorize
                .clone()
                .or_else(|| url("authorization_endpoint"))
                .ok_or(IdpFailure::BadAnswer("discovery"))?,
            token: e
                .token
                .clone()
                .or_else(|| url("token_endpoint"))
                .ok_or(IdpFailure::BadAnswer("discovery"))?,
            userinfo: e.userinfo.clone().or_else(|| url("userinfo_endpoint")),
            logout: e.logout.clone().or_else(|| url("end_session_endpoint")),
            jwks: e.jwks.clone().or_else(|| url("jwks_uri")),
            iss_parameter: doc
                .get("authorization_response_iss_parameter_supported")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        })
    }

    /// A GET callout for a document (discovery, JWKS).
    pub fn fetch(&self, url: &url::Url) -> Callout {
        Callout {
            upstream: cluster_name(url),
            url: url.to_string(),
            method: "GET".into(),
            headers: vec![("accept".into(), "application/json".into())],
            body: Vec::new(),
            timeout_ms: self.timeout_ms,
        }
    }

    /// The authorization request URL (RFC 6749 §4.1.1, RFC 7636 §4.3).
    pub fn authorize_url(
        &self,
        eps: &Endpoints,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        verifier: &str,
        silent: bool,
    ) -> String {
        let mut url = eps.authorize.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", state)
                .append_pair("code_challenge", &pkce_challenge(verifier))
                .append_pair("code_challenge_method", "S256");
            if !self.scope.is_empty() {
                q.append_pair("scope", &self.scope);
            }
            if self.oidc {
                q.append_pair("nonce", nonce);
                // A reload must not show the IdP's pages: OIDC Core §3.1.2.1 `prompt=none`.
                if silent {
                    q.append_pair("prompt", "none");
                }
            }
            for (k, v) in &self.extra_authorize_params {
                q.append_pair(k, v);
            }
        }
        url.to_string()
    }

    /// The IdP logout redirect for a session of this method, if the IdP has one.
    pub fn logout_redirect(
        &self,
        eps_logout: Option<&url::Url>,
        return_to: &str,
        id_token: Option<&str>,
    ) -> Option<String> {
        let mut url = eps_logout?.clone();
        {
            let mut q = url.query_pairs_mut();
            if self.append_redirect_uri {
                q.append_pair(&self.logout_redirect_param, return_to);
                if self.oidc {
                    q.append_pair("client_id", &self.client_id);
                }
            }
            if let (true, Some(t)) = (self.id_token_hint, id_token) {
                q.append_pair("id_token_hint", t);
            }
        }
        Some(url.to_string())
    }

    /// The configured logout endpoint, if any (without discovery).
    pub fn configured_logout(&self) -> Option<&url::Url> {
        self.explicit.logout.as_ref()
    }

    /// The issuer, for RFC 9207 checks.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }
}

/// `BASE64URL(SHA256(verifier))` (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    B64URL.encode(Sha256::digest(verifier.as_bytes()))
}

/// An IdP endpoint URL: absolute http(s) with a host.
pub fn parse_endpoint(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http(s) URL with a host".into());
    }
    if url.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    #[test]
    fn pkce_rfc7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }
}
