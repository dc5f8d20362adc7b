//! The contract between the engine and the login methods.
//!
//! Every method implements [`LoginMethod`]; the registry (`methods::build`) maps a
//! configuration `type` to an implementation, and the engine routes a request to a method and
//! calls it through this trait alone: it knows no method by name. A method asks the engine for
//! what all methods share through [`Kit`]: the flow cookie, the one completion path (claims,
//! mapping, identity, sealed session, landing: [`Kit::finish_login`]), the one refusal map
//! ([`Kit::refuse`]), the stores and the password budget.
//!
//! Layers (no file imports one above it): errors and HTTP vocabulary (`error`, `http`,
//! `wait`, `counter`), then JOSE and XML, then identity, session, refusals and this contract,
//! then the methods, then the configuration, then the engine, then the hosts.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cache::SharedCache;
use crate::counter::MethodLabel;
use crate::deny::Deny;
use crate::http::{
    Background, Callout, CalloutResponse, HeaderEdit, Outcome, Query, RequestHead, Response, Step,
    StreamReply,
};
use crate::identity::Identity;
use crate::idp::IdpFailure;
use crate::mapping::RawMapping;
use crate::random::Random;
use crate::session::{Cookies, Flow, Session, SessionExtra};
use crate::store::{Fleet, Limits, Stores};
use crate::wait::{BodyWait, CalloutWait, MethodRef, TimerWait, WaitState};

/// What the host lends the engine for one input.
pub struct Env<'a> {
    /// Seconds since the Unix epoch.
    pub now: u64,
    /// Milliseconds since the Unix epoch (callout deadlines are in milliseconds).
    pub now_ms: u64,
    /// Cryptographically secure randomness.
    pub rng: &'a mut dyn Random,
    /// The process-wide cache.
    pub cache: &'a dyn SharedCache,
    /// What this input's store operations leave for the fleet store (empty unless `store` is
    /// `etcd`); the engine flushes it before the input's step leaves (`engine/fleet_flush.rs`).
    pub fleet: Fleet,
}

/// A session younger than this (seconds) is not reloaded by a method's `reload_user`.
pub const RELOAD_GRACE: u64 = 10;

/// Facts about a request, worked out once.
pub struct Request<'h> {
    /// The request head.
    pub head: &'h RequestHead,
    /// Normalised path (no query).
    pub path: String,
    /// Raw query (no `?`).
    pub raw_query: &'h str,
    /// The parsed query.
    pub query: Query,
    /// The request's cookies, in order.
    pub cookies: Vec<(String, String)>,
    /// Edits every forwarded request gets: spoofed identity headers and filter cookies removed.
    pub base_edits: Vec<HeaderEdit>,
}

