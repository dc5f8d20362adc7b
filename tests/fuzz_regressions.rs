//! The fuzz targets on stable, in `make test` and so in CI (issue 11: CI replays instead of
//! running libFuzzer; `make fuzz` runs the real thing, see fuzz/README.md).
//!
//! For every target in `sso_filter::fuzzing::targets::ALL`:
//! 1. every seed in `fuzz/seeds/<target>/` and every crash reproducer in
//!    `fuzz/regressions/<target>/` goes through the target function (which asserts the
//!    target's properties and panics on a violation);
//! 2. a short deterministic mutation pass: `FUZZ_CI_ITERS` (default 48) inputs made from the
//!    seeds by the same kind of edits libFuzzer makes, so CI also tries inputs nobody wrote.
//!
//! It also checks the wiring: each target has its cargo-fuzz binary and at least one seed.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};

use sso_filter::fuzzing::targets::ALL;

fn dir(kind: &str, target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target)
}

fn files(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(path)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap(),
                    )
                })
                .filter(|(n, _)| n != "README.md")
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// A small xorshift generator: the mutation pass must be the same on every run.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }
}

/// libFuzzer-like edits on a seed: flip, set, erase, insert, duplicate, splice another seed.
fn mutate(rng: &mut Xorshift, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let len = v.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            2 if len > 1 => {
                let i = rng.below(len);
                let end = (i + rng.below(16) + 1).min(len);
                v.drain(i..end);
            }
            3 => {
                let i = rng.below(len + 1);
                let b = [
                    b'<', b'>', b'"', b'=', b'&', b';', b'.', b'/', b'%', 0, 0xff, b'\n',
                ];
                v.insert(i, b[rng.below(b.len())]);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let end = (i + rng.below(32) + 1).min(len);
                let run = v[i..end].to_vec();
                v.splice(end..end, run);
            }
            _ if !other.is_empty() => {
                let i = rng.below(len + 1);
                let j = rng.below(other.len());
                let end = (j + rng.below(64) + 1).min(other.len());
                v.splice(i..i, other[j..end].iter().copied());
            }
            _ => {}
        }
    }
    v
}

fn run_one(target: &str, f: fn(&[u8]), name: &str, input: &[u8]) -> Result<(), String> {
    std::panic::catch_unwind(|| f(input)).map_err(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_default();
        format!("{target}/{name}: {msg}")
    })
}

#[test]
fn every_target_is_wired_and_seeded() {
    for (name, _) in ALL {
        let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/fuzz_targets")
            .join(format!("{name}.rs"));
        let text =
            std::fs::read_to_string(&bin).unwrap_or_else(|_| panic!("{} missing", bin.display()));
        assert!(
            text.contains(&format!("targets::{}", fn_name(name))),
            "{} does not call its target",
            bin.display()
        );
        assert!(!files(&dir("seeds", name)).is_empty(), "no seed for {name}");
    }
    let cargo =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/Cargo.toml"))
            .unwrap();
    for (name, _) in ALL {
        assert!(
            cargo.contains(&format!("name = \"{name}\"")),
            "fuzz/Cargo.toml lacks [[bin]] {name}"
        );
    }
}

/// The Rust function a target name maps to (`cookie_header` is `cookie_header_target`: a
/// helper of the same name exists).
fn fn_name(target: &str) -> String {
    if target == "cookie_header" {
        "cookie_header_target".into()
    } else {
        target.into()
    }
}

#[test]
fn seeds_and_regressions_replay() {
    let mut failures = Vec::new();
    let mut report = Vec::new();
    for (name, f) in ALL {
        let seeds = files(&dir("seeds", name));
        let regressions = files(&dir("regressions", name));
        for (file, input) in seeds.iter().chain(regressions.iter()) {
            if let Err(e) = run_one(name, *f, file, input) {
                failures.push(e);
            }
        }
        report.push(format!(
            "{name}: {} seeds, {} regressions",
            seeds.len(),
            regressions.len()
        ));
    }
    println!("{}", report.join("\n"));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The seeds must get past the first checks: each deep point was reached at least once
    // (a structure-aware target whose seeds all fail early would otherwise pass silently).
    let reached = sso_filter::fuzzing::reached_counts();
    println!("reached: {reached:?}");
    for point in [
        "cookie_header.identity",
        "flow_state.taken",
        "path_query.forwarded_public",
        "form_body.answered",
        "jws.verified",
        "jwe.decrypted",
        "jwt_param.admitted",
        "idp_json.token",
        "idp_json.id_token",
        "idp_answers.callback",
        "idp_answers.callout",
        "idp_answers.admitted",
        "idp_answers.ticket_admitted",
        "idp_answers.teams_admitted",
        "fleet_answers.admitted",
        "fleet_answers.refused",
        "saml_response.verified",
        "saml_redirect.verified",
        "saml_redirect.posted_logout_verified",
        "xml_c14n.canonical",
        "cas_xml.success",
        "ldap_ber.message",
        "ldap_ber.next_round",
        "mapping.identity",
        "config.loaded",
    ] {
        assert!(
            reached.get(point).copied().unwrap_or(0) > 0,
            "no seed reached {point}: {reached:?}"
        );
    }
}

#[test]
fn short_mutation_pass() {
    let iters: usize = std::env::var("FUZZ_CI_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    let mut failures = Vec::new();
    for (t, (name, f)) in ALL.iter().enumerate() {
        let seeds: Vec<Vec<u8>> = files(&dir("seeds", name))
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        if seeds.is_empty() {
            continue;
        }
        let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15 ^ (t as u64 + 1));
        for i in 0..iters {
            let a = &seeds[rng.below(seeds.len())];
            let b = &seeds[rng.below(seeds.len())];
            let input = mutate(&mut rng, a, b);
            if let Err(e) = run_one(name, *f, &format!("mutation {i}"), &input) {
                let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
                failures.push(format!("{e}\n  input (hex): {hex}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
