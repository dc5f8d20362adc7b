//! JWS compact verification (RFC 7515 §5.2) against keys fixed by configuration.

use serde_json::{Map, Value};

use super::keys::{JwsAlg, VerifyKey};
use super::{b64_segment, check_no_extensions, strict_object, JoseError, MAX_TOKEN_BYTES};

/// A verified token: its protected header and its claims.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The protected header.
    pub header: Map<String, Value>,
    /// The claims (payload), a JSON object.
    pub claims: Map<String, Value>,
}

/// Verifies compact JWS tokens for one algorithm with one or more keys.
#[derive(Clone, Debug)]
pub struct Verifier {
    alg: JwsAlg,
    /// Keys with their `kid`; a key without `kid` answers any `kid` (a single configured key).
    keys: Vec<(Option<String>, VerifyKey)>,
}

impl Verifier {
    /// A verifier for `alg` with these keys. `keys` is never empty (configuration checks it).
    pub fn new(alg: JwsAlg, keys: Vec<(Option<String>, VerifyKey)>) -> Self {
        Verifier { alg, keys }
    }

    /// The configured algorithm.
    pub fn alg(&self) -> JwsAlg {
        self.alg
    }

    /// Verifies a compact JWS and returns its header and claims. Time claims are not checked
    /// here (see [`super::claims`]).
    ///
    /// # Errors
    ///
    /// [`JoseError`] naming the first check that failed.
    pub fn verify(&self, token: &str) -> Result<Verified, JoseError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JoseError::TooLarge);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JoseError::Malformed);
        };
        if h.is_empty() || p.is_empty() {
            return Err(JoseError::Malformed);
        }
        let header = strict_object(&b64_segment(h)?)?;
        match header.get("alg") {
            Some(Value::String(alg)) if alg == self.alg.name() => {}
            _ => return Err(JoseError::Algorithm),
        }
        check_no_extensions(&header)?;
        // An empty signature is never valid: every algorithm we accept signs.
        if s.is_empty() {
            return Err(JoseError::Signature);
        }
        let signature = b64_segment(s)?;
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => return Err(JoseError::Malformed),
        };
        // `jwk`, `jku`, `x5u`, `x5c` are never looked at: keys come from configuration only
        // (security.md J5).
        let signing_input = token
            .get(..h.len() + 1 + p.len())
            .ok_or(JoseError::Malformed)?
            .as_bytes();
        let mut candidates = self
            .keys
            .iter()
            .filter(|(key_id, _)| match (key_id, kid) {
                (None, _) => true,
                (Some(configured), Some(given)) => configured == given,
                (Some(_), None) => true,
            })
            .peekable();
        if candidates.peek().is_none() {
            return Err(JoseError::UnknownKey);
        }
        if !candidates.any(|(_, key)| key.verify(self.alg, signing_input, &signature)) {
            return Err(JoseError::Signature);
        }
        let claims = strict_object(&b64_segment(p)?)?;
        Ok(Verified { header, claims })
    }
}
