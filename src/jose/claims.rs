//! Registered-claim checks (RFC 7519 §4.1) with an injected clock.

use serde_json::{Map, Value};

use super::JoseError;

/// The largest NumericDate we accept: 2^53, the largest integer JSON numbers carry exactly.
const MAX_NUMERIC_DATE: f64 = 9_007_199_254_740_992.0;

/// What a method requires of a token's registered claims.
#[derive(Clone, Debug)]
pub struct ClaimRules {
    /// Allowed clock difference, seconds.
    pub leeway: u64,
    /// Whether `exp` must be present.
    pub require_exp: bool,
    /// Maximum age measured from `iat` (which then must be present).
    pub max_age: Option<u64>,
    /// Required `iss`.
    pub issuer: Option<String>,
    /// Required member of `aud`.
    pub audience: Option<String>,
    /// Whether `jti` must be present (one-time tokens).
    pub require_jti: bool,
}

/// The registered claims that passed, for the caller's later use.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    /// `exp`, seconds since the epoch.
    pub exp: Option<u64>,
    /// `jti`.
    pub jti: Option<String>,
}

impl ClaimRules {
    /// Checks the claims at time `now` (seconds since the epoch).
    ///
    /// # Errors
    ///
    /// The first failing check as a [`JoseError`].
    pub fn check(&self, claims: &Map<String, Value>, now: u64) -> Result<Checked, JoseError> {
        let exp = numeric_date(claims, "exp")?;
        let nbf = numeric_date(claims, "nbf")?;
        let iat = numeric_date(claims, "iat")?;
        match exp {
            Some(exp) if now > exp.saturating_add(self.leeway) => return Err(JoseError::Expired),
            None if self.require_exp => return Err(JoseError::MissingClaim),
            _ => {}
        }
        if let Some(nbf) = nbf {
            if nbf > now.saturating_add(self.leeway) {
                return Err(JoseError::NotYetValid);
            }
        }
        if let Some(iat) = iat {
            if iat > now.saturating_add(self.leeway) {
                return Err(JoseError::IssuedInFuture);
            }
        }
        if let Some(max_age) = self.max_age {
            let iat = iat.ok_or(JoseError::MissingClaim)?;
            if now.saturating_sub(iat) > max_age.saturating_add(self.leeway) {
                return Err(JoseError::TooOld);
            }
        }
        if let Some(issuer) = &self.issuer {
            match claims.get("iss") {
                Some(Value::String(iss)) if iss == issuer => {}
                Some(Value::String(_)) | None => return Err(JoseError::Issuer),
                Some(_) => return Err(JoseError::ClaimType),
            }
        }
        if let Some(audience) = &self.audience {
            let ok = match claims.get("aud") {
                Some(Value::String(aud)) => aud == audience,
                Some(Value::Array(list)) => {
                    if list
                        .iter()
                        .any(|v| !v.is_string() || v.as_str() == Some(""))
                    {
                        return Err(JoseError::ClaimType);
                    }
                    list.iter().any(|v| v.as_str() == Some(audience))
                }
                None => false,
                Some(_) => return Err(JoseError::ClaimType),
            };
            if !ok {
                return Err(JoseError::Audience);
            }
        }
        let jti = match claims.get("jti") {
            Some(Value::String(j)) if !j.is_empty() => Some(j.clone()),
            None if !self.require_jti => None,
            None => return Err(JoseError::MissingClaim),
            Some(_) => return Err(JoseError::ClaimType),
        };
        Ok(Checked { exp, jti })
    }
}

/// Reads a NumericDate: a JSON number (fractions allowed, truncated), not negative, at most
/// 2^53. A string, boolean or null is a type error, never "absent" (security.md J9).
pub fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, JoseError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let v = n.as_f64().ok_or(JoseError::ClaimType)?;
            if !v.is_finite() || !(0.0..=MAX_NUMERIC_DATE).contains(&v) {
                return Err(JoseError::ClaimType);
            }
            // Truncation is the intent: NumericDate may carry fractions of a second.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Some(v as u64))
        }
        Some(_) => Err(JoseError::ClaimType),
    }
}

/// The expiry a claim imposes on a session (`session.expiry_claim`), if present and valid.
pub fn expiry_from(claims: &Map<String, Value>, claim: &str) -> Option<u64> {
    numeric_date(claims, claim).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules() -> ClaimRules {
        ClaimRules {
            leeway: 60,
            require_exp: true,
            max_age: None,
            issuer: Some("iss".into()),
            audience: Some("aud".into()),
            require_jti: false,
        }
    }

    fn claims(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn time_and_audience_rules() {
        let now = 1_000_000;
        let ok = claims(json!({"exp": now + 10, "iss": "iss", "aud": ["x", "aud"]}));
        assert!(rules().check(&ok, now).is_ok());
        let leeway = claims(json!({"exp": now - 30, "iss": "iss", "aud": "aud"}));
        assert!(rules().check(&leeway, now).is_ok());
        let expired = claims(json!({"exp": now - 61, "iss": "iss", "aud": "aud"}));
        assert_eq!(
            rules().check(&expired, now).unwrap_err(),
            JoseError::Expired
        );
        let string_exp = claims(json!({"exp": "9999999999", "iss": "iss", "aud": "aud"}));
        assert_eq!(
            rules().check(&string_exp, now).unwrap_err(),
            JoseError::ClaimType
        );
        let huge = claims(json!({"exp": 1e300, "iss": "iss", "aud": "aud"}));
        assert_eq!(rules().check(&huge, now).unwrap_err(), JoseError::ClaimType);
        let no_exp = claims(json!({"iss": "iss", "aud": "aud"}));
        assert_eq!(
            rules().check(&no_exp, now).unwrap_err(),
            JoseError::MissingClaim
        );
        let nbf = claims(json!({"exp": now + 10, "nbf": now + 3600, "iss": "iss", "aud": "aud"}));
        assert_eq!(
            rules().check(&nbf, now).unwrap_err(),
            JoseError::NotYetValid
        );
        let wrong_aud = claims(json!({"exp": now + 10, "iss": "iss", "aud": "other"}));
        assert_eq!(
            rules().check(&wrong_aud, now).unwrap_err(),
            JoseError::Audience
        );
        let wrong_iss = claims(json!({"exp": now + 10, "iss": "evil", "aud": "aud"}));
        assert_eq!(
            rules().check(&wrong_iss, now).unwrap_err(),
            JoseError::Issuer
        );
    }
}
