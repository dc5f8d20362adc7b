//! SAML single logout messages (SAML core §3.7): the `LogoutRequest` and `LogoutResponse` the
//! SP writes, and the IdP's read and checked. The endpoints are in `slo.rs`.
//!
//! Single logout (SAML profiles §4.4) goes both ways, by the HTTP-Redirect and the HTTP-POST
//! bindings:
//!
//! - SP-initiated: `{prefix}/logout` sends the IdP a `LogoutRequest` for the session's subject,
//!   by the IdP's binding (`single_logout_binding` when it has both). By redirect, the IdP's
//!   answer comes back to `{prefix}/saml/{method}/slo` and goes on to the site's root. By an
//!   auto-submitting form, a flow (cross-site, like a login's) keeps the request's ID and the
//!   return URL: the `LogoutResponse` posted back must be signed by the IdP (enveloped), answer
//!   that request (`InResponseTo`) and come once, before the browser goes on.
//! - IdP-initiated: the IdP's signed `LogoutRequest` at `{prefix}/saml/{method}/slo` (a GET by
//!   the HTTP-Redirect binding, signed over the query; a form post by the HTTP-POST one,
//!   signed inside the XML), used once, ends its sessions everywhere and gets a
//!   `LogoutResponse` back, by the binding it came by when the IdP has it.

use base64::Engine;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};

use super::binding::decode_posted;
use super::verify::{check_response, ids_unique, message_root};
use super::{
    child, parse_options, parse_xml_time, xml_time, Expect, Idp, Saml2, SamlFailure, MAX_SLO_XML,
    RSA_SHA256, SAMLP_NS, SAML_NS, STATUS_SUCCESS,
};
use crate::jose::B64STD;
use crate::pages::escape;
use crate::xml::text_only;
use crate::xmldsig::{self, is, DS_NS};

impl Saml2 {
    /// A `LogoutRequest` (SAML core §3.7.1) for a session's subject, to `destination`.
    pub fn logout_request(
        &self,
        destination: &url::Url,
        id: &str,
        now: u64,
        sp_entity_id: &str,
        subject: &crate::session::SamlSubject,
    ) -> String {
        let format = subject
            .format
            .as_deref()
            .map(|f| format!(r#" Format="{}""#, escape(f)))
            .unwrap_or_default();
        let index = subject
            .session_index
            .as_deref()
            .map(|i| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(i)))
            .unwrap_or_default();
        format!(
            r#"<samlp:LogoutRequest xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}"><saml:Issuer>{}</saml:Issuer><saml:NameID{format}>{}</saml:NameID>{index}</samlp:LogoutRequest>"#,
            xml_time(now),
            escape(destination.as_str()),
            escape(sp_entity_id),
            escape(&subject.name_id),
        )
    }

    /// A `LogoutResponse` with status Success to the IdP's logout request.
    pub fn logout_response(
        &self,
        destination: &str,
        id: &str,
        in_response_to: &str,
        now: u64,
        sp_entity_id: &str,
    ) -> String {
        format!(
            r#"<samlp:LogoutResponse xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}" InResponseTo="{}"><saml:Issuer>{}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{STATUS_SUCCESS}"/></samlp:Status></samlp:LogoutResponse>"#,
            xml_time(now),
            escape(destination),
            escape(in_response_to),
            escape(sp_entity_id)
        )
    }

    /// Verifies an HTTP-Redirect message from the IdP (bindings §3.4.4.1): the signature over
    /// `SAMLRequest=…&RelayState=…&SigAlg=…` as they appear in the raw query, with an IdP key;
    /// returns the inflated XML.
    ///
    /// # Errors
    ///
    /// [`SamlFailure`] when unsigned, wrongly signed, or not decodable.
    pub fn verify_redirect(
        &self,
        idp: &Idp,
        raw_query: &str,
        param: &str,
    ) -> Result<String, SamlFailure> {
        let mut raw: Vec<(&str, &str)> = Vec::new();
        for part in raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            if raw.iter().any(|(seen, _)| *seen == k) {
                return Err(SamlFailure::Structure("duplicate_parameter"));
            }
            raw.push((k, v));
        }
        let get = |k: &str| raw.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let message = get(param).ok_or(SamlFailure::Malformed)?;
        let sig_alg = get("SigAlg").ok_or(SamlFailure::Signature("missing"))?;
        let signature = get("Signature").ok_or(SamlFailure::Signature("missing"))?;
        let mut signed = format!("{param}={message}");
        if let Some(r) = get("RelayState") {
            signed.push_str(&format!("&RelayState={r}"));
        }
        signed.push_str(&format!("&SigAlg={sig_alg}"));
        let decode = |v: &str| -> String {
            url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let sig = B64STD
            .decode(decode(signature).as_bytes())
            .map_err(|_| SamlFailure::Signature("signature"))?;
        let ok = match decode(sig_alg).as_str() {
            RSA_SHA256 => verify_with::<Sha256>(&idp.keys, signed.as_bytes(), &sig),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => {
                verify_with::<sha2::Sha512>(&idp.keys, signed.as_bytes(), &sig)
            }
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1" if self.allow_sha1 => {
                verify_with::<sha1::Sha1>(&idp.keys, signed.as_bytes(), &sig)
            }
            _ => return Err(SamlFailure::Signature("signature_algorithm")),
        };
        if !ok {
            return Err(SamlFailure::Signature("signature"));
        }
        let deflated = B64STD
            .decode(decode(message).as_bytes())
            .map_err(|_| SamlFailure::Malformed)?;
        let xml = miniz_oxide::inflate::decompress_to_vec_with_limit(&deflated, MAX_SLO_XML)
            .map_err(|_| SamlFailure::Malformed)?;
        String::from_utf8(xml).map_err(|_| SamlFailure::Malformed)
    }

