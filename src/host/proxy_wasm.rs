//! The Envoy / Istio host (proxy-wasm ABI, `wasm32-wasip1`).
//!
//! The root context parses the configuration once in `on_configure` and returns `false` on
//! error, so Envoy refuses a bad configuration. Each HTTP context turns header and body
//! callbacks into engine inputs and carries out the returned [`Step`]. Counters are proxy-wasm
//! metrics; the cache is proxy-wasm shared data (one per Envoy process, shared by workers).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, UNIX_EPOCH};

use ::proxy_wasm::hostcalls;
use ::proxy_wasm::traits::{Context, HttpContext, RootContext};
use ::proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};

use crate::cache::{CacheError, SharedCache, Version};
use crate::http::{
    Background, Callout, CalloutResponse, HeaderEdit, Outcome, RequestHead, Response, Step,
};
use crate::random::SystemRandom;
use crate::wait::{BodyWait, CalloutWait, TimerWait};
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
    /// The clock as last read, and how many request heads have used it since (see
    /// [`Clock::Recent`]).
    static CLOCK: Cell<(Option<Duration>, u32)> = const { Cell::new((None, 0)) };
    /// Set when Envoy refused the tick: then every input reads the clock.
    static NO_TICK: Cell<bool> = const { Cell::new(false) };
}

/// How often the root context refreshes the cached clock.
const CLOCK_TICK: Duration = Duration::from_secs(1);

/// How many request heads may use one reading of the clock: under load the tick may run late,
/// so every this many requests the clock is read again.
const CLOCK_REUSE: u32 = 64;

/// Which clock an input gets.
#[derive(Clone, Copy)]
enum Clock {
    /// Request heads: the reading of the last tick (at most about a second old, and at most
    /// [`CLOCK_REUSE`] requests old). Reading the clock is a host call that costs about 4 us in
    /// Envoy's V8 (`make bench`, probe-clock): a fifth of the session path. Sessions, tokens
    /// and flows are timed in seconds, with leeway.
    Recent,
    /// Bodies and callout answers (logins): the clock itself, for callout deadlines and the
    /// password budget's milliseconds.
    Exact,
}

/// Reads the clock and keeps the reading for [`Clock::Recent`].
fn read_clock() -> Duration {
    let now = hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .unwrap_or_default();
    CLOCK.with(|c| c.set((Some(now), 0)));
    now
}

/// The time for an input.
fn now(clock: Clock) -> Duration {
    if matches!(clock, Clock::Exact) || NO_TICK.with(Cell::get) {
        return read_clock();
    }
    match CLOCK.with(Cell::get) {
        (Some(t), used) if used < CLOCK_REUSE => {
            CLOCK.with(|c| c.set((Some(t), used.saturating_add(1))));
            t
        }
        _ => read_clock(),
    }
}

#[derive(Default)]
struct Root {
    filter: Option<Rc<Filter>>,
    /// The timer's callouts in flight (an organisation sync: one at a time per method).
    timers: HashMap<u32, TimerWait>,
}

/// Timer callouts in flight at most per worker; the engine keeps one per syncing method.
const MAX_TIMER_CALLOUTS: usize = 64;

/// The root context answers the callouts of the timer: the engine's background work runs
/// here, with no request stream (proxy-wasm dispatches from the root context).
impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(wait) = self.timers.remove(&token_id) else {
            log::debug!("sso-filter: timer callout answer {token_id} for no wait dropped");
            return;
        };
        let Some(filter) = self.filter.clone() else {
            return;
        };
        let response = callout_response(body_size);
        let background = with_env(Clock::Exact, |env| {
            filter.on_timer_response(wait, response, env)
        });
        self.carry_out(&filter, background);
    }
}

