//! The login flow of the app-token providers (WeCom, DingTalk, Feishu/Lark, Yunzhijia, WeChat):
//! a redirect, an in-app page or the URL itself brings a code; callouts turn it into claims.
//!
//! ```text
//! /sso/login ──> 302 to the provider (QR, in-app OAuth)  | 200 JSAPI page     (flow cookie)
//! /sso/callback/{m}?code&state  | POST /sso/code/{m} {code,state}  | ?ticket=… on any URL
//!   ──> [ExpectAppToken] ──> ExpectAnswer(step) ──> … ──> claims ──> session cookie
//!            ^                     │ token refused (once)
//!            └─────────────────────┘
//! ```
//!
//! App tokens live in the shared cache ([`crate::methods::cn::cached_token`]): fetched when
//! absent or close to expiry, dropped and fetched again once when the provider refuses one.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::{legacy_body, legacy_callout, Ctx, Env, Filter};
use crate::config::{Method, Scope};
use crate::counter::{Counter, MethodLabel};
use crate::deny::Deny;
use crate::http::{split_target, CalloutResponse, Outcome, Query, RequestHead, Response, Step};
use crate::idp::IdpFailure;
use crate::methods::cn::{self, Answer, Begin, Entry, Provider, Settled, TokenKind};
use crate::methods::{dingtalk, lark, teams, wechat, wecom, yunzhijia, MethodKind};
use crate::pages;
use crate::pending::Pending;
use crate::random;
use crate::redirect::safe_return;
use crate::session::{Flow, SessionExtra, FLOW_TTL};

/// The largest in-app code post accepted.
pub const MAX_CODE_BODY: usize = 16 * 1024;

/// A provider login waiting for an answer, by provider.
#[derive(Debug)]
pub enum CnWait {
    /// WeCom.
    Wecom(Exchange<wecom::Step>),
    /// DingTalk.
    DingTalk(Exchange<dingtalk::Step>),
    /// Feishu / Lark.
    Lark(Exchange<lark::Step>),
    /// WeChat.
    Wechat(Exchange<wechat::Step>),
    /// Yunzhijia.
    Yunzhijia(Exchange<yunzhijia::Step>),
    /// Microsoft Teams.
    Teams(Exchange<teams::Step>),
}

/// One login's exchange with its provider: the login, the provider's step and what the
/// callout in flight is.
#[derive(Debug)]
pub struct Exchange<S> {
    login: Login,
    step: S,
    phase: Phase,
}

/// What a login carries through its exchange.
#[derive(Debug)]
struct Login {
    head: RequestHead,
    method: String,
    tenant: Option<String>,
    landing: Landing,
    delete_flow: Option<String>,
    sent_ms: u64,
    refreshed: bool,
}

/// What the callout in flight is.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// The app token the step needs.
    ExpectAppToken(TokenKind),
    /// The step's own call.
    ExpectAnswer,
}

/// Where a successful login goes.
#[derive(Debug)]
enum Landing {
    /// 302 to this same-origin URL (redirect logins, URL logins).
    Redirect(String),
    /// 200 JSON `{"location": ...}` (codes posted by an in-app page).
    Json(String),
}

/// An in-app code post waits for its body.
#[derive(Debug)]
pub struct ExpectCode {
    /// The post's head (cookies).
    pub head: RequestHead,
    /// The method named in the path.
    pub method: String,
}

/// Engine-side wiring of a provider: its wait-state variant and its configuration variant.
trait Wired: Provider + Sized {
    fn wrap(ex: Exchange<Self::Step>) -> CnWait;
    fn of(kind: &MethodKind) -> Option<&Self>;
}

impl Wired for wecom::Wecom {
    fn wrap(ex: Exchange<wecom::Step>) -> CnWait {
        CnWait::Wecom(ex)
    }

    fn of(kind: &MethodKind) -> Option<&Self> {
        match kind {
            MethodKind::Wecom(w) => Some(w),
            _ => None,
        }
    }
}

impl Wired for dingtalk::DingTalk {
    fn wrap(ex: Exchange<dingtalk::Step>) -> CnWait {
        CnWait::DingTalk(ex)
    }

