//! `make bench` keeps working: its smoke size runs every measured system once and prints
//! the ratio table (speed is judged by `make bench` itself, never by a test).

use singer_testing::{bin, root};

#[test]
fn the_bench_runs_at_smoke_size() {
    let bin_dir = bin("singer-bench").parent().expect("bin dir").to_path_buf();
    let out = std::process::Command::new("python3")
        .arg(root().join("scripts/bench.py"))
        .arg("--smoke")
        .env("BIN", &bin_dir)
        .output()
        .expect("python3 runs the bench");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for system in [
        "cat (I/O floor)",
        "serde_json parse of every line",
        "target-duckdb append",
        "target-duckdb upsert",
        "target-parquet",
        "target-duckdb from Parquet BATCH files",
        "target-parquet from Parquet BATCH files",
        "DuckDB read_ndjson -> table",
        "DuckDB read_ndjson -> parquet",
    ] {
        assert!(
            text.contains(&format!("| {system} |")),
            "{system} missing:\n{text}"
        );
    }
    assert!(
        text.contains("| target-duckdb upsert time / append time |"),
        "{text}"
    );
    assert!(
        text.contains("| Parquet BATCH files |") && text.contains("Parquet BATCH files vs RECORDs"),
        "{text}"
    );
}
