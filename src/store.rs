//! Bounded stores on the process-wide cache: single-use lists (one-time `jti`, SAML assertion
//! IDs, used login flows), logged-out lists (CAS and SAML single logout), throttle counters and
//! refresh locks.
//!
//! proxy-wasm shared data can never delete a key, so a store that used one key per item would
//! grow with every item an anonymous client makes up. Instead each store has a fixed key space:
//! `slots` keys (`sso:st:<store>:<n>`), each holding at most [`PER_SLOT`] entries that are
//! overwritten in place. An item's slot and its fingerprint come from a keyed hash (HMAC-SHA-256
//! under a key derived from the session keys), so a client cannot aim its items at the slot of
//! someone else's, and the stored bytes carry no request text. The most memory a store can
//! reach is `slots × (key + PER_SLOT × entry)`: see [`StoreSpec::max_bytes`].
//!
//! When a slot is full of live entries, what happens depends on the store:
//! - single-use lists never evict a live entry (that would let a replay through): the new item
//!   is refused ([`StoreError::Full`]) and the request fails closed;
//! - the other stores evict the entry that matters least (see [`Evict`]).

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use crate::cache::{self, CacheError, SharedCache};
use crate::deny::Deny;
use crate::http::RequestHead;

pub mod fleet;

pub use fleet::{Attempt, Fleet, Intent, StoreConfig};

/// Entries per slot.
pub const PER_SLOT: usize = 8;
/// The largest value an entry carries.
pub const MAX_VALUE: usize = 32;
/// Fingerprint bytes per entry.
const FP: usize = 16;

/// One store's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreSpec {
    /// The store's name in its keys and in the `sso_store_full.<name>` counter.
    pub name: &'static str,
    /// Number of keys (slots); each holds up to [`PER_SLOT`] entries.
    pub slots: u32,
}

impl StoreSpec {
    /// The most bytes of keys and values the store can occupy in the shared cache (the
    /// host's own per-key overhead comes on top: about 100 bytes per key in Envoy).
    pub fn max_bytes(&self) -> u64 {
        let key = 10 + self.name.len() as u64 + 10;
        let entry = (FP + 8 + 1 + MAX_VALUE) as u64;
        u64::from(self.slots) * (key + PER_SLOT as u64 * entry)
    }
}

/// Bounds on what the filter keeps and spends (`limits`). Stores hold
/// [`PER_SLOT`] entries per slot; the password budget is per worker (per Envoy
/// worker thread, per edge isolate).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Slots of the single-use list (one-time `jti`, SAML assertion IDs).
    pub single_use_slots: u32,
    /// Slots of the used-flow list (login flows whose callback was handled).
    pub used_flow_slots: u32,
    /// Slots of the logged-out list (CAS and SAML single logout).
    pub logged_out_slots: u32,
    /// Slots of the failed-login counters (per user and client address).
    pub throttle_slots: u32,
    /// Slots of the access-token refresh locks.
    pub lock_slots: u32,
    /// Password checks (hashes, directory binds) per second per worker, all clients together.
    pub password_checks_per_second: u32,
    /// How many of those may run back to back before the rate applies.
    pub password_burst: u32,
    /// Password checks per minute per client address (per worker).
    pub client_password_checks_per_minute: u32,
    /// How many of those one client may run back to back.
    pub client_password_burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            single_use_slots: 16_384,
            used_flow_slots: 16_384,
            logged_out_slots: 4_096,
            throttle_slots: 4_096,
            lock_slots: 1_024,
            password_checks_per_second: 5,
            password_burst: 10,
            client_password_checks_per_minute: 30,
            client_password_burst: 5,
        }
    }
}