    fn of(kind: &MethodKind) -> Option<&Self> {
        match kind {
            MethodKind::DingTalk(d) => Some(d),
            _ => None,
        }
    }
}

impl Wired for lark::Lark {
    fn wrap(ex: Exchange<lark::Step>) -> CnWait {
        CnWait::Lark(ex)
    }

    fn of(kind: &MethodKind) -> Option<&Self> {
        match kind {
            MethodKind::Lark(l) => Some(l),
            _ => None,
        }
    }
}

impl Wired for wechat::Wechat {
    fn wrap(ex: Exchange<wechat::Step>) -> CnWait {
        CnWait::Wechat(ex)
    }

    fn of(kind: &MethodKind) -> Option<&Self> {
        match kind {
            MethodKind::Wechat(w) => Some(w),
            _ => None,
        }
    }
}

impl Wired for yunzhijia::Yunzhijia {
    fn wrap(ex: Exchange<yunzhijia::Step>) -> CnWait {
        CnWait::Yunzhijia(ex)
    }

    fn of(kind: &MethodKind) -> Option<&Self> {
        match kind {
            MethodKind::Yunzhijia(y) => Some(y),
            _ => None,
        }
    }
}

impl Wired for teams::Teams {
    fn wrap(ex: Exchange<teams::Step>) -> CnWait {
        CnWait::Teams(ex)
    }

    fn of(kind: &MethodKind) -> Option<&Self> {
        match kind {
            MethodKind::Teams(t) => Some(t),
            _ => None,
        }
    }
}

/// Runs `$body` with `$p` bound to the method's provider, or evaluates `$other`.
macro_rules! with_provider {
    ($kind:expr, $p:ident => $body:expr, _ => $other:expr) => {
        match $kind {
            MethodKind::Wecom($p) => {
                let $p: &wecom::Wecom = $p;
                $body
            }
            MethodKind::DingTalk($p) => {
                let $p: &dingtalk::DingTalk = $p;
                $body
            }
            MethodKind::Lark($p) => {
                let $p: &lark::Lark = $p;
                $body
            }
            MethodKind::Wechat($p) => {
                let $p: &wechat::Wechat = $p;
                $body
            }
            MethodKind::Yunzhijia($p) => {
                let $p: &yunzhijia::Yunzhijia = $p;
                $body
            }
            MethodKind::Teams($p) => {
                let $p: &teams::Teams = $p;
                $body
            }
            _ => $other,
        }
    };
}

impl Filter {
    /// `{prefix}/login` for a provider method: a redirect to the provider or the in-app page.
    pub(super) fn cn_start(
        &self,
        ctx: &Ctx<'_>,
        scope: &Scope,
        method: &Method,
        rd: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        with_provider!(method.kind.as_ref(), p => self.start_with(p, ctx, scope, method, rd, env),
            _ => Err(Deny::NotFound))
    }

