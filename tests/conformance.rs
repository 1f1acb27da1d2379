//! The conformance suite passes on both targets.

use singer_testing::{bin, outcome, root};

fn conformance(target: &str) -> (bool, String) {
    let out = std::process::Command::new(bin("singer-conformance"))
        .arg("--target")
        .arg(bin(target))
        .arg("--fixtures")
        .arg(root().join("fixtures"))
        .output()
        .expect("singer-conformance runs");
    outcome(&out)
}

#[test]
fn target_duckdb_passes_every_fixture() {
    let (ok, report) = conformance("target-duckdb");
    assert!(ok, "{report}");
    assert!(report.contains(" 0 failed"), "{report}");
    assert!(
        report.lines().filter(|l| l.starts_with("PASS")).count() >= 25,
        "{report}"
    );
}

#[test]
fn target_parquet_passes_every_fixture() {
    let (ok, report) = conformance("target-parquet");
    assert!(ok, "{report}");
    assert!(
        report.lines().filter(|l| l.starts_with("PASS")).count() >= 22,
        "{report}"
    );
}