impl Limits {
    /// Checks the ranges: `Err((json path, reason))`.
    ///
    /// # Errors
    ///
    /// The first field out of range.
    pub fn check(&self) -> Result<(), (String, &'static str)> {
        let slots = [
            ("single_use_slots", self.single_use_slots),
            ("used_flow_slots", self.used_flow_slots),
            ("logged_out_slots", self.logged_out_slots),
            ("throttle_slots", self.throttle_slots),
            ("lock_slots", self.lock_slots),
        ];
        for (name, n) in slots {
            if !(16..=1_048_576).contains(&n) {
                return Err((format!("limits.{name}"), "must be between 16 and 1048576"));
            }
        }
        let rates = [
            (
                "password_checks_per_second",
                self.password_checks_per_second,
            ),
            ("password_burst", self.password_burst),
            (
                "client_password_checks_per_minute",
                self.client_password_checks_per_minute,
            ),
            ("client_password_burst", self.client_password_burst),
        ];
        for (name, n) in rates {
            if !(1..=10_000).contains(&n) {
                return Err((format!("limits.{name}"), "must be between 1 and 10000"));
            }
        }
        Ok(())
    }

    /// The single-use list's shape.
    pub fn single_use(&self) -> StoreSpec {
        StoreSpec {
            name: "once",
            slots: self.single_use_slots,
        }
    }

    /// The used-flow list's shape.
    pub fn used_flows(&self) -> StoreSpec {
        StoreSpec {
            name: "flow",
            slots: self.used_flow_slots,
        }
    }

    /// The logged-out list's shape.
    pub fn logged_out(&self) -> StoreSpec {
        StoreSpec {
            name: "out",
            slots: self.logged_out_slots,
        }
    }

    /// The failed-login counters' shape.
    pub fn throttle(&self) -> StoreSpec {
        StoreSpec {
            name: "thr",
            slots: self.throttle_slots,
        }
    }

    /// The refresh locks' shape.
    pub fn locks(&self) -> StoreSpec {
        StoreSpec {
            name: "lock",
            slots: self.lock_slots,
        }
    }
}

/// The shared-data key of the placement secret.
const SEED_KEY: &str = "sso:st:seed";

/// The placer every worker of this process uses: its secret lives in the cache itself. The
/// Envoy host makes it when the main thread's VM is configured, before any worker serves
/// (proxy-wasm shared data cannot create a key only if it is absent, so two workers making it
/// at once could each place an item under its own secret, and the loser's would be lost);
/// a host with one thread per isolate makes it at first use. Read on every use.
///
/// # Errors
///
/// [`StoreError::Unavailable`] when the cache or the randomness fails (callers fail closed).
pub fn placer(
    cache: &dyn SharedCache,
    rng: &mut dyn crate::random::Random,
) -> Result<Placer, StoreError> {
    if let Some((seed, _)) = cache.get(SEED_KEY)? {
        if seed.len() == 32 {
            return Ok(Placer::new(&seed));
        }
    }
    let seed = crate::random::bytes(rng, 32).map_err(|_| StoreError::Unavailable)?;
    cache.set(SEED_KEY, &seed, None)?;
    match cache.get(SEED_KEY)? {
        Some((stored, _)) if stored.len() == 32 => Ok(Placer::new(&stored)),
        _ => Err(StoreError::Unavailable),
    }
}

/// Which entry a full slot gives up for a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evict {
    /// None: the new item is refused (single-use lists).
    Never,
    /// The entry that expires first (logged-out lists, locks).
    SoonestExpiry,
    /// The entry whose value, read as a big-endian counter in its first four bytes, is
    /// smallest; ties go to the one that expires first (throttle counters: a flood of
    /// one-failure entries cannot push out the counter of an account under attack).
    SmallestCount,
}

/// A store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The item's slot is full of live entries that may not be evicted.
    Full,
    /// The cache could not be read or written.
    Unavailable,
}

impl From<CacheError> for StoreError {
    fn from(_: CacheError) -> Self {
        StoreError::Unavailable
    }
}

