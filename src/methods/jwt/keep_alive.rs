//! The JWT keep-alive (Mobi's "JWT Token 自动保活"): besides the token (`auth_code` in Mobi's
//! naming) the login URL may carry a refresh token and the token's lifetime (`refresh_token`,
//! `expires_in`). The session keeps the refresh token sealed in its cookie (never sent
//! upstream, never logged) with the moment the token ends; within `window_seconds` of that
//! moment a request of the session calls the configured refresh endpoint for a new token,
//! verified exactly like the first and required to name the same login. Without a successful
//! refresh the session ends with its token. The machinery (when a refresh is due, the lock
//! that keeps one refresh in flight per session, the wait, the new cookie, the end) is
//! `methods::refresh`, shared with OIDC.
//!
//! The refresh endpoint is the operator's (Mobi's own `RefreshJWTUserToken` is a signed
//! OpenAPI call, so a small service of the operator's stands in front of it). It receives
//! `POST` `grant_type=refresh_token&{refresh_token_param}=RT` (form-encoded, RFC 6749 §6's
//! shape) and answers `200` JSON with the same names as the URL: `{param}` (the new token),
//! optionally `{refresh_token_param}` (a rotated refresh token; else the old one stays) and
//! `{expires_in_param}` (seconds, a number or a decimal string).

use serde::Deserialize;
use serde_json::Value;

use super::{Accepted, Jwt};
use crate::counter::Counter;
use crate::deny::Deny;
use crate::error::ConfigError;
use crate::http::{cluster_name, Callout, CalloutResponse, Outcome};
use crate::idp::{answered, json_body, IdpFailure, MAX_SMALL_BODY};
use crate::jose::claims::expiry_from;
use crate::login::{Env, Here, Request, SessionView};
use crate::methods::oauth2::parse_endpoint;
use crate::methods::refresh::{self, Pending};
use crate::session::UpstreamToken;

/// The most bytes of a refresh token kept in the session (the sealed cookie is split over at
/// most 8 cookies; a refresh token is an opaque handle or a JWT, far below this).
pub const MAX_REFRESH_BYTES: usize = 4096;
/// The longest lifetime taken from `expires_in`: a year (anything longer is a mistake; the
/// token's own `exp` bounds it anyway).
const MAX_LIFETIME: u64 = 366 * 24 * 3600;

/// `keep_alive` as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawKeepAlive {
    refresh_url: String,
    #[serde(default = "default_refresh_param")]
    refresh_token_param: String,
    #[serde(default = "default_expires_param")]
    expires_in_param: String,
    #[serde(default = "default_window")]
    window_seconds: u64,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
}

fn default_refresh_param() -> String {
    "refresh_token".into()
}

fn default_expires_param() -> String {
    "expires_in".into()
}

fn default_window() -> u64 {
    60
}

fn default_timeout() -> u64 {
    5000
}

/// A configured keep-alive.
#[derive(Debug)]
pub struct KeepAlive {
    url: url::Url,
    /// URL parameter (and refresh-endpoint field) carrying the refresh token.
    refresh_param: String,
    /// URL parameter (and refresh-endpoint field) carrying the token's lifetime in seconds.
    expires_param: String,
    /// Seconds before the token ends at which a request refreshes it.
    window: u64,
    timeout_ms: u64,
}

