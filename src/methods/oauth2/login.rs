//! The redirect login flow (OAuth2 authorization code with PKCE, OpenID Connect): start,
//! callback, and the callouts between, as named wait states.
//!
//! ```text
//! start ──(discovery?)──> 302 to the IdP with state, nonce, PKCE; flow cookie set
//! callback ──(discovery?)──(JWKS?)──> ExpectToken ──(JWKS refresh on unknown kid)──>
//!          ExpectUserInfo ──> session cookie, flow cookie deleted, 302 to the return URL
//! ```

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Map, Value};

use super::{legacy_body, legacy_callout, legacy_stream, Ctx, Env, Filter};
use crate::cache::SharedCache;
use crate::config::Method;
use crate::counter::{Counter, MethodLabel};
use crate::deny::Deny;
use crate::http::{CalloutResponse, Outcome, RequestHead, Response, Step};
use crate::idp::{json_body, IdpFailure, MAX_DOC_BODY};
use crate::jose::B64URL;
use crate::methods::oauth2::{Endpoints, OAuth2, Tokens, DOC_TTL, JWKS_REFETCH_INTERVAL};
use crate::methods::MethodKind;
use crate::pending::Pending;
use crate::random;
use crate::redirect::safe_return;
use crate::session::{Flow, Session, SessionExtra, UpstreamToken, FLOW_TTL};

/// What a redirect login waits for.
#[derive(Debug)]
pub enum RedirectWait {
    /// The discovery document, to start a login.
    ExpectDiscoveryToStart(Start),
    /// The discovery document, to finish a login at the callback.
    ExpectDiscoveryToFinish(Finish),
    /// The JWKS, fetched before the code is redeemed so the ID token can be checked at once.
    ExpectJwksToFinish(Finish),
    /// The token response.
    ExpectToken(Finish),
    /// A fresh JWKS after the ID token named an unknown key.
    ExpectJwksRefresh(Finish, Tokens),
    /// The user-info response.
    ExpectUserInfo(Finish, Tokens, Option<Map<String, Value>>),
    /// A refreshed access token for a request on its way to the upstream.
    ExpectRefresh(Refresh),
}

/// A forwarded request waiting for its session's access token to be refreshed.
#[derive(Debug)]
pub struct Refresh {
    head: RequestHead,
    method: String,
    tenant: Option<String>,
    session: Session,
    sent_ms: u64,
}

/// Seconds before expiry at which an access token is refreshed.
const REFRESH_AHEAD: u64 = 60;
/// How long one refresh holds its lock (the shared cache), so parallel requests of one session
/// do not all refresh.
const REFRESH_LOCK: u64 = 30;

/// The callback's stages after the first callout (what `resume_finish` judges).
enum Stage {
    Discovery,
    Jwks,
    Token,
    JwksRefresh(Tokens),
    UserInfo(Tokens, Option<Map<String, Value>>),
}

/// A login being started.
#[derive(Debug)]
pub struct Start {
    head: RequestHead,
    method: String,
    tenant: Option<String>,
    rd: String,
    silent: bool,
    sent_ms: u64,
}

/// A login being finished at the callback.
#[derive(Debug)]
pub struct Finish {
    head: RequestHead,
    flow: Flow,
    delete_flow: String,
    code: String,
    iss: Option<String>,
    endpoints: Option<Endpoints>,
    sent_ms: u64,
}

fn discovery_key(url: &url::Url) -> String {
    format!("sso:oidc:doc:{url}")
}

/// A cached document and when it was fetched.
fn cached_doc(cache: &dyn SharedCache, url: &url::Url) -> Option<(u64, Value)> {
    let (bytes, _) = cache.get(&discovery_key(url)).ok()??;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    Some((v.get("at")?.as_u64()?, v.get("doc")?.clone()))
}

fn store_doc(cache: &dyn SharedCache, url: &url::Url, doc: &Map<String, Value>, now: u64) {
    let value = json!({"at": now, "doc": doc}).to_string();
    if cache
        .set(&discovery_key(url), value.as_bytes(), None)
        .is_err()
    {
        // Not fatal: the document is used for this login and fetched again next time.
        log::info!("sso-filter: could not cache {url}");
    }
}

