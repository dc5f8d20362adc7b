//! The fleet store against canned etcd answers (shapes as etcd 3.4's JSON gateway answers;
//! the end-to-end suite runs the same conversations against a real etcd).

use serde_json::json;

use super::etcd::*;
use super::*;
use crate::cache::MemoryCache;
use crate::http::{CalloutResponse, Outcome, RequestHead, Response, Step};

fn store() -> EtcdStore {
    match parse(json!({"type": "etcd", "url": "http://127.0.0.1:2379"})) {
        Ok(StoreConfig::Etcd(e)) => e,
        other => panic!("{other:?}"),
    }
}

fn held() -> Outcome {
    Outcome::new(Step::Respond(Response::new(200)))
}

fn answer(status: u16, body: Value) -> CalloutResponse {
    CalloutResponse {
        status: Some(status),
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    }
}

fn once(item: &str) -> Intent {
    Intent::Once {
        list: "once",
        item: item.into(),
        expires: 1_000_300,
        deny: Deny::FlowInvalid,
    }
}

#[test]
fn parse_checks_every_field() {
    assert!(matches!(
        parse(json!({"type": "local"})),
        Ok(StoreConfig::Local)
    ));
    let e = store();
    assert_eq!(e.url, "http://127.0.0.1:2379");
    assert_eq!(e.prefix, "sso-filter/");
    for (bad, path) in [
        (json!({"type": "etcd", "url": "http://h:1/v3"}), "store.url"),
        (json!({"type": "etcd", "url": "ftp://h:1"}), "store.url"),
        (
            json!({"type": "etcd", "url": "http://h:1", "prefix": "a"}),
            "store.prefix",
        ),
        (
            json!({"type": "etcd", "url": "http://h:1", "prefix": "a b/"}),
            "store.prefix",
        ),
        (
            json!({"type": "etcd", "url": "http://h:1", "timeout_ms": 10}),
            "store.timeout_ms",
        ),
        (
            json!({"type": "etcd", "url": "http://h:1", "on_store_error": "open"}),
            "store",
        ),
        (
            json!({"type": "etcd", "url": "http://h:1", "extra": 1}),
            "store",
        ),
        (json!({"type": "redis"}), "store"),
    ] {
        assert_eq!(parse(bad.clone()).map(|_| ()).unwrap_err().0, path, "{bad}");
    }
}

#[test]
fn keys_hide_the_item_and_differ_by_list() {
    let e = store();
    let k = e.key("once", "jti:m:secret-ticket");
    assert!(k.starts_with("sso-filter/once/") && !k.contains("secret"));
    assert_eq!(k.len(), "sso-filter/once/".len() + 32);
    assert_ne!(k, e.key("flow", "jti:m:secret-ticket"));
    assert_eq!(range_end("a/b/"), "a/b0");
}

#[test]
fn windows_bound_how_long_a_key_outlives_its_item() {
    let now = 1_000_000;
    for ttl in [1, 59, 600, 900, 901, 3600, 28_800, 86_400] {
        let end = bucket_end(now + ttl, now);
        assert!(end >= now + ttl);
        let slack = end - (now + ttl);
        assert!(
            slack
                < if ttl <= 900 {
                    60
                } else if ttl <= 10_800 {
                    600
                } else {
                    3600
                }
        );
    }
}

/// Runs a conversation against canned etcd answers; returns the calls made.
fn run(intents: Vec<Intent>, answers: Vec<CalloutResponse>) -> (Vec<Callout>, Next) {
    let cache = MemoryCache::default();
    let mut rng = crate::random::SystemRandom;
    let e = store();
    let mut next = begin(
        &e,
        intents,
        held(),
        Some(RequestHead::default()),
        &cache,
        &mut rng,
        1_000_000,
    );
    let mut calls = Vec::new();
    for a in answers {
        match next {
            Next::Call(c, conv) => {
                calls.push(c);
                next = resume(&e, conv, a, &cache, 1_000_000);
            }
            other => return (calls, other),
        }
    }
    (calls, next)
}

#[test]
fn a_first_use_grants_a_lease_then_writes_and_releases() {
    let (calls, next) = run(
        vec![once("a")],
        vec![
            answer(200, json!({"ID": "77", "TTL": "420"})),
            answer(
                200,
                json!({"succeeded": true, "responses": [{"response_put": {}}]}),
            ),
        ],
    );
    assert!(calls[0].url.ends_with("/v3/lease/grant"));
    let txn: Value = serde_json::from_slice(&calls[1].body).unwrap();
    assert_eq!(txn["compare"][0]["target"], "CREATE");
    assert_eq!(txn["success"][0]["request_put"]["lease"], "77");
    assert!(matches!(next, Next::Release(_)));
}

