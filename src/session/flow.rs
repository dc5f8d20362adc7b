//! Login flows: what must survive the round trip through the login page or the IdP.
//!
//! A flow is carried one of two ways:
//!
//! - **In the state itself** (the default): the OAuth2/OIDC `state`, the SAML `RelayState`,
//!   the CAS service URL's `state`, the login form's hidden field. The flow is sealed with the
//!   session key ring under a name no cookie has, so nothing is kept per flow and any number
//!   of logins may run at once (a dashboard page with twelve iframes that all need a login).
//!   The sealed flow names a digest of the browser's **binding cookie** (one per browser, not
//!   one per flow), so a state taken to another browser does not finish there (login CSRF,
//!   security.md F2). Single use is the engine's used-flow list.
//! - **In a cookie of its own**, for providers whose `state` cannot hold a sealed flow
//!   (WeChat allows 128 bytes of `[a-zA-Z0-9]`): one cookie per flow, at most [`MAX_FLOWS`].
//!
//! Parallel logins race for the binding cookie only when the browser has none yet: each of
//! twelve first requests draws its own value and the browser keeps the last. A flow that comes
//! back sealed for another value of the same browser's cookie ([`Carried::Rebound`]) starts
//! again by itself, now with the value the browser holds (at most [`MAX_REBINDS`] times);
//! nothing it carried back is used.

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{unique, Cookies, Lookup, SameSite};
use crate::jose::B64URL;
use crate::random::{self, Random, RandomError};

/// An in-progress login: what must survive the round trip through the login page or the IdP.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    /// Format version.
    pub v: u8,
    /// The flow's random id: its key in the used-flow list and, for a flow kept in a cookie,
    /// the state sent in the form or the IdP's `state` parameter.
    pub state: String,
    /// Where to go after login (already validated; validated again on use).
    pub rd: String,
    /// The method being used.
    pub method: String,
    /// The tenant code, when the login is for a tenant.
    pub tenant: Option<String>,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
    /// OIDC nonce sent in the authorization request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// PKCE code verifier (RFC 7636).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifier: Option<String>,
    /// The login variant a provider started (QR, in-app, ...), so its callback takes the same
    /// road back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// A flow carried in the state: the digest of the browser's binding cookie it was sealed
    /// for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// How many times this login already started again by itself (see [`Carried::Rebound`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retry: u8,
}

/// How long a login flow may take, seconds.
pub const FLOW_TTL: u64 = 600;
/// The most flow cookies a browser keeps at once (parallel tabs); older ones are dropped.
pub const MAX_FLOWS: usize = 4;

/// How many times a login whose flow was sealed for an earlier binding value starts again
/// by itself before it is refused.
pub const MAX_REBINDS: u8 = 2;

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's `skip_serializing_if` passes a reference
fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// What a state carried back opens to.
#[derive(Debug, PartialEq)]
pub enum Carried {
    /// Not a sealed flow: a flow kept in a cookie is looked up by it.
    NotSealed,
    /// A live flow, sealed for the binding cookie this browser sent.
    Bound(Flow),
    /// A live flow sealed for another value of this browser's binding cookie: parallel logins
    /// that began before the browser had one. It starts again; nothing it carried is used.
    Rebound(Flow),
    /// Sealed by us but expired, or the browser sent no (or an ambiguous) binding cookie.
    Unbound,
}

impl Cookies {
    /// Seals a login flow into its own cookie (one per flow, so parallel tabs do not overwrite
    /// each other), dropping the oldest when the browser already holds [`MAX_FLOWS`].
    ///
    /// # Errors
    ///
    /// [`RandomError`] when no IV can be drawn.
    pub fn write_flow(
        &self,
        flow: &Flow,
        held: &[(String, String)],
        now: u64,
        rng: &mut dyn Random,
    ) -> Result<Vec<String>, RandomError> {
        self.write_flow_as(flow, held, now, rng, SameSite::Lax)
    }

    /// [`Self::write_flow`] for a flow that comes back by a cross-site POST (the SAML
    /// HTTP-POST binding): `SameSite=None` when cookies are `Secure`, so the browser sends it
    /// with the IdP's form post (security.md I13); `Lax` otherwise (plain-HTTP test setups, where
    /// browsers refuse `None`).
    ///
    /// # Errors
    ///
    /// [`RandomError`] when no IV can be drawn.
    pub fn write_cross_site_flow(
        &self,
        flow: &Flow,
        held: &[(String, String)],
        now: u64,
        rng: &mut dyn Random,
    ) -> Result<Vec<String>, RandomError> {
        let same_site = if self.secure {
            SameSite::None
        } else {
            SameSite::Lax
        };
        self.write_flow_as(flow, held, now, rng, same_site)
    }

