//! What a browser sends: request targets, form bodies and return URLs, through a local-login
//! harness (one user, a real login form's flow cookie and state).
//!
//! - `path_query`: `normalize_path` is idempotent and yields a plain absolute path; stripping
//!   query parameters removes exactly those names; without a session only a public path is
//!   forwarded, and upstream gets the normalised path the decision was made on.
//! - `form_body`: no wrong password, garbage or unsigned SAML post yields a session.
//! - `return_url` (with the oracle `assert_same_origin`, also used by tests/corpora.rs): a
//!   return URL always stays on our origin, directly and through `/sso/logout`.

use std::cell::RefCell;

use serde_json::json;

use super::{set_cookies, text, ORIGIN};
use crate::fuzzing::{
    cookie_header, fixtures, no_callouts, pick, reached, saml_meta, saml_method, CounterRandom,
    Done, Harness,
};
use crate::http::{normalize_path, strip_query_params};

thread_local! {
    static LOCAL: RefCell<Option<(Harness, String, String)>> = const { RefCell::new(None) };
}

/// A local-login harness with one user, and a real login form's flow cookie and state.
fn with_local<R>(f: impl FnOnce(&mut Harness, &str, &str) -> R) -> R {
    LOCAL.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (h, cookie, state) = slot.get_or_insert_with(|| {
            let hash = crate::password::PasswordHash::create(
                "correct horse battery staple",
                crate::password::MIN_ITERATIONS,
                &mut CounterRandom::default(),
            )
            .expect("hash")
            .to_string();
            let config = json!({
                "base_url": ORIGIN,
                "session": {"keys": [fixtures::SESSION_KEY]},
                "public_paths": ["/healthz", "/static/"],
                "methods": {
                    "local": {"type": "local", "max_failures": 1000, "lockout_seconds": 1,
                        "users": [{"login": "alice", "password_hash": hash}]},
                    "saml": saml_method()
                }
            });
            let mut h = Harness::new(&config, saml_meta()["now"].as_u64().unwrap_or(0));
            let start = h.get("/sso/login?activeAuth=local&rd=%2Fapp", None);
            let form_url = start.header("location").expect("form location").to_owned();
            let form = h.get(&form_url, None);
            let cookie = cookie_header(&set_cookies(&form));
            let body = String::from_utf8_lossy(&form.response().expect("form").body).into_owned();
            let at = body.find("name=\"state\" value=\"").expect("state field") + 20;
            let state = body[at..].split('"').next().unwrap_or("").to_owned();
            (h, cookie, state)
        });
        f(h, cookie, state)
    })
}

