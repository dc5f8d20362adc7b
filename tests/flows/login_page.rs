//! The login page users recognise (issue 17 item 9): the form offers the other enabled methods
//! of the request's scope as buttons that start them, in English or Chinese by
//! `Accept-Language`, with the configured title and logo, under a CSP that allows exactly the
//! page's style and that logo.

use serde_json::{json, Value};

use crate::common::{Done, Driver, KEY};

fn dingtalk() -> Value {
    json!({"type": "dingtalk", "corp_id": "dingcorp", "app_key": "dingappkey",
           "app_secret": "app-secret", "login_base": "https://login.example.test"})
}

fn oidc() -> Value {
    json!({"type": "oidc", "issuer": "https://idp.example.org", "client_id": "app",
           "client_secret": "s3cret"})
}

/// Built-in users (the default) with a QR provider, OIDC, CAS and WeChat beside them; a JWT
/// method (nothing to click) and a switched-off OIDC; a tenant that switches DingTalk off and
/// adds Feishu.
pub fn config() -> Value {
    let mut off_dingtalk = dingtalk();
    off_dingtalk["enabled"] = json!(false);
    let mut old_sso = oidc();
    old_sso["enabled"] = json!(false);
    let mut okta = oidc();
    okta["label"] = json!("Okta");
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "default_method": "local",
        "public_paths": ["/static/"],
        "login_page_title": {"en": "Acme Analytics", "zh": "Acme 数据分析"},
        "login_page_logo": "/static/acme.svg",
        "methods": {
            "local": crate::local::config()["methods"]["local"],
            "dingtalk": dingtalk(),
            "okta": okta,
            "cas": {"type": "cas", "server_url": "https://cas.example.org/cas",
                    "label": {"en": "University CAS", "zh": "统一身份认证"}},
            "wechat": {"type": "wechat", "open_app_id": "wxo", "open_app_secret": "s",
                       "allowed_users": ["u"]},
            "portal": {"type": "jwt", "param": "jwtParam",
                       "verify": {"alg": "HS256", "secret": crate::common::SEED_SECRET}},
            "old-sso": old_sso
        },
        "tenants": {"t1": {"id": "t-1", "name": "Tenant One", "methods": {
            "dingtalk": off_dingtalk,
            "feishu": {"type": "lark", "app_id": "cli_x", "app_secret": "s", "tenant_key": "tk",
                       "accounts_base": "https://accounts.example.test"}
        }}}
    })
}

/// A browser navigation with an `Accept-Language`.
fn get_in(d: &mut Driver, path: &str, lang: &str) -> Done {
    let mut headers = vec![
        ("accept".to_owned(), "text/html".to_owned()),
        ("accept-language".to_owned(), lang.to_owned()),
    ];
    if !d.jar.is_empty() {
        let jar: Vec<String> = d.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        headers.push(("cookie".to_owned(), jar.join("; ")));
    }
    d.send("GET", path, headers, None)
}

/// The method buttons of a page: (href, text), unescaped.
fn buttons(page: &Done) -> Vec<(String, String)> {
    let body = page.body();
    body.split("<a class=\"way\" href=\"")
        .skip(1)
        .map(|rest| {
            let (href, rest) = rest.split_once("\">").unwrap();
            let text = rest.split("</a>").next().unwrap();
            (href.replace("&amp;", "&"), text.to_owned())
        })
        .collect()
}

fn link(query: &str) -> String {
    format!("/sso/login?{query}")
}

#[test]
fn the_form_offers_the_other_enabled_methods_in_english() {
    let mut d = Driver::new(&config());
    let page = get_in(&mut d, "/login?rd=%2Fapps%2F1%3Ftab%3D2", "en-US,en;q=0.9");
    assert_eq!(page.status(), 200);
    assert_eq!(page.header("content-language").as_deref(), Some("en"));
    assert_eq!(page.header("vary").as_deref(), Some("Accept-Language"));
    let rd = "rd=%2Fapps%2F1%3Ftab%3D2";
    // In name order; not the form's own method, not the JWT method, not the switched-off one.
    assert_eq!(
        buttons(&page),
        [
            (
                link(&format!("activeAuth=cas&{rd}")),
                "Sign in with University CAS".into()
            ),
            (
                link(&format!("activeAuth=dingtalk&{rd}&dtLoginType=qr")),
                "Sign in with DingTalk (QR code)".into()
            ),
            (
                link(&format!("activeAuth=okta&{rd}")),
                "Sign in with Okta".into()
            ),
            (
                link(&format!("activeAuth=wechat&{rd}")),
                "Sign in with WeChat (QR code)".into()
            ),
        ]
    );
    let body = page.body();
    assert!(body.contains("<html lang=\"en\">"), "{body}");
    assert!(
        body.contains("<title>Sign in · Acme Analytics</title>"),
        "{body}"
    );
    assert!(
        body.contains("<p class=\"site\">Acme Analytics</p>"),
        "{body}"
    );
    assert!(
        body.contains("<img src=\"/static/acme.svg\" alt=\"\">"),
        "{body}"
    );
    assert!(
        body.contains("<label for=\"username\">User name</label>"),
        "{body}"
    );
    assert!(
        body.contains("<h2 id=\"others\">Other ways to sign in</h2>"),
        "{body}"
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.starts_with("default-src 'none'; style-src 'sha256-"),
        "{csp}"
    );
    assert!(
        csp.contains("; img-src https://app.example.com/static/acme.svg;"),
        "{csp}"
    );
    assert!(csp.contains("form-action 'self'") && csp.contains("frame-ancestors 'self'"));
}

