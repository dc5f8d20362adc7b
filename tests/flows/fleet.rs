//! The fleet store (issue 16) through the engine: two replicas (two drivers, each with its own
//! process cache) share one etcd, modelled here after etcd 3.4's JSON gateway (`FakeEtcd`: lease
//! grants, transactions with `CREATE` compares, puts with leases, ranges with `count_only` and
//! `range_end`, deletes). The end-to-end suite runs the same scenarios against a real etcd
//! (tests/e2e/test_fleet.py); here they are quick, deterministic and recorded in the goldens.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use base64::Engine as _;
use serde_json::{json, Value};
use sso_filter::http::Callout;
use sso_filter::CalloutResponse;

use crate::common::{Driver, KEY, SEED_SECRET};
use crate::local::login;

const ETCD: &str = "http://etcd.internal:2379";

/// etcd as its gateway answers, for what the filter asks.
#[derive(Default)]
struct FakeEtcd {
    /// key -> lease id.
    kv: BTreeMap<Vec<u8>, String>,
    leases: u64,
    up: bool,
    calls: Vec<String>,
}

fn b64d(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_default())
        .unwrap()
}

impl FakeEtcd {
    fn range(&self, op: &Value) -> Vec<Vec<u8>> {
        let key = b64d(&op["key"]);
        match op.get("range_end") {
            Some(end) => {
                let end = b64d(end);
                self.kv.range(key..end).map(|(k, _)| k.clone()).collect()
            }
            None => self
                .kv
                .get_key_value(&key)
                .map(|(k, _)| k.clone())
                .into_iter()
                .collect(),
        }
    }

    fn apply(&mut self, op: &Value) -> Value {
        if let Some(put) = op.get("request_put") {
            let lease = put["lease"].as_str().unwrap_or("0").to_owned();
            assert_ne!(lease, "0", "every key the filter writes has a lease: {put}");
            self.kv.insert(b64d(&put["key"]), lease);
            json!({"response_put": {"header": {}}})
        } else if let Some(range) = op.get("request_range") {
            let n = self.range(range).len();
            // The gateway leaves out a zero count.
            if n == 0 {
                json!({"response_range": {"header": {}}})
            } else {
                json!({"response_range": {"header": {}, "count": n.to_string()}})
            }
        } else if let Some(del) = op.get("request_delete_range") {
            for k in self.range(del) {
                self.kv.remove(&k);
            }
            json!({"response_delete_range": {"header": {}}})
        } else {
            panic!("unknown op {op}")
        }
    }

    fn answer(&mut self, c: &Callout) -> CalloutResponse {
        let path = c.url.strip_prefix(ETCD).unwrap().to_owned();
        self.calls.push(path.clone());
        if !self.up {
            return CalloutResponse::default();
        }
        let body: Value = serde_json::from_slice(&c.body).unwrap();
        let out = match path.as_str() {
            "/v3/lease/grant" => {
                self.leases += 1;
                json!({"header": {}, "ID": (7_000 + self.leases).to_string(), "TTL": body["TTL"]})
            }
            "/v3/kv/txn" => {
                let ok = body["compare"].as_array().is_none_or(|cs| {
                    cs.iter().all(|c| {
                        assert_eq!(
                            (&c["target"], &c["result"]),
                            (&json!("CREATE"), &json!("EQUAL"))
                        );
                        !self.kv.contains_key(&b64d(&c["key"]))
                    })
                });
                let branch = if ok { "success" } else { "failure" };
                let ops = body[branch].as_array().cloned().unwrap_or_default();
                let responses: Vec<Value> = ops.iter().map(|op| self.apply(op)).collect();
                if ok {
                    json!({"header": {}, "succeeded": true, "responses": responses})
                } else {
                    json!({"header": {}, "responses": responses})
                }
            }
            other => panic!("unexpected etcd call {other}"),
        };
        CalloutResponse {
            status: Some(200),
            headers: vec![("content-type".into(), "application/json".into())],
            body: out.to_string().into_bytes(),
        }
    }

    fn keys(&self, list: &str) -> usize {
        let prefix = format!("sso-filter/{list}/");
        self.kv
            .keys()
            .filter(|k| k.starts_with(prefix.as_bytes()))
            .count()
    }
}

