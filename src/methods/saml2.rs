//! `type: saml2`: a SAML 2.0 service provider (Web Browser SSO profile). This module parses
//! the configuration and the IdP metadata, builds the `AuthnRequest` (HTTP-Redirect, optionally
//! signed, or HTTP-POST) and the SP metadata, and verifies the `Response` posted to the ACS
//! (providers.md §8.2, security.md I1-I14). The engine's `saml_flow` drives the requests.
//!
//! # Security
//!
//! The Response is parsed once (no DTD, node cap); the identity is read from the very nodes
//! whose signature was verified. Signatures may sit only on the Response or on its single
//! Assertion, must reference their parent by `ID`, and are checked with configured keys only.

use std::fmt;

use base64::Engine;
use roxmltree::Node;
use rsa::pkcs8::DecodePrivateKey;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ConfigError;
use crate::jose::B64STD;
use crate::mapping::RawMapping;
use crate::xmldsig::{self, is, DS_NS};

/// SAML 2.0 protocol namespace.
pub const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML 2.0 assertion namespace.
pub const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// SAML 2.0 metadata namespace.
pub const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// HTTP-Redirect binding.
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// HTTP-POST binding.
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const CM_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// The largest `SAMLResponse` accepted, decoded (security.md I12).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The largest ACS form body read (the base64 of [`MAX_RESPONSE_BYTES`] plus `RelayState`).
pub const MAX_ACS_BODY: usize = MAX_RESPONSE_BYTES / 3 * 4 + 8 * 1024;
/// The most XML nodes a Response or metadata document may have.
const NODES_LIMIT: u32 = 20_000;

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSaml2 {
    #[serde(default)]
    sp_entity_id: Option<String>,
    #[serde(default)]
    idp_metadata_xml: Option<String>,
    #[serde(default)]
    idp_metadata_url: Option<String>,
    #[serde(default = "default_metadata_ttl")]
    metadata_ttl_seconds: u64,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    #[serde(default)]
    idp_entity_id: Option<String>,
    #[serde(default)]
    idp_sso_url: Option<String>,
    #[serde(default)]
    idp_slo_url: Option<String>,
    #[serde(default = "default_true")]
    single_logout: bool,
    #[serde(default)]
    idp_certificates: Vec<String>,
    #[serde(default)]
    binding: Binding,
    #[serde(default)]
    sign_authn_request: bool,
    #[serde(default)]
    sp_private_key: Option<String>,
    #[serde(default)]
    sp_certificate: Option<String>,
    #[serde(default)]
    force_authn: bool,
    #[serde(default = "default_true")]
    allow_create: bool,
    #[serde(default)]
    name_id_format: Option<String>,
    #[serde(default)]
    want_assertions_signed: bool,
    #[serde(default)]
    principal: Principal,
    #[serde(default)]
    principal_attribute: Option<String>,
    #[serde(default = "default_leeway")]
    leeway_seconds: u64,
    #[serde(default)]
    insecure_allow_sha1: bool,
}

fn default_true() -> bool {
    true
}

fn default_leeway() -> u64 {
    180
}

fn default_metadata_ttl() -> u64 {
    3600
}

fn default_timeout() -> u64 {
    5000
}

/// How long fetched IdP metadata may still be used when refetching it fails.
pub const METADATA_MAX_STALE: u64 = 24 * 3600;
/// The largest IdP metadata document read.
pub const MAX_METADATA_BODY: usize = 256 * 1024;

/// How the `AuthnRequest` travels to the IdP.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    /// HTTP-POST: an auto-submitting form with the base64 request.
    Post,
    /// HTTP-Redirect: deflated, base64, in the query (optionally signed).
    #[default]
    Redirect,
}

/// Where the login comes from (Mobi's "principal type").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Principal {
    /// An attribute by `Name`.
    Attribute,
    /// An attribute by `FriendlyName`.
    FriendlyAttribute,
    /// The `NameID`.
    #[default]
    Subject,
}

/// The IdP as its metadata (or the configuration) describes it.
#[derive(Clone)]
pub struct Idp {
    /// `entityID`.
    pub entity_id: String,
    /// `SingleSignOnService` with the HTTP-Redirect binding.
    pub sso_redirect: Option<url::Url>,
    /// `SingleSignOnService` with the HTTP-POST binding.
    pub sso_post: Option<url::Url>,
    /// Signing keys (`KeyDescriptor use="signing"` or without `use`).
    pub keys: Vec<RsaPublicKey>,
    /// `SingleLogoutService` with the HTTP-Redirect binding (`Location`, `ResponseLocation`).
    pub slo_redirect: Option<(url::Url, Option<url::Url>)>,
}

