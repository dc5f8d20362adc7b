//! The CAS login flow (protocol 2.0 / 3.0): start, callback, ticket validation as a callout,
//! and single logout.
//!
//! ```text
//! start ──> 302 to {cas}/login?service=<base_url><callback>?state=S; flow cookie set
//! callback?state=S&ticket=ST-… ──> ExpectCasValidation ──> session cookie (with the ticket's
//!          digest), flow cookie deleted, 302 to the return URL
//! POST callback  logoutRequest=<LogoutRequest><SessionIndex>ST-…</…> ──> the ticket's digest
//!          joins the logged-out list in shared data; every worker refuses the session from
//!          its next request on
//! ```

use std::sync::Arc;

use base64::Engine;

use super::{Ctx, Env, Filter};
use crate::cache::SharedCache;
use crate::config::{Method, Scope};
use crate::counter::{Counter, MethodLabel};
use crate::deny::Deny;
use crate::http::{CalloutResponse, Outcome, Query, RequestHead, Response, Step};
use crate::jose::B64URL;
use crate::methods::cas::{self, Cas, MAX_SLO_BODY};
use crate::idp::IdpFailure;
use crate::methods::MethodKind;
use crate::pending::{ExpectCasLogout, Pending};
use crate::random;
use crate::redirect::safe_return;
use crate::session::{Flow, Session, SessionExtra, FLOW_TTL};

/// What a CAS login waits for.
#[derive(Debug)]
pub enum CasWait {
    /// The `serviceValidate` answer.
    ExpectCasValidation(CasFinish),
}

/// A CAS login being finished at the callback.
#[derive(Debug)]
pub struct CasFinish {
    head: RequestHead,
    flow: Flow,
    delete_flow: String,
    ticket_id: String,
    sent_ms: u64,
}

/// Whether single logout ended the sessions of this ticket (or SAML session) digest. A store
/// that cannot be read counts as logged out (fail closed, security.md L10).
pub(super) fn logged_out(
    cache: &dyn SharedCache,
    limits: &crate::store::Limits,
    sid: &str,
    now: u64,
) -> bool {
    match crate::store::Stores::peek(cache, limits) {
        Ok(None) => false,
        Ok(Some(stores)) => !matches!(stores.logged_out_at(sid, now), Ok(None)),
        Err(_) => true,
    }
}