/// The built-in users of `local.rs` (alice, three failures allowed), a one-time JWT method and
/// a CAS method whose logout posts come from the drivers' address, with the etcd store.
fn config() -> Value {
    let mut cfg = crate::local::config();
    cfg["store"] = json!({"type": "etcd", "url": ETCD});
    cfg["methods"]["once"] = json!({"type": "jwt", "param": "jwtParam", "one_time": true,
                                    "verify": {"alg": "HS256", "secret": SEED_SECRET},
                                    "mapping": {"login": "sub"}});
    cfg["methods"]["cas"] = json!({"type": "cas", "server_url": "https://cas.example.com/cas",
                                   "logout_sources": ["192.0.2.0/24"]});
    cfg
}

/// Two replicas of one configuration and one etcd.
fn fleet() -> (Driver, Driver, Rc<RefCell<FakeEtcd>>) {
    let etcd = Rc::new(RefCell::new(FakeEtcd {
        up: true,
        ..FakeEtcd::default()
    }));
    let cfg = config();
    let replica = || {
        let mut d = Driver::new(&cfg);
        let e = Rc::clone(&etcd);
        d.idp = Some(Box::new(move |c: &Callout| e.borrow_mut().answer(c)));
        d
    };
    let (a, mut b) = (replica(), replica());
    // Each replica draws its own randomness (flow ids, failure keys); the drivers' counters
    // would otherwise give both the same sequence.
    sso_filter::random::Random::fill(&mut b.rng, &mut [0u8; 4096]).unwrap();
    (a, b, etcd)
}

