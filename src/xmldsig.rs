//! XML Signature verification for SAML (<https://www.w3.org/TR/xmldsig-core1/>), restricted to
//! what SAML needs and nothing an attacker could steer (security.md I5, I6): an enveloped
//! signature over its parent element, referenced by that element's `ID`; exclusive
//! canonicalisation; RSA PKCS#1 v1.5 with SHA-256/384/512 (SHA-1 only when the operator opts
//! in); keys from configuration only (`KeyInfo` is ignored).

pub mod c14n;

use std::fmt;

use base64::Engine;
use roxmltree::Node;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// The XML-DSig namespace.
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";

/// Why a signature was refused. The variants are for logs and counters only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigError {
    /// The `Signature` element is not the expected shape (children, counts, text).
    Shape,
    /// A canonicalisation, transform, digest or signature algorithm that is not allowed.
    Algorithm,
    /// The `Reference` does not point at the signature's parent by its `ID`.
    Reference,
    /// The digest of the referenced element does not match.
    Digest,
    /// No configured key verifies the signature value.
    Signature,
    /// Canonicalisation failed.
    C14n,
}

impl fmt::Display for SigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl SigError {
    /// A short stable name for logs and counters.
    pub fn reason(&self) -> &'static str {
        match self {
            SigError::Shape => "signature_shape",
            SigError::Algorithm => "signature_algorithm",
            SigError::Reference => "signature_reference",
            SigError::Digest => "digest",
            SigError::Signature => "signature",
            SigError::C14n => "c14n",
        }
    }
}

#[derive(Clone, Copy)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => Sha1::digest(data).to_vec(),
            Hash::Sha256 => Sha256::digest(data).to_vec(),
            Hash::Sha384 => Sha384::digest(data).to_vec(),
            Hash::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn padding(self) -> Pkcs1v15Sign {
        match self {
            Hash::Sha1 => Pkcs1v15Sign::new::<Sha1>(),
            Hash::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
            Hash::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
            Hash::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
        }
    }
}

fn digest_method(uri: &str, allow_sha1: bool) -> Result<Hash, SigError> {
    match uri {
        "http://www.w3.org/2001/04/xmlenc#sha256" => Ok(Hash::Sha256),
        "http://www.w3.org/2001/04/xmldsig-more#sha384" => Ok(Hash::Sha384),
        "http://www.w3.org/2001/04/xmlenc#sha512" => Ok(Hash::Sha512),
        "http://www.w3.org/2000/09/xmldsig#sha1" if allow_sha1 => Ok(Hash::Sha1),
        _ => Err(SigError::Algorithm),
    }
}

fn signature_method(uri: &str, allow_sha1: bool) -> Result<Hash, SigError> {
    match uri {
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => Ok(Hash::Sha256),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => Ok(Hash::Sha384),
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => Ok(Hash::Sha512),
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1" if allow_sha1 => Ok(Hash::Sha1),
        _ => Err(SigError::Algorithm),
    }
}

/// Whether `node` is the element `{ns}local`.
pub fn is(node: Node<'_, '_>, ns: &str, local: &str) -> bool {
    node.is_element() && node.tag_name().namespace() == Some(ns) && node.tag_name().name() == local
}

/// Element children, with any non-whitespace text between them refused.
fn elements<'a, 'i>(node: Node<'a, 'i>) -> Result<Vec<Node<'a, 'i>>, SigError> {
    let mut out = Vec::new();
    for child in node.children() {
        if child.is_element() {
            out.push(child);
        } else if child.is_text() && !child.text().unwrap_or("").trim().is_empty() {
            return Err(SigError::Shape);
        }
    }
    Ok(out)
}

/// The text of an element made only of text (no comment, element or PI inside).
fn text_only(node: Node<'_, '_>) -> Result<String, SigError> {
    let mut text = String::new();
    for child in node.children() {
        if !child.is_text() {
            return Err(SigError::Shape);
        }
        text.push_str(child.text().unwrap_or(""));
    }
    Ok(text)
}

/// Strict base64 of a `DigestValue` or `SignatureValue`, whitespace allowed between groups.
fn base64_value(node: Node<'_, '_>) -> Result<Vec<u8>, SigError> {
    let text: String = text_only(node)?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    crate::jose::B64STD
        .decode(text.as_bytes())
        .map_err(|_| SigError::Shape)
}

