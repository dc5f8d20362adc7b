//! The JSON shapes the edge host exchanges with JS, and the conversions to and from the
//! engine's types. Plain Rust with no wasm-bindgen, so all of it is tested natively.
//!
//! Why JSON text rather than JS objects: one string crosses the boundary per input and per
//! step, which V8 copies in one go; building objects field by field through wasm-bindgen
//! costs one boundary call per field. Bodies travel as byte arrays next to the JSON.
//!
//! The shapes (JS side in `worker.mjs`):
//!
//! - request in: `{"method": "GET", "path": "/a?b=1", "headers": [["accept", "text/html"], ...]}`
//!   (`path` is the request target: path and query; header names lower-case).
//! - callout response in: `{"status": 200 | null, "headers": [[name, value], ...]}` and the body
//!   bytes; `status: null` means the callout failed (refused, reset, timed out).
//! - step out, one of (each also has `"counters": [...]`, counter names to add one to):
//!   - `{"step": "continue", "path": "/normalised?q" | null, "edits": [{"op": "remove", "name": n}
//!     | {"op": "set", "name": n, "value": v}]}`: apply the edits to the request headers, use
//!     `path` as the new request target when it is not null, send the request to the origin;
//!   - `{"step": "respond", "status": 302, "headers": [[n, v], ...], "body": "text"}` (or
//!     `"body_base64"` when the body is not UTF-8): answer with this;
//!   - `{"step": "read_body", "pending": 7, "limit": 8192}`: read the request body, at most
//!     `limit + 1` bytes (one more than allowed, so the engine can tell "too large"), and hand it
//!     to `body(7, bytes)`;
//!   - `{"step": "callout", "pending": 8, "callout": {"upstream", "url", "method", "headers",
//!     "body" | "body_base64", "timeout_ms", "max_response_bytes"}}`: send it with `fetch()`, hand
//!     the answer to `callout_response(8, ...)`;
//!   - `{"step": "stream", "pending": 9, "stream": {"host", "port", "tls", "send_base64",
//!     "read_at_least", "read_limit", "close", "timeout_ms"}}`: one round on the request's TCP
//!     (or TLS) socket, opened on the first round: write the bytes, read until at least
//!     `read_at_least` bytes came (0: do not read), the peer closed or the time ran out, keep at
//!     most `read_limit`, close if `close`; hand `{"end": "open" | "peer_closed" | "failed"}` and
//!     the bytes to `stream_reply(9, ...)`.
//!
//! - the timer (no request): `timer(now)` and `timer_response(pending, response, body, now)`
//!   answer `{"callouts": [{"pending": 9, "callout": {...}}], "counters": [...]}`: send each
//!   callout outside any request and hand its answer to `timer_response` (`api/timer.rs`).
//!
//! Pending states stay in Rust ([`Edge`] keeps them in a map); JS only ever holds their number.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sso_filter::cache::SharedCache;
use sso_filter::counter::Counter;
use sso_filter::http::Callout;
use sso_filter::http::{StreamEnd, StreamReply};
use sso_filter::random::Random;
use sso_filter::{
    BodyWait, CalloutResponse, CalloutWait, ConfigError, Env, Filter, HeaderEdit, Outcome,
    RequestHead, Step, StreamWait, TimerWait,
};

mod timer;

/// The largest callout response body the host reads into the engine (the Envoy host's bound).
pub const MAX_CALLOUT_BODY: usize = 1024 * 1024;

/// Bytes of a callout answer handed to the engine: one more than [`MAX_CALLOUT_BODY`], as the
/// Envoy host reads, so the engine sees that a larger body is too large.
pub const READ_CALLOUT_BODY: usize = MAX_CALLOUT_BODY + 1;

/// Pending states kept at most. Every state is resolved or abandoned by the worker within its
/// request; this bound only matters if a host forgets to, and then the oldest are dropped
/// (their requests would fail with "unknown pending state", never pass).
pub const MAX_PENDING: usize = 1024;

