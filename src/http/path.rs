//! Path normalisation: the one form of a request path that is both matched against
//! `public_paths` and forwarded (security.md C1), and the refusal of any path that RFC 3986,
//! Tomcat, Jetty, a server decoding twice or one folding Unicode would read differently
//! (docs/behaviour.md "Paths"). Kept on its own because it is the filter's first line against
//! path confusion, with its tables and its vectors together.

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
}
