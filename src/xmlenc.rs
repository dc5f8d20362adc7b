//! XML Encryption (<https://www.w3.org/TR/xmlenc-core1/>) decryption of one `EncryptedData`
//! element, as SAML's `EncryptedAssertion` uses it: the content key is transported with
//! RSA-OAEP under the SP's key, the element is encrypted with AES-CBC or AES-GCM.
//!
//! # Security
//!
//! RSA PKCS#1 v1.5 key transport is refused (Bleichenbacher). Every failure is the same
//! [`DecryptError`], so nothing distinguishes a padding error from a key error
//! (security.md I15, K3); the caller also refuses the result unless it verifies as signed.

use aes::cipher::{BlockDecryptMut, KeyIvInit};
use aes_gcm::aead::{Aead, KeyInit};
use base64::Engine;
use roxmltree::Node;
use rsa::{Oaep, RsaPrivateKey};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use crate::xmldsig::{is, DS_NS};

/// The XML Encryption namespace.
pub const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";

/// The encrypted element could not be decrypted (no detail, on purpose).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecryptError;

#[derive(Clone, Copy)]
enum Content {
    Aes128Cbc,
    Aes256Cbc,
    Aes128Gcm,
    Aes256Gcm,
}

impl Content {
    fn from_uri(uri: &str) -> Result<Self, DecryptError> {
        match uri {
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc" => Ok(Content::Aes128Cbc),
            "http://www.w3.org/2001/04/xmlenc#aes256-cbc" => Ok(Content::Aes256Cbc),
            "http://www.w3.org/2009/xmlenc11#aes128-gcm" => Ok(Content::Aes128Gcm),
            "http://www.w3.org/2009/xmlenc11#aes256-gcm" => Ok(Content::Aes256Gcm),
            _ => Err(DecryptError),
        }
    }

    fn key_len(self) -> usize {
        match self {
            Content::Aes128Cbc | Content::Aes128Gcm => 16,
            Content::Aes256Cbc | Content::Aes256Gcm => 32,
        }
    }
}

fn elements<'a, 'i>(node: Node<'a, 'i>) -> Vec<Node<'a, 'i>> {
    node.children().filter(Node::is_element).collect()
}

fn one<'a, 'i>(node: Node<'a, 'i>, ns: &str, local: &str) -> Result<Node<'a, 'i>, DecryptError> {
    let found: Vec<_> = node.children().filter(|c| is(*c, ns, local)).collect();
    match found.as_slice() {
        [n] => Ok(*n),
        _ => Err(DecryptError),
    }
}

