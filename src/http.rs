//! The HTTP vocabulary the engine speaks with its hosts: what comes in (a request head, a body,
//! a callout response) and what goes out (a [`Step`]).
//!
//! Nothing here performs I/O. Hosts translate their callbacks into these types and carry out the
//! returned step.

use std::fmt;

use crate::wait::{BodyWait, CalloutWait, StreamWait};

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
    /// throttling and for the sources allowed to send back-channel logouts.
    pub client: Option<std::net::IpAddr>,
}

impl RequestHead {
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

/// A header change to apply before the request goes upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Remove every header of this name (as it appears in the request).
    Remove(String),
    /// Set this header, replacing any value it had.
    Set(String, String),
    /// Add this header to the upstream's *response* (a refreshed session's `Set-Cookie`).
    AddResponse(String, String),
}

/// A response the filter answers with itself; the request never reaches the upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, `Set-Cookie` may repeat.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with the given status, no headers and no body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Adds several `Set-Cookie` headers.
    pub fn cookies(mut self, cookies: Vec<String>) -> Self {
        for c in cookies {
            self.headers.push(("set-cookie".to_owned(), c));
        }
        self
    }

    /// An HTML body; also sets the content type and the headers every filter page carries.
    pub fn html(mut self, body: String) -> Self {
        self.headers.push((
            "content-type".to_owned(),
            "text/html; charset=utf-8".to_owned(),
        ));
        self.body = body.into_bytes();
        self.no_store()
    }

    /// A JSON body.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.headers
            .push(("content-type".to_owned(), "application/json".to_owned()));
        self.body = body.to_string().into_bytes();
        self.no_store()
    }

    /// A redirect.
    pub fn redirect(status: u16, location: &str) -> Self {
        Response::new(status)
            .header("location", location)
            .no_store()
    }

    fn no_store(mut self) -> Self {
        if !self.headers.iter().any(|(n, _)| n == "cache-control") {
            self.headers
                .push(("cache-control".to_owned(), "no-store".to_owned()));
        }
        self
    }
}

/// An HTTP request the engine asks its host to send to an identity provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callout {
    /// Envoy cluster name (the host maps it to `fetch()` on the edge).
    pub upstream: String,
    /// Absolute URL of the request (the edge host uses it as is; Envoy uses its path and
    /// authority).
    pub url: String,
    /// Method.
    pub method: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Deadline for the answer, in milliseconds.
    pub timeout_ms: u64,
}

/// The answer to a [`Callout`], or its failure.
#[derive(Clone, Debug, Default)]
pub struct CalloutResponse {
    /// Status code; `None` when the host could not get a response (reset, timeout, refused).
    pub status: Option<u16>,
    /// Response headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Response body (hosts cap its size before reading it).
    pub body: Vec<u8>,
}

/// What the host must do next. Exactly one step answers each input.
#[derive(Debug)]
pub enum Step {
    /// Send the request upstream after applying these header edits.
    Continue(Vec<HeaderEdit>),
    /// Answer the client with this response; the request ends here.
    Respond(Response),
    /// Buffer the whole request body (up to `limit` bytes), then call
    /// [`crate::Filter::on_body`] with this wait.
    ReadBody {
        /// What the engine waits for.
        wait: BodyWait,
        /// The largest body the engine accepts; a larger one gets 413 from the engine.
        limit: usize,
    },
    /// Send this callout, then call [`crate::Filter::on_callout_response`] with the answer and
    /// this wait.
    Callout(Callout, CalloutWait),
    /// Carry out this byte-stream exchange (a TCP or TLS connection the host keeps for the
    /// request), then call [`crate::Filter::on_stream_reply`] with what was read and this
    /// wait. Only hosts with sockets get this step (the edge build).
    Stream(Exchange, StreamWait),
}

/// Where a byte stream goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS, with the server's certificate verified for `host`.
    pub tls: bool,
}

/// One round of a byte-stream conversation.
///
/// The host keeps at most one stream per request. The first exchange of a request opens it to
/// `endpoint`; later ones reuse it. Each exchange: write `send` (when not empty); then, when
/// `read_at_least > 0`, read until at least that many bytes arrived in this round, the peer
/// closed, or `timeout_ms` passed, never keeping more than `read_limit` bytes; then close the
/// stream if `close`. The host also closes the stream when the request ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Where the stream goes (used when it is opened).
    pub endpoint: Endpoint,
    /// Bytes to write.
    pub send: Vec<u8>,
    /// Read until at least this many bytes arrived (0: do not read).
    pub read_at_least: usize,
    /// Keep at most this many bytes of this round.
    pub read_limit: usize,
    /// Close the stream after this round.
    pub close: bool,
    /// Deadline for connecting, writing and reading this round, in milliseconds.
    pub timeout_ms: u64,
}