impl Root {
    /// Sends the timer's callouts and counts its counters. A callout that cannot start is
    /// answered at once with no status (the engine ends that piece of work and logs it).
    fn carry_out(&mut self, filter: &Filter, background: Background) {
        let mut todo = vec![background];
        while let Some(background) = todo.pop() {
            count(&background.counters);
            for (callout, wait) in background.callouts {
                if self.timers.len() >= MAX_TIMER_CALLOUTS {
                    log::error!("sso-filter: too many timer callouts in flight; one dropped");
                    continue;
                }
                match send(&callout) {
                    Ok(token) => {
                        self.timers.insert(token, wait);
                    }
                    Err(status) => {
                        log::error!(
                            "sso-filter: timer callout to {} failed to start: {status:?}",
                            callout.upstream
                        );
                        let failed = CalloutResponse {
                            status: None,
                            headers: Vec::new(),
                            body: Vec::new(),
                        };
                        todo.push(with_env(Clock::Exact, |env| {
                            filter.on_timer_response(wait, failed, env)
                        }));
                    }
                }
            }
        }
    }
}

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
                for warning in filter.config().warnings() {
                    log::warn!("sso-filter: {warning}");
                }
                self.filter = Some(Rc::new(filter));
                // The stores' placement secret is made here, where Envoy configures the main
                // thread's VM before any worker serves, rather than by the first requests:
                // two workers making it at once would each place an item under their own
                // secret, and the loser's item (a used one-time token) would be forgotten.
                if crate::store::placer(&SharedData, &mut SystemRandom).is_err() {
                    log::error!("sso-filter: the stores' placement secret could not be made");
                    return false;
                }
                if hostcalls::set_tick_period(CLOCK_TICK).is_err() {
                    // Without ticks an idle worker's reading would not move: read the clock
                    // for every request instead.
                    log::warn!(
                        "sso-filter: no tick; the clock is read for every request and the \
                         organisation sync does not run (logins ask per login)"
                    );
                    NO_TICK.with(|t| t.set(true));
                }
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
            phase: Phase::Open,
            ended: false,
            response_headers: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    /// The clock's tick, shared with the engine's timer (the organisation sync), which is
    /// cheap when nothing is due: an atomic read per syncing method.
    fn on_tick(&mut self) {
        read_clock();
        let Some(filter) = self.filter.clone() else {
            return;
        };
        let background = with_env(Clock::Recent, |env| filter.on_timer(env));
        self.carry_out(&filter, background);
    }
}

/// Where one request stands. Only the engine's terminal step moves a request out of a wait:
/// [`Phase::Forwarded`] (its `Continue`, with its edits) or [`Phase::Answered`] (its
/// `Respond`). While the request waits, every body chunk, trailers and end of stream are
/// held (docs/behaviour.md, "Request lifecycle"): Envoy releases a paused request into the
/// router as soon as a later callback returns `Continue`, so each callback checks the phase.
enum Phase {
    /// The request head has not been decided yet.
    Open,
    /// The engine asked for the body; Envoy buffers it until it is complete.
    Body { pending: BodyWait, limit: usize },
    /// A callout is in flight; its answer resumes the engine with `pending`.
    Callout { token: u32, pending: CalloutWait },
    /// The engine is deciding on an input (never seen by another callback).
    Deciding,
    /// The engine's `Continue` was applied: the rest of the stream flows to the upstream.
    Forwarded,
    /// A local reply was sent: nothing of this stream reaches the upstream.
    Answered,
}

struct Http {
    /// `None` only if Envoy created a stream despite a refused configuration: fail closed.
    filter: Option<Rc<Filter>>,
    phase: Phase,
    /// The client finished the request (end of stream on headers or body, or trailers).
    ended: bool,
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
        // Only the callout this request waits for resumes it; anything else (a stream that was
        // answered meanwhile) is dropped.
        let pending = match std::mem::replace(&mut self.phase, Phase::Deciding) {
            Phase::Callout { token, pending } if token == token_id => pending,
            other => {
                self.phase = other;
                log::debug!("sso-filter: callout answer {token_id} for no waiting request dropped");
                return;
            }
        };
        let response = callout_response(body_size);
        let Some(filter) = self.filter.clone() else {
            self.respond(Response::new(503));
            return;
        };
        let outcome = with_env(Clock::Exact, |env| {
            filter.on_callout_response(pending, response, env)
        });
        self.execute(outcome, Input::Callout);
    }
}