impl KeepAlive {
    /// Parses `keep_alive`; `token_param` is the method's token parameter.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawKeepAlive, token_param: &str, at: &str) -> Result<Self, ConfigError> {
        let err = |field: &str, reason: &str| ConfigError {
            path: format!("{at}.keep_alive.{field}"),
            reason: reason.to_owned(),
        };
        let url = parse_endpoint(&raw.refresh_url).map_err(|e| err("refresh_url", &e))?;
        for (field, name) in [
            ("refresh_token_param", &raw.refresh_token_param),
            ("expires_in_param", &raw.expires_in_param),
        ] {
            if name.is_empty() || name == token_param {
                return Err(err(field, "must be a name other than the token's `param`"));
            }
        }
        if raw.refresh_token_param == raw.expires_in_param {
            return Err(err(
                "expires_in_param",
                "must differ from refresh_token_param",
            ));
        }
        if !(1..=3600).contains(&raw.window_seconds) {
            return Err(err("window_seconds", "must be between 1 and 3600"));
        }
        if !(1..=60_000).contains(&raw.timeout_ms) {
            return Err(err("timeout_ms", "must be between 1 and 60000"));
        }
        Ok(KeepAlive {
            url,
            refresh_param: raw.refresh_token_param,
            expires_param: raw.expires_in_param,
            window: raw.window_seconds,
            timeout_ms: raw.timeout_ms,
        })
    }

    /// The refresh endpoint, for `sso-filter clusters`.
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The URL parameters the keep-alive reads at login (the landing URL drops them).
    pub fn params(&self) -> [&str; 2] {
        [&self.refresh_param, &self.expires_param]
    }

    /// The refresh request.
    fn request(&self, refresh_token: &str) -> Callout {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token")
            .append_pair(&self.refresh_param, refresh_token);
        Callout {
            upstream: cluster_name(&self.url),
            url: self.url.to_string(),
            method: "POST".into(),
            headers: vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("accept".into(), "application/json".into()),
            ],
            body: form.finish().into_bytes(),
            timeout_ms: self.timeout_ms,
        }
    }

    /// Judges the refresh endpoint's answer: `200` JSON with the new token under `token_field`.
    fn judge(&self, token_field: &str, answer: &CalloutResponse) -> Result<Renewal, IdpFailure> {
        if answer.status != Some(200) {
            let code = json_body(answer, MAX_SMALL_BODY)
                .ok()
                .and_then(|body| body.get("error").and_then(Value::as_str).map(str::to_owned));
            return Err(match (answer.status, code) {
                (Some(s), Some(code)) if s < 500 => IdpFailure::Refused(code),
                _ => IdpFailure::BadAnswer("refresh_status"),
            });
        }
        let body = json_body(answer, MAX_SMALL_BODY)?;
        let token = body
            .get(token_field)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(IdpFailure::BadAnswer("no_token"))?
            .to_owned();
        let refresh = match body.get(&self.refresh_param) {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) if refresh_token_fits(r) => Some(r.clone()),
            Some(_) => return Err(IdpFailure::BadAnswer("refresh_token")),
        };
        let expires_in = match body.get(&self.expires_param) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(lifetime(s).ok_or(IdpFailure::BadAnswer("expires_in"))?),
            Some(v) => Some(
                v.as_u64()
                    .filter(|s| (1..=MAX_LIFETIME).contains(s))
                    .ok_or(IdpFailure::BadAnswer("expires_in"))?,
            ),
        };
        Ok(Renewal {
            token,
            refresh,
            expires_in,
        })
    }
}

/// What the refresh endpoint gave.
struct Renewal {
    token: String,
    refresh: Option<String>,
    expires_in: Option<u64>,
}

/// What a login URL carries for the keep-alive.
pub struct AtLogin {
    refresh: String,
    expires_in: Option<u64>,
}

/// Whether a refresh token can be kept in the session.
fn refresh_token_fits(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_REFRESH_BYTES
}

/// A lifetime in seconds: decimal digits, 1 to [`MAX_LIFETIME`].
fn lifetime(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u64>()
        .ok()
        .filter(|s| (1..=MAX_LIFETIME).contains(s))
}

/// When a token ends: the earliest of its `exp`, `expires_in` seconds from now and the end of
/// its validity at this filter (`max_age_seconds`; five minutes for a token without `exp`).
fn token_end(accepted: &Accepted, expires_in: Option<u64>, now: u64) -> u64 {
    [
        accepted.exp,
        expires_in.map(|s| now.saturating_add(s)),
        Some(accepted.valid_until),
    ]
    .into_iter()
    .flatten()
    .min()
    .unwrap_or(now)
}

impl Jwt {
    /// The keep-alive parameters of a login URL (read before the token is verified, so a
    /// malformed one refuses the login without spending a one-time token). An empty refresh
    /// token is none; `expires_in` alone is ignored.
    ///
    /// # Errors
    ///
    /// [`Deny::BadRequest`] for a repeated, oversized or malformed parameter.
    pub(super) fn keep_alive_params(&self, req: &Request<'_>) -> Result<Option<AtLogin>, Deny> {
        let Some(ka) = &self.keep_alive else {
            return Ok(None);
        };
        let refresh = req.param(&ka.refresh_param, "duplicate_refresh_token")?;
        let expires = req.param(&ka.expires_param, "duplicate_expires_in")?;
        let Some(refresh) = refresh.filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        if !refresh_token_fits(refresh) {
            return Err(Deny::BadRequest("refresh_token_too_large"));
        }
        let expires_in = expires
            .map(|e| lifetime(e).ok_or(Deny::BadRequest("expires_in")))
            .transpose()?;
        Ok(Some(AtLogin {
            refresh: refresh.to_owned(),
            expires_in,
        }))
    }

    /// Whether the URL carries a refresh token (once or more) without a token: refused, so a
    /// refresh token never travels on to the upstream.
    pub(super) fn stray_refresh_token(&self, req: &Request<'_>) -> bool {
        self.keep_alive
            .as_ref()
            .is_some_and(|ka| !matches!(req.query.single(&ka.refresh_param), Ok(None | Some(""))))
    }