    fn write_flow_as(
        &self,
        flow: &Flow,
        held: &[(String, String)],
        now: u64,
        rng: &mut dyn Random,
        same_site: SameSite,
    ) -> Result<Vec<String>, RandomError> {
        let name = format!("{}{}", self.flow_prefix(), flow_id(&flow.state));
        let payload = serde_json::to_vec(flow).map_err(|_| RandomError)?;
        let sealed = self.ring.seal(&name, &payload, rng)?;
        let mut out = vec![format!(
            "{name}={sealed}{}",
            self.attributes(FLOW_TTL, same_site)
        )];
        let mut live: Vec<(u64, &str)> = held
            .iter()
            .filter(|(n, _)| n.starts_with(&self.flow_prefix()) && *n != name)
            .map(|(n, v)| (self.open_flow(n, v, now).map_or(0, |f| f.exp), n.as_str()))
            .collect();
        live.sort_unstable();
        let excess = (live.len() + 1).saturating_sub(MAX_FLOWS);
        for (exp, n) in &live {
            if *exp == 0 {
                out.push(self.delete(n));
            }
        }
        for (_, n) in live.iter().filter(|(e, _)| *e != 0).take(excess) {
            out.push(self.delete(n));
        }
        Ok(out)
    }

    fn open_flow(&self, name: &str, value: &str, now: u64) -> Option<Flow> {
        let plain = self.ring.open(name, value)?;
        let flow: Flow = serde_json::from_slice(&plain).ok()?;
        (flow.v == 1 && flow.exp > now).then_some(flow)
    }

    /// Finds the live flow whose state equals `state` (compared in constant time), with the
    /// `Set-Cookie` that deletes it: a flow is used once.
    pub fn take_flow(
        &self,
        cookies: &[(String, String)],
        state: &str,
        now: u64,
    ) -> Option<(Flow, String)> {
        let name = format!("{}{}", self.flow_prefix(), flow_id(state));
        let Lookup::One(value) = unique(cookies, &name) else {
            return None;
        };
        let flow = self.open_flow(&name, value, now)?;
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(flow.state.as_bytes(), state.as_bytes()).into();
        same.then(|| (flow, self.delete(&name)))
    }

    /// The binding cookie's name.
    fn binding_name(&self) -> String {
        format!("{}_bind", self.name)
    }

    /// Whether a cookie name is the browser's flow binding.
    pub fn is_binding(&self, cookie: &str) -> bool {
        cookie
            .strip_prefix(self.name.as_str())
            .is_some_and(|rest| rest == "_bind")
    }

    /// The name a flow carried in a state is sealed under: no cookie has it, so neither a
    /// session nor a flow cookie opens as a state, nor a state as either.
    fn state_name(&self) -> String {
        format!("{}_flow_state", self.name)
    }

    /// Seals `flow` into the state the IdP (or the login form) carries back, bound to this
    /// browser, with the `Set-Cookie` that keeps the binding cookie for one more
    /// [`FLOW_TTL`]. The browser's binding value is kept when it has one, so logins already on
    /// their way stay valid.
    ///
    /// # Errors
    ///
    /// [`RandomError`] when no value or IV can be drawn.
    pub fn carry_flow(
        &self,
        flow: &mut Flow,
        held: &[(String, String)],
        rng: &mut dyn Random,
    ) -> Result<(String, String), RandomError> {
        let name = self.binding_name();
        let value = match unique(held, &name) {
            Lookup::One(v) if well_formed_binding(v) => v.to_owned(),
            _ => B64URL.encode(random::bytes(rng, BINDING_BYTES)?),
        };
        flow.bind = Some(binding_digest(&value));
        let payload = serde_json::to_vec(flow).map_err(|_| RandomError)?;
        let sealed = self.ring.seal(&self.state_name(), &payload, rng)?;
        // One cookie serves every flow, so it must reach every way back: `SameSite=None` when
        // a configured method returns by a cross-site POST (SAML) and cookies are `Secure`.
        let same_site = if self.cross_site_flows && self.secure {
            SameSite::None
        } else {
            SameSite::Lax
        };
        let cookie = format!("{name}={value}{}", self.attributes(FLOW_TTL, same_site));
        Ok((sealed, cookie))
    }

    /// Opens a state carried back: the flow and whether it is this browser's.
    pub fn open_carried(&self, held: &[(String, String)], state: &str, now: u64) -> Carried {
        let Some(plain) = self.ring.open(&self.state_name(), state) else {
            return Carried::NotSealed;
        };
        let flow = match serde_json::from_slice::<Flow>(&plain) {
            Ok(f) if f.v == 1 && f.exp > now => f,
            _ => return Carried::Unbound,
        };
        let (Some(bind), Lookup::One(value)) =
            (flow.bind.as_deref(), unique(held, &self.binding_name()))
        else {
            return Carried::Unbound;
        };
        let same: bool =
            subtle::ConstantTimeEq::ct_eq(binding_digest(value).as_bytes(), bind.as_bytes()).into();
        if same {
            Carried::Bound(flow)
        } else {
            Carried::Rebound(flow)
        }
    }
}

/// The cookie-name suffix of a flow: a digest of its state, never the state itself.
fn flow_id(state: &str) -> String {
    let digest = Sha256::digest(state.as_bytes());
    B64URL.encode(digest.get(..6).unwrap_or_default())
}

/// Random bytes in a binding value.
const BINDING_BYTES: usize = 16;