/// A request head as JS sends it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestIn {
    /// Method as sent.
    pub method: String,
    /// Request target (path and query).
    pub path: String,
    /// Headers as (name, value) pairs.
    pub headers: Vec<(String, String)>,
    /// The connecting client's address, when the runtime knows it (Node: the socket's remote
    /// address; Workers: `CF-Connecting-IP`, which Cloudflare sets). Unparsable: unknown.
    #[serde(default)]
    pub client: Option<String>,
}

impl From<RequestIn> for RequestHead {
    fn from(r: RequestIn) -> Self {
        RequestHead {
            method: r.method,
            path: r.path,
            // The engine compares names in lower case; runtimes already give them so, but a
            // host that does not must not let `X-SSO-Login` slip past a lower-case check.
            headers: r
                .headers
                .into_iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v))
                .collect(),
            client: r.client.and_then(|c| c.parse().ok()),
            peer: None,
        }
    }
}

/// A callout answer as JS sends it (the body comes separately, as bytes).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalloutResponseIn {
    /// Status; `None` when the callout failed.
    pub status: Option<u16>,
    /// Response headers.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
}

/// How a stream round ended, as JS reports it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamReplyIn {
    /// `open`, `peer_closed` or `failed`.
    pub end: StreamEndIn,
}

/// How a stream round ended.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEndIn {
    /// The round completed; the socket is still open (unless the step closed it).
    Open,
    /// The peer closed the socket.
    PeerClosed,
    /// Connecting, writing or reading failed, or the round timed out.
    Failed,
}

/// A stream round for JS's socket.
#[derive(Debug, Serialize)]
pub struct StreamOut {
    /// Host to connect to (first round).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS with the certificate verified for `host`.
    pub tls: bool,
    /// Bytes to write, standard base64.
    pub send_base64: String,
    /// Read until at least this many bytes arrived (0: do not read).
    pub read_at_least: usize,
    /// Keep at most this many bytes.
    pub read_limit: usize,
    /// Close the socket after this round.
    pub close: bool,
    /// Deadline for the round.
    pub timeout_ms: u64,
}

/// One header edit for JS.
#[derive(Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum EditOut {
    /// Delete every header of this name.
    Remove {
        /// Header name.
        name: String,
    },
    /// Set this header, replacing every value it had.
    Set {
        /// Header name.
        name: String,
        /// Value.
        value: String,
    },
    /// Add this header to the origin's response (a refreshed session's `Set-Cookie`).
    AddResponse {
        /// Header name.
        name: String,
        /// Value.
        value: String,
    },
}

/// A callout for JS's `fetch()`.
#[derive(Debug, Serialize)]
pub struct CalloutOut {
    /// The engine's upstream name (an Envoy cluster); informative at the edge.
    pub upstream: String,
    /// Absolute URL to fetch.
    pub url: String,
    /// Method.
    pub method: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    #[serde(flatten)]
    pub body: Option<BodyOut>,
    /// Deadline in milliseconds.
    pub timeout_ms: u64,
    /// Read at most this many bytes of the answer's body: one past the engine's bound, so a
    /// body that is too large reaches the engine as too large rather than cut to fit.
    pub max_response_bytes: usize,
}

/// A body as text when it is UTF-8 (every page and JSON the engine writes), else base64.
/// Fields holding one are `Option`s, flattened: no body writes no field.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub enum BodyOut {
    /// UTF-8 text.
    #[serde(rename = "body")]
    Text(String),
    /// Standard base64 of bytes that are not UTF-8.
    #[serde(rename = "body_base64")]
    Base64(String),
}

impl BodyOut {
    /// `None` for an empty body.
    pub fn of(bytes: Vec<u8>) -> Option<Self> {
        if bytes.is_empty() {
            return None;
        }
        Some(match String::from_utf8(bytes) {
            Ok(text) => BodyOut::Text(text),
            Err(e) => {
                BodyOut::Base64(base64::engine::general_purpose::STANDARD.encode(e.into_bytes()))
            }
        })
    }
}

