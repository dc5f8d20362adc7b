//! The fuzz targets. Each takes libFuzzer's bytes and panics when a property fails.

use std::cell::RefCell;

use serde_json::{json, Map, Value};

use super::{
    config_with, cookie_header, fixtures, jwt_cases, no_callouts, pick, reached, saml_verify, Done,
    Edits, Harness,
};
use crate::http::{normalize_path, parse_cookies, strip_query_params, Callout};
use crate::{CalloutResponse, RequestHead};

/// The filter's origin in every harness configuration.
pub const ORIGIN: &str = "https://app.example.com";

/// A fuzz target: raw input in, panic on a property violation.
pub type Target = fn(&[u8]);

/// Every target: (name, function). `fuzz/fuzz_targets/<name>.rs` calls the function; the
/// stable regression test replays `fuzz/seeds/<name>/` and `fuzz/regressions/<name>/` through it.
pub const ALL: &[(&str, Target)] = &[
    ("cookie_header", cookie_header_target),
    ("session_seal", session_seal),
    ("flow_state", flow_state),
    ("path_query", path_query),
    ("form_body", form_body),
    ("jws", jws),
    ("jwe", jwe),
    ("jwt_param", jwt_param),
    ("idp_json", idp_json),
    ("idp_answers", idp_answers),
    ("saml_response", saml_response),
    ("saml_redirect", saml_redirect),
    ("xml_c14n", xml_c14n),
    ("cas_xml", cas_xml),
    ("ldap_ber", ldap_ber),
    ("mapping", mapping),
    ("config", config),
    ("return_url", return_url),
];

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn case(name: &str) -> &'static Value {
    jwt_cases()["cases"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no case {name}"))
}

fn cases_now() -> u64 {
    jwt_cases()["now"].as_u64().unwrap_or_default()
}

// ---- Session cookies ---------------------------------------------------------------------------

struct SessionFixture {
    harness: Harness,
    /// The sealed session value the filter wrote (chunks joined).
    sealed: String,
}

thread_local! {
    static SESSION: RefCell<Option<SessionFixture>> = const { RefCell::new(None) };
}

/// A harness holding a real session, made by logging in with the seed HS256 token.
fn with_session<R>(f: impl FnOnce(&mut SessionFixture) -> R) -> R {
    SESSION.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fixture = slot.get_or_insert_with(|| {
            let seed = case("seed_hs256");
            let mut harness = Harness::new(&config_with(&seed["method"]), cases_now());
            let token: String = url::form_urlencoded::byte_serialize(
                seed["token"].as_str().unwrap_or("").as_bytes(),
            )
            .collect();
            let done = harness.get(&format!("/app?activeAuth=m&jwtParam={token}"), None);
            let set = done.session_cookies();
            assert!(!set.is_empty(), "seed login failed: {done:?}");
            let head = RequestHead {
                method: "GET".into(),
                path: "/".into(),
                headers: vec![("cookie".into(), cookie_header(&set))],
                client: None,
            };
            let sealed = harness
                .filter
                .config()
                .cookies
                .sealed_session(&parse_cookies(&head))
                .expect("sealed");
            SessionFixture { harness, sealed }
        });
        f(fixture)
    })
}

/// `Cookie` headers, possibly several (HTTP/2 splits them): session cookies (including chunk
/// reassembly) and anything else. Property: an identity goes upstream only when the chunks the
/// browser sent join to exactly the value the filter sealed; the filter's cookies never go
/// upstream; `parse_cookies` yields trimmed, non-empty names without `;`.
pub fn cookie_header_target(data: &[u8]) {
    with_session(|fx| {
        let headers: Vec<String> = match pick(data, 0, 3) {
            // Raw header text; a newline starts another `cookie` field.
            0 => text(data.get(1..).unwrap_or_default())
                .split('\n')
                .map(str::to_owned)
                .collect(),
            // The sealed value, edited, spread over 1-4 chunk cookies.
            1 => {
                let edited = text(
                    &Edits::new(data.get(2..).unwrap_or_default()).apply(fx.sealed.as_bytes()),
                );
                let parts = pick(data, 1, 4) + 1;
                vec![spread(&edited, parts)]
            }
            // The sealed value split at fuzzed points, plus fuzzed cookies around it.
            _ => {
                let parts = pick(data, 1, 4) + 1;
                let extra = text(data.get(2..).unwrap_or_default());
                vec![format!("{extra}; {}", spread(&fx.sealed, parts)), extra]
            }
        };
        let head = RequestHead {
            method: "GET".into(),
            path: "/app".into(),
            headers: headers
                .iter()
                .map(|h| ("cookie".to_owned(), h.clone()))
                .chain([("accept".to_owned(), "text/html".to_owned())])
                .collect(),
            client: None,
        };
        let parsed = parse_cookies(&head);
        for (n, v) in &parsed {
            assert!(
                !n.is_empty() && !n.contains(';') && n.trim() == n,
                "cookie name {n:?}"
            );
            assert!(!v.contains(';'), "cookie value {v:?}");
        }
        let done = fx
            .harness
            .run("GET", "/app", head.headers.clone(), b"", &mut no_callouts);
        if !done.identity().is_empty() {
            reached("cookie_header.identity");
            let joined = fx.harness.filter.config().cookies.sealed_session(&parsed);
            assert_eq!(
                joined.as_deref(),
                Some(fx.sealed.as_str()),
                "an identity from a session value the filter never sealed"
            );
        }
        if let Done::Forwarded(edits) = &done {
            for e in edits {
                if let crate::HeaderEdit::Set(n, v) = e {
                    if n == "cookie" {
                        for seg in v.split("; ") {
                            let name = seg.split('=').next().unwrap_or("");
                            assert!(
                                !fx.harness.filter.config().cookies.is_ours(name),
                                "filter cookie {name} forwarded upstream"
                            );
                        }
                    }
                }
            }
        }
    });
}