/// What a byte-stream round produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamReply {
    /// The bytes read in this round (at most `read_limit`).
    pub data: Vec<u8>,
    /// How the round ended.
    pub end: StreamEnd,
}

/// How a byte-stream round ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StreamEnd {
    /// The stream could not be opened, written or read, or the round timed out.
    #[default]
    Failed,
    /// The round completed; the stream is still open (unless the step asked to close it).
    Open,
    /// The peer closed the stream (the bytes before the close are in `data`).
    PeerClosed,
}

/// A step together with the counters the host must increment for it.
#[derive(Debug)]
pub struct Outcome {
    /// What to do.
    pub step: Step,
    /// Counters to increment by one (a closed set: [`crate::counter::Counter`]).
    pub counters: Vec<crate::counter::Counter>,
}

impl Outcome {
    pub(crate) fn new(step: Step) -> Self {
        Outcome {
            step,
            counters: Vec::new(),
        }
    }

    pub(crate) fn count(mut self, counter: crate::counter::Counter) -> Self {
        self.counters.push(counter);
        self
    }
}

/// The parsed query string of a request target: ordered (name, value) pairs, percent-decoded.
#[derive(Clone, Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses an `application/x-www-form-urlencoded` string (query or form body).
    pub fn parse(raw: &str) -> Self {
        Query {
            pairs: url::form_urlencoded::parse(raw.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }

    /// The value of a parameter that appears exactly once.
    ///
    /// # Errors
    ///
    /// [`Duplicate`] when it appears more than once: a security-relevant parameter given twice
    /// is ambiguous (one component may read the first, another the last).
    pub fn single(&self, name: &str) -> Result<Option<&str>, Duplicate> {
        let mut found = None;
        for (k, v) in &self.pairs {
            if k == name {
                if found.is_some() {
                    return Err(Duplicate(name.to_owned()));
                }
                found = Some(v.as_str());
            }
        }
        Ok(found)
    }

    /// Whether the parameter is present at all.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }
}

/// A parameter that must appear once appeared several times.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicate(pub String);

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "parameter {} repeated", self.0)
    }
}

