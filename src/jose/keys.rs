//! Keys from configuration, parsed and checked once at load (security.md A3, J3): a key is
//! bound to one algorithm, so an RSA public key can never become an HMAC secret.

use std::fmt;

use base64::Engine;
use jwt_compact::alg::{Hs256Key, Hs384Key, Hs512Key};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{Algorithm, AlgorithmSignature};
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};

use super::{B64STD, B64URL};

/// The smallest RSA modulus we accept, in bits (RFC 7518 §3.3, §4.2).
pub const MIN_RSA_BITS: usize = 2048;

/// A JWS algorithm the configuration may name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwsAlg {
    /// HMAC SHA-256.
    Hs256,
    /// HMAC SHA-384.
    Hs384,
    /// HMAC SHA-512.
    Hs512,
    /// RSASSA-PKCS1-v1_5 SHA-256.
    Rs256,
    /// RSASSA-PKCS1-v1_5 SHA-384.
    Rs384,
    /// RSASSA-PKCS1-v1_5 SHA-512.
    Rs512,
    /// RSASSA-PSS SHA-256.
    Ps256,
    /// RSASSA-PSS SHA-384.
    Ps384,
    /// RSASSA-PSS SHA-512.
    Ps512,
    /// ECDSA P-256 SHA-256.
    Es256,
    /// Ed25519.
    EdDsa,
}

impl JwsAlg {
    /// Parses an `alg` name exactly (no case folding: `None`/`NONE` are simply unknown).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "HS256" => JwsAlg::Hs256,
            "HS384" => JwsAlg::Hs384,
            "HS512" => JwsAlg::Hs512,
            "RS256" => JwsAlg::Rs256,
            "RS384" => JwsAlg::Rs384,
            "RS512" => JwsAlg::Rs512,
            "PS256" => JwsAlg::Ps256,
            "PS384" => JwsAlg::Ps384,
            "PS512" => JwsAlg::Ps512,
            "ES256" => JwsAlg::Es256,
            "EdDSA" => JwsAlg::EdDsa,
            _ => return None,
        })
    }

    /// The `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            JwsAlg::Hs256 => "HS256",
            JwsAlg::Hs384 => "HS384",
            JwsAlg::Hs512 => "HS512",
            JwsAlg::Rs256 => "RS256",
            JwsAlg::Rs384 => "RS384",
            JwsAlg::Rs512 => "RS512",
            JwsAlg::Ps256 => "PS256",
            JwsAlg::Ps384 => "PS384",
            JwsAlg::Ps512 => "PS512",
            JwsAlg::Es256 => "ES256",
            JwsAlg::EdDsa => "EdDSA",
        }
    }

    fn family(self) -> Family {
        match self {
            JwsAlg::Hs256 | JwsAlg::Hs384 | JwsAlg::Hs512 => Family::Hmac,
            JwsAlg::Rs256
            | JwsAlg::Rs384
            | JwsAlg::Rs512
            | JwsAlg::Ps256
            | JwsAlg::Ps384
            | JwsAlg::Ps512 => Family::Rsa,
            JwsAlg::Es256 => Family::P256,
            JwsAlg::EdDsa => Family::Ed25519,
        }
    }

    /// Minimum HMAC key length: the hash output size (RFC 7518 §3.2).
    fn min_hmac_len(self) -> usize {
        match self {
            JwsAlg::Hs384 => 48,
            JwsAlg::Hs512 => 64,
            _ => 32,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Hmac,
    Rsa,
    P256,
    Ed25519,
}

/// Key material for verifying one algorithm's signatures.
#[derive(Clone)]
pub enum VerifyKey {
    /// An HMAC secret.
    Hmac(Vec<u8>),
    /// An RSA public key of at least [`MIN_RSA_BITS`].
    Rsa(RsaPublicKey),
    /// A P-256 public key.
    P256(p256::ecdsa::VerifyingKey),
    /// An Ed25519 public key.
    Ed25519(ed25519_dalek::VerifyingKey),
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyKey::Hmac(_) => f.write_str("Hmac([redacted])"),
            VerifyKey::Rsa(k) => write!(f, "Rsa({} bits)", k.size() * 8),
            VerifyKey::P256(_) => f.write_str("P256"),
            VerifyKey::Ed25519(_) => f.write_str("Ed25519"),
        }
    }
}

