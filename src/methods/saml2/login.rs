//! The SAML 2.0 Web Browser SSO flow behind [`LoginMethod`]: start, the SP metadata, the ACS
//! and single logout.
//!
//! ```text
//! (idp_metadata_url: a MetadataWait fetches the IdP metadata first when the shared-data copy
//!  is missing or older than metadata_ttl_seconds)
//! start ──> AuthnRequest (ID = flow nonce), RelayState = the sealed flow; binding cookie set
//!           (SameSite=None: it must come back with the IdP's cross-site POST);
//!           302 to the IdP (HTTP-Redirect, optionally signed) or an auto-posting form
//! GET  {prefix}/saml/{method}/metadata ──> SP metadata XML
//! POST {prefix}/saml/{method}/acs ──> BodyWait(AcsPost) ──> Response verified
//!           (InResponseTo = the flow's request ID), assertion ID remembered until it expires,
//!           session cookie, flow marked used, 303 to the return URL
//! GET, POST {prefix}/saml/{method}/slo ──> single logout (slo.rs)
//! ```
//!
//! ACS refusals go through the one refusal map, which answers a browser's form post with a
//! page and a script with JSON.

use std::any::Any;

use super::{
    replay_key, request_id, session_id, Binding, Expect, Idp, Saml2, SamlFailure, Verified,
    MAX_ACS_BODY,
};
use crate::counter::Counter;
use crate::deny::Deny;
use crate::http::{CalloutResponse, Outcome, RequestHead, Response, Step};
use crate::idp::IdpFailure;
use crate::login::{wrong_wait, Done, Env, Here, LoginMethod, PostedForm, Request, SessionView};
use crate::mapping::RawMapping;
use crate::random;
use crate::session::{Flow, SamlSubject, Session, SessionExtra};
use crate::wait::state_as;

/// A form post whose body is awaited: to the ACS, or to the single logout endpoint.
#[derive(Debug)]
pub(super) enum PostedTo {
    Acs(RequestHead),
    Slo(RequestHead),
}

/// A login being started, waiting for the IdP metadata.
#[derive(Debug)]
struct Starting {
    head: RequestHead,
    rd: String,
    sent_ms: u64,
    /// A reload: `IsPassive`.
    passive: bool,
}

/// The flow variant of a reload (an `IsPassive` AuthnRequest).
const RELOAD: &str = "reload";

/// A posted Response for its (consumed) flow.
#[derive(Debug)]
struct Posted {
    head: RequestHead,
    flow: Flow,
    delete_flow: Option<String>,
    response: String,
    sent_ms: u64,
}

/// What a SAML login waits for the IdP metadata to do.
#[derive(Debug)]
enum MetadataWait {
    /// Start a login.
    ToStart(Starting),
    /// Verify a posted Response.
    ToFinish(Box<Posted>),
}

/// The ACS form: `(SAMLResponse, RelayState)`, each at most once.
fn posted_form(body: &[u8]) -> Result<(String, String), Deny> {
    let form = PostedForm::read(body, MAX_ACS_BODY)?;
    let field = |name: &str| form.field(name);
    let response = field("SAMLResponse")?
        .ok_or(Deny::BadRequest("no_saml_response"))?
        .to_owned();
    // No RelayState, no flow: unsolicited (IdP-initiated) responses are refused.
    let state = field("RelayState")?.unwrap_or("").to_owned();
    Ok((response, state))
}

impl Saml2 {
    /// `(sp entity id, acs url)` of the method.
    pub(super) fn sp_urls(&self, here: &Here<'_>) -> (String, String) {
        let kit = here.kit;
        let base = format!("{}{}/saml/{}", kit.origin(), kit.prefix(), here.name());
        (
            self.sp_entity_id(&format!("{base}/metadata")),
            format!("{base}/acs"),
        )
    }

