//! The sans-IO engine: a request (or a body, or a callout answer) in, one [`Outcome`] out.
//!
//! # Driving loop
//!
//! 1. For each request head, call [`Filter::on_request`] and carry out the returned step.
//! 2. [`Step::ReadBody`]: buffer the body (refusing past `limit`), then call
//!    [`Filter::on_body`] with the pending state; carry out that step.
//! 3. [`Step::Callout`]: send it; call [`Filter::on_callout_response`] with the answer (or a
//!    response with no status when it failed) and the pending state.
//! 4. [`Step::Continue`] applies header edits and lets the request go upstream;
//!    [`Step::Respond`] ends it. Exactly one of the two ends every request; the host never
//!    resumes a request it answered.
//!
//! Time, randomness and the shared cache come in through [`Env`]; the engine never reads a
//! clock or the OS.

use std::sync::Arc;

use serde_json::json;

use crate::config::{Config, ConfigError, Method, Scope};
use crate::counter::{Counter, MethodLabel};
use crate::deny::{sanitize, Deny};
use crate::http::{
    normalize_path, parse_cookies, split_target, CalloutResponse, HeaderEdit, Outcome, Query,
    RequestHead, Response, Step, StreamReply,
};
use crate::identity::{strip_spoofed, Identity};
use crate::jose::claims::expiry_from;
use crate::login::{Here, LoginMethod, Request, SessionView};
use crate::memo::Memo;
use crate::methods::throttle::PasswordBudget;
use crate::pages;
use crate::random;
use crate::redirect::safe_return;
use crate::session::{Flow, SealError, Session, SessionExtra, UpstreamToken, FLOW_TTL};
use crate::store::Stores;
use crate::wait::{state_as, BodyWait, CalloutWait, MethodRef, StreamWait};

mod kit;

pub use crate::login::Env;

