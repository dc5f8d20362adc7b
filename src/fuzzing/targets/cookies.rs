//! Session cookies, the cookie sealer and the login flow state.
//!
//! - `cookie_header_target`: `Cookie` headers (several, chunked, edited) through the engine; an
//!   identity goes upstream only from exactly the value the filter sealed, and the filter's own
//!   cookies never go upstream.
//! - `session_seal`: `open(seal(x)) == x`; an edited sealed value never opens; a value sealed for
//!   one cookie name never opens under another.
//! - `flow_state`: a flow is taken only with the exact cookie and `state` we sealed, and never
//!   once expired.

use std::cell::RefCell;

use super::{case, cases_now, text};
use crate::fuzzing::{
    config_with, cookie_header, fixtures, no_callouts, pick, reached, CounterRandom, Done, Edits,
    Harness,
};
use crate::http::parse_cookies;
use crate::RequestHead;

struct SessionFixture {
    harness: Harness,
    /// The sealed session value the filter wrote (chunks joined).
    sealed: String,
}

thread_local! {
    static SESSION: RefCell<Option<SessionFixture>> = const { RefCell::new(None) };
}

/// A harness holding a real session, made by logging in with the seed HS256 token.
fn with_session<R>(f: impl FnOnce(&mut SessionFixture) -> R) -> R {
    SESSION.with(|cell| {
        let mut slot = cell.borrow_mut();
        let fixture = slot.get_or_insert_with(|| {
            let seed = case("seed_hs256");
            let mut harness = Harness::new(&config_with(&seed["method"]), cases_now());
            let token: String = url::form_urlencoded::byte_serialize(
                seed["token"].as_str().unwrap_or("").as_bytes(),
            )
            .collect();
            let done = harness.get(&format!("/app?activeAuth=m&jwtParam={token}"), None);
            let set = done.session_cookies();
            assert!(!set.is_empty(), "seed login failed: {done:?}");
            let head = RequestHead {
                method: "GET".into(),
                path: "/".into(),
                headers: vec![("cookie".into(), cookie_header(&set))],
                client: None,
                peer: None,
            };
            let sealed = harness
                .filter
                .config()
                .cookies
                .sealed_session(&parse_cookies(&head))
                .expect("sealed")
                .into_owned();
            SessionFixture { harness, sealed }
        });
        f(fixture)
    })
}

/// `Cookie` headers, possibly several (HTTP/2 splits them): session cookies (including chunk
/// reassembly) and anything else. Property: an identity goes upstream only when the chunks the
/// browser sent join to exactly the value the filter sealed; the filter's cookies never go
/// upstream; `parse_cookies` yields trimmed, non-empty names without `;`.
pub fn cookie_header_target(data: &[u8]) {
    with_session(|fx| {
        let headers: Vec<String> = match pick(data, 0, 3) {
            // Raw header text; a newline starts another `cookie` field.
            0 => text(data.get(1..).unwrap_or_default())
                .split('\n')
                .map(str::to_owned)
                .collect(),
            // The sealed value, edited, spread over 1-4 chunk cookies.
            1 => {
                let edited = text(
                    &Edits::new(data.get(2..).unwrap_or_default()).apply(fx.sealed.as_bytes()),
                );
                let parts = pick(data, 1, 4) + 1;
                vec![spread(&edited, parts)]
            }
            // The sealed value split at fuzzed points, plus fuzzed cookies around it.
            _ => {
                let parts = pick(data, 1, 4) + 1;
                let extra = text(data.get(2..).unwrap_or_default());
                vec![format!("{extra}; {}", spread(&fx.sealed, parts)), extra]
            }
        };
        let head = RequestHead {
            method: "GET".into(),
            path: "/app".into(),
            headers: headers
                .iter()
                .map(|h| ("cookie".to_owned(), h.clone()))
                .chain([("accept".to_owned(), "text/html".to_owned())])
                .collect(),
            client: None,
            peer: None,
        };
        let parsed = parse_cookies(&head);
        for (n, v) in &parsed {
            assert!(
                !n.is_empty() && !n.contains(';') && n.trim() == n,
                "cookie name {n:?}"
            );
            assert!(!v.contains(';'), "cookie value {v:?}");
        }
        let done = fx
            .harness
            .run("GET", "/app", head.headers.clone(), b"", &mut no_callouts);
        if !done.identity().is_empty() {
            reached("cookie_header.identity");
            let joined = fx.harness.filter.config().cookies.sealed_session(&parsed);
            assert_eq!(
                joined.as_deref(),
                Some(fx.sealed.as_str()),
                "an identity from a session value the filter never sealed"
            );
        }
        if let Done::Forwarded(edits) = &done {
            for e in edits {
                if let crate::HeaderEdit::Set(n, v) = e {
                    if n == "cookie" {
                        for seg in v.split("; ") {
                            let name = seg.split('=').next().unwrap_or("");
                            assert!(
                                !fx.harness.filter.config().cookies.is_ours(name),
                                "filter cookie {name} forwarded upstream"
                            );
                        }
                    }
                }
            }
        }
    });
}

