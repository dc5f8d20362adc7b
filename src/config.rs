//! The filter's configuration: one JSON document (DESIGN.md §3), parsed once and strictly into
//! typed values. Unknown fields are errors; every error names its JSON path and the reason, so
//! Envoy refuses a bad configuration at load and `sso-filter validate` prints the same words.
//! Nothing on the request path re-checks configuration.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::assertion::{AssertionSigner, RawAssertion};
use crate::error::parse_at;
pub use crate::error::ConfigError;
use crate::identity::IdentityHeaders;
use crate::login::LoginMethod;
pub use crate::login::Method;
use crate::mapping::RawMapping;
use crate::session::{Cookies, SameSite};

mod fields;
mod page;

use fields::{
    check_headers, check_path, check_token, parse_client_ip_header, parse_origin,
    parse_public_paths, parse_session,
};

/// The configuration as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    base_url: String,
    #[serde(default = "default_prefix")]
    prefix: String,
    #[serde(default = "default_login_page")]
    login_page: String,
    #[serde(default)]
    login_page_title: Option<Value>,
    #[serde(default)]
    login_page_logo: Option<String>,
    #[serde(default = "default_method_param")]
    method_param: String,
    #[serde(default)]
    default_method: Option<String>,
    #[serde(default = "default_tenant_params")]
    tenant_params: Vec<String>,
    #[serde(default)]
    public_paths: Vec<String>,
    session: RawSession,
    #[serde(default)]
    identity_headers: IdentityHeaders,
    #[serde(default)]
    assertion: Option<RawAssertion>,
    #[serde(default)]
    mapping: RawMapping,
    methods: Map<String, Value>,
    #[serde(default)]
    tenants: BTreeMap<String, RawTenant>,
    #[serde(default)]
    cluster_names: ClusterNames,
    #[serde(default)]
    limits: crate::store::Limits,
    #[serde(default)]
    store: Option<Value>,
    #[serde(default)]
    client_ip_header: Option<String>,
}

/// How callouts name the proxy cluster of an IdP endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterNames {
    /// `sso_<host>_<port>`, the clusters `sso-filter clusters` prints (plain Envoy).
    #[default]
    Sso,
    /// `outbound|<port>||<host>`, the clusters Istio creates for a `ServiceEntry`.
    Istio,
}

impl ClusterNames {
    /// The cluster name for an endpoint URL.
    pub fn name(self, url: &url::Url) -> String {
        match self {
            ClusterNames::Sso => crate::http::cluster_name(url),
            ClusterNames::Istio => format!(
                "outbound|{}||{}",
                url.port_or_known_default().unwrap_or(0),
                url.host_str().unwrap_or_default()
            ),
        }
    }
}

fn default_prefix() -> String {
    "/sso".into()
}

fn default_login_page() -> String {
    "/login".into()
}

fn default_method_param() -> String {
    "activeAuth".into()
}

