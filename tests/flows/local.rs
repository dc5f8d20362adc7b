//! Built-in users: the form, the state check, throttling, return URLs.

use serde_json::{json, Value};

use crate::common::{Driver, KEY};

/// PBKDF2-SHA256 of "alice-pw" with 10 000 iterations, made by Python's hashlib (see
/// tests/fixtures/README.md), so the hash format is checked against an independent
/// implementation.
pub fn config() -> Value {
    let hash = sso_filter::password::PasswordHash::create(
        "alice-pw",
        10_000,
        &mut sso_filter::random::SystemRandom,
    )
    .unwrap()
    .to_string();
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "public_paths": ["/healthz", "/static/"],
        "mapping": {"default_roles": ["data viewer"]},
        "methods": {"local": {"type": "local", "max_failures": 3, "lockout_seconds": 60, "users": [
            {"login": "alice", "password_hash": hash, "name": "张三", "roles": ["system admin"]},
            {"login": "bob", "password_hash": hash}
        ]}}
    })
}

pub fn login(d: &mut Driver, user: &str, pw: &str, rd: &str) -> crate::common::Done {
    let form = d.get(&format!("/login?rd={}", crate::common::encode(rd)));
    assert_eq!(form.status(), 200);
    let state = Driver::form_state(&form);
    d.post_form(
        "/login",
        &[("username", user), ("password", pw), ("state", &state)],
    )
}

#[test]
fn navigation_goes_to_login_and_back() {
    let mut d = Driver::new(&config());
    let first = d.get("/apps/1?tab=2");
    assert_eq!(first.status(), 302);
    let to_login = first.header("location").unwrap();
    assert_eq!(to_login, "/sso/login?rd=%2Fapps%2F1%3Ftab%3D2");
    let start = d.get(&to_login);
    assert_eq!(start.status(), 302);
    let form_url = start.header("location").unwrap();
    assert!(form_url.starts_with("/login?"), "{form_url}");
    let form = d.get(&form_url);
    let state = Driver::form_state(&form);
    let done = d.post_form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("state", &state),
        ],
    );
    assert_eq!(done.status(), 303, "{}", done.body());
    assert_eq!(done.header("location").as_deref(), Some("/apps/1?tab=2"));
    let fwd = d.get("/apps/1?tab=2");
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("alice"));
    assert_eq!(
        fwd.set("x-sso-name").as_deref(),
        Some("UTF-8''%E5%BC%A0%E4%B8%89")
    );
    assert_eq!(fwd.set("x-sso-roles").as_deref(), Some("system admin"));
    // A user without roles gets the default roles.
    d.jar.clear();
    login(&mut d, "bob", "alice-pw", "/");
    assert_eq!(
        d.get("/").set("x-sso-roles").as_deref(),
        Some("data viewer")
    );
}

#[test]
fn wrong_password_and_unknown_user_look_the_same() {
    let mut d = Driver::new(&config());
    let wrong = login(&mut d, "alice", "nope", "/");
    let unknown = login(&mut d, "mallory", "nope", "/");
    assert_eq!(wrong.status(), 401);
    assert_eq!(unknown.status(), 401);
    assert!(wrong.body().contains("Invalid user name or password."));
    assert!(unknown.body().contains("Invalid user name or password."));
    assert!(!d.jar.contains_key("sso_session"));
}

#[test]
fn throttling_locks_a_user_out_even_with_the_right_password() {
    let mut d = Driver::new(&config());
    for _ in 0..3 {
        assert_eq!(login(&mut d, "alice", "bad", "/").status(), 401);
    }
    let locked = login(&mut d, "alice", "alice-pw", "/");
    assert_eq!(locked.status(), 429);
    assert!(!d.jar.contains_key("sso_session"));
    // Other users are not affected; the lock ends with the window.
    assert_eq!(login(&mut d, "bob", "alice-pw", "/").status(), 303);
    d.jar.clear();
    d.now += 61;
    assert_eq!(login(&mut d, "alice", "alice-pw", "/").status(), 303);
}

#[test]
fn form_posts_need_this_browsers_live_state() {
    let mut d = Driver::new(&config());
    let no_state = d.post_form("/login", &[("username", "alice"), ("password", "alice-pw")]);
    assert_eq!(no_state.status(), 401);
    let form = d.get("/login");
    let state = Driver::form_state(&form);
    // Another browser (empty jar) cannot use this state.
    let mut other = Driver::new(&config());
    let stolen = other.post_form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("state", &state),
        ],
    );
    assert_eq!(stolen.status(), 401);
    // Expired.
    d.now += 601;
    let late = d.post_form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("state", &state),
        ],
    );
    assert_eq!(late.status(), 401);
    assert!(!d.jar.contains_key("sso_session"));
}

#[test]
fn two_tabs_can_log_in_in_parallel() {
    let mut d = Driver::new(&config());
    let s1 = Driver::form_state(&d.get("/login?rd=/one"));
    let s2 = Driver::form_state(&d.get("/login?rd=/two"));
    let a = d.post_form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("state", &s1),
        ],
    );
    assert_eq!(a.header("location").as_deref(), Some("/one"));
    let b = d.post_form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("state", &s2),
        ],
    );
    assert_eq!(b.header("location").as_deref(), Some("/two"));
    // A used state does not work twice.
    let again = d.post_form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("state", &s1),
        ],
    );
    assert_eq!(again.status(), 401);
}

