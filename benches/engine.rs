//! Native timing of the engine's hot paths (no proxy): `cargo bench --bench engine`.
//! The proxy figures come from `make bench`; this isolates the engine's own share.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::Instant;

use serde_json::json;
use sso_filter::cache::MemoryCache;
use sso_filter::random::SystemRandom;
use sso_filter::{Env, Filter, RequestHead, Step};

fn main() {
    let key = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
    let config = json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [key]},
        "methods": {"jwt-param": {"type": "jwt", "verify": {"alg": "HS256", "secret": "4b117a14-c652-410a-83b2-9839c16e7ae1"},
            "insecure_allow_missing_exp": true, "accept_bearer": true, "mapping": {"login": "loginName", "roles": "roles"}}}
    });
    let filter = Filter::from_json(config.to_string().as_bytes()).unwrap();
    let cache = MemoryCache::default();
    let mut rng = SystemRandom;
    let seed = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZS1zdWJqZWN0IiwiYWJjIjoiMTIzIiwicm9sZXMiOlsic3lzdGVtIGFkbWluIiwiZGF0YSBhZG1pbiIsImRhdGEgYW5hbHlzdCIsImRhdGEgdmlld2VyIiwiYXBpIGFkbWluIl0sImxvZ2luTmFtZSI6ImFsaWNlIn0.PGA9DNa-B_4e4WS-fVG57tvxYe0dlu0r8O_Lw1vEtAQ";
    let login = RequestHead {
        method: "GET".into(),
        path: format!("/?jwtParam={seed}"),
        headers: vec![],
        client: None,
        peer: None,
    };
    let mut env = Env {
        now: 1_767_225_600,
        now_ms: 1_767_225_600_000,
        rng: &mut rng,
        cache: &cache,
        fleet: Default::default(),
    };
    let Step::Respond(r) = filter.on_request(&login, &mut env).step else {
        panic!()
    };
    let cookie: String = r
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.split(';').next().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join("; ");
    let headers = vec![
        ("accept".to_owned(), "text/html".to_owned()),
        ("user-agent".to_owned(), "bench".to_owned()),
        ("cookie".to_owned(), cookie),
    ];
    let session_req = RequestHead {
        method: "GET".into(),
        path: "/app/page?x=1".into(),
        headers,
        client: None,
        peer: None,
    };
    let bearer_req = RequestHead {
        method: "GET".into(),
        path: "/api".into(),
        headers: vec![("authorization".into(), format!("Bearer {seed}"))],
        client: None,
        peer: None,
    };
    for (name, req) in [
        ("session cookie", &session_req),
        ("bearer HS256", &bearer_req),
    ] {
        let n = 20_000;
        for _ in 0..1000 {
            let _ = filter.on_request(req, &mut env);
        }
        let t = Instant::now();
        for _ in 0..n {
            let o = filter.on_request(req, &mut env);
            assert!(matches!(o.step, Step::Continue(_)));
        }
        println!(
            "{name}: {:.2} µs/request",
            t.elapsed().as_secs_f64() * 1e6 / f64::from(n)
        );
    }
}
