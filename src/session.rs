//! Sealed, stateless sessions: the identity travels in the browser, encrypted and
//! authenticated, so any number of proxies serve one user with only a shared key.
//!
//! A sealed value is a compact JWE (`alg: dir`, `enc: A256CBC-HS512`) whose protected header
//! (the AAD) names the cookie it was written for, so a value moved to another cookie name does
//! not open (security.md E2). Keys form a ring: the first seals, every one opens, so keys
//! rotate without logging anyone out (E7). A value that does not open is simply no session, with
//! no detail (E1).

use std::borrow::Cow;
use std::fmt;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::identity::Identity;
use crate::jose::content::ContentAlg;
use crate::jose::keys::decode_b64_any;
use crate::jose::{b64_segment, strict_object, B64URL};
use crate::random::{self, Random, RandomError};

mod flow;

pub use flow::{Carried, Flow, FLOW_TTL, MAX_FLOWS, MAX_REBINDS};

/// The cookie sealer's content encryption.
const ENC: ContentAlg = ContentAlg::A256CbcHs512;

/// One key of the ring: the 64-byte content key derived from the configured secret.
#[derive(Clone)]
struct RingKey {
    kid: String,
    cek: Vec<u8>,
}

/// The session key ring.
#[derive(Clone)]
pub struct KeyRing {
    keys: Vec<RingKey>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRing({} keys, [redacted])", self.keys.len())
    }
}

impl KeyRing {
    /// Builds the ring from configured secrets (base64url or base64, at least 32 bytes each).
    ///
    /// # Errors
    ///
    /// `(index, reason)` of the first unusable key.
    pub fn new(secrets: &[String]) -> Result<Self, (usize, String)> {
        if secrets.is_empty() {
            return Err((0, "at least one key is required".into()));
        }
        let mut keys = Vec::new();
        for (i, s) in secrets.iter().enumerate() {
            let raw = decode_b64_any(s.trim()).ok_or((i, "not base64url".to_owned()))?;
            if raw.len() < 32 {
                return Err((
                    i,
                    format!("{} bytes once decoded; at least 32 required", raw.len()),
                ));
            }
            if raw.iter().all(|&b| b == raw.first().copied().unwrap_or(0)) {
                return Err((i, "a key of one repeated byte is not a key".into()));
            }
            // Derive rather than use the secret directly, so the same secret configured
            // elsewhere (an HMAC assertion key, say) never becomes this cipher's key.
            let mut mac =
                Hmac::<Sha512>::new_from_slice(&raw).map_err(|_| (i, "bad key".to_owned()))?;
            mac.update(b"sso-filter session cookie v1");
            let cek = mac.finalize().into_bytes().to_vec();
            let kid = B64URL.encode(Sha256::digest(&cek).get(..6).unwrap_or_default());
            keys.push(RingKey { kid, cek });
        }
        Ok(KeyRing { keys })
    }

    /// Seals `payload` for the cookie `name` with the first key.
    ///
    /// # Errors
    ///
    /// [`RandomError`] when no IV can be drawn.
    pub fn seal(
        &self,
        name: &str,
        payload: &[u8],
        rng: &mut dyn Random,
    ) -> Result<String, RandomError> {
        let key = self.keys.first().ok_or(RandomError)?;
        let header = json!({"alg": "dir", "enc": ENC.name(), "kid": key.kid, "cn": name});
        let h = B64URL.encode(header.to_string());
        let iv = random::bytes(rng, ENC.iv_len())?;
        let (ciphertext, tag) = ENC
            .encrypt_cbc(&key.cek, &iv, payload, h.as_bytes())
            .map_err(|_| RandomError)?;
        Ok(format!(
            "{h}..{}.{}.{}",
            B64URL.encode(iv),
            B64URL.encode(ciphertext),
            B64URL.encode(tag)
        ))
    }