fn algorithm<'a>(node: Node<'a, '_>) -> Result<&'a str, SigError> {
    node.attribute("Algorithm").ok_or(SigError::Shape)
}

/// The `InclusiveNamespaces PrefixList` inside a c14n method or transform, if any.
fn inclusive_prefixes(node: Node<'_, '_>) -> Result<Vec<String>, SigError> {
    let mut out = Vec::new();
    for child in elements(node)? {
        if !is(child, EXC_C14N, "InclusiveNamespaces") {
            return Err(SigError::Algorithm);
        }
        let list = child.attribute("PrefixList").unwrap_or("");
        out.extend(list.split_ascii_whitespace().map(str::to_owned));
    }
    Ok(out)
}

/// Verifies the enveloped `signature`, a direct child of `signed`, over `signed`, with one of
/// `keys`.
///
/// # Errors
///
/// [`SigError`] for any deviation from the one shape accepted, and for a digest or signature
/// that does not verify.
pub fn verify_enveloped(
    signed: Node<'_, '_>,
    signature: Node<'_, '_>,
    keys: &[RsaPublicKey],
    allow_sha1: bool,
) -> Result<(), SigError> {
    let (signed_info, value) = signature_parts(signed, signature)?;
    let info = read_signed_info(signed_info, allow_sha1)?;
    let reference = read_reference(signed, info.reference, allow_sha1)?;

    let canonical = c14n::exclusive(signed, Some(signature.id()), &reference.prefixes)
        .map_err(|_| SigError::C14n)?;
    let actual = reference.hash.digest(&canonical);
    let same: bool =
        subtle::ConstantTimeEq::ct_eq(actual.as_slice(), reference.expected.as_slice()).into();
    if !same {
        return Err(SigError::Digest);
    }

    let signature_value = base64_value(value)?;
    let info_bytes =
        c14n::exclusive(signed_info, None, &info.prefixes).map_err(|_| SigError::C14n)?;
    let hashed = info.hash.digest(&info_bytes);
    if keys.iter().any(|k| {
        k.verify(info.hash.padding(), &hashed, &signature_value)
            .is_ok()
    }) {
        Ok(())
    } else {
        Err(SigError::Signature)
    }
}

/// The `SignedInfo` and `SignatureValue` of a `Signature` that is a direct child of `signed`:
/// the outer shape, checked before anything inside is read. At most one `KeyInfo` follows
/// (ignored) and no `Object` (XSW8).
fn signature_parts<'a, 'i>(
    signed: Node<'a, 'i>,
    signature: Node<'a, 'i>,
) -> Result<(Node<'a, 'i>, Node<'a, 'i>), SigError> {
    if !is(signature, DS_NS, "Signature") || signature.parent() != Some(signed) {
        return Err(SigError::Shape);
    }
    let parts = elements(signature)?;
    let (signed_info, value) = match parts.as_slice() {
        [si, sv] => (*si, *sv),
        [si, sv, ki] if is(*ki, DS_NS, "KeyInfo") => (*si, *sv),
        _ => return Err(SigError::Shape),
    };
    if !is(signed_info, DS_NS, "SignedInfo") || !is(value, DS_NS, "SignatureValue") {
        return Err(SigError::Shape);
    }
    Ok((signed_info, value))
}

/// What a checked `SignedInfo` says: how to canonicalise it, how it is signed, and the one
/// `Reference` it covers.
struct SignedInfo<'a, 'i> {
    /// The `InclusiveNamespaces PrefixList` of its `CanonicalizationMethod`.
    prefixes: Vec<String>,
    /// The hash of its `SignatureMethod`.
    hash: Hash,
    /// Its only `Reference`.
    reference: Node<'a, 'i>,
}