impl Filter {
    fn oauth_method<'s>(
        &'s self,
        tenant: Option<&str>,
        name: &str,
    ) -> Result<(&'s crate::config::Scope, &'s Method, &'s OAuth2), Deny> {
        let scope = match tenant {
            None => &self.config.global,
            Some(code) => self.config.tenants.get(code).ok_or(Deny::FlowInvalid)?,
        };
        let method = scope.methods.get(name).ok_or(Deny::FlowInvalid)?;
        match method.kind.as_ref() {
            MethodKind::OAuth2(o) => Ok((scope, method, o)),
            _ => Err(Deny::FlowInvalid),
        }
    }

    fn redirect_uri(&self, method: &str, o: &OAuth2) -> String {
        let path = o
            .callback_path
            .clone()
            .unwrap_or_else(|| format!("{}/callback/{method}", self.config.prefix));
        format!("{}{path}", self.config.origin)
    }

    /// The endpoints, if known without a callout (configured, or discovery cached and fresh).
    fn known_endpoints(&self, o: &OAuth2, env: &Env<'_>) -> Result<Option<Endpoints>, Deny> {
        if let Some(eps) = o.configured_endpoints() {
            return Ok(Some(eps));
        }
        let Some(url) = o.discovery_url() else {
            return Ok(None);
        };
        match cached_doc(env.cache, &url) {
            Some((at, doc)) if env.now < at.saturating_add(DOC_TTL) => o
                .endpoints_from_discovery(&doc)
                .map(Some)
                .map_err(|failure| Deny::Idp {
                    method: String::new(),
                    failure,
                }),
            _ => Ok(None),
        }
    }

    /// Starts a login: a redirect to the IdP's authorization endpoint.
    pub(super) fn start_redirect(
        &self,
        head: &RequestHead,
        method: &Method,
        tenant: Option<String>,
        rd: String,
        silent: bool,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let MethodKind::OAuth2(o) = method.kind.as_ref() else {
            return Err(Deny::NotFound);
        };
        let eps = match self
            .known_endpoints(o, env)
            .map_err(|d| with_method(d, &method.name))?
        {
            Some(eps) => eps,
            None => {
                let url = o.discovery_url().ok_or(Deny::Unavailable("no_endpoints"))?;
                let wait = RedirectWait::ExpectDiscoveryToStart(Start {
                    head: head.clone(),
                    method: method.name.clone(),
                    tenant,
                    rd,
                    silent,
                    sent_ms: env.now_ms,
                });
                return Ok(Outcome::new(legacy_callout(
                    o.fetch(&url),
                    Pending::Redirect(Box::new(wait)),
                )));
            }
        };
        let draw = |env: &mut Env<'_>| -> Result<String, Deny> {
            random::bytes(env.rng, 32)
                .map(|b| B64URL.encode(b))
                .map_err(|_| Deny::Unavailable("random"))
        };
        let state = draw(env)?;
        let nonce = draw(env)?;
        let verifier = draw(env)?;
        let location = o.authorize_url(
            &eps,
            &self.redirect_uri(&method.name, o),
            &state,
            &nonce,
            &verifier,
            silent,
        );
        let flow = Flow {
            v: 1,
            state,
            rd,
            method: method.name.clone(),
            tenant,
            exp: env.now.saturating_add(FLOW_TTL),
            nonce: Some(nonce),
            verifier: Some(verifier),
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

    /// The callback: check the state, then redeem the code.
    pub(super) fn finish_redirect(
        &self,
        ctx: &Ctx<'_>,
        method: &str,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        if ctx.head.method != "GET" {
            return Err(Deny::BadRequest("callback_method"));
        }
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
            let (_, m, o) = self.oauth_method(flow.tenant.as_deref(), &flow.method)?;
            if let Some(error) = param("error")? {
                log::warn!(
                    "sso-filter: IdP error on callback method={method} error={} description={}",
                    crate::deny::sanitize(error),
                    crate::deny::sanitize(
                        ctx.query
                            .single("error_description")
                            .ok()
                            .flatten()
                            .unwrap_or("")
                    )
                );
                return Err(Deny::Idp {
                    method: m.name.clone(),
                    failure: IdpFailure::Refused(error.to_owned()),
                });
            }
            let code = param("code")?
                .filter(|c| !c.is_empty())
                .ok_or(Deny::BadRequest("no_code"))?
                .to_owned();
            let iss = param("iss")?.map(str::to_owned);
            Ok((m, o, code, iss))
        })();
        match checked {
            Ok((m, o, code, iss)) => {
                let finish = Finish {
                    head: ctx.head.clone(),
                    flow,
                    delete_flow,
                    code,
                    iss,
                    endpoints: None,
                    sent_ms: env.now_ms,
                };
                Ok(self.advance(finish, o, m, env))
            }
            Err(deny) => {
                let mut cookies = vec![delete_flow];
                // The IdP says there is no current login (a silent reload failed): the local
                // session must not outlive it.
                if let Deny::Idp {
                    failure: IdpFailure::Refused(code),
                    ..
                } = &deny
                {
                    let gone = [
                        "login_required",
                        "interaction_required",
                        "consent_required",
                        "account_selection_required",
                    ];
                    if gone.contains(&code.as_str()) {
                        cookies.extend(self.config.cookies.clear_session(&ctx.cookies));
                    }
                }
                Ok(self.deny(ctx, deny, cookies))
            }
        }
    }

    /// Moves a callback forward to its next callout (or its end).
    fn advance(&self, mut finish: Finish, o: &OAuth2, m: &Method, env: &mut Env<'_>) -> Outcome {
        finish.sent_ms = env.now_ms;
        let eps = match finish.endpoints.clone() {
            Some(eps) => eps,
            None => match self.known_endpoints(o, env) {
                Ok(Some(eps)) => eps,
                Ok(None) => match o.discovery_url() {
                    Some(url) => {
                        return Outcome::new(legacy_callout(
                            o.fetch(&url),
                            Pending::Redirect(Box::new(RedirectWait::ExpectDiscoveryToFinish(
                                finish,
                            ))),
                        ))
                    }
                    None => return self.fail(finish, &m.name, Deny::Unavailable("no_endpoints")),
                },
                Err(deny) => return self.fail(finish, &m.name, deny),
            },
        };
        // RFC 9207 §2.4: when the provider says it sends `iss`, it must be there and be the
        // issuer; when it is there anyway, it must still match (mix-up defence).
        match (eps.iss_parameter, finish.iss.as_deref(), o.issuer()) {
            (true, None, _) => return self.idp_fail(finish, m, IdpFailure::Issuer),
            (_, Some(iss), Some(issuer)) if iss.trim_end_matches('/') != issuer => {
                return self.idp_fail(finish, m, IdpFailure::Issuer)
            }
            _ => {}
        }
        if o.oidc {
            let Some(jwks) = eps.jwks.clone() else {
                return self.idp_fail(finish, m, IdpFailure::BadAnswer("no_jwks_uri"));
            };
            let fresh = cached_doc(env.cache, &jwks)
                .is_some_and(|(at, _)| env.now < at.saturating_add(DOC_TTL));
            if !fresh {
                finish.endpoints = Some(eps);
                return Outcome::new(legacy_callout(
                    o.fetch(&jwks),
                    Pending::Redirect(Box::new(RedirectWait::ExpectJwksToFinish(finish))),
                ));
            }
        }
        let verifier = finish.flow.verifier.clone().unwrap_or_default();
        let callout = o.token_request(
            &eps,
            &finish.code,
            &self.redirect_uri(&m.name, o),
            &verifier,
        );
        finish.endpoints = Some(eps);
        Outcome::new(legacy_callout(
            callout,
            Pending::Redirect(Box::new(RedirectWait::ExpectToken(finish))),
        ))
    }

    /// Resumes a redirect login with a callout's answer.
    pub(super) fn resume_redirect(
        &self,
        wait: RedirectWait,
        response: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let (finish, stage) = match wait {
            RedirectWait::ExpectDiscoveryToStart(start) => {
                return self.resume_start(start, &response, env)
            }
            RedirectWait::ExpectRefresh(refresh) => {
                return self.finish_refresh(refresh, &response, env)
            }
            RedirectWait::ExpectDiscoveryToFinish(f) => (f, Stage::Discovery),
            RedirectWait::ExpectJwksToFinish(f) => (f, Stage::Jwks),
            RedirectWait::ExpectToken(f) => (f, Stage::Token),
            RedirectWait::ExpectJwksRefresh(f, tokens) => (f, Stage::JwksRefresh(tokens)),
            RedirectWait::ExpectUserInfo(f, tokens, claims) => (f, Stage::UserInfo(tokens, claims)),
        };
        let Ok((_, m, o)) = self.oauth_method(finish.flow.tenant.as_deref(), &finish.flow.method)
        else {
            return self.fail(finish, "-", Deny::FlowInvalid);
        };
        self.resume_finish(finish, stage, &response, m, o, env)
    }

    /// Discovery arrived for a login being started.
    fn resume_start(&self, start: Start, response: &CalloutResponse, env: &mut Env<'_>) -> Outcome {
        let Ok((_, m, o)) = self.oauth_method(start.tenant.as_deref(), &start.method) else {
            return self.deny_head(&start.head, Deny::FlowInvalid, Vec::new());
        };
        let judged = judge_doc(response, start.sent_ms, o.timeout_ms, env.now_ms).and_then(|doc| {
            o.endpoints_from_discovery(&Value::Object(doc.clone()))
                .map(|_| doc)
        });
        let doc = match judged {
            Ok(doc) => doc,
            Err(failure) => {
                let deny = Deny::Idp {
                    method: m.name.clone(),
                    failure,
                };
                return self.deny_head(&start.head, deny, Vec::new());
            }
        };
        if let Some(url) = o.discovery_url() {
            store_doc(env.cache, &url, &doc, env.now);
        }
        match self.start_redirect(&start.head, m, start.tenant, start.rd, start.silent, env) {
            Ok(outcome) => outcome,
            Err(deny) => self.deny_head(&start.head, deny, Vec::new()),
        }
    }

    /// One answer at the callback's stages: judged once for the stage's kind (a document, or an
    /// endpoint's answer), then used.
    fn resume_finish(
        &self,
        mut finish: Finish,
        stage: Stage,
        response: &CalloutResponse,
        m: &Method,
        o: &OAuth2,
        env: &mut Env<'_>,
    ) -> Outcome {
        let judged = match &stage {
            Stage::Discovery | Stage::Jwks | Stage::JwksRefresh(_) => {
                judge_doc(response, finish.sent_ms, o.timeout_ms, env.now_ms).map(Some)
            }
            Stage::Token | Stage::UserInfo(..) => {
                check_answered(response, finish.sent_ms, o.timeout_ms, env.now_ms).map(|()| None)
            }
        };
        let doc = match judged {
            Ok(doc) => doc.unwrap_or_default(),
            Err(failure) => return self.idp_fail(finish, m, failure),
        };
        match stage {
            Stage::Discovery => match o.endpoints_from_discovery(&Value::Object(doc.clone())) {
                Ok(eps) => {
                    if let Some(url) = o.discovery_url() {
                        store_doc(env.cache, &url, &doc, env.now);
                    }
                    finish.endpoints = Some(eps);
                    self.advance(finish, o, m, env)
                }
                Err(failure) => self.idp_fail(finish, m, failure),
            },
            Stage::Jwks | Stage::JwksRefresh(_) => {
                if let Some(url) = finish.endpoints.as_ref().and_then(|e| e.jwks.clone()) {
                    store_doc(env.cache, &url, &doc, env.now);
                }
                match stage {
                    Stage::JwksRefresh(tokens) => {
                        self.after_tokens(finish, tokens, true, o, m, env)
                    }
                    _ => self.advance(finish, o, m, env),
                }
            }
            Stage::Token => match o.token_response(response) {
                Ok(tokens) => self.after_tokens(finish, tokens, false, o, m, env),
                Err(failure) => self.idp_fail(finish, m, failure),
            },
            Stage::UserInfo(tokens, id_claims) => {
                let sub = id_claims
                    .as_ref()
                    .and_then(|c| c.get("sub"))
                    .and_then(Value::as_str);
                match o.userinfo_response(response, sub) {
                    Ok(info) => {
                        // User-info claims over the ID token's (OIDC Core §5.3.2: same `sub`).
                        let mut claims = id_claims.unwrap_or_default();
                        claims.extend(info);
                        self.complete(finish, &claims, tokens, m, o, env)
                    }
                    Err(failure) => self.idp_fail(finish, m, failure),
                }
            }
        }
    }

    /// Refuses a callback because of the IdP.
    fn idp_fail(&self, finish: Finish, m: &Method, failure: IdpFailure) -> Outcome {
        let deny = Deny::Idp {
            method: m.name.clone(),
            failure,
        };
        self.fail(finish, &m.name, deny)
    }

    /// After the token response: verify the ID token (refetching the JWKS once for an unknown
    /// key), then user-info or the end.
    fn after_tokens(
        &self,
        mut finish: Finish,
        tokens: Tokens,
        refreshed: bool,
        o: &OAuth2,
        m: &Method,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(eps) = finish.endpoints.clone() else {
            return self.fail(finish, &m.name, Deny::Unavailable("no_endpoints"));
        };
        let mut id_claims = None;
        if o.oidc {
            let (Some(id_token), Some(jwks_url)) = (tokens.id_token.as_deref(), eps.jwks.as_ref())
            else {
                return self.idp_fail(finish, m, IdpFailure::BadAnswer("no_id_token"));
            };
            let cached = cached_doc(env.cache, jwks_url);
            let jwks = cached.as_ref().map_or(Value::Null, |(_, d)| d.clone());
            let nonce = finish.flow.nonce.clone().unwrap_or_default();
            match o.verify_id_token(id_token, &jwks, &nonce, env.now) {
                Ok(Some(claims)) => id_claims = Some(claims),
                Ok(None) => {
                    let recently = cached
                        .is_some_and(|(at, _)| env.now < at.saturating_add(JWKS_REFETCH_INTERVAL));
                    if refreshed || recently {
                        let failure = IdpFailure::IdToken(crate::jose::JoseError::UnknownKey);
                        return self.idp_fail(finish, m, failure);
                    }
                    finish.sent_ms = env.now_ms;
                    let callout = o.fetch(jwks_url);
                    return Outcome::new(legacy_callout(
                        callout,
                        Pending::Redirect(Box::new(RedirectWait::ExpectJwksRefresh(
                            finish, tokens,
                        ))),
                    ));
                }
                Err(failure) => return self.idp_fail(finish, m, failure),
            }
        }
        match o.userinfo_request(&eps, &tokens.access_token) {
            Some(callout) => {
                finish.sent_ms = env.now_ms;
                Outcome::new(legacy_callout(
                    callout,
                    Pending::Redirect(Box::new(RedirectWait::ExpectUserInfo(
                        finish, tokens, id_claims,
                    ))),
                ))
            }
            None => {
                let claims = id_claims.unwrap_or_default();
                self.complete(finish, &claims, tokens, m, o, env)
            }
        }
    }

    /// Claims in hand: the identity, a new session, and back to the return URL.
    fn complete(
        &self,
        finish: Finish,
        claims: &Map<String, Value>,
        tokens: Tokens,
        m: &Method,
        o: &OAuth2,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(id) = Arc::clone(&m.mapping).apply(claims, &m.name) else {
            return self.fail(
                finish,
                &m.name,
                Deny::IdentityInvalid {
                    method: m.name.clone(),
                    why: "no login claim",
                },
            );
        };
        let scope = match finish.flow.tenant.as_deref() {
            None => &self.config.global,
            Some(code) => match self.config.tenants.get(code) {
                Some(s) => s,
                None => return self.fail(finish, &m.name, Deny::FlowInvalid),
            },
        };
        let extra = SessionExtra {
            token: o.forward_access_token.then(|| UpstreamToken {
                access: tokens.access_token.clone(),
                refresh: tokens.refresh_token.clone(),
                exp: tokens.expires_in.map(|s| env.now.saturating_add(s)),
            }),
            hint: tokens.id_token.filter(|_| o.id_token_hint),
            sid: None,
            saml: None,
            exp_cap: None,
        };
        let ctx = self.ctx_for(&finish.head);
        match self.establish(&ctx, scope, id, Some(claims), extra, env) {
            Ok(mut cookies) => {
                cookies.insert(0, finish.delete_flow.clone());
                let rd = safe_return(&finish.flow.rd, &self.config.origin);
                log::info!("sso-filter: login method={}", m.name);
                let response = Response::redirect(302, &rd).cookies(cookies);
                Outcome::new(Step::Respond(response))
                    .count(Counter::LoginSuccess(MethodLabel::configured(&m.name)))
            }
            Err(deny) => self.fail(finish, &m.name, deny),
        }
    }

    /// Refuses a callback, deleting its flow cookie.
    fn fail(&self, finish: Finish, method: &str, deny: Deny) -> Outcome {
        let deny = with_method(deny, method);
        let ctx = self.ctx_for(&finish.head);
        self.deny_flow(&ctx, &finish.flow, deny, vec![finish.delete_flow])
    }

    fn deny_head(&self, head: &RequestHead, deny: Deny, cookies: Vec<String>) -> Outcome {
        let ctx = self.ctx_for(head);
        self.deny(&ctx, deny, cookies)
    }

    /// Where logout sends the browser for a session of a redirect method: the IdP's logout
    /// endpoint (configured, or from the cached discovery document), with the return address.
    pub(super) fn idp_logout(&self, session: &Session, env: &Env<'_>) -> Option<String> {
        let (_, m, o) = self
            .oauth_method(session.id.tenant.as_deref(), &session.id.method)
            .ok()?;
        let eps_logout = match o.configured_logout() {
            Some(u) => Some(u.clone()),
            None => self
                .known_endpoints(o, env)
                .ok()
                .flatten()
                .and_then(|e| e.logout),
        };
        let mut ret = url::form_urlencoded::Serializer::new(String::new());
        ret.append_pair(&self.config.method_param, &m.name);
        if let Some(t) = &session.id.tenant {
            if let Some(p) = self.config.tenant_params.first() {
                ret.append_pair(p, t);
            }
        }
        let return_to = format!("{}/?{}", self.config.origin, ret.finish());
        o.logout_redirect(eps_logout.as_ref(), &return_to, session.hint.as_deref())
    }
}

