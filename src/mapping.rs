//! The "general configuration" of the seeds: which claim becomes the login, the display name,
//! the roles, ... Paths are RFC 9535 JSONPath (`$.extattr.attrs[?@.name=='工号'].value`) or the
//! seeds' dotted form (`extattr.attrs[2].value`, `loginName`), compiled once at load by
//! `serde_json_path`.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value};
use serde_json_path::JsonPath;

use crate::identity::Identity;

/// A compiled claim path.
#[derive(Clone)]
pub struct ClaimPath {
    source: String,
    path: JsonPath,
    /// The top-level claim the path starts from, so that claim is not repeated as an attribute.
    top: Option<String>,
    /// A dotted source that would split (`urn:oid:0.9.2342.19200300.100.1.3`, `user.email`):
    /// a claim of exactly that name wins over the path, so attribute names with dots (SAML
    /// OIDs, LDAP and CAS attributes, JSON keys) are read as written.
    exact: Option<String>,
}

impl fmt::Debug for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClaimPath({})", self.source)
    }
}

impl ClaimPath {
    /// Compiles a JSONPath (starting with `$`) or a dotted path.
    ///
    /// # Errors
    ///
    /// A message saying why the path does not parse.
    pub fn parse(source: &str) -> Result<Self, String> {
        let source = source.trim();
        if source.is_empty() {
            return Err("empty path".into());
        }
        let jsonpath = if source.starts_with('$') {
            source.to_owned()
        } else {
            dotted_to_jsonpath(source)?
        };
        let path = JsonPath::parse(&jsonpath).map_err(|e| format!("not a JSONPath: {e}"))?;
        let exact =
            (!source.starts_with('$') && source.contains(['.', '['])).then(|| source.to_owned());
        Ok(ClaimPath {
            source: source.to_owned(),
            top: top_key(&jsonpath),
            path,
            exact,
        })
    }