    /// Checks an IdP `LogoutRequest` (SAML core §3.7.1): issuer, destination, time, and with
    /// `enveloped` (the HTTP-POST binding) its signature over the root; returns its `ID` and
    /// `SessionIndex` values, read from the tree whose signature was verified.
    ///
    /// # Errors
    ///
    /// [`SamlFailure`] when it is not a usable logout request for this SP.
    pub fn check_logout_request(
        &self,
        idp: &Idp,
        xml: &str,
        (sls_url, now): (&str, u64),
        enveloped: bool,
    ) -> Result<(String, Vec<String>), SamlFailure> {
        let doc = roxmltree::Document::parse_with_options(xml, parse_options())
            .map_err(|_| SamlFailure::Malformed)?;
        let root = message_root(&doc, "LogoutRequest")?;
        if enveloped {
            self.verify_root_signature(&doc, idp)?;
        }
        let id = root.attribute("ID").unwrap_or_default();
        let issuer = child(root, SAML_NS, "Issuer")?.ok_or(SamlFailure::Issuer)?;
        if text_only(issuer).as_deref().map(str::trim) != Some(idp.entity_id.as_str()) {
            return Err(SamlFailure::Issuer);
        }
        // A signed posted message names where it is for (bindings §3.5.5.2).
        match root.attribute("Destination") {
            Some(d) if d != sls_url => return Err(SamlFailure::NotForUs("destination")),
            None if enveloped => return Err(SamlFailure::NotForUs("destination")),
            _ => {}
        }
        if let Some(t) = root.attribute("NotOnOrAfter") {
            if parse_xml_time(t).is_none_or(|t| now >= t.saturating_add(self.leeway)) {
                return Err(SamlFailure::Expired);
            }
        }
        let mut indexes = Vec::new();
        for n in root.children().filter(|n| is(*n, SAMLP_NS, "SessionIndex")) {
            indexes.push(
                text_only(n)
                    .ok_or(SamlFailure::Structure("session_index"))?
                    .trim()
                    .to_owned(),
            );
        }
        Ok((id.to_owned(), indexes))
    }

    /// The enveloped signature of a posted logout message (bindings §3.5.5.2): exactly one
    /// `Signature` in the whole document, a child of the root, over the root by its `ID`,
    /// verified with an IdP key; every `ID` unique (no wrapping: the fields are then read from
    /// this very root).
    ///
    /// # Errors
    ///
    /// [`SamlFailure`] when unsigned, signed elsewhere or wrongly.
    pub fn verify_root_signature(
        &self,
        doc: &roxmltree::Document<'_>,
        idp: &Idp,
    ) -> Result<(), SamlFailure> {
        let root = doc.root_element();
        if !ids_unique(doc.descendants()) {
            return Err(SamlFailure::Structure("ids"));
        }
        let mut signatures = doc.descendants().filter(|n| is(*n, DS_NS, "Signature"));
        let signature = signatures.next().ok_or(SamlFailure::Signature("missing"))?;
        if signatures.next().is_some() || signature.parent() != Some(root) {
            return Err(SamlFailure::Structure("signature_position"));
        }
        xmldsig::verify_enveloped(root, signature, &idp.keys, self.allow_sha1)
            .map_err(|e| SamlFailure::Signature(e.reason()))
    }

    /// Checks the IdP's `LogoutResponse` posted back (SAML core §3.7.2, bindings §3.5): signed
    /// over its root by the IdP, from the IdP (`Issuer` required, SAML profiles §4.4.4.2), to
    /// this endpoint, answering `request_id`, status Success.
    ///
    /// # Errors
    ///
    /// [`SamlFailure`] naming the first check that failed.
    pub fn check_logout_response(
        &self,
        idp: &Idp,
        posted: &str,
        (sls_url, request_id): (&str, &str),
        now: u64,
    ) -> Result<(), SamlFailure> {
        let xml = decode_posted(posted, MAX_SLO_XML)?;
        let doc = roxmltree::Document::parse_with_options(&xml, parse_options())
            .map_err(|_| SamlFailure::Malformed)?;
        let root = message_root(&doc, "LogoutResponse")?;
        self.verify_root_signature(&doc, idp)?;
        child(root, SAML_NS, "Issuer")?.ok_or(SamlFailure::Issuer)?;
        let expect = Expect {
            sp_entity_id: "",
            acs_url: sls_url,
            request_id,
            now,
            idp: Some(idp),
        };
        check_response(root, true, idp, &expect)
    }
}

fn verify_with<D>(keys: &[RsaPublicKey], message: &[u8], sig: &[u8]) -> bool
where
    D: Digest + rsa::pkcs8::AssociatedOid,
{
    let hashed = D::digest(message);
    keys.iter()
        .any(|k| k.verify(Pkcs1v15Sign::new::<D>(), &hashed, sig).is_ok())
}
