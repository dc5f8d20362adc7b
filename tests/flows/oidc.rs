//! OpenID Connect through the engine against a scripted IdP that checks every request the
//! filter makes (oauth2-rs `mock_http_client` style). The real provider (npm oidc-provider)
//! is exercised by the end-to-end suite.

use std::cell::RefCell;
use std::rc::Rc;

use base64::Engine;
use jwt_compact::alg::Rsa;
use jwt_compact::Algorithm;
use jwt_compact::AlgorithmSignature;
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sso_filter::http::Callout;
use sso_filter::CalloutResponse;

use crate::common::{Done, Driver, KEY};

const ISSUER: &str = "https://idp.example.com";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

fn key() -> rsa::RsaPrivateKey {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/keys/rsa-sign.private.pem"
    ))
    .unwrap();
    rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()
}

fn jwks() -> Value {
    let k = key();
    json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
        "n": B64.encode(k.n().to_bytes_be()), "e": B64.encode(k.e().to_bytes_be())}]})
}

fn sign(claims: &Value, kid: &str) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(json!({"alg": "RS256", "kid": kid}).to_string()),
        B64.encode(claims.to_string())
    );
    let sig = Rsa::rs256().sign(&key(), input.as_bytes());
    format!("{input}.{}", B64.encode(sig.as_bytes()))
}

fn ok(body: Value) -> CalloutResponse {
    CalloutResponse {
        status: Some(200),
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

fn config() -> Value {
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "methods": {"oidc": {"type": "oidc", "issuer": ISSUER, "client_id": "app", "client_secret": "s3cr:et",
            "id_token_hint": true,
            "mapping": {"login": "preferred_username", "name": "name", "groups": "groups"}}}
    })
}

/// The IdP's behaviour, adjustable per test.
#[derive(Clone, Default)]
struct Script {
    id_claims: Option<Value>,
    token_status: Option<u16>,
    userinfo: Option<Value>,
    kid: Option<String>,
    nonce_override: Option<String>,
}

/// An IdP that checks what the filter sends and answers per the script.
fn idp(script: Rc<RefCell<Script>>, now: u64, nonce: Rc<RefCell<String>>) -> crate::common::Idp {
    Box::new(move |c: &Callout| {
        let s = script.borrow().clone();
        match c.url.as_str() {
            "https://idp.example.com/.well-known/openid-configuration" => {
                assert_eq!(c.upstream, "sso_idp_example_com_443");
                assert_eq!(c.method, "GET");
                ok(json!({
                    "issuer": ISSUER,
                    "authorization_endpoint": "https://idp.example.com/auth",
                    "token_endpoint": "https://idp.example.com/token",
                    "userinfo_endpoint": "https://idp.example.com/me",
                    "jwks_uri": "https://idp.example.com/jwks",
                    "end_session_endpoint": "https://idp.example.com/logout",
                    "authorization_response_iss_parameter_supported": true
                }))
            }
            "https://idp.example.com/jwks" => ok(jwks()),
            "https://idp.example.com/token" => {
                assert_eq!(c.method, "POST");
                let auth = c
                    .headers
                    .iter()
                    .find(|(n, _)| n == "authorization")
                    .map(|(_, v)| v.clone())
                    .unwrap();
                // RFC 6749 §2.3.1: id and secret form-encoded, then Basic.
                assert_eq!(
                    auth,
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode("app:s3cr%3Aet")
                    )
                );
                let form: Vec<(String, String)> =
                    url::form_urlencoded::parse(&c.body).into_owned().collect();
                let get = |k: &str| {
                    form.iter()
                        .find(|(n, _)| n == k)
                        .map(|(_, v)| v.clone())
                        .unwrap()
                };
                if get("grant_type") == "refresh_token" {
                    assert_eq!(get("refresh_token"), "rt-1");
                    return ok(
                        json!({"access_token": "at-2", "token_type": "Bearer", "expires_in": 120}),
                    );
                }
                assert_eq!(get("grant_type"), "authorization_code");
                assert_eq!(get("code"), "the-code");
                assert_eq!(
                    get("redirect_uri"),
                    "https://app.example.com/sso/callback/oidc"
                );
                assert_eq!(get("code_verifier").len(), 43);
                if let Some(status) = s.token_status {
                    return CalloutResponse {
                        status: Some(status),
                        headers: vec![],
                        body: br#"{"error":"invalid_grant"}"#.to_vec(),
                    };
                }
                let n = s
                    .nonce_override
                    .clone()
                    .unwrap_or_else(|| nonce.borrow().clone());
                let claims = s.id_claims.clone().unwrap_or_else(|| {
                    json!({
                        "iss": ISSUER, "aud": "app", "sub": "u-1", "exp": now + 300, "iat": now,
                        "nonce": n, "preferred_username": "alice"
                    })
                });
                ok(
                    json!({"access_token": "at", "token_type": "Bearer", "expires_in": 120,
                    "refresh_token": "rt-1",
                    "id_token": sign(&claims, s.kid.as_deref().unwrap_or("k1"))}),
                )
            }
            "https://idp.example.com/me" => {
                assert!(c
                    .headers
                    .contains(&("authorization".into(), "Bearer at".into())));
                ok(s.userinfo.clone().unwrap_or_else(
                    || json!({"sub": "u-1", "name": "张三", "groups": ["g1", "g,2"]}),
                ))
            }
            other => panic!("unexpected callout to {other}"),
        }
    })
}