/// `sso_session=…; sso_session_1=…` with `value` cut into `parts` pieces.
fn spread(value: &str, parts: usize) -> String {
    let bytes = value.as_bytes();
    let size = bytes.len().div_ceil(parts).max(1);
    bytes
        .chunks(size)
        .enumerate()
        .map(|(i, c)| {
            let name = if i == 0 {
                "sso_session".to_owned()
            } else {
                format!("sso_session_{i}")
            };
            format!("{name}={}", String::from_utf8_lossy(c))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The cookie sealer alone. Properties: `open(seal(x)) == x` (seal -> open is stable for any
/// payload); an edited sealed value opens only when the edits left it byte-identical; a value
/// sealed for one cookie name never opens under another.
pub fn session_seal(data: &[u8]) {
    let ring = crate::session::KeyRing::new(&[fixtures::SESSION_KEY.to_owned()]).expect("ring");
    let mut rng = super::CounterRandom::default();
    let sealed = ring.seal("sso_session", data, &mut rng).expect("seal");
    assert_eq!(ring.open("sso_session", &sealed).as_deref(), Some(data));
    assert!(ring.open("sso_session_flow_x", &sealed).is_none());
    let edited = text(&Edits::new(data).apply(sealed.as_bytes()));
    if let Some(plain) = ring.open("sso_session", &edited) {
        assert_eq!(edited, sealed, "an edited sealed value opened");
        assert_eq!(plain, data);
    }
    // Raw input as a sealed value.
    assert!(ring.open("sso_session", &text(data)).is_none() || text(data) == sealed);
}

/// Login flow state: the sealed flow cookie and the `state` parameter. Property: a flow is
/// taken only with the exact cookie value we sealed and the exact state inside it.
pub fn flow_state(data: &[u8]) {
    with_session(|fx| {
        let cookies = &fx.harness.filter.config().cookies;
        let flow = crate::session::Flow {
            v: 1,
            state: "st-0123456789abcdefghijklmnopqrstuvwxyzABCD".into(),
            rd: "/app".into(),
            method: "m".into(),
            tenant: None,
            exp: fx.harness.now + 600,
            nonce: Some("n-1".into()),
            verifier: None,
            variant: None,
        };
        let mut rng = super::CounterRandom::default();
        let set = cookies
            .write_flow(&flow, &[], fx.harness.now, &mut rng)
            .expect("flow");
        let (name, value) = set[0]
            .split(';')
            .next()
            .and_then(|c| c.split_once('='))
            .expect("set-cookie");
        let edited = text(&Edits::new(data.get(1..).unwrap_or_default()).apply(value.as_bytes()));
        let state = if pick(data, 0, 2) == 0 {
            flow.state.clone()
        } else {
            text(data)
        };
        let jar = vec![(name.to_owned(), edited.clone())];
        if let Some((taken, _)) = cookies.take_flow(&jar, &state, fx.harness.now) {
            reached("flow_state.taken");
            assert_eq!(edited, value, "a flow opened from an edited cookie");
            assert_eq!(state, flow.state);
            assert_eq!(taken, flow);
        }
        // Expired flows never come back.
        assert!(cookies
            .take_flow(
                &[(name.to_owned(), value.to_owned())],
                &flow.state,
                flow.exp
            )
            .is_none());
    });
}

// ---- Paths, queries, forms -------------------------------------------------------------------

thread_local! {
    static LOCAL: RefCell<Option<(Harness, String, String)>> = const { RefCell::new(None) };
}

/// A local-login harness with one user, and a real login form's flow cookie and state.
fn with_local<R>(f: impl FnOnce(&mut Harness, &str, &str) -> R) -> R {
    LOCAL.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (h, cookie, state) = slot.get_or_insert_with(|| {
            let hash = crate::password::PasswordHash::create(
                "correct horse battery staple",
                crate::password::MIN_ITERATIONS,
                &mut super::CounterRandom::default(),
            )
            .expect("hash")
            .to_string();
            let config = json!({
                "base_url": ORIGIN,
                "session": {"keys": [fixtures::SESSION_KEY]},
                "public_paths": ["/healthz", "/static/"],
                "methods": {
                    "local": {"type": "local", "max_failures": 1000, "lockout_seconds": 1,
                        "users": [{"login": "alice", "password_hash": hash}]},
                    "saml": super::saml_method()
                }
            });
            let mut h = Harness::new(&config, super::saml_meta()["now"].as_u64().unwrap_or(0));
            let start = h.get("/sso/login?activeAuth=local&rd=%2Fapp", None);
            let form_url = start.header("location").expect("form location").to_owned();
            let form = h.get(&form_url, None);
            let cookie = cookie_header(
                &form
                    .response()
                    .map(|r| {
                        r.headers
                            .iter()
                            .filter(|(n, _)| n == "set-cookie")
                            .map(|(_, v)| v.clone())
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default(),
            );
            let body = String::from_utf8_lossy(&form.response().expect("form").body).into_owned();
            let at = body.find("name=\"state\" value=\"").expect("state field") + 20;
            let state = body[at..].split('"').next().unwrap_or("").to_owned();
            (h, cookie, state)
        });
        f(h, cookie, state)
    })
}

/// Request targets. Properties: `normalize_path` is idempotent and yields a plain absolute path
/// (no empty, `.` or `..` segment, no backslash or control character); stripping query
/// parameters removes exactly those names and keeps the rest in order; through the engine, a
/// request without a session is forwarded only for a public path, and the upstream gets the
/// normalised path the decision was made on.
pub fn path_query(data: &[u8]) {
    let target = text(data);
    let (path, query) = crate::http::split_target(&target);
    if let Ok(n) = normalize_path(path) {
        assert!(n.starts_with('/'), "{n}");
        assert_eq!(
            normalize_path(&n).as_deref(),
            Ok(n.as_str()),
            "not idempotent"
        );
        assert!(!n.contains("//") && !n.contains('\\'), "{n}");
        assert!(
            n.split('/').all(|s| s != "." && s != ".."),
            "dot segment left in {n}"
        );
        assert!(!n.chars().any(char::is_control), "{n:?}");
    }
    let names = ["jwtParam", "activeAuth"];
    let stripped = strip_query_params(query, &names);
    let kept: Vec<(String, String)> = url::form_urlencoded::parse(stripped.as_bytes())
        .into_owned()
        .collect();
    let want: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .filter(|(k, _)| !names.contains(&k.as_str()))
        .collect();
    // `a&=x` style empty names parse alike on both sides; compare what survives.
    assert_eq!(kept, want, "strip_query_params changed other parameters");
    with_local(|h, _, _| {
        let headers = vec![("accept".to_owned(), "application/json".to_owned())];
        let done = h.run("GET", &target, headers, b"", &mut no_callouts);
        if let Done::Forwarded(edits) = &done {
            reached("path_query.forwarded_public");
            assert!(done.identity().is_empty());
            let normal = normalize_path(path).expect("forwarded an unnormalisable path");
            let public = normal == "/healthz" || normal.starts_with("/static/");
            assert!(public, "forwarded {target:?} ({normal}) without a session");
            let upstream = edits
                .iter()
                .find_map(|e| match e {
                    crate::HeaderEdit::Set(n, v) if n == ":path" => Some(v.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| target.clone());
            let (up_path, _) = crate::http::split_target(&upstream);
            assert_eq!(
                up_path, normal,
                "upstream path differs from the decided one"
            );
        }
    });
}

/// Form bodies: the local login form and the SAML ACS. Properties: no wrong password, no
/// garbage, no unsigned SAML post ever yields a session or an identity; never a 500.
pub fn form_body(data: &[u8]) {
    with_local(|h, cookie, state| {
        let body: Vec<u8> = match pick(data, 0, 4) {
            0 => data.get(1..).unwrap_or_default().to_vec(),
            1 => {
                let rest = text(data.get(1..).unwrap_or_default());
                let (user, pw) = rest.split_once('\n').unwrap_or(("alice", &rest));
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("username", user)
                    .append_pair("password", pw)
                    .append_pair("state", state)
                    .finish()
                    .into_bytes()
            }
            2 => {
                let mut b = format!("state={state}&").into_bytes();
                b.extend_from_slice(data.get(1..).unwrap_or_default());
                b
            }
            _ => {
                let target = "/sso/saml/saml/acs";
                let headers = vec![
                    ("accept".to_owned(), "text/html".to_owned()),
                    (
                        "content-type".to_owned(),
                        "application/x-www-form-urlencoded".to_owned(),
                    ),
                    ("cookie".to_owned(), cookie.to_owned()),
                ];
                let done = h.run(
                    "POST",
                    target,
                    headers,
                    data.get(1..).unwrap_or_default(),
                    &mut no_callouts,
                );
                assert!(
                    !done.admits(),
                    "an ACS post without a pending request admitted"
                );
                return;
            }
        };
        let headers = vec![
            ("accept".to_owned(), "text/html".to_owned()),
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
            ("cookie".to_owned(), cookie.to_owned()),
        ];
        let done = h.run("POST", "/login", headers, &body, &mut no_callouts);
        if done.status() == 200 || done.status() == 401 {
            reached("form_body.answered");
        }
        assert!(
            !done.admits(),
            "a login form without the password admitted: {done:?}"
        );
    });
}

// ---- JOSE ------------------------------------------------------------------------------------

/// Compact JWS. Properties: a verifier accepts an edited token only when the edits left it
/// byte-identical (HS256, RS256, ES256, EdDSA, PS256), and a raw input only when it is the
/// original.
pub fn jws(data: &[u8]) {
    let verifiers = jws_verifiers();
    let (verifier, original) = &verifiers[pick(data, 0, verifiers.len())];
    let rest = data.get(1..).unwrap_or_default();
    let edited = text(&Edits::new(rest).apply(original.as_bytes()));
    if verifier.verify(&edited).is_ok() {
        reached("jws.verified");
        assert_eq!(&edited, original, "an edited JWS verified");
    }
    let raw = text(rest);
    if verifier.verify(&raw).is_ok() {
        assert_eq!(&raw, original, "a made-up JWS verified");
    }
}

/// The verifiers of the JWS cases (keys parsed once: key parsing is not what is fuzzed here),
/// each with its original token, checked to verify.
fn jws_verifiers() -> &'static Vec<(crate::jose::jws::Verifier, String)> {
    use crate::jose::jws::Verifier;
    use crate::jose::keys::{JwsAlg, VerifyKey};
    static V: std::sync::OnceLock<Vec<(Verifier, String)>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        [
            "seed_hs256",
            "rs256_pem",
            "es256",
            "eddsa_ed25519",
            "ps256",
            "rs256_jwks_kid",
        ]
        .iter()
        .map(|name| {
            let c = case(name);
            let verify = &c["method"]["verify"];
            let alg = JwsAlg::from_name(verify["alg"].as_str().unwrap_or("")).expect("alg");
            let keys: Vec<(Option<String>, VerifyKey)> = if let Some(s) = verify["secret"].as_str()
            {
                vec![(
                    None,
                    VerifyKey::hmac(alg, s.as_bytes().to_vec()).expect("key"),
                )]
            } else if let Some(p) = verify["public_key"].as_str() {
                vec![(None, VerifyKey::public(alg, p).expect("key"))]
            } else {
                verify["jwks"]["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| {
                        (
                            k["kid"].as_str().map(str::to_owned),
                            VerifyKey::from_jwk(alg, k).expect("jwk"),
                        )
                    })
                    .collect()
            };
            let verifier = Verifier::new(alg, keys);
            let original = c["token"].as_str().unwrap_or("").to_owned();
            assert!(
                verifier.verify(&original).is_ok(),
                "the original must verify"
            );
            (verifier, original)
        })
        .collect()
    })
}

/// Compact JWE (RSA-OAEP-256 + A128CBC-HS256 and the other configured pairs). Property: an
/// edited JWE decrypts only when byte-identical to the original, to the original plaintext.
pub fn jwe(data: &[u8]) {
    let all = jwe_decrypters();
    let (d, original, plain) = &all[pick(data, 0, all.len())];
    let mut rng = super::CounterRandom::default();
    let edited = text(&Edits::new(data.get(1..).unwrap_or_default()).apply(original.as_bytes()));
    if let Ok(got) = d.decrypt(&edited, &mut rng) {
        reached("jwe.decrypted");
        assert_eq!(&edited, original, "an edited JWE decrypted");
        assert_eq!(&got.plaintext, plain);
    }
}

/// The JWE cases' decrypters (the RSA key validated once), tokens and plaintexts.
fn jwe_decrypters() -> &'static Vec<(crate::jose::jwe::Decrypter, String, Vec<u8>)> {
    use crate::jose::content::ContentAlg;
    use crate::jose::jwe::{Decrypter, KeyAlg};
    static D: std::sync::OnceLock<Vec<(Decrypter, String, Vec<u8>)>> = std::sync::OnceLock::new();
    D.get_or_init(|| {
        let key = crate::jose::keys::rsa_private_key(fixtures::RSA_ENC_PRIVATE).expect("key");
        [
            (
                "jwe_rsa_oaep_256_a128cbc_hs256",
                KeyAlg::RsaOaep256,
                ContentAlg::A128CbcHs256,
            ),
            ("jwe_rsa_oaep_a128gcm", KeyAlg::RsaOaep, ContentAlg::A128Gcm),
        ]
        .iter()
        .map(|(name, alg, enc)| {
            let d = Decrypter::new(*alg, *enc, key.clone());
            let original = case(name)["token"].as_str().unwrap_or("").to_owned();
            let plain = d
                .decrypt(&original, &mut super::CounterRandom::default())
                .expect("original decrypts")
                .plaintext;
            (d, original, plain)
        })
        .collect()
    })
}

thread_local! {
    static JWT_HARNESSES: RefCell<Vec<Option<Harness>>> = const { RefCell::new(Vec::new()) };
}

/// A JWT in a URL parameter, through the engine, for every jwcrypto case. Properties: a
/// session is only ever made for a case the reference verifier accepts, from its exact token;
/// the token never goes upstream.
pub fn jwt_param(data: &[u8]) {
    let cases = jwt_cases()["cases"].as_array().expect("cases");
    let i = pick(data, 0, cases.len());
    let c = &cases[i];
    let original = c["token"].as_str().unwrap_or("");
    let token = if pick(data, 1, 2) == 0 {
        text(&Edits::new(data.get(2..).unwrap_or_default()).apply(original.as_bytes()))
    } else {
        text(data.get(2..).unwrap_or_default())
    };
    JWT_HARNESSES.with(|cell| {
        let mut all = cell.borrow_mut();
        if all.len() < cases.len() {
            all.resize_with(cases.len(), || None);
        }
        let h = all[i].get_or_insert_with(|| Harness::new(&config_with(&c["method"]), cases_now()));
        let enc: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
        let done = h.get(&format!("/app?x=1&activeAuth=m&jwtParam={enc}"), None);
        if done.admits() {
            reached("jwt_param.admitted");
            assert_eq!(c["expect"], "accept", "case {} admitted", c["name"]);
            assert_eq!(token, original, "an edited token admitted ({})", c["name"]);
        }
        if let Some(loc) = done.header("location") {
            assert!(!loc.contains("jwtParam="), "token left in {loc}");
        }
        if let Done::Forwarded(edits) = &done {
            assert!(
                !format!("{edits:?}").contains(&token) || token.len() < 8,
                "token forwarded upstream"
            );
        }
    });
}

// ---- IdP answers -------------------------------------------------------------------------------

fn oidc() -> &'static crate::methods::oauth2::OAuth2 {
    static OIDC: std::sync::OnceLock<crate::methods::oauth2::OAuth2> = std::sync::OnceLock::new();
    OIDC.get_or_init(|| {
        let raw: crate::methods::oauth2::RawOAuth2 = serde_json::from_value(json!({
            "issuer": "https://idp.example.com", "client_id": "app", "client_secret": "s"
        }))
        .expect("raw");
        crate::methods::oauth2::OAuth2::from_raw(raw, true, "methods.oidc").expect("oidc")
    })
}

