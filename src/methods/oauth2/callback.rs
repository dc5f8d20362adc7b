//! The callback: the state checked, the code redeemed, the ID token verified (refetching the
//! JWKS once for an unknown key), user-info read, and the one completion path.

use serde_json::{Map, Value};

use super::documents::{cached_doc, judge_doc, store_doc};
use super::login::{Finish, Stage, Wait};
use super::{OAuth2, Tokens, DOC_TTL, JWKS_REFETCH_INTERVAL};
use crate::deny::Deny;
use crate::http::{CalloutResponse, Outcome};
use crate::idp::{answered, IdpFailure};
use crate::login::{Done, Env, Here, Request};
use crate::session::{Flow, SessionExtra, UpstreamToken};

/// What the IdP says when there is no current login (a silent reload failed): the local
/// session must not outlive it.
const NO_LOGIN_AT_IDP: [&str; 4] = [
    "login_required",
    "interaction_required",
    "consent_required",
    "account_selection_required",
];

/// The flow's own method (its scope may not be the first with this name), the code and `iss`.
fn checked<'k>(
    here: &Here<'k>,
    req: &Request<'_>,
    flow: &Flow,
) -> Result<(Here<'k>, &'k OAuth2, String, Option<String>), Deny> {
    let (here, o) = here.flow_method::<OAuth2>(flow)?;
    if let Some(error) = req.param("error", "duplicate_callback_param")? {
        log::warn!(
            "sso-filter: IdP error on callback method={} error={} description={}",
            here.name(),
            crate::deny::sanitize(error),
            crate::deny::sanitize(
                req.query
                    .single("error_description")
                    .ok()
                    .flatten()
                    .unwrap_or("")
            )
        );
        return Err(here.idp(IdpFailure::Refused(error.to_owned())));
    }
    let code = req
        .param("code", "duplicate_callback_param")?
        .filter(|c| !c.is_empty())
        .ok_or(Deny::BadRequest("no_code"))?
        .to_owned();
    let iss = req
        .param("iss", "duplicate_callback_param")?
        .map(str::to_owned);
    Ok((here, o, code, iss))
}

impl OAuth2 {
    /// The callback: check the state, then redeem the code.
    pub(super) fn receive(
        &self,
        here: &Here<'_>,
        req: &Request<'_>,
        env: &mut Env<'_>,
    ) -> Result<Outcome, Deny> {
        let (flow, delete_flow) = here.take_callback_flow(req, env)?;
        // From here on the flow is used up: every refusal also deletes its cookie.
        match checked(here, req, &flow) {
            Ok((here, o, code, iss)) => {
                let finish = Finish {
                    head: req.head.clone(),
                    flow,
                    delete_flow,
                    code,
                    iss,
                    endpoints: None,
                    sent_ms: env.now_ms,
                };
                Ok(o.advance(&here, finish, env))
            }
            Err(deny) => {
                let mut cookies: Vec<String> = delete_flow.into_iter().collect();
                if let Deny::Idp {
                    failure: IdpFailure::Refused(code),
                    ..
                } = &deny
                {
                    if NO_LOGIN_AT_IDP.contains(&code.as_str()) {
                        cookies.extend(here.kit.cookies().clear_session(&req.cookies));
                    }
                }
                Ok(here.kit.refuse(req, deny, cookies))
            }
        }
    }

