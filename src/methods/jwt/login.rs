//! JWT request parameters and bearer tokens behind [`LoginMethod`].
//!
//! A token in the URL (`?{param}=...`) logs in and replaces any session (security.md J17);
//! the browser is sent to the same URL without the token, so it never reaches the upstream,
//! the history or a Referer (J16). A bearer token is verified on every request (remembered
//! until it expires unless the method is `one_time`). A session that came with a refresh token
//! is kept alive (`keep_alive`).

use std::any::Any;

use super::Jwt;
use crate::deny::Deny;
use crate::http::{strip_query_params, CalloutResponse, Outcome, RequestHead};
use crate::login::{wrong_wait, Done, Env, Here, LoginMethod, Request, SessionView, Verified};
use crate::methods::refresh::Pending;
use crate::session::SessionExtra;
use crate::wait::state_as;

impl Jwt {
    /// Verifies a token, with the single-use list when the method is `one_time`; `head` is the
    /// request a fleet-store refusal is answered to (none for a bearer token: JSON).
    pub(super) fn check(
        &self,
        here: &Here<'_>,
        token: &str,
        head: Option<&RequestHead>,
        env: &mut Env<'_>,
    ) -> Result<super::Accepted, Deny> {
        let stores = if self.memoizable() {
            None
        } else {
            Some(here.kit.stores(env.cache, env.rng, &env.fleet, head)?)
        };
        self.verify(here.name(), token, env.now, env.rng, stores.as_ref())
    }
}

impl LoginMethod for Jwt {
    fn type_name(&self) -> &'static str {
        "jwt"
    }

    fn accepts_bearer(&self) -> bool {
        self.accept_bearer
    }

    /// A JWT method cannot be started from a link: the token comes from the issuer.
    fn start(
        &self,
        here: &Here<'_>,
        _req: &Request<'_>,
        _rd: String,
        _env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        Err(Deny::MethodNeedsToken {
            method: here.name().to_owned(),
        })
    }

    fn outbound_urls(&self) -> Vec<url::Url> {
        self.keep_alive.iter().map(|k| k.url().clone()).collect()
    }

    fn on_protected(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        let Some(token) = req.param(&self.param, "duplicate_token")? else {
            if self.stray_refresh_token(req) {
                return Err(Deny::BadRequest("refresh_token_without_token"));
            }
            return Ok(None);
        };
        let keep = self.keep_alive_params(req)?;
        let accepted = self.check(here, token, Some(req.head), env)?;
        let mut strip = vec![self.param.as_str(), here.kit.method_param()];
        strip.extend(self.keep_alive.iter().flat_map(|k| k.params()));
        let query = strip_query_params(req.raw_query, &strip);
        let landing = if query.is_empty() {
            req.path.clone()
        } else {
            format!("{}?{query}", req.path)
        };
        let done = Done {
            identity: here.identity(&accepted.claims)?,
            claims: Some(&accepted.claims),
            extra: SessionExtra {
                token: keep.map(|k| Self::keep_alive_token(k, &accepted, env.now)),
                ..SessionExtra::default()
            },
            landing,
            cookies: Vec::new(),
        };
        here.kit.finish_login(here, req, done, env).map(Some)
    }

    /// Keeps a session alive: its end enforced, its token refreshed when due.
    fn on_session(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        session: &SessionView<'_>,
        env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        Ok(self.keep_alive(here, req, session, env))
    }

    fn resume_callout(
        &self,
        here: &Here<'_>,
        state: Box<dyn Any + Send>,
        answer: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        match state_as::<Pending>(state) {
            Some(pending) => self.finish_keep_alive(here, pending, &answer, env),
            None => wrong_wait(here),
        }
    }

    fn verify_bearer(
        &self,
        here: &Here<'_>,
        token: &str,
        env: &mut Env<'_>,
    ) -> Result<Verified, Deny> {
        let accepted = self.check(here, token, None, env)?;
        Ok(Verified {
            claims: accepted.claims,
            valid_until: accepted.valid_until,
            memoizable: self.memoizable(),
        })
    }
}
