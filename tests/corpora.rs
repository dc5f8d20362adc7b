//! Public test corpora through the filter's own entry points (issue 11, security.md part (b)).
//! Provenance of every file: tests/fixtures/vectors/README.md. Each corpus prints one line:
//! vectors run, passed, skipped with a reason each. A vector counts as passed when our code gives
//! the corpus's expected answer; `acceptable` Wycheproof vectors pass either way.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::{json, Value};
use sso_filter::fuzzing::{self, Harness};
use sso_filter::jose::content::ContentAlg;
use sso_filter::jose::jwe::{Decrypter, KeyAlg};
use sso_filter::jose::jws::Verifier;
use sso_filter::jose::keys::{JwsAlg, VerifyKey};
use wycheproof::TestResult;

#[path = "corpora/saml.rs"]
mod saml;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Outcomes of one corpus.
#[derive(Default)]
pub struct Tally {
    name: String,
    run: usize,
    passed: usize,
    skipped: BTreeMap<String, usize>,
    failures: Vec<String>,
}

impl Tally {
    pub fn new(name: &str) -> Self {
        Tally {
            name: name.into(),
            ..Tally::default()
        }
    }

    /// Records a vector: `ok` is whether our answer was the expected one.
    pub fn check(&mut self, id: impl std::fmt::Display, ok: bool) {
        self.run += 1;
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(format!("{}: {id}", self.name));
        }
    }

    pub fn skip(&mut self, reason: &str) {
        *self.skipped.entry(reason.into()).or_insert(0) += 1;
    }

    /// Prints the line and fails on any mismatch (and on a corpus that ran nothing).
    pub fn finish(self) {
        let skipped: usize = self.skipped.values().sum();
        println!(
            "corpus {}: {} run, {} passed, {} skipped{}",
            self.name,
            self.run,
            self.passed,
            skipped,
            if skipped == 0 {
                String::new()
            } else {
                format!(
                    " ({})",
                    self.skipped
                        .iter()
                        .map(|(r, n)| format!("{n}: {r}"))
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            }
        );
        assert!(self.run > 0, "{}: no vector ran", self.name);
        assert!(
            self.failures.is_empty(),
            "{} failures:\n{}",
            self.failures.len(),
            self.failures.join("\n")
        );
    }
}

fn expect(result: &TestResult, accepted: bool) -> bool {
    match result {
        TestResult::Valid => accepted,
        TestResult::Invalid => !accepted,
        TestResult::Acceptable => true,
    }
}

// ---- Wycheproof ----------------------------------------------------------------------------------

/// RSASSA-PKCS1-v1_5 through `VerifyKey` (the key loader with its size floor, and the verifier
/// with its exact-length check): RS256/384/512.
#[test]
fn wycheproof_rsa_pkcs1_signatures() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let mut t = Tally::new("wycheproof RSA PKCS#1 v1.5 (RS256/RS384/RS512)");
    for (name, alg) in [
        (TestName::Rsa2048Sha256, JwsAlg::Rs256),
        (TestName::Rsa3072Sha256, JwsAlg::Rs256),
        (TestName::Rsa4096Sha256, JwsAlg::Rs256),
        (TestName::Rsa2048Sha384, JwsAlg::Rs384),
        (TestName::Rsa3072Sha384, JwsAlg::Rs384),
        (TestName::Rsa4096Sha384, JwsAlg::Rs384),
        (TestName::Rsa2048Sha512, JwsAlg::Rs512),
        (TestName::Rsa3072Sha512, JwsAlg::Rs512),
        (TestName::Rsa4096Sha512, JwsAlg::Rs512),
    ] {
        let set = TestSet::load(name).unwrap();
        for g in &set.test_groups {
            let key = match VerifyKey::public(alg, &g.pem) {
                Ok(k) => k,
                Err(_) => {
                    for _ in &g.tests {
                        t.skip("key refused at load (below 2048 bits or malformed), A3/J14");
                    }
                    continue;
                }
            };
            for tc in &g.tests {
                let ok = key.verify(alg, &tc.msg, &tc.sig);
                t.check(format!("{name:?} tc {}", tc.tc_id), expect(&tc.result, ok));
            }
        }
    }
    t.skip("rsa_signature_8192_*: left out for test time (debug-build 8192-bit RSA); 2048-4096 cover the code path");
    t.finish();
}