/// A binding value this filter could have written (anything else is replaced).
fn well_formed_binding(v: &str) -> bool {
    v.len() == 22
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a sealed flow names of its binding cookie: a digest, so the state (which passes
/// through the IdP and its logs) never holds the cookie's value, even encrypted.
fn binding_digest(value: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"sso-filter flow binding v1\0");
    h.update(value.as_bytes());
    B64URL.encode(h.finalize().get(..16).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::super::tests::cookies;
    use super::super::tests::K1;
    use super::*;
    use crate::random::SystemRandom;

    #[test]
    fn flows_are_single_use_and_bounded() {
        let c = cookies(&[K1]);
        let mut held: Vec<(String, String)> = Vec::new();
        for i in 0..6 {
            let flow = Flow {
                v: 1,
                state: format!("state-{i}"),
                rd: "/".into(),
                method: "local".into(),
                tenant: None,
                exp: 700 + i,
                nonce: None,
                verifier: None,
                variant: None,
                bind: None,
                retry: 0,
            };
            let set = c.write_flow(&flow, &held, 100, &mut SystemRandom).unwrap();
            for s in &set {
                let (n, v) = s.split(';').next().unwrap().split_once('=').unwrap();
                held.retain(|(hn, _)| hn != n);
                if !s.contains("Max-Age=0") {
                    held.push((n.to_owned(), v.to_owned()));
                }
            }
        }
        assert_eq!(held.len(), MAX_FLOWS);
        assert!(
            c.take_flow(&held, "state-0", 100).is_none(),
            "oldest dropped"
        );
        let (flow, delete) = c.take_flow(&held, "state-5", 100).unwrap();
        assert_eq!(flow.state, "state-5");
        assert!(delete.contains("Max-Age=0"));
        assert!(c.take_flow(&held, "state-5", 800).is_none(), "expired");
        assert!(c.take_flow(&held, "state-x", 100).is_none());
    }

    fn carried(c: &Cookies, held: &[(String, String)]) -> (Flow, String, String) {
        let mut flow = Flow {
            v: 1,
            state: "id-1".into(),
            rd: "/dash".into(),
            method: "oidc".into(),
            tenant: None,
            exp: 700,
            nonce: Some("n".into()),
            verifier: Some("v".into()),
            variant: None,
            bind: None,
            retry: 0,
        };
        let (state, cookie) = c.carry_flow(&mut flow, held, &mut SystemRandom).unwrap();
        (flow, state, cookie)
    }

    fn as_held(cookie: &str) -> Vec<(String, String)> {
        let (n, v) = cookie.split(';').next().unwrap().split_once('=').unwrap();
        vec![(n.to_owned(), v.to_owned())]
    }

    #[test]
    fn a_state_opens_only_with_its_binding_cookie() {
        let c = cookies(&[K1]);
        let (flow, state, cookie) = carried(&c, &[]);
        assert!(cookie.starts_with("sso_session_bind=") && cookie.contains("Max-Age=600"));
        let held = as_held(&cookie);
        assert_eq!(
            c.open_carried(&held, &state, 100),
            Carried::Bound(flow.clone())
        );
        assert_eq!(
            c.open_carried(&held, &state, 700),
            Carried::Unbound,
            "expired"
        );
        assert_eq!(
            c.open_carried(&[], &state, 100),
            Carried::Unbound,
            "no binding"
        );
        let other = vec![("sso_session_bind".to_owned(), "A".repeat(22))];
        assert_eq!(c.open_carried(&other, &state, 100), Carried::Rebound(flow));
        let twice = vec![held[0].clone(), other[0].clone()];
        assert_eq!(
            c.open_carried(&twice, &state, 100),
            Carried::Unbound,
            "ambiguous"
        );
        assert_eq!(
            c.open_carried(&held, "plain-state", 100),
            Carried::NotSealed
        );
        // A state is not a session, nor a session a state.
        assert!(c.open_session(&state, 100).is_none());
    }

    #[test]
    fn later_flows_keep_the_browsers_binding() {
        let c = cookies(&[K1]);
        let (_, first, cookie) = carried(&c, &[]);
        let held = as_held(&cookie);
        let (_, second, again) = carried(&c, &held);
        assert_eq!(as_held(&again), held, "same value, refreshed");
        assert!(matches!(
            c.open_carried(&held, &first, 100),
            Carried::Bound(_)
        ));
        assert!(matches!(
            c.open_carried(&held, &second, 100),
            Carried::Bound(_)
        ));
        // A value the filter could not have written is replaced.
        let odd = vec![("sso_session_bind".to_owned(), "x".to_owned())];
        let (_, _, fresh) = carried(&c, &odd);
        assert_ne!(as_held(&fresh), odd);
    }

    #[test]
    fn the_state_does_not_hold_the_binding_value() {
        let c = cookies(&[K1]);
        let (flow, _, cookie) = carried(&c, &[]);
        let value = &as_held(&cookie)[0].1;
        assert_ne!(flow.bind.as_deref(), Some(value.as_str()));
    }
}
