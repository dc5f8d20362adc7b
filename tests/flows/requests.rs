//! Request handling common to every method: spoofed headers, public paths, path forms, API vs
//! navigation, method choice, tenants, sessions.

use serde_json::json;
use sso_filter::HeaderEdit;

use crate::common::{Done, Driver, KEY, SEED_SECRET};
use crate::jwt_param::hs256;
use crate::local;

#[test]
fn spoofed_identity_headers_never_pass() {
    let mut d = Driver::new(&local::config());
    let spoof = [
        ("x-sso-login", "mallory"),
        ("X_SSO_LOGIN", "mallory"),
        ("X-Sso_Roles", "admin"),
    ];
    let public = d.api("/healthz", &spoof);
    let removed: Vec<String> = public
        .edits()
        .iter()
        .map(|e| match e {
            HeaderEdit::Remove(n) => n.clone(),
            HeaderEdit::Set(n, _) | HeaderEdit::AddResponse(n, _) => {
                panic!("public path got a header set: {n}")
            }
        })
        .collect();
    assert_eq!(removed, vec!["x-sso-login", "X_SSO_LOGIN", "X-Sso_Roles"]);
    // Logged in: removed, then set to the real identity.
    let form = d.get("/login");
    let state = Driver::form_state(&form);
    d.post_form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("state", &state),
        ],
    );
    let fwd = d.api("/x", &spoof);
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("alice"));
    let edits = fwd.edits();
    let remove_at = edits
        .iter()
        .position(|e| *e == HeaderEdit::Remove("x-sso-login".into()))
        .unwrap();
    let set_at = edits
        .iter()
        .position(|e| matches!(e, HeaderEdit::Set(n, _) if n == "x-sso-login"))
        .unwrap();
    assert!(remove_at < set_at);
    // The session cookie never goes upstream; other cookies do.
    d.jar.insert("app".into(), "1".into());
    let fwd = d.api("/x", &[]);
    assert_eq!(fwd.set("cookie").as_deref(), Some("app=1"));
}

#[test]
fn unauthenticated_navigation_redirects_and_api_gets_401() {
    let mut d = Driver::new(&local::config());
    assert_eq!(d.get("/admin").status(), 302);
    let api = d.api("/admin", &[]);
    assert_eq!(api.status(), 401);
    let body: serde_json::Value = serde_json::from_str(&api.body()).unwrap();
    assert_eq!(
        body["login_url"],
        "https://app.example.com/sso/login?rd=%2Fadmin"
    );
    // POST is never a navigation.
    let post = d.send(
        "POST",
        "/admin",
        vec![("accept".into(), "text/html".into())],
        None,
    );
    assert_eq!(post.response().status, 401);
    // Every method, including odd ones, is denied.
    for m in ["OPTIONS", "PUT", "DELETE", "PROPFIND", "get"] {
        assert_eq!(
            d.send(m, "/admin", vec![], None).response().status,
            401,
            "{m}"
        );
    }
}

#[test]
fn paths_are_normalised_once_for_matching_and_forwarding() {
    let mut d = Driver::new(&local::config());
    assert!(matches!(d.api("/healthz", &[]), Done::Forwarded(_)));
    assert!(matches!(d.api("/static/app.js", &[]), Done::Forwarded(_)));
    for p in [
        "/healthz/../admin",
        "/static/../admin",
        "/static/%2e%2e/admin",
        "//admin",
        "/healthzX",
        "/admin?x=/healthz",
    ] {
        assert_eq!(d.api(p, &[]).status(), 401, "{p}");
    }
    for p in [
        "/static/..%2fadmin",
        "/static%2f..%2fadmin",
        "/static\\..\\admin",
        "/a%00",
    ] {
        assert_eq!(d.api(p, &[]).status(), 400, "{p}");
    }
    // The normalised path is what goes upstream.
    let fwd = d.api("/static//./x/../app.js?q=1", &[]);
    assert_eq!(fwd.set(":path").as_deref(), Some("/static/app.js?q=1"));
}