/// Which callback an engine step answers: it decides how a `Continue` is carried out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Input {
    /// The request headers: returning `Continue` lets the request go on.
    Headers,
    /// The body or trailers callback: returning `Continue` releases the held headers and body.
    Body,
    /// A callout answer, outside any request callback: the request must be resumed.
    Callout,
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _count: usize, end_of_stream: bool) -> Action {
        self.ended = end_of_stream;
        let Some(filter) = self.filter.clone() else {
            return self.respond(Response::new(503).header("content-type", "text/plain"));
        };
        let head = request_head();
        let outcome = with_env(Clock::Recent, |env| filter.on_request(&head, env));
        self.execute(outcome, Input::Headers)
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
        self.ended |= end_of_stream;
        match &self.phase {
            Phase::Open | Phase::Forwarded => Action::Continue,
            // Held (buffered) until the callout's answer decides; Envoy answers 413 itself if
            // the client sends more than its buffer limit meanwhile.
            Phase::Callout { .. } | Phase::Deciding | Phase::Answered => Action::Pause,
            Phase::Body { limit, .. } => {
                if !end_of_stream && body_size <= *limit {
                    // Pause buffers the body until it is complete.
                    return Action::Pause;
                }
                self.finish_body(body_size, Input::Body)
            }
        }
    }

    fn on_http_request_trailers(&mut self, _count: usize) -> Action {
        self.ended = true;
        match &self.phase {
            Phase::Open | Phase::Forwarded => Action::Continue,
            Phase::Callout { .. } | Phase::Deciding | Phase::Answered => Action::Pause,
            // Trailers end the body: the engine decides on what was buffered.
            Phase::Body { .. } => {
                let size = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, usize::MAX)
                    .ok()
                    .flatten()
                    .map_or(0, |b| b.len());
                self.finish_body(size, Input::Body)
            }
        }
    }
}

