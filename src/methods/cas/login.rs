//! The CAS login flow (protocol 2.0 / 3.0) behind [`LoginMethod`]: start, callback, ticket
//! validation as a callout, and single logout.
//!
//! ```text
//! start ──> 302 to {cas}/login?service=<base_url><callback>?state=S; flow cookie set
//! callback?state=S&ticket=ST-… ──> CalloutWait(Validation) ──> session cookie (with the
//!          ticket's digest), flow cookie deleted, 302 to the return URL
//! POST callback  logoutRequest=<LogoutRequest><SessionIndex>ST-…</…> ──> the ticket's digest
//!          joins the logged-out list in shared data; every worker refuses the session from
//!          its next request on
//! ```

use std::any::Any;

use super::{check_ticket, parse_logout_request, ticket_id, Cas, MAX_SLO_BODY};
use crate::counter::Counter;
use crate::deny::Deny;
use crate::http::{CalloutResponse, Outcome, RequestHead, Response, Step};
use crate::idp::{answered, IdpFailure};
use crate::login::{
    wrong_wait, Done, Env, FlowStart, Here, LoginMethod, PostedForm, Request, SessionView,
};
use crate::mapping::RawMapping;
use crate::session::{Flow, Session, SessionExtra};
use crate::wait::state_as;

/// The flow variant of a reload (a `gateway` check of the CAS session).
const RELOAD: &str = "reload";

/// The `serviceValidate` answer is awaited.
#[derive(Debug)]
struct Validation {
    head: RequestHead,
    flow: Flow,
    delete_flow: Option<String>,
    ticket_id: String,
    sent_ms: u64,
}

/// The single-logout POST's body is awaited.
#[derive(Debug)]
struct LogoutPost {
    head: RequestHead,
}

impl Cas {
    /// The `service` for one login: configured origin, callback path, the flow's state.
    fn service(&self, here: &Here<'_>, state: &str) -> String {
        let kit = here.kit;
        let path = self
            .callback_path
            .clone()
            .unwrap_or_else(|| format!("{}/callback/{}", kit.prefix(), here.name()));
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("state", state);
        format!("{}{path}?{}", kit.origin(), q.finish())
    }

    /// The ticket callback: check the state, then validate the ticket.
    fn ticket(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let (flow, delete_flow) = here.take_callback_flow(req, env)?;
        // From here on the flow is used up: every refusal also deletes its cookie.
        let checked = (|| {
            let (here, cas) = here.flow_method::<Cas>(&flow)?;
            // gateway=true and no single sign-on session at CAS: back without a ticket.
            let ticket = req
                .param("ticket", "duplicate_callback_param")?
                .filter(|t| !t.is_empty())
                .ok_or_else(|| here.idp(IdpFailure::Refused("no_ticket".into())))?;
            check_ticket(ticket).map_err(|_| Deny::BadRequest("ticket_syntax"))?;
            Ok((here, cas, ticket.to_owned()))
        })();
        let (here, cas, ticket) = match checked {
            Ok(found) => found,
            Err(deny) => {
                let mut cookies: Vec<String> = delete_flow.into_iter().collect();
                // A reload that came back without a ticket: the user has no single sign-on
                // session at CAS any more, so the local one ends too.
                if flow.variant.as_deref() == Some(RELOAD) {
                    cookies.extend(here.kit.cookies().clear_session(&req.cookies));
                }
                return Ok(here.kit.refuse(req, deny, cookies));
            }
        };
        // The service validated is the one sent: it carries the state as it came back.
        let state = req
            .param("state", "duplicate_callback_param")?
            .unwrap_or("");
        let callout = cas.validate_request(&cas.service(&here, state), &ticket);
        let wait = Validation {
            head: req.head.clone(),
            flow,
            delete_flow,
            ticket_id: ticket_id(&ticket),
            sent_ms: env.now_ms,
        };
        Ok(here.call_out(callout, wait))
    }

    /// The CAS server's single-logout POST: only from the configured addresses, as a form.
    fn logout_post(&self, here: &Here<'_>, req: &Request<'_>) -> Result<Outcome, Deny> {
        if !self.single_logout {
            return Err(Deny::BadRequest("single_logout_off"));
        }
        // Unsigned by protocol: only the configured CAS server addresses may end sessions
        // (otherwise anyone could log users out, or flood the logged-out list).
        let client = here.kit.client(req.head);
        if !client.is_some_and(|c| self.logout_sources.iter().any(|n| n.contains(&c))) {
            return Err(Deny::Forbidden("logout_source"));
        }
        if !req.is_form_post() {
            return Err(Deny::BadRequest("form_content_type"));
        }
        let wait = LogoutPost {
            head: req.head.clone(),
        };
        Ok(here.read_body(wait, MAX_SLO_BODY))
    }

