//! `type: cas`: the CAS protocol 2.0 and 3.0 (Apereo "CAS Protocol 3.0 Specification"), reached
//! through proxy callouts. This module builds the login, validation and logout URLs and judges
//! the CAS server's answers; `login.rs` is the flow behind `LoginMethod` (start, callback,
//! the validation callout, single logout).
//!
//! The `service` sent to CAS is `base_url + callback_path + ?state=<the sealed flow>`:
//! configured origin only, never the request's `Host` (security.md H2), and the same string at
//! login and at validation (§2.5.1). The state is bound to the browser that started the login
//! (its binding cookie): a ticket issued for another browser's service does not validate here.

mod login;

use std::fmt;

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::ConfigError;
use crate::http::{cluster_name, Callout, CalloutResponse};
use crate::idp::{capped_body, IdpFailure};
use crate::jose::B64URL;
use crate::mapping::RawMapping;
use crate::xml::{self, text_only};

/// The CAS XML namespace.
pub const CAS_NS: &str = "http://www.yale.edu/tp/cas";
/// The SAML 2.0 protocol namespace of the single-logout `LogoutRequest`.
const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// The largest validation response read (security.md L6).
pub const MAX_CAS_BODY: usize = 64 * 1024;
/// The largest single-logout POST body read.
pub const MAX_SLO_BODY: usize = 16 * 1024;
/// The most XML nodes a CAS document may have.
const NODES_LIMIT: u32 = 4096;
/// The longest service ticket accepted (CAS 3.0 §3.1.1: clients should accept 256).
const MAX_TICKET: usize = 256;

/// Attributes of the CAS 3.0 response that describe the authentication, not the user; they are
/// not passed on as user attributes.
const PROTOCOL_ATTRIBUTES: [&str; 7] = [
    "authenticationDate",
    "longTermAuthenticationRequestTokenUsed",
    "isFromNewLogin",
    "successfulAuthenticationHandlers",
    "authenticationMethod",
    "credentialType",
    "samlAuthenticationStatementAuthMethod",
];

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCas {
    server_url: String,
    #[serde(default)]
    protocol: CasProtocol,
    #[serde(default)]
    renew: bool,
    #[serde(default)]
    gateway: bool,
    #[serde(default)]
    reload_user: bool,
    #[serde(default)]
    callback_path: Option<String>,
    #[serde(default = "default_true")]
    logout: bool,
    #[serde(default = "default_true")]
    single_logout: bool,
    #[serde(default)]
    logout_sources: Vec<String>,
    #[serde(default = "default_timeout")]
    timeout_ms: u64,
}

fn default_true() -> bool {
    true
}

fn default_timeout() -> u64 {
    5000
}

/// Which validation endpoint is used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
pub enum CasProtocol {
    /// CAS 2.0: `/serviceValidate`.
    #[serde(rename = "2.0")]
    V2,
    /// CAS 3.0: `/p3/serviceValidate` (attributes guaranteed).
    #[default]
    #[serde(rename = "3.0")]
    V3,
}

/// A configured CAS method.
#[derive(Debug)]
pub struct Cas {
    /// The CAS prefix (`https://cas.example.org/cas`), no trailing slash.
    server: String,
    protocol: CasProtocol,
    renew: bool,
    gateway: bool,
    /// The seeds' "reload user" for every navigation (a `gateway` check at the CAS server).
    pub reload_user: bool,
    /// Callback path, when configured (else `{prefix}/callback/{method}`).
    pub callback_path: Option<String>,
    logout: bool,
    /// Whether `logoutRequest` POSTs from the CAS server end sessions.
    pub single_logout: bool,
    /// The addresses allowed to send them: CAS logout requests are not signed, so the
    /// sender's address is their only credential. Empty: every one is refused (403).
    pub logout_sources: Vec<ipnet::IpNet>,
    /// Callout deadline.
    pub timeout_ms: u64,
}

/// A successful ticket validation.
#[derive(Clone, Debug, PartialEq)]
pub struct Validated {
    /// `cas:user`.
    pub user: String,
    /// `cas:attributes`, one entry per name; repeated names become arrays.
    pub attributes: Map<String, Value>,
}

impl Validated {
    /// The claims the mapping reads: `user` and every attribute at the top level.
    pub fn claims(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        for (k, v) in &self.attributes {
            claims.insert(k.clone(), v.clone());
        }
        claims.insert("user".into(), Value::String(self.user.clone()));
        claims
    }
}

/// A ticket the filter will not send to CAS (security.md H1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadTicket;

impl fmt::Display for BadTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("malformed service ticket")
    }
}