fn default_tenant_params() -> Vec<String> {
    vec!["tenantCode".into(), "tenantId".into()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSession {
    #[serde(default = "default_cookie")]
    cookie: String,
    keys: Vec<String>,
    #[serde(default = "default_ttl")]
    ttl_seconds: u64,
    #[serde(default)]
    secure: Option<bool>,
    #[serde(default = "default_same_site")]
    same_site: SameSite,
    #[serde(default)]
    partitioned: bool,
    #[serde(default)]
    expiry_claim: Option<String>,
}

fn default_cookie() -> String {
    "sso_session".into()
}

fn default_ttl() -> u64 {
    8 * 3600
}

fn default_same_site() -> SameSite {
    SameSite::Lax
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    default_method: Option<String>,
    #[serde(default)]
    methods: Map<String, Value>,
    #[serde(default)]
    mapping: RawMapping,
}

/// The parsed configuration.
#[derive(Debug)]
pub struct Config {
    /// `scheme://host[:port]` of `base_url`, no trailing slash.
    pub origin: String,
    /// Prefix of the filter's own endpoints (`/sso`).
    pub prefix: String,
    /// Path of the built-in login form.
    pub login_page: String,
    /// The title and logo of the sign-in pages.
    pub brand: crate::pages::login::Brand,
    /// Query parameter that names the method (`activeAuth`).
    pub method_param: String,
    /// Query parameters that name a tenant (`tenantCode`, `tenantId`).
    pub tenant_params: Vec<String>,
    /// Public paths: exact, or prefixes when they end with `/`.
    pub public_paths: Vec<String>,
    /// Session cookie policy.
    pub cookies: Cookies,
    /// Header names of the identity.
    pub headers: IdentityHeaders,
    /// The signed identity assertion, when configured.
    pub assertion: Option<AssertionSigner>,
    /// Every header a client must not send (the identity headers and the assertion header),
    /// as back ends read them (`identity::canonical_header`), worked out once.
    pub spoofable: Vec<String>,
    /// Methods and defaults without a tenant.
    pub global: Scope,
    /// Tenant scopes by tenant code.
    pub tenants: BTreeMap<String, Scope>,
    /// Redirect-flow callback paths and the method name each belongs to.
    pub callbacks: BTreeMap<String, String>,
    /// How callouts name clusters.
    pub cluster_names: ClusterNames,
    /// Bounds of the stores and the password budget.
    pub limits: crate::store::Limits,
    /// Where single use, logouts and the lockout are kept: this process, or etcd for the
    /// whole fleet.
    pub store: crate::store::StoreConfig,
    /// A header set by a trusted front proxy that carries the client address (its last
    /// comma-separated value is used); `None`: the connection's peer address.
    pub client_ip_header: Option<String>,
}

/// The methods available in one scope (global or a tenant) with their effective mappings.
#[derive(Debug)]
pub struct Scope {
    /// The tenant, for tenant scopes.
    pub tenant: Option<TenantInfo>,
    /// The method used when the request does not name one.
    pub default_method: Option<String>,
    /// Methods by name.
    pub methods: BTreeMap<String, Method>,
    /// Methods configured with `enabled: false`: not offered, their endpoints refuse, and the
    /// sessions they issued end at their next request.
    pub disabled: BTreeMap<String, Method>,
}

/// A tenant's identity.
#[derive(Clone, Debug)]
pub struct TenantInfo {
    /// Tenant code (the key in `tenants`).
    pub code: String,
    /// Tenant id (matched by `tenantId`).
    pub id: Option<String>,
    /// Display name.
    pub name: Option<String>,
}

impl Config {
    /// Parses and checks a configuration document.
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] found.
    pub fn from_json(text: &[u8]) -> Result<Self, ConfigError> {
        let value: Value = serde_json::from_slice(text)
            .map_err(|e| ConfigError::at("", format!("not JSON: {e}")))?;
        if !value.is_object() {
            return Err(ConfigError::at("", "must be a JSON object"));
        }
        let raw: RawConfig = parse_at(value, "")?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> Result<Self, ConfigError> {
        let (origin, https) = parse_origin(&raw.base_url)?;
        let prefix = check_path("prefix", &raw.prefix)?;
        if prefix == "/" || prefix.ends_with('/') {
            return Err(ConfigError::at("prefix", "must not be / or end with /"));
        }
        let login_page = check_path("login_page", &raw.login_page)?;
        let brand = page::brand(raw.login_page_title, raw.login_page_logo, &origin)?;
        check_token("method_param", &raw.method_param)?;
        for (i, p) in raw.tenant_params.iter().enumerate() {
            check_token(&format!("tenant_params[{i}]"), p)?;
        }
        let public_paths = parse_public_paths(&raw.public_paths, &prefix, &login_page)?;
        let mut cookies = parse_session(raw.session, https)?;
        let assertion = check_headers(&raw.identity_headers, raw.assertion, &origin)?;
        let (global, tenants) = build_scopes(
            raw.methods,
            raw.default_method,
            raw.mapping,
            raw.tenants,
            cookies.expiry_claim.as_deref(),
        )?;
        cookies.cross_site_flows = std::iter::once(&global)
            .chain(tenants.values())
            .flat_map(|s| s.methods.values().chain(s.disabled.values()))
            .any(|m| m.imp.returns_by_cross_site_post());
        let callbacks = collect_callbacks(&global, &tenants, &prefix, &login_page, &public_paths)?;
        raw.limits
            .check()
            .map_err(|(path, reason)| ConfigError::at(path, reason))?;
        let client_ip_header = parse_client_ip_header(raw.client_ip_header)?;
        let store = match raw.store {
            None => crate::store::StoreConfig::Local,
            Some(v) => crate::store::fleet::parse(v)
                .map_err(|(path, reason)| ConfigError::at(path, reason))?,
        };
        // The assertion header is stripped whether or not assertions are configured: an
        // upstream that verifies assertions must never see one the client made.
        let assertion_header = assertion
            .as_ref()
            .map_or(crate::assertion::DEFAULT_HEADER, |a| a.header());
        let spoofable = raw
            .identity_headers
            .all()
            .iter()
            .copied()
            .chain(std::iter::once(assertion_header))
            .map(crate::identity::canonical_header)
            .collect();
        Ok(Config {
            limits: raw.limits,
            store,
            spoofable,
            client_ip_header,
            cluster_names: raw.cluster_names,
            callbacks,
            origin,
            prefix,
            login_page,
            brand,
            method_param: raw.method_param,
            tenant_params: raw.tenant_params,
            public_paths,
            cookies,
            headers: raw.identity_headers,
            assertion,
            global,
            tenants,
        })
    }

    /// A method by name: the global one, else the first tenant's of that name (callback paths
    /// are shared by every scope's method of one name).
    pub fn method_anywhere(&self, name: &str) -> Option<&Method> {
        std::iter::once(&self.global)
            .chain(self.tenants.values())
            .find_map(|s| s.methods.get(name))
    }

    /// What is valid but will not work as an operator probably expects, with the JSON path:
    /// printed by `sso-filter validate` and logged by Envoy at load.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let scopes = std::iter::once((String::new(), &self.global)).chain(
            self.tenants
                .iter()
                .map(|(code, scope)| (format!("tenants.{code}."), scope)),
        );
        for (at, scope) in scopes {
            for m in scope.methods.values() {
                out.extend(m.imp.warnings(&format!("{at}methods.{}", m.name)));
                if m.imp.returns_by_cross_site_post() && !self.cookies.secure {
                    out.push(format!(
                        "{at}methods.{}: the IdP posts the login back cross-site, and with \
                         session.secure false browsers (Chromium) do not send the flow cookie \
                         with that post, so logins end in login_expired; serve base_url over \
                         https",
                        m.name
                    ));
                }
                for (field, path) in m.mapping.paths().filter(|(_, p)| p.ambiguous()) {
                    out.push(format!(
                        "{at}methods.{}.mapping.{field}: {:?} is read as the claim of exactly \
                         that name when the IdP sends one, else as a dotted path; write \
                         \"$['{}']\" for the name only",
                        m.name,
                        path.source(),
                        path.source()
                    ));
                }
            }
        }
        out
    }

    /// A one-line summary for `sso-filter validate`.
    pub fn summary(&self) -> String {
        let methods: Vec<String> = self
            .global
            .methods
            .values()
            .map(|m| format!("{} ({})", m.name, m.imp.type_name()))
            .collect();
        let off: Vec<String> = self
            .global
            .disabled
            .values()
            .map(|m| format!("{} ({})", m.name, m.imp.type_name()))
            .collect();
        let off = if off.is_empty() {
            String::new()
        } else {
            format!("; switched off: {}", off.join(", "))
        };
        let store = match self.store.etcd() {
            None => "local (this process)".to_owned(),
            Some(e) => format!("etcd {} prefix {}", e.url, e.prefix),
        };
        format!(
            "ok: {} method(s): {}{off}; default: {}; {} tenant(s); store: {store}",
            methods.len(),
            methods.join(", "),
            self.global
                .default_method
                .as_deref()
                .unwrap_or("(chooser page)"),
            self.tenants.len()
        )
    }

    /// The names of the methods that need a byte stream to their server (`type: ldap`), in
    /// every scope: hosts without sockets refuse a configuration that has one.
    pub fn stream_methods(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for scope in std::iter::once(&self.global).chain(self.tenants.values()) {
            for m in scope.methods.values() {
                if m.imp.needs_stream() && !out.contains(&m.name) {
                    out.push(m.name.clone());
                }
            }
        }
        out
    }

    /// Every (method path, outbound URL) the configuration calls out to.
    pub fn outbound_urls(&self) -> Vec<(String, url::Url)> {
        let mut out = Vec::new();
        for scope in std::iter::once(&self.global).chain(self.tenants.values()) {
            for m in scope.methods.values() {
                for u in m.imp.outbound_urls() {
                    if !out.iter().any(|(_, seen): &(String, url::Url)| *seen == u) {
                        out.push((m.name.clone(), u));
                    }
                }
            }
        }
        if let Some(etcd) = self.store.etcd() {
            if let Ok(u) = url::Url::parse(&etcd.url) {
                out.push(("store".to_owned(), u));
            }
        }
        out
    }
}