    fn start_with<P: Wired>(
        &self,
        p: &P,
        ctx: &Ctx<'_>,
        scope: &Scope,
        method: &Method,
        rd: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let entry = Entry {
            login: &ctx.query,
            page: Query::parse(split_target(&rd).1),
            user_agent: ctx.head.header("user-agent").unwrap_or(""),
        };
        let variant = p.choose(&entry).map_err(|d| named(d, &method.name))?;
        let state = alphanumeric(env, 24)?;
        let redirect_uri = self.cn_redirect_uri(&method.name, p.callback_path());
        let begin = p
            .begin(variant, &entry, &state, &redirect_uri)
            .map_err(|d| named(d, &method.name))?;
        let flow = Flow {
            v: 1,
            state: state.clone(),
            rd,
            method: method.name.clone(),
            tenant: scope.tenant.as_ref().map(|t| t.code.clone()),
            exp: env.now.saturating_add(FLOW_TTL),
            nonce: None,
            verifier: None,
            variant: Some(variant.to_owned()),
        };
        let jar = &self.config.cookies;
        let cookies = if p.cross_site() {
            jar.write_cross_site_flow(&flow, &ctx.cookies, env.now, env.rng)
        } else {
            jar.write_flow(&flow, &ctx.cookies, env.now, env.rng)
        }
        .map_err(|_| Deny::Unavailable("random"))?;
        let response = match begin {
            Begin::Redirect(location) => Response::redirect(302, &location),
            Begin::Page(page) => {
                let nonce = alphanumeric(env, 16)?;
                let post = format!("{}/code/{}", self.config.prefix, method.name);
                let html = pages::jsapi_page(
                    &page.title,
                    page.sdk.as_deref(),
                    &page.config,
                    &page.script,
                    &post,
                    &state,
                    &nonce,
                );
                let sdk_origin = page
                    .sdk
                    .as_deref()
                    .and_then(|s| url::Url::parse(s).ok())
                    .map(|u| u.origin().ascii_serialization())
                    .unwrap_or_default();
                Response::new(200)
                    .html(html)
                    .header(
                        "content-security-policy",
                        format!(
                            "default-src 'none'; script-src 'nonce-{nonce}' {sdk_origin}; \
                             connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; \
                             base-uri 'none'; form-action 'self'; frame-ancestors {}",
                            page.frame_ancestors.as_deref().unwrap_or("'self'")
                        ),
                    )
                    .header("referrer-policy", "no-referrer")
            }
        };
        Ok(Outcome::new(Step::Respond(response.cookies(cookies)))
            .count(Counter::RedirectIdp(MethodLabel::configured(&method.name))))
    }

    fn cn_redirect_uri(&self, method: &str, path: Option<&str>) -> String {
        let path = path.map_or_else(
            || format!("{}/callback/{method}", self.config.prefix),
            str::to_owned,
        );
        format!("{}{path}", self.config.origin)
    }

    /// Whether a method name is a provider method in some scope (its callbacks come here).
    pub(super) fn is_cn_method(&self, name: &str) -> bool {
        std::iter::once(&self.config.global)
            .chain(self.config.tenants.values())
            .filter_map(|s| s.methods.get(name))
            .any(|m| m.kind.is_cn())
    }

    /// The provider redirected back: check the state, then exchange the code.
    pub(super) fn cn_callback(
        &self,
        ctx: &Ctx<'_>,
        name: &str,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        if ctx.head.method != "GET" {
            return Err(Deny::BadRequest("callback_method"));
        }
        let state = ctx
            .query
            .single("state")
            .map_err(|_| Deny::BadRequest("duplicate_callback_param"))?
            .unwrap_or("");
        let (flow, delete_flow) = self.take_flow(ctx, state, env)?;
        // From here on the flow is used up: every refusal also deletes its cookie.
        let started = (|| {
            if flow.method != name {
                return Err(Deny::FlowInvalid);
            }
            let (_, m) = self.cn_method(flow.tenant.as_deref(), &flow.method)?;
            let variant = flow.variant.as_deref().unwrap_or("");
            with_provider!(m.kind.as_ref(), p => {
                let redirect_uri = self.cn_redirect_uri(&m.name, p.callback_path());
                let step = p.callback(variant, &ctx.query, &redirect_uri).map_err(|d| named(d, name))?;
                let ex = Exchange::new(ctx.head, &flow, Landing::Redirect(flow.rd.clone()), Some(delete_flow.clone()), step);
                Ok(self.drive(p, m, ex, env))
            }, _ => Err(Deny::FlowInvalid))
        })();
        Ok(started.unwrap_or_else(|deny| self.deny(ctx, deny, vec![delete_flow])))
    }

