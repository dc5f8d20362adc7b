//! Mobi's JWT keep-alive (issue 17 item 8) through the engine: the login URL carries the token
//! (`auth_code`), a refresh token and the token's lifetime; shortly before the token ends one
//! request of the session calls the refresh endpoint (a scripted stand-in for the operator's
//! service in front of Mobi's RefreshJWTUserToken, checking what the filter sends) for a new
//! token, which must pass every check of the first and name the same login.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};
use sso_filter::http::Callout;
use sso_filter::{CalloutResponse, HeaderEdit, Step};

use crate::common::{encode, Done, Driver, KEY};
use crate::jwt_param::hs256;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const ISSUER: &str = "https://mobi.example.com";
const REFRESH_URL: &str = "https://mobi-bridge.example.com/refresh";

fn config(keep_alive: Value) -> Value {
    let mut ka = json!({"refresh_url": REFRESH_URL});
    for (k, v) in keep_alive.as_object().unwrap() {
        ka[k] = v.clone();
    }
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "methods": {"mobi": {
            "type": "jwt", "param": "auth_code",
            "verify": {"alg": "HS256", "secret": std::str::from_utf8(SECRET).unwrap()},
            "issuer": ISSUER, "audience": "app",
            "mapping": {"login": "loginName", "roles": "roles"},
            "keep_alive": ka
        }}
    })
}

/// A token of the issuer for `login`, ending `ttl` seconds after `now`.
fn token(login: &str, now: u64, ttl: u64) -> String {
    hs256(
        &json!({"iss": ISSUER, "aud": "app", "loginName": login, "roles": ["viewer"],
                "iat": now, "exp": now + ttl}),
        SECRET,
    )
}

