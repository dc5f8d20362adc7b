//! The verified identity the upstream receives, and the rules for emitting it as headers.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::http::{HeaderEdit, RequestHead};

/// A user as the filter vouches for it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// Unique login name.
    pub login: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Roles.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Organisation (department path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Tenant code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// Tenant display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_name: Option<String>,
    /// Whether the user belongs to the platform party (the seeds' 平台方): the tenant code the
    /// method's claims gave equals the mapping's configured `platform_id`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub platform: bool,
    /// The login method's configured name (`local`, `jwt-param`, ...).
    pub method: String,
    /// Claims no mapping field consumed.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub attributes: Map<String, Value>,
}

/// The longest value of a single identity field, in bytes.
pub const MAX_FIELD_BYTES: usize = 1024;

impl Identity {
    /// Refuses identities a header could not carry faithfully: control characters (CR, LF, NUL
    /// would split or truncate headers; security.md B5) and oversized fields. Refused, never
    /// cleaned: a cleaned login is a different user.
    ///
    /// # Errors
    ///
    /// A short reason for the log.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.login.is_empty() {
            return Err("empty login");
        }
        let fields = [
            Some(&self.login),
            self.name.as_ref(),
            self.email.as_ref(),
            self.phone.as_ref(),
            self.org.as_ref(),
            self.tenant.as_ref(),
            self.tenant_name.as_ref(),
        ];
        let lists = self.roles.iter().chain(self.groups.iter());
        for value in fields.into_iter().flatten().chain(lists) {
            if value.len() > MAX_FIELD_BYTES {
                return Err("identity field too long");
            }
            if value.chars().any(char::is_control) {
                return Err("control character in identity");
            }
        }
        Ok(())
    }
}

/// The header names identities travel in (configuration `identity_headers`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdentityHeaders {
    /// Login header.
    pub login: String,
    /// Display-name header.
    pub name: String,
    /// E-mail header.
    pub email: String,
    /// Phone header.
    pub phone: String,
    /// Roles header (comma-separated).
    pub roles: String,
    /// Groups header (comma-separated).
    pub groups: String,
    /// Organisation header.
    pub org: String,
    /// Tenant (code) header.
    pub tenant: String,
    /// Tenant display-name header.
    pub tenant_name: String,
    /// Platform-party header (`true`, or absent).
    pub platform: String,
    /// Method header.
    pub method: String,
    /// Attributes header (JSON object).
    pub attributes: String,
}

impl Default for IdentityHeaders {
    fn default() -> Self {
        IdentityHeaders {
            login: "x-sso-login".into(),
            name: "x-sso-name".into(),
            email: "x-sso-email".into(),
            phone: "x-sso-phone".into(),
            roles: "x-sso-roles".into(),
            groups: "x-sso-groups".into(),
            org: "x-sso-org".into(),
            tenant: "x-sso-tenant".into(),
            tenant_name: "x-sso-tenant-name".into(),
            platform: "x-sso-platform".into(),
            method: "x-sso-method".into(),
            attributes: "x-sso-attributes".into(),
        }
    }
}

impl IdentityHeaders {
    /// Every configured name, for stripping and validation.
    pub fn all(&self) -> [&str; 12] {
        [
            &self.login,
            &self.name,
            &self.email,
            &self.phone,
            &self.roles,
            &self.groups,
            &self.org,
            &self.tenant,
            &self.tenant_name,
            &self.platform,
            &self.method,
            &self.attributes,
        ]
    }

    /// The edits that set an identity's headers.
    pub fn emit(&self, id: &Identity, edits: &mut Vec<HeaderEdit>) {
        let mut set = |name: &str, value: Option<String>| {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                edits.push(HeaderEdit::Set(name.to_owned(), v));
            }
        };
        set(&self.login, Some(encode_value(&id.login)));
        set(&self.name, id.name.as_deref().map(encode_value));
        set(&self.email, id.email.as_deref().map(encode_value));
        set(&self.phone, id.phone.as_deref().map(encode_value));
        set(&self.roles, Some(encode_list(&id.roles)));
        set(&self.groups, Some(encode_list(&id.groups)));
        set(&self.org, id.org.as_deref().map(encode_value));
        set(&self.tenant, id.tenant.as_deref().map(encode_value));
        set(
            &self.tenant_name,
            id.tenant_name.as_deref().map(encode_value),
        );
        set(&self.platform, id.platform.then(|| "true".to_owned()));
        set(&self.method, Some(encode_value(&id.method)));
        if !id.attributes.is_empty() {
            set(
                &self.attributes,
                Some(ascii_json(&Value::Object(id.attributes.clone()))),
            );
        }
    }
}

