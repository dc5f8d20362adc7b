//! The login of every app-token provider (WeCom, DingTalk, Feishu/Lark, Yunzhijia, WeChat,
//! Teams) behind [`LoginMethod`]: one generic implementation for every [`Provider`], so the
//! engine knows none of them by name. A redirect, an in-app page or the URL itself brings a
//! code; callouts (`exchange.rs`) turn it into claims.
//!
//! ```text
//! /sso/login ──> 302 to the provider (QR, in-app OAuth)  | 200 JSAPI page     (flow cookie)
//! /sso/callback/{m}?code&state  | POST /sso/code/{m} {code,state}  | ?ticket=… on any URL
//!   ──> [ExpectAppToken] ──> ExpectAnswer(step) ──> … ──> claims ──> session cookie
//!            ^                     │ token refused (once)
//!            └─────────────────────┘
//! ```
//!
//! App tokens live in the shared cache ([`super::cached_token`]): fetched when absent or close
//! to expiry, dropped and fetched again once when the provider refuses one.

use std::any::Any;

use serde_json::{Map, Value};

use super::exchange::{self, named, Exchange, Landing};
use super::{Begin, Entry, JsPage, Provider, UrlLogin};
use crate::counter::Counter;
use crate::deny::Deny;
use crate::http::{
    split_target, strip_query_params, Background, CalloutResponse, Outcome, Query, RequestHead,
    Response, Step,
};
use crate::login::{wrong_wait, Env, FlowStart, Here, LoginMethod, Request};
use crate::mapping::RawMapping;
use crate::pages;
use crate::random;
use crate::session::Flow;
use crate::wait::state_as;

/// The largest in-app code post accepted.
pub const MAX_CODE_BODY: usize = 16 * 1024;

/// An in-app page posted a code: its body is awaited.
#[derive(Debug)]
struct CodePost {
    head: RequestHead,
}