    /// The claim a path reads by its exact name, when the claims have one of that name.
    fn exact_claim<'a>(&self, claims: &'a Value) -> Option<&'a Value> {
        claims.as_object()?.get(self.exact.as_deref()?)
    }

    /// Every value the path selects, arrays flattened one level. A claim named exactly as a
    /// dotted source is taken before the path is followed.
    pub fn values<'a>(&self, claims: &'a Value) -> Vec<&'a Value> {
        let mut out = Vec::new();
        let nodes = match self.exact_claim(claims) {
            Some(exact) => vec![exact],
            None => self.path.query(claims).all(),
        };
        for node in nodes {
            match node {
                Value::Array(items) => out.extend(items.iter()),
                other => out.push(other),
            }
        }
        out
    }

    /// The top-level claim this path consumed in `claims` (not repeated as an attribute).
    fn consumed<'a>(&'a self, claims: &Value) -> Option<&'a str> {
        match self.exact_claim(claims) {
            Some(_) => self.exact.as_deref(),
            None => self.top.as_deref(),
        }
    }

    /// Whether the source is a dotted name that could also be one attribute's exact name (an
    /// OID or URN: a segment of digits only, or a `:`), for `validate`'s warning.
    pub fn ambiguous(&self) -> bool {
        self.exact.as_deref().is_some_and(|s| {
            s.contains(':')
                || s.split('.')
                    .any(|seg| !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()))
        })
    }

    /// The path as configured.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The first selected value as text (numbers and booleans printed, arrays' first item).
    pub fn text(&self, claims: &Value) -> Option<String> {
        self.values(claims).into_iter().find_map(scalar_text)
    }

    /// Every selected value as text.
    pub fn texts(&self, claims: &Value) -> Vec<String> {
        self.values(claims)
            .into_iter()
            .filter_map(scalar_text)
            .collect()
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    /// The largest integer every f64 holds exactly (2^53).
    const EXACT: f64 = 9_007_199_254_740_992.0;
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        // A whole number beyond 64 bits arrives as a float that has lost its last digits:
        // two users' numeric IDs could read as one login. Such a value is no value (the
        // fuzzer found it: `mapping` regression).
        Value::Number(n) if !n.is_u64() && !n.is_i64() => n
            .as_f64()
            .filter(|f| f.is_finite() && (f.fract() != 0.0 || f.abs() < EXACT))
            .map(|_| n.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `extattr.attrs[2].value` → `$['extattr']['attrs'][2]['value']`.
fn dotted_to_jsonpath(dotted: &str) -> Result<String, String> {
    let mut out = String::from("$");
    for segment in dotted.split('.') {
        let (name, mut rest) = match segment.find('[') {
            Some(i) => (
                segment.get(..i).unwrap_or(""),
                segment.get(i..).unwrap_or(""),
            ),
            None => (segment, ""),
        };
        if name.is_empty() && rest.is_empty() {
            return Err(format!("empty segment in {dotted:?}"));
        }
        if !name.is_empty() {
            out.push_str("['");
            for c in name.chars() {
                if c == '\'' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push_str("']");
        }
        while !rest.is_empty() {
            let close = rest
                .find(']')
                .ok_or_else(|| format!("unclosed [ in {dotted:?}"))?;
            let index = rest.get(1..close).unwrap_or("");
            if index.parse::<i64>().is_err() && index != "*" {
                return Err(format!("index {index:?} in {dotted:?} is not a number"));
            }
            out.push('[');
            out.push_str(index);
            out.push(']');
            rest = rest.get(close + 1..).unwrap_or("");
        }
    }
    Ok(out)
}

/// The first name selector of a JSONPath (`$.a...`, `$['a']...`), if it starts with one.
fn top_key(jsonpath: &str) -> Option<String> {
    let rest = jsonpath.strip_prefix('$')?;
    if let Some(rest) = rest.strip_prefix("['") {
        let mut name = String::new();
        let mut chars = rest.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => name.push(chars.next()?),
                '\'' => return Some(name),
                c => name.push(c),
            }
        }
        return None;
    }
    let rest = rest.strip_prefix('.')?;
    let end = rest.find(['.', '[']).unwrap_or(rest.len());
    let name = rest.get(..end)?;
    (!name.is_empty() && name != "*").then(|| name.to_owned())
}

/// A rule that adds roles or groups when a claim has a value (`role_rules`).
#[derive(Clone, Debug)]
pub struct RoleRule {
    claim: ClaimPath,
    equals: String,
    roles: Vec<String>,
    groups: Vec<String>,
}

/// The mapping as written in configuration (each field optional so scopes can overlay). Every
/// field is a claim path except `platform_id`, a value (the seeds' 平台方 Id).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMapping {
    login: Option<String>,
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    roles: Option<String>,
    groups: Option<String>,
    org: Option<String>,
    tenant_code: Option<String>,
    tenant_name: Option<String>,
    /// The platform party's tenant code: a value, not a path.
    platform_id: Option<String>,
    default_roles: Option<Vec<String>>,
    role_rules: Option<Vec<RawRoleRule>>,
}

/// A role rule as written in configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoleRule {
    claim: String,
    equals: String,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
}

impl RawMapping {
    /// `self` with every field `over` sets replaced (method over tenant over global).
    pub fn overlay(&self, over: &RawMapping) -> RawMapping {
        RawMapping {
            login: over.login.clone().or_else(|| self.login.clone()),
            name: over.name.clone().or_else(|| self.name.clone()),
            email: over.email.clone().or_else(|| self.email.clone()),
            phone: over.phone.clone().or_else(|| self.phone.clone()),
            roles: over.roles.clone().or_else(|| self.roles.clone()),
            groups: over.groups.clone().or_else(|| self.groups.clone()),
            org: over.org.clone().or_else(|| self.org.clone()),
            tenant_code: over
                .tenant_code
                .clone()
                .or_else(|| self.tenant_code.clone()),
            tenant_name: over
                .tenant_name
                .clone()
                .or_else(|| self.tenant_name.clone()),
            platform_id: over
                .platform_id
                .clone()
                .or_else(|| self.platform_id.clone()),
            default_roles: over
                .default_roles
                .clone()
                .or_else(|| self.default_roles.clone()),
            role_rules: over.role_rules.clone().or_else(|| self.role_rules.clone()),
        }
    }

