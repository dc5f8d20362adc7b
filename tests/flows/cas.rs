//! CAS 2.0 / 3.0 through the engine against a scripted CAS server that checks every
//! validation request (the real server, django-mama-cas, is exercised end to end).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde_json::{json, Value};
use sso_filter::http::Callout;
use sso_filter::CalloutResponse;

use crate::common::{encode, Done, Driver, KEY};

const TICKET: &str = "ST-1-aBcDeFgHiJkLmNoPqRsTuVwXyZ012345";

fn config(extra: Value) -> Value {
    let mut method = json!({"type": "cas", "server_url": "https://cas.example.org/cas",
        "logout_sources": ["198.51.100.0/24"],
        "mapping": {"login": "user", "email": "mail", "groups": "memberOf"}});
    if let (Some(m), Some(e)) = (method.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "methods": {"cas": method}
    })
}

fn success(user: &str) -> String {
    format!(
        r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>{user}</cas:user>
    <cas:attributes>
      <cas:authenticationDate>2026-01-01T00:00:00Z</cas:authenticationDate>
      <cas:mail>{user}@example.org</cas:mail>
      <cas:memberOf>staff</cas:memberOf>
      <cas:memberOf>faculty</cas:memberOf>
      <cas:displayName>张三</cas:displayName>
    </cas:attributes>
  </cas:authenticationSuccess>
</cas:serviceResponse>"#
    )
}

fn answer(body: &str) -> CalloutResponse {
    CalloutResponse {
        status: Some(200),
        headers: vec![("content-type".into(), "text/xml".into())],
        body: body.as_bytes().to_vec(),
    }
}

/// A CAS server that accepts `TICKET` once, for the service it was issued for.
fn server(endpoint: &'static str, body: Rc<RefCell<String>>) -> crate::common::Idp {
    let used = Rc::new(RefCell::new(false));
    Box::new(move |c: &Callout| {
        let url = url::Url::parse(&c.url).unwrap();
        assert_eq!(
            format!(
                "{}://{}{}",
                url.scheme(),
                url.host_str().unwrap(),
                url.path()
            ),
            format!("https://cas.example.org/cas{endpoint}")
        );
        assert_eq!(c.upstream, "sso_cas_example_org_443");
        assert_eq!(c.method, "GET");
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert!(q["service"].starts_with("https://app.example.com/sso/callback/cas?state="));
        if q["ticket"] != TICKET || *used.borrow() {
            return answer(&format!(
                r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationFailure code="INVALID_TICKET">Ticket {} not recognized</cas:authenticationFailure></cas:serviceResponse>"#,
                q["ticket"]
            ));
        }
        *used.borrow_mut() = true;
        answer(&body.borrow())
    })
}

/// Starts a login from a protected page and returns the `service` sent to CAS.
fn begin(d: &mut Driver) -> (url::Url, HashMap<String, String>) {
    let first = d.get("/reports?id=7");
    let start = d.get(&first.header("location").unwrap());
    assert_eq!(start.status(), 302, "{}", start.body());
    let login = url::Url::parse(&start.header("location").unwrap()).unwrap();
    assert_eq!(login.path(), "/cas/login");
    let q: HashMap<String, String> = login.query_pairs().into_owned().collect();
    (url::Url::parse(&q["service"]).unwrap(), q)
}

/// CAS sends the browser back to the service with the ticket.
fn back(d: &mut Driver, service: &url::Url, ticket: &str) -> Done {
    let path = format!(
        "{}?{}&ticket={}",
        service.path(),
        service.query().unwrap(),
        encode(ticket)
    );
    d.get(&path)
}

fn slo(d: &mut Driver, service: &url::Url, ticket: &str) -> Done {
    let xml = format!(
        r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="LR-1" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><saml:NameID xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">@NOT_USED@</saml:NameID><samlp:SessionIndex>{ticket}</samlp:SessionIndex></samlp:LogoutRequest>"#
    );
    let body = format!("logoutRequest={}", encode(&xml));
    let path = format!("{}?{}", service.path(), service.query().unwrap());
    // From the CAS server's address (logout_sources).
    let user = d.client;
    d.client = "198.51.100.7".parse().ok();
    let done = d.send(
        "POST",
        &path,
        vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        )],
        Some(body.into_bytes()),
    );
    d.client = user;
    done
}

