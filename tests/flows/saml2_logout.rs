//! SAML single logout by the HTTP-POST binding (issue 17 item 7), both ways, with the IdP's
//! messages made by pysaml2 and signed by xmlsec1 with the fixtures' IdP key
//! (tests/fixtures/saml2/logout_*.xml, `generate.py --logout`), and their bad twins: unsigned,
//! signed by another key, answering another request, replayed. Every refusal is held to the
//! checklist's oracle (security.md §0.2): nothing forwarded, no session cookie set, the session
//! gone (or untouched, when it is the IdP's request that was refused).

use std::collections::HashMap;

use base64::Engine;
use serde_json::{json, Value};
use sha2::Digest;
use sso_filter::xmldsig::{is, DS_NS};

use crate::common::{Done, Driver};
use crate::saml2::{
    config, fixture, idp_metadata, meta, pending_flow, pending_login, post_acs, session_index_of,
    B64,
};

const POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";

/// IdP metadata whose single logout speaks HTTP-POST only.
fn post_only_metadata() -> String {
    idp_metadata().replace(
        "<md:SingleSignOnService",
        &format!(
            r#"<md:SingleLogoutService Binding="{POST}" Location="https://idp.example.org/slo-post"/><md:SingleSignOnService"#
        ),
    )
}

/// The SP signs its logout messages with its key.
fn sp_keys() -> Value {
    json!({"sp_private_key": fixture("sp.key"), "sp_certificate": fixture("sp.crt")})
}

fn driver_with(extra: Value) -> Driver {
    let mut cfg = config(sp_keys());
    for (k, v) in extra.as_object().unwrap() {
        cfg["methods"]["saml"][k] = v.clone();
    }
    let mut d = Driver::new(&cfg);
    d.now = meta()["now"].as_u64().unwrap() + 5;
    d
}

/// A logged-in browser (the session of `signed_assertion.xml`, whose SessionIndex the IdP's
/// logout request names).
fn logged_in(d: &mut Driver) {
    let relay = pending_login(d, "/b");
    let done = post_acs(d, &fixture("signed_assertion.xml"), &relay);
    assert_eq!(done.status(), 303, "{}", done.body());
    assert_eq!(
        d.get("/b").set("x-sso-login").as_deref(),
        Some("jdoe@example.org")
    );
}

/// A logout flow as `{prefix}/logout` would have made it for the fixtures' LogoutRequest ID
/// (the engine's own IDs are random); returns its RelayState.
fn pending_logout(d: &mut Driver, rd: &str, variant: &str) -> String {
    let nonce = meta()["logout_request_id"].as_str().unwrap().to_owned();
    pending_flow(d, rd, &nonce, Some(variant))
}

fn post_slo(d: &mut Driver, field: &str, xml: &str, relay: &str) -> Done {
    d.post_form(
        "/sso/saml/saml/slo",
        &[(field, &B64.encode(xml)), ("RelayState", relay)],
    )
}

/// The auto-submitting page's form: its action and its fields.
fn form_of(done: &Done) -> (String, HashMap<String, String>) {
    let body = done.body();
    let attr = |tag: &str, name: &str| -> Option<String> {
        let at = tag.find(&format!("{name}=\""))? + name.len() + 2;
        Some(tag[at..].split('"').next()?.replace("&amp;", "&"))
    };
    let action = attr(body.split("<form").nth(1).unwrap(), "action").unwrap();
    let fields = body
        .split("<input")
        .skip(1)
        .map(|tag| (attr(tag, "name").unwrap(), attr(tag, "value").unwrap()))
        .collect();
    (action, fields)
}

/// The page runs its one inline script only because the CSP names its hash: no
/// `'unsafe-inline'`, no event-handler attribute (which no hash could allow).
pub(crate) fn csp_allows_only_its_script(done: &Done) {
    let body = done.body();
    let csp = done.header("content-security-policy").unwrap();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!body.contains("onload="), "{body}");
    let scripts: Vec<&str> = body
        .split("<script>")
        .skip(1)
        .map(|s| s.split("</script>").next().unwrap())
        .collect();
    assert_eq!(scripts.len(), 1, "{body}");
    let hash = B64.encode(sha2::Sha256::digest(scripts[0].as_bytes()));
    assert!(
        csp.contains(&format!("script-src 'sha256-{hash}'")),
        "{csp}"
    );
}

/// A message the SP signed inside the XML: the signature verifies with the SP certificate's
/// key, over the root.
fn signed_by_the_sp(xml: &str) {
    use rsa::pkcs8::DecodePrivateKey;
    let public = rsa::RsaPrivateKey::from_pkcs8_pem(&fixture("sp.key"))
        .unwrap()
        .to_public_key();
    let doc = roxmltree::Document::parse(xml).unwrap();
    let root = doc.root_element();
    let sig = root
        .children()
        .find(|n| is(*n, DS_NS, "Signature"))
        .unwrap_or_else(|| panic!("unsigned: {xml}"));
    sso_filter::xmldsig::verify_enveloped(root, sig, &[public], false).unwrap();
}