fn rsa_sign_key() -> &'static rsa::RsaPrivateKey {
    static KEY: std::sync::OnceLock<rsa::RsaPrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| crate::jose::keys::rsa_private_key(fixtures::RSA_SIGN_PRIVATE).expect("key"))
}

/// Our JWKS (the RS256 signing key, kid `k1`) and an ID token it signed (made once per `now`:
/// an RSA signature per execution would be most of the fuzzing time).
pub fn oidc_fixture(now: u64) -> (Value, String) {
    thread_local! {
        static MADE: RefCell<Option<(u64, Value, String)>> = const { RefCell::new(None) };
    }
    if let Some((n, j, t)) = MADE.with(|m| m.borrow().clone()) {
        if n == now {
            return (j, t);
        }
    }
    let (j, t) = make_oidc_fixture(now);
    MADE.with(|m| *m.borrow_mut() = Some((now, j.clone(), t.clone())));
    (j, t)
}

fn make_oidc_fixture(now: u64) -> (Value, String) {
    use base64::Engine;
    use jwt_compact::{Algorithm, AlgorithmSignature};
    use rsa::traits::PublicKeyParts;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let k = rsa_sign_key();
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
        "n": b64.encode(k.n().to_bytes_be()), "e": b64.encode(k.e().to_bytes_be())}]});
    let claims = json!({"iss": "https://idp.example.com", "aud": "app", "sub": "alice",
        "nonce": "n-1", "iat": now, "exp": now + 300});
    let input = format!(
        "{}.{}",
        b64.encode(json!({"alg": "RS256", "kid": "k1"}).to_string()),
        b64.encode(claims.to_string())
    );
    let sig = jwt_compact::alg::Rsa::rs256().sign(k, input.as_bytes());
    (jwks, format!("{input}.{}", b64.encode(sig.as_bytes())))
}