impl Cas {
    /// Parses the method's configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawCas, at: &str) -> Result<Self, ConfigError> {
        let err = |field: &str, reason: &str| ConfigError {
            path: format!("{at}.{field}"),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(&raw.server_url)
            .map_err(|_| err("server_url", "not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(err("server_url", "must be an http(s) URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(err("server_url", "must not have a query or fragment"));
        }
        if raw.renew && raw.gateway {
            return Err(err(
                "gateway",
                "renew and gateway exclude each other (CAS 3.0 §2.1.1)",
            ));
        }
        if raw.timeout_ms == 0 || raw.timeout_ms > 60_000 {
            return Err(err("timeout_ms", "must be between 1 and 60000"));
        }
        if let Some(path) = &raw.callback_path {
            if !path.starts_with('/') || path.contains(['?', '#']) {
                return Err(err(
                    "callback_path",
                    "must be an absolute path without query",
                ));
            }
        }
        let mut logout_sources = Vec::new();
        for (i, text) in raw.logout_sources.iter().enumerate() {
            let net = text
                .parse::<ipnet::IpNet>()
                .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| err(&format!("logout_sources[{i}]"), "not an address or CIDR"))?;
            logout_sources.push(net);
        }
        Ok(Cas {
            logout_sources,
            server: url.as_str().trim_end_matches('/').to_owned(),
            protocol: raw.protocol,
            renew: raw.renew,
            gateway: raw.gateway,
            reload_user: raw.reload_user,
            callback_path: raw.callback_path,
            logout: raw.logout,
            single_logout: raw.single_logout,
            timeout_ms: raw.timeout_ms,
        })
    }

    /// The mapping this method implies: the login is `cas:user`.
    pub fn default_mapping(&self) -> RawMapping {
        let mut m = RawMapping::default();
        m.set_paths(Some("user".into()), None, None);
        m
    }

    /// Every URL the method calls (for `sso-filter clusters`).
    pub fn outbound_urls(&self) -> Vec<url::Url> {
        url::Url::parse(&self.validate_endpoint())
            .ok()
            .into_iter()
            .collect()
    }

    fn validate_endpoint(&self) -> String {
        match self.protocol {
            CasProtocol::V2 => format!("{}/serviceValidate", self.server),
            CasProtocol::V3 => format!("{}/p3/serviceValidate", self.server),
        }
    }

    /// `{cas}/login?service=...` with `renew` or `gateway` when configured (§2.1).
    pub fn login_url(&self, service: &str) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("service", service);
        if self.renew {
            q.append_pair("renew", "true");
        }
        if self.gateway {
            q.append_pair("gateway", "true");
        }
        format!("{}/login?{}", self.server, q.finish())
    }

    /// The login URL of a reload: only `gateway=true`, so CAS answers at once, with a ticket
    /// when the user still has a single sign-on session there and without one otherwise
    /// (§2.1.1; `renew` would ask for credentials, which a reload must not).
    pub fn reload_url(&self, service: &str) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("service", service);
        q.append_pair("gateway", "true");
        format!("{}/login?{}", self.server, q.finish())
    }

    /// The validation callout (§2.5 / §2.8). Ticket and service are re-encoded, never copied
    /// from the request (CVE-2014-4172).
    pub fn validate_request(&self, service: &str, ticket: &str) -> Callout {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("service", service)
            .append_pair("ticket", ticket);
        if self.renew {
            q.append_pair("renew", "true");
        }
        let endpoint = self.validate_endpoint();
        let url = format!("{endpoint}?{}", q.finish());
        let upstream = url::Url::parse(&endpoint)
            .map(|u| cluster_name(&u))
            .unwrap_or_default();
        Callout {
            upstream,
            url,
            method: "GET".into(),
            headers: vec![("accept".into(), "application/xml, text/xml".into())],
            body: Vec::new(),
            timeout_ms: self.timeout_ms,
        }
    }

    /// Judges a validation answer.
    ///
    /// # Errors
    ///
    /// [`IdpFailure::Refused`] with the CAS failure code, [`IdpFailure::BadAnswer`] for
    /// anything unusable.
    pub fn validation_response(&self, response: &CalloutResponse) -> Result<Validated, IdpFailure> {
        let body = capped_body(response, MAX_CAS_BODY)?;
        if response.status != Some(200) {
            return Err(IdpFailure::BadAnswer("validate_status"));
        }
        let text = std::str::from_utf8(body).map_err(|_| IdpFailure::BadAnswer("encoding"))?;
        parse_validation(text)
    }

    /// Where `{prefix}/logout` sends the browser for a session of this method: the CAS
    /// server's `/logout` with the return address (`service` in 3.0, `url` in 2.0), when
    /// `logout` is on.
    pub fn logout_redirect(&self, return_to: &str) -> Option<String> {
        if !self.logout {
            return None;
        }
        let param = match self.protocol {
            CasProtocol::V2 => "url",
            CasProtocol::V3 => "service",
        };
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair(param, return_to);
        Some(format!("{}/logout?{}", self.server, q.finish()))
    }
}

