//! ID-token verification (OpenID Connect Core 1.0 §3.1.3.7).

use serde_json::{Map, Value};

use super::OAuth2;
use crate::idp::IdpFailure;
use crate::jose::claims::{numeric_date, ClaimRules};
use crate::jose::jws::Verifier;
use crate::jose::keys::{JwsAlg, VerifyKey};
use crate::jose::{strict_object, JoseError};

impl OAuth2 {
    /// Verifies an ID token against a JWKS (OIDC Core §3.1.3.7). `Ok(None)` means the token's
    /// `kid` is not in this JWKS (the caller may refetch once).
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for every other failure.
    pub fn verify_id_token(
        &self,
        id_token: &str,
        jwks: &Value,
        nonce: &str,
        now: u64,
    ) -> Result<Option<Map<String, Value>>, IdpFailure> {
        let header_b64 = id_token.split('.').next().unwrap_or("");
        let header = crate::jose::b64_segment(header_b64)
            .and_then(|b| strict_object(&b))
            .map_err(IdpFailure::IdToken)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(JwsAlg::from_name)
            .filter(|a| !matches!(a, JwsAlg::Hs256 | JwsAlg::Hs384 | JwsAlg::Hs512))
            .ok_or(IdpFailure::IdToken(JoseError::Algorithm))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let keys = signing_keys(jwks, alg, kid);
        if keys.is_empty() {
            return Ok(None);
        }
        let verified = Verifier::new(alg, keys)
            .verify(id_token)
            .map_err(IdpFailure::IdToken)?;
        self.check_claims(&verified.claims, nonce, now)?;
        Ok(Some(verified.claims))
    }

    /// The claims of a token whose signature holds: time, issuer, audience, `azp`, nonce, `sub`.
    fn check_claims(
        &self,
        claims: &Map<String, Value>,
        nonce: &str,
        now: u64,
    ) -> Result<(), IdpFailure> {
        let rules = ClaimRules {
            leeway: 60,
            require_exp: true,
            max_age: None,
            issuer: self.issuer.clone(),
            audience: Some(self.client_id.clone()),
            require_jti: false,
        };
        rules.check(claims, now).map_err(IdpFailure::IdToken)?;
        if numeric_date(claims, "iat").ok().flatten().is_none() {
            return Err(IdpFailure::IdToken(JoseError::MissingClaim));
        }
        // §3.1.3.7 items 4-5: with several audiences, azp must be present; when present it must
        // be our client id.
        let several = claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1);
        match claims.get("azp").and_then(Value::as_str) {
            Some(azp) if azp != self.client_id => {
                return Err(IdpFailure::IdToken(JoseError::Audience))
            }
            None if several => return Err(IdpFailure::IdToken(JoseError::Audience)),
            _ => {}
        }
        let token_nonce = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(token_nonce.as_bytes(), nonce.as_bytes()).into();
        if !same || nonce.is_empty() {
            return Err(IdpFailure::Nonce);
        }
        claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or(IdpFailure::IdToken(JoseError::MissingClaim))?;
        Ok(())
    }
}

/// The JWKS's signing keys for `alg` (and `kid`, when the token names one).
fn signing_keys(jwks: &Value, alg: JwsAlg, kid: Option<&str>) -> Vec<(Option<String>, VerifyKey)> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter(|k| {
                    k.get("use")
                        .and_then(Value::as_str)
                        .is_none_or(|u| u == "sig")
                })
                .filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid)
                .filter_map(|k| {
                    let id = k.get("kid").and_then(Value::as_str).map(str::to_owned);
                    VerifyKey::from_jwk(alg, k).ok().map(|key| (id, key))
                })
                .collect()
        })
        .unwrap_or_default()
}
