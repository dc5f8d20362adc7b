//! The fleet store: single use, single logout and the failed-login lockout held across every
//! replica, in etcd (its v3 API, JSON over HTTP through the gateway every etcd serves), reached
//! by callout like any identity provider.
//!
//! # How it fits the sans-IO engine
//!
//! Methods keep calling the bounded local stores ([`super::Stores`]) exactly as before: a replay
//! on the replica that saw the first use is still refused at once, before any callout. When
//! `store.type` is `etcd`, each store operation that needs the whole fleet also leaves an
//! [`Intent`] in the input's [`Fleet`]. When the engine is about to hand a step to the host
//! (a response, a request forwarded upstream, a callout to an identity provider), it first
//! flushes the intents: one etcd transaction (plus a lease grant now and then, and a clean-up
//! after a successful login that had failures counted) whose answer decides whether the held
//! step goes out or a refusal replaces it. So a code, ticket or assertion replayed on another
//! replica is refused before that replica calls the identity provider, and nothing a refused
//! request made reaches the upstream or the browser.
//!
//! # What is kept in etcd
//!
//! Under the configured prefix (`sso-filter/` unless set), every key named by a digest of the
//! item, never the item itself:
//!
//! | key | written when | value | lease |
//! |---|---|---|---|
//! | `once/<digest>` | a one-time `jti`, a SAML assertion or logout-request ID is first used | empty | until the item expires |
//! | `flow/<digest>` | a login flow's callback is first handled | empty | the flow's expiry + 60 s |
//! | `out/<digest>` | a CAS or SAML single logout ends the sessions of a ticket / session index | logout time | the session lifetime + 60 s |
//! | `thr/<digest>/<random>` | a password fails (one key per failure) | empty | the lockout window |
//!
//! Every key is written with a lease, so etcd forgets it on its own: nothing grows without
//! bound, and a flood is bounded by the write budget ([`EtcdStore::writes_per_second`] per
//! worker) times the longest lease. Leases are shared by all items that expire in the same
//! window (`bucket_end`), so a replica grants one now and then, not one per item.
//!
//! # Failure
//!
//! A store that does not answer in time, answers an error, or cannot be parsed fails closed
//! (503, `sso_fleet.unavailable`, a log line naming the cause): never a silent fall-back to
//! one replica's memory. The one exception an operator can choose is
//! `on_store_error: "insecure_serve_sessions"`: a request whose only fleet question is "was
//! this session logged out elsewhere?" is then served on the local answer alone.

use std::cell::RefCell;

use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::deny::Deny;
use crate::http::{Callout, RequestHead};

mod etcd;
#[cfg(test)]
mod tests;

pub use etcd::{begin, bucket_end, resume, Conversation, Next};

/// Where single use, logouts and throttling are kept (`store` in the configuration).
#[derive(Clone, Debug, Default)]
pub enum StoreConfig {
    /// This process only (proxy-wasm shared data, an edge isolate's memory): the default.
    #[default]
    Local,
    /// etcd, shared by every replica.
    Etcd(EtcdStore),
}

impl StoreConfig {
    /// The etcd store, when configured.
    pub fn etcd(&self) -> Option<&EtcdStore> {
        match self {
            StoreConfig::Local => None,
            StoreConfig::Etcd(e) => Some(e),
        }
    }
}

/// What a request that needs the fleet store gets when the store cannot answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStoreError {
    /// 503 for everything that needs the store (the default).
    #[default]
    FailClosed,
    /// Sessions whose only question is a logout elsewhere are served on the local answer
    /// (logged); single use, logout recording and throttling still fail closed.
    InsecureServeSessions,
}

/// The etcd fleet store, parsed.
#[derive(Clone, Debug)]
pub struct EtcdStore {
    /// `scheme://host:port` of the etcd gateway, no trailing slash.
    pub url: String,
    /// Key prefix of this deployment; ends with `/`.
    pub prefix: String,
    /// Deadline of each etcd call, milliseconds.
    pub timeout_ms: u64,
    /// What happens when etcd cannot answer.
    pub on_store_error: OnStoreError,
    /// Writes to etcd per second per worker, all clients together (a flood of logins or
    /// logouts beyond it is refused with 503 rather than grow etcd).
    pub writes_per_second: u32,
    /// How many writes may go back to back before the rate applies.
    pub write_burst: u32,
    /// etcd's user and password, when etcd has authentication on.
    pub auth: Option<EtcdAuth>,
}

