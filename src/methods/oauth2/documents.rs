//! The IdP's documents (discovery, JWKS) kept in the shared cache, the endpoints known without
//! a callout, and the first judgement of every callout answer (answered in time, and for a
//! document: 200 and a JSON object within the size cap).

use serde_json::{json, Map, Value};

use super::{Endpoints, OAuth2, DOC_TTL};
use crate::cache::SharedCache;
use crate::http::CalloutResponse;
use crate::idp::{answered, json_body, IdpFailure, MAX_DOC_BODY};
use crate::login::Env;

fn discovery_key(url: &url::Url) -> String {
    format!("sso:oidc:doc:{url}")
}

/// A cached document and when it was fetched.
pub(super) fn cached_doc(cache: &dyn SharedCache, url: &url::Url) -> Option<(u64, Value)> {
    let (bytes, _) = cache.get(&discovery_key(url)).ok()??;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    Some((v.get("at")?.as_u64()?, v.get("doc")?.clone()))
}

/// Keeps a document for every worker, with the time it was fetched.
pub(super) fn store_doc(
    cache: &dyn SharedCache,
    url: &url::Url,
    doc: &Map<String, Value>,
    now: u64,
) {
    let value = json!({"at": now, "doc": doc}).to_string();
    if cache
        .set(&discovery_key(url), value.as_bytes(), None)
        .is_err()
    {
        // Not fatal: the document is used for this login and fetched again next time.
        log::info!("sso-filter: could not cache {url}");
    }
}

impl OAuth2 {
    /// The endpoints, if known without a callout (configured, or discovery cached and fresh).
    pub(super) fn known_endpoints(&self, env: &Env<'_>) -> Result<Option<Endpoints>, IdpFailure> {
        if let Some(eps) = self.configured_endpoints() {
            return Ok(Some(eps));
        }
        let Some(url) = self.discovery_url() else {
            return Ok(None);
        };
        match cached_doc(env.cache, &url) {
            Some((at, doc)) if env.now < at.saturating_add(DOC_TTL) => {
                self.endpoints_from_discovery(&doc).map(Some)
            }
            _ => Ok(None),
        }
    }
}

/// A discovery document or JWKS: answered, 200, JSON object within the size cap.
pub(super) fn judge_doc(
    response: &CalloutResponse,
    sent_ms: u64,
    timeout_ms: u64,
    now_ms: u64,
) -> Result<Map<String, Value>, IdpFailure> {
    answered(response, sent_ms, timeout_ms, now_ms)?;
    if response.status != Some(200) {
        return Err(IdpFailure::BadAnswer("document_status"));
    }
    json_body(response, MAX_DOC_BODY)
}
