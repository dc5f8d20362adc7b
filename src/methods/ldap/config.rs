//! The method's configuration as written ([`RawLdap`]) and the checks that turn it into an
//! [`Ldap`]: kept apart from the conversation in `mod.rs` because nothing here runs after load.
//! Every check names the field it refuses, so `sso-filter validate` points at the line to fix.

use serde::Deserialize;

use super::{ber, fill, GroupSearch, Ldap, Lookup};
use crate::error::ConfigError;
use crate::http::Endpoint;
use crate::mapping::RawMapping;
use crate::methods::throttle::Throttle;

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLdap {
    #[serde(default)]
    protocol: Protocol,
    host: String,
    #[serde(default)]
    port: Option<u16>,
    #[serde(default)]
    bind_dn: Option<String>,
    #[serde(default)]
    bind_password: Option<String>,
    #[serde(default)]
    search_base: Option<String>,
    #[serde(default)]
    user_filter: Option<String>,
    #[serde(default)]
    user_dn_template: Option<String>,
    #[serde(default)]
    attributes: RawAttributes,
    #[serde(default)]
    group_search: Option<RawGroupSearch>,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
    #[serde(default = "default_max_failures")]
    max_failures: u32,
    #[serde(default = "default_lockout")]
    lockout_seconds: u64,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Protocol {
    #[default]
    Ldap,
    Ldaps,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAttributes {
    #[serde(default = "default_login_attr")]
    login: String,
    #[serde(default = "default_name_attr")]
    name: String,
    #[serde(default = "default_email_attr")]
    email: String,
    #[serde(default)]
    groups: Option<String>,
    #[serde(default)]
    extra: Vec<String>,
}

impl Default for RawAttributes {
    fn default() -> Self {
        RawAttributes {
            login: default_login_attr(),
            name: default_name_attr(),
            email: default_email_attr(),
            groups: None,
            extra: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroupSearch {
    base: String,
    #[serde(default = "default_group_filter")]
    filter: String,
    #[serde(default = "default_group_name")]
    name_attribute: String,
}

fn default_timeout() -> u64 {
    5000
}
fn default_max_failures() -> u32 {
    5
}
fn default_lockout() -> u64 {
    300
}
fn default_login_attr() -> String {
    "uid".into()
}
fn default_name_attr() -> String {
    "displayName".into()
}
fn default_email_attr() -> String {
    "mail".into()
}
fn default_group_filter() -> String {
    "(member={dn})".into()
}
fn default_group_name() -> String {
    "cn".into()
}

impl Ldap {
    /// Parses the method's configuration; `at` is its JSON path.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawLdap, at: &str) -> Result<Self, ConfigError> {
        let endpoint = endpoint(&raw.host, raw.protocol, raw.port, at)?;
        let service = service_account(raw.bind_dn, raw.bind_password, at)?;
        let lookup = Lookup::from_raw(raw.user_dn_template, raw.search_base, raw.user_filter, at)?;
        let groups = raw
            .group_search
            .map(|g| GroupSearch::from_raw(g, at))
            .transpose()?;
        let a = raw.attributes;
        a.check(at)?;
        if raw.timeout_ms == 0 || raw.timeout_ms > 60_000 {
            return Err(field_error(at, "timeout_ms", "must be between 1 and 60000"));
        }
        if raw.max_failures == 0 {
            return Err(field_error(at, "max_failures", "must be at least 1"));
        }
        if raw.lockout_seconds == 0 || raw.lockout_seconds > 86_400 {
            return Err(field_error(
                at,
                "lockout_seconds",
                "must be between 1 and 86400",
            ));
        }
        let default_mapping = a.default_mapping();
        let mut attributes = vec![a.login.clone(), a.name, a.email];
        attributes.extend(a.groups.clone());
        attributes.extend(a.extra);
        Ok(Ldap {
            endpoint,
            service,
            lookup,
            attributes,
            login_attr: a.login,
            groups_attr: a.groups,
            groups,
            timeout_ms: raw.timeout_ms,
            throttle: Throttle {
                max_failures: raw.max_failures,
                lockout: raw.lockout_seconds,
            },
            default_mapping,
        })
    }
}

/// A configuration error at `{at}.{field}`: every check of `from_raw` reports this way.
fn field_error(at: &str, field: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::at(format!("{at}.{field}"), reason)
}

/// The directory's address from `host`, `protocol` and `port` (389 for `ldap`, 636 for
/// `ldaps` when no port is given). A host with a path, query, user or space in it is refused,
/// so a URL pasted into `host` is an error at load rather than a name that never resolves.
fn endpoint(
    host: &str,
    protocol: Protocol,
    port: Option<u16>,
    at: &str,
) -> Result<Endpoint, ConfigError> {
    let host = host.trim().to_owned();
    if host.is_empty()
        || host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "/?#@".contains(c))
    {
        return Err(field_error(at, "host", "must be a host name or address"));
    }
    let tls = protocol == Protocol::Ldaps;
    let port = port.unwrap_or(if tls { 636 } else { 389 });
    if port == 0 {
        return Err(field_error(at, "port", "must be 1-65535"));
    }
    Ok(Endpoint { host, port, tls })
}

/// The service account (`bind_dn`, `bind_password`): both or neither, never empty, since an
/// empty simple bind is an anonymous bind that succeeds.
fn service_account(
    dn: Option<String>,
    password: Option<String>,
    at: &str,
) -> Result<Option<(String, String)>, ConfigError> {
    match (dn, password) {
        (Some(dn), Some(pw)) if !dn.is_empty() && !pw.is_empty() => Ok(Some((dn, pw))),
        (None, None) => Ok(None),
        _ => Err(field_error(
            at,
            "bind_password",
            "bind_dn and bind_password go together, neither empty",
        )),
    }
}

impl Lookup {
    /// How the user's entry is found: a direct bind with `user_dn_template`, or a search of
    /// `search_base` with `user_filter` (default `(uid={user})`); exactly one of the two. The
    /// filter is compiled once here so a broken one fails at load, not at the first login.
    fn from_raw(
        template: Option<String>,
        base: Option<String>,
        filter: Option<String>,
        at: &str,
    ) -> Result<Self, ConfigError> {
        match (template, base) {
            (Some(template), None) => {
                if filter.is_some() {
                    return Err(field_error(
                        at,
                        "user_filter",
                        "not used with user_dn_template (a direct bind)",
                    ));
                }
                if !template.contains("{user}") {
                    return Err(field_error(at, "user_dn_template", "must contain {user}"));
                }
                Ok(Lookup::Direct { template })
            }
            (None, Some(base)) => {
                let filter = filter.unwrap_or_else(|| "(uid={user})".into());
                if !filter.contains("{user}") {
                    return Err(field_error(at, "user_filter", "must contain {user}"));
                }
                ber::compile_filter(&fill(&filter, "x", "x"))
                    .map_err(|e| field_error(at, "user_filter", e))?;
                Ok(Lookup::Search { base, filter })
            }
            (Some(_), Some(_)) => Err(field_error(
                at,
                "user_dn_template",
                "either search_base (search, then bind) or user_dn_template (direct bind)",
            )),
            (None, None) => Err(field_error(
                at,
                "search_base",
                "missing (or user_dn_template for a direct bind)",
            )),
        }
    }
}

impl GroupSearch {
    /// `group_search`, its filter compiled once so a broken one fails at load.
    fn from_raw(raw: RawGroupSearch, at: &str) -> Result<Self, ConfigError> {
        ber::compile_filter(&fill(&raw.filter, "x", "x"))
            .map_err(|e| field_error(at, "group_search.filter", e))?;
        Ok(GroupSearch {
            base: raw.base,
            filter: raw.filter,
            name_attribute: raw.name_attribute,
        })
    }
}

impl RawAttributes {
    /// Refuses a name that is not an LDAP attribute description (letters, digits, `-`, `;`
    /// options), so nothing else reaches a search request's attribute list.
    fn check(&self, at: &str) -> Result<(), ConfigError> {
        for (field, name) in [
            ("login", &self.login),
            ("name", &self.name),
            ("email", &self.email),
        ]
        .into_iter()
        .chain(self.groups.iter().map(|g| ("groups", g)))
        .chain(self.extra.iter().map(|e| ("extra", e)))
        {
            let ok = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == ';');
            if !ok {
                return Err(field_error(
                    at,
                    &format!("attributes.{field}"),
                    format!("{name:?} is not an attribute name"),
                ));
            }
        }
        Ok(())
    }

    /// The mapping defaults these attributes imply: login, name and email from their claims,
    /// groups from the `groups` claim the conversation gathers.
    fn default_mapping(&self) -> RawMapping {
        let mut mapping = RawMapping::default();
        mapping.set_paths(
            Some(claim_path(&self.login)),
            Some(claim_path(&self.name)),
            Some(claim_path(&self.email)),
        );
        mapping.set_groups(Some("$['groups']".into()));
        mapping
    }
}

/// `$['name']`: a mapping path for an attribute, whatever characters it has.
fn claim_path(attr: &str) -> String {
    format!("$['{attr}']")
}