/// Starts a login and returns the authorize URL's query and the IdP's remembered nonce.
fn begin(d: &mut Driver, script: Rc<RefCell<Script>>) -> (url::Url, Rc<RefCell<String>>) {
    let nonce = Rc::new(RefCell::new(String::new()));
    d.idp = Some(idp(script, d.now, Rc::clone(&nonce)));
    let first = d.get("/reports?id=7");
    let start = d.get(&first.header("location").unwrap());
    assert_eq!(start.status(), 302);
    let authorize = url::Url::parse(&start.header("location").unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "app");
    assert_eq!(
        q["redirect_uri"],
        "https://app.example.com/sso/callback/oidc"
    );
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["scope"], "openid profile email");
    assert!(q["state"].len() >= 43 && q["nonce"].len() >= 43);
    *nonce.borrow_mut() = q["nonce"].clone();
    (authorize, nonce)
}

fn callback(d: &mut Driver, authorize: &url::Url, extra: &str) -> Done {
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    d.get(&format!(
        "/sso/callback/oidc?code=the-code&state={state}&iss={}{extra}",
        crate::common::encode(ISSUER)
    ))
}

#[test]
fn full_login_lands_with_merged_claims_and_logs_out_at_the_idp() {
    let mut d = Driver::new(&config());
    let script = Rc::new(RefCell::new(Script::default()));
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    let done = callback(&mut d, &authorize, "");
    assert_eq!(done.status(), 302, "{}", done.body());
    assert_eq!(done.header("location").as_deref(), Some("/reports?id=7"));
    let fwd = d.get("/reports?id=7");
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("alice"));
    assert_eq!(
        fwd.set("x-sso-name").as_deref(),
        Some("UTF-8''%E5%BC%A0%E4%B8%89")
    );
    assert_eq!(fwd.set("x-sso-groups").as_deref(), Some("g1,UTF-8''g%2C2"));
    assert!(
        !d.jar.keys().any(|k| k.contains("_flow_")),
        "flow cookie deleted"
    );
    // The PKCE verifier sent at the token endpoint matches the challenge sent to the browser.
    let token_call = d
        .callouts
        .iter()
        .find(|c| c.url.ends_with("/token"))
        .unwrap();
    let form: Vec<(String, String)> = url::form_urlencoded::parse(&token_call.body)
        .into_owned()
        .collect();
    let verifier = &form.iter().find(|(k, _)| k == "code_verifier").unwrap().1;
    let challenge = authorize
        .query_pairs()
        .find(|(k, _)| k == "code_challenge")
        .unwrap()
        .1;
    assert_eq!(
        sso_filter::methods::oauth2::pkce_challenge(verifier),
        challenge
    );
    // Logout ends the session and goes to the IdP with the return address and id_token_hint.
    let out = d.get("/sso/logout");
    let loc = url::Url::parse(&out.header("location").unwrap()).unwrap();
    assert_eq!(loc.path(), "/logout");
    let q: std::collections::HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(
        q["post_logout_redirect_uri"],
        "https://app.example.com/?activeAuth=oidc"
    );
    assert!(q["id_token_hint"].starts_with("ey"));
    assert!(!d.jar.contains_key("sso_session"));
    // Discovery and JWKS were cached: a second login makes only token and user-info calls.
    d.callouts.clear();
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    assert_eq!(callback(&mut d, &authorize, "").status(), 302);
    let urls: Vec<&str> = d.callouts.iter().map(|c| c.url.as_str()).collect();
    assert_eq!(
        urls,
        vec![
            "https://idp.example.com/token",
            "https://idp.example.com/me"
        ]
    );
}