#[test]
fn cas3_login_maps_attributes_and_logs_out_at_the_server() {
    let mut d = Driver::new(&config(json!({})));
    d.idp = Some(server(
        "/p3/serviceValidate",
        Rc::new(RefCell::new(success("jdoe"))),
    ));
    let (service, q) = begin(&mut d);
    assert!(!q.contains_key("renew") && !q.contains_key("gateway"));
    let done = back(&mut d, &service, TICKET);
    assert_eq!(done.status(), 302, "{}", done.body());
    assert_eq!(done.header("location").as_deref(), Some("/reports?id=7"));
    assert!(!d.jar.keys().any(|k| k.contains("_flow_")));
    let fwd = d.get("/reports?id=7");
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("jdoe"));
    assert_eq!(fwd.set("x-sso-email").as_deref(), Some("jdoe@example.org"));
    assert_eq!(fwd.set("x-sso-groups").as_deref(), Some("staff,faculty"));
    assert_eq!(fwd.set("x-sso-method").as_deref(), Some("cas"));
    let attrs: Value = serde_json::from_str(&fwd.set("x-sso-attributes").unwrap()).unwrap();
    assert_eq!(attrs["displayName"], "张三");
    assert!(attrs.get("authenticationDate").is_none());
    assert_eq!(d.count("sso_login_success.cas"), 1);

    let out = d.get("/sso/logout");
    let loc = url::Url::parse(&out.header("location").unwrap()).unwrap();
    assert_eq!(loc.path(), "/cas/logout");
    let q: HashMap<String, String> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["service"], "https://app.example.com/?activeAuth=cas");
    assert!(!d.jar.contains_key("sso_session"));
}

#[test]
fn cas2_uses_service_validate_and_logout_url() {
    let mut d = Driver::new(&config(json!({"protocol": "2.0", "renew": true})));
    d.idp = Some(server(
        "/serviceValidate",
        Rc::new(RefCell::new(success("jdoe"))),
    ));
    let (service, q) = begin(&mut d);
    assert_eq!(q["renew"], "true");
    assert_eq!(back(&mut d, &service, TICKET).status(), 302);
    assert!(d.callouts[0].url.contains("renew=true"));
    assert_eq!(
        d.get("/reports").set("x-sso-login").as_deref(),
        Some("jdoe")
    );
    let out = d.get("/sso/logout");
    assert!(out
        .header("location")
        .unwrap()
        .starts_with("https://cas.example.org/cas/logout?url="));
}

#[test]
fn service_comes_from_base_url_not_host() {
    let mut d = Driver::new(&config(json!({})));
    let start = d.send(
        "GET",
        "/sso/login?rd=%2F",
        vec![
            ("host".into(), "evil.example".into()),
            ("x-forwarded-host".into(), "evil.example".into()),
            ("accept".into(), "text/html".into()),
        ],
        None,
    );
    let login = url::Url::parse(&start.header("location").unwrap()).unwrap();
    let service = login
        .query_pairs()
        .find(|(k, _)| k == "service")
        .unwrap()
        .1
        .into_owned();
    assert!(
        service.starts_with("https://app.example.com/sso/callback/cas?state="),
        "{service}"
    );
}