    /// `POST {prefix}/code/{method}`: an in-app page posts the JSAPI's code (read next).
    pub(super) fn cn_code_post(&self, ctx: &Ctx<'_>, name: &str) -> Result<Outcome, Deny> {
        if ctx.head.method != "POST" {
            return Err(Deny::BadRequest("code_method"));
        }
        if !self.is_cn_method(name) {
            return Err(Deny::NotFound);
        }
        // JSON only: a cross-site form cannot send it without a CORS preflight.
        let json = ctx
            .head
            .header("content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
        if !json {
            return Err(Deny::BadRequest("code_content_type"));
        }
        Ok(Outcome::new(legacy_body(
            Pending::ExpectCode(ExpectCode {
                head: ctx.head.clone(),
                method: name.to_owned(),
            }),
            MAX_CODE_BODY,
        )))
    }

    /// The posted code's body arrived.
    pub(super) fn cn_code_body(&self, wait: ExpectCode, body: &[u8], env: &mut Env<'_>) -> Outcome {
        let ctx = self.ctx_for(&wait.head);
        if body.len() > MAX_CODE_BODY {
            return self.deny(&ctx, Deny::BodyTooLarge, Vec::new());
        }
        let fields = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map,
            _ => return self.deny(&ctx, Deny::BadRequest("code_body"), Vec::new()),
        };
        let state = fields.get("state").and_then(Value::as_str).unwrap_or("");
        let (flow, delete_flow) = match self.take_flow(&ctx, state, env) {
            Ok(taken) => taken,
            Err(deny) => return self.deny(&ctx, deny, Vec::new()),
        };
        let started = (|| {
            if flow.method != wait.method {
                return Err(Deny::FlowInvalid);
            }
            let (_, m) = self.cn_method(flow.tenant.as_deref(), &flow.method)?;
            let variant = flow.variant.as_deref().unwrap_or("");
            with_provider!(m.kind.as_ref(), p => {
                let step = p.posted(variant, &fields).map_err(|d| named(d, &m.name))?;
                let landing = Landing::Json(flow.rd.clone());
                let ex = Exchange::new(&wait.head, &flow, landing, Some(delete_flow.clone()), step);
                Ok(self.drive(p, m, ex, env))
            }, _ => Err(Deny::FlowInvalid))
        })();
        started.unwrap_or_else(|deny| self.deny(&ctx, deny, vec![delete_flow]))
    }

    /// A request whose URL carries the login itself (a light-app ticket, an admin-console
    /// code) for the chosen provider method; `None` when it carries none.
    pub(super) fn cn_url_login(
        &self,
        ctx: &Ctx<'_>,
        scope: &Scope,
        method: &Method,
        env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        with_provider!(method.kind.as_ref(), p => {
            let Some(cn::UrlLogin { step, strip }) =
                p.url_login(&ctx.query).map_err(|d| named(d, &method.name))?
            else {
                return Ok(None);
            };
            let names: Vec<&str> = strip.iter().map(String::as_str).collect();
            let query = crate::http::strip_query_params(ctx.raw_query, &names);
            let location = if query.is_empty() {
                ctx.path.clone()
            } else {
                format!("{}?{query}", ctx.path)
            };
            let login = Login {
                head: ctx.head.clone(),
                method: method.name.clone(),
                tenant: scope.tenant.as_ref().map(|t| t.code.clone()),
                landing: Landing::Redirect(location),
                delete_flow: None,
                sent_ms: env.now_ms,
                refreshed: false,
            };
            let ex = Exchange { login, step, phase: Phase::ExpectAnswer };
            Ok(Some(self.drive(p, method, ex, env)))
        }, _ => Ok(None))
    }

    fn cn_method(&self, tenant: Option<&str>, name: &str) -> Result<(&Scope, &Method), Deny> {
        let scope = match tenant {
            None => &self.config.global,
            Some(code) => self.config.tenants.get(code).ok_or(Deny::FlowInvalid)?,
        };
        let method = scope.methods.get(name).ok_or(Deny::FlowInvalid)?;
        Ok((scope, method))
    }

    /// Sends the callout of the exchange's step, fetching its app token first when the cache
    /// has none fresh; a step the cache settles goes on without a callout.
    fn drive<P: Wired>(
        &self,
        p: &P,
        m: &Method,
        ex: Exchange<P::Step>,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Exchange {
            mut login, step, ..
        } = ex;
        let token_kind = p.token_for(&step);
        let step = match p.settle(step, env.cache, env.now) {
            Ok(Settled::Call(step)) => step,
            Ok(Settled::Done(answer)) => {
                return self.proceed(p, m, login, Ok(answer), token_kind, env)
            }
            Err(failure) => return self.cn_idp_fail(login, failure),
        };
        login.sent_ms = env.now_ms;
        let token = match token_kind {
            None => None,
            Some(kind) => {
                match cn::cached_token(env.cache, &p.token_key(kind), env.now, p.refresh_margin()) {
                    Some(token) => Some(token),
                    None => {
                        let callout = p.token_request(kind, env.now_ms);
                        let ex = Exchange {
                            login,
                            step,
                            phase: Phase::ExpectAppToken(kind),
                        };
                        return Outcome::new(legacy_callout(
                            callout,
                            Pending::Cn(Box::new(P::wrap(ex))),
                        ));
                    }
                }
            }
        };
        let callout = p.request(&step, token.as_deref(), env.now_ms);
        let ex = Exchange {
            login,
            step,
            phase: Phase::ExpectAnswer,
        };
        Outcome::new(legacy_callout(callout, Pending::Cn(Box::new(P::wrap(ex)))))
    }

