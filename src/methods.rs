//! Login methods. Each module has the same small surface: parse its configuration, recognise
//! its requests, and turn what the user or the IdP sends into an [`crate::identity::Identity`]
//! or a denial.

pub mod jwt;
pub mod local;

/// A configured method's own settings.
#[derive(Debug)]
pub enum MethodKind {
    /// Built-in users (`type: local`).
    Local(local::Local),
    /// JWT request parameter or bearer token (`type: jwt`).
    Jwt(jwt::Jwt),
}

impl MethodKind {
    /// The configuration `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            MethodKind::Local(_) => "local",
            MethodKind::Jwt(_) => "jwt",
        }
    }

    /// URLs this method calls out to (for `sso-filter clusters`).
    pub fn outbound_urls(&self) -> Vec<url::Url> {
        match self {
            MethodKind::Local(_) | MethodKind::Jwt(_) => Vec::new(),
        }
    }
}
