//! Fuzz targets and the helpers the public-corpus tests share (cargo feature `fuzzing`, never in
//! a deployed build).
//!
//! Each `pub fn` in [`targets`] takes the raw bytes libFuzzer hands it and **panics when a
//! property fails**: a refusal that still yields an identity, a cookie that opens although we
//! never sealed it, a parse -> serialise -> parse that is not stable. The same functions run in
//! three places:
//!
//! - `fuzz/fuzz_targets/<name>.rs` (cargo-fuzz, libFuzzer, nightly): `make fuzz`;
//! - `tests/fuzz_regressions.rs` (stable `cargo test`): every seed in `fuzz/seeds/<name>/`
//!   and every reproducer in `fuzz/regressions/<name>/`, in `make test` and so in CI;
//! - `tests/corpora.rs` uses [`Harness`] and the fixture accessors for the public corpora.
//!
//! Where plain bytes would never get past the first check, the input is read as a little
//! program of edits applied to a valid, signed object (see [`Edits`]): a mutated JWS, JWE,
//! sealed cookie or signed SAML Response, so the checks behind the signature are reached.
//!
//! Panicking is the point of this module, so the library-wide lints against it are lifted here.

#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing
)]

use std::sync::OnceLock;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::cache::MemoryCache;
use crate::http::Callout;
use crate::random::{Random, RandomError};
use crate::{CalloutResponse, Env, Filter, HeaderEdit, RequestHead, Response, Step};

/// The fixtures the targets start from, compiled in so a fuzz binary needs no files.
pub mod fixtures {
    /// tests/fixtures/jwt/cases.json (jwcrypto-made JWS/JWE cases).
    pub const JWT_CASES: &str = include_str!("../tests/fixtures/jwt/cases.json");
    /// The RS256 signing key (PKCS#8 PEM) of the JWT cases.
    pub const RSA_SIGN_PRIVATE: &str =
        include_str!("../tests/fixtures/jwt/keys/rsa-sign.private.pem");
    /// Its public half.
    pub const RSA_SIGN_PUBLIC: &str =
        include_str!("../tests/fixtures/jwt/keys/rsa-sign.public.pem");
    /// The JWE key-transport key (PKCS#8 PEM).
    pub const RSA_ENC_PRIVATE: &str =
        include_str!("../tests/fixtures/jwt/keys/rsa-enc.private.pem");
    /// SAML fixture metadata (clock, request ID, entity IDs).
    pub const SAML_META: &str = include_str!("../tests/fixtures/saml2/meta.json");
    /// The test IdP's certificate.
    pub const SAML_IDP_CRT: &str = include_str!("../tests/fixtures/saml2/idp.crt");
    /// The test IdP's private key (PKCS#8 PEM), for attack variants that need a fresh signature.
    pub const SAML_IDP_KEY: &str = include_str!("../tests/fixtures/saml2/idp.key");
    /// The IdP's LogoutRequest by the HTTP-POST binding, signed inside the XML (pysaml2).
    pub const SAML_LOGOUT_REQUEST_POST: &str =
        include_str!("../tests/fixtures/saml2/logout_request_post.xml");
    /// The SP's private key (decrypts the encrypted fixtures).
    pub const SAML_SP_KEY: &str = include_str!("../tests/fixtures/saml2/sp.key");
    /// Signed Responses made by pysaml2 + xmlsec1: (name, XML).
    pub const SAML_SIGNED: [(&str, &str); 6] = [
        (
            "signed_response",
            include_str!("../tests/fixtures/saml2/signed_response.xml"),
        ),
        (
            "signed_assertion",
            include_str!("../tests/fixtures/saml2/signed_assertion.xml"),
        ),
        (
            "signed_both",
            include_str!("../tests/fixtures/saml2/signed_both.xml"),
        ),
        (
            "encrypted_aes128_cbc",
            include_str!("../tests/fixtures/saml2/encrypted_aes128_cbc.xml"),
        ),
        (
            "encrypted_aes256_gcm",
            include_str!("../tests/fixtures/saml2/encrypted_aes256_gcm.xml"),
        ),
        (
            "signed_sha1",
            include_str!("../tests/fixtures/saml2/signed_sha1.xml"),
        ),
    ];
    /// The session key every harness configuration uses (tests/common KEY).
    pub const SESSION_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
}