#[test]
fn chinese_for_zh_and_the_buttons_say_so() {
    let mut d = Driver::new(&config());
    for lang in [
        "zh-CN,zh;q=0.9,en;q=0.8",
        "zh-Hant",
        "fr, zh;q=0.5, en;q=0.4",
    ] {
        let page = get_in(&mut d, "/login?rd=%2F", lang);
        assert_eq!(
            page.header("content-language").as_deref(),
            Some("zh-CN"),
            "{lang}"
        );
        assert_eq!(page.header("vary").as_deref(), Some("Accept-Language"));
        let body = page.body();
        assert!(body.contains("<html lang=\"zh-CN\">"), "{lang}: {body}");
        assert!(
            body.contains("<title>登录 · Acme 数据分析</title>"),
            "{body}"
        );
        assert!(
            body.contains("<label for=\"username\">用户名</label>"),
            "{body}"
        );
        assert!(
            body.contains("<label for=\"password\">密码</label>"),
            "{body}"
        );
        assert!(
            body.contains("<button type=\"submit\">登录</button>"),
            "{body}"
        );
        assert!(
            body.contains("<h2 id=\"others\">其他登录方式</h2>"),
            "{body}"
        );
        let texts: Vec<String> = buttons(&page).into_iter().map(|(_, t)| t).collect();
        assert_eq!(
            texts,
            [
                "使用统一身份认证登录",
                "使用钉钉扫码登录",
                "使用 Okta 登录",
                "使用微信扫码登录"
            ]
        );
    }
    // English wins by weight, and is the default.
    for lang in ["en, zh;q=0.9", "de", ""] {
        let page = get_in(&mut d, "/login?rd=%2F", lang);
        assert_eq!(
            page.header("content-language").as_deref(),
            Some("en"),
            "{lang}"
        );
    }
}

#[test]
fn a_tenant_is_offered_its_own_methods_and_keeps_its_tenant() {
    let mut d = Driver::new(&config());
    // Selected by its id; the buttons name it by its code (the first tenant parameter).
    let page = get_in(&mut d, "/login?rd=%2Fx&tenantId=t-1", "en");
    assert_eq!(page.status(), 200);
    let got = buttons(&page);
    let hrefs: Vec<&str> = got.iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        hrefs,
        [
            "/sso/login?activeAuth=cas&rd=%2Fx&tenantCode=t1",
            "/sso/login?activeAuth=feishu&rd=%2Fx&tenantCode=t1",
            "/sso/login?activeAuth=okta&rd=%2Fx&tenantCode=t1",
            "/sso/login?activeAuth=wechat&rd=%2Fx&tenantCode=t1",
        ]
    );
    assert_eq!(got[1].1, "Sign in with Feishu (QR code)");
    // The tenant's Feishu button starts Feishu's web login for that tenant.
    let start = d.get(hrefs[1]);
    assert_eq!(start.status(), 302, "{}", start.body());
    let to = start.header("location").unwrap();
    assert!(to.starts_with("https://accounts.example.test/"), "{to}");
}

#[test]
fn a_button_starts_its_method_with_the_return_url() {
    let mut d = Driver::new(&config());
    let page = get_in(&mut d, "/login?rd=%2Freports%3Fq%3D1", "en");
    let (href, _) = buttons(&page)
        .into_iter()
        .find(|(h, _)| h.contains("activeAuth=dingtalk"))
        .unwrap();
    // DingTalk's default login is the in-app one; the button asks for the QR login.
    let start = d.get(&href);
    assert_eq!(start.status(), 302, "{}", start.body());
    let to = url::Url::parse(&start.header("location").unwrap()).unwrap();
    assert_eq!(to.host_str(), Some("login.example.test"), "{to}");
    assert_eq!(to.path(), "/oauth2/auth", "{to}");
    // Without it, a browser would get the in-app page, which only works inside DingTalk.
    let in_app = d.get("/sso/login?activeAuth=dingtalk&rd=%2F");
    assert_eq!(in_app.status(), 200);
}

