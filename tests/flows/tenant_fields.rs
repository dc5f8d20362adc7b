//! The seeds' tenant fields (issue 17 item 4): `tenant_name` reaches the upstream, and the
//! platform party (平台方: "if the tenant code returned by User-info equals the platform Id,
//! the user belongs to the platform party") is a configured value the claims' tenant code is
//! compared with, exactly; the upstream learns it by `x-sso-platform: true` and in the signed
//! assertion. A client can never send either header.

use base64::Engine;
use serde_json::{json, Value};
use sso_filter::HeaderEdit;

use crate::common::{encode, Done, Driver, KEY, SEED_SECRET};
use crate::jwt_param::hs256;

const PLATFORM: &str = "PLATFORM";

fn config() -> Value {
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "assertion": {"alg": "HS256", "secret_base64": KEY},
        "mapping": {"tenant_code": "tenantCode", "tenant_name": "tenantName",
                    "platform_id": PLATFORM},
        "default_method": "jwt-param",
        "methods": {"jwt-param": {"type": "jwt",
                                  "verify": {"alg": "HS256", "secret": SEED_SECRET},
                                  "mapping": {"login": "loginName"}}},
        // A tenant scope whose code is the platform ID: choosing it in the URL stamps the
        // tenant, and still makes nobody a platform user.
        "tenants": {PLATFORM: {"name": "Platform by URL", "default_method": "jwt-param"}}
    })
}

/// Logs a token's user in (`query` chooses a tenant scope or not) and returns the next
/// forwarded request.
fn login(claims: Value, query: &str) -> (Driver, Done) {
    let mut d = Driver::new(&config());
    let mut claims = claims;
    claims["exp"] = json!(d.now + 300);
    let token = hs256(&claims, SEED_SECRET.as_bytes());
    let done = d.get(&format!("/r?{query}jwtParam={}", encode(&token)));
    assert_eq!(done.status(), 302, "{}", done.body());
    let fwd = d.get(&format!("/r?{query}"));
    (d, fwd)
}

fn assertion_claims(fwd: &Done) -> Value {
    let jwt = fwd.set("x-sso-assertion").unwrap();
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn platform_users_and_tenant_names_reach_the_upstream() {
    // A platform user: the claims' tenant code equals platform_id.
    let (mut d, fwd) = login(
        json!({"loginName": "pat", "tenantCode": PLATFORM, "tenantName": "平台方"}),
        "",
    );
    assert_eq!(fwd.set("x-sso-platform").as_deref(), Some("true"));
    assert_eq!(fwd.set("x-sso-tenant").as_deref(), Some(PLATFORM));
    assert_eq!(
        fwd.set("x-sso-tenant-name").as_deref(),
        Some("UTF-8''%E5%B9%B3%E5%8F%B0%E6%96%B9")
    );
    let a = assertion_claims(&fwd);
    assert_eq!(a["platform"], json!(true), "{a}");
    assert_eq!(a["tenant_name"], json!("平台方"), "{a}");
    assert_eq!(a["tenant"], json!(PLATFORM), "{a}");
    let info: Value = serde_json::from_str(&d.api("/sso/userinfo", &[]).body()).unwrap();
    assert_eq!(info["platform"], json!(true), "{info}");

    // Another tenant's user: the tenant name, and no platform header or claim.
    let (_, fwd) = login(
        json!({"loginName": "nina", "tenantCode": "acme", "tenantName": "Acme Ltd"}),
        "",
    );
    assert_eq!(fwd.set("x-sso-platform"), None);
    assert_eq!(fwd.set("x-sso-tenant-name").as_deref(), Some("Acme Ltd"));
    let a = assertion_claims(&fwd);
    assert!(a.get("platform").is_none(), "{a}");
    assert_eq!(a["tenant_name"], json!("Acme Ltd"));

    // Exact comparison: another case, or blanks, are another tenant.
    for code in ["platform", " PLATFORM", "PLATFORM "] {
        let (_, fwd) = login(json!({"loginName": "x", "tenantCode": code}), "");
        assert_eq!(fwd.set("x-sso-platform"), None, "{code:?}");
    }

    // The tenant chosen in the URL is stamped (code and configured name) but a tenant code
    // the claims did not give makes nobody a platform user.
    let (_, fwd) = login(
        json!({"loginName": "url"}),
        &format!("tenantCode={PLATFORM}&"),
    );
    assert_eq!(fwd.set("x-sso-tenant").as_deref(), Some(PLATFORM));
    assert_eq!(
        fwd.set("x-sso-tenant-name").as_deref(),
        Some("Platform by URL")
    );
    assert_eq!(fwd.set("x-sso-platform"), None);
    assert!(assertion_claims(&fwd).get("platform").is_none());
}

#[test]
fn client_sent_platform_and_tenant_name_headers_are_stripped() {
    let forged = [
        ("x-sso-platform", "true"),
        ("X_SSO_PLATFORM", "true"),
        ("X-Sso-Tenant-Name", "Forged"),
        ("x_sso_tenant_name", "Forged"),
    ];
    let removed = |done: &Done| -> Vec<String> {
        done.edits()
            .iter()
            .filter_map(|e| match e {
                HeaderEdit::Remove(n) => Some(n.clone()),
                _ => None,
            })
            .collect()
    };
    let names: Vec<String> = forged.iter().map(|(n, _)| (*n).to_owned()).collect();
    // A public path: removed, nothing set.
    let mut d = Driver::new(&{
        let mut c = config();
        c["public_paths"] = json!(["/healthz"]);
        c
    });
    let public = d.api("/healthz", &forged);
    assert_eq!(removed(&public), names);
    assert!(public
        .edits()
        .iter()
        .all(|e| matches!(e, HeaderEdit::Remove(_))));
    // No session: refused, nothing forwarded.
    assert_eq!(d.api("/r", &forged).status(), 401);
    // A user of another tenant sending the platform header: removed, never set.
    let (mut d, _) = login(json!({"loginName": "nina", "tenantCode": "acme"}), "");
    let fwd = d.api("/r", &forged);
    assert_eq!(removed(&fwd)[..names.len()], names[..]);
    assert_eq!(fwd.set("x-sso-platform"), None);
    assert_eq!(fwd.set("x-sso-tenant-name"), None);
    assert!(assertion_claims(&fwd).get("platform").is_none());
}

#[test]
fn platform_id_is_a_value_checked_at_load() {
    for (bad, why) in [("", "not empty"), (" P", "blanks"), ("P\u{7}Q", "control")] {
        let mut c = config();
        c["mapping"]["platform_id"] = json!(bad);
        let e = sso_filter::Config::from_json(c.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        // Compiled per method (the top level's field overlaid by the method's mapping).
        assert!(e.contains("mapping.platform_id:"), "{bad:?}: {e}");
        assert!(e.contains(why), "{bad:?}: {e}");
    }
    // What would be a path elsewhere is a plain value here.
    let mut c = config();
    c["mapping"]["platform_id"] = json!("$.tenantCode");
    let mut d = Driver::new(&c);
    let token = hs256(
        &json!({"loginName": "p", "tenantCode": "$.tenantCode", "exp": d.now + 60}),
        SEED_SECRET.as_bytes(),
    );
    assert_eq!(
        d.get(&format!("/r?jwtParam={}", encode(&token))).status(),
        302
    );
    assert_eq!(d.get("/r").set("x-sso-platform").as_deref(), Some("true"));
    // The header names are configurable and checked like the others.
    let mut c = config();
    c["identity_headers"] = json!({"platform": "x-sso-login"});
    let e = sso_filter::Config::from_json(c.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(e.contains("identity_headers.platform"), "{e}");
}
