//! `type: jwt`: a signed (and optionally encrypted) JWT in a URL parameter logs the user in
//! (`?activeAuth=jwt-param&jwtParam=TOKEN`, the seeds' "JWT request parameters"); the same
//! method can verify `Authorization: Bearer` tokens per request for host applications, and
//! keep a session alive with a refresh token the URL brought (`keep_alive`, Mobi's JWT
//! keep-alive).

mod keep_alive;
mod login;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::deny::Deny;
use crate::error::ConfigError;
use crate::jose::claims::{numeric_date, ClaimRules};
use crate::jose::content::ContentAlg;
use crate::jose::jwe::{Decrypter, KeyAlg};
use crate::jose::jws::Verifier;
use crate::jose::keys::{self, JwsAlg, VerifyKey};
use crate::jose::{JoseError, MAX_TOKEN_BYTES};
use crate::random::Random;
use crate::store::Stores;

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJwt {
    #[serde(default = "default_param")]
    param: String,
    verify: RawVerify,
    #[serde(default)]
    decrypt: Option<RawDecrypt>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default = "default_leeway")]
    leeway_seconds: u64,
    #[serde(default)]
    max_age_seconds: Option<u64>,
    #[serde(default)]
    one_time: bool,
    #[serde(default)]
    insecure_allow_missing_exp: bool,
    #[serde(default)]
    accept_bearer: bool,
    #[serde(default)]
    keep_alive: Option<keep_alive::RawKeepAlive>,
}

fn default_param() -> String {
    "jwtParam".into()
}