impl From<StoreError> for Deny {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Full => Deny::StoreFull("once"),
            StoreError::Unavailable => Deny::Unavailable("shared_data"),
        }
    }
}

/// The keyed hash that places items: built once per configuration.
#[derive(Clone)]
pub struct Placer {
    key: [u8; 32],
}

impl std::fmt::Debug for Placer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Placer(<redacted>)")
    }
}

impl Placer {
    /// A placer whose key is derived from secret material every worker (and every replica)
    /// shares, so all of them put an item in the same slot.
    pub fn new(secret: &[u8]) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        mac.update(b"sso-filter bounded store placement v1");
        let mut key = [0u8; 32];
        key.copy_from_slice(&mac.finalize().into_bytes());
        Placer { key }
    }

    /// The slot key and the fingerprint of an item.
    fn place(&self, spec: &StoreSpec, item: &str) -> (String, [u8; FP]) {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| <Hmac<Sha256> as Mac>::new(&Default::default()));
        mac.update(spec.name.as_bytes());
        mac.update(&[0]);
        mac.update(item.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut fp = [0u8; FP];
        fp.copy_from_slice(digest.get(..FP).unwrap_or(&[0u8; FP]));
        let mut n = [0u8; 4];
        n.copy_from_slice(digest.get(FP..FP + 4).unwrap_or(&[0u8; 4]));
        let slot = u32::from_be_bytes(n) % spec.slots.max(1);
        (format!("sso:st:{}:{slot}", spec.name), fp)
    }

    /// Reads an item's live value.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the cache fails (callers fail closed).
    pub fn get(
        &self,
        cache: &dyn SharedCache,
        spec: &StoreSpec,
        item: &str,
        now: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let (key, fp) = self.place(spec, item);
        let Some((bytes, _)) = cache.get(&key)? else {
            return Ok(None);
        };
        Ok(decode(&bytes)
            .into_iter()
            .find(|e| e.fp == fp && e.expires > now)
            .map(|e| e.value))
    }

    /// Reads, changes and writes an item's value. `change` sees the live value (or `None`)
    /// and returns the new value and its expiry, or `None` to leave the store as it is; its
    /// second result is handed back.
    ///
    /// # Errors
    ///
    /// [`StoreError::Full`] when the item is new, its slot is full and `evict` allows no
    /// eviction; [`StoreError::Unavailable`] when the cache fails.
    pub fn update<T>(
        &self,
        cache: &dyn SharedCache,
        spec: &StoreSpec,
        item: &str,
        now: u64,
        evict: Evict,
        mut change: impl FnMut(Option<&[u8]>) -> (Option<(Vec<u8>, u64)>, T),
    ) -> Result<T, StoreError> {
        let (key, fp) = self.place(spec, item);
        let mut full = false;
        let result = cache::update(cache, &key, |current| {
            full = false;
            let mut entries: Vec<Entry> = current
                .map(decode)
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.expires > now)
                .collect();
            let at = entries.iter().position(|e| e.fp == fp);
            let (new, out) = change(at.and_then(|i| entries.get(i)).map(|e| e.value.as_slice()));
            if let Some((mut value, expires)) = new {
                value.truncate(MAX_VALUE);
                match at {
                    Some(i) => {
                        if let Some(e) = entries.get_mut(i) {
                            e.value = value;
                            e.expires = expires;
                        }
                    }
                    None => {
                        if entries.len() >= PER_SLOT && !make_room(&mut entries, evict) {
                            full = true;
                        } else {
                            entries.push(Entry { fp, expires, value });
                        }
                    }
                }
            }
            (encode(&entries), out)
        })?;
        if full {
            return Err(StoreError::Full);
        }
        Ok(result)
    }

    /// Records a single-use item until `expires`. `Ok(true)`: first use; `Ok(false)`: seen.
    ///
    /// # Errors
    ///
    /// [`StoreError::Full`] (refuse the request: never evict a live single-use entry) or
    /// [`StoreError::Unavailable`].
    pub fn use_once(
        &self,
        cache: &dyn SharedCache,
        spec: &StoreSpec,
        item: &str,
        expires: u64,
        now: u64,
    ) -> Result<bool, StoreError> {
        self.first_use(cache, spec, item, expires, now, Evict::Never)
    }

    /// Records `item` until `expires` if it is not there yet: `Ok(true)` when this call put it
    /// there, `Ok(false)` when it was there already.
    ///
    /// # Errors
    ///
    /// [`StoreError::Full`] (with [`Evict::Never`]) or [`StoreError::Unavailable`].
    pub fn first_use(
        &self,
        cache: &dyn SharedCache,
        spec: &StoreSpec,
        item: &str,
        expires: u64,
        now: u64,
        evict: Evict,
    ) -> Result<bool, StoreError> {
        self.update(cache, spec, item, now, evict, |seen| match seen {
            Some(_) => (None, false),
            None => (Some((Vec::new(), expires)), true),
        })
    }
}

