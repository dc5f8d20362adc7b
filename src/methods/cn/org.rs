//! The organisation path (`org`, "join the organisation on login") of DingTalk, WeCom and
//! Feishu, and the department tree that spares logins their department calls.
//!
//! A login's path is its department's name with the names of the departments above it, root
//! first, without the root itself (`研发部/数据组`). Per login it costs one call per level
//! (DingTalk `department/get`, WeCom `department/get`, Feishu `departments/:id`). With
//! `sync_minutes` > 0 the whole tree is fetched on the host's timer (`sync.rs`) every
//! `sync_minutes`, kept in the shared cache for twice that, and a login resolves its path from
//! it with no department call; when the cache has no usable tree (before the first sync, sync
//! off, the last syncs failed for two periods, a department newer than the tree) the login
//! makes the per-login calls instead, so the result is the same either way.
//!
//! Two cache keys per tree: `{key}:meta` (small: when the last sync succeeded, and the lease
//! that lets one worker fetch while the others wait) and `{key}:tree` (the departments). Every
//! worker reads the meta to learn whether its own parsed copy of the tree is current, so the
//! tree itself is read and parsed once per worker per sync.
//!
//! Bounds: at most [`MAX_DEPARTMENTS`] departments and [`MAX_TREE_BYTES`] bytes of ids and
//! names; a fetch that goes over either stops, is counted as failed and stores nothing (the
//! previous tree stays until it expires; logins fall back to per-login calls).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::TokenKind;
use crate::cache::{CacheError, SharedCache};
use crate::error::ConfigError;
use crate::http::{Callout, CalloutResponse};
use crate::idp::IdpFailure;

/// The most levels of a path (WeCom allows 15 below the root).
pub const MAX_DEPTH: usize = 16;
/// The most departments a tree may hold.
pub const MAX_DEPARTMENTS: usize = 20_000;
/// The most bytes of ids and names a tree may hold.
pub const MAX_TREE_BYTES: usize = 2 * 1024 * 1024;
/// The longest department name kept, in characters (longer ones are cut).
const MAX_NAME_CHARS: usize = 64;
/// The longest department id accepted, in bytes.
const MAX_ID_BYTES: usize = 64;
/// The largest answer of one tree call (the hosts' bound on callout answers).
pub const MAX_TREE_PAGE: usize = 1024 * 1024;
/// The default period, minutes: off. The sync needs permissions a login-only app lacks (the
/// department list from the root; the seeds list them for "Sync Frequency"), and it is
/// background traffic to the provider: it is turned on on purpose (60, hourly, suits most).
pub const DEFAULT_SYNC_MINUTES: u64 = 0;
/// The longest period accepted, minutes (a week).
const MAX_SYNC_MINUTES: u64 = 7 * 24 * 60;
/// How long a worker holds the lease without news (renewed at every answer), seconds.
pub const LEASE_SECONDS: u64 = 120;
/// How long after a failed sync the next is tried, seconds (at most the period).
pub const RETRY_SECONDS: u64 = 300;

/// One department as a provider's list gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dept {
    /// Its id (as text: DingTalk and WeCom ids are numbers, Feishu's `od-…`).
    pub id: String,
    /// Its name as a path segment ([`segment`]).
    pub name: String,
    /// Its parent's id.
    pub parent: String,
}

impl Dept {
    /// A department from a list entry; `None` for an entry without a usable id or name.
    pub fn new(id: &Value, name: Option<&str>, parent: &Value) -> Option<Self> {
        let id = id_text(id)?;
        Some(Dept {
            id,
            name: segment(name?)?,
            parent: id_text(parent).unwrap_or_default(),
        })
    }
}

/// An id given as a number or a string, within [`MAX_ID_BYTES`].
pub fn id_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    (!text.is_empty() && text.len() <= MAX_ID_BYTES && !text.chars().any(char::is_control))
        .then_some(text)
}

