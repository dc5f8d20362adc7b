//! `type: saml2`: a SAML 2.0 service provider (Web Browser SSO profile), behind
//! [`crate::login::LoginMethod`].
//!
//! - `config.rs`: the configuration (`RawSaml2` -> [`Saml2`]).
//! - `metadata.rs`: the IdP metadata read, the SP metadata written.
//! - `fetch.rs`: the IdP metadata at hand: configured, cached in shared data, or fetched.
//! - `authn_request.rs`: the `AuthnRequest` (HTTP-Redirect, optionally signed, or HTTP-POST).
//! - `binding.rs`: how messages travel: HTTP-Redirect (signed over the query), HTTP-POST (an
//!   auto-submitting page, signed inside the XML), and the enveloped signature of a posted one.
//! - `verify.rs`: the `Response` posted to the ACS (providers.md §8.2, security.md I1-I14).
//! - `logout.rs`: the single logout messages, written and checked.
//! - `slo.rs`: single logout, both ways, by both bindings (`{prefix}/logout`, `.../slo`).
//! - `login.rs`: the login flow (start, ACS, metadata waits) as `impl LoginMethod`.
//!
//! # Security
//!
//! The Response is parsed once (no DTD, node cap); the identity is read from the very nodes
//! whose signature was verified. Signatures may sit only on the Response or on its single
//! Assertion, must reference their parent by `ID`, and are checked with configured keys only.

use std::fmt;

use base64::Engine;
use roxmltree::Node;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::Deserialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::xmldsig::is;

mod authn_request;
mod binding;
mod config;
mod fetch;
mod login;
mod logout;
mod metadata;
mod slo;
mod time;
mod verify;

pub use config::RawSaml2;
pub use metadata::parse_metadata;
pub use time::{parse_xml_time, xml_time};

/// SAML 2.0 protocol namespace.
pub const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
/// SAML 2.0 assertion namespace.
pub const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
/// SAML 2.0 metadata namespace.
pub const MD_NS: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
/// HTTP-Redirect binding.
pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
/// HTTP-POST binding.
pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";
const STATUS_SUCCESS: &str = "urn:oasis:names:tc:SAML:2.0:status:Success";
const CM_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
const RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";

/// The largest `SAMLResponse` accepted, decoded (security.md I12).
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// The largest ACS form body read (the base64 of [`MAX_RESPONSE_BYTES`] plus `RelayState`).
pub const MAX_ACS_BODY: usize = MAX_RESPONSE_BYTES / 3 * 4 + 8 * 1024;
/// The largest logout message accepted, decoded (or inflated, by the HTTP-Redirect binding):
/// security.md I12, a deflate bomb stops here.
pub const MAX_SLO_XML: usize = 64 * 1024;
/// The largest form body posted to the single logout endpoint (the base64 of [`MAX_SLO_XML`]
/// plus `RelayState`).
pub const MAX_SLO_BODY: usize = MAX_SLO_XML / 3 * 4 + 8 * 1024;
/// The most XML nodes a Response or metadata document may have.
const NODES_LIMIT: u32 = 20_000;

/// How long fetched IdP metadata may still be used when refetching it fails.
pub const METADATA_MAX_STALE: u64 = 24 * 3600;
/// The largest IdP metadata document read.
pub const MAX_METADATA_BODY: usize = 256 * 1024;

/// How a message travels: the `AuthnRequest` (`binding`), the single logout messages
/// (`single_logout_binding`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    /// HTTP-POST: an auto-submitting form with the base64 request.
    Post,
    /// HTTP-Redirect: deflated, base64, in the query (optionally signed).
    #[default]
    Redirect,
}

/// Where the login comes from (Mobi's "principal type").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Principal {
    /// An attribute by `Name`.
    Attribute,
    /// An attribute by `FriendlyName`.
    FriendlyAttribute,
    /// The `NameID`.
    #[default]
    Subject,
}