/// The filter's stores for one input: the cache, the placer and the configured shapes, and,
/// with a fleet store configured, where the input's fleet intents go ([`fleet`]).
pub struct Stores<'a> {
    cache: &'a dyn SharedCache,
    placer: Placer,
    limits: &'a Limits,
    fleet: Option<&'a Fleet>,
}

impl<'a> Stores<'a> {
    /// Opens the stores (reads the placement secret, making it on first use).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the cache or the randomness fails.
    pub fn open(
        cache: &'a dyn SharedCache,
        rng: &mut dyn crate::random::Random,
        limits: &'a Limits,
    ) -> Result<Self, StoreError> {
        Ok(Stores {
            cache,
            placer: placer(cache, rng)?,
            limits,
            fleet: None,
        })
    }

    /// The same stores, also leaving what the whole fleet must agree on in `fleet` for the
    /// request `head` (see [`fleet`]).
    pub fn everywhere(mut self, fleet: &'a Fleet, head: &RequestHead) -> Self {
        fleet.note(head);
        self.fleet = Some(fleet);
        self
    }

    /// Whether a fleet store is in use.
    pub fn fleet(&self) -> Option<&'a Fleet> {
        self.fleet
    }

    /// Uses a single-use item (`jti:…`, `saml:…`) until `expires`, or refuses with `replay`
    /// when it was used before: here at once, on another replica when the fleet store answers.
    /// Only items whose signature was verified get here.
    ///
    /// # Errors
    ///
    /// `replay`, or [`Deny::StoreFull`] / [`Deny::Unavailable`] when the store cannot take it.
    pub fn claim(&self, item: &str, expires: u64, now: u64, replay: Deny) -> Result<(), Deny> {
        if !self.use_once(item, expires, now)? {
            return Err(replay);
        }
        self.leave(Intent::Once {
            list: "once",
            item: item.to_owned(),
            expires,
            deny: replay,
        });
        Ok(())
    }

    /// Uses a login flow until `expires` (see [`Stores::use_flow`]), or refuses with
    /// [`Deny::FlowInvalid`] when it was used before, here or on another replica.
    ///
    /// # Errors
    ///
    /// [`Deny::FlowInvalid`] or [`Deny::Unavailable`].
    pub fn claim_flow(&self, item: &str, expires: u64, now: u64) -> Result<(), Deny> {
        if !self.use_flow(item, expires, now)? {
            return Err(Deny::FlowInvalid);
        }
        self.leave(Intent::Once {
            list: "flow",
            item: item.to_owned(),
            expires,
            deny: Deny::FlowInvalid,
        });
        Ok(())
    }

    /// Leaves an intent for the fleet store, when there is one.
    pub fn leave(&self, intent: Intent) {
        if let Some(fleet) = self.fleet {
            fleet.push(intent);
        }
    }

    /// Opens the stores to read only: `Ok(None)` when nothing was ever stored (no placement
    /// secret yet), so a read path never needs randomness.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the cache fails.
    pub fn peek(
        cache: &'a dyn SharedCache,
        limits: &'a Limits,
    ) -> Result<Option<Self>, StoreError> {
        Ok(match cache.get(SEED_KEY)? {
            Some((seed, _)) if seed.len() == 32 => Some(Stores {
                cache,
                placer: Placer::new(&seed),
                limits,
                fleet: None,
            }),
            _ => None,
        })
    }

    /// Records a single-use item (`jti:…`, `saml:…`) until `expires`: `Ok(true)` on its first
    /// use, `Ok(false)` on any later one. Only items whose signature was verified get here.
    ///
    /// # Errors
    ///
    /// [`StoreError::Full`] or [`StoreError::Unavailable`]: refuse the request.
    pub fn use_once(&self, item: &str, expires: u64, now: u64) -> Result<bool, StoreError> {
        self.placer
            .use_once(self.cache, &self.limits.single_use(), item, expires, now)
    }

    /// Records a login flow's use until `expires`: `Ok(true)` on its first use, `Ok(false)` on
    /// a later one. Anyone can start flows, so this list evicts (the flow that expires first)
    /// rather than refuse: a flood of made-up flows cannot stop other people's logins. A flow
    /// evicted that way is still single-use at the identity provider (codes, tickets and
    /// assertions are one-time there too); the filter's own check is what a flood can erode.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`].
    pub fn use_flow(&self, item: &str, expires: u64, now: u64) -> Result<bool, StoreError> {
        let spec = self.limits.used_flows();
        self.placer
            .first_use(self.cache, &spec, item, expires, now, Evict::SoonestExpiry)
    }

    /// Records that the sessions of `item` (a CAS ticket or SAML session digest) ended at
    /// `at`, remembered until `keep_until` (when every session it could concern has expired).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`].
    pub fn log_out(
        &self,
        item: &str,
        at: u64,
        keep_until: u64,
        now: u64,
    ) -> Result<(), StoreError> {
        self.placer.update(
            self.cache,
            &self.limits.logged_out(),
            item,
            now,
            Evict::SoonestExpiry,
            |_| (Some((at.to_be_bytes().to_vec(), keep_until)), ()),
        )?;
        self.leave(Intent::LogOut {
            item: item.to_owned(),
            at,
            keep_until,
        });
        Ok(())
    }

    /// When the sessions of `item` were logged out, if they were.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`].
    pub fn logged_out_at(&self, item: &str, now: u64) -> Result<Option<u64>, StoreError> {
        let value = self
            .placer
            .get(self.cache, &self.limits.logged_out(), item, now)?;
        Ok(value.map(|v| {
            let mut b = [0u8; 8];
            for (d, s) in b.iter_mut().zip(v.iter()) {
                *d = *s;
            }
            u64::from_be_bytes(b)
        }))
    }

    /// The failures counted for `item` in its current window, and when the window started.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`].
    pub fn failures(&self, item: &str, now: u64) -> Result<(u32, u64), StoreError> {
        let value = self
            .placer
            .get(self.cache, &self.limits.throttle(), item, now)?;
        Ok(value.as_deref().map_or((0, 0), parse_failures))
    }

    /// Counts one failure for `item` in a window of `window` seconds.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`].
    pub fn fail(&self, item: &str, window: u64, now: u64) -> Result<u32, StoreError> {
        self.placer.update(
            self.cache,
            &self.limits.throttle(),
            item,
            now,
            Evict::SmallestCount,
            |current| {
                let (n, start) = current.map_or((0, now), parse_failures);
                let n = n.saturating_add(1);
                let mut value = n.to_be_bytes().to_vec();
                value.extend_from_slice(&start.to_be_bytes());
                (Some((value, start.saturating_add(window))), n)
            },
        )
    }

    /// Forgets the failures of `item` (after a success).
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`].
    pub fn clear_failures(&self, item: &str, now: u64) -> Result<(), StoreError> {
        self.placer.update(
            self.cache,
            &self.limits.throttle(),
            item,
            now,
            Evict::SmallestCount,
            |current| match current {
                // Expired at once: the place is free for the next writer.
                Some(_) => (Some((Vec::new(), now)), ()),
                None => (None, ()),
            },
        )
    }

    /// Takes the lock `item` until `until`: `Ok(true)` when this caller holds it now.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`].
    pub fn try_lock(&self, item: &str, until: u64, now: u64) -> Result<bool, StoreError> {
        let spec = self.limits.locks();
        self.placer
            .first_use(self.cache, &spec, item, until, now, Evict::SoonestExpiry)
    }
}

