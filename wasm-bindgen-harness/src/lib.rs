//! sso-filter for JS edge workers: the engine compiled to `wasm32-unknown-unknown` behind a
//! wasm-bindgen surface. This file is that surface only; the shapes and conversions are in
//! [`api`], and the driving loop (fetch, bodies, responses) is in `worker.mjs`.
//!
//! What the host lends the engine here:
//! - time: the `now` argument of every call, `Date.now()` (milliseconds) in JS;
//! - randomness: `getrandom`'s `js` backend, i.e. `crypto.getRandomValues`;
//! - the shared cache: one [`MemoryCache`] per wasm instance, i.e. per isolate. Workers-style
//!   runtimes run many isolates, so throttling counters and replay caches are per isolate, not
//!   global (the Envoy host shares them per Envoy process). Documented in the README.

#![forbid(unsafe_code)]

pub mod api;

use std::sync::Once;

use sso_filter::cache::MemoryCache;
use sso_filter::random::SystemRandom;
use wasm_bindgen::prelude::*;

use crate::api::{Edge, HostError, World};

thread_local! {
    // Per isolate: wasm has one thread, so this is one map for every filter in the instance.
    static CACHE: MemoryCache = MemoryCache::default();
}

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = log)]
    fn console_log(s: &str);
    #[wasm_bindgen(js_namespace = console, js_name = warn)]
    fn console_warn(s: &str);
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(s: &str);
}

/// The engine's `log` records to the JS console (the runtime's log: `wrangler tail`, Node's
/// stdout/stderr). The engine never logs a token, password or cookie.
struct ConsoleLogger;

impl log::Log for ConsoleLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = record.args().to_string();
        match record.level() {
            log::Level::Error => console_error(&line),
            log::Level::Warn => console_warn(&line),
            _ => console_log(&line),
        }
    }

    fn flush(&self) {}
}

static LOGGER: ConsoleLogger = ConsoleLogger;
static LOGGER_INIT: Once = Once::new();

fn install_logger() {
    LOGGER_INIT.call_once(|| {
        // Fails only if another logger was installed first, which then keeps logging.
        if log::set_logger(&LOGGER).is_ok() {
            log::set_max_level(log::LevelFilter::Info);
        }
    });
}

fn js_error(e: HostError) -> JsError {
    JsError::new(&e.0)
}

/// Runs `f` with the per-isolate cache and the JS random source.
fn in_world<T>(now: f64, f: impl FnOnce(World<'_>) -> T) -> T {
    CACHE.with(|cache| {
        let mut rng = SystemRandom;
        f(World {
            now_ms: api::millis(now),
            rng: &mut rng,
            cache,
        })
    })
}

/// A configured filter. Build it once per configuration and reuse it for every request: it
/// holds the parsed configuration, the memo of verified sessions and the pending states.
#[wasm_bindgen]
pub struct SsoFilter {
    edge: Edge,
}

#[wasm_bindgen]
impl SsoFilter {
    /// Parses the configuration JSON.
    ///
    /// # Errors
    ///
    /// A JS `Error` whose message is the configuration error, naming its JSON path
    /// (`methods.jwt-param.verify.alg: unknown variant ...`).
    #[wasm_bindgen(constructor)]
    pub fn new(config_json: &str) -> Result<SsoFilter, JsError> {
        install_logger();
        Edge::new(config_json)
            .map(|edge| SsoFilter { edge })
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// One line describing the configuration (methods, tenants), for the start-up log.
    pub fn summary(&self) -> String {
        self.edge.summary()
    }

    /// A request head (JSON, see `api.rs`) in, a step (JSON) out.
    ///
    /// # Errors
    ///
    /// A JS `Error` when the request JSON is malformed (a host bug).
    pub fn handle(&self, request_json: &str, now: f64) -> Result<String, JsError> {
        in_world(now, |w| self.edge.handle(request_json, w)).map_err(js_error)
    }

    /// The request body a `read_body` step asked for.
    ///
    /// # Errors
    ///
    /// A JS `Error` when `pending` is not a live handle.
    pub fn body(&self, pending: u32, body: &[u8], now: f64) -> Result<String, JsError> {
        in_world(now, |w| self.edge.body(pending, body, w)).map_err(js_error)
    }

    /// The answer to a `callout` step: `{"status": n | null, "headers": [...]}` and its body.
    ///
    /// # Errors
    ///
    /// A JS `Error` when `pending` is not a live handle or the JSON is malformed.
    #[wasm_bindgen(js_name = calloutResponse)]
    pub fn callout_response(
        &self,
        pending: u32,
        response_json: &str,
        body: &[u8],
        now: f64,
    ) -> Result<String, JsError> {
        in_world(now, |w| {
            self.edge.callout_response(pending, response_json, body, w)
        })
        .map_err(js_error)
    }

    /// What a `stream` step's round read: `{"end": "open" | "peer_closed" | "failed"}` and the
    /// bytes.
    ///
    /// # Errors
    ///
    /// A JS `Error` when `pending` is not a live handle or the JSON is malformed.
    #[wasm_bindgen(js_name = streamReply)]
    pub fn stream_reply(
        &self,
        pending: u32,
        reply_json: &str,
        data: &[u8],
        now: f64,
    ) -> Result<String, JsError> {
        in_world(now, |w| {
            self.edge.stream_reply(pending, reply_json, data, w)
        })
        .map_err(js_error)
    }

    /// The timer (the host's own clock, about every second): `{"callouts": [...],
    /// "counters": [...]}`, callouts to send outside any request (`api/timer.rs`).
    pub fn timer(&self, now: f64) -> String {
        in_world(now, |w| self.edge.timer(w))
    }

    /// The answer to one of the timer's callouts; more callouts, in the timer's shape.
    ///
    /// # Errors
    ///
    /// A JS `Error` when `pending` is not a live timer handle or the JSON is malformed.
    #[wasm_bindgen(js_name = timerResponse)]
    pub fn timer_response(
        &self,
        pending: u32,
        response_json: &str,
        body: &[u8],
        now: f64,
    ) -> Result<String, JsError> {
        in_world(now, |w| {
            self.edge.timer_response(pending, response_json, body, w)
        })
        .map_err(js_error)
    }

    /// Forgets a pending state whose request went away.
    pub fn abandon(&self, pending: u32) {
        self.edge.abandon(pending);
    }

    /// Counters of this filter so far, as a JSON object.
    pub fn stats(&self) -> String {
        self.edge.stats_json()
    }
}