/// `sso_session=…; sso_session_1=…` with `value` cut into `parts` pieces.
fn spread(value: &str, parts: usize) -> String {
    let bytes = value.as_bytes();
    let size = bytes.len().div_ceil(parts).max(1);
    bytes
        .chunks(size)
        .enumerate()
        .map(|(i, c)| {
            let name = if i == 0 {
                "sso_session".to_owned()
            } else {
                format!("sso_session_{i}")
            };
            format!("{name}={}", String::from_utf8_lossy(c))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The cookie sealer alone. Properties: `open(seal(x)) == x` (seal -> open is stable for any
/// payload); an edited sealed value opens only when the edits left it byte-identical; a value
/// sealed for one cookie name never opens under another.
pub fn session_seal(data: &[u8]) {
    let ring = crate::session::KeyRing::new(&[fixtures::SESSION_KEY.to_owned()]).expect("ring");
    let mut rng = CounterRandom::default();
    let sealed = ring.seal("sso_session", data, &mut rng).expect("seal");
    assert_eq!(ring.open("sso_session", &sealed).as_deref(), Some(data));
    assert!(ring.open("sso_session_flow_x", &sealed).is_none());
    let edited = text(&Edits::new(data).apply(sealed.as_bytes()));
    if let Some(plain) = ring.open("sso_session", &edited) {
        assert_eq!(edited, sealed, "an edited sealed value opened");
        assert_eq!(plain, data);
    }
    // Raw input as a sealed value.
    assert!(ring.open("sso_session", &text(data)).is_none() || text(data) == sealed);
}

/// A flow sealed into its state: an edited state opens only when the edits left it
/// byte-identical, and then only with the binding cookie it was sealed for (another value:
/// `Rebound`, none: `Unbound`); an expired one never.
fn carried_state(
    cookies: &crate::session::Cookies,
    flow: &crate::session::Flow,
    data: &[u8],
    now: u64,
) {
    use crate::session::Carried;
    let mut rng = CounterRandom::default();
    let mut flow = flow.clone();
    let (state, binding) = cookies.carry_flow(&mut flow, &[], &mut rng).expect("carry");
    let (name, value) = binding
        .split(';')
        .next()
        .and_then(|c| c.split_once('='))
        .expect("set-cookie");
    let edited = text(&Edits::new(data.get(1..).unwrap_or_default()).apply(state.as_bytes()));
    let own = vec![(name.to_owned(), value.to_owned())];
    let other = vec![(name.to_owned(), text(data))];
    match cookies.open_carried(&own, &edited, now) {
        Carried::Bound(taken) => {
            reached("flow_state.carried");
            assert_eq!(edited, state, "a flow opened from an edited state");
            assert_eq!(taken, flow);
        }
        Carried::Rebound(_) => panic!("the binding cookie it was sealed for is not another"),
        Carried::NotSealed | Carried::Unbound => assert_ne!(edited, state),
    }
    if let Carried::Bound(_) = cookies.open_carried(&other, &state, now) {
        assert_eq!(
            text(data),
            value,
            "bound to a binding value it was not sealed for"
        );
    }
    assert_eq!(cookies.open_carried(&[], &state, now), Carried::Unbound);
    assert_eq!(
        cookies.open_carried(&own, &state, flow.exp),
        Carried::Unbound
    );
}

/// Login flow state: the sealed flow cookie and the `state` parameter. Property: a flow is
/// taken only with the exact cookie value we sealed and the exact state inside it.
pub fn flow_state(data: &[u8]) {
    with_session(|fx| {
        let cookies = &fx.harness.filter.config().cookies;
        let flow = crate::session::Flow {
            v: 1,
            state: "st-0123456789abcdefghijklmnopqrstuvwxyzABCD".into(),
            rd: "/app".into(),
            method: "m".into(),
            tenant: None,
            exp: fx.harness.now + 600,
            nonce: Some("n-1".into()),
            verifier: None,
            variant: None,
            bind: None,
            retry: 0,
        };
        let mut rng = CounterRandom::default();
        carried_state(cookies, &flow, data, fx.harness.now);
        let set = cookies
            .write_flow(&flow, &[], fx.harness.now, &mut rng)
            .expect("flow");
        let (name, value) = set[0]
            .split(';')
            .next()
            .and_then(|c| c.split_once('='))
            .expect("set-cookie");
        let edited = text(&Edits::new(data.get(1..).unwrap_or_default()).apply(value.as_bytes()));
        let state = if pick(data, 0, 2) == 0 {
            flow.state.clone()
        } else {
            text(data)
        };
        let jar = vec![(name.to_owned(), edited.clone())];
        if let Some((taken, _)) = cookies.take_flow(&jar, &state, fx.harness.now) {
            reached("flow_state.taken");
            assert_eq!(edited, value, "a flow opened from an edited cookie");
            assert_eq!(state, flow.state);
            assert_eq!(taken, flow);
        }
        // Expired flows never come back.
        assert!(cookies
            .take_flow(
                &[(name.to_owned(), value.to_owned())],
                &flow.state,
                flow.exp
            )
            .is_none());
    });
}
