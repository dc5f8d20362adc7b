//! SAML metadata: the IdP's read (metadata §2.4.3), the SP's written (metadata §2.4.4).

use roxmltree::Node;

use super::{
    parse_options, parse_url, Binding, Idp, Saml2, BINDING_POST, BINDING_REDIRECT, MD_NS, SAMLP_NS,
};
use crate::pages::escape;
use crate::xml::text_only;
use crate::xmldsig::{self, is, DS_NS};

/// Parses IdP metadata (metadata §2.4.3): the `EntityDescriptor` with an
/// `IDPSSODescriptor` (the one named `entity_id` inside an `EntitiesDescriptor`).
///
/// # Errors
///
/// A message saying what is missing.
pub fn parse_metadata(xml: &str, entity_id: Option<&str>) -> Result<Idp, String> {
    let doc = roxmltree::Document::parse_with_options(xml, parse_options())
        .map_err(|e| format!("not well-formed XML without DTD: {e}"))?;
    let entity = idp_entity(&doc, entity_id)?;
    let entity_id = entity
        .attribute("entityID")
        .ok_or("EntityDescriptor without entityID")?
        .to_owned();
    let descriptor = entity
        .children()
        .find(|c| is(*c, MD_NS, "IDPSSODescriptor"))
        .ok_or("no IDPSSODescriptor")?;
    let mut idp = Idp {
        entity_id,
        sso_redirect: None,
        sso_post: None,
        keys: Vec::new(),
        slo_redirect: None,
        slo_post: None,
    };
    read_slo(descriptor, &mut idp)?;
    read_keys(descriptor, &mut idp)?;
    read_sso(descriptor, &mut idp)?;
    Ok(idp)
}

/// The one IdP `EntityDescriptor` (named `entity_id` when given).
fn idp_entity<'a, 'i>(
    doc: &'a roxmltree::Document<'i>,
    entity_id: Option<&str>,
) -> Result<Node<'a, 'i>, String> {
    let candidates: Vec<Node<'_, '_>> = doc
        .descendants()
        .filter(|n| is(*n, MD_NS, "EntityDescriptor"))
        .filter(|n| n.children().any(|c| is(c, MD_NS, "IDPSSODescriptor")))
        .filter(|n| entity_id.is_none_or(|id| n.attribute("entityID") == Some(id)))
        .collect();
    match candidates.as_slice() {
        [one] => Ok(*one),
        [] => Err("no IdP EntityDescriptor (IDPSSODescriptor) found".into()),
        _ => Err("several IdPs in the metadata: set idp_entity_id".into()),
    }
}

/// The first `SingleLogoutService` of each binding we speak (`Location`, `ResponseLocation`).
fn read_slo(descriptor: Node<'_, '_>, idp: &mut Idp) -> Result<(), String> {
    for slo in descriptor
        .children()
        .filter(|c| is(*c, MD_NS, "SingleLogoutService"))
    {
        let slot = match slo.attribute("Binding") {
            Some(BINDING_REDIRECT) => &mut idp.slo_redirect,
            Some(BINDING_POST) => &mut idp.slo_post,
            _ => continue,
        };
        if let Some(location) = slo.attribute("Location") {
            let response = slo
                .attribute("ResponseLocation")
                .map(parse_url)
                .transpose()?;
            slot.get_or_insert((parse_url(location)?, response));
        }
    }
    Ok(())
}

/// The signing keys: certificates of `KeyDescriptor`s for signing or without `use`.
fn read_keys(descriptor: Node<'_, '_>, idp: &mut Idp) -> Result<(), String> {
    for kd in descriptor
        .children()
        .filter(|c| is(*c, MD_NS, "KeyDescriptor"))
    {
        if kd.attribute("use").is_some_and(|u| u != "signing") {
            continue;
        }
        for cert in kd
            .descendants()
            .filter(|n| is(*n, DS_NS, "X509Certificate"))
        {
            let text = text_only(cert).ok_or("X509Certificate is not plain text")?;
            let der = xmldsig::certificate_der(&text)?;
            idp.keys.push(xmldsig::rsa_key_from_certificate(&der)?);
        }
    }
    Ok(())
}