/// An etcd user (`store.auth`): the filter authenticates once per process and sends the token
/// etcd gives it with every call, authenticating again when etcd no longer knows the token.
#[derive(Clone, Debug)]
pub struct EtcdAuth {
    /// User name.
    pub username: String,
    /// Password (never printed).
    pub password: crate::secret::Secret,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    username: String,
    password: crate::secret::Secret,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum RawStore {
    Local {},
    Etcd {
        url: String,
        #[serde(default = "default_prefix")]
        prefix: String,
        #[serde(default = "default_timeout")]
        timeout_ms: u64,
        #[serde(default)]
        on_store_error: OnStoreError,
        #[serde(default = "default_writes")]
        writes_per_second: u32,
        #[serde(default = "default_burst")]
        write_burst: u32,
        #[serde(default)]
        auth: Option<RawAuth>,
    },
}

fn default_prefix() -> String {
    "sso-filter/".to_owned()
}
fn default_timeout() -> u64 {
    1000
}
fn default_writes() -> u32 {
    200
}
fn default_burst() -> u32 {
    400
}

/// Parses `store`: `Err((json path, reason))`.
///
/// # Errors
///
/// The first field that is missing, unknown or out of range.
pub fn parse(value: Value) -> Result<StoreConfig, (String, String)> {
    let raw: RawStore =
        serde_json::from_value(value).map_err(|e| ("store".to_owned(), e.to_string()))?;
    let at = |field: &str, why: &str| (format!("store.{field}"), why.to_owned());
    match raw {
        RawStore::Local {} => Ok(StoreConfig::Local),
        RawStore::Etcd {
            url,
            prefix,
            timeout_ms,
            on_store_error,
            writes_per_second,
            write_burst,
            auth,
        } => {
            let parsed = check_etcd(&url, &prefix, timeout_ms, writes_per_second, write_burst)?;
            let auth = match auth {
                None => None,
                Some(a) => {
                    if a.username.trim().is_empty() || a.username.chars().any(char::is_control) {
                        return Err(at("auth.username", "must be a non-blank name"));
                    }
                    if a.password.is_empty() {
                        return Err(at("auth.password", "must not be blank"));
                    }
                    if parsed.scheme() != "https" {
                        return Err(at(
                            "auth",
                            "sends a password and a token: the url must be https://",
                        ));
                    }
                    Some(EtcdAuth {
                        username: a.username,
                        password: a.password,
                    })
                }
            };
            Ok(StoreConfig::Etcd(EtcdStore {
                url: parsed.as_str().trim_end_matches('/').to_owned(),
                prefix,
                timeout_ms,
                on_store_error,
                writes_per_second,
                write_burst,
                auth,
            }))
        }
    }
}

/// The fleet store's write budget of one worker: a token bucket of
/// [`EtcdStore::writes_per_second`] up to [`EtcdStore::write_burst`]. Anyone can start a login
/// or post a CAS logout, so without it a flood would grow etcd by its rate times the longest
/// lease; with it, by at most the budget times that lease per worker.
#[derive(Debug, Default)]
pub struct WriteBudget {
    bucket: std::sync::Mutex<crate::bucket::Bucket>,
}

impl WriteBudget {
    /// Takes `writes` tokens, all or none.
    pub fn take(&self, store: &EtcdStore, writes: usize, now_ms: u64) -> bool {
        let Ok(mut bucket) = self.bucket.lock() else {
            return false;
        };
        let mut trial = *bucket;
        let rate = u64::from(store.writes_per_second);
        let burst = u64::from(store.write_burst);
        if (0..writes).all(|_| trial.take(now_ms, rate, 1, burst)) {
            *bucket = trial;
            true
        } else {
            false
        }
    }
}

/// The etcd store's plain fields: the url parsed, or the first field out of range.
fn check_etcd(
    url: &str,
    prefix: &str,
    timeout_ms: u64,
    writes_per_second: u32,
    write_burst: u32,
) -> Result<url::Url, (String, String)> {
    let at = |field: &str, why: &str| (format!("store.{field}"), why.to_owned());
    let parsed = url::Url::parse(url).map_err(|_| at("url", "not an absolute URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(at("url", "must be http:// or https:// with a host"));
    }
    if !matches!(parsed.path(), "" | "/")
        || parsed.query().is_some()
        || parsed.fragment().is_some()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return Err(at(
            "url",
            "must be scheme://host:port only (the /v3 paths are added)",
        ));
    }
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_./".contains(c);
    if prefix.is_empty()
        || prefix.len() > 128
        || !prefix.ends_with('/')
        || !prefix.chars().all(ok_char)
    {
        return Err(at(
            "prefix",
            "must be 1 to 128 characters of [A-Za-z0-9-_./] ending with /",
        ));
    }
    if !(50..=30_000).contains(&timeout_ms) {
        return Err(at("timeout_ms", "must be between 50 and 30000"));
    }
    if !(1..=100_000).contains(&writes_per_second) {
        return Err(at("writes_per_second", "must be between 1 and 100000"));
    }
    if !(1..=1_000_000).contains(&write_burst) {
        return Err(at("write_burst", "must be between 1 and 1000000"));
    }
    Ok(parsed)
}

/// After a password check, what the lockout must learn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// The password failed: count it.
    Failed,
    /// The password was right: forget the failures (unless the fleet says the pair is locked
    /// out, then the success is refused).
    Succeeded,
}