/// Request targets. Properties: `normalize_path` is idempotent and yields a plain absolute path
/// (no empty, `.` or `..` segment, no backslash or control character); stripping query
/// parameters removes exactly those names and keeps the rest in order; through the engine, a
/// request without a session is forwarded only for a public path, and the upstream gets the
/// normalised path the decision was made on.
pub fn path_query(data: &[u8]) {
    let target = text(data);
    let (path, query) = crate::http::split_target(&target);
    if let Ok(n) = normalize_path(path) {
        assert!(n.starts_with('/'), "{n}");
        assert_eq!(
            normalize_path(&n).as_deref(),
            Ok(n.as_str()),
            "not idempotent"
        );
        assert!(!n.contains("//") && !n.contains('\\'), "{n}");
        assert!(
            n.split('/').all(|s| s != "." && s != ".."),
            "dot segment left in {n}"
        );
        assert!(!n.chars().any(char::is_control), "{n:?}");
    }
    let names = ["jwtParam", "activeAuth"];
    let stripped = strip_query_params(query, &names);
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(stripped.as_bytes())
        .into_owned()
        .collect();
    let want: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(k, _)| !names.contains(&k.as_str()))
        .collect();
    // `a&=x` style empty names parse alike on both sides; compare what survives.
    assert_eq!(kept, want, "strip_query_params changed other parameters");
    with_local(|h, _, _| {
        let headers = vec![("accept".to_owned(), "application/json".to_owned())];
        let done = h.run("GET", &target, headers, b"", &mut no_callouts);
        if let Done::Forwarded(edits) = &done {
            reached("path_query.forwarded_public");
            assert!(done.identity().is_empty());
            let normal = normalize_path(path).expect("forwarded an unnormalisable path");
            let public = normal == "/healthz" || normal.starts_with("/static/");
            assert!(public, "forwarded {target:?} ({normal}) without a session");
            let upstream = edits
                .iter()
                .find_map(|e| match e {
                    crate::HeaderEdit::Set(n, v) if n == ":path" => Some(v.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| target.clone());
            let (up_path, _) = crate::http::split_target(&upstream);
            assert_eq!(
                up_path, normal,
                "upstream path differs from the decided one"
            );
        }
    });
}

/// Form bodies: the local login form and the SAML ACS. Properties: no wrong password, no
/// garbage, no unsigned SAML post ever yields a session or an identity; never a 500.
pub fn form_body(data: &[u8]) {
    with_local(|h, cookie, state| {
        let body: Vec<u8> = match pick(data, 0, 4) {
            0 => data.get(1..).unwrap_or_default().to_vec(),
            1 => {
                let rest = text(data.get(1..).unwrap_or_default());
                let (user, pw) = rest.split_once('\n').unwrap_or(("alice", &rest));
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("username", user)
                    .append_pair("password", pw)
                    .append_pair("state", state)
                    .finish()
                    .into_bytes()
            }
            2 => {
                let mut b = format!("state={state}&").into_bytes();
                b.extend_from_slice(data.get(1..).unwrap_or_default());
                b
            }
            _ => {
                let target = "/sso/saml/saml/acs";
                let headers = vec![
                    ("accept".to_owned(), "text/html".to_owned()),
                    (
                        "content-type".to_owned(),
                        "application/x-www-form-urlencoded".to_owned(),
                    ),
                    ("cookie".to_owned(), cookie.to_owned()),
                ];
                let done = h.run(
                    "POST",
                    target,
                    headers,
                    data.get(1..).unwrap_or_default(),
                    &mut no_callouts,
                );
                assert!(
                    !done.admits(),
                    "an ACS post without a pending request admitted"
                );
                return;
            }
        };
        let headers = vec![
            ("accept".to_owned(), "text/html".to_owned()),
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("cookie".to_owned(), cookie.to_owned()),
        ];
        let done = h.run("POST", "/login", headers, &body, &mut no_callouts);
        if done.status() == 200 || done.status() == 401 {
            reached("form_body.answered");
        }
        assert!(
            !done.admits(),
            "a login form without the password admitted: {done:?}"
        );
    });
}

/// Return URLs (`rd`) directly and through `/sso/logout`. Properties: the result is a path
/// that a browser resolves to our own origin, with no control character, backslash or
/// protocol-relative start; the engine redirects to exactly that.
pub fn return_url(data: &[u8]) {
    let candidate = text(data);
    let got = crate::redirect::safe_return(&candidate, ORIGIN);
    assert_same_origin(&candidate, &got);
    with_local(|h, _, _| {
        let enc: String = url::form_urlencoded::byte_serialize(candidate.as_bytes()).collect();
        let done = h.get(&format!("/sso/logout?rd={enc}"), None);
        assert_eq!(done.status(), 302);
        assert_eq!(done.header("location"), Some(got.as_str()));
    });
}

/// The return-URL oracle: `got` (what `safe_return` made of `candidate`) must stay on our origin
/// under a WHATWG URL parser and be free of the characters browsers rewrite.
pub fn assert_same_origin(candidate: &str, got: &str) {
    assert!(got.starts_with('/'), "{candidate:?} -> {got:?}");
    assert!(
        !got.starts_with("//") && !got.contains('\\'),
        "{candidate:?} -> {got:?}"
    );
    assert!(
        !got.chars().any(|c| c.is_control() || c.is_whitespace()),
        "{candidate:?} -> {got:?}"
    );
    let base = url::Url::parse(ORIGIN).expect("origin");
    let joined = base.join(got).expect("joins");
    assert_eq!(
        joined.origin(),
        base.origin(),
        "{candidate:?} -> {got:?} leaves the origin"
    );
}
