//! One login's exchange with its provider, as callout waits: the step's app token (from the
//! shared cache, else fetched first), the step's call, the judged answer, the next step, and
//! at the end the one completion path with the claims.

use serde_json::{json, Map, Value};

use super::{cached_token, forget_token, store_token, Answer, Provider, Settled, TokenKind};
use crate::deny::Deny;
use crate::http::{CalloutResponse, Outcome, RequestHead, Response, Step};
use crate::idp::{answered, IdpFailure};
use crate::login::{Done, Env, Here};
use crate::session::SessionExtra;

/// One login's exchange with its provider: the login, the provider's step and what the
/// callout in flight is.
#[derive(Debug)]
pub(super) struct Exchange<S> {
    login: Login,
    step: S,
    phase: Phase,
}

/// What a login carries through its exchange.
#[derive(Debug)]
struct Login {
    head: RequestHead,
    landing: Landing,
    delete_flow: Option<String>,
    sent_ms: u64,
    refreshed: bool,
}

/// What the callout in flight is.
#[derive(Clone, Copy, Debug)]
enum Phase {
    /// The app token the step needs.
    ExpectAppToken(TokenKind),
    /// The step's own call.
    ExpectAnswer,
}

/// Where a successful login goes.
#[derive(Debug)]
pub(super) enum Landing {
    /// 302 to this same-origin URL (redirect logins, URL logins).
    Redirect(String),
    /// 200 JSON `{"location": ...}` (codes posted by an in-app page).
    Json(String),
}

impl<S> Exchange<S> {
    /// A login's first step, its callout not sent yet.
    pub(super) fn new(
        head: &RequestHead,
        landing: Landing,
        delete_flow: Option<String>,
        step: S,
    ) -> Self {
        let login = Login {
            head: head.clone(),
            landing,
            delete_flow,
            sent_ms: 0,
            refreshed: false,
        };
        Exchange {
            login,
            step,
            phase: Phase::ExpectAnswer,
        }
    }
}

/// Sends the callout of the exchange's step, fetching its app token first when the cache
/// has none fresh; a step the cache settles goes on without a callout.
pub(super) fn drive<P: Provider>(
    p: &P,
    here: &Here<'_>,
    ex: Exchange<P::Step>,
    env: &mut Env<'_>,
) -> Outcome {
    let Exchange {
        mut login, step, ..
    } = ex;
    let token_kind = p.token_for(&step);
    let step = match p.settle(step, env.cache, env.now) {
        Ok(Settled::Call(step)) => step,
        Ok(Settled::Done(answer)) => return proceed(p, here, login, Ok(answer), token_kind, env),
        Err(failure) => return idp_fail(here, login, failure),
    };
    login.sent_ms = env.now_ms;
    let token = match token_kind {
        None => None,
        Some(kind) => {
            match cached_token(env.cache, &p.token_key(kind), env.now, p.refresh_margin()) {
                Some(token) => Some(token),
                None => {
                    let phase = Phase::ExpectAppToken(kind);
                    let callout = p.token_request(kind, env.now_ms);
                    return here.call_out(callout, Exchange { login, step, phase });
                }
            }
        }
    };
    let callout = p.request(&step, token.as_deref(), env.now_ms);
    let phase = Phase::ExpectAnswer;
    here.call_out(callout, Exchange { login, step, phase })
}

/// Goes on from a judged answer: the next step, a refetched app token, or the end.
fn proceed<P: Provider>(
    p: &P,
    here: &Here<'_>,
    mut login: Login,
    judged: Result<Answer<P::Step>, IdpFailure>,
    token_kind: Option<TokenKind>,
    env: &mut Env<'_>,
) -> Outcome {
    let phase = Phase::ExpectAnswer;
    match judged {
        Ok(Answer::Next(step)) => drive(p, here, Exchange { login, step, phase }, env),
        Ok(Answer::TokenRejected(step)) => {
            let Some(kind) = token_kind.filter(|_| !login.refreshed) else {
                return idp_fail(here, login, IdpFailure::BadAnswer("app_token_refused"));
            };
            log::info!(
                "sso-filter: {} refused the app token; fetching a new one",
                P::LABEL
            );
            forget_token(env.cache, &p.token_key(kind));
            login.refreshed = true;
            drive(p, here, Exchange { login, step, phase }, env)
        }
        Ok(Answer::Claims(claims)) => complete(here, login, &claims, env),
        Err(failure) => idp_fail(here, login, failure),
    }
}

