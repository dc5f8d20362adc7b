//! The configuration checks of `type: ldap`: each refusal names its field, and the first
//! problem in the order the fields are checked is the one reported (pinned when `from_raw` was
//! split into helpers, issue 12; the same table passes on the code before the split).

use serde_json::{json, Value};

use super::{Ldap, RawLdap};

/// `from_raw` over a search-mode configuration with `change` merged in (a `null` removes a
/// field); the JSON path of the refusal, or `None` when it is accepted.
fn refusal(change: Value) -> Option<String> {
    let mut raw = json!({
        "host": "ldap.example",
        "bind_dn": "cn=svc,dc=example",
        "bind_password": "pw",
        "search_base": "dc=example",
    });
    for (k, v) in change.as_object().unwrap() {
        if v.is_null() {
            raw.as_object_mut().unwrap().remove(k);
        } else {
            raw[k] = v.clone();
        }
    }
    let raw: RawLdap = serde_json::from_value(raw).unwrap();
    Ldap::from_raw(raw, "methods.dir").err().map(|e| e.path)
}

#[test]
fn each_refusal_names_its_field() {
    let cases = [
        (json!({}), None),
        (json!({"host": " "}), Some("host")),
        (json!({"host": "ldap://ldap.example"}), Some("host")),
        (json!({"host": "a b", "port": 0}), Some("host")),
        (json!({"port": 0}), Some("port")),
        (json!({"bind_password": null}), Some("bind_password")),
        (json!({"bind_dn": ""}), Some("bind_password")),
        (
            json!({"user_dn_template": "uid={user},dc=example"}),
            Some("user_dn_template"),
        ),
        (json!({"search_base": null}), Some("search_base")),
        (
            json!({"search_base": null, "user_dn_template": "uid=x"}),
            Some("user_dn_template"),
        ),
        (
            json!({"search_base": null, "user_dn_template": "uid={user}", "user_filter": "(uid={user})"}),
            Some("user_filter"),
        ),
        (json!({"user_filter": "(uid=x)"}), Some("user_filter")),
        (json!({"user_filter": "(uid={user}"}), Some("user_filter")),
        (
            json!({"group_search": {"base": "dc=example", "filter": "(member={dn}"}}),
            Some("group_search.filter"),
        ),
        (
            json!({"attributes": {"extra": ["ok", "not one"]}}),
            Some("attributes.extra"),
        ),
        (
            json!({"attributes": {"login": ""}}),
            Some("attributes.login"),
        ),
        (json!({"timeout_ms": 0}), Some("timeout_ms")),
        (json!({"timeout_ms": 60_001}), Some("timeout_ms")),
        (
            json!({"timeout_ms": 0, "max_failures": 0}),
            Some("timeout_ms"),
        ),
        (json!({"max_failures": 0}), Some("max_failures")),
        (json!({"lockout_seconds": 86_401}), Some("lockout_seconds")),
        (
            json!({"search_base": null, "bind_dn": null, "bind_password": null, "user_dn_template": "uid={user},dc=example"}),
            None,
        ),
    ];
    for (change, want) in cases {
        let want = want.map(|f| format!("methods.dir.{f}"));
        assert_eq!(refusal(change.clone()), want, "{change}");
    }
}

#[test]
fn ldaps_defaults_to_port_636_and_ldap_to_389() {
    let parse = |v: Value| Ldap::from_raw(serde_json::from_value(v).unwrap(), "m").unwrap();
    let tls = parse(json!({"protocol": "ldaps", "host": " h ", "search_base": "dc=x"}));
    assert_eq!(
        (
            tls.endpoint().host.as_str(),
            tls.endpoint().port,
            tls.endpoint().tls
        ),
        ("h", 636, true)
    );
    let plain = parse(json!({"host": "h", "search_base": "dc=x"}));
    assert_eq!((plain.endpoint().port, plain.endpoint().tls), (389, false));
}