fn status_of(b: u8) -> Option<u16> {
    const TABLE: [u16; 16] = [
        200, 200, 200, 200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 429, 502, 503,
    ];
    if b == 0xff {
        None
    } else {
        Some(TABLE[usize::from(b) % TABLE.len()])
    }
}

/// The OAuth 2.0 / OIDC answers, method by method: token, user-info, discovery, JWKS (with a
/// real ID token). Properties: a token answer is accepted only from a 200 JSON object with a
/// string `access_token`; user-info only from a 200 whose `sub` is the ID token's; discovery
/// only when it names the configured issuer; an ID token verifies only under a JWKS key whose
/// modulus is ours, and an edited ID token never.
pub fn idp_json(data: &[u8]) {
    let o = oidc();
    let body = data.get(2..).unwrap_or_default().to_vec();
    let resp = CalloutResponse {
        status: status_of(data.get(1).copied().unwrap_or(0)),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.clone(),
    };
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let now = 1_767_225_600;
    match pick(data, 0, 5) {
        0 => {
            if let Ok(t) = o.token_response(&resp) {
                reached("idp_json.token");
                assert_eq!(resp.status, Some(200));
                let v = parsed.expect("accepted a token answer that is not JSON");
                assert_eq!(v["access_token"].as_str(), Some(t.access_token.as_str()));
            }
        }
        1 => {
            if o.userinfo_response(&resp, Some("alice")).is_ok() {
                assert_eq!(resp.status, Some(200));
                assert_eq!(parsed.expect("json")["sub"], "alice");
            }
        }
        2 => {
            if let Some(doc) = &parsed {
                if o.endpoints_from_discovery(doc).is_ok() {
                    assert_eq!(
                        doc["issuer"].as_str().map(|i| i.trim_end_matches('/')),
                        Some("https://idp.example.com")
                    );
                }
            }
        }
        3 => {
            let (jwks, token) = oidc_fixture(now);
            if let Some(doc) = &parsed {
                if let Ok(Some(claims)) = o.verify_id_token(&token, doc, "n-1", now) {
                    reached("idp_json.id_token");
                    assert_eq!(claims["sub"], "alice");
                    let ours = &jwks["keys"][0]["n"];
                    assert!(
                        doc["keys"]
                            .as_array()
                            .is_some_and(|ks| ks.iter().any(|k| &k["n"] == ours)),
                        "an ID token verified under a JWKS without our key"
                    );
                }
            }
        }
        _ => {
            let (jwks, token) = oidc_fixture(now);
            let edited = text(&Edits::new(&body).apply(token.as_bytes()));
            if let Ok(Some(_)) = o.verify_id_token(&edited, &jwks, "n-1", now) {
                assert_eq!(edited, token, "an edited ID token verified");
            }
        }
    }
}