fn ok(body: Value) -> CalloutResponse {
    CalloutResponse {
        status: Some(200),
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

/// The refresh endpoint: checks the request, answers with `answer(refresh token)`.
fn endpoint(answer: impl Fn(&str) -> CalloutResponse + 'static) -> crate::common::Idp {
    Box::new(move |c: &Callout| {
        assert_eq!(c.url, REFRESH_URL);
        assert_eq!(c.upstream, "sso_mobi_bridge_example_com_443");
        assert_eq!(c.method, "POST");
        assert!(c.headers.contains(&(
            "content-type".into(),
            "application/x-www-form-urlencoded".into()
        )));
        assert_eq!(c.timeout_ms, 5000);
        let form: Vec<(String, String)> =
            url::form_urlencoded::parse(&c.body).into_owned().collect();
        assert_eq!(form.len(), 2, "{form:?}");
        assert_eq!(form[0], ("grant_type".into(), "refresh_token".into()));
        assert_eq!(form[1].0, "refresh_token");
        answer(&form[1].1)
    })
}

/// Logs in with a token ending in `ttl` seconds, the refresh token `rt-1` and `expires_in`.
fn login(d: &mut Driver, ttl: u64, expires_in: Option<u64>) -> Done {
    let mut url = format!(
        "/app/page?x=1&auth_code={}&refresh_token=rt-1",
        encode(&token("alice", d.now, ttl))
    );
    if let Some(e) = expires_in {
        url.push_str(&format!("&expires_in={e}"));
    }
    d.get(&url)
}

fn new_cookie(done: &Done) -> bool {
    done.edits().iter().any(|e| {
        matches!(e, HeaderEdit::AddResponse(n, v) if n == "set-cookie" && v.starts_with("sso_session="))
    })
}

/// Nothing forwarded mentions the refresh tokens or carries an `Authorization` of ours.
fn nothing_secret_upstream(done: &Done) {
    for e in done.edits() {
        let text = format!("{e:?}");
        assert!(!text.contains("rt-"), "refresh token upstream: {text}");
        if let HeaderEdit::Set(n, _) = e {
            assert_ne!(n, "authorization", "{text}");
        }
    }
}

#[test]
fn the_session_lives_on_across_the_tokens_end_while_refreshes_succeed() {
    let mut d = Driver::new(&config(json!({})));
    let t0 = d.now;
    let landing = login(&mut d, 600, Some(120));
    assert_eq!(landing.status(), 302, "{}", landing.body());
    // The landing URL drops the token and the keep-alive parameters.
    assert_eq!(landing.header("location").as_deref(), Some("/app/page?x=1"));
    assert!(landing.set_cookies()[0].contains("Max-Age=28800"));

    // Before the window: no refresh.
    let fwd = d.api("/api/x", &[]);
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("alice"));
    nothing_secret_upstream(&fwd);
    assert!(d.callouts.is_empty());

    // Within a minute of the end (expires_in 120 s, before exp): one refresh, the new token
    // rotates the refresh token and lasts another 120 s; its roles replace the old ones.
    let issued = Rc::new(RefCell::new(Vec::<String>::new()));
    let seen = Rc::clone(&issued);
    let now = Rc::new(RefCell::new(t0));
    let clock = Rc::clone(&now);
    d.idp = Some(endpoint(move |rt| {
        seen.borrow_mut().push(rt.to_owned());
        let n = *clock.borrow();
        let t = hs256(
            &json!({"iss": ISSUER, "aud": "app", "loginName": "alice", "roles": ["editor"],
                    "iat": n, "exp": n + 600}),
            SECRET,
        );
        if rt == "rt-1" {
            ok(json!({"auth_code": t, "refresh_token": "rt-2", "expires_in": 120}))
        } else {
            // No rotation; the lifetime as a decimal string (Mobi's URL form).
            ok(json!({"auth_code": t, "expires_in": "120"}))
        }
    }));
    d.now = t0 + 70;
    *now.borrow_mut() = d.now;
    let fwd = d.api("/api/x", &[]);
    assert_eq!(fwd.set("x-sso-roles").as_deref(), Some("editor"));
    assert!(
        new_cookie(&fwd),
        "the renewed session rides on the response"
    );
    nothing_secret_upstream(&fwd);
    assert_eq!(*issued.borrow(), ["rt-1"]);
    assert_eq!(d.count("sso_refresh_success.mobi"), 1);

    // Past the first token's end (t0 + 120) the renewed session goes on, no refresh yet.
    d.now = t0 + 125;
    let fwd = d.api("/api/x", &[]);
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("alice"));
    assert_eq!(d.callouts.len(), 1);

    // The next refresh sends the rotated refresh token; without a rotation it stays.
    for (at, sent) in [(t0 + 140, "rt-2"), (t0 + 210, "rt-2")] {
        d.now = at;
        *now.borrow_mut() = d.now;
        let fwd = d.api("/api/x", &[]);
        assert!(new_cookie(&fwd));
        assert_eq!(issued.borrow().last().map(String::as_str), Some(sent));
    }
    assert_eq!(d.count("sso_refresh_success.mobi"), 3);
    assert_eq!(d.count("sso_refresh_failure.mobi"), 0);
}

