//! Differential check of path normalisation (issue 11): our `normalize_path` and the engine's
//! public-path decision against small reference readers written from their sources, not
//! from our code:
//!
//! - RFC 3986: §6.2.2.2 (decode unreserved characters) then §5.2.4 `remove_dot_segments`,
//!   written with the RFC's input and output buffers and rules A–E.
//! - Tomcat: `CoyoteAdapter.postParseRequest` then `normalize` (apache/tomcat,
//!   java/org/apache/catalina/connector/CoyoteAdapter.java): path parameters cut from the raw
//!   URI (`;` up to the next `/`), every `%XX` decoded (`%2F` refused, the default
//!   `encodedSolidusHandling`), `\` and NUL refused, `//` merged, `/./` then `/../` resolved,
//!   going above the root refused.
//! - Jetty 12's decoded path (jetty/jetty.project HttpURITest "decodePathTests"): parameters
//!   cut, decoded, dots removed as RFC 3986 does (empty segments kept).
//! - A server that decodes again and folds compatibility dots (`%252e`, U+FF0E).
//!
//! Whenever our normaliser accepts a path, every reader must see the same segments as we do
//! (modulo path parameters and merged slashes), and a path the engine treats as public must
//! be public under every reader.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use proptest::prelude::*;
use serde_json::json;
use sso_filter::cache::MemoryCache;
use sso_filter::http::normalize_path;
use sso_filter::random::SystemRandom;
use sso_filter::{Env, Filter, HeaderEdit, RequestHead, Step};