impl Request<'_> {
    /// A query parameter given at most once (`Err` when repeated: a refusal, `what` names it
    /// for the log).
    ///
    /// # Errors
    ///
    /// [`Deny::BadRequest`] when the parameter is repeated.
    pub fn param(&self, name: &str, what: &'static str) -> Result<Option<&str>, Deny> {
        self.query.single(name).map_err(|_| Deny::BadRequest(what))
    }

    /// The seeds' "reload user": `Some(return URL)` when this request should ask the IdP again
    /// without showing its pages: a navigation with `reloadUser=true`, or any navigation when
    /// the method reloads `always`, for a session older than [`RELOAD_GRACE`] seconds (so the
    /// return from the IdP does not loop). The return URL is this one without `reloadUser`.
    ///
    /// # Errors
    ///
    /// [`Deny::BadRequest`] when `reloadUser` is repeated.
    pub fn reload_target(
        &self,
        always: bool,
        session_iat: u64,
        now: u64,
    ) -> Result<Option<String>, Deny> {
        if !self.head.is_navigation() {
            return Ok(None);
        }
        let asked = self.param("reloadUser", "duplicate_reload")? == Some("true");
        let due = always && now >= session_iat.saturating_add(RELOAD_GRACE);
        if !asked && !due {
            return Ok(None);
        }
        let query = crate::http::strip_query_params(self.raw_query, &["reloadUser"]);
        Ok(Some(if query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{query}", self.path)
        }))
    }

    /// Whether the body is an HTML form post.
    pub fn is_form_post(&self) -> bool {
        self.head.header("content-type").is_some_and(|t| {
            t.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
    }
}

/// A posted HTML form body (the login form, SAML's ACS, CAS's single logout), read the same
/// way wherever one arrives: size-capped, UTF-8, each field given at most once.
pub struct PostedForm(Query);

impl PostedForm {
    /// Reads a url-encoded body of at most `limit` bytes.
    ///
    /// # Errors
    ///
    /// [`Deny::BodyTooLarge`] over `limit`, [`Deny::BadRequest`] when it is not UTF-8.
    pub fn read(body: &[u8], limit: usize) -> Result<Self, Deny> {
        if body.len() > limit {
            return Err(Deny::BodyTooLarge);
        }
        let text = std::str::from_utf8(body).map_err(|_| Deny::BadRequest("form_encoding"))?;
        Ok(PostedForm(Query::parse(text)))
    }

    /// A field, if given.
    ///
    /// # Errors
    ///
    /// [`Deny::BadRequest`] when the field is repeated.
    pub fn field(&self, name: &str) -> Result<Option<&str>, Deny> {
        self.0
            .single(name)
            .map_err(|_| Deny::BadRequest("duplicate_field"))
    }
}

/// A configured login method in a scope.
#[derive(Clone)]
pub struct Method {
    /// Name used in `?activeAuth=NAME`.
    pub name: String,
    /// The `label` as configured (one text, or English and Chinese); `None`: the sign-in pages
    /// name the method by [`LoginMethod::offer`]'s name, else by `name`.
    pub label: Option<crate::pages::lang::Text>,
    /// Effective mapping: method over tenant over global.
    pub mapping: Arc<crate::mapping::Mapping>,
    /// The implementation, with the method's own configuration.
    pub imp: Arc<dyn LoginMethod>,
    /// The claim whose NumericDate caps the sessions this method makes (the seeds' session
    /// expiry sync): the method's own `session_expiry_sync`, else `session.expiry_claim`.
    pub expiry_claim: Option<String>,
}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Method")
            .field("name", &self.name)
            .field("type", &self.imp.type_name())
            .finish_non_exhaustive()
    }
}

/// One method at work: the engine's services, the method and its scope.
#[derive(Clone, Copy)]
pub struct Here<'k> {
    /// What the engine offers every method.
    pub kit: &'k dyn Kit,
    /// The configured method.
    pub method: &'k Method,
    /// The tenant code of the method's scope (`None`: the global scope).
    pub tenant: Option<&'k str>,
}

