//! What the engine offers every method ([`Kit`]): the flow cookie, the one completion path,
//! the one refusal map, the stores and the password budget.

use base64::Engine;

use super::{Env, Filter};
use crate::counter::{Counter, MethodLabel};
use crate::deny::Deny;
use crate::http::{Outcome, RequestHead, Response, Step};
use crate::jose::B64URL;
use crate::login::{Done, FlowStart, FormAgain, Here, Kit, Request};
use crate::random;
use crate::redirect::safe_return;
use crate::session::{Cookies, Flow, Session, FLOW_TTL};
use crate::store::{Limits, Stores};

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
    ) -> Result<Stores<'s>, Deny> {
        Stores::open(cache, rng, &self.config.limits).map_err(Deny::from)
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
    ) -> Result<(Flow, Vec<String>), Deny> {
        let state = match start.state {
            Some(s) => s,
            None => random::bytes(env.rng, 32)
                .map(|b| B64URL.encode(b))
                .map_err(|_| Deny::Unavailable("random"))?,
        };
        let flow = Flow {
            v: 1,
            state,
            rd: start.rd,
            method: here.name().to_owned(),
            tenant: here.tenant.map(str::to_owned),
            exp: env.now.saturating_add(FLOW_TTL),
            nonce: start.nonce,
            verifier: start.verifier,
            variant: start.variant,
        };
        let c = &self.config.cookies;
        let written = if start.cross_site {
            c.write_cross_site_flow(&flow, &req.cookies, env.now, env.rng)
        } else {
            c.write_flow(&flow, &req.cookies, env.now, env.rng)
        };
        let cookies = written.map_err(|_| Deny::Unavailable("random"))?;
        Ok((flow, cookies))
    }

    fn take_flow(
        &self,
        req: &Request<'_>,
        state: &str,
        env: &mut Env<'_>,
    ) -> Result<(Flow, String), Deny> {
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
            vec![again.delete_flow],
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