/// How the engine names the request facts (the type methods see as [`Request`]).
type Ctx<'h> = Request<'h>;

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
        self.name_clusters(outcome)
    }

    /// Finishes every outcome the engine hands to a host: names the cluster of an outgoing
    /// callout per `cluster_names` (the one place this deployment detail is applied, whichever
    /// method made the callout), and makes sure a per-method counter names a configured
    /// method, so no request can define a metric.
    fn name_clusters(&self, mut outcome: Outcome) -> Outcome {
        if let Step::Callout(callout, _) = &mut outcome.step {
            if let Ok(url) = url::Url::parse(&callout.url) {
                callout.upstream = self.config.cluster_names.name(&url);
            }
        }
        for counter in &mut outcome.counters {
            let known = counter
                .method()
                .is_none_or(|m| self.config.method_anywhere(m.as_str()).is_some());
            if !known {
                *counter = counter.clone().relabel(MethodLabel::unknown());
            }
        }
        outcome
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
        let ctx = Ctx {
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
        self.name_clusters(outcome)
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
            // The engine makes no callouts of its own.
            (None, _) => unavailable(),
        };
        self.name_clusters(outcome)
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
        self.name_clusters(outcome)
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

    /// The bounded stores for this input (single use, logged out, throttle, locks).
    fn stores<'s, 'c: 's>(&'s self, env: &mut Env<'c>) -> Result<Stores<'s>, Deny> {
        Stores::open(env.cache, env.rng, &self.config.limits).map_err(Deny::from)
    }

    /// Consumes a login flow: the flow cookie whose state matches, once. The flow's state is
    /// recorded in the used-flow list until the flow expires, so a replayed callback (the same
    /// flow cookie and state again) is refused before any callout (security.md F1).
    fn take_flow(
        &self,
        ctx: &Ctx<'_>,
        state: &str,
        env: &mut Env<'_>,
    ) -> Result<(Flow, String), Deny> {
        let (flow, delete) = self
            .config
            .cookies
            .take_flow(&ctx.cookies, state, env.now)
            .ok_or(Deny::FlowInvalid)?;
        let fresh =
            self.stores(env)?
                .use_flow(&flow.state, flow.exp.saturating_add(60), env.now)?;
        if !fresh {
            return Err(Deny::FlowInvalid);
        }
        Ok((flow, delete))
    }

    /// The address of the client: from `client_ip_header` (its last value) when configured,
    /// else the connection's peer.
    fn client_of(&self, head: &RequestHead) -> Option<std::net::IpAddr> {
        let ip: Option<std::net::IpAddr> = match &self.config.client_ip_header {
            Some(name) => head
                .header_values(name)
                .last()
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok()),
            None => head.client,
        };
        // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d: one client, one form.
        ip.map(|ip| match ip {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(std::net::IpAddr::V6(v6), std::net::IpAddr::V4),
            v4 => v4,
        })
    }

    /// Works out a request's facts from its head (for inputs that resume a request).
    fn ctx_for<'h>(&self, head: &'h RequestHead) -> Ctx<'h> {
        let (raw_path, raw_query) = split_target(&head.path);
        let path = normalize_path(raw_path).unwrap_or_else(|_| "/".to_owned());
        let cookies = parse_cookies(head);
        Ctx {
            base_edits: self.base_edits(head, &cookies, raw_path, &path, raw_query),
            head,
            path,
            raw_query,
            query: Query::parse(raw_query),
            cookies,
        }
    }

    fn route(&self, ctx: &Ctx<'_>, env: &mut Env<'_>) -> Result<Outcome, Deny> {
        let c = &self.config;
        if ctx.path == c.login_page {
            return self.login_page(ctx, env);
        }
        if let Some(method) = c.callbacks.get(&ctx.path) {
            if let Some((here, imp)) = self.login_anywhere(method) {
                return imp.callback(&here, ctx, env);
            }
            return Err(Deny::NotFound);
        }
        if let Some(rest) = ctx.path.strip_prefix(&c.prefix) {
            return match rest {
                "/login" => self.start_login(ctx, env),
                "/logout" => Ok(self.logout(ctx, env)),
                "/userinfo" => Ok(self.userinfo(ctx, env)),
                _ if self.own_endpoint(rest).is_some() => {
                    let (here, imp, sub) = self.own_endpoint(rest).ok_or(Deny::NotFound)?;
                    imp.endpoint(&here, ctx, sub, env)
                }
                _ => Err(Deny::NotFound),
            };
        }
        if self.is_public(&ctx.path) {
            return Ok(Outcome::new(Step::Continue(ctx.base_edits.clone())));
        }
        let scope = self.scope(&ctx.query)?;
        let explicit = self.explicit_method(scope, &ctx.query)?;
        let chosen = explicit.or_else(|| {
            scope
                .default_method
                .as_ref()
                .and_then(|d| scope.methods.get(d))
        });

        // A login carried by the URL: a token (it replaces any session: security.md J17), a
        // light-app ticket, an admin-console code.
        if let Some((here, imp)) = chosen.map(|m| self.login_in(scope, m)) {
            if let Some(outcome) = imp.on_protected(&here, ctx, env)? {
                return Ok(outcome);
            }
        }

        if let Some(session) = self.session(ctx, env) {
            let tenant_ok = match &scope.tenant {
                None => true,
                Some(t) => session.id.tenant.as_deref() == Some(t.code.as_str()),
            };
            if tenant_ok {
                let issuer = scope
                    .methods
                    .get(&session.id.method)
                    .map(|m| self.login_in(scope, m));
                if let Some((here, imp)) = issuer {
                    let view = SessionView {
                        id: &session.id,
                        iat: session.iat,
                        exp: session.exp,
                        token: session.token.as_ref(),
                        hint: session.hint.as_deref(),
                    };
                    if let Some(outcome) = imp.on_session(&here, ctx, &view, env)? {
                        return Ok(outcome);
                    }
                }
                return Ok(self.forward(ctx, &session, env.now));
            }
        }

        if let Some(outcome) = self.bearer(ctx, scope, chosen, env)? {
            return Ok(outcome);
        }

        let rd = if ctx.raw_query.is_empty() {
            ctx.path.clone()
        } else {
            format!("{}?{}", ctx.path, ctx.raw_query)
        };
        let login_url = self.login_url(&rd, Some(ctx));
        if ctx.head.is_navigation() {
            return Ok(
                Outcome::new(Step::Respond(Response::redirect(302, &login_url)))
                    .count(Counter::RedirectLogin),
            );
        }
        log::info!("sso-filter: login required path={}", sanitize(&ctx.path));
        let body =
            json!({"error": "login_required", "login_url": format!("{}{login_url}", c.origin)});
        let mut response = Response::new(401).json(&body);
        if scope.methods.values().any(|m| m.imp.accepts_bearer()) {
            response = response.header("www-authenticate", "Bearer");
        }
        Ok(Outcome::new(Step::Respond(response)).count(Counter::Unauthenticated))
    }

    /// Strips every client-sent identity header and the filter's cookies, and forwards the
    /// normalised path (security.md B1, B8, C1).
    fn base_edits(
        &self,
        head: &RequestHead,
        cookies: &[(String, String)],
        raw_path: &str,
        path: &str,
        raw_query: &str,
    ) -> Vec<HeaderEdit> {
        let c = &self.config;
        let mut edits = Vec::new();
        let mut names: Vec<&str> = c.headers.all().to_vec();
        // The assertion header is stripped whether or not assertions are configured: an
        // upstream that verifies assertions must never see one the client made.
        names.push(
            c.assertion
                .as_ref()
                .map_or(crate::assertion::DEFAULT_HEADER, |a| a.header()),
        );
        strip_spoofed(head, &names, &mut edits);
        if cookies.iter().any(|(n, _)| c.cookies.is_ours(n)) {
            let kept: Vec<String> = cookies
                .iter()
                .filter(|(n, _)| !c.cookies.is_ours(n))
                .map(|(n, v)| format!("{n}={v}"))
                .collect();
            if kept.is_empty() {
                edits.push(HeaderEdit::Remove("cookie".into()));
            } else {
                edits.push(HeaderEdit::Set("cookie".into(), kept.join("; ")));
            }
        }
        if raw_path != path {
            let target = if raw_query.is_empty() {
                path.to_owned()
            } else {
                format!("{path}?{raw_query}")
            };
            edits.push(HeaderEdit::Set(":path".into(), target));
        }
        edits
    }

    /// Public only when public in both readings of the normalised path: as it is forwarded
    /// (servers for which `;` is an ordinary character) and with every segment's parameters
    /// (`;...`) cut and emptied segments merged (Tomcat, Jetty, Spring). So `/healthz;a` is
    /// protected, and no parameter makes public what either kind of server reads as
    /// protected (docs/behaviour.md "Paths").
    fn is_public(&self, path: &str) -> bool {
        let matches = |candidate: &str| {
            self.config.public_paths.iter().any(|p| {
                if p.ends_with('/') {
                    candidate.starts_with(p.as_str())
                } else {
                    candidate == p
                }
            })
        };
        let mut stripped = String::with_capacity(path.len());
        let mut last_name = "";
        for segment in path.split('/').skip(1) {
            last_name = segment.split(';').next().unwrap_or_default();
            if !last_name.is_empty() {
                stripped.push('/');
                stripped.push_str(last_name);
            }
        }
        if last_name.is_empty() {
            stripped.push('/');
        }
        matches(path) && matches(&stripped)
    }

    /// The scope a request's tenant parameters select (global when none).
    fn scope(&self, query: &Query) -> Result<&Scope, Deny> {
        let c = &self.config;
        for param in &c.tenant_params {
            let value = query
                .single(param)
                .map_err(|_| Deny::BadRequest("duplicate_tenant"))?;
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                return c
                    .tenants
                    .values()
                    .find(|s| {
                        s.tenant
                            .as_ref()
                            .is_some_and(|t| t.code == v || t.id.as_deref() == Some(v))
                    })
                    .ok_or(Deny::UnknownTenant);
            }
        }
        Ok(&c.global)
    }

    fn explicit_method<'s>(
        &self,
        scope: &'s Scope,
        query: &Query,
    ) -> Result<Option<&'s Method>, Deny> {
        let name = query
            .single(&self.config.method_param)
            .map_err(|_| Deny::BadRequest("duplicate_method"))?;
        match name {
            None => Ok(None),
            Some(n) => scope
                .methods
                .get(n)
                .map(Some)
                .ok_or_else(|| Deny::UnknownMethod {
                    valid: scope.methods.keys().cloned().collect(),
                }),
        }
    }

    /// `{prefix}/login?rd=...` with the request's method and tenant parameters carried along.
    fn login_url(&self, rd: &str, ctx: Option<&Ctx<'_>>) -> String {
        let c = &self.config;
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("rd", rd);
        if let Some(ctx) = ctx {
            for p in std::iter::once(&c.method_param).chain(&c.tenant_params) {
                if let Ok(Some(v)) = ctx.query.single(p) {
                    q.append_pair(p, v);
                }
            }
        }
        format!("{}/login?{}", c.prefix, q.finish())
    }

    fn tenant_params_of(&self, ctx: &Ctx<'_>) -> Vec<(String, String)> {
        self.config
            .tenant_params
            .iter()
            .filter_map(|p| {
                ctx.query
                    .single(p)
                    .ok()
                    .flatten()
                    .map(|v| (p.clone(), v.to_owned()))
            })
            .collect()
    }

    fn deny(&self, ctx: &Ctx<'_>, deny: Deny, cookies: Vec<String>) -> Outcome {
        let login = self.login_url("/", Some(ctx));
        deny.respond(ctx.head, &ctx.path, &login, cookies)
    }

    /// A refusal inside a login flow: "Sign in again" returns to where the login started, with
    /// the same method and tenant.
    fn deny_flow(&self, ctx: &Ctx<'_>, flow: &Flow, deny: Deny, cookies: Vec<String>) -> Outcome {
        deny.respond(ctx.head, &ctx.path, &self.retry_login_url(flow), cookies)
    }

    /// The login URL that starts a flow's login again.
    fn retry_login_url(&self, flow: &Flow) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("rd", &flow.rd)
            .append_pair(&self.config.method_param, &flow.method);
        if let (Some(t), Some(p)) = (&flow.tenant, self.config.tenant_params.first()) {
            q.append_pair(p, t);
        }
        format!("{}/login?{}", self.config.prefix, q.finish())
    }

    /// The request's session, from the memo or by opening the cookie. A session made by a CAS
    /// ticket is looked up in the single-logout list on every request, memo hit or not, so a
    /// logout reaches every worker at once.
    fn session(&self, ctx: &Ctx<'_>, env: &Env<'_>) -> Option<Arc<Prepared>> {
        let sealed = self.config.cookies.sealed_session(&ctx.cookies)?;
        let prepared = match self.sessions.get(&sealed, env.now) {
            Some(hit) => hit,
            None => {
                let session = self.config.cookies.open_session(&sealed, env.now)?;
                let exp = session.exp;
                let prepared = Arc::new(self.prepare(session));
                self.sessions
                    .put(sealed, exp, Arc::clone(&prepared), env.now);
                prepared
            }
        };
        match &prepared.sid {
            Some(sid) if crate::store::logged_out(env.cache, &self.config.limits, sid, env.now) => {
                None
            }
            _ => Some(prepared),
        }
    }

    fn prepare(&self, session: Session) -> Prepared {
        let mut edits = Vec::new();
        self.config.headers.emit(&session.id, &mut edits);
        if let Some(t) = &session.token {
            // The IdP's token replaces whatever Authorization the client sent.
            edits.push(HeaderEdit::Set(
                "authorization".into(),
                format!("Bearer {}", t.access),
            ));
        }
        Prepared {
            id: session.id,
            edits,
            exp: session.exp,
            iat: session.iat,
            hint: session.hint,
            token: session.token,
            sid: session.sid,
        }
    }

    /// Forwards a request with an identity.
    fn forward(&self, ctx: &Ctx<'_>, who: &Prepared, now: u64) -> Outcome {
        let mut edits = ctx.base_edits.clone();
        edits.extend(who.edits.iter().cloned());
        if let Some(signer) = &self.config.assertion {
            edits.push(HeaderEdit::Set(
                signer.header().to_owned(),
                signer.sign(&who.id, now),
            ));
        }
        Outcome::new(Step::Continue(edits))
    }

    /// Turns a method's identity into a session cookie (a brand-new one: security.md E8).
    fn establish(
        &self,
        ctx: &Ctx<'_>,
        scope: &Scope,
        mut id: Identity,
        claims: Option<&serde_json::Map<String, serde_json::Value>>,
        extra: SessionExtra,
        env: &mut Env<'_>,
    ) -> Result<Vec<String>, Deny> {
        if let Some(t) = &scope.tenant {
            id.tenant.get_or_insert_with(|| t.code.clone());
            if id.tenant_name.is_none() {
                id.tenant_name.clone_from(&t.name);
            }
        }
        if let Err(why) = id.check() {
            return Err(Deny::IdentityInvalid {
                method: id.method.clone(),
                why,
            });
        }
        let c = &self.config.cookies;
        let mut exp = env.now.saturating_add(c.ttl);
        if let Some(cap) = extra.exp_cap {
            exp = exp.min(cap);
        }
        if let (Some(claim), Some(claims)) = (&c.expiry_claim, claims) {
            if let Some(idp_exp) = expiry_from(claims, claim) {
                exp = exp.min(idp_exp);
            }
        }
        let method = id.method.clone();
        let session = Session {
            v: 1,
            id,
            iat: env.now,
            exp,
            hint: extra.hint,
            token: extra.token,
            sid: extra.sid,
            saml: extra.saml,
        };
        c.write_session(&session, &ctx.cookies, env.now, env.rng)
            .map_err(|e| match e {
                SealError::Random => Deny::Unavailable("random"),
                SealError::TooLarge => Deny::IdentityInvalid {
                    method,
                    why: "identity too large for the session cookie",
                },
            })
    }

    /// `Authorization: Bearer` verified per request by a jwt method with `accept_bearer`.
    fn bearer(
        &self,
        ctx: &Ctx<'_>,
        scope: &Scope,
        chosen: Option<&Method>,
        env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        let Some(auth) = ctx.head.header("authorization") else {
            return Ok(None);
        };
        let token = match auth.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
            _ => return Ok(None),
        };
        let accepts = |m: &&Method| m.imp.accepts_bearer();
        let Some((here, imp)) = chosen
            .filter(accepts)
            .or_else(|| scope.methods.values().find(accepts))
            .map(|m| self.login_in(scope, m))
        else {
            return Ok(None);
        };
        // The identity depends on the scope and method as well as the token.
        let key = format!("{}\n{}\n{token}", here.tenant.unwrap_or(""), here.name());
        let prepared = match self.bearers.get(&key, env.now) {
            Some(hit) => hit,
            None => {
                let verified = imp.verify_bearer(&here, token, env)?;
                let mut id = here.identity(&verified.claims)?;
                if let Some(t) = here.tenant {
                    id.tenant.get_or_insert_with(|| t.to_owned());
                }
                id.check().map_err(|why| here.identity_invalid(why))?;
                let prepared = Arc::new(self.prepare(Session {
                    v: 1,
                    id,
                    iat: env.now,
                    exp: verified.valid_until,
                    hint: None,
                    token: None,
                    sid: None,
                    saml: None,
                }));
                if verified.memoizable {
                    self.bearers
                        .put(key, verified.valid_until, Arc::clone(&prepared), env.now);
                }
                prepared
            }
        };
        Ok(Some(self.forward(ctx, &prepared, env.now)))
    }

    /// `{prefix}/login`: start the chosen method, or offer the choice.
    fn start_login(&self, ctx: &Ctx<'_>, env: &mut Env<'_>) -> Result<Outcome, Deny> {
        let c = &self.config;
        let scope = self.scope(&ctx.query)?;
        let rd = safe_return(
            ctx.query.single("rd").ok().flatten().unwrap_or("/"),
            &c.origin,
        );
        let explicit = self.explicit_method(scope, &ctx.query)?;
        let tenant = self.tenant_params_of(ctx);
        let Some(method) = explicit.or_else(|| {
            scope
                .default_method
                .as_ref()
                .and_then(|d| scope.methods.get(d))
        }) else {
            let links = scope
                .methods
                .values()
                .map(|m| {
                    let mut q = url::form_urlencoded::Serializer::new(String::new());
                    q.append_pair(&c.method_param, &m.name)
                        .append_pair("rd", &rd);
                    for (k, v) in &tenant {
                        q.append_pair(k, v);
                    }
                    (
                        m.label.clone(),
                        format!("{}/login?{}", c.prefix, q.finish()),
                    )
                })
                .collect::<Vec<_>>();
            return Ok(Outcome::new(Step::Respond(
                Response::new(200).html(pages::chooser(&links)),
            )));
        };
        let (here, imp) = self.login_in(scope, method);
        if imp.uses_form() {
            return Ok(self.to_login_page(method, &rd, &tenant));
        }
        imp.start(&here, ctx, rd, env)
    }

    /// A form method was chosen: to the login page, with the return URL, method and tenant.
    fn to_login_page(&self, method: &Method, rd: &str, tenant: &[(String, String)]) -> Outcome {
        let c = &self.config;
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("rd", rd)
            .append_pair(&c.method_param, &method.name);
        for (k, v) in tenant {
            q.append_pair(k, v);
        }
        let location = format!("{}?{}", c.login_page, q.finish());
        Outcome::new(Step::Respond(Response::redirect(302, &location)))
    }

    /// The form method (built-in users or LDAP) a login-page request is for: the named one,
    /// else the scope's default if it uses the form, else the first that does.
    fn local_method<'s>(&self, scope: &'s Scope, query: &Query) -> Result<&'s Method, Deny> {
        let is_local = |m: &&Method| m.imp.uses_form();
        if let Some(m) = self.explicit_method(scope, query)? {
            return Some(m).filter(is_local).ok_or(Deny::NotFound);
        }
        scope
            .default_method
            .as_ref()
            .and_then(|d| scope.methods.get(d))
            .filter(is_local)
            .or_else(|| scope.methods.values().find(is_local))
            .ok_or(Deny::NotFound)
    }

    /// `login_page`: the form (GET) or its post (POST, body read next).
    fn login_page(&self, ctx: &Ctx<'_>, env: &mut Env<'_>) -> Result<Outcome, Deny> {
        match ctx.head.method.as_str() {
            "GET" | "HEAD" => {
                let scope = self.scope(&ctx.query)?;
                let method = self.local_method(scope, &ctx.query)?;
                let rd = safe_return(
                    ctx.query.single("rd").ok().flatten().unwrap_or("/"),
                    &self.config.origin,
                );
                let tenant = scope.tenant.as_ref().map(|t| t.code.clone());
                self.render_form(ctx, &method.name, tenant, rd, 200, None, Vec::new(), env)
            }
            "POST" => {
                let form = ctx.head.header("content-type").is_some_and(|t| {
                    t.to_ascii_lowercase()
                        .starts_with("application/x-www-form-urlencoded")
                });
                if !form {
                    return Err(Deny::BadRequest("form_content_type"));
                }
                let wait = BodyWait::engine(FormPost {
                    head: ctx.head.clone(),
                });
                Ok(Outcome::new(Step::ReadBody {
                    wait,
                    limit: MAX_FORM_BYTES,
                }))
            }
            _ => Err(Deny::BadRequest("method")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn render_form(
        &self,
        ctx: &Ctx<'_>,
        method: &str,
        tenant: Option<String>,
        rd: String,
        status: u16,
        message: Option<&str>,
        mut cookies: Vec<String>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let state = random::bytes(env.rng, 32).map_err(|_| Deny::Unavailable("random"))?;
        let state = base64::Engine::encode(&crate::jose::B64URL, state);
        let flow = Flow {
            v: 1,
            state: state.clone(),
            rd,
            method: method.to_owned(),
            tenant,
            exp: env.now.saturating_add(FLOW_TTL),
            nonce: None,
            verifier: None,
            variant: None,
        };
        let flow_cookies = self
            .config
            .cookies
            .write_flow(&flow, &ctx.cookies, env.now, env.rng)
            .map_err(|_| Deny::Unavailable("random"))?;
        cookies.extend(flow_cookies);
        let html = pages::login_form(&self.config.login_page, &state, message);
        let response = Response::new(status)
            .html(html)
            .header(
                "content-security-policy",
                "frame-ancestors 'self'; form-action 'self'",
            )
            .header("referrer-policy", "no-referrer")
            .cookies(cookies);
        Ok(Outcome::new(Step::Respond(response)))
    }

    fn login_form_post(&self, head: &RequestHead, body: &[u8], env: &mut Env<'_>) -> Outcome {
        let ctx = self.ctx_for(head);
        match self.finish_form_login(&ctx, body, env) {
            Ok(outcome) => outcome,
            Err(deny) => self.deny(&ctx, deny, Vec::new()),
        }
    }

    fn finish_form_login(
        &self,
        ctx: &Ctx<'_>,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        if body.len() > MAX_FORM_BYTES {
            return Err(Deny::BodyTooLarge);
        }
        let text = std::str::from_utf8(body).map_err(|_| Deny::BadRequest("form_encoding"))?;
        let form = Query::parse(text);
        let field = |name: &str| {
            form.single(name)
                .map_err(|_| Deny::BadRequest("duplicate_field"))
        };
        let state = field("state")?.unwrap_or("");
        let username = field("username")?.unwrap_or("").to_owned();
        let password = field("password")?.unwrap_or("").to_owned();
        let (flow, delete_flow) = self.take_flow(ctx, state, env)?;
        let scope = match &flow.tenant {
            None => &self.config.global,
            Some(code) => self.config.tenants.get(code).ok_or(Deny::UnknownTenant)?,
        };
        let method = scope.methods.get(&flow.method).ok_or(Deny::FlowInvalid)?;
        let (here, imp) = self.login_in(scope, method);
        if !imp.uses_form() {
            return Err(Deny::FlowInvalid);
        }
        imp.form_login(&here, ctx, flow, delete_flow, username, password, env)
    }

    fn logout(&self, ctx: &Ctx<'_>, env: &mut Env<'_>) -> Outcome {
        let c = &self.config;
        let rd = safe_return(
            ctx.query.single("rd").ok().flatten().unwrap_or("/"),
            &c.origin,
        );
        // The session is read for its method, so the IdP's session can end too.
        let session = c
            .cookies
            .sealed_session(&ctx.cookies)
            .and_then(|s| c.cookies.open_session(&s, env.now));
        let location = session
            .as_ref()
            .and_then(|s| {
                let scope = self.scope_of(s.id.tenant.as_deref())?;
                let (here, imp) = self.login_in(scope, scope.methods.get(&s.id.method)?);
                imp.logout(&here, s, env)
            })
            .unwrap_or(rd);
        let response =
            Response::redirect(302, &location).cookies(c.cookies.clear_session(&ctx.cookies));
        Outcome::new(Step::Respond(response)).count(Counter::Logout)
    }

    fn userinfo(&self, ctx: &Ctx<'_>, env: &mut Env<'_>) -> Outcome {
        match self.session(ctx, env) {
            Some(session) => {
                let mut body = serde_json::to_value(&session.id).unwrap_or_else(|_| json!({}));
                if let Some(map) = body.as_object_mut() {
                    map.insert("expires_at".into(), json!(session.exp));
                }
                Outcome::new(Step::Respond(Response::new(200).json(&body)))
            }
            None => {
                let login = format!("{}{}", self.config.origin, self.login_url("/", Some(ctx)));
                Outcome::new(Step::Respond(
                    Response::new(401)
                        .json(&json!({"error": "login_required", "login_url": login})),
                ))
            }
        }
    }
}
