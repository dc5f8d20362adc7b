//! Login methods. Each module has the same small surface: parse its configuration, recognise
//! its requests, and turn what the user or the IdP sends into an [`crate::identity::Identity`]
//! or a denial.

pub mod cas;
pub mod cn;
pub mod dingtalk;
pub mod form;
pub mod jwt;
pub mod lark;
pub mod ldap;
pub mod local;
pub mod oauth2;
pub mod saml2;
pub mod teams;
pub mod throttle;
pub mod wechat;
pub mod wecom;
pub mod yunzhijia;

/// A configured method's own settings.
#[derive(Debug)]
pub enum MethodKind {
    /// A method behind the [`crate::login::LoginMethod`] trait.
    Login(std::sync::Arc<dyn crate::login::LoginMethod>),
}

impl std::fmt::Debug for dyn crate::login::LoginMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LoginMethod({})", self.type_name())
    }
}

impl MethodKind {
    /// The configuration `type`.
    pub fn type_name(&self) -> &'static str {
        match self {
            MethodKind::Login(l) => l.type_name(),
        }
    }

    /// The callback path of a redirect method: `Some(None)` for the default
    /// `{prefix}/callback/{method}`, `None` for methods without a callback.
    pub fn callback_path(&self) -> Option<Option<&str>> {
        match self {
            MethodKind::Login(l) => l.callback_path(),
        }
    }

    /// Mapping defaults the method's own fields imply (Mobi's user-info JSON paths).
    pub fn default_mapping(&self) -> crate::mapping::RawMapping {
        match self {
            MethodKind::Login(l) => l.default_mapping(),
        }
    }

    /// Whether logging in needs the form at `login_page` (built-in users, LDAP).
    pub fn uses_form(&self) -> bool {
        match self {
            MethodKind::Login(l) => l.uses_form(),
            _ => false,
        }
    }

    /// URLs this method calls out to (for `sso-filter clusters`).
    pub fn outbound_urls(&self) -> Vec<url::Url> {
        match self {
            MethodKind::Login(l) => l.outbound_urls(),
        }
    }
}