/// Checks a service ticket's syntax: `ST-` then `[A-Za-z0-9._-]`, at most 256 characters.
///
/// # Errors
///
/// [`BadTicket`] for anything else.
pub fn check_ticket(ticket: &str) -> Result<(), BadTicket> {
    let ok = ticket.len() <= MAX_TICKET
        && ticket.len() > 3
        && ticket.starts_with("ST-")
        && ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(BadTicket)
    }
}

/// What a session keeps of its service ticket, and what single logout looks up: a digest,
/// so the ticket itself is never stored.
pub fn ticket_id(ticket: &str) -> String {
    let digest = Sha256::digest(ticket.as_bytes());
    B64URL.encode(digest.get(..18).unwrap_or_default())
}

/// Parses a `serviceValidate` answer (CAS 3.0 §2.5.2, §2.8) strictly: root
/// `cas:serviceResponse` with exactly one element child; success only with exactly one
/// non-empty `cas:user` made of text alone; any `authenticationFailure` anywhere is a failure
/// (security.md H3).
///
/// # Errors
///
/// [`IdpFailure`] for failures and anything malformed.
pub fn parse_validation(text: &str) -> Result<Validated, IdpFailure> {
    let doc = roxmltree::Document::parse_with_options(text, xml::options(NODES_LIMIT))
        .map_err(|_| IdpFailure::BadAnswer("xml"))?;
    let root = doc.root_element();
    if !is(root, CAS_NS, "serviceResponse") {
        return Err(IdpFailure::BadAnswer("cas_root"));
    }
    if doc
        .descendants()
        .any(|n| is(n, CAS_NS, "authenticationFailure"))
    {
        let code = doc
            .descendants()
            .find(|n| is(*n, CAS_NS, "authenticationFailure"))
            .and_then(|n| n.attribute("code"))
            .unwrap_or("UNKNOWN");
        return Err(IdpFailure::Refused(code.to_owned()));
    }
    let children = element_children(root)?;
    let [success] = children.as_slice() else {
        return Err(IdpFailure::BadAnswer("cas_shape"));
    };
    if !is(*success, CAS_NS, "authenticationSuccess") {
        return Err(IdpFailure::BadAnswer("cas_shape"));
    }
    let parts = element_children(*success)?;
    let users: Vec<_> = parts.iter().filter(|n| is(**n, CAS_NS, "user")).collect();
    let [user] = users.as_slice() else {
        return Err(IdpFailure::BadAnswer("cas_user"));
    };
    let user = text_only(**user)
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .ok_or(IdpFailure::BadAnswer("cas_user"))?;
    let mut attributes = Map::new();
    let blocks: Vec<_> = parts
        .iter()
        .copied()
        .filter(|n| is(*n, CAS_NS, "attributes"))
        .collect();
    if blocks.len() > 1 {
        return Err(IdpFailure::BadAnswer("cas_attributes"));
    }
    for block in blocks {
        for attr in element_children(block)? {
            let (name, value) = if is(attr, CAS_NS, "attribute") {
                // The older Jasig layout: <cas:attribute name="n" value="v"/>.
                match (attr.attribute("name"), attr.attribute("value")) {
                    (Some(n), Some(v)) => (n.to_owned(), v.to_owned()),
                    _ => return Err(IdpFailure::BadAnswer("cas_attributes")),
                }
            } else {
                let value = text_only(attr).ok_or(IdpFailure::BadAnswer("cas_attributes"))?;
                (attr.tag_name().name().to_owned(), value.trim().to_owned())
            };
            if PROTOCOL_ATTRIBUTES.contains(&name.as_str()) || name == "user" {
                continue;
            }
            add_value(&mut attributes, name, value);
        }
    }
    Ok(Validated { user, attributes })
}

/// The `SessionIndex` (the service ticket) of a single-logout `logoutRequest` (§2.3.3 and the
/// SAML `LogoutRequest` CAS servers send). Unsigned, so it is only ever a request to end the
/// session holding that ticket.
pub fn parse_logout_request(xml: &str) -> Option<String> {
    let doc = roxmltree::Document::parse_with_options(xml, xml::options(NODES_LIMIT)).ok()?;
    let root = doc.root_element();
    if !is(root, SAMLP_NS, "LogoutRequest") {
        return None;
    }
    let indexes: Vec<_> = root
        .children()
        .filter(|n| is(*n, SAMLP_NS, "SessionIndex"))
        .collect();
    let [index] = indexes.as_slice() else {
        return None;
    };
    let ticket = text_only(*index)?.trim().to_owned();
    check_ticket(&ticket).ok()?;
    Some(ticket)
}