/// A department name as a path segment: trimmed, control characters dropped, `/` written
/// `／` (it separates the segments), at most [`MAX_NAME_CHARS`] characters; `None` when
/// nothing is left. The cached and the per-login paths both go through here, so they agree.
pub fn segment(name: &str) -> Option<String> {
    let text: String = name
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '/' { '／' } else { c })
        .take(MAX_NAME_CHARS)
        .collect();
    let text = text.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

/// Where a per-login walk up the tree stands after one more department.
#[derive(Debug, PartialEq, Eq)]
pub enum Climb {
    /// The path is complete (`None`: the member is in the root department, no path).
    Done(Option<String>),
    /// Ask for this department next.
    Up(String),
}

/// One more department of a per-login walk: its name joins `names` (the member's department
/// first); the walk ends below the root or at [`MAX_DEPTH`] names.
pub fn climb(names: &mut Vec<String>, name: &str, parent: &str, root: &str) -> Climb {
    if let Some(name) = segment(name) {
        names.push(name);
    }
    if parent.is_empty() || parent == root || parent == "0" || names.len() >= MAX_DEPTH {
        return Climb::Done(joined(names));
    }
    Climb::Up(parent.to_owned())
}

/// The path of `names` (the member's department first), root first.
pub fn joined(names: &[String]) -> Option<String> {
    (!names.is_empty()).then(|| {
        let mut parts: Vec<&str> = names.iter().map(String::as_str).collect();
        parts.reverse();
        parts.join("/")
    })
}

/// Sets (or, for a member of the root department, leaves unset) the `organization` claim.
pub fn set_path(claims: &mut Map<String, Value>, path: Option<String>) {
    if let Some(path) = path {
        claims.insert("organization".into(), json!(path));
    }
}

/// A department tree: who is whose parent, and names.
#[derive(Debug, Default)]
pub struct Tree {
    /// When it was fetched (seconds).
    at: u64,
    /// When it stops being used (seconds).
    exp: u64,
    /// id → (name, parent id).
    depts: HashMap<String, (String, String)>,
}

/// A tree as stored: `[id, name, parent]` triples.
#[derive(Serialize, Deserialize)]
struct Stored {
    at: u64,
    exp: u64,
    d: Vec<(String, String, String)>,
}

impl Tree {
    /// The path of department `id` below `root`: `Some(None)` for the root itself (no path),
    /// `None` when the tree does not know `id` or one of its parents (then the login asks).
    pub fn path(&self, id: &str, root: &str) -> Option<Option<String>> {
        if id == root {
            return Some(None);
        }
        let mut names = Vec::new();
        let mut at = id;
        // Bounded even if a stored tree were damaged (a nameless department in a cycle).
        for _ in 0..=MAX_DEPTH {
            let (name, parent) = self.depts.get(at)?;
            if let Climb::Done(path) = climb(&mut names, name, parent, root) {
                return Some(path);
            }
            at = parent;
        }
        None
    }

    /// How many departments it holds.
    pub fn len(&self) -> usize {
        self.depts.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.depts.is_empty()
    }
}

/// A tree being fetched, within the bounds.
#[derive(Default)]
pub struct TreeBuilder {
    depts: Vec<Dept>,
    bytes: usize,
}

impl fmt::Debug for TreeBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TreeBuilder({} departments)", self.depts.len())
    }
}

/// Why a fetched tree is not kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverCap {
    /// More than [`MAX_DEPARTMENTS`].
    Departments,
    /// More than [`MAX_TREE_BYTES`].
    Bytes,
}

impl TreeBuilder {
    /// Adds departments (the root, and repeats, are skipped).
    ///
    /// # Errors
    ///
    /// [`OverCap`] when the tree would pass a bound.
    pub fn add(&mut self, depts: Vec<Dept>, root: &str) -> Result<(), OverCap> {
        for d in depts {
            if d.id == root {
                continue;
            }
            self.bytes = self
                .bytes
                .saturating_add(d.id.len() + d.name.len() + d.parent.len() + 12);
            self.depts.push(d);
            if self.depts.len() > MAX_DEPARTMENTS {
                return Err(OverCap::Departments);
            }
            if self.bytes > MAX_TREE_BYTES {
                return Err(OverCap::Bytes);
            }
        }
        Ok(())
    }