/// RSASSA-PSS through `VerifyKey` for the JWS parameter sets (PS256/384/512: MGF1 with the same
/// hash, salt length = hash length).
#[test]
fn wycheproof_rsa_pss_signatures() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut t = Tally::new("wycheproof RSA-PSS (PS256/PS384/PS512)");
    for (name, alg) in [
        (TestName::RsaPss2048Sha256Mgf1SaltLen32, JwsAlg::Ps256),
        (TestName::RsaPss3072Sha256Mgf1SaltLen32, JwsAlg::Ps256),
        (TestName::RsaPss4096Sha256Mgf1SaltLen32, JwsAlg::Ps256),
        (TestName::RsaPss2048Sha384Mgf1SaltLen48, JwsAlg::Ps384),
        (TestName::RsaPss4096Sha384Mgf1SaltLen48, JwsAlg::Ps384),
        (TestName::RsaPss4096Sha512Mgf1SaltLen64, JwsAlg::Ps512),
    ] {
        let set = TestSet::load(name).unwrap();
        for g in &set.test_groups {
            let key = VerifyKey::public(alg, &g.pem).unwrap();
            for tc in &g.tests {
                let ok = key.verify(alg, &tc.msg, &tc.sig);
                t.check(format!("{name:?} tc {}", tc.tc_id), expect(&tc.result, ok));
            }
        }
    }
    // Salt lengths and MGF hashes JWS cannot name (RFC 7518 §3.5 fixes both).
    t.skip("rsa_pss_*_mgf1_0, *_mgf1sha1_*, *_params, shake and misc files: parameters no JWS alg names (RFC 7518 §3.5)");
    t.finish();
}

/// ECDSA P-256 / SHA-256 in the IEEE P1363 (r||s) form JWS uses, through `VerifyKey` (ES256).
#[test]
fn wycheproof_ecdsa_p256() {
    use wycheproof::ecdsa::{TestName, TestSet};
    let mut t = Tally::new("wycheproof ECDSA P-256 SHA-256 P1363 (ES256)");
    let set = TestSet::load(TestName::EcdsaSecp256r1Sha256P1363).unwrap();
    for g in &set.test_groups {
        let key = match VerifyKey::public(JwsAlg::Es256, &g.pem) {
            Ok(k) => k,
            Err(_) => {
                for tc in &g.tests {
                    // An invalid public key refused at load: the right answer for an invalid
                    // vector.
                    t.check(
                        format!("tc {} (key refused)", tc.tc_id),
                        tc.result != TestResult::Valid,
                    );
                }
                continue;
            }
        };
        for tc in &g.tests {
            let ok = key.verify(JwsAlg::Es256, &tc.msg, &tc.sig);
            t.check(format!("tc {}", tc.tc_id), expect(&tc.result, ok));
        }
    }
    t.skip("ecdsa_secp256r1_sha256 (DER form): JWS signatures are P1363 only (RFC 7518 §3.4)");
    t.finish();
}

/// Ed25519 through `VerifyKey` (EdDSA).
#[test]
fn wycheproof_ed25519() {
    use wycheproof::eddsa::{TestName, TestSet};
    let mut t = Tally::new("wycheproof Ed25519 (EdDSA)");
    let set = TestSet::load(TestName::Ed25519).unwrap();
    for g in &set.test_groups {
        let key = VerifyKey::public(JwsAlg::EdDsa, &g.pem).unwrap();
        for tc in &g.tests {
            let ok = key.verify(JwsAlg::EdDsa, &tc.msg, &tc.sig);
            t.check(format!("tc {}", tc.tc_id), expect(&tc.result, ok));
        }
    }
    t.finish();
}

