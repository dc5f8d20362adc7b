//! What comes in: the request head as the proxy sees it, the cookies in it, and the split of
//! its target into path and query. Every reading of the request the engine makes starts here,
//! so each header question (one value or several, navigation or API call) has one answer.

/// A request head as the proxy sees it, before the filter has changed anything.
#[derive(Clone, Debug, Default)]
pub struct RequestHead {
    /// The method, as sent (`GET`, `POST`, ...).
    pub method: String,
    /// The raw request target: path and query (`:path` in Envoy).
    pub path: String,
    /// Every request header as a (name, value) pair, names lower-case. HTTP/2 may split
    /// `cookie` over several fields; all of them are here.
    pub headers: Vec<(String, String)>,
    /// The address of the peer that sent the request, when the host knows it (Envoy's
    /// `source.address`; the edge worker's connecting address). Used for per-client
    /// throttling and for the sources allowed to send back-channel logouts. Read it through
    /// [`RequestHead::client`].
    pub client: Option<std::net::IpAddr>,
    /// How to ask the host for the peer's address when `client` is not given: a host for
    /// which reading it is a call of its own (Envoy's `source.address` property, about as
    /// dear as reading the whole header map) looks it up only when a check needs it
    /// (throttling, the password budget, the logout sources), not on every request.
    pub peer: Option<fn() -> Option<std::net::IpAddr>>,
}

impl RequestHead {
    /// The address of the peer that sent the request, when the host knows it.
    pub fn client(&self) -> Option<std::net::IpAddr> {
        self.client.or_else(|| self.peer.and_then(|ask| ask()))
    }

    /// The values of every header with this (lower-case) name.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The single value of a header, or `None` when it is absent or repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut found = None;
        for (n, v) in &self.headers {
            if n.eq_ignore_ascii_case(name) {
                if found.is_some() {
                    return None;
                }
                found = Some(v.as_str());
            }
        }
        found
    }

    /// Whether a refusal of this request should be a page rather than JSON: a navigation, or
    /// a browser's form post (the SAML ACS, the login form, a posted in-app code page), which
    /// browsers send with `Sec-Fetch-Mode: navigate` or an `Accept` naming `text/html`.
    pub fn wants_html(&self) -> bool {
        if self.is_navigation() {
            return true;
        }
        let navigate = self
            .header("sec-fetch-mode")
            .is_some_and(|m| m.eq_ignore_ascii_case("navigate"));
        let html = self
            .header_values("accept")
            .any(|accept| accept.contains("text/html"));
        let form = self.header("content-type").is_some_and(|t| {
            let t = t.to_ascii_lowercase();
            t.starts_with("application/x-www-form-urlencoded")
                || t.starts_with("multipart/form-data")
        });
        self.method == "POST"
            && form
            && (navigate || html)
            && self.header("x-requested-with").is_none()
    }

    /// Whether this request is a browser navigation (gets a redirect to the login page) rather
    /// than an API call (gets 401 JSON).
    pub fn is_navigation(&self) -> bool {
        let method_ok = self.method == "GET" || self.method == "HEAD";
        let accepts_html = self
            .header_values("accept")
            .any(|accept| accept.contains("text/html"));
        let xhr = self.header("x-requested-with").is_some();
        let bearer = self.header("authorization").is_some_and(|a| {
            a.len() > 7
                && a.get(..7)
                    .is_some_and(|p| p.eq_ignore_ascii_case("bearer "))
        });
        method_ok && accepts_html && !xhr && !bearer
    }
}

/// Splits a request target into path and query (without the `?`).
pub fn split_target(target: &str) -> (&str, &str) {
    match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    }
}

/// Cookies from every `cookie` header, in order. Malformed segments are skipped.
pub fn parse_cookies(head: &RequestHead) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for header in head.header_values("cookie") {
        for segment in header.split(';') {
            let segment = segment.trim();
            if let Some((name, value)) = segment.split_once('=') {
                let name = name.trim();
                if name.is_empty() {
                    continue;
                }
                let value = value.trim();
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .unwrap_or(value);
                out.push((name.to_owned(), value.to_owned()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_from_all_headers() {
        let head = RequestHead {
            method: "GET".into(),
            path: "/".into(),
            headers: vec![
                ("cookie".into(), "a=1; ; b=\"2\"; =x; noeq".into()),
                ("cookie".into(), "c=3".into()),
            ],
            client: None,
            peer: None,
        };
        assert_eq!(
            parse_cookies(&head),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "2".into()),
                ("c".into(), "3".into())
            ]
        );
    }
}