/// The first `SingleSignOnService` of each binding we speak.
fn read_sso(descriptor: Node<'_, '_>, idp: &mut Idp) -> Result<(), String> {
    for sso in descriptor
        .children()
        .filter(|c| is(*c, MD_NS, "SingleSignOnService"))
    {
        let Some(location) = sso.attribute("Location") else {
            continue;
        };
        let url = parse_url(location)?;
        match sso.attribute("Binding") {
            Some(BINDING_REDIRECT) => {
                idp.sso_redirect.get_or_insert(url);
            }
            Some(BINDING_POST) => {
                idp.sso_post.get_or_insert(url);
            }
            _ => {}
        }
    }
    Ok(())
}

impl Saml2 {
    /// The IdP from fetched metadata, with the configured additions (SSO URL, certificates)
    /// over it.
    ///
    /// # Errors
    ///
    /// A message when the metadata is unusable.
    pub fn idp_from_metadata(&self, xml: &str) -> Result<Idp, String> {
        let mut idp = parse_metadata(xml, self.configured_entity_id.as_deref())?;
        if let Some(u) = &self.idp.sso_redirect {
            idp.sso_redirect = Some(u.clone());
        }
        if let Some(u) = &self.idp.sso_post {
            idp.sso_post = Some(u.clone());
        }
        if let Some(u) = &self.idp.slo_redirect {
            idp.slo_redirect = Some(u.clone());
        }
        if let Some(u) = &self.idp.slo_post {
            idp.slo_post = Some(u.clone());
        }
        idp.keys.extend(self.idp.keys.iter().cloned());
        if idp.keys.is_empty() {
            return Err("no signing certificate in the IdP metadata".into());
        }
        let sso = match self.binding {
            Binding::Redirect => &idp.sso_redirect,
            Binding::Post => &idp.sso_post,
        };
        if sso.is_none() {
            return Err("no SingleSignOnService for the configured binding".into());
        }
        Ok(idp)
    }

    /// The SP metadata (metadata §2.4.4).
    pub fn sp_metadata(&self, sp_entity_id: &str, acs: &str) -> String {
        let mut xml = format!(
            r#"<md:EntityDescriptor xmlns:md="{MD_NS}" entityID="{}"><md:SPSSODescriptor AuthnRequestsSigned="{}" WantAssertionsSigned="{}" protocolSupportEnumeration="{SAMLP_NS}">"#,
            escape(sp_entity_id),
            self.sign_key.is_some(),
            self.want_assertions_signed
        );
        if let Some(cert) = &self.sp_certificate {
            for usage in ["signing", "encryption"] {
                xml.push_str(&format!(
                    r#"<md:KeyDescriptor use="{usage}"><ds:KeyInfo xmlns:ds="{DS_NS}"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"#
                ));
            }
        }
        // Schema order: KeyDescriptor, SingleLogoutService, NameIDFormat, ACS.
        // Both bindings at the one endpoint, the preferred one first.
        if self.single_logout {
            if let Some(base) = acs.strip_suffix("/acs") {
                let bindings = match self.slo_binding {
                    Binding::Redirect => [BINDING_REDIRECT, BINDING_POST],
                    Binding::Post => [BINDING_POST, BINDING_REDIRECT],
                };
                for binding in bindings {
                    xml.push_str(&format!(
                        r#"<md:SingleLogoutService Binding="{binding}" Location="{}/slo"/>"#,
                        escape(base)
                    ));
                }
            }
        }
        if let Some(f) = &self.name_id_format {
            xml.push_str(&format!("<md:NameIDFormat>{}</md:NameIDFormat>", escape(f)));
        }
        xml.push_str(&format!(
            r#"<md:AssertionConsumerService Binding="{BINDING_POST}" Location="{}" index="0" isDefault="true"/></md:SPSSODescriptor></md:EntityDescriptor>"#,
            escape(acs)
        ));
        xml
    }
}
