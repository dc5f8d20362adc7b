//! Microsoft Teams tab SSO through the engine: the tab page, the posted token verified against
//! a scripted Entra JWKS in both token versions, and every refusal of providers.md §6.5.

use std::cell::Cell;
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

const B64: base64::engine::general_purpose::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;
const CLIENT: &str = "0b6f2a54-58a7-4bde-9d4a-111111111111";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const TEAMS_DESKTOP: &str = "1fec8e78-bce4-4aaf-ab1b-5451cc387264";
const TEAMS_WEB: &str = "5e3ce6c0-2b1f-4285-8d4b-75ee78787346";

fn key() -> rsa::RsaPrivateKey {
    let pem = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/keys/rsa-sign.private.pem"
    ))
    .unwrap();
    rsa::RsaPrivateKey::from_pkcs8_pem(&pem).unwrap()
}

fn jwks(kid: &str) -> Value {
    let k = key();
    json!({"keys": [{"kty": "RSA", "kid": kid, "use": "sig",
        "n": B64.encode(k.n().to_bytes_be()), "e": B64.encode(k.e().to_bytes_be())}]})
}

fn sign(header: &Value, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let sig = Rsa::rs256().sign(&key(), input.as_bytes());
    format!("{input}.{}", B64.encode(sig.as_bytes()))
}

fn v1(now: u64) -> Value {
    json!({"aud": format!("api://app.example.com/{CLIENT}"), "iss": format!("https://sts.windows.net/{TENANT}/"),
        "iat": now, "nbf": now, "exp": now + 3600, "appid": TEAMS_DESKTOP, "ver": "1.0",
        "scp": "access_as_user", "tid": TENANT, "oid": "oid-zhang", "upn": "zhang@contoso.example",
        "unique_name": "zhang@contoso.example", "name": "Zhang San", "roles": ["data.analyst"]})
}

fn v2(now: u64) -> Value {
    json!({"aud": CLIENT, "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 3600, "azp": TEAMS_WEB, "ver": "2.0",
        "scp": "access_as_user", "tid": TENANT, "oid": "oid-li", "preferred_username": "li@contoso.example",
        "name": "Li Si"})
}

fn config() -> Value {
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY], "same_site": "none", "partitioned": true},
        "methods": {"teams": {"type": "teams", "client_id": CLIENT, "tenant_id": TENANT,
            "client_secret": "unused-for-tab-sso",
            "jwks_url": format!("https://login.example.test/{TENANT}/discovery/v2.0/keys")}}
    })
}

/// A JWKS endpoint serving `kid`, counting its fetches.
fn entra(kid: &'static str, fetches: Rc<Cell<u32>>) -> crate::common::Idp {
    Box::new(move |c: &Callout| {
        assert_eq!(
            c.url,
            format!("https://login.example.test/{TENANT}/discovery/v2.0/keys")
        );
        assert_eq!(c.method, "GET");
        fetches.set(fetches.get() + 1);
        CalloutResponse {
            status: Some(200),
            headers: vec![],
            body: jwks(kid).to_string().into_bytes(),
        }
    })
}

fn tab_page(d: &mut Driver) -> Done {
    let headers = vec![("accept".to_owned(), "text/html".to_owned())];
    let first = d.send("GET", "/tab?activeAuth=teams", headers.clone(), None);
    let login = first.header("location").unwrap();
    d.send("GET", &login, headers, None)
}

fn post_token(d: &mut Driver, token: &str) -> Done {
    let page = tab_page(d);
    assert_eq!(page.status(), 200, "{}", page.body());
    let body = page.body();
    let i = body.find("\"state\":\"").unwrap() + 9;
    let state = body[i..].split('"').next().unwrap().to_owned();
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    let jar: Vec<String> = d.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    headers.push(("cookie".to_owned(), jar.join("; ")));
    d.send(
        "POST",
        "/sso/code/teams",
        headers,
        Some(
            json!({"state": state, "token": token})
                .to_string()
                .into_bytes(),
        ),
    )
}

#[test]
fn tab_page_is_frameable_by_teams_and_its_cookies_are_iframe_safe() {
    let mut d = Driver::new(&config());
    let page = tab_page(&mut d);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("frame-ancestors https://teams.microsoft.com"),
        "{csp}"
    );
    assert!(page.body().contains("getAuthToken"));
    let flow = page.set_cookies().join("\n");
    assert!(
        flow.contains("SameSite=None; Max-Age=600; Secure; Partitioned"),
        "{flow}"
    );
}

#[test]
fn v1_and_v2_tokens_log_in_and_the_jwks_is_cached() {
    let fetches = Rc::new(Cell::new(0));
    let mut d = Driver::new(&config());
    d.idp = Some(entra("k1", Rc::clone(&fetches)));
    let now = d.now;
    let done = post_token(
        &mut d,
        &sign(&json!({"alg": "RS256", "kid": "k1"}), &v1(now)),
    );
    assert_eq!(done.status(), 200, "{}", done.body());
    let cookies = done.set_cookies().join("\n");
    assert!(
        cookies.contains("sso_session=")
            && cookies.contains("SameSite=None")
            && cookies.contains("Partitioned"),
        "{cookies}"
    );
    let fwd = d.api("/tab?activeAuth=teams", &[]);
    assert_eq!(
        fwd.set("x-sso-login").as_deref(),
        Some("zhang@contoso.example")
    );
    assert_eq!(fwd.set("x-sso-name").as_deref(), Some("Zhang San"));
    assert_eq!(fwd.set("x-sso-roles").as_deref(), Some("data.analyst"));
    d.jar.clear();
    let done = post_token(
        &mut d,
        &sign(&json!({"alg": "RS256", "kid": "k1"}), &v2(now)),
    );
    assert_eq!(done.status(), 200, "{}", done.body());
    assert_eq!(
        d.api("/", &[]).set("x-sso-login").as_deref(),
        Some("li@contoso.example")
    );
    assert_eq!(fetches.get(), 1, "the JWKS is fetched once and cached");
}

