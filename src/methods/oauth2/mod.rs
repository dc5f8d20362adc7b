//! `type: oauth2` and `type: oidc`: the authorization-code flow with PKCE, reached through
//! proxy callouts. `oidc` adds discovery, JWKS and ID-token verification (OpenID Connect Core
//! 1.0 §3.1.3.7). This module builds the requests and judges the answers; the engine's
//! `redirect_flow` drives the wait states.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ConfigError;
use crate::http::{cluster_name, Callout, CalloutResponse};
use crate::idp::{json_body, sanitize_code, IdpFailure, MAX_SMALL_BODY};
use crate::jose::claims::{numeric_date, ClaimRules};
use crate::jose::jws::Verifier;
use crate::jose::keys::{JwsAlg, VerifyKey};
use crate::jose::{strict_object, JoseError, B64STD, B64URL};
use crate::mapping::RawMapping;

/// How long discovery documents and JWKS are trusted before they are fetched again.
pub const DOC_TTL: u64 = 3600;
/// The shortest interval between two JWKS fetches forced by an unknown `kid` (security.md M5).
pub const JWKS_REFETCH_INTERVAL: u64 = 60;

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

/// A client secret: never printed.
#[derive(Clone)]
pub struct Secret(String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

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
    /// Parses the method's configuration; `oidc` selects the OpenID Connect variant.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawOAuth2, oidc: bool, at: &str) -> Result<Self, ConfigError> {
        let err = |field: &str, reason: String| ConfigError {
            path: format!("{at}.{field}"),
            reason,
        };
        let url_field =
            |field: &str, v: &Option<String>| -> Result<Option<url::Url>, ConfigError> {
                v.as_deref()
                    .map(|u| parse_endpoint(u).map_err(|e| err(field, e)))
                    .transpose()
            };
        if raw.client_id.is_empty() {
            return Err(err("client_id", "must not be empty".into()));
        }
        if raw.client_secret.is_empty() {
            return Err(err("client_secret", "must not be empty".into()));
        }
        if let Some(rt) = &raw.response_type {
            if rt != "code" {
                return Err(err(
                    "response_type",
                    "only \"code\" is supported (the implicit flow is unsafe)".into(),
                ));
            }
        }
        if let Some(gt) = &raw.grant_type {
            if gt != "authorization_code" {
                return Err(err(
                    "grant_type",
                    "only \"authorization_code\" is supported".into(),
                ));
            }
        }
        let explicit = Explicit {
            authorize: url_field("authorize_url", &raw.authorize_url)?,
            token: url_field("token_url", &raw.token_url)?,
            userinfo: url_field("userinfo_url", &raw.userinfo_url)?,
            logout: url_field("logout_url", &raw.logout_url)?,
            jwks: url_field("jwks_url", &raw.jwks_url)?,
        };
        let issuer = match (&raw.issuer, oidc) {
            (Some(i), _) => {
                parse_endpoint(i).map_err(|e| err("issuer", e))?;
                Some(i.trim_end_matches('/').to_owned())
            }
            (None, true) => return Err(err("issuer", "required for oidc".into())),
            (None, false) => None,
        };
        if !oidc {
            if explicit.authorize.is_none() {
                return Err(err("authorize_url", "required for oauth2".into()));
            }
            if explicit.token.is_none() {
                return Err(err("token_url", "required for oauth2".into()));
            }
            if explicit.userinfo.is_none() {
                return Err(err(
                    "userinfo_url",
                    "required for oauth2 (the user comes from user-info)".into(),
                ));
            }
        }
        if raw.timeout_ms == 0 || raw.timeout_ms > 60_000 {
            return Err(err("timeout_ms", "must be between 1 and 60000".into()));
        }
        if let Some(path) = &raw.callback_path {
            // A query is allowed so existing registrations keep working
            // (`/oauth2/callback?client_name=oauth2`); the callback is matched on the path.
            if !path.starts_with('/') || path.contains('#') {
                return Err(err(
                    "callback_path",
                    "must be an absolute path (a query is allowed, a fragment is not)".into(),
                ));
            }
        }
        let reserved = [
            "response_type",
            "client_id",
            "redirect_uri",
            "state",
            "nonce",
            "code_challenge",
            "code_challenge_method",
            "scope",
        ];
        if let Some(k) = raw
            .extra_authorize_params
            .keys()
            .find(|k| reserved.contains(&k.as_str()))
        {
            return Err(err(
                "extra_authorize_params",
                format!("{k} is set by the filter"),
            ));
        }
        let mut default_mapping = RawMapping::default();
        default_mapping.set_paths(raw.user_id_path, raw.user_name_path, raw.email_path);
        let scope = raw.scope.unwrap_or_else(|| {
            if oidc {
                "openid profile email".into()
            } else {
                String::new()
            }
        });
        if oidc && !scope.split(' ').any(|s| s == "openid") {
            return Err(err("scope", "oidc needs the openid scope".into()));
        }
        Ok(OAuth2 {
            oidc,
            client_id: raw.client_id,
            client_secret: Secret(raw.client_secret),
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

    /// The token request (RFC 6749 §4.1.3) with the PKCE verifier.
    pub fn token_request(
        &self,
        eps: &Endpoints,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Callout {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", verifier);
        self.token_endpoint_call(eps, form)
    }

    /// A refresh-token request (RFC 6749 §6).
    pub fn refresh_request(&self, eps: &Endpoints, refresh_token: &str) -> Callout {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token);
        self.token_endpoint_call(eps, form)
    }

    /// A POST to the token endpoint with the client's authentication.
    fn token_endpoint_call(
        &self,
        eps: &Endpoints,
        mut form: url::form_urlencoded::Serializer<'_, String>,
    ) -> Callout {
        let mut headers = vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "application/json".into()),
        ];
        match self.client_auth {
            ClientAuth::ClientSecretBasic => {
                // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", enc(&self.client_id), enc(&self.client_secret.0));
                headers.push((
                    "authorization".into(),
                    format!("Basic {}", B64STD.encode(pair)),
                ));
            }
            ClientAuth::ClientSecretPost => {
                form.append_pair("client_id", &self.client_id)
                    .append_pair("client_secret", &self.client_secret.0);
            }
        }
        Callout {
            upstream: cluster_name(&eps.token),
            url: eps.token.to_string(),
            method: "POST".into(),
            headers,
            body: form.finish().into_bytes(),
            timeout_ms: self.timeout_ms,
        }
    }

    /// The user-info request (OIDC Core §5.3.1), when the flow uses one.
    pub fn userinfo_request(&self, eps: &Endpoints, access_token: &str) -> Option<Callout> {
        let url = eps.userinfo.as_ref().filter(|_| self.use_userinfo)?;
        let (method, body, mut headers) = match self.userinfo_method {
            UserInfoMethod::Get => ("GET", Vec::new(), Vec::new()),
            UserInfoMethod::Post => (
                "POST",
                Vec::new(),
                vec![(
                    "content-type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                )],
            ),
        };
        headers.push(("authorization".into(), format!("Bearer {access_token}")));
        headers.push(("accept".into(), "application/json".into()));
        Some(Callout {
            upstream: cluster_name(url),
            url: url.to_string(),
            method: method.into(),
            headers,
            body,
            timeout_ms: self.timeout_ms,
        })
    }

    /// Judges a token response (RFC 6749 §5.1, §5.2).
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for errors and unusable answers.
    pub fn token_response(&self, response: &CalloutResponse) -> Result<Tokens, IdpFailure> {
        self.tokens(response, self.oidc)
    }

    /// Judges a refresh response (RFC 6749 §6): like a token response, but an ID token is not
    /// required (OIDC Core §12.2: it "might not" be returned).
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for errors and unusable answers.
    pub fn refresh_response(&self, response: &CalloutResponse) -> Result<Tokens, IdpFailure> {
        self.tokens(response, false)
    }

    fn tokens(
        &self,
        response: &CalloutResponse,
        require_id_token: bool,
    ) -> Result<Tokens, IdpFailure> {
        // A 5xx is the IdP failing, whatever its body says (502), not a refusal (401).
        if response.status.is_some_and(|s| s >= 500) {
            log::warn!("sso-filter: token endpoint answered {:?}", response.status);
            return Err(IdpFailure::BadAnswer("token_status"));
        }
        let body = json_body(response, MAX_SMALL_BODY)?;
        if let Some(error) = body.get("error").and_then(Value::as_str) {
            log::warn!(
                "sso-filter: token endpoint error={} description={}",
                sanitize_code(error),
                crate::deny::sanitize(
                    body.get("error_description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                )
            );
            return Err(IdpFailure::Refused(error.to_owned()));
        }
        if response.status != Some(200) {
            return Err(IdpFailure::BadAnswer("token_status"));
        }
        let access_token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(IdpFailure::BadAnswer("no_access_token"))?
            .to_owned();
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if require_id_token && id_token.is_none() {
            return Err(IdpFailure::BadAnswer("no_id_token"));
        }
        let refresh_token = body
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_owned);
        // A negative, fractional or absurd lifetime is treated as unknown.
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0 && *s < 366 * 24 * 3600);
        Ok(Tokens {
            access_token,
            id_token,
            refresh_token,
            expires_in,
        })
    }

    /// Verifies an ID token against a JWKS (OIDC Core §3.1.3.7). `Ok(None)` means the token's
    /// `kid` is not in this JWKS (the caller may refetch once).
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for every other failure.
    pub fn verify_id_token(
        &self,
        id_token: &str,
        jwks: &Value,
        nonce: &str,
        now: u64,
    ) -> Result<Option<Map<String, Value>>, IdpFailure> {
        let header_b64 = id_token.split('.').next().unwrap_or("");
        let header = crate::jose::b64_segment(header_b64)
            .and_then(|b| strict_object(&b))
            .map_err(IdpFailure::IdToken)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(JwsAlg::from_name)
            .filter(|a| !matches!(a, JwsAlg::Hs256 | JwsAlg::Hs384 | JwsAlg::Hs512))
            .ok_or(IdpFailure::IdToken(JoseError::Algorithm))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let keys: Vec<(Option<String>, VerifyKey)> = jwks
            .get("keys")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter(|k| {
                        k.get("use")
                            .and_then(Value::as_str)
                            .is_none_or(|u| u == "sig")
                    })
                    .filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
                    .filter_map(|k| {
                        let id = k.get("kid").and_then(Value::as_str).map(str::to_owned);
                        VerifyKey::from_jwk(alg, k).ok().map(|key| (id, key))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if keys.is_empty() {
            return Ok(None);
        }
        let verified = Verifier::new(alg, keys)
            .verify(id_token)
            .map_err(IdpFailure::IdToken)?;
        let rules = ClaimRules {
            leeway: 60,
            require_exp: true,
            max_age: None,
            issuer: self.issuer.clone(),
            audience: Some(self.client_id.clone()),
            require_jti: false,
        };
        rules
            .check(&verified.claims, now)
            .map_err(IdpFailure::IdToken)?;
        if numeric_date(&verified.claims, "iat")
            .ok()
            .flatten()
            .is_none()
        {
            return Err(IdpFailure::IdToken(JoseError::MissingClaim));
        }
        // §3.1.3.7 items 4-5: with several audiences, azp must be present; when present it must
        // be our client id.
        let several = verified
            .claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1);
        match verified.claims.get("azp").and_then(Value::as_str) {
            Some(azp) if azp != self.client_id => {
                return Err(IdpFailure::IdToken(JoseError::Audience))
            }
            None if several => return Err(IdpFailure::IdToken(JoseError::Audience)),
            _ => {}
        }
        let token_nonce = verified
            .claims
            .get("nonce")
            .and_then(Value::as_str)
            .unwrap_or("");
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(token_nonce.as_bytes(), nonce.as_bytes()).into();
        if !same || nonce.is_empty() {
            return Err(IdpFailure::Nonce);
        }
        verified
            .claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(IdpFailure::IdToken(JoseError::MissingClaim))?;
        Ok(Some(verified.claims))
    }

    /// Judges a user-info response; `sub` must match the ID token's when there is one.
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for errors and unusable answers.
    pub fn userinfo_response(
        &self,
        response: &CalloutResponse,
        id_sub: Option<&str>,
    ) -> Result<Map<String, Value>, IdpFailure> {
        if response.status != Some(200) {
            return Err(match response.status {
                Some(401 | 403) => IdpFailure::Refused("userinfo_unauthorized".into()),
                _ => IdpFailure::BadAnswer("userinfo_status"),
            });
        }
        let body = json_body(response, MAX_SMALL_BODY)?;
        if let Some(expected) = id_sub {
            if body.get("sub").and_then(Value::as_str) != Some(expected) {
                return Err(IdpFailure::Subject);
            }
        }
        Ok(body)
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
fn parse_endpoint(text: &str) -> Result<url::Url, String> {
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