fn two_method_config() -> serde_json::Value {
    let mut c = local::config();
    c["methods"]["jwt-param"] = json!({
        "type": "jwt", "verify": {"alg": "HS256", "secret": SEED_SECRET},
        "mapping": {"login": "loginName"}
    });
    c["default_method"] = json!("local");
    c["tenants"] =
        json!({"tenant1": {"id": "t-1", "name": "Tenant One", "default_method": "jwt-param"}});
    c
}

#[test]
fn unknown_active_auth_lists_the_valid_methods() {
    let mut d = Driver::new(&two_method_config());
    let done = d.get("/?activeAuth=kerberos");
    assert_eq!(done.status(), 400);
    assert!(done.body().contains("jwt-param, local"), "{}", done.body());
}

#[test]
fn chooser_page_when_no_default() {
    let mut c = two_method_config();
    c.as_object_mut().unwrap().remove("default_method");
    c.as_object_mut().unwrap().remove("tenants");
    let mut d = Driver::new(&c);
    let page = d.get("/sso/login?rd=/x");
    assert_eq!(page.status(), 200);
    assert!(page.body().contains("activeAuth=jwt-param"));
    assert!(page.body().contains("activeAuth=local"));
    // A JWT method cannot be started from a link.
    assert_eq!(d.get("/sso/login?activeAuth=jwt-param").status(), 401);
}

#[test]
fn tenants_choose_their_method_and_are_stamped_into_the_session() {
    let mut d = Driver::new(&two_method_config());
    let secret = SEED_SECRET.as_bytes();
    let token = hs256(&json!({"loginName": "carol", "exp": d.now + 60}), secret);
    // Tenant default is jwt-param, so the token works without activeAuth; tenantId works too.
    let done = d.get(&format!("/?tenantId=t-1&jwtParam={token}"));
    assert_eq!(done.status(), 302, "{}", done.body());
    assert_eq!(done.header("location").as_deref(), Some("/?tenantId=t-1"));
    let fwd = d.get("/?tenantCode=tenant1");
    assert_eq!(fwd.set("x-sso-tenant").as_deref(), Some("tenant1"));
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("carol"));
    assert_eq!(d.get("/?tenantCode=nope").status(), 400);
    // Without a tenant, the default method is local: the same token parameter is ignored.
    let mut d2 = Driver::new(&two_method_config());
    assert_eq!(d2.get(&format!("/?jwtParam={token}")).status(), 302);
    assert!(d2.jar.is_empty());
}

#[test]
fn oversized_and_odd_cookies_are_no_session() {
    let mut d = Driver::new(&local::config());
    d.jar.insert("sso_session".into(), "x".repeat(5000));
    assert_eq!(d.api("/x", &[]).status(), 401);
    d.jar.insert("sso_session".into(), "a.b.c.d.e".into());
    assert_eq!(d.api("/x", &[]).status(), 401);
    d.jar.clear();
    let done = d.send(
        "GET",
        "/x",
        vec![(
            "cookie".into(),
            "sso_session=; ; =;;sso_session_1=zz".into(),
        )],
        None,
    );
    assert_eq!(done.response().status, 401);
}

#[test]
fn signed_assertion_verifies_with_the_configured_key() {
    use base64::Engine;
    let mut c = local::config();
    c["assertion"] = json!({"alg": "HS256", "secret_base64": KEY, "audience": "app"});
    let mut d = Driver::new(&c);
    let form = d.get("/login");
    let state = Driver::form_state(&form);
    d.post_form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("state", &state),
        ],
    );
    let jwt = d
        .api("/x", &[("x-sso-assertion", "forged")])
        .set("x-sso-assertion")
        .unwrap();
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(KEY)
        .unwrap();
    let (input, sig) = jwt.rsplit_once('.').unwrap();
    use hmac::Mac;
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(&key).unwrap();
    mac.update(input.as_bytes());
    let want = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    assert_eq!(sig, want);
    let payload = input.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["aud"], "app");
    assert_eq!(claims["exp"].as_u64().unwrap(), d.now + 60);
}

