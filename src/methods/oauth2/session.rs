//! A session of this method on the request path: the seeds' "reload user" (`prompt=none`)
//! and the refresh of the forwarded access token (RFC 6749 §6).

use super::login::Wait;
use super::OAuth2;
use crate::deny::Deny;
use crate::http::{CalloutResponse, Outcome};
use crate::idp::answered;
use crate::login::{Env, Here, Request, SessionView};
use crate::methods::refresh::{self, Pending};
use crate::session::UpstreamToken;

/// Seconds before expiry at which an access token is refreshed.
const REFRESH_AHEAD: u64 = 60;

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
    /// request goes on (RFC 6749 §6), at most one refresh per token at a time across Envoy's
    /// workers (`methods::refresh`). Without endpoints at hand, a refresh token, or the lock,
    /// the request goes on with the current token.
    pub(super) fn refresh_if_due(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        session: &SessionView<'_>,
        env: &mut Env<'_>,
    ) -> Option<Outcome> {
        let token = session.token?;
        let refresh = refresh::due(token, REFRESH_AHEAD, env.now)?;
        let eps = self.known_endpoints(env).ok().flatten()?;
        let wait = refresh::claim(here, req, session, self.timeout_ms, env)?;
        Some(Wait::Refresh(Box::new(wait)).send(here, self.refresh_request(&eps, refresh)))
    }

    /// The refresh answer: a new session cookie on the upstream's response and the new token
    /// upstream; on failure the old token while it lasts, else the request is unauthenticated.
    pub(super) fn finish_refresh(
        &self,
        here: &Here<'_>,
        pending: Pending,
        answer: &CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let renewed = answered(answer, pending.sent_ms, self.timeout_ms, env.now_ms)
            .and_then(|()| self.refresh_response(answer));
        let tokens = match renewed {
            Ok(tokens) => tokens,
            Err(failure) => return refresh::answer_failed(here, pending, &failure, env),
        };
        let mut session = pending.session.clone();
        let old_refresh = session.token.as_ref().and_then(|t| t.refresh.clone());
        session.token = Some(UpstreamToken {
            access: Some(tokens.access_token),
            // RFC 6749 §6: the IdP may rotate the refresh token; otherwise the old one stays.
            refresh: tokens.refresh_token.or(old_refresh),
            exp: tokens.expires_in.map(|s| env.now.saturating_add(s)),
        });
        refresh::renewed(here, pending, session, env)
    }
}
