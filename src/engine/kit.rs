//! What the engine offers every method ([`Kit`]): the flow cookie, the one completion path,
//! the one refusal map, the stores and the password budget.

use super::{Env, Filter};
use crate::config::Scope;
use crate::counter::{Counter, MethodLabel};
use crate::deny::Deny;
use crate::http::{
    normalize_path, parse_cookies, split_target, Outcome, Query, RequestHead, Response, Step,
};
use crate::identity::Identity;
use crate::jose::claims::expiry_from;
use crate::login::{Begun, Done, FlowStart, FormAgain, Here, Kit, Request};
use crate::random;
use crate::redirect::safe_return;
use crate::session::{
    Carried, Cookies, Flow, SealError, Session, SessionExtra, FLOW_TTL, MAX_REBINDS,
};

/// The login endpoint's parameter that counts automatic restarts ([`Filter::restart`]).
const RETRY_PARAM: &str = "retry";
use crate::store::{Fleet, Limits, Stores};

impl Kit for Filter {
    fn origin(&self) -> &str {
        &self.config.origin
    }

    fn prefix(&self) -> &str {
        &self.config.prefix
    }

    fn method_param(&self) -> &str {
        &self.config.method_param
    }

    fn tenant_param(&self) -> Option<&str> {
        self.config.tenant_params.first().map(String::as_str)
    }

    fn cookies(&self) -> &Cookies {
        &self.config.cookies
    }

    fn limits(&self) -> &Limits {
        &self.config.limits
    }

    fn stores<'s>(
        &'s self,
        cache: &'s dyn crate::cache::SharedCache,
        rng: &mut dyn crate::random::Random,
        fleet: &'s Fleet,
        head: Option<&RequestHead>,
    ) -> Result<Stores<'s>, Deny> {
        let stores = Stores::open(cache, rng, &self.config.limits).map_err(Deny::from)?;
        Ok(match (self.config.store.etcd(), head) {
            (Some(_), Some(head)) => stores.everywhere(fleet, head),
            (Some(_), None) => stores.everywhere(fleet, &RequestHead::default()),
            (None, _) => stores,
        })
    }

    fn client(&self, head: &RequestHead) -> Option<std::net::IpAddr> {
        self.client_of(head)
    }

    fn spend_password(&self, client: Option<std::net::IpAddr>, now_ms: u64) -> bool {
        self.budget.take(&self.config.limits, client, now_ms)
    }

    fn request<'h>(&self, head: &'h RequestHead) -> Request<'h> {
        self.ctx_for(head)
    }

    fn begin_flow(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        start: FlowStart,
        env: &mut Env<'_>,
    ) -> Result<Begun, Deny> {
        self.new_flow(here.name(), here.tenant.map(str::to_owned), req, start, env)
    }

    fn take_flow(
        &self,
        req: &Request<'_>,
        state: &str,
        env: &mut Env<'_>,
    ) -> Result<(Flow, Option<String>), Deny> {
        Filter::take_flow(self, req, state, env)
    }

    fn finish_login(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        done: Done<'_>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let scope = self.scope_of(here.tenant).ok_or(Deny::FlowInvalid)?;
        let mut cookies = done.cookies;
        cookies.extend(self.establish(req, scope, done.identity, done.claims, done.extra, env)?);
        let landing = safe_return(&done.landing, &self.config.origin);
        log::info!(
            "sso-filter: login method={} path={}",
            here.name(),
            crate::deny::sanitize(&req.path)
        );
        // After a POST (a login form, a SAML HTTP-POST) 303 makes the browser GET the landing
        // page; the callback URL carried a code, a ticket or a token, so no Referer leaves it.
        let status = if req.head.method == "POST" { 303 } else { 302 };
        let response = Response::redirect(status, &landing)
            .header("referrer-policy", "no-referrer")
            .cookies(cookies);
        Ok(Outcome::new(Step::Respond(response)).count(Counter::LoginSuccess(here.label())))
    }

    fn refuse(&self, req: &Request<'_>, deny: Deny, cookies: Vec<String>) -> Outcome {
        self.deny(req, deny, cookies)
    }

    fn refuse_flow(
        &self,
        req: &Request<'_>,
        flow: &Flow,
        deny: Deny,
        cookies: Vec<String>,
    ) -> Outcome {
        self.deny_flow(req, flow, deny, cookies)
    }

    fn login_form(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        again: Option<FormAgain<'_>>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let Some(again) = again else {
            let rd = safe_return(
                req.query.single("rd").ok().flatten().unwrap_or("/"),
                &self.config.origin,
            );
            let tenant = here.tenant.map(str::to_owned);
            return self.render_form(req, here.name(), tenant, rd, 200, None, Vec::new(), env);
        };
        log::warn!(
            "sso-filter: deny reason={} status={} method={}",
            again.reason,
            again.status,
            here.name()
        );
        let outcome = self.render_form(
            req,
            here.name(),
            again.flow.tenant.clone(),
            again.flow.rd.clone(),
            again.status,
            Some(again.message),
            again.delete_flow.into_iter().collect(),
            env,
        )?;
        Ok(outcome
            .count(Counter::LoginFailure(
                MethodLabel::configured(here.name()),
                again.reason,
            ))
            .count(Counter::Deny(again.reason)))
    }

    fn method(&self, tenant: Option<&str>, name: &str) -> Option<Here<'_>> {
        let scope = self.scope_of(tenant)?;
        let method = scope.methods.get(name)?;
        Some(Here {
            kit: self,
            method,
            tenant: scope.tenant.as_ref().map(|t| t.code.as_str()),
        })
    }

    fn forward_session(&self, req: &Request<'_>, session: Session, now: u64) -> Outcome {
        self.forward(req, &self.prepare(session), now)
    }

    fn login_url(&self, rd: &str, req: &Request<'_>) -> String {
        Filter::login_url(self, rd, Some(req))
    }

    fn login_required(&self, req: &Request<'_>, rd: &str) -> Response {
        let login_url = Filter::login_url(self, rd, Some(req));
        if req.head.is_navigation() {
            return Response::redirect(302, &login_url);
        }
        let origin = &self.config.origin;
        let body = serde_json::json!({
            "error": "login_required",
            "login_url": format!("{origin}{login_url}"),
        });
        Response::new(401).json(&body)
    }
}