    /// The validation answer: the identity, then the one completion path.
    fn validated(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        wait: &Validation,
        answer: &CalloutResponse,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        // The same judge as every other method: a 504 (Envoy's own, past the deadline) is a
        // timeout like a missing answer past the deadline (it used to be read as a bad answer).
        answered(answer, wait.sent_ms, self.timeout_ms, env.now_ms).map_err(|f| here.idp(f))?;
        let validated = self.validation_response(answer).map_err(|failure| {
            if let IdpFailure::Refused(code) = &failure {
                log::warn!(
                    "sso-filter: CAS refused the ticket method={} code={}",
                    here.name(),
                    crate::deny::sanitize(code)
                );
            }
            here.idp(failure)
        })?;
        let claims = validated.claims();
        let done = Done {
            identity: here.identity(&claims)?,
            claims: Some(&claims),
            extra: SessionExtra {
                sid: Some(wait.ticket_id.clone()).filter(|_| self.single_logout),
                ..SessionExtra::default()
            },
            landing: wait.flow.rd.clone(),
            cookies: wait.delete_flow.iter().cloned().collect(),
        };
        here.kit.finish_login(here, req, done, env)
    }

    /// Records the logged-out ticket digest. Always 200 for a well-formed request (the server
    /// does not care, and an unknown ticket must not be distinguishable).
    fn logged_out(
        &self,
        here: &Here<'_>,
        head: &RequestHead,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Result<(), Deny> {
        let form = PostedForm::read(body, MAX_SLO_BODY)?;
        let xml = form
            .field("logoutRequest")?
            .ok_or(Deny::BadRequest("no_logout_request"))?;
        let ticket = parse_logout_request(xml).ok_or(Deny::BadRequest("logout_request"))?;
        let keep_until = env
            .now
            .saturating_add(here.kit.cookies().ttl)
            .saturating_add(60);
        here.kit
            .stores(env.cache, env.rng, &env.fleet, Some(head))?
            .log_out(&ticket_id(&ticket), env.now, keep_until, env.now)?;
        Ok(())
    }
}

impl LoginMethod for Cas {
    fn type_name(&self) -> &'static str {
        "cas"
    }

    fn offer(&self) -> Option<crate::pages::login::Offer> {
        use crate::pages::login::{Offer, Way};
        Some(Offer::of(Way::Redirect))
    }

    fn callback_path(&self) -> Option<Option<&str>> {
        Some(self.callback_path.as_deref())
    }

    fn default_mapping(&self) -> RawMapping {
        Cas::default_mapping(self)
    }

    fn outbound_urls(&self) -> Vec<url::Url> {
        Cas::outbound_urls(self)
    }

    fn warnings(&self, at: &str) -> Vec<String> {
        if self.single_logout && self.logout_sources.is_empty() {
            vec![format!(
                "{at}.logout_sources: empty, so the CAS server's single-logout requests will be \
                 refused (403); list the addresses it sends them from, or set single_logout: false"
            )]
        } else {
            Vec::new()
        }
    }

    /// A redirect to the server's `/login`.
    fn start(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        rd: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let start = FlowStart {
            rd,
            ..FlowStart::default()
        };
        let begun = here.kit.begin_flow(here, req, start, env)?;
        let location = self.login_url(&self.service(here, &begun.state));
        let response = Response::redirect(302, &location).cookies(begun.cookies);
        Ok(Outcome::new(Step::Respond(response)).count(Counter::RedirectIdp(here.label())))
    }

    /// The seeds' "reload user" with CAS: a navigation with `reloadUser=true`, or every
    /// navigation when the method has `reload_user` (`Request::reload_target`), checks the
    /// CAS single sign-on session again with `gateway=true` (no CAS page is shown). A ticket
    /// replaces the session (the user may have changed); no ticket ends it.
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
        let start = FlowStart {
            rd,
            variant: Some(RELOAD.to_owned()),
            ..FlowStart::default()
        };
        let begun = here.kit.begin_flow(here, req, start, env)?;
        let location = self.reload_url(&self.service(here, &begun.state));
        let response = Response::redirect(302, &location).cookies(begun.cookies);
        Ok(Some(
            Outcome::new(Step::Respond(response)).count(Counter::RedirectIdp(here.label())),
        ))
    }

    /// A GET with the ticket, or the CAS server's single-logout POST.
    fn callback(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        match req.head.method.as_str() {
            "GET" => self.ticket(here, req, env),
            "POST" => self.logout_post(here, req),
            _ => Err(Deny::BadRequest("callback_method")),
        }
    }

    fn resume_callout(
        &self,
        here: &Here<'_>,
        state: Box<dyn Any + Send>,
        answer: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(wait) = state_as::<Validation>(state) else {
            return wrong_wait(here);
        };
        let req = here.kit.request(&wait.head);
        match self.validated(here, &req, &wait, &answer, env) {
            Ok(outcome) => outcome,
            Err(deny) => here.kit.refuse_flow(
                &req,
                &wait.flow,
                deny,
                wait.delete_flow.iter().cloned().collect(),
            ),
        }
    }

    fn resume_body(
        &self,
        here: &Here<'_>,
        state: Box<dyn Any + Send>,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(wait) = state_as::<LogoutPost>(state) else {
            return wrong_wait(here);
        };
        let req = here.kit.request(&wait.head);
        let ended = self.logged_out(here, &wait.head, body, env).map(|()| {
            log::info!("sso-filter: single logout path={}", req.path);
            Outcome::new(Step::Respond(Response::new(200))).count(Counter::Slo(here.label()))
        });
        here.answer(&req, ended)
    }

    /// The server's `/logout`, back to the application with the method (and tenant) named.
    fn logout(&self, here: &Here<'_>, session: &Session, _env: &mut Env<'_>) -> Option<String> {
        self.logout_redirect(&here.logout_return(session))
    }
}
