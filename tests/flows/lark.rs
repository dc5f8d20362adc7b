//! Feishu / Lark through the engine against a scripted Feishu that checks every request
//! (`reference/providers.md` §3): web OAuth with the v2 token endpoint, the in-app JSAPI codes
//! (`requestAccess` and `requestAuthCode`), the admin backend, the tenant check.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{json, Value};
use sso_filter::http::Callout;
use sso_filter::CalloutResponse;

use crate::common::{Done, Driver, KEY};

const OPEN: &str = "https://open.example.test";

fn config(extra: Value) -> Value {
    let mut method = json!({
        "type": "lark", "app_id": "cli_mock", "app_secret": "lark-secret",
        "tenant_key": "tenant-a",
        "accounts_base": "https://accounts.example.test", "open_base": OPEN,
        "jsapi_url": "https://sdk.example.test/h5-js-sdk.js",
        "mapping": {"role_rules": [{"claim": "tenant_key", "equals": "tenant-a", "roles": ["data viewer"]}]}
    });
    if let (Some(m), Some(e)) = (method.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    json!({"base_url": "https://app.example.com", "session": {"keys": [KEY]}, "methods": {"lark": method}})
}

#[derive(Default)]
struct Fake {
    app_tokens: Vec<String>,
    issued: usize,
    codes: HashMap<String, &'static str>,
    seen: Vec<String>,
}

fn answer(status: u16, body: Value) -> CalloutResponse {
    CalloutResponse {
        status: Some(status),
        headers: vec![],
        body: body.to_string().into_bytes(),
    }
}

fn bearer(c: &Callout) -> Option<String> {
    c.headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .and_then(|(_, v)| v.strip_prefix("Bearer ").map(str::to_owned))
}

fn feishu(fake: Rc<RefCell<Fake>>) -> crate::common::Idp {
    Box::new(move |c: &Callout| {
        let mut f = fake.borrow_mut();
        let url = url::Url::parse(&c.url).unwrap();
        assert_eq!(url.origin().ascii_serialization(), OPEN);
        f.seen.push(format!("{} {}", c.method, url.path()));
        let body: Value = if c.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&c.body).unwrap()
        };
        match url.path() {
            "/open-apis/auth/v3/app_access_token/internal"
            | "/open-apis/auth/v3/tenant_access_token/internal" => {
                assert_eq!(
                    body,
                    json!({"app_id": "cli_mock", "app_secret": "lark-secret"})
                );
                f.issued += 1;
                let t = format!("t-{}", f.issued);
                f.app_tokens.push(t.clone());
                answer(
                    200,
                    json!({"code":0,"msg":"ok","app_access_token":t,"tenant_access_token":t,"expire":7200}),
                )
            }
            "/open-apis/authen/v2/oauth/token" => {
                assert_eq!(body["grant_type"], "authorization_code");
                assert_eq!(body["client_id"], "cli_mock");
                assert_eq!(body["client_secret"], "lark-secret");
                assert!(
                    bearer(c).is_none(),
                    "20070: never both Basic/Bearer and the secret"
                );
                let code = body["code"].as_str().unwrap();
                match f.codes.remove(code) {
                    Some(kind) => {
                        if kind == "web" {
                            assert_eq!(
                                body["redirect_uri"],
                                "https://app.example.com/lark/callback"
                            );
                        } else {
                            assert!(body.get("redirect_uri").is_none());
                        }
                        answer(
                            200,
                            json!({"code":0,"access_token":"u-USER","expires_in":7200,"token_type":"Bearer","scope":""}),
                        )
                    }
                    None => answer(
                        400,
                        json!({"code":20065,"error":"invalid_grant","error_description":"code used"}),
                    ),
                }
            }
            "/open-apis/authen/v1/oidc/access_token" => {
                let t = bearer(c).unwrap();
                if !f.app_tokens.contains(&t) {
                    return answer(
                        200,
                        json!({"code":99991664,"msg":"invalid app_access_token"}),
                    );
                }
                assert_eq!(body["grant_type"], "authorization_code");
                match f.codes.remove(body["code"].as_str().unwrap()) {
                    Some(_) => answer(
                        200,
                        json!({"code":0,"msg":"success","data":{"access_token":"u-USER","token_type":"Bearer","expires_in":7200}}),
                    ),
                    None => answer(200, json!({"code":20003,"msg":"invalid code"})),
                }
            }
            "/open-apis/authen/v1/user_info" => {
                assert_eq!(bearer(c).as_deref(), Some("u-USER"));
                answer(
                    200,
                    json!({"code":0,"msg":"success","data":{"name":"张三","en_name":"San Zhang",
                    "open_id":"ou_1","union_id":"on_1","user_id":"zhangsan","email":"z@x.example",
                    "enterprise_email":"zhangsan@corp.example","mobile":"+8613800000003","tenant_key":"tenant-a"}}),
                )
            }
            "/open-apis/application/v3/is_user_admin" => {
                assert!(f.app_tokens.contains(&bearer(c).unwrap()));
                assert_eq!(url.query(), Some("open_id=ou_1"));
                answer(
                    200,
                    json!({"code":0,"msg":"ok","data":{"is_app_admin":true}}),
                )
            }
            path if path.starts_with("/open-apis/contact/v3/") => contact(&f, c, &url),
            other => panic!("unexpected callout {other}"),
        }
    })
}

