//! The configuration of a SAML method: what the operator writes ([`RawSaml2`]) checked and
//! turned into a [`Saml2`].

use base64::Engine;
use rsa::pkcs8::DecodePrivateKey;
use rsa::RsaPrivateKey;
use serde::Deserialize;

use super::{parse_url, Binding, Idp, Principal, Saml2, SpKey};
use crate::error::ConfigError;
use crate::jose::B64STD;
use crate::mapping::RawMapping;
use crate::xmldsig;

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
    single_logout_binding: Binding,
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
    #[serde(default)]
    short_relay_state: bool,
    #[serde(default)]
    reload_user: bool,
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

/// A configuration error at `{at}.{field}`.
fn field_error(at: &str, field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        path: format!("{at}.{field}"),
        reason: reason.into(),
    }
}

impl RawSaml2 {
    /// The metadata URL, if given (and then without the inline metadata).
    fn metadata_url(&self, at: &str) -> Result<Option<url::Url>, ConfigError> {
        let Some(u) = &self.idp_metadata_url else {
            return Ok(None);
        };
        if self.idp_metadata_xml.is_some() {
            return Err(field_error(
                at,
                "idp_metadata_url",
                "give idp_metadata_xml or idp_metadata_url, not both",
            ));
        }
        parse_url(u)
            .map(Some)
            .map_err(|e| field_error(at, "idp_metadata_url", e))
    }

    /// The callout deadline and the metadata lifetime within their bounds.
    fn check_times(&self, at: &str) -> Result<(), ConfigError> {
        if self.timeout_ms == 0 || self.timeout_ms > 60_000 {
            return Err(field_error(at, "timeout_ms", "must be between 1 and 60000"));
        }
        if !(60..=7 * 86_400).contains(&self.metadata_ttl_seconds) {
            return Err(field_error(
                at,
                "metadata_ttl_seconds",
                "must be between 60 and 604800",
            ));
        }
        Ok(())
    }

    /// The IdP as configured: the inline metadata or the entity ID, with the configured
    /// endpoints and certificates over it. With a metadata URL it may still lack keys and
    /// endpoints (the fetched metadata brings them).
    fn configured_idp(&self, at: &str, fetched: bool) -> Result<Idp, ConfigError> {
        let mut idp = match &self.idp_metadata_xml {
            Some(xml) => super::parse_metadata(xml, self.idp_entity_id.as_deref())
                .map_err(|e| field_error(at, "idp_metadata_xml", e))?,
            None => Idp {
                entity_id: match (&self.idp_entity_id, fetched) {
                    (Some(id), _) => id.clone(),
                    (None, true) => String::new(),
                    (None, false) => {
                        return Err(field_error(
                            at,
                            "idp_entity_id",
                            "required without idp_metadata_xml or idp_metadata_url",
                        ))
                    }
                },
                sso_redirect: None,
                sso_post: None,
                keys: Vec::new(),
                slo_redirect: None,
                slo_post: None,
            },
        };
        if let Some(u) = &self.idp_slo_url {
            let url = parse_url(u).map_err(|e| field_error(at, "idp_slo_url", e))?;
            let slot = match self.single_logout_binding {
                Binding::Redirect => &mut idp.slo_redirect,
                Binding::Post => &mut idp.slo_post,
            };
            *slot = Some((url, None));
        }
        if let Some(u) = &self.idp_sso_url {
            let url = parse_url(u).map_err(|e| field_error(at, "idp_sso_url", e))?;
            idp.sso_redirect = Some(url.clone());
            idp.sso_post = Some(url);
        }
        for (i, pem) in self.idp_certificates.iter().enumerate() {
            let key = xmldsig::certificate_der(pem)
                .and_then(|der| xmldsig::rsa_key_from_certificate(&der))
                .map_err(|e| field_error(at, &format!("idp_certificates[{i}]"), e))?;
            idp.keys.push(key);
        }
        Ok(idp)
    }

    /// Without a metadata URL, the configured IdP must be complete: keys to verify with and
    /// a `SingleSignOnService` for the binding.
    fn check_idp_complete(&self, at: &str, idp: &Idp) -> Result<(), ConfigError> {
        if idp.keys.is_empty() {
            return Err(field_error(
                at,
                "idp_certificates",
                "no IdP signing certificate (in metadata or configured): responses could not be verified",
            ));
        }
        let sso = match self.binding {
            Binding::Redirect => &idp.sso_redirect,
            Binding::Post => &idp.sso_post,
        };
        if sso.is_none() {
            return Err(field_error(
                at,
                "binding",
                "the IdP has no SingleSignOnService for this binding",
            ));
        }
        Ok(())
    }