#[test]
fn refresh_failures_end_the_session_with_its_token() {
    let other_key = b"fedcba9876543210fedcba9876543210";
    let claims = |n: u64| json!({"iss": ISSUER, "aud": "app", "loginName": "alice", "iat": n, "exp": n + 600});
    let unsigned = {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none"}"#),
            b64.encode(claims(1_767_225_670).to_string())
        )
    };
    let with = |c: Value| hs256(&c, SECRET);
    let n = 1_767_225_670;
    let mut wrong_iss = claims(n);
    wrong_iss["iss"] = json!("https://evil.example.com");
    let mut wrong_aud = claims(n);
    wrong_aud["aud"] = json!("other-app");
    let mut expired = claims(n);
    expired["exp"] = json!(n - 3600);
    let cases: Vec<(&str, CalloutResponse)> = vec![
        (
            "endpoint down (503 page)",
            CalloutResponse {
                status: Some(503),
                headers: vec![],
                body: b"<html>down</html>".to_vec(),
            },
        ),
        (
            "refused (400 invalid_request)",
            CalloutResponse {
                status: Some(400),
                headers: vec![],
                body: br#"{"error":"invalid_request"}"#.to_vec(),
            },
        ),
        (
            "timeout",
            CalloutResponse {
                status: Some(504),
                headers: vec![],
                body: vec![],
            },
        ),
        ("unreachable", CalloutResponse::default()),
        (
            "not JSON",
            CalloutResponse {
                status: Some(200),
                headers: vec![],
                body: b"auth_code=x".to_vec(),
            },
        ),
        ("no token", ok(json!({"refresh_token": "rt-9"}))),
        (
            "signed with another key",
            ok(json!({"auth_code": hs256(&claims(n), other_key)})),
        ),
        ("unsigned (alg none)", ok(json!({"auth_code": unsigned}))),
        ("wrong issuer", ok(json!({"auth_code": with(wrong_iss)}))),
        ("wrong audience", ok(json!({"auth_code": with(wrong_aud)}))),
        ("expired", ok(json!({"auth_code": with(expired)}))),
        (
            "bad expires_in",
            ok(json!({"auth_code": with(claims(n)), "expires_in": "soon"})),
        ),
        (
            "oversized refresh token",
            ok(json!({"auth_code": with(claims(n)),
                                              "refresh_token": "r".repeat(5000)})),
        ),
    ];
    for (what, answer) in cases {
        let mut d = Driver::new(&config(json!({})));
        let t0 = d.now;
        assert_eq!(login(&mut d, 120, None).status(), 302, "{what}");
        d.idp = Some(endpoint(move |_| answer.clone()));
        d.now = t0 + 70;
        // The session is still valid: the request goes on with it, no new cookie.
        let fwd = d.api("/api/x", &[]);
        assert_eq!(fwd.set("x-sso-login").as_deref(), Some("alice"), "{what}");
        assert!(!new_cookie(&fwd), "{what}");
        assert_eq!(d.count("sso_refresh_failure.mobi"), 1, "{what}");
        // A failed refresh is not tried again at once (the lock holds 30 s).
        d.now = t0 + 80;
        assert!(matches!(d.api("/api/x", &[]), Done::Forwarded(_)), "{what}");
        assert_eq!(d.callouts.len(), 1, "{what}");
        // At the token's end the session is over: login required, cookie deleted, no call.
        d.now = t0 + 120;
        let over = d.get("/app/page");
        assert_eq!(over.status(), 302, "{what}");
        assert_eq!(
            over.header("location").as_deref(),
            Some("/sso/login?rd=%2Fapp%2Fpage"),
            "{what}"
        );
        assert!(d.jar.is_empty(), "{what}: session cookie kept");
        assert_eq!(d.callouts.len(), 1, "{what}");
        assert_eq!(d.api("/api/x", &[]).status(), 401, "{what}");
    }
}

#[test]
fn a_refused_grant_ends_the_session_at_once() {
    // security.md F11: `invalid_grant` (RFC 6749 §5.2: the refresh token is revoked or expired)
    // drops the session; it is not used for the rest of its token's life.
    let mut d = Driver::new(&config(json!({})));
    let t0 = d.now;
    assert_eq!(login(&mut d, 120, None).status(), 302);
    d.idp = Some(endpoint(move |_| CalloutResponse {
        status: Some(400),
        headers: vec![],
        body: br#"{"error":"invalid_grant","error_description":"revoked"}"#.to_vec(),
    }));
    d.now = t0 + 70;
    let done = d.api("/api/x", &[]);
    assert_eq!(done.status(), 401, "{}", done.body());
    assert!(d.jar.is_empty(), "the session cookie is deleted");
    assert_eq!(d.count("sso_refresh_failure.mobi"), 1);
    assert_eq!(d.api("/api/x", &[]).status(), 401);
    assert_eq!(d.callouts.len(), 1);
}

#[test]
fn a_token_for_another_login_ends_the_session_at_once() {
    let mut d = Driver::new(&config(json!({})));
    let t0 = d.now;
    assert_eq!(login(&mut d, 120, None).status(), 302);
    d.idp = Some(endpoint(move |_| {
        ok(json!({"auth_code": token("mallory", t0 + 70, 600), "refresh_token": "rt-m"}))
    }));
    d.now = t0 + 70;
    let done = d.api("/api/x", &[]);
    assert_eq!(done.status(), 401, "{}", done.body());
    assert!(d.jar.is_empty(), "the session cookie is deleted");
    assert_eq!(d.count("sso_refresh_failure.mobi"), 1);
    assert_eq!(d.count("sso_refresh_success.mobi"), 0);
    assert_eq!(d.api("/api/x", &[]).status(), 401);
}