/// A switch per method (issue 17 item 3): `enabled: false` keeps a method configured but off.
/// It is not offered, naming it is refused, its token logs nobody in, and a session it issued
/// while it was on ends at its next request.
#[test]
fn a_switched_off_method_is_not_offered_and_its_sessions_end() {
    let secret = "0123456789abcdef0123456789abcdef";
    let config = |on: bool| {
        json!({
            "base_url": "https://app.example.com",
            "session": {"keys": [KEY]},
            "methods": {
                "jwt-param": {"type": "jwt", "param": "jwtParam", "enabled": on,
                              "verify": {"alg": "HS256", "secret": secret},
                              "mapping": {"login": "loginName"}},
                "other": {"type": "jwt", "param": "otherToken",
                          "verify": {"alg": "HS256", "secret": secret},
                          "mapping": {"login": "loginName"}},
                "third": {"type": "jwt", "param": "thirdToken",
                          "verify": {"alg": "HS256", "secret": secret},
                          "mapping": {"login": "loginName"}}
            }
        })
    };
    let mut on = Driver::new(&config(true));
    let token = hs256(
        &json!({"loginName": "dora", "exp": on.now + 600}),
        secret.as_bytes(),
    );
    let login = on.get(&format!("/?activeAuth=jwt-param&jwtParam={token}"));
    assert_eq!(login.status(), 302);
    assert!(on.jar.contains_key("sso_session"));
    assert_eq!(on.api("/", &[]).set("x-sso-login").as_deref(), Some("dora"));

    let mut off = Driver::new(&config(false));
    off.jar = on.jar.clone();
    // The session it issued ends at its next request.
    assert_eq!(off.api("/", &[]).status(), 401);
    // Not offered: the chooser lists only the other methods; naming it is refused.
    let chooser = off.get("/sso/login");
    assert_eq!(chooser.status(), 200);
    assert!(chooser.body().contains("other") && !chooser.body().contains("jwt-param"));
    assert_eq!(off.get("/sso/login?activeAuth=jwt-param").status(), 400);
    // Its token logs nobody in.
    off.jar.clear();
    let again = off.get(&format!("/?activeAuth=other&jwtParam={token}"));
    assert_eq!(again.status(), 302);
    assert!(!off.jar.contains_key("sso_session"));
    assert!(off
        .filter
        .config()
        .summary()
        .contains("switched off: jwt-param (jwt)"));
    // The default may not name a method that is off.
    let mut bad = config(false);
    bad["default_method"] = json!("jwt-param");
    let err = sso_filter::Config::from_json(bad.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.path, "default_method");
    assert!(err.reason.contains("enabled: false"), "{err}");
}

/// The seeds' reload switches methods (issue 17 item 2, the switch): `?activeAuth=X&reloadUser=true`
/// on a page that holds another method's session starts X's login, back to the same URL
/// without the two parameters; without `reloadUser` the session is used as it is.
#[test]
fn reload_user_with_another_method_switches_to_it() {
    let mut cfg = local::config();
    cfg["methods"]["jwt-param"] = json!({"type": "jwt", "param": "jwtParam",
        "verify": {"alg": "HS256", "secret": SEED_SECRET}, "mapping": {"login": "loginName"}});
    cfg["default_method"] = json!("local");
    let mut d = Driver::new(&cfg);
    let token = hs256(
        &json!({"loginName": "frank", "exp": d.now + 600}),
        SEED_SECRET.as_bytes(),
    );
    assert_eq!(
        d.get(&format!("/?activeAuth=jwt-param&jwtParam={token}"))
            .status(),
        302
    );
    let kept = d.api("/reports?activeAuth=local", &[]);
    assert_eq!(kept.set("x-sso-login").as_deref(), Some("frank"));
    let switch = d.get("/reports?id=7&activeAuth=local&reloadUser=true");
    assert_eq!(switch.status(), 302, "{}", switch.body());
    let to = switch.header("location").unwrap();
    assert!(to.starts_with("/login?"), "{to}");
    let q: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(to.split_once('?').unwrap().1.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(q["activeAuth"], "local");
    assert_eq!(q["rd"], "/reports?id=7");
}