fn cipher_value(parent: Node<'_, '_>) -> Result<Vec<u8>, DecryptError> {
    let data = one(parent, XENC_NS, "CipherData")?;
    let value = one(data, XENC_NS, "CipherValue")?;
    let mut text = String::new();
    for c in value.children() {
        if !c.is_text() {
            return Err(DecryptError);
        }
        text.push_str(c.text().unwrap_or(""));
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    crate::jose::B64STD
        .decode(compact.as_bytes())
        .map_err(|_| DecryptError)
}

/// Decrypts `encrypted_data` (an `xenc:EncryptedData` of `Type` Element) with `key`; returns
/// the plaintext octets (the serialized element).
///
/// # Errors
///
/// [`DecryptError`] for any algorithm, shape, key or integrity failure.
pub fn decrypt(encrypted_data: Node<'_, '_>, key: &RsaPrivateKey) -> Result<Vec<u8>, DecryptError> {
    if !is(encrypted_data, XENC_NS, "EncryptedData") {
        return Err(DecryptError);
    }
    let method = one(encrypted_data, XENC_NS, "EncryptionMethod")?;
    let content = Content::from_uri(method.attribute("Algorithm").unwrap_or(""))?;
    let key_info = one(encrypted_data, DS_NS, "KeyInfo")?;
    let encrypted_key = one(key_info, XENC_NS, "EncryptedKey")?;
    let key_method = one(encrypted_key, XENC_NS, "EncryptionMethod")?;
    let wrapped = cipher_value(encrypted_key)?;
    let digest = key_method
        .children()
        .find(|c| is(*c, DS_NS, "DigestMethod"))
        .and_then(|d| d.attribute("Algorithm"));
    let mgf = key_method
        .children()
        .find(|c| is(*c, XENC11_NS, "MGF"))
        .and_then(|d| d.attribute("Algorithm"));
    let padding = match (key_method.attribute("Algorithm"), digest, mgf) {
        // rsa-oaep-mgf1p: MGF1 with SHA-1; the digest defaults to SHA-1.
        (
            Some("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"),
            None | Some("http://www.w3.org/2000/09/xmldsig#sha1"),
            None,
        )
        | (
            Some("http://www.w3.org/2009/xmlenc11#rsa-oaep"),
            None | Some("http://www.w3.org/2000/09/xmldsig#sha1"),
            None | Some("http://www.w3.org/2009/xmlenc11#mgf1sha1"),
        ) => Oaep::new::<Sha1>(),
        (
            Some("http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"),
            Some("http://www.w3.org/2001/04/xmlenc#sha256"),
            None,
        ) => Oaep::new_with_mgf_hash::<Sha256, Sha1>(),
        (
            Some("http://www.w3.org/2009/xmlenc11#rsa-oaep"),
            Some("http://www.w3.org/2001/04/xmlenc#sha256"),
            Some("http://www.w3.org/2009/xmlenc11#mgf1sha256"),
        ) => Oaep::new::<Sha256>(),
        (
            Some("http://www.w3.org/2009/xmlenc11#rsa-oaep"),
            Some("http://www.w3.org/2001/04/xmlenc#sha512"),
            Some("http://www.w3.org/2009/xmlenc11#mgf1sha512"),
        ) => Oaep::new::<Sha512>(),
        _ => return Err(DecryptError),
    };
    let cek = key.decrypt(padding, &wrapped).map_err(|_| DecryptError)?;
    if cek.len() != content.key_len() {
        return Err(DecryptError);
    }
    let data = cipher_value(encrypted_data)?;
    if !elements(encrypted_data).iter().all(|e| {
        is(*e, XENC_NS, "EncryptionMethod")
            || is(*e, DS_NS, "KeyInfo")
            || is(*e, XENC_NS, "CipherData")
    }) {
        return Err(DecryptError);
    }
    match content {
        Content::Aes128Cbc => cbc_decrypt::<aes::Aes128>(&cek, &data),
        Content::Aes256Cbc => cbc_decrypt::<aes::Aes256>(&cek, &data),
        Content::Aes128Gcm => gcm_decrypt::<aes_gcm::Aes128Gcm>(&cek, &data),
        Content::Aes256Gcm => gcm_decrypt::<aes_gcm::Aes256Gcm>(&cek, &data),
    }
}

/// AES-CBC with the IV in front and XML Encryption padding (the last octet is the pad length,
/// 1 to 16; the other pad octets are arbitrary).
fn cbc_decrypt<C>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, DecryptError>
where
    C: aes::cipher::BlockCipher + aes::cipher::BlockDecrypt + aes::cipher::KeyInit,
    cbc::Decryptor<C>: KeyIvInit + BlockDecryptMut,
{
    let (iv, body) = data.split_at_checked(16).ok_or(DecryptError)?;
    if body.is_empty() || body.len() % 16 != 0 {
        return Err(DecryptError);
    }
    let mut buf = body.to_vec();
    let dec = cbc::Decryptor::<C>::new_from_slices(key, iv).map_err(|_| DecryptError)?;
    let plain = dec
        .decrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut buf)
        .map_err(|_| DecryptError)?;
    let pad = usize::from(*plain.last().ok_or(DecryptError)?);
    if pad == 0 || pad > 16 || pad > plain.len() {
        return Err(DecryptError);
    }
    Ok(plain.get(..plain.len() - pad).ok_or(DecryptError)?.to_vec())
}

/// AES-GCM with the 96-bit IV in front and the 128-bit tag at the end.
fn gcm_decrypt<A>(key: &[u8], data: &[u8]) -> Result<Vec<u8>, DecryptError>
where
    A: KeyInit + Aead,
{
    let (iv, body) = data.split_at_checked(12).ok_or(DecryptError)?;
    let cipher = A::new_from_slice(key).map_err(|_| DecryptError)?;
    cipher
        .decrypt(aes_gcm::Nonce::<A::NonceSize>::from_slice(iv), body)
        .map_err(|_| DecryptError)
}
