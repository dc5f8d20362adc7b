//! WeCom through the engine against a scripted WeCom that checks every request the filter
//! makes (paths, parameter names, the app token, JSON bodies) and answers with the documented
//! shapes (`reference/providers.md` §2). The Python mock behind a real Envoy is the
//! end-to-end suite's (`tests/e2e/test_wecom.py`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{json, Value};
use sso_filter::http::Callout;
use sso_filter::CalloutResponse;

use crate::common::{Done, Driver, KEY};

const API: &str = "https://qyapi.example.test";

fn config(extra: Value) -> Value {
    let mut method = json!({
        "type": "wecom", "corp_id": "ww-corp", "agent_id": 1000002, "secret": "corp-secret",
        "api_base": API,
        "oauth_base": "https://open.example.test",
        "login_base": "https://login.example.test",
        "organization": "DEFAULT",
        "mapping": {
            "name": "alias",
            "email": "extattr.attrs[2].value",
            "roles": "$.extattr.attrs[?@.name=='角色'].text.value"
        }
    });
    if let (Some(m), Some(e)) = (method.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "methods": {"wechat-work": method}
    })
}

/// The scripted WeCom: codes, tokens, and what it saw.
#[derive(Default)]
struct Fake {
    /// Valid app tokens.
    tokens: Vec<String>,
    issued: usize,
    /// Unused codes → userid answer.
    codes: HashMap<String, Value>,
    /// Requests seen, as "METHOD path".
    seen: Vec<String>,
    /// The member's main department in `user/get` (else departments `[1, 2]`, no main).
    main_department: Option<u64>,
}

/// The corp's departments: id, name, parent (the root is 1, its parent 0).
const DEPARTMENTS: [(u64, &str, u64); 3] = [(1, "Corp", 0), (2, "研发部", 1), (3, "数据组", 2)];

fn department(id: u64) -> Value {
    let (id, name, parent) = DEPARTMENTS.iter().find(|d| d.0 == id).copied().unwrap();
    json!({"id": id, "name": name, "name_en": "", "department_leader": [], "parentid": parent,
           "order": 100})
}