/// HMAC-SHA-256/384/512 through `VerifyKey` (HS256/384/512): the key floor (RFC 7518 §3.2) and
/// the full-length tag JWS uses.
#[test]
fn wycheproof_hmac() {
    use wycheproof::mac::{TestName, TestSet};
    let mut t = Tally::new("wycheproof HMAC (HS256/HS384/HS512)");
    for (name, alg, bits) in [
        (TestName::HmacSha256, JwsAlg::Hs256, 256),
        (TestName::HmacSha384, JwsAlg::Hs384, 384),
        (TestName::HmacSha512, JwsAlg::Hs512, 512),
    ] {
        let set = TestSet::load(name).unwrap();
        for g in &set.test_groups {
            for tc in &g.tests {
                let key = match VerifyKey::hmac(alg, tc.key.to_vec()) {
                    Ok(k) => k,
                    Err(_) => {
                        t.skip(
                            "key shorter than the hash output: refused at load (A3, RFC 7518 §3.2)",
                        );
                        continue;
                    }
                };
                if g.tag_size != bits {
                    // A truncated tag must never verify: JWS tags are full length.
                    t.check(
                        format!("{name:?} tc {} (truncated tag)", tc.tc_id),
                        !key.verify(alg, &tc.msg, &tc.tag),
                    );
                    continue;
                }
                let ok = key.verify(alg, &tc.msg, &tc.tag);
                t.check(format!("{name:?} tc {}", tc.tc_id), expect(&tc.result, ok));
            }
        }
    }
    t.finish();
}

/// AES-CBC-HMAC-SHA2 (A128CBC-HS256, A256CBC-HS512) and AES-GCM (A128GCM, A256GCM) through
/// `ContentAlg::decrypt`, the JWE and session-cookie content layer.
#[test]
fn wycheproof_content_encryption() {
    use wycheproof::aead::{TestName, TestSet};
    let mut t = Tally::new("wycheproof AEAD (A128CBC-HS256, A256CBC-HS512, A128GCM, A256GCM)");
    for name in [
        TestName::Aes128CbcHmacSha256,
        TestName::Aes256CbcHmacSha512,
        TestName::AesGcm,
    ] {
        let set = TestSet::load(name).unwrap();
        for g in &set.test_groups {
            let enc = match (name, g.key_size) {
                (TestName::Aes128CbcHmacSha256, _) => ContentAlg::A128CbcHs256,
                (TestName::Aes256CbcHmacSha512, _) => ContentAlg::A256CbcHs512,
                (_, 128) => ContentAlg::A128Gcm,
                (_, 256) => ContentAlg::A256Gcm,
                _ => {
                    for _ in &g.tests {
                        t.skip("AES-192-GCM: no JWE enc the filter enables");
                    }
                    continue;
                }
            };
            let jwe_shape = match enc {
                ContentAlg::A128Gcm | ContentAlg::A256Gcm => {
                    g.nonce_size == 96 && g.tag_size == 128
                }
                _ => true,
            };
            for tc in &g.tests {
                let got = enc.decrypt(&tc.key, &tc.nonce, &tc.ct, &tc.tag, &tc.aad);
                let ok = got.as_deref().ok() == Some(&tc.pt[..]);
                if !jwe_shape {
                    // JWE fixes GCM at a 96-bit IV and a 128-bit tag (RFC 7518 §5.3): other
                    // shapes must be refused, whatever the vector says.
                    t.check(
                        format!("{name:?} tc {} (non-JWE shape)", tc.tc_id),
                        got.is_err(),
                    );
                    continue;
                }
                if tc.result == TestResult::Invalid {
                    t.check(format!("{name:?} tc {}", tc.tc_id), got.is_err());
                } else {
                    t.check(format!("{name:?} tc {}", tc.tc_id), ok);
                }
            }
        }
    }
    t.finish();
}