/// The providers the engine-level IdP target logs in with: (method JSON, callback parameters).
fn providers() -> Vec<(Value, &'static str)> {
    vec![
        (
            json!({"type": "oidc", "issuer": "https://idp.example.com", "client_id": "app",
                "client_secret": "s", "mapping": {"login": "preferred_username"}}),
            "code=the-code",
        ),
        (
            json!({"type": "cas", "server_url": "https://cas.example.org/cas",
                "mapping": {"login": "user"}}),
            "ticket=ST-1-abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        (
            json!({"type": "dingtalk", "corp_id": "dingcorp", "app_key": "dingappkey",
                "app_secret": "app-secret", "api_base": "https://api.example.test",
                "oapi_base": "https://oapi.example.test", "login_base": "https://login.example.test"}),
            "authCode=the-code&code=the-code",
        ),
        (
            json!({"type": "wecom", "corp_id": "ww-corp", "agent_id": 1000002, "secret": "corp-secret",
                "api_base": "https://qyapi.example.test", "oauth_base": "https://open.example.test",
                "login_base": "https://login.example.test"}),
            "code=the-code",
        ),
        (
            json!({"type": "lark", "app_id": "cli_mock", "app_secret": "lark-secret",
                "tenant_key": "tenant-a", "accounts_base": "https://accounts.example.test",
                "open_base": "https://open.example.test"}),
            "code=the-code",
        ),
        (
            json!({"type": "wechat", "mp_app_id": "wxm", "mp_app_secret": "mp-secret",
                "allowed_users": ["oOPENID"]}),
            "code=the-code",
        ),
        (
            json!({"type": "yunzhijia", "app_id": "500000001", "app_secret": "yunzhijia-app-secret-0123456789",
                "eid": "10109", "base": "https://yunzhijia.example.test",
                "mapping": {"login": "jobNo"}}),
            "ticket=TICKET-1",
        ),
        (
            json!({"type": "teams", "client_id": TEAMS_CLIENT, "tenant_id": TEAMS_TENANT,
                "client_secret": "unused-for-tab-sso",
                "jwks_url": format!("https://login.example.test/{TEAMS_TENANT}/discovery/v2.0/keys")}),
            "teams",
        ),
    ]
}

const TEAMS_CLIENT: &str = "0b6f2a54-58a7-4bde-9d4a-111111111111";
const TEAMS_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// A Teams tab-SSO token (v2) signed by our RS256 key, kid `k1`.
fn teams_token(now: u64) -> String {
    use base64::Engine;
    use jwt_compact::{Algorithm, AlgorithmSignature};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = json!({"aud": TEAMS_CLIENT,
        "iss": format!("https://login.microsoftonline.com/{TEAMS_TENANT}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 3600, "azp": "5e3ce6c0-2b1f-4285-8d4b-75ee78787346",
        "ver": "2.0", "scp": "access_as_user", "tid": TEAMS_TENANT, "oid": "oid-li",
        "preferred_username": "li@contoso.example", "name": "Li Si"});
    let input = format!(
        "{}.{}",
        b64.encode(json!({"alg": "RS256", "kid": "k1"}).to_string()),
        b64.encode(claims.to_string())
    );
    let sig = jwt_compact::alg::Rsa::rs256().sign(rsa_sign_key(), input.as_bytes());
    format!("{input}.{}", b64.encode(sig.as_bytes()))
}

thread_local! {
    static IDP_HARNESSES: RefCell<Vec<Option<Harness>>> = const { RefCell::new(Vec::new()) };
}

/// Every IdP answer through the engine (OIDC discovery/token/JWKS/user-info, CAS validation,
/// DingTalk, WeCom, Feishu/Lark, WeChat, Yunzhijia, Teams): a login is started, the browser comes back with a
/// code or ticket, and each callout is answered from the input (`\n--\n` between answers; the
/// first byte of each picks the status, 0xff for no answer at all). Properties: never a 500;
/// nothing is admitted when any answer was a failure status or missing; an admitted login
/// carries a non-empty login without control characters.
pub fn idp_answers(data: &[u8]) {
    let list = providers();
    let i = pick(data, 0, list.len());
    let (method, callback_params) = &list[i];
    let rest = data.get(1..).unwrap_or_default();
    let answers: Vec<&[u8]> = split_answers(rest);
    IDP_HARNESSES.with(|cell| {
        let mut all = cell.borrow_mut();
        if all.len() < list.len() {
            all.resize_with(list.len(), || None);
        }
        let h = all[i].get_or_insert_with(|| Harness::new(&config_with(method), 1_767_225_600));
        // A fresh cache each time: cached app tokens and discovery would make runs depend on
        // earlier inputs.
        h.cache = crate::cache::MemoryCache::default();
        let mut next = 0usize;
        let mut failed = false;
        let mut answer = |_: &Callout| {
            let a = answers.get(next).copied().unwrap_or(b"\xff");
            next += 1;
            let status = status_of(a.first().copied().unwrap_or(0xff));
            if !matches!(status, Some(200..=299)) {
                failed = true;
            }
            CalloutResponse {
                status,
                headers: vec![("content-type".into(), "application/json".into())],
                body: a.get(1..).unwrap_or_default().to_vec(),
            }
        };
        let browser = vec![("accept".to_owned(), "text/html".to_owned())];
        if callback_params.starts_with("ticket=TICKET") {
            // Yunzhijia: the client opens the app with a ticket; the callouts follow at once.
            let done = h.run(
                "GET",
                &format!("/app?activeAuth=m&{callback_params}"),
                browser,
                b"",
                &mut answer,
            );
            reached("idp_answers.callback");
            if done.admits() {
                reached("idp_answers.admitted");
                reached("idp_answers.ticket_admitted");
            }
            if failed {
                assert!(
                    !done.admits(),
                    "admitted after a failed IdP answer: {done:?}"
                );
            }
            return;
        }
        if *callback_params == "teams" {
            // Teams tab SSO: the tab page's state and a token posted back; the JWKS answer is
            // fuzzed. Admitted only when that JWKS carries our key.
            let first = h.run(
                "GET",
                "/tab?activeAuth=m",
                browser.clone(),
                b"",
                &mut answer,
            );
            let Some(login) = first.header("location").map(str::to_owned) else {
                return;
            };
            let page = h.run("GET", &login, browser, b"", &mut answer);
            let body = page
                .response()
                .map(|r| String::from_utf8_lossy(&r.body).into_owned())
                .unwrap_or_default();
            let Some(i) = body.find("\"state\":\"") else {
                return;
            };
            let state = body[i + 9..].split('"').next().unwrap_or("").to_owned();
            let post = json!({"state": state, "token": teams_token(h.now)}).to_string();
            let headers = vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("cookie".to_owned(), cookie_header(&set_cookies(&page))),
            ];
            let done = h.run("POST", "/sso/code/m", headers, post.as_bytes(), &mut answer);
            reached("idp_answers.callback");
            if done.admits() {
                reached("idp_answers.admitted");
                reached("idp_answers.teams_admitted");
                let (ours, _) = oidc_fixture(h.now);
                let n = ours["keys"][0]["n"].as_str().unwrap_or("");
                assert!(
                    answers
                        .iter()
                        .any(|a| String::from_utf8_lossy(a).contains(n)),
                    "a Teams token admitted under a JWKS without our key"
                );
            }
            if failed {
                assert!(
                    !done.admits(),
                    "admitted after a failed IdP answer: {done:?}"
                );
            }
            return;
        }
        let first = h.run(
            "GET",
            "/app?activeAuth=m",
            browser.clone(),
            b"",
            &mut answer,
        );
        let Some(login) = first.header("location").map(str::to_owned) else {
            return;
        };
        let start = h.run("GET", &login, browser.clone(), b"", &mut answer);
        let Some(idp_url) = start.header("location").map(str::to_owned) else {
            return;
        };
        let Ok(url) = url::Url::parse(&idp_url) else {
            return;
        };
        let param = |n: &str| {
            url.query_pairs()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.into_owned())
        };
        let Some(back) = param("redirect_uri")
            .or_else(|| param("service"))
            .or_else(|| param("goto"))
            .and_then(|u| url::Url::parse(&u).ok())
        else {
            return;
        };
        let mut target = format!("{}?{callback_params}", back.path());
        if let Some(q) = back.query() {
            target = format!("{}?{q}&{callback_params}", back.path());
        }
        if let Some(state) = param("state") {
            target.push_str("&state=");
            target.extend(url::form_urlencoded::byte_serialize(state.as_bytes()));
        }
        let mut headers = browser;
        headers.push(("cookie".into(), cookie_header(&set_cookies(&start))));
        let done = h.run("GET", &target, headers, b"", &mut answer);
        reached("idp_answers.callback");
        if !h.callouts.is_empty() {
            reached("idp_answers.callout");
        }
        if done.admits() {
            reached("idp_answers.admitted");
        }
        if failed {
            assert!(
                !done.admits(),
                "admitted after a failed IdP answer: {done:?}"
            );
        }
        if let Some(c) = done.session_cookies().first() {
            assert!(c.contains("HttpOnly") && c.contains("Secure"), "{c}");
        }
    });
}

