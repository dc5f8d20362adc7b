//! LDAP behind [`LoginMethod`]: the login form's post checked by binding to the directory over
//! a byte stream the host keeps for the request (edge hosts; the Envoy Wasm host has no
//! sockets and refuses `type: ldap` at load).
//!
//! ```text
//! form post ──> throttle, budget ──> Stream(bind as the service account / search / bind as
//!   the user ...) ──> StreamWait(Directory) per round ──> identity ──> session, 303 back
//! ```

use std::any::Any;
use std::sync::Arc;

use super::{Conversation, DirectoryFailure, Ldap, Progress};
use crate::deny::Deny;
use crate::http::{Outcome, RequestHead, Step, StreamReply};
use crate::login::{wrong_wait, Env, Here, LoginMethod, Request};
use crate::mapping::RawMapping;
use crate::methods::form::{self, LoginFailure};
use crate::methods::throttle;
use crate::pages::login::{Notice, Offer, Way};
use crate::session::Flow;
use crate::wait::{state_as, StreamWait};

/// The one message the login page shows for every failed LDAP login: which part was wrong
/// (user, password, directory) is for the log only.
const DIRECTORY_MESSAGE: Notice = Notice::DirectoryFailed;

/// What an LDAP login carries between rounds with the directory.
#[derive(Debug)]
struct Directory {
    /// The request head of the form post.
    head: RequestHead,
    /// The login flow the form was rendered for.
    flow: Flow,
    /// The `Set-Cookie` that deletes the flow cookie.
    delete_flow: Option<String>,
    /// The user's failures counted before this attempt (to clear after a success).
    failures: u32,
    /// The conversation so far.
    conversation: Conversation,
}

impl Ldap {
    /// The form again, with the one directory message and `reason` for the counter.
    fn again(
        here: &Here<'_>,
        req: &Request<'_>,
        flow: &Flow,
        delete_flow: Option<String>,
        failure: LoginFailure,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        form::failed(
            here,
            req,
            flow,
            delete_flow,
            failure,
            DIRECTORY_MESSAGE,
            env,
        )
    }

    /// A round with the directory ended: the next round, or the login's outcome.
    fn next_round(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        mut wait: Directory,
        reply: StreamReply,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let user = wait.conversation.username().to_owned();
        let result = match self.resume(wait.conversation, reply) {
            Progress::Next(exchange, conversation) => {
                wait.conversation = *conversation;
                let wait = StreamWait::new(here.reference(), wait);
                return Ok(Outcome::new(Step::Stream(exchange, wait)));
            }
            Progress::Done(result) => result,
        };
        let key = throttle::key(here.name(), &user, here.kit.client(req.head));
        let stores = here
            .kit
            .stores(env.cache, env.rng, &env.fleet, Some(req.head))?;
        let claims = match result {
            Ok(claims) => claims,
            Err(failure) => {
                if failure.counts() {
                    self.throttle
                        .fail(&stores, here.name(), &key, env.now)
                        .map_err(|_| Deny::Unavailable("throttle_store"))?;
                }
                return Self::directory_failed(
                    here,
                    req,
                    &wait.flow,
                    wait.delete_flow,
                    failure,
                    env,
                );
            }
        };
        self.throttle
            .clear(&stores, here.name(), &key, wait.failures, env.now);
        let id = Arc::clone(&here.method.mapping)
            .apply(&claims, here.name())
            .ok_or_else(|| here.identity_invalid("no login attribute"))?;
        form::succeeded(here, req, &wait.flow, wait.delete_flow, id, env)
    }

    /// The directory said no (or failed): the form again; the detail goes to the log.
    fn directory_failed(
        here: &Here<'_>,
        req: &Request<'_>,
        flow: &Flow,
        delete_flow: Option<String>,
        failure: DirectoryFailure,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        log::warn!(
            "sso-filter: ldap login failed method={} why={failure:?}",
            here.name()
        );
        let again = crate::login::FormAgain {
            flow,
            delete_flow,
            status: 401,
            message: DIRECTORY_MESSAGE,
            reason: failure.reason(),
        };
        here.kit.login_form(here, req, Some(again), env)
    }
}

impl LoginMethod for Ldap {
    fn type_name(&self) -> &'static str {
        "ldap"
    }

    fn uses_form(&self) -> bool {
        true
    }

    fn offer(&self) -> Option<Offer> {
        Some(Offer::of(Way::Form))
    }

    fn needs_stream(&self) -> bool {
        true
    }

    fn default_mapping(&self) -> RawMapping {
        self.default_mapping.clone()
    }

    /// The throttle first, an empty password refused before any bind (it would be an
    /// anonymous bind, which succeeds), then the first round with the directory.
    fn form_login(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        flow: Flow,
        delete_flow: Option<String>,
        username: String,
        password: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let client = here.kit.client(req.head);
        let key = throttle::key(here.name(), &username, client);
        let checked = here
            .kit
            .stores(env.cache, env.rng, &env.fleet, Some(req.head))
            .map_err(|_| LoginFailure::Unavailable)
            .and_then(|st| self.throttle.check(&st, &key, env.now));
        let failures = match checked {
            Ok(n) => n,
            Err(failure) => return Self::again(here, req, &flow, delete_flow, failure, env),
        };
        if !form::plausible(&username, &password) || username.chars().any(char::is_control) {
            return Self::again(here, req, &flow, delete_flow, LoginFailure::Invalid, env);
        }
        // A bind costs the directory what a hash costs us: the same budget.
        if !here.kit.spend_password(client, env.now_ms) {
            return Self::again(here, req, &flow, delete_flow, LoginFailure::Busy, env);
        }
        let (exchange, conversation) = self.start(&username, &password);
        let wait = Directory {
            head: req.head.clone(),
            flow,
            delete_flow,
            failures,
            conversation,
        };
        let wait = StreamWait::new(here.reference(), wait);
        Ok(Outcome::new(Step::Stream(exchange, wait)))
    }

    fn resume_stream(
        &self,
        here: &Here<'_>,
        state: Box<dyn Any + Send>,
        reply: StreamReply,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(wait) = state_as::<Directory>(state) else {
            return wrong_wait(here);
        };
        let head = wait.head.clone();
        let req = here.kit.request(&head);
        match self.next_round(here, &req, wait, reply, env) {
            Ok(outcome) => outcome,
            Err(deny) => here.kit.refuse(&req, deny, Vec::new()),
        }
    }
}
