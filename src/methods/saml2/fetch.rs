//! The IdP metadata at hand: the configured IdP, or (with `idp_metadata_url`) the copy in
//! shared data while it is younger than `metadata_ttl_seconds`, else fetched by a callout and
//! stored there. When a refetch fails, a copy younger than a day still serves.

use super::{Idp, Saml2, MAX_METADATA_BODY, METADATA_MAX_STALE};
use crate::cache::SharedCache;
use crate::deny::Deny;
use crate::http::{cluster_name, Callout, CalloutResponse};
use crate::idp::{answered, capped_body, IdpFailure};
use crate::login::{Env, Here};

fn metadata_key(url: &url::Url) -> String {
    format!("sso:saml:md:{url}")
}

/// The cached metadata document and when it was fetched.
fn cached_metadata(cache: &dyn SharedCache, url: &url::Url) -> Option<(u64, String)> {
    let (bytes, _) = cache.get(&metadata_key(url)).ok()??;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some((v.get("at")?.as_u64()?, v.get("xml")?.as_str()?.to_owned()))
}

fn store_metadata(cache: &dyn SharedCache, url: &url::Url, xml: &str, now: u64) {
    let value = serde_json::json!({"at": now, "xml": xml}).to_string();
    if cache
        .set(&metadata_key(url), value.as_bytes(), None)
        .is_err()
    {
        // Not fatal: this login uses the document; the next one fetches it again.
        log::info!("sso-filter: could not cache the IdP metadata of {url}");
    }
}

impl Saml2 {
    /// The IdP: configured, or from the shared-data copy of its metadata while it is fresh
    /// (or, with `stale_ok`, while it is younger than a day). `Ok(None)`: fetch it.
    pub(super) fn idp_at_hand(
        &self,
        here: &Here<'_>,
        env: &Env<'_>,
        stale_ok: bool,
    ) -> Result<Option<Idp>, Deny> {
        let Some(url) = &self.metadata_url else {
            return Ok(Some(self.idp.clone()));
        };
        match cached_metadata(env.cache, url) {
            Some((at, xml))
                if env.now < at.saturating_add(self.metadata_ttl)
                    || (stale_ok && env.now < at.saturating_add(METADATA_MAX_STALE)) =>
            {
                self.idp_from_metadata(&xml).map(Some).map_err(|why| {
                    log::warn!("sso-filter: cached IdP metadata unusable: {why}");
                    here.idp(IdpFailure::BadAnswer("metadata"))
                })
            }
            _ => Ok(None),
        }
    }

    /// The callout that fetches the IdP metadata.
    pub(super) fn metadata_callout(&self, url: &url::Url) -> Callout {
        Callout {
            upstream: cluster_name(url),
            url: url.to_string(),
            method: "GET".into(),
            headers: vec![(
                "accept".into(),
                "application/samlmetadata+xml, application/xml, text/xml".into(),
            )],
            body: Vec::new(),
            timeout_ms: self.timeout_ms,
        }
    }

    /// The IdP from the metadata callout's answer (stored in shared data for the next logins),
    /// or, when it cannot be had, from a cached copy younger than a day.
    pub(super) fn fetched_idp(
        &self,
        here: &Here<'_>,
        answer: &CalloutResponse,
        sent_ms: u64,
        env: &Env<'_>,
    ) -> Result<Idp, Deny> {
        let fetched = judge_metadata(self, answer, sent_ms, env.now_ms).and_then(|xml| {
            let idp = self.idp_from_metadata(&xml).map_err(|why| {
                log::warn!(
                    "sso-filter: IdP metadata unusable method={}: {}",
                    here.name(),
                    crate::deny::sanitize(&why)
                );
                IdpFailure::BadAnswer("metadata")
            })?;
            Ok((xml, idp))
        });
        match fetched {
            Ok((xml, idp)) => {
                if let Some(url) = &self.metadata_url {
                    store_metadata(env.cache, url, &xml, env.now);
                }
                Ok(idp)
            }
            Err(failure) => match self.idp_at_hand(here, env, true) {
                Ok(Some(idp)) => {
                    log::warn!(
                        "sso-filter: IdP metadata refetch failed ({}); the cached copy is used method={}",
                        failure.reason(),
                        here.name()
                    );
                    Ok(idp)
                }
                _ => Err(here.idp(failure)),
            },
        }
    }
}

/// A metadata answer: in time, 200, at most 256 KiB, not compressed, UTF-8.
fn judge_metadata(
    s: &Saml2,
    answer: &CalloutResponse,
    sent_ms: u64,
    now_ms: u64,
) -> Result<String, IdpFailure> {
    answered(answer, sent_ms, s.timeout_ms, now_ms)?;
    if answer.status != Some(200) {
        return Err(IdpFailure::BadAnswer("metadata_status"));
    }
    let body = capped_body(answer, MAX_METADATA_BODY)?;
    String::from_utf8(body.to_vec()).map_err(|_| IdpFailure::BadAnswer("encoding"))
}