    /// Sets the login, name and email paths (Mobi's "user id / user name / e-mail path").
    pub fn set_paths(
        &mut self,
        login: Option<String>,
        name: Option<String>,
        email: Option<String>,
    ) {
        self.login = login;
        self.name = name;
        self.email = email;
    }

    /// A method's default paths (`login`, `name`, `email`, `phone`, `roles`, `groups`, `org`);
    /// other field names are ignored.
    pub fn defaults(pairs: &[(&str, &str)]) -> RawMapping {
        let mut m = RawMapping::default();
        for (field, path) in pairs {
            let slot = match *field {
                "login" => &mut m.login,
                "name" => &mut m.name,
                "email" => &mut m.email,
                "phone" => &mut m.phone,
                "roles" => &mut m.roles,
                "groups" => &mut m.groups,
                "org" => &mut m.org,
                _ => continue,
            };
            *slot = Some((*path).to_owned());
        }
        m
    }

    /// Sets the default groups path (a method's own default).
    pub fn set_groups(&mut self, groups: Option<String>) {
        self.groups = groups;
    }

    /// Compiles every path; `at` is the JSON path of this mapping for error messages.
    ///
    /// # Errors
    ///
    /// `(json path, reason)` of the first path that does not compile.
    pub fn compile(&self, at: &str) -> Result<Mapping, (String, String)> {
        let field =
            |name: &str, v: &Option<String>| -> Result<Option<ClaimPath>, (String, String)> {
                v.as_deref()
                    .map(ClaimPath::parse)
                    .transpose()
                    .map_err(|e| (format!("{at}.{name}"), e))
            };
        let mut rules = Vec::new();
        for (i, r) in self.role_rules.iter().flatten().enumerate() {
            let claim = ClaimPath::parse(&r.claim)
                .map_err(|e| (format!("{at}.role_rules[{i}].claim"), e))?;
            rules.push(RoleRule {
                claim,
                equals: r.equals.clone(),
                roles: r.roles.clone(),
                groups: r.groups.clone(),
            });
        }
        Ok(Mapping {
            // The seeds: "if there is no loginName mapping, `sub` is the user's identifier".
            login: field("login", &self.login)?.or_else(|| ClaimPath::parse("sub").ok()),
            name: field("name", &self.name)?,
            email: field("email", &self.email)?,
            phone: field("phone", &self.phone)?,
            roles: field("roles", &self.roles)?,
            groups: field("groups", &self.groups)?,
            org: field("org", &self.org)?,
            tenant_code: field("tenant_code", &self.tenant_code)?,
            tenant_name: field("tenant_name", &self.tenant_name)?,
            platform_id: self
                .platform_id
                .as_deref()
                .map(|v| platform_id(v).map_err(|e| (format!("{at}.platform_id"), e.to_owned())))
                .transpose()?,
            default_roles: self.default_roles.clone().unwrap_or_default(),
            role_rules: rules,
            watch: EmptyWatch::default(),
        })
    }
}

/// A compiled mapping.
#[derive(Clone, Debug)]
pub struct Mapping {
    login: Option<ClaimPath>,
    name: Option<ClaimPath>,
    email: Option<ClaimPath>,
    phone: Option<ClaimPath>,
    roles: Option<ClaimPath>,
    groups: Option<ClaimPath>,
    org: Option<ClaimPath>,
    tenant_code: Option<ClaimPath>,
    tenant_name: Option<ClaimPath>,
    /// The platform party's tenant code (a configured value).
    platform_id: Option<String>,
    default_roles: Vec<String>,
    role_rules: Vec<RoleRule>,
    watch: EmptyWatch,
}

/// How many logins in a row a configured field may come up empty, from the first login on,
/// before the log says so once: a field that never resolves is usually a wrong claim name.
const EMPTY_LOGINS_WARNED: u32 = 20;

