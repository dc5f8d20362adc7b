//! The conversation with etcd: lease grants, the one transaction, the lockout clean-up.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Value};

use super::{Attempt, EtcdStore, Intent, OnStoreError};
use crate::cache::SharedCache;
use crate::deny::Deny;
use crate::http::{Callout, CalloutResponse, Outcome, RequestHead};
use crate::random::Random;

/// The shared-cache keys of the leases this worker's process holds: a fixed space, since
/// proxy-wasm shared data never deletes a key.
const LEASE_SLOTS: u64 = 64;

/// The end of the lease window an item expiring at `expires` joins: items share a lease, and
/// live at most one window longer than they must (60 s for flows and lockouts, 10 min for
/// hours-long items, 1 h beyond).
pub fn bucket_end(expires: u64, now: u64) -> u64 {
    let ttl = expires.saturating_sub(now);
    let window = if ttl <= 900 {
        60
    } else if ttl <= 3 * 3600 {
        600
    } else {
        3600
    };
    expires.div_ceil(window).saturating_mul(window)
}

fn lease_cache_key(bucket: u64) -> String {
    format!("sso:fleet:lease:{}", (bucket / 60) % LEASE_SLOTS)
}

/// A lease this process granted for `bucket`, if it still has it.
fn cached_lease(cache: &dyn SharedCache, bucket: u64) -> Option<String> {
    let (bytes, _) = cache.get(&lease_cache_key(bucket)).ok()??;
    let text = String::from_utf8(bytes).ok()?;
    let (b, id) = text.split_once(':')?;
    (b.parse::<u64>().ok()? == bucket && !id.is_empty()).then(|| id.to_owned())
}