    /// Opens a value sealed for cookie `name`; `None` for anything else.
    pub fn open(&self, name: &str, sealed: &str) -> Option<Vec<u8>> {
        let mut parts = sealed.split('.');
        let (Some(h), Some(""), Some(iv), Some(c), Some(t), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return None;
        };
        let header = strict_object(&b64_segment(h).ok()?).ok()?;
        if header.get("alg") != Some(&json!("dir"))
            || header.get("enc") != Some(&json!(ENC.name()))
            || header.get("cn") != Some(&Value::String(name.to_owned()))
        {
            return None;
        }
        let kid = header.get("kid")?.as_str()?;
        let key = self.keys.iter().find(|k| k.kid == kid)?;
        let iv = b64_segment(iv).ok()?;
        let ciphertext = b64_segment(c).ok()?;
        let tag = b64_segment(t).ok()?;
        ENC.decrypt(&key.cek, &iv, &ciphertext, &tag, h.as_bytes())
            .ok()
    }
}

/// What a session cookie holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// Format version.
    pub v: u8,
    /// The identity.
    pub id: Identity,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch: never later than the TTL, nor than the IdP's own
    /// expiry when `expiry_claim` is configured.
    pub exp: u64,
    /// The ID token, kept only for `id_token_hint` at logout when the method asks for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The IdP's tokens: an access token kept only when the method forwards it to the upstream,
    /// and what refreshes it (OIDC's refresh token, the JWT keep-alive's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<UpstreamToken>,
    /// A digest of the CAS service ticket that made the session ([`crate::methods::cas::ticket_id`]):
    /// a single-logout request naming that ticket ends the session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The SAML subject, for the `LogoutRequest` at logout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saml: Option<SamlSubject>,
}

/// What a SAML `LogoutRequest` names (SAML core §3.7.1): the `NameID` as received and the
/// `SessionIndex`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamlSubject {
    /// `NameID` text.
    pub name_id: String,
    /// `NameID/@Format`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// `AuthnStatement/@SessionIndex`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_index: Option<String>,
}

/// A session's token from the IdP, sealed in the cookie with what refreshes it: an access token
/// the upstream receives as `Authorization: Bearer` (OIDC's `forward_access_token`), or none
/// (the JWT keep-alive keeps only the refresh token and when the token ends). The refresh
/// token never leaves the filter except to the refresh endpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamToken {
    /// Access token for the upstream, when the method forwards one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    /// Refresh token, when the IdP gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh: Option<String>,
    /// When the token expires (seconds since the epoch), when the IdP said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<u64>,
}

/// What a method adds to a new session besides the identity.
#[derive(Clone, Debug, Default)]
pub struct SessionExtra {
    /// ID token for `id_token_hint`.
    pub hint: Option<String>,
    /// The IdP's token for the upstream, or what keeps the session alive.
    pub token: Option<UpstreamToken>,
    /// CAS ticket (or SAML session index) digest for single logout.
    pub sid: Option<String>,
    /// SAML subject for the logout request.
    pub saml: Option<SamlSubject>,
    /// An end the IdP set for the session (SAML `SessionNotOnOrAfter`).
    pub exp_cap: Option<u64>,
}

/// The most bytes of sealed value in one cookie, leaving room for the attributes under the
/// browsers' 4096-byte limit per cookie.
pub const CHUNK_BYTES: usize = 3800;
/// The most cookies one session may span.
pub const MAX_CHUNKS: usize = 8;

/// `SameSite` cookie attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SameSite {
    /// `SameSite=Lax`.
    Lax,
    /// `SameSite=None` (requires `Secure`).
    None,
    /// `SameSite=Strict`.
    Strict,
}

impl SameSite {
    fn attribute(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::None => "None",
            SameSite::Strict => "Strict",
        }
    }
}

