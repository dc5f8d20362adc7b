//! Configuration errors, at the bottom of the layers: every part of the configuration (the
//! methods' own fields included) reports a problem the same way, by JSON path.

use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;

/// A configuration error: where, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// JSON path of the offending value (`methods.jwt-param.verify.alg`); empty for the root.
    pub path: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() || self.path == "." {
            write!(f, "configuration: {}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Deserialises `value` as `T`, reporting the JSON path (prefixed by `at`) of any error.
pub(crate) fn parse_at<T: DeserializeOwned>(value: Value, at: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let path = match (at.is_empty(), inner.as_str()) {
            (true, _) => inner.clone(),
            (false, ".") => at.to_owned(),
            (false, _) => format!("{at}.{inner}"),
        };
        ConfigError::at(path, e.into_inner().to_string())
    })
}