fn ok(body: Value) -> CalloutResponse {
    CalloutResponse {
        status: Some(200),
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

fn wecom(fake: Rc<RefCell<Fake>>) -> crate::common::Idp {
    Box::new(move |c: &Callout| {
        let mut f = fake.borrow_mut();
        let url = url::Url::parse(&c.url).unwrap();
        assert_eq!(url.origin().ascii_serialization(), API);
        assert_eq!(c.upstream, "sso_qyapi_example_test_443");
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        f.seen.push(format!("{} {}", c.method, url.path()));
        if url.path() == "/cgi-bin/gettoken" {
            assert_eq!(c.method, "GET");
            assert_eq!(q["corpid"], "ww-corp");
            assert_eq!(q["corpsecret"], "corp-secret");
            f.issued += 1;
            let t = format!("T{}", f.issued);
            f.tokens.push(t.clone());
            return ok(json!({"errcode":0,"errmsg":"ok","access_token":t,"expires_in":7200}));
        }
        let token = q.get("access_token").cloned().unwrap_or_default();
        if !f.tokens.contains(&token) {
            return ok(json!({"errcode":42001,"errmsg":"access_token expired"}));
        }
        match url.path() {
            "/cgi-bin/auth/getuserinfo" | "/cgi-bin/user/getuserinfo" => {
                assert_eq!(c.method, "GET");
                match f.codes.remove(&q["code"]) {
                    Some(answer) => ok(answer),
                    None => ok(json!({"errcode":40029,"errmsg":"invalid code"})),
                }
            }
            "/cgi-bin/user/get" => {
                assert_eq!(c.method, "GET");
                assert_eq!(q["userid"], "zhangsan");
                let mut profile = json!({"errcode":0,"errmsg":"ok","userid":"zhangsan","name":"张三","alias":"San Zhang",
                    "department":[1,2],"position":"engineer","mobile":"","email":"","status":1,
                    "extattr":{"attrs":[
                        {"type":0,"name":"角色","text":{"value":"data analyst"}},
                        {"type":1,"name":"主页","web":{"url":"http://w.example","title":"w"}},
                        {"name":"邮箱","value":"zs@ext.example"}]}});
                if let Some(main) = f.main_department {
                    profile["department"] = json!([1, main]);
                    profile["main_department"] = json!(main);
                }
                ok(profile)
            }
            "/cgi-bin/department/list" => {
                assert_eq!(c.method, "GET");
                assert_eq!(q.len(), 1, "{q:?}");
                let all: Vec<Value> = DEPARTMENTS.iter().map(|d| department(d.0)).collect();
                ok(json!({"errcode":0,"errmsg":"ok","department":all}))
            }
            "/cgi-bin/department/get" => {
                assert_eq!(c.method, "GET");
                let id: u64 = q["id"].parse().unwrap();
                ok(json!({"errcode":0,"errmsg":"ok","department":department(id)}))
            }
            "/cgi-bin/auth/getuserdetail" => {
                assert_eq!(c.method, "POST");
                assert!(c
                    .headers
                    .contains(&("content-type".into(), "application/json".into())));
                let body: Value = serde_json::from_slice(&c.body).unwrap();
                assert_eq!(body, json!({"user_ticket": "UT"}));
                ok(
                    json!({"errcode":0,"errmsg":"ok","userid":"zhangsan","mobile":"13800000000",
                    "email":"zhangsan@corp.example","gender":"1"}),
                )
            }
            other => panic!("unexpected callout {other}"),
        }
    })
}

fn member() -> Value {
    json!({"errcode":0,"errmsg":"ok","userid":"zhangsan","user_ticket":"UT","expires_in":1800})
}

/// From the application URL to the provider: returns the provider URL.
fn start(d: &mut Driver, app_path: &str, agent: &str) -> url::Url {
    let headers = |d: &Driver| {
        let mut h = vec![
            ("accept".to_owned(), "text/html".to_owned()),
            ("user-agent".to_owned(), agent.to_owned()),
        ];
        if !d.jar.is_empty() {
            h.push((
                "cookie".to_owned(),
                d.jar
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        h
    };
    let first = d.send("GET", app_path, headers(d), None);
    assert_eq!(first.status(), 302, "{}", first.body());
    let login = first.header("location").unwrap();
    assert!(login.starts_with("/sso/login?"), "{login}");
    let begin = d.send("GET", &login, headers(d), None);
    assert_eq!(begin.status(), 302, "{}", begin.body());
    url::Url::parse(&begin.header("location").unwrap()).unwrap()
}

fn state_of(url: &url::Url) -> String {
    url.query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned()
}

fn back(d: &mut Driver, provider: &url::Url, code: &str) -> Done {
    d.get(&format!(
        "/sso/callback/wechat-work?code={code}&state={}",
        state_of(provider)
    ))
}

#[test]
fn qr_login_maps_the_profile_and_caches_the_app_token() {
    let fake = Rc::new(RefCell::new(Fake::default()));
    fake.borrow_mut().codes.insert("W1".into(), member());
    let mut d = Driver::new(&config(json!({})));
    d.idp = Some(wecom(Rc::clone(&fake)));
    let provider = start(&mut d, "/?activeAuth=wechat-work", "Mozilla/5.0 Chrome");
    assert_eq!(provider.path(), "/wwlogin/sso/login");
    let q: HashMap<String, String> = provider.query_pairs().into_owned().collect();
    assert_eq!(q["login_type"], "CorpApp");
    assert_eq!(q["appid"], "ww-corp");
    assert_eq!(q["agentid"], "1000002");
    assert_eq!(
        q["redirect_uri"],
        "https://app.example.com/sso/callback/wechat-work"
    );
    assert!(q["state"].chars().all(|c| c.is_ascii_alphanumeric()));
    let done = back(&mut d, &provider, "W1");
    assert_eq!(done.status(), 302, "{}", done.body());
    assert_eq!(
        done.header("location").as_deref(),
        Some("/?activeAuth=wechat-work")
    );
    let fwd = d.get("/?activeAuth=wechat-work");
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("zhangsan"));
    assert_eq!(fwd.set("x-sso-name").as_deref(), Some("San Zhang"));
    assert_eq!(fwd.set("x-sso-email").as_deref(), Some("zs@ext.example"));
    assert_eq!(fwd.set("x-sso-roles").as_deref(), Some("data analyst"));
    assert_eq!(fwd.set("x-sso-org").as_deref(), Some("DEFAULT"));
    assert_eq!(fwd.set("x-sso-method").as_deref(), Some("wechat-work"));
    let attrs = fwd.set("x-sso-attributes").unwrap();
    assert!(!attrs.contains("UT") && !attrs.contains("T1"), "{attrs}");
    // snsapi_base: no detail call.
    assert_eq!(
        fake.borrow().seen,
        vec![
            "GET /cgi-bin/gettoken",
            "GET /cgi-bin/auth/getuserinfo",
            "GET /cgi-bin/user/get"
        ]
    );
    // A second login reuses the cached app token.
    fake.borrow_mut().seen.clear();
    fake.borrow_mut().codes.insert("W2".into(), member());
    d.jar.clear();
    let provider = start(&mut d, "/x", "Mozilla/5.0");
    assert_eq!(back(&mut d, &provider, "W2").status(), 302);
    assert_eq!(
        fake.borrow().seen,
        vec!["GET /cgi-bin/auth/getuserinfo", "GET /cgi-bin/user/get"]
    );
}

#[test]
fn in_app_oauth_with_privateinfo_reads_the_user_detail() {
    let fake = Rc::new(RefCell::new(Fake::default()));
    fake.borrow_mut().codes.insert("W1".into(), member());
    let mut d = Driver::new(&config(json!({
        "scope": "snsapi_privateinfo",
        "mapping": {"email": "email", "phone": "mobile"}
    })));
    d.idp = Some(wecom(Rc::clone(&fake)));
    // The seed's URL, opened in the WeCom client.
    let provider = start(
        &mut d,
        "/?activeAuth=wechat-work&wcwLoginType=oauth2",
        "Mozilla/5.0 wxwork/4.1.22 MicroMessenger/7.0.1",
    );
    assert_eq!(provider.path(), "/connect/oauth2/authorize");
    assert_eq!(provider.fragment(), Some("wechat_redirect"));
    let q: HashMap<String, String> = provider.query_pairs().into_owned().collect();
    assert_eq!(q["scope"], "snsapi_privateinfo");
    assert_eq!(q["agentid"], "1000002");
    let done = back(&mut d, &provider, "W1");
    assert_eq!(done.status(), 302, "{}", done.body());
    let fwd = d.get("/?activeAuth=wechat-work&wcwLoginType=oauth2");
    assert_eq!(
        fwd.set("x-sso-email").as_deref(),
        Some("zhangsan@corp.example")
    );
    assert_eq!(fwd.set("x-sso-phone").as_deref(), Some("13800000000"));
    assert_eq!(
        fake.borrow().seen.last().map(String::as_str),
        Some("POST /cgi-bin/auth/getuserdetail")
    );
}

#[test]
fn the_user_agent_picks_in_app_login_when_the_url_does_not() {
    let mut d = Driver::new(&config(json!({})));
    let provider = start(&mut d, "/", "Mozilla/5.0 (iPhone) wxwork/4.1.0");
    assert_eq!(provider.path(), "/connect/oauth2/authorize");
    let mut d = Driver::new(&config(json!({"default_login": "oauth2"})));
    let provider = start(&mut d, "/?wcwLoginType=qr", "Mozilla/5.0 wxwork/4.1.0");
    assert_eq!(provider.path(), "/wwlogin/sso/login");
}

#[test]
fn an_expired_app_token_is_refetched_once() {
    let fake = Rc::new(RefCell::new(Fake::default()));
    fake.borrow_mut().codes.insert("W1".into(), member());
    let mut d = Driver::new(&config(json!({})));
    d.idp = Some(wecom(Rc::clone(&fake)));
    let provider = start(&mut d, "/", "Mozilla/5.0");
    // The cached token is revoked at WeCom before the callback.
    assert_eq!(back(&mut d, &provider, "W1").status(), 302);
    fake.borrow_mut().tokens.clear();
    fake.borrow_mut().seen.clear();
    fake.borrow_mut().codes.insert("W2".into(), member());
    d.jar.clear();
    let provider = start(&mut d, "/", "Mozilla/5.0");
    let done = back(&mut d, &provider, "W2");
    assert_eq!(done.status(), 302, "{}", done.body());
    assert_eq!(
        fake.borrow().seen,
        vec![
            "GET /cgi-bin/auth/getuserinfo",
            "GET /cgi-bin/gettoken",
            "GET /cgi-bin/auth/getuserinfo",
            "GET /cgi-bin/user/get"
        ]
    );
}

#[test]
fn a_token_refused_twice_fails_closed() {
    let mut d = Driver::new(&config(json!({})));
    d.idp = Some(Box::new(|c: &Callout| {
        if c.url.contains("/gettoken") {
            ok(json!({"errcode":0,"access_token":"T","expires_in":7200}))
        } else {
            ok(json!({"errcode":40014,"errmsg":"invalid access_token"}))
        }
    }));
    let provider = start(&mut d, "/", "Mozilla/5.0");
    let done = back(&mut d, &provider, "W1");
    assert_eq!(done.status(), 502);
    assert_eq!(
        d.callouts
            .iter()
            .filter(|c| c.url.contains("/gettoken"))
            .count(),
        2
    );
    assert!(!d.jar.contains_key("sso_session"));
}

#[test]
fn outsiders_reused_codes_and_provider_errors_are_refused() {
    let fake = Rc::new(RefCell::new(Fake::default()));
    fake.borrow_mut().codes.insert(
        "OUT".into(),
        json!({"errcode":0,"errmsg":"ok","openid":"o-outsider","external_userid":"wmx"}),
    );
    fake.borrow_mut().codes.insert("W1".into(), member());
    let mut d = Driver::new(&config(json!({})));
    d.idp = Some(wecom(Rc::clone(&fake)));

    let provider = start(&mut d, "/", "Mozilla/5.0");
    let done = back(&mut d, &provider, "OUT");
    assert_eq!(done.status(), 403, "{}", done.body());
    assert!(done.body().contains("not a member"), "{}", done.body());
    assert!(!d.jar.contains_key("sso_session"));
    assert!(!d.jar.keys().any(|k| k.contains("_flow_")));

    let provider = start(&mut d, "/", "Mozilla/5.0");
    assert_eq!(back(&mut d, &provider, "W1").status(), 302);
    d.jar.clear();
    let provider = start(&mut d, "/", "Mozilla/5.0");
    let done = back(&mut d, &provider, "W1");
    assert_eq!(done.status(), 401, "{}", done.body());
    assert!(done.body().contains("40029"), "{}", done.body());

    // A callback without a flow, or with the state of a used flow: refused (security.md F1).
    assert_eq!(
        d.get("/sso/callback/wechat-work?code=W9&state=abc")
            .status(),
        401
    );
    assert_eq!(back(&mut d, &provider, "W1").status(), 401);

    // The user declined: no code.
    let provider = start(&mut d, "/", "Mozilla/5.0");
    let declined = d.get(&format!(
        "/sso/callback/wechat-work?state={}",
        state_of(&provider)
    ));
    assert_eq!(declined.status(), 401);
    assert_eq!(d.count("sso_login_success.wechat-work"), 1);
}

#[test]
fn misconfiguration_codes_become_clear_pages() {
    let mut d = Driver::new(&config(json!({})));
    d.idp = Some(Box::new(|_c: &Callout| {
        ok(json!({"errcode":60020,"errmsg":"not allow to access from your ip"}))
    }));
    let provider = start(&mut d, "/", "Mozilla/5.0");
    let done = back(&mut d, &provider, "W1");
    assert_eq!(done.status(), 502);
    let body = done.body();
    assert!(body.contains("not set up correctly at WeCom"), "{body}");
    assert!(body.contains("60020"), "{body}");
}

#[test]
fn configuration_errors_name_the_field() {
    for (extra, field) in [
        (json!({"corp_id": ""}), "corp_id"),
        (json!({"secret": " "}), "secret"),
        (json!({"agent_id": true}), "agent_id"),
        (json!({"api_base": "qyapi"}), "api_base"),
        (json!({"scope": "snsapi_userinfo"}), "scope"),
        (json!({"corpid": "x"}), "corpid"),
    ] {
        let err = sso_filter::Filter::from_json(config(extra).to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("methods.wechat-work"), "{err}");
        assert!(err.contains(field), "{field}: {err}");
    }
}

/// The x-sso-org value of `研发部/数据组` (RFC 8187, non-ASCII).
const ORG: &str = "UTF-8''%E7%A0%94%E5%8F%91%E9%83%A8%2F%E6%95%B0%E6%8D%AE%E7%BB%84";

/// `org_from_departments`: the member's main department named up to the root, one
/// `department/get` per level per login without a tree; with the tree the timer fetched
/// (`department/list`, one call), none.
#[test]
fn the_department_path_per_login_and_from_the_synced_tree() {
    let fake = Rc::new(RefCell::new(Fake {
        main_department: Some(3),
        ..Fake::default()
    }));
    fake.borrow_mut().codes.insert("W1".into(), member());
    fake.borrow_mut().codes.insert("W2".into(), member());
    let mut d = Driver::new(&config(
        json!({"org_from_departments": true, "sync_minutes": 60}),
    ));
    d.idp = Some(wecom(Rc::clone(&fake)));
    // Before the first sync: per login.
    let provider = start(&mut d, "/", "Mozilla/5.0");
    assert_eq!(back(&mut d, &provider, "W1").status(), 302);
    assert_eq!(d.get("/").set("x-sso-org").as_deref(), Some(ORG));
    assert_eq!(
        fake.borrow().seen,
        vec![
            "GET /cgi-bin/gettoken",
            "GET /cgi-bin/auth/getuserinfo",
            "GET /cgi-bin/user/get",
            "GET /cgi-bin/department/get",
            "GET /cgi-bin/department/get"
        ]
    );
    // The timer's sync, then a login without them.
    fake.borrow_mut().seen.clear();
    assert_eq!(d.tick(), 1);
    assert_eq!(d.count("sso_org_sync_success.wechat-work"), 1);
    d.jar.clear();
    let provider = start(&mut d, "/", "Mozilla/5.0");
    assert_eq!(back(&mut d, &provider, "W2").status(), 302);
    assert_eq!(d.get("/").set("x-sso-org").as_deref(), Some(ORG));
    assert_eq!(
        fake.borrow().seen,
        vec![
            "GET /cgi-bin/department/list",
            "GET /cgi-bin/auth/getuserinfo",
            "GET /cgi-bin/user/get"
        ]
    );
}

/// A member of the root department only has no path; the departments come from `user/get`,
/// so `org_from_departments` needs `user_details`.
#[test]
fn root_members_have_no_path_and_the_path_needs_user_details() {
    let fake = Rc::new(RefCell::new(Fake::default()));
    fake.borrow_mut().codes.insert("W1".into(), member());
    let mut d = Driver::new(&config(
        json!({"org_from_departments": true, "organization": null}),
    ));
    d.idp = Some(wecom(Rc::clone(&fake)));
    assert_eq!(d.tick(), 0, "sync_minutes defaults to 0 (off)");
    let provider = start(&mut d, "/", "Mozilla/5.0");
    assert_eq!(back(&mut d, &provider, "W1").status(), 302);
    assert_eq!(d.get("/").set("x-sso-org"), None);
    assert!(!fake.borrow().seen.iter().any(|s| s.contains("department")));
    let err = sso_filter::Filter::from_json(
        config(json!({"org_from_departments": true, "user_details": false}))
            .to_string()
            .as_bytes(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("methods.wechat-work.org_from_departments"),
        "{err}"
    );
}
