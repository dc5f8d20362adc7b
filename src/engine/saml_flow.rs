//! The SAML 2.0 Web Browser SSO flow: start, the SP metadata, and the ACS.
//!
//! ```text
//! (metadata_url: ExpectMetadataToStart / ExpectMetadataToFinish fetch the IdP metadata first
//!  when the shared-data copy is missing or older than metadata_ttl_seconds)
//! start ──> AuthnRequest (ID = flow nonce), RelayState = flow state; flow cookie set;
//!           302 to the IdP (HTTP-Redirect, optionally signed) or an auto-posting form
//! GET  {prefix}/saml/{method}/metadata ──> SP metadata XML
//! POST {prefix}/saml/{method}/acs ──> ExpectSamlResponse (body read) ──> Response verified
//!           (InResponseTo = the flow's request ID), assertion ID remembered until it expires,
//!           session cookie, flow cookie deleted, 303 to the return URL
//! ```

use std::sync::Arc;

use base64::Engine;

use super::{legacy_body, legacy_callout, Ctx, Env, Filter};
use crate::cache::SharedCache;
use crate::config::{Method, Scope};
use crate::counter::{Counter, MethodLabel};
use crate::deny::Deny;
use crate::http::{
    cluster_name, Callout, CalloutResponse, Outcome, Query, RequestHead, Response, Step,
};
use crate::idp::IdpFailure;
use crate::jose::B64URL;
use crate::methods::saml2::{
    self, Binding, Expect, Idp, Saml2, MAX_ACS_BODY, MAX_METADATA_BODY, METADATA_MAX_STALE,
};
use crate::methods::MethodKind;
use crate::pending::{ExpectSamlResponse, Pending};
use crate::random;
use crate::redirect::safe_return;
use crate::session::{Flow, SamlSubject, Session, SessionExtra, FLOW_TTL};

/// What a SAML login waits for.
#[derive(Debug)]
pub enum SamlWait {
    /// The IdP metadata, to start a login.
    ExpectMetadataToStart(SamlStart),
    /// The IdP metadata, to verify a posted Response.
    ExpectMetadataToFinish(SamlFinish),
}

/// A login being started.
#[derive(Debug)]
pub struct SamlStart {
    head: RequestHead,
    method: String,
    tenant: Option<String>,
    rd: String,
    sent_ms: u64,
}

/// A posted Response waiting for the IdP metadata.
#[derive(Debug)]
pub struct SamlFinish {
    head: RequestHead,
    flow: Flow,
    delete_flow: String,
    response: String,
    sent_ms: u64,
}

fn metadata_key(url: &url::Url) -> String {
    format!("sso:saml:md:{url}")
}

/// The cached metadata document and when it was fetched.
fn cached_metadata(cache: &dyn SharedCache, url: &url::Url) -> Option<(u64, String)> {
    let (bytes, _) = cache.get(&metadata_key(url)).ok()??;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some((v.get("at")?.as_u64()?, v.get("xml")?.as_str()?.to_owned()))
}

fn store_metadata(cache: &dyn SharedCache, url: &url::Url, xml: &str, now: u64) {
    let value = serde_json::json!({"at": now, "xml": xml}).to_string();
    if cache
        .set(&metadata_key(url), value.as_bytes(), None)
        .is_err()
    {
        // Not fatal: this login uses the document; the next one fetches it again.
        log::info!("sso-filter: could not cache the IdP metadata of {url}");
    }
}

