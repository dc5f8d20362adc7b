//! A session of this method on the request path: the seeds' "reload user" (`prompt=none`)
//! and the refresh of the forwarded access token (RFC 6749 §6).

use super::login::{Refresh, Wait};
use super::OAuth2;
use crate::counter::Counter;
use crate::deny::Deny;
use crate::http::{CalloutResponse, HeaderEdit, Outcome, Step};
use crate::idp::answered;
use crate::login::{Env, Here, Request, SessionView};
use crate::session::{Session, UpstreamToken};

/// Seconds before expiry at which an access token is refreshed.
const REFRESH_AHEAD: u64 = 60;
/// How long one refresh holds its lock (the shared cache), so parallel requests of one session
/// do not all refresh.
const REFRESH_LOCK: u64 = 30;

impl OAuth2 {
    /// The seeds' "reload user": a navigation with `reloadUser=true`, or any navigation when
    /// the method has `reload_user`, asks the IdP again without showing its pages
    /// (`prompt=none`), and the callback replaces the session (switching user if the IdP's
    /// user changed, the iframe-embedding case). `Request::reload_target` decides when.
    pub(super) fn reload(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        session: &SessionView<'_>,
        env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        let Some(rd) = req.reload_target(self.reload_user, session.iat, env.now)? else {
            return Ok(None);
        };
        self.begin(here, req, rd, true, env).map(Some)
    }

    /// A session whose forwarded access token is about to expire gets it refreshed before the
    /// request goes on (RFC 6749 §6), at most one refresh per refresh token at a time across
    /// Envoy's workers. Without endpoints at hand, a refresh token, or the lock, the request
    /// goes on with the current token.
    pub(super) fn refresh_if_due(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        session: &SessionView<'_>,
        env: &mut Env<'_>,
    ) -> Option<Outcome> {
        let token = session.token?;
        let refresh = token.refresh.as_deref()?;
        let exp = token.exp?;
        if env.now.saturating_add(REFRESH_AHEAD) < exp {
            return None;
        }
        let eps = self.known_endpoints(env).ok().flatten()?;
        // One refresh in flight per refresh token across workers: a lock in the bounded lock
        // store that expires by itself (a worker that dies holding it blocks nobody for long).
        let lock = format!("refresh:{}", hex_digest(refresh));
        let (now, cache) = (env.now, env.cache);
        let won = here
            .kit
            .stores(cache, env.rng)
            .ok()
            .and_then(|st| {
                st.try_lock(&lock, now.saturating_add(REFRESH_LOCK), now)
                    .ok()
            })
            .unwrap_or(false);
        if !won {
            return None;
        }
        let wait = Refresh {
            head: req.head.clone(),
            session: Session {
                v: 1,
                id: session.id.clone(),
                iat: session.iat,
                exp: session.exp,
                hint: session.hint.map(str::to_owned),
                token: Some(token.clone()),
                // This method's sessions carry no single-logout key and no SAML subject.
                sid: None,
                saml: None,
            },
            sent_ms: env.now_ms,
        };
        Some(Wait::Refresh(Box::new(wait)).send(here, self.refresh_request(&eps, refresh)))
    }

    /// The refresh answer: a new session cookie on the upstream's response and the new token
    /// upstream; on failure the old token while it lasts, else the request is unauthenticated.
    pub(super) fn finish_refresh(
        &self,
        here: &Here<'_>,
        refresh: Refresh,
        answer: &CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let kit = here.kit;
        let req = kit.request(&refresh.head);
        let renewed = answered(answer, refresh.sent_ms, self.timeout_ms, env.now_ms)
            .ok()
            .and_then(|()| self.refresh_response(answer).ok());
        let mut session = refresh.session;
        let Some(tokens) = renewed else {
            log::warn!(
                "sso-filter: access token refresh failed method={}",
                here.name()
            );
            let still_valid = session
                .token
                .as_ref()
                .and_then(|t| t.exp)
                .is_some_and(|exp| env.now < exp);
            let outcome = if still_valid {
                kit.forward_session(&req, session, env.now)
            } else {
                // The token is gone and cannot be renewed: the session ends.
                let cookies = kit.cookies().clear_session(&req.cookies);
                Outcome::new(Step::Respond(
                    kit.login_required(&req, "/").cookies(cookies),
                ))
            };
            return outcome.count(Counter::Refresh(here.label(), false));
        };
        let old_refresh = session.token.as_ref().and_then(|t| t.refresh.clone());
        session.token = Some(UpstreamToken {
            access: tokens.access_token,
            // RFC 6749 §6: the IdP may rotate the refresh token; otherwise the old one stays.
            refresh: tokens.refresh_token.or(old_refresh),
            exp: tokens.expires_in.map(|s| env.now.saturating_add(s)),
        });
        let cookies = match kit
            .cookies()
            .write_session(&session, &req.cookies, env.now, env.rng)
        {
            Ok(c) => c,
            Err(_) => return kit.refuse(&req, Deny::Unavailable("random"), Vec::new()),
        };
        let mut outcome = kit.forward_session(&req, session, env.now);
        if let Step::Continue(edits) = &mut outcome.step {
            edits.extend(
                cookies
                    .into_iter()
                    .map(|c| HeaderEdit::AddResponse("set-cookie".into(), c)),
            );
        }
        outcome.count(Counter::Refresh(here.label(), true))
    }
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