/// Session cookie policy and keys.
#[derive(Clone, Debug)]
pub struct Cookies {
    /// Base cookie name.
    pub name: String,
    /// Key ring.
    pub ring: KeyRing,
    /// Session lifetime, seconds.
    pub ttl: u64,
    /// Whether cookies carry `Secure`.
    pub secure: bool,
    /// `SameSite` of the session cookie.
    pub same_site: SameSite,
    /// Whether `SameSite=None` cookies also carry `Partitioned` (CHIPS), so browsers that block
    /// third-party cookies keep them for an application embedded in another site's iframe
    /// (a Microsoft Teams tab).
    pub partitioned: bool,
    /// A claim whose NumericDate caps the session's expiry.
    pub expiry_claim: Option<String>,
    /// Whether a configured method's IdP posts the login back cross-site (SAML), so the flow
    /// binding cookie must be `SameSite=None` (when `Secure`).
    pub cross_site_flows: bool,
}

impl Cookies {
    /// The name of chunk `i` (0 is the base name).
    pub fn chunk_name(&self, i: usize) -> String {
        if i == 0 {
            self.name.clone()
        } else {
            format!("{}_{i}", self.name)
        }
    }

    fn flow_prefix(&self) -> String {
        format!("{}_flow_", self.name)
    }

    /// Which session chunk a cookie name is (`name` is 0, `name_1` is 1, ...), without building
    /// any string: this runs for every cookie of every request.
    fn chunk_index(&self, cookie: &str) -> Option<usize> {
        let rest = cookie.strip_prefix(self.name.as_str())?;
        if rest.is_empty() {
            return Some(0);
        }
        let digits = rest.strip_prefix('_')?;
        // Chunk names are written without leading zeros (`name_1`, never `name_01`).
        if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits
            .parse::<usize>()
            .ok()
            .filter(|i| (1..MAX_CHUNKS).contains(i))
    }

    /// Whether a cookie name belongs to the filter (stripped before forwarding).
    pub fn is_ours(&self, cookie: &str) -> bool {
        self.chunk_index(cookie).is_some() || self.is_flow(cookie) || self.is_binding(cookie)
    }

    /// Whether a cookie name is one of the filter's login flows.
    pub fn is_flow(&self, cookie: &str) -> bool {
        cookie
            .strip_prefix(self.name.as_str())
            .is_some_and(|rest| rest.starts_with("_flow_"))
    }

    /// Whether cookies are `Secure` (an https `base_url`, unless switched off).
    pub fn secure(&self) -> bool {
        self.secure
    }

    fn attributes(&self, max_age: u64, same_site: SameSite) -> String {
        // Partitioned mode: every cookie (session, flows, deletions) is `SameSite=None;
        // Secure; Partitioned`, so one partition holds them all and deletions reach them.
        let same_site = if self.partitioned {
            SameSite::None
        } else {
            same_site
        };
        let mut a = format!(
            "; Path=/; HttpOnly; SameSite={}; Max-Age={max_age}",
            same_site.attribute()
        );
        if self.secure {
            a.push_str("; Secure");
            if self.partitioned && same_site == SameSite::None {
                a.push_str("; Partitioned");
            }
        }
        a
    }

    fn delete(&self, name: &str) -> String {
        format!("{name}={}", self.attributes(0, SameSite::Lax))
    }

    /// Reads the session, or `None` when absent, expired, tampered, sealed with an unknown key,
    /// or ambiguous (one name sent twice with different values: cookie tossing, E5).
    pub fn read_session(&self, cookies: &[(String, String)], now: u64) -> Option<Session> {
        self.open_session(&self.sealed_session(cookies)?, now)
    }

