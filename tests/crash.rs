//! Crash consistency: kill the target, the tap, or both at seeded random points of a load,
//! rerun from the last state the target acknowledged, and find every source row exactly
//! once, for append-only and upsert streams, in DuckDB and in Parquet.
//!
//! `SOAK=1` (or `make soak`) runs 200 kill points per target instead of 20.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use singer_testing::{bin, run_target, spawn_target, write_json};

const RECORDS: usize = 12_000;
const STATE_EVERY: usize = 700;

fn kill_points() -> u64 {
    if std::env::var("SOAK").is_ok_and(|v| v == "1") {
        200
    } else {
        20
    }
}

/// Two streams: `events` (no key: append-only) and `items` (keyed: upserted; ids repeat
/// with rising `rev`). A STATE every `STATE_EVERY` records.
fn source() -> Vec<String> {
    let mut lines = vec![
        json!({"type": "SCHEMA", "stream": "events", "key_properties": [],
            "schema": {"properties": {"seq": {"type": "integer"}, "payload": {"type": "string"},
                "at": {"type": "string", "format": "date-time"}}}})
        .to_string(),
        json!({"type": "SCHEMA", "stream": "items", "key_properties": ["id"],
            "schema": {"properties": {"id": {"type": "integer"}, "rev": {"type": "integer"},
                "tags": {"type": "array", "items": {"type": "string"}}}}})
        .to_string(),
    ];
    for i in 1..=RECORDS {
        lines.push(
            json!({"type": "RECORD", "stream": "events", "record": {"seq": i,
                "payload": format!("event {i} {}", "x".repeat(120)), "at": "2024-01-15T10:23:45.123+0000"}})
            .to_string(),
        );
        lines.push(
            json!({"type": "RECORD", "stream": "items", "record": {"id": i % (RECORDS * 4 / 5) + 1, "rev": i, "tags": ["a", "b"]}})
                .to_string(),
        );
        if i % STATE_EVERY == 0 || i == RECORDS {
            lines.push(json!({"type": "STATE", "value": {"bookmarks": {"events": {"replication_key_value": i}}}}).to_string());
        }
    }
    lines
}

#[derive(Clone, Copy, Debug)]
enum Target {
    Duckdb,
    Parquet,
}

impl Target {
    fn binary(self) -> &'static str {
        match self {
            Target::Duckdb => "target-duckdb",
            Target::Parquet => "target-parquet",
        }
    }

    fn config(self, dir: &Path) -> PathBuf {
        let mut config = match self {
            Target::Duckdb => json!({"path": dir.join("db.duckdb")}),
            Target::Parquet => json!({"destination_path": dir.join("lake")}),
        };
        config["batch_size_rows"] = json!(1500);
        write_json(dir, "config.json", &config)
    }

    fn relation(self, dir: &Path, stream: &str) -> String {
        match self {
            Target::Duckdb => stream.to_string(),
            Target::Parquet => format!(
                "read_parquet('{}/lake/{stream}/**/*.parquet')",
                dir.display()
            ),
        }
    }

    fn connect(self, dir: &Path) -> duckdb::Connection {
        match self {
            Target::Duckdb => duckdb::Connection::open(dir.join("db.duckdb")).expect("db"),
            Target::Parquet => duckdb::Connection::open_in_memory().expect("duckdb"),
        }
    }

    /// Every source row exactly once.
    fn check(self, dir: &Path, what: &str) {
        let conn = self.connect(dir);
        let q = |sql: String| -> i64 {
            conn.query_row(&sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{what}: {sql}: {e}"))
        };
        let events = self.relation(dir, "events");
        let items = self.relation(dir, "items");
        assert_eq!(
            q(format!("SELECT count(*) FROM {events}")),
            RECORDS as i64,
            "{what}: events rows"
        );
        assert_eq!(
            q(format!("SELECT count(DISTINCT seq) FROM {events}")),
            RECORDS as i64,
            "{what}: events lost"
        );
        match self {
            Target::Duckdb => {
                let ids = (RECORDS * 4 / 5) as i64;
                assert_eq!(
                    q(format!("SELECT count(*) FROM {items}")),
                    ids,
                    "{what}: items rows"
                );
                assert_eq!(
                    q(format!("SELECT count(DISTINCT id) FROM {items}")),
                    ids,
                    "{what}: items ids"
                );
                let stale = q(format!(
                    "SELECT count(*) FROM {items} WHERE rev <> (CASE WHEN id <= {} THEN id - 1 + {} ELSE id - 1 END)",
                    RECORDS / 5 + 1,
                    RECORDS * 4 / 5
                ));
                assert_eq!(stale, 0, "{what}: every item holds its last revision");
            }
            Target::Parquet => {
                // Parquet datasets append: each source record once.
                assert_eq!(
                    q(format!("SELECT count(*) FROM {items}")),
                    RECORDS as i64,
                    "{what}: items rows"
                );
                assert_eq!(
                    q(format!("SELECT count(DISTINCT rev) FROM {items}")),
                    RECORDS as i64,
                    "{what}: items dup"
                );
            }
        }
    }
}

