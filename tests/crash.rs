//! Crash consistency: kill the target, the tap, or both at seeded random points of a load,
//! rerun from a state the target acknowledged (the last, or up to three before it: the
//! orchestrator may not have saved the newest), with a resumed tap that behaves like a real
//! one (a new `time_extracted` on every record, other key order, other whitespace), and
//! find every source row exactly once, for append-only and upsert streams, in DuckDB and
//! in Parquet, with the tap's final state acknowledged. Some kill points run with a byte
//! budget smaller than a STATE interval, so commits go past the last STATE.
//!
//! `SOAK=1` (or `make soak`) runs 200 kill points per target instead of 20.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use singer_testing::{after_state, bin, run_target, spawn_target, write_json, write_lines};

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
                "payload": format!("event {i} {}", "x".repeat(120)), "at": "2024-01-15T10:23:45.123+0000"},
                "time_extracted": "2024-06-01T00:00:00Z"})
            .to_string(),
        );
        lines.push(
            json!({"type": "RECORD", "stream": "items", "record": {"id": i % (RECORDS * 4 / 5) + 1, "rev": i, "tags": ["a", "b"]},
                "time_extracted": "2024-06-01T00:00:00Z"})
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

    /// `small_budget`: a byte budget below one STATE interval (~200 KB of input), so
    /// commits go past the last STATE.
    fn config(self, dir: &Path, small_budget: bool) -> PathBuf {
        let mut config = match self {
            Target::Duckdb => json!({"path": dir.join("db.duckdb")}),
            Target::Parquet => json!({"destination_path": dir.join("lake")}),
        };
        config["batch_size_rows"] = json!(1500);
        if small_budget {
            config["batch_size_bytes"] = json!(48 * 1024);
        }
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

/// A record line as a resumed tap writes it: extracted now, keys in another order, other
/// whitespace. Other lines unchanged.
fn restamp(line: &str, run: u32) -> String {
    let Ok(Value::Object(message)) = serde_json::from_str::<Value>(line) else {
        return line.to_string();
    };
    if message.get("type") != Some(&json!("RECORD")) {
        return line.to_string();
    }
    let mut out = serde_json::Map::new();
    out.insert(
        "time_extracted".into(),
        json!(format!("2026-12-03T07:{:02}:00.{run:06}Z", run % 60)),
    );
    for (key, value) in message.into_iter().rev() {
        if key == "record"
            && let Value::Object(record) = value
        {
            out.insert(key, Value::Object(record.into_iter().rev().collect()));
        } else if key != "time_extracted" {
            out.insert(key, value);
        }
    }
    // Spaces after separators, as Python's json.dumps writes them.
    serde_json::to_string(&Value::Object(out))
        .unwrap_or_default()
        .replace("\":", "\": ")
        .replace(",\"", ", \"")
}

/// What a tap resumed from a state the target acknowledged sends: SCHEMAs, then everything
/// after that state, re-extracted. `behind`: how many acknowledged states the orchestrator
/// missed (it resumes from an older one; from the start if there is none).
fn resume_input(lines: &[String], acknowledged: &[String], behind: usize, run: u32) -> Vec<u8> {
    let from = acknowledged
        .len()
        .checked_sub(behind + 1)
        .and_then(|at| serde_json::from_str::<Value>(&acknowledged[at]).ok());
    let start = from.map_or(2, |state| after_state(lines, &state));
    let mut out = format!("{}\n{}\n", lines[0], lines[1]);
    for l in &lines[start.max(2)..] {
        out.push_str(&restamp(l, run));
        out.push('\n');
    }
    out.into_bytes()
}

/// The tap's final state.
fn final_state(lines: &[String]) -> Value {
    lines
        .iter()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok()?.get("value").cloned())
        .expect("the source ends with a state")
}

/// How many acknowledged states the orchestrator missed: none once the target released the
/// final state (the run was complete: that is the last line it wrote).
fn missed(rng: &mut fastrand::Rng, lines: &[String], acknowledged: &[String]) -> usize {
    let complete = acknowledged
        .last()
        .and_then(|l| serde_json::from_str::<Value>(l).ok())
        == Some(final_state(lines));
    if complete { 0 } else { rng.usize(0..4) }
}

/// The rerun succeeded, and the last state acknowledged over both runs is the tap's final
/// state.
fn check_rerun(lines: &[String], acknowledged: &[String], rerun: &Output, what: &str) {
    assert!(
        rerun.status.success(),
        "{what}: rerun failed: {}",
        String::from_utf8_lossy(&rerun.stderr)
    );
    let rerun_states = String::from_utf8_lossy(&rerun.stdout).to_string();
    let last = acknowledged
        .iter()
        .map(String::as_str)
        .chain(rerun_states.lines())
        .next_back()
        .and_then(|l| serde_json::from_str::<Value>(l).ok());
    assert_eq!(
        last,
        Some(final_state(lines)),
        "{what}: the final state is acknowledged"
    );
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
        let small_budget = point % 3 == 2;
        let config = target.config(dir.path(), small_budget);
        let cut = rng.usize(..input.len());
        // Some kill points wait longer than the sink's quiet flush: a target that groups
        // commits (target-duckdb) must have made them durable and acknowledged them.
        let quiet = point % 5 == 1;
        let pause = if quiet { 2_500 } else { rng.u64(0..40) };
        let term = point % 5 == 4;
        let acknowledged = feed_and_kill(target, &config, &input, cut, pause, term);
        let states_sent = String::from_utf8_lossy(&input[..cut])
            .matches(r#""type":"STATE""#)
            .count();
        if quiet && states_sent >= 2 {
            assert!(
                !acknowledged.is_empty(),
                "{target:?} kill point {point}: {states_sent} STATEs sent and 2.5 s of quiet, none acknowledged"
            );
        }
        let behind = missed(&mut rng, &lines, &acknowledged);
        let rerun = run_target(
            target.binary(),
            &config,
            &resume_input(&lines, &acknowledged, behind, point as u32),
        );
        let what = format!(
            "{target:?} kill point {point} (cut {cut} of {}, {}, {} states acknowledged, resumed {behind} behind, small budget: {small_budget})\nrerun:\n{}",
            input.len(),
            if term { "SIGTERM" } else { "SIGKILL" },
            acknowledged.len(),
            String::from_utf8_lossy(&rerun.stderr)
        );
        check_rerun(&lines, &acknowledged, &rerun, &what);
        target.check(dir.path(), &what);
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
    let capture = write_lines(dir.path(), "capture.singer", &lines);
    let mut rng = fastrand::Rng::with_seed(0xBEEF + u64::from(also_target));
    for point in 0..kill_points().div_ceil(4) {
        let work = tempfile::tempdir().expect("tmp");
        let small_budget = point % 2 == 1;
        let config = target.config(work.path(), small_budget);
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
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("target");
        // The tap's output passes through here so that the kill falls after its first
        // STATE, however slow the machine: a tap that dies before any STATE is input with
        // no STATE, final by design (README, "Exactly once").
        let (first_state_tx, first_state) = std::sync::mpsc::channel();
        let from_tap = tap.stdout.take().expect("tap stdout");
        let mut to_target = sink.stdin.take().expect("target stdin");
        let forward = std::thread::spawn(move || {
            let mut seen = false;
            for line in BufReader::new(from_tap).lines() {
                let Ok(line) = line else { break };
                if writeln!(to_target, "{line}").is_err() {
                    break;
                }
                if !seen && line.contains(r#""type":"STATE""#) {
                    seen = true;
                    let _ = first_state_tx.send(());
                }
            }
        });
        let _ = first_state.recv_timeout(Duration::from_secs(60));
        std::thread::sleep(Duration::from_millis(rng.u64(0..550)));
        let _ = tap.kill();
        let _ = tap.wait();
        if also_target {
            let _ = sink.kill();
        }
        let _ = forward.join();
        let out = sink.wait_with_output().expect("target ends");
        let acknowledged: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        let behind = missed(&mut rng, &lines, &acknowledged);
        let rerun = run_target(
            target.binary(),
            &config,
            &resume_input(&lines, &acknowledged, behind, point as u32),
        );
        let what = format!(
            "{target:?} tap kill {point} (target killed too: {also_target}, resumed {behind} behind, small budget: {small_budget})\nfirst run ({}):\n{}\nrerun:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&rerun.stderr)
        );
        check_rerun(&lines, &acknowledged, &rerun, &what);
        target.check(work.path(), &what);
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
    let input = String::from_utf8(resume_input(&lines, &[state], 0, 7)).expect("utf8");
    let first_record: Value =
        serde_json::from_str(input.lines().nth(2).expect("line")).expect("json");
    assert_eq!(first_record["record"]["seq"], json!(STATE_EVERY + 1));
    let seqs: HashSet<u64> = input
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|m| m["record"]["seq"].as_u64())
        .collect();
    assert_eq!(seqs.len(), RECORDS - STATE_EVERY);
    // Re-extracted as a real tap would: same record values, new time_extracted, other
    // key order and whitespace.
    let original = lines
        .iter()
        .find(|l| l.contains(&format!("\"seq\":{}", STATE_EVERY + 1)))
        .expect("source line");
    let resumed = input.lines().nth(2).expect("line");
    assert_ne!(resumed, original);
    assert!(resumed.starts_with("{\"time_extracted\": \"2026-12-03"));
    let (a, b): (Value, Value) = (
        serde_json::from_str(original).expect("json"),
        serde_json::from_str(resumed).expect("json"),
    );
    assert_eq!(a["record"], b["record"]);
    assert_ne!(a["time_extracted"], b["time_extracted"]);
    // Two states behind the last acknowledged one.
    let acknowledged: Vec<String> = [1, 2, 3]
        .map(|k| {
            json!({"bookmarks": {"events": {"replication_key_value": k * STATE_EVERY}}}).to_string()
        })
        .to_vec();
    let input = String::from_utf8(resume_input(&lines, &acknowledged, 2, 7)).expect("utf8");
    let first: Value = serde_json::from_str(input.lines().nth(2).expect("line")).expect("json");
    assert_eq!(first["record"]["seq"], json!(STATE_EVERY + 1));
}