/// A method as parsed, before scoping (its own raw mapping kept for overlaying).
struct ParsedMethod {
    name: String,
    label: Option<crate::pages::lang::Text>,
    imp: Arc<dyn LoginMethod>,
    mapping: RawMapping,
    at: String,
    enabled: bool,
    /// `Some(Some(claim))`: sync on with that claim; `Some(None)`: off; `None`: as
    /// `session.expiry_claim`.
    expiry_sync: Option<Option<String>>,
}

fn parse_methods(raw: &Map<String, Value>, at: &str) -> Result<Vec<ParsedMethod>, ConfigError> {
    let mut out = Vec::new();
    for (name, value) in raw {
        let here = format!("{at}.{name}");
        check_token(&here, name)?;
        let Value::Object(mut fields) = value.clone() else {
            return Err(ConfigError::at(here, "must be an object"));
        };
        let kind = match fields.remove("type") {
            Some(Value::String(t)) => t,
            Some(_) => return Err(ConfigError::at(format!("{here}.type"), "must be a string")),
            None => {
                return Err(ConfigError::at(
                    format!("{here}.type"),
                    format!(
                        "missing (one of: {})",
                        crate::methods::type_names().join(", ")
                    ),
                ))
            }
        };
        let label = fields
            .remove("label")
            .map(|l| page::text(l, &format!("{here}.label")))
            .transpose()?;
        let mapping: RawMapping = match fields.remove("mapping") {
            Some(m) => parse_at(m, &format!("{here}.mapping"))?,
            None => RawMapping::default(),
        };
        // Mobi's enable/disable of an identity source, JumpServer's checkbox: configured, off.
        let enabled = match fields.remove("enabled") {
            None => true,
            Some(Value::Bool(b)) => b,
            Some(_) => {
                return Err(ConfigError::at(
                    format!("{here}.enabled"),
                    "must be true or false",
                ))
            }
        };
        let expiry_sync = expiry_sync(&mut fields, &here)?;
        let fields = Value::Object(fields);
        let imp = crate::methods::from_config(&kind, fields, &here)?;
        out.push(ParsedMethod {
            name: name.clone(),
            label,
            imp,
            mapping,
            at: here,
            enabled,
            expiry_sync,
        });
    }
    Ok(out)
}

