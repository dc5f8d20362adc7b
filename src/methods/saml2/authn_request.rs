//! The `AuthnRequest` (SAML core §3.4.1) and how it travels: HTTP-Redirect (deflated, in the
//! query, optionally signed over the query) or HTTP-POST (an auto-submitting form, optionally
//! signed inside the XML).

use base64::Engine;
use rsa::Pkcs1v15Sign;
use sha2::{Digest, Sha256};

use super::{xml_time, Binding, Idp, Saml2, SpKey, BINDING_POST, RSA_SHA256, SAMLP_NS, SAML_NS};
use crate::jose::B64STD;
use crate::pages::escape;
use crate::xmldsig::{self, DS_NS};

impl Saml2 {
    /// The `AuthnRequest` XML (SAML core §3.4.1).
    pub fn authn_request(
        &self,
        idp: &Idp,
        id: &str,
        issue_instant: u64,
        (sp_entity_id, acs): (&str, &str),
        passive: bool,
    ) -> String {
        let destination = match self.binding {
            Binding::Redirect => idp.sso_redirect.as_ref(),
            Binding::Post => idp.sso_post.as_ref(),
        }
        .map(url::Url::as_str)
        .unwrap_or("");
        let mut xml = format!(
            r#"<samlp:AuthnRequest xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}" AssertionConsumerServiceURL="{}" ProtocolBinding="{BINDING_POST}""#,
            xml_time(issue_instant),
            escape(destination),
            escape(acs)
        );
        // A reload must not show the IdP's pages: IsPassive, and never ForceAuthn with it.
        if passive {
            xml.push_str(r#" IsPassive="true""#);
        } else if self.force_authn {
            xml.push_str(r#" ForceAuthn="true""#);
        }
        xml.push_str(&format!(
            "><saml:Issuer>{}</saml:Issuer>",
            escape(sp_entity_id)
        ));
        xml.push_str("<samlp:NameIDPolicy");
        if let Some(f) = &self.name_id_format {
            xml.push_str(&format!(r#" Format="{}""#, escape(f)));
        }
        xml.push_str(&format!(
            r#" AllowCreate="{}"/></samlp:AuthnRequest>"#,
            self.allow_create
        ));
        xml
    }

    /// The HTTP-Redirect URL for a request (bindings §3.4.4), signed when configured: the
    /// signature covers `SAMLRequest=…&RelayState=…&SigAlg=…` exactly as sent.
    ///
    /// # Errors
    ///
    /// A message when signing fails.
    pub fn redirect_url(
        &self,
        idp: &Idp,
        xml: &str,
        relay_state: &str,
    ) -> Result<String, &'static str> {
        let sso = idp.sso_redirect.as_ref().ok_or("no redirect endpoint")?;
        self.redirect_message(sso, "SAMLRequest", xml, Some(relay_state))
    }

    /// A message by the HTTP-Redirect binding to `endpoint` (`param` is `SAMLRequest` or
    /// `SAMLResponse`), signed when the SP signs.
    ///
    /// # Errors
    ///
    /// A message when signing fails.
    pub fn redirect_message(
        &self,
        endpoint: &url::Url,
        param: &str,
        xml: &str,
        relay_state: Option<&str>,
    ) -> Result<String, &'static str> {
        let sso = endpoint;
        let deflated = miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6);
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        let mut query = format!("{param}={}", enc(&B64STD.encode(deflated)));
        if let Some(r) = relay_state {
            query.push_str(&format!("&RelayState={}", enc(r)));
        }
        if let Some(SpKey(key)) = &self.sign_key {
            query.push_str(&format!("&SigAlg={}", enc(RSA_SHA256)));
            let hashed = Sha256::digest(query.as_bytes());
            let sig = key
                .sign(Pkcs1v15Sign::new::<Sha256>(), &hashed)
                .map_err(|_| "signing failed")?;
            query.push_str(&format!("&Signature={}", enc(&B64STD.encode(sig))));
        }
        let sep = if sso.query().is_some() { '&' } else { '?' };
        Ok(format!("{sso}{sep}{query}"))
    }

    /// The `AuthnRequest` with an enveloped XML signature right after its `Issuer` (bindings
    /// §3.5.4.1: the HTTP-POST binding signs inside the XML), when the SP signs; unchanged
    /// otherwise. Exclusive c14n, RSA-SHA256, SHA-256 digest, the same shape the ACS accepts.
    ///
    /// # Errors
    ///
    /// A message when the XML does not parse back or signing fails.
    pub fn sign_post_request(&self, xml: &str, id: &str) -> Result<String, &'static str> {
        let Some(SpKey(key)) = &self.sign_key else {
            return Ok(xml.to_owned());
        };
        let doc = roxmltree::Document::parse(xml).map_err(|_| "request does not parse")?;
        let canonical =
            xmldsig::c14n::exclusive(doc.root_element(), None, &[]).map_err(|_| "c14n")?;
        let digest = B64STD.encode(Sha256::digest(&canonical));
        let signed_info = format!(
            r##"<ds:SignedInfo xmlns:ds="{DS_NS}"><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{RSA_SHA256}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>"##
        );
        let info_doc =
            roxmltree::Document::parse(&signed_info).map_err(|_| "SignedInfo does not parse")?;
        let info_c14n =
            xmldsig::c14n::exclusive(info_doc.root_element(), None, &[]).map_err(|_| "c14n")?;
        let value = key
            .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&info_c14n))
            .map_err(|_| "signing failed")?;
        let signature = format!(
            r#"<ds:Signature xmlns:ds="{DS_NS}">{signed_info}<ds:SignatureValue>{}</ds:SignatureValue></ds:Signature>"#,
            B64STD.encode(value)
        );
        let at = xml
            .find("</saml:Issuer>")
            .map(|i| i + "</saml:Issuer>".len())
            .ok_or("no Issuer")?;
        let (head, tail) = xml.split_at(at);
        Ok(format!("{head}{signature}{tail}"))
    }

    /// The HTTP-POST binding page: a form that submits itself to the IdP (bindings §3.5).
    pub fn post_page(&self, idp: &Idp, xml: &str, relay_state: &str) -> String {
        let action = idp.sso_post.as_ref().map(url::Url::as_str).unwrap_or("");
        format!(
            r#"<!doctype html><html><head><meta charset="utf-8"><title>Signing in</title></head><body onload="document.forms[0].submit()"><form method="post" action="{}"><input type="hidden" name="SAMLRequest" value="{}"><input type="hidden" name="RelayState" value="{}"><noscript><button type="submit">Continue</button></noscript></form></body></html>"#,
            escape(action),
            B64STD.encode(xml.as_bytes()),
            escape(relay_state)
        )
    }
}
