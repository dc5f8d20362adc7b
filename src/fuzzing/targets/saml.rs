//! SAML 2.0 messages and the XML canonicalisation under their signatures.
//!
//! - `saml_response`: signed Responses (pysaml2 + xmlsec1 fixtures) edited byte-wise or XML-wise
//!   (wrapping, moving, duplicating, comments, PIs, entities) verify only with exactly the claims
//!   and assertion ID of an unedited fixture.
//! - `saml_redirect`: IdP metadata never yields a key we did not put there; an HTTP-Redirect
//!   signed query verifies only unedited; a LogoutRequest only from its configured issuer.
//! - `xml_c14n`: exclusive c14n is a fixed point and yields well-formed XML.

use std::cell::RefCell;

use super::text;
use crate::fuzzing::{fixtures, pick, reached, saml2, saml_meta, saml_verify, Edits};

fn saml_originals() -> &'static Vec<(String, Option<crate::methods::saml2::Verified>)> {
    static ORIG: std::sync::OnceLock<Vec<(String, Option<crate::methods::saml2::Verified>)>> =
        std::sync::OnceLock::new();
    ORIG.get_or_init(|| {
        fixtures::SAML_SIGNED
            .iter()
            .map(|(_, xml)| ((*xml).to_owned(), saml_verify(xml).ok()))
            .collect()
    })
}

/// Fragments the XML edits splice in: the tricks of the SAML attack corpora.
const XML_DICT: &[&str] = &[
    "<!---->",
    "<!-- x -->",
    "<?pi x?>",
    "<![CDATA[.evil.example]]>",
    ".evil.example",
    "&amp;",
    "<!DOCTYPE r [<!ENTITY e \"x\">]>",
    "&e;",
    " xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"",
    " ID=\"_evil\"",
    "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_evil\" Version=\"2.0\"><saml:Subject><saml:NameID>admin@example.org</saml:NameID></saml:Subject></saml:Assertion>",
    "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/>",
    "<Extensions>",
    "</Extensions>",
];

/// Applies XML-aware edits: each 3-byte op deletes, duplicates, moves or wraps an element, or
/// splices a dictionary fragment at an element boundary, using the parsed original's ranges.
fn xml_edits(original: &str, ops: &[u8]) -> String {
    let Ok(doc) = roxmltree::Document::parse_with_options(
        original,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        },
    ) else {
        return original.to_owned();
    };
    let ranges: Vec<(std::ops::Range<usize>, usize)> = doc
        .descendants()
        .filter(|n| n.is_element())
        .map(|n| {
            let r = n.range();
            let open_end = original[r.start..r.end]
                .find('>')
                .map_or(r.end, |e| r.start + e + 1);
            (r, open_end)
        })
        .collect();
    if ranges.is_empty() {
        return original.to_owned();
    }
    // One structural edit on the original (ranges stay valid), then text splices.
    let mut out = original.to_owned();
    let op = ops.first().copied().unwrap_or(0);
    let (r, open_end) = ranges[pick(ops, 1, ranges.len())].clone();
    let (t, t_open) = ranges[pick(ops, 2, ranges.len())].clone();
    let element = original[r.clone()].to_owned();
    match op % 6 {
        0 => out.replace_range(r, ""),
        1 => out.insert_str(r.end, &element),
        2 if t_open <= r.start || t_open >= r.end => {
            // Move element r to the start of element t's content.
            if t_open <= r.start {
                out.replace_range(r, "");
                out.insert_str(t_open, &element);
            } else {
                out.insert_str(t_open, &element);
                out.replace_range(r, "");
            }
        }
        3 if !(t.start < r.start && r.end < t.end || r.start <= t.start && t.end <= r.end) => {
            // Copy element r into element t (XSW style: a signed copy beside a forged one).
            out.insert_str(t_open, &element);
        }
        4 => {
            // Wrap element r in an Extensions-like element.
            out.insert_str(r.end, "</Extensions>");
            out.insert_str(r.start, "<Extensions>");
        }
        _ => {
            let frag = XML_DICT[pick(ops, 3, XML_DICT.len())];
            out.insert_str(open_end, frag);
        }
    }
    out
}

/// Signed SAML Responses (pysaml2 + xmlsec1 fixtures: signed Response, signed Assertion, both,
/// encrypted AES-CBC/GCM, RSA-SHA1), edited byte-wise or XML-wise (wrapping, moving, duplicating,
/// comments, PIs, entities). Property: a Response verifies only with exactly the claims and
/// assertion ID of an unedited fixture that verifies: no edit changes who logs in.
pub fn saml_response(data: &[u8]) {
    let originals = saml_originals();
    let (xml, _) = &originals[pick(data, 0, originals.len())];
    let rest = data.get(2..).unwrap_or_default();
    let edited = if pick(data, 1, 2) == 0 {
        text(&Edits::new(rest).apply(xml.as_bytes()))
    } else {
        let n = rest.len().min(4);
        let mut s = xml_edits(xml, &rest[..n]);
        if rest.len() > 4 {
            s = xml_edits(&s, &rest[4..rest.len().min(8)]);
        }
        s
    };
    if let Ok(v) = saml_verify(&edited) {
        reached("saml_response.verified");
        let same = originals
            .iter()
            .filter_map(|(_, o)| o.as_ref())
            .any(|o| o.claims == v.claims && o.assertion_id == v.assertion_id);
        assert!(
            same,
            "an edited Response verified with other claims: {:?}",
            v.claims
        );
    }
}

