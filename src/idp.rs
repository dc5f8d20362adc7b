//! What identity providers answer, judged the same way for every method: the failure kinds
//! (mapped to responses in `deny.rs`), the provider error codes of the app-token providers,
//! and the size-capped JSON reader every IdP answer goes through (security.md L5-L7).

use serde_json::{Map, Value};

use crate::http::CalloutResponse;
use crate::jose::JoseError;

/// The largest token or user-info response read.
pub const MAX_SMALL_BODY: usize = 64 * 1024;
/// The largest discovery or JWKS document read.
pub const MAX_DOC_BODY: usize = 256 * 1024;
/// Why an IdP exchange failed. Mapped to responses in `deny.rs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdpFailure {
    /// The IdP answered with an OAuth error (`error` on the callback or token endpoint).
    Refused(String),
    /// The IdP's answer was unusable (status, encoding, JSON, size).
    BadAnswer(&'static str),
    /// The IdP could not be reached.
    Unreachable,
    /// The IdP did not answer within the deadline.
    Timeout,
    /// The ID token failed verification.
    IdToken(JoseError),
    /// The ID token's `nonce` is not this flow's.
    Nonce,
    /// The callback's `iss` (RFC 9207) is not the issuer.
    Issuer,
    /// User-info's `sub` differs from the ID token's.
    Subject,
    /// A signed IdP message (a SAML Response) failed verification; the reason is for the log.
    Rejected(String),
    /// The provider answered with one of its error codes (`errcode`, `code`).
    Code(ProviderCode),
    /// The user is not a member of the configured organisation or tenant (security.md G1).
    NotMember {
        /// The provider's label.
        provider: &'static str,
        /// Why, for the log.
        why: &'static str,
    },
}

impl IdpFailure {
    /// The kind of failure as a fixed word, for counters (the details are in [`Self::reason`],
    /// which may carry the IdP's own text and goes to the log only).
    pub fn kind(&self) -> &'static str {
        match self {
            IdpFailure::Refused(_) => "refused",
            IdpFailure::BadAnswer(_) => "bad_answer",
            IdpFailure::Unreachable => "unreachable",
            IdpFailure::Timeout => "timeout",
            IdpFailure::IdToken(_) => "id_token",
            IdpFailure::Nonce => "nonce",
            IdpFailure::Issuer => "issuer",
            IdpFailure::Subject => "subject",
            IdpFailure::Rejected(_) => "rejected",
            IdpFailure::Code(_) => "provider_code",
            IdpFailure::NotMember { .. } => "not_member",
        }
    }

    /// A short stable name for logs.
    pub fn reason(&self) -> String {
        match self {
            IdpFailure::Refused(code) => format!("refused_{}", sanitize_code(code)),
            IdpFailure::BadAnswer(why) => format!("bad_answer_{why}"),
            IdpFailure::Unreachable => "unreachable".into(),
            IdpFailure::Timeout => "timeout".into(),
            IdpFailure::IdToken(e) => format!("id_token_{}", e.reason()),
            IdpFailure::Nonce => "nonce".into(),
            IdpFailure::Issuer => "issuer".into(),
            IdpFailure::Subject => "subject".into(),
            IdpFailure::Rejected(why) => format!("rejected_{why}"),
            IdpFailure::Code(c) => format!(
                "code_{}_{}",
                sanitize_code(&c.provider.to_ascii_lowercase()),
                sanitize_code(&c.code)
            ),
            IdpFailure::NotMember { why, .. } => format!("not_member_{why}"),
        }
    }

    /// The page text for this failure, when it says more than the generic one.
    pub fn message(&self) -> Option<String> {
        match self {
            IdpFailure::Code(c) => Some(c.message()),
            IdpFailure::NotMember {
                why: "snapshot_user",
                ..
            } => Some(
                "This page was opened from a WeChat snapshot (快照页), which cannot sign in. \
                 Open it in WeChat itself."
                    .into(),
            ),
            IdpFailure::NotMember {
                provider,
                why: "not_allowed",
            } => Some(format!(
                "Your {provider} account is not on the list of users of this application."
            )),
            IdpFailure::NotMember { provider, .. } => Some(format!(
                "Your {provider} account is not a member of the organisation this application belongs to."
            )),
            _ => None,
        }
    }

    /// HTTP status: 504 for timeouts, 502 for a misbehaving IdP, 401 for refusals.
    pub fn status(&self) -> u16 {
        match self {
            IdpFailure::Timeout => 504,
            IdpFailure::Unreachable | IdpFailure::BadAnswer(_) => 502,
            IdpFailure::Code(c) => c.status(),
            IdpFailure::NotMember { .. } => 403,
            _ => 401,
        }
    }
}

