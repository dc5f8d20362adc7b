//! Every way a request can be refused, named by meaning, and the one place that turns each
//! into a status, a fixed public message, a counter and a log line. Clients never learn which
//! check failed (security.md 0.2 point 5); the log does.

use serde_json::json;

use crate::counter::{Counter, MethodLabel};
use crate::http::{Outcome, RequestHead, Response, Step};
use crate::jose::JoseError;
use crate::pages;

/// A refusal on the request path.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Deny {
    /// The path is one servers would read differently (encoded slash, backslash, NUL, a dot
    /// segment with parameters, ...); the kind is for the log.
    BadPath(&'static str),
    /// A malformed request to one of the filter's endpoints.
    BadRequest(&'static str),
    /// The request body is larger than the endpoint accepts.
    BodyTooLarge,
    /// The login flow's state is missing, expired, used or not this browser's.
    FlowInvalid,
    /// A cross-site form post came back without any flow cookie while cookies are not
    /// `Secure` (plain HTTP): the browser kept it back (`SameSite`), the deployment must move
    /// to HTTPS.
    FlowCookieWithheld,
    /// The flow was sealed for an earlier value of this browser's binding cookie: parallel
    /// logins began before the browser had one. The same login starts again by itself
    /// (`location`), bound to the value the browser holds; nothing the flow carried is used.
    FlowRestart {
        /// Method name.
        method: String,
        /// The login URL that starts it again.
        location: String,
    },
    /// The identity a method produced cannot be carried safely (control characters, size) or
    /// has no login.
    IdentityInvalid {
        /// Method name.
        method: String,
        /// Why, for the log.
        why: &'static str,
    },
    /// The method cannot be started from a link (a JWT method without its token).
    MethodNeedsToken {
        /// Method name.
        method: String,
    },
    /// No such endpoint under the filter's prefix.
    NotFound,
    /// The sender may not use this endpoint (a back-channel request from an address that is
    /// not configured).
    Forbidden(&'static str),
    /// A token (URL parameter or bearer) was refused.
    Token {
        /// Method name.
        method: String,
        /// The failed check.
        error: JoseError,
    },
    /// A needed facility (randomness, the shared cache) failed; we fail closed.
    Unavailable(&'static str),
    /// A bounded store (by name) had no room for a single-use item; we fail closed.
    StoreFull(&'static str),
    /// Too many failed passwords for this user from this address, counted across every
    /// replica by the fleet store (the form methods answer a local lockout with their form).
    Throttled {
        /// Method name.
        method: String,
    },
    /// `activeAuth` names no configured method.
    UnknownMethod {
        /// The names that would have worked.
        valid: Vec<String>,
    },
    /// The tenant parameter names no configured tenant.
    UnknownTenant,
    /// The identity provider refused, failed or misbehaved.
    Idp {
        /// Method name.
        method: String,
        /// What went wrong.
        failure: crate::idp::IdpFailure,
    },
}

impl Deny {
    /// HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            Deny::BadPath(_)
            | Deny::BadRequest(_)
            | Deny::UnknownMethod { .. }
            | Deny::UnknownTenant => 400,
            // A missing, used or foreign state is a refused login (security.md F1: DENY).
            Deny::FlowInvalid | Deny::FlowCookieWithheld => 401,
            // See other: the browser GETs the login again (also after the SAML POST).
            Deny::FlowRestart { .. } => 303,
            Deny::BodyTooLarge => 413,
            Deny::IdentityInvalid { .. } => 403,
            Deny::MethodNeedsToken { .. } | Deny::Token { .. } => 401,
            Deny::NotFound => 404,
            Deny::Forbidden(_) => 403,
            Deny::Unavailable(_) | Deny::StoreFull(_) => 503,
            Deny::Throttled { .. } => 429,
            Deny::Idp { failure, .. } => failure.status(),
        }
    }

    /// Stable machine-readable code for JSON bodies.
    pub fn code(&self) -> &'static str {
        match self {
            Deny::BadPath(_) => "bad_path",
            Deny::BadRequest(_) => "bad_request",
            Deny::BodyTooLarge => "body_too_large",
            Deny::FlowInvalid | Deny::FlowCookieWithheld => "login_expired",
            Deny::FlowRestart { .. } => "login_restarted",
            Deny::IdentityInvalid { .. } => "identity_refused",
            Deny::MethodNeedsToken { .. } => "token_required",
            Deny::NotFound => "not_found",
            Deny::Forbidden(_) => "forbidden",
            Deny::Token { .. } => "invalid_token",
            Deny::Unavailable(_) | Deny::StoreFull(_) => "unavailable",
            Deny::Throttled { .. } => "throttled",
            Deny::UnknownMethod { .. } => "unknown_method",
            Deny::UnknownTenant => "unknown_tenant",
            Deny::Idp { .. } => "idp_error",
        }
    }

    /// The fixed public message.
    pub fn message(&self) -> String {
        match self {
            Deny::BadPath(_) => "The request path is not acceptable.".into(),
            Deny::BadRequest(_) => "The request is malformed.".into(),
            Deny::BodyTooLarge => "The request body is too large.".into(),
            Deny::FlowInvalid => "The sign-in attempt expired or was already used. Please start again.".into(),
            Deny::FlowRestart { .. } => "The sign-in is starting again.".into(),
            Deny::FlowCookieWithheld => "The sign-in could not be finished: this site is served over plain HTTP, and the browser did not send its sign-in cookie with the identity provider's form. Ask the administrator to serve it over HTTPS.".into(),
            Deny::IdentityInvalid { .. } => "Your account cannot be signed in here.".into(),
            Deny::MethodNeedsToken { .. } => {
                "This sign-in method needs a signed link from your portal; open the application from there.".into()
            }
            Deny::NotFound => "Not found.".into(),
            Deny::Forbidden(_) => "Not allowed.".into(),
            Deny::Token { .. } => "The sign-in token is not valid.".into(),
            Deny::Unavailable(_) | Deny::StoreFull(_) => {
                "Sign-in is temporarily unavailable.".into()
            }
            Deny::UnknownMethod { valid } => {
                format!("Unknown sign-in method. Valid methods: {}.", valid.join(", "))
            }
            Deny::UnknownTenant => "Unknown tenant.".into(),
            Deny::Throttled { .. } => {
                "Too many failed sign-in attempts. Please wait and try again later.".into()
            }
            Deny::Idp { failure, .. } => failure.message().unwrap_or_else(|| {
                "The identity provider could not complete the sign-in. Please try again.".into()
            }),
        }
    }

    /// The reason for the log and the counter (never shown to the client).
    pub fn reason(&self) -> String {
        match self {
            Deny::BadRequest(why) => format!("bad_request.{why}"),
            Deny::BadPath(why) => format!("bad_path.{why}"),
            Deny::Forbidden(why) => format!("forbidden.{why}"),
            Deny::IdentityInvalid { why, .. } => {
                format!("identity_refused.{}", why.replace(' ', "_"))
            }
            Deny::Token { error, .. } => format!("token.{}", error.reason()),
            Deny::Unavailable(what) => format!("unavailable.{what}"),
            Deny::StoreFull(store) => format!("store_full.{store}"),
            Deny::FlowCookieWithheld => "login_expired.flow_cookie_withheld_over_http".into(),
            Deny::Idp { failure, .. } => format!("idp.{}", failure.reason()),
            other => other.code().to_owned(),
        }
    }

    /// The reason as a fixed word for the per-method failure counter: never text from the
    /// request or the IdP (that goes to the log line).
    pub fn counter_reason(&self) -> &'static str {
        match self {
            Deny::Token { error, .. } => error.reason(),
            Deny::Idp { failure, .. } => failure.kind(),
            other => other.code(),
        }
    }

    /// The method the refusal concerns, for per-method failure counters.
    fn method(&self) -> Option<&str> {
        match self {
            Deny::IdentityInvalid { method, .. }
            | Deny::MethodNeedsToken { method }
            | Deny::Token { method, .. }
            | Deny::Idp { method, .. }
            | Deny::Throttled { method }
            | Deny::FlowRestart { method, .. } => Some(method),
            _ => None,
        }
    }

    /// The response, counter and log line for this refusal: the one place a refusal becomes a
    /// response. HTML for navigations and browser form posts, JSON for everything else. `login_url` is offered as the way to start again.
    pub fn respond(
        self,
        head: &RequestHead,
        path: &str,
        login_url: &str,
        cookies: Vec<String>,
    ) -> Outcome {
        let reason = self.reason();
        log::warn!(
            "sso-filter: deny reason={} status={} method={} path={}",
            sanitize(&reason),
            self.status(),
            sanitize(self.method().unwrap_or("-")),
            sanitize(path)
        );
        let response = if let Deny::FlowRestart { location, .. } = &self {
            Response::redirect(303, location)
        } else if head.wants_html() {
            let link = (!matches!(self, Deny::NotFound | Deny::BadPath(_)))
                .then_some(("Sign in again", login_url));
            Response::new(self.status()).html(pages::error(
                "Sign-in problem",
                &self.message(),
                link,
            ))
        } else {
            Response::new(self.status()).json(&json!({
                "error": self.code(),
                "message": self.message(),
                "login_url": login_url,
            }))
        };
        let response = response
            .header("referrer-policy", "no-referrer")
            .cookies(cookies);
        let mut outcome = Outcome::new(Step::Respond(response)).count(Counter::Deny(self.code()));
        if let Deny::StoreFull(store) = &self {
            outcome = outcome.count(Counter::StoreFull(store));
        }
        if let Some(method) = self.method() {
            // The engine relabels a name that is not a configured method (Filter::finish).
            outcome = outcome.count(Counter::LoginFailure(
                MethodLabel::configured(method),
                self.counter_reason(),
            ));
        }
        outcome
    }
}

/// Makes a value safe for a log line: no control characters (log injection, security.md N2),
/// bounded length.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .take(200)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}