/// What JS must do next.
#[derive(Debug, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum StepOut {
    /// Forward to the origin.
    Continue {
        /// New request target, when the engine changed it (the normalised path).
        path: Option<String>,
        /// Header edits, in order.
        edits: Vec<EditOut>,
    },
    /// Answer the client.
    Respond {
        /// Status.
        status: u16,
        /// Headers (`set-cookie` may repeat).
        headers: Vec<(String, String)>,
        /// Body.
        #[serde(flatten)]
        body: Option<BodyOut>,
    },
    /// Read the request body, then call `body(pending, bytes)`.
    ReadBody {
        /// Handle of the pending state.
        pending: u32,
        /// Largest body the engine accepts.
        limit: usize,
    },
    /// Fetch the callout, then call `callout_response(pending, ...)`.
    Callout {
        /// Handle of the pending state.
        pending: u32,
        /// The request to send.
        callout: CalloutOut,
    },
    /// One round on the request's socket, then call `stream_reply(pending, ...)`.
    Stream {
        /// Handle of the pending state.
        pending: u32,
        /// The round.
        stream: StreamOut,
    },
}

/// A step and its counters, as serialised to JS.
#[derive(Debug, Serialize)]
pub struct OutcomeOut {
    /// The step.
    #[serde(flatten)]
    pub step: StepOut,
    /// Counter names to increment by one.
    pub counters: Vec<String>,
}

/// A misuse of the API by the host (malformed input, unknown pending handle). The worker turns
/// it into a 500 and never forwards the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostError(pub String);

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the host lends for one input: the clock reading, the random source and the cache.
pub struct World<'a> {
    /// Milliseconds since the Unix epoch.
    pub now_ms: u64,
    /// Random source.
    pub rng: &'a mut dyn Random,
    /// Per-isolate cache.
    pub cache: &'a dyn SharedCache,
}

/// A wait kept for JS, by the input that ends it: JS answering a wait with the wrong input is
/// a host error, never an engine state.
#[derive(Debug)]
enum Held {
    Body(BodyWait),
    Callout(CalloutWait),
    Stream(StreamWait),
    /// A timer's callout (`timer.rs`), answered through `timer_response`.
    Timer(TimerWait),
}

/// A configured filter with the host-side state of the edge: the pending states JS refers to
/// by number, and the counters.
#[derive(Debug)]
pub struct Edge {
    filter: Filter,
    pending: RefCell<HashMap<u32, Held>>,
    next_id: Cell<u32>,
    counters: RefCell<BTreeMap<String, u64>>,
}

impl Edge {
    /// Builds the filter from its configuration JSON.
    ///
    /// # Errors
    ///
    /// [`ConfigError`], whose text names the JSON path of the problem.
    pub fn new(config_json: &str) -> Result<Self, ConfigError> {
        Ok(Edge {
            filter: Filter::from_json(config_json.as_bytes())?,
            pending: RefCell::new(HashMap::new()),
            next_id: Cell::new(1),
            counters: RefCell::new(BTreeMap::new()),
        })
    }

    /// One-line summary of the configuration, for the start-up log.
    pub fn summary(&self) -> String {
        self.filter.config().summary()
    }

    /// A request head (JSON) in, a step (JSON) out.
    ///
    /// # Errors
    ///
    /// [`HostError`] when the JSON is not a request.
    pub fn handle(&self, request_json: &str, world: World<'_>) -> Result<String, HostError> {
        let request: RequestIn =
            serde_json::from_str(request_json).map_err(|e| HostError(format!("request: {e}")))?;
        let head = RequestHead::from(request);
        let outcome = with_env(world, |env| self.filter.on_request(&head, env));
        Ok(self.emit(outcome))
    }

