//! The filter's own endpoints: `{prefix}/login` (start a method, or the chooser),
//! `login_page` (the form of `local` and `ldap`, and its post), `{prefix}/logout` and
//! `{prefix}/userinfo`.

use serde_json::json;

use super::page::FormPage;
use super::{Env, Filter, FormPost, MAX_FORM_BYTES};
use crate::config::{Method, Scope};
use crate::counter::Counter;
use crate::deny::Deny;
use crate::http::{Outcome, Query, RequestHead, Response, Step};
use crate::login::{FlowStart, PostedForm, Request};
use crate::pages::login::Notice;
use crate::redirect::safe_return;
use crate::wait::BodyWait;

impl Filter {
    /// `{prefix}/login`: start the chosen method, or offer the choice.
    pub(super) fn start_login(
        &self,
        ctx: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
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
            let page = self.chooser_page(ctx.head, scope, &rd, &tenant);
            return Ok(Outcome::new(Step::Respond(page)));
        };
        let (here, imp) = self.login_in(scope, method);
        if imp.uses_form() {
            return Ok(self.to_login_page(method, &rd, &tenant));
        }
        imp.start(&here, ctx, rd, env)
    }

    /// A form method was chosen: to the login page, with the return URL, method and tenant.
    pub(super) fn to_login_page(
        &self,
        method: &Method,
        rd: &str,
        tenant: &[(String, String)],
    ) -> Outcome {
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
    pub(super) fn local_method<'s>(
        &self,
        scope: &'s Scope,
        query: &Query,
    ) -> Result<&'s Method, Deny> {
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
    pub(super) fn login_page(&self, ctx: &Request<'_>, env: &mut Env<'_>) -> Result<Outcome, Deny> {
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
    pub(super) fn render_form(
        &self,
        ctx: &Request<'_>,
        method: &str,
        tenant: Option<String>,
        rd: String,
        status: u16,
        notice: Option<Notice>,
        mut cookies: Vec<String>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let start = FlowStart {
            rd: rd.clone(),
            ..FlowStart::default()
        };
        let begun = self.new_flow(method, tenant.clone(), ctx, start, env)?;
        let page = FormPage {
            method,
            tenant: tenant.as_deref(),
            rd: &rd,
            state: &begun.state,
            status,
            notice,
        };
        let page = self.form_page(ctx.head, &page);
        cookies.extend(begun.cookies);
        Ok(Outcome::new(Step::Respond(page.cookies(cookies))))
    }

    pub(super) fn login_form_post(
        &self,
        head: &RequestHead,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Outcome {
        let ctx = self.ctx_for(head);
        match self.finish_form_login(&ctx, body, env) {
            Ok(outcome) => outcome,
            Err(deny) => self.deny(&ctx, deny, Vec::new()),
        }
    }

    pub(super) fn finish_form_login(
        &self,
        ctx: &Request<'_>,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let form = PostedForm::read(body, MAX_FORM_BYTES)?;
        let field = |name: &str| form.field(name);
        let state = field("state")?.unwrap_or("");
        let username = field("username")?.unwrap_or("").to_owned();
        let password = field("password")?.unwrap_or("").to_owned();
        let (flow, delete_flow) = self.take_flow(ctx, state, env)?;
        // A flow naming a tenant or method that is not configured is an invalid flow (401),
        // as in every other method's callback; an unknown tenant in a request's own
        // parameters is a bad request (400, `route.rs`).
        let scope = self
            .scope_of(flow.tenant.as_deref())
            .ok_or(Deny::FlowInvalid)?;
        let method = scope.methods.get(&flow.method).ok_or(Deny::FlowInvalid)?;
        let (here, imp) = self.login_in(scope, method);
        if !imp.uses_form() {
            return Err(Deny::FlowInvalid);
        }
        imp.form_login(&here, ctx, flow, delete_flow, username, password, env)
    }

    pub(super) fn logout(&self, ctx: &Request<'_>, env: &mut Env<'_>) -> Outcome {
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
        let response = session
            .as_ref()
            .and_then(|s| {
                let scope = self.scope_of(s.id.tenant.as_deref())?;
                let (here, imp) = self.login_in(scope, scope.methods.get(&s.id.method)?);
                imp.logout_response(&here, ctx, (s, &rd), env)
            })
            .unwrap_or_else(|| Response::redirect(302, &rd))
            .cookies(c.cookies.clear_session(&ctx.cookies));
        Outcome::new(Step::Respond(response)).count(Counter::Logout)
    }

    pub(super) fn userinfo(&self, ctx: &Request<'_>, env: &mut Env<'_>) -> Outcome {
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