/// A throttle value: failures (4 bytes) and the window's start (8 bytes), big-endian.
fn parse_failures(value: &[u8]) -> (u32, u64) {
    let n = count_of(value);
    let mut b = [0u8; 8];
    for (d, s) in b.iter_mut().zip(value.iter().skip(4)) {
        *d = *s;
    }
    (n, u64::from_be_bytes(b))
}

/// Frees one place in a full slot per the policy; false when none may go.
fn make_room(entries: &mut Vec<Entry>, evict: Evict) -> bool {
    let victim = match evict {
        Evict::Never => None,
        Evict::SoonestExpiry => entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| e.expires)
            .map(|(i, _)| i),
        Evict::SmallestCount => entries
            .iter()
            .enumerate()
            .min_by_key(|(_, e)| (count_of(&e.value), e.expires))
            .map(|(i, _)| i),
    };
    match victim {
        Some(i) if i < entries.len() => {
            entries.remove(i);
            true
        }
        _ => false,
    }
}

fn count_of(value: &[u8]) -> u32 {
    let mut n = [0u8; 4];
    for (d, s) in n.iter_mut().zip(value.iter()) {
        *d = *s;
    }
    u32::from_be_bytes(n)
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    fp: [u8; FP],
    expires: u64,
    value: Vec<u8>,
}