    /// The `AuthnRequest` for a new flow, by redirect or by an auto-posting page.
    fn start_with(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        idp: &Idp,
        (rd, passive): (String, bool),
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let request_id = random::bytes(env.rng, 20)
            .map(|b| request_id(&b))
            .map_err(|_| Deny::Unavailable("random"))?;
        let (entity, acs) = self.sp_urls(here);
        let xml = self.authn_request(idp, &request_id, env.now, (&entity, &acs), passive);
        let variant = passive.then(|| RELOAD.to_owned());
        let start = self.flow_start(rd, &request_id, variant, env)?;
        // RelayState is the flow itself, sealed (session/flow.rs), or with
        // `short_relay_state` the id of its cookie.
        let begun = here.kit.begin_flow(here, req, start, env)?;
        let (state, cookies) = (begun.state, begun.cookies);
        let response = match self.binding {
            Binding::Redirect => {
                let location = self
                    .redirect_url(idp, &xml, &state)
                    .map_err(|_| Deny::Unavailable("saml_request"))?;
                Response::redirect(302, &location)
            }
            Binding::Post => self
                .sign_post_request(&xml, &request_id)
                .and_then(|signed| self.post_page(idp, &signed, &state))
                .map_err(|_| Deny::Unavailable("saml_request"))?,
        };
        Ok(Outcome::new(Step::Respond(response.cookies(cookies)))
            .count(Counter::RedirectIdp(here.label())))
    }

    /// A login or a reload (`passive`), after fetching the IdP metadata when not at hand.
    fn begin(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        (rd, passive): (String, bool),
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        if let Some(idp) = self.idp_at_hand(here, env, false)? {
            return self.start_with(here, req, &idp, (rd, passive), env);
        }
        let url = self
            .metadata_url
            .as_ref()
            .ok_or(Deny::Unavailable("metadata"))?;
        let wait = MetadataWait::ToStart(Starting {
            head: req.head.clone(),
            rd,
            sent_ms: env.now_ms,
            passive,
        });
        Ok(here.call_out(self.metadata_callout(url), wait))
    }

    /// `GET {prefix}/saml/{method}/metadata`.
    fn metadata_page(&self, here: &Here<'_>) -> Outcome {
        let (entity, acs) = self.sp_urls(here);
        let mut response = Response::new(200);
        response.body = self.sp_metadata(&entity, &acs).into_bytes();
        Outcome::new(Step::Respond(
            response.header("content-type", "application/samlmetadata+xml"),
        ))
    }

    /// `POST {prefix}/saml/{method}/acs`: an HTML form post, whose body is read next.
    fn acs_post(&self, here: &Here<'_>, req: &Request<'_>) -> Result<Outcome, Deny> {
        if !req.is_form_post() {
            return Err(Deny::BadRequest("form_content_type"));
        }
        Ok(here.read_body(PostedTo::Acs(req.head.clone()), MAX_ACS_BODY))
    }

    /// The ACS body: the flow by `RelayState`, then the Response verified in full (after
    /// fetching the IdP metadata when it is not at hand).
    fn acs(&self, here: &Here<'_>, req: &Request<'_>, body: &[u8], env: &mut Env<'_>) -> Outcome {
        let (response, state) = match posted_form(body) {
            Ok(v) => v,
            Err(deny) => return here.kit.refuse(req, deny, Vec::new()),
        };
        let (flow, delete_flow) = match here.kit.take_flow(req, &state, env) {
            Ok(taken) => taken,
            Err(deny) => {
                return here
                    .kit
                    .refuse(req, withheld_over_http(here, req, deny), Vec::new())
            }
        };
        let posted = Posted {
            head: req.head.clone(),
            flow,
            delete_flow,
            response,
            sent_ms: env.now_ms,
        };
        // From here on the flow is used up: every refusal also deletes its cookie. The flow's
        // own scope decides (a method of the same name may exist in several).
        let found = (|| -> Result<_, Deny> {
            let (here, saml) = here.flow_method::<Saml2>(&posted.flow)?;
            let idp = saml.idp_at_hand(&here, env, false)?;
            Ok((here, saml, idp))
        })();
        match found {
            Ok((here, saml, Some(idp))) => saml.conclude(&here, req, &posted, &idp, env),
            Ok((here, saml, None)) => match &saml.metadata_url {
                Some(url) => here.call_out(
                    saml.metadata_callout(url),
                    MetadataWait::ToFinish(Box::new(posted)),
                ),
                None => refuse_posted(&here, req, &posted, Deny::Unavailable("metadata")),
            },
            Err(deny) => refuse_posted(here, req, &posted, deny),
        }
    }