impl Filter {
    /// The scope of a tenant code (`None`: the global scope).
    pub(super) fn scope_of(&self, tenant: Option<&str>) -> Option<&crate::config::Scope> {
        match tenant {
            None => Some(&self.config.global),
            Some(code) => self.config.tenants.get(code),
        }
    }
}

impl Filter {
    /// Consumes a login flow, once: the flow sealed in the state and bound to this browser,
    /// or the flow cookie the state names. Its id is recorded in the used-flow list until the
    /// flow expires, so a replayed callback is refused before any callout (security.md F1).
    pub(super) fn take_flow(
        &self,
        ctx: &Request<'_>,
        state: &str,
        env: &mut Env<'_>,
    ) -> Result<(Flow, Option<String>), Deny> {
        let c = &self.config.cookies;
        let (flow, delete) = match c.open_carried(&ctx.cookies, state, env.now) {
            Carried::Bound(flow) => (flow, None),
            Carried::Rebound(flow) => return Err(self.restart(&flow)),
            Carried::Unbound => return Err(Deny::FlowInvalid),
            Carried::NotSealed => {
                let (flow, delete) = c
                    .take_flow(&ctx.cookies, state, env.now)
                    .ok_or(Deny::FlowInvalid)?;
                (flow, Some(delete))
            }
        };
        Kit::stores(self, env.cache, env.rng, &env.fleet, Some(ctx.head))?.claim_flow(
            &flow.state,
            flow.exp.saturating_add(60),
            env.now,
        )?;
        Ok((flow, delete))
    }

    /// Begins a login flow for `method` (in `tenant`'s scope): sealed into the state it
    /// returns, or, for a provider that sends its own state, in a cookie of its own.
    pub(super) fn new_flow(
        &self,
        method: &str,
        tenant: Option<String>,
        req: &Request<'_>,
        start: FlowStart,
        env: &mut Env<'_>,
    ) -> Result<Begun, Deny> {
        let unavailable = |_| Deny::Unavailable("random");
        let id = match &start.cookie_state {
            Some(s) => s.clone(),
            None => random::token(env.rng).map_err(unavailable)?,
        };
        let mut flow = Flow {
            v: 1,
            state: id,
            rd: start.rd,
            method: method.to_owned(),
            tenant,
            exp: env.now.saturating_add(FLOW_TTL),
            nonce: start.nonce,
            verifier: start.verifier,
            variant: start.variant,
            bind: None,
            retry: self.retry_of(req),
        };
        let c = &self.config.cookies;
        if start.cookie_state.is_none() {
            let (state, binding) = c
                .carry_flow(&mut flow, &req.cookies, env.rng)
                .map_err(unavailable)?;
            return Ok(Begun {
                flow,
                state,
                cookies: vec![binding],
            });
        }
        let written = if start.cross_site {
            c.write_cross_site_flow(&flow, &req.cookies, env.now, env.rng)
        } else {
            c.write_flow(&flow, &req.cookies, env.now, env.rng)
        };
        Ok(Begun {
            state: flow.state.clone(),
            flow,
            cookies: written.map_err(unavailable)?,
        })
    }

