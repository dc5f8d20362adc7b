//! The SAML attack classes that ruby-saml, python3-saml, crewjam/saml and SAMLRaider ship,
//! regenerated here against our own test IdP (tests/fixtures/saml2: pysaml2 + xmlsec1 signed
//! Responses, and the IdP's key for the variants that need a fresh, valid signature). The facts
//! (which transformation, which CVE) come from those projects; the code is ours.
//!
//! Every variant goes through `Saml2::verify_xml` and through the engine's ACS with a pending
//! login (a flow cookie for the fixtures' request ID): each attack must be refused at both; the
//! positive controls (the unedited fixtures, and our own re-signing of the unsigned fixture)
//! must pass at both, which shows the attacks fail for the reason they test.

use base64::Engine;
use rsa::RsaPrivateKey;
use serde_json::json;
use sha2::{Digest, Sha256};
use sso_filter::fuzzing::{self, fixtures, saml_verify, Harness};

use crate::Tally;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;
const DS: &str = "http://www.w3.org/2000/09/xmldsig#";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/tests/fixtures/saml2/{name}.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn idp_key() -> RsaPrivateKey {
    sso_filter::jose::keys::rsa_private_key(fixtures::SAML_IDP_KEY).unwrap()
}

fn attacker_key() -> RsaPrivateKey {
    sso_filter::jose::keys::rsa_private_key(
        &std::fs::read_to_string(format!(
            "{}/tests/fixtures/jwt/keys/rsa-attacker.private.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap()
}

/// Where a fresh signature goes and how it is made.
#[derive(Clone, Copy)]
struct SignOpts<'a> {
    /// `Reference URI` (normally `#` + the element's ID).
    uri: Option<&'a str>,
    sig_alg: &'a str,
    digest_alg: &'a str,
    transforms: &'a str,
}

const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
const SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
const STD_TRANSFORMS: &str = r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>"#;

fn std_opts<'a>() -> SignOpts<'a> {
    SignOpts {
        uri: None,
        sig_alg: RSA_SHA256,
        digest_alg: SHA256,
        transforms: STD_TRANSFORMS,
    }
}

/// The byte range of the element with `ID="id"` (first match).
fn element_range(xml: &str, id: &str) -> std::ops::Range<usize> {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let node = doc
        .descendants()
        .find(|n| n.is_element() && n.attribute("ID") == Some(id))
        .unwrap_or_else(|| panic!("no element {id}"));
    node.range()
}

/// Signs the element with `ID="id"` as an IdP would (enveloped, exclusive c14n, RSA-SHA256),
/// placing the Signature after its Issuer. Our own c14n computes the digest; the positive
/// control shows the result is what the verifier expects.
fn sign(xml: &str, id: &str, key: &RsaPrivateKey, o: SignOpts<'_>) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let node = doc
        .descendants()
        .find(|n| n.is_element() && n.attribute("ID") == Some(id))
        .unwrap();
    let c14n = sso_filter::xmldsig::c14n::exclusive(node, None, &[]).unwrap();
    let digest = B64.encode(Sha256::digest(&c14n));
    let uri = o.uri.map_or(format!("#{id}"), str::to_owned);
    let signature = format!(
        r#"<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{}"/><ds:Reference URI="{uri}"><ds:Transforms>{}</ds:Transforms><ds:DigestMethod Algorithm="{}"/><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo><ds:SignatureValue>SIGVALUE</ds:SignatureValue></ds:Signature>"#,
        o.sig_alg, o.transforms, o.digest_alg
    );
    let r = node.range();
    // The first `Issuer>` inside the element ends its Issuer child's closing tag.
    // Without an Issuer (the no_issuer case), right after the element's start tag.
    let issuer_end = xml[r.clone()]
        .find("Issuer>")
        .map(|i| r.start + i + 7)
        .unwrap_or_else(|| r.start + xml[r.clone()].find('>').unwrap() + 1);
    let mut out = xml.to_owned();
    out.insert_str(issuer_end, &signature);
    // Sign the canonical SignedInfo of the placed Signature.
    let doc = roxmltree::Document::parse(&out).unwrap();
    let signed_info = doc
        .descendants()
        .filter(|n| n.tag_name().namespace() == Some(DS) && n.tag_name().name() == "SignedInfo")
        .find(|n| {
            n.descendants()
                .any(|d| d.attribute("URI") == Some(uri.as_str()))
                && n.range().start > issuer_end - 1
        })
        .unwrap();
    let si = sso_filter::xmldsig::c14n::exclusive(signed_info, None, &[]).unwrap();
    let sig = key
        .sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&si))
        .unwrap();
    out.replacen("SIGVALUE", &B64.encode(sig), 1)
}