    /// Verifies a posted Response for its flow and, when it passes, completes the login.
    fn conclude(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        posted: &Posted,
        idp: &Idp,
        env: &mut Env<'_>,
    ) -> Outcome {
        match self.verified(here, req, posted, idp, env) {
            Ok(outcome) => outcome,
            Err(deny) => refuse_posted(here, req, posted, deny),
        }
    }

    /// The Response verified, the assertion used once, the identity mapped: the one
    /// completion path.
    fn verified(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        posted: &Posted,
        idp: &Idp,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let refused = |f: SamlFailure| here.idp(IdpFailure::Rejected(f.reason()));
        let (entity, acs) = self.sp_urls(here);
        let request_id = posted.flow.nonce.clone().unwrap_or_default();
        let expect = Expect {
            sp_entity_id: &entity,
            acs_url: &acs,
            request_id: &request_id,
            now: env.now,
            idp: Some(idp),
        };
        let verified = self.verify(&posted.response, &expect).map_err(refused)?;
        // One-time use (security.md I10): the assertion ID is remembered until it expires;
        // a store that cannot be read or written refuses (fail closed, L10).
        let item = format!("saml:{}", replay_key(&verified.assertion_id));
        let keep_until = verified.not_on_or_after.saturating_add(60);
        here.kit
            .stores(env.cache, env.rng, &env.fleet, Some(req.head))?
            .claim(&item, keep_until, env.now, refused(SamlFailure::Replayed))?;
        let identity = here.identity(&verified.claims)?;
        let done = Done {
            identity,
            claims: Some(&verified.claims),
            extra: self.session_extra(&verified),
            landing: posted.flow.rd.clone(),
            cookies: posted.delete_flow.iter().cloned().collect(),
        };
        here.kit.finish_login(here, req, done, env)
    }

    /// What the session keeps for single logout (the subject and a digest of its session
    /// index) and the IdP's end for it.
    fn session_extra(&self, verified: &Verified) -> SessionExtra {
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
        SessionExtra {
            sid: text("session_index")
                .filter(|_| self.single_logout)
                .map(|i| session_id(&i)),
            saml: subject.filter(|_| self.single_logout),
            exp_cap: verified.session_not_on_or_after,
            ..SessionExtra::default()
        }
    }
}

/// A refusal once the flow is used up (its cookie deleted, "Sign in again" offered).
/// A refused reload (`IsPassive`: the IdP has no session for the user, or any other refusal)
/// ends the local session too.
fn refuse_posted(here: &Here<'_>, req: &Request<'_>, posted: &Posted, deny: Deny) -> Outcome {
    let mut cookies: Vec<String> = posted.delete_flow.iter().cloned().collect();
    if posted.flow.variant.as_deref() == Some(RELOAD) {
        cookies.extend(here.kit.cookies().clear_session(&req.cookies));
    }
    here.kit.refuse_flow(req, &posted.flow, deny, cookies)
}

/// A flow refusal at the ACS that is the browser withholding the flow cookie from the IdP's
/// cross-site post because cookies are not `Secure` (plain HTTP): said as such on the page.
fn withheld_over_http(here: &Here<'_>, req: &Request<'_>, deny: Deny) -> Deny {
    let cookies = here.kit.cookies();
    let no_flow_cookie = !req
        .cookies
        .iter()
        .any(|(n, _)| cookies.is_flow(n) || cookies.is_binding(n));
    if deny == Deny::FlowInvalid && !cookies.secure() && no_flow_cookie {
        Deny::FlowCookieWithheld
    } else {
        deny
    }
}