impl<'k> Here<'k> {
    /// The method's name.
    pub fn name(&self) -> &'k str {
        &self.method.name
    }

    /// How a wait or a flow names this method.
    pub fn reference(&self) -> MethodRef {
        MethodRef {
            tenant: self.tenant.map(str::to_owned),
            name: self.method.name.clone(),
        }
    }

    /// The counter label of this (configured) method.
    pub fn label(&self) -> MethodLabel {
        MethodLabel::configured(&self.method.name)
    }

    /// The refusal for an IdP failure of this method.
    pub fn idp(&self, failure: IdpFailure) -> Deny {
        Deny::Idp {
            method: self.method.name.clone(),
            failure,
        }
    }

    /// The refusal for an identity this method cannot carry.
    pub fn identity_invalid(&self, why: &'static str) -> Deny {
        Deny::IdentityInvalid {
            method: self.method.name.clone(),
            why,
        }
    }

    /// The identity the method's mapping makes of `claims`.
    ///
    /// # Errors
    ///
    /// [`Deny::IdentityInvalid`] when the claims carry no login.
    pub fn identity(&self, claims: &Map<String, Value>) -> Result<Identity, Deny> {
        Arc::clone(&self.method.mapping)
            .apply(claims, &self.method.name)
            .ok_or_else(|| self.identity_invalid("no login claim"))
    }

    /// This method's implementation as its concrete type `T` (for a method reading back its
    /// own configuration; `None` when `T` is another method's type).
    pub fn imp<T: LoginMethod>(&self) -> Option<&'k T> {
        let any: &dyn std::any::Any = self.method.imp.as_ref();
        any.downcast_ref::<T>()
    }

    /// A hook's result as the answer to `req`: its outcome, or its refusal through the one
    /// refusal map (for a result with no flow cookie left to delete). Every `resume_*` that
    /// picks a request up again ends this way.
    pub fn answer(&self, req: &Request<'_>, result: Result<Outcome, Deny>) -> Outcome {
        result.unwrap_or_else(|deny| self.kit.refuse(req, deny, Vec::new()))
    }

    /// Asks the host for the request body (at most `limit` bytes); it comes back to this
    /// method's [`LoginMethod::resume_body`] with `state`.
    pub fn read_body(&self, state: impl WaitState, limit: usize) -> Outcome {
        Outcome::new(Step::ReadBody {
            wait: BodyWait::new(self.reference(), state),
            limit,
        })
    }

    /// Sends `callout`; its answer comes back to this method's
    /// [`LoginMethod::resume_callout`] with `state`.
    pub fn call_out(&self, callout: Callout, state: impl WaitState) -> Outcome {
        Outcome::new(Step::Callout(
            callout,
            CalloutWait::new(self.reference(), state),
        ))
    }

    /// Sends `callout` outside any request (from the timer); its answer comes back to this
    /// method's [`LoginMethod::resume_timer`] with `state`.
    pub fn timer_call_out(&self, callout: Callout, state: impl WaitState) -> Background {
        Background {
            callouts: vec![(callout, TimerWait::new(self.reference(), state))],
            counters: Vec::new(),
        }
    }

    /// The flow a redirect callback (a GET) comes back with: the one its `state` query
    /// parameter names, taken once (a replay is refused). From here on every refusal deletes
    /// the flow cookie.
    ///
    /// # Errors
    ///
    /// [`Deny::BadRequest`] for another HTTP method or a repeated `state`,
    /// [`Deny::FlowInvalid`] for a missing, expired, foreign or used flow.
    pub fn take_callback_flow(
        &self,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<(Flow, Option<String>), Deny> {
        if req.head.method != "GET" {
            return Err(Deny::BadRequest("callback_method"));
        }
        let state = req
            .param("state", "duplicate_callback_param")?
            .unwrap_or("");
        self.kit.take_flow(req, state, env)
    }

    /// Where an IdP's logout sends the browser back: the site's root naming this method (and
    /// the session's tenant), so a new login there starts with the same method. One address
    /// for every method with an IdP logout.
    pub fn logout_return(&self, session: &Session) -> String {
        let kit = self.kit;
        let mut ret = url::form_urlencoded::Serializer::new(String::new());
        ret.append_pair(kit.method_param(), self.name());
        if let (Some(t), Some(p)) = (&session.id.tenant, kit.tenant_param()) {
            ret.append_pair(p, t);
        }
        format!("{}/?{}", kit.origin(), ret.finish())
    }

    /// The method a taken flow belongs to, in the flow's own scope (a method of the same name
    /// may exist in several), with its implementation as `T`: every method that takes a flow
    /// finishes the login with the configuration the flow started with.
    ///
    /// # Errors
    ///
    /// [`Deny::FlowInvalid`] when the flow names another method, or one of another type.
    pub fn flow_method<T: LoginMethod>(&self, flow: &Flow) -> Result<(Here<'k>, &'k T), Deny> {
        let there = self
            .kit
            .method(flow.tenant.as_deref(), &flow.method)
            .filter(|h| h.name() == self.name())
            .ok_or(Deny::FlowInvalid)?;
        let imp = there.imp::<T>().ok_or(Deny::FlowInvalid)?;
        Ok((there, imp))
    }
}

/// What a new login flow carries besides its id, method and tenant.
#[derive(Default)]
pub struct FlowStart {
    /// Where to go after login (validated again on use).
    pub rd: String,
    /// A provider whose `state` cannot hold a sealed flow (WeChat: 128 bytes of
    /// `[a-zA-Z0-9]`) sends its own state, and the flow is kept in a cookie of its own
    /// (`crate::session::Flow`); `None`: the flow is sealed into the state itself.
    pub cookie_state: Option<String>,
    /// OIDC nonce.
    pub nonce: Option<String>,
    /// PKCE verifier.
    pub verifier: Option<String>,
    /// The login variant a provider started.
    pub variant: Option<String>,
    /// Whether the flow cookie must survive a cross-site POST back (`SameSite=None`).
    pub cross_site: bool,
}

/// A login flow begun: what the method sends the IdP, and the cookies of the response.
pub struct Begun {
    /// The flow.
    pub flow: Flow,
    /// The state the IdP or the login form carries back: the sealed flow, or the provider's
    /// own state for a flow kept in a cookie.
    pub state: String,
    /// `Set-Cookie` values: the browser's binding cookie, or the flow's own cookie.
    pub cookies: Vec<String>,
}

/// A login that succeeded at the method: what the one completion path needs.
pub struct Done<'a> {
    /// The identity (already made by the method, or by the mapping from `claims`).
    pub identity: Identity,
    /// The IdP's claims, for the session expiry sync (`expiry_claim`).
    pub claims: Option<&'a Map<String, Value>>,
    /// Session extras (the IdP's token, the single-logout key, ...).
    pub extra: SessionExtra,
    /// Where to land: the flow's return URL (checked again) or, for a token in the URL, the
    /// same URL without it.
    pub landing: String,
    /// `Set-Cookie` values sent first (the deleted flow cookie).
    pub cookies: Vec<String>,
}