/// Per field (in [`Mapping::paths`] order): logins so far that found nothing for it, or
/// `u32::MAX` once it resolved (never warned then).
#[derive(Debug, Default)]
struct EmptyWatch([std::sync::atomic::AtomicU32; 9]);

impl Clone for EmptyWatch {
    /// A copy starts counting afresh.
    fn clone(&self) -> Self {
        EmptyWatch::default()
    }
}

impl EmptyWatch {
    /// Records whether field `i` resolved in one login; `true` exactly once, when it has been
    /// empty for the first [`EMPTY_LOGINS_WARNED`] logins.
    fn empty_too_long(&self, i: usize, resolved: bool) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(count) = self.0.get(i) else {
            return false;
        };
        if resolved {
            count.store(u32::MAX, Relaxed);
            return false;
        }
        let before = count.load(Relaxed);
        if before == u32::MAX {
            return false;
        }
        count.store(before.saturating_add(1), Relaxed);
        before.saturating_add(1) == EMPTY_LOGINS_WARNED
    }
}

/// Claims every JWT carries for the protocol rather than about the user; never attributes.
/// Claims that describe the token rather than the user (RFC 7519 §4.1, OIDC Core §2); never
/// attributes.
const REGISTERED: [&str; 13] = [
    "exp",
    "nbf",
    "iat",
    "jti",
    "iss",
    "aud",
    "sub",
    "nonce",
    "at_hash",
    "c_hash",
    "azp",
    "auth_time",
    "sid",
];

impl Mapping {
    /// Every configured field and its path, by the field's configuration name.
    pub fn paths(&self) -> impl Iterator<Item = (&'static str, &ClaimPath)> {
        [
            ("login", &self.login),
            ("name", &self.name),
            ("email", &self.email),
            ("phone", &self.phone),
            ("roles", &self.roles),
            ("groups", &self.groups),
            ("org", &self.org),
            ("tenant_code", &self.tenant_code),
            ("tenant_name", &self.tenant_name),
        ]
        .into_iter()
        .filter_map(|(field, path)| path.as_ref().map(|p| (field, p)))
    }

    /// Builds an identity from a method's claims. Claims that no field consumed are kept as
    /// attributes. Returns `None` when no login can be found.
    pub fn apply(self: &Arc<Self>, claims: &Map<String, Value>, method: &str) -> Option<Identity> {
        let root = Value::Object(claims.clone());
        let login = self.login.as_ref()?.text(&root)?;
        let text = |p: &Option<ClaimPath>| p.as_ref().and_then(|p| p.text(&root));
        let mut roles = self
            .roles
            .as_ref()
            .map(|p| p.texts(&root))
            .unwrap_or_default();
        let mut groups = self
            .groups
            .as_ref()
            .map(|p| p.texts(&root))
            .unwrap_or_default();
        for rule in &self.role_rules {
            if rule
                .claim
                .values(&root)
                .iter()
                // Booleans and numbers match their text (`"equals": "true"`).
                .any(|v| scalar_text(v).as_deref() == Some(rule.equals.as_str()))
            {
                roles.extend(rule.roles.iter().cloned());
                groups.extend(rule.groups.iter().cloned());
            }
        }
        if roles.is_empty() {
            roles.clone_from(&self.default_roles);
        }
        dedup(&mut roles);
        dedup(&mut groups);
        let consumed: Vec<&str> = [
            &self.login,
            &self.name,
            &self.email,
            &self.phone,
            &self.roles,
            &self.groups,
            &self.org,
            &self.tenant_code,
            &self.tenant_name,
        ]
        .into_iter()
        .filter_map(|p| p.as_ref().and_then(|p| p.consumed(&root)))
        .collect();
        let attributes = claims
            .iter()
            .filter(|(k, _)| !consumed.contains(&k.as_str()) && !REGISTERED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.watch_empty(&root, method);
        let tenant = text(&self.tenant_code);
        // The seeds: "if the tenant code returned by User-info equals the platform Id, the user
        // belongs to the platform party". Only the claims' tenant code counts, exactly: a
        // tenant stamped from the URL (a scope the user chose) never makes a platform user.
        let platform = matches!((&tenant, &self.platform_id), (Some(t), Some(p)) if t == p);
        Some(Identity {
            login,
            name: text(&self.name),
            email: text(&self.email),
            phone: text(&self.phone),
            roles,
            groups,
            org: text(&self.org),
            tenant,
            tenant_name: text(&self.tenant_name),
            platform,
            method: method.to_owned(),
            attributes,
        })
    }

    /// Says once in the log when a configured field has found nothing in every login so far.
    fn watch_empty(&self, root: &Value, method: &str) {
        for (i, (field, path)) in self.paths().enumerate() {
            if self.watch.empty_too_long(i, !path.values(root).is_empty()) {
                log::warn!(
                    "sso-filter: mapping field {field} ({:?}) of method {} was empty in each of \
                     the first {EMPTY_LOGINS_WARNED} logins: check the claim name",
                    crate::deny::sanitize(path.source()),
                    crate::deny::sanitize(method)
                );
            }
        }
    }

    /// The roles given when a method supplies none.
    pub fn default_roles(&self) -> &[String] {
        &self.default_roles
    }
}

/// A configured `platform_id`: a tenant code as the claims give it, compared exactly (so not
/// empty, no surrounding blanks, no control character, at most
/// [`crate::identity::MAX_FIELD_BYTES`]).
fn platform_id(value: &str) -> Result<String, &'static str> {
    if value.is_empty() || value.trim() != value {
        return Err("must be a tenant code: not empty, no leading or trailing blanks");
    }
    if value.chars().any(char::is_control) || value.len() > crate::identity::MAX_FIELD_BYTES {
        return Err("must be a tenant code: no control characters, at most 1024 bytes");
    }
    Ok(value.to_owned())
}

