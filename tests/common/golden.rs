//! Golden outcomes: every scenario test's requests and what the engine did with each (every
//! step, status, header, cookie and counter), normalised and kept under `tests/golden/`. A
//! scenario whose outcomes differ from its recording fails, so code can be moved (issue 12's
//! one-shape refactor) with proof that behaviour did not move. Record again on purpose with
//! `GOLDEN=update cargo test`, and review the diff like code.
//!
//! Normalisation: runs of 22 or more URL-safe characters (random states, nonces, sealed
//! cookies, signatures) become `<~N>` with their length, so recordings do not depend on
//! randomness the tests themselves draw; the engine's own randomness is made deterministic by
//! [`CountingRandom`].

use std::cell::Cell;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::rc::Rc;

use sha2::{Digest, Sha256};
use sso_filter::http::Callout;
use sso_filter::random::{Random, RandomError};
use sso_filter::{Background, Outcome, Step};

/// Randomness from a counter: SHA-256 of the draw number. Clones share the counter.
#[derive(Clone, Debug, Default)]
pub struct CountingRandom {
    n: Rc<Cell<u64>>,
}

impl Random for CountingRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(32) {
            let n = self.n.get();
            self.n.set(n + 1);
            let block = Sha256::digest(n.to_be_bytes());
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

/// Replaces long runs of URL-safe characters with their length.
pub fn elide(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 22 {
            let _ = write!(out, "<~{}>", run.len());
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

fn pairs(headers: &[(String, String)]) -> String {
    headers
        .iter()
        .map(|(n, v)| format!("{n}: {}", elide(v)))
        .collect::<Vec<_>>()
        .join(" | ")
}

fn body(bytes: &[u8]) -> String {
    let text = elide(&String::from_utf8_lossy(bytes));
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "{} bytes ~{:02x}{:02x}{:02x}{:02x}",
        bytes.len(),
        digest[0],
        digest[1],
        digest[2],
        digest[3]
    )
}

/// One step of an outcome, with its counters.
pub fn step(outcome: &Outcome) -> String {
    let what = match &outcome.step {
        Step::Continue(edits) => format!(
            "forward [{}]",
            edits
                .iter()
                .map(|e| elide(&format!("{e:?}")))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Step::Respond(r) => format!(
            "respond {} [{}] body {}",
            r.status,
            pairs(&r.headers),
            body(&r.body)
        ),
        Step::ReadBody { limit, .. } => format!("read body (limit {limit})"),
        Step::Callout(c, _) => callout(c),
        Step::Stream(x, _) => format!(
            "stream {}:{} tls {} send {} bytes, read {}..{} close {}",
            x.endpoint.host,
            x.endpoint.port,
            x.endpoint.tls,
            x.send.len(),
            x.read_at_least,
            x.read_limit,
            x.close
        ),
    };
    let counters: Vec<String> = outcome.counters.iter().map(ToString::to_string).collect();
    if counters.is_empty() {
        format!("< {what}")
    } else {
        format!("< {what} +{}", counters.join(" +"))
    }
}

fn callout(c: &Callout) -> String {
    format!(
        "callout {} {} {} [{}] body {} timeout {}",
        c.method,
        c.upstream,
        elide(&c.url),
        pairs(&c.headers),
        body(&c.body),
        c.timeout_ms
    )
}

/// What a timer input (or the answer to one of its callouts) asked for.
pub fn background(out: &Background) -> String {
    let what: Vec<String> = out.callouts.iter().map(|(c, _)| callout(c)).collect();
    let counters: Vec<String> = out.counters.iter().map(ToString::to_string).collect();
    let mut line = format!("< background [{}]", what.join(", "));
    if !counters.is_empty() {
        line.push_str(&format!(" +{}", counters.join(" +")));
    }
    line
}

/// Lines kept verbatim per recording.
const MAX_LINES: usize = 300;

thread_local! {
    static DRIVERS: Cell<usize> = const { Cell::new(0) };
}

/// Compares (or, with `GOLDEN=update`, records) a driver's transcript. Called when the driver
/// is dropped at the end of a test that did not fail otherwise.
pub fn check(transcript: &[String]) {
    if std::thread::panicking() || transcript.is_empty() {
        return;
    }
    let thread = std::thread::current();
    let Some(test) = thread.name().filter(|n| *n != "main") else {
        return;
    };
    let n = DRIVERS.with(|d| {
        let n = d.get();
        d.set(n + 1);
        n
    });
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{}.{n}.txt", test.replace("::", ".")));
    // Long floods keep their first lines and a digest of the rest.
    let mut lines: Vec<String> = transcript.iter().take(MAX_LINES).cloned().collect();
    if transcript.len() > MAX_LINES {
        let rest = transcript.get(MAX_LINES..).unwrap_or_default().join("\n");
        let digest = Sha256::digest(rest.as_bytes());
        lines.push(format!(
            "... {} more lines, sha256 {}",
            transcript.len() - MAX_LINES,
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ));
    }
    let text = lines.join("\n") + "\n";
    if std::env::var("GOLDEN").as_deref() == Ok("update") {
        std::fs::write(&path, text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden recording {}: record it with GOLDEN=update cargo test",
            path.display()
        )
    });
    if want != text {
        let first = want
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| want.lines().count().min(text.lines().count()));
        panic!(
            "outcomes differ from {} at line {}:\n  recorded: {}\n  now:      {}\n(GOLDEN=update cargo test records them again; review the diff)",
            path.display(),
            first + 1,
            want.lines().nth(first).unwrap_or("<end>"),
            text.lines().nth(first).unwrap_or("<end>")
        );
    }
}