/// What the engine offers every method.
pub trait Kit {
    /// `scheme://host[:port]` of `base_url`.
    fn origin(&self) -> &str;
    /// The prefix of the filter's own endpoints (`/sso`).
    fn prefix(&self) -> &str;
    /// The query parameter that names a method (`activeAuth`).
    fn method_param(&self) -> &str;
    /// The first tenant parameter (`tenantCode`), used when the filter writes a tenant into a
    /// URL.
    fn tenant_param(&self) -> Option<&str>;
    /// The session cookie policy.
    fn cookies(&self) -> &Cookies;
    /// The bounds of the stores and the password budget.
    fn limits(&self) -> &Limits;
    /// The bounded stores for this input; with a fleet store configured, what the whole fleet
    /// must agree on also goes to `fleet`, refused (if it is) as an answer to `head`.
    ///
    /// # Errors
    ///
    /// [`Deny::Unavailable`] when shared data cannot be read.
    fn stores<'s>(
        &'s self,
        cache: &'s dyn SharedCache,
        rng: &mut dyn Random,
        fleet: &'s Fleet,
        head: Option<&RequestHead>,
    ) -> Result<Stores<'s>, Deny>;
    /// The client's address (`client_ip_header` or the connection's peer).
    fn client(&self, head: &RequestHead) -> Option<IpAddr>;
    /// Takes one token from the password budget (hashes and directory binds).
    fn spend_password(&self, client: Option<IpAddr>, now_ms: u64) -> bool;
    /// A request's facts from its head (for an input that resumes a request).
    fn request<'h>(&self, head: &'h RequestHead) -> Request<'h>;
    /// Starts a login flow for `here`: the flow, the state that carries it, and the
    /// `Set-Cookie` values that bind it to the browser.
    ///
    /// # Errors
    ///
    /// [`Deny::Unavailable`] when randomness fails.
    fn begin_flow(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        start: FlowStart,
        env: &mut Env<'_>,
    ) -> Result<Begun, Deny>;
    /// Consumes the login flow the state carries (or names, for a flow kept in a cookie),
    /// once (a replay is refused): the flow, and for a flow cookie the `Set-Cookie` that
    /// deletes it.
    ///
    /// # Errors
    ///
    /// [`Deny::FlowInvalid`] for a missing, expired, foreign or used flow;
    /// [`Deny::FlowRestart`] for a flow sealed for an earlier binding value of this browser.
    fn take_flow(
        &self,
        req: &Request<'_>,
        state: &str,
        env: &mut Env<'_>,
    ) -> Result<(Flow, Option<String>), Deny>;
    /// The one completion path: identity checked, session sealed (a brand-new one), the
    /// browser sent to its landing (303 after a POST, 302 otherwise; never a Referer).
    ///
    /// # Errors
    ///
    /// [`Deny::IdentityInvalid`] or [`Deny::Unavailable`].
    fn finish_login(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        done: Done<'_>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny>;
    /// The one refusal map: status, page or JSON, counter and log line for `deny`.
    fn refuse(&self, req: &Request<'_>, deny: Deny, cookies: Vec<String>) -> Outcome;
    /// A refusal inside a login flow ("Sign in again" starts the same login).
    fn refuse_flow(
        &self,
        req: &Request<'_>,
        flow: &Flow,
        deny: Deny,
        cookies: Vec<String>,
    ) -> Outcome;
    /// The built-in login form for a form method (built-in users, LDAP), with a new flow.
    ///
    /// # Errors
    ///
    /// [`Deny::Unavailable`] when randomness fails.
    fn login_form(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        again: Option<FormAgain<'_>>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny>;
    /// The configured method `name` in the scope of `tenant`.
    fn method(&self, tenant: Option<&str>, name: &str) -> Option<Here<'_>>;
    /// Forwards a request with `session`'s identity, as for any request with a session
    /// (identity headers, the IdP's token, the signed assertion): for a method that renewed
    /// the session on the way (a refreshed access token); it adds the new session cookie to
    /// the upstream's response itself.
    fn forward_session(&self, req: &Request<'_>, session: Session, now: u64) -> Outcome;
    /// `{prefix}/login?rd=...` with the request's method and tenant parameters carried along
    /// (where a session that ended sends the browser).
    fn login_url(&self, rd: &str, req: &Request<'_>) -> String;
    /// The answer to a request that needs a login it does not have (no session, or one that
    /// ended): a navigation goes to [`Kit::login_url`] with `rd`, anything else gets 401 JSON
    /// naming the absolute login URL. One shape, whoever finds the login missing; the caller
    /// adds its own headers, cookies and counters.
    fn login_required(&self, req: &Request<'_>, rd: &str) -> Response;
}

/// The login form shown again after a failed attempt.
pub struct FormAgain<'a> {
    /// The flow of the failed attempt (its return URL and tenant carry over).
    pub flow: &'a Flow,
    /// The `Set-Cookie` that deletes the used flow cookie.
    pub delete_flow: Option<String>,
    /// 401 or 429.
    pub status: u16,
    /// The message shown above the form (in the page's language).
    pub message: crate::pages::login::Notice,
    /// Why, for the counter and the log.
    pub reason: &'static str,
}

/// A session as the methods see it (the request's, already opened and checked).
pub struct SessionView<'a> {
    /// The identity.
    pub id: &'a Identity,
    /// Issued at.
    pub iat: u64,
    /// Expires at.
    pub exp: u64,
    /// The IdP's tokens kept for the upstream, if any.
    pub token: Option<&'a crate::session::UpstreamToken>,
    /// The ID token kept for `id_token_hint` at logout, if any.
    pub hint: Option<&'a str>,
}

/// A token a method verified on a protected request (a bearer token).
pub struct Verified {
    /// The token's claims.
    pub claims: Map<String, Value>,
    /// Until when the identity may be used.
    pub valid_until: u64,
    /// Whether the same token may be accepted again without checking (not single-use).
    pub memoizable: bool,
}

/// A login method. Every hook but [`LoginMethod::type_name`] has a default that does nothing
/// or refuses, so a method implements what it offers.
pub trait LoginMethod: std::any::Any + Send + Sync {
    /// The configuration `type`.
    fn type_name(&self) -> &'static str;

    /// The callback path of a redirect method: `Some(None)` for the default
    /// `{prefix}/callback/{method}`, `None` for methods without a callback.
    fn callback_path(&self) -> Option<Option<&str>> {
        None
    }

    /// The first segment of the method's own endpoints under the prefix (`saml` for
    /// `{prefix}/saml/{method}/acs`), if it has any.
    fn endpoint_segment(&self) -> Option<&'static str> {
        None
    }

    /// Mapping defaults the method's own fields imply.
    fn default_mapping(&self) -> RawMapping {
        RawMapping::default()
    }

    /// URLs this method calls out to (for `sso-filter clusters`).
    fn outbound_urls(&self) -> Vec<url::Url> {
        Vec::new()
    }

    /// Whether logging in needs the form at `login_page` (built-in users, LDAP).
    fn uses_form(&self) -> bool {
        false
    }

    /// How the login page offers this method as a button to the users of the form; `None`:
    /// not there (a token in a URL, a login only an app client can start).
    fn offer(&self) -> Option<crate::pages::login::Offer> {
        None
    }

    /// Whether the method needs a byte stream (a host with sockets).
    fn needs_stream(&self) -> bool {
        false
    }

    /// Whether the method verifies `Authorization: Bearer` tokens on protected requests.
    fn accepts_bearer(&self) -> bool {
        false
    }

    /// Warnings about a configuration that loads but is probably not what the operator meant.
    fn warnings(&self, _at: &str) -> Vec<String> {
        Vec::new()
    }

    /// Whether the IdP sends the browser back by a cross-site form post (the SAML HTTP-POST
    /// binding): over plain HTTP browsers then do not send the flow cookie.
    fn returns_by_cross_site_post(&self) -> bool {
        false
    }

    /// `{prefix}/login` chose this method: start the login. (A form method is sent to the
    /// login page by the engine instead, so it need not implement this.)
    ///
    /// # Errors
    ///
    /// A refusal.
    fn start(
        &self,
        _here: &Here<'_>,
        _req: &Request<'_>,
        _rd: String,
        _env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        Err(Deny::NotFound)
    }

    /// A request to the method's callback path.
    ///
    /// # Errors
    ///
    /// A refusal.
    fn callback(
        &self,
        _here: &Here<'_>,
        _req: &Request<'_>,
        _env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        Err(Deny::NotFound)
    }

    /// A request to one of the method's own endpoints (`rest` is the path after
    /// `{prefix}/{segment}/{method}`).
    ///
    /// # Errors
    ///
    /// A refusal.
    fn endpoint(
        &self,
        _here: &Here<'_>,
        _req: &Request<'_>,
        _rest: &str,
        _env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        Err(Deny::NotFound)
    }

    /// A protected request for which this method is the chosen one, before any session is
    /// looked at: a login carried by the URL (a token, a ticket, a code). `None`: nothing here.
    ///
    /// # Errors
    ///
    /// A refusal.
    fn on_protected(
        &self,
        _here: &Here<'_>,
        _req: &Request<'_>,
        _env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        Ok(None)
    }

    /// A protected request with a session this method issued: reload the user, refresh a
    /// token. `None`: forward as usual.
    ///
    /// # Errors
    ///
    /// A refusal.
    fn on_session(
        &self,
        _here: &Here<'_>,
        _req: &Request<'_>,
        _session: &SessionView<'_>,
        _env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        Ok(None)
    }

    /// Verifies a bearer token (only called when [`LoginMethod::accepts_bearer`]).
    ///
    /// # Errors
    ///
    /// A refusal.
    fn verify_bearer(
        &self,
        _here: &Here<'_>,
        _token: &str,
        _env: &mut Env<'_>,
    ) -> Result<Verified, Deny> {
        Err(Deny::NotFound)
    }

    /// The login form was posted for this method.
    ///
    /// # Errors
    ///
    /// A refusal.
    #[allow(clippy::too_many_arguments)]
    fn form_login(
        &self,
        _here: &Here<'_>,
        _req: &Request<'_>,
        _flow: Flow,
        _delete_flow: Option<String>,
        _username: String,
        _password: String,
        _env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        Err(Deny::FlowInvalid)
    }

    /// Resumes a body wait of this method.
    fn resume_body(
        &self,
        here: &Here<'_>,
        state: Box<dyn std::any::Any + Send>,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Outcome {
        let _ = (state, body, env);
        wrong_wait(here)
    }

    /// Resumes a callout wait of this method.
    fn resume_callout(
        &self,
        here: &Here<'_>,
        state: Box<dyn std::any::Any + Send>,
        answer: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let _ = (state, answer, env);
        wrong_wait(here)
    }

    /// Resumes a stream wait of this method.
    fn resume_stream(
        &self,
        here: &Here<'_>,
        state: Box<dyn std::any::Any + Send>,
        reply: StreamReply,
        env: &mut Env<'_>,
    ) -> Outcome {
        let _ = (state, reply, env);
        wrong_wait(here)
    }

    /// The host's timer (about every second, per worker): background work such as an
    /// organisation sync. Most methods have none.
    fn on_timer(&self, _here: &Here<'_>, _env: &mut Env<'_>) -> Background {
        Background::default()
    }

    /// Resumes a timer callout wait of this method.
    fn resume_timer(
        &self,
        here: &Here<'_>,
        state: Box<dyn std::any::Any + Send>,
        answer: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Background {
        let _ = (state, answer, env);
        log::error!(
            "sso-filter: method={} cannot resume this timer wait",
            here.method.name
        );
        Background::default()
    }

    /// Where logout sends the browser for a session this method issued (the IdP's own
    /// logout), if anywhere.
    fn logout(&self, _here: &Here<'_>, _session: &Session, _env: &mut Env<'_>) -> Option<String> {
        None
    }

    /// What `{prefix}/logout` answers for a session this method issued (`rd`: the checked
    /// return URL), if not the plain redirect to `rd`: by default a redirect to
    /// [`LoginMethod::logout`]'s URL. A method whose IdP logout is a form post (SAML's
    /// HTTP-POST binding) answers with its page and the cookies it needs. The engine adds the
    /// session cookie's deletion.
    fn logout_response(
        &self,
        here: &Here<'_>,
        _req: &Request<'_>,
        (session, _rd): (&Session, &str),
        env: &mut Env<'_>,
    ) -> Option<Response> {
        self.logout(here, session, env)
            .map(|location| Response::redirect(302, &location))
    }
}

/// A wait resumed by a method that did not make it, or with a state it did not store: fail
/// closed. (Hosts cannot cause it: waits are typed by their input; only a bug in a method
/// could.)
pub fn wrong_wait(here: &Here<'_>) -> Outcome {
    log::error!(
        "sso-filter: method={} cannot resume this wait",
        here.method.name
    );
    Outcome::new(Step::Respond(Response::new(503)))
        .count(crate::counter::Counter::Deny("unavailable"))
}
