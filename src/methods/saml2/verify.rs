//! The `Response` posted to the ACS, verified (providers.md §8.2, security.md I1-I15): its
//! shape (one assertion, signatures only where the profile allows them), the signatures, the
//! Response and Assertion content, then the claims, read from the very nodes whose signature
//! was verified.

use roxmltree::Node;
use serde_json::{Map, Value};

use super::{
    child, only_child, parse_options, parse_xml_time, Expect, Idp, Principal, Saml2, SamlFailure,
    Verified, CM_BEARER, MAX_RESPONSE_BYTES, SAMLP_NS, SAML_NS, STATUS_SUCCESS,
};
use crate::pages::escape;
use crate::xml::text_only;
use crate::xmldsig::{self, is, DS_NS};

/// Whether every `ID` attribute among `nodes` is unique (XSW5/6/8 duplicate the signed ID).
pub(super) fn ids_unique<'a, 'i: 'a>(nodes: impl Iterator<Item = Node<'a, 'i>>) -> bool {
    let mut ids: Vec<&str> = nodes.filter_map(|n| n.attribute("ID")).collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    ids.len() == count
}

/// The root of a protocol message, `samlp:{local}`: version 2.0, an `ID`, every `ID` in the
/// document unique.
pub(super) fn message_root<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    local: &str,
) -> Result<Node<'a, 'i>, SamlFailure> {
    let root = doc.root_element();
    if !is(root, SAMLP_NS, local) {
        return Err(SamlFailure::Structure("root"));
    }
    if root.attribute("Version") != Some("2.0") {
        return Err(SamlFailure::Structure("version"));
    }
    if !ids_unique(doc.descendants()) || root.attribute("ID").is_none_or(str::is_empty) {
        return Err(SamlFailure::Structure("ids"));
    }
    Ok(root)
}

/// Exactly one assertion anywhere, and it is a direct child of the Response (XSW1-4, 7, 8 and
/// multiple-assertion confusion).
fn the_assertion<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    response: Node<'a, 'i>,
) -> Result<Node<'a, 'i>, SamlFailure> {
    let assertions: Vec<Node<'_, '_>> = doc
        .descendants()
        .filter(|n| is(*n, SAML_NS, "Assertion") || is(*n, SAML_NS, "EncryptedAssertion"))
        .collect();
    let [assertion] = assertions.as_slice() else {
        return Err(SamlFailure::Structure("assertion_count"));
    };
    let assertion = *assertion;
    if assertion.parent() != Some(response) {
        return Err(SamlFailure::Structure("assertion_position"));
    }
    Ok(assertion)
}

/// A signature node, if any.
type Sig<'a, 'i> = Option<Node<'a, 'i>>;

/// Signatures only as direct children of the Response or of that Assertion, one each:
/// `(response's, assertion's)`.
fn signature_slots<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    response: Node<'a, 'i>,
    assertion: Node<'a, 'i>,
) -> Result<(Sig<'a, 'i>, Sig<'a, 'i>), SamlFailure> {
    let mut response_sig = None;
    let mut assertion_sig = None;
    for sig in doc.descendants().filter(|n| is(*n, DS_NS, "Signature")) {
        let slot = match sig.parent() {
            Some(p) if p == response => &mut response_sig,
            Some(p) if p == assertion => &mut assertion_sig,
            _ => return Err(SamlFailure::Structure("signature_position")),
        };
        if slot.replace(sig).is_some() {
            return Err(SamlFailure::Structure("signature_count"));
        }
    }
    Ok((response_sig, assertion_sig))
}

impl Saml2 {
    /// Decodes and verifies a posted `SAMLResponse`.
    ///
    /// # Errors
    ///
    /// [`SamlFailure`] naming the first check that failed.
    pub fn verify(
        &self,
        saml_response: &str,
        expect: &Expect<'_>,
    ) -> Result<Verified, SamlFailure> {
        let xml = super::binding::decode_posted(saml_response, MAX_RESPONSE_BYTES)?;
        self.verify_xml(&xml, expect)
    }

    /// Verifies a Response document (providers.md §8.2, security.md I1-I10).
    ///
    /// # Errors
    ///
    /// [`SamlFailure`] naming the first check that failed.
    pub fn verify_xml(&self, xml: &str, expect: &Expect<'_>) -> Result<Verified, SamlFailure> {
        let doc = roxmltree::Document::parse_with_options(xml, parse_options())
            .map_err(|_| SamlFailure::Malformed)?;
        let response = message_root(&doc, "Response")?;
        let assertion = the_assertion(&doc, response)?;
        let encrypted = is(assertion, SAML_NS, "EncryptedAssertion");
        let (response_sig, assertion_sig) = signature_slots(&doc, response, assertion)?;
        if encrypted && assertion_sig.is_some() {
            return Err(SamlFailure::Structure("signature_position"));
        }
        if let Some(sig) = response_sig {
            self.check_signature(expect.idp.unwrap_or(&self.idp), response, sig)?;
        }
        if encrypted {
            self.verify_encrypted(&doc, response, response_sig.is_some(), assertion, expect)
        } else {
            self.finish(
                response,
                response_sig.is_some(),
                assertion,
                assertion_sig,
                expect,
            )
        }
    }

