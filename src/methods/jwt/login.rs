//! JWT request parameters and bearer tokens behind [`LoginMethod`].
//!
//! A token in the URL (`?{param}=...`) logs in and replaces any session (security.md J17);
//! the browser is sent to the same URL without the token, so it never reaches the upstream,
//! the history or a Referer (J16). A bearer token is verified on every request (remembered
//! until it expires unless the method is `one_time`).

use super::Jwt;
use crate::deny::Deny;
use crate::http::{strip_query_params, Outcome};
use crate::login::{Done, Env, Here, LoginMethod, Request, Verified};
use crate::session::SessionExtra;

impl Jwt {
    /// Verifies a token, with the single-use list when the method is `one_time`.
    fn check(
        &self,
        here: &Here<'_>,
        token: &str,
        env: &mut Env<'_>,
    ) -> Result<super::Accepted, Deny> {
        let stores = if self.memoizable() {
            None
        } else {
            Some(here.kit.stores(env.cache, env.rng)?)
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

    fn on_protected(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        let Some(token) = req.param(&self.param, "duplicate_token")? else {
            return Ok(None);
        };
        let accepted = self.check(here, token, env)?;
        let query = strip_query_params(req.raw_query, &[&self.param, here.kit.method_param()]);
        let landing = if query.is_empty() {
            req.path.clone()
        } else {
            format!("{}?{query}", req.path)
        };
        let done = Done {
            identity: here.identity(&accepted.claims)?,
            claims: Some(&accepted.claims),
            extra: SessionExtra::default(),
            landing,
            cookies: Vec::new(),
        };
        here.kit.finish_login(here, req, done, env).map(Some)
    }

    fn verify_bearer(
        &self,
        here: &Here<'_>,
        token: &str,
        env: &mut Env<'_>,
    ) -> Result<Verified, Deny> {
        let accepted = self.check(here, token, env)?;
        Ok(Verified {
            claims: accepted.claims,
            valid_until: accepted.valid_until,
            memoizable: self.memoizable(),
        })
    }
}
