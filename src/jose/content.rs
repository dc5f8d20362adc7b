//! JWE content encryption (RFC 7518 §5): `A128CBC-HS256`, `A256CBC-HS512`, `A128GCM`,
//! `A256GCM`. The session sealer uses the same `A256CBC-HS512` code for its cookies.

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, KeyInit, Nonce};
use hmac::{Hmac, Mac};
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::JoseError;

/// A content-encryption algorithm (`enc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentAlg {
    /// AES-128-CBC with HMAC-SHA-256, RFC 7518 §5.2.3.
    A128CbcHs256,
    /// AES-256-CBC with HMAC-SHA-512, RFC 7518 §5.2.5.
    A256CbcHs512,
    /// AES-128-GCM, RFC 7518 §5.3.
    A128Gcm,
    /// AES-256-GCM, RFC 7518 §5.3.
    A256Gcm,
}

impl ContentAlg {
    /// Parses the `enc` name.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "A128CBC-HS256" => Some(ContentAlg::A128CbcHs256),
            "A256CBC-HS512" => Some(ContentAlg::A256CbcHs512),
            "A128GCM" => Some(ContentAlg::A128Gcm),
            "A256GCM" => Some(ContentAlg::A256Gcm),
            _ => None,
        }
    }

    /// The `enc` name.
    pub fn name(self) -> &'static str {
        match self {
            ContentAlg::A128CbcHs256 => "A128CBC-HS256",
            ContentAlg::A256CbcHs512 => "A256CBC-HS512",
            ContentAlg::A128Gcm => "A128GCM",
            ContentAlg::A256Gcm => "A256GCM",
        }
    }

    /// The content-encryption key length in bytes.
    pub fn key_len(self) -> usize {
        match self {
            ContentAlg::A128CbcHs256 => 32,
            ContentAlg::A256CbcHs512 => 64,
            ContentAlg::A128Gcm => 16,
            ContentAlg::A256Gcm => 32,
        }
    }

    /// The initialisation-vector length in bytes.
    pub fn iv_len(self) -> usize {
        match self {
            ContentAlg::A128CbcHs256 | ContentAlg::A256CbcHs512 => 16,
            ContentAlg::A128Gcm | ContentAlg::A256Gcm => 12,
        }
    }

    /// Decrypts and checks integrity. Every failure is the same [`JoseError::Decryption`]; for
    /// the CBC modes the tag is checked in constant time *before* any decryption, so there is no
    /// padding oracle (security.md K3).
    pub fn decrypt(
        self,
        cek: &[u8],
        iv: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, JoseError> {
        if cek.len() != self.key_len() || iv.len() != self.iv_len() {
            return Err(JoseError::Decryption);
        }
        match self {
            ContentAlg::A128CbcHs256 | ContentAlg::A256CbcHs512 => {
                if ciphertext.is_empty() || ciphertext.len() % 16 != 0 {
                    return Err(JoseError::Decryption);
                }
                let half = cek.len() / 2;
                let (mac_key, enc_key) = cek.split_at(half);
                let expected = self.cbc_tag(mac_key, aad, iv, ciphertext)?;
                if tag.len() != expected.len() || !bool::from(tag.ct_eq(&expected)) {
                    return Err(JoseError::Decryption);
                }
                let plain = if self == ContentAlg::A128CbcHs256 {
                    cbc::Decryptor::<aes::Aes128>::new_from_slices(enc_key, iv)
                        .map_err(|_| JoseError::Decryption)?
                        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                } else {
                    cbc::Decryptor::<aes::Aes256>::new_from_slices(enc_key, iv)
                        .map_err(|_| JoseError::Decryption)?
                        .decrypt_padded_vec_mut::<Pkcs7>(ciphertext)
                };
                plain.map_err(|_| JoseError::Decryption)
            }
            ContentAlg::A128Gcm | ContentAlg::A256Gcm => {
                // The tag length is fixed at 128 bits; taking it from the input is the cjose
                // CVE-2023-37464 class of bug.
                if tag.len() != 16 {
                    return Err(JoseError::Decryption);
                }
                let mut msg = Vec::with_capacity(ciphertext.len() + 16);
                msg.extend_from_slice(ciphertext);
                msg.extend_from_slice(tag);
                let payload = Payload { msg: &msg, aad };
                let nonce = Nonce::from_slice(iv);
                let plain = if self == ContentAlg::A128Gcm {
                    Aes128Gcm::new_from_slice(cek)
                        .map_err(|_| JoseError::Decryption)?
                        .decrypt(nonce, payload)
                } else {
                    Aes256Gcm::new_from_slice(cek)
                        .map_err(|_| JoseError::Decryption)?
                        .decrypt(nonce, payload)
                };
                plain.map_err(|_| JoseError::Decryption)
            }
        }
    }

    /// Encrypts with a CBC-HMAC mode; returns (ciphertext, tag). Only the CBC modes seal here:
    /// the filter itself only ever encrypts session cookies.
    pub fn encrypt_cbc(
        self,
        cek: &[u8],
        iv: &[u8],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), JoseError> {
        if cek.len() != self.key_len() || iv.len() != self.iv_len() {
            return Err(JoseError::Decryption);
        }
        let half = cek.len() / 2;
        let (mac_key, enc_key) = cek.split_at(half);
        let ciphertext = match self {
            ContentAlg::A128CbcHs256 => cbc::Encryptor::<aes::Aes128>::new_from_slices(enc_key, iv)
                .map_err(|_| JoseError::Decryption)?
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
            ContentAlg::A256CbcHs512 => cbc::Encryptor::<aes::Aes256>::new_from_slices(enc_key, iv)
                .map_err(|_| JoseError::Decryption)?
                .encrypt_padded_vec_mut::<Pkcs7>(plaintext),
            ContentAlg::A128Gcm | ContentAlg::A256Gcm => return Err(JoseError::Algorithm),
        };
        let tag = self.cbc_tag(mac_key, aad, iv, &ciphertext)?;
        Ok((ciphertext, tag))
    }

    /// RFC 7518 §5.2.2.1 step 5-6: HMAC over AAD ‖ IV ‖ ciphertext ‖ AL, truncated to half.
    fn cbc_tag(
        self,
        mac_key: &[u8],
        aad: &[u8],
        iv: &[u8],
        ciphertext: &[u8],
    ) -> Result<Vec<u8>, JoseError> {
        // AL is the AAD length in *bits* as a 64-bit big-endian integer; computed in u64 so
        // it cannot overflow (go-jose CVE-2016-9123).
        let al = (aad.len() as u64).saturating_mul(8).to_be_bytes();
        let parts: [&[u8]; 4] = [aad, iv, ciphertext, &al];
        let full = match self {
            ContentAlg::A128CbcHs256 => hmac_over::<Hmac<Sha256>>(mac_key, &parts)?,
            ContentAlg::A256CbcHs512 => hmac_over::<Hmac<Sha512>>(mac_key, &parts)?,
            ContentAlg::A128Gcm | ContentAlg::A256Gcm => return Err(JoseError::Algorithm),
        };
        Ok(full.get(..mac_key.len()).unwrap_or_default().to_vec())
    }
}