    /// An `EncryptedAssertion`: decrypted with the SP key, the plaintext parsed on its own (in
    /// the namespace context of the EncryptedAssertion), and the same rules applied to it.
    fn verify_encrypted(
        &self,
        doc: &roxmltree::Document<'_>,
        response: Node<'_, '_>,
        response_signed: bool,
        encrypted: Node<'_, '_>,
        expect: &Expect<'_>,
    ) -> Result<Verified, SamlFailure> {
        let wrapped = self.decrypt(encrypted)?;
        let inner = roxmltree::Document::parse_with_options(&wrapped, parse_options())
            .map_err(|_| SamlFailure::Malformed)?;
        let parts = inner
            .root_element()
            .children()
            .filter(|n| !(n.is_text() && n.text().unwrap_or("").trim().is_empty()))
            .collect::<Vec<_>>();
        let [decrypted] = parts.as_slice() else {
            return Err(SamlFailure::Structure("assertion_count"));
        };
        let decrypted = *decrypted;
        if !is(decrypted, SAML_NS, "Assertion") {
            return Err(SamlFailure::Structure("assertion_count"));
        }
        if !ids_unique(doc.descendants().chain(inner.descendants())) {
            return Err(SamlFailure::Structure("ids"));
        }
        let mut inner_sig = None;
        for sig in inner.descendants().filter(|n| is(*n, DS_NS, "Signature")) {
            if sig.parent() != Some(decrypted) || inner_sig.replace(sig).is_some() {
                return Err(SamlFailure::Structure("signature_position"));
            }
        }
        self.finish(response, response_signed, decrypted, inner_sig, expect)
    }