// ---- A deterministic engine driver ---------------------------------------------------------

/// Randomness from a counter (SHA-256 of a seed and a counter): fuzzing must be reproducible,
/// and no property here depends on unpredictability.
#[derive(Debug, Default)]
pub struct CounterRandom(u64);

impl Random for CounterRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(32) {
            self.0 += 1;
            let block = Sha256::digest(self.0.to_be_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

/// How one request ended.
#[derive(Debug)]
pub enum Done {
    /// Forwarded upstream with these edits.
    Forwarded(Vec<HeaderEdit>),
    /// Answered locally.
    Answered(Response),
}

impl Done {
    /// The response, if answered.
    pub fn response(&self) -> Option<&Response> {
        match self {
            Done::Answered(r) => Some(r),
            Done::Forwarded(_) => None,
        }
    }

    /// The status of a local answer (0 for a forward).
    pub fn status(&self) -> u16 {
        self.response().map_or(0, |r| r.status)
    }

    /// A response header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.response()?
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Identity headers set on a forwarded request (`x-sso-*`, the defaults).
    pub fn identity(&self) -> Vec<(String, String)> {
        match self {
            Done::Forwarded(edits) => edits
                .iter()
                .filter_map(|e| match e {
                    HeaderEdit::Set(n, v) if n.starts_with("x-sso-") => {
                        Some((n.clone(), v.clone()))
                    }
                    _ => None,
                })
                .collect(),
            Done::Answered(_) => Vec::new(),
        }
    }

    /// `Set-Cookie` values that store a session (`sso_session…=` with a non-zero lifetime; not
    /// a login flow's cookie nor the flow binding).
    pub fn session_cookies(&self) -> Vec<String> {
        self.response()
            .map(|r| {
                r.headers
                    .iter()
                    .filter(|(n, v)| {
                        n == "set-cookie"
                            && v.starts_with("sso_session")
                            && !v.contains("_flow_")
                            && !v.starts_with("sso_session_bind=")
                            && !v.contains("Max-Age=0")
                    })
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether this outcome lets anyone in: an identity upstream or a new session.
    pub fn admits(&self) -> bool {
        !self.identity().is_empty() || !self.session_cookies().is_empty()
    }
}

/// A filter with a fixed clock, a deterministic random source and a memory cache.
pub struct Harness {
    /// The filter.
    pub filter: Filter,
    /// The clock (seconds).
    pub now: u64,
    /// The shared cache.
    pub cache: MemoryCache,
    rng: CounterRandom,
    /// Callouts made by the last [`Harness::run`].
    pub callouts: Vec<Callout>,
}

impl Harness {
    /// A harness for a configuration (panics when it does not load: a harness bug).
    pub fn new(config: &Value, now: u64) -> Self {
        let filter = Filter::from_json(config.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("harness config: {e}"));
        Harness {
            filter,
            now,
            cache: MemoryCache::default(),
            rng: CounterRandom::default(),
            callouts: Vec::new(),
        }
    }

    /// Runs one request to its end: bodies are handed over, callouts answered by `idp`.
    pub fn run(
        &mut self,
        method: &str,
        target: &str,
        headers: Vec<(String, String)>,
        body: &[u8],
        idp: &mut dyn FnMut(&Callout) -> CalloutResponse,
    ) -> Done {
        let head = RequestHead {
            method: method.into(),
            path: target.into(),
            headers,
            client: None,
            peer: None,
        };
        self.callouts.clear();
        let mut env = Env {
            now: self.now,
            now_ms: self.now * 1000,
            rng: &mut self.rng,
            cache: &self.cache,
            fleet: Default::default(),
        };
        let mut outcome = self.filter.on_request(&head, &mut env);
        // A login never needs more than a handful of round trips; more is a loop.
        for _ in 0..32 {
            match outcome.step {
                Step::Continue(edits) => return Done::Forwarded(edits),
                Step::Respond(response) => {
                    assert!(
                        response.status != 500,
                        "a 500 answer: {}",
                        String::from_utf8_lossy(&response.body)
                    );
                    return Done::Answered(response);
                }
                Step::ReadBody {
                    wait: pending,
                    limit,
                } => {
                    let body = body.get(..body.len().min(limit + 1)).unwrap_or(body);
                    outcome = self.filter.on_body(pending, body, &mut env);
                }
                Step::Callout(c, pending) => {
                    let answer = idp(&c);
                    self.callouts.push(c);
                    outcome = self.filter.on_callout_response(pending, answer, &mut env);
                }
                Step::Stream(_, pending) => {
                    outcome = self.filter.on_stream_reply(
                        pending,
                        crate::http::StreamReply {
                            data: Vec::new(),
                            end: crate::http::StreamEnd::Failed,
                        },
                        &mut env,
                    );
                }
            }
        }
        panic!("more than 32 steps for one request: {target}");
    }

    /// A browser navigation with these cookies.
    pub fn get(&mut self, target: &str, cookie: Option<&str>) -> Done {
        let mut headers = vec![("accept".to_owned(), "text/html".to_owned())];
        if let Some(c) = cookie {
            headers.push(("cookie".to_owned(), c.to_owned()));
        }
        self.run("GET", target, headers, b"", &mut no_callouts)
    }
}

/// An IdP that must not be called.
pub fn no_callouts(c: &Callout) -> CalloutResponse {
    panic!("unexpected callout to {}", c.url)
}

/// `name=value` pairs of `Set-Cookie` values, joined as a `Cookie` header.
pub fn cookie_header(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .filter(|c| !c.contains("Max-Age=0"))
        .filter_map(|c| c.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

// ---- Fixture accessors ------------------------------------------------------------------------

/// The parsed JWT cases.
pub fn jwt_cases() -> &'static Value {
    static CASES: OnceLock<Value> = OnceLock::new();
    CASES.get_or_init(|| serde_json::from_str(fixtures::JWT_CASES).expect("cases.json"))
}

/// A configuration with one method under `methods.m`.
pub fn config_with(method: &Value) -> Value {
    config_named("m", method)
}

/// A configuration with one method under `methods.<name>` (the SAML fixtures were made for
/// `saml`: its name is part of the ACS URL and the SP entity ID).
pub fn config_named(name: &str, method: &Value) -> Value {
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [fixtures::SESSION_KEY]},
        "public_paths": ["/healthz", "/static/"],
        "methods": {name: method}
    })
}

/// The SAML fixture metadata.
pub fn saml_meta() -> &'static Value {
    static META: OnceLock<Value> = OnceLock::new();
    META.get_or_init(|| serde_json::from_str(fixtures::SAML_META).expect("meta.json"))
}

/// The `saml2` method configuration the fixtures were made for (SP key included, so the
/// encrypted fixtures decrypt).
pub fn saml_method() -> Value {
    let m = saml_meta();
    json!({"type": "saml2",
        "idp_entity_id": m["idp_entity_id"],
        "idp_sso_url": "https://idp.example.org/sso/redirect",
        "idp_certificates": [fixtures::SAML_IDP_CRT],
        "sp_private_key": fixtures::SAML_SP_KEY,
        "name_id_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
        "mapping": {"name": "displayName", "email": "mail", "groups": "eduPersonAffiliation"}})
}

/// The configured SAML method, built once.
pub fn saml2() -> &'static crate::methods::saml2::Saml2 {
    static SAML: OnceLock<crate::methods::saml2::Saml2> = OnceLock::new();
    SAML.get_or_init(|| {
        let mut method = saml_method();
        // `type` and `mapping` belong to the generic method layer, not the SAML settings.
        if let Some(m) = method.as_object_mut() {
            m.remove("type");
            m.remove("mapping");
        }
        let raw: crate::methods::saml2::RawSaml2 =
            serde_json::from_value(method).expect("saml raw");
        crate::methods::saml2::Saml2::from_raw(raw, "methods.saml").expect("saml config")
    })
}

/// Verifies a Response document as the ACS would for the fixtures' request, at their clock.
pub fn saml_verify(
    xml: &str,
) -> Result<crate::methods::saml2::Verified, crate::methods::saml2::SamlFailure> {
    let m = saml_meta();
    let expect = crate::methods::saml2::Expect {
        sp_entity_id: m["sp_entity_id"].as_str().unwrap_or_default(),
        acs_url: m["acs"].as_str().unwrap_or_default(),
        request_id: m["request_id"].as_str().unwrap_or_default(),
        now: m["now"].as_u64().unwrap_or_default() + 5,
        idp: None,
    };
    saml2().verify_xml(xml, &expect)
}

// ---- Structure-aware mutation ------------------------------------------------------------------

/// A fuzz input read as edits on a valid object. Each edit is 4 bytes: an operation, a
/// position (2 bytes, modulo the length) and an argument; what follows the last whole edit is
/// text that the `insert`/`replace` edits splice in.
pub struct Edits<'a> {
    ops: &'a [u8],
    text: &'a [u8],
}