/// The IdP as its metadata (or the configuration) describes it.
#[derive(Clone)]
pub struct Idp {
    /// `entityID`.
    pub entity_id: String,
    /// `SingleSignOnService` with the HTTP-Redirect binding.
    pub sso_redirect: Option<url::Url>,
    /// `SingleSignOnService` with the HTTP-POST binding.
    pub sso_post: Option<url::Url>,
    /// Signing keys (`KeyDescriptor use="signing"` or without `use`).
    pub keys: Vec<RsaPublicKey>,
    /// `SingleLogoutService` with the HTTP-Redirect binding.
    pub slo_redirect: Option<SloService>,
    /// `SingleLogoutService` with the HTTP-POST binding.
    pub slo_post: Option<SloService>,
}

/// A `SingleLogoutService`: `Location` (requests go there) and `ResponseLocation` (responses
/// go there when given, else to `Location`).
pub type SloService = (url::Url, Option<url::Url>);

impl Idp {
    /// The IdP's single logout by `prefer`red binding, else by the other one.
    pub fn slo(&self, prefer: Binding) -> Option<(Binding, &SloService)> {
        let redirect = self.slo_redirect.as_ref().map(|s| (Binding::Redirect, s));
        let post = self.slo_post.as_ref().map(|s| (Binding::Post, s));
        match prefer {
            Binding::Redirect => redirect.or(post),
            Binding::Post => post.or(redirect),
        }
    }
}

impl fmt::Debug for Idp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Idp({}, {} keys)", self.entity_id, self.keys.len())
    }
}

/// The SP's private key: never printed.
#[derive(Clone)]
pub struct SpKey(RsaPrivateKey);

impl fmt::Debug for SpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpKey([redacted])")
    }
}

/// A configured SAML 2.0 method.
#[derive(Debug)]
pub struct Saml2 {
    sp_entity_id: Option<String>,
    /// The IdP as configured: complete without `metadata_url`; with it, only the configured
    /// additions (entity ID, SSO URL, certificates) to what the fetched metadata says.
    pub idp: Idp,
    /// Where the IdP metadata is fetched from (callout, cached in shared data).
    pub metadata_url: Option<url::Url>,
    /// How long fetched metadata is used before it is fetched again.
    pub metadata_ttl: u64,
    /// Callout deadline.
    pub timeout_ms: u64,
    /// Whether logout goes to the IdP's single logout and IdP logout requests are honoured.
    pub single_logout: bool,
    configured_entity_id: Option<String>,
    /// The `AuthnRequest` binding.
    pub binding: Binding,
    /// The single logout binding used when the IdP offers both.
    pub slo_binding: Binding,
    /// Signs the `AuthnRequest` (`sign_authn_request`).
    sign_key: Option<SpKey>,
    /// The SP's private key: decrypts assertions, signs single logout messages.
    sp_key: Option<SpKey>,
    sp_certificate: Option<String>,
    force_authn: bool,
    /// `RelayState` within the 80 bytes of the SAML bindings (§3.4.3, §3.5.3): a random id
    /// naming a flow cookie, instead of the sealed flow (at most four logins at once then).
    pub(super) short_relay_state: bool,
    /// The seeds' "reload user" for every navigation (an `IsPassive` AuthnRequest).
    reload_user: bool,
    allow_create: bool,
    name_id_format: Option<String>,
    want_assertions_signed: bool,
    principal: Principal,
    principal_attribute: Option<String>,
    leeway: u64,
    allow_sha1: bool,
}

