//! SAML single logout by the HTTP-Redirect binding, both ways: `{prefix}/logout` sends the
//! IdP a `LogoutRequest` for the session's subject; the IdP's signed `LogoutRequest` at
//! `{prefix}/saml/{method}/slo` ends its sessions and gets a `LogoutResponse` back.

use base64::Engine;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256};

use super::{
    child, parse_options, parse_xml_time, request_id, session_id, xml_time, Idp, Saml2,
    SamlFailure, RSA_SHA256, SAMLP_NS, SAML_NS, STATUS_SUCCESS,
};
use crate::counter::Counter;
use crate::deny::Deny;
use crate::http::{Outcome, Response, Step};
use crate::idp::IdpFailure;
use crate::jose::B64STD;
use crate::login::{Env, Here, Request};
use crate::pages::escape;
use crate::random;
use crate::session::Session;
use crate::xml::text_only;
use crate::xmldsig::is;

impl Saml2 {
    /// A `LogoutRequest` (SAML core §3.7.1) for a session's subject.
    pub fn logout_request(
        &self,
        idp: &Idp,
        id: &str,
        now: u64,
        sp_entity_id: &str,
        subject: &crate::session::SamlSubject,
    ) -> Option<String> {
        let (slo, _) = idp.slo_redirect.as_ref()?;
        let format = subject
            .format
            .as_deref()
            .map(|f| format!(r#" Format="{}""#, escape(f)))
            .unwrap_or_default();
        let index = subject
            .session_index
            .as_deref()
            .map(|i| format!("<samlp:SessionIndex>{}</samlp:SessionIndex>", escape(i)))
            .unwrap_or_default();
        Some(format!(
            r#"<samlp:LogoutRequest xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}"><saml:Issuer>{}</saml:Issuer><saml:NameID{format}>{}</saml:NameID>{index}</samlp:LogoutRequest>"#,
            xml_time(now),
            escape(slo.as_str()),
            escape(sp_entity_id),
            escape(&subject.name_id),
        ))
    }

    /// A `LogoutResponse` with status Success to the IdP's logout request.
    pub fn logout_response(
        &self,
        destination: &str,
        id: &str,
        in_response_to: &str,
        now: u64,
        sp_entity_id: &str,
    ) -> String {
        format!(
            r#"<samlp:LogoutResponse xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="{id}" Version="2.0" IssueInstant="{}" Destination="{}" InResponseTo="{}"><saml:Issuer>{}</saml:Issuer><samlp:Status><samlp:StatusCode Value="{STATUS_SUCCESS}"/></samlp:Status></samlp:LogoutResponse>"#,
            xml_time(now),
            escape(destination),
            escape(in_response_to),
            escape(sp_entity_id)
        )
    }

    /// Verifies an HTTP-Redirect message from the IdP (bindings §3.4.4.1): the signature over
    /// `SAMLRequest=…&RelayState=…&SigAlg=…` as they appear in the raw query, with an IdP key;
    /// returns the inflated XML.
    ///
    /// # Errors
    ///
    /// [`SamlFailure`] when unsigned, wrongly signed, or not decodable.
    pub fn verify_redirect(
        &self,
        idp: &Idp,
        raw_query: &str,
        param: &str,
    ) -> Result<String, SamlFailure> {
        let mut raw: Vec<(&str, &str)> = Vec::new();
        for part in raw_query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            if raw.iter().any(|(seen, _)| *seen == k) {
                return Err(SamlFailure::Structure("duplicate_parameter"));
            }
            raw.push((k, v));
        }
        let get = |k: &str| raw.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let message = get(param).ok_or(SamlFailure::Malformed)?;
        let sig_alg = get("SigAlg").ok_or(SamlFailure::Signature("missing"))?;
        let signature = get("Signature").ok_or(SamlFailure::Signature("missing"))?;
        let mut signed = format!("{param}={message}");
        if let Some(r) = get("RelayState") {
            signed.push_str(&format!("&RelayState={r}"));
        }
        signed.push_str(&format!("&SigAlg={sig_alg}"));
        let decode = |v: &str| -> String {
            url::form_urlencoded::parse(format!("v={v}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let sig = B64STD
            .decode(decode(signature).as_bytes())
            .map_err(|_| SamlFailure::Signature("signature"))?;
        let ok = match decode(sig_alg).as_str() {
            RSA_SHA256 => verify_with::<Sha256>(&idp.keys, signed.as_bytes(), &sig),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => {
                verify_with::<sha2::Sha512>(&idp.keys, signed.as_bytes(), &sig)
            }
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1" if self.allow_sha1 => {
                verify_with::<sha1::Sha1>(&idp.keys, signed.as_bytes(), &sig)
            }
            _ => return Err(SamlFailure::Signature("signature_algorithm")),
        };
        if !ok {
            return Err(SamlFailure::Signature("signature"));
        }
        let deflated = B64STD
            .decode(decode(message).as_bytes())
            .map_err(|_| SamlFailure::Malformed)?;
        let xml = miniz_oxide::inflate::decompress_to_vec_with_limit(&deflated, MAX_SLO_XML)
            .map_err(|_| SamlFailure::Malformed)?;
        String::from_utf8(xml).map_err(|_| SamlFailure::Malformed)
    }

    /// Checks an IdP `LogoutRequest` (SAML core §3.7.1): issuer, destination, time; returns
    /// its `ID` and `SessionIndex` values.
    ///
    /// # Errors
    ///
    /// [`SamlFailure`] when it is not a usable logout request for this SP.
    pub fn check_logout_request(
        &self,
        idp: &Idp,
        xml: &str,
        sls_url: &str,
        now: u64,
    ) -> Result<(String, Vec<String>), SamlFailure> {
        let doc = roxmltree::Document::parse_with_options(xml, parse_options())
            .map_err(|_| SamlFailure::Malformed)?;
        let root = doc.root_element();
        if !is(root, SAMLP_NS, "LogoutRequest") || root.attribute("Version") != Some("2.0") {
            return Err(SamlFailure::Structure("root"));
        }
        let id = root
            .attribute("ID")
            .filter(|i| !i.is_empty())
            .ok_or(SamlFailure::Structure("ids"))?;
        let issuer = child(root, SAML_NS, "Issuer")?.ok_or(SamlFailure::Issuer)?;
        if text_only(issuer).as_deref().map(str::trim) != Some(idp.entity_id.as_str()) {
            return Err(SamlFailure::Issuer);
        }
        if root.attribute("Destination").is_some_and(|d| d != sls_url) {
            return Err(SamlFailure::NotForUs("destination"));
        }
        if let Some(t) = root.attribute("NotOnOrAfter") {
            if parse_xml_time(t).is_none_or(|t| now >= t.saturating_add(self.leeway)) {
                return Err(SamlFailure::Expired);
            }
        }
        let mut indexes = Vec::new();
        for n in root.children().filter(|n| is(*n, SAMLP_NS, "SessionIndex")) {
            indexes.push(
                text_only(n)
                    .ok_or(SamlFailure::Structure("session_index"))?
                    .trim()
                    .to_owned(),
            );
        }
        Ok((id.to_owned(), indexes))
    }
}

/// The largest inflated HTTP-Redirect message accepted (security.md I12: a deflate bomb stops
/// here).
const MAX_SLO_XML: usize = 64 * 1024;

fn verify_with<D>(keys: &[RsaPublicKey], message: &[u8], sig: &[u8]) -> bool
where
    D: Digest + rsa::pkcs8::AssociatedOid,
{
    let hashed = D::digest(message);
    keys.iter()
        .any(|k| k.verify(Pkcs1v15Sign::new::<D>(), &hashed, sig).is_ok())
}

impl Saml2 {
    /// Where `{prefix}/logout` sends the browser for a SAML session: the IdP's single logout
    /// with a `LogoutRequest` for the session's subject (when the IdP has an HTTP-Redirect
    /// `SingleLogoutService` and its metadata is at hand).
    pub(super) fn logout_url(
        &self,
        here: &Here<'_>,
        session: &Session,
        env: &mut Env<'_>,
    ) -> Option<String> {
        let subject = session.saml.as_ref().filter(|_| self.single_logout)?;
        let idp = self.idp_at_hand(here, env, true).ok()??;
        let (slo, _) = idp.slo_redirect.clone()?;
        let id = random::bytes(env.rng, 20).ok().map(|b| request_id(&b))?;
        let (entity, _) = self.sp_urls(here);
        let xml = self.logout_request(&idp, &id, env.now, &entity, subject)?;
        self.redirect_message(&slo, "SAMLRequest", &xml, None).ok()
    }

    /// `GET {prefix}/saml/{method}/slo`: the IdP's answer to our logout (`SAMLResponse`: back
    /// to the site), or the IdP's own `LogoutRequest` (`SAMLRequest`, signature required): its
    /// session indexes join the logged-out list, this browser's session cookie is deleted, and
    /// a `LogoutResponse` goes back to the IdP.
    pub(super) fn slo(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let kit = here.kit;
        let clear = kit.cookies().clear_session(&req.cookies);
        if req.query.has("SAMLResponse") {
            let home = format!("{}/", kit.origin());
            return Ok(Outcome::new(Step::Respond(
                Response::redirect(302, &home).cookies(clear),
            )));
        }
        if !self.single_logout || !req.query.has("SAMLRequest") {
            return Err(Deny::BadRequest("slo"));
        }
        let idp = self
            .idp_at_hand(here, env, true)?
            .ok_or(Deny::Unavailable("metadata"))?;
        let refused = |f: SamlFailure| here.idp(IdpFailure::Rejected(f.reason()));
        let xml = self
            .verify_redirect(&idp, req.raw_query, "SAMLRequest")
            .map_err(refused)?;
        let sls = format!("{}{}/saml/{}/slo", kit.origin(), kit.prefix(), here.name());
        let (request_id, indexes) = self
            .check_logout_request(&idp, &xml, &sls, env.now)
            .map_err(refused)?;
        let stores = kit.stores(env.cache, env.rng)?;
        let keep_until = env.now.saturating_add(kit.cookies().ttl).saturating_add(60);
        for index in &indexes {
            stores.log_out(&session_id(index), env.now, keep_until, env.now)?;
        }
        log::info!(
            "sso-filter: SAML single logout method={} sessions={}",
            here.name(),
            indexes.len()
        );
        let response = match &idp.slo_redirect {
            Some(slo) => self.logout_answer(here, req, slo, &request_id, env)?,
            None => Response::new(200).html(crate::pages::error(
                "Signed out",
                "You are signed out.",
                None,
            )),
        };
        Ok(Outcome::new(Step::Respond(response.cookies(clear))).count(Counter::Slo(here.label())))
    }

    /// The `LogoutResponse` to the IdP's `LogoutRequest`, by redirect to its
    /// `ResponseLocation` (else its `Location`), with the `RelayState` it sent.
    fn logout_answer(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        (location, response_location): &(url::Url, Option<url::Url>),
        in_response_to: &str,
        env: &mut Env<'_>,
    ) -> Result<Response, Deny> {
        let to = response_location.as_ref().unwrap_or(location);
        let id = random::bytes(env.rng, 20)
            .map(|b| request_id(&b))
            .map_err(|_| Deny::Unavailable("random"))?;
        let (entity, _) = self.sp_urls(here);
        let answer = self.logout_response(to.as_str(), &id, in_response_to, env.now, &entity);
        let relay = req.query.single("RelayState").ok().flatten();
        let location = self
            .redirect_message(to, "SAMLResponse", &answer, relay)
            .map_err(|_| Deny::Unavailable("saml_response"))?;
        Ok(Response::redirect(302, &location))
    }
}