/// security.md §0.2 for a refused logout message: a local 401 (nothing forwarded), no
/// session cookie set, and the protected path finds no session.
fn nobody_let_in(d: &mut Driver, done: &Done, what: &str) {
    assert_eq!(done.status(), 401, "{what}: {}", done.body());
    assert!(
        done.set_cookies()
            .iter()
            .all(|c| !c.starts_with("sso_session=") || c.contains("Max-Age=0")),
        "{what}: {:?}",
        done.set_cookies()
    );
    assert!(!d.jar.contains_key("sso_session"), "{what}");
    assert_eq!(d.api("/reports", &[]).status(), 401, "{what}");
}

/// SP-initiated, IdP metadata with a POST single logout only: `{prefix}/logout` answers with a
/// page that posts the signed LogoutRequest, keeps a cross-site logout flow, and the IdP's
/// signed LogoutResponse for that request ends at the return URL, once.
#[test]
fn sp_initiated_logout_by_post_is_signed_and_its_answer_checked() {
    let mut d = driver_with(json!({"idp_metadata_xml": post_only_metadata()}));
    logged_in(&mut d);
    let out = d.get("/sso/logout?rd=%2Fbye");
    assert_eq!(out.status(), 200, "{}", out.body());
    csp_allows_only_its_script(&out);
    assert!(
        !d.jar.contains_key("sso_session"),
        "the session ends at once"
    );
    // The logout's flow is sealed in RelayState, bound by the cross-site binding cookie.
    let binding = out
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("sso_session_bind="))
        .unwrap();
    assert!(binding.contains("SameSite=None") && binding.contains("Secure"));
    let (action, fields) = form_of(&out);
    assert_eq!(action, "https://idp.example.org/slo-post");
    assert!(fields["RelayState"].len() >= 200, "{fields:?}");
    let xml = String::from_utf8(B64.decode(&fields["SAMLRequest"]).unwrap()).unwrap();
    let index = session_index_of(&fixture("signed_assertion.xml"));
    assert!(
        xml.contains(r#"Destination="https://idp.example.org/slo-post""#)
            && xml.contains(&format!("<samlp:SessionIndex>{index}</samlp:SessionIndex>"))
            && xml.contains(">jdoe@example.org</saml:NameID>"),
        "{xml}"
    );
    signed_by_the_sp(&xml);

    // The IdP's answer to the fixtures' request ID, on a logout flow for it (in place of the
    // flow of the random ID above).
    d.jar.retain(|k, _| !k.contains("_flow_"));
    let relay = pending_logout(&mut d, "/bye", "logout");
    let jar = d.jar.clone();
    let done = post_slo(
        &mut d,
        "SAMLResponse",
        &fixture("logout_response_post.xml"),
        &relay,
    );
    assert_eq!(done.status(), 303, "{}", done.body());
    assert_eq!(done.header("location").as_deref(), Some("/bye"));
    assert!(!d.jar.keys().any(|k| k.contains("_flow_")), "flow used up");
    // Replay: as it is, and with the jar of before the answer put back (the flow is spent).
    let again = post_slo(
        &mut d,
        "SAMLResponse",
        &fixture("logout_response_post.xml"),
        &relay,
    );
    nobody_let_in(&mut d, &again, "replay");
    d.jar = jar;
    let again = post_slo(
        &mut d,
        "SAMLResponse",
        &fixture("logout_response_post.xml"),
        &relay,
    );
    nobody_let_in(&mut d, &again, "replay with the jar of before");
}

#[test]
fn bad_logout_responses_are_refused() {
    for name in [
        "logout_response_post_unsigned.xml",
        "logout_response_post_attacker.xml",
        "logout_response_post_other_request.xml",
    ] {
        let mut d = driver_with(json!({"idp_metadata_xml": post_only_metadata()}));
        logged_in(&mut d);
        let _ = d.get("/sso/logout?rd=%2Fbye");
        d.jar.retain(|k, _| !k.contains("_flow_"));
        let relay = pending_logout(&mut d, "/bye", "logout");
        let done = post_slo(&mut d, "SAMLResponse", &fixture(name), &relay);
        nobody_let_in(&mut d, &done, name);
        assert!(!d.jar.keys().any(|k| k.contains("_flow_")), "{name}");
        assert_eq!(
            d.count("sso_login_failure.saml.rejected"),
            1,
            "{name}: {:?}",
            d.counters
        );
    }
    // The genuine answer on a login flow (not a logout's), on no flow, on a tampered one.
    let mut d = driver_with(json!({"idp_metadata_xml": post_only_metadata()}));
    let relay = pending_login(&mut d, "/");
    let done = post_slo(
        &mut d,
        "SAMLResponse",
        &fixture("logout_response_post.xml"),
        &relay,
    );
    nobody_let_in(&mut d, &done, "login flow");
    let done = post_slo(
        &mut d,
        "SAMLResponse",
        &fixture("logout_response_post.xml"),
        "x",
    );
    nobody_let_in(&mut d, &done, "no flow");
    let relay = pending_logout(&mut d, "/", "logout");
    let tampered =
        fixture("logout_response_post.xml").replace("status:Success", "status:Requester");
    let done = post_slo(&mut d, "SAMLResponse", &tampered, &relay);
    nobody_let_in(&mut d, &done, "status changed after signing");
}