impl VerifyKey {
    /// An HMAC secret for `alg`, refused when shorter than the hash output.
    pub fn hmac(alg: JwsAlg, secret: Vec<u8>) -> Result<Self, String> {
        if alg.family() != Family::Hmac {
            return Err(format!(
                "a secret cannot verify {}; give public_key or jwks",
                alg.name()
            ));
        }
        if secret.len() < alg.min_hmac_len() {
            return Err(format!(
                "{} needs a secret of at least {} bytes (RFC 7518 §3.2), got {}",
                alg.name(),
                alg.min_hmac_len(),
                secret.len()
            ));
        }
        Ok(VerifyKey::Hmac(secret))
    }

    /// A public key for `alg` from PEM (SubjectPublicKeyInfo, or PKCS#1 `RSA PUBLIC KEY`) or
    /// base64 DER SubjectPublicKeyInfo (what Java's `PublicKey.getEncoded()` prints).
    pub fn public(alg: JwsAlg, text: &str) -> Result<Self, String> {
        let text = text.trim();
        let der = if text.starts_with("-----BEGIN") {
            None
        } else {
            let compact: String = text.split_whitespace().collect();
            Some(decode_b64_any(&compact).ok_or("neither PEM nor base64 DER")?)
        };
        match alg.family() {
            Family::Hmac => Err(format!(
                "{} takes secret or secret_base64, not public_key",
                alg.name()
            )),
            Family::Rsa => {
                let key = match &der {
                    Some(der) => RsaPublicKey::from_public_key_der(der)
                        .or_else(|_| RsaPublicKey::from_pkcs1_der(der))
                        .map_err(|e| format!("not an RSA public key: {e}"))?,
                    None => RsaPublicKey::from_public_key_pem(text)
                        .or_else(|_| RsaPublicKey::from_pkcs1_pem(text))
                        .map_err(|e| format!("not an RSA public key: {e}"))?,
                };
                Self::rsa(key)
            }
            Family::P256 => {
                let key = match &der {
                    Some(der) => p256::ecdsa::VerifyingKey::from_public_key_der(der),
                    None => p256::ecdsa::VerifyingKey::from_public_key_pem(text),
                }
                .map_err(|e| format!("not a P-256 public key: {e}"))?;
                Ok(VerifyKey::P256(key))
            }
            Family::Ed25519 => {
                let key = match &der {
                    Some(der) => ed25519_dalek::VerifyingKey::from_public_key_der(der),
                    None => ed25519_dalek::VerifyingKey::from_public_key_pem(text),
                }
                .map_err(|e| format!("not an Ed25519 public key: {e}"))?;
                Ok(VerifyKey::Ed25519(key))
            }
        }
    }

    /// A key from one JWK, which must suit `alg` (and name it, when it names one).
    pub fn from_jwk(alg: JwsAlg, jwk: &serde_json::Value) -> Result<Self, String> {
        if let Some(named) = jwk.get("alg").and_then(|a| a.as_str()) {
            if named != alg.name() {
                return Err(format!(
                    "key is for {named}, the method verifies {}",
                    alg.name()
                ));
            }
        }
        let parsed: JsonWebKey<'_> =
            serde_json::from_value(jwk.clone()).map_err(|e| format!("not a JWK: {e}"))?;
        match alg.family() {
            Family::Hmac => {
                let k = jwk
                    .get("k")
                    .and_then(|k| k.as_str())
                    .ok_or("oct key without k")?;
                let secret = B64URL
                    .decode(k)
                    .map_err(|_| "k is not base64url".to_owned())?;
                Self::hmac(alg, secret)
            }
            Family::Rsa => {
                let key =
                    RsaPublicKey::try_from(&parsed).map_err(|e| format!("not an RSA JWK: {e}"))?;
                Self::rsa(key)
            }
            Family::P256 => {
                let key = p256::ecdsa::VerifyingKey::try_from(&parsed)
                    .map_err(|e| format!("not a P-256 JWK: {e}"))?;
                Ok(VerifyKey::P256(key))
            }
            Family::Ed25519 => {
                let key = ed25519_dalek::VerifyingKey::try_from(&parsed)
                    .map_err(|e| format!("not an Ed25519 JWK: {e}"))?;
                Ok(VerifyKey::Ed25519(key))
            }
        }
    }

