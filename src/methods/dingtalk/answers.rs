//! How DingTalk's answers are judged, step by step: the `api.dingtalk.com` steps speak HTTP
//! status + `code`, the `oapi` steps `errcode` inside HTTP 200.

use serde_json::{json, Map, Value};

use super::departments::{dept_name, dept_path};
use super::{classify, DingTalk, Step};
use crate::http::CalloutResponse;
use crate::idp::{json_body, CodeKind, IdpFailure, ProviderCode, MAX_SMALL_BODY};
use crate::methods::cn::{self, errcode_body, text_field, Answer, Provider, Secret};

type Judged = Result<Answer<Step>, IdpFailure>;

impl DingTalk {
    /// Judges a step's answer (see [`Provider::answer`]).
    pub(super) fn judge(&self, step: Step, response: &CalloutResponse) -> Judged {
        match step {
            Step::ExpectUserToken { .. } => return user_token(response),
            Step::ExpectMe { .. } => return me(response),
            _ => {}
        }
        let body = match errcode_body(response, Self::LABEL, classify) {
            Ok(body) => body,
            Err(failure) if cn::is_token_rejection(&failure) && self.token_for(&step).is_some() => {
                return Ok(Answer::TokenRejected(step))
            }
            Err(failure) => return Err(failure),
        };
        match step {
            Step::ExpectInAppUser { .. } => self.in_app_user(&body),
            Step::ExpectSnsUser { .. } => sns_user(&body),
            Step::ExpectUserId { unionid, claims } => self.member_of_union(unionid, claims, &body),
            Step::ExpectAdmin { .. } => self.admin(&body),
            Step::ExpectDetails { userid, claims } => self.details(userid, claims, &body),
            Step::ExpectDeptPath { claims, .. } => dept_path(claims, result_of(&body)?),
            Step::ExpectDeptName {
                pending,
                names,
                claims,
            } => dept_name(pending, names, claims, result_of(&body)?),
            Step::ExpectUserToken { .. } | Step::ExpectMe { .. } => {
                Err(IdpFailure::BadAnswer("step"))
            }
        }
    }

    /// `topapi/v2/user/getuserinfo`: the in-app code's member.
    fn in_app_user(&self, body: &Map<String, Value>) -> Judged {
        let result = result_of(body)?;
        let userid =
            cn::user_id(text_field(result, "userid")).ok_or(IdpFailure::BadAnswer("no_userid"))?;
        let mut claims = self.base_claims(&userid);
        for k in ["unionid", "name", "sys_level", "sys"] {
            if let Some(v) = result.get(k).filter(|v| !v.is_null()) {
                claims.insert(k.into(), v.clone());
            }
        }
        Ok(self.after_member(userid, claims))
    }

    /// `topapi/user/getbyunionid`: the account's member in this organisation.
    fn member_of_union(
        &self,
        unionid: String,
        mut so_far: Map<String, Value>,
        body: &Map<String, Value>,
    ) -> Judged {
        let result = result_of(body)?;
        let userid =
            cn::user_id(text_field(result, "userid")).ok_or(IdpFailure::BadAnswer("no_userid"))?;
        // contact_type 1 = an external contact, not a member.
        if result.get("contact_type").and_then(Value::as_i64) == Some(1) {
            return Err(Self::not_member("external_contact"));
        }
        let mut claims = self.base_claims(&userid);
        claims.insert("unionid".into(), json!(unionid));
        claims.append(&mut so_far);
        Ok(self.after_member(userid, claims))
    }

    /// `sso/getuserinfo`: only an admin of the configured corp passes.
    fn admin(&self, body: &Map<String, Value>) -> Judged {
        let corp = body
            .get("corp_info")
            .and_then(Value::as_object)
            .and_then(|c| text_field(c, "corpid"));
        if corp != Some(self.corp_id.as_str()) {
            return Err(Self::not_member("another_corp"));
        }
        if body.get("is_sys").and_then(Value::as_bool) != Some(true) {
            return Err(Self::not_member("not_admin"));
        }
        let info = body
            .get("user_info")
            .and_then(Value::as_object)
            .ok_or(IdpFailure::BadAnswer("no_user_info"))?;
        let userid =
            cn::user_id(text_field(info, "userid")).ok_or(IdpFailure::BadAnswer("no_userid"))?;
        let mut claims = self.base_claims(&userid);
        claims.insert("is_sys".into(), json!(true));
        for k in ["name", "email"] {
            if let Some(v) = text_field(info, k) {
                claims.insert(k.into(), json!(v));
            }
        }
        Ok(self.after_member(userid, claims))
    }