/// A callout's answer arrived: a token to keep and use, or the step's answer to judge.
pub(super) fn resume<P: Provider>(
    p: &P,
    here: &Here<'_>,
    ex: Exchange<P::Step>,
    response: CalloutResponse,
    env: &mut Env<'_>,
) -> Outcome {
    let Exchange {
        mut login,
        step,
        phase,
    } = ex;
    if let Err(failure) = answered(&response, login.sent_ms, p.timeout_ms(), env.now_ms) {
        return idp_fail(here, login, failure);
    }
    match phase {
        Phase::ExpectAppToken(kind) => match p.token_answer(kind, &response) {
            Ok(fetched) => {
                store_token(env.cache, &p.token_key(kind), &fetched, env.now);
                login.sent_ms = env.now_ms;
                let callout = p.request(&step, Some(&fetched.token), env.now_ms);
                let phase = Phase::ExpectAnswer;
                here.call_out(callout, Exchange { login, step, phase })
            }
            Err(failure) => idp_fail(here, login, failure),
        },
        Phase::ExpectAnswer => {
            let token_kind = p.token_for(&step);
            p.remember(&step, &response, env.cache, env.now);
            let judged = p.answer(step, &response);
            proceed(p, here, login, judged, token_kind, env)
        }
    }
}

/// Claims in hand: the one completion path, and on to where the user was going.
fn complete(
    here: &Here<'_>,
    login: Login,
    claims: &Map<String, Value>,
    env: &mut Env<'_>,
) -> Outcome {
    let identity = match here.identity(claims) {
        Ok(identity) => identity,
        Err(deny) => return fail(here, login, deny),
    };
    let req = here.kit.request(&login.head);
    let (landing, json) = match &login.landing {
        Landing::Redirect(rd) => (rd.clone(), false),
        Landing::Json(rd) => (rd.clone(), true),
    };
    let done = Done {
        identity,
        claims: Some(claims),
        extra: SessionExtra::default(),
        landing,
        cookies: login.delete_flow.iter().cloned().collect(),
    };
    match here.kit.finish_login(here, &req, done, env) {
        Ok(outcome) if json => as_json(outcome),
        Ok(outcome) => outcome,
        Err(deny) => here
            .kit
            .refuse(&req, deny, login.delete_flow.into_iter().collect()),
    }
}

/// The in-app page reads where to go from JSON (`fetch` would follow a redirect itself and
/// hand the script the landing page): the completion's redirect becomes
/// `200 {"ok":true,"location":...}` with the same cookies and counters.
fn as_json(mut outcome: Outcome) -> Outcome {
    if let Step::Respond(response) = &mut outcome.step {
        let header = |name: &str| {
            response
                .headers
                .iter()
                .filter(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .collect::<Vec<_>>()
        };
        if let Some(location) = header("location").into_iter().next() {
            let cookies = header("set-cookie");
            *response = Response::new(200)
                .json(&json!({"ok": true, "location": location}))
                .cookies(cookies);
        }
    }
    outcome
}

fn idp_fail(here: &Here<'_>, login: Login, failure: IdpFailure) -> Outcome {
    fail(here, login, here.idp(failure))
}

/// Refuses a login, deleting its flow cookie.
fn fail(here: &Here<'_>, login: Login, deny: Deny) -> Outcome {
    let req = here.kit.request(&login.head);
    let deny = named(deny, here.name());
    here.kit
        .refuse(&req, deny, login.delete_flow.into_iter().collect())
}

/// Names the method in a provider refusal made before it was known.
pub(super) fn named(deny: Deny, method: &str) -> Deny {
    match deny {
        Deny::Idp { method: m, failure } if m.is_empty() => Deny::Idp {
            method: method.to_owned(),
            failure,
        },
        Deny::MethodNeedsToken { method: m } if m.is_empty() => Deny::MethodNeedsToken {
            method: method.to_owned(),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counter::{Counter, MethodLabel};

    #[test]
    fn a_posted_code_lands_as_json_with_the_same_cookies_and_counters() {
        let redirect = Response::redirect(302, "/app?x=1")
            .header("referrer-policy", "no-referrer")
            .cookies(vec!["flow=; Max-Age=0".into(), "sso_session=S".into()]);
        let label = MethodLabel::configured("dingtalk");
        let outcome = Outcome::new(Step::Respond(redirect)).count(Counter::LoginSuccess(label));
        let outcome = as_json(outcome);
        assert_eq!(outcome.counters.len(), 1);
        let Step::Respond(r) = outcome.step else {
            panic!("not a response")
        };
        assert_eq!(r.status, 200);
        let body: Value = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(body, json!({"ok": true, "location": "/app?x=1"}));
        let cookies: Vec<&str> = r
            .headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cookies, ["flow=; Max-Age=0", "sso_session=S"]);
        assert!(!r.headers.iter().any(|(n, _)| n == "location"));
    }

    #[test]
    fn a_refusal_is_not_turned_into_a_landing() {
        let refusal = Outcome::new(Step::Respond(
            Response::new(401).json(&json!({"error": "x"})),
        ));
        let Step::Respond(r) = as_json(refusal).step else {
            panic!("not a response")
        };
        assert_eq!(r.status, 401);
        assert_eq!(r.body, br#"{"error":"x"}"#);
    }
}
