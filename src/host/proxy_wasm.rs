//! The Envoy / Istio host (proxy-wasm ABI, `wasm32-wasip1`).
//!
//! The root context parses the configuration once in `on_configure` and returns `false` on
//! error, so Envoy refuses a bad configuration. Each HTTP context turns header and body
//! callbacks into engine inputs and carries out the returned [`Step`]. Counters are proxy-wasm
//! metrics; the cache is proxy-wasm shared data (one per Envoy process, shared by workers).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use ::proxy_wasm::hostcalls;
use ::proxy_wasm::traits::{Context, HttpContext, RootContext};
use ::proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};

use crate::cache::{CacheError, SharedCache, Version};
use crate::http::{CalloutResponse, HeaderEdit, Outcome, RequestHead, Response, Step};
use crate::pending::Pending;
use crate::random::SystemRandom;
use crate::{Env, Filter};

/// The largest callout response body read into the engine.
const MAX_CALLOUT_BODY: usize = 1024 * 1024;

::proxy_wasm::main! {{
    // Installs the logger and a panic hook that logs at Critical before the VM aborts.
    ::proxy_wasm::set_log_level(LogLevel::Info);
    ::proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

thread_local! {
    static METRICS: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
}

#[derive(Default)]
struct Root {
    filter: Option<Rc<Filter>>,
}

impl Context for Root {}

/// Why the Envoy build refuses `type: ldap`, and what to use instead (docs/ldap.md has the
/// measurements).
pub const LDAP_REFUSAL: &str = "type ldap is not available in the Envoy build: proxy-wasm has \
no socket, and Envoy's raw-TCP tunnel (CONNECT with allow_post) half-closes the connection when \
the callout body ends, which makes OpenLDAP abandon the bind and search (measured, docs/ldap.md); \
use the edge build (wasm-bindgen-harness), or federate the directory through an identity \
provider (e.g. Keycloak LDAP user federation) and log in with type oidc";

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(b)) => b,
            Ok(None) => Vec::new(),
            Err(_) => {
                log::error!("sso-filter: configuration could not be read");
                return false;
            }
        };
        match Filter::from_json(&bytes) {
            Ok(filter) if !filter.config().stream_methods().is_empty() => {
                log::error!(
                    "sso-filter: configuration refused: methods.{}: {}",
                    filter.config().stream_methods().join(", methods."),
                    LDAP_REFUSAL
                );
                false
            }
            Ok(filter) => {
                log::info!("sso-filter: {}", filter.config().summary());
                self.filter = Some(Rc::new(filter));
                true
            }
            Err(e) => {
                log::error!("sso-filter: configuration refused: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            filter: self.filter.clone(),
            waiting_body: None,
            calls: HashMap::new(),
            answered: false,
            response_headers: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Http {
    /// `None` only if Envoy created a stream despite a refused configuration: fail closed.
    filter: Option<Rc<Filter>>,
    waiting_body: Option<(Pending, usize)>,
    calls: HashMap<u32, Pending>,
    /// A local reply was sent: never resume this stream (security.md A4).
    answered: bool,
    /// Headers to add to the upstream's response (a refreshed session's `Set-Cookie`).
    response_headers: Vec<(String, String)>,
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(pending) = self.calls.remove(&token_id) else {
            return;
        };
        let headers: Vec<(String, String)> =
            hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders)
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| {
                    (
                        k.to_ascii_lowercase(),
                        String::from_utf8_lossy(&v).into_owned(),
                    )
                })
                .collect();
        // No `:status` means the call failed (reset, timeout, refused): Kong #622.
        let status = headers
            .iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse::<u16>().ok());
        let body = hostcalls::get_buffer(
            BufferType::HttpCallResponseBody,
            0,
            body_size.min(MAX_CALLOUT_BODY + 1),
        )
        .ok()
        .flatten()
        .unwrap_or_default();
        let response = CalloutResponse {
            status,
            headers,
            body,
        };
        let Some(filter) = self.filter.clone() else {
            return;
        };
        let outcome = with_env(|env| filter.on_callout_response(pending, response, env));
        self.execute(outcome, true);
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _count: usize, end_of_stream: bool) -> Action {
        let Some(filter) = self.filter.clone() else {
            return self.respond(Response::new(503).header("content-type", "text/plain"));
        };
        let head = request_head();
        let outcome = with_env(|env| filter.on_request(&head, env));
        if let Step::ReadBody { pending, limit } = outcome.step {
            count(&outcome.counters);
            if end_of_stream {
                let outcome = with_env(|env| filter.on_body(pending, &[], env));
                return self.execute(outcome, false);
            }
            self.waiting_body = Some((pending, limit));
            return Action::Pause;
        }
        self.execute(outcome, false)
    }

    fn on_http_response_headers(&mut self, _count: usize, _end_of_stream: bool) -> Action {
        for (name, value) in self.response_headers.drain(..) {
            if hostcalls::add_map_value(MapType::HttpResponseHeaders, &name, &value).is_err() {
                log::warn!("sso-filter: could not add {name} to the response");
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some((_, limit)) = &self.waiting_body else {
            return Action::Continue;
        };
        let limit = *limit;
        if !end_of_stream && body_size <= limit {
            // Pause buffers the body until it is complete.
            return Action::Pause;
        }
        let Some((pending, _)) = self.waiting_body.take() else {
            return Action::Continue;
        };
        // Read at most limit + 1 bytes: enough for the engine to see that a body is too large.
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size.min(limit + 1))
            .ok()
            .flatten()
            .unwrap_or_default();
        let Some(filter) = self.filter.clone() else {
            return Action::Pause;
        };
        let outcome = with_env(|env| filter.on_body(pending, &body, env));
        self.execute(outcome, false)
    }
}