#[test]
fn two_tabs_can_log_in_at_once() {
    let mut d = Driver::new(&config());
    let script = Rc::new(RefCell::new(Script::default()));
    let (a, nonce_a) = begin(&mut d, Rc::clone(&script));
    let saved_a = nonce_a.borrow().clone();
    let (b, nonce_b) = begin(&mut d, Rc::clone(&script));
    assert_eq!(callback(&mut d, &b, "").status(), 302);
    *nonce_b.borrow_mut() = saved_a;
    d.idp = Some(idp(Rc::clone(&script), d.now, nonce_a));
    assert_eq!(callback(&mut d, &a, "").status(), 302);
}

fn refused(mutate: impl FnOnce(&mut Script), extra: &str, status: u16) {
    let mut d = Driver::new(&config());
    let script = Rc::new(RefCell::new(Script::default()));
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    mutate(&mut script.borrow_mut());
    let done = callback(&mut d, &authorize, extra);
    assert_eq!(done.status(), status, "{}", done.body());
    assert!(!d.jar.contains_key("sso_session"));
    assert!(
        !d.jar.keys().any(|k| k.contains("_flow_")),
        "flow cookie deleted on failure"
    );
    assert_eq!(d.api("/reports", &[]).status(), 401);
}

#[test]
fn bad_id_tokens_and_idp_errors_are_refused() {
    let now = 1_767_225_600u64;
    refused(|s| s.nonce_override = Some("other".into()), "", 401);
    refused(
        |s| {
            s.id_claims = Some(
                json!({"iss": "https://evil", "aud": "app", "sub": "u", "exp": now + 60, "iat": now, "nonce": "x"}),
            )
        },
        "",
        401,
    );
    refused(
        |s| {
            s.id_claims = Some(
                json!({"iss": ISSUER, "aud": "other", "sub": "u", "exp": now + 60, "iat": now, "nonce": "x"}),
            )
        },
        "",
        401,
    );
    refused(
        |s| {
            s.id_claims = Some(
                json!({"iss": ISSUER, "aud": "app", "sub": "u", "exp": now - 3600, "iat": now - 7200, "nonce": "x"}),
            )
        },
        "",
        401,
    );
    refused(|s| s.token_status = Some(400), "", 401);
    refused(|s| s.token_status = Some(500), "", 502);
    refused(
        |s| s.userinfo = Some(json!({"sub": "someone-else"})),
        "",
        401,
    );
    refused(|s| s.kid = Some("unknown".into()), "", 401);
    refused(|_| {}, "&iss=https%3A%2F%2Fevil", 400);
}

#[test]
fn wrong_iss_parameter_and_missing_state_are_refused() {
    let mut d = Driver::new(&config());
    let script = Rc::new(RefCell::new(Script::default()));
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let evil = d.get(&format!(
        "/sso/callback/oidc?code=the-code&state={state}&iss=https%3A%2F%2Fevil.example"
    ));
    assert_eq!(evil.status(), 401);
    assert_eq!(d.get("/sso/callback/oidc?code=the-code").status(), 401);
    assert_eq!(
        d.get(&format!("/sso/callback/oidc?code=the-code&state={state}"))
            .status(),
        401,
        "state used once"
    );
    assert!(!d.jar.contains_key("sso_session"));
}

#[test]
fn unreachable_and_slow_idps_fail_closed() {
    for (status, body, code) in [
        (Some(504), "upstream request timeout", 504),
        (None, "", 502),
        (Some(200), "<html>", 502),
        (Some(200), "[1]", 502),
    ] {
        let mut d = Driver::new(&config());
        d.idp = Some(Box::new(move |_c: &Callout| CalloutResponse {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        }));
        let first = d.get("/x");
        let done = d.get(&first.header("location").unwrap());
        assert_eq!(done.status(), code, "{status:?} {body}");
        assert!(d.jar.is_empty());
    }
}

