//! The fleet store's etcd answers (`store/fleet/etcd.rs`).
//!
//! `fleet_answers`: a filter whose `store` is etcd handles a request that needs the fleet (the
//! first input byte's bit 0 picks it: a one-time JWT landing, or a request with a CAS session
//! whose logout must be checked; bit 1 turns etcd authentication on, so the first call is the
//! user's `authenticate`); every etcd call is answered from the rest of the input (pieces cut
//! at `\n--\n`, each a status byte and a body). Properties: never a 500; nobody is let in (a
//! session set, an identity forwarded) unless the last etcd answer was the transaction's 200
//! JSON with `"succeeded": true`; and only etcd is ever called.

use serde_json::json;

use super::idp::status_of;
use super::split_answers;
use crate::fuzzing::{fixtures, Harness};
use crate::CalloutResponse;

const NOW: u64 = 1_767_225_600;
const SECRET: &str = "fleet-fuzz-secret-0123456789abcdef";

thread_local! {
    static HARNESS: std::cell::RefCell<[Option<Harness>; 2]> =
        const { std::cell::RefCell::new([None, None]) };
}

const ETCD: &str = "https://etcd.internal:2379";

fn config(auth: bool) -> serde_json::Value {
    let mut store = json!({"type": "etcd", "url": ETCD});
    if auth {
        store["auth"] = json!({"username": "sso-filter", "password": "etcd-password"});
    }
    json!({
        "base_url": super::ORIGIN,
        "session": {"keys": [fixtures::SESSION_KEY]},
        "store": store,
        "methods": {
            "once": {"type": "jwt", "param": "jwtParam", "one_time": true,
                     "verify": {"alg": "HS256", "secret": SECRET},
                     "mapping": {"login": "sub"}},
            "cas": {"type": "cas", "server_url": "https://cas.example.com/cas"}
        }
    })
}

fn hs256(claims: &serde_json::Value) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let signing = format!(
        "{}.{}",
        enc(br#"{"alg":"HS256","typ":"JWT"}"#),
        enc(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(signing.as_bytes());
    format!("{signing}.{}", enc(&mac.finalize().into_bytes()))
}

fn cas_session() -> String {
    let ring = crate::session::KeyRing::new(&[fixtures::SESSION_KEY.to_owned()]).expect("ring");
    let payload = json!({"v": 1, "id": {"login": "carol", "method": "cas"}, "iat": NOW - 10,
                         "exp": NOW + 3600, "sid": "ticket-digest"});
    let mut rng = crate::fuzzing::CounterRandom::default();
    let sealed = ring
        .seal("sso_session", payload.to_string().as_bytes(), &mut rng)
        .expect("seal");
    format!("sso_session={sealed}")
}

/// See the module documentation.
pub fn fleet_answers(data: &[u8]) {
    let pieces = split_answers(data.get(1..).unwrap_or_default());
    let session = data.first().is_some_and(|b| b & 1 == 1);
    let auth = data.first().is_some_and(|b| b & 2 == 2);
    HARNESS.with(|cell| {
        let mut cell = cell.borrow_mut();
        let h = cell[usize::from(auth)].get_or_insert_with(|| Harness::new(&config(auth), NOW));
        // A fresh cache each run: leases and used items would make runs depend on earlier ones.
        h.cache = crate::cache::MemoryCache::default();
        let mut next = 0;
        let mut last_ok = false;
        let mut idp = |c: &crate::http::Callout| {
            assert!(
                c.url.starts_with(&format!("{ETCD}/v3/")),
                "a call other than etcd: {}",
                c.url
            );
            // The password goes to etcd's authenticate only; every other call carries no
            // credential but the token etcd gave.
            let has_password = String::from_utf8_lossy(&c.body).contains("etcd-password");
            assert_eq!(
                has_password,
                c.url.ends_with("/v3/auth/authenticate"),
                "{c:?}"
            );
            let piece = pieces.get(next).copied().unwrap_or(b"\xff");
            next += 1;
            let status = status_of(piece.first().copied().unwrap_or(0xff));
            let body = piece.get(1..).unwrap_or_default().to_vec();
            last_ok = c.url.ends_with("/v3/kv/txn")
                && status == Some(200)
                && serde_json::from_slice::<serde_json::Value>(&body)
                    .is_ok_and(|v| v.get("succeeded") == Some(&json!(true)));
            CalloutResponse {
                status,
                headers: Vec::new(),
                body,
            }
        };
        let (target, cookie) = if session {
            ("/app".to_owned(), cas_session())
        } else {
            let token = hs256(&json!({"sub": "dave", "jti": "j-1", "exp": NOW + 600}));
            (
                format!("/app?activeAuth=once&jwtParam={token}"),
                String::new(),
            )
        };
        let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
        if !cookie.is_empty() {
            headers.push(("cookie".to_owned(), cookie));
        }
        let done = h.run("GET", &target, headers, b"", &mut idp);
        if done.admits() {
            assert!(last_ok, "let in without etcd's agreement: {done:?}");
            crate::fuzzing::reached("fleet_answers.admitted");
        } else if next > 0 {
            crate::fuzzing::reached("fleet_answers.refused");
        }
    });
}