fn default_leeway() -> u64 {
    60
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    alg: String,
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    secret_base64: Option<String>,
    #[serde(default)]
    public_key: Option<String>,
    #[serde(default)]
    jwks: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDecrypt {
    alg: String,
    enc: String,
    private_key: String,
}

/// A configured JWT method.
#[derive(Debug)]
pub struct Jwt {
    /// Query parameter carrying the token.
    pub param: String,
    verifier: Verifier,
    decrypter: Option<Decrypter>,
    rules: ClaimRules,
    one_time: bool,
    /// Whether `Authorization: Bearer` tokens are verified per request.
    pub accept_bearer: bool,
    keep_alive: Option<keep_alive::KeepAlive>,
}

impl Jwt {
    /// Whether verified tokens may be remembered: one-time tokens must be checked against the
    /// replay cache on every use.
    pub fn memoizable(&self) -> bool {
        !self.one_time
    }
}

/// A token that passed every check.
#[derive(Debug)]
pub struct Accepted {
    /// Its claims.
    pub claims: Map<String, Value>,
    /// The first second at which the token no longer passes the time checks (`exp` plus
    /// leeway, or `iat` plus the maximum age); five minutes ahead for tokens without `exp`,
    /// so those are checked again regularly.
    pub valid_until: u64,
    /// Its `exp`, when it has one.
    pub exp: Option<u64>,
}

impl Jwt {
    /// Parses the method's configuration; `at` is its JSON path.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawJwt, at: &str) -> Result<Self, ConfigError> {
        let err = |field: &str, reason: String| ConfigError {
            path: format!("{at}.{field}"),
            reason,
        };
        let alg = JwsAlg::from_name(&raw.verify.alg).ok_or_else(|| {
            err(
                "verify.alg",
                format!(
                    "{:?} is not one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, EdDSA",
                    raw.verify.alg
                ),
            )
        })?;
        let v = raw.verify;
        let given = [
            v.secret.is_some(),
            v.secret_base64.is_some(),
            v.public_key.is_some(),
            v.jwks.is_some(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            return Err(err(
                "verify",
                "give exactly one of secret, secret_base64, public_key, jwks".into(),
            ));
        }
        let keys = verify_keys(alg, v, &err)?;
        let decrypter = raw.decrypt.map(|d| decrypter(d, &err)).transpose()?;
        if raw.leeway_seconds > 600 {
            return Err(err("leeway_seconds", "at most 600".into()));
        }
        if raw.one_time && raw.insecure_allow_missing_exp {
            return Err(err(
                "one_time",
                "one-time tokens need exp (the replay record lives until exp)".into(),
            ));
        }
        let keep_alive = raw
            .keep_alive
            .map(|k| keep_alive::KeepAlive::from_raw(k, &raw.param, at))
            .transpose()?;
        Ok(Jwt {
            keep_alive,
            param: raw.param,
            verifier: Verifier::new(alg, keys),
            decrypter,
            rules: ClaimRules {
                leeway: raw.leeway_seconds,
                require_exp: !raw.insecure_allow_missing_exp,
                max_age: raw.max_age_seconds,
                issuer: raw.issuer,
                audience: raw.audience,
                require_jti: raw.one_time,
            },
            one_time: raw.one_time,
            accept_bearer: raw.accept_bearer,
        })
    }

    /// Verifies a token: decrypt when configured (and then require it), verify the signature,
    /// check the registered claims, and record a one-time token's use.
    ///
    /// # Errors
    ///
    /// [`Deny::Token`] with the failed check, or [`Deny::Unavailable`] when the replay cache
    /// cannot be used (fail closed, security.md L10).
    pub fn verify(
        &self,
        name: &str,
        token: &str,
        now: u64,
        rng: &mut dyn Random,
        stores: Option<&Stores<'_>>,
    ) -> Result<Accepted, Deny> {
        let refuse = |error: JoseError| Deny::Token {
            method: name.to_owned(),
            error,
        };
        if token.len() > MAX_TOKEN_BYTES {
            return Err(refuse(JoseError::TooLarge));
        }
        let segments = token.split('.').count();
        let verified = match (&self.decrypter, segments) {
            (Some(decrypter), 5) => {
                let decrypted = decrypter.decrypt(token, rng).map_err(refuse)?;
                let inner = String::from_utf8(decrypted.plaintext)
                    .map_err(|_| refuse(JoseError::Unsigned))?;
                // Encryption is not authentication: the content must be a JWS verified with the
                // configured key (pac4j CVE-2026-29000, security.md K5).
                if inner.split('.').count() != 3 {
                    return Err(refuse(JoseError::Unsigned));
                }
                self.verifier.verify(&inner).map_err(|e| match e {
                    JoseError::Malformed => refuse(JoseError::Unsigned),
                    other => refuse(other),
                })?
            }
            (Some(_), 3) => return Err(refuse(JoseError::Unsigned)),
            (None, 3) => self.verifier.verify(token).map_err(refuse)?,
            (None, 5) => return Err(refuse(JoseError::Algorithm)),
            _ => return Err(refuse(JoseError::Malformed)),
        };
        let checked = self.rules.check(&verified.claims, now).map_err(refuse)?;
        if self.one_time {
            let (Some(jti), Some(exp)) = (checked.jti, checked.exp) else {
                return Err(refuse(JoseError::MissingClaim));
            };
            // Remembered in the bounded single-use list until the token can no longer pass
            // the expiry check; a list with no room refuses (never forgets a live `jti`).
            let stores = stores.ok_or(Deny::Unavailable("replay_cache"))?;
            let keep_until = exp.saturating_add(self.rules.leeway).saturating_add(1);
            stores.claim(
                &format!("jti:{name}:{jti}"),
                keep_until,
                now,
                refuse(JoseError::Replayed),
            )?;
        }
        let mut valid_until = checked.exp.map_or(now.saturating_add(300), |exp| {
            exp.saturating_add(self.rules.leeway).saturating_add(1)
        });
        if let (Some(max_age), Ok(Some(iat))) =
            (self.rules.max_age, numeric_date(&verified.claims, "iat"))
        {
            valid_until = valid_until.min(
                iat.saturating_add(max_age)
                    .saturating_add(self.rules.leeway)
                    .saturating_add(1),
            );
        }
        Ok(Accepted {
            claims: verified.claims,
            valid_until,
            exp: checked.exp,
        })
    }
}

/// The verification keys of `verify`: a secret, a PEM public key, or a JWKS (several keys
/// need a `kid` each).
fn verify_keys(
    alg: JwsAlg,
    v: RawVerify,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Vec<(Option<String>, VerifyKey)>, ConfigError> {
    let keys = if let Some(secret) = v.secret {
        vec![(
            None,
            VerifyKey::hmac(alg, secret.into_bytes()).map_err(|e| err("verify.secret", e))?,
        )]
    } else if let Some(b64) = v.secret_base64 {
        let bytes = keys::decode_b64_any(b64.trim())
            .ok_or_else(|| err("verify.secret_base64", "not base64".into()))?;
        vec![(
            None,
            VerifyKey::hmac(alg, bytes).map_err(|e| err("verify.secret_base64", e))?,
        )]
    } else if let Some(pem) = v.public_key {
        vec![(
            None,
            VerifyKey::public(alg, &pem).map_err(|e| err("verify.public_key", e))?,
        )]
    } else {
        let jwks = v.jwks.unwrap_or(Value::Null);
        let list = jwks.get("keys").and_then(Value::as_array).ok_or_else(|| {
            err(
                "verify.jwks",
                "must be a JWKS object {\"keys\": [...]}".into(),
            )
        })?;
        let mut out = Vec::new();
        for (i, jwk) in list.iter().enumerate() {
            let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
            let key = VerifyKey::from_jwk(alg, jwk)
                .map_err(|e| err(&format!("verify.jwks.keys[{i}]"), e))?;
            out.push((kid, key));
        }
        if out.is_empty() {
            return Err(err("verify.jwks", "no keys".into()));
        }
        if out.len() > 1 && out.iter().any(|(kid, _)| kid.is_none()) {
            return Err(err(
                "verify.jwks",
                "with several keys, every key needs a kid".into(),
            ));
        }
        out
    };
    Ok(keys)
}

/// The token decrypter of `decrypt` (JWE with RSA-OAEP).
fn decrypter(
    d: RawDecrypt,
    err: &dyn Fn(&str, String) -> ConfigError,
) -> Result<Decrypter, ConfigError> {
    let key_alg = KeyAlg::from_name(&d.alg).ok_or_else(|| {
        err(
            "decrypt.alg",
            format!("{:?} is not one of RSA-OAEP-256, RSA-OAEP", d.alg),
        )
    })?;
    let enc = ContentAlg::from_name(&d.enc).ok_or_else(|| {
        err(
            "decrypt.enc",
            format!(
                "{:?} is not one of A128CBC-HS256, A256CBC-HS512, A128GCM, A256GCM",
                d.enc
            ),
        )
    })?;
    let key = keys::rsa_private_key(&d.private_key).map_err(|e| err("decrypt.private_key", e))?;
    Ok(Decrypter::new(key_alg, enc, key))
}
