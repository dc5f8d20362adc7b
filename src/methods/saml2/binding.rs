//! How SAML messages travel (SAML bindings §3.4, §3.5), both ways and for every message the
//! SP sends or reads (the `AuthnRequest`, the single logout messages):
//!
//! - HTTP-Redirect: deflated, base64, in the query; a signature covers the query as sent.
//! - HTTP-POST: base64 in a form that submits itself; a signature sits inside the XML
//!   (enveloped, right after the `Issuer`).

use base64::Engine;
use rsa::Pkcs1v15Sign;
use sha2::{Digest, Sha256};

use super::{Saml2, SamlFailure, SpKey, RSA_SHA256};
use crate::http::Response;
use crate::jose::B64STD;
use crate::pages::escape;
use crate::xmldsig::{self, DS_NS};

/// The one script of an auto-submitting page. The page's CSP allows it by its hash, so no
/// `'unsafe-inline'` is needed (an inline event handler could not be allowed that way).
const AUTO_SUBMIT: &str = "document.forms[0].submit()";

/// A message by the HTTP-Redirect binding to `endpoint` (`param` is `SAMLRequest` or
/// `SAMLResponse`), signed over the query with `key` when one is given (bindings §3.4.4.1).
///
/// # Errors
///
/// A message when signing fails.
pub fn redirect_message(
    endpoint: &url::Url,
    (param, xml): (&str, &str),
    relay_state: Option<&str>,
    key: Option<&SpKey>,
) -> Result<String, &'static str> {
    let deflated = miniz_oxide::deflate::compress_to_vec(xml.as_bytes(), 6);
    let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let mut query = format!("{param}={}", enc(&B64STD.encode(deflated)));
    if let Some(r) = relay_state {
        query.push_str(&format!("&RelayState={}", enc(r)));
    }
    if let Some(SpKey(key)) = key {
        query.push_str(&format!("&SigAlg={}", enc(RSA_SHA256)));
        let hashed = Sha256::digest(query.as_bytes());
        let sig = key
            .sign(Pkcs1v15Sign::new::<Sha256>(), &hashed)
            .map_err(|_| "signing failed")?;
        query.push_str(&format!("&Signature={}", enc(&B64STD.encode(sig))));
    }
    let sep = if endpoint.query().is_some() { '&' } else { '?' };
    Ok(format!("{endpoint}{sep}{query}"))
}

/// `xml` (a message whose root has `ID="{id}"` and starts with a `saml:Issuer`) with an
/// enveloped XML signature right after that `Issuer` (bindings §3.5.4.1, the schema order of
/// every SAML protocol message): exclusive c14n, RSA-SHA256, SHA-256 digest, the one shape
/// the filter accepts from IdPs too.
///
/// # Errors
///
/// A message when the XML does not parse back or signing fails.
pub fn sign_enveloped(xml: &str, id: &str, SpKey(key): &SpKey) -> Result<String, &'static str> {
    let doc = roxmltree::Document::parse(xml).map_err(|_| "message does not parse")?;
    let canonical = xmldsig::c14n::exclusive(doc.root_element(), None, &[]).map_err(|_| "c14n")?;
    let digest = B64STD.encode(Sha256::digest(&canonical));
    let signed_info = format!(
        r##"<ds:SignedInfo xmlns:ds="{DS_NS}"><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/><ds:SignatureMethod Algorithm="{RSA_SHA256}"/><ds:Reference URI="#{id}"><ds:Transforms><ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/><ds:Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:Transforms><ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>{digest}</ds:DigestValue></ds:Reference></ds:SignedInfo>"##
    );
    let info_doc =
        roxmltree::Document::parse(&signed_info).map_err(|_| "SignedInfo does not parse")?;
    let info_c14n =
        xmldsig::c14n::exclusive(info_doc.root_element(), None, &[]).map_err(|_| "c14n")?;
    let value = key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&info_c14n))
        .map_err(|_| "signing failed")?;
    let signature = format!(
        r#"<ds:Signature xmlns:ds="{DS_NS}">{signed_info}<ds:SignatureValue>{}</ds:SignatureValue></ds:Signature>"#,
        B64STD.encode(value)
    );
    let at = xml
        .find("</saml:Issuer>")
        .map(|i| i + "</saml:Issuer>".len())
        .ok_or("no Issuer")?;
    let (head, tail) = xml.split_at(at);
    Ok(format!("{head}{signature}{tail}"))
}

/// The HTTP-POST binding page (bindings §3.5.4): a form that posts `field` (the base64 of
/// `xml`) and the `RelayState` to `action`, submitted by a script the CSP allows by its hash.
/// `form-action` stays open: the IdP may redirect the post on, and browsers check
/// `form-action` along redirects.
pub fn post_form(
    action: &url::Url,
    (field, xml): (&str, &str),
    relay_state: Option<&str>,
    title: &str,
) -> Response {
    let relay = relay_state
        .map(|r| {
            format!(
                r#"<input type="hidden" name="RelayState" value="{}">"#,
                escape(r)
            )
        })
        .unwrap_or_default();
    let html = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{}</title></head><body><form method="post" action="{}"><input type="hidden" name="{field}" value="{}">{relay}<noscript><button type="submit">Continue</button></noscript></form><script>{AUTO_SUBMIT}</script></body></html>"#,
        escape(title),
        escape(action.as_str()),
        B64STD.encode(xml.as_bytes()),
    );
    let csp = format!(
        "default-src 'none'; script-src 'sha256-{}'; form-action *; base-uri 'none'; \
         frame-ancestors 'none'",
        B64STD.encode(Sha256::digest(AUTO_SUBMIT.as_bytes()))
    );
    Response::new(200)
        .html(html)
        .header("content-security-policy", csp)
        .header("referrer-policy", "no-referrer")
}

/// A posted `SAMLResponse` or `SAMLRequest` decoded: strict base64 (whitespace between groups
/// allowed), at most `max` bytes once decoded (security.md I12), UTF-8.
///
/// # Errors
///
/// [`SamlFailure::Malformed`].
pub fn decode_posted(text: &str, max: usize) -> Result<String, SamlFailure> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    if compact.len() > max / 3 * 4 + 4 {
        return Err(SamlFailure::Malformed);
    }
    let bytes = B64STD
        .decode(compact.as_bytes())
        .map_err(|_| SamlFailure::Malformed)?;
    String::from_utf8(bytes).map_err(|_| SamlFailure::Malformed)
}

impl Saml2 {
    /// The key single logout messages are signed with: the SP's (`sp_private_key`) whenever
    /// one is configured, as the profile wants them signed (SAML profiles §4.4.4.1, §4.4.4.2).
    pub(super) fn logout_key(&self) -> Option<&SpKey> {
        self.sp_key.as_ref()
    }
}