/// Reads `SignedInfo`: exactly `CanonicalizationMethod` (exclusive c14n), `SignatureMethod`
/// (an allowed RSA hash, no parameters) and one `Reference`. Kept apart so the algorithm
/// allow-list sits in one place.
fn read_signed_info<'a, 'i>(
    signed_info: Node<'a, 'i>,
    allow_sha1: bool,
) -> Result<SignedInfo<'a, 'i>, SigError> {
    let info = elements(signed_info)?;
    let [c14n_method, sig_method, reference] = info.as_slice() else {
        return Err(SigError::Shape);
    };
    if !is(*c14n_method, DS_NS, "CanonicalizationMethod")
        || !is(*sig_method, DS_NS, "SignatureMethod")
        || !is(*reference, DS_NS, "Reference")
    {
        return Err(SigError::Shape);
    }
    if algorithm(*c14n_method)? != EXC_C14N {
        return Err(SigError::Algorithm);
    }
    let prefixes = inclusive_prefixes(*c14n_method)?;
    if !elements(*sig_method)?.is_empty() {
        // HMACOutputLength and the like (CVE-2009-0217).
        return Err(SigError::Algorithm);
    }
    let hash = signature_method(algorithm(*sig_method)?, allow_sha1)?;
    Ok(SignedInfo {
        prefixes,
        hash,
        reference: *reference,
    })
}

/// What a checked `Reference` says about the digest of the signed element.
struct Reference {
    /// The `InclusiveNamespaces PrefixList` of its exclusive c14n transform.
    prefixes: Vec<String>,
    /// The hash of its `DigestMethod`.
    hash: Hash,
    /// Its `DigestValue`, decoded.
    expected: Vec<u8>,
}

/// Reads the `Reference`: `URI="#<ID of signed>"` (so the signature covers its own parent and
/// nothing an attacker moved elsewhere), the transforms enveloped then exclusive c14n and
/// nothing else, an allowed digest method and its value.
fn read_reference(
    signed: Node<'_, '_>,
    reference: Node<'_, '_>,
    allow_sha1: bool,
) -> Result<Reference, SigError> {
    let id = signed.attribute("ID").ok_or(SigError::Reference)?;
    let uri = reference.attribute("URI").ok_or(SigError::Reference)?;
    if uri.strip_prefix('#') != Some(id) || id.is_empty() {
        return Err(SigError::Reference);
    }
    let ref_parts = elements(reference)?;
    let [transforms, digest_method_node, digest_value] = ref_parts.as_slice() else {
        return Err(SigError::Shape);
    };
    if !is(*transforms, DS_NS, "Transforms")
        || !is(*digest_method_node, DS_NS, "DigestMethod")
        || !is(*digest_value, DS_NS, "DigestValue")
    {
        return Err(SigError::Shape);
    }
    let steps = elements(*transforms)?;
    let [first, second] = steps.as_slice() else {
        return Err(SigError::Algorithm);
    };
    if !is(*first, DS_NS, "Transform")
        || !is(*second, DS_NS, "Transform")
        || algorithm(*first)? != ENVELOPED
        || algorithm(*second)? != EXC_C14N
        || !elements(*first)?.is_empty()
    {
        return Err(SigError::Algorithm);
    }
    let prefixes = inclusive_prefixes(*second)?;
    let hash = digest_method(algorithm(*digest_method_node)?, allow_sha1)?;
    let expected = base64_value(*digest_value)?;
    Ok(Reference {
        prefixes,
        hash,
        expected,
    })
}

/// The RSA public key of an X.509 certificate (DER), for `KeyDescriptor`s and configuration.
///
/// # Errors
///
/// A message when the certificate does not parse or its key is not RSA.
pub fn rsa_key_from_certificate(der: &[u8]) -> Result<RsaPublicKey, String> {
    use rsa::pkcs8::DecodePublicKey;
    use x509_cert::der::{Decode, Encode};
    let cert = x509_cert::Certificate::from_der(der)
        .map_err(|e| format!("not an X.509 certificate: {e}"))?;
    let spki = cert
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|e| format!("certificate key: {e}"))?;
    RsaPublicKey::from_public_key_der(&spki).map_err(|_| "the certificate key is not RSA".into())
}

/// A certificate given as PEM or as bare base64 DER (as in metadata `X509Certificate`).
///
/// # Errors
///
/// A message saying what is wrong.
pub fn certificate_der(text: &str) -> Result<Vec<u8>, String> {
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    crate::jose::B64STD
        .decode(body.as_bytes())
        .map_err(|_| "not PEM or base64 DER".to_owned())
}