    /// The SP's private key (signs requests when asked to, always decrypts assertions).
    fn sp_key(&self, at: &str) -> Result<Option<SpKey>, ConfigError> {
        let key = match &self.sp_private_key {
            Some(pem) => Some(SpKey(RsaPrivateKey::from_pkcs8_pem(pem.trim()).map_err(
                |_| field_error(at, "sp_private_key", "not a PKCS#8 PEM RSA key"),
            )?)),
            None => None,
        };
        if self.sign_authn_request && key.is_none() {
            return Err(field_error(
                at,
                "sp_private_key",
                "required by sign_authn_request",
            ));
        }
        Ok(key)
    }

    /// The SP's own fields: certificate, principal, leeway, entity ID.
    fn check_sp(&self, at: &str) -> Result<(), ConfigError> {
        if let Some(cert) = &self.sp_certificate {
            xmldsig::certificate_der(cert)
                .and_then(|der| xmldsig::rsa_key_from_certificate(&der))
                .map_err(|e| field_error(at, "sp_certificate", e))?;
        }
        if self.principal == Principal::Subject
            && self.name_id_format.as_deref().map(name_id_format) == Some(TRANSIENT)
        {
            // A transient NameID changes at every login: as the login it would make a new user
            // each time (Mobi refuses the same pair).
            return Err(field_error(
                at,
                "principal",
                "SUBJECT cannot be the login with a TRANSIENT NameID policy; use ATTRIBUTE or \
                 FRIENDLY_ATTRIBUTE",
            ));
        }
        if self.principal != Principal::Subject && self.principal_attribute.is_none() {
            return Err(field_error(
                at,
                "principal_attribute",
                "required when principal is ATTRIBUTE or FRIENDLY_ATTRIBUTE",
            ));
        }
        if self.leeway_seconds > 600 {
            return Err(field_error(at, "leeway_seconds", "at most 600"));
        }
        if let Some(id) = &self.sp_entity_id {
            if id.is_empty() || id.len() > 1024 {
                return Err(field_error(at, "sp_entity_id", "must be 1-1024 characters"));
            }
        }
        Ok(())
    }
}

/// The transient NameID format.
const TRANSIENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient";

/// A NameID policy as Mobi names it (`TRANSIENT`, `PERSISTENT`, `EMAIL_ADDRESS`,
/// `UNSPECIFIED`, any case) or as a format URI (kept as written).
fn name_id_format(policy: &str) -> &str {
    match policy.to_ascii_uppercase().as_str() {
        "TRANSIENT" => TRANSIENT,
        "PERSISTENT" => "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
        "EMAIL_ADDRESS" | "EMAIL" => "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        "UNSPECIFIED" => "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
        _ => policy,
    }
}

impl Saml2 {
    /// Parses the method's configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawSaml2, at: &str) -> Result<Self, ConfigError> {
        let metadata_url = raw.metadata_url(at)?;
        raw.check_times(at)?;
        let idp = raw.configured_idp(at, metadata_url.is_some())?;
        if metadata_url.is_none() {
            raw.check_idp_complete(at, &idp)?;
        }
        let sign_key = raw.sp_key(at)?;
        raw.check_sp(at)?;
        Ok(Saml2 {
            sp_entity_id: raw.sp_entity_id,
            idp,
            metadata_url,
            metadata_ttl: raw.metadata_ttl_seconds,
            timeout_ms: raw.timeout_ms,
            single_logout: raw.single_logout,
            configured_entity_id: raw.idp_entity_id,
            binding: raw.binding,
            slo_binding: raw.single_logout_binding,
            sign_key: if raw.sign_authn_request {
                sign_key.clone()
            } else {
                None
            },
            sp_key: sign_key,
            sp_certificate: raw
                .sp_certificate
                .as_deref()
                .and_then(|c| xmldsig::certificate_der(c).ok())
                .map(|der| B64STD.encode(der)),
            force_authn: raw.force_authn,
            short_relay_state: raw.short_relay_state,
            reload_user: raw.reload_user,
            allow_create: raw.allow_create,
            name_id_format: raw
                .name_id_format
                .as_deref()
                .map(|f| name_id_format(f).to_owned()),
            want_assertions_signed: raw.want_assertions_signed,
            principal: raw.principal,
            principal_attribute: raw.principal_attribute,
            leeway: raw.leeway_seconds,
            allow_sha1: raw.insecure_allow_sha1,
        })
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
}
