//! `type: ldap` against a scripted directory that reads the engine's BER requests and answers
//! as slapd does: the rounds, the single message for every failure, throttling, injection.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::{json, Value};
use sso_filter::http::{Exchange, StreamEnd, StreamReply};

use crate::common::{Driver, KEY};

fn config() -> Value {
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "mapping": {"default_roles": ["data viewer"]},
        "default_method": "ldap",
        "methods": {"ldap": {
            "type": "ldap", "host": "dir.test", "port": 3389,
            "bind_dn": "cn=svc,dc=example,dc=org", "bind_password": "svc-pw",
            "search_base": "ou=people,dc=example,dc=org",
            "user_filter": "(&(objectClass=inetOrgPerson)(uid={user}))",
            "attributes": {"groups": "memberOf"},
            "group_search": {"base": "ou=groups,dc=example,dc=org"},
            "max_failures": 3, "lockout_seconds": 60
        }}
    })
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    if content.len() < 0x80 {
        out.push(content.len() as u8);
    } else {
        out.push(0x82);
        out.extend((content.len() as u16).to_be_bytes());
    }
    out.extend_from_slice(content);
    out
}

fn msg(id: u8, op: Vec<u8>) -> Vec<u8> {
    let mut body = tlv(0x02, &[id]);
    body.extend(op);
    tlv(0x30, &body)
}

fn result(tag: u8, code: u8) -> Vec<u8> {
    let mut body = tlv(0x0a, &[code]);
    body.extend(tlv(0x04, b""));
    body.extend(tlv(0x04, b""));
    tlv(tag, &body)
}

fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (name, values) in attrs {
        let mut set = Vec::new();
        for v in *values {
            set.extend(tlv(0x04, v.as_bytes()));
        }
        let mut pair = tlv(0x04, name.as_bytes());
        pair.extend(tlv(0x31, &set));
        list.extend(tlv(0x30, &pair));
    }
    let mut body = tlv(0x04, dn.as_bytes());
    body.extend(tlv(0x30, &list));
    tlv(0x64, &body)
}