    /// The body a `read_body` step asked for.
    ///
    /// # Errors
    ///
    /// [`HostError`] when `pending` is not a live handle.
    pub fn body(&self, pending: u32, body: &[u8], world: World<'_>) -> Result<String, HostError> {
        let Held::Body(state) = self.take(pending)? else {
            return Err(HostError(format!(
                "pending state {pending} does not wait for a body"
            )));
        };
        let outcome = with_env(world, |env| self.filter.on_body(state, body, env));
        Ok(self.emit(outcome))
    }

    /// The answer to a `callout` step.
    ///
    /// # Errors
    ///
    /// [`HostError`] when `pending` is not a live handle or the JSON is not a callout response.
    pub fn callout_response(
        &self,
        pending: u32,
        response_json: &str,
        body: &[u8],
        world: World<'_>,
    ) -> Result<String, HostError> {
        let response = response_in(response_json, body)?;
        let Held::Callout(state) = self.take(pending)? else {
            return Err(HostError(format!(
                "pending state {pending} does not wait for a callout"
            )));
        };
        let outcome = with_env(world, |env| {
            self.filter.on_callout_response(state, response, env)
        });
        Ok(self.emit(outcome))
    }

    /// What a `stream` step's round read.
    ///
    /// # Errors
    ///
    /// [`HostError`] when `pending` is not a live handle or the JSON is not a stream reply.
    pub fn stream_reply(
        &self,
        pending: u32,
        reply_json: &str,
        data: &[u8],
        world: World<'_>,
    ) -> Result<String, HostError> {
        let reply: StreamReplyIn = serde_json::from_str(reply_json)
            .map_err(|e| HostError(format!("stream reply: {e}")))?;
        let Held::Stream(state) = self.take(pending)? else {
            return Err(HostError(format!(
                "pending state {pending} does not wait for a stream"
            )));
        };
        let reply = StreamReply {
            data: data.to_vec(),
            end: match reply.end {
                StreamEndIn::Open => StreamEnd::Open,
                StreamEndIn::PeerClosed => StreamEnd::PeerClosed,
                StreamEndIn::Failed => StreamEnd::Failed,
            },
        };
        let outcome = with_env(world, |env| self.filter.on_stream_reply(state, reply, env));
        Ok(self.emit(outcome))
    }

    /// Forgets a pending state whose request went away (the client left, the body could not be
    /// read). Unknown handles are ignored.
    pub fn abandon(&self, pending: u32) {
        self.pending.borrow_mut().remove(&pending);
    }

    /// How many pending states are held.
    pub fn pending_count(&self) -> usize {
        self.pending.borrow().len()
    }

    /// The counters so far, as a JSON object `{"sso_login_success.local": 2, ...}`.
    pub fn stats_json(&self) -> String {
        serde_json::to_string(&*self.counters.borrow()).unwrap_or_else(|_| "{}".to_owned())
    }

    fn take(&self, pending: u32) -> Result<Held, HostError> {
        self.pending
            .borrow_mut()
            .remove(&pending)
            .ok_or_else(|| HostError(format!("unknown pending state {pending}")))
    }

    fn keep(&self, state: Held) -> u32 {
        let mut map = self.pending.borrow_mut();
        if map.len() >= MAX_PENDING {
            // Only a host that leaks handles gets here; the oldest handles go first.
            if let Some(oldest) = map.keys().min().copied() {
                map.remove(&oldest);
            }
        }
        let id = self.next_id.get();
        // Zero is never a handle, so a JS `0`/`undefined` mix-up cannot resolve a state.
        self.next_id.set(id.checked_add(1).unwrap_or(1));
        map.insert(id, state);
        id
    }

    fn count(&self, names: &[Counter]) {
        let mut counters = self.counters.borrow_mut();
        for name in names {
            *counters.entry(name.to_string()).or_insert(0) += 1;
        }
    }

