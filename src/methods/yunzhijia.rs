//! `type: yunzhijia`: Kingdee Yunzhijia (金蝶云之家) light-app login
//! (`reference/providers.md` §4).
//!
//! The Yunzhijia client opens the light app's URL (the seeds':
//! `?activeAuth=yunzhijia&tenantCode=tenant1`) with a `ticket` appended. The filter gets the
//! app token (`gateway/oauth2/token/getAccessToken`, scope `app`, cached process-wide), resolves
//! the ticket with `gateway/ticket/user/acquirecontext`, checks the team (`eid`), and lands on
//! the same URL without the ticket.

use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::deny::Deny;
use crate::error::ConfigError;
use crate::http::{Callout, CalloutResponse, Query};
use crate::idp::{json_body, CodeKind, IdpFailure, ProviderCode, MAX_SMALL_BODY};
use crate::mapping::RawMapping;
use crate::methods::cn::{
    self, text_field, Answer, ApiBase, Begin, Entry, Fetched, Provider, Secret, TokenKind, UrlLogin,
};

/// The only variant: a ticket on the URL.
pub const TICKET: &str = "ticket";

/// The method as written in configuration.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawYunzhijia {
    app_id: String,
    app_secret: Secret,
    #[serde(default)]
    eid: Option<String>,
    #[serde(default = "default_ticket_param")]
    ticket_param: String,
    #[serde(default)]
    organization: Option<String>,
    #[serde(default = "default_base")]
    base: String,
    #[serde(default = "cn::default_timeout")]
    timeout_ms: u64,
}

cn::text_defaults! {
    default_ticket_param = "ticket";
    default_base = "https://www.yunzhijia.com";
}

/// A configured Yunzhijia method.
#[derive(Debug)]
pub struct Yunzhijia {
    app_id: String,
    app_secret: Secret,
    eid: Option<String>,
    ticket_param: String,
    organization: Option<String>,
    base: ApiBase,
    timeout_ms: u64,
}

/// What a Yunzhijia login waits for.
#[derive(Debug)]
pub enum Step {
    /// `gateway/ticket/user/acquirecontext`: the ticket becomes the user's context.
    ExpectContext {
        /// The light-app ticket (valid one hour).
        ticket: Secret,
    },
}

impl Yunzhijia {
    /// Parses the method's configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn from_raw(raw: RawYunzhijia, at: &str) -> Result<Self, ConfigError> {
        let here = |f: &str| format!("{at}.{f}");
        cn::require_id(&raw.app_id, &here("app_id"))?;
        cn::require_secret(&raw.app_secret, &here("app_secret"))?;
        if let Some(eid) = &raw.eid {
            cn::require_id(eid, &here("eid"))?;
        }
        cn::require_id(&raw.ticket_param, &here("ticket_param"))?;
        cn::check_timeout(raw.timeout_ms, &here("timeout_ms"))?;
        Ok(Yunzhijia {
            app_id: raw.app_id,
            app_secret: raw.app_secret,
            eid: raw.eid,
            ticket_param: raw.ticket_param,
            organization: raw.organization,
            base: ApiBase::parse(&raw.base, &here("base"))?,
            timeout_ms: raw.timeout_ms,
        })
    }

    /// Judges a gateway answer: `{"success": true, "errorCode": 0, "data": {...}}`.
    fn body(
        response: &CalloutResponse,
        classify: fn(i64, &str) -> CodeKind,
    ) -> Result<Map<String, Value>, IdpFailure> {
        let body = json_body(response, MAX_SMALL_BODY)?;
        let success = body.get("success").and_then(Value::as_bool);
        let code = match body.get("errorCode") {
            None | Some(Value::Null) => 0,
            Some(Value::Number(n)) => n.as_i64().unwrap_or(-1),
            Some(Value::String(s)) => s.trim().parse().unwrap_or(-1),
            Some(_) => -1,
        };
        if success == Some(true) && code == 0 && response.status == Some(200) {
            return body
                .get("data")
                .and_then(Value::as_object)
                .cloned()
                .ok_or(IdpFailure::BadAnswer("no_data"));
        }
        if success != Some(false) && code == 0 {
            return Err(IdpFailure::BadAnswer("status"));
        }
        let text = text_field(&body, "error").unwrap_or("");
        log::warn!(
            "sso-filter: Yunzhijia error errorCode={code} error={}",
            crate::deny::sanitize(text)
        );
        Err(IdpFailure::Code(ProviderCode {
            provider: Self::LABEL,
            code: code.to_string(),
            kind: classify(code, text),
        }))
    }
}

/// Whether an error is about the access token (the codes are not documented: the message
/// names it, providers.md §4.1 step 4).
fn about_token(code: i64, text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    matches!(code, 10_000_401 | 1_001_401 | 401) || text.contains("token")
}

impl Provider for Yunzhijia {
    type Step = Step;

    const TYPE: &'static str = "yunzhijia";