fn dedup(items: &mut Vec<String>) {
    let mut seen = std::collections::BTreeSet::new();
    items.retain(|i| seen.insert(i.clone()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Attribute names with dots are names first (SAML OIDs, JSON keys): a claim named exactly
    /// as the configured source wins over following it as a path, is not repeated as an
    /// attribute, and the path still works when no claim has that name.
    #[test]
    fn an_exact_name_wins_over_the_dotted_path() {
        let oid = "urn:oid:0.9.2342.19200300.100.1.3";
        let raw: RawMapping = serde_json::from_value(json!({
            "login": "uid", "email": oid, "name": "user.name"
        }))
        .unwrap();
        let m = Arc::new(raw.compile("m").unwrap());
        let claims = json!({
            "uid": "alice", oid: "alice@example.org",
            "user.name": "Alice by name", "user": {"name": "Alice by path"}
        });
        let id = m.apply(claims.as_object().unwrap(), "saml").unwrap();
        assert_eq!(id.email.as_deref(), Some("alice@example.org"));
        assert_eq!(id.name.as_deref(), Some("Alice by name"));
        assert!(!id.attributes.contains_key(oid));
        assert!(!id.attributes.contains_key("user.name"));
        assert!(id.attributes.contains_key("user"));
        let nested = json!({"uid": "bob", "user": {"name": "Bob by path"}});
        let id = m.apply(nested.as_object().unwrap(), "saml").unwrap();
        assert_eq!(id.name.as_deref(), Some("Bob by path"));
        assert!(ClaimPath::parse(oid).unwrap().ambiguous());
        assert!(!ClaimPath::parse("user.name").unwrap().ambiguous());
        assert!(!ClaimPath::parse("$['user.name']").unwrap().ambiguous());
    }

    /// A configured field that finds nothing in every one of the first logins is said once.
    #[test]
    fn a_field_empty_in_every_login_is_noticed_once() {
        let w = EmptyWatch::default();
        let hits: Vec<bool> = (0..EMPTY_LOGINS_WARNED + 5)
            .map(|_| w.empty_too_long(0, false))
            .collect();
        assert_eq!(hits.iter().filter(|h| **h).count(), 1);
        assert!(hits[EMPTY_LOGINS_WARNED as usize - 1]);
        let w = EmptyWatch::default();
        assert!(!w.empty_too_long(1, true));
        assert!((0..EMPTY_LOGINS_WARNED * 2).all(|_| !w.empty_too_long(1, false)));
    }

    /// A numeric claim too large for 64 bits has lost digits as a float: it is no login (two
    /// users' IDs could collide), while exact integers and fractions still read as text
    /// (regression found by the `mapping` fuzz target).
    #[test]
    fn numbers_that_lost_digits_are_no_value() {
        let p = ClaimPath::parse("id").unwrap();
        let big: Value = serde_json::from_str(r#"{"id": 1111111111111111111111909}"#).unwrap();
        assert_eq!(p.text(&big), None);
        let exact: Value = serde_json::from_str(r#"{"id": 18446744073709551615}"#).unwrap();
        assert_eq!(p.text(&exact).as_deref(), Some("18446744073709551615"));
        let fraction: Value = serde_json::from_str(r#"{"id": 1.5}"#).unwrap();
        assert_eq!(p.text(&fraction).as_deref(), Some("1.5"));
    }

    #[test]
    fn dotted_and_jsonpath_forms() {
        let claims = json!({
            "loginName": "alice",
            "extattr": {"attrs": [
                {"name": "a", "value": "1"},
                {"name": "b", "value": "2"},
                {"name": "工号", "value": "E42", "text": {"value": "E42t"}}
            ]},
            "roles": ["r1", "r2"],
            "n": 7
        });
        assert_eq!(
            ClaimPath::parse("loginName")
                .unwrap()
                .text(&claims)
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            ClaimPath::parse("extattr.attrs[2].value")
                .unwrap()
                .text(&claims)
                .as_deref(),
            Some("E42")
        );
        assert_eq!(
            ClaimPath::parse("$.extattr.attrs[?@.name=='工号'].text.value")
                .unwrap()
                .text(&claims)
                .as_deref(),
            Some("E42t")
        );
        assert_eq!(
            ClaimPath::parse("roles").unwrap().texts(&claims),
            vec!["r1", "r2"]
        );
        assert_eq!(
            ClaimPath::parse("n").unwrap().text(&claims).as_deref(),
            Some("7")
        );
        assert_eq!(
            ClaimPath::parse("$.extattr.attrs").unwrap().top.as_deref(),
            Some("extattr")
        );
        assert_eq!(
            ClaimPath::parse("$['a b'].c").unwrap().top.as_deref(),
            Some("a b")
        );
        assert!(ClaimPath::parse("a[x]").is_err());
        assert!(ClaimPath::parse("$.[").is_err());
    }

    #[test]
    fn mapping_keeps_unmapped_claims_and_applies_rules() {
        let raw: RawMapping = serde_json::from_value(json!({
            "login": "loginName", "roles": "roles", "default_roles": ["data viewer"],
            "role_rules": [{"claim": "dept", "equals": "ops", "roles": ["ops"], "groups": ["g-ops"]}]
        }))
        .unwrap();
        let m = Arc::new(raw.compile("mapping").unwrap());
        let claims =
            json!({"sub": "s", "loginName": "alice", "abc": "123", "dept": "ops", "exp": 1})
                .as_object()
                .unwrap()
                .clone();
        let id = m.apply(&claims, "jwt").unwrap();
        assert_eq!(id.login, "alice");
        assert_eq!(id.roles, vec!["ops"]);
        assert_eq!(id.groups, vec!["g-ops"]);
        assert_eq!(id.attributes.get("abc"), Some(&json!("123")));
        assert!(id.attributes.get("exp").is_none());
        assert!(id.attributes.get("loginName").is_none());
        let no_roles = json!({"sub": "bob"}).as_object().unwrap().clone();
        let raw2: RawMapping =
            serde_json::from_value(json!({"default_roles": ["data viewer"]})).unwrap();
        let id = Arc::new(raw2.compile("m").unwrap())
            .apply(&no_roles, "jwt")
            .unwrap();
        assert_eq!(id.login, "bob");
        assert_eq!(id.roles, vec!["data viewer"]);
    }
}