    /// What the new session keeps for its keep-alive.
    pub(super) fn keep_alive_token(at: AtLogin, accepted: &Accepted, now: u64) -> UpstreamToken {
        UpstreamToken {
            access: None,
            refresh: Some(at.refresh),
            exp: Some(token_end(accepted, at.expires_in, now)),
        }
    }

    /// A request with a session of this method: a session whose token has ended is over (login
    /// required, cookie deleted); within `window_seconds` of the end one request refreshes the
    /// token while the others go on with the still-valid session.
    pub(super) fn keep_alive(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        session: &SessionView<'_>,
        env: &mut Env<'_>,
    ) -> Option<Outcome> {
        let token = session.token?;
        let end = token.exp?;
        if env.now >= end {
            // Without a successful refresh the session ends with its token (also when the
            // keep-alive has since been switched off: fail closed).
            log::info!(
                "sso-filter: session ended method={} cause=token_expired",
                here.name()
            );
            let counter = if req.head.is_navigation() {
                Counter::RedirectLogin
            } else {
                Counter::Unauthenticated
            };
            return Some(refresh::end(here, req).count(counter));
        }
        let ka = self.keep_alive.as_ref()?;
        let refresh_token = refresh::due(token, ka.window, env.now)?;
        let pending = refresh::claim(here, req, session, ka.timeout_ms, env)?;
        Some(here.call_out(ka.request(refresh_token), pending))
    }

    /// The refresh endpoint answered: a new token verified like the first (keys, algorithm,
    /// issuer, audience, times, one-time use) for the same login and tenant renews the session;
    /// a token for another login ends it at once; any other failure leaves the session to end
    /// with its token.
    pub(super) fn finish_keep_alive(
        &self,
        here: &Here<'_>,
        pending: Pending,
        answer: &CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(ka) = self.keep_alive.as_ref() else {
            return refresh::failed(here, pending, "keep_alive_off", env);
        };
        let renewal = answered(answer, pending.sent_ms, ka.timeout_ms, env.now_ms)
            .and_then(|()| ka.judge(&self.param, answer));
        let renewal = match renewal {
            Ok(r) => r,
            Err(failure) => return refresh::answer_failed(here, pending, &failure, env),
        };
        let checked = self
            .check(here, &renewal.token, Some(&pending.head), env)
            .and_then(|accepted| {
                let id = here.identity(&accepted.claims)?;
                Ok((accepted, id))
            });
        let (accepted, mut id) = match checked {
            Ok(pair) => pair,
            Err(deny) => return refresh::failed(here, pending, &deny.reason(), env),
        };
        let old = &pending.session.id;
        if id.tenant.is_none() {
            id.tenant.clone_from(&old.tenant);
            id.tenant_name.clone_from(&old.tenant_name);
        }
        if id.login != old.login || id.tenant != old.tenant {
            log::warn!(
                "sso-filter: refresh failed method={} cause=another_login; session ended",
                here.name()
            );
            let req = here.kit.request(&pending.head);
            return refresh::end(here, &req).count(Counter::Refresh(here.label(), false));
        }
        if let Err(why) = id.check() {
            return refresh::failed(here, pending, why, env);
        }
        let mut session = pending.session.clone();
        if let Some(claim) = here.method.expiry_claim.as_deref() {
            // The session expiry sync follows the new token, never past the session's TTL.
            let ttl_end = session.iat.saturating_add(here.kit.cookies().ttl);
            session.exp = expiry_from(&accepted.claims, claim).map_or(ttl_end, |e| e.min(ttl_end));
        }
        let old_refresh = session.token.as_ref().and_then(|t| t.refresh.clone());
        session.id = id;
        session.token = Some(UpstreamToken {
            access: None,
            refresh: renewal.refresh.or(old_refresh),
            exp: Some(token_end(&accepted, renewal.expires_in, env.now)),
        });
        refresh::renewed(here, pending, session, env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_plain_positive_seconds() {
        assert_eq!(lifetime("7200"), Some(7200));
        for bad in [
            "",
            "0",
            "-1",
            "+5",
            "1e3",
            " 5",
            "5 ",
            "3.5",
            "99999999999999999999",
        ] {
            assert_eq!(lifetime(bad), None, "{bad:?}");
        }
        assert_eq!(lifetime(&MAX_LIFETIME.to_string()), Some(MAX_LIFETIME));
        assert_eq!(lifetime(&(MAX_LIFETIME + 1).to_string()), None);
    }
}
