//! Hostile input the fixtures cannot hold: a 50 MB line, nesting 10,000 deep, 100,000
//! properties. Each gives a clear result, no panic, bounded memory, and keeps what was
//! acknowledged.

use std::io::Write;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::json;
use singer_testing::{spawn_target, write_json};

/// Runs a target on `input`, sampling its peak resident memory (kB) until it exits.
fn run_measured(target: &str, config: &Path, input: Vec<u8>) -> (Output, u64) {
    let mut child = spawn_target(target, config);
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let sampler = std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            if let Some(kb) = status
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    });
    let out = child.wait_with_output().expect("target ends");
    let _ = writer.join();
    (out, sampler.join().unwrap_or(0))
}

fn configs(dir: &Path) -> [(&'static str, std::path::PathBuf); 2] {
    [
        (
            "target-duckdb",
            write_json(dir, "duckdb.json", &json!({"path": dir.join("db.duckdb")})),
        ),
        (
            "target-parquet",
            write_json(
                dir,
                "parquet.json",
                &json!({"destination_path": dir.join("lake")}),
            ),
        ),
    ]
}

fn lines(parts: &[String]) -> Vec<u8> {
    (parts.join("\n") + "\n").into_bytes()
}

fn schema() -> String {
    json!({"type": "SCHEMA", "stream": "s", "key_properties": ["id"],
        "schema": {"properties": {"id": {"type": "integer"}, "body": {"type": ["null", "string"]}, "doc": {}}}})
    .to_string()
}

#[test]
fn a_50_mb_line_loads_in_bounded_memory() {
    let dir = tempfile::tempdir().expect("tmp");
    let big = "x".repeat(50 * 1024 * 1024);
    let input = lines(&[
        schema(),
        json!({"type": "RECORD", "stream": "s", "record": {"id": 1, "body": big}}).to_string(),
        json!({"type": "STATE", "value": {"n": 1}}).to_string(),
    ]);
    for (target, config) in configs(dir.path()) {
        let (out, peak_kb) = run_measured(target, &config, input.clone());
        assert!(
            out.status.success(),
            "{target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), r#"{"n":1}"#);
        assert!(
            peak_kb < 1_500_000,
            "{target}: peak RSS {peak_kb} kB for a 50 MB line"
        );
    }
}

#[test]
fn nesting_10000_deep_is_a_clear_error_not_a_stack_overflow() {
    let dir = tempfile::tempdir().expect("tmp");
    let deep = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let input = lines(&[
        schema(),
        json!({"type": "RECORD", "stream": "s", "record": {"id": 1}}).to_string(),
        json!({"type": "STATE", "value": {"n": 1}}).to_string(),
        format!(r#"{{"type":"RECORD","stream":"s","record":{{"id":2,"doc":{deep}}}}}"#),
    ]);
    for (target, config) in configs(dir.path()) {
        let (out, _) = run_measured(target, &config, input.clone());
        assert!(!out.status.success(), "{target}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("line 4") && stderr.contains("recursion limit"),
            "{target}: {stderr}"
        );
        assert!(
            !stderr.contains("panicked") && !stderr.contains("overflow"),
            "{target}: {stderr}"
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            r#"{"n":1}"#,
            "{target}: acknowledged data stays"
        );
    }
}

#[test]
fn one_hundred_thousand_properties() {
    let dir = tempfile::tempdir().expect("tmp");
    // A record with 100,000 undeclared properties: they are ignored.
    let wide: serde_json::Map<String, serde_json::Value> = (0..100_000)
        .map(|i| (format!("p{i}"), json!(i)))
        .chain([("id".to_string(), json!(1))])
        .collect();
    let input = lines(&[
        schema(),
        json!({"type": "RECORD", "stream": "s", "record": wide}).to_string(),
        json!({"type": "STATE", "value": {"n": 1}}).to_string(),
    ]);
    for (target, config) in configs(dir.path()) {
        let (out, peak_kb) = run_measured(target, &config, input.clone());
        assert!(
            out.status.success(),
            "{target}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(peak_kb < 1_000_000, "{target}: {peak_kb} kB");
    }
    // A schema declaring 100,000 properties is refused with a clear error.
    let props: serde_json::Map<String, serde_json::Value> = (0..100_000)
        .map(|i| (format!("p{i}"), json!({"type": "integer"})))
        .collect();
    let input = lines(&[json!({"type": "SCHEMA", "stream": "wide", "key_properties": [], "schema": {"properties": props}}).to_string()]);
    let dir = tempfile::tempdir().expect("tmp");
    for (target, config) in configs(dir.path()) {
        let (out, _) = run_measured(target, &config, input.clone());
        assert!(!out.status.success(), "{target}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("stream 'wide'") && stderr.contains("columns"),
            "{target}: {stderr}"
        );
    }
}
