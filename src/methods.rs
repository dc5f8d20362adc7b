//! Login methods. Each module has the same small surface: parse its configuration, recognise
//! its requests, and turn what the user or the IdP sends into an [`crate::identity::Identity`]
//! or a denial.

pub mod cas;
pub mod cn;
pub mod dingtalk;
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
    /// Built-in users (`type: local`).
    Local(local::Local),
    /// JWT request parameter or bearer token (`type: jwt`).
    Jwt(Box<jwt::Jwt>),
    /// OAuth2 / OpenID Connect authorization code (`type: oauth2`, `type: oidc`).
    OAuth2(Box<oauth2::OAuth2>),
    /// WeCom / Enterprise WeChat (`type: wecom`).
    Wecom(Box<wecom::Wecom>),
    /// DingTalk (`type: dingtalk`).
    DingTalk(Box<dingtalk::DingTalk>),
    /// Feishu / Lark (`type: lark`).
    Lark(Box<lark::Lark>),
    /// WeChat (`type: wechat`).
    Wechat(Box<wechat::Wechat>),
    /// Yunzhijia (`type: yunzhijia`).
    Yunzhijia(Box<yunzhijia::Yunzhijia>),
    /// Microsoft Teams tab SSO (`type: teams`).
    Teams(Box<teams::Teams>),
    /// The login form checked against an LDAP directory (`type: ldap`).
    Ldap(Box<ldap::Ldap>),
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
            MethodKind::Local(_) => "local",
            MethodKind::Jwt(_) => "jwt",
            MethodKind::OAuth2(o) if o.oidc => "oidc",
            MethodKind::OAuth2(_) => "oauth2",
            MethodKind::Wecom(_) => "wecom",
            MethodKind::DingTalk(_) => "dingtalk",
            MethodKind::Lark(_) => "lark",
            MethodKind::Wechat(_) => "wechat",
            MethodKind::Yunzhijia(_) => "yunzhijia",
            MethodKind::Teams(_) => "teams",
            MethodKind::Ldap(_) => "ldap",
            MethodKind::Login(l) => l.type_name(),
        }
    }

    /// Whether this is one of the app-token providers driven by `engine::cn_flow`.
    pub fn is_cn(&self) -> bool {
        matches!(
            self,
            MethodKind::Wecom(_)
                | MethodKind::DingTalk(_)
                | MethodKind::Lark(_)
                | MethodKind::Wechat(_)
                | MethodKind::Yunzhijia(_)
                | MethodKind::Teams(_)
        )
    }

    /// The callback path of a redirect method: `Some(None)` for the default
    /// `{prefix}/callback/{method}`, `None` for methods without a callback.
    pub fn callback_path(&self) -> Option<Option<&str>> {
        use crate::methods::cn::Provider;
        match self {
            MethodKind::OAuth2(o) => Some(o.callback_path.as_deref()),
            MethodKind::Wecom(w) => Some(w.callback_path()),
            MethodKind::DingTalk(d) => Some(d.callback_path()),
            MethodKind::Lark(l) => Some(l.callback_path()),
            MethodKind::Wechat(w) => Some(w.callback_path()),
            // The ticket arrives on the application's own URL: no callback.
            MethodKind::Yunzhijia(_) | MethodKind::Teams(_) => None,
            MethodKind::Login(l) => l.callback_path(),
            MethodKind::Local(_) | MethodKind::Jwt(_) | MethodKind::Ldap(_) => None,
        }
    }

    /// Mapping defaults the method's own fields imply (Mobi's user-info JSON paths).
    pub fn default_mapping(&self) -> crate::mapping::RawMapping {
        match self {
            MethodKind::OAuth2(o) => o.default_mapping.clone(),
            MethodKind::Wecom(_) => wecom::Wecom::default_mapping(),
            MethodKind::DingTalk(_) => dingtalk::DingTalk::default_mapping(),
            MethodKind::Lark(l) => l.default_mapping(),
            MethodKind::Wechat(_) => wechat::Wechat::default_mapping(),
            MethodKind::Yunzhijia(_) => yunzhijia::Yunzhijia::default_mapping(),
            MethodKind::Teams(_) => teams::Teams::default_mapping(),
            MethodKind::Ldap(l) => l.default_mapping.clone(),
            MethodKind::Local(_) | MethodKind::Jwt(_) => crate::mapping::RawMapping::default(),
            MethodKind::Login(l) => l.default_mapping(),
        }
    }

    /// Whether logging in needs the form at `login_page` (built-in users, LDAP).
    pub fn uses_form(&self) -> bool {
        match self {
            MethodKind::Local(_) | MethodKind::Ldap(_) => true,
            MethodKind::Login(l) => l.uses_form(),
            _ => false,
        }
    }

    /// URLs this method calls out to (for `sso-filter clusters`).
    pub fn outbound_urls(&self) -> Vec<url::Url> {
        match self {
            MethodKind::Local(_) | MethodKind::Jwt(_) | MethodKind::Ldap(_) => Vec::new(),
            MethodKind::OAuth2(o) => o.outbound_urls(),
            MethodKind::Wecom(w) => w.outbound_urls(),
            MethodKind::DingTalk(d) => d.outbound_urls(),
            MethodKind::Lark(l) => l.outbound_urls(),
            MethodKind::Wechat(w) => w.outbound_urls(),
            MethodKind::Yunzhijia(y) => y.outbound_urls(),
            MethodKind::Teams(t) => t.outbound_urls(),
            MethodKind::Login(l) => l.outbound_urls(),
        }
    }
}
