//! The answers of identity providers' HTTP endpoints.
//!
//! - `idp_json`: the OAuth 2.0 / OIDC answers one by one (token, user-info, discovery, JWKS with
//!   a real ID token): each is accepted only in the shape the spec requires, an ID token only
//!   under our key, an edited ID token never.
//! - `idp_answers`: every provider's callouts answered from the input through the engine: never
//!   a 500, nothing admitted after a failed or missing answer, a Teams token only under a JWKS
//!   holding our key.

use std::cell::RefCell;

use serde_json::{json, Value};

use super::{set_cookies, split_answers, text};
use crate::fuzzing::{config_with, cookie_header, fixtures, pick, reached, Done, Edits, Harness};
use crate::http::Callout;
use crate::CalloutResponse;

fn oidc() -> &'static crate::methods::oauth2::OAuth2 {
    static OIDC: std::sync::OnceLock<crate::methods::oauth2::OAuth2> = std::sync::OnceLock::new();
    OIDC.get_or_init(|| {
        let raw: crate::methods::oauth2::RawOAuth2 = serde_json::from_value(json!({
            "issuer": "https://idp.example.com", "client_id": "app", "client_secret": "s"
        }))
        .expect("raw");
        crate::methods::oauth2::OAuth2::from_raw(raw, true, "methods.oidc").expect("oidc")
    })
}

fn rsa_sign_key() -> &'static rsa::RsaPrivateKey {
    static KEY: std::sync::OnceLock<rsa::RsaPrivateKey> = std::sync::OnceLock::new();
    KEY.get_or_init(|| crate::jose::keys::rsa_private_key(fixtures::RSA_SIGN_PRIVATE).expect("key"))
}

/// Our JWKS (the RS256 signing key, kid `k1`) and an ID token it signed (made once per `now`:
/// an RSA signature per execution would be most of the fuzzing time).
pub fn oidc_fixture(now: u64) -> (Value, String) {
    thread_local! {
        static MADE: RefCell<Option<(u64, Value, String)>> = const { RefCell::new(None) };
    }
    if let Some((n, j, t)) = MADE.with(|m| m.borrow().clone()) {
        if n == now {
            return (j, t);
        }
    }
    let (j, t) = make_oidc_fixture(now);
    MADE.with(|m| *m.borrow_mut() = Some((now, j.clone(), t.clone())));
    (j, t)
}

fn make_oidc_fixture(now: u64) -> (Value, String) {
    use base64::Engine;
    use jwt_compact::{Algorithm, AlgorithmSignature};
    use rsa::traits::PublicKeyParts;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let k = rsa_sign_key();
    let jwks = json!({"keys": [{"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
        "n": b64.encode(k.n().to_bytes_be()), "e": b64.encode(k.e().to_bytes_be())}]});
    let claims = json!({"iss": "https://idp.example.com", "aud": "app", "sub": "alice",
        "nonce": "n-1", "iat": now, "exp": now + 300});
    let input = format!(
        "{}.{}",
        b64.encode(json!({"alg": "RS256", "kid": "k1"}).to_string()),
        b64.encode(claims.to_string())
    );
    let sig = jwt_compact::alg::Rsa::rs256().sign(k, input.as_bytes());
    (jwks, format!("{input}.{}", b64.encode(sig.as_bytes())))
}

pub(super) fn status_of(b: u8) -> Option<u16> {
    const TABLE: [u16; 16] = [
        200, 200, 200, 200, 200, 200, 201, 204, 302, 400, 401, 403, 404, 429, 502, 503,
    ];
    if b == 0xff {
        None
    } else {
        Some(TABLE[usize::from(b) % TABLE.len()])
    }
}

