//! The organisation sync on the host's timer (`org.rs` says what it keeps and why).
//!
//! ```text
//! tick ─ due? (an atomic read) ─ claim the lease in {key}:meta (compare-and-swap)
//!   └─> [ExpectToken] ─> ExpectAnswer(call) ─> … more calls (children, pages) …
//!         ^ token refused (once) │  every answer renews the lease
//!         └──────────────────────┘  the end: {key}:tree, then {key}:meta (at = now)
//! ```
//!
//! One worker fetches; the others see the lease and wait. Calls run one after the other, each
//! with the method's `timeout_ms`. A failure (an error code, a timeout, a tree over its
//! bounds, a cache that cannot be written) is logged with its cause and counted
//! (`sso_org_sync_failure.<method>`); the previous tree stays until it expires and the next
//! try comes after `RETRY_SECONDS` (at most the period).

use std::collections::VecDeque;
use std::fmt;

use super::org::{Claim, OverCap, TreeBuilder, TreeCall, LEASE_SECONDS, MAX_DEPARTMENTS};
use super::{cached_token, forget_token, is_token_rejection, store_token, Provider};
use crate::counter::Counter;
use crate::http::{Background, CalloutResponse};
use crate::idp::{answered, IdpFailure};
use crate::login::{Env, Here};
use crate::random;
use crate::wait::state_as;

/// The most calls one fetch makes (DingTalk asks once per department; pages of 50 for
/// Feishu): past it the provider keeps saying "more", and the fetch stops.
const MAX_CALLS: u32 = MAX_DEPARTMENTS as u32 + 100;

/// A tree fetch in progress: the wait state of its callouts.
#[derive(Debug)]
pub(super) struct Walk {
    owner: u64,
    call: TreeCall,
    queue: VecDeque<TreeCall>,
    tree: TreeBuilder,
    phase: Phase,
    refreshed: bool,
    sent_ms: u64,
    calls: u32,
}

/// What the callout in flight is.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// The app token the calls need.
    ExpectToken,
    /// A tree call.
    ExpectAnswer,
}

/// Why a fetch failed, for the log.
enum Failed {
    Idp(IdpFailure),
    Over(OverCap),
    Calls,
    Cache,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::Idp(failure) => f.write_str(&failure.reason()),
            Failed::Over(OverCap::Departments) => {
                write!(f, "more than {MAX_DEPARTMENTS} departments")
            }
            Failed::Over(OverCap::Bytes) => f.write_str("more than 2 MiB of ids and names"),
            Failed::Calls => write!(f, "more than {MAX_CALLS} calls"),
            Failed::Cache => f.write_str("the shared cache could not be written"),
        }
    }
}

/// The timer: starts a fetch when one is due and this worker gets the lease.
pub(super) fn tick<P: Provider>(p: &P, here: &Here<'_>, env: &mut Env<'_>) -> Background {
    let Some((sync, _)) = p.org_sync() else {
        return Background::default();
    };
    if !sync.due(env.now) {
        return Background::default();
    }
    let owner = match random::bytes(env.rng, 8) {
        Ok(b) => b.iter().fold(0u64, |n, x| (n << 8) | u64::from(*x)),
        Err(_) => {
            sync.check_at(sync.retry_at(env.now));
            return Background::default();
        }
    };
    match sync.claim(env.cache, env.now, owner) {
        Ok(Claim::Wait(at)) => {
            sync.check_at(at);
            Background::default()
        }
        Ok(Claim::Ours) => {
            sync.check_at(env.now.saturating_add(LEASE_SECONDS));
            let walk = Walk {
                owner,
                call: TreeCall::default(),
                queue: VecDeque::new(),
                tree: TreeBuilder::default(),
                phase: Phase::ExpectAnswer,
                refreshed: false,
                sent_ms: 0,
                calls: 0,
            };
            send(p, here, walk, env)
        }
        Err(e) => {
            log::warn!(
                "sso-filter: method={} organisation sync not started: {e}",
                here.name()
            );
            sync.check_at(sync.retry_at(env.now));
            Background::default()
        }
    }
}

/// Sends the walk's call, fetching the app token first when the cache has none fresh.
fn send<P: Provider>(p: &P, here: &Here<'_>, mut walk: Walk, env: &mut Env<'_>) -> Background {
    let Some((_, source)) = p.org_sync() else {
        return Background::default();
    };
    let kind = source.tree_token();
    walk.sent_ms = env.now_ms;
    match cached_token(env.cache, &p.token_key(kind), env.now, p.refresh_margin()) {
        Some(token) => {
            walk.phase = Phase::ExpectAnswer;
            let callout = source.tree_request(&walk.call, &token);
            here.timer_call_out(callout, walk)
        }
        None => {
            walk.phase = Phase::ExpectToken;
            here.timer_call_out(p.token_request(kind, env.now_ms), walk)
        }
    }
}