// --------------------------------------------------------------------------- readers

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// RFC 3986 §6.2.2.2: percent-encoded unreserved characters decoded, other escapes
/// upper-cased. `None` for a malformed escape.
fn decode_unreserved(p: &str) -> Option<String> {
    let b = p.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let v = hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?;
            if v.is_ascii_alphanumeric() || b"-._~".contains(&v) {
                out.push(v);
            } else {
                out.extend(format!("%{v:02X}").bytes());
            }
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// RFC 3986 §5.2.4, rule by rule.
fn remove_dot_segments(input: &str) -> String {
    let mut input = input.to_owned();
    let mut output = String::new();
    while !input.is_empty() {
        if let Some(rest) = input.strip_prefix("../") {
            input = rest.to_owned(); // A
        } else if let Some(rest) = input.strip_prefix("./") {
            input = rest.to_owned(); // A
        } else if input.starts_with("/./") {
            input = input[2..].to_owned(); // B
        } else if input == "/." {
            input = "/".to_owned(); // B
        } else if input.starts_with("/../") || input == "/.." {
            // C: replace the prefix with "/" and remove the last segment of the output.
            input = if input == "/.." {
                "/".to_owned()
            } else {
                input[3..].to_owned()
            };
            match output.rfind('/') {
                Some(i) => output.truncate(i),
                None => output.clear(),
            }
        } else if input == "." || input == ".." {
            input.clear(); // D
        } else {
            // E: the first segment, with its leading "/" if any, moves to the output.
            let start = usize::from(input.starts_with('/'));
            let end = input[start..].find('/').map_or(input.len(), |i| i + start);
            output.push_str(&input[..end]);
            input = input[end..].to_owned();
        }
    }
    output
}

/// The RFC 3986 reading of a request path.
fn rfc(p: &str) -> Option<String> {
    decode_unreserved(p).map(|d| remove_dot_segments(&d))
}

/// Cuts `;...` from every segment, as Tomcat's `parsePathParameters` does (up to the next
/// `/`).
fn strip_params(p: &str) -> String {
    p.split('/')
        .map(|s| s.split(';').next().unwrap())
        .collect::<Vec<_>>()
        .join("/")
}

/// Decodes every `%XX` once. `None` for a malformed escape.
fn decode_all(p: &str) -> Option<Vec<u8>> {
    let b = p.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn merge_slashes(p: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(p.len());
    for &c in p {
        if !(c == b'/' && out.last() == Some(&b'/')) {
            out.push(c);
        }
    }
    out
}

/// Tomcat's reading: `None` where Tomcat answers 400.
fn tomcat(p: &str) -> Option<Vec<u8>> {
    if p.contains("%2F") || p.contains("%2f") {
        return None;
    }
    let mut b = decode_all(&strip_params(p))?;
    if b.first() != Some(&b'/') || b.contains(&b'\\') || b.contains(&0) {
        return None;
    }
    b = merge_slashes(&b);
    if b.ends_with(b"/.") || b.ends_with(b"/..") {
        b.push(b'/');
    }
    while let Some(i) = find(&b, b"/./") {
        b.drain(i..i + 2);
    }
    while let Some(i) = find(&b, b"/../") {
        if i == 0 {
            return None;
        }
        let j = b[..i].iter().rposition(|&c| c == b'/').unwrap();
        b.drain(j..i + 3);
    }
    Some(b)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Jetty 12's decoded path: parameters cut, decoded, RFC 3986 dot removal.
fn jetty(p: &str) -> Option<Vec<u8>> {
    let d = decode_all(&strip_params(p))?;
    let d = String::from_utf8(d).ok()?;
    Some(remove_dot_segments(&d).into_bytes())
}

/// A server that decodes until nothing is left to decode and folds compatibility dots,
/// slashes and semicolons (and `\\`), then cuts parameters and removes dots. `None` when the
/// bytes are not UTF-8 (such a server answers 400 or serves nothing).
fn eager(p: &str) -> Option<Vec<u8>> {
    let mut text = p.to_owned();
    loop {
        // Valid escapes decoded, a lone `%` kept.
        let b = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let escape = (b[i] == b'%')
                .then(|| Some(hex(*b.get(i + 1)?)? * 16 + hex(*b.get(i + 2)?)?))
                .flatten();
            match escape {
                Some(v) => {
                    out.push(v);
                    i += 3;
                }
                None => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        }
        let next = String::from_utf8(out).ok()?;
        if next == text {
            break;
        }
        text = next;
    }
    let mut folded = String::new();
    for c in text.chars() {
        folded.push_str(match c {
            '\u{FF0E}' | '\u{FE52}' | '\u{2024}' => ".",
            '\u{2025}' | '\u{FE30}' => "..",
            '\u{FF0F}' | '\u{FF3C}' | '\u{FE68}' | '\\' => "/",
            '\u{FF1B}' | '\u{FE54}' | '\u{037E}' | '\u{FE14}' => ";",
            _ => {
                folded.push(c);
                continue;
            }
        });
    }
    Some(merge_slashes(
        remove_dot_segments(&strip_params(&folded)).as_bytes(),
    ))
}

/// Our path with parameters cut and decoded: what Tomcat and Jetty should read from it.
fn ours_stripped(o: &str) -> Vec<u8> {
    merge_slashes(&decode_all(&strip_params(o)).unwrap())
}

fn public(p: &[u8]) -> bool {
    p == b"/healthz" || p.starts_with(b"/static/")
}

// --------------------------------------------------------------------------- the engine

fn filter() -> Filter {
    let config = json!({
        "base_url": "https://app.example.com",
        "session": {"keys": ["MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"]},
        "public_paths": ["/healthz", "/static/"],
        "methods": {"jwt": {"type": "jwt",
            "verify": {"alg": "HS256", "secret": "4b117a14-c652-410a-83b2-9839c16e7ae1"},
            "mapping": {"login": "loginName"}}}
    });
    Filter::from_json(config.to_string().as_bytes()).unwrap()
}

#[derive(Debug, PartialEq)]
enum Judged {
    Refused,
    Protected,
    /// Forwarded without identity, with this path.
    Public(String),
}

/// What the engine does with an API request for `path` that carries no session.
fn judge(filter: &Filter, path: &str) -> Judged {
    let head = RequestHead {
        method: "GET".into(),
        path: path.into(),
        headers: vec![("accept".into(), "application/json".into())],
        client: None,
        peer: None,
    };
    let cache = MemoryCache::default();
    let mut env = Env {
        now: 1_767_225_600,
        now_ms: 1_767_225_600_000,
        rng: &mut SystemRandom,
        cache: &cache,
        fleet: Default::default(),
    };
    match filter.on_request(&head, &mut env).step {
        Step::Continue(edits) => Judged::Public(
            edits
                .iter()
                .find_map(|e| match e {
                    HeaderEdit::Set(n, v) if n == ":path" => Some(v.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| path.to_owned()),
        ),
        Step::Respond(r) if r.status == 400 => Judged::Refused,
        Step::Respond(r) if r.status == 401 => Judged::Protected,
        other => panic!("{path}: unexpected {other:?}"),
    }
}

// --------------------------------------------------------------------------- the property

fn check(filter: &Filter, p: &str) -> Result<(), TestCaseError> {
    let judged = judge(filter, p);
    let Ok(o) = normalize_path(p) else {
        prop_assert_eq!(judged, Judged::Refused, "{}", p);
        return Ok(());
    };
    // The forwarded form is a fixed point and reads, for each server, as we read it.
    prop_assert_eq!(normalize_path(&o), Ok(o.clone()), "not idempotent: {}", p);
    let mine = ours_stripped(&o);
    let rfc_p = rfc(p).expect("we accepted the escapes");
    prop_assert_eq!(
        merge_slashes(rfc_p.as_bytes()),
        o.as_bytes().to_vec(),
        "RFC 3986 reads {:?} as {:?}, we as {:?}",
        p,
        rfc_p,
        o
    );
    if let Some(t) = tomcat(p) {
        prop_assert_eq!(&t, &mine, "Tomcat reads {:?} otherwise than {:?}", p, o);
    }
    prop_assert_eq!(tomcat(&o), Some(mine.clone()), "Tomcat reads our {:?}", o);
    if let Some(j) = jetty(p) {
        prop_assert_eq!(merge_slashes(&j), mine.clone(), "Jetty reads {:?}", p);
    }
    prop_assert_eq!(
        matches!(judged, Judged::Public(_)),
        public(o.as_bytes()) && public(&mine),
        "{}: public for the engine iff public as forwarded and with parameters cut",
        p
    );
    if let Judged::Public(fwd) = judged {
        prop_assert_eq!(&fwd, &o, "forwarded another path than the normalised one");
        prop_assert!(public(o.as_bytes()), "{} public, {} is not", p, o);
        for (who, reading) in [
            ("Tomcat", tomcat(p)),
            ("Tomcat (forwarded)", tomcat(&o)),
            ("Jetty", jetty(p).map(|j| merge_slashes(&j))),
            ("eager decoding", eager(p)),
            ("eager decoding (forwarded)", eager(&o)),
        ] {
            // `None`: that server refuses the request (400), nothing is served.
            if let Some(r) = reading {
                prop_assert!(
                    public(&r),
                    "{} public for us, {} reads {:?}",
                    p,
                    who,
                    String::from_utf8_lossy(&r)
                );
            }
        }
    } else if judged == Judged::Refused {
        prop_assert!(false, "{} normalised to {} but refused", p, o);
    }
    Ok(())
}

const TOKENS: &[&str] = &[
    "/",
    "/",
    "/",
    "/",
    "//",
    "static",
    "healthz",
    "admin",
    "a",
    "x",
    "-",
    "~",
    ".",
    ".",
    "..",
    "..",
    "%2e",
    "%2E",
    ".%2e",
    "%2e.",
    ";",
    ";",
    ";x=1",
    ";jsessionid=1",
    "%3B",
    "%3b",
    "%252e",
    "%25",
    "%2F",
    "%5C",
    "\\",
    "%00",
    "\t",
    "%09",
    "%EF%BC%8E",
    "\u{FF0E}",
    "%c0%ae",
    "%u002e",
    "%20",
    "%41",
    "%e5%bc%a0",
    "static/",
    "healthz;",
    "..;/",
    "/.;/",
    "/;/",
    "%252f",
    "%2525",
    "%E2%80%A5",
    "%EF%BC%9B",
    "%252e%252e",
    "%25252e",
    "%EF%BC%8E%EF%BC%8E",
    "%2e%2e%3B",
    "..%252f",
];

/// Tokens every reader accepts, so most generated paths reach the comparisons.
const CLEAN: &[&str] = &[
    "/", "/", "/", "//", "static", "healthz", "admin", "a", ".", "..", "..", "%2e", "%2E", ";",
    ";x", "%3B", "%20", "%41", "~",
];

/// `start` followed by up to 12 tokens.
fn paths(start: &'static str, tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(tokens), 0..12)
        .prop_map(move |t| format!("{start}{}", t.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn every_reader_agrees_with_what_we_accept(p in paths("/", TOKENS)) {
        check(&filter(), &p)?;
    }

    /// Under a public prefix, where a confusion would let a request through.
    #[test]
    fn every_reader_agrees_under_a_public_prefix(p in paths("/static/", TOKENS)) {
        check(&filter(), &p)?;
    }

    #[test]
    fn every_reader_agrees_on_clean_paths(p in paths("/", CLEAN)) {
        check(&filter(), &p)?;
    }
}

// --------------------------------------------------------------------------- fixed cases

/// The models themselves, against their sources' own examples.
#[test]
fn the_readers_follow_their_sources() {
    // RFC 3986 §5.2.4 and §5.4.1/§5.4.2 (merged with base "/b/c/d;p?q").
    assert_eq!(remove_dot_segments("/a/b/c/./../../g"), "/a/g");
    assert_eq!(remove_dot_segments("mid/content=5/../6"), "mid/6");
    assert_eq!(remove_dot_segments("/b/c/../../../g"), "/g");
    assert_eq!(remove_dot_segments("/b/c/./g/."), "/b/c/g/");
    assert_eq!(remove_dot_segments("/b/c/g;x=1/./y"), "/b/c/g;x=1/y");
    assert_eq!(remove_dot_segments("/b/c/g;x=1/../y"), "/b/c/y");
    // Jetty HttpURITest decoded paths.
    assert_eq!(jetty("/path/..;/info").unwrap(), b"/info");
    assert_eq!(jetty("/foo//../bar").unwrap(), b"/foo/bar");
    assert_eq!(jetty("/foo/;param/bar").unwrap(), b"/foo//bar");
    assert_eq!(
        jetty("/path/%2e%2e;param;other/info;other").unwrap(),
        b"/info"
    );
    // Tomcat: parameters cut, `//` merged before dots, above the root refused.
    assert_eq!(tomcat("/static/..;/admin").unwrap(), b"/admin");
    assert_eq!(tomcat("/static/..;jsessionid=x/admin").unwrap(), b"/admin");
    assert_eq!(tomcat("/foo//../bar").unwrap(), b"/bar");
    assert_eq!(tomcat("/foo/;x/../bar").unwrap(), b"/bar");
    assert_eq!(tomcat("/a/%2e%2e/b").unwrap(), b"/b");
    assert_eq!(tomcat("/../a"), None);
    assert_eq!(tomcat("/a%2Fb"), None);
    assert_eq!(eager("/static/%252e%252e/admin").unwrap(), b"/admin");
    assert_eq!(
        eager("/static/%EF%BC%8E%EF%BC%8E/admin").unwrap(),
        b"/admin"
    );
}

/// The attack of issue 10 and its spellings: none is public for us, whatever each reader
/// makes of it.
#[test]
fn the_issue_10_paths_are_not_public() {
    let f = filter();
    for p in [
        "/static/..;/admin",
        "/static/%2e%2e;/admin",
        "/static/..;jsessionid=x/admin",
        "/static;x=1/../admin",
        "/static/;/../admin",
        "/static//../admin",
        "/static/%252e%252e/admin",
        "/static/%EF%BC%8E%EF%BC%8E/admin",
        "/static/%c0%ae%c0%ae/admin",
        "/healthz;a",
    ] {
        assert!(!matches!(judge(&f, p), Judged::Public(_)), "{p}");
        check(&f, p).unwrap();
    }
    assert_eq!(
        judge(&f, "/static/app.js;jsessionid=1"),
        Judged::Public("/static/app.js;jsessionid=1".into())
    );
}