/// RSA-OAEP (SHA-1, RSA-OAEP) and RSA-OAEP-256 key transport through `Decrypter::decrypt`: each
/// vector's ciphertext is the JWE encrypted key; when the vector's message has a CEK length, the
/// JWE content is encrypted under it, so a correct unwrap shows as a decrypted JWE.
#[test]
fn wycheproof_rsa_oaep() {
    use wycheproof::rsa_oaep::{TestName, TestSet};
    use wycheproof::HashFunction;
    let mut t = Tally::new("wycheproof RSA-OAEP / RSA-OAEP-256 (JWE key transport)");
    let mut rng = fuzzing::CounterRandom::default();
    for name in [
        TestName::Rsa2048Sha1Mgf1Sha1,
        TestName::Rsa2048Sha256Mgf1Sha256,
        TestName::Rsa3072Sha256Mgf1Sha256,
        TestName::Rsa4096Sha256Mgf1Sha256,
        TestName::RsaMisc,
    ] {
        let set = TestSet::load(name).unwrap();
        for g in &set.test_groups {
            let alg = match (&g.hash, &g.mgf_hash) {
                (HashFunction::Sha1, HashFunction::Sha1) => KeyAlg::RsaOaep,
                (HashFunction::Sha2_256, HashFunction::Sha2_256) => KeyAlg::RsaOaep256,
                _ => {
                    for _ in &g.tests {
                        t.skip("hash/MGF pair no JWE alg names");
                    }
                    continue;
                }
            };
            let pem = &g.pem;
            let Ok(key) = sso_filter::jose::keys::rsa_private_key(pem) else {
                for _ in &g.tests {
                    t.skip("key refused at load (below 2048 bits)");
                }
                continue;
            };
            for tc in &g.tests {
                if !tc.label.is_empty() {
                    t.skip("OAEP label: JWE always uses the empty label");
                    continue;
                }
                let enc = match tc.pt.len() {
                    16 => Some(ContentAlg::A128Gcm),
                    32 => Some(ContentAlg::A128CbcHs256),
                    64 => Some(ContentAlg::A256CbcHs512),
                    _ => None,
                };
                let content_enc = enc.unwrap_or(ContentAlg::A128CbcHs256);
                let d = Decrypter::new(alg, content_enc, key.clone());
                let header = B64URL
                    .encode(json!({"alg": alg.name(), "enc": content_enc.name()}).to_string());
                let (iv, ct, tag) = seal_content(content_enc, &tc.pt, header.as_bytes());
                let token = format!(
                    "{header}.{}.{}.{}.{}",
                    B64URL.encode(&tc.ct[..]),
                    B64URL.encode(&iv),
                    B64URL.encode(&ct),
                    B64URL.encode(&tag)
                );
                let got = d.decrypt(&token, &mut rng);
                let id = format!("{name:?} tc {}", tc.tc_id);
                match (&tc.result, enc) {
                    (TestResult::Invalid, _) => t.check(id, got.is_err()),
                    (_, Some(_)) if tc.pt.iter().any(|&b| b != 0) => t.check(
                        id,
                        got.map(|g| g.plaintext).ok().as_deref() == Some(b"probe".as_slice()),
                    ),
                    // A valid unwrap to a length no `enc` uses, or to an all-zero key, must
                    // still be refused (security.md K3: CEK length must match; no zero CEK).
                    _ => t.check(format!("{id} (not a usable CEK)"), got.is_err()),
                }
            }
        }
    }
    t.finish();
}

/// Encrypts the probe plaintext under `cek` (when it has the `enc`'s length) for a JWE.
fn seal_content(enc: ContentAlg, cek: &[u8], aad: &[u8]) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    use aes_gcm::aead::{Aead, KeyInit, Payload};
    if cek.len() != enc.key_len() {
        return (vec![0; enc.iv_len()], vec![0; 16], vec![0; 16]);
    }
    let iv = vec![7u8; enc.iv_len()];
    match enc {
        ContentAlg::A128Gcm => {
            let c = aes_gcm::Aes128Gcm::new_from_slice(cek).unwrap();
            let mut out = c
                .encrypt(
                    aes_gcm::Nonce::from_slice(&iv),
                    Payload { msg: b"probe", aad },
                )
                .unwrap();
            let tag = out.split_off(out.len() - 16);
            (iv, out, tag)
        }
        _ => {
            let (ct, tag) = enc.encrypt_cbc(cek, &iv, b"probe", aad).unwrap();
            (iv, ct, tag)
        }
    }
}

// ---- RFC 7520 ----------------------------------------------------------------------------------

fn cookbook() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vectors/rfc7520/cookbook.json"
    ))
    .unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["values"].clone()
}