/// A callout of the fetch answered.
pub(super) fn resume<P: Provider>(
    p: &P,
    here: &Here<'_>,
    state: Box<dyn std::any::Any + Send>,
    response: &CalloutResponse,
    env: &mut Env<'_>,
) -> Background {
    let (Some(mut walk), Some((_, source))) = (state_as::<Walk>(state), p.org_sync()) else {
        log::error!(
            "sso-filter: method={} cannot resume this timer wait",
            here.name()
        );
        return Background::default();
    };
    if let Err(failure) = answered(response, walk.sent_ms, p.timeout_ms(), env.now_ms) {
        return fail(p, here, walk, &Failed::Idp(failure), env);
    }
    let kind = source.tree_token();
    match walk.phase {
        Phase::ExpectToken => match p.token_answer(kind, response) {
            Ok(fetched) => {
                store_token(env.cache, &p.token_key(kind), &fetched, env.now);
                walk.phase = Phase::ExpectAnswer;
                walk.sent_ms = env.now_ms;
                let callout = source.tree_request(&walk.call, &fetched.token);
                here.timer_call_out(callout, walk)
            }
            Err(failure) => fail(p, here, walk, &Failed::Idp(failure), env),
        },
        Phase::ExpectAnswer => match source.tree_answer(&walk.call, response) {
            Ok(part) => {
                walk.calls = walk.calls.saturating_add(1);
                if let Err(over) = walk.tree.add(part.depts, source.tree_root()) {
                    return fail(p, here, walk, &Failed::Over(over), env);
                }
                walk.queue.extend(part.next);
                next(p, here, walk, env)
            }
            Err(failure) if is_token_rejection(&failure) && !walk.refreshed => {
                forget_token(env.cache, &p.token_key(kind));
                walk.refreshed = true;
                send(p, here, walk, env)
            }
            Err(failure) => fail(p, here, walk, &Failed::Idp(failure), env),
        },
    }
}

/// After an answer: renew the lease, then the next call, or store the tree.
fn next<P: Provider>(p: &P, here: &Here<'_>, mut walk: Walk, env: &mut Env<'_>) -> Background {
    let Some((sync, _)) = p.org_sync() else {
        return Background::default();
    };
    match sync.renew(env.cache, walk.owner, env.now) {
        Ok(true) => {}
        Ok(false) => {
            // This worker's lease ran out and another took the fetch over.
            log::info!(
                "sso-filter: method={} organisation sync taken over by another worker",
                here.name()
            );
            return Background::default();
        }
        Err(_) => return fail(p, here, walk, &Failed::Cache, env),
    }
    sync.check_at(env.now.saturating_add(LEASE_SECONDS));
    if let Some(call) = walk.queue.pop_front() {
        if walk.calls >= MAX_CALLS {
            return fail(p, here, walk, &Failed::Calls, env);
        }
        walk.call = call;
        walk.refreshed = false;
        return send(p, here, walk, env);
    }
    let (departments, calls) = (walk.tree.len(), walk.calls);
    if sync
        .store(env.cache, walk.owner, walk.tree, env.now)
        .is_err()
    {
        log::warn!(
            "sso-filter: method={} organisation sync failed: {}; logins ask per login",
            here.name(),
            Failed::Cache
        );
        sync.check_at(sync.retry_at(env.now));
        return Background::default().count(Counter::OrgSync(here.label(), false));
    }
    sync.check_at(env.now.saturating_add(sync.period()));
    log::info!(
        "sso-filter: method={} organisation synced: {departments} departments in {calls} calls; \
         next in {}s",
        here.name(),
        sync.period()
    );
    Background::default().count(Counter::OrgSync(here.label(), true))
}

/// A failed fetch: logged with its cause and counted; the previous tree stays until it
/// expires, and nobody tries again before the retry time.
fn fail<P: Provider>(
    p: &P,
    here: &Here<'_>,
    walk: Walk,
    why: &Failed,
    env: &mut Env<'_>,
) -> Background {
    let Some((sync, _)) = p.org_sync() else {
        return Background::default();
    };
    let retry = sync.retry_at(env.now);
    log::warn!(
        "sso-filter: method={} organisation sync failed after {} calls: {why}; the previous \
         department tree (if any) is used until it expires, else logins ask {} per login; \
         next try in {}s",
        here.name(),
        walk.calls,
        P::LABEL,
        retry.saturating_sub(env.now)
    );
    if sync.give_up(env.cache, walk.owner, env.now).is_err() {
        log::info!(
            "sso-filter: method={} could not record the failed sync",
            here.name()
        );
    }
    sync.check_at(retry);
    Background::default().count(Counter::OrgSync(here.label(), false))
}
