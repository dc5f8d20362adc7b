//! JWE compact decryption (RFC 7516 §5.2) with RSA-OAEP key transport.

use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey};
use serde_json::Value;

use super::content::ContentAlg;
use super::{b64_segment, check_no_extensions, strict_object, JoseError, MAX_TOKEN_BYTES};
use crate::random::{Random, RngAdapter};

/// A key-management algorithm (`alg` of a JWE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAlg {
    /// RSAES-OAEP with SHA-1 and MGF1-SHA-1 (RFC 7518 §4.3).
    RsaOaep,
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 7518 §4.3).
    RsaOaep256,
}

impl KeyAlg {
    /// Parses the `alg` name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "RSA-OAEP" => Some(KeyAlg::RsaOaep),
            "RSA-OAEP-256" => Some(KeyAlg::RsaOaep256),
            _ => None,
        }
    }

    /// The `alg` name.
    pub fn name(self) -> &'static str {
        match self {
            KeyAlg::RsaOaep => "RSA-OAEP",
            KeyAlg::RsaOaep256 => "RSA-OAEP-256",
        }
    }
}

/// Decrypts compact JWEs made for one (alg, enc) pair and one private key.
#[derive(Clone)]
pub struct Decrypter {
    alg: KeyAlg,
    enc: ContentAlg,
    key: RsaPrivateKey,
}

impl std::fmt::Debug for Decrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Decrypter({}, {}, [redacted])",
            self.alg.name(),
            self.enc.name()
        )
    }
}

/// A decrypted JWE: its protected header and plaintext.
#[derive(Debug)]
pub struct Decrypted {
    /// The `cty` header, when present.
    pub content_type: Option<String>,
    /// The plaintext.
    pub plaintext: Vec<u8>,
}

impl Decrypter {
    /// A decrypter. The key was checked at load (size, consistency).
    pub fn new(alg: KeyAlg, enc: ContentAlg, key: RsaPrivateKey) -> Self {
        Decrypter { alg, enc, key }
    }

    /// Decrypts a compact JWE.
    ///
    /// Every cryptographic failure is the same [`JoseError::Decryption`]. When RSA decryption of
    /// the content key fails, a random key is used and the content check fails later, so that
    /// padding errors and tag errors look and take alike (RFC 7516 §11.5, security.md K4).
    ///
    /// # Errors
    ///
    /// [`JoseError`] for any structural, algorithm or decryption failure.
    pub fn decrypt(&self, token: &str, rng: &mut dyn Random) -> Result<Decrypted, JoseError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JoseError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(k), Some(iv), Some(c), Some(t), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(JoseError::Malformed);
        };
        if h.is_empty() {
            return Err(JoseError::Malformed);
        }
        let header = strict_object(&b64_segment(h)?)?;
        // Allow-list before any cryptography (security.md K1).
        match (header.get("alg"), header.get("enc")) {
            (Some(Value::String(alg)), Some(Value::String(enc)))
                if alg == self.alg.name() && enc == self.enc.name() => {}
            _ => return Err(JoseError::Algorithm),
        }
        if header.contains_key("zip") {
            return Err(JoseError::Compressed);
        }
        check_no_extensions(&header)?;
        let content_type = match header.get("cty") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(JoseError::Malformed),
        };
        let encrypted_key = b64_segment(k)?;
        let iv = b64_segment(iv)?;
        let ciphertext = b64_segment(c)?;
        let tag = b64_segment(t)?;
        if encrypted_key.len() != self.key.size() {
            return Err(JoseError::Decryption);
        }
        let mut adapter = RngAdapter::new(rng);
        let unwrapped = match self.alg {
            KeyAlg::RsaOaep => {
                self.key
                    .decrypt_blinded(&mut adapter, Oaep::new::<sha1::Sha1>(), &encrypted_key)
            }
            KeyAlg::RsaOaep256 => {
                self.key
                    .decrypt_blinded(&mut adapter, Oaep::new::<sha2::Sha256>(), &encrypted_key)
            }
        };
        let cek = match unwrapped {
            Ok(cek) if cek.len() == self.enc.key_len() && cek.iter().any(|&b| b != 0) => cek,
            _ => {
                let mut fake = vec![0u8; self.enc.key_len()];
                adapter.fill(&mut fake);
                fake
            }
        };
        if adapter.failed() {
            // No randomness: we cannot blind, so we do not decrypt (security.md A9).
            return Err(JoseError::Decryption);
        }
        let plaintext = self
            .enc
            .decrypt(&cek, &iv, &ciphertext, &tag, h.as_bytes())?;
        Ok(Decrypted {
            content_type,
            plaintext,
        })
    }
}