impl Http {
    /// Hands the buffered body to the engine and carries out its step.
    fn finish_body(&mut self, body_size: usize, input: Input) -> Action {
        let Phase::Body { pending, limit } = std::mem::replace(&mut self.phase, Phase::Deciding)
        else {
            return Action::Pause;
        };
        // Read at most limit + 1 bytes: enough for the engine to see that a body is too large.
        let body = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size.min(limit + 1))
            .ok()
            .flatten()
            .unwrap_or_default();
        let Some(filter) = self.filter.clone() else {
            return self.respond(Response::new(503));
        };
        let outcome = with_env(Clock::Exact, |env| filter.on_body(pending, &body, env));
        self.execute(outcome, input)
    }

    /// Carries out one step of the engine, answering `input`.
    fn execute(&mut self, outcome: Outcome, input: Input) -> Action {
        count(&outcome.counters);
        match outcome.step {
            Step::Continue(edits) => {
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
                self.phase = Phase::Forwarded;
                if input == Input::Callout && hostcalls::resume_http_request().is_err() {
                    log::warn!("sso-filter: could not resume the request");
                }
                Action::Continue
            }
            Step::Respond(response) => self.respond(response),
            Step::ReadBody {
                wait: pending,
                limit,
            } => {
                self.phase = Phase::Body { pending, limit };
                match (self.ended, input) {
                    (false, _) => Action::Pause,
                    // A request with no body (end of stream on the headers).
                    (true, Input::Headers) => self.finish_body(0, Input::Headers),
                    // The body went by already (during a callout, or this is a second body
                    // wait): no engine state asks for that, so refuse rather than guess.
                    (true, Input::Body | Input::Callout) => {
                        log::error!("sso-filter: body wait after the body ended; refusing");
                        self.respond(Response::new(503))
                    }
                }
            }
            // Never produced here: a configuration with a stream method is refused at load.
            Step::Stream(_, _) => self.respond(Response::new(503)),
            Step::Callout(callout, pending) => self.dispatch(callout, pending),
        }
    }

    /// Sends a callout and waits for it.
    fn dispatch(&mut self, callout: Callout, pending: CalloutWait) -> Action {
        match send(&callout) {
            Ok(token) => {
                self.phase = Phase::Callout { token, pending };
                Action::Pause
            }
            Err(None) => self.respond(Response::new(502)),
            Err(Some(status)) => {
                // Unknown cluster and similar: answer now, never leave the request paused.
                log::error!(
                    "sso-filter: callout to {} failed to start: {status:?}",
                    callout.upstream
                );
                self.respond(Response::new(503))
            }
        }
    }

    fn respond(&mut self, response: Response) -> Action {
        self.phase = Phase::Answered;
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

/// Dispatches a callout: its token, or why it did not start (`None`: an unusable URL).
fn send(callout: &Callout) -> Result<u32, Option<Status>> {
    let u = url::Url::parse(&callout.url).map_err(|_| None)?;
    let mut path = u.path().to_owned();
    if let Some(q) = u.query() {
        path.push('?');
        path.push_str(q);
    }
    // Host with its port when the URL has one: IdPs build their own URLs (discovery,
    // redirects) from the Host header.
    let host = u.host_str().unwrap_or_default();
    let authority = match u.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
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
    hostcalls::dispatch_http_call(
        &callout.upstream,
        headers,
        body,
        Vec::new(),
        Duration::from_millis(callout.timeout_ms),
    )
    .map_err(Some)
}

/// The answer to a callout, inside its `on_http_call_response`.
fn callout_response(body_size: usize) -> CalloutResponse {
    let headers: Vec<(String, String)> = hostcalls::get_map_bytes(MapType::HttpCallResponseHeaders)
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
    CalloutResponse {
        status,
        headers,
        body,
    }
}

fn request_head() -> RequestHead {
    let mut head = RequestHead {
        // Read only when a check needs it (RequestHead::client).
        peer: Some(client_address),
        ..RequestHead::default()
    };
    for (name, value) in hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default() {
        // The bytes become the string in place when they are UTF-8 (the usual case).
        let value = String::from_utf8(value)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        match name.as_str() {
            ":method" => head.method = value,
            ":path" => head.path = value,
            n if n.starts_with(':') => {}
            // Envoy hands header names lower-case; lower-case only what is not.
            n if n.bytes().any(|b| b.is_ascii_uppercase()) => {
                head.headers.push((n.to_ascii_lowercase(), value));
            }
            _ => head.headers.push((name, value)),
        }
    }
    head
}

/// The address of the peer that sent the request (`source.address`, "ip:port").
fn client_address() -> Option<IpAddr> {
    let bytes = hostcalls::get_property(vec!["source", "address"])
        .ok()
        .flatten()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    text.parse::<std::net::SocketAddr>()
        .map(|a| a.ip())
        .or_else(|_| text.parse::<IpAddr>())
        .ok()
}

fn with_env<T>(clock: Clock, f: impl FnOnce(&mut Env<'_>) -> T) -> T {
    let since_epoch = now(clock);
    let mut rng = SystemRandom;
    let cache = SharedData;
    let now_ms = u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX);
    let mut env = Env {
        now: since_epoch.as_secs(),
        now_ms,
        rng: &mut rng,
        cache: &cache,
        fleet: Default::default(),
    };
    f(&mut env)
}

/// Increments the outcome's counters. Their names come from a closed set
/// ([`crate::counter::Counter`]), so this map and Envoy's stats stay bounded.
fn count(counters: &[crate::counter::Counter]) {
    for counter in counters {
        let name = counter.to_string();
        let id = METRICS.with(|m| {
            let mut m = m.borrow_mut();
            if let Some(id) = m.get(&name) {
                return Some(*id);
            }
            let id = hostcalls::define_metric(MetricType::Counter, &name).ok()?;
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