#[test]
fn bad_replayed_and_foreign_tickets_are_refused() {
    let body = Rc::new(RefCell::new(success("jdoe")));
    // Unknown ticket: CAS says INVALID_TICKET.
    let mut d = Driver::new(&config(json!({})));
    d.idp = Some(server("/p3/serviceValidate", Rc::clone(&body)));
    let (service, _) = begin(&mut d);
    let done = back(&mut d, &service, "ST-9-unknown");
    assert_eq!(done.status(), 401);
    assert!(!d.jar.contains_key("sso_session"));
    assert!(!d.jar.keys().any(|k| k.contains("_flow_")), "flow used up");
    assert_eq!(d.count("sso_login_failure.cas.refused"), 1);

    // Replay: the first use lands; the same callback again finds no flow; a fresh flow with
    // the used ticket is refused by CAS.
    let mut d = Driver::new(&config(json!({})));
    d.idp = Some(server("/p3/serviceValidate", Rc::clone(&body)));
    let (service, _) = begin(&mut d);
    assert_eq!(back(&mut d, &service, TICKET).status(), 302);
    d.jar.clear();
    assert_eq!(back(&mut d, &service, TICKET).status(), 401);
    let (service2, _) = begin(&mut d);
    assert_eq!(back(&mut d, &service2, TICKET).status(), 401);
    assert!(!d.jar.contains_key("sso_session"));

    // Malformed tickets never reach CAS.
    for bad in [
        "ST-1&service=https://evil",
        "PT-1-abc",
        "ST-1 x",
        &format!("ST-{}", "a".repeat(300)),
    ] {
        let mut d = Driver::new(&config(json!({})));
        let (service, _) = begin(&mut d);
        let done = back(&mut d, &service, bad);
        assert_eq!(done.status(), 400, "{bad}");
        assert!(d.callouts.is_empty());
    }

    // A callback without this browser's flow (another browser's service URL).
    let mut d = Driver::new(&config(json!({})));
    let (service, _) = begin(&mut d);
    let mut other = Driver::new(&config(json!({})));
    assert_eq!(back(&mut other, &service, TICKET).status(), 401);
    let _ = d;
}

#[test]
fn malformed_validation_answers_fail_closed() {
    let cases: [(&str, u16); 6] = [
        ("<html>CAS is down</html>", 502),
        (
            r#"<!DOCTYPE a [<!ENTITY x "y">]><cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"/>"#,
            502,
        ),
        (
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>admin<!---->.evil</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#,
            502,
        ),
        (
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>a</cas:user><cas:user>admin</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#,
            502,
        ),
        (
            r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas"><cas:authenticationSuccess><cas:user>a</cas:user></cas:authenticationSuccess><cas:authenticationFailure code="INVALID_TICKET"/></cas:serviceResponse>"#,
            401,
        ),
        (
            r#"<cas:serviceResponse xmlns:cas="http://evil.example/cas"><cas:authenticationSuccess><cas:user>admin</cas:user></cas:authenticationSuccess></cas:serviceResponse>"#,
            502,
        ),
    ];
    for (xml, status) in cases {
        let mut d = Driver::new(&config(json!({})));
        d.idp = Some(server(
            "/p3/serviceValidate",
            Rc::new(RefCell::new(xml.to_owned())),
        ));
        let (service, _) = begin(&mut d);
        let done = back(&mut d, &service, TICKET);
        assert_eq!(done.status(), status, "{xml}");
        assert!(!d.jar.contains_key("sso_session"), "{xml}");
    }
    // Too large, unreachable, and Envoy's 504 past the deadline (a timeout, as for every
    // other method).
    for (resp, status) in [
        (
            CalloutResponse {
                status: Some(200),
                headers: vec![],
                body: vec![b' '; 70 * 1024],
            },
            502,
        ),
        (CalloutResponse::default(), 502),
        (
            CalloutResponse {
                status: Some(504),
                headers: vec![],
                body: b"upstream request timeout".to_vec(),
            },
            504,
        ),
    ] {
        let mut d = Driver::new(&config(json!({})));
        let resp = RefCell::new(Some(resp));
        d.idp = Some(Box::new(move |_c: &Callout| {
            resp.borrow_mut().take().unwrap()
        }));
        let (service, _) = begin(&mut d);
        assert_eq!(back(&mut d, &service, TICKET).status(), status);
    }
}

