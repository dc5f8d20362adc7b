//! SAML 2.0 through the engine with Responses signed by a real IdP implementation (pysaml2,
//! tests/fixtures/saml2/) and the wrapping and tampering variants made from them.

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Value};
use sso_filter::random::SystemRandom;
use sso_filter::session::Flow;

use crate::common::{encode, Done, Driver, KEY};

pub(crate) const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/saml2/");
pub(crate) const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

pub(crate) fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{DIR}{name}")).unwrap()
}

pub(crate) fn meta() -> Value {
    serde_json::from_str(&fixture("meta.json")).unwrap()
}

pub(crate) fn config(extra: Value) -> Value {
    let m = meta();
    let mut method = json!({"type": "saml2",
        "idp_entity_id": m["idp_entity_id"],
        "idp_sso_url": "https://idp.example.org/sso/redirect",
        "idp_certificates": [fixture("idp.crt")],
        "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        "mapping": {"name": "displayName", "email": "mail", "groups": "eduPersonAffiliation"}});
    for (k, v) in extra.as_object().unwrap() {
        method[k] = v.clone();
    }
    json!({"base_url": "https://app.example.com", "session": {"keys": [KEY]},
           "methods": {"saml": method}})
}

pub(crate) fn driver(extra: Value) -> Driver {
    let mut d = Driver::new(&config(extra));
    d.now = meta()["now"].as_u64().unwrap() + 5;
    d
}

/// A flow as `start` would have sealed it for the fixtures' request ID, bound to the jar's
/// binding cookie; returns the RelayState.
pub(crate) fn pending_login(d: &mut Driver, rd: &str) -> String {
    let nonce = meta()["request_id"].as_str().unwrap().to_owned();
    pending_flow(d, rd, &nonce, None)
}

/// A SAML flow with this request ID (`nonce`) and variant, sealed and bound to the jar's
/// binding cookie; returns its state (the RelayState).
pub(crate) fn pending_flow(d: &mut Driver, rd: &str, nonce: &str, variant: Option<&str>) -> String {
    // Unique per flow, as the engine's random states are: a used state is refused again.
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let state = format!("state-{}-{n}", d.jar.len());
    let mut flow = Flow {
        v: 1,
        state,
        rd: rd.into(),
        method: "saml".into(),
        tenant: None,
        exp: d.now + 600,
        nonce: Some(nonce.to_owned()),
        verifier: None,
        variant: variant.map(str::to_owned),
        bind: None,
        retry: 0,
    };
    let held: Vec<(String, String)> = d.jar.iter().map(|(n, v)| (n.clone(), v.clone())).collect();
    let (relay, binding) = d
        .filter
        .config()
        .cookies
        .carry_flow(&mut flow, &held, &mut SystemRandom)
        .unwrap();
    let (n, v) = binding.split(';').next().unwrap().split_once('=').unwrap();
    d.jar.insert(n.to_owned(), v.to_owned());
    relay
}

pub(crate) fn post_acs(d: &mut Driver, xml: &str, relay: &str) -> Done {
    d.post_form(
        "/sso/saml/saml/acs",
        &[("SAMLResponse", &B64.encode(xml)), ("RelayState", relay)],
    )
}

#[test]
fn start_sends_an_authn_request_and_a_cross_site_binding_cookie() {
    let mut d = driver(json!({"force_authn": true}));
    let first = d.get("/reports?id=7");
    let start = d.get(&first.header("location").unwrap());
    assert_eq!(start.status(), 302, "{}", start.body());
    let loc = url::Url::parse(&start.header("location").unwrap()).unwrap();
    assert_eq!(loc.host_str(), Some("idp.example.org"));
    let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    let inflated =
        miniz_oxide::inflate::decompress_to_vec(&B64.decode(&q["SAMLRequest"]).unwrap()).unwrap();
    let xml = String::from_utf8(inflated).unwrap();
    assert!(
        xml.contains(r#"AssertionConsumerServiceURL="https://app.example.com/sso/saml/saml/acs""#),
        "{xml}"
    );
    assert!(
        xml.contains("<saml:Issuer>https://app.example.com/sso/saml/saml/metadata</saml:Issuer>")
    );
    assert!(xml.contains(r#"Destination="https://idp.example.org/sso/redirect""#));
    assert!(xml.contains(r#"ForceAuthn="true""#) && xml.contains("emailAddress"));
    // RelayState is the sealed flow (no flow cookie); the browser gets its binding cookie.
    assert!(q["RelayState"].len() >= 200, "{}", q["RelayState"]);
    assert!(!start.set_cookies().iter().any(|c| c.contains("_flow_")));
    // base_url is https, so the binding cookie is Secure and SameSite=None: the IdP posts back
    // cross-site (security.md I13).
    let binding = start
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("sso_session_bind="))
        .unwrap();
    assert!(
        binding.contains("SameSite=None") && binding.contains("Secure"),
        "{binding}"
    );
}

#[test]
fn signed_redirect_requests() {
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/jwt/keys/rsa-sign.private.pem"
    ))
    .unwrap();
    let mut d = driver(json!({"sign_authn_request": true, "sp_private_key": key}));
    let start = d.get("/sso/login?rd=%2F");
    let loc = start.header("location").unwrap();
    let query = loc.split_once('?').unwrap().1;
    // The signature covers SAMLRequest=..&RelayState=..&SigAlg=.. exactly as sent.
    let (signed, sig) = query.rsplit_once("&Signature=").unwrap();
    assert!(
        signed.contains("&SigAlg=http%3A%2F%2Fwww.w3.org%2F2001%2F04%2Fxmldsig-more%23rsa-sha256")
    );
    let sig: String = url::form_urlencoded::parse(format!("s={sig}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    use rsa::pkcs8::DecodePrivateKey;
    use sha2::Digest;
    let public = rsa::RsaPrivateKey::from_pkcs8_pem(&key)
        .unwrap()
        .to_public_key();
    public
        .verify(
            rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
            &sha2::Sha256::digest(signed.as_bytes()),
            &B64.decode(sig).unwrap(),
        )
        .unwrap();
}

#[test]
fn post_binding_page_auto_submits() {
    let mut d = driver(json!({"binding": "post"}));
    let start = d.get("/sso/login?rd=%2F");
    assert_eq!(start.status(), 200);
    let body = start.body();
    assert!(
        body.contains(r#"action="https://idp.example.org/sso/redirect""#),
        "{body}"
    );
    assert!(body.contains(r#"name="SAMLRequest""#) && body.contains(r#"name="RelayState""#));
    crate::saml2_logout::csp_allows_only_its_script(&start);
}

#[test]
fn metadata_is_served() {
    let mut d = driver(json!({}));
    let md = d.get("/sso/saml/saml/metadata");
    assert_eq!(md.status(), 200);
    let xml = md.body();
    assert!(xml.contains(r#"entityID="https://app.example.com/sso/saml/saml/metadata""#));
    assert!(xml.contains(r#"Location="https://app.example.com/sso/saml/saml/acs""#));
    assert_eq!(d.get("/sso/saml/nope/metadata").status(), 404);
}

#[test]
fn short_relay_state_keeps_the_flow_in_a_cookie() {
    // For an IdP that holds RelayState to the bindings' 80 bytes: a random id names a flow
    // cookie (SameSite=None, it comes back with the IdP's cross-site post), used once.
    let mut d = driver(json!({"short_relay_state": true}));
    let first = d.get("/reports?id=7");
    let start = d.get(&first.header("location").unwrap());
    let loc = url::Url::parse(&start.header("location").unwrap()).unwrap();
    let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["RelayState"].len(), 43, "{}", q["RelayState"]);
    let cookies = start.set_cookies();
    let flow = cookies.iter().find(|c| c.contains("_flow_")).unwrap();
    assert!(
        flow.contains("SameSite=None") && flow.contains("Secure"),
        "{flow}"
    );
    assert!(!cookies.iter().any(|c| c.starts_with("sso_session_bind=")));
    // A real IdP's Response to the fixtures' request ID, on a flow cookie for it.
    let pending = Flow {
        v: 1,
        state: "r".repeat(43),
        rd: "/reports?id=7".into(),
        method: "saml".into(),
        tenant: None,
        exp: d.now + 600,
        nonce: Some(meta()["request_id"].as_str().unwrap().to_owned()),
        verifier: None,
        variant: None,
        bind: None,
        retry: 0,
    };
    let set = d
        .filter
        .config()
        .cookies
        .write_cross_site_flow(&pending, &[], d.now, &mut SystemRandom)
        .unwrap();
    let (n, v) = set[0].split(';').next().unwrap().split_once('=').unwrap();
    d.jar.insert(n.to_owned(), v.to_owned());
    let done = post_acs(&mut d, &fixture("signed_assertion.xml"), &pending.state);
    assert_eq!(done.status(), 303, "{}", done.body());
    assert_eq!(done.header("location").as_deref(), Some("/reports?id=7"));
    assert!(!d.jar.contains_key(n), "the flow cookie is deleted");
    // Used once: the same cookie and RelayState again.
    d.jar.insert(n.to_owned(), v.to_owned());
    d.jar.remove("sso_session");
    let again = post_acs(&mut d, &fixture("signed_assertion.xml"), &pending.state);
    assert_eq!(again.status(), 401, "{}", again.body());
    assert!(!d.jar.contains_key("sso_session"));
}

#[test]
fn real_idp_responses_log_in_once() {
    for name in [
        "signed_assertion.xml",
        "signed_response.xml",
        "signed_both.xml",
    ] {
        let mut d = driver(json!({}));
        let relay = pending_login(&mut d, "/reports?id=7");
        let done = post_acs(&mut d, &fixture(name), &relay);
        assert_eq!(done.status(), 303, "{name}: {}", done.body());
        assert_eq!(done.header("location").as_deref(), Some("/reports?id=7"));
        assert!(!d.jar.keys().any(|k| k.contains("_flow_")));
        let fwd = d.get("/reports?id=7");
        assert_eq!(fwd.set("x-sso-login").as_deref(), Some("jdoe@example.org"));
        assert_eq!(fwd.set("x-sso-email").as_deref(), Some("jdoe@example.org"));
        assert_eq!(fwd.set("x-sso-groups").as_deref(), Some("staff,faculty"));
        assert_eq!(fwd.set("x-sso-method").as_deref(), Some("saml"));
        assert_eq!(d.count("sso_login_success.saml"), 1);
        // Replay with a fresh flow in the same or another browser: the assertion was used.
        d.jar.clear();
        let relay = pending_login(&mut d, "/");
        let again = post_acs(&mut d, &fixture(name), &relay);
        assert_eq!(again.status(), 401, "{name} replay");
        assert!(!d.jar.contains_key("sso_session"));
        assert_eq!(
            d.count("sso_login_failure.saml.rejected"),
            1,
            "{:?}",
            d.counters
        );
    }
}

#[test]
fn every_attack_fixture_is_refused_with_no_session() {
    let mut names: Vec<String> = std::fs::read_dir(DIR)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| {
            n.starts_with("attack_")
                || ["unsigned.xml", "attacker_key.xml", "signed_sha1.xml"].contains(&n.as_str())
        })
        .collect();
    names.sort();
    assert!(names.len() >= 17, "{names:?}");
    for name in names {
        let mut d = driver(json!({}));
        let relay = pending_login(&mut d, "/");
        let done = post_acs(&mut d, &fixture(&name), &relay);
        assert_eq!(done.status(), 401, "{name}: {}", done.body());
        assert!(!d.jar.contains_key("sso_session"), "{name}");
        assert!(
            !d.jar.keys().any(|k| k.contains("_flow_")),
            "{name}: flow used up"
        );
        assert!(
            d.counters
                .iter()
                .any(|c| c == "sso_login_failure.saml.rejected"),
            "{name}: {:?}",
            d.counters
        );
        assert_eq!(d.api("/reports", &[]).status(), 401, "{name}");
    }
}

#[test]
fn flow_binding_and_form_rules() {
    // No RelayState / unknown RelayState: unsolicited, refused.
    let mut d = driver(json!({}));
    pending_login(&mut d, "/");
    assert_eq!(
        post_acs(&mut d, &fixture("signed_both.xml"), "").status(),
        401
    );
    assert_eq!(
        post_acs(&mut d, &fixture("signed_both.xml"), "other").status(),
        401
    );
    // Another browser's response (its flow cookie is not here).
    let mut other = driver(json!({}));
    let relay = pending_login(&mut d, "/");
    assert_eq!(
        post_acs(&mut other, &fixture("signed_both.xml"), &relay).status(),
        401
    );
    // A request ID of another login (InResponseTo mismatch).
    let mut d = driver(json!({}));
    let relay = pending_login(&mut d, "/");
    let xml = fixture("signed_both.xml").replace(meta()["request_id"].as_str().unwrap(), "_x");
    assert_eq!(post_acs(&mut d, &xml, &relay).status(), 401);
    // Two SAMLResponse fields, a body too large, a GET.
    let mut d = driver(json!({}));
    let relay = pending_login(&mut d, "/");
    let b = B64.encode(fixture("signed_both.xml"));
    let dup = d.post_form(
        "/sso/saml/saml/acs",
        &[
            ("SAMLResponse", &b),
            ("SAMLResponse", &b),
            ("RelayState", &relay),
        ],
    );
    assert_eq!(dup.status(), 400);
    let huge = "A".repeat(sso_filter::methods::saml2::MAX_ACS_BODY + 10);
    let big = d.post_form(
        "/sso/saml/saml/acs",
        &[("SAMLResponse", &huge), ("RelayState", &relay)],
    );
    assert_eq!(big.status(), 413);
    assert_eq!(d.get("/sso/saml/saml/acs").status(), 400);
    let _ = encode("");
}

#[test]
fn configuration_is_checked() {
    for (extra, needle) in [
        (json!({"idp_certificates": []}), "idp_certificates"),
        (
            json!({"idp_certificates": ["not a cert"]}),
            "idp_certificates[0]",
        ),
        (json!({"binding": "soap"}), "binding"),
        (json!({"sign_authn_request": true}), "sp_private_key"),
        (json!({"principal": "ATTRIBUTE"}), "principal_attribute"),
        (
            json!({"idp_metadata_xml": "<!DOCTYPE x><x/>"}),
            "idp_metadata_xml",
        ),
        (
            json!({"want_assertion_signed": true}),
            "want_assertion_signed",
        ),
    ] {
        let e = sso_filter::Config::from_json(config(extra.clone()).to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("methods.saml"), "{extra}: {e}");
        assert!(e.contains(needle), "{extra}: {e}");
    }
}

#[test]
fn encrypted_assertions_log_in_with_the_sp_key() {
    for name in ["encrypted_aes128_cbc.xml", "encrypted_aes256_gcm.xml"] {
        let mut d = driver(
            json!({"sp_private_key": fixture("sp.key"), "sp_certificate": fixture("sp.crt")}),
        );
        let relay = pending_login(&mut d, "/enc");
        let done = post_acs(&mut d, &fixture(name), &relay);
        assert_eq!(done.status(), 303, "{name}: {}", done.body());
        assert_eq!(
            d.get("/enc").set("x-sso-login").as_deref(),
            Some("jdoe@example.org")
        );
    }
    // The SP metadata then offers the certificate for encryption too.
    let mut d =
        driver(json!({"sp_private_key": fixture("sp.key"), "sp_certificate": fixture("sp.crt")}));
    assert!(d
        .get("/sso/saml/saml/metadata")
        .body()
        .contains(r#"use="encryption""#));
    // An unsigned encrypted assertion is refused like any unsigned one.
    let relay = pending_login(&mut d, "/");
    assert_eq!(
        post_acs(&mut d, &fixture("encrypted_unsigned.xml"), &relay).status(),
        401
    );
}

/// IdP metadata as pysaml2 would publish it, for the fixtures' IdP.
pub(crate) fn idp_metadata() -> String {
    let m = meta();
    let cert: String = fixture("idp.crt")
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    format!(
        r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.org/sso/redirect"/></md:IDPSSODescriptor></md:EntityDescriptor>"#,
        m["idp_entity_id"].as_str().unwrap()
    )
}

fn metadata_url_config() -> Value {
    let mut c = config(json!({"idp_metadata_url": "https://idp.example.org/metadata"}));
    let m = c["methods"]["saml"].as_object_mut().unwrap();
    m.remove("idp_entity_id");
    m.remove("idp_sso_url");
    m.remove("idp_certificates");
    c
}

#[test]
fn metadata_from_a_url_is_fetched_cached_and_refreshed() {
    use sso_filter::CalloutResponse;
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut d = Driver::new(&metadata_url_config());
    d.now = meta()["now"].as_u64().unwrap() + 5;
    let fail = Rc::new(RefCell::new(false));
    let f = Rc::clone(&fail);
    d.idp = Some(Box::new(move |c: &sso_filter::http::Callout| {
        assert_eq!(c.url, "https://idp.example.org/metadata");
        assert_eq!(c.upstream, "sso_idp_example_org_443");
        if *f.borrow() {
            return CalloutResponse::default();
        }
        CalloutResponse {
            status: Some(200),
            headers: vec![],
            body: idp_metadata().into_bytes(),
        }
    }));
    // First login: one metadata callout, then the redirect to the IdP from the metadata.
    let start = d.get("/sso/login?activeAuth=saml&rd=%2F");
    assert_eq!(start.status(), 302, "{}", start.body());
    assert!(start
        .header("location")
        .unwrap()
        .starts_with("https://idp.example.org/sso/redirect?SAMLRequest="));
    assert_eq!(d.callouts.len(), 1);
    // The ACS uses the cached copy: no callout, and the Response verifies with its keys.
    let relay = pending_login(&mut d, "/md");
    assert_eq!(
        post_acs(&mut d, &fixture("signed_both.xml"), &relay).status(),
        303
    );
    assert_eq!(d.callouts.len(), 1);
    // Past the TTL the IdP is asked again; when it does not answer, the day-old copy serves.
    d.now += 3700;
    *fail.borrow_mut() = true;
    let again = d.get("/sso/login?activeAuth=saml&rd=%2F");
    assert_eq!(again.status(), 302, "stale copy used: {}", again.body());
    assert_eq!(d.callouts.len(), 2);
    // No copy at all and no answer: 502, no redirect.
    let mut fresh = Driver::new(&metadata_url_config());
    fresh.idp = Some(Box::new(|_c: &sso_filter::http::Callout| {
        CalloutResponse::default()
    }));
    assert_eq!(fresh.get("/sso/login?activeAuth=saml&rd=%2F").status(), 502);
    // A metadata document without keys is refused, not half-used.
    let mut bad = Driver::new(&metadata_url_config());
    bad.idp = Some(Box::new(|_c: &sso_filter::http::Callout| CalloutResponse {
        status: Some(200),
        headers: vec![],
        body: idp_metadata()
            .replace("use=\"signing\"", "use=\"encryption\"")
            .into_bytes(),
    }));
    assert_eq!(bad.get("/sso/login?activeAuth=saml&rd=%2F").status(), 502);
}

#[test]
fn the_acs_fetches_metadata_when_it_has_none() {
    use sso_filter::CalloutResponse;
    let mut d = Driver::new(&metadata_url_config());
    d.now = meta()["now"].as_u64().unwrap() + 5;
    d.idp = Some(Box::new(|_c: &sso_filter::http::Callout| CalloutResponse {
        status: Some(200),
        headers: vec![],
        body: idp_metadata().into_bytes(),
    }));
    let relay = pending_login(&mut d, "/acs-first");
    let done = post_acs(&mut d, &fixture("signed_assertion.xml"), &relay);
    assert_eq!(done.status(), 303, "{}", done.body());
    assert_eq!(d.callouts.len(), 1);
    assert_eq!(
        d.get("/acs-first").set("x-sso-login").as_deref(),
        Some("jdoe@example.org")
    );
}

pub(crate) fn session_index_of(xml: &str) -> String {
    let at = xml.find("SessionIndex=\"").unwrap() + 14;
    xml[at..].split('"').next().unwrap().to_owned()
}

/// An IdP `LogoutRequest` by the HTTP-Redirect binding, signed with the IdP's key (or not).
fn idp_logout_query(session_index: &str, sign: bool) -> String {
    use rsa::pkcs8::DecodePrivateKey;
    use sha2::Digest;
    let m = meta();
    let xml = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_idp_lr_1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z" Destination="https://app.example.com/sso/saml/saml/slo"><saml:Issuer>{}</saml:Issuer><saml:NameID>jdoe@example.org</saml:NameID><samlp:SessionIndex>{session_index}</samlp:SessionIndex></samlp:LogoutRequest>"#,
        m["idp_entity_id"].as_str().unwrap()
    );
    let deflated = miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6);
    let mut q = format!(
        "SAMLRequest={}&RelayState=r1&SigAlg={}",
        encode(&B64.encode(deflated)),
        encode("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
    );
    if sign {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(&fixture("idp.key")).unwrap();
        let sig = key
            .sign(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &sha2::Sha256::digest(q.as_bytes()),
            )
            .unwrap();
        q.push_str(&format!("&Signature={}", encode(&B64.encode(sig))));
    }
    q
}

#[test]
fn single_logout_both_ways() {
    let slo = json!({"idp_slo_url": "https://idp.example.org/slo"});
    // SP-initiated: /sso/logout sends a LogoutRequest naming the subject and session.
    let mut d = driver(slo.clone());
    let relay = pending_login(&mut d, "/a");
    assert_eq!(
        post_acs(&mut d, &fixture("signed_both.xml"), &relay).status(),
        303
    );
    let out = d.get("/sso/logout");
    let loc = url::Url::parse(&out.header("location").unwrap()).unwrap();
    assert_eq!(loc.path(), "/slo");
    let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    let xml = String::from_utf8(
        miniz_oxide::inflate::decompress_to_vec(&B64.decode(&q["SAMLRequest"]).unwrap()).unwrap(),
    )
    .unwrap();
    assert!(xml.contains("<saml:NameID Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress\">jdoe@example.org</saml:NameID>"), "{xml}");
    let index = session_index_of(&fixture("signed_both.xml"));
    assert!(xml.contains(&format!("<samlp:SessionIndex>{index}</samlp:SessionIndex>")));
    assert!(!d.jar.contains_key("sso_session"));
    // The IdP's LogoutResponse comes back: home.
    let back = d.get("/sso/saml/saml/slo?SAMLResponse=x");
    assert_eq!(
        back.header("location").as_deref(),
        Some("https://app.example.com/")
    );

    // IdP-initiated: a signed LogoutRequest for the session index ends that session, even in
    // another browser and served from the memo.
    let mut d = driver(slo.clone());
    let relay = pending_login(&mut d, "/b");
    assert_eq!(
        post_acs(&mut d, &fixture("signed_assertion.xml"), &relay).status(),
        303
    );
    assert_eq!(
        d.get("/b").set("x-sso-login").as_deref(),
        Some("jdoe@example.org")
    );
    let jar = d.jar.clone();
    let index = session_index_of(&fixture("signed_assertion.xml"));
    // Unsigned or for another session: refused or harmless.
    d.jar.clear();
    assert_eq!(
        d.get(&format!(
            "/sso/saml/saml/slo?{}",
            idp_logout_query(&index, false)
        ))
        .status(),
        401
    );
    let tampered = idp_logout_query(&index, true).replace("RelayState=r1", "RelayState=r2");
    assert_eq!(
        d.get(&format!("/sso/saml/saml/slo?{tampered}")).status(),
        401
    );
    d.jar = jar.clone();
    assert_eq!(
        d.get("/b").set("x-sso-login").as_deref(),
        Some("jdoe@example.org")
    );
    d.jar.clear();
    let done = d.get(&format!(
        "/sso/saml/saml/slo?{}",
        idp_logout_query(&index, true)
    ));
    assert_eq!(done.status(), 302, "{}", done.body());
    let loc = url::Url::parse(&done.header("location").unwrap()).unwrap();
    let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["RelayState"], "r1");
    let answer = String::from_utf8(
        miniz_oxide::inflate::decompress_to_vec(&B64.decode(&q["SAMLResponse"]).unwrap()).unwrap(),
    )
    .unwrap();
    assert!(answer.contains(r#"InResponseTo="_idp_lr_1""#) && answer.contains("status:Success"));
    d.jar = jar;
    assert_eq!(d.get("/b").status(), 302, "the session ended");
}

#[test]
fn logout_uses_the_metadata_slo_endpoint() {
    use sso_filter::CalloutResponse;
    let mut d = Driver::new(&metadata_url_config());
    d.now = meta()["now"].as_u64().unwrap() + 5;
    d.idp = Some(Box::new(|_c: &sso_filter::http::Callout| {
        CalloutResponse {
        status: Some(200),
        headers: vec![],
        body: idp_metadata()
            .replace("<md:SingleSignOnService", r#"<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.org/slo"/><md:SingleSignOnService"#)
            .into_bytes(),
    }
    }));
    let relay = pending_login(&mut d, "/m");
    assert_eq!(
        post_acs(&mut d, &fixture("signed_both.xml"), &relay).status(),
        303
    );
    let out = d.get("/sso/logout");
    assert!(
        out.header("location")
            .unwrap()
            .starts_with("https://idp.example.org/slo?SAMLRequest="),
        "{:?}",
        out.header("location")
    );
}

#[test]
fn a_refused_acs_post_from_a_browser_is_a_page_that_keeps_the_return_url() {
    // Issue 10 item 8: the IdP's auto-submitted form is a browser navigation.
    let mut d = driver(json!({}));
    let relay = pending_login(&mut d, "/reports?id=7");
    let mut tampered = fixture("signed_assertion.xml");
    tampered = tampered.replacen("jdoe@example.org", "root@example.org", 1);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("SAMLResponse", B64.encode(&tampered).as_str()),
            ("RelayState", relay.as_str()),
        ])
        .finish();
    let cookie = d
        .jar
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let done = d.send(
        "POST",
        "/sso/saml/saml/acs",
        vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("sec-fetch-mode".into(), "navigate".into()),
            ("accept".into(), "*/*".into()),
            ("cookie".into(), cookie),
        ],
        Some(body.into_bytes()),
    );
    assert_eq!(done.status(), 401, "{}", done.body());
    assert!(
        done.header("content-type")
            .unwrap()
            .starts_with("text/html"),
        "{:?}",
        done.header("content-type")
    );
    assert!(done.body().contains("Sign in again"));
    assert!(
        done.body()
            .contains("/sso/login?rd=%2Freports%3Fid%3D7&amp;activeAuth=saml"),
        "{}",
        done.body()
    );
    assert!(!d.jar.contains_key("sso_session"));
}

/// Plain HTTP says what cannot work (issue 17 item 12): `validate` warns about the SAML POST
/// binding with `session.secure: false`, and an ACS post that arrives without any flow cookie
/// (the browser kept the SameSite=Lax cookie back from the cross-site post) gets a page saying
/// so, not only "expired".
#[test]
fn plain_http_says_why_the_acs_post_lost_its_flow() {
    let mut cfg = config(json!({}));
    cfg["base_url"] = json!("http://app.example.com");
    cfg["session"]["secure"] = json!(false);
    let warnings = sso_filter::Config::from_json(cfg.to_string().as_bytes())
        .unwrap()
        .warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("methods.saml:") && w.contains("session.secure false")),
        "{warnings:?}"
    );
    let mut d = Driver::new(&cfg);
    d.now = meta()["now"].as_u64().unwrap() + 5;
    let mut page = d.send(
        "POST",
        "/sso/saml/saml/acs",
        vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "text/html".into()),
        ],
        Some(
            format!(
                "SAMLResponse={}&RelayState=lost",
                crate::common::encode(&B64.encode(fixture("signed_both.xml")))
            )
            .into_bytes(),
        ),
    );
    assert_eq!(page.status(), 401);
    assert!(page.body().contains("plain HTTP"), "{}", page.body());
    // With a flow cookie that does not match, it is the usual expired flow.
    let relay = pending_login(&mut d, "/");
    page = post_acs(&mut d, &fixture("signed_both.xml"), &format!("{relay}x"));
    assert_eq!(page.status(), 401);
    assert!(!page.body().contains("plain HTTP"));
    assert!(!d.jar.contains_key("sso_session"));
}

/// The seeds' "reload user" with SAML (issue 17 item 2): `reloadUser=true` on a navigation
/// sends an `IsPassive` AuthnRequest (never `ForceAuthn` with it); when the IdP answers with a
/// refusal (NoPassive: no session there), the local session ends too.
#[test]
fn reload_user_sends_a_passive_request_and_a_refusal_ends_the_session() {
    let mut d = driver(json!({"force_authn": true}));
    let relay = pending_login(&mut d, "/reports");
    assert_eq!(
        post_acs(&mut d, &fixture("signed_both.xml"), &relay).status(),
        303
    );
    assert!(d.jar.contains_key("sso_session"));
    d.now += 11;
    let reload = d.get("/reports?reloadUser=true");
    assert_eq!(reload.status(), 302, "{}", reload.body());
    let loc = url::Url::parse(&reload.header("location").unwrap()).unwrap();
    let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    let inflated =
        miniz_oxide::inflate::decompress_to_vec(&B64.decode(&q["SAMLRequest"]).unwrap()).unwrap();
    let xml = String::from_utf8(inflated).unwrap();
    assert!(
        xml.contains(r#"IsPassive="true""#) && !xml.contains("ForceAuthn"),
        "{xml}"
    );
    // The IdP has no session: a NoPassive status comes back for the reload's flow.
    let no_passive = r#"<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_np" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Responder"><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:NoPassive"/></samlp:StatusCode></samlp:Status></samlp:Response>"#;
    let done = post_acs(&mut d, no_passive, &q["RelayState"]);
    assert_eq!(done.status(), 401, "{}", done.body());
    assert!(!d.jar.contains_key("sso_session"));
    assert!(!d.jar.keys().any(|k| k.contains("_flow_")));
}
