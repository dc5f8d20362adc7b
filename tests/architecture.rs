//! The shape of `src/` (issue 12): no import cycle between files other than a module and its
//! own child, no function longer than 80 lines, no file longer than 800 lines. The figures come
//! from `scripts/shape.py`, which reads the source as text (see its header for how).

#![allow(clippy::expect_used, clippy::indexing_slicing)]

use std::process::Command;

use serde_json::Value;

fn shape() -> Value {
    let out = Command::new("python3")
        .args(["scripts/shape.py", "--json"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs scripts/shape.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("shape.py prints JSON")
}

#[test]
fn no_import_cycles_long_functions_or_long_files() {
    let s = shape();
    assert!(
        s["files"].as_u64().unwrap_or(0) > 50,
        "shape.py read too few files: {s}"
    );
    assert_eq!(s["cycles"], Value::Array(vec![]), "import cycles");
    assert_eq!(
        s["long_functions"],
        Value::Array(vec![]),
        "functions over 80 lines"
    );
    assert_eq!(
        s["long_files"],
        Value::Array(vec![]),
        "files over 800 lines"
    );
}
