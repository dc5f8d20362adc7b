//! A driver for scenario tests: feeds requests to the engine with a virtual clock, keeps a
//! browser's cookie jar, and answers body reads, the way a host would.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod golden;

use std::collections::BTreeMap;

use sso_filter::cache::MemoryCache;
use sso_filter::http::{Callout, Exchange, StreamReply};
use sso_filter::wait::CalloutWait;
use sso_filter::{CalloutResponse, Env, Filter, HeaderEdit, Outcome, RequestHead, Response, Step};

/// A fake IdP: answers each callout (and may assert what it received).
pub type Idp = Box<dyn FnMut(&Callout) -> CalloutResponse>;

pub const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY";
pub const SEED_SECRET: &str = "4b117a14-c652-410a-83b2-9839c16e7ae1";

/// What happened to one request.
#[derive(Debug)]
pub enum Done {
    /// Forwarded upstream with these edits.
    Forwarded(Vec<HeaderEdit>),
    /// Answered locally.
    Answered(Response),
}

impl Done {
    pub fn response(&self) -> &Response {
        match self {
            Done::Answered(r) => r,
            Done::Forwarded(_) => panic!("expected a local response, got a forward: {self:?}"),
        }
    }

    pub fn edits(&self) -> &[HeaderEdit] {
        match self {
            Done::Forwarded(e) => e,
            Done::Answered(r) => panic!(
                "expected a forward, got {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            ),
        }
    }

    /// The value an identity header is set to, if set.
    pub fn set(&self, name: &str) -> Option<String> {
        self.edits().iter().find_map(|e| match e {
            HeaderEdit::Set(n, v) if n == name => Some(v.clone()),
            _ => None,
        })
    }

    pub fn status(&self) -> u16 {
        self.response().status
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.response()
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    pub fn set_cookies(&self) -> Vec<String> {
        match self {
            Done::Answered(r) => r
                .headers
                .iter()
                .filter(|(n, _)| n == "set-cookie")
                .map(|(_, v)| v.clone())
                .collect(),
            Done::Forwarded(_) => Vec::new(),
        }
    }

    pub fn body(&self) -> String {
        String::from_utf8_lossy(&self.response().body).into_owned()
    }
}

pub type Directory = Box<dyn FnMut(&Exchange) -> StreamReply>;

pub struct Driver {
    pub filter: Filter,
    pub now: u64,
    pub cache: MemoryCache,
    pub jar: BTreeMap<String, String>,
    pub counters: Vec<String>,
    pub idp: Option<Idp>,
    pub callouts: Vec<Callout>,
    /// Answers byte-stream rounds (a scripted directory).
    pub directory: Option<Directory>,
    pub exchanges: Vec<Exchange>,
    /// The client address the next requests come from (the host's peer address).
    pub client: Option<std::net::IpAddr>,
    /// Every request and what the engine did with it, normalised (see `golden`).
    pub transcript: Vec<String>,
    /// Deterministic randomness, so a scenario's outcomes are the same on every run.
    pub rng: crate::common::golden::CountingRandom,
}

impl Drop for Driver {
    fn drop(&mut self) {
        golden::check(&self.transcript);
    }
}

impl Driver {
    pub fn new(config: &serde_json::Value) -> Self {
        let filter = Filter::from_json(config.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("config: {e}"));
        Driver {
            filter,
            now: 1_767_225_600,
            cache: MemoryCache::default(),
            jar: BTreeMap::new(),
            counters: Vec::new(),
            idp: None,
            callouts: Vec::new(),
            directory: None,
            exchanges: Vec::new(),
            client: "192.0.2.10".parse().ok(),
            transcript: Vec::new(),
            rng: golden::CountingRandom::default(),
        }
    }

    fn cookie_header(&self) -> Option<(String, String)> {
        (!self.jar.is_empty()).then(|| {
            (
                "cookie".to_owned(),
                self.jar
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }

    /// A browser navigation (Accept: text/html) with the jar's cookies.
    pub fn get(&mut self, path: &str) -> Done {
        let mut headers = vec![(
            "accept".to_owned(),
            "text/html,application/xhtml+xml".to_owned(),
        )];
        headers.extend(self.cookie_header());
        self.send("GET", path, headers, None)
    }

    /// An API call (Accept: application/json) with the jar's cookies and extra headers.
    pub fn api(&mut self, path: &str, extra: &[(&str, &str)]) -> Done {
        let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
        headers.extend(self.cookie_header());
        headers.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.send("GET", path, headers, None)
    }

    /// Posts a form with the jar's cookies.
    pub fn post_form(&mut self, path: &str, form: &[(&str, &str)]) -> Done {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut headers = vec![
            ("accept".to_owned(), "text/html".to_owned()),
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            ),
        ];
        headers.extend(self.cookie_header());
        self.send("POST", path, headers, Some(body.into_bytes()))
    }

    fn head(&self, method: &str, path: &str, headers: Vec<(String, String)>) -> RequestHead {
        RequestHead {
            method: method.into(),
            path: path.into(),
            headers,
            client: self.client,
            peer: None,
        }
    }

    /// The engine's first answer to an API call with the jar's cookies, not carried on: a
    /// request left waiting (its callout unanswered) while other requests come. Not recorded
    /// in the golden transcript.
    pub fn start_api(&mut self, path: &str) -> Outcome {
        let mut headers = vec![("accept".to_owned(), "application/json".to_owned())];
        headers.extend(self.cookie_header());
        let head = self.head("GET", path, headers);
        self.one_input(|filter, env| filter.on_request(&head, env))
    }

    /// Answers the callout of a request [`Driver::start_api`] left waiting.
    pub fn answer_held(&mut self, wait: CalloutWait, answer: CalloutResponse) -> Outcome {
        self.one_input(|filter, env| filter.on_callout_response(wait, answer, env))
    }

    /// One host input at the driver's time (the engine's randomness is the driver's counter).
    fn one_input(&mut self, input: impl FnOnce(&Filter, &mut Env<'_>) -> Outcome) -> Outcome {
        let mut rng = self.rng.clone();
        let mut env = Env {
            now: self.now,
            now_ms: self.now * 1000,
            rng: &mut rng,
            cache: &self.cache,
            fleet: Default::default(),
        };
        input(&self.filter, &mut env)
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
    ) -> Done {
        let head = self.head(method, path, headers);
        self.transcript.push(format!(
            "> {method} {} @{} from {:?}",
            golden::elide(path),
            self.now,
            self.client
        ));
        let mut outcome = self.one_input(|filter, env| filter.on_request(&head, env));
        loop {
            self.counters
                .extend(outcome.counters.iter().map(ToString::to_string));
            self.transcript.push(golden::step(&outcome));
            match outcome.step {
                Step::Continue(edits) => {
                    // Response headers the host adds to the upstream's answer.
                    for e in &edits {
                        if let HeaderEdit::AddResponse(n, v) = e {
                            let r = Response {
                                status: 200,
                                headers: vec![(n.clone(), v.clone())],
                                body: vec![],
                            };
                            self.absorb(&r);
                        }
                    }
                    return Done::Forwarded(edits);
                }
                Step::Respond(response) => {
                    self.absorb(&response);
                    return Done::Answered(response);
                }
                Step::ReadBody {
                    wait: pending,
                    limit,
                } => {
                    let body = body.clone().unwrap_or_default();
                    let body = &body[..body.len().min(limit + 1)];
                    outcome = self.one_input(|filter, env| filter.on_body(pending, body, env));
                }
                Step::Stream(x, pending) => {
                    let dir = self
                        .directory
                        .as_mut()
                        .unwrap_or_else(|| panic!("unexpected stream {x:?}"));
                    let reply = dir(&x);
                    self.exchanges.push(x);
                    outcome =
                        self.one_input(|filter, env| filter.on_stream_reply(pending, reply, env));
                }
                Step::Callout(c, pending) => {
                    let idp = self
                        .idp
                        .as_mut()
                        .unwrap_or_else(|| panic!("unexpected callout {c:?}"));
                    let answer = idp(&c);
                    self.callouts.push(c);
                    outcome = self
                        .one_input(|filter, env| filter.on_callout_response(pending, answer, env));
                }
            }
        }
    }

    /// The host's timer: the engine's background work (an organisation sync), its callouts
    /// answered by the IdP one after another. Returns how many callouts it made.
    pub fn tick(&mut self) -> usize {
        let mut rng = self.rng.clone();
        let mut env = Env {
            now: self.now,
            now_ms: self.now * 1000,
            rng: &mut rng,
            cache: &self.cache,
            fleet: Default::default(),
        };
        self.transcript.push(format!("> timer @{}", self.now));
        let mut todo = vec![self.filter.on_timer(&mut env)];
        let mut made = 0;
        while let Some(out) = todo.pop() {
            self.counters
                .extend(out.counters.iter().map(ToString::to_string));
            self.transcript.push(golden::background(&out));
            for (c, wait) in out.callouts {
                let idp = self
                    .idp
                    .as_mut()
                    .unwrap_or_else(|| panic!("unexpected timer callout {c:?}"));
                let answer = idp(&c);
                self.callouts.push(c);
                made += 1;
                todo.push(self.filter.on_timer_response(wait, answer, &mut env));
            }
        }
        made
    }

    /// Applies `Set-Cookie` headers to the jar as a browser would.
    fn absorb(&mut self, response: &Response) {
        for (n, v) in &response.headers {
            if n != "set-cookie" {
                continue;
            }
            let (name, value) = v.split(';').next().unwrap().split_once('=').unwrap();
            if v.contains("Max-Age=0") {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    /// The `state` hidden field of a login form page.
    pub fn form_state(done: &Done) -> String {
        let body = done.body();
        let start = body.find("name=\"state\" value=\"").expect("state field") + 20;
        body[start..].split('"').next().unwrap().to_owned()
    }

    pub fn count(&self, name: &str) -> usize {
        self.counters.iter().filter(|c| *c == name).count()
    }
}

pub fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}