#[test]
fn a_use_elsewhere_refuses_with_the_items_own_refusal() {
    let (_, next) = run(
        vec![once("a")],
        vec![
            answer(200, json!({"ID": "77"})),
            answer(
                200,
                json!({"responses": [{"response_range": {"count": "1"}}]}),
            ),
        ],
    );
    assert!(
        matches!(next, Next::Refuse(Deny::FlowInvalid, Some(_))),
        "{next:?}"
    );
}

#[test]
fn a_lost_lease_is_granted_again_once() {
    let lost = answer(
        404,
        json!({"error": "etcdserver: requested lease not found", "code": 5}),
    );
    let (calls, next) = run(
        vec![once("a")],
        vec![
            answer(200, json!({"ID": "77"})),
            lost.clone(),
            answer(200, json!({"ID": "78"})),
            lost,
        ],
    );
    assert_eq!(calls.len(), 4);
    assert!(matches!(next, Next::Unavailable(..)), "{next:?}");
}

#[test]
fn silence_errors_and_nonsense_fail_closed() {
    for bad in [
        CalloutResponse::default(),
        answer(500, json!({})),
        answer(200, json!({"succeeded": true, "responses": []})),
    ] {
        let (_, next) = run(vec![once("a")], vec![answer(200, json!({"ID": "1"})), bad]);
        assert!(matches!(next, Next::Unavailable(..)), "{next:?}");
    }
}

#[test]
fn a_logout_elsewhere_ends_the_session_and_only_sessions_may_be_served_without_store() {
    let check = || vec![Intent::NotLoggedOut { item: "sid".into() }];
    let (calls, next) = run(
        check(),
        vec![answer(
            200,
            json!({"succeeded": true, "responses": [{"response_range": {"count": "1"}}]}),
        )],
    );
    assert_eq!(calls.len(), 1, "no lease for a read");
    assert!(matches!(next, Next::LoggedOut { .. }), "{next:?}");
    let (_, next) = run(check(), vec![CalloutResponse::default()]);
    assert!(matches!(next, Next::Unavailable(..)));
    let mut e = store();
    e.on_store_error = OnStoreError::InsecureServeSessions;
    let cache = MemoryCache::default();
    let mut rng = crate::random::SystemRandom;
    let Next::Call(_, conv) = begin(&e, check(), held(), None, &cache, &mut rng, 5) else {
        panic!()
    };
    assert!(matches!(
        resume(&e, conv, CalloutResponse::default(), &cache, 5),
        Next::ServedWithoutStore(..)
    ));
    let Next::Call(_, conv) = begin(&e, vec![once("a")], held(), None, &cache, &mut rng, 5) else {
        panic!()
    };
    assert!(matches!(
        resume(&e, conv, CalloutResponse::default(), &cache, 5),
        Next::Unavailable(..)
    ));
}

#[test]
fn the_lockout_counts_every_replica_and_a_success_clears_it() {
    let tally = |attempt| Intent::Tally {
        item: "fail:local:1.2.3.4:bob".into(),
        max: 3,
        window: 900,
        attempt,
        deny: Deny::Throttled {
            method: "local".into(),
        },
    };
    let counted = |n: &str| {
        answer(
            200,
            json!({"succeeded": true, "responses": [
            {"response_range": {"count": n}}, {"response_put": {}}]}),
        )
    };
    let (calls, next) = run(
        vec![tally(Attempt::Failed)],
        vec![answer(200, json!({"ID": "9"})), counted("1")],
    );
    let txn: Value = serde_json::from_slice(&calls[1].body).unwrap();
    assert!(txn["success"][1]["request_put"]["key"].is_string());
    assert!(matches!(next, Next::Release(_)));
    let (_, next) = run(
        vec![tally(Attempt::Failed)],
        vec![answer(200, json!({"ID": "9"})), counted("3")],
    );
    assert!(matches!(next, Next::Refuse(Deny::Throttled { .. }, _)));
    let (calls, next) = run(
        vec![tally(Attempt::Succeeded)],
        vec![
            answer(
                200,
                json!({"succeeded": true, "responses": [{"response_range": {"count": "2"}}]}),
            ),
            answer(200, json!({"succeeded": true})),
        ],
    );
    let clear: Value = serde_json::from_slice(&calls[1].body).unwrap();
    assert!(clear["success"][0]["request_delete_range"]["range_end"].is_string());
    assert!(matches!(next, Next::Release(_)));
}