    /// Goes on from a judged answer: the next step, a refetched app token, or the end.
    fn proceed<P: Wired>(
        &self,
        p: &P,
        m: &Method,
        mut login: Login,
        judged: Result<Answer<P::Step>, IdpFailure>,
        token_kind: Option<TokenKind>,
        env: &mut Env<'_>,
    ) -> Outcome {
        match judged {
            Ok(Answer::Next(step)) => {
                let ex = Exchange {
                    login,
                    step,
                    phase: Phase::ExpectAnswer,
                };
                self.drive(p, m, ex, env)
            }
            Ok(Answer::TokenRejected(step)) => {
                let Some(kind) = token_kind.filter(|_| !login.refreshed) else {
                    return self.cn_idp_fail(login, IdpFailure::BadAnswer("app_token_refused"));
                };
                log::info!(
                    "sso-filter: {} refused the app token; fetching a new one",
                    P::LABEL
                );
                cn::forget_token(env.cache, &p.token_key(kind));
                login.refreshed = true;
                let ex = Exchange {
                    login,
                    step,
                    phase: Phase::ExpectAnswer,
                };
                self.drive(p, m, ex, env)
            }
            Ok(Answer::Claims(claims)) => self.cn_complete(login, m, &claims, env),
            Err(failure) => self.cn_idp_fail(login, failure),
        }
    }

    /// Resumes a provider login with a callout's answer.
    pub(super) fn resume_cn(
        &self,
        wait: CnWait,
        response: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        match wait {
            CnWait::Wecom(ex) => self.resume_with::<wecom::Wecom>(ex, response, env),
            CnWait::DingTalk(ex) => self.resume_with::<dingtalk::DingTalk>(ex, response, env),
            CnWait::Lark(ex) => self.resume_with::<lark::Lark>(ex, response, env),
            CnWait::Wechat(ex) => self.resume_with::<wechat::Wechat>(ex, response, env),
            CnWait::Yunzhijia(ex) => self.resume_with::<yunzhijia::Yunzhijia>(ex, response, env),
            CnWait::Teams(ex) => self.resume_with::<teams::Teams>(ex, response, env),
        }
    }

    fn resume_with<P: Wired>(
        &self,
        ex: Exchange<P::Step>,
        response: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Exchange {
            mut login,
            step,
            phase,
        } = ex;
        let Ok((_, m)) = self.cn_method(login.tenant.as_deref(), &login.method) else {
            return self.cn_fail(login, Deny::FlowInvalid);
        };
        let Some(p) = P::of(m.kind.as_ref()) else {
            return self.cn_fail(login, Deny::FlowInvalid);
        };
        if let Err(failure) = answered(&response, login.sent_ms, p.timeout_ms(), env.now_ms) {
            return self.cn_idp_fail(login, failure);
        }
        match phase {
            Phase::ExpectAppToken(kind) => match p.token_answer(kind, &response) {
                Ok(fetched) => {
                    cn::store_token(env.cache, &p.token_key(kind), &fetched, env.now);
                    login.sent_ms = env.now_ms;
                    let callout = p.request(&step, Some(&fetched.token), env.now_ms);
                    let ex = Exchange {
                        login,
                        step,
                        phase: Phase::ExpectAnswer,
                    };
                    Outcome::new(legacy_callout(callout, Pending::Cn(Box::new(P::wrap(ex)))))
                }
                Err(failure) => self.cn_idp_fail(login, failure),
            },
            Phase::ExpectAnswer => {
                let token_kind = p.token_for(&step);
                p.remember(&step, &response, env.cache, env.now);
                let judged = p.answer(step, &response);
                self.proceed(p, m, login, judged, token_kind, env)
            }
        }
    }