fn assertion_id(xml: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.descendants()
        .find(|n| n.tag_name().name() == "Assertion")
        .and_then(|n| n.attribute("ID"))
        .unwrap()
        .to_owned()
}

fn response_id(xml: &str) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    doc.root_element().attribute("ID").unwrap().to_owned()
}

/// The `<ns1:Assertion …>…</ns1:Assertion>` text.
fn assertion_text(xml: &str) -> String {
    let id = assertion_id(xml);
    xml[element_range(xml, &id)].to_owned()
}

fn signature_text(xml: &str, nth: usize) -> String {
    let doc = roxmltree::Document::parse(xml).unwrap();
    let s = doc
        .descendants()
        .filter(|n| n.tag_name().namespace() == Some(DS) && n.tag_name().name() == "Signature")
        .nth(nth)
        .unwrap();
    xml[s.range()].to_owned()
}

/// A forged copy of an assertion: another user and another ID.
fn forge(assertion: &str, id: &str, new_id: &str) -> String {
    let mut f = assertion
        .replace("jdoe@example.org", "admin@example.org")
        .replace(&format!("ID=\"{id}\""), &format!("ID=\"{new_id}\""));
    // Drop the forged copy's signature: the attacker cannot make one.
    if let (Some(a), Some(b)) = (f.find("<ns2:Signature"), f.find("</ns2:Signature>")) {
        f.replace_range(a..b + "</ns2:Signature>".len(), "");
    }
    f
}

