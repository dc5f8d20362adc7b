//! The login form shared by the built-in users (`local`) and LDAP: what a failed attempt
//! shows, and the limits of what the form may carry. The form itself (`login_page`, its post)
//! is the engine's: it reads which method a post is for from the flow, then calls that
//! method's `form_login`.

use crate::counter::Counter;
use crate::deny::Deny;
use crate::http::Outcome;
use crate::login::{Env, FormAgain, Here, Request};
use crate::pages::login::Notice;
use crate::session::Flow;

/// The longest user name or password accepted from the form.
pub const MAX_CREDENTIAL_BYTES: usize = 256;

/// Why a form login failed. The page says the same for every wrong credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginFailure {
    /// Unknown user or wrong password (never said which).
    Invalid,
    /// Too many recent failures for this user.
    Throttled,
    /// The password budget is spent: refused without checking (429).
    Busy,
    /// The throttle store failed; we fail closed.
    Unavailable,
}

/// Whether a user name and password can be checked at all: not empty, not too long.
pub fn plausible(username: &str, password: &str) -> bool {
    !username.is_empty()
        && !password.is_empty()
        && username.len() <= MAX_CREDENTIAL_BYTES
        && password.len() <= MAX_CREDENTIAL_BYTES
}

/// The form again after a failed attempt, with one message per kind of failure (`invalid`
/// is the method's own message for a wrong credential).
///
/// # Errors
///
/// [`Deny::Unavailable`] when the throttle store failed (fail closed) or randomness failed.
pub fn failed(
    here: &Here<'_>,
    req: &Request<'_>,
    flow: &Flow,
    delete_flow: Option<String>,
    failure: LoginFailure,
    invalid: Notice,
    env: &mut Env<'_>,
) -> Result<Outcome, Deny> {
    let (status, message, reason) = match failure {
        LoginFailure::Invalid => (401, invalid, "bad_credentials"),
        LoginFailure::Throttled => (429, Notice::Throttled, "throttled"),
        LoginFailure::Busy => (429, Notice::Busy, "password_budget"),
        LoginFailure::Unavailable => return Err(Deny::Unavailable("throttle_store")),
    };
    let again = FormAgain {
        flow,
        delete_flow,
        status,
        message,
        reason,
    };
    let outcome = here.kit.login_form(here, req, Some(again), env)?;
    Ok(match failure {
        LoginFailure::Busy => outcome.count(Counter::PasswordBudget),
        _ => outcome,
    })
}

/// A form login that succeeded: the user's roles default to the mapping's when the method
/// gave none, then the one completion path back to where the user was going.
///
/// # Errors
///
/// A refusal from the completion path.
pub fn succeeded(
    here: &Here<'_>,
    req: &Request<'_>,
    flow: &Flow,
    delete_flow: Option<String>,
    mut identity: crate::identity::Identity,
    env: &mut Env<'_>,
) -> Result<Outcome, Deny> {
    if identity.roles.is_empty() {
        identity.roles = here.method.mapping.default_roles().to_vec();
    }
    let done = crate::login::Done {
        identity,
        claims: None,
        extra: crate::session::SessionExtra::default(),
        landing: flow.rd.clone(),
        cookies: delete_flow.into_iter().collect(),
    };
    here.kit.finish_login(here, req, done, env)
}