pub(crate) fn sanitize_code(code: &str) -> String {
    code.chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What an error code means, for the response and the page (security.md G3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeKind {
    /// The sign-in code (or ticket) is invalid, expired or used.
    CodeInvalid,
    /// The app token was refused (after one refetch it is a provider problem).
    TokenInvalid,
    /// The user may not use this app (outside the org, disabled, not in the visible range).
    NotMember,
    /// The app is set up wrongly at the provider (secret, IP allow-list, domain, permission).
    Misconfigured,
    /// The provider throttles us.
    Throttled,
    /// Anything else.
    Other,
}

/// An error code a provider answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderCode {
    /// The provider's label (`WeCom`).
    pub provider: &'static str,
    /// The code as the provider wrote it.
    pub code: String,
    /// What it means.
    pub kind: CodeKind,
}

impl ProviderCode {
    /// HTTP status for this code.
    pub fn status(&self) -> u16 {
        match self.kind {
            CodeKind::CodeInvalid => 401,
            CodeKind::NotMember => 403,
            CodeKind::Throttled => 503,
            CodeKind::TokenInvalid | CodeKind::Misconfigured | CodeKind::Other => 502,
        }
    }

    /// The page text: what happened, in words, with the provider's code for the administrator.
    pub fn message(&self) -> String {
        let p = self.provider;
        let c = crate::pages::escape(&self.code);
        match self.kind {
            CodeKind::CodeInvalid => format!(
                "{p} did not accept the sign-in code (error {c}): it is invalid, expired or was already used. Please sign in again."
            ),
            CodeKind::NotMember => format!(
                "{p} says your account may not use this application (error {c}). Ask your administrator to add you to the organisation or the application's visible range."
            ),
            CodeKind::Misconfigured => format!(
                "The application is not set up correctly at {p} (error {c}). Please tell your administrator."
            ),
            CodeKind::Throttled => format!(
                "{p} is limiting requests right now (error {c}). Please try again in a minute."
            ),
            CodeKind::TokenInvalid | CodeKind::Other => format!(
                "{p} could not complete the sign-in (error {c}). Please try again."
            ),
        }
    }
}

/// Parses an IdP answer as a JSON object with a size cap, refusing compressed bodies
/// (security.md L5-L7). Errors with a 4xx/5xx status and a JSON `error` are returned as the
/// object so the caller can read it.
///
/// # Errors
///
/// [`IdpFailure`] when the answer is missing, too large, compressed or not a JSON object.
pub fn json_body(
    response: &CalloutResponse,
    limit: usize,
) -> Result<Map<String, Value>, IdpFailure> {
    match serde_json::from_slice::<Value>(capped_body(response, limit)?) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(IdpFailure::BadAnswer("not_json")),
    }
}

/// The body of an IdP answer, whatever its format (JSON, CAS XML, SAML metadata), once it is
/// known to be there, within `limit` and not compressed (security.md L5-L7): one judge so
/// every method refuses the same answers with the same reasons.
///
/// # Errors
///
/// [`IdpFailure::Unreachable`] without a status, [`IdpFailure::BadAnswer`] when too large or
/// compressed.
pub fn capped_body(response: &CalloutResponse, limit: usize) -> Result<&[u8], IdpFailure> {
    if response.status.is_none() {
        return Err(IdpFailure::Unreachable);
    }
    if response.body.len() > limit {
        return Err(IdpFailure::BadAnswer("too_large"));
    }
    if response
        .headers
        .iter()
        .any(|(n, v)| n == "content-encoding" && !v.eq_ignore_ascii_case("identity"))
    {
        return Err(IdpFailure::BadAnswer("compressed"));
    }
    Ok(&response.body)
}

/// Whether a callout was answered in time, the same for every method: a 504 (Envoy's own
/// past the deadline, or the IdP's, which means the same), or no status past the deadline, is
/// a timeout; no status before it means the IdP could not be reached. `sent_ms` is when the
/// callout left, `timeout_ms` its deadline.
///
/// # Errors
///
/// [`IdpFailure::Timeout`] or [`IdpFailure::Unreachable`].
pub fn answered(
    response: &CalloutResponse,
    sent_ms: u64,
    timeout_ms: u64,
    now_ms: u64,
) -> Result<(), IdpFailure> {
    match response.status {
        Some(504) => return Err(IdpFailure::Timeout),
        Some(_) => return Ok(()),
        None => {}
    }
    if now_ms.saturating_sub(sent_ms).saturating_add(100) >= timeout_ms {
        Err(IdpFailure::Timeout)
    } else {
        Err(IdpFailure::Unreachable)
    }
}