#[test]
fn reload_user_switches_the_session_silently() {
    let mut d = Driver::new(&config());
    let script = Rc::new(RefCell::new(Script::default()));
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    assert_eq!(callback(&mut d, &authorize, "").status(), 302);
    assert_eq!(
        d.get("/reports").set("x-sso-login").as_deref(),
        Some("alice")
    );
    // reloadUser=true: back to the IdP without its pages, returning to the URL without it.
    let reload = d.get("/reports?x=1&reloadUser=true");
    assert_eq!(reload.status(), 302);
    let authorize = url::Url::parse(&reload.header("location").unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    assert_eq!(q["prompt"], "none");
    // The IdP's user is now bob: the session switches.
    let nonce = q["nonce"].clone();
    let now = d.now;
    script.borrow_mut().id_claims = Some(
        json!({"iss": ISSUER, "aud": "app", "sub": "u-2", "exp": now + 300,
        "iat": now, "nonce": nonce, "preferred_username": "bob"}),
    );
    script.borrow_mut().userinfo = Some(json!({"sub": "u-2"}));
    let done = callback(&mut d, &authorize, "");
    assert_eq!(done.status(), 302, "{}", done.body());
    assert_eq!(done.header("location").as_deref(), Some("/reports?x=1"));
    assert_eq!(
        d.get("/reports?x=1").set("x-sso-login").as_deref(),
        Some("bob")
    );
    // The IdP answers login_required to a silent reload: the local session ends too.
    let reload = d.get("/reports?reloadUser=true");
    let authorize = url::Url::parse(&reload.header("location").unwrap()).unwrap();
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let refused = d.get(&format!(
        "/sso/callback/oidc?error=login_required&state={state}"
    ));
    assert_eq!(refused.status(), 401);
    assert!(!d.jar.contains_key("sso_session"));
}

#[test]
fn reload_user_from_configuration_skips_fresh_sessions() {
    let mut c = config();
    c["methods"]["oidc"]["reload_user"] = json!(true);
    let mut d = Driver::new(&c);
    let script = Rc::new(RefCell::new(Script::default()));
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    assert_eq!(callback(&mut d, &authorize, "").status(), 302);
    // Just logged in: no loop back to the IdP.
    assert!(matches!(d.get("/reports"), Done::Forwarded(_)));
    // API calls are never redirected.
    d.now += 60;
    assert!(matches!(d.api("/reports", &[]), Done::Forwarded(_)));
    // A later page load asks the IdP again.
    assert_eq!(d.get("/reports").status(), 302);
}

#[test]
fn access_token_is_forwarded_and_refreshed_before_it_expires() {
    let mut c = config();
    c["methods"]["oidc"]["forward_access_token"] = json!(true);
    let mut d = Driver::new(&c);
    let script = Rc::new(RefCell::new(Script::default()));
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    assert_eq!(callback(&mut d, &authorize, "").status(), 302);
    // The client's own Authorization never survives: the IdP's token replaces it.
    let fwd = d.api("/api/x", &[("authorization", "Bearer forged")]);
    assert_eq!(fwd.set("authorization").as_deref(), Some("Bearer at"));
    // Within a minute of expiry, the next request refreshes first, then goes on with the new
    // token and the new session cookie on the upstream's response.
    d.now += 70;
    d.callouts.clear();
    let fwd = d.api("/api/x", &[]);
    assert_eq!(fwd.set("authorization").as_deref(), Some("Bearer at-2"));
    assert_eq!(d.callouts.len(), 1);
    assert!(fwd.edits().iter().any(|e| matches!(e, sso_filter::HeaderEdit::AddResponse(n, v) if n == "set-cookie" && v.starts_with("sso_session="))));
    d.callouts.clear();
    let again = d.api("/api/x", &[]);
    assert_eq!(again.set("authorization").as_deref(), Some("Bearer at-2"));
    assert!(
        d.callouts.is_empty(),
        "the new cookie carries the new token"
    );
}

#[test]
fn failed_refresh_of_an_expired_token_ends_the_session() {
    let mut d = logged_in_with_a_refusing_refresh();
    d.now += 200;
    let done = d.api("/api/x", &[]);
    assert_eq!(done.status(), 401);
    assert!(!d.jar.contains_key("sso_session"));
}

/// Logged in with `forward_access_token` (the token lasts 120 s); the token endpoint now
/// answers every refresh with `invalid_grant`.
fn logged_in_with_a_refusing_refresh() -> Driver {
    let mut c = config();
    c["methods"]["oidc"]["forward_access_token"] = json!(true);
    let mut d = Driver::new(&c);
    let script = Rc::new(RefCell::new(Script::default()));
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    assert_eq!(callback(&mut d, &authorize, "").status(), 302);
    d.idp = Some(Box::new(|_c: &Callout| CalloutResponse {
        status: Some(400),
        headers: vec![],
        body: br#"{"error":"invalid_grant"}"#.to_vec(),
    }));
    d
}

#[test]
fn a_refused_grant_ends_the_session_while_its_token_lasts() {
    // security.md F11: `invalid_grant` drops the session at once; another failure would keep
    // the old token until it ends (70 s in, the token lasts 120 s).
    let mut d = logged_in_with_a_refusing_refresh();
    d.now += 70;
    let done = d.api("/api/x", &[]);
    assert_eq!(done.status(), 401, "{}", done.body());
    assert!(!d.jar.contains_key("sso_session"));
    assert_eq!(d.count("sso_refresh_failure.oidc"), 1);
}

#[test]
fn a_state_sealed_for_another_binding_starts_again_without_a_callout() {
    // Issue 17 item 1: the state is the sealed flow; the browser that brings it back must hold
    // the binding cookie it was sealed for. Another value (a racing first login, or a state
    // handed over from another browser) starts the same login again; the code is never used.
    let mut d = Driver::new(&config());
    let script = Rc::new(RefCell::new(Script::default()));
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    assert!(state.len() > 300, "the sealed flow: {}", state.len());
    d.jar.insert("sso_session_bind".into(), "Z".repeat(22));
    let done = callback(&mut d, &authorize, "");
    assert_eq!(done.status(), 303, "{}", done.body());
    assert_eq!(
        done.header("location").as_deref(),
        Some("/sso/login?rd=%2Freports%3Fid%3D7&activeAuth=oidc&retry=1")
    );
    assert!(!d.callouts.iter().any(|c| c.url.ends_with("/token")));
    assert!(!d.jar.contains_key("sso_session"));
    // The restart binds to the value the browser holds, and lands.
    let again = d.get(&done.header("location").unwrap());
    let authorize = url::Url::parse(&again.header("location").unwrap()).unwrap();
    let q: std::collections::HashMap<String, String> =
        authorize.query_pairs().into_owned().collect();
    let nonce = Rc::new(RefCell::new(q["nonce"].clone()));
    d.idp = Some(idp(Rc::clone(&script), d.now, nonce));
    let landed = callback(&mut d, &authorize, "");
    assert_eq!(landed.status(), 302, "{}", landed.body());
    assert_eq!(landed.header("location").as_deref(), Some("/reports?id=7"));
    // Without any binding cookie: refused.
    d.jar.remove("sso_session");
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    d.jar.remove("sso_session_bind");
    assert_eq!(callback(&mut d, &authorize, "").status(), 401);
}

#[test]
fn a_replayed_callback_is_refused_before_any_callout() {
    // Issue 10 item 6: single use at the filter, not borrowed from the IdP. The attacker keeps
    // the browser's binding cookie and replays the callback URL after the first use.
    let mut d = Driver::new(&config());
    let script = Rc::new(RefCell::new(Script::default()));
    let (authorize, _) = begin(&mut d, Rc::clone(&script));
    let flow_cookies: Vec<(String, String)> = d
        .jar
        .iter()
        .filter(|(k, _)| k.as_str() == "sso_session_bind")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(callback(&mut d, &authorize, "").status(), 302);
    let token_calls = |d: &Driver| {
        d.callouts
            .iter()
            .filter(|c| c.url.ends_with("/token"))
            .count()
    };
    assert_eq!(token_calls(&d), 1);
    d.jar.clear();
    d.jar.extend(flow_cookies);
    let replay = callback(&mut d, &authorize, "");
    assert_eq!(replay.status(), 401, "{}", replay.body());
    assert_eq!(token_calls(&d), 1, "no second token request");
    assert!(!d.jar.contains_key("sso_session"));
    assert_eq!(d.count("sso_deny.login_expired"), 1);
}

#[test]
fn idp_error_texts_never_become_counter_names() {
    // Issue 10 item 5: 2 000 distinct `error=` values on callbacks define no new metric (the
    // end-to-end flood sends 20 000 through Envoy).
    let mut d = Driver::new(&config());
    let script = Rc::new(RefCell::new(Script::default()));
    for i in 0..2_000 {
        let (authorize, _) = begin(&mut d, Rc::clone(&script));
        let state = authorize
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        let done = d.get(&format!(
            "/sso/callback/oidc?error=evil_{i}&state={state}&iss={}",
            crate::common::encode(ISSUER)
        ));
        assert!(done.status() >= 400);
        d.jar.clear();
    }
    let names: std::collections::BTreeSet<&String> = d.counters.iter().collect();
    assert!(names.len() <= 6, "{names:?}");
    assert!(names.iter().all(|n| !n.contains("evil")), "{names:?}");
    assert_eq!(d.count("sso_login_failure.oidc.refused"), 2_000);
}