    fn emit(&self, outcome: Outcome) -> String {
        self.count(&outcome.counters);
        let step = match outcome.step {
            Step::Continue(edits) => continue_out(edits),
            Step::Respond(r) => StepOut::Respond {
                status: r.status,
                headers: r.headers,
                body: BodyOut::of(r.body),
            },
            Step::ReadBody { wait, limit } => StepOut::ReadBody {
                pending: self.keep(Held::Body(wait)),
                limit,
            },
            Step::Callout(c, wait) => StepOut::Callout {
                pending: self.keep(Held::Callout(wait)),
                callout: callout_out(c),
            },
            Step::Stream(x, wait) => StepOut::Stream {
                pending: self.keep(Held::Stream(wait)),
                stream: StreamOut {
                    host: x.endpoint.host,
                    port: x.endpoint.port,
                    tls: x.endpoint.tls,
                    send_base64: base64::engine::general_purpose::STANDARD.encode(&x.send),
                    read_at_least: x.read_at_least,
                    read_limit: x.read_limit,
                    close: x.close,
                    timeout_ms: x.timeout_ms,
                },
            },
        };
        let out = OutcomeOut {
            step,
            counters: outcome.counters.iter().map(ToString::to_string).collect(),
        };
        serde_json::to_string(&out).unwrap_or_else(|e| {
            // Serialising these plain structs cannot fail; if it ever did, refuse rather than
            // let a request through with edits unapplied.
            log::error!("sso-filter: step not serialisable: {e}");
            r#"{"step":"respond","status":500,"headers":[],"counters":[]}"#.to_owned()
        })
    }
}

/// `Continue` for JS: the `:path` pseudo-header edit becomes the `path` field (JS changes the
/// URL, not a header). Any other pseudo-header edit is one this host cannot carry out, so the
/// request is refused instead of forwarded half-edited.
fn continue_out(edits: Vec<HeaderEdit>) -> StepOut {
    let mut path = None;
    let mut out = Vec::with_capacity(edits.len());
    for edit in edits {
        match edit {
            HeaderEdit::Set(name, value) if name == ":path" => path = Some(value),
            HeaderEdit::Set(name, _) | HeaderEdit::Remove(name) if name.starts_with(':') => {
                log::error!("sso-filter: the edge host cannot edit {name}; refusing the request");
                return StepOut::Respond {
                    status: 500,
                    headers: Vec::new(),
                    body: None,
                };
            }
            HeaderEdit::Set(name, value) => out.push(EditOut::Set { name, value }),
            HeaderEdit::Remove(name) => out.push(EditOut::Remove { name }),
            HeaderEdit::AddResponse(name, value) => out.push(EditOut::AddResponse { name, value }),
        }
    }
    StepOut::Continue { path, edits: out }
}

/// A callout as JS's `fetch()` takes it.
fn callout_out(c: Callout) -> CalloutOut {
    CalloutOut {
        upstream: c.upstream,
        url: c.url,
        method: c.method,
        headers: c.headers,
        body: BodyOut::of(c.body),
        timeout_ms: c.timeout_ms,
        max_response_bytes: READ_CALLOUT_BODY,
    }
}

/// A callout's answer as JS hands it over (header names lower-cased, the body within the
/// bound).
fn response_in(response_json: &str, body: &[u8]) -> Result<CalloutResponse, HostError> {
    let response: CalloutResponseIn = serde_json::from_str(response_json)
        .map_err(|e| HostError(format!("callout response: {e}")))?;
    Ok(CalloutResponse {
        status: response.status,
        headers: response
            .headers
            .into_iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v))
            .collect(),
        body: body
            .get(..READ_CALLOUT_BODY.min(body.len()))
            .unwrap_or_default()
            .to_vec(),
    })
}

fn with_env<T>(world: World<'_>, f: impl FnOnce(&mut Env<'_>) -> T) -> T {
    let mut env = Env {
        now: world.now_ms / 1000,
        now_ms: world.now_ms,
        rng: world.rng,
        cache: world.cache,
        fleet: Default::default(),
    };
    f(&mut env)
}