#[test]
fn refused_tokens() {
    let now = 1_767_225_600u64;
    let h = json!({"alg": "RS256", "kid": "k1"});
    let with = |base: Value, change: Value| {
        let mut c = base;
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let cases: Vec<(&str, String, u16)> = vec![
        (
            "wrong audience",
            sign(&h, &with(v2(now), json!({"aud": "someone-else"}))),
            401,
        ),
        (
            "another app's api uri",
            sign(
                &h,
                &with(v1(now), json!({"aud": "api://app.example.com/other"})),
            ),
            401,
        ),
        (
            "another tenant",
            sign(
                &h,
                &with(
                    v2(now),
                    json!({"tid": "other-tenant", "iss": "https://login.microsoftonline.com/other-tenant/v2.0"}),
                ),
            ),
            403,
        ),
        (
            "v1 issuer on a v2 token",
            sign(
                &h,
                &with(
                    v2(now),
                    json!({"iss": format!("https://sts.windows.net/{TENANT}/")}),
                ),
            ),
            401,
        ),
        (
            "expired",
            sign(
                &h,
                &with(v2(now), json!({"exp": now - 3600, "nbf": now - 7200})),
            ),
            401,
        ),
        (
            "no access_as_user",
            sign(&h, &with(v2(now), json!({"scp": "User.Read"}))),
            401,
        ),
        (
            "not a Teams client",
            sign(
                &h,
                &with(
                    v2(now),
                    json!({"azp": "00000000-0000-0000-0000-000000000000"}),
                ),
            ),
            401,
        ),
        (
            "no version",
            sign(&h, &with(v2(now), json!({"ver": null}))),
            401,
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                B64.encode(json!({"alg": "none"}).to_string()),
                B64.encode(v2(now).to_string())
            ),
            401,
        ),
        (
            "tampered",
            {
                let t = sign(&h, &v2(now));
                let mut p: Vec<&str> = t.split('.').collect();
                let other = B64.encode(with(v2(now), json!({"oid": "x"})).to_string());
                p[1] = &other;
                p.join(".")
            },
            401,
        ),
    ];
    for (what, token, status) in cases {
        let fetches = Rc::new(Cell::new(0));
        let mut d = Driver::new(&config());
        d.idp = Some(entra("k1", Rc::clone(&fetches)));
        let done = post_token(&mut d, &token);
        assert_eq!(done.status(), status, "{what}: {}", done.body());
        assert!(!d.jar.contains_key("sso_session"), "{what}");
    }
}

#[test]
fn hs256_with_the_public_key_is_refused_before_any_key_is_used() {
    let mut d = Driver::new(&config());
    d.idp = Some(Box::new(|_c: &Callout| {
        panic!("no JWKS fetch for an HS256 token")
    }));
    let input = format!(
        "{}.{}",
        B64.encode(json!({"alg": "HS256", "kid": "k1"}).to_string()),
        B64.encode(v2(d.now).to_string())
    );
    let done = post_token(&mut d, &format!("{input}.c2ln"));
    assert_eq!(done.status(), 401);
}

#[test]
fn unknown_kid_refetches_the_jwks_once() {
    let fetches = Rc::new(Cell::new(0));
    let mut d = Driver::new(&config());
    d.idp = Some(entra("k1", Rc::clone(&fetches)));
    let now = d.now;
    assert_eq!(
        post_token(
            &mut d,
            &sign(&json!({"alg": "RS256", "kid": "k1"}), &v2(now))
        )
        .status(),
        200
    );
    // Entra rolled its keys: a token under a new kid. Within a minute of the last fetch the
    // JWKS is not fetched again (security.md M5)...
    d.jar.clear();
    let rolled = sign(&json!({"alg": "RS256", "kid": "k2"}), &v2(now));
    assert_eq!(post_token(&mut d, &rolled).status(), 401);
    assert_eq!(fetches.get(), 1);
    // ... later it is, once, and the new key is there.
    d.now += 120;
    d.idp = Some(entra("k2", Rc::clone(&fetches)));
    d.jar.clear();
    let rolled = sign(&json!({"alg": "RS256", "kid": "k2"}), &v2(d.now));
    let done = post_token(&mut d, &rolled);
    assert_eq!(done.status(), 200, "{}", done.body());
    assert_eq!(fetches.get(), 2);
}

#[test]
fn configuration_errors() {
    for (change, field) in [
        (json!({"tenant_id": "common"}), "tenant_id"),
        (
            json!({"app_id_uri": "https://app.example.com"}),
            "app_id_uri",
        ),
        (json!({"allowed_client_apps": []}), "allowed_client_apps"),
        (
            json!({"frame_ancestors": ["https://x; script-src *"]}),
            "frame_ancestors",
        ),
    ] {
        let mut c = config();
        for (k, v) in change.as_object().unwrap() {
            c["methods"]["teams"][k] = v.clone();
        }
        let err = sso_filter::Filter::from_json(c.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
    let mut c = config();
    c["session"]["same_site"] = json!("lax");
    let err = sso_filter::Filter::from_json(c.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("session.partitioned"), "{err}");
}
