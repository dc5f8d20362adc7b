//! Login methods. Each module has the same small surface: parse its configuration, recognise
//! its requests, and turn what the user or the IdP sends into an [`crate::identity::Identity`]
//! or a denial.

pub mod jwt;
pub mod local;
pub mod oauth2;

/// A configured method's own settings.
#[derive(Debug)]
pub enum MethodKind {
    /// Built-in users (`type: local`).
    Local(local::Local),
    /// JWT request parameter or bearer token (`type: jwt`).
    Jwt(Box<jwt::Jwt>),
    /// OAuth2 / OpenID Connect authorization code (`type: oauth2`, `type: oidc`).
    OAuth2(Box<oauth2::OAuth2>),
}

impl MethodKind {
    /// The configuration `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            MethodKind::Local(_) => "local",
            MethodKind::Jwt(_) => "jwt",
            MethodKind::OAuth2(o) if o.oidc => "oidc",
            MethodKind::OAuth2(_) => "oauth2",
        }
    }

    /// Mapping defaults the method's own fields imply (Mobi's user-info JSON paths).
    pub fn default_mapping(&self) -> crate::mapping::RawMapping {
        match self {
            MethodKind::OAuth2(o) => o.default_mapping.clone(),
            MethodKind::Local(_) | MethodKind::Jwt(_) => crate::mapping::RawMapping::default(),
        }
    }

    /// URLs this method calls out to (for `sso-filter clusters`).
    pub fn outbound_urls(&self) -> Vec<url::Url> {
        match self {
            MethodKind::Local(_) | MethodKind::Jwt(_) => Vec::new(),
            MethodKind::OAuth2(o) => o.outbound_urls(),
        }
    }
}