fn hs256(claims: &Value) -> String {
    use hmac::Mac as _;
    let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let signing = format!(
        "{}.{}",
        enc(br#"{"alg":"HS256","typ":"JWT"}"#),
        enc(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SEED_SECRET.as_bytes()).unwrap();
    mac.update(signing.as_bytes());
    format!("{signing}.{}", enc(&mac.finalize().into_bytes()))
}

#[test]
fn a_one_time_token_is_used_once_across_replicas() {
    let (mut a, mut b, etcd) = fleet();
    let token = hs256(&json!({"sub": "dave", "jti": "j-1", "exp": a.now + 600}));
    let url = format!("/app?activeAuth=once&jwtParam={token}");
    let first = a.api(&url, &[]);
    assert_eq!(first.status(), 302, "{}", first.body());
    assert!(a.jar.contains_key("sso_session"));
    // One lease for the window, one transaction.
    assert_eq!(etcd.borrow().calls, ["/v3/lease/grant", "/v3/kv/txn"]);
    assert_eq!(etcd.borrow().keys("once"), 1);
    let again = b.api(&url, &[]);
    assert_eq!(again.status(), 401, "{}", again.body());
    assert!(again.body().contains("invalid_token"));
    assert!(!b.jar.contains_key("sso_session"));
    assert_eq!(b.count("sso_fleet.replay"), 1);
    // The same token again on A: refused by A's own list, without asking etcd.
    let calls = etcd.borrow().calls.len();
    assert_eq!(a.api(&url, &[]).status(), 401);
    assert_eq!(etcd.borrow().calls.len(), calls);
}

#[test]
fn a_replayed_login_form_on_another_replica_is_refused() {
    let (mut a, mut b, etcd) = fleet();
    let form = a.get("/login");
    let state = Driver::form_state(&form);
    let post = [
        ("username", "alice"),
        ("password", "alice-pw"),
        ("state", state.as_str()),
    ];
    let landed = a.post_form("/login", &post);
    assert_eq!(landed.status(), 303, "{}", landed.body());
    assert_eq!(etcd.borrow().keys("flow"), 1);
    // The same post (and the browser's binding cookie) on B.
    b.jar = a.jar.clone();
    b.jar.remove("sso_session");
    let replay = b.post_form("/login", &post);
    assert_eq!(replay.status(), 401, "{}", replay.body());
    assert!(!b.jar.contains_key("sso_session"));
    assert_eq!(b.count("sso_fleet.replay"), 1);
}

#[test]
fn a_logout_on_one_replica_ends_the_session_on_the_other() {
    let (mut a, mut b, etcd) = fleet();
    // A CAS session (a ticket digest in it), as the CAS login seals it.
    let ring = sso_filter::session::KeyRing::new(&[KEY.to_owned()]).unwrap();
    let sid = sso_filter::methods::cas::ticket_id("ST-1-abc");
    let payload = json!({"v": 1, "id": {"login": "jdoe", "method": "cas"}, "iat": a.now,
                         "exp": a.now + 3600, "sid": sid});
    let sealed = ring
        .seal(
            "sso_session",
            payload.to_string().as_bytes(),
            &mut sso_filter::random::SystemRandom,
        )
        .unwrap();
    b.jar.insert("sso_session".into(), sealed);
    assert_eq!(
        b.api("/app", &[]).set("x-sso-login").as_deref(),
        Some("jdoe")
    );
    assert_eq!(etcd.borrow().calls, ["/v3/kv/txn"], "a read needs no lease");
    // The CAS server's logout reaches A.
    let xml = "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
               ID=\"LR-1\" Version=\"2.0\" IssueInstant=\"2026-01-01T00:00:00Z\">\
               <samlp:SessionIndex>ST-1-abc</samlp:SessionIndex></samlp:LogoutRequest>";
    let out = a.post_form("/sso/callback/cas", &[("logoutRequest", xml)]);
    assert_eq!(out.status(), 200, "{}", out.body());
    assert_eq!(etcd.borrow().keys("out"), 1);
    // B's next request: no session.
    let gone = b.api("/app", &[]);
    assert_eq!(gone.status(), 401, "{}", gone.body());
    assert_eq!(b.count("sso_fleet.logged_out"), 1);
    // B remembers: the next one does not ask etcd.
    let calls = etcd.borrow().calls.len();
    assert_eq!(b.api("/app", &[]).status(), 401);
    assert_eq!(etcd.borrow().calls.len(), calls);
}

#[test]
fn failed_passwords_on_both_replicas_count_against_one_lockout() {
    let (mut a, mut b, etcd) = fleet();
    let attempt = |d: &mut Driver, pw: &str| login(d, "alice", pw, "/").status();
    assert_eq!(attempt(&mut a, "wrong"), 401);
    assert_eq!(attempt(&mut a, "wrong"), 401);
    assert_eq!(attempt(&mut b, "wrong"), 401);
    assert_eq!(etcd.borrow().keys("thr"), 3);
    // A has counted two, under its limit of three; the fleet has counted three.
    assert_eq!(attempt(&mut a, "alice-pw"), 429);
    assert!(!a.jar.contains_key("sso_session"));
    assert_eq!(a.count("sso_fleet.throttled"), 1);
}

#[test]
fn a_success_clears_the_fleet_counter() {
    let (mut a, mut b, etcd) = fleet();
    assert_eq!(login(&mut b, "alice", "x", "/").status(), 401);
    assert_eq!(etcd.borrow().keys("thr"), 1);
    let ok = login(&mut a, "alice", "alice-pw", "/");
    assert_eq!(ok.status(), 303, "{}", ok.body());
    assert_eq!(etcd.borrow().keys("thr"), 0);
}

#[test]
fn etcd_down_fails_closed() {
    let (mut a, _b, etcd) = fleet();
    etcd.borrow_mut().up = false;
    let token = hs256(&json!({"sub": "dave", "jti": "j-2", "exp": a.now + 600}));
    let refused = a.api(&format!("/app?activeAuth=once&jwtParam={token}"), &[]);
    assert_eq!(refused.status(), 503, "{}", refused.body());
    assert!(!a.jar.contains_key("sso_session"));
    assert_eq!(a.count("sso_fleet.unavailable"), 1);
    // Sessions of methods without single logout never ask etcd: they keep working.
    etcd.borrow_mut().up = true;
    let token = hs256(&json!({"sub": "dave", "jti": "j-3", "exp": a.now + 600}));
    assert_eq!(
        a.api(&format!("/app?activeAuth=once&jwtParam={token}"), &[])
            .status(),
        302
    );
    etcd.borrow_mut().up = false;
    let calls = etcd.borrow().calls.len();
    assert_eq!(
        a.api("/app", &[]).set("x-sso-login").as_deref(),
        Some("dave")
    );
    assert_eq!(etcd.borrow().calls.len(), calls);
}
