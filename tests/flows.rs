//! Scenario tests through the public engine API, no proxy: one test binary, one module per
//! topic (rustls `tests/api.rs` layout).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

#[path = "flows/cas.rs"]
mod cas;
#[path = "flows/dingtalk.rs"]
mod dingtalk;
#[path = "flows/fleet.rs"]
mod fleet;
#[path = "flows/jwt_keep_alive.rs"]
mod jwt_keep_alive;
#[path = "flows/jwt_param.rs"]
mod jwt_param;
#[path = "flows/lark.rs"]
mod lark;
#[path = "flows/ldap.rs"]
mod ldap;
#[path = "flows/local.rs"]
mod local;
#[path = "flows/login_page.rs"]
mod login_page;
#[path = "flows/oidc.rs"]
mod oidc;
#[path = "flows/parallel.rs"]
mod parallel;
#[path = "flows/requests.rs"]
mod requests;
#[path = "flows/saml2.rs"]
mod saml2;
#[path = "flows/saml2_logout.rs"]
mod saml2_logout;
#[path = "flows/teams.rs"]
mod teams;
#[path = "flows/tenant_fields.rs"]
mod tenant_fields;
#[path = "flows/wechat.rs"]
mod wechat;
#[path = "flows/wecom.rs"]
mod wecom;
