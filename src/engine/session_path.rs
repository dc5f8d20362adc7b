//! The session path: the session cookie opened (or found in the memo), the identity headers
//! worked out once per session, the bearer token path, and the edits every forwarded request
//! gets (spoofed identity headers and the filter's cookies removed).

use std::sync::Arc;

use super::{Env, Filter, Prepared};
use crate::config::{Method, Scope};
use crate::deny::Deny;
use crate::http::{HeaderEdit, Outcome, RequestHead, Step};
use crate::identity::strip_spoofed;
use crate::login::Request;
use crate::session::Session;

impl Filter {
    /// The request's session, from the memo or by opening the cookie. A session made by a CAS
    /// ticket or a SAML session index is looked up in the single-logout list on every request,
    /// memo hit or not, so a logout reaches every worker at once; with a fleet store the same
    /// question goes to etcd before the request leaves (`engine/fleet_flush.rs`), so a logout
    /// received by another replica ends it too. Sessions of other methods never touch a store.
    pub(super) fn session(&self, ctx: &Request<'_>, env: &Env<'_>) -> Option<Arc<Prepared>> {
        let sealed = self.config.cookies.sealed_session(&ctx.cookies)?;
        let prepared = match self.sessions.get(&sealed, env.now) {
            Some(hit) => hit,
            None => {
                let session = self.config.cookies.open_session(&sealed, env.now)?;
                let exp = session.exp;
                let prepared = Arc::new(self.prepare(session));
                self.sessions
                    .put(sealed.into_owned(), exp, Arc::clone(&prepared), env.now);
                prepared
            }
        };
        if self.switched_off(&prepared.id) {
            return None;
        }
        match &prepared.sid {
            Some(sid) if crate::store::logged_out(env.cache, &self.config.limits, sid, env.now) => {
                None
            }
            Some(sid) if self.config.store.etcd().is_some() => {
                env.fleet.note(ctx.head);
                env.fleet
                    .push(crate::store::Intent::NotLoggedOut { item: sid.clone() });
                Some(prepared)
            }
            _ => Some(prepared),
        }
    }

    /// Whether the method that issued a session is switched off (`enabled: false`) in the
    /// session's scope: then the session ends at its next request.
    fn switched_off(&self, id: &crate::identity::Identity) -> bool {
        self.scope_of(id.tenant.as_deref())
            .is_some_and(|s| !s.disabled.is_empty() && s.disabled.contains_key(&id.method))
    }

    pub(super) fn prepare(&self, session: Session) -> Prepared {
        let mut edits = Vec::new();
        self.config.headers.emit(&session.id, &mut edits);
        if let Some(access) = session.token.as_ref().and_then(|t| t.access.as_ref()) {
            // The IdP's token replaces whatever Authorization the client sent.
            edits.push(HeaderEdit::Set(
                "authorization".into(),
                format!("Bearer {access}"),
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
    pub(super) fn forward(&self, ctx: &Request<'_>, who: &Prepared, now: u64) -> Outcome {
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

    /// `Authorization: Bearer` verified per request by a jwt method with `accept_bearer`.
    pub(super) fn bearer(
        &self,
        ctx: &Request<'_>,
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

    /// Strips every client-sent identity header and the filter's cookies, and forwards the
    /// normalised path (security.md B1, B8, C1).
    pub(super) fn base_edits(
        &self,
        head: &RequestHead,
        cookies: &[(String, String)],
        raw_path: &str,
        path: &str,
        raw_query: &str,
    ) -> Vec<HeaderEdit> {
        let c = &self.config;
        let mut edits = Vec::new();
        strip_spoofed(head, &c.spoofable, &mut edits);
        if cookies.iter().any(|(n, _)| c.cookies.is_ours(n)) {
            let mut kept = String::new();
            for (n, v) in cookies.iter().filter(|(n, _)| !c.cookies.is_ours(n)) {
                if !kept.is_empty() {
                    kept.push_str("; ");
                }
                kept.push_str(n);
                kept.push('=');
                kept.push_str(v);
            }
            if kept.is_empty() {
                edits.push(HeaderEdit::Remove("cookie".into()));
            } else {
                edits.push(HeaderEdit::Set("cookie".into(), kept));
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
}
