//! The single logout endpoints (the messages are in `logout.rs`):
//!
//! ```text
//! {prefix}/logout (a SAML session, single_logout on, the IdP has a SingleLogoutService)
//!   ──> HTTP-Redirect: 302 to the IdP with the LogoutRequest (signed over the query)
//!   ──> HTTP-POST: an auto-submitting form with the signed LogoutRequest; a cross-site flow
//!       cookie keeps its ID and the return URL
//! GET  {prefix}/saml/{method}/slo?SAMLResponse=…  ──> 302 to the site's root
//! GET  {prefix}/saml/{method}/slo?SAMLRequest=…   ──> the IdP's logout (signed over the query)
//! POST {prefix}/saml/{method}/slo ──> BodyWait(PostedTo::Slo) ──>
//!        SAMLResponse: the flow by RelayState, the LogoutResponse checked, 303 to the return URL
//!        SAMLRequest:  the IdP's logout (signed inside the XML)
//! the IdP's logout: used once, its session indexes join the logged-out list, this browser's
//!   session cookie is deleted, a LogoutResponse goes back (by the binding it came by when
//!   the IdP has it, else by the other; neither: a "signed out" page)
//! ```
//!
//! Every refusal goes through the one refusal map.

use super::binding::{post_form, redirect_message, sign_enveloped};
use super::{replay_key, request_id, session_id, Binding, Idp, Saml2, SamlFailure, MAX_SLO_BODY};
use crate::counter::Counter;
use crate::deny::Deny;
use crate::http::{Outcome, Response, Step};
use crate::idp::IdpFailure;
use crate::login::{Env, FlowStart, Here, PostedForm, Request};
use crate::random;
use crate::redirect::safe_return;
use crate::session::Session;

/// The flow variant of a logout sent by the HTTP-POST binding (its answer comes back with it).
const LOGOUT: &str = "logout";

/// A fresh message ID.
/// What a SAML flow (a login or a POST logout) carries: the request ID it answers, and
/// where `RelayState` keeps it.
impl Saml2 {
    pub(super) fn flow_start(
        &self,
        rd: String,
        request_id: &str,
        variant: Option<String>,
        env: &mut Env<'_>,
    ) -> Result<FlowStart, Deny> {
        // The bindings allow 80 bytes of RelayState: a random id (43 characters) naming a
        // flow cookie that comes back with the IdP's cross-site post.
        let cookie_state = if self.short_relay_state {
            Some(random::token(env.rng).map_err(|_| Deny::Unavailable("random"))?)
        } else {
            None
        };
        Ok(FlowStart {
            rd,
            nonce: Some(request_id.to_owned()),
            variant,
            cross_site: cookie_state.is_some(),
            cookie_state,
            ..FlowStart::default()
        })
    }
}

fn new_id(env: &mut Env<'_>) -> Result<String, Deny> {
    random::bytes(env.rng, 20)
        .map(|b| request_id(&b))
        .map_err(|_| Deny::Unavailable("random"))
}

impl Saml2 {
    /// The method's single logout endpoint, `{origin}{prefix}/saml/{method}/slo`.
    fn sls_url(&self, here: &Here<'_>) -> String {
        let kit = here.kit;
        format!("{}{}/saml/{}/slo", kit.origin(), kit.prefix(), here.name())
    }

    /// What `{prefix}/logout` answers for a SAML session: the IdP's single logout with a
    /// `LogoutRequest` for the session's subject, when the IdP has a `SingleLogoutService` and
    /// its metadata is at hand; `rd` is where the browser ends (HTTP-POST binding).
    pub(super) fn logout_to(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        (session, rd): (&Session, &str),
        env: &mut Env<'_>,
    ) -> Option<Response> {
        let subject = session.saml.as_ref().filter(|_| self.single_logout)?;
        let idp = self.idp_at_hand(here, env, true).ok()??;
        let (binding, (slo, _)) = idp.slo(self.slo_binding)?;
        let id = new_id(env).ok()?;
        let (entity, _) = self.sp_urls(here);
        let xml = self.logout_request(slo, &id, env.now, &entity, subject);
        let key = self.logout_key();
        match binding {
            Binding::Redirect => redirect_message(slo, ("SAMLRequest", &xml), None, key)
                .ok()
                .map(|to| Response::redirect(302, &to)),
            Binding::Post => {
                let variant = Some(LOGOUT.to_owned());
                let start = self.flow_start(rd.to_owned(), &id, variant, env).ok()?;
                // RelayState is the logout's flow, sealed (session/flow.rs), or with
                // `short_relay_state` the id of its cookie.
                let begun = here.kit.begin_flow(here, req, start, env).ok()?;
                let signed = match key {
                    Some(k) => sign_enveloped(&xml, &id, k).ok()?,
                    None => xml,
                };
                let page = post_form(
                    slo,
                    ("SAMLRequest", &signed),
                    Some(&begun.state),
                    "Signing out",
                );
                Some(page.cookies(begun.cookies))
            }
        }
    }

