//! JWT request parameters against the jwcrypto fixtures (tests/fixtures/jwt/cases.json).

use serde_json::{json, Value};

use crate::common::{encode, Done, Driver, KEY, SEED_SECRET};

fn config_with(method: &Value) -> Value {
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "methods": {"m": method}
    })
}

#[test]
fn every_fixture_case_has_its_outcome() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/cases.json"
    ))
    .unwrap();
    let fixtures: Value = serde_json::from_str(&text).unwrap();
    let now = fixtures["now"].as_u64().unwrap();
    let cases = fixtures["cases"].as_array().unwrap();
    assert!(cases.len() >= 50, "fixture file too small");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let mut d = Driver::new(&config_with(&case["method"]));
        d.now = now;
        let token = case["token"].as_str().unwrap();
        let done = d.get(&format!(
            "/app/page?x=1&activeAuth=m&jwtParam={}",
            encode(token)
        ));
        let accepted = matches!(&done, Done::Answered(r) if r.status == 302
            && r.headers.iter().any(|(n, v)| n == "set-cookie" && v.starts_with("sso_session=")));
        match case["expect"].as_str().unwrap() {
            "accept" => {
                if !accepted {
                    failures.push(format!("{name}: expected accept, got {:?}", summary(&done)));
                    continue;
                }
                assert_eq!(
                    done.header("location").as_deref(),
                    Some("/app/page?x=1"),
                    "{name}: token stripped"
                );
                let fwd = d.get("/app/page?x=1");
                let login = fwd.set("x-sso-login");
                if login.as_deref() != case["login"].as_str() {
                    failures.push(format!("{name}: login {login:?}"));
                }
                if let Some(roles) = case.get("roles").and_then(Value::as_array) {
                    let want: Vec<&str> = roles.iter().map(|r| r.as_str().unwrap()).collect();
                    assert_eq!(
                        fwd.set("x-sso-roles").unwrap_or_default(),
                        want.join(","),
                        "{name}"
                    );
                }
                if let Some(attrs) = case.get("attributes").and_then(Value::as_object) {
                    let got: Value =
                        serde_json::from_str(&fwd.set("x-sso-attributes").unwrap_or("{}".into()))
                            .unwrap();
                    for (k, v) in attrs {
                        assert_eq!(got.get(k), Some(v), "{name}: attribute {k}");
                    }
                }
                if let Some(n) = case.get("mapped_name").and_then(Value::as_str) {
                    let encoded = sso_filter::identity::encode_value(n);
                    assert_eq!(
                        fwd.set("x-sso-name").as_deref(),
                        Some(encoded.as_str()),
                        "{name}"
                    );
                }
            }
            _ => {
                if accepted || !d.jar.is_empty() {
                    failures.push(format!(
                        "{name} ({}): expected deny, got {:?}",
                        case["why"],
                        summary(&done)
                    ));
                    continue;
                }
                let status = done.status();
                assert!(status == 401 || status == 400, "{name}: status {status}");
                // Nothing was let through afterwards either.
                assert!(
                    matches!(d.api("/app/page", &[]), Done::Answered(r) if r.status == 401),
                    "{name}"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn summary(done: &Done) -> String {
    match done {
        Done::Forwarded(_) => "forwarded".into(),
        Done::Answered(r) => format!(
            "{} {}",
            r.status,
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(120)
                .collect::<String>()
        ),
    }
}

fn seed_config(extra: Value) -> Value {
    let mut method = json!({
        "type": "jwt", "param": "jwtParam",
        "verify": {"alg": "HS256", "secret": SEED_SECRET},
        "insecure_allow_missing_exp": true,
        "mapping": {"login": "loginName", "roles": "roles"}
    });
    for (k, v) in extra.as_object().unwrap() {
        method[k] = v.clone();
    }
    json!({"base_url": "https://app.example.com", "session": {"keys": [KEY]}, "methods": {"jwt-param": method}})
}

const SEED: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZS1zdWJqZWN0IiwiYWJjIjoiMTIzIiwicm9sZXMiOlsic3lzdGVtIGFkbWluIiwiZGF0YSBhZG1pbiIsImRhdGEgYW5hbHlzdCIsImRhdGEgdmlld2VyIiwiYXBpIGFkbWluIl0sImxvZ2luTmFtZSI6ImFsaWNlIn0.PGA9DNa-B_4e4WS-fVG57tvxYe0dlu0r8O_Lw1vEtAQ";

#[test]
fn seed_token_logs_alice_in_and_never_reaches_upstream() {
    let mut d = Driver::new(&seed_config(json!({})));
    let done = d.get(&format!("/?activeAuth=jwt-param&jwtParam={SEED}"));
    assert_eq!(done.status(), 302);
    assert_eq!(done.header("location").as_deref(), Some("/"));
    assert_eq!(
        done.header("referrer-policy").as_deref(),
        Some("no-referrer")
    );
    let fwd = d.get("/");
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("alice"));
    assert_eq!(
        fwd.set("x-sso-roles").as_deref(),
        Some("system admin,data admin,data analyst,data viewer,api admin")
    );
    assert_eq!(
        fwd.set("x-sso-attributes").as_deref(),
        Some(r#"{"abc":"123"}"#)
    );
    assert_eq!(fwd.set("x-sso-method").as_deref(), Some("jwt-param"));
    assert_eq!(d.count("sso_login_success.jwt-param"), 1);
}

#[test]
fn missing_exp_is_refused_by_default() {
    let mut cfg = seed_config(json!({}));
    cfg["methods"]["jwt-param"]
        .as_object_mut()
        .unwrap()
        .remove("insecure_allow_missing_exp");
    let mut d = Driver::new(&cfg);
    let done = d.get(&format!("/?activeAuth=jwt-param&jwtParam={SEED}"));
    assert_eq!(done.status(), 401);
    assert!(d.jar.is_empty());
    assert_eq!(d.count("sso_login_failure.jwt-param.missing_claim"), 1);
}

#[test]
fn duplicated_token_parameter_is_refused() {
    let mut d = Driver::new(&seed_config(json!({})));
    let done = d.get(&format!(
        "/?activeAuth=jwt-param&jwtParam={SEED}&jwtParam={SEED}"
    ));
    assert_eq!(done.status(), 400);
    assert!(d.jar.is_empty());
}

#[test]
fn bearer_tokens_are_verified_per_request_without_a_session() {
    let mut d = Driver::new(&seed_config(json!({"accept_bearer": true})));
    let auth = format!("Bearer {SEED}");
    let fwd = d.api("/api/x", &[("authorization", &auth)]);
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("alice"));
    assert!(d.jar.is_empty(), "no cookie for bearer requests");
    let bad = d.api("/api/x", &[("authorization", "Bearer abc.def.ghi")]);
    assert_eq!(bad.status(), 401);
    let none = d.api("/api/x", &[]);
    assert_eq!(none.status(), 401);
    assert_eq!(none.header("www-authenticate").as_deref(), Some("Bearer"));
}

#[test]
fn bearer_is_ignored_when_no_method_accepts_it() {
    let mut d = Driver::new(&seed_config(json!({})));
    let done = d.api("/api/x", &[("authorization", &format!("Bearer {SEED}"))]);
    assert_eq!(done.status(), 401);
}

#[test]
fn session_expiry_follows_the_claim_when_configured() {
    let mut cfg = seed_config(json!({}));
    cfg["session"]["expiry_claim"] = json!("exp");
    cfg["methods"]["jwt-param"]["verify"] =
        json!({"alg": "HS256", "secret": "0123456789abcdef0123456789abcdef"});
    let mut d = Driver::new(&cfg);
    // HS256 over {"sub":"bob","exp":now+100} with the key above, made by hand below.
    let token = hs256(
        &json!({"loginName": "bob", "exp": d.now + 100}),
        b"0123456789abcdef0123456789abcdef",
    );
    let done = d.get(&format!("/?jwtParam={token}"));
    assert_eq!(done.status(), 302, "{}", done.body());
    assert!(
        done.set_cookies()[0].contains("Max-Age=100"),
        "{:?}",
        done.set_cookies()
    );
    d.now += 101;
    assert_eq!(
        d.api("/", &[]).status(),
        401,
        "session ended with the IdP's exp"
    );
}

#[test]
fn one_time_tokens_are_single_use() {
    let mut cfg = seed_config(json!({"one_time": true}));
    cfg["methods"]["jwt-param"]
        .as_object_mut()
        .unwrap()
        .remove("insecure_allow_missing_exp");
    cfg["methods"]["jwt-param"]["verify"] =
        json!({"alg": "HS256", "secret": "0123456789abcdef0123456789abcdef"});
    let mut d = Driver::new(&cfg);
    let token = hs256(
        &json!({"loginName": "bob", "exp": d.now + 100, "jti": "j1"}),
        b"0123456789abcdef0123456789abcdef",
    );
    assert_eq!(d.get(&format!("/?jwtParam={token}")).status(), 302);
    d.jar.clear();
    assert_eq!(d.get(&format!("/?jwtParam={token}")).status(), 401);
    assert_eq!(d.count("sso_login_failure.jwt-param.replayed"), 1);
}

/// A test-only HS256 signer (RFC 7515 §A.1 shape) for claims the fixtures do not cover.
pub fn hs256(claims: &Value, key: &[u8]) -> String {
    use base64::Engine;
    use hmac::Mac;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let input = format!(
        "{}.{}",
        b64.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(claims.to_string())
    );
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64.encode(mac.finalize().into_bytes()))
}

/// A claim whose name has dots is read by its exact name before the dotted path is followed
/// (issue 17 item 11): `profile.email` reaches the upstream although the token also carries a
/// `profile` object.
#[test]
fn dotted_claim_names_are_names_first() {
    let mut cfg = seed_config(json!({}));
    cfg["methods"]["jwt-param"]["verify"] =
        json!({"alg": "HS256", "secret": "0123456789abcdef0123456789abcdef"});
    cfg["methods"]["jwt-param"]["mapping"] =
        json!({"login": "loginName", "email": "profile.email"});
    let mut d = Driver::new(&cfg);
    let token = hs256(
        &json!({"loginName": "carol", "exp": d.now + 100,
                "profile.email": "carol@example.org", "profile": {"email": "nested@example.org"}}),
        b"0123456789abcdef0123456789abcdef",
    );
    let done = d.get(&format!("/?jwtParam={token}"));
    assert_eq!(done.status(), 302, "{}", done.body());
    let fwd = d.api("/", &[]);
    assert_eq!(fwd.set("x-sso-email").as_deref(), Some("carol@example.org"));
}

/// The seeds' session expiry sync, per method (issue 17 item 5): `session_expiry_sync: true`
/// caps this method's sessions at the claim (`exp` by default, or `session_expiry_claim`),
/// another method's sessions keep the configured lifetime, and a method can switch off the
/// global `session.expiry_claim`.
#[test]
fn session_expiry_sync_is_per_method() {
    let secret = "0123456789abcdef0123456789abcdef";
    let method = |extra: Value| {
        let mut m = json!({"type": "jwt", "param": "t", "verify": {"alg": "HS256", "secret": secret},
                           "mapping": {"login": "loginName"}});
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    };
    let cfg = json!({"base_url": "https://app.example.com", "session": {"keys": [KEY]},
    "methods": {
        "synced": method(json!({"session_expiry_sync": true})),
        "by-claim": method(json!({"session_expiry_sync": true, "session_expiry_claim": "validUntil"})),
        "plain": method(json!({}))
    }});
    let mut d = Driver::new(&cfg);
    let now = d.now;
    let token = hs256(
        &json!({"loginName": "eve", "exp": now + 100, "validUntil": now + 50}),
        secret.as_bytes(),
    );
    for (name, max_age) in [("synced", "100"), ("by-claim", "50"), ("plain", "28800")] {
        d.jar.clear();
        let done = d.get(&format!("/?activeAuth={name}&t={token}"));
        assert_eq!(done.status(), 302, "{name}: {}", done.body());
        let session = done
            .set_cookies()
            .into_iter()
            .find(|c| c.starts_with("sso_session="))
            .unwrap();
        assert!(
            session.contains(&format!("Max-Age={max_age};")),
            "{name}: {session}"
        );
    }
    // Switched off per method while the global claim is on.
    let mut global = cfg.clone();
    global["session"]["expiry_claim"] = json!("exp");
    global["methods"]["plain"]["session_expiry_sync"] = json!(false);
    let mut g = Driver::new(&global);
    let done = g.get(&format!("/?activeAuth=plain&t={token}"));
    assert!(done
        .set_cookies()
        .iter()
        .any(|c| c.contains("Max-Age=28800;")));
    // A claim without the switch is refused at load.
    let mut bad = cfg;
    bad["methods"]["plain"]["session_expiry_claim"] = json!("exp");
    let err = sso_filter::Config::from_json(bad.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.path, "methods.plain.session_expiry_claim");
}
