//! The HTTP vocabulary the engine speaks with its hosts: what comes in (a request head, a body,
//! a callout response) and what goes out (a [`Step`]).
//!
//! Nothing here performs I/O. Hosts translate their callbacks into these types and carry out the
//! returned step.
//!
//! The children, by what they describe: `request` what comes in (the head, its cookies and
//! target), `query` query strings and form bodies, `path` path normalisation, `step` what the
//! host must do next, `outbound` the callouts and byte streams the host carries out for the
//! engine. Everything public is re-exported here, so `crate::http::X` is the one path to use.

mod outbound;
mod path;
mod query;
mod request;
mod step;

pub use self::outbound::{
    cluster_name, Callout, CalloutResponse, Endpoint, Exchange, StreamEnd, StreamReply,
};
pub use self::path::{normalize_path, PathError};
pub use self::query::{strip_query_params, Duplicate, Query};
pub use self::request::{parse_cookies, split_target, RequestHead};
pub use self::step::{Background, HeaderEdit, Outcome, Response, Step};
