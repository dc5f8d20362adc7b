//! JOSE: compact JWS and JWE against the jwcrypto cases, and a JWT in a URL parameter through
//! the engine.
//!
//! - `jws`: a verifier (HS256, RS256, ES256, EdDSA, PS256, JWKS by kid) accepts an edited or
//!   made-up token only when it is byte-identical to the original.
//! - `jwe`: an edited JWE decrypts only when byte-identical, to the original plaintext.
//! - `jwt_param`: a session only for a case the reference verifier accepts, from its exact
//!   token; the token never goes upstream or into a redirect.

use std::cell::RefCell;

use super::{case, cases_now, text};
use crate::fuzzing::{
    config_with, fixtures, jwt_cases, pick, reached, CounterRandom, Done, Edits, Harness,
};

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
    let mut rng = CounterRandom::default();
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
                .decrypt(&original, &mut CounterRandom::default())
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
