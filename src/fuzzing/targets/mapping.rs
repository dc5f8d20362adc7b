//! Claims to identity (`mapping`). Properties: an identity only with a non-empty login, and
//! what passes `Identity::check` is free of control characters; evaluation is deterministic and
//! stable over a JSON round trip of the claims.

use serde_json::{json, Map, Value};

use super::text;
use crate::fuzzing::reached;

/// Mapping evaluation over arbitrary claims. Properties: an identity only with a non-empty
/// login that passes `Identity::check`; evaluation is deterministic and survives a JSON
/// round trip of the claims.
pub fn mapping(data: &[u8]) {
    let claims: Map<String, Value> = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(m)) => m,
        Ok(other) => [("sub".to_owned(), other)].into_iter().collect(),
        Err(_) => [("sub".to_owned(), Value::String(text(data)))]
            .into_iter()
            .collect(),
    };
    let raws = [
        json!({}),
        json!({"login": "$.user.name", "name": "name", "email": "email", "roles": "$.roles[*]",
               "groups": "groups", "org": "org.id", "tenant_code": "tenant",
               "role_rules": [{"claim": "dept", "equals": "x", "roles": ["r"], "groups": ["g"]}],
               "default_roles": ["viewer"]}),
        json!({"login": "$..id", "roles": "$.extattr.attrs[?@.name=='角色'].text.value"}),
    ];
    for raw in raws {
        let raw: crate::mapping::RawMapping = serde_json::from_value(raw).expect("mapping");
        let m = std::sync::Arc::new(raw.compile("mapping").expect("compiles"));
        let a = m.apply(&claims, "m");
        if let Some(id) = &a {
            reached("mapping.identity");
            // The engine refuses an identity that fails `check` before any session is made
            // (engine.rs); here: what passes `check` is clean.
            assert!(!id.login.is_empty());
            if id.check().is_ok() {
                let all = [
                    Some(&id.login),
                    id.name.as_ref(),
                    id.email.as_ref(),
                    id.org.as_ref(),
                ];
                for v in all
                    .into_iter()
                    .flatten()
                    .chain(id.roles.iter())
                    .chain(id.groups.iter())
                {
                    assert!(!v.chars().any(char::is_control), "{v:?} passed check");
                }
            }
        }
        let b = m.apply(&claims, "m");
        assert_eq!(format!("{a:?}"), format!("{b:?}"), "not deterministic");
        let round: Map<String, Value> =
            serde_json::from_str(&serde_json::to_string(&claims).expect("ser")).expect("de");
        let c = m.apply(&round, "m");
        assert_eq!(
            format!("{a:?}"),
            format!("{c:?}"),
            "not stable over a JSON round trip"
        );
    }
}
