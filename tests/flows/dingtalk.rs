//! DingTalk through the engine against a scripted DingTalk that checks every request
//! (`reference/providers.md` §1): in-app JSAPI code, new OAuth QR login, the old signed sns
//! login, the admin console, outsiders, token refresh, the department path.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sso_filter::http::Callout;
use sso_filter::CalloutResponse;

use crate::common::{Done, Driver, KEY};

const OAPI: &str = "https://oapi.example.test";
const API: &str = "https://api.example.test";

fn config(extra: Value) -> Value {
    let mut method = json!({
        "type": "dingtalk", "corp_id": "dingcorp", "app_key": "dingappkey", "app_secret": "app-secret",
        "sso_secret": "sso-secret",
        "api_base": API, "oapi_base": OAPI, "login_base": "https://login.example.test",
        "jsapi_url": "https://g.example.test/dingtalk.open.js",
        "org_from_departments": true,
        "mapping": {"roles": "$.role_list[*].name", "email": "org_email"}
    });
    if let (Some(m), Some(e)) = (method.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "methods": {"dingtalk": method}
    })
}

#[derive(Default)]
struct Fake {
    tokens: Vec<String>,
    issued: usize,
    codes: HashMap<String, Value>,
    seen: Vec<String>,
    now_ms: u64,
    /// `listsub` answers 60020 (the server's IP not on the app's whitelist).
    tree_down: bool,
}

