//! Built-in users' password hashes: PBKDF2-HMAC-SHA256 in the PHC-like form
//! `$pbkdf2-sha256$i=ITERATIONS,l=32$SALT$HASH` (salt and hash in unpadded standard base64, as
//! passlib and the PHC string format write them).

use std::fmt;

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::random::{self, Random, RandomError};

/// Iterations `hash-password` uses. OWASP's 2023 figure for PBKDF2-HMAC-SHA256 is 600 000;
/// we default lower because the hash runs on an Envoy worker thread, which serves nothing else
/// meanwhile (measured figures in the README), and throttling caps guesses per user.
pub const DEFAULT_ITERATIONS: u32 = 100_000;
/// The fewest iterations a configured hash may have.
pub const MIN_ITERATIONS: u32 = 10_000;
/// The most iterations accepted (a hash must not be able to stall a worker for seconds).
pub const MAX_ITERATIONS: u32 = 2_000_000;

/// A parsed password hash.
#[derive(Clone)]
pub struct PasswordHash {
    iterations: u32,
    salt: Vec<u8>,
    hash: Vec<u8>,
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PasswordHash(i={}, [redacted])", self.iterations)
    }
}

impl PasswordHash {
    /// Parses the stored form.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = text.split('$');
        let (Some(""), Some("pbkdf2-sha256"), Some(params), Some(salt), Some(hash), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err("expected $pbkdf2-sha256$i=N,l=32$SALT$HASH (make one with `sso-filter hash-password`)".into());
        };
        let mut iterations = None;
        for p in params.split(',') {
            match p.split_once('=') {
                Some(("i", n)) => iterations = n.parse::<u32>().ok(),
                Some(("l", "32")) => {}
                _ => return Err(format!("unknown parameter {p:?}")),
            }
        }
        let iterations = iterations.ok_or("missing i=ITERATIONS")?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(format!(
                "{iterations} iterations; between {MIN_ITERATIONS} and {MAX_ITERATIONS} required"
            ));
        }
        let salt = STANDARD_NO_PAD
            .decode(salt)
            .map_err(|_| "salt is not base64")?;
        let hash = STANDARD_NO_PAD
            .decode(hash)
            .map_err(|_| "hash is not base64")?;
        if salt.len() < 16 || hash.len() != 32 {
            return Err("salt must be at least 16 bytes and the hash 32".into());
        }
        Ok(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }

    /// Hashes a new password with a fresh salt.
    ///
    /// # Errors
    ///
    /// [`RandomError`] when no salt can be drawn.
    pub fn create(
        password: &str,
        iterations: u32,
        rng: &mut dyn Random,
    ) -> Result<Self, RandomError> {
        let salt = random::bytes(rng, 16)?;
        let hash = derive(password.as_bytes(), &salt, iterations);
        Ok(PasswordHash {
            iterations,
            salt,
            hash,
        })
    }

    /// Whether `password` matches, compared in constant time.
    pub fn verify(&self, password: &str) -> bool {
        let candidate = derive(password.as_bytes(), &self.salt, self.iterations);
        candidate.ct_eq(&self.hash).into()
    }

    /// The iteration count.
    pub fn iterations(&self) -> u32 {
        self.iterations
    }
}

impl fmt::Display for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "$pbkdf2-sha256$i={},l=32${}${}",
            self.iterations,
            STANDARD_NO_PAD.encode(&self.salt),
            STANDARD_NO_PAD.encode(&self.hash)
        )
    }
}

fn derive(password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
    out
}

impl PasswordHash {
    /// A hash no password matches in practice, with the given cost: verified against when the
    /// user does not exist, so unknown and known users take the same time.
    pub fn dummy(iterations: u32) -> Self {
        PasswordHash {
            iterations,
            salt: b"sso-filter-dummy-salt".to_vec(),
            hash: vec![0u8; 32],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SystemRandom;

    #[test]
    fn round_trip_and_python_vector() {
        let h = PasswordHash::create("s3cret", MIN_ITERATIONS, &mut SystemRandom).unwrap();
        let parsed = PasswordHash::parse(&h.to_string()).unwrap();
        assert!(parsed.verify("s3cret"));
        assert!(!parsed.verify("s3cret "));
        // hashlib.pbkdf2_hmac('sha256', b'password', b'0123456789abcdef', 10000, 32), encoded by
        // base64.b64encode(...).rstrip(b'=') — an independent implementation.
        let py = "$pbkdf2-sha256$i=10000,l=32$MDEyMzQ1Njc4OWFiY2RlZg$0YdT6cDcX5qiDagy0ie+FrM2RN8V8MC0buKrDrj+aAU";
        assert!(PasswordHash::parse(py).unwrap().verify("password"));
        assert!(PasswordHash::parse("$pbkdf2-sha256$i=10,l=32$MDEyMzQ1Njc4OWFiY2RlZg$0YdT6cDcX5qiDagy0ie+FrM2RN8V8MC0buKrDrj+aAU").is_err());
        assert!(PasswordHash::parse("plain").is_err());
    }
}