fn split_answers(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 4 <= data.len() {
        if &data[i..i + 4] == b"\n--\n" {
            out.push(&data[start..i]);
            start = i + 4;
            i += 4;
        } else {
            i += 1;
        }
    }
    out.push(&data[start..]);
    out
}

fn set_cookies(done: &Done) -> Vec<String> {
    done.response()
        .map(|r| {
            r.headers
                .iter()
                .filter(|(n, _)| n == "set-cookie")
                .map(|(_, v)| v.clone())
                .collect()
        })
        .unwrap_or_default()
}

// ---- SAML and XML ------------------------------------------------------------------------------

fn saml_originals() -> &'static Vec<(String, Option<crate::methods::saml2::Verified>)> {
    static ORIG: std::sync::OnceLock<Vec<(String, Option<crate::methods::saml2::Verified>)>> =
        std::sync::OnceLock::new();
    ORIG.get_or_init(|| {
        fixtures::SAML_SIGNED
            .iter()
            .map(|(_, xml)| ((*xml).to_owned(), saml_verify(xml).ok()))
            .collect()
    })
}

/// Fragments the XML edits splice in: the tricks of the SAML attack corpora.
const XML_DICT: &[&str] = &[
    "<!---->",
    "<!-- x -->",
    "<?pi x?>",
    "<![CDATA[.evil.example]]>",
    ".evil.example",
    "&amp;",
    "<!DOCTYPE r [<!ENTITY e \"x\">]>",
    "&e;",
    " xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\"",
    " ID=\"_evil\"",
    "<saml:Assertion xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\" ID=\"_evil\" Version=\"2.0\"><saml:Subject><saml:NameID>admin@example.org</saml:NameID></saml:Subject></saml:Assertion>",
    "<ds:Signature xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"/>",
    "<Extensions>",
    "</Extensions>",
];

/// Applies XML-aware edits: each 3-byte op deletes, duplicates, moves or wraps an element, or
/// splices a dictionary fragment at an element boundary, using the parsed original's ranges.
fn xml_edits(original: &str, ops: &[u8]) -> String {
    let Ok(doc) = roxmltree::Document::parse_with_options(
        original,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..roxmltree::ParsingOptions::default()
        },
    ) else {
        return original.to_owned();
    };
    let ranges: Vec<(std::ops::Range<usize>, usize)> = doc
        .descendants()
        .filter(|n| n.is_element())
        .map(|n| {
            let r = n.range();
            let open_end = original[r.start..r.end]
                .find('>')
                .map_or(r.end, |e| r.start + e + 1);
            (r, open_end)
        })
        .collect();
    if ranges.is_empty() {
        return original.to_owned();
    }
    // One structural edit on the original (ranges stay valid), then text splices.
    let mut out = original.to_owned();
    let op = ops.first().copied().unwrap_or(0);
    let (r, open_end) = ranges[pick(ops, 1, ranges.len())].clone();
    let (t, t_open) = ranges[pick(ops, 2, ranges.len())].clone();
    let element = original[r.clone()].to_owned();
    match op % 6 {
        0 => out.replace_range(r, ""),
        1 => out.insert_str(r.end, &element),
        2 if t_open <= r.start || t_open >= r.end => {
            // Move element r to the start of element t's content.
            if t_open <= r.start {
                out.replace_range(r, "");
                out.insert_str(t_open, &element);
            } else {
                out.insert_str(t_open, &element);
                out.replace_range(r, "");
            }
        }
        3 if !(t.start < r.start && r.end < t.end || r.start <= t.start && t.end <= r.end) => {
            // Copy element r into element t (XSW style: a signed copy beside a forged one).
            out.insert_str(t_open, &element);
        }
        4 => {
            // Wrap element r in an Extensions-like element.
            out.insert_str(r.end, "</Extensions>");
            out.insert_str(r.start, "<Extensions>");
        }
        _ => {
            let frag = XML_DICT[pick(ops, 3, XML_DICT.len())];
            out.insert_str(open_end, frag);
        }
    }
    out
}