/// Every attack variant: (class, source project, XML).
fn variants() -> Vec<(String, &'static str, String)> {
    let mut v: Vec<(String, &'static str, String)> = Vec::new();
    let key = idp_key();
    let signed_response = fixture("signed_response");
    let signed_assertion = fixture("signed_assertion");
    let signed_both = fixture("signed_both");
    let unsigned = fixture("unsigned");

    // --- XML Signature Wrapping: SAMLRaider XSW1-XSW8 and crewjam's permutations, over both
    // kinds of signed fixture (the fixtures' own attack_xsw*.xml are run too, below).
    for (src, name) in [
        (&signed_response, "signed_response"),
        (&signed_assertion, "signed_assertion"),
    ] {
        let a = assertion_text(src);
        let aid = assertion_id(src);
        let rid = response_id(src);
        let ar = element_range(src, &aid);
        let forged_same_id = forge(&a, &aid, &aid);
        let forged_new_id = forge(&a, &aid, "_forged");
        // Forged assertion before / after the original, same or new ID.
        for (label, forged) in [("same_id", &forged_same_id), ("new_id", &forged_new_id)] {
            let mut before = src.clone();
            before.insert_str(ar.start, forged);
            v.push((
                format!("xsw_{name}_forged_before_{label}"),
                "SAMLRaider XSW3/XSW4, crewjam permutations",
                before,
            ));
            let mut after = src.clone();
            after.insert_str(ar.end, forged);
            v.push((
                format!("xsw_{name}_forged_after_{label}"),
                "SAMLRaider XSW4, crewjam permutations",
                after,
            ));
            // The original moved inside the forged assertion (XSW4/XSW5 style wrapping).
            let mut wrapped = src.clone();
            let mut f = forged.clone();
            let close = f.rfind("</ns1:Assertion>").unwrap();
            f.insert_str(close, &a);
            wrapped.replace_range(ar.clone(), &f);
            v.push((
                format!("xsw_{name}_original_inside_forged_{label}"),
                "SAMLRaider XSW4/XSW5",
                wrapped,
            ));
            // The original hidden in an Extensions element, the forged one in its place (XSW1/2,
            // XSW7).
            let mut ext = src.clone();
            ext.replace_range(
                ar.clone(),
                &format!("<ns0:Extensions>{a}</ns0:Extensions>{forged}"),
            );
            v.push((
                format!("xsw_{name}_original_in_extensions_{label}"),
                "SAMLRaider XSW7, ruby-saml signature_wrapping_attack",
                ext,
            ));
            // The original placed inside the Signature (ds:Object), forged in its place (XSW8).
            let mut obj = src.clone();
            obj.replace_range(ar.clone(), forged);
            if let Some(sig_end) = obj.find("</ns2:Signature>") {
                obj.insert_str(sig_end, &format!("<ns2:Object>{a}</ns2:Object>"));
            } else {
                let s = obj.find("</ns1:Issuer>").unwrap() + "</ns1:Issuer>".len();
                obj.insert_str(
                    s,
                    &format!("<ns2:Signature><ns2:Object>{a}</ns2:Object></ns2:Signature>"),
                );
            }
            v.push((
                format!("xsw_{name}_original_in_signature_object_{label}"),
                "SAMLRaider XSW8",
                obj,
            ));
        }
        // XSW1/XSW2 on the Response: a forged Response wrapping the original signed one.
        let forged_response = src
            .replacen(&format!("ID=\"{rid}\""), "ID=\"_evilresp\"", 1)
            .replace("jdoe@example.org", "admin@example.org");
        let mut xsw1 = forged_response.clone();
        let first_gt = xsw1.find("?>").map_or(0, |i| i + 2);
        let root_open_end = xsw1[first_gt..].find('>').unwrap() + first_gt + 1;
        let original_root = src[src.find("<ns0:Response").unwrap()..].to_owned();
        xsw1.insert_str(root_open_end, &original_root);
        v.push((
            format!("xsw1_{name}_response_wrapping"),
            "SAMLRaider XSW1/XSW2",
            xsw1,
        ));
        // Duplicate the whole signed assertion (same ID twice).
        let mut dup = src.clone();
        dup.insert_str(ar.end, &a);
        v.push((
            format!("duplicate_signed_assertion_{name}"),
            "ruby-saml response_with_doubled_signed_assertion",
            dup,
        ));
    }

    // --- Signature stripping and moving.
    let strip = |src: &str| -> String {
        let sig = signature_text(src, 0);
        src.replacen(&sig, "", 1)
    };
    v.push((
        "signature_stripped_response".into(),
        "ruby-saml no_signature, SAMLRaider remove signatures",
        strip(&signed_response),
    ));
    v.push((
        "signature_stripped_assertion".into(),
        "ruby-saml no_signature",
        strip(&signed_assertion),
    ));
    v.push((
        "signatures_stripped_both".into(),
        "SAMLRaider remove signatures",
        strip(&strip(&signed_both)),
    ));
    let empty_value = {
        let s = signed_assertion.clone();
        let a = s.find("<ns2:SignatureValue>").unwrap() + "<ns2:SignatureValue>".len();
        let b = s.find("</ns2:SignatureValue>").unwrap();
        let mut s2 = s.clone();
        s2.replace_range(a..b, "");
        s2
    };
    v.push((
        "signature_value_empty".into(),
        "CVE-2020-28042 class (null signature)",
        empty_value,
    ));
    {
        // The assertion's signature moved up into the Response (signs an ID that is not its
        // parent's).
        let sig = signature_text(&signed_assertion, 0);
        let mut s = signed_assertion.replacen(&sig, "", 1);
        let at = s.find("</ns1:Issuer>").unwrap() + "</ns1:Issuer>".len();
        s.insert_str(at, &sig);
        v.push((
            "signature_moved_to_response".into(),
            "ruby-saml invalid_signature_position",
            s,
        ));
        // Moved to the end of the assertion.
        let mut s = signed_assertion.replacen(&sig, "", 1);
        let at = s.find("</ns1:Assertion>").unwrap();
        s.insert_str(at, &sig);
        v.push((
            "signature_moved_to_assertion_end".into(),
            "SAMLRaider signature moving",
            s,
        ));
        // Into the Subject.
        let mut s = signed_assertion.replacen(&sig, "", 1);
        let at = s.find("</ns1:Subject>").unwrap();
        s.insert_str(at, &sig);
        v.push((
            "signature_moved_into_subject".into(),
            "ruby-saml invalid_signature_position",
            s,
        ));
        // Two copies of the same signature.
        let mut s = signed_assertion.clone();
        let at = s.find("</ns1:Assertion>").unwrap();
        s.insert_str(at, &sig);
        v.push((
            "signature_duplicated".into(),
            "ruby-saml multiple_signed",
            s,
        ));
    }

    // --- Multiple assertions (CVE-2022-41912 crewjam; Lasso CVE-2021-28091; ruby-saml
    // multiple_assertions): an unsigned second assertion after or before the signed one, and two
    // assertions each validly signed by the real IdP key.
    {
        let a = assertion_text(&signed_assertion);
        let aid = assertion_id(&signed_assertion);
        let r = element_range(&signed_assertion, &aid);
        let second = forge(&a, &aid, "_second");
        let mut after = signed_assertion.clone();
        after.insert_str(r.end, &second);
        v.push((
            "multiple_assertions_unsigned_after".into(),
            "crewjam CVE-2022-41912, ruby-saml multiple_assertions",
            after,
        ));
        let mut before = signed_assertion.clone();
        before.insert_str(r.start, &second);
        v.push((
            "multiple_assertions_unsigned_before".into(),
            "Lasso CVE-2021-28091 / SAMLRaider XSW10",
            before,
        ));
        // Both signed by the IdP: sign the second one for real.
        let mut both = signed_assertion.clone();
        both.insert_str(r.end, &second);
        let both = sign(&both, "_second", &key, std_opts());
        v.push((
            "multiple_assertions_both_signed".into(),
            "ruby-saml multiple_signed / response_with_doubled_signed_assertion",
            both,
        ));
        // An EncryptedAssertion beside a signed Assertion.
        let enc = fixture("encrypted_unsigned");
        if let (Some(s), Some(e)) = (
            enc.find("<ns1:EncryptedAssertion"),
            enc.find("</ns1:EncryptedAssertion>"),
        ) {
            let ea = &enc[s..e + "</ns1:EncryptedAssertion>".len()];
            let mut mixed = signed_assertion.clone();
            mixed.insert_str(r.end, ea);
            v.push((
                "assertion_and_encrypted_assertion".into(),
                "ruby-saml encrypted_new_attack",
                mixed,
            ));
        }
    }

    // --- Comments, processing instructions, CDATA, entities in the identity (CVE-2017-11427..
    // 11430, CVE-2018-0489, CVE-2018-7340; ruby-saml response_node_text_attack{,2,3}). A comment
    // or CDATA split leaves the exclusive c14n (without comments) unchanged, so the IdP's
    // signature still verifies: the NameID must be refused as mixed content or read whole.
    for (label, replacement) in [
        ("comment_in_nameid", "jdoe@example.org<!---->.evil.example"),
        ("comment_split_nameid", "jdoe<!-- x -->@example.org"),
        ("cdata_split_nameid", "jdoe<![CDATA[@example.org]]>"),
        ("char_ref_nameid", "&#x6A;doe@example.org"),
        ("pi_in_nameid", "jdoe@example.org<?x y?>.evil.example"),
    ] {
        v.push((
            label.into(),
            "CVE-2017-11427 class, ruby-saml response_node_text_attack",
            signed_assertion.replacen(">jdoe@example.org<", &format!(">{replacement}<"), 1),
        ));
    }
    // The same tricks signed for real (the IdP signed a value with a comment in it).
    {
        let x = unsigned.replacen(
            ">jdoe@example.org<",
            ">jdoe@example.org<!---->.evil.example<",
            1,
        );
        let aid = assertion_id(&x);
        v.push((
            "signed_comment_in_nameid".into(),
            "crewjam TestSPRejectsInjectedComment",
            sign(&x, &aid, &key, std_opts()),
        ));
    }

    // --- DOCTYPE / entities (ruby-saml attackxee.xml billion laughs; CVE-2025-23369 GitHub
    // Enterprise entity tricks; CVE-2025-25291 DOCTYPE-comment differential).
    let body = signed_assertion
        .trim_start_matches("<?xml version=\"1.0\"?>")
        .trim_start();
    v.push(("doctype_billion_laughs".into(), "ruby-saml attackxee.xml",
        format!("<!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\"><!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>{}", body.replacen(">jdoe@example.org<", ">&lol3;<", 1))));
    v.push((
        "doctype_external_entity".into(),
        "XXE (ruby-saml Dangerous XML detected)",
        format!(
            "<!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>{}",
            body.replacen(">jdoe@example.org<", ">&x;<", 1)
        ),
    ));
    v.push((
        "cve_2025_25291_doctype_comment".into(),
        "ruby-saml CVE-2025-25291 (SAMLRaider generator)",
        format!("<!DOCTYPE x [ <!ATTLIST x y \"<!-- \"> ]>{}", body),
    ));
    v.push((
        "cve_2025_23369_entity_id".into(),
        "GitHub Enterprise CVE-2025-23369 (SAMLRaider generator)",
        format!(
            "<!DOCTYPE r [<!ENTITY id \"{}\">]>{}",
            assertion_id(&signed_assertion),
            body
        ),
    ));
    // CVE-2025-25292: namespace-prefix confusion: the Signature's prefix rebound so a parser
    // that matches on prefixes sees another element.
    {
        let sig = signature_text(&signed_assertion, 0);
        let rebound = sig.replacen(
            "<ns2:Signature ",
            "<ns2:Signature xmlns:ns2=\"urn:evil\" ",
            1,
        );
        v.push((
            "cve_2025_25292_namespace_rebound".into(),
            "ruby-saml CVE-2025-25292 (SAMLRaider generator)",
            signed_assertion.replacen(&sig, &rebound, 1),
        ));
    }

    // --- CVE-2024-45409 (ruby-saml): a decoy DigestValue, placed first in the document, that
    // matches the tampered assertion; the real Reference keeps the IdP's SignedInfo.
    {
        let tampered = signed_assertion.replacen(">jdoe@example.org<", ">admin@example.org<", 1);
        let aid = assertion_id(&tampered);
        let doc = roxmltree::Document::parse(&tampered).unwrap();
        let node = doc
            .descendants()
            .find(|n| n.attribute("ID") == Some(aid.as_str()))
            .unwrap();
        let sig_node = node
            .children()
            .find(|n| n.tag_name().name() == "Signature")
            .map(|n| n.id());
        let c14n = sso_filter::xmldsig::c14n::exclusive(node, sig_node, &[]).unwrap();
        let decoy = B64.encode(Sha256::digest(&c14n));
        let mut x = tampered.clone();
        let at = x.find("<ns0:Status>").unwrap();
        x.insert_str(at, &format!("<ns0:Extensions><ns2:DigestValue>{decoy}</ns2:DigestValue><ns2:SignedInfo><ns2:Reference URI=\"#{aid}\"><ns2:DigestValue>{decoy}</ns2:DigestValue></ns2:Reference></ns2:SignedInfo></ns0:Extensions>"));
        v.push((
            "cve_2024_45409_decoy_digest".into(),
            "ruby-saml CVE-2024-45409",
            x,
        ));
    }

    // --- Reference and algorithm rules (ruby-saml response_without_reference_uri,
    // response_with_retrieval_method; xml-crypto CVE-2025-29775; CVE-2009-0217), all signed for
    // real with the IdP key so only the rule under test fails.
    {
        let aid = assertion_id(&unsigned);
        let rid = response_id(&unsigned);
        let mk = |o: SignOpts<'_>| sign(&unsigned, &aid, &key, o);
        v.push((
            "reference_uri_empty".into(),
            "ruby-saml response_without_reference_uri",
            mk(SignOpts {
                uri: Some(""),
                ..std_opts()
            }),
        ));
        v.push((
            "reference_uri_other_id".into(),
            "SAMLRaider signature over other ID",
            mk(SignOpts {
                uri: Some(&format!("#{rid}")),
                ..std_opts()
            }),
        ));
        v.push((
            "signature_rsa_sha1_without_opt_in".into(),
            "security.md I6 (RSA-SHA1 needs insecure_allow_sha1)",
            mk(SignOpts {
                sig_alg: "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
                ..std_opts()
            }),
        ));
        v.push((
            "digest_sha1".into(),
            "security.md I6 (SHA-1 digests)",
            mk(SignOpts {
                digest_alg: "http://www.w3.org/2000/09/xmldsig#sha1",
                ..std_opts()
            }),
        ));
        v.push((
            "hmac_signature_method".into(),
            "CVE-2009-0217 (HMACOutputLength)",
            mk(SignOpts {
                sig_alg: "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
                ..std_opts()
            }),
        ));
        v.push(("xpath_transform".into(), "security.md I6 (no XPath/XSLT transforms)", mk(SignOpts { transforms: &format!("{}<ds:Transform Algorithm=\"http://www.w3.org/TR/1999/REC-xpath-19991116\"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>", STD_TRANSFORMS), ..std_opts() })));
        v.push((
            "no_transforms".into(),
            "security.md I6 (exactly enveloped + exc-c14n)",
            mk(SignOpts {
                transforms: "",
                ..std_opts()
            }),
        ));
        // Two References in one SignedInfo (CVE-2025-29775 class).
        let two = mk(std_opts()).replacen("</ds:Reference>", &format!("</ds:Reference><ds:Reference URI=\"#{rid}\"><ds:DigestMethod Algorithm=\"{SHA256}\"/><ds:DigestValue>AAAA</ds:DigestValue></ds:Reference>"), 1);
        v.push(("two_references".into(), "xml-crypto CVE-2025-29775", two));
        // A comment inside DigestValue (CVE-2025-29774).
        let with_comment = {
            let s = mk(std_opts());
            let a = s.find("<ds:DigestValue>").unwrap() + "<ds:DigestValue>".len();
            let mut s2 = s.clone();
            s2.insert_str(a, "<!-- x -->");
            s2
        };
        v.push((
            "comment_in_digest_value".into(),
            "xml-crypto CVE-2025-29774",
            with_comment,
        ));
        // RetrievalMethod / attacker key in KeyInfo: signed by the attacker, key advertised.
        let attacker = sign(&unsigned, &aid, &attacker_key(), std_opts()).replacen(
            "</ds:SignatureValue>",
            "</ds:SignatureValue><ds:KeyInfo><ds:RetrievalMethod URI=\"https://evil.example/key\"/></ds:KeyInfo>",
            1,
        );
        v.push((
            "attacker_signed_retrieval_method".into(),
            "ruby-saml response_with_retrieval_method, xml-crypto CVE-2024-32962",
            attacker,
        ));
    }

    // --- Validator fixtures of ruby-saml / python3-saml, regenerated: each field made wrong in
    // the unsigned Response, then the assertion signed for real by the IdP.
    let m = fuzzing::saml_meta();
    let acs = m["acs"].as_str().unwrap();
    let sp = m["sp_entity_id"].as_str().unwrap();
    let idp = m["idp_entity_id"].as_str().unwrap();
    let req = m["request_id"].as_str().unwrap();
    let field_cases: Vec<(&str, &str, String)> = vec![
        (
            "invalid_audience",
            "ruby-saml invalid_audience",
            unsigned.replace(&format!(">{sp}<"), ">https://other.example/sp<"),
        ),
        (
            "empty_destination",
            "ruby-saml empty_destination",
            unsigned.replacen(&format!("Destination=\"{acs}\""), "Destination=\"\"", 1),
        ),
        (
            "wrong_destination",
            "ruby-saml invalid destination",
            unsigned.replacen(
                &format!("Destination=\"{acs}\""),
                "Destination=\"https://other.example/acs\"",
                1,
            ),
        ),
        (
            "invalid_subjectconfirmation_recipient",
            "ruby-saml invalid_subjectconfirmation_recipient",
            unsigned.replacen(
                &format!("Recipient=\"{acs}\""),
                "Recipient=\"https://other.example/acs\"",
                1,
            ),
        ),
        (
            "invalid_subjectconfirmation_inresponse",
            "ruby-saml invalid_subjectconfirmation_inresponse",
            replace_nth(
                &unsigned,
                &format!("InResponseTo=\"{req}\""),
                "InResponseTo=\"_other\"",
                1,
            ),
        ),
        (
            "invalid_response_inresponseto",
            "python3-saml invalid InResponseTo",
            unsigned.replacen(
                &format!("InResponseTo=\"{req}\""),
                "InResponseTo=\"_other\"",
                1,
            ),
        ),
        (
            "invalid_subjectconfirmation_noa",
            "ruby-saml invalid_subjectconfirmation_noa",
            replace_attr_time(
                &unsigned,
                "SubjectConfirmationData",
                "NotOnOrAfter",
                "2000-01-01T00:00:00Z",
            ),
        ),
        (
            "invalid_subjectconfirmation_nb",
            "ruby-saml invalid_subjectconfirmation_nb",
            unsigned.replacen(
                "<ns1:SubjectConfirmationData ",
                "<ns1:SubjectConfirmationData NotBefore=\"2099-01-01T00:00:00Z\" ",
                1,
            ),
        ),
        (
            "not_before_failed",
            "python3-saml not_before_failed",
            replace_attr_time(&unsigned, "Conditions", "NotBefore", "2099-01-01T00:00:00Z"),
        ),
        (
            "conditions_expired",
            "ruby-saml expired conditions",
            replace_attr_time(
                &unsigned,
                "Conditions",
                "NotOnOrAfter",
                "2000-01-01T00:00:00Z",
            ),
        ),
        (
            "no_conditions",
            "ruby-saml no_conditions",
            remove_element(&unsigned, "Conditions"),
        ),
        (
            "no_authnstatement",
            "ruby-saml no_authnstatement",
            remove_element(&unsigned, "AuthnStatement"),
        ),
        (
            "no_subjectconfirmation_data",
            "ruby-saml no_subjectconfirmation_data",
            remove_element(&unsigned, "SubjectConfirmationData"),
        ),
        (
            "no_subjectconfirmation_method",
            "ruby-saml no_subjectconfirmation_method",
            unsigned.replacen(
                "Method=\"urn:oasis:names:tc:SAML:2.0:cm:bearer\"",
                "Method=\"urn:oasis:names:tc:SAML:2.0:cm:holder-of-key\"",
                1,
            ),
        ),
        (
            "status_code_responder",
            "ruby-saml status_code_responder",
            unsigned.replacen(
                "urn:oasis:names:tc:SAML:2.0:status:Success",
                "urn:oasis:names:tc:SAML:2.0:status:Responder",
                1,
            ),
        ),
        (
            "invalid_issuer_assertion",
            "ruby-saml invalid_issuer_assertion",
            replace_nth(
                &unsigned,
                &format!(">{idp}<"),
                ">https://evil.example/idp<",
                1,
            ),
        ),
        (
            "invalid_issuer_message",
            "ruby-saml invalid_issuer_message",
            unsigned.replacen(&format!(">{idp}<"), ">https://evil.example/idp<", 1),
        ),
        (
            "no_issuer_assertion",
            "ruby-saml no_issuer_assertion",
            remove_nth_element(&unsigned, "Issuer", 1),
        ),
        (
            "no_saml2_version",
            "ruby-saml no_saml2",
            replace_nth(&unsigned, "Version=\"2.0\"", "Version=\"1.1\"", 1),
        ),
        (
            "wrong_spnamequalifier",
            "ruby-saml wrong_spnamequalifier",
            unsigned.replacen(
                "<ns1:NameID ",
                "<ns1:NameID SPNameQualifier=\"https://other.example/sp\" ",
                1,
            ),
        ),
        (
            "empty_nameid",
            "ruby-saml empty NameID",
            unsigned.replacen(">jdoe@example.org<", "><", 1),
        ),
    ];
    for (label, source, x) in field_cases {
        assert_ne!(x, unsigned, "{label}: the edit did not apply");
        let aid = assertion_id(&x);
        v.push((label.into(), source, sign(&x, &aid, &key, std_opts())));
    }

    // --- The attack fixtures generate.py made with lxml (XSW1-8 et al.).
    for f in [
        "attack_comment_in_nameid",
        "attack_doctype",
        "attack_second_unsigned_assertion",
        "attack_signature_over_other_id",
        "attack_signature_stripped",
        "attack_tampered_nameid",
        "attack_xsw1",
        "attack_xsw2",
        "attack_xsw3",
        "attack_xsw4",
        "attack_xsw5",
        "attack_xsw6",
        "attack_xsw7",
        "attack_xsw8",
        "attacker_key",
        "encrypted_unsigned",
        "unsigned",
        "signed_sha1",
    ] {
        v.push((
            format!("fixture_{f}"),
            "tests/fixtures/saml2 (generate.py: SAMLRaider XSW1-8 et al.)",
            fixture(f),
        ));
    }
    v
}

fn replace_nth(s: &str, from: &str, to: &str, n: usize) -> String {
    let mut idx = None;
    let mut start = 0;
    for _ in 0..=n {
        idx = s[start..].find(from).map(|i| i + start);
        start = idx.map_or(s.len(), |i| i + from.len());
    }
    match idx {
        Some(i) => format!("{}{to}{}", &s[..i], &s[i + from.len()..]),
        None => s.to_owned(),
    }
}

fn replace_attr_time(s: &str, element: &str, attr: &str, value: &str) -> String {
    let e = s.find(&format!(":{element} ")).unwrap();
    let a = s[e..].find(&format!("{attr}=\"")).unwrap() + e + attr.len() + 2;
    let end = s[a..].find('"').unwrap() + a;
    format!("{}{value}{}", &s[..a], &s[end..])
}

fn remove_nth_element(s: &str, local: &str, n: usize) -> String {
    let doc = roxmltree::Document::parse(s).unwrap();
    let node = doc
        .descendants()
        .filter(|x| x.is_element() && x.tag_name().name() == local)
        .nth(n)
        .unwrap();
    let r = node.range();
    format!("{}{}", &s[..r.start], &s[r.end..])
}

fn remove_element(s: &str, local: &str) -> String {
    remove_nth_element(s, local, 0)
}

/// Runs the corpus (called from tests/corpora.rs).
pub fn run() {
    let mut t = Tally::new(
        "SAML attack classes (ruby-saml, python3-saml, crewjam/saml, SAMLRaider; regenerated)",
    );
    let meta = fuzzing::saml_meta();
    let now = meta["now"].as_u64().unwrap() + 5;
    let mut harness = Harness::new(&fuzzing::config_named("saml", &fuzzing::saml_method()), now);
    let acs = "/sso/saml/saml/acs";
    let post = |h: &mut Harness, xml: &str| {
        let flow = sso_filter::session::Flow {
            v: 1,
            state: "relay-state-0123456789".into(),
            rd: "/app".into(),
            method: "saml".into(),
            tenant: None,
            exp: now + 600,
            nonce: Some(meta["request_id"].as_str().unwrap().to_owned()),
            verifier: None,
            variant: None,
            bind: None,
            retry: 0,
        };
        let set = h
            .filter
            .config()
            .cookies
            .write_cross_site_flow(&flow, &[], now, &mut fuzzing::CounterRandom::default())
            .unwrap();
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("SAMLResponse", &B64.encode(xml))
            .append_pair("RelayState", &flow.state)
            .finish();
        // A fresh cache per post: the replay cache must not be what refuses an attack.
        h.cache = sso_filter::cache::MemoryCache::default();
        h.run(
            "POST",
            acs,
            vec![
                ("accept".into(), "text/html".into()),
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into(),
                ),
                ("cookie".into(), fuzzing::cookie_header(&set)),
            ],
            body.as_bytes(),
            &mut fuzzing::no_callouts,
        )
    };

    // Positive controls: the pysaml2 fixtures and our own signing of the unsigned one.
    let unsigned = fixture("unsigned");
    let resigned = sign(&unsigned, &assertion_id(&unsigned), &idp_key(), std_opts());
    let mut controls: Vec<(String, String)> = [
        "signed_response",
        "signed_assertion",
        "signed_both",
        "encrypted_aes128_cbc",
        "encrypted_aes256_gcm",
    ]
    .iter()
    .map(|n| ((*n).to_owned(), fixture(n)))
    .collect();
    controls.push(("resigned_unsigned (our signer)".into(), resigned));
    for (name, xml) in &controls {
        let direct = saml_verify(xml);
        let ok = direct
            .as_ref()
            .is_ok_and(|v| v.claims.get("name_id") == Some(&json!("jdoe@example.org")));
        let done = post(&mut harness, xml);
        t.check(
            format!("control {name}: {:?}", direct.err()),
            ok && done.admits(),
        );
    }

    let mut classes = std::collections::BTreeMap::<&str, usize>::new();
    for (label, source, xml) in variants() {
        *classes.entry(source).or_insert(0) += 1;
        let direct = saml_verify(&xml);
        // An accepted variant is an attack that worked unless it carries exactly the IdP's
        // original identity (a char reference or CDATA that canonicalises to the same text).
        // Also harmless: the IdP's own Signature moved to the end of the Assertion it signs
        // (still its direct child; the enveloped transform drops it wherever it sits, so the
        // signed content and the identity are the IdP's; only XSD order differs).
        let harmless = direct.as_ref().is_ok_and(|v| {
            v.claims.get("name_id") == Some(&json!("jdoe@example.org"))
                && (label.starts_with("char_ref")
                    || label.starts_with("cdata")
                    || label == "signature_moved_to_assertion_end")
        });
        let refused = direct.is_err() || harmless;
        let done = post(&mut harness, &xml);
        let engine_ok = !done.admits() || harmless;
        t.check(
            format!(
                "{label} [{source}]: verify_xml {:?}, engine {}",
                direct.as_ref().map(|v| v.claims.get("name_id").cloned()),
                done.status()
            ),
            refused && engine_ok,
        );
    }
    println!("SAML variants by source: {classes:#?}");
    t.finish();
}