impl Http {
    /// Carries out one step. `resumed` is true when the request was paused by an earlier step
    /// and must be resumed to continue.
    fn execute(&mut self, outcome: Outcome, resumed: bool) -> Action {
        count(&outcome.counters);
        match outcome.step {
            Step::Continue(edits) => {
                if self.answered {
                    return Action::Pause;
                }
                for edit in edits {
                    let result = match &edit {
                        HeaderEdit::Remove(name) => {
                            hostcalls::set_map_value(MapType::HttpRequestHeaders, name, None)
                        }
                        HeaderEdit::Set(name, value) => {
                            hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value))
                        }
                        HeaderEdit::AddResponse(name, value) => {
                            self.response_headers.push((name.clone(), value.clone()));
                            Ok(())
                        }
                    };
                    if result.is_err() {
                        // A header we cannot remove could be a spoofed identity: fail closed.
                        log::error!("sso-filter: header edit failed; refusing the request");
                        return self.respond(Response::new(503));
                    }
                }
                if resumed && hostcalls::resume_http_request().is_err() {
                    log::warn!("sso-filter: could not resume the request");
                }
                Action::Continue
            }
            Step::Respond(response) => self.respond(response),
            Step::ReadBody { pending, limit } => {
                self.waiting_body = Some((pending, limit));
                Action::Pause
            }
            // Never produced here: a configuration with a stream method is refused at load.
            Step::Stream(_, _) => self.respond(Response::new(503)),
            Step::Callout(callout, pending) => {
                let (path, authority) = match url::Url::parse(&callout.url) {
                    Ok(u) => {
                        let mut p = u.path().to_owned();
                        if let Some(q) = u.query() {
                            p.push('?');
                            p.push_str(q);
                        }
                        // Host with its port when the URL has one: IdPs build their own URLs
                        // (discovery, redirects) from the Host header.
                        let host = u.host_str().unwrap_or_default();
                        let authority = match u.port() {
                            Some(port) => format!("{host}:{port}"),
                            None => host.to_owned(),
                        };
                        (p, authority)
                    }
                    Err(_) => return self.respond(Response::new(502)),
                };
                let mut headers: Vec<(&str, &str)> = vec![
                    (":method", callout.method.as_str()),
                    (":path", path.as_str()),
                    (":authority", authority.as_str()),
                ];
                headers.extend(
                    callout
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                );
                let body = (!callout.body.is_empty()).then_some(callout.body.as_slice());
                match hostcalls::dispatch_http_call(
                    &callout.upstream,
                    headers,
                    body,
                    Vec::new(),
                    Duration::from_millis(callout.timeout_ms),
                ) {
                    Ok(token) => {
                        self.calls.insert(token, pending);
                        Action::Pause
                    }
                    Err(status) => {
                        // Unknown cluster and similar: answer now, never leave the request paused.
                        log::error!(
                            "sso-filter: callout to {} failed to start: {status:?}",
                            callout.upstream
                        );
                        self.respond(Response::new(503))
                    }
                }
            }
        }
    }

    fn respond(&mut self, response: Response) -> Action {
        self.answered = true;
        let headers: Vec<(&str, &str)> = response
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if let Err(status) =
            hostcalls::send_http_response(u32::from(response.status), headers, Some(&response.body))
        {
            log::error!("sso-filter: could not send the local reply: {status:?}");
        }
        Action::Pause
    }
}

fn request_head() -> RequestHead {
    let mut head = RequestHead::default();
    for (name, value) in hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default() {
        let value = String::from_utf8_lossy(&value).into_owned();
        match name.as_str() {
            ":method" => head.method = value,
            ":path" => head.path = value,
            n if n.starts_with(':') => {}
            _ => head.headers.push((name.to_ascii_lowercase(), value)),
        }
    }
    head
}

fn with_env<T>(f: impl FnOnce(&mut Env<'_>) -> T) -> T {
    let since_epoch = hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    let mut rng = SystemRandom;
    let cache = SharedData;
    let now_ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
    let mut env = Env {
        now: since_epoch.as_secs(),
        now_ms,
        rng: &mut rng,
        cache: &cache,
    };
    f(&mut env)
}

fn count(counters: &[String]) {
    for name in counters {
        let id = METRICS.with(|m| {
            let mut m = m.borrow_mut();
            if let Some(id) = m.get(name) {
                return Some(*id);
            }
            let id = hostcalls::define_metric(MetricType::Counter, name).ok()?;
            m.insert(name.clone(), id);
            Some(id)
        });
        if let Some(id) = id {
            if hostcalls::increment_metric(id, 1).is_err() {
                log::debug!("sso-filter: counter {name} not incremented");
            }
        }
    }
}

/// proxy-wasm shared data as the engine's cache.
struct SharedData;

impl SharedCache for SharedData {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>, CacheError> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(bytes), Some(cas))) => Ok(Some((bytes, cas))),
            Ok(_) => Ok(None),
            Err(_) => Err(CacheError::Unavailable),
        }
    }

    fn set(&self, key: &str, value: &[u8], version: Option<Version>) -> Result<(), CacheError> {
        match hostcalls::set_shared_data(key, Some(value), version) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(CacheError::Conflict),
            Err(_) => Err(CacheError::Unavailable),
        }
    }
}
