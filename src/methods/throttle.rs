//! Failed-attempt throttling for the login form, shared by every form method (built-in users
//! and LDAP): per user, counted in the shared cache so every worker sees the same count.

use crate::cache::{self, SharedCache};
use crate::methods::local::LoginFailure;

/// The policy: after `max_failures` failures within `lockout` seconds, every attempt for that
/// user is refused until the window passes, even with the right password.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    /// Failures allowed in one window.
    pub max_failures: u32,
    /// Window length in seconds.
    pub lockout: u64,
}

/// The cache key of a user's counter for a method.
pub fn key(method: &str, login: &str) -> String {
    format!("sso:throttle:{method}:{}", login.to_lowercase())
}

impl Throttle {
    /// The failures recorded so far, or the refusal when the user is locked out.
    ///
    /// # Errors
    ///
    /// [`LoginFailure::Throttled`] or [`LoginFailure::Unavailable`] (the store failed: closed).
    pub fn check(&self, cache: &dyn SharedCache, key: &str, now: u64) -> Result<u32, LoginFailure> {
        let (failures, since) = match cache.get(key) {
            Ok(v) => v.map(|(bytes, _)| parse_counter(&bytes)).unwrap_or((0, 0)),
            Err(_) => return Err(LoginFailure::Unavailable),
        };
        let window_open = now < since.saturating_add(self.lockout);
        if window_open && failures >= self.max_failures {
            return Err(LoginFailure::Throttled);
        }
        Ok(failures)
    }

    /// Counts one failure.
    ///
    /// # Errors
    ///
    /// [`LoginFailure::Unavailable`] when the store fails.
    pub fn fail(&self, cache: &dyn SharedCache, key: &str, now: u64) -> Result<(), LoginFailure> {
        let lockout = self.lockout;
        cache::update(cache, key, |current| {
            let (n, start) = current.map(parse_counter).unwrap_or((0, 0));
            let (n, start) = if now < start.saturating_add(lockout) {
                (n.saturating_add(1), start)
            } else {
                (1, now)
            };
            (format!("{n}:{start}").into_bytes(), ())
        })
        .map_err(|_| LoginFailure::Unavailable)
    }

    /// Clears the counter after a success (best effort).
    pub fn clear(&self, cache: &dyn SharedCache, key: &str, failures: u32) {
        if failures > 0 && cache.set(key, b"0:0", None).is_err() {
            // A stale counter only slows the next failure.
            log::info!("sso-filter: could not clear the throttle counter");
        }
    }
}

fn parse_counter(bytes: &[u8]) -> (u32, u64) {
    let text = std::str::from_utf8(bytes).unwrap_or("");
    let mut parts = text.split(':');
    let n = parts.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let since = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    (n, since)
}
