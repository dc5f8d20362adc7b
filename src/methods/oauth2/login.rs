//! The OAuth2 / OIDC login flow (authorization code with PKCE) behind [`LoginMethod`]: start,
//! callback, the callouts between, token refresh and the IdP's logout. The wait states live
//! here; `callback` and `session` drive them.
//!
//! ```text
//! start ──(discovery?)──> 302 to the IdP with state, nonce, PKCE; flow cookie set
//! callback ──(discovery?)──(JWKS?)──> token ──(JWKS refresh on unknown kid)──>
//!          user-info ──> session cookie, flow cookie deleted, 302 to the return URL
//! session ──> reload (prompt=none) when asked or configured; refresh of the forwarded
//!          access token when it is about to expire
//! ```

use std::any::Any;

use serde_json::{Map, Value};

use super::documents::{judge_doc, store_doc};
use super::{Endpoints, OAuth2, Tokens};
use crate::counter::Counter;
use crate::deny::Deny;
use crate::http::{CalloutResponse, Outcome, RequestHead, Response, Step};
use crate::login::{wrong_wait, Env, FlowStart, Here, LoginMethod, Request, SessionView};
use crate::mapping::RawMapping;
use crate::methods::refresh::Pending;
use crate::random;
use crate::session::{Flow, Session};
use crate::wait::state_as;

/// What a login of this method waits for.
#[derive(Debug)]
pub(super) enum Wait {
    /// The discovery document, to start a login.
    Start(Start),
    /// An answer at one of the callback's stages.
    Callback(Box<Finish>, Stage),
    /// A refreshed access token for a request on its way to the upstream.
    Refresh(Box<Pending>),
}

impl Wait {
    /// The callout and this wait, for the engine to carry out.
    pub(super) fn send(self, here: &Here<'_>, callout: crate::http::Callout) -> Outcome {
        here.call_out(callout, self)
    }
}

/// A login being started, waiting for the discovery document.
#[derive(Debug)]
pub(super) struct Start {
    head: RequestHead,
    rd: String,
    silent: bool,
    sent_ms: u64,
}

/// A login being finished at the callback.
#[derive(Debug)]
pub(super) struct Finish {
    pub(super) head: RequestHead,
    pub(super) flow: Flow,
    pub(super) delete_flow: Option<String>,
    pub(super) code: String,
    pub(super) iss: Option<String>,
    pub(super) endpoints: Option<Endpoints>,
    pub(super) sent_ms: u64,
}

/// The callback's stages after the first callout (what `resume_finish` judges).
#[derive(Debug)]
pub(super) enum Stage {
    /// The discovery document.
    Discovery,
    /// The JWKS, fetched before the code is redeemed so the ID token can be checked at once.
    Jwks,
    /// The token response.
    Token,
    /// A fresh JWKS after the ID token named an unknown key.
    JwksRefresh(Tokens),
    /// The user-info response (with the ID token's claims, if any).
    UserInfo(Tokens, Option<Map<String, Value>>),
}

/// 32 random bytes, base64url: a state, a nonce or a PKCE verifier.
fn draw(env: &mut Env<'_>) -> Result<String, Deny> {
    random::token(env.rng).map_err(|_| Deny::Unavailable("random"))
}

impl OAuth2 {
    /// The callback URL registered at the IdP.
    pub(super) fn redirect_uri(&self, here: &Here<'_>) -> String {
        let kit = here.kit;
        let path = self
            .callback_path
            .clone()
            .unwrap_or_else(|| format!("{}/callback/{}", kit.prefix(), here.name()));
        format!("{}{path}", kit.origin())
    }

