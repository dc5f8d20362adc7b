//! Any number of logins at once (issue 17 item 1): the flow travels sealed in its state, bound
//! to the browser by one binding cookie; parallel first logins that race for that cookie start
//! again by themselves; a state taken to another browser never logs anyone in.

use serde_json::{json, Value};

use crate::common::{Done, Driver};

/// The built-in users, with a password budget for thirty-odd logins in a burst.
fn config() -> Value {
    let mut c = crate::local::config();
    c["limits"] = json!({"client_password_burst": 40, "password_burst": 40});
    c
}

const BIND: &str = "sso_session_bind";

fn post(d: &mut Driver, state: &str) -> Done {
    d.post_form(
        "/login",
        &[
            ("username", "alice"),
            ("password", "alice-pw"),
            ("state", state),
        ],
    )
}

/// Follows a restart (303 to `/login?...&retry=N`) to the form, and posts it.
fn follow(d: &mut Driver, restart: &Done) -> Done {
    let form = d.get(&restart.header("location").unwrap());
    assert_eq!(form.status(), 200, "{}", form.body());
    post(d, &Driver::form_state(&form))
}

#[test]
fn twelve_logins_in_one_browser_all_land() {
    let mut d = Driver::new(&config());
    let states: Vec<String> = (0..12)
        .map(|i| Driver::form_state(&d.get(&format!("/login?rd=/frame/{i}"))))
        .collect();
    assert!(
        !d.jar.keys().any(|k| k.contains("_flow_")),
        "no cookie per flow"
    );
    assert!(d.jar.contains_key(BIND));
    // Finished in any order, every one lands where it started.
    for i in (0..12).rev() {
        let done = post(&mut d, &states[i]);
        assert_eq!(done.status(), 303, "{}", done.body());
        assert_eq!(done.header("location"), Some(format!("/frame/{i}")));
    }
    // Each state is used once.
    assert_eq!(post(&mut d, &states[3]).status(), 401);
}

#[test]
fn first_logins_racing_for_the_binding_cookie_start_again_and_land() {
    let mut d = Driver::new(&config());
    // Twelve iframes load at once: no request carries a binding cookie yet, each response sets
    // its own value, the browser keeps the last.
    let states: Vec<String> = (0..12)
        .map(|i| {
            d.jar.remove(BIND);
            Driver::form_state(&d.get(&format!("/login?rd=/frame/{i}")))
        })
        .collect();
    let mut restarted = 0;
    for (i, state) in states.iter().enumerate() {
        let done = post(&mut d, state);
        let done = if i == 11 {
            done
        } else {
            // Sealed for an earlier value: no session, the same login starts again.
            assert_eq!(done.status(), 303, "{}", done.body());
            let loc = done.header("location").unwrap();
            assert!(
                loc.starts_with(&format!("/login?rd=%2Fframe%2F{i}&activeAuth=local"))
                    && loc.ends_with("&retry=1"),
                "{loc}"
            );
            assert!(done
                .set_cookies()
                .iter()
                .all(|c| !c.starts_with("sso_session=")));
            restarted += 1;
            follow(&mut d, &done)
        };
        assert_eq!(done.header("location"), Some(format!("/frame/{i}")), "{i}");
    }
    assert_eq!(restarted, 11);
    assert_eq!(d.count("sso_deny.login_restarted"), 11);
}

#[test]
fn a_state_in_another_browser_never_logs_in() {
    // The attacker starts a login in their browser and hands the victim the state (login
    // CSRF, security.md F2).
    let mut attacker = Driver::new(&config());
    let state = Driver::form_state(&attacker.get("/login?rd=/x"));
    // A victim with no binding cookie: refused, nothing set.
    let mut victim = Driver::new(&config());
    let done = post(&mut victim, &state);
    assert_eq!(done.status(), 401);
    assert!(!victim.jar.contains_key("sso_session"));
    // A victim with a binding cookie of their own: the victim's browser starts its own login;
    // the attacker's state is not used, and stays usable by nobody else but the attacker.
    // (Each driver draws from the same counter: the victim's browser draws another value.)
    let mut other = [0u8; 64];
    sso_filter::random::Random::fill(&mut victim.rng, &mut other).unwrap();
    let _ = victim.get("/login?rd=/mine");
    assert_ne!(victim.jar.get(BIND), attacker.jar.get(BIND));
    let done = post(&mut victim, &state);
    assert_eq!(done.status(), 303);
    let loc = done.header("location").unwrap();
    assert!(loc.starts_with("/login?rd=%2Fx"), "{loc}");
    assert!(!victim.jar.contains_key("sso_session"));
    assert_eq!(
        post(&mut attacker, &state).status(),
        303,
        "the attacker's own"
    );
}

#[test]
fn restarts_are_bounded() {
    let mut d = Driver::new(&config());
    let mut location = "/login?rd=/x&retry=0".to_owned();
    for retry in 1..=2 {
        let state = Driver::form_state(&d.get(&location));
        // Another value replaces the browser's binding before each post.
        d.jar.insert(BIND.into(), format!("{:A<22}", retry));
        let done = post(&mut d, &state);
        assert_eq!(done.status(), 303, "{}", done.body());
        location = done.header("location").unwrap();
        assert!(location.ends_with(&format!("&retry={retry}")), "{location}");
    }
    let state = Driver::form_state(&d.get(&location));
    d.jar.insert(BIND.into(), "B".repeat(22));
    let done = post(&mut d, &state);
    assert_eq!(done.status(), 401, "the third restart is refused");
    // A count set by hand only lowers the allowance of the flow it starts.
    let state = Driver::form_state(&d.get("/login?rd=/x&retry=200"));
    d.jar.insert(BIND.into(), "C".repeat(22));
    assert_eq!(post(&mut d, &state).status(), 401);
    // On an application path the parameter is the application's.
    assert_eq!(d.get("/reports?retry=5").status(), 302);
}