/// HMAC of the concatenated parts.
fn hmac_over<M: Mac + hmac::digest::KeyInit>(
    key: &[u8],
    parts: &[&[u8]],
) -> Result<Vec<u8>, JoseError> {
    let mut mac = <M as Mac>::new_from_slice(key).map_err(|_| JoseError::Decryption)?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7518 Appendix B.1: AES_128_CBC_HMAC_SHA_256 known-answer test.
    #[test]
    fn rfc7518_b1_known_answer() {
        let hex = |s: &str| -> Vec<u8> {
            let s: String = s.split_whitespace().collect();
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
                .collect()
        };
        let k = hex("00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b 1c 1d 1e 1f");
        let p = hex("41 20 63 69 70 68 65 72 20 73 79 73 74 65 6d 20 6d 75 73 74 20 6e 6f 74 20 62 65 20 72 65 71 75 69 72 65 64 20 74 6f 20 62 65 20 73 65 63 72 65 74 2c 20 61 6e 64 20 69 74 20 6d 75 73 74 20 62 65 20 61 62 6c 65 20 74 6f 20 66 61 6c 6c 20 69 6e 74 6f 20 74 68 65 20 68 61 6e 64 73 20 6f 66 20 74 68 65 20 65 6e 65 6d 79 20 77 69 74 68 6f 75 74 20 69 6e 63 6f 6e 76 65 6e 69 65 6e 63 65");
        let iv = hex("1a f3 8c 2d c2 b9 6f fd d8 66 94 09 23 41 bc 04");
        let a = hex("54 68 65 20 73 65 63 6f 6e 64 20 70 72 69 6e 63 69 70 6c 65 20 6f 66 20 41 75 67 75 73 74 65 20 4b 65 72 63 6b 68 6f 66 66 73");
        let e = hex("c8 0e df a3 2d df 39 d5 ef 00 c0 b4 68 83 42 79 a2 e4 6a 1b 80 49 f7 92 f7 6b fe 54 b9 03 a9 c9 a9 4a c9 b4 7a d2 65 5c 5f 10 f9 ae f7 14 27 e2 fc 6f 9b 3f 39 9a 22 14 89 f1 63 62 c7 03 23 36 09 d4 5a c6 98 64 e3 32 1c f8 29 35 ac 40 96 c8 6e 13 33 14 c5 40 19 e8 ca 79 80 df a4 b9 cf 1b 38 4c 48 6f 3a 54 c5 10 78 15 8e e5 d7 9d e5 9f bd 34 d8 48 b3 d6 95 50 a6 76 46 34 44 27 ad e5 4b 88 51 ff b5 98 f7 f8 00 74 b9 47 3c 82 e2 db");
        let t = hex("65 2c 3f a3 6b 0a 7c 5b 32 19 fa b3 a3 0b c1 c4");
        let (ct, tag) = ContentAlg::A128CbcHs256
            .encrypt_cbc(&k, &iv, &p, &a)
            .unwrap();
        assert_eq!(ct, e);
        assert_eq!(tag, t);
        assert_eq!(
            ContentAlg::A128CbcHs256
                .decrypt(&k, &iv, &e, &t, &a)
                .unwrap(),
            p
        );
        let mut bad = t.clone();
        bad[0] ^= 1;
        assert_eq!(
            ContentAlg::A128CbcHs256.decrypt(&k, &iv, &e, &bad, &a),
            Err(JoseError::Decryption)
        );
        assert_eq!(
            ContentAlg::A128CbcHs256.decrypt(&k, &iv, &e, &t[..8], &a),
            Err(JoseError::Decryption)
        );
    }
}