impl fmt::Debug for Idp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Idp({}, {} keys)", self.entity_id, self.keys.len())
    }
}

/// The SP's private key: never printed.
#[derive(Clone)]
pub struct SpKey(RsaPrivateKey);

impl fmt::Debug for SpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpKey([redacted])")
    }
}

/// A configured SAML 2.0 method.
#[derive(Debug)]
pub struct Saml2 {
    sp_entity_id: Option<String>,
    /// The IdP as configured: complete without `metadata_url`; with it, only the configured
    /// additions (entity ID, SSO URL, certificates) to what the fetched metadata says.
    pub idp: Idp,
    /// Where the IdP metadata is fetched from (callout, cached in shared data).
    pub metadata_url: Option<url::Url>,
    /// How long fetched metadata is used before it is fetched again.
    pub metadata_ttl: u64,
    /// Callout deadline.
    pub timeout_ms: u64,
    /// Whether logout goes to the IdP's single logout and IdP logout requests are honoured.
    pub single_logout: bool,
    configured_entity_id: Option<String>,
    /// The `AuthnRequest` binding.
    pub binding: Binding,
    sign_key: Option<SpKey>,
    decrypt_key: Option<SpKey>,
    sp_certificate: Option<String>,
    force_authn: bool,
    allow_create: bool,
    name_id_format: Option<String>,
    want_assertions_signed: bool,
    principal: Principal,
    principal_attribute: Option<String>,
    leeway: u64,
    allow_sha1: bool,
}

/// Why a SAML Response was refused. Reasons are for logs and counters only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamlFailure {
    /// Not base64, not UTF-8, too large, not well-formed XML, or a DOCTYPE.
    Malformed,
    /// Not the shape the profile allows (root, version, IDs, counts, positions).
    Structure(&'static str),
    /// A signature failed, or none was where one is required.
    Signature(&'static str),
    /// The IdP said no (`StatusCode` other than Success).
    Status,
    /// `Destination`, `Recipient` or `Audience` is not this SP.
    NotForUs(&'static str),
    /// `InResponseTo` is not this browser's request.
    InResponseTo,
    /// `Issuer` is not the configured IdP.
    Issuer,
    /// Outside `NotBefore`/`NotOnOrAfter`, with leeway.
    Expired,
    /// The assertion was already used.
    Replayed,
    /// The principal (NameID or attribute) is missing, empty or not plain text.
    Principal,
    /// An `EncryptedAssertion` could not be decrypted (no detail, on purpose).
    Decrypt,
}

impl SamlFailure {
    /// A short stable name for logs and counters.
    pub fn reason(&self) -> String {
        match self {
            SamlFailure::Malformed => "malformed".into(),
            SamlFailure::Structure(w) => format!("structure_{w}"),
            SamlFailure::Signature(w) => format!("signature_{w}"),
            SamlFailure::Status => "status".into(),
            SamlFailure::NotForUs(w) => format!("not_for_us_{w}"),
            SamlFailure::InResponseTo => "in_response_to".into(),
            SamlFailure::Issuer => "issuer".into(),
            SamlFailure::Expired => "expired".into(),
            SamlFailure::Replayed => "replayed".into(),
            SamlFailure::Principal => "principal".into(),
            SamlFailure::Decrypt => "decrypt".into(),
        }
    }
}

/// What the verification of one Response expects.
#[derive(Clone, Debug)]
pub struct Expect<'a> {
    /// The SP's entity ID (the `Audience`).
    pub sp_entity_id: &'a str,
    /// The ACS URL (`Destination`, `Recipient`).
    pub acs_url: &'a str,
    /// The `AuthnRequest` ID this browser sent (`InResponseTo`).
    pub request_id: &'a str,
    /// Now, seconds since the epoch.
    pub now: u64,
    /// The IdP (from fetched metadata); `None`: the configured one.
    pub idp: Option<&'a Idp>,
}

/// A verified assertion: only what was covered by a verified signature.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// The assertion's `ID` (for the replay cache).
    pub assertion_id: String,
    /// Until when the assertion may be presented (for the replay cache).
    pub not_on_or_after: u64,
    /// `AuthnStatement/@SessionNotOnOrAfter`: the IdP's end for the session.
    pub session_not_on_or_after: Option<u64>,
    /// Claims: `name_id`, `name_id_format`, `session_index`, `principal`, and every attribute
    /// by `Name`, then by `FriendlyName` where that key is free.
    pub claims: Map<String, Value>,
}