/// IdP-initiated by POST, configured (`single_logout_binding: post`, `idp_slo_url`): the
/// IdP's signed LogoutRequest ends the session it names on every worker, and the answer is a
/// signed LogoutResponse posted back; unsigned, foreign-signed, tampered and replayed requests
/// are refused and leave the session alone.
#[test]
fn idp_initiated_logout_by_post_ends_the_session_everywhere() {
    let mut d = driver_with(json!({
        "single_logout_binding": "post", "idp_slo_url": "https://idp.example.org/slo-post"}));
    logged_in(&mut d);
    let jar = d.jar.clone();
    let m = meta();
    let tampered = fixture("logout_request_post.xml").replace(
        m["session_index"].as_str().unwrap(),
        "id-another-session-index",
    );
    for (what, xml) in [
        ("unsigned", fixture("logout_request_post_unsigned.xml")),
        ("attacker", fixture("logout_request_post_attacker.xml")),
        ("tampered", tampered),
    ] {
        d.jar.clear();
        let done = post_slo(&mut d, "SAMLRequest", &xml, "r1");
        nobody_let_in(&mut d, &done, what);
        d.jar = jar.clone();
        assert_eq!(
            d.get("/b").set("x-sso-login").as_deref(),
            Some("jdoe@example.org"),
            "{what}: the session lives on"
        );
    }
    // Neither message, both, or a GET without one: 400.
    assert_eq!(post_slo(&mut d, "Other", "x", "r1").status(), 400);
    assert_eq!(d.get("/sso/saml/saml/slo").status(), 400);

    d.jar.clear();
    let done = post_slo(
        &mut d,
        "SAMLRequest",
        &fixture("logout_request_post.xml"),
        "r1",
    );
    assert_eq!(done.status(), 200, "{}", done.body());
    csp_allows_only_its_script(&done);
    assert_eq!(d.count("sso_slo.saml"), 1);
    let (action, fields) = form_of(&done);
    assert_eq!(action, "https://idp.example.org/slo-post");
    assert_eq!(fields["RelayState"], "r1");
    let answer = String::from_utf8(B64.decode(&fields["SAMLResponse"]).unwrap()).unwrap();
    assert!(
        answer.contains(&format!(
            r#"InResponseTo="{}""#,
            m["idp_logout_request_id"].as_str().unwrap()
        )) && answer.contains("status:Success")
            && answer.contains(r#"Destination="https://idp.example.org/slo-post""#),
        "{answer}"
    );
    signed_by_the_sp(&answer);
    // The session it named is refused from its next request on (the memo too).
    d.jar = jar.clone();
    let after = d.api("/b", &[]);
    assert_eq!(after.status(), 401);
    // The same request again is refused, not answered again.
    d.jar.clear();
    let again = post_slo(
        &mut d,
        "SAMLRequest",
        &fixture("logout_request_post.xml"),
        "r1",
    );
    nobody_let_in(&mut d, &again, "replayed request");
}

/// The SP metadata offers single logout by both bindings at one endpoint, the configured one
/// first; the IdP's binding is chosen by `single_logout_binding` when it has both.
#[test]
fn both_bindings_are_published_and_the_preferred_one_is_used() {
    let both = post_only_metadata().replace(
        "<md:SingleSignOnService",
        &format!(
            r#"<md:SingleLogoutService Binding="{REDIRECT}" Location="https://idp.example.org/slo-redirect"/><md:SingleSignOnService"#
        ),
    );
    for (binding, first, second) in [("redirect", REDIRECT, POST), ("post", POST, REDIRECT)] {
        let mut d =
            driver_with(json!({"idp_metadata_xml": both, "single_logout_binding": binding}));
        let md = d.get("/sso/saml/saml/metadata").body();
        let slo = "Location=\"https://app.example.com/sso/saml/saml/slo\"";
        let a = md.find(&format!(r#"Binding="{first}" {slo}"#)).unwrap();
        let b = md.find(&format!(r#"Binding="{second}" {slo}"#)).unwrap();
        assert!(a < b, "{md}");
        logged_in(&mut d);
        let out = d.get("/sso/logout");
        match binding {
            "redirect" => assert!(out
                .header("location")
                .unwrap()
                .starts_with("https://idp.example.org/slo-redirect?SAMLRequest=")),
            _ => assert_eq!(form_of(&out).0, "https://idp.example.org/slo-post"),
        }
    }
}