/// Removes the named parameters from a raw query, keeping the rest byte for byte.
pub fn strip_query_params(raw_query: &str, names: &[&str]) -> String {
    raw_query
        .split('&')
        .filter(|part| {
            if part.is_empty() {
                return false;
            }
            let key = part.split('=').next().unwrap_or("");
            let decoded: String = url::form_urlencoded::parse(key.as_bytes())
                .map(|(k, _)| k.into_owned())
                .next()
                .unwrap_or_default();
            !names.contains(&decoded.as_str())
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The Envoy cluster name for an outbound URL's origin: `sso_<host>_<port>`, with every
/// character outside `[a-z0-9]` as `_`. `sso-filter clusters` prints definitions under these
/// names, and callouts use them.
pub fn cluster_name(url: &url::Url) -> String {
    let host: String = url
        .host_str()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("sso_{host}_{}", url.port_or_known_default().unwrap_or(0))
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

/// Why a request path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// `%2F` or `%5C`: an encoded separator that servers disagree about.
    EncodedSeparator,
    /// A backslash, a NUL, a control character, a fragment, a malformed escape or invalid
    /// UTF-8 once decoded.
    Forbidden,
    /// Not an origin-form target (does not start with `/`).
    NotOriginForm,
    /// A segment that some server reads as `.` or `..`, or as holding a separator, although
    /// it is neither for us: a dot segment with path parameters (`..;x`, `.;`), or one that
    /// becomes a dot segment or a separator only after a second decoding (`%252e`,
    /// `%252F`), a decoded `%3B` (`..%3B`) or Unicode compatibility folding (`%EF%BC%8E`).
    AmbiguousSegment,
    /// `..` right after an empty or parameter-only segment (`/a//../b`, `/a/;x/../b`):
    /// RFC 3986 (Envoy, Jetty) removes that segment, Tomcat merges it away first and removes
    /// the one before.
    AmbiguousDotDot,
}

impl PathError {
    /// A fixed word for the log line.
    pub fn reason(self) -> &'static str {
        match self {
            PathError::EncodedSeparator => "encoded_separator",
            PathError::Forbidden => "forbidden",
            PathError::NotOriginForm => "not_origin_form",
            PathError::AmbiguousSegment => "ambiguous_segment",
            PathError::AmbiguousDotDot => "ambiguous_dot_dot",
        }
    }
}

/// How many times a segment is percent-decoded, at most, to see what a server that decodes
/// again would read. More nested encodings than this are refused.
const MAX_DECODINGS: usize = 4;

/// Characters whose Unicode compatibility form (NFKC) is made only of `.`, `/`, `\` or `;`,
/// with that form. Derived from Python's `unicodedata` (Unicode 14.0) by checking every
/// code point; a server that folds compatibility characters (IIS "best fit", an application
/// calling NFKC) would read these as dots, separators or a parameter start.
const LOOKALIKES: [(char, &str); 14] = [
    ('\u{037E}', ";"),
    ('\u{2024}', "."),
    ('\u{2025}', ".."),
    ('\u{2026}', "..."),
    ('\u{FE14}', ";"),
    ('\u{FE19}', "..."),
    ('\u{FE30}', ".."),
    ('\u{FE52}', "."),
    ('\u{FE54}', ";"),
    ('\u{FE68}', "\\"),
    ('\u{FF0E}', "."),
    ('\u{FF0F}', "/"),
    ('\u{FF1B}', ";"),
    ('\u{FF3C}', "\\"),
];

/// The name of a path segment under the most eager reading any server gives it: decoded
/// until no escape is left, compatibility characters folded, cut at the first `;` (path
/// parameters, Tomcat/Jetty/Spring). Refuses a segment that holds a separator or a control
/// character under that reading.
fn segment_name(segment: &str) -> Result<std::borrow::Cow<'_, str>, PathError> {
    // The common case (plain ASCII, no escape, no parameter) reads the same everywhere.
    if segment
        .bytes()
        .all(|b| b.is_ascii() && b != b'%' && b != b';')
    {
        return Ok(segment.into());
    }
    let mut text = segment.to_owned();
    let mut decodings = 0;
    while text.contains('%') {
        let next = percent_encoding::percent_decode_str(&text)
            .decode_utf8()
            .map_err(|_| PathError::Forbidden)?
            .into_owned();
        if next == text {
            break;
        }
        decodings += 1;
        if decodings > MAX_DECODINGS {
            return Err(PathError::AmbiguousSegment);
        }
        text = next;
    }
    let mut folded = String::with_capacity(text.len());
    for c in text.chars() {
        match LOOKALIKES.iter().find(|(l, _)| *l == c) {
            Some((_, ascii)) => folded.push_str(ascii),
            None => folded.push(c),
        }
    }
    if folded.contains(['/', '\\']) || folded.chars().any(char::is_control) {
        return Err(PathError::AmbiguousSegment);
    }
    let name = folded.split(';').next().unwrap_or_default();
    Ok(name.to_owned().into())
}

/// A name only dots (and blanks, which Windows trims) are made of: what some server resolves
/// as `.` or `..`.
fn is_dot_name(name: &str) -> bool {
    name.contains('.') && name.chars().all(|c| c == '.' || c.is_whitespace())
}

/// Normalises the path part of a request target: percent-decodes unreserved characters,
/// resolves `.` and `..` segments (RFC 3986 §5.2.4) and merges repeated slashes.
///
/// The result is the one form that is both matched against `public_paths` and forwarded, so
/// the upstream never sees a path other than the one the decision was made on
/// (security.md C1). Path parameters (`;x`) stay in place. A path that RFC 3986, Tomcat
/// (parameters cut, slashes merged, then dots) and Jetty (parameters cut, then dots) would
/// resolve to different segments is refused, as is any segment that a server decoding twice
/// or folding Unicode would read as a dot segment or a separator (docs/behaviour.md "Paths").
///
/// # Errors
///
/// [`PathError`] for paths that different servers would read differently.
pub fn normalize_path(path: &str) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotOriginForm);
    }
    // First pass: percent-decode what is safe to decode and keep the rest encoded
    // (upper-cased), refusing encoded separators and control bytes.
    let bytes = path.as_bytes();
    let mut decoded: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .ok_or(PathError::Forbidden)?;
                let text = std::str::from_utf8(hex).map_err(|_| PathError::Forbidden)?;
                let value = u8::from_str_radix(text, 16).map_err(|_| PathError::Forbidden)?;
                match value {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    0..=0x1f | 0x7f => return Err(PathError::Forbidden),
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        decoded.push(value)
                    }
                    _ => {
                        decoded.push(b'%');
                        decoded.extend(text.to_ascii_uppercase().bytes());
                    }
                }
                i += 3;
            }
            b'\\' | b'#' | 0..=0x20 | 0x7f => return Err(PathError::Forbidden),
            _ => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::Forbidden)?;
    // A path whose percent-encoded bytes are not UTF-8 (overlong forms such as %c0%ae) is
    // refused rather than guessed at.
    let fully: Vec<u8> = percent_encoding::percent_decode_str(&decoded).collect();
    let fully = String::from_utf8(fully).map_err(|_| PathError::Forbidden)?;
    if fully.chars().any(|c| c.is_control()) {
        return Err(PathError::Forbidden);
    }
    // Second pass: RFC 3986 §5.2.4 dot-segment removal over every segment, empty ones
    // included, then empty segments dropped. Each kept segment remembers whether its name
    // is empty (`""` or parameters only), which a `..` must not remove.
    let mut out: Vec<(&str, bool)> = Vec::new();
    let trailing = decoded.ends_with('/') || decoded.ends_with("/.") || decoded.ends_with("/..");
    for segment in decoded.split('/').skip(1) {
        let name = segment_name(segment)?;
        match segment {
            "." => {}
            ".." => {
                if let Some((_, true)) = out.pop() {
                    return Err(PathError::AmbiguousDotDot);
                }
            }
            // Not `.` or `..` for us, one of them for some server.
            _ if is_dot_name(&name) => return Err(PathError::AmbiguousSegment),
            s => out.push((s, name.is_empty())),
        }
    }
    let mut result = String::with_capacity(decoded.len());
    for (s, _) in out.iter().filter(|(s, _)| !s.is_empty()) {
        result.push('/');
        result.push_str(s);
    }
    if result.is_empty() || (trailing && !result.ends_with('/')) {
        result.push('/');
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_the_classic_bypasses() {
        let ok = [
            ("/public/../admin", "/admin"),
            ("//admin", "/admin"),
            ("///admin", "/admin"),
            ("/./admin", "/admin"),
            ("/public/%2e%2e/admin", "/admin"),
            ("/public/%2E%2E/admin", "/admin"),
            ("/public/.%2e/admin", "/admin"),
            ("/a/b/", "/a/b/"),
            ("/", "/"),
            ("/%41dmin", "/Admin"),
            ("/a%20b", "/a%20b"),
            ("/%e5%bc%a0", "/%E5%BC%A0"),
            ("/a/..", "/"),
        ];
        for (input, want) in ok {
            assert_eq!(normalize_path(input).as_deref(), Ok(want), "{input}");
        }
        let bad = [
            "/public/..%2fadmin",
            "/public%2f..%2fadmin",
            "/public\\..\\admin",
            "/public%5c..%5cadmin",
            "/public/%c0%ae%c0%ae/admin",
            "/admin%00",
            "/admin%0a",
            "admin",
            "/a#b",
            "/a b",
            "/public/%252e%252e/admin",
        ];
        for input in bad {
            assert!(normalize_path(input).is_err(), "{input}");
        }
    }

    fn refused_as(want: PathError, inputs: &[&str]) {
        for input in inputs {
            assert_eq!(normalize_path(input), Err(want), "{input}");
        }
    }

    fn kept(cases: &[(&str, &str)]) {
        for (input, want) in cases {
            assert_eq!(normalize_path(input).as_deref(), Ok(*want), "{input}");
            // The forwarded form is a fixed point: normalising it again changes nothing.
            assert_eq!(normalize_path(want).as_deref(), Ok(*want), "{want}");
        }
    }

    /// Issue 10: `..;` and its spellings. Tomcat, Jetty and Spring cut `;...` from a segment
    /// before resolving dots, so each of these is a dot segment there. The last five are
    /// Jetty's own "ambiguous parameter inclusions" vectors (jetty/jetty.project,
    /// jetty-core/jetty-http/src/test/java/org/eclipse/jetty/http/HttpURITest.java).
    #[test]
    fn dot_segments_with_parameters_are_refused() {
        refused_as(
            PathError::AmbiguousSegment,
            &[
                "/static/..;/admin",
                "/static/%2e%2e;/admin",
                "/static/%2E%2E;/admin",
                "/static/.%2e;x/admin",
                "/static/..;jsessionid=x/admin",
                "/static/..;a;b/admin",
                "/static/.;/admin",
                "/.;/admin",
                "/static/%2e;/admin",
                "/static/..;",
                "/static/..;/",
                "/static/..%3B/admin",
                "/static/..%3b/admin",
                "/static/%2e%2e%3bx/admin",
                "/path/.;/info",
                "/path/.;param/info",
                "/path/..;/info",
                "/path/..;param/info",
                "/path/%2e%2e;param;other/info;other",
            ],
        );
    }

    /// RFC 3986 removes the empty (or parameter-only) segment before `..`; Tomcat merges
    /// slashes and cuts parameters first and removes the segment before it. Jetty's
    /// HttpURITest reads `/foo//../bar` as `/foo/bar`, Tomcat as `/bar`.
    #[test]
    fn dot_dot_after_an_empty_or_parameter_only_segment_is_refused() {
        refused_as(
            PathError::AmbiguousDotDot,
            &[
                "/static//../admin",
                "/foo//../bar",
                "/foo///../../../bar",
                "/a//./../b",
                "//../admin",
                "/static/;/../admin",
                "/static/;x=1/../admin",
                "/static/%3B/../admin",
                "/static/%3bx/%2e%2e/admin",
            ],
        );
    }

    /// Parameters on other segments stay where they are (Tomcat's `;jsessionid=` URL
    /// rewriting keeps working); `..` removes a segment with its parameters.
    #[test]
    fn other_path_parameters_stay_in_place() {
        kept(&[
            ("/static/app.js;jsessionid=1", "/static/app.js;jsessionid=1"),
            ("/static;x=1/../admin", "/admin"),
            ("/static/x;a/../app.js", "/static/app.js"),
            ("/healthz;a", "/healthz;a"),
            ("/healthz;", "/healthz;"),
            ("/;/admin", "/;/admin"),
            ("//;x//admin", "/;x/admin"),
            ("/static/;", "/static/;"),
            ("/a;x/b/..", "/a;x/"),
            ("/a%3Bb", "/a%3Bb"),
            ("/a%3bb/", "/a%3Bb/"),
            ("/foo/;param", "/foo/;param"),
        ]);
    }

    /// What a server decoding twice or folding Unicode compatibility characters would read
    /// as a dot segment or a separator (security.md C1 and C5 vectors, Jetty's "ambiguous
    /// encoding" vectors).
    #[test]
    fn second_decodings_and_lookalikes_never_make_dots_or_separators() {
        refused_as(
            PathError::AmbiguousSegment,
            &[
                "/public/%252e%252e/admin",
                "/static/%252E%252E/admin",
                "/static/%252e/admin",
                "/static/%25252e%25252e/admin",
                "/static/%252e%252e%253b/admin",
                "/static/..%252f/admin",
                "/static%252f..%252fadmin",
                "/static/%255c..%255cadmin",
                "/static/%2500/admin",
                "/static/%2509/admin",
                "/static/%EF%BC%8E%EF%BC%8E/admin",
                "/static/%ef%bc%8e/admin",
                "/static/\u{FF0E}\u{FF0E}/admin",
                "/static/%E2%80%A5/admin",
                "/static/%EF%B8%B0/admin",
                "/static/%EF%BC%8F..%EF%BC%8Fadmin",
                "/static/%EF%BC%BCadmin",
                "/static/..%EF%BC%9B/admin",
                "/static/..%CD%BEx/admin",
                "/static/.../admin",
                "/static/..%20/admin",
                "/static/%2e%2e%E3%80%80/admin",
                "/static/%25%32%65%25%32%65/admin",
                "/a/%2525252525252e",
            ],
        );
        refused_as(
            PathError::Forbidden,
            &[
                "/static/%c0%ae%c0%ae/admin",
                "/static/%C0%AE/admin",
                "/static/%25c0%25ae/admin",
                "/static/%u002e%u002e/admin",
                "/static/%u002f/admin",
                "/static/\t../admin",
                "/static/%09/admin",
                "/admin%00",
                "/admin%+1",
                "/admin%2",
                "/admin%",
            ],
        );
        kept(&[
            ("/files/100%25", "/files/100%25"),
            ("/a%2520b", "/a%2520b"),
            ("/static/a%EF%BC%8Eb", "/static/a%EF%BC%8Eb"),
            ("/static/%E2%92%88", "/static/%E2%92%88"),
            ("/static/a.b..c", "/static/a.b..c"),
            ("/static/.well-known", "/static/.well-known"),
            ("/static/..a", "/static/..a"),
        ]);
    }

    #[test]
    fn query_params_are_single_or_refused() {
        let q = Query::parse("a=1&b=2&a=3&c=%E5%BC%A0");
        assert_eq!(q.single("b"), Ok(Some("2")));
        assert_eq!(q.single("c"), Ok(Some("张")));
        assert!(q.single("a").is_err());
        assert_eq!(q.single("z"), Ok(None));
    }

    #[test]
    fn strips_named_params_only() {
        assert_eq!(
            strip_query_params(
                "activeAuth=jwt-param&x=1&jwtParam=abc&y=%20",
                &["activeAuth", "jwtParam"]
            ),
            "x=1&y=%20"
        );
        assert_eq!(strip_query_params("jwtParam=abc", &["jwtParam"]), "");
    }

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