/// A department as the contact API gives it (`department_id_type=open_department_id`).
fn department(id: &str) -> Value {
    let (name, parent) = match id {
        "od-2" => ("研发部", "0"),
        "od-3" => ("数据组", "od-2"),
        "od-9" => ("已删除", "od-2"),
        other => panic!("department {other}"),
    };
    json!({"name": name, "i18n_name": {"zh_cn": name, "en_us": "", "ja_jp": ""},
           "parent_department_id": parent, "department_id": id.replace("od-", "D"),
           "open_department_id": id, "leader_user_id": "ou_boss", "chat_id": "oc_1",
           "order": "100", "member_count": 3, "status": {"is_deleted": id == "od-9"}})
}

/// The contact API with the tenant token: the user, a department, the tree (two pages).
fn contact(f: &Fake, c: &Callout, url: &url::Url) -> CalloutResponse {
    assert_eq!(c.method, "GET");
    assert!(f.app_tokens.contains(&bearer(c).unwrap()), "tenant token");
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["department_id_type"], "open_department_id");
    let path = url.path().trim_start_matches("/open-apis/contact/v3/");
    let data = match path {
        "users/ou_1" => {
            assert_eq!(q["user_id_type"], "open_id");
            json!({"user": {"open_id": "ou_1", "union_id": "on_1", "name": "张三",
                            "department_ids": ["od-3"]}})
        }
        "departments/0/children" => {
            assert_eq!(q["fetch_child"], "true");
            assert_eq!(q["page_size"], "50");
            match q.get("page_token").map(String::as_str) {
                None => json!({"has_more": true, "page_token": "P2",
                               "items": [department("od-2")]}),
                Some("P2") => json!({"has_more": false, "page_token": "",
                                     "items": [department("od-3"), department("od-9")]}),
                Some(other) => panic!("page {other}"),
            }
        }
        other => json!({"department": department(other.trim_start_matches("departments/"))}),
    };
    answer(200, json!({"code": 0, "msg": "success", "data": data}))
}

fn setup(extra: Value) -> (Driver, Rc<RefCell<Fake>>) {
    let fake = Rc::new(RefCell::new(Fake::default()));
    let mut d = Driver::new(&config(extra));
    d.idp = Some(feishu(Rc::clone(&fake)));
    (d, fake)
}

fn nav(d: &Driver, agent: &str) -> Vec<(String, String)> {
    let mut h = vec![
        ("accept".to_owned(), "text/html".to_owned()),
        ("user-agent".to_owned(), agent.to_owned()),
    ];
    if !d.jar.is_empty() {
        let jar: Vec<String> = d.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        h.push(("cookie".to_owned(), jar.join("; ")));
    }
    h
}