    /// How many departments so far.
    pub fn len(&self) -> usize {
        self.depts.len()
    }

    /// Whether it holds none yet.
    pub fn is_empty(&self) -> bool {
        self.depts.is_empty()
    }

    fn stored(self, at: u64, exp: u64) -> Stored {
        let mut d: Vec<(String, String, String)> = self
            .depts
            .into_iter()
            .map(|d| (d.id, d.name, d.parent))
            .collect();
        d.sort();
        d.dedup_by(|a, b| a.0 == b.0);
        Stored { at, exp, d }
    }
}

/// One call of a tree fetch: the department whose children to list (DingTalk), or the page
/// to read (Feishu); `None` for the first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeCall {
    /// The department or the page token.
    pub cursor: Option<String>,
}

/// What one tree call gave.
#[derive(Debug, Default)]
pub struct TreePart {
    /// Departments.
    pub depts: Vec<Dept>,
    /// Calls still to make because of this answer (children to list, the next page).
    pub next: Vec<TreeCall>,
}

/// How a provider lists its whole department tree.
pub trait TreeSource {
    /// The app token the calls need.
    fn tree_token(&self) -> TokenKind;
    /// The root department's id (no path segment; DingTalk and WeCom `1`, Feishu `0`).
    fn tree_root(&self) -> &'static str;
    /// The callout of one call.
    fn tree_request(&self, call: &TreeCall, token: &str) -> Callout;
    /// Judges one call's answer.
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for error codes and unusable answers (token codes come back as
    /// [`crate::idp::CodeKind::TokenInvalid`]).
    fn tree_answer(
        &self,
        call: &TreeCall,
        response: &CalloutResponse,
    ) -> Result<TreePart, IdpFailure>;
}

/// A method's sync from its configuration: `org_from_departments` and `sync_minutes`
/// ([`DEFAULT_SYNC_MINUTES`] when absent, 0 for off); `key` names its cache keys.
///
/// # Errors
///
/// [`ConfigError`] at `at` for more than a week.
pub fn sync_of(
    org_from_departments: bool,
    minutes: Option<u64>,
    at: &str,
    key: impl FnOnce() -> String,
) -> Result<Option<OrgSync>, ConfigError> {
    let minutes = minutes.unwrap_or(DEFAULT_SYNC_MINUTES);
    if minutes > MAX_SYNC_MINUTES {
        return Err(ConfigError {
            path: at.to_owned(),
            reason: format!("must be 0 (off) to {MAX_SYNC_MINUTES} minutes"),
        });
    }
    Ok((org_from_departments && minutes > 0).then(|| OrgSync::new(minutes, key())))
}

/// The first step of a walk up a member's department path: the department's id, the names
/// so far, the root's id, and the claims the path goes into.
pub type DepartmentWalk<'s> = (&'s str, &'s [String], &'static str, &'s Map<String, Value>);

/// `claims` with the path of department `id` from the synced tree, when a walk starts there
/// (`names` empty) and there is a tree that knows it (see [`Tree::path`]); `None`: the login
/// asks the provider.
pub fn settled(
    sync: Option<&OrgSync>,
    (cache, now): (&dyn SharedCache, u64),
    (id, names, root): (&str, &[String], &str),
    claims: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let path = sync
        .filter(|_| names.is_empty())?
        .path(cache, now, id, root)?;
    let mut claims = claims.clone();
    set_path(&mut claims, path);
    Some(claims)
}

/// The sync state of one method in one worker: its period, where its tree lives in the cache,
/// when this worker looks at the cache next, and its parsed copy of the tree.
pub struct OrgSync {
    period: u64,
    key: String,
    next_check: AtomicU64,
    memo: Mutex<Option<Arc<Tree>>>,
}

impl fmt::Debug for OrgSync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgSync({}s, {})", self.period, self.key)
    }
}

