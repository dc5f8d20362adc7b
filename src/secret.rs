//! A credential from configuration (a client secret, an app secret, a store password): never
//! printed, not even by `{:?}` of the structure that holds it.

use std::fmt;

use serde::Deserialize;

/// A credential: its `Debug` is `Secret([redacted])`.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value.
    ///
    /// # Security
    ///
    /// Only for building the request that sends it to its owner; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether it is empty or blank (refused at load).
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}