    /// Starts a login: a redirect to the IdP's authorization endpoint, after fetching the
    /// discovery document when the endpoints are not known yet. `silent` asks the IdP not to
    /// show its pages (`prompt=none`, a reload).
    pub(super) fn begin(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        rd: String,
        silent: bool,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let eps = match self.known_endpoints(env).map_err(|f| here.idp(f))? {
            Some(eps) => eps,
            None => {
                let url = self
                    .discovery_url()
                    .ok_or(Deny::Unavailable("no_endpoints"))?;
                let start = Start {
                    head: req.head.clone(),
                    rd,
                    silent,
                    sent_ms: env.now_ms,
                };
                return Ok(Wait::Start(start).send(here, self.fetch(&url)));
            }
        };
        let nonce = draw(env)?;
        let verifier = draw(env)?;
        let start = FlowStart {
            rd,
            nonce: Some(nonce.clone()),
            verifier: Some(verifier.clone()),
            ..FlowStart::default()
        };
        // The state is the flow itself, sealed (session/flow.rs).
        let begun = here.kit.begin_flow(here, req, start, env)?;
        let location = self.authorize_url(
            &eps,
            &self.redirect_uri(here),
            &begun.state,
            &nonce,
            &verifier,
            silent,
        );
        let cookies = begun.cookies;
        let response = Response::redirect(302, &location).cookies(cookies);
        Ok(Outcome::new(Step::Respond(response)).count(Counter::RedirectIdp(here.label())))
    }

    /// Discovery arrived for a login being started.
    fn resume_start(
        &self,
        here: &Here<'_>,
        start: Start,
        answer: &CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let req = here.kit.request(&start.head);
        let judged =
            judge_doc(answer, start.sent_ms, self.timeout_ms, env.now_ms).and_then(|doc| {
                self.endpoints_from_discovery(&Value::Object(doc.clone()))
                    .map(|_| doc)
            });
        let doc = match judged {
            Ok(doc) => doc,
            Err(failure) => return here.kit.refuse(&req, here.idp(failure), Vec::new()),
        };
        if let Some(url) = self.discovery_url() {
            store_doc(env.cache, &url, &doc, env.now);
        }
        here.answer(&req, self.begin(here, &req, start.rd, start.silent, env))
    }
}

impl LoginMethod for OAuth2 {
    fn type_name(&self) -> &'static str {
        if self.oidc {
            "oidc"
        } else {
            "oauth2"
        }
    }

    fn offer(&self) -> Option<crate::pages::login::Offer> {
        use crate::pages::login::{Offer, Way};
        Some(Offer::of(Way::Redirect))
    }

    fn callback_path(&self) -> Option<Option<&str>> {
        Some(self.callback_path.as_deref())
    }

    fn default_mapping(&self) -> RawMapping {
        self.default_mapping.clone()
    }

    fn outbound_urls(&self) -> Vec<url::Url> {
        OAuth2::outbound_urls(self)
    }

    /// A redirect to the IdP's authorization endpoint.
    fn start(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        rd: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        self.begin(here, req, rd, false, env)
    }

    /// The IdP sends the browser back with a code (or an error).
    fn callback(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        self.receive(here, req, env)
    }

    /// A reload of the user (`prompt=none`), or the refresh of the forwarded access token.
    fn on_session(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        session: &SessionView<'_>,
        env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        if let Some(outcome) = self.reload(here, req, session, env)? {
            return Ok(Some(outcome));
        }
        Ok(self.refresh_if_due(here, req, session, env))
    }

    fn resume_callout(
        &self,
        here: &Here<'_>,
        state: Box<dyn Any + Send>,
        answer: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        match state_as::<Wait>(state) {
            Some(Wait::Start(start)) => self.resume_start(here, start, &answer, env),
            Some(Wait::Callback(finish, stage)) => {
                self.resume_finish(here, *finish, stage, &answer, env)
            }
            Some(Wait::Refresh(refresh)) => self.finish_refresh(here, *refresh, &answer, env),
            None => wrong_wait(here),
        }
    }

    /// The IdP's logout endpoint (configured, or from the cached discovery document), with the
    /// return address naming the method (and tenant).
    fn logout(&self, here: &Here<'_>, session: &Session, env: &mut Env<'_>) -> Option<String> {
        let eps_logout = match self.configured_logout() {
            Some(u) => Some(u.clone()),
            None => self
                .known_endpoints(env)
                .ok()
                .flatten()
                .and_then(|e| e.logout),
        };
        let return_to = here.logout_return(session);
        self.logout_redirect(eps_logout.as_ref(), &return_to, session.hint.as_deref())
    }
}