    /// The sealed session value the browser sent, chunks joined; `None` when absent or
    /// ambiguous (a chunk sent twice with different values). One pass over the cookies; a
    /// session in one cookie (the usual case) is borrowed, not copied.
    pub fn sealed_session<'c>(&self, cookies: &'c [(String, String)]) -> Option<Cow<'c, str>> {
        let mut chunks: [Option<&'c str>; MAX_CHUNKS] = [None; MAX_CHUNKS];
        for (name, value) in cookies {
            let Some(i) = self.chunk_index(name) else {
                continue;
            };
            let slot = chunks.get_mut(i)?;
            match slot {
                Some(prev) if *prev != value.as_str() => return None,
                _ => *slot = Some(value.as_str()),
            }
        }
        let present = chunks.iter().take_while(|c| c.is_some()).count();
        match (chunks.first().copied().flatten(), present) {
            (None, _) => None,
            (Some(only), 1) => (!only.is_empty()).then_some(Cow::Borrowed(only)),
            _ => {
                let joined: String = chunks.iter().map_while(|c| *c).collect();
                (!joined.is_empty()).then_some(Cow::Owned(joined))
            }
        }
    }

    /// Opens a sealed session value; `None` unless it opens, parses and is live at `now`.
    pub fn open_session(&self, sealed: &str, now: u64) -> Option<Session> {
        let plain = self.ring.open(&self.name, sealed)?;
        let session: Session = serde_json::from_slice(&plain).ok()?;
        (session.v == 1 && session.exp > now && session.iat <= now.saturating_add(300))
            .then_some(session)
    }

    /// `Set-Cookie` values that store `session`, split over chunks, deleting chunks the
    /// browser holds that the new value does not use.
    ///
    /// # Errors
    ///
    /// [`SealError`] when randomness fails or the identity does not fit in [`MAX_CHUNKS`].
    pub fn write_session(
        &self,
        session: &Session,
        held: &[(String, String)],
        now: u64,
        rng: &mut dyn Random,
    ) -> Result<Vec<String>, SealError> {
        let payload = serde_json::to_vec(session).map_err(|_| SealError::TooLarge)?;
        let sealed = self
            .ring
            .seal(&self.name, &payload, rng)
            .map_err(|_| SealError::Random)?;
        let max_age = session.exp.saturating_sub(now);
        let chunks: Vec<&str> = sealed
            .as_bytes()
            .chunks(CHUNK_BYTES)
            // Sealed values are ASCII, so every byte boundary is a char boundary.
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        if chunks.len() > MAX_CHUNKS {
            return Err(SealError::TooLarge);
        }
        let mut out: Vec<String> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "{}={c}{}",
                    self.chunk_name(i),
                    self.attributes(max_age, self.same_site)
                )
            })
            .collect();
        for i in chunks.len()..MAX_CHUNKS {
            let name = self.chunk_name(i);
            if held.iter().any(|(n, _)| *n == name) {
                out.push(self.delete(&name));
            }
        }
        Ok(out)
    }

    /// `Set-Cookie` values that delete the session (every chunk the browser holds, and the
    /// base name always).
    pub fn clear_session(&self, held: &[(String, String)]) -> Vec<String> {
        let mut out = vec![self.delete(&self.name)];
        for i in 1..MAX_CHUNKS {
            let name = self.chunk_name(i);
            if held.iter().any(|(n, _)| *n == name) {
                out.push(self.delete(&name));
            }
        }
        out
    }
}

enum Lookup<'a> {
    Missing,
    One(&'a str),
    Ambiguous,
}

fn unique<'a>(cookies: &'a [(String, String)], name: &str) -> Lookup<'a> {
    let mut found: Option<&str> = None;
    for (n, v) in cookies {
        if n == name {
            match found {
                Some(prev) if prev != v => return Lookup::Ambiguous,
                _ => found = Some(v),
            }
        }
    }
    found.map_or(Lookup::Missing, Lookup::One)
}

