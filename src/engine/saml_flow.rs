//! The SAML 2.0 Web Browser SSO flow: start, the SP metadata, and the ACS.
//!
//! ```text
//! start ──> AuthnRequest (ID = flow nonce), RelayState = flow state; flow cookie set;
//!           302 to the IdP (HTTP-Redirect, optionally signed) or an auto-posting form
//! GET  {prefix}/saml/{method}/metadata ──> SP metadata XML
//! POST {prefix}/saml/{method}/acs ──> ExpectSamlResponse (body read) ──> Response verified
//!           (InResponseTo = the flow's request ID), assertion ID remembered until it expires,
//!           session cookie, flow cookie deleted, 303 to the return URL
//! ```

use std::sync::Arc;

use base64::Engine;

use super::{Ctx, Env, Filter};
use crate::config::{Method, Scope};
use crate::deny::Deny;
use crate::http::{Outcome, Query, RequestHead, Response, Step};
use crate::jose::B64URL;
use crate::methods::oauth2::IdpFailure;
use crate::methods::saml2::{self, Binding, Expect, Saml2, MAX_ACS_BODY};
use crate::methods::MethodKind;
use crate::pending::{ExpectSamlResponse, Pending};
use crate::random;
use crate::redirect::safe_return;
use crate::session::{Flow, SessionExtra, FLOW_TTL};

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

    /// `{prefix}/saml/{method}/metadata` and `{prefix}/saml/{method}/acs`.
    pub(super) fn saml_endpoint(&self, ctx: &Ctx<'_>, rest: &str) -> Result<Outcome, Deny> {
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
                Ok(Outcome::new(Step::ReadBody {
                    pending: Pending::ExpectSamlResponse(ExpectSamlResponse {
                        head: ctx.head.clone(),
                        method: name.to_owned(),
                    }),
                    limit: MAX_ACS_BODY,
                }))
            }
            ("metadata" | "acs", _) => Err(Deny::BadRequest("method")),
            _ => Err(Deny::NotFound),
        }
    }

    /// Starts a SAML login: the AuthnRequest by redirect or by an auto-posting page.
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
        let state = random::bytes(env.rng, 32)
            .map(|b| B64URL.encode(b))
            .map_err(|_| Deny::Unavailable("random"))?;
        let request_id = random::bytes(env.rng, 20)
            .map(|b| saml2::request_id(&b))
            .map_err(|_| Deny::Unavailable("random"))?;
        let (entity, acs) = self.saml_urls(&method.name, s);
        let xml = s.authn_request(&request_id, env.now, &entity, &acs);
        let flow = Flow {
            v: 1,
            state: state.clone(),
            rd,
            method: method.name.clone(),
            tenant,
            exp: env.now.saturating_add(FLOW_TTL),
            nonce: Some(request_id),
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
                    .redirect_url(&xml, &state)
                    .map_err(|_| Deny::Unavailable("saml_request"))?;
                Response::redirect(302, &location)
            }
            Binding::Post => Response::new(200)
                .html(s.post_page(&xml, &state))
                .header(
                    "content-security-policy",
                    "default-src 'none'; script-src 'unsafe-inline'; form-action *",
                )
                .header("referrer-policy", "no-referrer"),
        };
        Ok(Outcome::new(Step::Respond(response.cookies(cookies)))
            .count(format!("sso_redirect_idp.{}", method.name)))
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
        let Some((flow, delete_flow)) =
            self.config.cookies.take_flow(&ctx.cookies, &state, env.now)
        else {
            return self.deny(&ctx, Deny::FlowInvalid, Vec::new());
        };
        let fail = |deny: Deny| self.deny(&ctx, deny, vec![delete_flow.clone()]);
        if flow.method != p.method {
            return fail(Deny::FlowInvalid);
        }
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
        };
        let verified = match s.verify(&response, &expect) {
            Ok(v) => v,
            Err(f) => return fail(refused(f.reason())),
        };
        // One-time use (security.md I10): the assertion ID is remembered until it expires;
        // a store that cannot be read or written refuses (fail closed, L10).
        let key = saml2::replay_key(&verified.assertion_id);
        match env.cache.get(&key) {
            Ok(None) => {}
            Ok(Some(_)) => return fail(refused(saml2::SamlFailure::Replayed.reason())),
            Err(_) => return fail(Deny::Unavailable("shared_data")),
        }
        if env
            .cache
            .set(&key, verified.not_on_or_after.to_string().as_bytes(), None)
            .is_err()
        {
            return fail(Deny::Unavailable("shared_data"));
        }
        let Some(id) = Arc::clone(&m.mapping).apply(&verified.claims, &m.name) else {
            return fail(Deny::IdentityInvalid {
                method: m.name.clone(),
                why: "no login claim",
            });
        };
        match self.establish(
            &ctx,
            scope,
            id,
            Some(&verified.claims),
            SessionExtra::default(),
            env,
        ) {
            Ok(mut cookies) => {
                cookies.insert(0, delete_flow.clone());
                let rd = safe_return(&flow.rd, &self.config.origin);
                log::info!("sso-filter: login method={}", m.name);
                let response = Response::redirect(303, &rd)
                    .header("referrer-policy", "no-referrer")
                    .cookies(cookies);
                Outcome::new(Step::Respond(response)).count(format!("sso_login_success.{}", m.name))
            }
            Err(deny) => fail(deny),
        }
    }
}