/// Every provider is a login method: the flow is the same, only the steps differ.
impl<P: Provider> LoginMethod for P {
    fn type_name(&self) -> &'static str {
        P::TYPE
    }

    fn callback_path(&self) -> Option<Option<&str>> {
        Provider::callback_path(self)
    }

    /// `POST {prefix}/code/{method}`: the code an in-app page got from the client's JSAPI.
    fn endpoint_segment(&self) -> Option<&'static str> {
        Some("code")
    }

    fn default_mapping(&self) -> RawMapping {
        Provider::default_mapping(self)
    }

    fn outbound_urls(&self) -> Vec<url::Url> {
        Provider::outbound_urls(self)
    }

    fn offer(&self) -> Option<crate::pages::login::Offer> {
        Provider::offer(self)
    }

    /// A redirect to the provider or the in-app page.
    fn start(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        rd: String,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let entry = Entry {
            login: &req.query,
            page: Query::parse(split_target(&rd).1),
            user_agent: req.head.header("user-agent").unwrap_or(""),
        };
        let variant = self.choose(&entry).map_err(|d| named(d, here.name()))?;
        let state = alphanumeric(env, 24)?;
        let begin = self
            .begin(variant, &entry, &state, &redirect_uri(self, here))
            .map_err(|d| named(d, here.name()))?;
        let start = FlowStart {
            rd,
            cookie_state: Some(state.clone()),
            variant: Some(variant.to_owned()),
            cross_site: self.cross_site(),
            ..FlowStart::default()
        };
        let cookies = here.kit.begin_flow(here, req, start, env)?.cookies;
        let response = match begin {
            Begin::Redirect(location) => Response::redirect(302, &location),
            Begin::Page(page) => jsapi_page(here, &page, &state, env)?,
        };
        Ok(Outcome::new(Step::Respond(response.cookies(cookies)))
            .count(Counter::RedirectIdp(here.label())))
    }

    /// The provider redirected back: check the state, then exchange the code.
    fn callback(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let (flow, delete_flow) = here.take_callback_flow(req, env)?;
        // From here on the flow is used up: every refusal also deletes its cookie.
        let started = (|| {
            let (here, p) = here.flow_method::<P>(&flow)?;
            let variant = flow.variant.as_deref().unwrap_or("");
            let redirect_uri = redirect_uri(p, &here);
            let step = Provider::callback(p, variant, &req.query, &redirect_uri)
                .map_err(|d| named(d, here.name()))?;
            let landing = Landing::Redirect(flow.rd.clone());
            let ex = Exchange::new(req.head, landing, delete_flow.clone(), step);
            Ok(exchange::drive(p, &here, ex, env))
        })();
        Ok(started.unwrap_or_else(|deny| {
            here.kit
                .refuse(req, deny, delete_flow.into_iter().collect())
        }))
    }

    /// `POST {prefix}/code/{method}`: an in-app page posts the JSAPI's code (read next).
    fn endpoint(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        rest: &str,
        _env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        if req.head.method != "POST" {
            return Err(Deny::BadRequest("code_method"));
        }
        if !rest.is_empty() {
            return Err(Deny::NotFound);
        }
        // JSON only: a cross-site form cannot send it without a CORS preflight.
        let json = req
            .head
            .header("content-type")
            .is_some_and(|t| t.to_ascii_lowercase().starts_with("application/json"));
        if !json {
            return Err(Deny::BadRequest("code_content_type"));
        }
        let wait = CodePost {
            head: req.head.clone(),
        };
        Ok(here.read_body(wait, MAX_CODE_BODY))
    }

    /// A request whose URL carries the login itself (a light-app ticket, an admin-console
    /// code); `None` when it carries none.
    fn on_protected(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Option<Outcome>, Deny> {
        let Some(UrlLogin { step, strip }) = self
            .url_login(&req.query)
            .map_err(|d| named(d, here.name()))?
        else {
            return Ok(None);
        };
        let names: Vec<&str> = strip.iter().map(String::as_str).collect();
        let query = strip_query_params(req.raw_query, &names);
        let location = if query.is_empty() {
            req.path.clone()
        } else {
            format!("{}?{query}", req.path)
        };
        let ex = Exchange::new(req.head, Landing::Redirect(location), None, step);
        Ok(Some(exchange::drive(self, here, ex, env)))
    }

    /// The posted code's body arrived.
    fn resume_body(
        &self,
        here: &Here<'_>,
        state: Box<dyn Any + Send>,
        body: &[u8],
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(wait) = state_as::<CodePost>(state) else {
            return wrong_wait(here);
        };
        let req = here.kit.request(&wait.head);
        let taken = code_flow(here, &req, body, env);
        here.answer(
            &req,
            taken.map(|(flow, fields, delete_flow)| {
                posted::<P>(here, &req, &flow, &fields, delete_flow, env)
            }),
        )
    }

    /// The organisation sync, when this provider has one and it is due (`sync.rs`).
    fn on_timer(&self, here: &Here<'_>, env: &mut Env<'_>) -> Background {
        super::sync::tick(self, here, env)
    }

    /// A callout of the organisation sync answered.
    fn resume_timer(
        &self,
        here: &Here<'_>,
        state: Box<dyn Any + Send>,
        answer: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Background {
        super::sync::resume(self, here, state, &answer, env)
    }

    /// Resumes a provider login with a callout's answer.
    fn resume_callout(
        &self,
        here: &Here<'_>,
        state: Box<dyn Any + Send>,
        answer: CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(ex) = state_as::<Exchange<P::Step>>(state) else {
            return wrong_wait(here);
        };
        exchange::resume(self, here, ex, answer, env)
    }
}

/// A posted code's flow, its fields, and the `Set-Cookie` that deletes the flow's cookie.
type CodeFlow = (Flow, Map<String, Value>, Option<String>);

/// A posted code's body: a JSON object of at most [`MAX_CODE_BODY`] bytes whose `state`
/// names the flow, which is taken here (once).
fn code_flow(
    here: &Here<'_>,
    req: &Request<'_>,
    body: &[u8],
    env: &mut Env<'_>,
) -> Result<CodeFlow, Deny> {
    if body.len() > MAX_CODE_BODY {
        return Err(Deny::BodyTooLarge);
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(Deny::BadRequest("code_body"));
    };
    let state = fields.get("state").and_then(Value::as_str).unwrap_or("");
    let (flow, delete_flow) = here.kit.take_flow(req, state, env)?;
    Ok((flow, fields, delete_flow))
}

/// A posted code with its flow taken: the first step, then the exchange.
fn posted<P: Provider>(
    here: &Here<'_>,
    req: &Request<'_>,
    flow: &Flow,
    fields: &Map<String, Value>,
    delete_flow: Option<String>,
    env: &mut Env<'_>,
) -> Outcome {
    let started = (|| {
        let (here, p) = here.flow_method::<P>(flow)?;
        let variant = flow.variant.as_deref().unwrap_or("");
        let step = p
            .posted(variant, fields)
            .map_err(|d| named(d, here.name()))?;
        let landing = Landing::Json(flow.rd.clone());
        let ex = Exchange::new(req.head, landing, delete_flow.clone(), step);
        Ok(exchange::drive(p, &here, ex, env))
    })();
    started.unwrap_or_else(|deny| {
        here.kit
            .refuse(req, deny, delete_flow.into_iter().collect())
    })
}

/// The page that runs the client's JSAPI and posts the code to `{prefix}/code/{method}`.
fn jsapi_page(
    here: &Here<'_>,
    page: &JsPage,
    state: &str,
    env: &mut Env<'_>,
) -> Result<Response, Deny> {
    let nonce = alphanumeric(env, 16)?;
    let post = format!("{}/code/{}", here.kit.prefix(), here.name());
    let html = pages::jsapi_page(
        &page.title,
        page.sdk.as_deref(),
        &page.config,
        &page.script,
        &post,
        state,
        &nonce,
    );
    let sdk_origin = page
        .sdk
        .as_deref()
        .and_then(|s| url::Url::parse(s).ok())
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    Ok(Response::new(200)
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
        .header("referrer-policy", "no-referrer"))
}

/// The `redirect_uri` the provider returns to: the configured callback path or
/// `{prefix}/callback/{method}`, on the configured origin.
fn redirect_uri<P: Provider>(p: &P, here: &Here<'_>) -> String {
    let kit = here.kit;
    let path = Provider::callback_path(p).flatten().map_or_else(
        || format!("{}/callback/{}", kit.prefix(), here.name()),
        str::to_owned,
    );
    format!("{}{path}", kit.origin())
}

/// A random `[A-Za-z0-9]` string of `n` bytes' entropy (hex): WeCom and WeChat allow only
/// alphanumeric `state` values (security.md G5).
fn alphanumeric(env: &mut Env<'_>, n: usize) -> Result<String, Deny> {
    let bytes = random::bytes(env.rng, n).map_err(|_| Deny::Unavailable("random"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}