/// Signed SAML Responses (pysaml2 + xmlsec1 fixtures: signed Response, signed Assertion, both,
/// encrypted AES-CBC/GCM, RSA-SHA1), edited byte-wise or XML-wise (wrapping, moving, duplicating,
/// comments, PIs, entities). Property: a Response verifies only with exactly the claims and
/// assertion ID of an unedited fixture that verifies: no edit changes who logs in.
pub fn saml_response(data: &[u8]) {
    let originals = saml_originals();
    let (xml, _) = &originals[pick(data, 0, originals.len())];
    let rest = data.get(2..).unwrap_or_default();
    let edited = if pick(data, 1, 2) == 0 {
        text(&Edits::new(rest).apply(xml.as_bytes()))
    } else {
        let n = rest.len().min(4);
        let mut s = xml_edits(xml, &rest[..n]);
        if rest.len() > 4 {
            s = xml_edits(&s, &rest[4..rest.len().min(8)]);
        }
        s
    };
    if let Ok(v) = saml_verify(&edited) {
        reached("saml_response.verified");
        let same = originals
            .iter()
            .filter_map(|(_, o)| o.as_ref())
            .any(|o| o.claims == v.claims && o.assertion_id == v.assertion_id);
        assert!(
            same,
            "an edited Response verified with other claims: {:?}",
            v.claims
        );
    }
}

thread_local! {
    static SLO: RefCell<Option<(crate::methods::saml2::Idp, String, String)>> = const { RefCell::new(None) };
}

/// IdP metadata, HTTP-Redirect signed messages and IdP LogoutRequests. Properties: metadata
/// from arbitrary XML never yields a signing key we did not put there; a redirect-signed query
/// verifies only unedited; a logout request is accepted only from its configured issuer.
pub fn saml_redirect(data: &[u8]) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    SLO.with(|cell| {
        let mut slot = cell.borrow_mut();
        let (idp, query, xml) = slot.get_or_insert_with(|| {
            let cert: String = fixtures::SAML_IDP_CRT
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect();
            let entity = super::saml_meta()["idp_entity_id"].as_str().unwrap_or("").to_owned();
            let metadata = format!(
                r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.org/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>"#
            );
            let idp = crate::methods::saml2::parse_metadata(&metadata, None).expect("metadata");
            let xml = format!(
                r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:Issuer>{entity}</saml:Issuer><saml:NameID>jdoe@example.org</saml:NameID><samlp:SessionIndex>_s1</samlp:SessionIndex></samlp:LogoutRequest>"#
            );
            let deflated = miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6);
            let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
            let signed = format!(
                "SAMLRequest={}&RelayState=rs&SigAlg={}",
                enc(&b64.encode(deflated)),
                enc("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
            );
            let key = crate::jose::keys::rsa_private_key(fixtures::SAML_IDP_KEY).expect("idp key");
            let sig = key.sign(
                rsa::Pkcs1v15Sign::new::<sha2::Sha256>(),
                &<sha2::Sha256 as sha2::Digest>::digest(signed.as_bytes()),
            )
            .expect("sign");
            let query = format!("{signed}&Signature={}", enc(&b64.encode(sig)));
            (idp, query, xml)
        });
        let saml = super::saml2();
        let rest = data.get(1..).unwrap_or_default();
        match pick(data, 0, 3) {
            0 => {
                let edited = text(&Edits::new(rest).apply(query.as_bytes()));
                assert!(saml.verify_redirect(idp, query, "SAMLRequest").is_ok());
                if let Ok(got) = saml.verify_redirect(idp, &edited, "SAMLRequest") {
                    reached("saml_redirect.verified");
                    // Parameter order and the other parameters are outside the signature.
                    assert_eq!(&got, xml, "an edited redirect message verified to other XML");
                }
            }
            1 => {
                let doc = text(rest);
                let edited = xml_edits(xml, rest);
                let sls = "https://app.example.com/sso/saml/saml/slo";
                for x in [&doc, &edited] {
                    if let Ok((id, _)) = saml.check_logout_request(idp, x, sls, 1_767_225_600) {
                        assert!(!id.is_empty());
                        assert!(x.contains(&idp.entity_id), "a logout request from another issuer");
                    }
                }
            }
            _ => {
                let doc = text(rest);
                if let Ok(parsed) = crate::methods::saml2::parse_metadata(&doc, None) {
                    assert!(!parsed.entity_id.is_empty());
                    assert!(doc.contains(&parsed.entity_id));
                }
            }
        }
    });
}

/// Exclusive XML canonicalisation. Property: parse -> c14n -> parse -> c14n is stable (the
/// canonical form is a fixed point), and the canonical form is well-formed XML.
pub fn xml_c14n(data: &[u8]) {
    let input = text(data.get(1..).unwrap_or_default());
    let Ok(doc) = roxmltree::Document::parse(&input) else {
        return;
    };
    let inclusive: Vec<String> = if pick(data, 0, 2) == 0 {
        Vec::new()
    } else {
        vec!["#default".into(), "a".into()]
    };
    let Ok(first) = crate::xmldsig::c14n::exclusive(doc.root_element(), None, &inclusive) else {
        return;
    };
    reached("xml_c14n.canonical");
    let first = String::from_utf8(first).expect("c14n output is UTF-8");
    let again = roxmltree::Document::parse(&first)
        .unwrap_or_else(|e| panic!("c14n output does not parse ({e}): {first}"));
    let second = crate::xmldsig::c14n::exclusive(again.root_element(), None, &inclusive)
        .expect("c14n of c14n");
    assert_eq!(
        String::from_utf8_lossy(&second),
        first,
        "c14n is not a fixed point"
    );
}

/// CAS validation answers, logout requests and tickets. Properties: success only with one
/// non-empty `cas:user` and no `authenticationFailure` element anywhere; a logout request's
/// session index is a valid ticket; a ticket passes only in `ST-`/`PT-` form, 32-256 safe
/// characters.
pub fn cas_xml(data: &[u8]) {
    use crate::methods::cas::{check_ticket, parse_logout_request, parse_validation};
    let input = text(data);
    if let Ok(v) = parse_validation(&input) {
        reached("cas_xml.success");
        assert!(
            !v.user.is_empty() && v.user.trim() == v.user,
            "user {:?}",
            v.user
        );
        if let Ok(doc) = roxmltree::Document::parse(&input) {
            assert!(
                !doc.descendants()
                    .any(|n| n.tag_name().name() == "authenticationFailure"
                        && n.tag_name().namespace() == Some("http://www.yale.edu/tp/cas")),
                "success despite an authenticationFailure"
            );
        }
    }
    if let Some(t) = parse_logout_request(&input) {
        assert!(check_ticket(&t).is_ok());
    }
    if check_ticket(&input).is_ok() {
        // CAS 3.0 §3.1.1: services must take tickets of up to 32 characters and should take up
        // to 256; there is no minimum beyond the prefix (security.md H1's "32-256" reads the
        // spec's "at least up to 32" as a minimum; see docs/security-tests.md).
        assert!(input.starts_with("ST-") && input.len() > 3, "{input}");
        assert!(input.len() <= 256, "ticket length {}", input.len());
        assert!(input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)));
    }
}