    /// Moves a callback forward to its next callout (or its end).
    fn advance(&self, here: &Here<'_>, mut finish: Finish, env: &mut Env<'_>) -> Outcome {
        finish.sent_ms = env.now_ms;
        let eps = match finish.endpoints.clone() {
            Some(eps) => eps,
            None => match self.known_endpoints(env) {
                Ok(Some(eps)) => eps,
                Ok(None) => match self.discovery_url() {
                    Some(url) => {
                        let wait = Wait::Callback(Box::new(finish), Stage::Discovery);
                        return wait.send(here, self.fetch(&url));
                    }
                    None => return fail(here, finish, Deny::Unavailable("no_endpoints")),
                },
                Err(failure) => return fail(here, finish, here.idp(failure)),
            },
        };
        // RFC 9207 §2.4: when the provider says it sends `iss`, it must be there and be the
        // issuer; when it is there anyway, it must still match (mix-up defence).
        match (eps.iss_parameter, finish.iss.as_deref(), self.issuer()) {
            (true, None, _) => return fail(here, finish, here.idp(IdpFailure::Issuer)),
            (_, Some(iss), Some(issuer)) if iss.trim_end_matches('/') != issuer => {
                return fail(here, finish, here.idp(IdpFailure::Issuer))
            }
            _ => {}
        }
        if self.oidc {
            let Some(jwks) = eps.jwks.clone() else {
                let failure = IdpFailure::BadAnswer("no_jwks_uri");
                return fail(here, finish, here.idp(failure));
            };
            let fresh = cached_doc(env.cache, &jwks)
                .is_some_and(|(at, _)| env.now < at.saturating_add(DOC_TTL));
            if !fresh {
                finish.endpoints = Some(eps);
                let wait = Wait::Callback(Box::new(finish), Stage::Jwks);
                return wait.send(here, self.fetch(&jwks));
            }
        }
        let verifier = finish.flow.verifier.clone().unwrap_or_default();
        let callout = self.token_request(&eps, &finish.code, &self.redirect_uri(here), &verifier);
        finish.endpoints = Some(eps);
        Wait::Callback(Box::new(finish), Stage::Token).send(here, callout)
    }

    /// One answer at the callback's stages: judged once for the stage's kind (a document, or an
    /// endpoint's answer), then used.
    pub(super) fn resume_finish(
        &self,
        here: &Here<'_>,
        mut finish: Finish,
        stage: Stage,
        answer: &CalloutResponse,
        env: &mut Env<'_>,
    ) -> Outcome {
        let judged = match &stage {
            Stage::Discovery | Stage::Jwks | Stage::JwksRefresh(_) => {
                judge_doc(answer, finish.sent_ms, self.timeout_ms, env.now_ms).map(Some)
            }
            Stage::Token | Stage::UserInfo(..) => {
                answered(answer, finish.sent_ms, self.timeout_ms, env.now_ms).map(|()| None)
            }
        };
        let doc = match judged {
            Ok(doc) => doc.unwrap_or_default(),
            Err(failure) => return fail(here, finish, here.idp(failure)),
        };
        match stage {
            Stage::Discovery => match self.endpoints_from_discovery(&Value::Object(doc.clone())) {
                Ok(eps) => {
                    if let Some(url) = self.discovery_url() {
                        store_doc(env.cache, &url, &doc, env.now);
                    }
                    finish.endpoints = Some(eps);
                    self.advance(here, finish, env)
                }
                Err(failure) => fail(here, finish, here.idp(failure)),
            },
            Stage::Jwks | Stage::JwksRefresh(_) => {
                if let Some(url) = finish.endpoints.as_ref().and_then(|e| e.jwks.clone()) {
                    store_doc(env.cache, &url, &doc, env.now);
                }
                match stage {
                    Stage::JwksRefresh(tokens) => {
                        self.after_tokens(here, finish, tokens, true, env)
                    }
                    _ => self.advance(here, finish, env),
                }
            }
            Stage::Token => match self.token_response(answer) {
                Ok(tokens) => self.after_tokens(here, finish, tokens, false, env),
                Err(failure) => fail(here, finish, here.idp(failure)),
            },
            Stage::UserInfo(tokens, id_claims) => {
                let sub = id_claims
                    .as_ref()
                    .and_then(|c| c.get("sub"))
                    .and_then(Value::as_str);
                match self.userinfo_response(answer, sub) {
                    Ok(info) => {
                        // User-info claims over the ID token's (OIDC Core §5.3.2: same `sub`).
                        let mut claims = id_claims.unwrap_or_default();
                        claims.extend(info);
                        self.complete(here, finish, &claims, tokens, env)
                    }
                    Err(failure) => fail(here, finish, here.idp(failure)),
                }
            }
        }
    }