fn start(d: &mut Driver, app: &str, agent: &str) -> Done {
    let first = d.send("GET", app, nav(d, agent), None);
    assert_eq!(first.status(), 302, "{}", first.body());
    let login = first.header("location").unwrap();
    d.send("GET", &login, nav(d, agent), None)
}

fn web_login(d: &mut Driver, app: &str) -> Done {
    let login = start(d, app, "Mozilla/5.0 Chrome");
    assert_eq!(login.status(), 302, "{}", login.body());
    let provider = url::Url::parse(&login.header("location").unwrap()).unwrap();
    assert_eq!(provider.path(), "/open-apis/authen/v1/authorize");
    let q: HashMap<String, String> = provider.query_pairs().into_owned().collect();
    assert_eq!(q["client_id"], "cli_mock");
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["redirect_uri"], "https://app.example.com/lark/callback");
    d.get(&format!("/lark/callback?code=F1&state={}", q["state"]))
}

fn post_code(d: &mut Driver, body: Value) -> Done {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    headers.extend(
        nav(d, "Lark/7.1")
            .into_iter()
            .filter(|(k, _)| k == "cookie"),
    );
    d.send(
        "POST",
        "/sso/code/lark",
        headers,
        Some(body.to_string().into_bytes()),
    )
}

fn page_state(page: &Done) -> String {
    let body = page.body();
    let i = body.find("\"state\":\"").unwrap() + 9;
    body[i..].split('"').next().unwrap().to_owned()
}

#[test]
fn desktop_seed_url_logs_in_with_union_id() {
    let (mut d, fake) = setup(json!({}));
    fake.borrow_mut().codes.insert("F1".into(), "web");
    let done = web_login(&mut d, "/?activeAuth=lark&larkLoginType=desktop");
    assert_eq!(done.status(), 302, "{}", done.body());
    let fwd = d.get("/?activeAuth=lark&larkLoginType=desktop");
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("on_1"));
    assert_eq!(
        fwd.set("x-sso-email").as_deref(),
        Some("zhangsan@corp.example")
    );
    assert_eq!(fwd.set("x-sso-roles").as_deref(), Some("data viewer"));
    assert_eq!(
        fake.borrow().seen,
        vec![
            "POST /open-apis/authen/v2/oauth/token",
            "GET /open-apis/authen/v1/user_info"
        ]
    );
}

#[test]
fn another_tenant_is_refused() {
    let (mut d, fake) = setup(json!({"tenant_key": "tenant-b"}));
    fake.borrow_mut().codes.insert("F1".into(), "web");
    let done = web_login(&mut d, "/?activeAuth=lark");
    assert_eq!(done.status(), 403, "{}", done.body());
    assert!(!d.jar.contains_key("sso_session"));
}

#[test]
fn app_seed_url_posts_request_access_and_request_auth_code_codes() {
    let (mut d, fake) = setup(json!({}));
    fake.borrow_mut().codes.insert("A1".into(), "app");
    fake.borrow_mut().codes.insert("A2".into(), "app");
    let page = start(&mut d, "/?activeAuth=lark&larkLoginType=app", "Mozilla/5.0");
    assert_eq!(page.status(), 200);
    assert!(page.body().contains("tt.requestAccess"));
    assert!(page.body().contains("\"appId\":\"cli_mock\""));
    let done = post_code(
        &mut d,
        json!({"state": page_state(&page), "code": "A1", "api": "requestAccess"}),
    );
    assert_eq!(done.status(), 200, "{}", done.body());
    d.jar.clear();
    // The older JSAPI's code goes to the v1 OIDC endpoint with the app token.
    let page = start(
        &mut d,
        "/?activeAuth=lark",
        "Mozilla/5.0 Lark/7.1.0 LarkLocale/zh_CN",
    );
    assert_eq!(
        page.status(),
        200,
        "the client's User-Agent picks the in-app page"
    );
    let done = post_code(
        &mut d,
        json!({"state": page_state(&page), "code": "A2", "api": "requestAuthCode"}),
    );
    assert_eq!(done.status(), 200, "{}", done.body());
    assert_eq!(
        fake.borrow().seen[2..].to_vec(),
        vec![
            "POST /open-apis/auth/v3/app_access_token/internal",
            "POST /open-apis/authen/v1/oidc/access_token",
            "GET /open-apis/authen/v1/user_info"
        ]
    );
    // The app token is cached; once Feishu revokes it, it is fetched again once.
    fake.borrow_mut().app_tokens.clear();
    fake.borrow_mut().codes.insert("A3".into(), "app");
    fake.borrow_mut().seen.clear();
    d.jar.clear();
    let page = start(&mut d, "/?activeAuth=lark&larkLoginType=app", "Lark/7.1");
    let done = post_code(
        &mut d,
        json!({"state": page_state(&page), "code": "A3", "api": "requestAuthCode"}),
    );
    assert_eq!(done.status(), 200, "{}", done.body());
    assert_eq!(
        fake.borrow().seen,
        vec![
            "POST /open-apis/authen/v1/oidc/access_token",
            "POST /open-apis/auth/v3/app_access_token/internal",
            "POST /open-apis/authen/v1/oidc/access_token",
            "GET /open-apis/authen/v1/user_info"
        ]
    );
}