/// One question or write for the fleet store, left by a store operation.
#[derive(Clone, Debug)]
pub enum Intent {
    /// The item's first use in the whole fleet, or `deny`.
    Once {
        /// `once` or `flow`.
        list: &'static str,
        /// The item (hashed before it leaves).
        item: String,
        /// Until when it must be remembered.
        expires: u64,
        /// The refusal of a second use.
        deny: Deny,
    },
    /// The sessions of `item` were logged out at `at`.
    LogOut {
        /// CAS ticket or SAML session digest.
        item: String,
        /// When.
        at: u64,
        /// Until when it must be remembered.
        keep_until: u64,
    },
    /// The session of `item` must not have been logged out anywhere.
    NotLoggedOut {
        /// CAS ticket or SAML session digest.
        item: String,
    },
    /// A password check's result, counted against the fleet-wide lockout.
    Tally {
        /// The (method, user, client) counter item.
        item: String,
        /// Failures allowed in one window.
        max: u32,
        /// Window, seconds.
        window: u64,
        /// What happened.
        attempt: Attempt,
        /// The refusal when the pair is locked out.
        deny: Deny,
    },
}

impl Intent {
    /// Whether this intent writes a key.
    pub fn writes(&self) -> bool {
        self.writes_until(0).is_some()
    }

    /// When a key this intent writes must expire (`None`: it writes nothing).
    fn writes_until(&self, now: u64) -> Option<u64> {
        match self {
            Intent::Once { expires, .. } => Some(*expires),
            Intent::LogOut { keep_until, .. } => Some(*keep_until),
            Intent::Tally {
                attempt: Attempt::Failed,
                window,
                ..
            } => Some(now.saturating_add(*window)),
            _ => None,
        }
    }
}

/// What the store operations of one input left for the fleet store: kept in [`crate::Env`],
/// flushed by the engine before the input's step leaves it.
#[derive(Debug, Default)]
pub struct Fleet {
    intents: RefCell<Vec<Intent>>,
    head: RefCell<Option<RequestHead>>,
}

impl Fleet {
    /// Names the request the intents belong to (a refusal is rendered for it); the first
    /// one named stays.
    pub(crate) fn note(&self, head: &RequestHead) {
        let mut slot = self.head.borrow_mut();
        if slot.is_none() {
            *slot = Some(head.clone());
        }
    }

    /// Leaves an intent.
    pub(crate) fn push(&self, intent: Intent) {
        self.intents.borrow_mut().push(intent);
    }

    /// Takes what was left (nothing is flushed twice).
    pub(crate) fn take(&self) -> (Vec<Intent>, Option<RequestHead>) {
        (
            std::mem::take(&mut *self.intents.borrow_mut()),
            self.head.borrow_mut().take(),
        )
    }
}

impl EtcdStore {
    fn digest(list: &str, item: &str) -> String {
        let mut h = Sha256::new();
        h.update(b"sso-filter fleet v1\0");
        h.update(list.as_bytes());
        h.update([0]);
        h.update(item.as_bytes());
        let d = h.finalize();
        d.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// The etcd key of `item` in `list`.
    pub fn key(&self, list: &str, item: &str) -> String {
        format!("{}{list}/{}", self.prefix, Self::digest(list, item))
    }

    /// The key prefix of a lockout counter (one key per failure below it).
    pub(crate) fn tally_prefix(&self, item: &str) -> String {
        format!("{}thr/{}/", self.prefix, Self::digest("thr", item))
    }

    /// A call to the gateway, with the authentication token when there is one.
    pub(crate) fn call(&self, path: &str, body: &Value, token: Option<&str>) -> Callout {
        let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
        if let Some(token) = token {
            // etcd's gateway takes the bare token, no scheme.
            headers.push(("authorization".to_owned(), token.to_owned()));
        }
        Callout {
            upstream: String::new(),
            url: format!("{}{path}", self.url),
            method: "POST".to_owned(),
            headers,
            body: body.to_string().into_bytes(),
            timeout_ms: self.timeout_ms,
        }
    }
}