fn with_auth() -> EtcdStore {
    match parse(json!({"type": "etcd", "url": "https://etcd.internal:2379",
                       "auth": {"username": "sso-filter", "password": "s3cret-pw"}}))
    {
        Ok(StoreConfig::Etcd(e)) => e,
        other => panic!("{other:?}"),
    }
}

#[test]
fn auth_is_checked_at_load_and_its_password_never_printed() {
    let e = with_auth();
    assert!(!format!("{e:?}").contains("s3cret-pw"));
    for (bad, path) in [
        (
            json!({"type": "etcd", "url": "http://h:1",
                "auth": {"username": "u", "password": "p"}}),
            "store.auth",
        ),
        (
            json!({"type": "etcd", "url": "https://h:1",
                "auth": {"username": " ", "password": "p"}}),
            "store.auth.username",
        ),
        (
            json!({"type": "etcd", "url": "https://h:1",
                "auth": {"username": "u", "password": ""}}),
            "store.auth.password",
        ),
    ] {
        assert_eq!(parse(bad.clone()).map(|_| ()).unwrap_err().0, path, "{bad}");
    }
}

#[test]
fn a_user_authenticates_once_sends_the_token_and_again_when_etcd_forgets_it() {
    let cache = MemoryCache::default();
    let mut rng = crate::random::SystemRandom;
    let e = with_auth();
    let token_ok = || answer(200, json!({"token": "tok.1"}));
    let ok_txn = || {
        answer(
            200,
            json!({"succeeded": true, "responses": [{"response_put": {}}]}),
        )
    };
    let step = |next: Next, a: CalloutResponse, calls: &mut Vec<Callout>| match next {
        Next::Call(c, conv) => {
            calls.push(c);
            resume(&e, conv, a, &cache, 1_000_000)
        }
        other => panic!("{other:?}"),
    };
    let mut calls = Vec::new();
    let next = begin(
        &e,
        vec![once("a")],
        held(),
        None,
        &cache,
        &mut rng,
        1_000_000,
    );
    let next = step(next, token_ok(), &mut calls);
    let next = step(next, answer(200, json!({"ID": "5"})), &mut calls);
    let next = step(next, ok_txn(), &mut calls);
    assert!(matches!(next, Next::Release(_)), "{next:?}");
    assert!(calls[0].url.ends_with("/v3/auth/authenticate"));
    let auth: Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(auth, json!({"name": "sso-filter", "password": "s3cret-pw"}));
    for c in &calls[1..] {
        assert!(
            c.headers
                .contains(&("authorization".into(), "tok.1".into())),
            "{c:?}"
        );
    }
    // The next request reuses the token; etcd has forgotten it (401): one new token, and the
    // transaction again.
    let mut calls = Vec::new();
    let next = begin(
        &e,
        vec![once("b")],
        held(),
        None,
        &cache,
        &mut rng,
        1_000_000,
    );
    let invalid = answer(
        401,
        json!({"error": "etcdserver: invalid auth token", "code": 16}),
    );
    let next = step(next, invalid.clone(), &mut calls);
    let next = step(next, answer(200, json!({"token": "tok.2"})), &mut calls);
    let next = step(next, ok_txn(), &mut calls);
    assert!(matches!(next, Next::Release(_)), "{next:?}");
    assert!(calls[0].url.ends_with("/v3/kv/txn") && calls[1].url.ends_with("/authenticate"));
    assert!(calls[2]
        .headers
        .contains(&("authorization".into(), "tok.2".into())));
    // A fresh token refused too, or a wrong password: closed.
    let mut calls = Vec::new();
    let next = begin(
        &e,
        vec![once("c")],
        held(),
        None,
        &cache,
        &mut rng,
        1_000_000,
    );
    let next = step(next, invalid.clone(), &mut calls);
    let next = step(next, token_ok(), &mut calls);
    let next = step(next, invalid, &mut calls);
    assert!(matches!(next, Next::Unavailable(..)), "{next:?}");
    let mut calls = Vec::new();
    let next = begin(
        &e,
        vec![once("d")],
        held(),
        None,
        &cache,
        &mut rng,
        1_000_000,
    );
    let wrong = answer(
        400,
        json!({"error": "etcdserver: authentication failed, invalid user ID or password", "code": 3}),
    );
    let next = step(next, wrong, &mut calls);
    match next {
        Next::Unavailable(why, _) => assert!(!why.contains("s3cret"), "{why}"),
        other => panic!("{other:?}"),
    }
}