impl Filter {
    fn saml_method<'s>(
        &'s self,
        tenant: Option<&str>,
        name: &str,
    ) -> Result<(&'s Scope, &'s Method, &'s Saml2), Deny> {
        let scope = match tenant {
            None => &self.config.global,
            Some(code) => self.config.tenants.get(code).ok_or(Deny::FlowInvalid)?,
        };
        let method = scope.methods.get(name).ok_or(Deny::FlowInvalid)?;
        match method.kind.as_ref() {
            MethodKind::Saml2(s) => Ok((scope, method, s)),
            _ => Err(Deny::FlowInvalid),
        }
    }

    /// `(sp entity id, acs url)` of a method.
    fn saml_urls(&self, method: &str, s: &Saml2) -> (String, String) {
        let base = format!("{}{}/saml/{method}", self.config.origin, self.config.prefix);
        (
            s.sp_entity_id(&format!("{base}/metadata")),
            format!("{base}/acs"),
        )
    }

    /// The IdP of a method: configured, or from the shared-data copy of its metadata while it
    /// is fresh (or, with `stale_ok`, while it is younger than a day). `Ok(None)`: fetch it.
    fn saml_idp(&self, s: &Saml2, env: &Env<'_>, stale_ok: bool) -> Result<Option<Idp>, Deny> {
        let Some(url) = &s.metadata_url else {
            return Ok(Some(s.idp.clone()));
        };
        match cached_metadata(env.cache, url) {
            Some((at, xml))
                if env.now < at.saturating_add(s.metadata_ttl)
                    || (stale_ok && env.now < at.saturating_add(METADATA_MAX_STALE)) =>
            {
                s.idp_from_metadata(&xml).map(Some).map_err(|why| {
                    log::warn!("sso-filter: cached IdP metadata unusable: {why}");
                    Deny::Idp {
                        method: String::new(),
                        failure: IdpFailure::BadAnswer("metadata"),
                    }
                })
            }
            _ => Ok(None),
        }
    }

    fn metadata_callout(s: &Saml2, url: &url::Url) -> Callout {
        Callout {
            upstream: cluster_name(url),
            url: url.to_string(),
            method: "GET".into(),
            headers: vec![(
                "accept".into(),
                "application/samlmetadata+xml, application/xml, text/xml".into(),
            )],
            body: Vec::new(),
            timeout_ms: s.timeout_ms,
        }
    }

    /// `{prefix}/saml/{method}/metadata` and `{prefix}/saml/{method}/acs`.
    pub(super) fn saml_endpoint(
        &self,
        ctx: &Ctx<'_>,
        rest: &str,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let (name, action) = rest.split_once('/').ok_or(Deny::NotFound)?;
        let Some(MethodKind::Saml2(s)) = self.config.method_anywhere(name).map(|m| m.kind.as_ref())
        else {
            return Err(Deny::NotFound);
        };
        match (action, ctx.head.method.as_str()) {
            ("metadata", "GET" | "HEAD") => {
                let (entity, acs) = self.saml_urls(name, s);
                let mut response = Response::new(200);
                response.body = s.sp_metadata(&entity, &acs).into_bytes();
                Ok(Outcome::new(Step::Respond(
                    response.header("content-type", "application/samlmetadata+xml"),
                )))
            }
            ("acs", "POST") => {
                let form = ctx.head.header("content-type").is_some_and(|t| {
                    t.to_ascii_lowercase()
                        .starts_with("application/x-www-form-urlencoded")
                });
                if !form {
                    return Err(Deny::BadRequest("form_content_type"));
                }
                Ok(Outcome::new(legacy_body(
                    Pending::ExpectSamlResponse(ExpectSamlResponse {
                        head: ctx.head.clone(),
                        method: name.to_owned(),
                    }),
                    MAX_ACS_BODY,
                )))
            }
            ("slo", "GET") => self.saml_sls(ctx, name, s, env),
            ("metadata" | "acs" | "slo", _) => Err(Deny::BadRequest("method")),
            _ => Err(Deny::NotFound),
        }
    }

    /// Starts a SAML login: the AuthnRequest by redirect or by an auto-posting page (after
    /// fetching the IdP metadata when it is not at hand).
    pub(super) fn start_saml(
        &self,
        head: &RequestHead,
        method: &Method,
        tenant: Option<String>,
        rd: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let MethodKind::Saml2(s) = method.kind.as_ref() else {
            return Err(Deny::NotFound);
        };
        match self
            .saml_idp(s, env, false)
            .map_err(|d| named(d, &method.name))?
        {
            Some(idp) => self.start_saml_with(head, method, s, &idp, tenant, rd, env),
            None => {
                let url = s
                    .metadata_url
                    .clone()
                    .ok_or(Deny::Unavailable("metadata"))?;
                let wait = SamlWait::ExpectMetadataToStart(SamlStart {
                    head: head.clone(),
                    method: method.name.clone(),
                    tenant,
                    rd,
                    sent_ms: env.now_ms,
                });
                Ok(Outcome::new(legacy_callout(
                    Self::metadata_callout(s, &url),
                    Pending::Saml(Box::new(wait)),
                )))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start_saml_with(
        &self,
        head: &RequestHead,
        method: &Method,
        s: &Saml2,
        idp: &Idp,
        tenant: Option<String>,
        rd: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let state = random::bytes(env.rng, 32)
            .map(|b| B64URL.encode(b))
            .map_err(|_| Deny::Unavailable("random"))?;
        let request_id = random::bytes(env.rng, 20)
            .map(|b| saml2::request_id(&b))
            .map_err(|_| Deny::Unavailable("random"))?;
        let (entity, acs) = self.saml_urls(&method.name, s);
        let xml = s.authn_request(idp, &request_id, env.now, &entity, &acs);
        let flow = Flow {
            v: 1,
            state: state.clone(),
            rd,
            method: method.name.clone(),
            tenant,
            exp: env.now.saturating_add(FLOW_TTL),
            nonce: Some(request_id.clone()),
            verifier: None,
            variant: None,
        };
        let held = crate::http::parse_cookies(head);
        let cookies = self
            .config
            .cookies
            .write_cross_site_flow(&flow, &held, env.now, env.rng)
            .map_err(|_| Deny::Unavailable("random"))?;
        let response = match s.binding {
            Binding::Redirect => {
                let location = s
                    .redirect_url(idp, &xml, &state)
                    .map_err(|_| Deny::Unavailable("saml_request"))?;
                Response::redirect(302, &location)
            }
            Binding::Post => Response::new(200)
                .html(
                    s.post_page(
                        idp,
                        &s.sign_post_request(&xml, &request_id)
                            .map_err(|_| Deny::Unavailable("saml_request"))?,
                        &state,
                    ),
                )
                .header(
                    "content-security-policy",
                    "default-src 'none'; script-src 'unsafe-inline'; form-action *",
                )
                .header("referrer-policy", "no-referrer"),
        };
        Ok(Outcome::new(Step::Respond(response.cookies(cookies)))
            .count(Counter::RedirectIdp(MethodLabel::configured(&method.name))))
    }

    /// The ACS body: the flow by `RelayState`, then the Response verified in full.
    pub(super) fn saml_acs(
        &self,
        p: ExpectSamlResponse,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Outcome {
        let ctx = self.ctx_for(&p.head);
        if body.len() > MAX_ACS_BODY {
            return self.deny(&ctx, Deny::BodyTooLarge, Vec::new());
        }
        let parsed = (|| {
            let text = std::str::from_utf8(body).map_err(|_| Deny::BadRequest("form_encoding"))?;
            let form = Query::parse(text);
            let field = |name: &str| {
                form.single(name)
                    .map_err(|_| Deny::BadRequest("duplicate_field"))
            };
            let response = field("SAMLResponse")?
                .ok_or(Deny::BadRequest("no_saml_response"))?
                .to_owned();
            // No RelayState, no flow: unsolicited (IdP-initiated) responses are refused.
            let state = field("RelayState")?.unwrap_or("").to_owned();
            Ok((response, state))
        })();
        let (response, state) = match parsed {
            Ok(v) => v,
            Err(deny) => return self.deny(&ctx, deny, Vec::new()),
        };
        let (flow, delete_flow) = match self.take_flow(&ctx, &state, env) {
            Ok(taken) => taken,
            Err(deny) => return self.deny(&ctx, deny, Vec::new()),
        };
        let fail = |deny: Deny| self.deny_flow(&ctx, &flow, deny, vec![delete_flow.clone()]);
        if flow.method != p.method {
            return fail(Deny::FlowInvalid);
        }
        let Ok((_, m, s)) = self.saml_method(flow.tenant.as_deref(), &flow.method) else {
            return fail(Deny::FlowInvalid);
        };
        match self.saml_idp(s, env, false) {
            Ok(Some(idp)) => self.saml_verify(&ctx, flow, delete_flow, &response, &idp, env),
            Ok(None) => match s.metadata_url.clone() {
                Some(url) => {
                    let wait = SamlWait::ExpectMetadataToFinish(SamlFinish {
                        head: p.head.clone(),
                        flow,
                        delete_flow,
                        response,
                        sent_ms: env.now_ms,
                    });
                    Outcome::new(legacy_callout(
                        Self::metadata_callout(s, &url),
                        Pending::Saml(Box::new(wait)),
                    ))
                }
                None => fail(Deny::Unavailable("metadata")),
            },
            Err(deny) => fail(named(deny, &m.name)),
        }
    }

    /// Resumes a SAML login with the IdP metadata (or, when it cannot be had, a copy younger
    /// than a day).
    pub(super) fn resume_saml(
        &self,
        wait: SamlWait,
        answer: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let (head, tenant, name, sent_ms, cookies) = match &wait {
            SamlWait::ExpectMetadataToStart(st) => (
                st.head.clone(),
                st.tenant.clone(),
                st.method.clone(),
                st.sent_ms,
                Vec::new(),
            ),
            SamlWait::ExpectMetadataToFinish(f) => (
                f.head.clone(),
                f.flow.tenant.clone(),
                f.flow.method.clone(),
                f.sent_ms,
                vec![f.delete_flow.clone()],
            ),
        };
        let ctx = self.ctx_for(&head);
        let Ok((_, m, s)) = self.saml_method(tenant.as_deref(), &name) else {
            return self.deny(&ctx, Deny::FlowInvalid, cookies);
        };
        let fetched = judge_metadata(s, &answer, sent_ms, env.now_ms).and_then(|xml| {
            let idp = s.idp_from_metadata(&xml).map_err(|why| {
                log::warn!(
                    "sso-filter: IdP metadata unusable method={}: {}",
                    m.name,
                    crate::deny::sanitize(&why)
                );
                IdpFailure::BadAnswer("metadata")
            })?;
            Ok((xml, idp))
        });
        let idp = match fetched {
            Ok((xml, idp)) => {
                if let Some(url) = &s.metadata_url {
                    store_metadata(env.cache, url, &xml, env.now);
                }
                idp
            }
            Err(failure) => match self.saml_idp(s, env, true) {
                Ok(Some(idp)) => {
                    log::warn!(
                        "sso-filter: IdP metadata refetch failed ({}); the cached copy is used method={}",
                        failure.reason(),
                        m.name
                    );
                    idp
                }
                _ => {
                    let deny = Deny::Idp {
                        method: m.name.clone(),
                        failure,
                    };
                    return self.deny(&ctx, deny, cookies);
                }
            },
        };
        match wait {
            SamlWait::ExpectMetadataToStart(st) => {
                match self.start_saml_with(&st.head, m, s, &idp, st.tenant, st.rd, env) {
                    Ok(outcome) => outcome,
                    Err(deny) => self.deny(&ctx, deny, Vec::new()),
                }
            }
            SamlWait::ExpectMetadataToFinish(f) => {
                self.saml_verify(&ctx, f.flow, f.delete_flow, &f.response, &idp, env)
            }
        }
    }

    /// Verifies a posted Response for the flow and, when it passes, makes the session.
    fn saml_verify(
        &self,
        ctx: &Ctx<'_>,
        flow: Flow,
        delete_flow: String,
        response: &str,
        idp: &Idp,
        env: &mut Env<'_>,
    ) -> Outcome {
        let fail = |deny: Deny| self.deny_flow(ctx, &flow, deny, vec![delete_flow.clone()]);
        let Ok((scope, m, s)) = self.saml_method(flow.tenant.as_deref(), &flow.method) else {
            return fail(Deny::FlowInvalid);
        };
        let refused = |why: String| Deny::Idp {
            method: m.name.clone(),
            failure: IdpFailure::Rejected(why),
        };
        let (entity, acs) = self.saml_urls(&m.name, s);
        let request_id = flow.nonce.clone().unwrap_or_default();
        let expect = Expect {
            sp_entity_id: &entity,
            acs_url: &acs,
            request_id: &request_id,
            now: env.now,
            idp: Some(idp),
        };
        let verified = match s.verify(response, &expect) {
            Ok(v) => v,
            Err(f) => return fail(refused(f.reason())),
        };
        // One-time use (security.md I10): the assertion ID is remembered until it expires;
        // a store that cannot be read or written refuses (fail closed, L10).
        let item = format!("saml:{}", saml2::replay_key(&verified.assertion_id));
        let keep_until = verified.not_on_or_after.saturating_add(60);
        match self
            .stores(env)
            .and_then(|st| st.use_once(&item, keep_until, env.now).map_err(Deny::from))
        {
            Ok(true) => {}
            Ok(false) => return fail(refused(saml2::SamlFailure::Replayed.reason())),
            Err(deny) => return fail(deny),
        }
        let Some(id) = Arc::clone(&m.mapping).apply(&verified.claims, &m.name) else {
            return fail(Deny::IdentityInvalid {
                method: m.name.clone(),
                why: "no login claim",
            });
        };
        let text = |k: &str| {
            verified
                .claims
                .get(k)
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        };
        let subject = text("name_id").map(|name_id| SamlSubject {
            name_id,
            format: text("name_id_format"),
            session_index: text("session_index"),
        });
        let extra = SessionExtra {
            sid: text("session_index")
                .filter(|_| s.single_logout)
                .map(|i| saml2::session_id(&i)),
            saml: subject.filter(|_| s.single_logout),
            exp_cap: verified.session_not_on_or_after,
            ..SessionExtra::default()
        };
        match self.establish(ctx, scope, id, Some(&verified.claims), extra, env) {
            Ok(mut cookies) => {
                cookies.insert(0, delete_flow.clone());
                let rd = safe_return(&flow.rd, &self.config.origin);
                log::info!("sso-filter: login method={}", m.name);
                let response = Response::redirect(303, &rd)
                    .header("referrer-policy", "no-referrer")
                    .cookies(cookies);
                Outcome::new(Step::Respond(response))
                    .count(Counter::LoginSuccess(MethodLabel::configured(&m.name)))
            }
            Err(deny) => fail(deny),
        }
    }

    /// Where `{prefix}/logout` sends the browser for a SAML session: the IdP's single logout
    /// with a `LogoutRequest` for the session's subject (when the IdP has an HTTP-Redirect
    /// `SingleLogoutService` and its metadata is at hand).
    pub(super) fn saml_logout(&self, session: &Session, env: &mut Env<'_>) -> Option<String> {
        let (_, m, s) = self
            .saml_method(session.id.tenant.as_deref(), &session.id.method)
            .ok()?;
        let subject = session.saml.as_ref().filter(|_| s.single_logout)?;
        let idp = self.saml_idp(s, env, true).ok()??;
        let (slo, _) = idp.slo_redirect.clone()?;
        let id = random::bytes(env.rng, 20)
            .ok()
            .map(|b| saml2::request_id(&b))?;
        let (entity, _) = self.saml_urls(&m.name, s);
        let xml = s.logout_request(&idp, &id, env.now, &entity, subject)?;
        s.redirect_message(&slo, "SAMLRequest", &xml, None).ok()
    }

    /// `GET {prefix}/saml/{method}/slo`: the IdP's answer to our logout (`SAMLResponse`: back
    /// to the site), or the IdP's own `LogoutRequest` (`SAMLRequest`, signature required): its
    /// session indexes join the logged-out list, this browser's session cookie is deleted, and
    /// a `LogoutResponse` goes back to the IdP.
    fn saml_sls(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        s: &Saml2,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let clear = self.config.cookies.clear_session(&ctx.cookies);
        if ctx.query.has("SAMLResponse") {
            let home = format!("{}/", self.config.origin);
            return Ok(Outcome::new(Step::Respond(
                Response::redirect(302, &home).cookies(clear),
            )));
        }
        if !s.single_logout || !ctx.query.has("SAMLRequest") {
            return Err(Deny::BadRequest("slo"));
        }
        let idp = self
            .saml_idp(s, env, true)
            .map_err(|d| named(d, name))?
            .ok_or(Deny::Unavailable("metadata"))?;
        let refused = |f: saml2::SamlFailure| Deny::Idp {
            method: name.to_owned(),
            failure: IdpFailure::Rejected(f.reason()),
        };
        let xml = s
            .verify_redirect(&idp, ctx.raw_query, "SAMLRequest")
            .map_err(refused)?;
        let sls = format!(
            "{}{}/saml/{name}/slo",
            self.config.origin, self.config.prefix
        );
        let (request_id, indexes) = s
            .check_logout_request(&idp, &xml, &sls, env.now)
            .map_err(refused)?;
        let stores = self.stores(env)?;
        let keep_until = env
            .now
            .saturating_add(self.config.cookies.ttl)
            .saturating_add(60);
        for index in &indexes {
            stores.log_out(&saml2::session_id(index), env.now, keep_until, env.now)?;
        }
        log::info!(
            "sso-filter: SAML single logout method={name} sessions={}",
            indexes.len()
        );
        let outcome = match idp.slo_redirect {
            Some((location, response_location)) => {
                let to = response_location.unwrap_or(location);
                let id = random::bytes(env.rng, 20)
                    .map(|b| saml2::request_id(&b))
                    .map_err(|_| Deny::Unavailable("random"))?;
                let (entity, _) = self.saml_urls(name, s);
                let answer = s.logout_response(to.as_str(), &id, &request_id, env.now, &entity);
                let relay = ctx.query.single("RelayState").ok().flatten();
                let location = s
                    .redirect_message(&to, "SAMLResponse", &answer, relay)
                    .map_err(|_| Deny::Unavailable("saml_response"))?;
                Response::redirect(302, &location).cookies(clear)
            }
            None => Response::new(200)
                .html(crate::pages::error(
                    "Signed out",
                    "You are signed out.",
                    None,
                ))
                .cookies(clear),
        };
        Ok(Outcome::new(Step::Respond(outcome)).count(Counter::Slo(MethodLabel::configured(name))))
    }
}

/// Names the method in a refusal made before it was known.
fn named(deny: Deny, method: &str) -> Deny {
    match deny {
        Deny::Idp { method: m, failure } if m.is_empty() => Deny::Idp {
            method: method.to_owned(),
            failure,
        },
        other => other,
    }
}

/// A metadata answer: in time, 200, at most 256 KiB, not compressed, UTF-8.
fn judge_metadata(
    s: &Saml2,
    answer: &CalloutResponse,
    sent_ms: u64,
    now_ms: u64,
) -> Result<String, IdpFailure> {
    let Some(status) = answer.status else {
        let late = now_ms.saturating_sub(sent_ms).saturating_add(100) >= s.timeout_ms;
        return Err(if late {
            IdpFailure::Timeout
        } else {
            IdpFailure::Unreachable
        });
    };
    if status == 504 {
        return Err(IdpFailure::Timeout);
    }
    if status != 200 {
        return Err(IdpFailure::BadAnswer("metadata_status"));
    }
    if answer.body.len() > MAX_METADATA_BODY {
        return Err(IdpFailure::BadAnswer("too_large"));
    }
    if answer
        .headers
        .iter()
        .any(|(n, v)| n == "content-encoding" && !v.eq_ignore_ascii_case("identity"))
    {
        return Err(IdpFailure::BadAnswer("compressed"));
    }
    String::from_utf8(answer.body.clone()).map_err(|_| IdpFailure::BadAnswer("encoding"))
}