fn forget_leases(cache: &dyn SharedCache, buckets: impl Iterator<Item = u64>) {
    for bucket in buckets {
        // An empty value reads as no lease; a failed write only costs a failed call later.
        let _ = cache.set(&lease_cache_key(bucket), b"", None);
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

/// The end of the key range of every key starting with `prefix` (its last byte plus one;
/// prefixes here end with `/`, so this is `0`).
pub(super) fn range_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    if let Some(last) = bytes.last_mut() {
        *last = last.saturating_add(1);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// What a transaction's answers mean, in order.
#[derive(Clone, Debug)]
enum Read {
    /// The failures counted for the tally at this index, before this attempt.
    Tally(usize),
    /// Whether the session item at this index was logged out.
    LoggedOut(usize),
    /// A write; nothing to read.
    Write,
}

/// Where a fleet conversation is.
#[derive(Debug)]
enum Stage {
    /// The filter's etcd user is authenticating.
    Authenticate,
    /// A lease for this window was asked for.
    Grant(u64),
    /// The transaction was sent; `reads` says what each success answer is.
    Txn { reads: Vec<Read> },
    /// The failures of a login that succeeded are being forgotten.
    Clear,
}

/// The engine's wait while it talks to etcd: the step it holds back and what it asked.
#[derive(Debug)]
pub struct Conversation {
    stage: Stage,
    intents: Vec<Intent>,
    leases: BTreeMap<u64, String>,
    held: Box<Outcome>,
    head: Option<RequestHead>,
    /// Random suffixes of the failure keys, one per failed tally.
    nonces: Vec<String>,
    /// The leases were granted again once after etcd said it lost one.
    regranted: bool,
    /// etcd's authentication token (with `store.auth`).
    token: Option<String>,
    /// The user authenticated again once after etcd refused the token.
    reauthenticated: bool,
}

/// What the engine does next.
#[derive(Debug)]
pub enum Next {
    /// Send this callout and come back with its answer.
    Call(Callout, Conversation),
    /// Let the held step go.
    Release(Outcome),
    /// Answer with this refusal (rendered for `head`).
    Refuse(Deny, Option<RequestHead>),
    /// The session of `item` was logged out on another replica: remember it here and handle
    /// the request again (it has no session now).
    LoggedOut {
        /// The session item.
        item: String,
        /// The request to handle again.
        head: RequestHead,
    },
    /// The store failed (the cause for the log): 503.
    Unavailable(String, Option<RequestHead>),
    /// The store failed, and the operator chose to serve sessions anyway: let the held step go.
    ServedWithoutStore(String, Outcome),
}

/// Starts flushing `intents` for the step `held`.
pub fn begin(
    store: &EtcdStore,
    intents: Vec<Intent>,
    held: Outcome,
    head: Option<RequestHead>,
    cache: &dyn SharedCache,
    rng: &mut dyn Random,
    now: u64,
) -> Next {
    let mut nonces = Vec::new();
    for intent in &intents {
        if matches!(
            intent,
            Intent::Tally {
                attempt: Attempt::Failed,
                ..
            }
        ) {
            match crate::random::bytes(rng, 12) {
                Ok(b) => nonces.push(b.iter().map(|x| format!("{x:02x}")).collect()),
                Err(_) => return Next::Unavailable("no randomness for a failure key".into(), head),
            }
        }
    }
    let mut leases = BTreeMap::new();
    for bucket in intents.iter().filter_map(|i| i.writes_until(now)) {
        let bucket = bucket_end(bucket, now);
        if let Some(id) = cached_lease(cache, bucket) {
            leases.insert(bucket, id);
        }
    }
    let conv = Conversation {
        stage: Stage::Clear,
        intents,
        leases,
        held: Box::new(held),
        head,
        nonces,
        regranted: false,
        token: store.auth.as_ref().and_then(|_| cached_token(cache)),
        reauthenticated: false,
    };
    proceed(store, conv, now)
}

/// The next call: a token when etcd wants one and there is none, a lease still missing, else
/// the transaction.
fn proceed(store: &EtcdStore, mut conv: Conversation, now: u64) -> Next {
    if let (Some(auth), None) = (&store.auth, &conv.token) {
        let body = json!({"name": auth.username, "password": auth.password.expose()});
        conv.stage = Stage::Authenticate;
        return Next::Call(store.call("/v3/auth/authenticate", &body, None), conv);
    }
    let missing = conv
        .intents
        .iter()
        .filter_map(|i| i.writes_until(now))
        .map(|e| bucket_end(e, now))
        .find(|b| !conv.leases.contains_key(b));
    if let Some(bucket) = missing {
        // Granted a little past the window, so a lease never ends before an item in it.
        let ttl = bucket.saturating_sub(now).saturating_add(120);
        let call = store.call(
            "/v3/lease/grant",
            &json!({ "TTL": ttl.to_string() }),
            conv.token.as_deref(),
        );
        conv.stage = Stage::Grant(bucket);
        return Next::Call(call, conv);
    }
    let (body, reads) = transaction(store, &conv, now);
    conv.stage = Stage::Txn { reads };
    let call = store.call("/v3/kv/txn", &body, conv.token.as_deref());
    Next::Call(call, conv)
}

/// One transaction for every intent: the single-use items compared (none may exist), then in
/// the success branch the lockout counts read before anything is written, the writes, and the
/// logged-out reads; the failure branch reads the single-use items to tell which was used.
fn transaction(store: &EtcdStore, conv: &Conversation, now: u64) -> (Value, Vec<Read>) {
    let lease = |until: u64| {
        conv.leases
            .get(&bucket_end(until, now))
            .cloned()
            .unwrap_or_default()
    };
    let mut compare = Vec::new();
    let mut success = Vec::new();
    let mut failure = Vec::new();
    let mut reads = Vec::new();
    for (i, intent) in conv.intents.iter().enumerate() {
        if let Intent::Tally { item, .. } = intent {
            let prefix = store.tally_prefix(item);
            success.push(json!({"request_range": {
                "key": b64(&prefix), "range_end": b64(&range_end(&prefix)), "count_only": true}}));
            reads.push(Read::Tally(i));
        }
    }
    let mut nonces = conv.nonces.iter();
    for intent in &conv.intents {
        match intent {
            Intent::Once {
                list,
                item,
                expires,
                ..
            } => {
                let key = b64(&store.key(list, item));
                compare.push(json!({"key": key, "result": "EQUAL", "target": "CREATE",
                                    "create_revision": "0"}));
                success.push(
                    json!({"request_put": {"key": key, "value": "", "lease": lease(*expires)}}),
                );
                failure.push(json!({"request_range": {"key": key, "count_only": true}}));
                reads.push(Read::Write);
            }
            Intent::LogOut {
                item,
                at,
                keep_until,
            } => {
                let key = b64(&store.key("out", item));
                success.push(
                    json!({"request_put": {"key": key, "value": b64(&at.to_string()),
                                                     "lease": lease(*keep_until)}}),
                );
                reads.push(Read::Write);
            }
            Intent::Tally {
                item,
                window,
                attempt: Attempt::Failed,
                ..
            } => {
                let nonce = nonces.next().cloned().unwrap_or_default();
                let key = b64(&format!("{}{nonce}", store.tally_prefix(item)));
                let until = now.saturating_add(*window);
                success
                    .push(json!({"request_put": {"key": key, "value": "", "lease": lease(until)}}));
                reads.push(Read::Write);
            }
            _ => {}
        }
    }
    for (i, intent) in conv.intents.iter().enumerate() {
        if let Intent::NotLoggedOut { item } = intent {
            let key = b64(&store.key("out", item));
            success.push(json!({"request_range": {"key": key, "count_only": true}}));
            reads.push(Read::LoggedOut(i));
        }
    }
    (
        json!({"compare": compare, "success": success, "failure": failure}),
        reads,
    )
}

/// etcd's JSON gateway leaves out zero values: a missing count is 0.
fn count_of(answer: Option<&Value>) -> u64 {
    answer
        .and_then(|a| a.get("response_range"))
        .and_then(|r| r.get("count"))
        .and_then(|c| c.as_str().and_then(|s| s.parse().ok()).or(c.as_u64()))
        .unwrap_or(0)
}

/// Carries on with etcd's answer.
pub fn resume(
    store: &EtcdStore,
    mut conv: Conversation,
    answer: CalloutResponse,
    cache: &dyn SharedCache,
    now: u64,
) -> Next {
    let Some(status) = answer.status else {
        return failed(
            store,
            conv,
            "etcd did not answer (refused, reset or timed out)".into(),
        );
    };
    let body: Option<Value> = serde_json::from_slice(&answer.body).ok();
    let stage = std::mem::replace(&mut conv.stage, Stage::Clear);
    // (A clean-up refused this way is let go like any failed clean-up, below.)
    if status == 401 && store.auth.is_some() && matches!(stage, Stage::Grant(_) | Stage::Txn { .. })
    {
        // etcd no longer knows the token (it expired, or etcd restarted): authenticate again,
        // once, and redo the step (nothing was applied).
        forget_token(cache);
        log::info!("sso-filter: fleet store: etcd refused the token; authenticating again");
        if conv.reauthenticated {
            return failed(store, conv, "etcd refused a fresh token".into());
        }
        conv.reauthenticated = true;
        conv.token = None;
        return proceed(store, conv, now);
    }
    match stage {
        Stage::Authenticate => authenticated(store, conv, (status, body), cache, now),
        Stage::Grant(bucket) => granted(store, conv, bucket, (status, body), cache, now),
        Stage::Txn { reads } => settled(store, conv, &reads, (status, body), cache, now),
        Stage::Clear => {
            if status != 200 {
                // A stale counter only locks the pair out sooner; the login itself succeeded.
                log::info!(
                    "sso-filter: fleet store: could not clear the lockout counter ({status})"
                );
            }
            Next::Release(*conv.held)
        }
    }
}

/// The shared-cache key of this process's etcd token.
const TOKEN_KEY: &str = "sso:fleet:token";

fn cached_token(cache: &dyn SharedCache) -> Option<String> {
    let (bytes, _) = cache.get(TOKEN_KEY).ok()??;
    String::from_utf8(bytes).ok().filter(|t| !t.is_empty())
}

fn forget_token(cache: &dyn SharedCache) {
    // An empty value reads as no token; a failed write only costs one more refusal.
    let _ = cache.set(TOKEN_KEY, b"", None);
}

/// etcd answered the authentication: keep the token for the process, then the next call.
fn authenticated(
    store: &EtcdStore,
    mut conv: Conversation,
    (status, body): (u16, Option<Value>),
    cache: &dyn SharedCache,
    now: u64,
) -> Next {
    let token = body
        .as_ref()
        .filter(|_| status == 200)
        .and_then(|b| b.get("token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= 4096 && !t.chars().any(char::is_control))
        .map(str::to_owned);
    let Some(token) = token else {
        // The cause, never the password: etcd's own message names a wrong password.
        return failed(
            store,
            conv,
            format!("etcd authentication answered {status} (check store.auth)"),
        );
    };
    let _ = cache.set(TOKEN_KEY, token.as_bytes(), None);
    conv.token = Some(token);
    proceed(store, conv, now)
}

/// A lease was granted for `bucket`: kept for the process, then the next call.
fn granted(
    store: &EtcdStore,
    mut conv: Conversation,
    bucket: u64,
    (status, body): (u16, Option<Value>),
    cache: &dyn SharedCache,
    now: u64,
) -> Next {
    let id = body
        .as_ref()
        .filter(|_| status == 200)
        .and_then(|b| b.get("ID"))
        .and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or(v.as_i64().map(|n| n.to_string()))
        });
    let Some(id) = id.filter(|i| i.parse::<i64>().is_ok_and(|n| n != 0)) else {
        return failed(store, conv, format!("etcd lease grant answered {status}"));
    };
    // Other workers of this process reuse it; a lost race only grants one more.
    let _ = cache.set(
        &lease_cache_key(bucket),
        format!("{bucket}:{id}").as_bytes(),
        None,
    );
    conv.leases.insert(bucket, id);
    proceed(store, conv, now)
}

/// The transaction's answer.
fn settled(
    store: &EtcdStore,
    mut conv: Conversation,
    reads: &[Read],
    (status, body): (u16, Option<Value>),
    cache: &dyn SharedCache,
    now: u64,
) -> Next {
    let lost_lease = status == 404
        && body
            .as_ref()
            .and_then(|b| b.get("code"))
            .and_then(Value::as_i64)
            == Some(5);
    if lost_lease && !conv.regranted {
        // etcd no longer knows a lease this process kept (it expired early, or etcd lost its
        // data): grant the windows again, once.
        forget_leases(cache, conv.leases.keys().copied());
        conv.leases.clear();
        conv.regranted = true;
        return proceed(store, conv, now);
    }
    let Some(body) = body.filter(|_| status == 200) else {
        return failed(store, conv, format!("etcd transaction answered {status}"));
    };
    let answers = body
        .get("responses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if body.get("succeeded").and_then(Value::as_bool) != Some(true) {
        // A single-use item exists: the first one that does names the refusal.
        let used = conv
            .intents
            .iter()
            .filter_map(|i| match i {
                Intent::Once { deny, .. } => Some(deny),
                _ => None,
            })
            .zip(answers.iter())
            .find(|(_, a)| count_of(Some(a)) > 0)
            .map(|(d, _)| d.clone());
        return match used {
            Some(deny) => {
                log::warn!("sso-filter: fleet store: already used on another replica");
                Next::Refuse(deny, conv.head)
            }
            None => failed(
                store,
                conv,
                "etcd transaction failed with no used item".into(),
            ),
        };
    }
    if answers.len() != reads.len() {
        return failed(
            store,
            conv,
            "etcd transaction answered the wrong shape".into(),
        );
    }
    judge(store, conv, reads, &answers)
}

/// The transaction went through: what the lockout counts and the logged-out reads say.
fn judge(store: &EtcdStore, mut conv: Conversation, reads: &[Read], answers: &[Value]) -> Next {
    let mut clear = Vec::new();
    for (read, answer) in reads.iter().zip(answers) {
        let intent = match read {
            Read::Tally(i) | Read::LoggedOut(i) => conv.intents.get(*i),
            Read::Write => None,
        };
        let count = count_of(Some(answer));
        match intent {
            Some(Intent::Tally {
                item,
                max,
                attempt,
                deny,
                ..
            }) => {
                if count >= u64::from(*max) {
                    log::warn!("sso-filter: fleet store: locked out across replicas");
                    return Next::Refuse(deny.clone(), conv.head);
                }
                if *attempt == Attempt::Succeeded && count > 0 {
                    clear.push(store.tally_prefix(item));
                }
            }
            Some(Intent::NotLoggedOut { item }) if count > 0 => {
                let item = item.clone();
                return match conv.head {
                    Some(head) => Next::LoggedOut { item, head },
                    None => Next::Unavailable(
                        "a logged-out session with no request to answer".into(),
                        None,
                    ),
                };
            }
            _ => {}
        }
    }
    if clear.is_empty() {
        return Next::Release(*conv.held);
    }
    let deletes: Vec<Value> = clear
        .iter()
        .map(|p| json!({"request_delete_range": {"key": b64(p), "range_end": b64(&range_end(p))}}))
        .collect();
    conv.stage = Stage::Clear;
    let call = store.call(
        "/v3/kv/txn",
        &json!({"success": deletes}),
        conv.token.as_deref(),
    );
    Next::Call(call, conv)
}

/// The store failed: 503, unless every question was a logout check and the operator chose to
/// serve sessions anyway.
fn failed(store: &EtcdStore, conv: Conversation, why: String) -> Next {
    let only_sessions = conv
        .intents
        .iter()
        .all(|i| matches!(i, Intent::NotLoggedOut { .. }));
    if only_sessions && store.on_store_error == OnStoreError::InsecureServeSessions {
        return Next::ServedWithoutStore(why, *conv.held);
    }
    Next::Unavailable(why, conv.head)
}