#[test]
fn one_refresh_in_flight_per_session() {
    let mut d = Driver::new(&config(json!({})));
    let t0 = d.now;
    assert_eq!(login(&mut d, 120, None).status(), 302);
    let old_jar = d.jar.clone();
    d.now = t0 + 70;
    // The first request of the window starts the refresh and waits for it.
    let first = d.start_api("/api/first");
    let Step::Callout(callout, wait) = first.step else {
        panic!("expected the refresh callout, got {:?}", first.step);
    };
    assert_eq!(callout.url, REFRESH_URL);
    // Meanwhile other requests of the same session go on with it, no second call.
    for path in ["/api/second", "/api/third"] {
        let other = d.start_api(path);
        assert!(
            matches!(&other.step, Step::Continue(e) if e.iter().any(|x| matches!(x, HeaderEdit::Set(n, v) if n == "x-sso-login" && v == "alice"))),
            "{:?}",
            other.step
        );
    }
    let fwd = d.api("/api/fourth", &[]);
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("alice"));
    assert!(d.callouts.is_empty(), "a second refresh was started");
    // The first one's answer renews the session.
    let answer = ok(json!({"auth_code": token("alice", t0 + 70, 600), "refresh_token": "rt-2"}));
    let done = d.answer_held(wait, answer);
    assert!(
        matches!(&done.step, Step::Continue(e) if e.iter().any(|x| matches!(x, HeaderEdit::AddResponse(n, _) if n == "set-cookie"))),
        "{:?}",
        done.step
    );
    // A request still carrying the old cookie (sent before the new one arrived) does not
    // refresh again.
    d.jar = old_jar;
    d.now = t0 + 75;
    assert!(matches!(d.api("/api/late", &[]), Done::Forwarded(_)));
    assert!(d.callouts.is_empty());
}

#[test]
fn keep_alive_parameters_are_checked_and_never_forwarded() {
    let mut d = Driver::new(&config(json!({})));
    let t = token("alice", d.now, 600);
    let refused = [
        format!("/?auth_code={t}&refresh_token=a&refresh_token=b"),
        format!("/?auth_code={t}&refresh_token=a&expires_in=soon"),
        format!("/?auth_code={t}&refresh_token=a&expires_in=0"),
        format!("/?auth_code={t}&refresh_token=a&expires_in=-5"),
        format!("/?auth_code={t}&refresh_token=a&expires_in=1&expires_in=2"),
        format!("/?auth_code={t}&refresh_token={}", "r".repeat(4097)),
        // A refresh token without a token would travel on to the upstream.
        "/app?refresh_token=rt-1".to_owned(),
    ];
    for url in &refused {
        let done = d.get(url);
        assert_eq!(done.status(), 400, "{url}");
        assert!(d.jar.is_empty(), "{url}");
    }
    // The largest refresh token kept: the session cookie is split, and the refresh sends it.
    let big = "r".repeat(4096);
    let done = d.get(&format!(
        "/?auth_code={t}&refresh_token={big}&expires_in=100"
    ));
    assert_eq!(done.status(), 302, "{}", done.body());
    assert!(d.jar.contains_key("sso_session_1"), "{:?}", d.jar.keys());
    let sent = Rc::new(RefCell::new(String::new()));
    let seen = Rc::clone(&sent);
    let renewed = token("alice", d.now, 600);
    d.idp = Some(endpoint(move |rt| {
        *seen.borrow_mut() = rt.to_owned();
        ok(json!({"auth_code": renewed, "refresh_token": "rt-small"}))
    }));
    d.now += 50;
    let fwd = d.api("/api/x", &[]);
    assert!(new_cookie(&fwd));
    assert_eq!(*sent.borrow(), big);
    // The renewed session needs one cookie: the browser is told to drop the second.
    assert!(!d.jar.contains_key("sso_session_1"), "{:?}", d.jar.keys());
    d.jar.clear();
    d.idp = None;
    d.callouts.clear();

    // `expires_in` without a refresh token: a plain session (no keep-alive), parameter dropped.
    let done = d.get(&format!("/app?auth_code={t}&expires_in=60&y=2"));
    assert_eq!(done.status(), 302);
    assert_eq!(done.header("location").as_deref(), Some("/app?y=2"));
    d.now += 3000;
    assert_eq!(
        d.api("/api/x", &[]).set("x-sso-login").as_deref(),
        Some("alice")
    );
    assert!(d.callouts.is_empty());
}