/// The input after the last state the target acknowledged (with the SCHEMAs first).
fn resume_input(lines: &[String], acknowledged: &[String]) -> Vec<u8> {
    let start = match acknowledged
        .iter()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
    {
        Some(state) => {
            lines
                .iter()
                .rposition(|l| {
                    serde_json::from_str::<Value>(l)
                        .ok()
                        .and_then(|m| m.get("value").cloned())
                        == Some(state.clone())
                })
                .expect("an acknowledged state is an input state")
                + 1
        }
        None => 2,
    };
    let mut out = format!("{}\n{}\n", lines[0], lines[1]);
    for l in &lines[start.max(2)..] {
        out.push_str(l);
        out.push('\n');
    }
    out.into_bytes()
}

/// Feeds `input` to a target and kills it after about `cut` bytes (SIGKILL, or SIGTERM for
/// a graceful stop); returns the states it acknowledged.
fn feed_and_kill(
    target: Target,
    config: &Path,
    input: &[u8],
    cut: usize,
    pause_ms: u64,
    term: bool,
) -> Vec<String> {
    let mut child = spawn_target(target.binary(), config);
    let stdout = child.stdout.take().expect("stdout");
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let sink = acknowledged.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().expect("lock").push(line);
        }
    });
    let mut stdin = child.stdin.take().expect("stdin");
    let _ = stdin.write_all(&input[..cut.min(input.len())]);
    let _ = stdin.flush();
    std::thread::sleep(Duration::from_millis(pause_ms));
    if term {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    drop(stdin);
    let _ = child.wait();
    let _ = reader.join();
    acknowledged.lock().expect("lock").clone()
}

fn kill_the_target(target: Target) {
    let lines = source();
    let input: Vec<u8> = lines
        .iter()
        .flat_map(|l| l.bytes().chain(std::iter::once(b'\n')))
        .collect();
    let mut rng = fastrand::Rng::with_seed(0x5EED);
    for point in 0..kill_points() {
        let dir = tempfile::tempdir().expect("tmp");
        let config = target.config(dir.path());
        let cut = rng.usize(..input.len());
        let pause = rng.u64(0..40);
        let term = point % 5 == 4;
        let acknowledged = feed_and_kill(target, &config, &input, cut, pause, term);
        let rerun = run_target(
            target.binary(),
            &config,
            &resume_input(&lines, &acknowledged),
        );
        assert!(
            rerun.status.success(),
            "{target:?} point {point}: rerun failed: {}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        target.check(
            dir.path(),
            &format!(
                "{target:?} kill point {point} (cut {cut} of {}, {}, {} states acknowledged)",
                input.len(),
                if term { "SIGTERM" } else { "SIGKILL" },
                acknowledged.len()
            ),
        );
    }
}

#[test]
fn killing_target_duckdb_loses_and_repeats_nothing() {
    kill_the_target(Target::Duckdb);
}

#[test]
fn killing_target_parquet_loses_and_repeats_nothing() {
    kill_the_target(Target::Parquet);
}

/// The tap dies (or both die): `singer-replay play` stands in for a tap that is killed
/// part-way; the target sees the end of its input.
fn kill_the_tap(target: Target, also_target: bool) {
    let lines = source();
    let dir = tempfile::tempdir().expect("tmp");
    let capture = dir.path().join("capture.singer");
    std::fs::write(&capture, lines.join("\n") + "\n").expect("capture");
    let mut rng = fastrand::Rng::with_seed(0xBEEF + u64::from(also_target));
    for point in 0..kill_points().div_ceil(4) {
        let work = tempfile::tempdir().expect("tmp");
        let config = target.config(work.path());
        let mut tap = Command::new(bin("singer-replay"))
            .arg("play")
            .arg(&capture)
            .args(["--rate", "40000"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("tap");
        let mut sink = Command::new(bin(target.binary()))
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::from(tap.stdout.take().expect("tap stdout")))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("target");
        std::thread::sleep(Duration::from_millis(rng.u64(50..600)));
        let _ = tap.kill();
        let _ = tap.wait();
        if also_target {
            let _ = sink.kill();
        }
        let out = sink.wait_with_output().expect("target ends");
        let acknowledged: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let rerun = run_target(
            target.binary(),
            &config,
            &resume_input(&lines, &acknowledged),
        );
        assert!(
            rerun.status.success(),
            "{}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        let logs = format!(
            "first run ({}):\n{}\nrerun:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&rerun.stderr)
        );
        target.check(
            work.path(),
            &format!("{target:?} tap kill {point} (target killed too: {also_target})\n{logs}"),
        );
    }
}

#[test]
fn killing_the_tap_or_both_loses_and_repeats_nothing() {
    for target in [Target::Duckdb, Target::Parquet] {
        kill_the_tap(target, false);
        kill_the_tap(target, true);
    }
}

#[test]
fn resume_input_starts_after_the_acknowledged_state() {
    let lines = source();
    let state =
        json!({"bookmarks": {"events": {"replication_key_value": STATE_EVERY}}}).to_string();
    let input = String::from_utf8(resume_input(&lines, &[state])).expect("utf8");
    let first_record: Value =
        serde_json::from_str(input.lines().nth(2).expect("line")).expect("json");
    assert_eq!(first_record["record"]["seq"], json!(STATE_EVERY + 1));
    let seqs: HashSet<u64> = input
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|m| m["record"]["seq"].as_u64())
        .collect();
    assert_eq!(seqs.len(), RECORDS - STATE_EVERY);
}