/// An RSA private key from its JWK parameters, as PKCS#8 PEM through our loader.
fn rsa_from_jwk(jwk: &Value) -> rsa::RsaPrivateKey {
    use rsa::pkcs8::EncodePrivateKey;
    let n =
        |k: &str| rsa::BigUint::from_bytes_be(&B64URL.decode(jwk[k].as_str().unwrap()).unwrap());
    let key =
        rsa::RsaPrivateKey::from_components(n("n"), n("e"), n("d"), vec![n("p"), n("q")]).unwrap();
    let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).unwrap();
    sso_filter::jose::keys::rsa_private_key(&pem).unwrap()
}

/// RFC 7520 §4 and §5 (via jwcrypto's copy): the examples our configuration can express must
/// verify or decrypt (RS256 4.1, PS384 4.2, HS256 4.4, RSA-OAEP + A256GCM 5.2); every other
/// example, and every JSON serialization, must be refused.
#[test]
fn rfc7520_cookbook() {
    let v = cookbook();
    let mut t = Tally::new("RFC 7520 cookbook (jwcrypto copy)");
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    let rsa_pub = &v["RSA_Public_Key_3_3"];
    let hmac = &v["Symmetric_Key_MAC_3_5"];
    let payload = B64URL.decode(s("Payload_plaintext_b64_4")).unwrap();
    let verifiers: Vec<(&str, JwsAlg, VerifyKey)> = vec![
        (
            "4.1",
            JwsAlg::Rs256,
            VerifyKey::from_jwk(JwsAlg::Rs256, rsa_pub).unwrap(),
        ),
        (
            "4.2",
            JwsAlg::Ps384,
            VerifyKey::from_jwk(JwsAlg::Ps384, rsa_pub).unwrap(),
        ),
        (
            "4.4",
            JwsAlg::Hs256,
            VerifyKey::from_jwk(JwsAlg::Hs256, hmac).unwrap(),
        ),
    ];
    for (sec, alg, key) in &verifiers {
        let compact = s(&format!("JWS_compact_{}_3", sec.replace('.', "_")));
        let mut parts = compact.split('.');
        let (h, p, sig) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert_eq!(B64URL.decode(p).unwrap(), payload);
        let ok = key.verify(
            *alg,
            format!("{h}.{p}").as_bytes(),
            &B64URL.decode(sig).unwrap(),
        );
        t.check(format!("{sec} compact verifies"), ok);
        // The payload is prose, not claims: the JWT layer refuses it after the signature.
        let verifier = Verifier::new(*alg, vec![(None, key.clone())]);
        t.check(
            format!("{sec} not a JWT"),
            verifier.verify(&compact).is_err(),
        );
        let mut tampered = compact.clone();
        tampered.replace_range(h.len() + 5..h.len() + 6, "A");
        t.check(
            format!("{sec} tampered refused"),
            !key.verify(
                *alg,
                tampered.rsplit_once('.').unwrap().0.as_bytes(),
                &B64URL.decode(sig).unwrap(),
            ) || tampered == compact,
        );
    }
    // 4.3 is ES512: no verifier the filter can be configured with.
    t.check(
        "4.3 ES512 not an alg we name",
        JwsAlg::from_name("ES512").is_none(),
    );
    // JSON serializations (general and flattened) of every JWS example: compact only (J13).
    for (sec, alg, key) in &verifiers {
        let verifier = Verifier::new(*alg, vec![(None, key.clone())]);
        for form in ["general", "flattened"] {
            let k = format!("JWS_{form}_{}_3", sec.replace('.', "_"));
            t.check(
                format!("{k} refused"),
                verifier.verify(&v[&k].to_string()).is_err(),
            );
        }
    }
    for k in [
        "JWS_general_4_6_3",
        "JWS_flattened_4_6_3",
        "JWS_general_4_7_3",
        "JWS_flattened_4_7_3",
        "JWS_general_4_8_5",
    ] {
        let verifier = Verifier::new(JwsAlg::Hs256, vec![(None, verifiers[2].2.clone())]);
        t.check(
            format!("{k} refused"),
            verifier.verify(&v[k].to_string()).is_err(),
        );
    }
    // 5.2: RSA-OAEP + A256GCM decrypts to the payload.
    let mut rng = fuzzing::CounterRandom::default();
    let key52 = rsa_from_jwk(&v["RSA_key_5_2_1"]);
    let d = Decrypter::new(KeyAlg::RsaOaep, ContentAlg::A256Gcm, key52.clone());
    let plain = v["Payload_plaintext_5"]["bytes_utf8"].as_str().unwrap();
    let got = d.decrypt(&s("JWE_compact_5_2_5"), &mut rng);
    t.check(
        "5.2 decrypts",
        got.map(|g| g.plaintext).ok().as_deref() == Some(plain.as_bytes()),
    );
    // Every other compact JWE example is refused by the (alg, enc) allowlist, whatever key (K1,
    // K2: 5.9 carries zip).
    let key51 = rsa_from_jwk(&v["RSA_key_5_1_1"]);
    for k in [
        "JWE_compact_5_1_5",
        "JWE_compact_5_3_5",
        "JWE_compact_5_4_5",
        "JWE_compact_5_5_5",
        "JWE_compact_5_6_4",
        "JWE_compact_5_7_5",
        "JWE_compact_5_8_5",
        "JWE_compact_5_9_5",
    ] {
        for (alg, enc, key) in [
            (KeyAlg::RsaOaep256, ContentAlg::A128CbcHs256, &key51),
            (KeyAlg::RsaOaep, ContentAlg::A256Gcm, &key52),
        ] {
            let d = Decrypter::new(alg, enc, key.clone());
            t.check(format!("{k} refused"), d.decrypt(&s(k), &mut rng).is_err());
        }
    }
    // JSON serializations of every JWE example.
    let d = Decrypter::new(KeyAlg::RsaOaep, ContentAlg::A256Gcm, key52);
    for (k, val) in v.as_object().unwrap() {
        if k.starts_with("JWE_general_") || k.starts_with("JWE_flattened_") {
            t.check(
                format!("{k} refused"),
                d.decrypt(&val.to_string(), &mut rng).is_err(),
            );
        }
    }
    t.skip("4.5 detached content: not in the cookbook copy (jwcrypto marks it TBD)");
    t.finish();
}