/// The OAuth 2.0 / OIDC answers, method by method: token, user-info, discovery, JWKS (with a
/// real ID token). Properties: a token answer is accepted only from a 200 JSON object with a
/// string `access_token`; user-info only from a 200 whose `sub` is the ID token's; discovery
/// only when it names the configured issuer; an ID token verifies only under a JWKS key whose
/// modulus is ours, and an edited ID token never.
pub fn idp_json(data: &[u8]) {
    let o = oidc();
    let body = data.get(2..).unwrap_or_default().to_vec();
    let resp = CalloutResponse {
        status: status_of(data.get(1).copied().unwrap_or(0)),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.clone(),
    };
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let now = 1_767_225_600;
    match pick(data, 0, 5) {
        0 => {
            if let Ok(t) = o.token_response(&resp) {
                reached("idp_json.token");
                assert_eq!(resp.status, Some(200));
                let v = parsed.expect("accepted a token answer that is not JSON");
                assert_eq!(v["access_token"].as_str(), Some(t.access_token.as_str()));
            }
        }
        1 => {
            if o.userinfo_response(&resp, Some("alice")).is_ok() {
                assert_eq!(resp.status, Some(200));
                assert_eq!(parsed.expect("json")["sub"], "alice");
            }
        }
        2 => {
            if let Some(doc) = &parsed {
                if o.endpoints_from_discovery(doc).is_ok() {
                    assert_eq!(
                        doc["issuer"].as_str().map(|i| i.trim_end_matches('/')),
                        Some("https://idp.example.com")
                    );
                }
            }
        }
        3 => {
            let (jwks, token) = oidc_fixture(now);
            if let Some(doc) = &parsed {
                if let Ok(Some(claims)) = o.verify_id_token(&token, doc, "n-1", now) {
                    reached("idp_json.id_token");
                    assert_eq!(claims["sub"], "alice");
                    let ours = &jwks["keys"][0]["n"];
                    assert!(
                        doc["keys"]
                            .as_array()
                            .is_some_and(|ks| ks.iter().any(|k| &k["n"] == ours)),
                        "an ID token verified under a JWKS without our key"
                    );
                }
            }
        }
        _ => {
            let (jwks, token) = oidc_fixture(now);
            let edited = text(&Edits::new(&body).apply(token.as_bytes()));
            if let Ok(Some(_)) = o.verify_id_token(&edited, &jwks, "n-1", now) {
                assert_eq!(edited, token, "an edited ID token verified");
            }
        }
    }
}

/// The providers the engine-level IdP target logs in with: (method JSON, callback parameters).
fn providers() -> Vec<(Value, &'static str)> {
    vec![
        (
            json!({"type": "oidc", "issuer": "https://idp.example.com", "client_id": "app",
                "client_secret": "s", "mapping": {"login": "preferred_username"}}),
            "code=the-code",
        ),
        (
            json!({"type": "cas", "server_url": "https://cas.example.org/cas",
                "mapping": {"login": "user"}}),
            "ticket=ST-1-abcdefghijklmnopqrstuvwxyz0123456789",
        ),
        (
            json!({"type": "dingtalk", "corp_id": "dingcorp", "app_key": "dingappkey",
                "app_secret": "app-secret", "api_base": "https://api.example.test",
                "oapi_base": "https://oapi.example.test", "login_base": "https://login.example.test"}),
            "authCode=the-code&code=the-code",
        ),
        (
            json!({"type": "wecom", "corp_id": "ww-corp", "agent_id": 1000002, "secret": "corp-secret",
                "api_base": "https://qyapi.example.test", "oauth_base": "https://open.example.test",
                "login_base": "https://login.example.test"}),
            "code=the-code",
        ),
        (
            json!({"type": "lark", "app_id": "cli_mock", "app_secret": "lark-secret",
                "tenant_key": "tenant-a", "accounts_base": "https://accounts.example.test",
                "open_base": "https://open.example.test"}),
            "code=the-code",
        ),
        (
            json!({"type": "wechat", "mp_app_id": "wxm", "mp_app_secret": "mp-secret",
                "allowed_users": ["oOPENID"]}),
            "code=the-code",
        ),
        (
            json!({"type": "yunzhijia", "app_id": "500000001", "app_secret": "yunzhijia-app-secret-0123456789",
                "eid": "10109", "base": "https://yunzhijia.example.test",
                "mapping": {"login": "jobNo"}}),
            "ticket=TICKET-1",
        ),
        (
            json!({"type": "teams", "client_id": TEAMS_CLIENT, "tenant_id": TEAMS_TENANT,
                "client_secret": "unused-for-tab-sso",
                "jwks_url": format!("https://login.example.test/{TEAMS_TENANT}/discovery/v2.0/keys")}),
            "teams",
        ),
    ]
}