impl Filter {
    /// A session whose forwarded access token is about to expire gets it refreshed before the
    /// request goes on (RFC 6749 §6), at most one refresh per refresh token at a time across
    /// Envoy's workers. Without endpoints at hand, a refresh token, or the lock, the request
    /// goes on with the current token.
    pub(super) fn refresh_if_due(
        &self,
        ctx: &Ctx<'_>,
        scope: &crate::config::Scope,
        session: &super::Prepared,
        env: &mut Env<'_>,
    ) -> Option<Outcome> {
        let token = session.token.as_ref()?;
        let refresh = token.refresh.as_deref()?;
        let exp = token.exp?;
        if env.now.saturating_add(REFRESH_AHEAD) < exp {
            return None;
        }
        let method = scope.methods.get(&session.id.method)?;
        let MethodKind::OAuth2(o) = method.kind.as_ref() else {
            return None;
        };
        let eps = self.known_endpoints(o, env).ok().flatten()?;
        // One refresh in flight per refresh token across workers: a lock in the bounded lock
        // store that expires by itself (a worker that dies holding it blocks nobody for long).
        let lock = format!("refresh:{}", hex_digest(refresh));
        let now = env.now;
        let won = self
            .stores(env)
            .ok()
            .and_then(|st| {
                st.try_lock(&lock, now.saturating_add(REFRESH_LOCK), now)
                    .ok()
            })
            .unwrap_or(false);
        if !won {
            return None;
        }
        let wait = RedirectWait::ExpectRefresh(Refresh {
            head: ctx.head.clone(),
            method: method.name.clone(),
            tenant: scope.tenant.as_ref().map(|t| t.code.clone()),
            session: Session {
                v: 1,
                id: session.id.clone(),
                iat: session.iat,
                exp: session.exp,
                hint: session.hint.clone(),
                token: session.token.clone(),
                sid: session.sid.clone(),
                saml: None,
            },
            sent_ms: env.now_ms,
        });
        Some(Outcome::new(legacy_callout(
            o.refresh_request(&eps, refresh),
            Pending::Redirect(Box::new(wait)),
        )))
    }