    /// After the token response: verify the ID token (refetching the JWKS once for an unknown
    /// key), then user-info or the end.
    fn after_tokens(
        &self,
        here: &Here<'_>,
        mut finish: Finish,
        tokens: Tokens,
        refreshed: bool,
        env: &mut Env<'_>,
    ) -> Outcome {
        let Some(eps) = finish.endpoints.clone() else {
            return fail(here, finish, Deny::Unavailable("no_endpoints"));
        };
        let mut id_claims = None;
        if self.oidc {
            let (Some(id_token), Some(jwks_url)) = (tokens.id_token.as_deref(), eps.jwks.as_ref())
            else {
                let failure = IdpFailure::BadAnswer("no_id_token");
                return fail(here, finish, here.idp(failure));
            };
            let cached = cached_doc(env.cache, jwks_url);
            let jwks = cached.as_ref().map_or(Value::Null, |(_, d)| d.clone());
            let nonce = finish.flow.nonce.clone().unwrap_or_default();
            match self.verify_id_token(id_token, &jwks, &nonce, env.now) {
                Ok(Some(claims)) => id_claims = Some(claims),
                Ok(None) => {
                    let recently = cached
                        .is_some_and(|(at, _)| env.now < at.saturating_add(JWKS_REFETCH_INTERVAL));
                    if refreshed || recently {
                        let failure = IdpFailure::IdToken(crate::jose::JoseError::UnknownKey);
                        return fail(here, finish, here.idp(failure));
                    }
                    finish.sent_ms = env.now_ms;
                    let callout = self.fetch(jwks_url);
                    return Wait::Callback(Box::new(finish), Stage::JwksRefresh(tokens))
                        .send(here, callout);
                }
                Err(failure) => return fail(here, finish, here.idp(failure)),
            }
        }
        match self.userinfo_request(&eps, &tokens.access_token) {
            Some(callout) => {
                finish.sent_ms = env.now_ms;
                Wait::Callback(Box::new(finish), Stage::UserInfo(tokens, id_claims))
                    .send(here, callout)
            }
            None => {
                let claims = id_claims.unwrap_or_default();
                self.complete(here, finish, &claims, tokens, env)
            }
        }
    }

    /// Claims in hand: the one completion path (identity, a new session, back to the return
    /// URL).
    fn complete(
        &self,
        here: &Here<'_>,
        finish: Finish,
        claims: &Map<String, Value>,
        tokens: Tokens,
        env: &mut Env<'_>,
    ) -> Outcome {
        let req = here.kit.request(&finish.head);
        let extra = SessionExtra {
            token: self.forward_access_token.then(|| UpstreamToken {
                access: Some(tokens.access_token.clone()),
                refresh: tokens.refresh_token.clone(),
                exp: tokens.expires_in.map(|s| env.now.saturating_add(s)),
            }),
            hint: tokens.id_token.filter(|_| self.id_token_hint),
            ..SessionExtra::default()
        };
        let done = here.identity(claims).map(|identity| Done {
            identity,
            claims: Some(claims),
            extra,
            landing: finish.flow.rd.clone(),
            cookies: finish.delete_flow.iter().cloned().collect(),
        });
        match done.and_then(|done| here.kit.finish_login(here, &req, done, env)) {
            Ok(outcome) => outcome,
            Err(deny) => here.kit.refuse_flow(
                &req,
                &finish.flow,
                deny,
                finish.delete_flow.into_iter().collect(),
            ),
        }
    }
}

/// Refuses a callback, deleting its flow cookie ("Sign in again" starts the same login).
fn fail(here: &Here<'_>, finish: Finish, deny: Deny) -> Outcome {
    let req = here.kit.request(&finish.head);
    here.kit.refuse_flow(
        &req,
        &finish.flow,
        deny,
        finish.delete_flow.into_iter().collect(),
    )
}
