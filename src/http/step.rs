//! What goes out to the host: the [`Step`] that answers each input (continue with header
//! edits, respond, read the body, call out, stream), the [`Response`] the filter answers with
//! itself, and the [`Outcome`] that carries a step with its counters. This is the whole
//! contract a host implements; the waits come from [`crate::wait`].

use crate::wait::{BodyWait, CalloutWait, StreamWait, TimerWait};

use super::{Callout, Exchange};

/// A header change to apply before the request goes upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Remove every header of this name (as it appears in the request).
    Remove(String),
    /// Set this header, replacing any value it had.
    Set(String, String),
    /// Add this header to the upstream's *response* (a refreshed session's `Set-Cookie`).
    AddResponse(String, String),
}

/// A response the filter answers with itself; the request never reaches the upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// HTTP status code.
    pub status: u16,
    /// Response headers, `Set-Cookie` may repeat.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with the given status, no headers and no body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Adds several `Set-Cookie` headers.
    pub fn cookies(mut self, cookies: Vec<String>) -> Self {
        for c in cookies {
            self.headers.push(("set-cookie".to_owned(), c));
        }
        self
    }

    /// An HTML body; also sets the content type and the headers every filter page carries.
    pub fn html(mut self, body: String) -> Self {
        self.headers.push((
            "content-type".to_owned(),
            "text/html; charset=utf-8".to_owned(),
        ));
        self.body = body.into_bytes();
        self.no_store()
    }

    /// A JSON body.
    pub fn json(mut self, body: &serde_json::Value) -> Self {
        self.headers
            .push(("content-type".to_owned(), "application/json".to_owned()));
        self.body = body.to_string().into_bytes();
        self.no_store()
    }

    /// A redirect.
    pub fn redirect(status: u16, location: &str) -> Self {
        Response::new(status)
            .header("location", location)
            .no_store()
    }

    fn no_store(mut self) -> Self {
        if !self.headers.iter().any(|(n, _)| n == "cache-control") {
            self.headers
                .push(("cache-control".to_owned(), "no-store".to_owned()));
        }
        self
    }
}

/// What the host must do next. Exactly one step answers each input.
#[derive(Debug)]
pub enum Step {
    /// Send the request upstream after applying these header edits.
    Continue(Vec<HeaderEdit>),
    /// Answer the client with this response; the request ends here.
    Respond(Response),
    /// Buffer the whole request body (up to `limit` bytes), then call
    /// [`crate::Filter::on_body`] with this wait.
    ReadBody {
        /// What the engine waits for.
        wait: BodyWait,
        /// The largest body the engine accepts; a larger one gets 413 from the engine.
        limit: usize,
    },
    /// Send this callout, then call [`crate::Filter::on_callout_response`] with the answer and
    /// this wait.
    Callout(Callout, CalloutWait),
    /// Carry out this byte-stream exchange (a TCP or TLS connection the host keeps for the
    /// request), then call [`crate::Filter::on_stream_reply`] with what was read and this
    /// wait. Only hosts with sockets get this step (the edge build).
    Stream(Exchange, StreamWait),
}

/// A step together with the counters the host must increment for it.
#[derive(Debug)]
pub struct Outcome {
    /// What to do.
    pub step: Step,
    /// Counters to increment by one (a closed set: [`crate::counter::Counter`]).
    pub counters: Vec<crate::counter::Counter>,
}

impl Outcome {
    pub(crate) fn new(step: Step) -> Self {
        Outcome {
            step,
            counters: Vec::new(),
        }
    }

    pub(crate) fn count(mut self, counter: crate::counter::Counter) -> Self {
        self.counters.push(counter);
        self
    }
}

/// What a timer input ([`crate::Filter::on_timer`]) or the answer to one of its callouts
/// ([`crate::Filter::on_timer_response`]) leaves the host to do: callouts to send outside any
/// request, each answered with its wait, and counters to add one to. Usually empty.
#[derive(Debug, Default)]
pub struct Background {
    /// Callouts to send, each with the wait its answer resumes.
    pub callouts: Vec<(Callout, TimerWait)>,
    /// Counters to increment by one (a closed set: [`crate::counter::Counter`]).
    pub counters: Vec<crate::counter::Counter>,
}

impl Background {
    /// Adds another's callouts and counters.
    pub fn extend(&mut self, other: Background) {
        self.callouts.extend(other.callouts);
        self.counters.extend(other.counters);
    }

    pub(crate) fn count(mut self, counter: crate::counter::Counter) -> Self {
        self.counters.push(counter);
        self
    }
}
