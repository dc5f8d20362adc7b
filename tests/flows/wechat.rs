//! WeChat through the engine: which login the `User-Agent` and the configured apps pick, the
//! silent official-account scope, and configuration that must be refused. The full flows run
//! against the WeChat mock through Envoy (`tests/e2e/test_wechat.py`).

use serde_json::{json, Value};
use sso_filter::http::Callout;
use sso_filter::CalloutResponse;

use crate::common::{Driver, KEY};

fn config(method: Value) -> Value {
    json!({"base_url": "https://app.example.com", "session": {"keys": [KEY]},
           "methods": {"wechat": method}})
}

fn start(d: &mut Driver, agent: &str) -> url::Url {
    let headers = vec![
        ("accept".to_owned(), "text/html".to_owned()),
        ("user-agent".to_owned(), agent.to_owned()),
    ];
    let first = d.send("GET", "/?activeAuth=wechat", headers.clone(), None);
    let login = first.header("location").unwrap();
    let begin = d.send("GET", &login, headers, None);
    assert_eq!(begin.status(), 302, "{}", begin.body());
    url::Url::parse(&begin.header("location").unwrap()).unwrap()
}

#[test]
fn user_agent_and_configured_apps_pick_the_login() {
    let both = json!({"type": "wechat", "open_app_id": "wxo", "open_app_secret": "s",
        "mp_app_id": "wxm", "mp_app_secret": "s", "allowed_users": ["u"]});
    let mut d = Driver::new(&config(both));
    assert_eq!(
        start(&mut d, "Mozilla/5.0 Chrome").path(),
        "/connect/qrconnect"
    );
    let mp = start(&mut d, "Mozilla/5.0 MicroMessenger/8.0.47");
    assert_eq!(mp.path(), "/connect/oauth2/authorize");
    // WeChat matches the URL as written: appid, redirect_uri, response_type, scope, state.
    let keys: Vec<String> = mp.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(
        keys,
        ["appid", "redirect_uri", "response_type", "scope", "state"]
    );
    assert_eq!(mp.fragment(), Some("wechat_redirect"));
    // Only an official account configured: used even outside WeChat.
    let mp_only = json!({"type": "wechat", "mp_app_id": "wxm", "mp_app_secret": "s",
        "insecure_allow_any_user": true});
    let mut d = Driver::new(&config(mp_only));
    assert_eq!(start(&mut d, "Chrome").path(), "/connect/oauth2/authorize");
}

#[test]
fn silent_official_account_login_skips_userinfo() {
    let method = json!({"type": "wechat", "mp_app_id": "wxm", "mp_app_secret": "s",
        "mp_scope": "snsapi_base", "allowed_users": ["o1"], "api_base": "https://api.example.test"});
    let mut d = Driver::new(&config(method));
    d.idp = Some(Box::new(|c: &Callout| {
        assert!(c.url.starts_with("https://api.example.test/sns/oauth2/access_token?appid=wxm&secret=s&code=C1&grant_type=authorization_code"), "{}", c.url);
        CalloutResponse {
            status: Some(200),
            headers: vec![],
            body: br#"{"access_token":"WAT","expires_in":7200,"openid":"o1","scope":"snsapi_base","is_snapshotuser":0}"#.to_vec(),
        }
    }));
    let provider = start(&mut d, "MicroMessenger/8");
    let state = provider
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let done = d.get(&format!("/sso/callback/wechat?code=C1&state={state}"));
    assert_eq!(done.status(), 302, "{}", done.body());
    assert_eq!(d.callouts.len(), 1);
    assert_eq!(
        d.get("/?activeAuth=wechat").set("x-sso-login").as_deref(),
        Some("o1")
    );
}

#[test]
fn configuration_must_name_an_app_and_who_may_sign_in() {
    for (method, field) in [
        (
            json!({"type": "wechat", "allowed_users": ["u"]}),
            "methods.wechat",
        ),
        (
            json!({"type": "wechat", "mp_app_id": "wxm", "mp_app_secret": "s"}),
            "allowed_users",
        ),
        (
            json!({"type": "wechat", "mp_app_id": "wxm", "allowed_users": ["u"]}),
            "mp_app_secret",
        ),
    ] {
        let err = sso_filter::Filter::from_json(config(method).to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
}