    /// The refresh answer: a new session cookie on the upstream's response and the new token
    /// upstream; on failure the old token while it lasts, else the request is unauthenticated.
    fn finish_refresh(
        &self,
        refresh: Refresh,
        response: &CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let ctx = self.ctx_for(&refresh.head);
        let method = self
            .oauth_method(refresh.tenant.as_deref(), &refresh.method)
            .ok();
        let renewed = method.and_then(|(_, _, o)| {
            check_answered(response, refresh.sent_ms, o.timeout_ms, env.now_ms).ok()?;
            o.refresh_response(response).ok()
        });
        let mut session = refresh.session;
        let Some(tokens) = renewed else {
            log::warn!(
                "sso-filter: access token refresh failed method={}",
                refresh.method
            );
            let still_valid = session
                .token
                .as_ref()
                .and_then(|t| t.exp)
                .is_some_and(|exp| env.now < exp);
            if still_valid {
                return self.forward(&ctx, &self.prepare(session), env.now).count(
                    Counter::Refresh(MethodLabel::configured(&refresh.method), false),
                );
            }
            let login = self.login_url("/", Some(&ctx));
            let cookies = self.config.cookies.clear_session(&ctx.cookies);
            let response = if ctx.head.is_navigation() {
                Response::redirect(302, &login).cookies(cookies)
            } else {
                Response::new(401).json(&serde_json::json!({"error": "login_required", "login_url": format!("{}{login}", self.config.origin)})).cookies(cookies)
            };
            return Outcome::new(Step::Respond(response)).count(Counter::Refresh(
                MethodLabel::configured(&refresh.method),
                false,
            ));
        };
        let old_refresh = session.token.as_ref().and_then(|t| t.refresh.clone());
        session.token = Some(UpstreamToken {
            access: tokens.access_token,
            // RFC 6749 §6: the IdP may rotate the refresh token; otherwise the old one stays.
            refresh: tokens.refresh_token.or(old_refresh),
            exp: tokens.expires_in.map(|s| env.now.saturating_add(s)),
        });
        let cookies =
            match self
                .config
                .cookies
                .write_session(&session, &ctx.cookies, env.now, env.rng)
            {
                Ok(c) => c,
                Err(_) => return self.deny(&ctx, Deny::Unavailable("random"), Vec::new()),
            };
        let mut outcome = self.forward(&ctx, &self.prepare(session), env.now);
        if let Step::Continue(edits) = &mut outcome.step {
            edits.extend(
                cookies
                    .into_iter()
                    .map(|c| crate::http::HeaderEdit::AddResponse("set-cookie".into(), c)),
            );
        }
        outcome.count(Counter::Refresh(
            MethodLabel::configured(&refresh.method),
            true,
        ))
    }
}

