//! JOSE: the parts of JWS (RFC 7515), JWE (RFC 7516) and JWA (RFC 7518) the filter needs,
//! written to be strict where the attacks of `security.md` J and K live.
//!
//! - Compact serialisation only, exact segment counts, base64url without padding and with
//!   canonical trailing bits.
//! - Headers and claims are JSON objects without duplicate keys.
//! - The algorithm comes from configuration; the token's `alg` must equal it.
//! - Signature arithmetic is `jwt-compact`'s (RustCrypto underneath); key encodings and
//!   JWE content encryption are ours, on the `rsa`, `aes`, `cbc`, `hmac` and `aes-gcm` crates.

use std::fmt;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

pub mod claims;
pub mod content;
pub mod jwe;
pub mod jws;
pub mod keys;

/// Base64url without padding, refusing padding and non-canonical trailing bits (RFC 7515 §2).
pub const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Standard base64 as Java's `Base64.getEncoder()` prints it (padding optional on input).
pub const B64STD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// The longest token the filter decodes at all (URL parameters and bearer headers alike).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a token was refused. The variants are for logs and counters; clients see one generic
/// message, so a response never tells an attacker which check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JoseError {
    /// The token's `alg`/`enc` is not the configured one, or is `none`.
    Algorithm,
    /// `aud` does not contain the configured audience.
    Audience,
    /// A claim has the wrong JSON type (a string `exp`, a number `iss`, ...).
    ClaimType,
    /// The header names a `crit` extension or `b64: false`; we implement none.
    Critical,
    /// The JWE content is compressed (`zip`), which we refuse outright.
    Compressed,
    /// JWE decryption or integrity check failed (one error for every cause).
    Decryption,
    /// `exp` is in the past, beyond the leeway.
    Expired,
    /// `iat` is in the future beyond the leeway.
    IssuedInFuture,
    /// `iss` is not the configured issuer.
    Issuer,
    /// Not a compact JWS/JWE, bad base64url, bad JSON, duplicate keys, ...
    Malformed,
    /// A claim the configuration requires (`exp`, `jti`, `iat`) is absent.
    MissingClaim,
    /// `nbf` is in the future, beyond the leeway.
    NotYetValid,
    /// The token was used before and the method allows one use only.
    Replayed,
    /// The signature does not verify.
    Signature,
    /// `iat` is older than the configured maximum age.
    TooOld,
    /// The token is larger than [`MAX_TOKEN_BYTES`].
    TooLarge,
    /// No configured key has the token's `kid`.
    UnknownKey,
    /// A JWE whose content is not a signed JWT (anyone with the public key can encrypt).
    Unsigned,
}

impl JoseError {
    /// A short stable name for counters and log lines.
    pub fn reason(self) -> &'static str {
        match self {
            JoseError::Algorithm => "algorithm",
            JoseError::Audience => "audience",
            JoseError::ClaimType => "claim_type",
            JoseError::Critical => "critical",
            JoseError::Compressed => "compressed",
            JoseError::Decryption => "decryption",
            JoseError::Expired => "expired",
            JoseError::IssuedInFuture => "issued_in_future",
            JoseError::Issuer => "issuer",
            JoseError::Malformed => "malformed",
            JoseError::MissingClaim => "missing_claim",
            JoseError::NotYetValid => "not_yet_valid",
            JoseError::Replayed => "replayed",
            JoseError::Signature => "signature",
            JoseError::TooOld => "too_old",
            JoseError::TooLarge => "too_large",
            JoseError::UnknownKey => "unknown_key",
            JoseError::Unsigned => "unsigned",
        }
    }
}

impl fmt::Display for JoseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Decodes one base64url segment strictly.
pub(crate) fn b64_segment(segment: &str) -> Result<Vec<u8>, JoseError> {
    B64URL.decode(segment).map_err(|_| JoseError::Malformed)
}

/// Parses a JSON object, refusing duplicate keys at any depth (security.md J11) and anything
/// that is not an object at the top.
pub fn strict_object(bytes: &[u8]) -> Result<Map<String, Value>, JoseError> {
    let value: StrictValue = serde_json::from_slice(bytes).map_err(|_| JoseError::Malformed)?;
    match value.0 {
        Value::Object(map) => Ok(map),
        _ => Err(JoseError::Malformed),
    }
}

/// A `serde_json::Value` whose deserialisation fails on a duplicate object key.
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JSON")
    }

    fn visit_bool<E>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictValue, E> {
        serde_json::Number::from_f64(v)
            .map(|n| StrictValue(Value::Number(n)))
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(StrictValue(Value::Array(items)))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictValue, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let StrictValue(value) = access.next_value()?;
            if map.insert(key, value).is_some() {
                return Err(de::Error::custom("duplicate key"));
            }
        }
        Ok(StrictValue(Value::Object(map)))
    }
}

/// Refuses the header members we do not implement: any `crit` (RFC 7515 §4.1.11 says a
/// recipient must reject extensions it does not understand) and unencoded payloads (RFC 7797).
pub(crate) fn check_no_extensions(header: &Map<String, Value>) -> Result<(), JoseError> {
    if header.contains_key("crit") || header.contains_key("b64") {
        return Err(JoseError::Critical);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(strict_object(br#"{"a":1,"a":2}"#).is_err());
        assert!(strict_object(br#"{"a":{"b":1,"b":1}}"#).is_err());
        assert!(strict_object(br#"[1]"#).is_err());
        assert!(strict_object(br#"{"a":[{"b":1}],"c":1.5}"#).is_ok());
    }

    #[test]
    fn base64url_is_strict() {
        assert!(b64_segment("YQ").is_ok());
        assert!(b64_segment("YQ==").is_err());
        assert!(b64_segment("YR").is_err(), "non-canonical trailing bits");
        assert!(b64_segment("Y+").is_err());
        assert!(b64_segment("Y Q").is_err());
    }
}