thread_local! {
    static SLO: RefCell<Option<(crate::methods::saml2::Idp, String, String)>> = const { RefCell::new(None) };
}

/// IdP metadata, HTTP-Redirect signed messages and IdP LogoutRequests. Properties: metadata
/// from arbitrary XML never yields a signing key we did not put there; a redirect-signed query
/// verifies only unedited; a logout request is accepted only from its configured issuer; a
/// LogoutRequest signed inside the XML (HTTP-POST) never verifies with other session indexes.
pub fn saml_redirect(data: &[u8]) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    SLO.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (idp, query, xml) = slot.get_or_insert_with(|| {
            let cert: String = fixtures::SAML_IDP_CRT
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            let entity = saml_meta()["idp_entity_id"].as_str().unwrap_or("").to_owned();
            let metadata = format!(
                r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.org/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
            );
            let idp = crate::methods::saml2::parse_metadata(&metadata, None).expect("metadata");
            let xml = format!(
                r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>{entity}</saml:Issuer><saml:NameID>jdoe@example.org</saml:NameID><samlp:SessionIndex>_s1</samlp:SessionIndex></samlp:LogoutRequest>"#
            );
            let deflated = miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6);
            let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
            let signed = format!(
                "SAMLRequest={}&RelayState=rs&SigAlg={}",
                enc(&b64.encode(deflated)),
                enc("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
            );
            let key = crate::jose::keys::rsa_private_key(fixtures::SAML_IDP_KEY).expect("idp key");
            let sig = key.sign(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &<sha2::Sha256 as sha2::Digest>::digest(signed.as_bytes()),
            )
            .expect("sign");
            let query = format!("{signed}&Signature={}", enc(&b64.encode(sig)));
            (idp, query, xml)
        });
        let saml = saml2();
        let rest = data.get(1..).unwrap_or_default();
        match pick(data, 0, 4) {
            0 => {
                let edited = text(&Edits::new(rest).apply(query.as_bytes()));
                assert!(saml.verify_redirect(idp, query, "SAMLRequest").is_ok());
                if let Ok(got) = saml.verify_redirect(idp, &edited, "SAMLRequest") {
                    reached("saml_redirect.verified");
                    // Parameter order and the other parameters are outside the signature.
                    assert_eq!(&got, xml, "an edited redirect message verified to other XML");
                }
            }
            1 => {
                let doc = text(rest);
                let edited = xml_edits(xml, rest);
                let sls = "https://app.example.com/sso/saml/saml/slo";
                for x in [&doc, &edited] {
                    if let Ok((id, _)) =
                        saml.check_logout_request(idp, x, (sls, 1_767_225_600), false)
                    {
                        assert!(!id.is_empty());
                        assert!(x.contains(&idp.entity_id), "a logout request from another issuer");
                    }
                }
            }
            3 => posted_logout_request(saml, idp, rest),
            _ => {
                let doc = text(rest);
                if let Ok(parsed) = crate::methods::saml2::parse_metadata(&doc, None) {
                    assert!(!parsed.entity_id.is_empty());
                    assert!(doc.contains(&parsed.entity_id));
                }
            }
        }
    });
}

/// The IdP's LogoutRequest signed inside the XML (HTTP-POST), edited: it verifies only with
/// the session indexes the IdP signed.
fn posted_logout_request(
    saml: &crate::methods::saml2::Saml2,
    idp: &crate::methods::saml2::Idp,
    ops: &[u8],
) {
    let signed = fixtures::SAML_LOGOUT_REQUEST_POST;
    let sls = "https://app.example.com/sso/saml/saml/slo";
    let now = 1_767_225_600;
    let original = saml.check_logout_request(idp, signed, (sls, now), true);
    let (_, indexes) = original.expect("the signed fixture verifies");
    let edited = xml_edits(signed, ops);
    if let Ok((_, got)) = saml.check_logout_request(idp, &edited, (sls, now), true) {
        reached("saml_redirect.posted_logout_verified");
        assert_eq!(got, indexes, "an edited signed LogoutRequest verified");
    }
}

/// Exclusive XML canonicalisation. Property: parse -> c14n -> parse -> c14n is stable (the
/// canonical form is a fixed point), and the canonical form is well-formed XML.
pub fn xml_c14n(data: &[u8]) {
    let input = text(data.get(1..).unwrap_or_default());
    let Ok(doc) = roxmltree::Document::parse(&input) else {
        return;
    };
    let inclusive: Vec<String> = if pick(data, 0, 2) == 0 {
        Vec::new()
    } else {
        vec!["#default".into(), "a".into()]
    };
    let Ok(first) = crate::xmldsig::c14n::exclusive(doc.root_element(), None, &inclusive) else {
        return;
    };
    reached("xml_c14n.canonical");
    let first = String::from_utf8(first).expect("c14n output is UTF-8");
    let again = roxmltree::Document::parse(&first)
        .unwrap_or_else(|e| panic!("c14n output does not parse ({e}): {first}"));
    let second = crate::xmldsig::c14n::exclusive(again.root_element(), None, &inclusive)
        .expect("c14n of c14n");
    assert_eq!(
        String::from_utf8_lossy(&second),
        first,
        "c14n is not a fixed point"
    );
}