/// The seeds' per-method session expiry sync: `session_expiry_sync` (on or off) and
/// `session_expiry_claim` (default `exp`), taken out of a method's fields.
fn expiry_sync(
    fields: &mut Map<String, Value>,
    here: &str,
) -> Result<Option<Option<String>>, ConfigError> {
    let on = match fields.remove("session_expiry_sync") {
        None => None,
        Some(Value::Bool(b)) => Some(b),
        Some(_) => {
            return Err(ConfigError::at(
                format!("{here}.session_expiry_sync"),
                "must be true or false",
            ))
        }
    };
    let claim = match fields.remove("session_expiry_claim") {
        None => None,
        Some(Value::String(c)) if !c.trim().is_empty() => Some(c),
        Some(_) => {
            return Err(ConfigError::at(
                format!("{here}.session_expiry_claim"),
                "must be a claim name",
            ))
        }
    };
    match (on, claim) {
        (Some(true), claim) => Ok(Some(Some(claim.unwrap_or_else(|| "exp".into())))),
        (Some(false), None) => Ok(Some(None)),
        (None, Some(_)) | (Some(false), Some(_)) => Err(ConfigError::at(
            format!("{here}.session_expiry_claim"),
            "needs session_expiry_sync: true",
        )),
        (None, None) => Ok(None),
    }
}

