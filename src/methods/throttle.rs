//! What a password guess costs, for every form method (built-in users and LDAP).
//!
//! Two defences, each bounded:
//! - **Lockout per user and client address.** Failures are counted per (method, user, client
//!   address) in the bounded throttle store, shared by every worker. After `max_failures`
//!   failures within `lockout_seconds` that pair is refused until the window passes, even with
//!   the right password. A guesser from one address is stopped; the user, signing in from
//!   their own address, is not: an attacker cannot aim a lockout at a named user to keep them
//!   out. The price is that an attacker with many addresses gets `max_failures` guesses per
//!   address per window; the password budget below bounds how fast any of them can guess.
//! - **A password budget per worker** ([`PasswordBudget`]): token buckets for all clients
//!   together and per client address. A check beyond the budget is refused at once (429)
//!   without hashing or binding, so unknown-user floods cannot burn a worker's CPU or the
//!   directory. Within the budget known and unknown users cost the same (one full hash).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::bucket::Bucket;
use crate::deny::Deny;
use crate::methods::form::LoginFailure;
use crate::store::{Attempt, Intent, Limits, Stores};

/// The lockout policy: after `max_failures` failures within `lockout` seconds, every attempt
/// for that user from that client address is refused until the window passes.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    /// Failures allowed in one window.
    pub max_failures: u32,
    /// Window length in seconds.
    pub lockout: u64,
}

/// The store item of a user's counter for a method and a client address.
pub fn key(method: &str, login: &str, client: Option<IpAddr>) -> String {
    let client = client.map_or_else(|| "-".to_owned(), |c| c.to_string());
    format!("fail:{method}:{client}:{}", login.to_lowercase())
}

impl Throttle {
    /// The failures recorded so far, or the refusal when the pair is locked out.
    ///
    /// # Errors
    ///
    /// [`LoginFailure::Throttled`] or [`LoginFailure::Unavailable`] (the store failed: closed).
    pub fn check(&self, stores: &Stores<'_>, key: &str, now: u64) -> Result<u32, LoginFailure> {
        let (failures, _) = stores
            .failures(key, now)
            .map_err(|_| LoginFailure::Unavailable)?;
        // The store forgets a counter when its window ends, so a live one is in its window.
        if failures >= self.max_failures {
            return Err(LoginFailure::Throttled);
        }
        Ok(failures)
    }

    /// Counts one failure of `method` (here, and in the fleet store when there is one).
    ///
    /// # Errors
    ///
    /// [`LoginFailure::Unavailable`] when the store fails.
    pub fn fail(
        &self,
        stores: &Stores<'_>,
        method: &str,
        key: &str,
        now: u64,
    ) -> Result<(), LoginFailure> {
        stores
            .fail(key, self.lockout, now)
            .map_err(|_| LoginFailure::Unavailable)?;
        stores.leave(self.tally(method, key, Attempt::Failed));
        Ok(())
    }

    /// Clears the counter after a success (best effort). With a fleet store, the success
    /// still stands only if the pair is not locked out across the fleet (checked before the
    /// session leaves), and the fleet's counter is cleared then.
    pub fn clear(&self, stores: &Stores<'_>, method: &str, key: &str, failures: u32, now: u64) {
        if failures > 0 && stores.clear_failures(key, now).is_err() {
            // A stale counter only slows the next failure.
            log::info!("sso-filter: could not clear the throttle counter");
        }
        stores.leave(self.tally(method, key, Attempt::Succeeded));
    }

    /// The fleet store's part of a password check.
    fn tally(&self, method: &str, key: &str, attempt: Attempt) -> Intent {
        Intent::Tally {
            item: key.to_owned(),
            max: self.max_failures,
            window: self.lockout,
            attempt,
            deny: Deny::Throttled {
                method: method.to_owned(),
            },
        }
    }
}

/// Client buckets kept per worker at most; when full, the idle ones go first, else all (a
/// client whose bucket is dropped starts again with a full burst: bounded by `password_burst`
/// overall anyway).
const MAX_CLIENTS: usize = 4096;

