//! The timer input at the edge: JS calls `timer(now)` on its own clock (the Node server's
//! interval, a Workers cron's `scheduled` handler, or at most once a second from requests),
//! sends the callouts it lists with `fetch()` outside any request, and hands each answer to
//! `timer_response(pending, ...)`, which may list more. The engine decides what is due (the
//! organisation sync); a timer with nothing due answers `{"callouts": []}`.
//!
//! Shape out (both calls): `{"callouts": [{"pending": 7, "callout": {...}}], "counters": [...]}`
//! with the `callout` object of a request's `callout` step.

use serde::Serialize;
use sso_filter::Background;

use super::{callout_out, response_in, with_env, CalloutOut, Edge, Held, HostError, World};

/// What a timer input asks JS to do.
#[derive(Debug, Serialize)]
pub struct TimerOut {
    /// Callouts to send, each answered with `timer_response(pending, ...)`.
    pub callouts: Vec<TimerCalloutOut>,
    /// Counter names to increment by one (the Edge counts them too, for `stats`).
    pub counters: Vec<String>,
}

/// One callout of a timer.
#[derive(Debug, Serialize)]
pub struct TimerCalloutOut {
    /// Handle of the pending state.
    pub pending: u32,
    /// The request to send.
    pub callout: CalloutOut,
}

impl Edge {
    /// The timer fired: the engine's background work that is due.
    pub fn timer(&self, world: World<'_>) -> String {
        let background = with_env(world, |env| self.filter.on_timer(env));
        self.emit_background(background)
    }

    /// The answer to one of a timer's callouts.
    ///
    /// # Errors
    ///
    /// [`HostError`] when `pending` is not a live timer handle or the JSON is not a callout
    /// response.
    pub fn timer_response(
        &self,
        pending: u32,
        response_json: &str,
        body: &[u8],
        world: World<'_>,
    ) -> Result<String, HostError> {
        let response = response_in(response_json, body)?;
        let Held::Timer(state) = self.take(pending)? else {
            return Err(HostError(format!(
                "pending state {pending} does not wait for a timer callout"
            )));
        };
        let background = with_env(world, |env| {
            self.filter.on_timer_response(state, response, env)
        });
        Ok(self.emit_background(background))
    }

    fn emit_background(&self, background: Background) -> String {
        self.count(&background.counters);
        let out = TimerOut {
            callouts: background
                .callouts
                .into_iter()
                .map(|(c, wait)| TimerCalloutOut {
                    pending: self.keep(Held::Timer(wait)),
                    callout: callout_out(c),
                })
                .collect(),
            counters: background
                .counters
                .iter()
                .map(ToString::to_string)
                .collect(),
        };
        serde_json::to_string(&out).unwrap_or_else(|e| {
            log::error!("sso-filter: timer step not serialisable: {e}");
            r#"{"callouts":[],"counters":[]}"#.to_owned()
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use serde_json::{json, Value};
    use sso_filter::cache::MemoryCache;
    use sso_filter::random::SystemRandom;

    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

    fn edge(sync_minutes: u64) -> Edge {
        let config = json!({
            "base_url": "http://edge.test",
            "session": {"keys": [KEY], "secure": false},
            "methods": {"wecom": {"type": "wecom", "corp_id": "ww1", "agent_id": 1, "secret": "s",
                "api_base": "http://127.0.0.1:9", "org_from_departments": true,
                "sync_minutes": sync_minutes}}
        });
        Edge::new(&config.to_string()).unwrap()
    }

    fn run(edge: &Edge, cache: &MemoryCache, f: impl FnOnce(&Edge, World<'_>) -> String) -> Value {
        let mut rng = SystemRandom;
        let world = World {
            now_ms: 1_700_000_000_000,
            rng: &mut rng,
            cache,
        };
        serde_json::from_str(&f(edge, world)).unwrap()
    }

    #[test]
    fn the_timer_lists_callouts_and_takes_their_answers() {
        let cache = MemoryCache::default();
        let e = edge(60);
        let out = run(&e, &cache, |e, w| e.timer(w));
        let pending = out["callouts"][0]["pending"].as_u64().unwrap() as u32;
        assert!(out["callouts"][0]["callout"]["url"]
            .as_str()
            .unwrap()
            .contains("/cgi-bin/gettoken"));
        // The token refused: the sync ends, counted as failed.
        let token = br#"{"errcode":40001,"errmsg":"invalid credential"}"#;
        let out = run(&e, &cache, |e, w| {
            e.timer_response(pending, r#"{"status":200,"headers":[]}"#, token, w)
                .unwrap()
        });
        assert_eq!(
            out,
            json!({"callouts": [], "counters": ["sso_org_sync_failure.wecom"]})
        );
        assert!(e.stats_json().contains("sso_org_sync_failure.wecom"));
        assert_eq!(e.pending_count(), 0);
        // The handle is used up; a request's input cannot resolve a timer's state either.
        let again = run(&e, &cache, |e, w| e.timer(w));
        assert_eq!(again["callouts"], json!([]), "the retry waits");
        let mut rng = SystemRandom;
        let world = World {
            now_ms: 1_700_000_000_000,
            rng: &mut rng,
            cache: &cache,
        };
        assert!(e
            .timer_response(pending, r#"{"status":200}"#, b"", world)
            .is_err());
    }

    #[test]
    fn nothing_due_lists_nothing() {
        let cache = MemoryCache::default();
        let out = run(&edge(0), &cache, |e, w| e.timer(w));
        assert_eq!(out, json!({"callouts": [], "counters": []}));
    }
}