/// Milliseconds since the epoch from JS's `Date.now()`: whole milliseconds, and 0 for a value
/// that is not a finite non-negative number (the engine then treats every credential as
/// expired or not yet valid, which fails closed).
pub fn millis(now: f64) -> u64 {
    if now.is_finite() && now >= 0.0 {
        // `as` saturates for floats beyond u64::MAX.
        now.floor() as u64
    } else {
        0
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use sso_filter::cache::MemoryCache;
    use sso_filter::random::SystemRandom;

    const NOW: u64 = 1_700_000_000;
    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"; // 32 bytes, base64url
    /// "password", hashed by Python's hashlib (the engine's own test vector).
    const HASH: &str = "$pbkdf2-sha256$i=10000,l=32$MDEyMzQ1Njc4OWFiY2RlZg$0YdT6cDcX5qiDagy0ie+FrM2RN8V8MC0buKrDrj+aAU";
    const SEED_SECRET: &str = "4b117a14-c652-410a-83b2-9839c16e7ae1";
    const SEED_TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZS1zdWJqZWN0IiwiYWJjIjoiMTIzIiwicm9sZXMiOlsic3lzdGVtIGFkbWluIiwiZGF0YSBhZG1pbiIsImRhdGEgYW5hbHlzdCIsImRhdGEgdmlld2VyIiwiYXBpIGFkbWluIl0sImxvZ2luTmFtZSI6ImFsaWNlIn0.PGA9DNa-B_4e4WS-fVG57tvxYe0dlu0r8O_Lw1vEtAQ";

    fn config() -> String {
        json!({
            "base_url": "http://edge.test",
            "public_paths": ["/healthz"],
            "default_method": "local",
            "session": {"keys": [KEY], "secure": false},
            "methods": {
                "local": {"type": "local", "users": [{"login": "admin", "password_hash": HASH, "roles": ["r"]}]},
                "jwt-param": {"type": "jwt", "param": "jwtParam",
                              "verify": {"alg": "HS256", "secret": SEED_SECRET},
                              "insecure_allow_missing_exp": true,
                              "mapping": {"login": "loginName", "roles": "roles"}}
            }
        })
        .to_string()
    }

    struct T {
        edge: Edge,
        cache: MemoryCache,
    }

    impl T {
        fn new() -> Self {
            T {
                edge: Edge::new(&config()).unwrap(),
                cache: MemoryCache::default(),
            }
        }
        fn world(&self) -> World<'_> {
            // SystemRandom is zero-sized and stateless: leaking a box of it allocates nothing.
            World {
                now_ms: NOW * 1000,
                rng: Box::leak(Box::new(SystemRandom)),
                cache: &self.cache,
            }
        }
        fn handle(&self, request: Value) -> Value {
            serde_json::from_str(
                &self
                    .edge
                    .handle(&request.to_string(), self.world())
                    .unwrap(),
            )
            .unwrap()
        }
    }

    fn get(path: &str, headers: Value) -> Value {
        json!({"method": "GET", "path": path, "headers": headers})
    }

    fn set_cookies(step: &Value) -> Vec<String> {
        step["headers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|h| h[0] == "set-cookie")
            .map(|h| h[1].as_str().unwrap().split(';').next().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn config_errors_name_the_json_path() {
        let mut cfg: Value = serde_json::from_str(&config()).unwrap();
        cfg["methods"]["jwt-param"]["verify"]["alg"] = json!("HS257");
        let err = Edge::new(&cfg.to_string()).unwrap_err().to_string();
        assert!(err.contains("methods.jwt-param.verify.alg"), "{err}");
        let err = Edge::new("{").unwrap_err().to_string();
        assert!(!err.is_empty());
    }

    #[test]
    fn api_request_without_session_is_401_json() {
        let t = T::new();
        let step = t.handle(get("/api/x", json!([["accept", "application/json"]])));
        assert_eq!(step["step"], "respond");
        assert_eq!(step["status"], 401);
        let body: Value = serde_json::from_str(step["body"].as_str().unwrap()).unwrap();
        assert_eq!(body["error"], "login_required");
        assert!(step.get("body_base64").is_none());
        assert_eq!(step["counters"], json!(["sso_unauthenticated"]));
    }

    #[test]
    fn token_landing_then_session_forwards_identity_and_strips_forgeries() {
        let t = T::new();
        let landing = t.handle(get(
            &format!("/r?activeAuth=jwt-param&jwtParam={SEED_TOKEN}"),
            json!([]),
        ));
        assert_eq!(landing["status"], 302, "{landing}");
        let cookie = set_cookies(&landing).join("; ");
        assert!(cookie.starts_with("sso_session="), "{cookie}");
        assert_eq!(landing["counters"], json!(["sso_login_success.jwt-param"]));

        let step = t.handle(get(
            "//r/./x?y=1",
            json!([
                ["cookie", format!("{cookie}; theme=dark")],
                ["X_SSO_LOGIN", "mallory"],
                ["x-sso-roles", "root"]
            ]),
        ));
        assert_eq!(step["step"], "continue", "{step}");
        assert_eq!(step["path"], "/r/x?y=1");
        let edits = step["edits"].as_array().unwrap();
        // The forged names are removed as they appear in the request (lower-cased by api.rs).
        assert!(
            edits.contains(&json!({"op": "remove", "name": "x_sso_login"})),
            "{step}"
        );
        assert!(
            edits.contains(&json!({"op": "set", "name": "cookie", "value": "theme=dark"})),
            "{step}"
        );
        assert!(
            edits.contains(&json!({"op": "set", "name": "x-sso-login", "value": "alice"})),
            "{step}"
        );
        assert!(!edits
            .iter()
            .any(|e| e["name"].as_str().is_some_and(|n| n.starts_with(':'))));
    }

    #[test]
    fn public_path_is_forwarded_without_path_edit() {
        let t = T::new();
        let step = t.handle(get("/healthz", json!([["x-sso-login", "mallory"]])));
        assert_eq!(step["step"], "continue");
        assert_eq!(step["path"], Value::Null);
        assert_eq!(
            step["edits"],
            json!([{"op": "remove", "name": "x-sso-login"}])
        );
    }

    #[test]
    fn login_form_post_goes_through_read_body() {
        let t = T::new();
        let page = t.handle(get("/login?rd=%2Fafter", json!([["accept", "text/html"]])));
        assert_eq!(page["status"], 200);
        let html = page["body"].as_str().unwrap();
        let state = html
            .split("name=\"state\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let flow = set_cookies(&page).join("; ");

        let post = json!({"method": "POST", "path": "/login", "headers": [
            ["content-type", "application/x-www-form-urlencoded"], ["cookie", flow]]});
        let step = t.handle(post);
        assert_eq!(step["step"], "read_body", "{step}");
        let pending = u32::try_from(step["pending"].as_u64().unwrap()).unwrap();
        assert!(pending > 0);
        assert!(step["limit"].as_u64().unwrap() >= 1024);
        assert_eq!(t.edge.pending_count(), 1);

        let form = format!("state={state}&username=admin&password=password");
        let out: Value =
            serde_json::from_str(&t.edge.body(pending, form.as_bytes(), t.world()).unwrap())
                .unwrap();
        assert_eq!(out["status"], 303, "{out}");
        assert!(
            out["headers"]
                .as_array()
                .unwrap()
                .contains(&json!(["location", "/after"])),
            "{out}"
        );
        assert!(set_cookies(&out)
            .iter()
            .any(|c| c.starts_with("sso_session=") && c.len() > 20));
        assert_eq!(t.edge.pending_count(), 0);
        // A handle resolves once.
        assert!(t.edge.body(pending, b"", t.world()).is_err());
        assert!(t
            .edge
            .stats_json()
            .contains("\"sso_login_success.local\":1"));
    }

    #[test]
    fn oversized_body_is_413_from_the_engine() {
        let t = T::new();
        let step = t.handle(json!({"method": "POST", "path": "/login",
            "headers": [["content-type", "application/x-www-form-urlencoded"]]}));
        let pending = u32::try_from(step["pending"].as_u64().unwrap()).unwrap();
        let limit = usize::try_from(step["limit"].as_u64().unwrap()).unwrap();
        let out: Value = serde_json::from_str(
            &t.edge
                .body(pending, &vec![b'a'; limit + 1], t.world())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(out["status"], 413, "{out}");
    }

    #[test]
    fn host_errors_are_errors_not_steps() {
        let t = T::new();
        assert!(t.edge.handle("not json", t.world()).is_err());
        assert!(t
            .edge
            .handle(
                r#"{"method":"GET","path":"/","headers":[],"extra":1}"#,
                t.world()
            )
            .is_err());
        assert!(t.edge.body(12345, b"", t.world()).is_err());
        assert!(t
            .edge
            .callout_response(1, r#"{"status":200,"headers":[]}"#, b"", t.world())
            .is_err());
        assert!(t.edge.callout_response(1, "[]", b"", t.world()).is_err());
    }

    #[test]
    fn abandoned_and_bounded_pending_states() {
        let t = T::new();
        let post = json!({"method": "POST", "path": "/login",
            "headers": [["content-type", "application/x-www-form-urlencoded"]]});
        let first = t.handle(post.clone())["pending"].as_u64().unwrap();
        t.edge.abandon(u32::try_from(first).unwrap());
        assert_eq!(t.edge.pending_count(), 0);
        for _ in 0..MAX_PENDING + 5 {
            t.handle(post.clone());
        }
        assert_eq!(t.edge.pending_count(), MAX_PENDING);
    }

    #[test]
    fn bodies_are_text_or_base64() {
        assert_eq!(BodyOut::of(Vec::new()), None);
        assert_eq!(
            BodyOut::of(b"hi".to_vec()),
            Some(BodyOut::Text("hi".into()))
        );
        assert_eq!(
            BodyOut::of(vec![0xff, 0x00]),
            Some(BodyOut::Base64("/wA=".into()))
        );
        let out = OutcomeOut {
            step: StepOut::Respond {
                status: 200,
                headers: vec![],
                body: BodyOut::of(vec![0xff, 0x00]),
            },
            counters: vec![],
        };
        assert_eq!(
            serde_json::to_value(out).unwrap(),
            json!({"step": "respond", "status": 200, "headers": [], "body_base64": "/wA=", "counters": []})
        );
        let out = OutcomeOut {
            step: StepOut::Respond {
                status: 204,
                headers: vec![],
                body: None,
            },
            counters: vec![],
        };
        assert_eq!(
            serde_json::to_value(out).unwrap(),
            json!({"step": "respond", "status": 204, "headers": [], "counters": []})
        );
    }

    #[test]
    fn pseudo_header_edits_other_than_path_refuse() {
        let step = continue_out(vec![HeaderEdit::Set(":authority".into(), "x".into())]);
        assert!(matches!(step, StepOut::Respond { status: 500, .. }));
        let step = continue_out(vec![
            HeaderEdit::Set(":path".into(), "/p".into()),
            HeaderEdit::Remove("a".into()),
        ]);
        match step {
            StepOut::Continue { path, edits } => {
                assert_eq!(path.as_deref(), Some("/p"));
                assert_eq!(edits, vec![EditOut::Remove { name: "a".into() }]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn millis_from_js_time() {
        assert_eq!(millis(1_700_000_000_123.9), 1_700_000_000_123);
        assert_eq!(millis(f64::NAN), 0);
        assert_eq!(millis(-5.0), 0);
        assert_eq!(millis(f64::INFINITY), 0);
    }
}
