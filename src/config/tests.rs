//! Configuration parsing: errors name their JSON path, defaults, cluster names.

use super::*;
use serde_json::json;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";

fn base() -> Value {
    json!({
        "base_url": "https://app.example.com",
        "session": {"keys": [KEY]},
        "methods": {"jwt-param": {"type": "jwt", "verify": {"alg": "HS256", "secret": "4b117a14-c652-410a-83b2-9839c16e7ae1"}}}
    })
}

fn err(v: Value) -> String {
    Config::from_json(v.to_string().as_bytes())
        .unwrap_err()
        .to_string()
}

#[test]
fn cluster_names_follow_the_deployment() {
    let url = url::Url::parse("https://idp.example.com/token").unwrap();
    assert_eq!(ClusterNames::Sso.name(&url), "sso_idp_example_com_443");
    assert_eq!(
        ClusterNames::Istio.name(&url),
        "outbound|443||idp.example.com"
    );
    let mut v = base();
    v["cluster_names"] = json!("istio");
    let c = Config::from_json(v.to_string().as_bytes()).unwrap();
    assert_eq!(c.cluster_names, ClusterNames::Istio);
}

#[test]
fn minimal_config_loads() {
    let c = Config::from_json(base().to_string().as_bytes()).unwrap();
    assert_eq!(c.global.default_method.as_deref(), Some("jwt-param"));
    assert_eq!(c.origin, "https://app.example.com");
}

#[test]
fn errors_name_the_json_path() {
    let mut v = base();
    v["sesion"] = json!({});
    assert!(err(v).contains("sesion"));
    let mut v = base();
    v["methods"]["jwt-param"]["verfy"] = json!({});
    let e = err(v);
    assert!(e.starts_with("methods.jwt-param"), "{e}");
    assert!(e.contains("verfy"), "{e}");
    let mut v = base();
    v["methods"]["jwt-param"]["verify"]["alg"] = json!("none");
    assert!(err(v).starts_with("methods.jwt-param.verify.alg"));
    let mut v = base();
    v["session"]["keys"] = json!(["c2hvcnQ"]);
    assert!(err(v).starts_with("session.keys[0]"));
    let mut v = base();
    v["session"]["secure"] = json!(false);
    assert!(err(v).starts_with("session.secure"));
    let mut v = base();
    v["base_url"] = json!("app.example.com");
    assert!(err(v).starts_with("base_url"));
    let mut v = base();
    v["default_method"] = json!("nope");
    assert!(err(v).starts_with("default_method"));
    let mut v = base();
    v["public_paths"] = json!(["/a/../b"]);
    assert!(err(v).starts_with("public_paths[0]"));
    let mut v = base();
    v["methods"]["x"] = json!({"type": "kerberos"});
    assert!(err(v).starts_with("methods.x.type"));
    let mut v = base();
    v["mapping"] = json!({"login": "a[b"});
    assert!(err(v).contains("mapping.login"));
    let mut v = base();
    v["methods"]["jwt-param"]["verify"]["secret"] = json!("short");
    assert!(err(v).starts_with("methods.jwt-param.verify"));
    let mut v = base();
    v["tenants"] = json!({"t1": {"default_method": "nope"}});
    assert!(err(v).starts_with("tenants.t1.default_method"));
}

/// `validate` names a mapping source that reads both as an exact attribute name and as a
/// dotted path (an OID), and says how to write the name only.
#[test]
fn ambiguous_mapping_names_are_warned_at_load() {
    let mut v = base();
    v["methods"]["jwt-param"]["mapping"] =
        json!({"email": "urn:oid:0.9.2342.19200300.100.1.3", "name": "profile.name"});
    let c = Config::from_json(v.to_string().as_bytes()).unwrap();
    let w = c.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("methods.jwt-param.mapping.email:"),
        "{w:?}"
    );
    assert!(
        w[0].contains("$['urn:oid:0.9.2342.19200300.100.1.3']"),
        "{w:?}"
    );
}
