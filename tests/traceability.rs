//! docs/security-tests.md cannot rot: every checklist id is listed once, every test it names
//! exists, and its counts match its table (issue 11).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

struct Row {
    id: String,
    status: String,
    tests: Vec<String>,
}

fn rows(doc: &str) -> Vec<Row> {
    doc.lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| Id ") && !l.starts_with("|---"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let tests = cells[3]
                .split('`')
                .enumerate()
                .filter(|(i, _)| i % 2 == 1)
                .map(|(_, t)| t.to_owned())
                .collect();
            Row {
                id: cells[1].to_owned(),
                status: cells[2].to_owned(),
                tests,
            }
        })
        .collect()
}

/// The checklist ids: from shared/reference/security.md beside the repository (where CI and
/// the developers' machines have it), else the A1-N4 numbering the checklist uses.
fn checklist_ids() -> BTreeSet<String> {
    let path = Path::new(ROOT).join("../shared/reference/security.md");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let mut ids = BTreeSet::new();
        for line in text.lines() {
            for prefix in ["**", "- **"] {
                if let Some(rest) = line.strip_prefix(prefix) {
                    let id: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric())
                        .collect();
                    let mut chars = id.chars();
                    if id.len() >= 2
                        && chars.next().is_some_and(|c| ('A'..='N').contains(&c))
                        && chars.all(|c| c.is_ascii_digit())
                    {
                        ids.insert(id);
                    }
                }
            }
        }
        assert_eq!(ids.len(), 127, "security.md changed: {} ids", ids.len());
        return ids;
    }
    println!(
        "{} not found: checking against the A1-N4 numbering",
        path.display()
    );
    let counts = [
        ('A', 9),
        ('B', 8),
        ('C', 8),
        ('D', 8),
        ('E', 9),
        ('F', 15),
        ('G', 5),
        ('H', 6),
        ('I', 15),
        ('J', 17),
        ('K', 8),
        ('L', 10),
        ('M', 5),
        ('N', 4),
    ];
    counts
        .iter()
        .flat_map(|(l, n)| (1..=*n).map(move |i| format!("{l}{i}")))
        .collect()
}

#[test]
fn every_item_is_listed_with_tests_that_exist() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/security-tests.md")).unwrap();
    let rows = rows(&doc);
    let ids = checklist_ids();
    let listed: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let unique: BTreeSet<&str> = listed.iter().copied().collect();
    assert_eq!(unique.len(), listed.len(), "an id is listed twice");
    for id in &ids {
        assert!(
            unique.contains(id.as_str()),
            "{id} is not in docs/security-tests.md"
        );
    }
    for id in &unique {
        assert!(ids.contains(*id), "{id} is not a checklist id");
    }
    let mut bad = Vec::new();
    for r in &rows {
        assert!(
            ["tested", "defended-untested", "missing"].contains(&r.status.as_str()),
            "{}: status {}",
            r.id,
            r.status
        );
        if r.status == "tested" {
            assert!(!r.tests.is_empty(), "{} is tested by nothing", r.id);
        }
        for t in &r.tests {
            let (file, name) = t
                .rsplit_once("::")
                .unwrap_or_else(|| panic!("{}: `{t}` is not FILE::NAME", r.id));
            let text = std::fs::read_to_string(Path::new(ROOT).join(file)).unwrap_or_default();
            if !text.contains(&format!("fn {name}(")) && !text.contains(&format!("def {name}(")) {
                bad.push(format!("{}: {t}", r.id));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "tests named in docs/security-tests.md that do not exist:\n{}",
        bad.join("\n")
    );
}

#[test]
fn counts_match_the_table() {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/security-tests.md")).unwrap();
    let rows = rows(&doc);
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let line = format!(
        "tested: {}, defended-untested: {}, missing: {} (of {})",
        count("tested"),
        count("defended-untested"),
        count("missing"),
        rows.len()
    );
    assert!(
        doc.contains(&line),
        "docs/security-tests.md counts should read: {line}"
    );
    // Before issue 11: rows tested by at least one test that predates it.
    let new = [
        "src/fuzzing/",
        "tests/corpora",
        "tests/differential.rs",
        "tests/fuzz_regressions.rs",
    ];
    let before = rows
        .iter()
        .filter(|r| {
            r.status == "tested"
                && r.tests
                    .iter()
                    .any(|t| !new.iter().any(|n| t.starts_with(n)))
        })
        .count();
    let line = format!("tested: {before}, untested: {}", rows.len() - before);
    assert!(
        doc.contains(&line),
        "docs/security-tests.md 'before' should read: {line}"
    );
    println!(
        "traceability: {} tested, {} defended-untested, {} missing; before issue 11: {before} tested",
        count("tested"),
        count("defended-untested"),
        count("missing")
    );
}
