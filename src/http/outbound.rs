//! What the engine asks its host to send to an identity provider or a directory, and what
//! comes back: HTTP callouts ([`Callout`], [`CalloutResponse`]) and byte-stream rounds
//! ([`Exchange`], [`StreamReply`]), with the Envoy cluster name an outbound origin goes
//! through. The engine never opens a connection itself; these describe what the host opens.

/// An HTTP request the engine asks its host to send to an identity provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callout {
    /// Envoy cluster name (the host maps it to `fetch()` on the edge).
    pub upstream: String,
    /// Absolute URL of the request (the edge host uses it as is; Envoy uses its path and
    /// authority).
    pub url: String,
    /// Method.
    pub method: String,
    /// Request headers.
    pub headers: Vec<(String, String)>,
    /// Request body.
    pub body: Vec<u8>,
    /// Deadline for the answer, in milliseconds.
    pub timeout_ms: u64,
}

/// The answer to a [`Callout`], or its failure.
#[derive(Clone, Debug, Default)]
pub struct CalloutResponse {
    /// Status code; `None` when the host could not get a response (reset, timeout, refused).
    pub status: Option<u16>,
    /// Response headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// Response body (hosts cap its size before reading it).
    pub body: Vec<u8>,
}

/// Where a byte stream goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS, with the server's certificate verified for `host`.
    pub tls: bool,
}

/// One round of a byte-stream conversation.
///
/// The host keeps at most one stream per request. The first exchange of a request opens it to
/// `endpoint`; later ones reuse it. Each exchange: write `send` (when not empty); then, when
/// `read_at_least > 0`, read until at least that many bytes arrived in this round, the peer
/// closed, or `timeout_ms` passed, never keeping more than `read_limit` bytes; then close the
/// stream if `close`. The host also closes the stream when the request ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exchange {
    /// Where the stream goes (used when it is opened).
    pub endpoint: Endpoint,
    /// Bytes to write.
    pub send: Vec<u8>,
    /// Read until at least this many bytes arrived (0: do not read).
    pub read_at_least: usize,
    /// Keep at most this many bytes of this round.
    pub read_limit: usize,
    /// Close the stream after this round.
    pub close: bool,
    /// Deadline for connecting, writing and reading this round, in milliseconds.
    pub timeout_ms: u64,
}

/// What a byte-stream round produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamReply {
    /// The bytes read in this round (at most `read_limit`).
    pub data: Vec<u8>,
    /// How the round ended.
    pub end: StreamEnd,
}

/// How a byte-stream round ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StreamEnd {
    /// The stream could not be opened, written or read, or the round timed out.
    #[default]
    Failed,
    /// The round completed; the stream is still open (unless the step asked to close it).
    Open,
    /// The peer closed the stream (the bytes before the close are in `data`).
    PeerClosed,
}

/// The Envoy cluster name for an outbound URL's origin: `sso_<host>_<port>`, with every
/// character outside `[a-z0-9]` as `_`. `sso-filter clusters` prints definitions under these
/// names, and callouts use them.
pub fn cluster_name(url: &url::Url) -> String {
    let host: String = url
        .host_str()
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("sso_{host}_{}", url.port_or_known_default().unwrap_or(0))
}