/// Why a SAML Response was refused. Reasons are for logs and counters only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamlFailure {
    /// Not base64, not UTF-8, too large, not well-formed XML, or a DOCTYPE.
    Malformed,
    /// Not the shape the profile allows (root, version, IDs, counts, positions).
    Structure(&'static str),
    /// A signature failed, or none was where one is required.
    Signature(&'static str),
    /// The IdP said no (`StatusCode` other than Success).
    Status,
    /// `Destination`, `Recipient` or `Audience` is not this SP.
    NotForUs(&'static str),
    /// `InResponseTo` is not this browser's request.
    InResponseTo,
    /// `Issuer` is not the configured IdP.
    Issuer,
    /// Outside `NotBefore`/`NotOnOrAfter`, with leeway.
    Expired,
    /// The assertion was already used.
    Replayed,
    /// The principal (NameID or attribute) is missing, empty or not plain text.
    Principal,
    /// An `EncryptedAssertion` could not be decrypted (no detail, on purpose).
    Decrypt,
}

impl SamlFailure {
    /// A short stable name for logs and counters.
    pub fn reason(&self) -> String {
        match self {
            SamlFailure::Malformed => "malformed".into(),
            SamlFailure::Structure(w) => format!("structure_{w}"),
            SamlFailure::Signature(w) => format!("signature_{w}"),
            SamlFailure::Status => "status".into(),
            SamlFailure::NotForUs(w) => format!("not_for_us_{w}"),
            SamlFailure::InResponseTo => "in_response_to".into(),
            SamlFailure::Issuer => "issuer".into(),
            SamlFailure::Expired => "expired".into(),
            SamlFailure::Replayed => "replayed".into(),
            SamlFailure::Principal => "principal".into(),
            SamlFailure::Decrypt => "decrypt".into(),
        }
    }
}

/// What the verification of one Response expects.
#[derive(Clone, Debug)]
pub struct Expect<'a> {
    /// The SP's entity ID (the `Audience`).
    pub sp_entity_id: &'a str,
    /// The ACS URL (`Destination`, `Recipient`).
    pub acs_url: &'a str,
    /// The `AuthnRequest` ID this browser sent (`InResponseTo`).
    pub request_id: &'a str,
    /// Now, seconds since the epoch.
    pub now: u64,
    /// The IdP (from fetched metadata); `None`: the configured one.
    pub idp: Option<&'a Idp>,
}

/// A verified assertion: only what was covered by a verified signature.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// The assertion's `ID` (for the replay cache).
    pub assertion_id: String,
    /// Until when the assertion may be presented (for the replay cache).
    pub not_on_or_after: u64,
    /// `AuthnStatement/@SessionNotOnOrAfter`: the IdP's end for the session.
    pub session_not_on_or_after: Option<u64>,
    /// Claims: `name_id`, `name_id_format`, `session_index`, `principal`, and every attribute
    /// by `Name`, then by `FriendlyName` where that key is free.
    pub claims: Map<String, Value>,
}

/// Parser options for IdP messages and metadata (at most [`NODES_LIMIT`] nodes).
fn parse_options<'a>() -> roxmltree::ParsingOptions<'a> {
    crate::xml::options(NODES_LIMIT)
}

/// The one child `{ns}local` of `node`, if any.
///
/// # Errors
///
/// [`SamlFailure::Structure`] when there are several.
fn child<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &str,
    local: &str,
) -> Result<Option<Node<'a, 'i>>, SamlFailure> {
    only_child(node, ns, local)
}

fn only_child<'a, 'i>(
    node: Node<'a, 'i>,
    ns: &str,
    local: &str,
) -> Result<Option<Node<'a, 'i>>, SamlFailure> {
    let mut found = None;
    for c in node.children().filter(|n| is(*n, ns, local)) {
        if found.replace(c).is_some() {
            return Err(SamlFailure::Structure("duplicate_element"));
        }
    }
    Ok(found)
}

/// An absolute http(s) URL with a host (IdP endpoints, the metadata URL).
fn parse_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("must be an http(s) URL with a host".into());
    }
    Ok(url)
}

/// A digest of a SAML `SessionIndex` for the logged-out list (the same list CAS uses).
pub fn session_id(session_index: &str) -> String {
    crate::methods::cas::ticket_id(&format!("saml:{session_index}"))
}

/// A request ID: `_` and 40 hex characters (SAML core §1.3.4: an xs:ID, unique).
pub fn request_id(random: &[u8]) -> String {
    let mut id = String::from("_");
    for b in random {
        id.push_str(&format!("{b:02x}"));
    }
    id
}

/// A digest of an assertion ID for the replay cache key.
pub fn replay_key(assertion_id: &str) -> String {
    let digest = Sha256::digest(assertion_id.as_bytes());
    format!(
        "sso:saml:seen:{}",
        crate::jose::B64URL.encode(digest.get(..18).unwrap_or_default())
    )
}

#[cfg(test)]
mod tests;
