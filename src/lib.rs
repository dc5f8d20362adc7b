//! # sso-filter
//!
//! Single sign-on at the proxy. One sans-IO engine ([`Filter`]) takes a request and returns a
//! [`Step`]: forward it with a verified identity, answer it (login page, redirect, refusal),
//! read its body, or call out to an identity provider. Thin hosts run it in Envoy
//! (`host::proxy_wasm`, proxy-wasm ABI) and in JS edge workers (`wasm-bindgen-harness/`).
//!
//! Sessions are sealed cookies ([`session`]), so any number of proxies serve one user with only
//! a shared key. Configuration is one JSON document ([`config`]), parsed once and strictly.
//!
//! See `docs/behaviour.md` for the HTTP-level contract and the README for deployment.

#![forbid(unsafe_code)]
#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::indexing_slicing,
        clippy::panic
    )
)]

pub mod assertion;
pub mod bucket;
pub mod cache;
pub mod config;
pub mod counter;
pub mod deny;
pub mod engine;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod identity;
pub mod idp;
pub mod jose;
pub mod login;
pub mod mapping;
pub mod memo;
pub mod methods;
pub mod pages;
pub mod password;
pub mod random;
pub mod redirect;
pub mod secret;
pub mod session;
pub mod store;
pub mod wait;
pub mod xml;
pub mod xmldsig;
pub mod xmlenc;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
pub mod host;

pub use config::Config;
pub use engine::{Env, Filter};
pub use error::ConfigError;
pub use http::{Background, CalloutResponse, HeaderEdit, Outcome, RequestHead, Response, Step};
pub use identity::Identity;
pub use wait::{BodyWait, CalloutWait, StreamWait, TimerWait};