    /// `GET {prefix}/saml/{method}/slo`: the IdP's answer to a logout sent by redirect
    /// (`SAMLResponse`: on to the site), or the IdP's own `LogoutRequest` by the HTTP-Redirect
    /// binding (`SAMLRequest`, signed over the query).
    pub(super) fn slo(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let kit = here.kit;
        if req.query.has("SAMLResponse") {
            let home = format!("{}/", kit.origin());
            let clear = kit.cookies().clear_session(&req.cookies);
            return Ok(Outcome::new(Step::Respond(
                Response::redirect(302, &home).cookies(clear),
            )));
        }
        if !self.single_logout || !req.query.has("SAMLRequest") {
            return Err(Deny::BadRequest("slo"));
        }
        let idp = self
            .idp_at_hand(here, env, true)?
            .ok_or(Deny::Unavailable("metadata"))?;
        let refused = |f: SamlFailure| here.idp(IdpFailure::Rejected(f.reason()));
        let xml = self
            .verify_redirect(&idp, req.raw_query, "SAMLRequest")
            .map_err(refused)?;
        let relay = req.query.single("RelayState").ok().flatten();
        self.idp_logout(here, req, &idp, (&xml, Binding::Redirect, relay), env)
    }

    /// `POST {prefix}/saml/{method}/slo`: an HTML form post, whose body is read next.
    pub(super) fn slo_post(&self, here: &Here<'_>, req: &Request<'_>) -> Result<Outcome, Deny> {
        if !req.is_form_post() {
            return Err(Deny::BadRequest("form_content_type"));
        }
        Ok(here.read_body(super::login::PostedTo::Slo(req.head.clone()), MAX_SLO_BODY))
    }

