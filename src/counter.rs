//! The filter's counters: a closed set. Every metric name is built from fixed words and, for
//! the per-method counters, the name of a method in the configuration; nothing a request or an
//! identity provider sends becomes part of a name (security.md N3: an anonymous client must
//! not be able to define metrics, each of which Envoy keeps until it restarts). What the
//! client or the IdP said goes to the deny log line instead, sanitised and truncated.

use std::fmt;

/// One counter increment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Counter {
    /// `sso_deny.<code>`: a refusal, by its public code.
    Deny(&'static str),
    /// `sso_login_failure.<method>.<reason>`: a failed login of a configured method.
    LoginFailure(MethodLabel, &'static str),
    /// `sso_login_success.<method>`.
    LoginSuccess(MethodLabel),
    /// `sso_redirect_idp.<method>`: a browser sent to an identity provider.
    RedirectIdp(MethodLabel),
    /// `sso_redirect_login`: a navigation without a session sent to log in.
    RedirectLogin,
    /// `sso_unauthenticated`: an API request without a session refused with 401.
    Unauthenticated,
    /// `sso_logout`.
    Logout,
    /// `sso_slo.<method>`: a single logout from an identity provider handled.
    Slo(MethodLabel),
    /// `sso_refresh_success.<method>` / `sso_refresh_failure.<method>`.
    Refresh(MethodLabel, bool),
    /// `sso_store_full.<store>`: a bounded store had no room (the request was refused).
    StoreFull(&'static str),
    /// `sso_password_budget`: a password check refused because the budget was spent.
    PasswordBudget,
    /// `sso_org_sync_success.<method>` / `sso_org_sync_failure.<method>`: a department tree
    /// fetched and stored, or a fetch that failed (the log line says why).
    OrgSync(MethodLabel, bool),
    /// `sso_fleet.<event>`: the fleet store refused a request (`replay`, `logged_out`,
    /// `throttled`), failed (`unavailable`), was over its write budget (`busy`), or failed
    /// while the operator chose to serve sessions anyway (`served_without_store`).
    Fleet(&'static str),
}

/// The name of a configured method, as it may appear in a metric name. Built only by the
/// engine from its configuration ([`MethodLabel::unknown`] otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodLabel(String);

impl MethodLabel {
    /// The label of a method the configuration defines. `pub(crate)`: only the engine, which
    /// checks the name against its configuration, makes one.
    pub(crate) fn configured(name: &str) -> Self {
        MethodLabel(name.to_owned())
    }

    /// The label used when a name is not a configured method.
    pub fn unknown() -> Self {
        MethodLabel("unknown".to_owned())
    }

    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Counter {
    /// Whether this counter names a method, and which.
    pub fn method(&self) -> Option<&MethodLabel> {
        match self {
            Counter::LoginFailure(m, _)
            | Counter::LoginSuccess(m)
            | Counter::RedirectIdp(m)
            | Counter::Slo(m)
            | Counter::Refresh(m, _)
            | Counter::OrgSync(m, _) => Some(m),
            _ => None,
        }
    }

    /// The same counter with its method label replaced.
    pub(crate) fn relabel(self, label: MethodLabel) -> Self {
        match self {
            Counter::LoginFailure(_, r) => Counter::LoginFailure(label, r),
            Counter::LoginSuccess(_) => Counter::LoginSuccess(label),
            Counter::RedirectIdp(_) => Counter::RedirectIdp(label),
            Counter::Slo(_) => Counter::Slo(label),
            Counter::Refresh(_, ok) => Counter::Refresh(label, ok),
            Counter::OrgSync(_, ok) => Counter::OrgSync(label, ok),
            other => other,
        }
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Counter::Deny(code) => write!(f, "sso_deny.{code}"),
            Counter::LoginFailure(m, reason) => {
                write!(f, "sso_login_failure.{}.{reason}", m.as_str())
            }
            Counter::LoginSuccess(m) => write!(f, "sso_login_success.{}", m.as_str()),
            Counter::RedirectIdp(m) => write!(f, "sso_redirect_idp.{}", m.as_str()),
            Counter::RedirectLogin => f.write_str("sso_redirect_login"),
            Counter::Unauthenticated => f.write_str("sso_unauthenticated"),
            Counter::Logout => f.write_str("sso_logout"),
            Counter::Slo(m) => write!(f, "sso_slo.{}", m.as_str()),
            Counter::Refresh(m, true) => write!(f, "sso_refresh_success.{}", m.as_str()),
            Counter::Refresh(m, false) => write!(f, "sso_refresh_failure.{}", m.as_str()),
            Counter::StoreFull(store) => write!(f, "sso_store_full.{store}"),
            Counter::PasswordBudget => f.write_str("sso_password_budget"),
            Counter::OrgSync(m, true) => write!(f, "sso_org_sync_success.{}", m.as_str()),
            Counter::OrgSync(m, false) => write!(f, "sso_org_sync_failure.{}", m.as_str()),
            Counter::Fleet(event) => write!(f, "sso_fleet.{event}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fixed_words_and_method_labels() {
        let m = MethodLabel::configured("oidc");
        assert_eq!(
            Counter::LoginFailure(m.clone(), "refused").to_string(),
            "sso_login_failure.oidc.refused"
        );
        assert_eq!(
            Counter::Refresh(m, false).to_string(),
            "sso_refresh_failure.oidc"
        );
        assert_eq!(Counter::Deny("bad_path").to_string(), "sso_deny.bad_path");
    }
}