/// The small value that says when the last sync succeeded and who fetches now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// When the last sync succeeded (0: never).
    pub at: u64,
    /// Until when the lease is held.
    pub lease: u64,
    /// Who holds it (a random number per sync).
    pub owner: u64,
}

/// What a worker's look at the meta decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// This worker holds the lease now: fetch.
    Ours,
    /// Nothing to do before this time (the tree is fresh, or another worker fetches).
    Wait(u64),
}

impl OrgSync {
    /// The sync of a method with this period (minutes > 0) and cache key prefix.
    pub fn new(minutes: u64, key: String) -> Self {
        OrgSync {
            period: minutes.saturating_mul(60),
            key,
            next_check: AtomicU64::new(0),
            memo: Mutex::new(None),
        }
    }

    /// The period in seconds.
    pub fn period(&self) -> u64 {
        self.period
    }

    /// The cache key prefix (for logs, it holds no secret).
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether this worker should look at the cache now (an atomic read on every tick).
    pub fn due(&self, now: u64) -> bool {
        now >= self.next_check.load(Ordering::Relaxed)
    }

    /// When this worker looks again.
    pub fn check_at(&self, at: u64) {
        self.next_check.store(at, Ordering::Relaxed);
    }

    /// When a failed sync is tried again.
    pub fn retry_at(&self, now: u64) -> u64 {
        now.saturating_add(RETRY_SECONDS.min(self.period))
    }

    fn meta_key(&self) -> String {
        format!("{}:meta", self.key)
    }

    fn tree_key(&self) -> String {
        format!("{}:tree", self.key)
    }

    /// The meta as stored (a missing or unreadable one reads as never synced).
    fn meta(&self, cache: &dyn SharedCache) -> Result<(Meta, Option<u32>), CacheError> {
        Ok(match cache.get(&self.meta_key())? {
            Some((bytes, version)) => (
                serde_json::from_slice(&bytes).unwrap_or_default(),
                Some(version),
            ),
            None => (Meta::default(), None),
        })
    }

    /// Takes the lease when a sync is due and nobody holds it (compare-and-swap: of two
    /// workers that look at once, one wins).
    ///
    /// # Errors
    ///
    /// [`CacheError::Unavailable`] when the cache fails.
    pub fn claim(
        &self,
        cache: &dyn SharedCache,
        now: u64,
        owner: u64,
    ) -> Result<Claim, CacheError> {
        let (meta, version) = self.meta(cache)?;
        if meta.at > 0 && now < meta.at.saturating_add(self.period) {
            return Ok(Claim::Wait(meta.at.saturating_add(self.period)));
        }
        if meta.lease > now {
            return Ok(Claim::Wait(meta.lease));
        }
        let mine = Meta {
            lease: now.saturating_add(LEASE_SECONDS),
            owner,
            ..meta
        };
        match self.write_meta(cache, &mine, version) {
            Ok(()) => Ok(Claim::Ours),
            Err(CacheError::Conflict) => Ok(Claim::Wait(now.saturating_add(LEASE_SECONDS))),
            Err(e) => Err(e),
        }
    }

