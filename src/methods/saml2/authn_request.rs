//! The `AuthnRequest` (SAML core §3.4.1) and how it travels: HTTP-Redirect (deflated, in the
//! query, optionally signed over the query) or HTTP-POST (an auto-submitting form, optionally
//! signed inside the XML).

use super::binding::{post_form, redirect_message, sign_enveloped};
use super::{xml_time, Binding, Idp, Saml2, BINDING_POST, SAMLP_NS, SAML_NS};
use crate::http::Response;
use crate::pages::escape;

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
        redirect_message(
            sso,
            ("SAMLRequest", xml),
            Some(relay_state),
            self.sign_key.as_ref(),
        )
    }

    /// The `AuthnRequest` with an enveloped XML signature right after its `Issuer` (bindings
    /// §3.5.4.1: the HTTP-POST binding signs inside the XML), when the SP signs; unchanged
    /// otherwise.
    ///
    /// # Errors
    ///
    /// A message when the XML does not parse back or signing fails.
    pub fn sign_post_request(&self, xml: &str, id: &str) -> Result<String, &'static str> {
        match &self.sign_key {
            Some(key) => sign_enveloped(xml, id, key),
            None => Ok(xml.to_owned()),
        }
    }

    /// The HTTP-POST binding page: a form that submits itself to the IdP (bindings §3.5).
    ///
    /// # Errors
    ///
    /// A message when the IdP has no HTTP-POST `SingleSignOnService`.
    pub fn post_page(
        &self,
        idp: &Idp,
        xml: &str,
        relay_state: &str,
    ) -> Result<Response, &'static str> {
        let action = idp.sso_post.as_ref().ok_or("no post endpoint")?;
        Ok(post_form(
            action,
            ("SAMLRequest", xml),
            Some(relay_state),
            "Signing in",
        ))
    }
}