#[test]
fn return_urls_are_same_origin_only() {
    for rd in [
        "//evil.com",
        "https://evil.com/",
        "/\\evil.com",
        "/%2F%2Fevil.com",
        "/\t/evil.com",
        "javascript:alert(1)",
    ] {
        let mut d = Driver::new(&config());
        let done = login(&mut d, "alice", "alice-pw", rd);
        assert_eq!(done.header("location").as_deref(), Some("/"), "{rd:?}");
    }
    let mut d = Driver::new(&config());
    let done = login(
        &mut d,
        "alice",
        "alice-pw",
        "https://app.example.com/deep/link?a=1",
    );
    assert_eq!(done.header("location").as_deref(), Some("/deep/link?a=1"));
}

#[test]
fn logout_and_userinfo() {
    let mut d = Driver::new(&config());
    assert_eq!(d.api("/sso/userinfo", &[]).status(), 401);
    login(&mut d, "alice", "alice-pw", "/");
    let info = d.api("/sso/userinfo", &[]);
    let body: Value = serde_json::from_str(&info.body()).unwrap();
    assert_eq!(body["login"], "alice");
    assert_eq!(body["name"], "张三");
    let out = d.get("/sso/logout?rd=//evil.com");
    assert_eq!(out.status(), 302);
    assert_eq!(out.header("location").as_deref(), Some("/"));
    assert!(!d.jar.contains_key("sso_session"));
    assert_eq!(d.get("/").status(), 302);
}

#[test]
fn a_lockout_holds_one_address_not_the_user() {
    // Issue 10 item 7: an attacker cannot aim the lockout at a named user.
    let mut d = Driver::new(&config());
    d.client = "203.0.113.66".parse().ok();
    for _ in 0..3 {
        assert_eq!(login(&mut d, "alice", "bad", "/").status(), 401);
    }
    assert_eq!(login(&mut d, "alice", "alice-pw", "/").status(), 429);
    // The same user from her own address signs in.
    d.jar.clear();
    d.client = "192.0.2.10".parse().ok();
    assert_eq!(login(&mut d, "alice", "alice-pw", "/").status(), 303);
    // A header the client sends is not its address (no client_ip_header configured).
    d.jar.clear();
    d.client = "203.0.113.66".parse().ok();
    let form = d.get("/login?rd=%2F");
    let state = Driver::form_state(&form);
    let body = format!("username=alice&password=alice-pw&state={state}");
    let spoofed = d.send(
        "POST",
        "/login",
        vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("x-forwarded-for".into(), "192.0.2.10".into()),
            (
                "cookie".into(),
                d.jar
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ],
        Some(body.into_bytes()),
    );
    assert_eq!(spoofed.status(), 429);
}

#[test]
fn the_password_budget_answers_429_without_hashing() {
    // Issue 10 item 7: per-client and per-worker token buckets in front of every hash.
    let mut cfg = config();
    cfg["limits"] = serde_json::json!({"client_password_burst": 3,
        "client_password_checks_per_minute": 1, "password_burst": 5,
        "password_checks_per_second": 1});
    let mut d = Driver::new(&cfg);
    d.client = "203.0.113.7".parse().ok();
    let mut statuses = Vec::new();
    for i in 0..10 {
        statuses.push(login(&mut d, &format!("nobody{i}"), "x", "/").status());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429, 429, 429, 429, 429]);
    assert_eq!(d.count("sso_password_budget"), 7);
    let busy = login(&mut d, "alice", "alice-pw", "/");
    assert!(busy.body().contains("Too many sign-in attempts right now"));
    // Another address still has its own budget (and the shared one has 2 checks left).
    d.jar.clear();
    d.client = "192.0.2.10".parse().ok();
    assert_eq!(login(&mut d, "alice", "alice-pw", "/").status(), 303);
}

#[test]
fn a_flood_of_unknown_users_keeps_the_throttle_store_bounded() {
    // Issue 10 items 3-4: every unknown name would have been a new shared-data key.
    let mut cfg = config();
    cfg["limits"] = serde_json::json!({"throttle_slots": 16,
        "client_password_burst": 10000, "client_password_checks_per_minute": 10000,
        "password_burst": 10000, "password_checks_per_second": 10000});
    let mut d = Driver::new(&cfg);
    // The victim's counter first: 2 failures from the attacker's address.
    d.client = "203.0.113.66".parse().ok();
    for _ in 0..2 {
        assert_eq!(login(&mut d, "alice", "bad", "/").status(), 401);
    }
    for i in 0..150 {
        d.client = format!("198.51.100.{}", i % 250).parse().ok();
        assert_eq!(login(&mut d, &format!("nobody{i}"), "x", "/").status(), 401);
    }
    let dump = format!("{:?}", d.cache);
    let keys = dump.matches("sso:st:thr:").count();
    assert!(keys <= 16, "{keys} throttle keys");
    // The counter with the most failures survived the flood of one-failure entries: one more
    // failure locks the attacker's address out.
    d.client = "203.0.113.66".parse().ok();
    assert_eq!(login(&mut d, "alice", "bad", "/").status(), 401);
    assert_eq!(login(&mut d, "alice", "alice-pw", "/").status(), 429);
}
