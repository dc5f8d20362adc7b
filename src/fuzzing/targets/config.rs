//! The configuration document (`config`). Properties: what loads loads again after a JSON round
//! trip; its summary, outbound URLs and stream methods work on it.

use serde_json::Value;

use crate::fuzzing::reached;

/// The configuration, as `sso-filter validate` and the hosts read it. Properties: a document
/// that loads loads again after a JSON round trip; its summary and outbound URLs work; it
/// never has an empty key ring.
pub fn config(data: &[u8]) {
    let Ok(cfg) = crate::Config::from_json(data) else {
        return;
    };
    reached("config.loaded");
    let _ = cfg.summary();
    for (_, url) in cfg.outbound_urls() {
        assert!(url.host_str().is_some(), "{url}");
    }
    let _ = cfg.stream_methods();
    let v: Value = serde_json::from_slice(data).expect("loaded config is JSON");
    let again = serde_json::to_vec(&v).expect("ser");
    assert!(
        crate::Config::from_json(&again).is_ok(),
        "config not stable over a JSON round trip"
    );
}
