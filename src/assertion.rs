//! The signed identity assertion: a short-lived JWT the filter signs on each forwarded request,
//! so the upstream can verify the identity instead of trusting headers (useful when the
//! network between proxy and upstream is not trusted).

use base64::Engine;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key};
use jwt_compact::{Algorithm, AlgorithmSignature};
use p256::pkcs8::DecodePrivateKey;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ConfigError;
use crate::identity::Identity;
use crate::jose::keys::decode_b64_any;
use crate::jose::B64URL;

/// `assertion` as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssertion {
    #[serde(default = "default_header")]
    header: String,
    alg: String,
    #[serde(default)]
    secret_base64: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
    #[serde(default = "default_ttl")]
    ttl_seconds: u64,
    #[serde(default)]
    audience: Option<String>,
}

/// The assertion header's default name, stripped from every request even when assertions
/// are off.
pub const DEFAULT_HEADER: &str = "x-sso-assertion";

fn default_header() -> String {
    DEFAULT_HEADER.into()
}

fn default_ttl() -> u64 {
    60
}

enum SignKey {
    Hs256(Vec<u8>),
    Es256(Box<p256::ecdsa::SigningKey>),
    EdDsa(Box<ed25519_dalek::SigningKey>),
}

/// Signs identity assertions.
pub struct AssertionSigner {
    header: String,
    key: SignKey,
    ttl: u64,
    issuer: String,
    audience: Option<String>,
}

impl std::fmt::Debug for AssertionSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AssertionSigner({}, [redacted])", self.header)
    }
}

impl AssertionSigner {
    /// Parses the configuration; the issuer is the filter's origin.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawAssertion, origin: &str) -> Result<Self, ConfigError> {
        let err = |field: &str, reason: String| ConfigError {
            path: format!("assertion.{field}"),
            reason,
        };
        if raw.ttl_seconds == 0 || raw.ttl_seconds > 3600 {
            return Err(err("ttl_seconds", "must be between 1 and 3600".into()));
        }
        let key = match (raw.alg.as_str(), raw.secret_base64, raw.private_key) {
            ("HS256", Some(secret), None) => {
                let bytes = decode_b64_any(secret.trim())
                    .ok_or_else(|| err("secret_base64", "not base64".into()))?;
                if bytes.len() < 32 {
                    return Err(err("secret_base64", "at least 32 bytes required".into()));
                }
                SignKey::Hs256(bytes)
            }
            ("ES256", None, Some(pem)) => SignKey::Es256(Box::new(
                p256::ecdsa::SigningKey::from_pkcs8_pem(pem.trim())
                    .map_err(|e| err("private_key", format!("not a P-256 PKCS#8 PEM key: {e}")))?,
            )),
            ("EdDSA", None, Some(pem)) => SignKey::EdDsa(Box::new(
                ed25519_dalek::SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| {
                    err("private_key", format!("not an Ed25519 PKCS#8 PEM key: {e}"))
                })?,
            )),
            ("HS256", _, _) => {
                return Err(err(
                    "secret_base64",
                    "HS256 takes secret_base64 only".into(),
                ))
            }
            ("ES256" | "EdDSA", _, _) => {
                return Err(err(
                    "private_key",
                    "takes private_key (PKCS#8 PEM) only".into(),
                ))
            }
            (other, _, _) => {
                return Err(err(
                    "alg",
                    format!("{other:?} is not one of HS256, ES256, EdDSA"),
                ))
            }
        };
        Ok(AssertionSigner {
            header: raw.header,
            key,
            ttl: raw.ttl_seconds,
            issuer: origin.to_owned(),
            audience: raw.audience,
        })
    }

    /// The header the assertion travels in.
    pub fn header(&self) -> &str {
        &self.header
    }

    /// Signs an assertion for `id`, valid from `now` for the configured TTL.
    pub fn sign(&self, id: &Identity, now: u64) -> String {
        let alg = match self.key {
            SignKey::Hs256(_) => "HS256",
            SignKey::Es256(_) => "ES256",
            SignKey::EdDsa(_) => "EdDSA",
        };
        let mut claims = match serde_json::to_value(id) {
            Ok(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("sub".into(), json!(id.login));
        claims.insert("iat".into(), json!(now));
        claims.insert("exp".into(), json!(now.saturating_add(self.ttl)));
        if let Some(aud) = &self.audience {
            claims.insert("aud".into(), json!(aud));
        }
        let header = B64URL.encode(json!({"alg": alg, "typ": "JWT"}).to_string());
        let payload = B64URL.encode(Value::Object(claims).to_string());
        let input = format!("{header}.{payload}");
        let signature = match &self.key {
            SignKey::Hs256(k) => Hs256
                .sign(&Hs256Key::new(k), input.as_bytes())
                .as_bytes()
                .into_owned(),
            SignKey::Es256(k) => Es256.sign(k, input.as_bytes()).as_bytes().into_owned(),
            SignKey::EdDsa(k) => Ed25519.sign(k, input.as_bytes()).as_bytes().into_owned(),
        };
        format!("{input}.{}", B64URL.encode(signature))
    }
}
