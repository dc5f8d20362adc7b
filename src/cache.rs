//! The process-wide cache the engine owns through its host: proxy-wasm shared data in Envoy
//! (one per Envoy process, shared by its workers), a module-level map at the edge (one per
//! isolate). Used for throttling counters and replay caches; later for JWKS and app tokens.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

/// A compare-and-swap token: the version a value was read at.
pub type Version = u32;

/// A shared key-value store with compare-and-swap writes.
pub trait SharedCache {
    /// Reads a value and its version; `None` when absent.
    ///
    /// # Errors
    ///
    /// [`CacheError`] when the store cannot be read; callers fail closed.
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>, CacheError>;

    /// Writes a value if the stored version still equals `version` (`None`: write
    /// unconditionally).
    ///
    /// # Errors
    ///
    /// [`CacheError::Conflict`] when someone else wrote first, [`CacheError::Unavailable`]
    /// when the store cannot be written.
    fn set(&self, key: &str, value: &[u8], version: Option<Version>) -> Result<(), CacheError>;
}

/// A cache operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheError {
    /// The value changed since it was read.
    Conflict,
    /// The store is not usable.
    Unavailable,
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::Conflict => f.write_str("cache write conflict"),
            CacheError::Unavailable => f.write_str("cache unavailable"),
        }
    }
}

/// Reads, changes and writes one value with compare-and-swap, retrying a few times on
/// conflicts (another worker wrote between our read and our write).
///
/// # Errors
///
/// [`CacheError`] when the store fails or the conflicts do not stop.
pub fn update<T>(
    cache: &dyn SharedCache,
    key: &str,
    mut change: impl FnMut(Option<&[u8]>) -> (Vec<u8>, T),
) -> Result<T, CacheError> {
    for _ in 0..8 {
        let current = cache.get(key)?;
        let creating = current.is_none();
        let (value, result) = change(current.as_ref().map(|(v, _)| v.as_slice()));
        match cache.set(key, &value, current.map(|(_, version)| version)) {
            // Creating a key cannot be conditional in proxy-wasm shared data: another worker
            // creating it at the same moment may have overwritten this write. Read it back; if
            // it is not ours, apply the change again to what is there now, by version. (When
            // another worker already changed it on top of ours, the change runs again on a
            // value that holds it: a single-use item then reads as used, which refuses rather
            // than forgets.)
            Ok(()) if creating => match cache.get(key)? {
                Some((now, _)) if now == value => return Ok(result),
                _ => continue,
            },
            Ok(()) => return Ok(result),
            Err(CacheError::Conflict) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(CacheError::Conflict)
}

/// An in-memory cache for one thread: native tests, the CLI and the edge isolate.
#[derive(Debug, Default)]
pub struct MemoryCache {
    map: RefCell<HashMap<String, (Vec<u8>, Version)>>,
}

impl SharedCache for MemoryCache {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, Version)>, CacheError> {
        Ok(self.map.borrow().get(key).cloned())
    }

    fn set(&self, key: &str, value: &[u8], version: Option<Version>) -> Result<(), CacheError> {
        let mut map = self.map.borrow_mut();
        let next = match (map.get(key), version) {
            // Same semantics as proxy-wasm shared data: no version writes unconditionally.
            (Some((_, current)), Some(v)) if *current != v => return Err(CacheError::Conflict),
            (None, Some(_)) => return Err(CacheError::Conflict),
            (Some((_, current)), _) => current.wrapping_add(1),
            (None, None) => 1,
        };
        map.insert(key.to_owned(), (value.to_vec(), next));
        Ok(())
    }
}