    fn rsa(key: RsaPublicKey) -> Result<Self, String> {
        let bits = key.size() * 8;
        if bits < MIN_RSA_BITS {
            return Err(format!(
                "RSA key of {bits} bits; at least {MIN_RSA_BITS} required"
            ));
        }
        Ok(VerifyKey::Rsa(key))
    }

    /// Verifies `signature` over `message` with this key under `alg`. A key of the wrong
    /// family for `alg` never verifies.
    pub fn verify(&self, alg: JwsAlg, message: &[u8], signature: &[u8]) -> bool {
        use jwt_compact::alg as a;
        fn check<A: Algorithm>(
            alg: &A,
            key: &A::VerifyingKey,
            message: &[u8],
            signature: &[u8],
        ) -> bool {
            // Exact signature length first (security.md J2), then the arithmetic.
            if let Some(len) = A::Signature::LENGTH {
                if signature.len() != len.get() {
                    return false;
                }
            }
            match A::Signature::try_from_slice(signature) {
                Ok(sig) => alg.verify_signature(&sig, key, message),
                Err(_) => false,
            }
        }
        match (self, alg) {
            (VerifyKey::Hmac(s), JwsAlg::Hs256) => {
                check(&a::Hs256, &Hs256Key::new(s), message, signature)
            }
            (VerifyKey::Hmac(s), JwsAlg::Hs384) => {
                check(&a::Hs384, &Hs384Key::new(s), message, signature)
            }
            (VerifyKey::Hmac(s), JwsAlg::Hs512) => {
                check(&a::Hs512, &Hs512Key::new(s), message, signature)
            }
            (VerifyKey::Rsa(k), _) if alg.family() == Family::Rsa => {
                if signature.len() != k.size() {
                    return false;
                }
                let rsa_alg = match alg {
                    JwsAlg::Rs256 => a::Rsa::rs256(),
                    JwsAlg::Rs384 => a::Rsa::rs384(),
                    JwsAlg::Rs512 => a::Rsa::rs512(),
                    JwsAlg::Ps256 => a::Rsa::ps256(),
                    JwsAlg::Ps384 => a::Rsa::ps384(),
                    _ => a::Rsa::ps512(),
                };
                check(&rsa_alg, k, message, signature)
            }
            (VerifyKey::P256(k), JwsAlg::Es256) => check(&a::Es256, k, message, signature),
            (VerifyKey::Ed25519(k), JwsAlg::EdDsa) => check(&a::Ed25519, k, message, signature),
            _ => false,
        }
    }
}

/// An RSA private key for JWE key transport, from PEM (PKCS#8 or PKCS#1) or base64 DER PKCS#8
/// (what Java's `PrivateKey.getEncoded()` prints).
pub fn rsa_private_key(text: &str) -> Result<RsaPrivateKey, String> {
    let text = text.trim();
    let key = if text.starts_with("-----BEGIN") {
        RsaPrivateKey::from_pkcs8_pem(text)
            .or_else(|_| RsaPrivateKey::from_pkcs1_pem(text))
            .map_err(|e| format!("not an RSA private key: {e}"))?
    } else {
        let compact: String = text.split_whitespace().collect();
        let der = decode_b64_any(&compact).ok_or("neither PEM nor base64 DER")?;
        RsaPrivateKey::from_pkcs8_der(&der)
            .or_else(|_| RsaPrivateKey::from_pkcs1_der(&der))
            .map_err(|e| format!("not an RSA private key: {e}"))?
    };
    key.validate()
        .map_err(|e| format!("inconsistent RSA private key: {e}"))?;
    let bits = key.size() * 8;
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key of {bits} bits; at least {MIN_RSA_BITS} required"
        ));
    }
    Ok(key)
}

/// Decodes standard or URL-safe base64, padded or not (operators paste either).
pub fn decode_b64_any(text: &str) -> Option<Vec<u8>> {
    B64STD
        .decode(text)
        .ok()
        .or_else(|| B64URL.decode(text.trim_end_matches('=')).ok())
}
