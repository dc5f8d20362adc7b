//! The fuzz targets. Each takes libFuzzer's bytes and panics when a property fails.
//!
//! One child a subject, each saying which properties its targets assert: [`cookies`] (session
//! cookies, the sealer, flow state), [`requests`] (paths, queries, forms, return URLs), [`jose`]
//! (JWS, JWE, a JWT parameter), [`idp`] (IdP JSON answers through the methods and the engine), [`fleet`] (etcd's answers),
//! [`saml`] (Responses, HTTP-Redirect messages, XML c14n), [`cas`], [`ldap`] (BER), [`mapping`],
//! [`config`]. Every target is re-exported here: `fuzz/fuzz_targets/<name>.rs` and the tests call
//! `sso_filter::fuzzing::targets::<name>`.

use serde_json::Value;

use super::{jwt_cases, Done};

mod cas;
mod config;
mod cookies;
mod fleet;
mod idp;
mod jose;
mod ldap;
mod mapping;
mod requests;
mod saml;

pub use cas::cas_xml;
pub use config::config;
pub use cookies::{cookie_header_target, flow_state, session_seal};
pub use fleet::fleet_answers;
pub use idp::{idp_answers, idp_json, oidc_fixture};
pub use jose::{jwe, jws, jwt_param};
pub use ldap::ldap_ber;
pub use mapping::mapping;
pub use requests::{assert_same_origin, form_body, path_query, return_url};
pub use saml::{saml_redirect, saml_response, xml_c14n};

/// The filter's origin in every harness configuration.
pub const ORIGIN: &str = "https://app.example.com";

/// A fuzz target: raw input in, panic on a property violation.
pub type Target = fn(&[u8]);

/// Every target: (name, function). `fuzz/fuzz_targets/<name>.rs` calls the function; the
/// stable regression test replays `fuzz/seeds/<name>/` and `fuzz/regressions/<name>/` through it.
pub const ALL: &[(&str, Target)] = &[
    ("cookie_header", cookie_header_target),
    ("session_seal", session_seal),
    ("flow_state", flow_state),
    ("path_query", path_query),
    ("form_body", form_body),
    ("jws", jws),
    ("jwe", jwe),
    ("jwt_param", jwt_param),
    ("idp_json", idp_json),
    ("idp_answers", idp_answers),
    ("fleet_answers", fleet_answers),
    ("saml_response", saml_response),
    ("saml_redirect", saml_redirect),
    ("xml_c14n", xml_c14n),
    ("cas_xml", cas_xml),
    ("ldap_ber", ldap_ber),
    ("mapping", mapping),
    ("config", config),
    ("return_url", return_url),
];

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn case(name: &str) -> &'static Value {
    jwt_cases()["cases"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no case {name}"))
}

fn cases_now() -> u64 {
    jwt_cases()["now"].as_u64().unwrap_or_default()
}

/// The input cut at `\n--\n`: one answer a piece (IdP callouts, LDAP replies).
fn split_answers(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 4 <= data.len() {
        if &data[i..i + 4] == b"\n--\n" {
            out.push(&data[start..i]);
            start = i + 4;
            i += 4;
        } else {
            i += 1;
        }
    }
    out.push(&data[start..]);
    out
}

/// The `set-cookie` values of a response.
fn set_cookies(done: &Done) -> Vec<String> {
    done.response()
        .map(|r| {
            r.headers
                .iter()
                .filter(|(n, _)| n == "set-cookie")
                .map(|(_, v)| v.clone())
                .collect()
        })
        .unwrap_or_default()
}