/// Why a session could not be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// The random source failed.
    Random,
    /// The identity is too large for [`MAX_CHUNKS`] cookies.
    TooLarge,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::SystemRandom;

    pub(super) fn cookies(keys: &[&str]) -> Cookies {
        Cookies {
            name: "sso_session".into(),
            ring: KeyRing::new(&keys.iter().map(|k| (*k).to_owned()).collect::<Vec<_>>()).unwrap(),
            ttl: 3600,
            secure: true,
            same_site: SameSite::Lax,
            partitioned: false,
            expiry_claim: None,
            cross_site_flows: false,
        }
    }

    pub(super) const K1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
    const K2: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA";

    fn session(attr_len: usize) -> Session {
        let mut id = Identity {
            login: "alice".into(),
            method: "local".into(),
            ..Identity::default()
        };
        id.attributes
            .insert("big".into(), Value::String("x".repeat(attr_len)));
        Session {
            v: 1,
            id,
            iat: 100,
            exp: 1000,
            hint: None,
            token: None,
            sid: None,
            saml: None,
        }
    }

    fn as_request(set_cookies: &[String]) -> Vec<(String, String)> {
        set_cookies
            .iter()
            .filter(|c| !c.contains("Max-Age=0"))
            .map(|c| {
                let nv = c.split(';').next().unwrap();
                let (n, v) = nv.split_once('=').unwrap();
                (n.to_owned(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn round_trip_rotation_and_tamper() {
        let c = cookies(&[K1]);
        let set = c
            .write_session(&session(10), &[], 100, &mut SystemRandom)
            .unwrap();
        assert_eq!(set.len(), 1);
        assert!(
            set[0].contains("HttpOnly")
                && set[0].contains("Secure")
                && set[0].contains("Max-Age=900")
        );
        let req = as_request(&set);
        assert_eq!(c.read_session(&req, 200).unwrap().id.login, "alice");
        assert!(c.read_session(&req, 1000).is_none(), "expired");
        // Rotation: a new first key still opens the old cookie; dropping the old key does not.
        assert!(cookies(&[K2, K1]).read_session(&req, 200).is_some());
        assert!(cookies(&[K2]).read_session(&req, 200).is_none());
        // Every single-character change is no session.
        let value = &req[0].1;
        for i in (0..value.len()).step_by(7) {
            let mut bytes = value.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let tampered = vec![("sso_session".to_owned(), String::from_utf8(bytes).unwrap())];
            if tampered[0].1 != *value {
                assert!(c.read_session(&tampered, 200).is_none(), "byte {i}");
            }
        }
        // A value moved to another cookie name does not open.
        assert!(c.ring.open("other", value).is_none());
        // Cookie tossing: two different values under one name is no session.
        let tossed = vec![req[0].clone(), ("sso_session".into(), "x".into())];
        assert!(c.read_session(&tossed, 200).is_none());
    }

    /// The filter's cookies are told apart by name alone (every cookie of every request is
    /// asked): the session and its chunks, and the flows; nothing that merely looks close.
    #[test]
    fn cookie_names_are_ours_or_not() {
        let c = cookies(&[K1]);
        for ours in [
            "sso_session",
            "sso_session_1",
            "sso_session_7",
            "sso_session_flow_abc",
            "sso_session_bind",
        ] {
            assert!(c.is_ours(ours), "{ours}");
        }
        for theirs in [
            "sso_session_8",
            "sso_session_01",
            "sso_session_",
            "sso_session_1x",
            "sso_sessionx",
            "sso_session_bindx",
            "sso_session_bin",
            "sso_sessio",
            "other",
        ] {
            assert!(!c.is_ours(theirs), "{theirs}");
        }
    }

    #[test]
    fn large_identities_split_and_reassemble() {
        let c = cookies(&[K1]);
        let set = c
            .write_session(&session(6000), &[], 100, &mut SystemRandom)
            .unwrap();
        assert!(set.len() >= 2, "{}", set.len());
        assert!(set.iter().all(|s| s.len() < 4096));
        let req = as_request(&set);
        assert_eq!(c.read_session(&req, 200).unwrap(), session(6000));
        // Writing a small session afterwards deletes the stale chunks.
        let small = c
            .write_session(&session(1), &req, 100, &mut SystemRandom)
            .unwrap();
        assert!(small.iter().any(|s| s.starts_with("sso_session_1=;")));
        // A missing middle chunk is no session.
        let mut partial = req.clone();
        partial.remove(1);
        assert!(c.read_session(&partial, 200).is_none());
        assert_eq!(
            c.write_session(&session(40_000), &[], 100, &mut SystemRandom),
            Err(SealError::TooLarge)
        );
    }
}