/// Slot format: entries one after another, each `fp (16) | expires (8, BE) | len (1) | value`.
fn encode(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::with_capacity(entries.len() * (FP + 9 + 8));
    for e in entries.iter().take(PER_SLOT) {
        out.extend_from_slice(&e.fp);
        out.extend_from_slice(&e.expires.to_be_bytes());
        let len = e.value.len().min(MAX_VALUE);
        out.push(u8::try_from(len).unwrap_or(0));
        out.extend_from_slice(e.value.get(..len).unwrap_or_default());
    }
    out
}

/// Reads a slot; a damaged tail is dropped (only this module writes slots).
fn decode(bytes: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while out.len() < PER_SLOT {
        let Some((fp, tail)) = rest.split_first_chunk::<FP>() else {
            break;
        };
        let Some((exp, tail)) = tail.split_first_chunk::<8>() else {
            break;
        };
        let Some((&len, tail)) = tail.split_first() else {
            break;
        };
        let Some(value) = tail.get(..usize::from(len)) else {
            break;
        };
        out.push(Entry {
            fp: *fp,
            expires: u64::from_be_bytes(*exp),
            value: value.to_vec(),
        });
        rest = tail.get(usize::from(len)..).unwrap_or_default();
    }
    out
}

/// Whether single logout ended the sessions of this ticket (or SAML session) digest. A store
/// that cannot be read counts as logged out (fail closed, security.md L10).
pub fn logged_out(
    cache: &dyn crate::cache::SharedCache,
    limits: &Limits,
    sid: &str,
    now: u64,
) -> bool {
    match Stores::peek(cache, limits) {
        Ok(None) => false,
        Ok(Some(stores)) => !matches!(stores.logged_out_at(sid, now), Ok(None)),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests;