#[test]
fn return_urls_stay_on_this_site() {
    let mut d = Driver::new(&config());
    for rd in [
        "https%3A%2F%2Fevil.example%2F",
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
    ] {
        let page = get_in(&mut d, &format!("/login?rd={rd}"), "en");
        for (href, _) in buttons(&page) {
            assert!(href.starts_with("/sso/login?"), "{href}");
            assert!(
                href.contains("&rd=%2F&") || href.ends_with("&rd=%2F"),
                "{rd}: {href}"
            );
        }
    }
}

#[test]
fn a_failed_attempt_is_said_in_the_pages_language_and_keeps_the_buttons() {
    let mut d = Driver::new(&config());
    let form = get_in(&mut d, "/login?rd=%2Fx&tenantCode=t1", "zh-CN");
    let state = Driver::form_state(&form);
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("username", "alice"),
            ("password", "nope"),
            ("state", &state),
        ])
        .finish();
    let jar: Vec<String> = d.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let headers = vec![
        ("accept".to_owned(), "text/html".to_owned()),
        ("accept-language".to_owned(), "zh-CN".to_owned()),
        (
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("cookie".to_owned(), jar.join("; ")),
    ];
    let again = d.send("POST", "/login", headers, Some(body.into_bytes()));
    assert_eq!(again.status(), 401);
    assert_eq!(again.header("content-language").as_deref(), Some("zh-CN"));
    let html = again.body();
    assert!(
        html.contains("<p class=\"msg\" id=\"msg\" role=\"alert\">用户名或密码错误。</p>"),
        "{html}"
    );
    assert!(html.contains("aria-describedby=\"msg\""), "{html}");
    // The buttons come from the flow: its scope (the tenant) and its return URL.
    let hrefs: Vec<String> = buttons(&again).into_iter().map(|(h, _)| h).collect();
    assert_eq!(hrefs.len(), 4, "{hrefs:?}");
    assert!(
        hrefs.iter().all(|h| h.contains("&rd=%2Fx&tenantCode=t1")),
        "{hrefs:?}"
    );
    // The default is still English.
    let form = d.get("/login?rd=%2Fx");
    let state = Driver::form_state(&form);
    let again = d.post_form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "nope"),
            ("state", &state),
        ],
    );
    assert!(again.body().contains(">Invalid user name or password.</p>"));
}

#[test]
fn the_chooser_is_the_same_page_without_the_form() {
    let mut c = config();
    c.as_object_mut().unwrap().remove("default_method");
    let mut d = Driver::new(&c);
    let page = get_in(&mut d, "/sso/login?rd=%2Fx", "zh");
    assert_eq!(page.status(), 200);
    assert_eq!(page.header("vary").as_deref(), Some("Accept-Language"));
    let body = page.body();
    assert!(body.contains("<h1>选择登录方式</h1>"), "{body}");
    assert!(!body.contains("<form"), "{body}");
    // Every enabled method, the form's and the JWT one too (the chooser always listed them).
    let texts: Vec<String> = buttons(&page).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        texts,
        [
            "使用统一身份认证登录",
            "使用钉钉扫码登录",
            "使用 local 账号密码登录",
            "使用 Okta 登录",
            "使用 portal 登录",
            "使用微信扫码登录"
        ]
    );
}

#[test]
fn title_and_logo_are_checked_at_load() {
    let cases = [
        (
            json!({"login_page_logo": "http://cdn.example.com/l.png"}),
            "login_page_logo: must be an https URL",
        ),
        (
            json!({"login_page_logo": "//evil.example/l.png"}),
            "login_page_logo: a path on this site",
        ),
        (
            json!({"login_page_logo": "data:image/png;base64,AA"}),
            "login_page_logo: must be an https URL",
        ),
        (
            json!({"login_page_title": ""}),
            "login_page_title: must not be blank",
        ),
        (
            json!({"login_page_title": {"en": "A"}}),
            "login_page_title: missing field `zh`",
        ),
        (
            json!({"login_page_titel": "A"}),
            "unknown field `login_page_titel`",
        ),
    ];
    for (extra, want) in cases {
        let mut c = config();
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        let err = sso_filter::Filter::from_json(c.to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{extra}: {err}");
    }
    let mut c = config();
    c["methods"]["okta"]["label"] = json!({"en": "Okta", "zh": "x", "ja": "y"});
    let err = sso_filter::Filter::from_json(c.to_string().as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("methods.okta.label.ja: unknown field"),
        "{err}"
    );
}

#[test]
fn without_a_title_or_logo_nothing_is_loaded() {
    let mut c = config();
    let m = c.as_object_mut().unwrap();
    m.remove("login_page_title");
    m.remove("login_page_logo");
    let mut d = Driver::new(&c);
    let page = d.get("/login?rd=%2F");
    let body = page.body();
    assert!(!body.contains("<img"), "{body}");
    assert!(!body.contains("class=\"brand\""), "{body}");
    assert!(body.contains("<title>Sign in</title>"), "{body}");
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("img-src 'none'"), "{csp}");
}