// ---- Open redirects ----------------------------------------------------------------------------

/// The oauth2-proxy / mod_auth_openidc open-redirect payload families (written from knowledge of
/// those lists, see the README), raw and URL-unescaped, through `safe_return` and through the
/// engine's `/sso/logout?rd=`: every result stays on our origin; the same-origin controls are
/// kept.
#[test]
fn open_redirect_payloads() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/vectors/open-redirect/payloads.txt"
    ))
    .unwrap();
    let mut t = Tally::new("open-redirect payloads (oauth2-proxy, mod_auth_openidc families)");
    let mut harness = Harness::new(
        &fuzzing::config_with(&json!({"type": "cas", "server_url": "https://cas.example.org/cas"})),
        1_767_225_600,
    );
    let mut kept = 0;
    let mut refused = 0;
    for line in text.lines() {
        let unescaped = percent_encoding::percent_decode_str(line)
            .decode_utf8_lossy()
            .into_owned();
        for candidate in [line.to_owned(), unescaped] {
            let got = sso_filter::redirect::safe_return(&candidate, fuzzing::targets::ORIGIN);
            let same =
                std::panic::catch_unwind(|| fuzzing::targets::assert_same_origin(&candidate, &got))
                    .is_ok();
            let enc: String = url::form_urlencoded::byte_serialize(candidate.as_bytes()).collect();
            let done = harness.get(&format!("/sso/logout?rd={enc}"), None);
            let engine_same = done.status() == 302 && done.header("location") == Some(got.as_str());
            t.check(format!("{candidate:?} -> {got:?}"), same && engine_same);
            if got == "/" && candidate != "/" {
                refused += 1;
            } else {
                kept += 1;
            }
        }
    }
    // The controls at the end of the file must survive.
    for control in [
        "/app?x=1&y=2",
        "/a/b/c",
        "https://app.example.com/deep/link?q=1",
    ] {
        let got = sso_filter::redirect::safe_return(control, fuzzing::targets::ORIGIN);
        t.check(format!("control {control}"), got != "/");
    }
    println!("open redirects: {refused} refused to /, {kept} kept as same-origin paths");
    t.finish();
}

// ---- SAML ---------------------------------------------------------------------------------------

#[test]
fn saml_attack_corpus() {
    saml::run();
}
