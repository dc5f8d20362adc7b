//! A small bounded memo of verified credentials, per worker: a session cookie or bearer token
//! that opened or verified once is not decrypted or verified again until it expires.
//!
//! The key is the whole credential as received, so a hit means byte-for-byte the same sealed
//! cookie or signed token that passed every check; expiry is checked on every hit. The memo is
//! per `Filter`, so a configuration change (new keys) starts empty. In Envoy each worker thread
//! has its own VM and therefore its own memo.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Entries kept at most; when full, expired entries go, and if none had expired, all go (a
/// miss only costs one verification).
pub const CAPACITY: usize = 4096;

/// The memo.
#[derive(Debug)]
pub struct Memo<V> {
    map: Mutex<HashMap<String, (u64, Arc<V>)>>,
}

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo {
            map: Mutex::new(HashMap::new()),
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
}