    /// Claims in hand: the identity, a new session, and on to where the user was going.
    fn cn_complete(
        &self,
        ex: Login,
        m: &Method,
        claims: &Map<String, Value>,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(id) = Arc::clone(&m.mapping).apply(claims, &m.name) else {
            let deny = Deny::IdentityInvalid {
                method: m.name.clone(),
                why: "no login claim",
            };
            return self.cn_fail(ex, deny);
        };
        let scope = match ex.tenant.as_deref() {
            None => &self.config.global,
            Some(code) => match self.config.tenants.get(code) {
                Some(s) => s,
                None => return self.cn_fail(ex, Deny::FlowInvalid),
            },
        };
        let ctx = self.ctx_for(&ex.head);
        match self.establish(&ctx, scope, id, Some(claims), SessionExtra::default(), env) {
            Ok(mut cookies) => {
                if let Some(d) = &ex.delete_flow {
                    cookies.insert(0, d.clone());
                }
                log::info!("sso-filter: login method={}", m.name);
                let response = match &ex.landing {
                    Landing::Redirect(rd) => {
                        Response::redirect(302, &safe_return(rd, &self.config.origin))
                            .header("referrer-policy", "no-referrer")
                    }
                    Landing::Json(rd) => Response::new(200).json(
                        &json!({"ok": true, "location": safe_return(rd, &self.config.origin)}),
                    ),
                };
                Outcome::new(Step::Respond(response.cookies(cookies)))
                    .count(Counter::LoginSuccess(MethodLabel::configured(&m.name)))
            }
            Err(deny) => self.cn_fail(ex, deny),
        }
    }

    fn cn_idp_fail(&self, ex: Login, failure: IdpFailure) -> Outcome {
        let deny = Deny::Idp {
            method: ex.method.clone(),
            failure,
        };
        self.cn_fail(ex, deny)
    }

    /// Refuses a login, deleting its flow cookie.
    fn cn_fail(&self, ex: Login, deny: Deny) -> Outcome {
        let ctx = self.ctx_for(&ex.head);
        let deny = named(deny, &ex.method);
        self.deny(&ctx, deny, ex.delete_flow.into_iter().collect())
    }
}

impl<S> Exchange<S> {
    fn new(
        head: &RequestHead,
        flow: &Flow,
        landing: Landing,
        delete_flow: Option<String>,
        step: S,
    ) -> Self {
        let login = Login {
            head: head.clone(),
            method: flow.method.clone(),
            tenant: flow.tenant.clone(),
            landing,
            delete_flow,
            sent_ms: 0,
            refreshed: false,
        };
        Exchange {
            login,
            step,
            phase: Phase::ExpectAnswer,
        }
    }
}

/// Names the method in a provider refusal made before it was known.
fn named(deny: Deny, method: &str) -> Deny {
    match deny {
        Deny::Idp { method: m, failure } if m.is_empty() => Deny::Idp {
            method: method.to_owned(),
            failure,
        },
        Deny::MethodNeedsToken { method: m } if m.is_empty() => Deny::MethodNeedsToken {
            method: method.to_owned(),
        },
        other => other,
    }
}

/// A callout failure: a 504 (Envoy's own past the deadline, or the provider's), or no status
/// past the deadline, is a timeout; no status before it means the provider was unreachable.
fn answered(
    response: &CalloutResponse,
    sent_ms: u64,
    timeout_ms: u64,
    now_ms: u64,
) -> Result<(), IdpFailure> {
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

/// A random `[A-Za-z0-9]` string of `n` bytes' entropy (hex): WeCom and WeChat allow only
/// alphanumeric `state` values (security.md G5).
fn alphanumeric(env: &mut Env<'_>, n: usize) -> Result<String, Deny> {
    let bytes = random::bytes(env.rng, n).map_err(|_| Deny::Unavailable("random"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