    /// The body posted to the single logout endpoint: the IdP's `LogoutResponse` to our
    /// logout, or its own `LogoutRequest`, each at most once with its `RelayState`.
    pub(super) fn slo_posted(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Outcome {
        let read = (|| -> Result<_, Deny> {
            let form = PostedForm::read(body, MAX_SLO_BODY)?;
            let field = |name: &str| form.field(name).map(|v| v.map(str::to_owned));
            Ok((
                field("SAMLRequest")?,
                field("SAMLResponse")?,
                field("RelayState")?,
            ))
        })();
        let result = match read {
            Ok((None, Some(response), relay)) => {
                return self.logout_answered(here, req, &response, relay.as_deref(), env)
            }
            Ok((Some(request), None, relay)) if self.single_logout => {
                self.idp_logout_posted(here, req, &request, relay.as_deref(), env)
            }
            Ok(_) => Err(Deny::BadRequest("slo")),
            Err(deny) => Err(deny),
        };
        here.answer(req, result)
    }

    /// The IdP's `LogoutRequest` by the HTTP-POST binding: its enveloped signature verified.
    fn idp_logout_posted(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        posted: &str,
        relay: Option<&str>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let idp = self
            .idp_at_hand(here, env, true)?
            .ok_or(Deny::Unavailable("metadata"))?;
        let refused = |f: SamlFailure| here.idp(IdpFailure::Rejected(f.reason()));
        let xml = super::binding::decode_posted(posted, super::MAX_SLO_XML).map_err(refused)?;
        self.idp_logout(here, req, &idp, (&xml, Binding::Post, relay), env)
    }

    /// The IdP's `LogoutRequest` (its binding's signature already checked, or checked here for
    /// HTTP-POST): used once, its session indexes join the logged-out list (every worker
    /// refuses those sessions from their next request on), this browser's session cookie is
    /// deleted, and a `LogoutResponse` goes back.
    fn idp_logout(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        idp: &Idp,
        (xml, came_by, relay): (&str, Binding, Option<&str>),
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let kit = here.kit;
        let refused = |f: SamlFailure| here.idp(IdpFailure::Rejected(f.reason()));
        let sls = self.sls_url(here);
        let (request_id, indexes) = self
            .check_logout_request(idp, xml, (&sls, env.now), came_by == Binding::Post)
            .map_err(refused)?;
        let stores = kit.stores(env.cache, env.rng, &env.fleet, Some(req.head))?;
        let keep_until = env.now.saturating_add(kit.cookies().ttl).saturating_add(60);
        // One-time use: a replayed logout request is refused, not answered again.
        let item = format!("saml-logout:{}", replay_key(&request_id));
        stores.claim(&item, keep_until, env.now, refused(SamlFailure::Replayed))?;
        for index in &indexes {
            stores.log_out(&session_id(index), env.now, keep_until, env.now)?;
        }
        log::info!(
            "sso-filter: SAML single logout method={} binding={came_by:?} sessions={}",
            here.name(),
            indexes.len()
        );
        let response = self.logout_answer(here, idp, (came_by, relay), &request_id, env)?;
        let clear = kit.cookies().clear_session(&req.cookies);
        Ok(Outcome::new(Step::Respond(response.cookies(clear))).count(Counter::Slo(here.label())))
    }

    /// The `LogoutResponse` to the IdP's `LogoutRequest`, to its `ResponseLocation` (else its
    /// `Location`), with the `RelayState` it sent: by the binding the request came by when
    /// the IdP has it, else by the other; signed when the SP has a key.
    fn logout_answer(
        &self,
        here: &Here<'_>,
        idp: &Idp,
        (came_by, relay): (Binding, Option<&str>),
        in_response_to: &str,
        env: &mut Env<'_>,
    ) -> Result<Response, Deny> {
        let Some((binding, (location, response_location))) = idp.slo(came_by) else {
            return Ok(Response::new(200).html(crate::pages::error(
                "Signed out",
                "You are signed out.",
                None,
            )));
        };
        let to = response_location.as_ref().unwrap_or(location);
        let id = new_id(env)?;
        let (entity, _) = self.sp_urls(here);
        let answer = self.logout_response(to.as_str(), &id, in_response_to, env.now, &entity);
        let failed = |_| Deny::Unavailable("saml_response");
        let key = self.logout_key();
        match binding {
            Binding::Redirect => redirect_message(to, ("SAMLResponse", &answer), relay, key)
                .map(|location| Response::redirect(302, &location))
                .map_err(failed),
            Binding::Post => {
                let signed = match key {
                    Some(k) => sign_enveloped(&answer, &id, k).map_err(failed)?,
                    None => answer,
                };
                Ok(post_form(
                    to,
                    ("SAMLResponse", &signed),
                    relay,
                    "Signing out",
                ))
            }
        }
    }

    /// The IdP's `LogoutResponse` posted back to a logout we sent by the HTTP-POST binding:
    /// the logout flow by `RelayState` (taken once: a replay is refused), the response checked
    /// against that flow's request; then on to the return URL. Every refusal deletes the flow.
    fn logout_answered(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        posted: &str,
        relay: Option<&str>,
        env: &mut Env<'_>,
    ) -> Outcome {
        let kit = here.kit;
        let (flow, delete_flow) = match kit.take_flow(req, relay.unwrap_or(""), env) {
            Ok(taken) => taken,
            // A logout is never started again as a login: a flow sealed for another binding
            // value is simply not this browser's.
            Err(Deny::FlowRestart { .. }) => return kit.refuse(req, Deny::FlowInvalid, Vec::new()),
            Err(deny) => return kit.refuse(req, deny, Vec::new()),
        };
        let checked = (|| -> Result<String, Deny> {
            let (there, saml) = here.flow_method::<Saml2>(&flow)?;
            if flow.variant.as_deref() != Some(LOGOUT) {
                return Err(Deny::FlowInvalid);
            }
            let idp = saml
                .idp_at_hand(&there, env, true)?
                .ok_or(Deny::Unavailable("metadata"))?;
            let request_id = flow.nonce.as_deref().unwrap_or_default();
            saml.check_logout_response(&idp, posted, (&saml.sls_url(&there), request_id), env.now)
                .map_err(|f| there.idp(IdpFailure::Rejected(f.reason())))?;
            Ok(safe_return(&flow.rd, kit.origin()))
        })();
        let mut cookies: Vec<String> = delete_flow.into_iter().collect();
        cookies.extend(kit.cookies().clear_session(&req.cookies));
        match checked {
            Ok(landing) => Outcome::new(Step::Respond(
                Response::redirect(303, &landing).cookies(cookies),
            )),
            Err(deny) => kit.refuse(req, deny, cookies),
        }
    }
}