/// Reads one TLV: (tag, content, rest).
fn read(buf: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = buf[0];
    let (len, head) = match buf[1] {
        n if n < 0x80 => (n as usize, 2),
        0x81 => (buf[2] as usize, 3),
        0x82 => (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4),
        n => panic!("length form {n:#x}"),
    };
    (tag, &buf[head..head + len], &buf[head + len..])
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

const ALICE_DN: &str = "uid=alice,ou=people,dc=example,dc=org";

/// A directory with alice (password "alice-pw", a Chinese display name, one memberOf group)
/// and one group found by search. Counts binds; every request must be alone in its round.
fn directory(binds: Rc<RefCell<Vec<String>>>) -> crate::common::Directory {
    Box::new(move |x: &Exchange| {
        assert_eq!(
            (x.endpoint.host.as_str(), x.endpoint.port),
            ("dir.test", 3389)
        );
        let (_, body, rest) = read(&x.send);
        assert!(rest.is_empty(), "one request per round");
        let (_, id, op) = read(body);
        let id = id[0];
        let (tag, content, _) = read(op);
        let data = match tag {
            0x60 => {
                let (_, _version, r) = read(content);
                let (_, dn, r) = read(r);
                let (_, pw, _) = read(r);
                let dn = String::from_utf8(dn.to_vec()).unwrap();
                assert!(!pw.is_empty(), "an empty password must never reach a bind");
                binds.borrow_mut().push(dn.clone());
                let ok = (dn == "cn=svc,dc=example,dc=org" && pw == b"svc-pw")
                    || (dn == ALICE_DN && pw == b"alice-pw");
                msg(id, result(0x61, if ok { 0 } else { 49 }))
            }
            0x63 => {
                let (_, base, _) = read(content);
                let mut out = Vec::new();
                if base.starts_with(b"ou=groups") {
                    assert!(contains(content, ALICE_DN.as_bytes()));
                    out.extend(msg(
                        id,
                        entry(
                            "cn=analysts,ou=groups,dc=example,dc=org",
                            &[("cn", &["analysts"])],
                        ),
                    ));
                } else if contains(content, b"\x04\x05alice") {
                    out.extend(msg(
                        id,
                        entry(
                            ALICE_DN,
                            &[
                                ("uid", &["alice"]),
                                ("displayName", &["张伟"]),
                                ("mail", &["alice@example.org"]),
                                ("memberOf", &["cn=admins,ou=groups,dc=example,dc=org"]),
                            ],
                        ),
                    ));
                }
                out.extend(msg(id, result(0x65, 0)));
                out
            }
            0x42 => {
                assert!(x.close);
                Vec::new()
            }
            other => panic!("unexpected op {other:#x}"),
        };
        StreamReply {
            data,
            end: StreamEnd::Open,
        }
    })
}

fn post(d: &mut Driver, user: &str, pw: &str) -> crate::common::Done {
    let form = d.get("/login?rd=%2Fapp");
    assert_eq!(form.status(), 200, "{}", form.body());
    let state = Driver::form_state(&form);
    d.post_form(
        "/login",
        &[("username", user), ("password", pw), ("state", &state)],
    )
}

fn driver() -> (Driver, Rc<RefCell<Vec<String>>>) {
    let mut d = Driver::new(&config());
    let binds = Rc::new(RefCell::new(Vec::new()));
    d.directory = Some(directory(Rc::clone(&binds)));
    (d, binds)
}

const MESSAGE: &str = "Sign-in failed. Check your user name and password, or try again later.";

#[test]
fn login_carries_groups_and_the_chinese_name() {
    let (mut d, binds) = driver();
    let done = post(&mut d, "alice", "alice-pw");
    assert_eq!(done.status(), 303, "{}", done.body());
    assert_eq!(done.header("location").as_deref(), Some("/app"));
    // Service bind, user search, user bind, service bind, group search, unbind.
    assert_eq!(d.exchanges.len(), 6);
    assert_eq!(
        *binds.borrow(),
        [
            "cn=svc,dc=example,dc=org",
            ALICE_DN,
            "cn=svc,dc=example,dc=org"
        ]
    );
    let fwd = d.get("/app");
    assert_eq!(fwd.set("x-sso-login").as_deref(), Some("alice"));
    assert_eq!(
        fwd.set("x-sso-name").as_deref(),
        Some("UTF-8''%E5%BC%A0%E4%BC%9F")
    );
    assert_eq!(fwd.set("x-sso-email").as_deref(), Some("alice@example.org"));
    let groups = fwd.set("x-sso-groups").unwrap();
    assert!(
        groups.contains("admins") && groups.contains("analysts"),
        "{groups}"
    );
    assert_eq!(fwd.set("x-sso-method").as_deref(), Some("ldap"));
    assert_eq!(d.count("sso_login_success.ldap"), 1);
}

#[test]
fn every_failure_is_one_message_and_guesses_are_throttled() {
    let (mut d, _) = driver();
    let wrong = post(&mut d, "alice", "nope");
    assert_eq!(wrong.status(), 401);
    assert!(wrong.body().contains(MESSAGE));
    let unknown = post(&mut d, "mallory", "x");
    assert_eq!(unknown.status(), 401);
    assert!(unknown.body().contains(MESSAGE));
    // The injection is one literal value: no entry, same message.
    let injected = post(&mut d, "*)(uid=*", "x");
    assert_eq!(injected.status(), 401);
    assert!(injected.body().contains(MESSAGE));
    // Three guesses for alice lock her out, even with the right password.
    post(&mut d, "alice", "nope");
    post(&mut d, "alice", "nope");
    let before = d.exchanges.len();
    let locked = post(&mut d, "alice", "alice-pw");
    assert_eq!(locked.status(), 429, "{}", locked.body());
    assert_eq!(
        d.exchanges.len(),
        before,
        "a locked-out user never reaches the directory"
    );
    d.now += 61;
    assert_eq!(post(&mut d, "alice", "alice-pw").status(), 303);
}

#[test]
fn empty_password_never_binds() {
    let (mut d, binds) = driver();
    let done = post(&mut d, "alice", "");
    assert_eq!(done.status(), 401);
    assert!(done.body().contains(MESSAGE));
    assert!(d.exchanges.is_empty());
    assert!(binds.borrow().is_empty());
}

fn failing(reply: impl Fn(u32) -> StreamReply + 'static) -> Driver {
    let mut d = Driver::new(&config());
    let mut round = 0;
    d.directory = Some(Box::new(move |_: &Exchange| {
        round += 1;
        reply(round)
    }));
    d
}

#[test]
fn directory_down_malformed_truncated_oversized_are_the_same_message() {
    let bind_ok = msg(1, result(0x61, 0));
    type Reply = Box<dyn Fn(u32) -> StreamReply>;
    let cases: Vec<(&str, Reply)> = vec![
        (
            "down",
            Box::new(|_| StreamReply {
                data: vec![],
                end: StreamEnd::Failed,
            }),
        ),
        (
            "closed",
            Box::new(|_| StreamReply {
                data: vec![],
                end: StreamEnd::PeerClosed,
            }),
        ),
        (
            "garbage",
            Box::new(|_| StreamReply {
                data: b"HTTP/1.1 400\r\n".to_vec(),
                end: StreamEnd::Open,
            }),
        ),
        (
            "truncated",
            Box::new(move |_| StreamReply {
                data: bind_ok[..5].to_vec(),
                end: StreamEnd::PeerClosed,
            }),
        ),
        (
            "oversized",
            Box::new(|_| StreamReply {
                data: vec![0x30, 0x84, 0x01, 0, 0, 0],
                end: StreamEnd::Open,
            }),
        ),
        (
            "wrong id",
            Box::new(|_| StreamReply {
                data: msg(9, result(0x61, 0)),
                end: StreamEnd::Open,
            }),
        ),
    ];
    for (name, reply) in cases {
        let mut d = failing(reply);
        let done = post(&mut d, "alice", "alice-pw");
        assert_eq!(done.status(), 401, "{name}: {}", done.body());
        assert!(done.body().contains(MESSAGE), "{name}");
        assert!(d.exchanges.len() <= 3, "{name}: {}", d.exchanges.len());
    }
}

#[test]
fn a_reply_in_pieces_is_read_over_several_rounds() {
    let mut whole = msg(1, result(0x61, 0));
    let mut d = Driver::new(&config());
    let mut round = 0;
    d.directory = Some(Box::new(move |x: &Exchange| {
        round += 1;
        match round {
            1 => StreamReply {
                data: whole.drain(..3).collect(),
                end: StreamEnd::Open,
            },
            2 => {
                assert!(x.send.is_empty() && x.read_at_least >= 1);
                StreamReply {
                    data: std::mem::take(&mut whole),
                    end: StreamEnd::Open,
                }
            }
            _ => StreamReply {
                data: vec![],
                end: StreamEnd::Failed,
            },
        }
    }));
    let done = post(&mut d, "alice", "alice-pw");
    assert_eq!(done.status(), 401);
    // bind (3 bytes), the rest of the bind reply, then the search failed.
    assert_eq!(d.exchanges.len(), 3);
    assert!(d.exchanges[1].send.is_empty());
}

#[test]
fn configuration_errors_name_the_field() {
    let bad = |patch: Value| {
        let mut c = config();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c["methods"]["ldap"].as_object_mut().unwrap().remove(k);
            } else {
                c["methods"]["ldap"][k] = v.clone();
            }
        }
        sso_filter::Filter::from_json(c.to_string().as_bytes())
            .unwrap_err()
            .to_string()
    };
    assert!(bad(json!({"user_filter": "(uid={user}"})).contains("methods.ldap.user_filter"));
    assert!(bad(json!({"user_filter": "(uid=x)"})).contains("{user}"));
    assert!(bad(json!({"bind_password": null})).contains("methods.ldap.bind_password"));
    assert!(bad(json!({"protocol": "ftp"})).contains("methods.ldap.protocol"));
    assert!(bad(json!({"user_dn_template": "uid={user},dc=x"})).contains("user_dn_template"));
    assert!(bad(json!({"search_base": null})).contains("methods.ldap.search_base"));
}