#[test]
fn single_logout_ends_the_session_on_the_next_request() {
    let mut d = Driver::new(&config(json!({})));
    d.idp = Some(server(
        "/p3/serviceValidate",
        Rc::new(RefCell::new(success("jdoe"))),
    ));
    let (service, _) = begin(&mut d);
    assert_eq!(back(&mut d, &service, TICKET).status(), 302);
    // Twice, so the second is served from the per-worker memo.
    assert_eq!(d.get("/a").set("x-sso-login").as_deref(), Some("jdoe"));
    assert_eq!(d.get("/a").set("x-sso-login").as_deref(), Some("jdoe"));
    let jar = d.jar.clone();
    d.jar.clear();
    // Another ticket's logout changes nothing.
    assert_eq!(slo(&mut d, &service, "ST-2-other").status(), 200);
    d.jar = jar.clone();
    assert_eq!(d.get("/a").set("x-sso-login").as_deref(), Some("jdoe"));
    d.jar.clear();
    let done = slo(&mut d, &service, TICKET);
    assert_eq!(done.status(), 200);
    assert_eq!(d.count("sso_slo.cas"), 2);
    d.jar = jar;
    let after = d.get("/a");
    assert_eq!(after.status(), 302, "session ended");
    assert!(after.header("location").unwrap().starts_with("/sso/login"));
    assert_eq!(d.api("/sso/userinfo", &[]).status(), 401);

    // Malformed logout requests are refused and change nothing.
    let mut d = Driver::new(&config(json!({})));
    d.client = "198.51.100.7".parse().ok();
    for body in [
        "logoutRequest=%3Cx%2F%3E".to_owned(),
        "nothing=1".to_owned(),
        format!(
            "logoutRequest={}",
            encode("<!DOCTYPE x><samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"><samlp:SessionIndex>ST-1-a</samlp:SessionIndex></samlp:LogoutRequest>")
        ),
    ] {
        let done = d.send(
            "POST",
            "/sso/callback/cas",
            vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            )],
            Some(body.clone().into_bytes()),
        );
        assert_eq!(done.status(), 400, "{body}");
    }
}