    /// `topapi/v2/user/get`: the member's profile, empty values never overwriting real ones.
    fn details(
        &self,
        userid: String,
        mut claims: Map<String, Value>,
        body: &Map<String, Value>,
    ) -> Judged {
        let result = result_of(body)?;
        if text_field(result, "userid").is_some_and(|u| u != userid) {
            return Err(IdpFailure::Subject);
        }
        if result.get("active").and_then(Value::as_bool) == Some(false) {
            return Err(Self::not_member("inactive"));
        }
        for (k, v) in result {
            if matches!(k.as_str(), "userid" | "corpid") {
                continue;
            }
            let empty = v.is_null() || v.as_str().is_some_and(str::is_empty);
            if !(empty && claims.contains_key(k)) {
                claims.insert(k.clone(), v.clone());
            }
        }
        if self.org_from_departments {
            return Ok(Answer::Next(Step::ExpectDeptPath { userid, claims }));
        }
        Ok(Answer::Claims(claims))
    }
}

/// `v1.0/oauth2/userAccessToken`: the user token for `contact/users/me`.
fn user_token(response: &CalloutResponse) -> Judged {
    let body = v1_body(response, CodeKind::CodeInvalid)?;
    let token = text_field(&body, "accessToken")
        .filter(|t| t.len() <= 2048)
        .ok_or(IdpFailure::BadAnswer("no_access_token"))?;
    Ok(Answer::Next(Step::ExpectMe {
        user_token: Secret::new(token),
    }))
}

/// `v1.0/contact/users/me`: the account's union id, to find its member.
fn me(response: &CalloutResponse) -> Judged {
    let body = v1_body(response, CodeKind::Other)?;
    let unionid =
        cn::user_id(text_field(&body, "unionId")).ok_or(IdpFailure::BadAnswer("no_unionid"))?;
    let mut claims = Map::new();
    for (from, to) in [
        ("nick", "nick"),
        ("email", "email"),
        ("mobile", "mobile"),
        ("openId", "openid"),
        ("unionId", "unionid"),
        ("stateCode", "state_code"),
    ] {
        if let Some(v) = text_field(&body, from) {
            claims.insert(to.into(), json!(v));
        }
    }
    Ok(Answer::Next(Step::ExpectUserId { unionid, claims }))
}

/// `sns/getuserinfo_bycode`: the account's union id, to find its member.
fn sns_user(body: &Map<String, Value>) -> Judged {
    let info = body
        .get("user_info")
        .and_then(Value::as_object)
        .ok_or(IdpFailure::BadAnswer("no_user_info"))?;
    let unionid =
        cn::user_id(text_field(info, "unionid")).ok_or(IdpFailure::BadAnswer("no_unionid"))?;
    let mut claims = Map::new();
    for k in ["nick", "unionid", "openid"] {
        if let Some(v) = text_field(info, k) {
            claims.insert(k.into(), json!(v));
        }
    }
    Ok(Answer::Next(Step::ExpectUserId { unionid, claims }))
}

/// Judges an `api.dingtalk.com` answer: 200 with a JSON object, or 4xx with
/// `{"code": "...", "message": "..."}`.
fn v1_body(
    response: &CalloutResponse,
    kind_of: CodeKind,
) -> Result<Map<String, Value>, IdpFailure> {
    let body = json_body(response, MAX_SMALL_BODY)?;
    if response.status == Some(200) {
        return Ok(body);
    }
    match text_field(&body, "code") {
        Some(code) => {
            log::warn!(
                "sso-filter: DingTalk error code={} message={}",
                crate::deny::sanitize(code),
                crate::deny::sanitize(text_field(&body, "message").unwrap_or(""))
            );
            let kind = match response.status {
                Some(400 | 401 | 404) => kind_of,
                Some(403) => CodeKind::Misconfigured,
                Some(429) => CodeKind::Throttled,
                _ => CodeKind::Other,
            };
            Err(IdpFailure::Code(ProviderCode {
                provider: DingTalk::LABEL,
                code: code.chars().take(80).collect(),
                kind,
            }))
        }
        None => Err(IdpFailure::BadAnswer("status")),
    }
}

/// The `result` object of a `topapi` answer.
fn result_of(body: &Map<String, Value>) -> Result<&Map<String, Value>, IdpFailure> {
    body.get("result")
        .and_then(Value::as_object)
        .ok_or(IdpFailure::BadAnswer("no_result"))
}
