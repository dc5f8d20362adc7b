//! The sans-IO engine: a request (or a body, or a callout answer) in, one [`Outcome`] out.
//!
//! # Driving loop
//!
//! 1. For each request head, call [`Filter::on_request`] and carry out the returned step.
//! 2. [`Step::ReadBody`]: buffer the body (refusing past `limit`), then call
//!    [`Filter::on_body`] with its [`BodyWait`]; carry out that step.
//! 3. [`Step::Callout`]: send it; call [`Filter::on_callout_response`] with the answer (or a
//!    response with no status when it failed) and its [`CalloutWait`].
//! 4. [`Step::Stream`] (hosts with sockets): run the round, then [`Filter::on_stream_reply`]
//!    with what was read and its [`StreamWait`].
//! 5. [`Step::Continue`] applies header edits and lets the request go upstream;
//!    [`Step::Respond`] ends it. Exactly one of the two ends every request; the host never
//!    resumes a request it answered.
//! 6. Apart from requests, on the host's own clock (about every second): call
//!    [`Filter::on_timer`], send the callouts its [`crate::http::Background`] lists, and hand
//!    each answer to [`Filter::on_timer_response`] with its [`crate::wait::TimerWait`]
//!    (`engine/timer.rs`; the organisation sync).
//!
//! The engine routes a request (`engine/route.rs`) and dispatches it to a login method through
//! [`crate::login::LoginMethod`]; it knows no method by name. What every method needs from it
//! (flows, the completion path, refusals) is [`crate::login::Kit`], implemented in
//! `engine/kit.rs`. `docs/architecture.md` walks a request through these files.
//!
//! Time, randomness and the shared cache come in through [`Env`]; the engine never reads a
//! clock or the OS.

use crate::config::{Config, ConfigError, Method, Scope};
use crate::counter::{Counter, MethodLabel};
use crate::deny::Deny;
use crate::http::{
    normalize_path, parse_cookies, split_target, Callout, CalloutResponse, HeaderEdit, Outcome,
    Query, RequestHead, Response, Step, StreamReply,
};
use crate::identity::Identity;
use crate::login::{Here, LoginMethod, Request};
use crate::memo::Memo;
use crate::methods::throttle::PasswordBudget;
use crate::session::UpstreamToken;
use crate::store::fleet;
use crate::wait::{state_as, BodyWait, CalloutWait, MethodRef, StreamWait};

mod endpoints;
mod fleet_flush;
mod kit;
mod page;
mod route;
mod session_path;
mod timer;

pub use crate::login::Env;

/// The engine's own wait: the login form was posted; its body names the flow, and the flow
/// the method.
#[derive(Debug)]
struct FormPost {
    head: RequestHead,
}

/// The largest login-form body accepted.
const MAX_FORM_BYTES: usize = 8 * 1024;

/// A configured filter. Its configuration is immutable once built; share it between
/// requests. The memos only remember credentials that already passed every check.
#[derive(Debug)]
pub struct Filter {
    config: Config,
    /// The password budget of this worker (built-in users and LDAP binds).
    budget: PasswordBudget,
    /// The fleet store's write budget of this worker.
    fleet_budget: fleet::WriteBudget,
    sessions: Memo<Prepared>,
    bearers: Memo<Prepared>,
}

/// A verified identity with its identity-header edits worked out once.
#[derive(Debug)]
struct Prepared {
    id: Identity,
    edits: Vec<HeaderEdit>,
    exp: u64,
    iat: u64,
    hint: Option<String>,
    token: Option<UpstreamToken>,
    /// The CAS ticket digest of a session, checked against single logouts on every request.
    sid: Option<String>,
}

/// A wait whose method is no longer configured (it cannot happen: the configuration of a
/// filter never changes), or resumed by another input than its own: fail closed.
fn gone(method: &MethodRef) -> Outcome {
    log::error!(
        "sso-filter: no method {:?} to resume a wait",
        crate::deny::sanitize(&method.name)
    );
    unavailable()
}

fn unavailable() -> Outcome {
    Outcome::new(Step::Respond(Response::new(503))).count(Counter::Deny("unavailable"))
}

impl Filter {
    /// Builds a filter from a parsed configuration.
    pub fn new(config: Config) -> Self {
        Filter {
            config,
            budget: PasswordBudget::default(),
            fleet_budget: fleet::WriteBudget::default(),
            sessions: Memo::default(),
            bearers: Memo::default(),
        }
    }