fn ok(body: Value) -> CalloutResponse {
    CalloutResponse {
        status: Some(200),
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

fn status(code: u16, body: Value) -> CalloutResponse {
    CalloutResponse {
        status: Some(code),
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

fn json_body(c: &Callout) -> Value {
    assert!(
        c.headers
            .contains(&("content-type".into(), "application/json".into())),
        "{c:?}"
    );
    serde_json::from_slice(&c.body).unwrap()
}

fn dingtalk(fake: Rc<RefCell<Fake>>) -> crate::common::Idp {
    Box::new(move |c: &Callout| {
        let mut f = fake.borrow_mut();
        let url = url::Url::parse(&c.url).unwrap();
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let origin = url.origin().ascii_serialization();
        f.seen.push(format!("{} {}", c.method, url.path()));
        if origin == API {
            return match url.path() {
                "/v1.0/oauth2/userAccessToken" => {
                    assert_eq!(c.method, "POST");
                    let b = json_body(c);
                    assert_eq!(b["clientId"], "dingappkey");
                    assert_eq!(b["clientSecret"], "app-secret");
                    assert_eq!(b["grantType"], "authorization_code");
                    let code = b["code"].as_str().unwrap().to_owned();
                    if f.codes.remove(&code).is_some() {
                        ok(
                            json!({"accessToken":"UAT","refreshToken":"RT","expireIn":7200,"corpId":"dingcorp"}),
                        )
                    } else {
                        status(
                            400,
                            json!({"code":"invalidParameter.authCode.notFound","message":"不合法的临时授权码","requestid":"x"}),
                        )
                    }
                }
                "/v1.0/contact/users/me" => {
                    assert_eq!(c.method, "GET");
                    assert!(!c.headers.iter().any(|(n, _)| n == "authorization"));
                    assert!(c
                        .headers
                        .contains(&("x-acs-dingtalk-access-token".into(), "UAT".into())));
                    ok(
                        json!({"nick":"Zhang","unionId":"U1","openId":"O1","email":"z@personal.example",
                        "mobile":"13800000002","stateCode":"86","avatarUrl":""}),
                    )
                }
                other => panic!("unexpected api callout {other}"),
            };
        }
        assert_eq!(origin, OAPI);
        match url.path() {
            "/gettoken" => {
                assert_eq!(c.method, "GET");
                assert_eq!(q["appkey"], "dingappkey");
                assert_eq!(q["appsecret"], "app-secret");
                f.issued += 1;
                let t = format!("APPT{}", f.issued);
                f.tokens.push(t.clone());
                return ok(json!({"errcode":0,"errmsg":"ok","access_token":t,"expires_in":7200}));
            }
            "/sso/gettoken" => {
                assert_eq!(q["corpid"], "dingcorp");
                assert_eq!(q["corpsecret"], "sso-secret");
                f.tokens.push("SSOT".into());
                return ok(json!({"errcode":0,"errmsg":"ok","access_token":"SSOT"}));
            }
            "/sns/getuserinfo_bycode" => {
                assert_eq!(c.method, "POST");
                assert_eq!(q["accessKey"], "dingqrapp");
                let ts: u64 = q["timestamp"].parse().unwrap();
                assert_eq!(ts, f.now_ms);
                let mut mac = Hmac::<sha2::Sha256>::new_from_slice(b"qr-secret").unwrap();
                mac.update(q["timestamp"].as_bytes());
                let want =
                    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
                if q["signature"] != want {
                    return ok(json!({"errcode":853001,"errmsg":"签名不匹配"}));
                }
                let b = json_body(c);
                let code = b["tmp_auth_code"].as_str().unwrap().to_owned();
                return match f.codes.remove(&code) {
                    Some(_) => ok(json!({"errcode":0,"errmsg":"ok","user_info":
                        {"nick":"Zhang","unionid":"U1","openid":"O1","main_org_auth_high_level":true}})),
                    None => ok(json!({"errcode":40078,"errmsg":"不存在的临时授权码"})),
                };
            }
            _ => {}
        }
        let token = q.get("access_token").cloned().unwrap_or_default();
        if !f.tokens.contains(&token) {
            return ok(json!({"errcode":42001,"errmsg":"不合法的access_token"}));
        }
        match url.path() {
            "/topapi/v2/user/getuserinfo" => {
                let code = json_body(c)["code"].as_str().unwrap().to_owned();
                match f.codes.remove(&code) {
                    Some(_) => ok(json!({"errcode":0,"errmsg":"ok","request_id":"r","result":
                        {"userid":"u001","unionid":"U1","associated_unionid":"","device_id":"d",
                         "sys":false,"sys_level":0,"name":"张三"}})),
                    None => ok(json!({"errcode":40078,"errmsg":"不存在的临时授权码"})),
                }
            }
            "/topapi/user/getbyunionid" => match json_body(c)["unionid"].as_str() {
                Some("U1") => ok(
                    json!({"errcode":0,"errmsg":"ok","result":{"contact_type":0,"userid":"u001"}}),
                ),
                _ => ok(json!({"errcode":60121,"errmsg":"找不到该用户"})),
            },
            "/topapi/v2/user/get" => {
                let b = json_body(c);
                assert_eq!(b["userid"], "u001");
                ok(
                    json!({"errcode":0,"errmsg":"ok","result":{"userid":"u001","unionid":"U1",
                    "name":"张三","mobile":"13800000002","email":"","org_email":"zhangsan@corp.example",
                    "title":"分析师","dept_id_list":[3],"active":true,
                    "role_list":[{"id":1,"name":"data analyst","group_name":"默认"}]}}),
                )
            }
            "/topapi/v2/department/listsub" => {
                let b = json_body(c);
                assert_eq!(b["language"], "zh_CN");
                if f.tree_down {
                    return ok(json!({"errcode":60020,"errmsg":"访问ip不在白名单之中"}));
                }
                let children = match b["dept_id"].as_u64().unwrap() {
                    1 => json!([{"dept_id":2,"name":"研发部","parent_id":1,
                                 "auto_add_user":true,"create_dept_group":true}]),
                    2 => json!([{"dept_id":3,"name":"数据组","parent_id":2,
                                 "auto_add_user":true,"create_dept_group":false}]),
                    3 => json!([]),
                    id => panic!("listsub of department {id}"),
                };
                ok(json!({"errcode":0,"errmsg":"ok","result":children,"request_id":"r"}))
            }
            "/topapi/v2/department/listparentbyuser" => ok(json!({"errcode":0,"errmsg":"ok",
                "result":{"parent_list":[{"parent_dept_id_list":[3,2,1]}]}})),
            "/topapi/v2/department/get" => {
                let id = json_body(c)["dept_id"].as_u64().unwrap();
                let name = match id {
                    3 => "数据组",
                    2 => "研发部",
                    _ => panic!("department {id}"),
                };
                ok(json!({"errcode":0,"errmsg":"ok","result":{"dept_id":id,"name":name}}))
            }
            "/sso/getuserinfo" => match f.codes.remove(&q["code"]) {
                Some(v) => ok(v),
                None => ok(json!({"errcode":40029,"errmsg":"invalid code"})),
            },
            other => panic!("unexpected oapi callout {other}"),
        }
    })
}

fn nav(d: &Driver, agent: &str) -> Vec<(String, String)> {
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
}

/// Opens an application URL without a session and follows to `/sso/login`.
fn start(d: &mut Driver, app: &str, agent: &str) -> Done {
    let first = d.send("GET", app, nav(d, agent), None);
    assert_eq!(first.status(), 302, "{}", first.body());
    let login = first.header("location").unwrap();
    d.send("GET", &login, nav(d, agent), None)
}

/// The state embedded in an in-app page.
fn page_state(page: &Done) -> String {
    let body = page.body();
    let i = body.find("\"state\":\"").unwrap() + 9;
    body[i..].split('"').next().unwrap().to_owned()
}

fn post_code(d: &mut Driver, body: Value) -> Done {
    let mut headers = vec![
        ("accept".to_owned(), "application/json".to_owned()),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    headers.extend(
        nav(d, "DingTalk")
            .into_iter()
            .filter(|(k, _)| k == "cookie"),
    );
    d.send(
        "POST",
        "/sso/code/dingtalk",
        headers,
        Some(body.to_string().into_bytes()),
    )
}

fn setup(extra: Value) -> (Driver, Rc<RefCell<Fake>>) {
    let fake = Rc::new(RefCell::new(Fake::default()));
    let mut d = Driver::new(&config(extra));
    fake.borrow_mut().now_ms = d.now * 1000;
    d.idp = Some(dingtalk(Rc::clone(&fake)));
    (d, fake)
}

const SEED_APP: &str = "/?activeAuth=dingtalk&dtLoginType=authCode&corpId=dingcorp";

#[test]
fn in_app_seed_url_serves_the_jsapi_page_and_the_posted_code_logs_in() {
    let (mut d, fake) = setup(json!({}));
    fake.borrow_mut().codes.insert("M1".into(), json!(1));
    let page = start(&mut d, SEED_APP, "Mozilla/5.0 DingTalk/7.0.10");
    assert_eq!(page.status(), 200, "{}", page.body());
    let html = page.body();
    assert!(html.contains("src=\"https://g.example.test/dingtalk.open.js\""));
    assert!(html.contains("\"corpId\":\"dingcorp\""));
    assert!(html.contains("requestAuthCode"));
    assert!(!html.contains("app-secret"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'nonce-") && csp.contains("https://g.example.test"));
    let state = page_state(&page);
    let done = post_code(&mut d, json!({"state": state, "code": "M1"}));
    assert_eq!(done.status(), 200, "{}", done.body());
    let answer: Value = serde_json::from_str(&done.body()).unwrap();
    assert_eq!(answer["location"], SEED_APP);
    let fwd = d.get(SEED_APP);
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("u001"));
    assert_eq!(
        fwd.set("x-sso-email").as_deref(),
        Some("zhangsan@corp.example")
    );
    assert_eq!(fwd.set("x-sso-phone").as_deref(), Some("13800000002"));
    assert_eq!(fwd.set("x-sso-roles").as_deref(), Some("data analyst"));
    // The department path, root first.
    assert_eq!(
        fwd.set("x-sso-org").as_deref(),
        Some("UTF-8''%E7%A0%94%E5%8F%91%E9%83%A8%2F%E6%95%B0%E6%8D%AE%E7%BB%84")
    );
    assert_eq!(
        fake.borrow().seen,
        vec![
            "GET /gettoken",
            "POST /topapi/v2/user/getuserinfo",
            "POST /topapi/v2/user/get",
            "POST /topapi/v2/department/listparentbyuser",
            "POST /topapi/v2/department/get",
            "POST /topapi/v2/department/get"
        ]
    );
    // The same code again (a new page, a new state): DingTalk says 40078.
    d.jar.clear();
    let page = start(&mut d, SEED_APP, "DingTalk");
    let again = post_code(&mut d, json!({"state": page_state(&page), "code": "M1"}));
    assert_eq!(again.status(), 401, "{}", again.body());
    let answer: Value = serde_json::from_str(&again.body()).unwrap();
    assert!(answer["message"].as_str().unwrap().contains("40078"));
}

#[test]
fn posted_codes_need_json_their_flow_and_this_corp() {
    let (mut d, fake) = setup(json!({}));
    fake.borrow_mut().codes.insert("M1".into(), json!(1));
    // A form post (what a cross-site page could send) is refused before any body is read.
    let form = d.send(
        "POST",
        "/sso/code/dingtalk",
        vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        Some(b"code=M1&state=x".to_vec()),
    );
    assert_eq!(form.status(), 400);
    // No flow cookie for this state.
    assert_eq!(
        post_code(&mut d, json!({"state": "nope", "code": "M1"})).status(),
        401
    );
    // Another organisation in the URL.
    let other = start(
        &mut d,
        "/?activeAuth=dingtalk&dtLoginType=authCode&corpId=dingother",
        "DingTalk",
    );
    assert_eq!(other.status(), 403, "{}", other.body());
    assert!(fake.borrow().seen.is_empty());
}

#[test]
fn qr_login_resolves_the_union_id_in_the_org() {
    let (mut d, fake) = setup(json!({"default_login": "qr", "org_from_departments": false}));
    fake.borrow_mut().codes.insert("C1".into(), json!(1));
    let login = start(&mut d, "/?activeAuth=dingtalk", "Mozilla/5.0 Chrome");
    assert_eq!(login.status(), 302);
    let provider = url::Url::parse(&login.header("location").unwrap()).unwrap();
    assert_eq!(provider.path(), "/oauth2/auth");
    let q: HashMap<String, String> = provider.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "dingappkey");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["scope"], "openid");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(
        q["redirect_uri"],
        "https://app.example.com/sso/callback/dingtalk"
    );
    let done = d.get(&format!(
        "/sso/callback/dingtalk?authCode=C1&code=C1&state={}",
        q["state"]
    ));
    assert_eq!(done.status(), 302, "{}", done.body());
    let fwd = d.get("/?activeAuth=dingtalk");
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("u001"));
    assert_eq!(
        fake.borrow().seen,
        vec![
            "POST /v1.0/oauth2/userAccessToken",
            "GET /v1.0/contact/users/me",
            "GET /gettoken",
            "POST /topapi/user/getbyunionid",
            "POST /topapi/v2/user/get"
        ]
    );
    // A used authCode: 400 from api.dingtalk.com becomes a clear 401 page.
    d.jar.clear();
    let login = start(&mut d, "/?activeAuth=dingtalk&dtLoginType=qr", "Chrome");
    let state = url::Url::parse(&login.header("location").unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let again = d.get(&format!("/sso/callback/dingtalk?authCode=C1&state={state}"));
    assert_eq!(again.status(), 401, "{}", again.body());
    assert!(again.body().contains("invalidParameter.authCode.notFound"));
}

#[test]
fn outsiders_are_refused_with_60121() {
    let (mut d, _fake) = setup(json!({"default_login": "qr"}));
    d.idp = Some(Box::new(|c: &Callout| {
        let path = url::Url::parse(&c.url).unwrap().path().to_owned();
        match path.as_str() {
            "/v1.0/oauth2/userAccessToken" => ok(json!({"accessToken":"UAT","expireIn":7200})),
            "/v1.0/contact/users/me" => ok(json!({"nick":"Eve","unionId":"U-EVE"})),
            "/gettoken" => ok(json!({"errcode":0,"access_token":"APPT","expires_in":7200})),
            "/topapi/user/getbyunionid" => ok(json!({"errcode":60121,"errmsg":"找不到该用户"})),
            other => panic!("{other}"),
        }
    }));
    let login = start(&mut d, "/?activeAuth=dingtalk", "Chrome");
    let state = url::Url::parse(&login.header("location").unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let done = d.get(&format!("/sso/callback/dingtalk?authCode=X&state={state}"));
    assert_eq!(done.status(), 403, "{}", done.body());
    assert!(done.body().contains("60121"));
    assert!(!d.jar.contains_key("sso_session"));
}

#[test]
fn old_sns_login_is_signed_with_the_login_app_secret() {
    let (mut d, fake) = setup(json!({"default_login": "qr", "qr_login": "sns",
        "qr_app_id": "dingqrapp", "qr_app_secret": "qr-secret", "user_details": false,
        "org_from_departments": false}));
    fake.borrow_mut().codes.insert("S1".into(), json!(1));
    let login = start(&mut d, "/?activeAuth=dingtalk", "Chrome");
    let provider = url::Url::parse(&login.header("location").unwrap()).unwrap();
    assert_eq!(provider.path(), "/connect/qrconnect");
    let q: HashMap<String, String> = provider.query_pairs().into_owned().collect();
    assert_eq!(q["appid"], "dingqrapp");
    assert_eq!(q["scope"], "snsapi_login");
    let done = d.get(&format!(
        "/sso/callback/dingtalk?code=S1&state={}",
        q["state"]
    ));
    assert_eq!(done.status(), 302, "{}", done.body());
    assert_eq!(
        fake.borrow().seen,
        vec![
            "POST /sns/getuserinfo_bycode",
            "GET /gettoken",
            "POST /topapi/user/getbyunionid"
        ]
    );
}

#[test]
fn admin_console_code_on_the_url_logs_an_admin_in() {
    let (mut d, fake) = setup(json!({"org_from_departments": false}));
    fake.borrow_mut().codes.insert(
        "A1".into(),
        json!({"errcode":0,"errmsg":"ok","is_sys":true,"corp_info":{"corp_name":"Corp","corpid":"dingcorp"},
               "user_info":{"avatar":"","email":"admin@corp.example","name":"管理员","userid":"u001"}}),
    );
    fake.borrow_mut().codes.insert(
        "A2".into(),
        json!({"errcode":0,"errmsg":"ok","is_sys":true,"corp_info":{"corp_name":"Other","corpid":"dingother"},
               "user_info":{"userid":"x"}}),
    );
    let done = d.get("/admin?activeAuth=dingtalk&dtLoginType=code&code=A1");
    assert_eq!(done.status(), 302, "{}", done.body());
    assert_eq!(
        done.header("location").as_deref(),
        Some("/admin?activeAuth=dingtalk&dtLoginType=code")
    );
    let fwd = d.get("/admin?activeAuth=dingtalk&dtLoginType=code");
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("u001"));
    assert_eq!(
        fake.borrow().seen[..2].to_vec(),
        vec!["GET /sso/gettoken", "GET /sso/getuserinfo"]
    );
    d.jar.clear();
    let other = d.get("/admin?activeAuth=dingtalk&dtLoginType=code&code=A2");
    assert_eq!(other.status(), 403);
    let reused = d.get("/admin?activeAuth=dingtalk&dtLoginType=code&code=A1");
    assert_eq!(reused.status(), 401);
    assert!(reused.body().contains("40029"));
}

#[test]
fn an_expired_app_token_is_refetched_once() {
    let (mut d, fake) = setup(json!({"org_from_departments": false}));
    fake.borrow_mut().codes.insert("M1".into(), json!(1));
    fake.borrow_mut().codes.insert("M2".into(), json!(1));
    let page = start(&mut d, SEED_APP, "DingTalk");
    assert_eq!(
        post_code(&mut d, json!({"state": page_state(&page), "code": "M1"})).status(),
        200
    );
    fake.borrow_mut().tokens.clear();
    fake.borrow_mut().seen.clear();
    d.jar.clear();
    let page = start(&mut d, SEED_APP, "DingTalk");
    let done = post_code(&mut d, json!({"state": page_state(&page), "code": "M2"}));
    assert_eq!(done.status(), 200, "{}", done.body());
    assert_eq!(
        fake.borrow().seen,
        vec![
            "POST /topapi/v2/user/getuserinfo",
            "GET /gettoken",
            "POST /topapi/v2/user/getuserinfo",
            "POST /topapi/v2/user/get"
        ]
    );
}

/// The x-sso-org value of `研发部/数据组` (RFC 8187, non-ASCII).
const ORG: &str = "UTF-8''%E7%A0%94%E5%8F%91%E9%83%A8%2F%E6%95%B0%E6%8D%AE%E7%BB%84";

/// An in-app login with `code`; the forwarded request's edits.
fn in_app_login(d: &mut Driver, code: &str) -> Done {
    let page = start(d, SEED_APP, "DingTalk");
    let done = post_code(d, json!({"state": page_state(&page), "code": code}));
    assert_eq!(done.status(), 200, "{}", done.body());
    d.get(SEED_APP)
}

/// With `sync_minutes`, the timer lists the department tree (`listsub` from the root down,
/// one level per call) and logins take the path from it: no department call. The next sync
/// comes a period later.
#[test]
fn the_synced_tree_spares_logins_their_department_calls() {
    let (mut d, fake) = setup(json!({"sync_minutes": 60}));
    assert_eq!(d.tick(), 4);
    assert_eq!(
        fake.borrow().seen,
        vec![
            "GET /gettoken",
            "POST /topapi/v2/department/listsub",
            "POST /topapi/v2/department/listsub",
            "POST /topapi/v2/department/listsub"
        ]
    );
    assert_eq!(d.count("sso_org_sync_success.dingtalk"), 1);
    d.now += 60;
    assert_eq!(d.tick(), 0, "the tree is fresh");
    fake.borrow_mut().seen.clear();
    fake.borrow_mut().codes.insert("M1".into(), json!(1));
    let fwd = in_app_login(&mut d, "M1");
    assert_eq!(fwd.set("x-sso-org").as_deref(), Some(ORG));
    assert_eq!(
        fake.borrow().seen,
        vec![
            "POST /topapi/v2/user/getuserinfo",
            "POST /topapi/v2/user/get"
        ]
    );
    // A period after the sync: fetched again (the app token is still cached).
    d.now += 3600;
    assert_eq!(d.tick(), 3);
    assert_eq!(d.count("sso_org_sync_success.dingtalk"), 2);
}

/// Without `user_details` the member's departments are not known before the department
/// step: `listparentbyuser` gives the chain, and the tree names it (no `department/get`).
#[test]
fn without_user_details_the_chain_is_named_from_the_tree() {
    let (mut d, fake) = setup(json!({"sync_minutes": 60, "user_details": false}));
    d.tick();
    fake.borrow_mut().seen.clear();
    fake.borrow_mut().codes.insert("M1".into(), json!(1));
    let fwd = in_app_login(&mut d, "M1");
    assert_eq!(fwd.set("x-sso-org").as_deref(), Some(ORG));
    assert_eq!(
        fake.borrow().seen,
        vec![
            "POST /topapi/v2/user/getuserinfo",
            "POST /topapi/v2/department/listparentbyuser"
        ]
    );
}

/// A failed sync is counted and logged; the previous tree serves logins until it expires
/// (two periods after it was fetched); after that, and with `sync_minutes: 0`, logins make
/// the per-login department calls and get the same path.
#[test]
fn a_failed_sync_keeps_the_tree_until_it_expires_then_logins_ask() {
    let (mut d, fake) = setup(json!({"sync_minutes": 1}));
    assert_eq!(d.tick(), 4);
    fake.borrow_mut().tree_down = true;
    d.now += 60;
    assert_eq!(d.tick(), 1);
    assert_eq!(d.count("sso_org_sync_failure.dingtalk"), 1);
    d.now += 30;
    assert_eq!(
        d.tick(),
        0,
        "the next try waits (a period, at most 5 minutes)"
    );
    fake.borrow_mut().seen.clear();
    fake.borrow_mut().codes.insert("M1".into(), json!(1));
    let fwd = in_app_login(&mut d, "M1");
    assert_eq!(fwd.set("x-sso-org").as_deref(), Some(ORG));
    assert_eq!(fake.borrow().seen.len(), 2, "{:?}", fake.borrow().seen);
    // Two periods after the last good sync the tree is no longer used.
    d.now += 31;
    assert_eq!(d.tick(), 1);
    assert_eq!(d.count("sso_org_sync_failure.dingtalk"), 2);
    fake.borrow_mut().seen.clear();
    fake.borrow_mut().codes.insert("M2".into(), json!(1));
    d.jar.clear();
    let fwd = in_app_login(&mut d, "M2");
    assert_eq!(fwd.set("x-sso-org").as_deref(), Some(ORG));
    assert_eq!(
        fake.borrow().seen,
        vec![
            "POST /topapi/v2/user/getuserinfo",
            "POST /topapi/v2/user/get",
            "POST /topapi/v2/department/listparentbyuser",
            "POST /topapi/v2/department/get",
            "POST /topapi/v2/department/get"
        ]
    );
}

#[test]
fn sync_off_makes_no_timer_callouts() {
    let (mut d, fake) = setup(json!({"sync_minutes": 0}));
    assert_eq!(d.tick(), 0);
    fake.borrow_mut().codes.insert("M1".into(), json!(1));
    let fwd = in_app_login(&mut d, "M1");
    assert_eq!(fwd.set("x-sso-org").as_deref(), Some(ORG));
    assert_eq!(fake.borrow().seen.len(), 6, "{:?}", fake.borrow().seen);
    // A week at most.
    let too_long = config(json!({"sync_minutes": 10_081}));
    let err = sso_filter::Filter::from_json(too_long.to_string().as_bytes()).unwrap_err();
    assert!(
        err.to_string().contains("methods.dingtalk.sync_minutes"),
        "{err}"
    );
}

/// Two workers (two filters over one shared cache): the lease lets one fetch while the other
/// waits; a period later again only one of them fetches.
#[test]
fn two_workers_fetch_the_tree_once() {
    use sso_filter::cache::MemoryCache;
    use sso_filter::{Env, Filter};
    let cfg = config(json!({"sync_minutes": 60})).to_string();
    let (a, b) = (
        Filter::from_json(cfg.as_bytes()).unwrap(),
        Filter::from_json(cfg.as_bytes()).unwrap(),
    );
    let fake = Rc::new(RefCell::new(Fake::default()));
    let mut idp = dingtalk(Rc::clone(&fake));
    let cache = MemoryCache::default();
    let mut rng = crate::common::golden::CountingRandom::default();
    let mut now = 1_767_225_600;
    for round in 0..2 {
        let mut env = Env {
            now,
            now_ms: now * 1000,
            rng: &mut rng,
            cache: &cache,
            fleet: Default::default(),
        };
        let mut todo = vec![a.on_timer(&mut env)];
        assert_eq!(todo[0].callouts.len(), 1, "round {round}");
        assert!(b.on_timer(&mut env).callouts.is_empty(), "round {round}");
        while let Some(out) = todo.pop() {
            for (c, wait) in out.callouts {
                let answer = idp(&c);
                todo.push(a.on_timer_response(wait, answer, &mut env));
            }
            assert!(b.on_timer(&mut env).callouts.is_empty());
        }
        now += 3600;
    }
    let listsub = fake
        .borrow()
        .seen
        .iter()
        .filter(|s| s.ends_with("/listsub"))
        .count();
    assert_eq!(listsub, 6);
}