#[test]
fn single_logout_only_from_the_configured_sources_and_it_cannot_be_flooded() {
    let mut d = Driver::new(&config(json!({})));
    d.idp = Some(server(
        "/p3/serviceValidate",
        Rc::new(RefCell::new(success("jdoe"))),
    ));
    let (service, _) = begin(&mut d);
    assert_eq!(back(&mut d, &service, TICKET).status(), 302);
    let jar = d.jar.clone();
    d.jar.clear();
    let path = format!("{}?{}", service.path(), service.query().unwrap());
    let form = || {
        vec![(
            "content-type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )]
    };
    // Anyone else (and a client whose address the host does not know) is refused before the
    // body is read, so nothing is written.
    for client in [Some("203.0.113.9"), None] {
        d.client = client.and_then(|c| c.parse().ok());
        for i in 0..2000 {
            let xml = format!(
                r#"<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="LR-{i}" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><samlp:SessionIndex>{TICKET}</samlp:SessionIndex></samlp:LogoutRequest>"#
            );
            let body = format!("logoutRequest={}", encode(&xml));
            let done = d.send("POST", &path, form(), Some(body.into_bytes()));
            assert_eq!(done.status(), 403);
        }
    }
    assert_eq!(d.count("sso_deny.forbidden"), 4000);
    assert!(!format!("{:?}", d.cache).contains("sso:st:out"));
    d.client = "192.0.2.10".parse().ok();
    d.jar = jar;
    assert_eq!(d.get("/a").set("x-sso-login").as_deref(), Some("jdoe"));
}

#[test]
fn single_logout_can_be_turned_off() {
    let mut d = Driver::new(&config(json!({"single_logout": false})));
    d.idp = Some(server(
        "/p3/serviceValidate",
        Rc::new(RefCell::new(success("jdoe"))),
    ));
    let (service, _) = begin(&mut d);
    assert_eq!(back(&mut d, &service, TICKET).status(), 302);
    let jar = d.jar.clone();
    d.jar.clear();
    assert_eq!(slo(&mut d, &service, TICKET).status(), 400);
    d.jar = jar;
    assert_eq!(d.get("/a").set("x-sso-login").as_deref(), Some("jdoe"));
}

#[test]
fn gateway_without_a_cas_session_is_refused() {
    let mut d = Driver::new(&config(json!({"gateway": true})));
    let (service, q) = begin(&mut d);
    assert_eq!(q["gateway"], "true");
    let path = format!("{}?{}", service.path(), service.query().unwrap());
    let done = d.get(&path);
    assert_eq!(done.status(), 401);
    assert!(d.callouts.is_empty());
}

#[test]
fn configuration_is_checked() {
    for (extra, needle) in [
        (json!({"protocol": "1.0"}), "protocol"),
        (json!({"server_url": "cas.example.org"}), "server_url"),
        (json!({"renew": true, "gateway": true}), "gateway"),
        (json!({"servr_url": "x"}), "servr_url"),
        (json!({"callback_path": "no-slash"}), "callback_path"),
    ] {
        let e = sso_filter::Config::from_json(config(extra.clone()).to_string().as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("methods.cas"), "{extra}: {e}");
        assert!(e.contains(needle), "{extra}: {e}");
    }
}

#[test]
fn single_logout_without_sources_is_a_warning_at_load() {
    let mut cfg = config(json!({}));
    cfg["methods"]["cas"]
        .as_object_mut()
        .unwrap()
        .remove("logout_sources");
    let filter = sso_filter::Filter::from_json(cfg.to_string().as_bytes()).unwrap();
    let warnings = filter.config().warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("methods.cas.logout_sources: empty"));
    // With sources, or with single logout off, nothing to say.
    let filter = sso_filter::Filter::from_json(config(json!({})).to_string().as_bytes()).unwrap();
    assert!(filter.config().warnings().is_empty());
    let off = config(json!({"single_logout": false}));
    let mut off = off;
    off["methods"]["cas"]
        .as_object_mut()
        .unwrap()
        .remove("logout_sources");
    let filter = sso_filter::Filter::from_json(off.to_string().as_bytes()).unwrap();
    assert!(filter.config().warnings().is_empty());
}

/// The seeds' "reload user" with CAS (issue 17 item 2): `reloadUser=true` on a navigation, or
/// every navigation with `reload_user` once the session is 10 s old, checks the CAS session
/// with `gateway=true` (never `renew`); coming back without a ticket ends the local session.
/// API calls are never reloaded.
#[test]
fn reload_user_checks_the_cas_session_with_gateway() {
    let mut d = Driver::new(&config(json!({"renew": true})));
    d.idp = Some(server(
        "/p3/serviceValidate",
        Rc::new(RefCell::new(success("jdoe"))),
    ));
    let (service, _) = begin(&mut d);
    // A renew login, as configured.
    assert_eq!(back(&mut d, &service, TICKET).status(), 302);
    assert!(d.jar.contains_key("sso_session"));
    let reload = d.get("/reports?id=7&reloadUser=true");
    assert_eq!(reload.status(), 302, "{}", reload.body());
    let to = url::Url::parse(&reload.header("location").unwrap()).unwrap();
    assert_eq!(to.path(), "/cas/login");
    let q: HashMap<String, String> = to.query_pairs().into_owned().collect();
    assert_eq!(q.get("gateway").map(String::as_str), Some("true"));
    assert!(!q.contains_key("renew"));
    // CAS has no session for the user any more: back without a ticket, the local one ends.
    let service = url::Url::parse(&q["service"]).unwrap();
    let path = format!("{}?{}", service.path(), service.query().unwrap());
    let gone = d.get(&path);
    assert_eq!(gone.status(), 401, "{}", gone.body());
    assert!(!d.jar.contains_key("sso_session"));

    // reload_user: every navigation once the session is 10 s old; not API calls.
    let mut r = Driver::new(&config(json!({"reload_user": true})));
    r.idp = Some(server(
        "/p3/serviceValidate",
        Rc::new(RefCell::new(success("jdoe"))),
    ));
    let (service, _) = begin(&mut r);
    assert_eq!(back(&mut r, &service, TICKET).status(), 302);
    assert_eq!(
        r.get("/reports").set("x-sso-login").as_deref(),
        Some("jdoe")
    );
    r.now += 11;
    assert_eq!(
        r.api("/reports", &[]).set("x-sso-login").as_deref(),
        Some("jdoe")
    );
    let due = r.get("/reports");
    assert_eq!(due.status(), 302);
    assert!(due.header("location").unwrap().contains("gateway=true"));
}