impl<'a> Edits<'a> {
    /// Splits the input: the first byte says how many edits follow (at most 16).
    pub fn new(data: &'a [u8]) -> Self {
        let n = data.first().map_or(0, |b| usize::from(*b % 17));
        let ops_len = (n * 4).min(data.len().saturating_sub(1));
        Edits {
            ops: &data[1.min(data.len())..1.min(data.len()) + ops_len],
            text: &data[(1 + ops_len).min(data.len())..],
        }
    }

    /// Applies the edits to `original`.
    pub fn apply(&self, original: &[u8]) -> Vec<u8> {
        let mut out = original.to_vec();
        for op in self.ops.chunks_exact(4) {
            let at = |len: usize| {
                if len == 0 {
                    0
                } else {
                    usize::from(u16::from_be_bytes([op[1], op[2]])) % len
                }
            };
            let arg = op[3];
            match op[0] % 8 {
                // Flip one bit.
                0 if !out.is_empty() => {
                    let i = at(out.len());
                    out[i] ^= 1 << (arg % 8);
                }
                // Set a byte.
                1 if !out.is_empty() => {
                    let i = at(out.len());
                    out[i] = arg;
                }
                // Delete a run.
                2 if !out.is_empty() => {
                    let i = at(out.len());
                    let end = (i + usize::from(arg % 64) + 1).min(out.len());
                    out.drain(i..end);
                }
                // Truncate.
                3 => {
                    let i = at(out.len() + 1);
                    out.truncate(i);
                }
                // Insert the trailing text.
                4 => {
                    let i = at(out.len() + 1);
                    let take = self.text.len().min(usize::from(arg) + 1);
                    out.splice(i..i, self.text[..take].iter().copied());
                }
                // Duplicate a run after itself.
                5 if !out.is_empty() => {
                    let i = at(out.len());
                    let end = (i + usize::from(arg) + 1).min(out.len());
                    let run = out[i..end].to_vec();
                    out.splice(end..end, run);
                }
                // Swap two runs' first bytes (a cheap move).
                6 if out.len() > 1 => {
                    let i = at(out.len());
                    let j = (i + usize::from(arg) + 1) % out.len();
                    out.swap(i, j);
                }
                // Append the trailing text.
                7 => out.extend_from_slice(self.text),
                _ => {}
            }
        }
        out
    }
}

/// Counts how often a target reached a deep point (a callback, a verified signature, an
/// admitted login), so the replay test can prove the seeds get past the first checks.
pub fn reached(point: &'static str) {
    let mut map = REACHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *map.entry(point).or_insert(0) += 1;
}

/// The counts [`reached`] collected.
pub fn reached_counts() -> std::collections::BTreeMap<&'static str, u64> {
    REACHED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

static REACHED: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Picks one of `n` things from a byte.
fn pick(data: &[u8], i: usize, n: usize) -> usize {
    data.get(i).map_or(0, |b| usize::from(*b)) % n.max(1)
}

pub mod targets;