    const LABEL: &'static str = "Yunzhijia";

    fn timeout_ms(&self) -> u64 {
        self.timeout_ms
    }

    /// Mapping defaults: the per-app `openid` (with the team, the stable key), the user name.
    fn default_mapping(&self) -> RawMapping {
        RawMapping::defaults(&[
            ("login", "openid"),
            ("name", "username"),
            ("email", "email"),
            ("phone", "$['phone','mobile']"),
            ("org", "organization"),
        ])
    }

    /// Every URL the method calls out to (for `sso-filter clusters`).
    fn outbound_urls(&self) -> Vec<url::Url> {
        vec![self.base.origin()]
    }

    fn choose(&self, _entry: &Entry<'_>) -> Result<&'static str, Deny> {
        Ok(TICKET)
    }

    fn begin(
        &self,
        _variant: &str,
        _entry: &Entry<'_>,
        _state: &str,
        _redirect_uri: &str,
    ) -> Result<Begin, Deny> {
        // Only the Yunzhijia client can start this login, by opening the app with a ticket.
        Err(Deny::MethodNeedsToken {
            method: String::new(),
        })
    }

    fn callback(&self, _variant: &str, _query: &Query, _redirect_uri: &str) -> Result<Step, Deny> {
        Err(Deny::NotFound)
    }

    fn url_login(&self, query: &Query) -> Result<Option<UrlLogin<Step>>, Deny> {
        let ticket = query
            .single(&self.ticket_param)
            .map_err(|_| Deny::BadRequest("duplicate_param"))?;
        let Some(ticket) = ticket else {
            return Ok(None);
        };
        let ok = !ticket.is_empty()
            && ticket.len() <= 512
            && ticket.bytes().all(|b| b.is_ascii_graphic());
        if !ok {
            return Err(Deny::BadRequest("ticket"));
        }
        Ok(Some(UrlLogin {
            step: Step::ExpectContext {
                ticket: Secret::new(ticket),
            },
            strip: vec![self.ticket_param.clone()],
        }))
    }

    fn token_for(&self, _step: &Step) -> Option<TokenKind> {
        Some(TokenKind::App)
    }

    fn token_key(&self, kind: TokenKind) -> String {
        cn::token_key("yunzhijia", kind, &self.app_id, &self.app_secret)
    }

    fn token_request(&self, _kind: TokenKind, now_ms: u64) -> Callout {
        cn::post_json(
            self.base.url("/gateway/oauth2/token/getAccessToken", &[]),
            &json!({
                "appId": self.app_id,
                "secret": self.app_secret.expose(),
                "timestamp": now_ms,
                "scope": "app",
            }),
            self.timeout_ms,
        )
    }

    fn token_answer(
        &self,
        _kind: TokenKind,
        response: &CalloutResponse,
    ) -> Result<Fetched, IdpFailure> {
        // A refused token fetch is a configuration problem (app id, secret, clock).
        let data = Self::body(response, |_, _| CodeKind::Misconfigured)?;
        Fetched::from_body(&data, "accessToken", "expireIn", 6400)
    }

    fn request(&self, step: &Step, token: Option<&str>, _now_ms: u64) -> Callout {
        let Step::ExpectContext { ticket } = step;
        cn::post_json(
            self.base.url(
                "/gateway/ticket/user/acquirecontext",
                &[("accessToken", token.unwrap_or_default())],
            ),
            // Lower-case `appid` here, `appId` in the token call (providers.md §4.1).
            &json!({"appid": self.app_id, "ticket": ticket.expose()}),
            self.timeout_ms,
        )
    }

    fn answer(&self, step: Step, response: &CalloutResponse) -> Result<Answer<Step>, IdpFailure> {
        let data = match Self::body(response, |code, text| {
            if about_token(code, text) {
                CodeKind::TokenInvalid
            } else {
                // The ticket is the only other input: expired, used or unknown.
                CodeKind::CodeInvalid
            }
        }) {
            Ok(data) => data,
            Err(failure) if cn::is_token_rejection(&failure) => {
                return Ok(Answer::TokenRejected(step))
            }
            Err(failure) => return Err(failure),
        };
        cn::user_id(text_field(&data, "openid")).ok_or(IdpFailure::BadAnswer("no_openid"))?;
        if text_field(&data, "appid").is_some_and(|a| a != self.app_id) {
            return Err(IdpFailure::BadAnswer("appid"));
        }
        if let Some(eid) = &self.eid {
            if text_field(&data, "eid") != Some(eid.as_str()) {
                return Err(IdpFailure::NotMember {
                    provider: Self::LABEL,
                    why: "another_team",
                });
            }
        }
        let mut claims: Map<String, Value> = data
            .into_iter()
            .filter(|(k, v)| !v.is_null() && !k.to_ascii_lowercase().contains("token"))
            .collect();
        if let Some(org) = &self.organization {
            claims.insert("organization".into(), json!(org));
        }
        Ok(Answer::Claims(claims))
    }
}