/// LDAP BER from the directory. Properties: a message never claims more bytes than it was
/// given; the same bytes parse the same with anything after them (framing is stable), and alone;
/// a conversation fed these bytes ends in claims only for the user who logged in.
pub fn ldap_ber(data: &[u8]) {
    use crate::methods::ldap::ber::{take_message, Framed};
    let mut rest = data;
    let mut guard = 0;
    while let Ok(Framed::Message { used, reply, id }) = take_message(rest) {
        reached("ldap_ber.message");
        assert!(used > 0 && used <= rest.len());
        let alone = take_message(&rest[..used]);
        assert_eq!(
            alone,
            Ok(Framed::Message {
                id,
                reply: reply.clone(),
                used
            })
        );
        let mut longer = rest[..used].to_vec();
        longer.extend_from_slice(b"\x30\x00trailing");
        assert_eq!(
            take_message(&longer),
            Ok(Framed::Message { id, reply, used })
        );
        rest = &rest[used..];
        guard += 1;
        if guard > 1000 {
            break;
        }
    }
    if let Ok(Framed::Need(n)) = take_message(rest) {
        assert!(n > 0);
    }
    // A whole conversation fed from the input.
    let raw: crate::methods::ldap::RawLdap = serde_json::from_value(json!({
        "host": "dir.test", "port": 3389,
        "bind_dn": "cn=svc,dc=example,dc=org", "bind_password": "svc-pw",
        "search_base": "ou=people,dc=example,dc=org",
        "user_filter": "(&(objectClass=inetOrgPerson)(uid={user}))"
    }))
    .expect("ldap raw");
    let ldap = crate::methods::ldap::Ldap::from_raw(raw, "methods.ldap").expect("ldap");
    let (_, conv) = ldap.start("alice", "pw");
    let mut conv = Box::new(conv);
    for chunk in split_answers(data).into_iter().take(8) {
        let reply = crate::http::StreamReply {
            data: chunk.to_vec(),
            end: crate::http::StreamEnd::Open,
        };
        match ldap.resume(*conv, reply) {
            crate::methods::ldap::Progress::Next(_, c) => {
                reached("ldap_ber.next_round");
                conv = c;
            }
            crate::methods::ldap::Progress::Done(Ok(claims)) => {
                assert!(!claims.is_empty());
                return;
            }
            crate::methods::ldap::Progress::Done(Err(_)) => return,
        }
    }
}

/// Mapping evaluation over arbitrary claims. Properties: an identity only with a non-empty
/// login that passes `Identity::check`; evaluation is deterministic and survives a JSON
/// round trip of the claims.
pub fn mapping(data: &[u8]) {
    let claims: Map<String, Value> = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(m)) => m,
        Ok(other) => [("sub".to_owned(), other)].into_iter().collect(),
        Err(_) => [("sub".to_owned(), Value::String(text(data)))]
            .into_iter()
            .collect(),
    };
    let raws = [
        json!({}),
        json!({"login": "$.user.name", "name": "name", "email": "email", "roles": "$.roles[*]",
               "groups": "groups", "org": "org.id", "tenant_code": "tenant",
               "role_rules": [{"claim": "dept", "equals": "x", "roles": ["r"], "groups": ["g"]}],
               "default_roles": ["viewer"]}),
        json!({"login": "$..id", "roles": "$.extattr.attrs[?@.name=='角色'].text.value"}),
    ];
    for raw in raws {
        let raw: crate::mapping::RawMapping = serde_json::from_value(raw).expect("mapping");
        let m = std::sync::Arc::new(raw.compile("mapping").expect("compiles"));
        let a = m.apply(&claims, "m");
        if let Some(id) = &a {
            reached("mapping.identity");
            // The engine refuses an identity that fails `check` before any session is made
            // (engine.rs); here: what passes `check` is clean.
            assert!(!id.login.is_empty());
            if id.check().is_ok() {
                let all = [
                    Some(&id.login),
                    id.name.as_ref(),
                    id.email.as_ref(),
                    id.org.as_ref(),
                ];
                for v in all
                    .into_iter()
                    .flatten()
                    .chain(id.roles.iter())
                    .chain(id.groups.iter())
                {
                    assert!(!v.chars().any(char::is_control), "{v:?} passed check");
                }
            }
        }
        let b = m.apply(&claims, "m");
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "not deterministic");
        let round: Map<String, Value> =
            serde_json::from_str(&serde_json::to_string(&claims).expect("ser")).expect("de");
        let c = m.apply(&round, "m");
        assert_eq!(
            format!("{a:?}"),
            format!("{c:?}"),
            "not stable over a JSON round trip"
        );
    }
}

/// The configuration, as `sso-filter validate` and the hosts read it. Properties: a document
/// that loads loads again after a JSON round trip; its summary and outbound URLs work; it
/// never has an empty key ring.
pub fn config(data: &[u8]) {
    let Ok(cfg) = crate::Config::from_json(data) else {
        return;
    };
    reached("config.loaded");
    let _ = cfg.summary();
    for (_, url) in cfg.outbound_urls() {
        assert!(url.host_str().is_some(), "{url}");
    }
    let _ = cfg.stream_methods();
    let v: Value = serde_json::from_slice(data).expect("loaded config is JSON");
    let again = serde_json::to_vec(&v).expect("ser");
    assert!(
        crate::Config::from_json(&again).is_ok(),
        "config not stable over a JSON round trip"
    );
}

/// Return URLs (`rd`) directly and through `/sso/logout`. Properties: the result is a path
/// that a browser resolves to our own origin, with no control character, backslash or
/// protocol-relative start; the engine redirects to exactly that.
pub fn return_url(data: &[u8]) {
    let candidate = text(data);
    let got = crate::redirect::safe_return(&candidate, ORIGIN);
    assert_same_origin(&candidate, &got);
    with_local(|h, _, _| {
        let enc: String = url::form_urlencoded::byte_serialize(candidate.as_bytes()).collect();
        let done = h.get(&format!("/sso/logout?rd={enc}"), None);
        assert_eq!(done.status(), 302);
        assert_eq!(done.header("location"), Some(got.as_str()));
    });
}

/// The return-URL oracle: `got` (what `safe_return` made of `candidate`) must stay on our origin
/// under a WHATWG URL parser and be free of the characters browsers rewrite.
pub fn assert_same_origin(candidate: &str, got: &str) {
    assert!(got.starts_with('/'), "{candidate:?} -> {got:?}");
    assert!(
        !got.starts_with("//") && !got.contains('\\'),
        "{candidate:?} -> {got:?}"
    );
    assert!(
        !got.chars().any(|c| c.is_control() || c.is_whitespace()),
        "{candidate:?} -> {got:?}"
    );
    let base = url::Url::parse(ORIGIN).expect("origin");
    let joined = base.join(got).expect("joins");
    assert_eq!(
        joined.origin(),
        base.origin(),
        "{candidate:?} -> {got:?} leaves the origin"
    );
}