fn is(node: roxmltree::Node<'_, '_>, ns: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == local
}

/// Element children, refusing stray text (anything but whitespace) between them.
fn element_children<'a, 'i>(
    node: roxmltree::Node<'a, 'i>,
) -> Result<Vec<roxmltree::Node<'a, 'i>>, IdpFailure> {
    let mut out = Vec::new();
    for child in node.children() {
        if child.is_element() {
            out.push(child);
        } else if child.is_text() && !child.text().unwrap_or("").trim().is_empty() {
            return Err(IdpFailure::BadAnswer("cas_shape"));
        }
    }
    Ok(out)
}

fn add_value(map: &mut Map<String, Value>, name: String, value: String) {
    match map.get_mut(&name) {
        None => {
            map.insert(name, Value::String(value));
        }
        Some(Value::Array(items)) => items.push(Value::String(value)),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, Value::String(value)]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(xml: &str) -> Validated {
        parse_validation(xml).unwrap()
    }

    const SUCCESS: &str = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>jdoe</cas:user>
    <cas:attributes>
      <cas:authenticationDate>2015-11-12T09:30:10Z</cas:authenticationDate>
      <cas:isFromNewLogin>true</cas:isFromNewLogin>
      <cas:email>jdoe@example.org</cas:email>
      <cas:memberOf>staff</cas:memberOf>
      <cas:memberOf>faculty</cas:memberOf>
    </cas:attributes>
  </cas:authenticationSuccess>
</cas:serviceResponse>"#;

    #[test]
    fn success_with_attributes() {
        let v = ok(SUCCESS);
        assert_eq!(v.user, "jdoe");
        assert_eq!(v.attributes["email"], "jdoe@example.org");
        assert_eq!(
            v.attributes["memberOf"],
            serde_json::json!(["staff", "faculty"])
        );
        assert!(!v.attributes.contains_key("isFromNewLogin"));
        assert_eq!(v.claims()["user"], "jdoe");
    }

    #[test]
    fn refusals() {
        let fail = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="INVALID_TICKET">Ticket ST-1 not recognized</cas:authenticationFailure></cas:serviceResponse>"#;
        assert_eq!(
            parse_validation(fail),
            Err(IdpFailure::Refused("INVALID_TICKET".into()))
        );
        let cases = [
            // Success and failure together (phpCAS #228 injection shape).
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>a</cas:user></cas:authenticationSuccess><cas:authenticationFailure code="X"/></cas:serviceResponse>"#,
            // Two users.
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>a</cas:user><cas:user>b</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#,
            // Wrong namespace.
            r#"<cas:serviceResponse xmlns:cas="http://evil/cas"><cas:authenticationSuccess><cas:user>a</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#,
            // A DOCTYPE.
            r#"<!DOCTYPE x [<!ENTITY u "admin">]><cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>&u;</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#,
            // A comment inside the user.
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>admin<!---->.evil</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#,
            // Empty user.
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user> </cas:user></cas:authenticationSuccess></cas:serviceResponse>"#,
            // Two successes.
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>a</cas:user></cas:authenticationSuccess><cas:authenticationSuccess><cas:user>b</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#,
            // An HTML page.
            "<html><body>CAS is down</body></html>",
            "yes\njdoe\n",
        ];
        for xml in cases {
            assert!(
                matches!(
                    parse_validation(xml),
                    Err(IdpFailure::BadAnswer(_) | IdpFailure::Refused(_))
                ),
                "{xml}"
            );
        }
    }

    #[test]
    fn tickets() {
        assert!(check_ticket("ST-1-abcDEF_09.x").is_ok());
        for bad in [
            "",
            "ST-",
            "PT-1-abc",
            "ST-1&service=https://evil",
            "ST-1%26renew%3Dfalse",
            "ST-1 x",
            "ST-张",
        ] {
            assert!(check_ticket(bad).is_err(), "{bad}");
        }
        assert!(check_ticket(&format!("ST-{}", "a".repeat(10_000))).is_err());
    }

    #[test]
    fn logout_request() {
        let xml = r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x" Version="2.0" IssueInstant="2024-01-01T00:00:00Z"><saml:NameID xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">@NOT_USED@</saml:NameID><samlp:SessionIndex>ST-12-abc</samlp:SessionIndex></samlp:LogoutRequest>"#;
        assert_eq!(parse_logout_request(xml).as_deref(), Some("ST-12-abc"));
        assert!(parse_logout_request("<LogoutRequest/>").is_none());
        assert!(parse_logout_request(&xml.replace("ST-12-abc", "x")).is_none());
    }
}