impl Filter {
    fn cas_method<'s>(
        &'s self,
        tenant: Option<&str>,
        name: &str,
    ) -> Result<(&'s Scope, &'s Method, &'s Cas), Deny> {
        let scope = match tenant {
            None => &self.config.global,
            Some(code) => self.config.tenants.get(code).ok_or(Deny::FlowInvalid)?,
        };
        let method = scope.methods.get(name).ok_or(Deny::FlowInvalid)?;
        match method.kind.as_ref() {
            MethodKind::Cas(c) => Ok((scope, method, c)),
            _ => Err(Deny::FlowInvalid),
        }
    }

    /// The `service` for one login: configured origin, callback path, the flow's state.
    fn cas_service(&self, method: &str, c: &Cas, state: &str) -> String {
        let path = c
            .callback_path
            .clone()
            .unwrap_or_else(|| format!("{}/callback/{method}", self.config.prefix));
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("state", state);
        format!("{}{path}?{}", self.config.origin, q.finish())
    }

    /// Starts a CAS login: a redirect to the server's `/login`.
    pub(super) fn start_cas(
        &self,
        head: &RequestHead,
        method: &Method,
        tenant: Option<String>,
        rd: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let MethodKind::Cas(c) = method.kind.as_ref() else {
            return Err(Deny::NotFound);
        };
        let state = random::bytes(env.rng, 32)
            .map(|b| B64URL.encode(b))
            .map_err(|_| Deny::Unavailable("random"))?;
        let location = c.login_url(&self.cas_service(&method.name, c, &state));
        let flow = Flow {
            v: 1,
            state,
            rd,
            method: method.name.clone(),
            tenant,
            exp: env.now.saturating_add(FLOW_TTL),
            nonce: None,
            verifier: None,
            variant: None,
        };
        let held = crate::http::parse_cookies(head);
        let cookies = self
            .config
            .cookies
            .write_flow(&flow, &held, env.now, env.rng)
            .map_err(|_| Deny::Unavailable("random"))?;
        let response = Response::redirect(302, &location).cookies(cookies);
        Ok(Outcome::new(Step::Respond(response))
            .count(Counter::RedirectIdp(MethodLabel::configured(&method.name))))
    }

    /// The callback: a GET with the ticket, or the CAS server's single-logout POST.
    pub(super) fn cas_callback(
        &self,
        ctx: &Ctx<'_>,
        method: &str,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        match ctx.head.method.as_str() {
            "GET" => self.cas_ticket(ctx, method, env),
            "POST" => {
                let Some(MethodKind::Cas(cas)) =
                    self.config.method_anywhere(method).map(|m| m.kind.as_ref())
                else {
                    return Err(Deny::NotFound);
                };
                if !cas.single_logout {
                    return Err(Deny::BadRequest("single_logout_off"));
                }
                // Unsigned by protocol: only the configured CAS server addresses may end
                // sessions (otherwise anyone could log users out, or flood the logged-out
                // list).
                let client = self.client_of(ctx.head);
                if !client.is_some_and(|c| cas.logout_sources.iter().any(|n| n.contains(&c))) {
                    return Err(Deny::Forbidden("logout_source"));
                }
                let form = ctx.head.header("content-type").is_some_and(|t| {
                    t.to_ascii_lowercase()
                        .starts_with("application/x-www-form-urlencoded")
                });
                if !form {
                    return Err(Deny::BadRequest("form_content_type"));
                }
                Ok(Outcome::new(Step::ReadBody {
                    pending: Pending::ExpectCasLogout(ExpectCasLogout {
                        head: ctx.head.clone(),
                    }),
                    limit: MAX_SLO_BODY,
                }))
            }
            _ => Err(Deny::BadRequest("callback_method")),
        }
    }

    /// The ticket callback: check the state, then validate the ticket.
    fn cas_ticket(&self, ctx: &Ctx<'_>, method: &str, env: &mut Env<'_>) -> Result<Outcome, Deny> {
        let param = |name: &str| {
            ctx.query
                .single(name)
                .map_err(|_| Deny::BadRequest("duplicate_callback_param"))
        };
        let state = param("state")?.unwrap_or("");
        let (flow, delete_flow) = self.take_flow(ctx, state, env)?;
        // From here on the flow is used up: every refusal also deletes its cookie.
        let checked = (|| {
            if flow.method != method {
                return Err(Deny::FlowInvalid);
            }
            let (_, m, c) = self.cas_method(flow.tenant.as_deref(), &flow.method)?;
            // gateway=true and no single sign-on session at CAS: back without a ticket.
            let ticket = param("ticket")?
                .filter(|t| !t.is_empty())
                .ok_or_else(|| Deny::Idp {
                    method: m.name.clone(),
                    failure: IdpFailure::Refused("no_ticket".into()),
                })?;
            cas::check_ticket(ticket).map_err(|_| Deny::BadRequest("ticket_syntax"))?;
            Ok((m, c, ticket.to_owned()))
        })();
        match checked {
            Ok((m, c, ticket)) => {
                let service = self.cas_service(&m.name, c, &flow.state);
                let callout = c.validate_request(&service, &ticket);
                let finish = CasFinish {
                    head: ctx.head.clone(),
                    flow,
                    delete_flow,
                    ticket_id: cas::ticket_id(&ticket),
                    sent_ms: env.now_ms,
                };
                Ok(Outcome::new(Step::Callout(
                    callout,
                    Pending::Cas(Box::new(CasWait::ExpectCasValidation(finish))),
                )))
            }
            Err(deny) => Ok(self.deny(ctx, deny, vec![delete_flow])),
        }
    }

    /// Resumes a CAS login with the validation answer.
    pub(super) fn resume_cas(
        &self,
        wait: CasWait,
        response: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let CasWait::ExpectCasValidation(finish) = wait;
        let ctx = self.ctx_for(&finish.head);
        let fail =
            |deny: Deny| self.deny_flow(&ctx, &finish.flow, deny, vec![finish.delete_flow.clone()]);
        let Ok((scope, m, c)) = self.cas_method(finish.flow.tenant.as_deref(), &finish.flow.method)
        else {
            return fail(Deny::FlowInvalid);
        };
        let idp = |failure: IdpFailure| Deny::Idp {
            method: m.name.clone(),
            failure,
        };
        if response.status.is_none() {
            let late = env
                .now_ms
                .saturating_sub(finish.sent_ms)
                .saturating_add(100)
                >= c.timeout_ms;
            return fail(idp(if late {
                IdpFailure::Timeout
            } else {
                IdpFailure::Unreachable
            }));
        }
        let validated = match c.validation_response(&response) {
            Ok(v) => v,
            Err(failure) => {
                if let IdpFailure::Refused(code) = &failure {
                    log::warn!(
                        "sso-filter: CAS refused the ticket method={} code={}",
                        m.name,
                        crate::deny::sanitize(code)
                    );
                }
                return fail(idp(failure));
            }
        };
        let claims = validated.claims();
        let Some(id) = Arc::clone(&m.mapping).apply(&claims, &m.name) else {
            return fail(Deny::IdentityInvalid {
                method: m.name.clone(),
                why: "no login claim",
            });
        };
        let sid = Some(finish.ticket_id.clone()).filter(|_| c.single_logout);
        let extra = SessionExtra {
            sid,
            ..SessionExtra::default()
        };
        match self.establish(&ctx, scope, id, Some(&claims), extra, env) {
            Ok(mut cookies) => {
                cookies.insert(0, finish.delete_flow.clone());
                let rd = safe_return(&finish.flow.rd, &self.config.origin);
                log::info!("sso-filter: login method={}", m.name);
                let response = Response::redirect(302, &rd)
                    .header("referrer-policy", "no-referrer")
                    .cookies(cookies);
                Outcome::new(Step::Respond(response))
                    .count(Counter::LoginSuccess(MethodLabel::configured(&m.name)))
            }
            Err(deny) => fail(deny),
        }
    }

    /// The CAS server's single-logout POST: remembers the ticket's digest as logged out in
    /// shared data. Always 200 for a well-formed request (the server does not care, and an
    /// unknown ticket must not be distinguishable).
    pub(super) fn cas_logout_post(
        &self,
        head: &RequestHead,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Outcome {
        let ctx = self.ctx_for(head);
        let result = (|| {
            if body.len() > MAX_SLO_BODY {
                return Err(Deny::BodyTooLarge);
            }
            let text = std::str::from_utf8(body).map_err(|_| Deny::BadRequest("form_encoding"))?;
            let form = Query::parse(text);
            let xml = form
                .single("logoutRequest")
                .map_err(|_| Deny::BadRequest("duplicate_field"))?
                .ok_or(Deny::BadRequest("no_logout_request"))?;
            let ticket =
                cas::parse_logout_request(xml).ok_or(Deny::BadRequest("logout_request"))?;
            let keep_until = env
                .now
                .saturating_add(self.config.cookies.ttl)
                .saturating_add(60);
            self.stores(env)?
                .log_out(&cas::ticket_id(&ticket), env.now, keep_until, env.now)?;
            Ok(())
        })();
        match result {
            Ok(()) => {
                log::info!("sso-filter: single logout path={}", ctx.path);
                let method = self.config.callbacks.get(&ctx.path).cloned();
                Outcome::new(Step::Respond(Response::new(200))).count(Counter::Slo(
                    method
                        .as_deref()
                        .map_or_else(MethodLabel::unknown, MethodLabel::configured),
                ))
            }
            Err(deny) => self.deny(&ctx, deny, Vec::new()),
        }
    }

    /// Where logout sends the browser for a session of a CAS method: the server's `/logout`.
    pub(super) fn cas_logout(&self, session: &Session) -> Option<String> {
        let (_, m, c) = self
            .cas_method(session.id.tenant.as_deref(), &session.id.method)
            .ok()?;
        let mut ret = url::form_urlencoded::Serializer::new(String::new());
        ret.append_pair(&self.config.method_param, &m.name);
        if let Some(t) = &session.id.tenant {
            if let Some(p) = self.config.tenant_params.first() {
                ret.append_pair(p, t);
            }
        }
        c.logout_redirect(&format!("{}/?{}", self.config.origin, ret.finish()))
    }
}
