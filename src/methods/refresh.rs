//! Keeping a session's token alive, one machinery for every method that refreshes one (OIDC's
//! forwarded access token, RFC 6749 §6; the JWT keep-alive): when a refresh is due, the lock
//! that lets one request of a session refresh while the others go on with the still-valid
//! session, the wait for the answer, and what the answer does to the session: a new sealed
//! cookie on the upstream's response, the old session while its token lasts, or its end.

use crate::counter::Counter;
use crate::deny::sanitize;
use crate::http::{HeaderEdit, Outcome, RequestHead, Step};
use crate::idp::IdpFailure;
use crate::login::{Env, Here, Request, SessionView};
use crate::session::{SealError, Session, UpstreamToken};

/// How long one refresh holds its lock (the shared cache), so parallel requests of one session
/// do not all refresh; a refresh that failed is not tried again for this long either. A
/// callout deadline longer than this holds the lock until the deadline, so no second refresh
/// of the same token starts while one is in flight.
pub const LOCK_SECONDS: u64 = 30;

/// A request waiting for its session's token to be refreshed: the wait state of every
/// refreshing method.
#[derive(Debug)]
pub struct Pending {
    /// The request, resumed when the answer comes.
    pub head: RequestHead,
    /// Its session as it was.
    pub session: Session,
    /// When the refresh was sent (milliseconds), for the deadline.
    pub sent_ms: u64,
}

/// The refresh token of a session whose token ends within `ahead` seconds (or has ended), if
/// it has one: a refresh is due.
pub fn due(token: &UpstreamToken, ahead: u64, now: u64) -> Option<&str> {
    let exp = token.exp?;
    let refresh = token.refresh.as_deref()?;
    (now.saturating_add(ahead) >= exp).then_some(refresh)
}

/// Takes the refresh lock of a session's token across Envoy's workers and, when this request
/// got it, the wait state to carry through the refresh call (`timeout_ms` is its deadline).
/// The lock lives in the bounded lock store and expires by itself (a worker that dies holding
/// it blocks nobody for long); its key is a digest of the refresh token and the token's end, so
/// every request carrying this session contends for it and a renewed session has its own.
/// `None`: another request refreshes, or the store cannot be used (the session goes on as it
/// is). Sessions of refreshing methods carry no single-logout key and no SAML subject.
pub fn claim(
    here: &Here<'_>,
    req: &Request<'_>,
    session: &SessionView<'_>,
    timeout_ms: u64,
    env: &mut Env<'_>,
) -> Option<Pending> {
    let token = session.token?;
    let refresh = token.refresh.as_deref()?;
    let key = format!(
        "refresh:{}",
        hex_digest(&format!("{refresh}\n{}", token.exp.unwrap_or(0)))
    );
    let (now, cache) = (env.now, env.cache);
    let hold = LOCK_SECONDS.max(timeout_ms.div_ceil(1000).saturating_add(1));
    // The lock is per replica on purpose: two replicas refreshing one session at once cost
    // the IdP one extra refresh, and a lock in etcd would cost every refresh a round trip.
    let locked = here
        .kit
        .stores(cache, env.rng, &env.fleet, None)
        .and_then(|st| {
            st.try_lock(&key, now.saturating_add(hold), now)
                .map_err(Into::into)
        });
    match locked {
        Ok(true) => {}
        Ok(false) => return None,
        Err(deny) => {
            log::warn!(
                "sso-filter: refresh lock unavailable method={} reason={}",
                here.name(),
                deny.reason()
            );
            return None;
        }
    }
    Some(Pending {
        head: req.head.clone(),
        session: Session {
            v: 1,
            id: session.id.clone(),
            iat: session.iat,
            exp: session.exp,
            hint: session.hint.map(str::to_owned),
            token: Some(token.clone()),
            sid: None,
            saml: None,
        },
        sent_ms: env.now_ms,
    })
}

/// The refresh failed (`cause`, for the log line; never a token): the old session while its
/// token lasts, else the session ends. Fail closed: a session is never used past its token's
/// end without a successful refresh.
pub fn failed(here: &Here<'_>, pending: Pending, cause: &str, env: &mut Env<'_>) -> Outcome {
    log::warn!(
        "sso-filter: refresh failed method={} cause={}",
        here.name(),
        sanitize(cause)
    );
    let kit = here.kit;
    let req = kit.request(&pending.head);
    let still_valid = pending
        .session
        .token
        .as_ref()
        .and_then(|t| t.exp)
        .is_some_and(|exp| env.now < exp);
    let outcome = if still_valid {
        kit.forward_session(&req, pending.session, env.now)
    } else {
        end(here, &req)
    };
    outcome.count(Counter::Refresh(here.label(), false))
}

/// The refresh endpoint's answer failed: an RFC 6749 §5.2 `invalid_grant` (the refresh token
/// is revoked or expired at the IdP, so nobody vouches for the identity any more) ends the
/// session now (security.md F11); any other failure is [`failed`].
pub fn answer_failed(
    here: &Here<'_>,
    pending: Pending,
    failure: &IdpFailure,
    env: &mut Env<'_>,
) -> Outcome {
    if matches!(failure, IdpFailure::Refused(code) if code == "invalid_grant") {
        log::warn!(
            "sso-filter: refresh failed method={} cause=refused_invalid_grant; the session ends now",
            here.name()
        );
        let req = here.kit.request(&pending.head);
        return end(here, &req).count(Counter::Refresh(here.label(), false));
    }
    failed(here, pending, &failure.reason(), env)
}

/// The session ends now: its cookies are deleted and the request needs a login (a navigation
/// goes to the login URL with this URL as the return address; anything else gets 401 JSON).
/// The caller counts why.
pub fn end(here: &Here<'_>, req: &Request<'_>) -> Outcome {
    let kit = here.kit;
    let rd = if req.raw_query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.raw_query)
    };
    let cookies = kit.cookies().clear_session(&req.cookies);
    Outcome::new(Step::Respond(kit.login_required(req, &rd).cookies(cookies)))
}

/// The refresh succeeded: `renewed` is sealed in a new session cookie, which rides on the
/// upstream's response, and the request goes on with it. A session that cannot be sealed (too
/// large for the cookies, no randomness) is a failed refresh.
pub fn renewed(here: &Here<'_>, pending: Pending, renewed: Session, env: &mut Env<'_>) -> Outcome {
    let kit = here.kit;
    let req = kit.request(&pending.head);
    let cookies = match kit
        .cookies()
        .write_session(&renewed, &req.cookies, env.now, env.rng)
    {
        Ok(c) => c,
        Err(SealError::TooLarge) => return failed(here, pending, "session_too_large", env),
        Err(SealError::Random) => return failed(here, pending, "random", env),
    };
    let mut outcome = kit.forward_session(&req, renewed, env.now);
    if let Step::Continue(edits) = &mut outcome.step {
        edits.extend(
            cookies
                .into_iter()
                .map(|c| HeaderEdit::AddResponse("set-cookie".into(), c)),
        );
    }
    outcome.count(Counter::Refresh(here.label(), true))
}

/// A short hex digest, for cache keys that must not contain the secret itself.
fn hex_digest(secret: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}