/// A short hex digest, for cache keys that must not contain the secret itself.
fn hex_digest(secret: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Names the method in a refusal that was made before it was known.
fn with_method(deny: Deny, method: &str) -> Deny {
    match deny {
        Deny::Idp { method: m, failure } if m.is_empty() => Deny::Idp {
            method: method.to_owned(),
            failure,
        },
        other => other,
    }
}

/// A callout failure: a 504, or no status past the deadline, is a timeout; no status before it
/// means the IdP could not be reached.
fn check_answered(
    response: &CalloutResponse,
    sent_ms: u64,
    timeout_ms: u64,
    now_ms: u64,
) -> Result<(), IdpFailure> {
    // Envoy answers a callout past its deadline with its own 504; an IdP's 504 means the same.
    match response.status {
        Some(504) => return Err(IdpFailure::Timeout),
        Some(_) => return Ok(()),
        None => {}
    }
    if now_ms.saturating_sub(sent_ms).saturating_add(100) >= timeout_ms {
        Err(IdpFailure::Timeout)
    } else {
        Err(IdpFailure::Unreachable)
    }
}

/// A discovery document or JWKS: answered, 200, JSON object within the size cap.
fn judge_doc(
    response: &CalloutResponse,
    sent_ms: u64,
    timeout_ms: u64,
    now_ms: u64,
) -> Result<Map<String, Value>, IdpFailure> {
    check_answered(response, sent_ms, timeout_ms, now_ms)?;
    if response.status != Some(200) {
        return Err(IdpFailure::BadAnswer("document_status"));
    }
    json_body(response, MAX_DOC_BODY)
}