    /// Parses a JSON configuration and builds a filter.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] with the JSON path of the problem.
    pub fn from_json(json: &[u8]) -> Result<Self, ConfigError> {
        Config::from_json(json).map(Filter::new)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Handles a request head.
    pub fn on_request(&self, head: &RequestHead, env: &mut Env<'_>) -> Outcome {
        let outcome = self.request(head, env);
        self.finish(outcome, env)
    }

    /// Finishes every outcome the engine hands to a host: names its callout's cluster
    /// ([`Filter::name_clusters`]), and, with a fleet store, holds it back until the store
    /// agrees with what the input's store operations left (`engine/fleet_flush.rs`).
    fn finish(&self, outcome: Outcome, env: &mut Env<'_>) -> Outcome {
        let outcome = self.name_clusters(outcome);
        self.flush_fleet(outcome, env)
    }

    /// Names the cluster of an outgoing callout per `cluster_names` (the one place this
    /// deployment detail is applied, whichever method made the callout), and makes sure a
    /// per-method counter names a configured method, so no request can define a metric.
    fn name_clusters(&self, mut outcome: Outcome) -> Outcome {
        if let Step::Callout(callout, _) = &mut outcome.step {
            self.name_cluster(callout);
        }
        self.known_methods(&mut outcome.counters);
        outcome
    }

    /// Names a callout's cluster per `cluster_names`.
    fn name_cluster(&self, callout: &mut Callout) {
        if let Ok(url) = url::Url::parse(&callout.url) {
            callout.upstream = self.config.cluster_names.name(&url);
        }
    }

    /// Relabels a counter whose method is not configured as `unknown`.
    fn known_methods(&self, counters: &mut [Counter]) {
        for counter in counters {
            let known = counter
                .method()
                .is_none_or(|m| self.config.method_anywhere(m.as_str()).is_some());
            if !known {
                *counter = counter.clone().relabel(MethodLabel::unknown());
            }
        }
    }

    fn request(&self, head: &RequestHead, env: &mut Env<'_>) -> Outcome {
        let (raw_path, raw_query) = split_target(&head.path);
        let path = match normalize_path(raw_path) {
            Ok(p) => p,
            Err(e) => {
                return Deny::BadPath(e.reason()).respond(
                    head,
                    raw_path,
                    &self.login_url("/", None),
                    Vec::new(),
                )
            }
        };
        let cookies = parse_cookies(head);
        let ctx = Request {
            base_edits: self.base_edits(head, &cookies, raw_path, &path, raw_query),
            head,
            path,
            raw_query,
            query: Query::parse(raw_query),
            cookies,
        };
        match self.route(&ctx, env) {
            Ok(outcome) => outcome,
            Err(deny) => self.deny(&ctx, deny, Vec::new()),
        }
    }

    /// Handles a buffered request body for a body wait.
    pub fn on_body(&self, wait: BodyWait, body: &[u8], env: &mut Env<'_>) -> Outcome {
        let outcome = match wait.into_inner().into_parts() {
            (None, state) => match state_as::<FormPost>(state) {
                Some(post) => self.login_form_post(&post.head, body, env),
                None => unavailable(),
            },
            (Some(method), state) => match self.here(&method) {
                Some((here, imp)) => imp.resume_body(&here, state, body, env),
                None => gone(&method),
            },
        };
        self.finish(outcome, env)
    }

    /// Handles a callout's answer (a response with no status when the callout failed).
    pub fn on_callout_response(
        &self,
        wait: CalloutWait,
        response: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let outcome = match wait.into_inner().into_parts() {
            (Some(method), state) => match self.here(&method) {
                Some((here, imp)) => imp.resume_callout(&here, state, response, env),
                None => gone(&method),
            },
            // The engine's own callouts are to the fleet store.
            (None, state) => match state_as::<fleet::Conversation>(state) {
                Some(conversation) => return self.resume_fleet(conversation, response, env),
                None => unavailable(),
            },
        };
        self.finish(outcome, env)
    }

    /// Handles what a [`Step::Stream`] round read (or its failure).
    pub fn on_stream_reply(
        &self,
        wait: StreamWait,
        reply: StreamReply,
        env: &mut Env<'_>,
    ) -> Outcome {
        let outcome = match wait.into_inner().into_parts() {
            (Some(method), state) => match self.here(&method) {
                Some((here, imp)) => imp.resume_stream(&here, state, reply, env),
                None => gone(&method),
            },
            (None, _) => unavailable(),
        };
        self.finish(outcome, env)
    }

    /// The method named `name` in the first scope that has it, when it is behind the trait.
    fn login_anywhere(&self, name: &str) -> Option<(Here<'_>, &dyn LoginMethod)> {
        std::iter::once(&self.config.global)
            .chain(self.config.tenants.values())
            .find_map(|s| s.methods.get(name).map(|m| self.login_in(s, m)))
    }

    /// A method of `scope` at work, and its implementation.
    fn login_in<'s>(
        &'s self,
        scope: &'s Scope,
        method: &'s Method,
    ) -> (Here<'s>, &'s dyn LoginMethod) {
        let here = Here {
            kit: self,
            method,
            tenant: scope.tenant.as_ref().map(|t| t.code.as_str()),
        };
        (here, method.imp.as_ref())
    }

    /// `{prefix}/{segment}/{method}[/{rest}]`: one of a method's own endpoints.
    fn own_endpoint<'r>(&self, rest: &'r str) -> Option<(Here<'_>, &dyn LoginMethod, &'r str)> {
        let mut parts = rest.strip_prefix('/')?.splitn(3, '/');
        let (segment, name) = (parts.next()?, parts.next()?);
        let (here, imp) = self.login_anywhere(name)?;
        (imp.endpoint_segment() == Some(segment)).then(|| (here, imp, parts.next().unwrap_or("")))
    }

    /// The configured method a wait or a flow names.
    fn here(&self, r: &MethodRef) -> Option<(Here<'_>, &dyn LoginMethod)> {
        let here = crate::login::Kit::method(self, r.tenant.as_deref(), &r.name)?;
        Some((here, here.method.imp.as_ref()))
    }
}