/// A header name as back ends read it: lower-case, `_` read as `-` (security.md B1, B2: WSGI
/// and PHP back ends map `_` to `-`, so `X_SSO_LOGIN` would arrive as the real header).
pub fn canonical_header(name: &str) -> String {
    name.to_ascii_lowercase().replace('_', "-")
}

/// Whether `name` reads as `canonical` (see [`canonical_header`]), without allocating: this
/// runs for every header of every request.
fn reads_as(name: &str, canonical: &str) -> bool {
    name.len() == canonical.len()
        && name.bytes().zip(canonical.bytes()).all(|(a, c)| {
            let a = a.to_ascii_lowercase();
            (if a == b'_' { b'-' } else { a }) == c
        })
}

/// Removes, from a request, every header that reads as one of `canonical` (names already
/// passed through [`canonical_header`], worked out once per configuration).
pub fn strip_spoofed(head: &RequestHead, canonical: &[String], edits: &mut Vec<HeaderEdit>) {
    let mut seen: Vec<&str> = Vec::new();
    for (name, _) in &head.headers {
        if canonical.iter().any(|c| reads_as(name, c)) && !seen.contains(&name.as_str()) {
            seen.push(name);
            edits.push(HeaderEdit::Remove(name.clone()));
        }
    }
}

/// Encodes one value: printable ASCII as is, anything else as an RFC 8187 ext-value
/// (`UTF-8''%E5%BC%A0`), which every language's URL decoder reads back.
pub fn encode_value(value: &str) -> String {
    encode(value, false)
}

fn encode(value: &str, in_list: bool) -> String {
    let plain = !value.starts_with("UTF-8''")
        && value
            .bytes()
            .all(|b| (0x20..0x7f).contains(&b) && !(in_list && b == b','))
        && !value.starts_with(' ')
        && !value.ends_with(' ');
    if plain {
        return value.to_owned();
    }
    let mut out = String::from("UTF-8''");
    for b in value.bytes() {
        // RFC 8187 attr-char: ALPHA / DIGIT / "!" / "#" / "$" / "&" / "+" / "-" / "." / "^" /
        // "_" / "`" / "|" / "~"
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Encodes a list: items joined by `,`, an item that is not plain or holds a comma encoded
/// alone, so `admins,users` stays one item (security.md B6).
pub fn encode_list(items: &[String]) -> String {
    items
        .iter()
        .map(|i| encode(i, true))
        .collect::<Vec<_>>()
        .join(",")
}

/// JSON with every non-ASCII character escaped as `\uXXXX`, so the header stays ASCII.
pub fn ascii_json(value: &Value) -> String {
    let text = value.to_string();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut buf = [0u16; 2];
            for unit in c.encode_utf16(&mut buf) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_round_trip_and_stay_ascii() {
        assert_eq!(encode_value("alice"), "alice");
        assert_eq!(encode_value("张三"), "UTF-8''%E5%BC%A0%E4%B8%89");
        assert_eq!(encode_value("UTF-8''x"), "UTF-8''UTF-8%27%27x");
        assert_eq!(
            encode_list(&["system admin".into(), "admins,users".into()]),
            "system admin,UTF-8''admins%2Cusers"
        );
        let json = ascii_json(&serde_json::json!({"n": "张三", "e": "😀"}));
        assert!(json.is_ascii());
        let back: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["n"], "张三");
        assert_eq!(back["e"], "😀");
    }

    #[test]
    fn strips_case_and_underscore_variants() {
        let head = RequestHead {
            method: "GET".into(),
            path: "/".into(),
            headers: vec![
                ("x-sso-login".into(), "a".into()),
                ("x_sso_login".into(), "b".into()),
                ("X-Sso_Login".into(), "c".into()),
                ("x-other".into(), "d".into()),
            ],
            client: None,
            peer: None,
        };
        let mut edits = Vec::new();
        strip_spoofed(&head, &[canonical_header("x-sso-login")], &mut edits);
        assert_eq!(edits.len(), 3);
    }

    #[test]
    fn control_characters_are_refused() {
        let id = Identity {
            login: "a\r\nX-Admin: 1".into(),
            method: "m".into(),
            ..Identity::default()
        };
        assert!(id.check().is_err());
        let ok = Identity {
            login: "张三".into(),
            method: "m".into(),
            ..Identity::default()
        };
        assert!(ok.check().is_ok());
    }
}
