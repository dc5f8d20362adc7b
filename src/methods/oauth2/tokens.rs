//! The token endpoint (the code, a refresh token) and the user-info endpoint: the requests and
//! how their answers are judged.

use base64::Engine;
use serde_json::{Map, Value};

use super::{ClientAuth, Endpoints, OAuth2, Tokens, UserInfoMethod};
use crate::http::{cluster_name, Callout, CalloutResponse};
use crate::idp::{json_body, sanitize_code, IdpFailure, MAX_SMALL_BODY};
use crate::jose::B64STD;

impl OAuth2 {
    /// The token request (RFC 6749 §4.1.3) with the PKCE verifier.
    pub fn token_request(
        &self,
        eps: &Endpoints,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Callout {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "authorization_code")
            .append_pair("code", code)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("code_verifier", verifier);
        self.token_endpoint_call(eps, form)
    }

    /// A refresh-token request (RFC 6749 §6).
    pub fn refresh_request(&self, eps: &Endpoints, refresh_token: &str) -> Callout {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", refresh_token);
        self.token_endpoint_call(eps, form)
    }

    /// A POST to the token endpoint with the client's authentication.
    fn token_endpoint_call(
        &self,
        eps: &Endpoints,
        mut form: url::form_urlencoded::Serializer<'_, String>,
    ) -> Callout {
        let mut headers = vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("accept".into(), "application/json".into()),
        ];
        match self.client_auth {
            ClientAuth::ClientSecretBasic => {
                // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!(
                    "{}:{}",
                    enc(&self.client_id),
                    enc(self.client_secret.expose())
                );
                headers.push((
                    "authorization".into(),
                    format!("Basic {}", B64STD.encode(pair)),
                ));
            }
            ClientAuth::ClientSecretPost => {
                form.append_pair("client_id", &self.client_id)
                    .append_pair("client_secret", self.client_secret.expose());
            }
        }
        Callout {
            upstream: cluster_name(&eps.token),
            url: eps.token.to_string(),
            method: "POST".into(),
            headers,
            body: form.finish().into_bytes(),
            timeout_ms: self.timeout_ms,
        }
    }

    /// The user-info request (OIDC Core §5.3.1), when the flow uses one.
    pub fn userinfo_request(&self, eps: &Endpoints, access_token: &str) -> Option<Callout> {
        let url = eps.userinfo.as_ref().filter(|_| self.use_userinfo)?;
        let (method, body, mut headers) = match self.userinfo_method {
            UserInfoMethod::Get => ("GET", Vec::new(), Vec::new()),
            UserInfoMethod::Post => (
                "POST",
                Vec::new(),
                vec![(
                    "content-type".to_owned(),
                    "application/x-www-form-urlencoded".to_owned(),
                )],
            ),
        };
        headers.push(("authorization".into(), format!("Bearer {access_token}")));
        headers.push(("accept".into(), "application/json".into()));
        Some(Callout {
            upstream: cluster_name(url),
            url: url.to_string(),
            method: method.into(),
            headers,
            body,
            timeout_ms: self.timeout_ms,
        })
    }

    /// Judges a token response (RFC 6749 §5.1, §5.2).
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for errors and unusable answers.
    pub fn token_response(&self, response: &CalloutResponse) -> Result<Tokens, IdpFailure> {
        self.tokens(response, self.oidc)
    }

    /// Judges a refresh response (RFC 6749 §6): like a token response, but an ID token is not
    /// required (OIDC Core §12.2: it "might not" be returned).
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for errors and unusable answers.
    pub fn refresh_response(&self, response: &CalloutResponse) -> Result<Tokens, IdpFailure> {
        self.tokens(response, false)
    }

    fn tokens(
        &self,
        response: &CalloutResponse,
        require_id_token: bool,
    ) -> Result<Tokens, IdpFailure> {
        // A 5xx is the IdP failing, whatever its body says (502), not a refusal (401).
        if response.status.is_some_and(|s| s >= 500) {
            log::warn!("sso-filter: token endpoint answered {:?}", response.status);
            return Err(IdpFailure::BadAnswer("token_status"));
        }
        let body = json_body(response, MAX_SMALL_BODY)?;
        if let Some(error) = body.get("error").and_then(Value::as_str) {
            log::warn!(
                "sso-filter: token endpoint error={} description={}",
                sanitize_code(error),
                crate::deny::sanitize(
                    body.get("error_description")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                )
            );
            return Err(IdpFailure::Refused(error.to_owned()));
        }
        if response.status != Some(200) {
            return Err(IdpFailure::BadAnswer("token_status"));
        }
        let access_token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(IdpFailure::BadAnswer("no_access_token"))?
            .to_owned();
        let id_token = body
            .get("id_token")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if require_id_token && id_token.is_none() {
            return Err(IdpFailure::BadAnswer("no_id_token"));
        }
        let refresh_token = body
            .get("refresh_token")
            .and_then(Value::as_str)
            .map(str::to_owned);
        // A negative, fractional or absurd lifetime is treated as unknown.
        let expires_in = body
            .get("expires_in")
            .and_then(Value::as_u64)
            .filter(|s| *s > 0 && *s < 366 * 24 * 3600);
        Ok(Tokens {
            access_token,
            id_token,
            refresh_token,
            expires_in,
        })
    }

    /// Judges a user-info response; `sub` must match the ID token's when there is one.
    ///
    /// # Errors
    ///
    /// [`IdpFailure`] for errors and unusable answers.
    pub fn userinfo_response(
        &self,
        response: &CalloutResponse,
        id_sub: Option<&str>,
    ) -> Result<Map<String, Value>, IdpFailure> {
        if response.status != Some(200) {
            return Err(match response.status {
                Some(401 | 403) => IdpFailure::Refused("userinfo_unauthorized".into()),
                _ => IdpFailure::BadAnswer("userinfo_status"),
            });
        }
        let body = json_body(response, MAX_SMALL_BODY)?;
        if let Some(expected) = id_sub {
            if body.get("sub").and_then(Value::as_str) != Some(expected) {
                return Err(IdpFailure::Subject);
            }
        }
        Ok(body)
    }
}