fn build_scope(
    tenant: Option<TenantInfo>,
    default_method: Option<String>,
    global: &[ParsedMethod],
    own: &[ParsedMethod],
    mapping: &RawMapping,
    at: &str,
    expiry_claim: Option<&str>,
) -> Result<Scope, ConfigError> {
    let mut methods = BTreeMap::new();
    let mut disabled = BTreeMap::new();
    // A tenant's own definition of a name replaces the global one (and may switch it off).
    for m in global
        .iter()
        .filter(|g| !own.iter().any(|o| o.name == g.name))
        .chain(own)
    {
        let effective = mapping
            .overlay(&m.imp.default_mapping())
            .overlay(&m.mapping)
            .compile(&format!("{}.mapping", m.at))
            .map_err(|(path, reason)| ConfigError::at(path, reason))?;
        let method = Method {
            name: m.name.clone(),
            label: m.label.clone(),
            imp: Arc::clone(&m.imp),
            mapping: Arc::new(effective),
            expiry_claim: m
                .expiry_sync
                .clone()
                .unwrap_or_else(|| expiry_claim.map(str::to_owned)),
        };
        if m.enabled {
            methods.insert(m.name.clone(), method);
        } else {
            disabled.insert(m.name.clone(), method);
        }
    }
    let default_at = if at.is_empty() {
        "default_method".to_owned()
    } else {
        format!("{at}.default_method")
    };
    let default_method = match default_method {
        Some(d) if disabled.contains_key(&d) => {
            return Err(ConfigError::at(
                default_at,
                format!("{d:?} is switched off (enabled: false)"),
            ))
        }
        Some(d) if !methods.contains_key(&d) => {
            return Err(ConfigError::at(
                default_at,
                format!(
                    "{d:?} is not a configured method (have: {})",
                    methods.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ))
        }
        Some(d) => Some(d),
        None if methods.len() == 1 => methods.keys().next().cloned(),
        None => None,
    };
    Ok(Scope {
        tenant,
        default_method,
        methods,
        disabled,
    })
}

/// The global scope and the tenant scopes, each with its methods and effective mappings.
fn build_scopes(
    methods: Map<String, Value>,
    default_method: Option<String>,
    mapping: RawMapping,
    raw_tenants: BTreeMap<String, RawTenant>,
    expiry_claim: Option<&str>,
) -> Result<(Scope, BTreeMap<String, Scope>), ConfigError> {
    let global_methods = parse_methods(&methods, "methods")?;
    if global_methods.is_empty() && raw_tenants.values().all(|t| t.methods.is_empty()) {
        return Err(ConfigError::at(
            "methods",
            "at least one login method is required",
        ));
    }
    let global = build_scope(
        None,
        default_method,
        &global_methods,
        &[],
        &mapping,
        "",
        expiry_claim,
    )?;

    let mut tenants = BTreeMap::new();
    for (code, t) in raw_tenants {
        let at = format!("tenants.{code}");
        let own = parse_methods(&t.methods, &format!("{at}.methods"))?;
        let tenant_mapping = mapping.overlay(&t.mapping);
        let info = TenantInfo {
            code: code.clone(),
            id: t.id,
            name: t.name,
        };
        let default = t.default_method.or_else(|| global.default_method.clone());
        let scope = build_scope(
            Some(info),
            default,
            &global_methods,
            &own,
            &tenant_mapping,
            &at,
            expiry_claim,
        )?;
        tenants.insert(code, scope);
    }
    Ok((global, tenants))
}

/// The callback path of every redirect method: unique, one type per path, clear of the login
/// page and the public paths.
fn collect_callbacks(
    global: &Scope,
    tenants: &BTreeMap<String, Scope>,
    prefix: &str,
    login_page: &str,
    public_paths: &[String],
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut callbacks: BTreeMap<String, String> = BTreeMap::new();
    let mut callback_kinds: BTreeMap<String, &'static str> = BTreeMap::new();
    for scope in std::iter::once(global).chain(tenants.values()) {
        // A switched-off method keeps its callback path, so its callbacks are refused (404)
        // rather than taken for a protected page.
        for m in scope.methods.values().chain(scope.disabled.values()) {
            if let Some(custom) = m.imp.callback_path() {
                let path =
                    custom.map_or_else(|| format!("{prefix}/callback/{}", m.name), str::to_owned);
                // Matched on the path; a registered query stays part of the redirect URI.
                let path = path.split('?').next().unwrap_or_default().to_owned();
                if path == login_page
                    || public_paths
                        .iter()
                        .any(|p| path.starts_with(p.as_str()) || *p == path)
                {
                    return Err(ConfigError::at(
                        format!("methods.{}.callback_path", m.name),
                        "overlaps the login page or a public path",
                    ));
                }
                let kind = m.imp.type_name();
                if callback_kinds
                    .insert(path.clone(), kind)
                    .is_some_and(|k| k != kind)
                {
                    return Err(ConfigError::at(
                        format!("methods.{}.type", m.name),
                        "a method of this name has another type in another scope",
                    ));
                }
                match callbacks.get(&path) {
                    Some(other) if *other != m.name => {
                        return Err(ConfigError::at(
                            format!("methods.{}.callback_path", m.name),
                            format!("{path} is already the callback of {other}"),
                        ))
                    }
                    _ => {
                        callbacks.insert(path, m.name.clone());
                    }
                }
            }
        }
    }
    Ok(callbacks)
}

#[cfg(test)]
mod tests;
