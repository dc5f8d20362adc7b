//! A small bounded memo of verified credentials, per worker: a session cookie or bearer token
//! that opened or verified once is not decrypted or verified again until it expires.
//!
//! The key is the whole credential as received, so a hit means byte-for-byte the same sealed
//! cookie or signed token that passed every check; expiry is checked on every hit. Only the
//! key's last 32 bytes (and its length) are hashed: they are the JWE tag of a sealed cookie or
//! the signature of a token, so distinct credentials hash apart, and nobody can make
//! colliding ones (only credentials that passed every check are inserted). The map still
//! compares whole keys, so the guarantee above does not rest on the hash. The memo is
//! per `Filter`, so a configuration change (new keys) starts empty. In Envoy each worker thread
//! has its own VM and therefore its own memo.

use std::collections::HashMap;
use std::hash::{BuildHasher, DefaultHasher, Hasher, RandomState};
use std::sync::{Arc, Mutex};

/// How many trailing bytes of a key are hashed.
const HASHED_TAIL: usize = 32;

/// Hashes a key's tail (see the module comment), seeded per memo.
#[derive(Default)]
struct TailState(RandomState);

impl BuildHasher for TailState {
    type Hasher = TailHasher;

    fn build_hasher(&self) -> TailHasher {
        TailHasher(self.0.build_hasher())
    }
}

/// A SipHash fed with the last [`HASHED_TAIL`] bytes of each write and the write's length.
struct TailHasher(DefaultHasher);

impl Hasher for TailHasher {
    fn write(&mut self, bytes: &[u8]) {
        let tail = bytes
            .get(bytes.len().saturating_sub(HASHED_TAIL)..)
            .unwrap_or(bytes);
        self.0.write(tail);
        self.0.write_usize(bytes.len());
    }

    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// Entries kept at most; when full, expired entries go, and if none had expired, all go (a
/// miss only costs one verification).
pub const CAPACITY: usize = 4096;

/// The memo.
#[derive(Debug)]
pub struct Memo<V> {
    map: Mutex<HashMap<String, (u64, Arc<V>), TailState>>,
}

impl std::fmt::Debug for TailState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TailState")
    }
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            map: Mutex::new(HashMap::default()),
        }
    }
}

impl<V> Memo<V> {
    /// The value for `key`, if present and `now` is before its end of validity.
    pub fn get(&self, key: &str, now: u64) -> Option<Arc<V>> {
        let map = self.map.lock().ok()?;
        match map.get(key) {
            Some((valid_until, v)) if now < *valid_until => Some(Arc::clone(v)),
            _ => None,
        }
    }

    /// Remembers `value` for `key` until `valid_until` (exclusive).
    pub fn put(&self, key: String, valid_until: u64, value: Arc<V>, now: u64) {
        let Ok(mut map) = self.map.lock() else { return };
        if map.len() >= CAPACITY {
            map.retain(|_, (until, _)| now < *until);
            if map.len() >= CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (valid_until, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_and_stays_bounded() {
        let m = Memo::default();
        m.put("a".into(), 10, Arc::new(1), 0);
        assert_eq!(m.get("a", 9).as_deref(), Some(&1));
        assert!(m.get("a", 10).is_none());
        for i in 0..CAPACITY + 10 {
            m.put(format!("k{i}"), 100, Arc::new(i), 50);
        }
        assert!(m.map.lock().unwrap().len() <= CAPACITY);
    }

    /// Only the tail is hashed, but a hit still needs the whole key: a credential that ends
    /// like a remembered one is not taken for it.
    #[test]
    fn keys_with_the_same_tail_stay_apart() {
        let m = Memo::default();
        let tail = "t".repeat(HASHED_TAIL + 8);
        m.put(format!("a{tail}"), 10, Arc::new(1), 0);
        assert!(m.get(&format!("b{tail}"), 1).is_none());
        assert!(m.get(&tail, 1).is_none());
        assert_eq!(m.get(&format!("a{tail}"), 1).as_deref(), Some(&1));
    }
}