impl Saml2 {
    /// Parses the method's configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawSaml2, at: &str) -> Result<Self, ConfigError> {
        let err = |field: &str, reason: String| ConfigError {
            path: format!("{at}.{field}"),
            reason,
        };
        let metadata_url = match &raw.idp_metadata_url {
            Some(u) => {
                if raw.idp_metadata_xml.is_some() {
                    return Err(err(
                        "idp_metadata_url",
                        "give idp_metadata_xml or idp_metadata_url, not both".into(),
                    ));
                }
                Some(parse_url(u).map_err(|e| err("idp_metadata_url", e))?)
            }
            None => None,
        };
        if raw.timeout_ms == 0 || raw.timeout_ms > 60_000 {
            return Err(err("timeout_ms", "must be between 1 and 60000".into()));
        }
        if !(60..=7 * 86_400).contains(&raw.metadata_ttl_seconds) {
            return Err(err(
                "metadata_ttl_seconds",
                "must be between 60 and 604800".into(),
            ));
        }
        let mut idp = match &raw.idp_metadata_xml {
            Some(xml) => parse_metadata(xml, raw.idp_entity_id.as_deref())
                .map_err(|e| err("idp_metadata_xml", e))?,
            None => Idp {
                entity_id: match (&raw.idp_entity_id, &metadata_url) {
                    (Some(id), _) => id.clone(),
                    (None, Some(_)) => String::new(),
                    (None, None) => {
                        return Err(err(
                            "idp_entity_id",
                            "required without idp_metadata_xml or idp_metadata_url".into(),
                        ))
                    }
                },
                sso_redirect: None,
                sso_post: None,
                keys: Vec::new(),
                slo_redirect: None,
            },
        };
        if let Some(u) = &raw.idp_slo_url {
            idp.slo_redirect = Some((parse_url(u).map_err(|e| err("idp_slo_url", e))?, None));
        }
        if let Some(u) = &raw.idp_sso_url {
            let url = parse_url(u).map_err(|e| err("idp_sso_url", e))?;
            idp.sso_redirect = Some(url.clone());
            idp.sso_post = Some(url);
        }
        for (i, pem) in raw.idp_certificates.iter().enumerate() {
            let key = xmldsig::certificate_der(pem)
                .and_then(|der| xmldsig::rsa_key_from_certificate(&der))
                .map_err(|e| err(&format!("idp_certificates[{i}]"), e))?;
            idp.keys.push(key);
        }
        if idp.keys.is_empty() && metadata_url.is_none() {
            return Err(err(
                "idp_certificates",
                "no IdP signing certificate (in metadata or configured): responses could not be verified"
                    .into(),
            ));
        }
        let sso = match raw.binding {
            Binding::Redirect => &idp.sso_redirect,
            Binding::Post => &idp.sso_post,
        };
        if sso.is_none() && metadata_url.is_none() {
            return Err(err(
                "binding",
                "the IdP has no SingleSignOnService for this binding".into(),
            ));
        }
        let sign_key = match &raw.sp_private_key {
            Some(pem) => Some(SpKey(
                RsaPrivateKey::from_pkcs8_pem(pem.trim())
                    .map_err(|_| err("sp_private_key", "not a PKCS#8 PEM RSA key".into()))?,
            )),
            None => None,
        };
        if raw.sign_authn_request && sign_key.is_none() {
            return Err(err(
                "sp_private_key",
                "required by sign_authn_request".into(),
            ));
        }
        if let Some(cert) = &raw.sp_certificate {
            xmldsig::certificate_der(cert)
                .and_then(|der| xmldsig::rsa_key_from_certificate(&der))
                .map_err(|e| err("sp_certificate", e))?;
        }
        if raw.principal != Principal::Subject && raw.principal_attribute.is_none() {
            return Err(err(
                "principal_attribute",
                "required when principal is ATTRIBUTE or FRIENDLY_ATTRIBUTE".into(),
            ));
        }
        if raw.leeway_seconds > 600 {
            return Err(err("leeway_seconds", "at most 600".into()));
        }
        if let Some(id) = &raw.sp_entity_id {
            if id.is_empty() || id.len() > 1024 {
                return Err(err("sp_entity_id", "must be 1-1024 characters".into()));
            }
        }
        Ok(Saml2 {
            sp_entity_id: raw.sp_entity_id,
            idp,
            metadata_url,
            metadata_ttl: raw.metadata_ttl_seconds,
            timeout_ms: raw.timeout_ms,
            single_logout: raw.single_logout,
            configured_entity_id: raw.idp_entity_id,
            binding: raw.binding,
            sign_key: if raw.sign_authn_request {
                sign_key.clone()
            } else {
                None
            },
            decrypt_key: sign_key,
            sp_certificate: raw
                .sp_certificate
                .as_deref()
                .and_then(|c| xmldsig::certificate_der(c).ok())
                .map(|der| B64STD.encode(der)),
            force_authn: raw.force_authn,
            allow_create: raw.allow_create,
            name_id_format: raw.name_id_format,
            want_assertions_signed: raw.want_assertions_signed,
            principal: raw.principal,
            principal_attribute: raw.principal_attribute,
            leeway: raw.leeway_seconds,
            allow_sha1: raw.insecure_allow_sha1,
        })
    }

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

    /// Every URL the method calls (for `sso-filter clusters`).
    pub fn outbound_urls(&self) -> Vec<url::Url> {
        self.metadata_url.iter().cloned().collect()
    }

    /// The mapping this method implies: the login is the principal.
    pub fn default_mapping(&self) -> RawMapping {
        let mut m = RawMapping::default();
        m.set_paths(Some("principal".into()), None, None);
        m
    }

    /// The SP entity ID: configured, else the metadata URL.
    pub fn sp_entity_id(&self, metadata_url: &str) -> String {
        self.sp_entity_id
            .clone()
            .unwrap_or_else(|| metadata_url.to_owned())
    }

    /// The `AuthnRequest` XML (SAML core §3.4.1).
    pub fn authn_request(
        &self,
        idp: &Idp,
        id: &str,
        issue_instant: u64,
        sp_entity_id: &str,
        acs: &str,
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
        if self.force_authn {
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
        if self.single_logout {
            if let Some(base) = acs.strip_suffix("/acs") {
                xml.push_str(&format!(
                    r#"<md:SingleLogoutService Binding="{BINDING_REDIRECT}" Location="{}/slo"/>"#,
                    escape(base)
                ));
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

    /// A `LogoutRequest` (SAML core §3.7.1) for a session's subject.
    pub fn logout_request(
        &self,
        idp: &Idp,
        id: &str,
        now: u64,
        sp_entity_id: &str,
        subject: &crate::session::SamlSubject,
    ) -> Option<String> {
        let (slo, _) = idp.slo_redirect.as_ref()?;
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
        Some(format!(
            r#"<samlp:LogoutRequest xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}"><saml:Issuer>{}</saml:Issuer><saml:NameID{format}>{}</saml:NameID>{index}</samlp:LogoutRequest>"#,
            xml_time(now),
            escape(slo.as_str()),
            escape(sp_entity_id),
            escape(&subject.name_id),
        ))
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

    /// Checks an IdP `LogoutRequest` (SAML core §3.7.1): issuer, destination, time; returns
    /// its `ID` and `SessionIndex` values.
    ///
    /// # Errors
    ///
    /// [`SamlFailure`] when it is not a usable logout request for this SP.
    pub fn check_logout_request(
        &self,
        idp: &Idp,
        xml: &str,
        sls_url: &str,
        now: u64,
    ) -> Result<(String, Vec<String>), SamlFailure> {
        let doc = roxmltree::Document::parse_with_options(xml, parse_options())
            .map_err(|_| SamlFailure::Malformed)?;
        let root = doc.root_element();
        if !is(root, SAMLP_NS, "LogoutRequest") || root.attribute("Version") != Some("2.0") {
            return Err(SamlFailure::Structure("root"));
        }
        let id = root
            .attribute("ID")
            .filter(|i| !i.is_empty())
            .ok_or(SamlFailure::Structure("ids"))?;
        let issuer = child(root, SAML_NS, "Issuer")?.ok_or(SamlFailure::Issuer)?;
        if text_only(issuer).as_deref().map(str::trim) != Some(idp.entity_id.as_str()) {
            return Err(SamlFailure::Issuer);
        }
        if root.attribute("Destination").is_some_and(|d| d != sls_url) {
            return Err(SamlFailure::NotForUs("destination"));
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
        let compact: String = saml_response
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        if compact.len() > MAX_RESPONSE_BYTES / 3 * 4 + 4 {
            return Err(SamlFailure::Malformed);
        }
        let bytes = B64STD
            .decode(compact.as_bytes())
            .map_err(|_| SamlFailure::Malformed)?;
        let xml = std::str::from_utf8(&bytes).map_err(|_| SamlFailure::Malformed)?;
        self.verify_xml(xml, expect)
    }

    /// Verifies a Response document (providers.md §8.2, security.md I1-I10).
    ///
    /// # Errors
    ///
    /// [`SamlFailure`] naming the first check that failed.
    pub fn verify_xml(&self, xml: &str, expect: &Expect<'_>) -> Result<Verified, SamlFailure> {
        let doc = roxmltree::Document::parse_with_options(xml, parse_options())
            .map_err(|_| SamlFailure::Malformed)?;
        let response = doc.root_element();
        if !is(response, SAMLP_NS, "Response") {
            return Err(SamlFailure::Structure("root"));
        }
        if response.attribute("Version") != Some("2.0") {
            return Err(SamlFailure::Structure("version"));
        }
        // IDs unique in the whole document (XSW5/6/8 duplicate the signed ID).
        let mut ids: Vec<&str> = doc
            .descendants()
            .filter_map(|n| n.attribute("ID"))
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != count || response.attribute("ID").is_none_or(str::is_empty) {
            return Err(SamlFailure::Structure("ids"));
        }
        // Exactly one assertion anywhere, and it is a direct child of the Response
        // (XSW1-4, 7, 8 and multiple-assertion confusion).
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
        let encrypted = is(assertion, SAML_NS, "EncryptedAssertion");
        // Signatures only as direct children of the Response or of that Assertion, one each.
        let signatures: Vec<Node<'_, '_>> = doc
            .descendants()
            .filter(|n| is(*n, DS_NS, "Signature"))
            .collect();
        let mut response_sig = None;
        let mut assertion_sig = None;
        for sig in signatures {
            let slot = match sig.parent() {
                Some(p) if p == response => &mut response_sig,
                Some(p) if p == assertion => &mut assertion_sig,
                _ => return Err(SamlFailure::Structure("signature_position")),
            };
            if slot.replace(sig).is_some() {
                return Err(SamlFailure::Structure("signature_count"));
            }
        }
        if encrypted && assertion_sig.is_some() {
            return Err(SamlFailure::Structure("signature_position"));
        }
        if let Some(sig) = response_sig {
            self.check_signature(expect.idp.unwrap_or(&self.idp), response, sig)?;
        }
        if !encrypted {
            return self.finish(
                response,
                response_sig.is_some(),
                assertion,
                assertion_sig,
                expect,
            );
        }
        // EncryptedAssertion: decrypt with the SP key, parse the plaintext on its own (in the
        // namespace context of the EncryptedAssertion), and apply the same rules to it.
        let key = self
            .decrypt_key
            .as_ref()
            .ok_or(SamlFailure::Structure("encrypted_without_key"))?;
        let data = only_child(assertion, crate::xmlenc::XENC_NS, "EncryptedData")?
            .ok_or(SamlFailure::Decrypt)?;
        let plain = crate::xmlenc::decrypt(data, &key.0).map_err(|_| SamlFailure::Decrypt)?;
        let plain = std::str::from_utf8(&plain).map_err(|_| SamlFailure::Decrypt)?;
        let mut decls = String::new();
        for ns in assertion.namespaces() {
            match ns.name() {
                Some("xml") => {}
                Some(p) => decls.push_str(&format!(r#" xmlns:{p}="{}""#, escape(ns.uri()))),
                None => decls.push_str(&format!(r#" xmlns="{}""#, escape(ns.uri()))),
            }
        }
        let wrapped = format!("<sso-filter-decrypted{decls}>{plain}</sso-filter-decrypted>");
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
        let mut all_ids: Vec<&str> = doc
            .descendants()
            .chain(inner.descendants())
            .filter_map(|n| n.attribute("ID"))
            .collect();
        let count = all_ids.len();
        all_ids.sort_unstable();
        all_ids.dedup();
        if all_ids.len() != count {
            return Err(SamlFailure::Structure("ids"));
        }
        let mut inner_sig = None;
        for sig in inner.descendants().filter(|n| is(*n, DS_NS, "Signature")) {
            if sig.parent() != Some(decrypted) || inner_sig.replace(sig).is_some() {
                return Err(SamlFailure::Structure("signature_position"));
            }
        }
        self.finish(
            response,
            response_sig.is_some(),
            decrypted,
            inner_sig,
            expect,
        )
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

        // The Response.
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

        // The Assertion.
        if assertion.attribute("Version") != Some("2.0") {
            return Err(SamlFailure::Structure("assertion_version"));
        }
        let issuer = child(assertion, SAML_NS, "Issuer")?.ok_or(SamlFailure::Issuer)?;
        if text_only(issuer).as_deref().map(str::trim) != Some(idp.entity_id.as_str()) {
            return Err(SamlFailure::Issuer);
        }
        let now = expect.now;
        let leeway = self.leeway;
        let subject =
            child(assertion, SAML_NS, "Subject")?.ok_or(SamlFailure::Structure("subject"))?;
        let name_id = child(subject, SAML_NS, "NameID")?;
        // At least one bearer confirmation for this ACS and this request, in time.
        let mut confirmed_until = None;
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
            if ok {
                confirmed_until = until;
                break;
            }
        }
        let Some(confirmed_until) = confirmed_until else {
            return Err(SamlFailure::NotForUs("subject_confirmation"));
        };
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
        let authn = only_child(assertion, SAML_NS, "AuthnStatement")?
            .ok_or(SamlFailure::Structure("authn_statement"))?;

        let mut claims = Map::new();
        if let Some(n) = name_id {
            // A NameID qualified for another SP (`SPNameQualifier`, SAML core §2.2.2) was made
            // for that SP (ruby-saml's wrong_spnamequalifier; found by tests/corpora.rs).
            if n.attribute("SPNameQualifier")
                .is_some_and(|q| q != expect.sp_entity_id)
            {
                return Err(SamlFailure::NotForUs("sp_name_qualifier"));
            }
            let text = text_only(n).ok_or(SamlFailure::Principal)?;
            claims.insert("name_id".into(), Value::String(text.trim().to_owned()));
            if let Some(f) = n.attribute("Format") {
                claims.insert("name_id_format".into(), Value::String(f.to_owned()));
            }
        }
        if let Some(si) = authn.attribute("SessionIndex") {
            claims.insert("session_index".into(), Value::String(si.to_owned()));
        }
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
        let principal = match principal {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::Array(items)) => match items.as_slice() {
                [Value::String(s)] if !s.trim().is_empty() => s.trim().to_owned(),
                _ => return Err(SamlFailure::Principal),
            },
            _ => return Err(SamlFailure::Principal),
        };
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
}

fn parse_options<'a>() -> roxmltree::ParsingOptions<'a> {
    roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: NODES_LIMIT,
        ..roxmltree::ParsingOptions::default()
    }
}

/// The one child `{ns}local` of `node`, if any.
///
/// # Errors
///
/// [`SamlFailure::Structure`] when there are several.
fn child<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &str,
    local: &str,
) -> Result<Option<Node<'a, 'i>>, SamlFailure> {
    only_child(node, ns, local)
}

fn only_child<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &str,
    local: &str,
) -> Result<Option<Node<'a, 'i>>, SamlFailure> {
    let mut found = None;
    for c in node.children().filter(|n| is(*n, ns, local)) {
        if found.replace(c).is_some() {
            return Err(SamlFailure::Structure("duplicate_element"));
        }
    }
    Ok(found)
}

/// The text of an element made of text alone.
fn text_only(node: Node<'_, '_>) -> Option<String> {
    let mut text = String::new();
    for child in node.children() {
        if !child.is_text() {
            return None;
        }
        text.push_str(child.text().unwrap_or(""));
    }
    Some(text)
}

/// Parses IdP metadata (metadata §2.4.3): the `EntityDescriptor` with an
/// `IDPSSODescriptor` (the one named `entity_id` inside an `EntitiesDescriptor`).
///
/// # Errors
///
/// A message saying what is missing.
pub fn parse_metadata(xml: &str, entity_id: Option<&str>) -> Result<Idp, String> {
    let doc = roxmltree::Document::parse_with_options(
        xml,
        roxmltree::ParsingOptions {
            allow_dtd: false,
            nodes_limit: NODES_LIMIT,
            ..roxmltree::ParsingOptions::default()
        },
    )
    .map_err(|e| format!("not well-formed XML without DTD: {e}"))?;
    let candidates: Vec<Node<'_, '_>> = doc
        .descendants()
        .filter(|n| is(*n, MD_NS, "EntityDescriptor"))
        .filter(|n| n.children().any(|c| is(c, MD_NS, "IDPSSODescriptor")))
        .filter(|n| entity_id.is_none_or(|id| n.attribute("entityID") == Some(id)))
        .collect();
    let entity = match candidates.as_slice() {
        [one] => *one,
        [] => return Err("no IdP EntityDescriptor (IDPSSODescriptor) found".into()),
        _ => return Err("several IdPs in the metadata: set idp_entity_id".into()),
    };
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
    };
    for slo in descriptor
        .children()
        .filter(|c| is(*c, MD_NS, "SingleLogoutService"))
        .filter(|c| c.attribute("Binding") == Some(BINDING_REDIRECT))
    {
        if let Some(location) = slo.attribute("Location") {
            let response = slo
                .attribute("ResponseLocation")
                .map(parse_url)
                .transpose()?;
            idp.slo_redirect
                .get_or_insert((parse_url(location)?, response));
        }
    }
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
    Ok(idp)
}

fn parse_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http(s) URL with a host".into());
    }
    Ok(url)
}

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The largest inflated HTTP-Redirect message accepted (security.md I12: a deflate bomb stops
/// here).
const MAX_SLO_XML: usize = 64 * 1024;

fn verify_with<D>(keys: &[RsaPublicKey], message: &[u8], sig: &[u8]) -> bool
where
    D: Digest + rsa::pkcs8::AssociatedOid,
{
    let hashed = D::digest(message);
    keys.iter()
        .any(|k| k.verify(Pkcs1v15Sign::new::<D>(), &hashed, sig).is_ok())
}

/// A digest of a SAML `SessionIndex` for the logged-out list (the same list CAS uses).
pub fn session_id(session_index: &str) -> String {
    crate::methods::cas::ticket_id(&format!("saml:{session_index}"))
}

/// A request ID: `_` and 40 hex characters (SAML core §1.3.4: an xs:ID, unique).
pub fn request_id(random: &[u8]) -> String {
    let mut id = String::from("_");
    for b in random {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// `xs:dateTime` in UTC (`2026-01-01T00:00:00Z`) for seconds since the epoch.
pub fn xml_time(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses an `xs:dateTime` (`Z` or `±hh:mm`, optional fraction) to seconds since the epoch.
pub fn parse_xml_time(text: &str) -> Option<u64> {
    let text = text.trim();
    let (date, time) = text.split_once('T')?;
    let mut dp = date.splitn(3, '-');
    let y: i64 = dp.next()?.parse().ok()?;
    let m: u32 = dp.next()?.parse().ok()?;
    let d: u32 = dp.next()?.parse().ok()?;
    let (clock, offset) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0i64)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, off) = time.split_at(i);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (oh, om) = off.get(1..)?.split_once(':')?;
        (
            c,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    } else {
        (time, 0)
    };
    let clock = clock.split('.').next()?;
    let mut cp = clock.splitn(3, ':');
    let hh: i64 = cp.next()?.parse().ok()?;
    let mm: i64 = cp.next()?.parse().ok()?;
    let ss: i64 = cp.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset;
    u64::try_from(secs).ok()
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let m = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A digest of an assertion ID for the replay cache key.
pub fn replay_key(assertion_id: &str) -> String {
    let digest = Sha256::digest(assertion_id.as_bytes());
    format!(
        "sso:saml:seen:{}",
        crate::jose::B64URL.encode(digest.get(..18).unwrap_or_default())
    )
}

#[cfg(test)]
mod tests;