#[test]
fn admin_backend_checks_app_admin_and_used_codes_are_refused() {
    let (mut d, fake) = setup(json!({}));
    fake.borrow_mut().codes.insert("F1".into(), "web");
    let done = web_login(&mut d, "/?activeAuth=lark&larkLoginType=larkAdminBackend");
    assert_eq!(done.status(), 302, "{}", done.body());
    assert_eq!(
        fake.borrow().seen.last().map(String::as_str),
        Some("GET /open-apis/application/v3/is_user_admin")
    );
    d.jar.clear();
    let again = web_login(&mut d, "/?activeAuth=lark");
    assert_eq!(again.status(), 401, "{}", again.body());
    assert!(again.body().contains("20065"));
}

/// The x-sso-org value of `研发部/数据组` (RFC 8187, non-ASCII).
const ORG: &str = "UTF-8''%E7%A0%94%E5%8F%91%E9%83%A8%2F%E6%95%B0%E6%8D%AE%E7%BB%84";

/// `org_from_departments`: the user's first department (`contact/v3/users/:open_id`) and
/// its parents, one `departments/:id` each, per login; with the tree the timer read
/// (`departments/0/children?fetch_child=true`, page by page, deleted ones left out), only the
/// user's call.
#[test]
fn the_department_path_per_login_and_from_the_synced_tree() {
    let (mut d, fake) = setup(json!({"org_from_departments": true, "sync_minutes": 60}));
    fake.borrow_mut().codes.insert("F1".into(), "web");
    assert_eq!(web_login(&mut d, "/").status(), 302);
    assert_eq!(d.get("/").set("x-sso-org").as_deref(), Some(ORG));
    assert_eq!(
        fake.borrow().seen[2..].to_vec(),
        vec![
            "POST /open-apis/auth/v3/tenant_access_token/internal",
            "GET /open-apis/contact/v3/users/ou_1",
            "GET /open-apis/contact/v3/departments/od-3",
            "GET /open-apis/contact/v3/departments/od-2"
        ]
    );
    fake.borrow_mut().seen.clear();
    assert_eq!(d.tick(), 2);
    assert_eq!(d.count("sso_org_sync_success.lark"), 1);
    fake.borrow_mut().codes.insert("F1".into(), "web");
    d.jar.clear();
    assert_eq!(web_login(&mut d, "/").status(), 302);
    assert_eq!(d.get("/").set("x-sso-org").as_deref(), Some(ORG));
    assert_eq!(
        fake.borrow().seen,
        vec![
            "GET /open-apis/contact/v3/departments/0/children",
            "GET /open-apis/contact/v3/departments/0/children",
            "POST /open-apis/authen/v2/oauth/token",
            "GET /open-apis/authen/v1/user_info",
            "GET /open-apis/contact/v3/users/ou_1"
        ]
    );
}