/// The password budget of one worker: token buckets, in thousandths of a check.
#[derive(Debug, Default)]
pub struct PasswordBudget {
    state: Mutex<BudgetState>,
}

#[derive(Debug, Default)]
struct BudgetState {
    all: Bucket,
    clients: HashMap<Option<IpAddr>, Bucket>,
}

impl PasswordBudget {
    /// Takes one password check for `client` at `now_ms`; false when the budget of all clients
    /// or of this client is spent (answer 429 without checking anything).
    pub fn take(&self, limits: &Limits, client: Option<IpAddr>, now_ms: u64) -> bool {
        let Ok(mut state) = self.state.lock() else {
            // A poisoned lock means a panic elsewhere: refuse (fail closed).
            return false;
        };
        // Rates as thousandths of a check per millisecond: n/s = n milli/ms; n/min = n/60.
        let all_rate = u64::from(limits.password_checks_per_second);
        let all_burst = u64::from(limits.password_burst);
        let client_rate = u64::from(limits.client_password_checks_per_minute);
        let client_burst = u64::from(limits.client_password_burst);
        if state.clients.len() >= MAX_CLIENTS && !state.clients.contains_key(&client) {
            state
                .clients
                .retain(|_, b| !b.is_full(now_ms, client_rate, 60, client_burst));
            if state.clients.len() >= MAX_CLIENTS {
                state.clients.clear();
            }
        }
        // The client's bucket first, so one client's flood does not drain the shared one.
        let mut mine = state.clients.get(&client).copied().unwrap_or_default();
        let ok_client = mine.take(now_ms, client_rate, 60, client_burst);
        state.clients.insert(client, mine);
        if !ok_client {
            return false;
        }
        state.all.take(now_ms, all_rate, 1, all_burst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            password_checks_per_second: 4,
            password_burst: 8,
            client_password_checks_per_minute: 10,
            client_password_burst: 5,
            ..Limits::default()
        }
    }

    #[test]
    fn a_client_gets_its_burst_then_its_rate_and_others_are_not_starved() {
        let limits = limits();
        let b = PasswordBudget::default();
        let a: Option<IpAddr> = "10.0.0.1".parse().ok();
        let c: Option<IpAddr> = "10.0.0.2".parse().ok();
        let t = 1_000_000;
        let granted = (0..50).filter(|_| b.take(&limits, a, t)).count();
        assert_eq!(granted, limits.client_password_burst as usize);
        // Another address still gets through at the same instant.
        assert!(b.take(&limits, c, t));
        // Six seconds later the first address has earned one more check (10 per minute).
        assert!(b.take(&limits, a, t + 6_000));
        assert!(!b.take(&limits, a, t + 6_001));
    }

    #[test]
    fn all_clients_together_are_bounded() {
        let limits = limits();
        let b = PasswordBudget::default();
        let t = 5_000_000;
        let granted = (0..200u32)
            .filter(|i| {
                let ip: IpAddr = std::net::Ipv4Addr::from(0x0a00_0000 + i).into();
                b.take(&limits, Some(ip), t)
            })
            .count();
        assert_eq!(granted, limits.password_burst as usize);
        // One second later: password_checks_per_second more.
        let later = (200..400u32)
            .filter(|i| {
                let ip: IpAddr = std::net::Ipv4Addr::from(0x0a00_0000 + i).into();
                b.take(&limits, Some(ip), t + 1000)
            })
            .count();
        assert_eq!(later, limits.password_checks_per_second as usize);
    }

    #[test]
    fn the_client_map_stays_bounded() {
        let limits = Limits::default();
        let b = PasswordBudget::default();
        for i in 0..(MAX_CLIENTS as u32 * 3) {
            let ip: IpAddr = std::net::Ipv4Addr::from(i).into();
            b.take(&limits, Some(ip), 1_000 + u64::from(i));
        }
        assert!(b.state.lock().unwrap().clients.len() <= MAX_CLIENTS);
    }
}
