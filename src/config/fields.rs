//! The top-level fields of the configuration, each checked on its own: the origin, the
//! public paths, the session cookie policy, the header names, the client-address header.

use super::{ConfigError, RawSession};
use crate::assertion::{AssertionSigner, RawAssertion};
use crate::http::normalize_path;
use crate::identity::IdentityHeaders;
use crate::session::{Cookies, KeyRing, SameSite};

/// `base_url`: an http(s) origin only; its serialisation and whether it is https.
pub(super) fn parse_origin(base_url: &str) -> Result<(String, bool), ConfigError> {
    let base = url::Url::parse(base_url)
        .map_err(|e| ConfigError::at("base_url", format!("not an absolute URL: {e}")))?;
    if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
        return Err(ConfigError::at(
            "base_url",
            "must be an http(s) URL with a host",
        ));
    }
    if base.path() != "/" || base.query().is_some() || base.fragment().is_some() {
        return Err(ConfigError::at(
            "base_url",
            "must be an origin only (no path, query or fragment)",
        ));
    }
    let origin = base.origin().ascii_serialization();
    let https = base.scheme() == "https";
    Ok((origin, https))
}

/// `public_paths`: normalised, none of them `/`, none overlapping the filter's endpoints.
pub(super) fn parse_public_paths(
    raw: &[String],
    prefix: &str,
    login_page: &str,
) -> Result<Vec<String>, ConfigError> {
    let mut public_paths = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let at = format!("public_paths[{i}]");
        if p.contains(';') {
            // A request path is public only as written and with its `;` parameters cut,
            // so an entry holding `;` could never match: say so at load.
            return Err(ConfigError::at(at, "must not contain ';'"));
        }
        let normal = check_path(&at, p)?;
        if normal == "/" {
            return Err(ConfigError::at(at, "/ would make everything public"));
        }
        if normal.starts_with(prefix) || normal == login_page {
            return Err(ConfigError::at(at, "overlaps the filter's own endpoints"));
        }
        public_paths.push(normal);
    }
    Ok(public_paths)
}

/// `session`: the key ring and the cookie policy (secure unless the origin is plain http).
pub(super) fn parse_session(s: RawSession, https: bool) -> Result<Cookies, ConfigError> {
    check_token("session.cookie", &s.cookie)?;
    let ring = KeyRing::new(&s.keys)
        .map_err(|(i, reason)| ConfigError::at(format!("session.keys[{i}]"), reason))?;
    if s.ttl_seconds == 0 || s.ttl_seconds > 30 * 24 * 3600 {
        return Err(ConfigError::at(
            "session.ttl_seconds",
            "must be between 1 and 2592000 (30 days)",
        ));
    }
    let secure = s.secure.unwrap_or(true);
    if !secure && https {
        return Err(ConfigError::at(
            "session.secure",
            "false is only allowed when base_url is http://",
        ));
    }
    if s.same_site == SameSite::None && !secure {
        return Err(ConfigError::at(
            "session.same_site",
            "none requires secure cookies",
        ));
    }
    if s.partitioned && (s.same_site != SameSite::None || !secure) {
        return Err(ConfigError::at(
            "session.partitioned",
            "needs same_site \"none\" and secure cookies (an iframe-safe CHIPS cookie)",
        ));
    }
    let cookies = Cookies {
        name: s.cookie,
        ring,
        ttl: s.ttl_seconds,
        secure,
        same_site: s.same_site,
        partitioned: s.partitioned,
        expiry_claim: s.expiry_claim,
        // Set once the methods are known (Config::from_raw).
        cross_site_flows: false,
    };
    Ok(cookies)
}

/// `identity_headers` and the assertion header: valid names, no header used twice.
pub(super) fn check_headers(
    headers: &IdentityHeaders,
    assertion: Option<RawAssertion>,
    origin: &str,
) -> Result<Option<AssertionSigner>, ConfigError> {
    let mut seen = Vec::new();
    for (field, name) in [
        "login",
        "name",
        "email",
        "phone",
        "roles",
        "groups",
        "org",
        "tenant",
        "tenant_name",
        "platform",
        "method",
        "attributes",
    ]
    .iter()
    .zip(headers.all())
    {
        let at = format!("identity_headers.{field}");
        check_header_name(&at, name)?;
        if seen.contains(&name.to_ascii_lowercase()) {
            return Err(ConfigError::at(at, "the same header is used twice"));
        }
        seen.push(name.to_ascii_lowercase());
    }
    let assertion = assertion
        .map(|a| AssertionSigner::from_raw(a, origin))
        .transpose()?;
    if let Some(a) = &assertion {
        check_header_name("assertion.header", a.header())?;
        if seen.contains(&a.header().to_ascii_lowercase()) {
            return Err(ConfigError::at(
                "assertion.header",
                "already used by identity_headers",
            ));
        }
    }
    Ok(assertion)
}

/// `client_ip_header`: a header name, kept lowercase.
pub(super) fn parse_client_ip_header(raw: Option<String>) -> Result<Option<String>, ConfigError> {
    let client_ip_header = match raw {
        Some(h)
            if h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            return Err(ConfigError::at("client_ip_header", "not a header name"));
        }
        other => other.map(|h| h.to_ascii_lowercase()),
    };
    Ok(client_ip_header)
}

/// A path must be absolute and already in normal form (so matching is exact).
pub(super) fn check_path(at: &str, path: &str) -> Result<String, ConfigError> {
    let normal =
        normalize_path(path).map_err(|_| ConfigError::at(at, "not a valid absolute path"))?;
    if normal != path {
        return Err(ConfigError::at(
            at,
            format!("not in normal form (did you mean {normal:?}?)"),
        ));
    }
    Ok(normal)
}

/// Names of cookies, parameters and methods: visible ASCII without separators.
pub(super) fn check_token(at: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ConfigError::at(
            at,
            format!("{name:?} must be 1-64 characters of A-Z a-z 0-9 - _ . ~"),
        ))
    }
}

pub(super) fn check_header_name(at: &str, name: &str) -> Result<(), ConfigError> {
    let lower = name.to_ascii_lowercase();
    let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let reserved = [
        "cookie",
        "authorization",
        "host",
        "content-length",
        "transfer-encoding",
        "set-cookie",
    ];
    if !ok || reserved.contains(&lower.as_str()) {
        return Err(ConfigError::at(
            at,
            format!("{name:?} is not a usable header name"),
        ));
    }
    Ok(())
}