    /// A flow sealed for an earlier value of this browser's binding cookie (parallel logins
    /// that began before the browser had one): start the same login again, now bound to the
    /// value the browser holds. Nothing the flow carried back is used; the retry count
    /// bounds the loop.
    fn restart(&self, flow: &Flow) -> Deny {
        if flow.retry >= MAX_REBINDS {
            return Deny::FlowInvalid;
        }
        // A form method starts again at the login page itself, which reads the count.
        let uses_form = self
            .scope_of(flow.tenant.as_deref())
            .and_then(|s| s.methods.get(&flow.method))
            .is_some_and(|m| m.imp.uses_form());
        let start = if uses_form {
            self.login_again_at(&self.config.login_page, flow)
        } else {
            self.retry_login_url(flow)
        };
        log::info!(
            "sso-filter: login flow sealed for an earlier binding cookie (parallel logins); \
             starting again method={}",
            crate::deny::sanitize(&flow.method)
        );
        Deny::FlowRestart {
            method: flow.method.clone(),
            location: format!("{start}&{RETRY_PARAM}={}", flow.retry.saturating_add(1)),
        }
    }

    /// The retry count a login restarted by [`Self::restart`] carries: only on the login
    /// endpoint and the login page, where no application parameter can be meant.
    fn retry_of(&self, req: &Request<'_>) -> u8 {
        let c = &self.config;
        let login = req.path.strip_prefix(c.prefix.as_str()) == Some("/login");
        if !login && req.path != c.login_page {
            return 0;
        }
        req.query
            .single(RETRY_PARAM)
            .ok()
            .flatten()
            .and_then(|v| v.parse::<u8>().ok())
            .map_or(0, |n| n.min(MAX_REBINDS))
    }

    /// The address of the client: from `client_ip_header` (its last value) when configured,
    /// else the connection's peer.
    pub(super) fn client_of(&self, head: &RequestHead) -> Option<std::net::IpAddr> {
        let ip: Option<std::net::IpAddr> = match &self.config.client_ip_header {
            Some(name) => head
                .header_values(name)
                .last()
                .and_then(|v| v.rsplit(',').next())
                .and_then(|v| v.trim().parse().ok()),
            None => head.client(),
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
    pub(super) fn ctx_for<'h>(&self, head: &'h RequestHead) -> Request<'h> {
        let (raw_path, raw_query) = split_target(&head.path);
        let path = normalize_path(raw_path).unwrap_or_else(|_| "/".to_owned());
        let cookies = parse_cookies(head);
        Request {
            base_edits: self.base_edits(head, &cookies, raw_path, &path, raw_query),
            head,
            path,
            raw_query,
            query: Query::parse(raw_query),
            cookies,
        }
    }

    /// `{prefix}/login?rd=...` with the request's method and tenant parameters carried along.
    pub(super) fn login_url(&self, rd: &str, ctx: Option<&Request<'_>>) -> String {
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

    pub(super) fn tenant_params_of(&self, ctx: &Request<'_>) -> Vec<(String, String)> {
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

    pub(super) fn deny(&self, ctx: &Request<'_>, deny: Deny, cookies: Vec<String>) -> Outcome {
        let login = self.login_url("/", Some(ctx));
        deny.respond(ctx.head, &ctx.path, &login, cookies)
    }

    /// A refusal inside a login flow: "Sign in again" returns to where the login started, with
    /// the same method and tenant.
    pub(super) fn deny_flow(
        &self,
        ctx: &Request<'_>,
        flow: &Flow,
        deny: Deny,
        cookies: Vec<String>,
    ) -> Outcome {
        deny.respond(ctx.head, &ctx.path, &self.retry_login_url(flow), cookies)
    }

    /// The login URL that starts a flow's login again.
    pub(super) fn retry_login_url(&self, flow: &Flow) -> String {
        self.login_again_at(&format!("{}/login", self.config.prefix), flow)
    }

    /// `path?rd=..&{method}=..[&{tenant}=..]` for a flow's login.
    fn login_again_at(&self, path: &str, flow: &Flow) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("rd", &flow.rd)
            .append_pair(&self.config.method_param, &flow.method);
        if let (Some(t), Some(p)) = (&flow.tenant, self.config.tenant_params.first()) {
            q.append_pair(p, t);
        }
        format!("{path}?{}", q.finish())
    }

    /// Turns a method's identity into a session cookie (a brand-new one: security.md E8).
    pub(super) fn establish(
        &self,
        ctx: &Request<'_>,
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
        // The method's own expiry sync (configured per method, else `session.expiry_claim`).
        let claim = scope
            .methods
            .get(&id.method)
            .map_or(c.expiry_claim.as_deref(), |m| m.expiry_claim.as_deref());
        if let (Some(claim), Some(claims)) = (claim, claims) {
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
}