    fn write_meta(
        &self,
        cache: &dyn SharedCache,
        meta: &Meta,
        version: Option<u32>,
    ) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec(meta).map_err(|_| CacheError::Unavailable)?;
        cache.set(&self.meta_key(), &bytes, version)
    }

    /// Changes the meta if `owner` still holds the lease: `Ok(false)` when another worker took
    /// it over (this one's lease had run out).
    fn if_ours(
        &self,
        cache: &dyn SharedCache,
        owner: u64,
        change: impl Fn(Meta) -> Meta,
    ) -> Result<bool, CacheError> {
        for _ in 0..8 {
            let (meta, version) = self.meta(cache)?;
            if meta.owner != owner {
                return Ok(false);
            }
            match self.write_meta(cache, &change(meta), version) {
                Ok(()) => return Ok(true),
                Err(CacheError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(CacheError::Conflict)
    }

    /// Extends the lease of a sync in progress.
    ///
    /// # Errors
    ///
    /// [`CacheError`] when the cache fails.
    pub fn renew(&self, cache: &dyn SharedCache, owner: u64, now: u64) -> Result<bool, CacheError> {
        self.if_ours(cache, owner, |m| Meta {
            lease: now.saturating_add(LEASE_SECONDS),
            ..m
        })
    }

    /// A failed sync: nobody tries again before [`OrgSync::retry_at`]; the tree stays.
    ///
    /// # Errors
    ///
    /// [`CacheError`] when the cache fails.
    pub fn give_up(&self, cache: &dyn SharedCache, owner: u64, now: u64) -> Result<(), CacheError> {
        let retry = self.retry_at(now);
        self.if_ours(cache, owner, |m| Meta { lease: retry, ..m })
            .map(|_| ())
    }

    /// Stores a fetched tree (valid for two periods) and releases the lease.
    ///
    /// # Errors
    ///
    /// [`CacheError`] when the cache fails; the tree then counts as not fetched.
    pub fn store(
        &self,
        cache: &dyn SharedCache,
        owner: u64,
        tree: TreeBuilder,
        now: u64,
    ) -> Result<(), CacheError> {
        let exp = now.saturating_add(self.period.saturating_mul(2));
        let bytes =
            serde_json::to_vec(&tree.stored(now, exp)).map_err(|_| CacheError::Unavailable)?;
        cache.set(&self.tree_key(), &bytes, None)?;
        self.if_ours(cache, owner, |_| Meta {
            at: now,
            lease: 0,
            owner,
        })
        .map(|_| ())
    }

    /// The current tree: this worker's parsed copy when the meta says it is the latest, else
    /// read and parsed again; `None` when there is none or it has expired.
    pub fn tree(&self, cache: &dyn SharedCache, now: u64) -> Option<Arc<Tree>> {
        let (meta, _) = self.meta(cache).ok()?;
        if meta.at == 0 {
            return None;
        }
        let mut memo = self.memo.lock().ok()?;
        if let Some(tree) = memo.as_ref().filter(|t| t.at == meta.at) {
            return (now < tree.exp).then(|| Arc::clone(tree));
        }
        let (bytes, _) = cache.get(&self.tree_key()).ok()??;
        let stored: Stored = serde_json::from_slice(&bytes).ok()?;
        let tree = Arc::new(Tree {
            at: stored.at,
            exp: stored.exp,
            depts: stored
                .d
                .into_iter()
                .take(MAX_DEPARTMENTS)
                .map(|(id, name, parent)| (id, (name, parent)))
                .collect(),
        });
        *memo = Some(Arc::clone(&tree));
        (now < tree.exp).then_some(tree)
    }

    /// The path of department `id` from the cached tree (see [`Tree::path`]).
    pub fn path(
        &self,
        cache: &dyn SharedCache,
        now: u64,
        id: &str,
        root: &str,
    ) -> Option<Option<String>> {
        self.tree(cache, now)?.path(id, root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::MemoryCache;

    fn dept(id: &str, name: &str, parent: &str) -> Dept {
        Dept {
            id: id.into(),
            name: name.into(),
            parent: parent.into(),
        }
    }

    fn sample() -> TreeBuilder {
        let mut t = TreeBuilder::default();
        t.add(
            vec![
                dept("1", "Corp", "0"),
                dept("2", "研发部", "1"),
                dept("3", "数据组", "2"),
                dept("9", "孤儿", "8"),
            ],
            "1",
        )
        .unwrap();
        t
    }

    #[test]
    fn paths_come_root_first_without_the_root_and_unknowns_ask() {
        let sync = OrgSync::new(60, "sso:org:test".into());
        let cache = MemoryCache::default();
        assert_eq!(sync.claim(&cache, 1000, 7).unwrap(), Claim::Ours);
        sync.store(&cache, 7, sample(), 1000).unwrap();
        assert_eq!(
            sync.path(&cache, 1001, "3", "1"),
            Some(Some("研发部/数据组".into()))
        );
        assert_eq!(sync.path(&cache, 1001, "1", "1"), Some(None));
        // Unknown, or a parent the tree lacks: the login asks the provider.
        assert_eq!(sync.path(&cache, 1001, "4", "1"), None);
        assert_eq!(sync.path(&cache, 1001, "9", "1"), None);
        // Valid for two periods.
        assert!(sync.path(&cache, 1000 + 7199, "3", "1").is_some());
        assert_eq!(sync.path(&cache, 1000 + 7200, "3", "1"), None);
    }

    #[test]
    fn one_worker_holds_the_lease_and_a_fresh_tree_waits_a_period() {
        let cache = MemoryCache::default();
        let a = OrgSync::new(60, "sso:org:t".into());
        let b = OrgSync::new(60, "sso:org:t".into());
        assert_eq!(a.claim(&cache, 100, 1).unwrap(), Claim::Ours);
        assert_eq!(b.claim(&cache, 101, 2).unwrap(), Claim::Wait(220));
        assert!(a.renew(&cache, 1, 200).unwrap());
        assert_eq!(b.claim(&cache, 250, 2).unwrap(), Claim::Wait(320));
        a.store(&cache, 1, sample(), 300).unwrap();
        assert_eq!(b.claim(&cache, 301, 2).unwrap(), Claim::Wait(3900));
        // A failed sync waits RETRY_SECONDS (at most the period) before the next try.
        assert_eq!(b.claim(&cache, 3900, 2).unwrap(), Claim::Ours);
        b.give_up(&cache, 2, 3900).unwrap();
        assert_eq!(a.claim(&cache, 3901, 3).unwrap(), Claim::Wait(4200));
        assert_eq!(a.claim(&cache, 4200, 3).unwrap(), Claim::Ours);
        // A lease that ran out was taken over: the old holder can no longer store.
        assert!(!b.renew(&cache, 2, 4201).unwrap());
    }

    #[test]
    fn bounds_stop_a_fetch() {
        let mut t = TreeBuilder::default();
        let many: Vec<Dept> = (0..=MAX_DEPARTMENTS)
            .map(|i| dept(&format!("d{i}"), "x", "1"))
            .collect();
        assert_eq!(t.add(many, "1"), Err(OverCap::Departments));
        let mut t = TreeBuilder::default();
        let long = "名".repeat(MAX_NAME_CHARS);
        let big: Vec<Dept> = (0..12_000)
            .map(|i| dept(&format!("{i:0>60}"), &long, &format!("{:0>60}", i + 1)))
            .collect();
        assert_eq!(t.add(big, "1"), Err(OverCap::Bytes));
    }

    #[test]
    fn names_are_segments_and_walks_end_below_the_root() {
        assert_eq!(segment(" a/b\u{7}c ").as_deref(), Some("a／bc"));
        assert_eq!(segment(" \n "), None);
        assert_eq!(segment(&"x".repeat(100)).map(|s| s.len()), Some(64));
        let mut names = Vec::new();
        assert_eq!(climb(&mut names, "数据组", "2", "1"), Climb::Up("2".into()));
        assert_eq!(
            climb(&mut names, "研发部", "1", "1"),
            Climb::Done(Some("研发部/数据组".into()))
        );
        let mut deep = Vec::new();
        for _ in 0..MAX_DEPTH - 1 {
            assert!(matches!(climb(&mut deep, "d", "7", "1"), Climb::Up(_)));
        }
        assert!(matches!(
            climb(&mut deep, "d", "7", "1"),
            Climb::Done(Some(_))
        ));
        assert_eq!(id_text(&json!(3)).as_deref(), Some("3"));
        assert_eq!(id_text(&json!("od-x")).as_deref(), Some("od-x"));
        assert_eq!(id_text(&json!(null)), None);
    }
}