const TEAMS_CLIENT: &str = "0b6f2a54-58a7-4bde-9d4a-111111111111";
const TEAMS_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

/// A Teams tab-SSO token (v2) signed by our RS256 key, kid `k1`.
fn teams_token(now: u64) -> String {
    use base64::Engine;
    use jwt_compact::{Algorithm, AlgorithmSignature};
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let claims = json!({"aud": TEAMS_CLIENT,
        "iss": format!("https://login.microsoftonline.com/{TEAMS_TENANT}/v2.0"),
        "iat": now, "nbf": now, "exp": now + 3600, "azp": "5e3ce6c0-2b1f-4285-8d4b-75ee78787346",
        "ver": "2.0", "scp": "access_as_user", "tid": TEAMS_TENANT, "oid": "oid-li",
        "preferred_username": "li@contoso.example", "name": "Li Si"});
    let input = format!(
        "{}.{}",
        b64.encode(json!({"alg": "RS256", "kid": "k1"}).to_string()),
        b64.encode(claims.to_string())
    );
    let sig = jwt_compact::alg::Rsa::rs256().sign(rsa_sign_key(), input.as_bytes());
    format!("{input}.{}", b64.encode(sig.as_bytes()))
}

thread_local! {
    static IDP_HARNESSES: RefCell<Vec<Option<Harness>>> = const { RefCell::new(Vec::new()) };
}

/// Every IdP answer through the engine (OIDC discovery/token/JWKS/user-info, CAS validation,
/// DingTalk, WeCom, Feishu/Lark, WeChat, Yunzhijia, Teams): a login is started, the browser comes back with a
/// code or ticket, and each callout is answered from the input (`\n--\n` between answers; the
/// first byte of each picks the status, 0xff for no answer at all). Properties: never a 500;
/// nothing is admitted when any answer was a failure status or missing; an admitted login
/// carries a non-empty login without control characters.
pub fn idp_answers(data: &[u8]) {
    let list = providers();
    let i = pick(data, 0, list.len());
    let (method, callback_params) = &list[i];
    let rest = data.get(1..).unwrap_or_default();
    IDP_HARNESSES.with(|cell| {
        let mut all = cell.borrow_mut();
        if all.len() < list.len() {
            all.resize_with(list.len(), || None);
        }
        let h = all[i].get_or_insert_with(|| Harness::new(&config_with(method), 1_767_225_600));
        // A fresh cache each time: cached app tokens and discovery would make runs depend on
        // earlier inputs.
        h.cache = crate::cache::MemoryCache::default();
        let mut answers = Answers {
            pieces: split_answers(rest),
            next: 0,
            failed: false,
        };
        if callback_params.starts_with("ticket=TICKET") {
            ticket_login(h, callback_params, &mut answers);
        } else if *callback_params == "teams" {
            teams_login(h, &mut answers);
        } else {
            redirect_login(h, callback_params, &mut answers);
        }
    });
}

/// The IdP of [`idp_answers`]: each callout gets the next piece of the input.
struct Answers<'a> {
    pieces: Vec<&'a [u8]>,
    next: usize,
    /// Whether any answer so far had a failure status or was missing.
    failed: bool,
}

impl Answers<'_> {
    fn answer(&mut self) -> CalloutResponse {
        let a = self.pieces.get(self.next).copied().unwrap_or(b"\xff");
        self.next += 1;
        let status = status_of(a.first().copied().unwrap_or(0xff));
        if !matches!(status, Some(200..=299)) {
            self.failed = true;
        }
        CalloutResponse {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: a.get(1..).unwrap_or_default().to_vec(),
        }
    }

    /// One request through `h`, its callouts answered from the input.
    fn run(
        &mut self,
        h: &mut Harness,
        method: &str,
        target: &str,
        headers: Vec<(String, String)>,
        body: &[u8],
    ) -> Done {
        h.run(method, target, headers, body, &mut |_: &Callout| {
            self.answer()
        })
    }

    /// The property every flow shares: nothing admitted after a failed or missing answer.
    fn check_failed(&self, done: &Done) {
        if self.failed {
            assert!(
                !done.admits(),
                "admitted after a failed IdP answer: {done:?}"
            );
        }
    }
}