#[test]
fn session_expiry_sync_follows_the_refreshed_token() {
    let mut cfg = config(json!({"refresh_token_param": "rt", "expires_in_param": "ttl"}));
    cfg["methods"]["mobi"]["session_expiry_sync"] = json!(true);
    let mut d = Driver::new(&cfg);
    let t0 = d.now;
    let url = format!(
        "/?auth_code={}&rt=rt-1&ttl=3600",
        encode(&token("alice", t0, 100))
    );
    let landing = d.get(&url);
    assert_eq!(landing.status(), 302, "{}", landing.body());
    assert_eq!(landing.header("location").as_deref(), Some("/"));
    assert!(landing.set_cookies()[0].contains("Max-Age=100"));
    d.idp = Some(Box::new(move |c: &Callout| {
        let form: Vec<(String, String)> =
            url::form_urlencoded::parse(&c.body).into_owned().collect();
        assert_eq!(form[1], ("rt".into(), "rt-1".into()), "the configured name");
        ok(json!({"auth_code": token("alice", t0 + 50, 100), "rt": "rt-2", "ttl": 3600}))
    }));
    d.now = t0 + 50;
    let fwd = d.api("/api/x", &[]);
    let cookie = fwd
        .edits()
        .iter()
        .find_map(|e| match e {
            HeaderEdit::AddResponse(n, v) if n == "set-cookie" => Some(v.clone()),
            _ => None,
        })
        .unwrap();
    assert!(cookie.contains("Max-Age=100"), "{cookie}");
    // Past the first token's exp, before the new one's window: the renewed session.
    d.now = t0 + 85;
    assert_eq!(
        d.api("/api/x", &[]).set("x-sso-login").as_deref(),
        Some("alice")
    );
    d.now = t0 + 150;
    assert_eq!(
        d.api("/api/x", &[]).status(),
        401,
        "ended with the new token"
    );
}

#[test]
fn keep_alive_configuration_is_checked_and_lists_its_cluster() {
    let bad = [
        (
            json!({"refresh_url": "ftp://x.example.com/r"}),
            "keep_alive.refresh_url",
        ),
        (
            json!({"refresh_token_param": "auth_code"}),
            "keep_alive.refresh_token_param",
        ),
        (
            json!({"expires_in_param": "refresh_token"}),
            "keep_alive.expires_in_param",
        ),
        (json!({"window_seconds": 0}), "keep_alive.window_seconds"),
        (json!({"timeout_ms": 0}), "keep_alive.timeout_ms"),
        (json!({"refresh_tokn_param": "x"}), "keep_alive"),
    ];
    for (ka, path) in bad {
        let err = sso_filter::Filter::from_json(config(ka.clone()).to_string().as_bytes())
            .err()
            .unwrap_or_else(|| panic!("{ka} accepted"));
        assert!(
            err.to_string().contains(&format!("methods.mobi.{path}")),
            "{ka}: {err}"
        );
    }
    let mut missing = config(json!({}));
    missing["methods"]["mobi"]["keep_alive"] = json!({});
    assert!(sso_filter::Filter::from_json(missing.to_string().as_bytes()).is_err());
    let filter = sso_filter::Filter::from_json(config(json!({})).to_string().as_bytes()).unwrap();
    let urls: Vec<String> = filter
        .config()
        .outbound_urls()
        .into_iter()
        .map(|(_, u)| u.to_string())
        .collect();
    assert_eq!(urls, [REFRESH_URL]);
}
