//! Routing: which of the filter's endpoints, which method's callback or own endpoint, a public
//! path, or a protected request (a login carried by the URL, the session, a bearer token, or
//! "log in first").

use super::{Env, Filter};
use crate::config::{Method, Scope};
use crate::counter::Counter;
use crate::deny::{sanitize, Deny};
use crate::http::{strip_query_params, Outcome, Query, Step};
use crate::login::SessionView;
use crate::login::{Kit, Request};

impl Filter {
    /// The filter's endpoints first (login page, callbacks, `{prefix}/...`), then public paths,
    /// then everything else is protected.
    pub(super) fn route(&self, ctx: &Request<'_>, env: &mut Env<'_>) -> Result<Outcome, Deny> {
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
        self.protected(ctx, env)
    }

    /// A protected request: a login carried by the URL, else the session (with its method's
    /// say on reloads and refreshes), else a bearer token, else "log in first".
    fn protected(&self, ctx: &Request<'_>, env: &mut Env<'_>) -> Result<Outcome, Deny> {
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
                if let Some(other) = explicit.filter(|m| m.name != session.id.method) {
                    if let Some(outcome) = self.switch_method(ctx, scope, other, env)? {
                        return Ok(outcome);
                    }
                }
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
        Ok(self.login_required(ctx, scope))
    }

    /// `?activeAuth=X&reloadUser=true` on a navigation that holds another method's session:
    /// the seeds' reload switches to X, which starts its login (back to the same URL without
    /// the two parameters); the new session replaces the old one. Without `reloadUser` the
    /// session is used as it is.
    fn switch_method(
        &self,
        ctx: &Request<'_>,
        scope: &Scope,
        to: &Method,
        env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        let asked = ctx.param("reloadUser", "duplicate_reload")? == Some("true");
        if !asked || !ctx.head.is_navigation() {
            return Ok(None);
        }
        let query = strip_query_params(
            ctx.raw_query,
            &["reloadUser", self.config.method_param.as_str()],
        );
        let rd = if query.is_empty() {
            ctx.path.clone()
        } else {
            format!("{}?{query}", ctx.path)
        };
        let (here, imp) = self.login_in(scope, to);
        if imp.uses_form() {
            return Ok(Some(self.to_login_page(
                to,
                &rd,
                &self.tenant_params_of(ctx),
            )));
        }
        imp.start(&here, ctx, rd, env).map(Some)
    }

    /// No credentials: a navigation goes to the login URL, anything else gets 401 JSON that
    /// names it (and `WWW-Authenticate: Bearer` when a method of the scope takes bearer
    /// tokens).
    fn login_required(&self, ctx: &Request<'_>, scope: &Scope) -> Outcome {
        let rd = if ctx.raw_query.is_empty() {
            ctx.path.clone()
        } else {
            format!("{}?{}", ctx.path, ctx.raw_query)
        };
        let mut response = Kit::login_required(self, ctx, &rd);
        if ctx.head.is_navigation() {
            return Outcome::new(Step::Respond(response)).count(Counter::RedirectLogin);
        }
        log::info!("sso-filter: login required path={}", sanitize(&ctx.path));
        if scope.methods.values().any(|m| m.imp.accepts_bearer()) {
            response = response.header("www-authenticate", "Bearer");
        }
        Outcome::new(Step::Respond(response)).count(Counter::Unauthenticated)
    }

    /// Public only when public in both readings of the normalised path: as it is forwarded
    /// (servers for which `;` is an ordinary character) and with every segment's parameters
    /// (`;...`) cut and emptied segments merged (Tomcat, Jetty, Spring). So `/healthz;a` is
    /// protected, and no parameter makes public what either kind of server reads as
    /// protected (docs/behaviour.md "Paths").
    pub(super) fn is_public(&self, path: &str) -> bool {
        let matches = |candidate: &str| {
            self.config.public_paths.iter().any(|p| {
                if p.ends_with('/') {
                    candidate.starts_with(p.as_str())
                } else {
                    candidate == p
                }
            })
        };
        // Without parameters or empty segments both readings are the path itself.
        if !path.contains(';') && !path.contains("//") {
            return matches(path);
        }
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
    pub(super) fn scope(&self, query: &Query) -> Result<&Scope, Deny> {
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

    pub(super) fn explicit_method<'s>(
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
}