impl LoginMethod for Saml2 {
    fn type_name(&self) -> &'static str {
        "saml2"
    }

    fn offer(&self) -> Option<crate::pages::login::Offer> {
        use crate::pages::login::{Offer, Way};
        Some(Offer::of(Way::Redirect))
    }

    fn returns_by_cross_site_post(&self) -> bool {
        true
    }

    fn endpoint_segment(&self) -> Option<&'static str> {
        Some("saml")
    }

    fn default_mapping(&self) -> RawMapping {
        Saml2::default_mapping(self)
    }

    fn outbound_urls(&self) -> Vec<url::Url> {
        Saml2::outbound_urls(self)
    }

    /// The `AuthnRequest` (after fetching the IdP metadata when it is not at hand).
    fn start(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        rd: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        self.begin(here, req, (rd, false), env)
    }

    /// The seeds' "reload user" with SAML: `reload_user` or `?reloadUser=true`
    /// (`Request::reload_target`) sends an `IsPassive` AuthnRequest: the IdP answers at once,
    /// with an assertion (a new session, maybe another user) while its session lives, else
    /// with a status that ends the local session too.
    fn on_session(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        session: &SessionView<'_>,
        env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        let Some(rd) = req.reload_target(self.reload_user, session.iat, env.now)? else {
            return Ok(None);
        };
        self.begin(here, req, (rd, true), env).map(Some)
    }

    /// `{prefix}/saml/{method}/metadata`, `.../acs` and `.../slo`.
    fn endpoint(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        rest: &str,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        match (rest, req.head.method.as_str()) {
            ("metadata", "GET" | "HEAD") => Ok(self.metadata_page(here)),
            ("acs", "POST") => self.acs_post(here, req),
            ("slo", "GET") => self.slo(here, req, env),
            ("slo", "POST") => self.slo_post(here, req),
            ("metadata" | "acs" | "slo", _) => Err(Deny::BadRequest("method")),
            _ => Err(Deny::NotFound),
        }
    }

    fn resume_body(
        &self,
        here: &Here<'_>,
        state: Box<dyn Any + Send>,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Outcome {
        match state_as::<PostedTo>(state) {
            Some(PostedTo::Acs(head)) => self.acs(here, &here.kit.request(&head), body, env),
            Some(PostedTo::Slo(head)) => self.slo_posted(here, &here.kit.request(&head), body, env),
            None => wrong_wait(here),
        }
    }

    /// The IdP metadata arrived (or a copy younger than a day serves): start or finish.
    fn resume_callout(
        &self,
        here: &Here<'_>,
        state: Box<dyn Any + Send>,
        answer: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(wait) = state_as::<MetadataWait>(state) else {
            return wrong_wait(here);
        };
        let (head, sent_ms, cookies) = match &wait {
            MetadataWait::ToStart(s) => (s.head.clone(), s.sent_ms, Vec::new()),
            MetadataWait::ToFinish(p) => (
                p.head.clone(),
                p.sent_ms,
                p.delete_flow.iter().cloned().collect(),
            ),
        };
        let req = here.kit.request(&head);
        let idp = match self.fetched_idp(here, &answer, sent_ms, env) {
            Ok(idp) => idp,
            Err(deny) => return here.kit.refuse(&req, deny, cookies),
        };
        match wait {
            MetadataWait::ToStart(s) => here.answer(
                &req,
                self.start_with(here, &req, &idp, (s.rd, s.passive), env),
            ),
            MetadataWait::ToFinish(posted) => self.conclude(here, &req, &posted, &idp, env),
        }
    }

    /// The IdP's single logout with a `LogoutRequest` for the session's subject (slo.rs).
    fn logout_response(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        (session, rd): (&Session, &str),
        env: &mut Env<'_>,
    ) -> Option<Response> {
        self.logout_to(here, req, (session, rd), env)
    }
}