    /// The plaintext of an `EncryptedAssertion`, wrapped in an element that declares the
    /// namespaces in scope there (the plaintext may use their prefixes).
    fn decrypt(&self, encrypted: Node<'_, '_>) -> Result<String, SamlFailure> {
        let key = self
            .sp_key
            .as_ref()
            .ok_or(SamlFailure::Structure("encrypted_without_key"))?;
        let data = only_child(encrypted, crate::xmlenc::XENC_NS, "EncryptedData")?
            .ok_or(SamlFailure::Decrypt)?;
        let plain = crate::xmlenc::decrypt(data, &key.0).map_err(|_| SamlFailure::Decrypt)?;
        let plain = std::str::from_utf8(&plain).map_err(|_| SamlFailure::Decrypt)?;
        let mut decls = String::new();
        for ns in encrypted.namespaces() {
            match ns.name() {
                Some("xml") => {}
                Some(p) => decls.push_str(&format!(r#" xmlns:{p}="{}""#, escape(ns.uri()))),
                None => decls.push_str(&format!(r#" xmlns="{}""#, escape(ns.uri()))),
            }
        }
        Ok(format!(
            "<sso-filter-decrypted{decls}>{plain}</sso-filter-decrypted>"
        ))
    }

    fn check_signature(
        &self,
        idp: &Idp,
        signed: Node<'_, '_>,
        sig: Node<'_, '_>,
    ) -> Result<(), SamlFailure> {
        xmldsig::verify_enveloped(signed, sig, &idp.keys, self.allow_sha1)
            .map_err(|e| SamlFailure::Signature(e.reason()))
    }

    /// The checks after the signatures' placement: the assertion's own signature, then the
    /// Response's and the Assertion's content.
    fn finish(
        &self,
        response: Node<'_, '_>,
        response_signed: bool,
        assertion: Node<'_, '_>,
        assertion_sig: Option<Node<'_, '_>>,
        expect: &Expect<'_>,
    ) -> Result<Verified, SamlFailure> {
        let idp = expect.idp.unwrap_or(&self.idp);
        if let Some(sig) = assertion_sig {
            self.check_signature(idp, assertion, sig)?;
        }
        if !response_signed && assertion_sig.is_none() {
            return Err(SamlFailure::Signature("missing"));
        }
        if self.want_assertions_signed && assertion_sig.is_none() {
            return Err(SamlFailure::Signature("assertion_unsigned"));
        }
        check_response(response, response_signed, idp, expect)?;

        // The Assertion.
        if assertion.attribute("Version") != Some("2.0") {
            return Err(SamlFailure::Structure("assertion_version"));
        }
        let issuer = child(assertion, SAML_NS, "Issuer")?.ok_or(SamlFailure::Issuer)?;
        if text_only(issuer).as_deref().map(str::trim) != Some(idp.entity_id.as_str()) {
            return Err(SamlFailure::Issuer);
        }
        let subject =
            child(assertion, SAML_NS, "Subject")?.ok_or(SamlFailure::Structure("subject"))?;
        let name_id = child(subject, SAML_NS, "NameID")?;
        let confirmed_until = self.bearer_until(subject, expect)?;
        let until = self.valid_until(assertion, expect, confirmed_until)?;
        let authn = only_child(assertion, SAML_NS, "AuthnStatement")?
            .ok_or(SamlFailure::Structure("authn_statement"))?;

        let mut claims = Map::new();
        if let Some(n) = name_id {
            subject_claims(n, expect, &mut claims)?;
        }
        if let Some(si) = authn.attribute("SessionIndex") {
            claims.insert("session_index".into(), Value::String(si.to_owned()));
        }
        let by_friendly = attribute_claims(assertion, &mut claims)?;
        let principal = self.principal(&mut claims, by_friendly)?;
        claims.insert("principal".into(), Value::String(principal));
        Ok(Verified {
            assertion_id: assertion.attribute("ID").unwrap_or("").to_owned(),
            not_on_or_after: until,
            session_not_on_or_after: authn
                .attribute("SessionNotOnOrAfter")
                .and_then(parse_xml_time),
            claims,
        })
    }

    /// At least one bearer confirmation for this ACS and this request, in time: until when.
    fn bearer_until(&self, subject: Node<'_, '_>, expect: &Expect<'_>) -> Result<u64, SamlFailure> {
        let (now, leeway) = (expect.now, self.leeway);
        for sc in subject
            .children()
            .filter(|n| is(*n, SAML_NS, "SubjectConfirmation"))
        {
            if sc.attribute("Method") != Some(CM_BEARER) {
                continue;
            }
            let Some(data) = child(sc, SAML_NS, "SubjectConfirmationData")? else {
                continue;
            };
            let until = data.attribute("NotOnOrAfter").and_then(parse_xml_time);
            let ok = data.attribute("Recipient") == Some(expect.acs_url)
                && data.attribute("InResponseTo") == Some(expect.request_id)
                && until.is_some_and(|t| now < t.saturating_add(leeway))
                && data
                    .attribute("NotBefore")
                    .is_none_or(|nb| parse_xml_time(nb).is_some_and(|t| t <= now + leeway));
            if let (true, Some(until)) = (ok, until) {
                return Ok(until);
            }
        }
        Err(SamlFailure::NotForUs("subject_confirmation"))
    }

    /// The `Conditions`: in time (with leeway) and for this audience. Returns until when the
    /// assertion may be presented (for the replay cache).
    fn valid_until(
        &self,
        assertion: Node<'_, '_>,
        expect: &Expect<'_>,
        confirmed_until: u64,
    ) -> Result<u64, SamlFailure> {
        let (now, leeway) = (expect.now, self.leeway);
        let conditions = only_child(assertion, SAML_NS, "Conditions")?
            .ok_or(SamlFailure::Structure("conditions"))?;
        let not_before = conditions.attribute("NotBefore").map(parse_xml_time);
        let not_on_or_after = conditions.attribute("NotOnOrAfter").map(parse_xml_time);
        match not_before {
            Some(Some(t)) if t > now.saturating_add(leeway) => return Err(SamlFailure::Expired),
            Some(None) => return Err(SamlFailure::Structure("time")),
            _ => {}
        }
        let until = match not_on_or_after {
            Some(Some(t)) if now >= t.saturating_add(leeway) => return Err(SamlFailure::Expired),
            Some(Some(t)) => t.min(confirmed_until),
            Some(None) => return Err(SamlFailure::Structure("time")),
            None => confirmed_until,
        };
        let restrictions: Vec<_> = conditions
            .children()
            .filter(|n| is(*n, SAML_NS, "AudienceRestriction"))
            .collect();
        if restrictions.is_empty() {
            return Err(SamlFailure::NotForUs("audience"));
        }
        for r in restrictions {
            let ours = r
                .children()
                .filter(|n| is(*n, SAML_NS, "Audience"))
                .any(|a| text_only(a).as_deref().map(str::trim) == Some(expect.sp_entity_id));
            if !ours {
                return Err(SamlFailure::NotForUs("audience"));
            }
        }
        Ok(until)
    }

    /// The login: the `NameID` or the configured attribute, one non-empty text. The
    /// attributes' `FriendlyName`s join the claims where the key is free.
    fn principal(
        &self,
        claims: &mut Map<String, Value>,
        by_friendly: Vec<(String, Value)>,
    ) -> Result<String, SamlFailure> {
        let principal = match (self.principal, self.principal_attribute.as_deref()) {
            (Principal::Subject, _) => claims.get("name_id").cloned(),
            (Principal::Attribute, Some(a)) => claims.get(a).cloned(),
            (Principal::FriendlyAttribute, Some(a)) => by_friendly
                .iter()
                .find(|(f, _)| f == a)
                .map(|(_, v)| v.clone()),
            _ => None,
        };
        for (f, v) in by_friendly {
            claims.entry(f).or_insert(v);
        }
        match principal {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
            Some(Value::Array(items)) => match items.as_slice() {
                [Value::String(s)] if !s.trim().is_empty() => Ok(s.trim().to_owned()),
                _ => Err(SamlFailure::Principal),
            },
            _ => Err(SamlFailure::Principal),
        }
    }
}

/// A status response (a `Response`, a `LogoutResponse`): for this endpoint (`acs_url`) and
/// this request, status Success, from the IdP.
pub(super) fn check_response(
    response: Node<'_, '_>,
    response_signed: bool,
    idp: &Idp,
    expect: &Expect<'_>,
) -> Result<(), SamlFailure> {
    match response.attribute("Destination") {
        Some(d) if d == expect.acs_url => {}
        None if !response_signed => {}
        _ => return Err(SamlFailure::NotForUs("destination")),
    }
    if response.attribute("InResponseTo") != Some(expect.request_id) {
        return Err(SamlFailure::InResponseTo);
    }
    let status = child(response, SAMLP_NS, "Status")?.ok_or(SamlFailure::Status)?;
    let code = child(status, SAMLP_NS, "StatusCode")?.ok_or(SamlFailure::Status)?;
    if code.attribute("Value") != Some(STATUS_SUCCESS) {
        return Err(SamlFailure::Status);
    }
    if let Some(issuer) = child(response, SAML_NS, "Issuer")? {
        if text_only(issuer).as_deref().map(str::trim) != Some(idp.entity_id.as_str()) {
            return Err(SamlFailure::Issuer);
        }
    }
    Ok(())
}

/// `name_id` and `name_id_format` from the subject's `NameID`.
fn subject_claims(
    name_id: Node<'_, '_>,
    expect: &Expect<'_>,
    claims: &mut Map<String, Value>,
) -> Result<(), SamlFailure> {
    // A NameID qualified for another SP (`SPNameQualifier`, SAML core §2.2.2) was made for
    // that SP (ruby-saml's wrong_spnamequalifier; found by tests/corpora.rs).
    if name_id
        .attribute("SPNameQualifier")
        .is_some_and(|q| q != expect.sp_entity_id)
    {
        return Err(SamlFailure::NotForUs("sp_name_qualifier"));
    }
    let text = text_only(name_id).ok_or(SamlFailure::Principal)?;
    claims.insert("name_id".into(), Value::String(text.trim().to_owned()));
    if let Some(f) = name_id.attribute("Format") {
        claims.insert("name_id_format".into(), Value::String(f.to_owned()));
    }
    Ok(())
}

/// Every attribute by `Name` into `claims` (one value: a string; several: an array); returns
/// them by `FriendlyName` too, for the principal and the free keys.
fn attribute_claims(
    assertion: Node<'_, '_>,
    claims: &mut Map<String, Value>,
) -> Result<Vec<(String, Value)>, SamlFailure> {
    let mut by_friendly: Vec<(String, Value)> = Vec::new();
    for statement in assertion
        .children()
        .filter(|n| is(*n, SAML_NS, "AttributeStatement"))
    {
        for attr in statement
            .children()
            .filter(|n| is(*n, SAML_NS, "Attribute"))
        {
            let Some(name) = attr.attribute("Name") else {
                return Err(SamlFailure::Structure("attribute_name"));
            };
            let mut values = Vec::new();
            for v in attr
                .children()
                .filter(|n| is(*n, SAML_NS, "AttributeValue"))
            {
                // Mixed content (comments, PIs, elements) is refused (security.md I7).
                let text = text_only(v).ok_or(SamlFailure::Structure("attribute_value"))?;
                values.push(Value::String(text));
            }
            let value = match values.len() {
                1 => values.pop().unwrap_or(Value::Null),
                _ => Value::Array(values),
            };
            if claims.contains_key(name) {
                return Err(SamlFailure::Structure("duplicate_attribute"));
            }
            if let Some(f) = attr.attribute("FriendlyName") {
                by_friendly.push((f.to_owned(), value.clone()));
            }
            claims.insert(name.to_owned(), value);
        }
    }
    Ok(by_friendly)
}