fn browser() -> Vec<(String, String)> {
    vec![("accept".to_owned(), "text/html".to_owned())]
}

/// Yunzhijia: the client opens the app with a ticket; the callouts follow at once.
fn ticket_login(h: &mut Harness, callback_params: &str, answers: &mut Answers) {
    let target = format!("/app?activeAuth=m&{callback_params}");
    let done = answers.run(h, "GET", &target, browser(), b"");
    reached("idp_answers.callback");
    if done.admits() {
        reached("idp_answers.admitted");
        reached("idp_answers.ticket_admitted");
    }
    answers.check_failed(&done);
}

/// Teams tab SSO: the tab page's state and a token posted back; the JWKS answer is fuzzed.
/// Admitted only when that JWKS carries our key.
fn teams_login(h: &mut Harness, answers: &mut Answers) {
    let first = answers.run(h, "GET", "/tab?activeAuth=m", browser(), b"");
    let Some(login) = first.header("location").map(str::to_owned) else {
        return;
    };
    let page = answers.run(h, "GET", &login, browser(), b"");
    let body = page
        .response()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .unwrap_or_default();
    let Some(i) = body.find("\"state\":\"") else {
        return;
    };
    let state = body[i + 9..].split('"').next().unwrap_or("").to_owned();
    let post = json!({"state": state, "token": teams_token(h.now)}).to_string();
    let headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("cookie".to_owned(), cookie_header(&set_cookies(&page))),
    ];
    let done = answers.run(h, "POST", "/sso/code/m", headers, post.as_bytes());
    reached("idp_answers.callback");
    if done.admits() {
        reached("idp_answers.admitted");
        reached("idp_answers.teams_admitted");
        let (ours, _) = oidc_fixture(h.now);
        let n = ours["keys"][0]["n"].as_str().unwrap_or("");
        assert!(
            answers
                .pieces
                .iter()
                .any(|a| String::from_utf8_lossy(a).contains(n)),
            "a Teams token admitted under a JWKS without our key"
        );
    }
    answers.check_failed(&done);
}

/// A redirect login (OIDC, CAS, the Chinese providers): the app redirects to the login, the
/// login to the IdP, and the browser comes back to the callback the IdP was given.
fn redirect_login(h: &mut Harness, callback_params: &str, answers: &mut Answers) {
    let first = answers.run(h, "GET", "/app?activeAuth=m", browser(), b"");
    let Some(login) = first.header("location").map(str::to_owned) else {
        return;
    };
    let start = answers.run(h, "GET", &login, browser(), b"");
    let Some(target) = callback_target(&start, callback_params) else {
        return;
    };
    let mut headers = browser();
    headers.push(("cookie".into(), cookie_header(&set_cookies(&start))));
    let done = answers.run(h, "GET", &target, headers, b"");
    reached("idp_answers.callback");
    if !h.callouts.is_empty() {
        reached("idp_answers.callout");
    }
    if done.admits() {
        reached("idp_answers.admitted");
    }
    answers.check_failed(&done);
    if let Some(c) = done.session_cookies().first() {
        assert!(c.contains("HttpOnly") && c.contains("Secure"), "{c}");
    }
}

/// Where the IdP sends the browser back: the `redirect_uri` (`service`, `goto`) of the IdP
/// redirect in `start`, with the callback parameters and the `state` it was given.
fn callback_target(start: &Done, callback_params: &str) -> Option<String> {
    let url = url::Url::parse(start.header("location")?).ok()?;
    let param = |n: &str| {
        url.query_pairs()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.into_owned())
    };
    let back = param("redirect_uri")
        .or_else(|| param("service"))
        .or_else(|| param("goto"))
        .and_then(|u| url::Url::parse(&u).ok())?;
    let mut target = format!("{}?{callback_params}", back.path());
    if let Some(q) = back.query() {
        target = format!("{}?{q}&{callback_params}", back.path());
    }
    if let Some(state) = param("state") {
        target.push_str("&state=");
        target.extend(url::form_urlencoded::byte_serialize(state.as_bytes()));
    }
    Some(target)
}
