//! The target runtime against an in-memory sink: what is committed, when, and what is
//! acknowledged, including crashes between a commit and its echo.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use serde_json::{Value, json};
use singer_target::Error;
use singer_target::{
    Commit, CommitMarker, LoadMethod, LoadStats, Operation, Sink, TargetSettings, TargetStream, run,
};

/// What a memory "database" holds; shared so a test can look after `run` consumed the sink.
#[derive(Default, Debug)]
struct Db {
    /// Append-only rows per stream, by id, in load order.
    rows: BTreeMap<String, Vec<i64>>,
    /// The commit each row came in, parallel to `rows`.
    row_commits: BTreeMap<String, Vec<usize>>,
    /// Per stream, the commits whose rows are provisional.
    provisional: BTreeMap<String, BTreeSet<usize>>,
    commits: Vec<CommitMarker>,
    /// Operation kinds of each commit, for ordering checks.
    ops: Vec<Vec<String>>,
    fail_commit_at: Option<usize>,
}

#[derive(Clone, Default)]
struct MemorySink(Arc<Mutex<Db>>);

impl Sink for MemorySink {
    fn last_commit(&mut self) -> singer_target::Result<Option<CommitMarker>> {
        Ok(self.0.lock().expect("lock").commits.last().cloned())
    }

    fn commit(&mut self, commit: Commit) -> singer_target::Result<Vec<(String, LoadStats)>> {
        let mut db = self.0.lock().expect("lock");
        if db.fail_commit_at == Some(db.commits.len()) {
            return Err(Error::destination("disk full"));
        }
        let mut stats = Vec::new();
        let mut kinds = Vec::new();
        let this_commit = db.commits.len();
        // As a real sink: take back, then write (remembering provisional rows), then settle.
        for stream in &commit.retract {
            let gone = db.provisional.remove(stream).unwrap_or_default();
            let commits = db.row_commits.get(stream).cloned().unwrap_or_default();
            let rows = db.rows.entry(stream.clone()).or_default();
            let kept: Vec<(i64, usize)> = rows
                .iter()
                .zip(&commits)
                .filter(|(_, c)| !gone.contains(c))
                .map(|(r, c)| (*r, *c))
                .collect();
            *rows = kept.iter().map(|(r, _)| *r).collect();
            db.row_commits
                .insert(stream.clone(), kept.iter().map(|(_, c)| *c).collect());
            kinds.push(format!("retract:{stream}"));
        }
        for changes in &commit.streams {
            let name = changes.stream.name().to_string();
            let mut s = LoadStats::default();
            for op in &changes.operations {
                match op {
                    Operation::Rows(batch) => {
                        let ids = batch
                            .column_by_name("id")
                            .expect("id column")
                            .as_primitive::<Int64Type>();
                        let rows = db.rows.entry(name.clone()).or_default();
                        rows.extend((0..ids.len()).map(|i| ids.value(i)));
                        db.row_commits
                            .entry(name.clone())
                            .or_default()
                            .extend(std::iter::repeat_n(this_commit, ids.len()));
                        if commit.provisional {
                            db.provisional
                                .entry(name.clone())
                                .or_default()
                                .insert(this_commit);
                        }
                        s.inserted += batch.num_rows() as u64;
                        s.batches += 1;
                        kinds.push(format!("rows:{name}:{}", batch.num_rows()));
                    }
                    Operation::Schema(t) => kinds.push(format!(
                        "schema:{}:{}",
                        t.name(),
                        t.arrow_schema.fields().len()
                    )),
                    Operation::ActivateVersion(v) => kinds.push(format!("activate:{name}:{v}")),
                }
            }
            stats.push((name, s));
        }
        for stream in &commit.settle {
            db.provisional.remove(stream);
        }
        db.commits.push(commit.marker);
        if !commit.streams.is_empty() {
            db.ops.push(kinds);
        }
        Ok(stats)
    }
}

/// Fails every write after `ok_lines` lines: the process "dies" between a commit and the
/// echo of its state.
struct DyingStdout {
    lines: Arc<Mutex<Vec<String>>>,
    ok_lines: usize,
}

impl Write for DyingStdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut lines = self.lines.lock().expect("lock");
        if lines.len() >= self.ok_lines {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "killed"));
        }
        lines.push(String::from_utf8_lossy(buf).trim().to_string());
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn settings(rows: usize) -> TargetSettings {
    TargetSettings {
        batch_size_rows: rows,
        add_record_metadata: false,
        ..TargetSettings::default()
    }
}

/// SCHEMA, then `n` records with ids 1..=n, a STATE after every `every` records and at the end.
fn stream(n: i64, every: i64) -> Vec<String> {
    let mut lines = vec![
        json!({"type": "SCHEMA", "stream": "s", "key_properties": ["id"],
        "schema": {"properties": {"id": {"type": "integer"}, "v": {"type": "string"}}}})
        .to_string(),
    ];
    for i in 1..=n {
        lines.push(
            json!({"type": "RECORD", "stream": "s", "record": {"id": i, "v": format!("row {i}")}})
                .to_string(),
        );
        if i % every == 0 || i == n {
            lines.push(json!({"type": "STATE", "value": {"bookmarks": {"s": {"replication_key_value": i}}}}).to_string());
        }
    }
    lines
}

fn input(lines: &[String]) -> io::Cursor<Vec<u8>> {
    io::Cursor::new((lines.join("\n") + "\n").into_bytes())
}

fn run_ok(sink: &MemorySink, s: &TargetSettings, lines: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    run(sink.clone(), s, input(lines), &mut out).expect("run succeeds");
    String::from_utf8(out)
        .expect("utf8")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn state_is_emitted_only_after_the_rows_it_covers_are_committed() {
    let sink = MemorySink::default();
    let out = run_ok(&sink, &settings(10), &stream(35, 5));
    let db = sink.0.lock().expect("lock");
    assert_eq!(db.rows["s"], (1..=35).collect::<Vec<_>>());
    // Commits happen at the STATE where covered rows reach 10, plus the end.
    let committed: Vec<_> = db
        .commits
        .iter()
        .filter(|m| !m.ledger.complete)
        .map(|m| m.state.clone())
        .collect();
    assert_eq!(committed.len(), 4, "{committed:?}");
    assert_eq!(out.len(), 4);
    assert!(
        db.commits.last().is_some_and(|m| m.ledger.complete),
        "a clean end is recorded"
    );
    for (line, marker) in out
        .iter()
        .zip(db.commits.iter().filter(|m| !m.ledger.complete))
    {
        let emitted: Value = serde_json::from_str(line).expect("json");
        assert_eq!(
            Some(&emitted),
            marker.state.as_ref(),
            "each emitted state is a committed one"
        );
    }
    assert_eq!(
        out.last().map(String::as_str),
        Some(r#"{"bookmarks":{"s":{"replication_key_value":35}}}"#)
    );
}

#[test]
fn rows_after_the_last_state_stay_buffered_until_the_next_commit() {
    let sink = MemorySink::default();
    // 12 rows, state at 6 and 12; batch 4 rows: first commit at state 6 covers 6 rows.
    let mut lines = stream(12, 6);
    // No state at the end: drop the last STATE to leave rows uncovered.
    lines.pop();
    let out = run_ok(&sink, &settings(4), &lines);
    let db = sink.0.lock().expect("lock");
    assert_eq!(
        db.ops[0],
        ["schema:s:2", "rows:s:6"],
        "the first commit stops at the state"
    );
    assert_eq!(db.rows["s"].len(), 12, "end of input commits the rest");
    assert_eq!(out.len(), 1, "only the one state was acknowledged");
}

#[test]
fn a_crash_between_commit_and_echo_is_replayed_exactly_once() {
    for (n, every, batch, die_after) in [
        (100, 7, 20, 1),
        (100, 7, 20, 3),
        (57, 3, 5, 6),
        (40, 40, 10, 0),
        (90, 10, 10, 4),
    ] {
        let lines = stream(n, every);
        let sink = MemorySink::default();
        let emitted = Arc::new(Mutex::new(Vec::new()));
        let dying = DyingStdout {
            lines: emitted.clone(),
            ok_lines: die_after,
        };
        let result = run(sink.clone(), &settings(batch), input(&lines), dying);
        assert!(result.is_err(), "the run dies");
        let emitted = emitted.lock().expect("lock").clone();
        // The orchestrator resumes after the last state it saw.
        let resume_at = resume_point(&lines, &emitted);
        let mut replay = vec![lines[0].clone()];
        replay.extend_from_slice(&lines[resume_at..]);
        let out = run_ok(&sink, &settings(batch), &replay);
        let db = sink.0.lock().expect("lock");
        assert_eq!(
            db.rows["s"],
            (1..=n).collect::<Vec<_>>(),
            "case {n}/{every}/{batch}/{die_after}: every row exactly once"
        );
        assert!(
            out.last().is_some_and(|l| l.contains(&format!(":{n}}}"))),
            "final state acknowledged: {out:?}"
        );
    }
}

#[test]
fn identical_input_after_a_clean_run_is_new_input() {
    // A full-table tap re-sends the same rows and state on every run: after a run that
    // completed, nothing of it is mistaken for a replay.
    let sink = MemorySink::default();
    run_ok(&sink, &settings(10), &stream(30, 5));
    run_ok(&sink, &settings(10), &stream(30, 5));
    assert_eq!(sink.0.lock().expect("lock").rows["s"].len(), 60);
}

#[test]
fn new_input_after_a_clean_run_is_loaded_even_if_it_looks_similar() {
    let sink = MemorySink::default();
    run_ok(&sink, &settings(10), &stream(10, 5));
    // A second run with different records but the same first state value.
    let mut lines = stream(10, 5);
    for l in lines.iter_mut().skip(1) {
        *l = l.replace("row ", "changed ");
    }
    run_ok(&sink, &settings(10), &lines);
    assert_eq!(
        sink.0.lock().expect("lock").rows["s"].len(),
        20,
        "different records are new input"
    );
}

#[test]
fn the_byte_budget_commits_past_a_missing_state() {
    let sink = MemorySink::default();
    let mut lines = stream(200, 1000);
    lines.pop();
    let s = TargetSettings {
        batch_size_bytes: 2048,
        ..settings(1_000_000)
    };
    let out = run_ok(&sink, &s, &lines);
    let db = sink.0.lock().expect("lock");
    assert!(
        db.commits.len() > 3,
        "memory bounded by commits: {}",
        db.commits.len()
    );
    assert_eq!(db.rows["s"].len(), 200);
    assert!(
        out.is_empty(),
        "no state was ever sent, none is acknowledged"
    );
}

#[test]
fn bad_input_keeps_acknowledged_data_and_acknowledges_nothing_after() {
    let sink = MemorySink::default();
    let mut lines = stream(20, 5);
    lines.insert(
        14,
        r#"{"type":"RECORD","stream":"s","record":{"id":"not a number"}}"#.to_string(),
    );
    let mut out = Vec::new();
    let e = run(sink.clone(), &settings(1000), input(&lines), &mut out).expect_err("bad record");
    let text = e.to_string();
    assert!(
        text.contains("stream 's'") && text.contains("line 15") && text.contains("field 'id'"),
        "{text}"
    );
    let out = String::from_utf8(out).expect("utf8");
    let db = sink.0.lock().expect("lock");
    // Line 15 comes after the STATE at record 10: rows 1..=10 are committed and acknowledged.
    assert_eq!(db.rows["s"], (1..=10).collect::<Vec<_>>());
    assert_eq!(
        out.trim(),
        r#"{"bookmarks":{"s":{"replication_key_value":10}}}"#
    );
}

#[test]
fn each_kind_of_bad_line_is_a_clear_error_naming_the_line() {
    let schema = stream(1, 1)[0].clone();
    let cases = [
        ("{not json", "line 2", "invalid JSON"),
        (r#"{"stream":"s","record":{}}"#, "line 2", "missing `type`"),
        (
            r#"{"type":"RECORD","record":{"id":1}}"#,
            "line 2",
            "missing `stream`",
        ),
        (
            r#"{"type":"RECORD","stream":"other","record":{"id":1}}"#,
            "line 2",
            "before its SCHEMA",
        ),
        (
            r#"{"type":"RECORD","stream":"s","record":{"v":"no id"}}"#,
            "line 2",
            "key property 'id'",
        ),
        (
            r#"{"type":"RECORD","stream":"s","record":{"id":1,"v":5}}"#,
            "line 2",
            "field 'v'",
        ),
        ("", "line 2", "empty line"),
    ];
    for (bad, line, what) in cases {
        let sink = MemorySink::default();
        let lines = vec![schema.clone(), bad.to_string()];
        let e = run(sink, &settings(10), input(&lines), io::sink()).expect_err(bad);
        let text = e.to_string();
        assert!(text.contains(line) && text.contains(what), "{bad}: {text}");
    }
    let sink = MemorySink::default();
    let bytes = [
        schema.as_bytes(),
        b"\n{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{\"id\":1,\"v\":\"\xff\"}}\n",
    ]
    .concat();
    let e = run(sink, &settings(10), io::Cursor::new(bytes), io::sink()).expect_err("utf8");
    assert!(e.to_string().contains("line 2"), "{e}");
}

#[test]
fn schema_changes_and_versions_keep_their_order_within_a_commit() {
    let sink = MemorySink::default();
    let lines: Vec<String> = [
        json!({"type": "SCHEMA", "stream": "s", "schema": {"properties": {"id": {"type": "integer"}}}, "key_properties": ["id"]}),
        json!({"type": "RECORD", "stream": "s", "record": {"id": 1}, "version": 7}),
        json!({"type": "SCHEMA", "stream": "s", "schema": {"properties": {"id": {"type": "integer"}, "x": {"type": "string"}}}, "key_properties": ["id"]}),
        json!({"type": "RECORD", "stream": "s", "record": {"id": 2, "x": "a"}, "version": 7}),
        json!({"type": "ACTIVATE_VERSION", "stream": "s", "version": 7}),
        json!({"type": "RECORD", "stream": "s", "record": {"id": 3, "x": "b"}, "version": 8}),
        json!({"type": "STATE", "value": {"done": true}}),
    ]
    .iter()
    .map(Value::to_string)
    .collect();
    run_ok(&sink, &settings(1000), &lines);
    let db = sink.0.lock().expect("lock");
    assert_eq!(
        db.ops,
        [[
            "schema:s:1",
            "rows:s:1",
            "schema:s:2",
            "rows:s:1",
            "activate:s:7",
            "rows:s:1"
        ]]
    );
}

#[test]
fn load_method_defaults_follow_key_properties() {
    let s = TargetSettings::default();
    let seen = Arc::new(Mutex::new(Vec::new()));
    #[derive(Clone)]
    struct Methods(Arc<Mutex<Vec<(String, LoadMethod)>>>);
    impl Sink for Methods {
        fn last_commit(&mut self) -> singer_target::Result<Option<CommitMarker>> {
            Ok(None)
        }
        fn check_schema(&mut self, stream: &TargetStream) -> singer_target::Result<()> {
            self.0
                .lock()
                .expect("lock")
                .push((stream.name().to_string(), stream.load_method));
            Ok(())
        }
        fn commit(&mut self, _: Commit) -> singer_target::Result<Vec<(String, LoadStats)>> {
            Ok(vec![])
        }
    }
    let lines = [
        json!({"type": "SCHEMA", "stream": "keyed", "schema": {"properties": {"id": {"type": "integer"}}}, "key_properties": ["id"]}),
        json!({"type": "SCHEMA", "stream": "plain", "schema": {"properties": {"id": {"type": "integer"}}}, "key_properties": []}),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>();
    run(Methods(seen.clone()), &s, input(&lines), io::sink()).expect("run");
    assert_eq!(
        *seen.lock().expect("lock"),
        [
            ("keyed".to_string(), LoadMethod::Upsert),
            ("plain".to_string(), LoadMethod::AppendOnly)
        ]
    );
}

#[test]
fn a_failed_commit_acknowledges_nothing() {
    let sink = MemorySink::default();
    sink.0.lock().expect("lock").fail_commit_at = Some(1);
    let mut out = Vec::new();
    let e =
        run(sink.clone(), &settings(5), input(&stream(20, 5)), &mut out).expect_err("disk full");
    assert!(e.to_string().contains("disk full"));
    let out = String::from_utf8(out).expect("utf8");
    assert_eq!(
        out.lines().count(),
        1,
        "only the first, committed state: {out}"
    );
    assert_eq!(sink.0.lock().expect("lock").rows["s"].len(), 5);
}

/// Where an orchestrator resumes: after the line of the last state the target emitted.
fn resume_point(lines: &[String], emitted: &[String]) -> usize {
    let Some(last) = emitted.last() else { return 1 };
    let want: Value = serde_json::from_str(last).expect("json");
    lines
        .iter()
        .rposition(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v.get("value").cloned())
                == Some(want.clone())
        })
        .map_or(1, |p| p + 1)
}

fn replay_from(lines: &[String], at: usize) -> Vec<String> {
    let mut replay = vec![lines[0].clone()];
    replay.extend_from_slice(&lines[at..]);
    replay
}

#[test]
fn a_tap_that_dies_mid_segment_is_resumed_exactly_once() {
    let lines = stream(60, 7);
    // The first STATE is line 8: each cut is after it.
    for cut in [9, 10, 11, 17, 25, 40, 57, 66] {
        let sink = MemorySink::default();
        let out = run_ok(&sink, &settings(10), &lines[..cut]);
        let at = resume_point(&lines, &out);
        run_ok(&sink, &settings(10), &replay_from(&lines, at));
        assert_eq!(
            sink.0.lock().expect("lock").rows["s"],
            (1..=60).collect::<Vec<_>>(),
            "cut at line {cut}"
        );
    }
}

/// Input that ends before any STATE cannot be told from a tap that sends none: its rows are
/// final, never mistaken for a replay by the next run (a duplicate is better than a loss).
#[test]
fn input_that_ends_before_any_state_is_final() {
    let lines = stream(60, 7);
    let sink = MemorySink::default();
    let out = run_ok(&sink, &settings(10), &lines[..4]);
    assert!(out.is_empty());
    run_ok(&sink, &settings(10), &lines);
    let rows = sink.0.lock().expect("lock").rows["s"].clone();
    assert_eq!(rows[..3], [1, 2, 3]);
    assert_eq!(rows[3..], (1..=60).collect::<Vec<_>>()[..]);
}

/// Without a STATE for longer than the byte budget, commits go past the last STATE (memory
/// wins): those rows are provisional, and a crash followed by a resumed run replaces them,
/// so every row is there exactly once.
#[test]
fn commits_forced_by_the_byte_budget_are_replaced_exactly_once() {
    let lines = stream(300, 120);
    for die_after in 0..4 {
        let s = TargetSettings {
            batch_size_bytes: 4096,
            ..settings(1_000_000)
        };
        let sink = MemorySink::default();
        let emitted = Arc::new(Mutex::new(Vec::new()));
        let dying = DyingStdout {
            lines: emitted.clone(),
            ok_lines: die_after,
        };
        let _ = run(sink.clone(), &s, input(&lines), dying);
        let at = resume_point(&lines, &emitted.lock().expect("lock"));
        run_ok(&sink, &s, &replay_from(&lines, at));
        let db = sink.0.lock().expect("lock");
        assert!(
            db.commits.iter().any(|m| !m.ledger.provisional.is_empty()),
            "some commits were forced past a state"
        );
        assert_eq!(
            db.rows["s"].iter().copied().collect::<BTreeSet<i64>>(),
            (1..=300).collect(),
            "died after {die_after} states: nothing lost"
        );
        assert_eq!(
            db.rows["s"].len(),
            300,
            "died after {die_after} states: nothing twice"
        );
    }
}

/// A tap that sends the same STATE value every time (it keeps no position): after a crash
/// it starts again from the beginning, and the replayed segments are recognised by their
/// records; after a clean run, the same input is a new full sync.
#[test]
fn a_tap_repeating_one_state_value_is_resumed_exactly_once() {
    let lines: Vec<String> = stream(40, 8)
        .into_iter()
        .map(|l| {
            if l.contains("\"STATE\"") {
                json!({"type": "STATE", "value": {"full_table": true}}).to_string()
            } else {
                l
            }
        })
        .collect();
    // The run dies at its first, second or third commit (the same state is written once).
    for die_at in 0..3 {
        let sink = MemorySink::default();
        sink.0.lock().expect("lock").fail_commit_at = Some(die_at);
        let mut out = Vec::new();
        let died = run(sink.clone(), &settings(8), input(&lines), &mut out);
        assert!(died.is_err());
        sink.0.lock().expect("lock").fail_commit_at = None;
        run_ok(&sink, &settings(8), &lines);
        assert_eq!(
            sink.0.lock().expect("lock").rows["s"],
            (1..=40).collect::<Vec<_>>(),
            "died at commit {die_at}"
        );
        run_ok(&sink, &settings(8), &lines);
        assert_eq!(sink.0.lock().expect("lock").rows["s"].len(), 80);
    }
}

/// Writes records `ids` of stream `s` as a gzip JSON-lines batch file.
fn jsonl_gz_batch(path: &std::path::Path, ids: std::ops::RangeInclusive<i64>) {
    use std::io::Write as _;
    let file = std::fs::File::create(path).expect("create");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    for i in ids {
        writeln!(gz, "{}", json!({"v": format!("row {i}"), "id": i})).expect("write");
    }
    gz.finish().expect("finish");
}

/// Writes records `ids` of stream `s` as a Parquet batch file.
fn parquet_batch(path: &std::path::Path, ids: std::ops::RangeInclusive<i64>) {
    use arrow::array::{Int64Array, StringArray};
    let ids: Vec<i64> = ids.collect();
    let values: Vec<String> = ids.iter().map(|i| format!("row {i}")).collect();
    let batch = arrow::record_batch::RecordBatch::try_from_iter([
        (
            "id",
            Arc::new(Int64Array::from(ids)) as arrow::array::ArrayRef,
        ),
        (
            "v",
            Arc::new(StringArray::from(values)) as arrow::array::ArrayRef,
        ),
    ])
    .expect("batch");
    let file = std::fs::File::create(path).expect("create");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

fn batch_line(format: &str, compression: &str, files: &[String]) -> String {
    json!({"type": "BATCH", "stream": "s",
        "encoding": {"format": format, "compression": compression}, "manifest": files})
    .to_string()
}

/// The SDK's BATCH messages: rows of gzip JSON-lines and Parquet files load as RECORDs
/// would, in order with the RECORDs around them, under the same STATE rules.
#[test]
fn batch_messages_load_their_files_like_records() {
    let dir = tempfile::tempdir().expect("tmp");
    let (a, b, c) = (
        dir.path().join("s-1.json.gz"),
        dir.path().join("s-2.json.gz"),
        dir.path().join("s-3.parquet"),
    );
    jsonl_gz_batch(&a, 2..=4);
    jsonl_gz_batch(&b, 5..=6);
    parquet_batch(&c, 7..=9);
    let mut lines = stream(1, 1);
    lines.pop();
    lines.push(batch_line(
        "jsonl",
        "gzip",
        &[format!("file://{}", a.display()), b.display().to_string()],
    ));
    lines.push(json!({"type": "STATE", "value": {"at": 6}}).to_string());
    lines.push(batch_line("parquet", "none", &[c.display().to_string()]));
    lines.push(
        json!({"type": "RECORD", "stream": "s", "record": {"id": 10, "v": "row 10"}}).to_string(),
    );
    lines.push(json!({"type": "STATE", "value": {"at": 10}}).to_string());
    let sink = MemorySink::default();
    let out = run_ok(&sink, &settings(3), &lines);
    assert_eq!(
        sink.0.lock().expect("lock").rows["s"],
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(out, [r#"{"at":6}"#, r#"{"at":10}"#]);
}

/// A batch file that is missing, unreadable, on an unsupported URL scheme, or holds a row
/// the schema refuses: an error naming the line, the stream and the file (and the row), and
/// nothing after the last STATE before it is committed.
#[test]
fn a_batch_that_cannot_be_loaded_is_an_error_naming_its_file() {
    let dir = tempfile::tempdir().expect("tmp");
    let bad_row = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad_row,
        "{\"id\": 7, \"v\": \"ok\"}\n{\"id\": \"eight\"}\n",
    )
    .expect("write");
    let not_parquet = dir.path().join("not.parquet");
    std::fs::write(&not_parquet, "PAR1 but not really").expect("write");
    let missing = dir.path().join("missing.json.gz").display().to_string();
    for (line, says) in [
        (
            batch_line("jsonl", "gzip", std::slice::from_ref(&missing)),
            vec!["line 5", "'s'", "missing.json.gz", "cannot open"],
        ),
        (
            batch_line("jsonl", "none", &["s3://bucket/s.jsonl".into()]),
            vec!["line 5", "s3://", "not supported"],
        ),
        (
            batch_line("parquet", "none", &[not_parquet.display().to_string()]),
            vec!["line 5", "not.parquet", "Parquet"],
        ),
        (
            batch_line("jsonl", "none", &[bad_row.display().to_string()]),
            vec!["line 5", "bad.jsonl", "row 2", "id"],
        ),
    ] {
        let mut lines = stream(2, 2);
        lines.push(line);
        lines.push(json!({"type": "STATE", "value": {"never": true}}).to_string());
        let sink = MemorySink::default();
        let mut out = Vec::new();
        let e = run(sink.clone(), &settings(100), input(&lines), &mut out)
            .expect_err("the batch fails");
        for s in &says {
            assert!(e.to_string().contains(s), "{e} should say {s}");
        }
        assert_eq!(sink.0.lock().expect("lock").rows["s"], [1, 2]);
        let out = String::from_utf8(out).expect("utf8");
        assert!(!out.contains("never"), "{out}");
    }
}

fn with_maps(rows: usize, maps: Value) -> TargetSettings {
    TargetSettings {
        maps: serde_json::from_value(maps).expect("stream maps"),
        ..settings(rows)
    }
}

/// Stream maps on the way in: a renamed stream, a second stream from one source, a filter;
/// RECORDs, BATCH rows and ACTIVATE_VERSION all follow them.
#[test]
fn stream_maps_route_records_batches_and_versions() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = dir.path().join("s-1.json.gz");
    jsonl_gz_batch(&file, 11..=14);
    let mut lines = stream(10, 5);
    lines.insert(
        6,
        json!({"type": "ACTIVATE_VERSION", "stream": "s", "version": 3}).to_string(),
    );
    lines.push(batch_line("jsonl", "gzip", &[file.display().to_string()]));
    lines.push(json!({"type": "STATE", "value": {"at": 14}}).to_string());
    let s = with_maps(
        1000,
        json!({"stream_maps": {
            "s": {"__alias__": "renamed", "v": null},
            "evens": {"__source__": "s", "__filter__": "id % 2 == 0", "label": "v.upper()"}
        }}),
    );
    let sink = MemorySink::default();
    run_ok(&sink, &s, &lines);
    let db = sink.0.lock().expect("lock");
    assert!(
        !db.rows.contains_key("s"),
        "the source is loaded under its alias only"
    );
    assert_eq!(db.rows["renamed"], (1..=14).collect::<Vec<_>>());
    assert_eq!(db.rows["evens"], [2, 4, 6, 8, 10, 12, 14]);
    let mut versions: Vec<&String> = db
        .ops
        .iter()
        .flatten()
        .filter(|k| k.starts_with("activate:"))
        .collect();
    versions.sort();
    assert_eq!(
        versions,
        ["activate:evens:3", "activate:renamed:3"],
        "{:?}",
        db.ops
    );
}

/// A map that fails on a record stops the load at that line, naming the stream map, the
/// property and Python's words, and commits nothing after the last STATE before it.
#[test]
fn a_stream_map_failing_on_a_record_names_the_line_and_keeps_what_was_acknowledged() {
    let mut lines = stream(6, 3);
    lines[5] = json!({"type": "RECORD", "stream": "s", "record": {"id": 5, "v": null}}).to_string();
    let s = with_maps(1, json!({"stream_maps": {"s": {"shout": "v.upper()"}}}));
    let sink = MemorySink::default();
    let mut out = Vec::new();
    let e = run(sink.clone(), &s, input(&lines), &mut out).expect_err("None.upper()");
    let text = e.to_string();
    assert!(text.contains("stream 's', line 6, field 'shout'"), "{text}");
    assert!(
        text.contains("AttributeError: 'NoneType' object has no attribute 'upper'"),
        "{text}"
    );
    assert_eq!(sink.0.lock().expect("lock").rows["s"], [1, 2, 3]);
    assert_eq!(
        String::from_utf8_lossy(&out).trim(),
        r#"{"bookmarks":{"s":{"replication_key_value":3}}}"#
    );

    let bad = with_maps(1, json!({"stream_maps": {"s": {"shout": "shout(v)"}}}));
    let e = run(MemorySink::default(), &bad, input(&lines), &mut Vec::new())
        .expect_err("unknown function");
    let text = e.to_string();
    assert!(
        text.contains("stream 's', shout 'shout(v)': at character 1: unknown function 'shout'"),
        "{text}"
    );
}

/// Parquet BATCH files replayed after a crash between a commit and its echo load once,
/// whether their rows went in as Arrow (the first run) or through the record path (the
/// replay, here forced by a stream map that changes nothing but the path): the ack ledger
/// counts a Parquet row by its file's hash either way.
#[test]
fn parquet_batches_replayed_after_a_crash_load_once_on_either_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut lines = vec![stream(1, 1)[0].clone()];
    for f in 0..6 {
        let path = dir.path().join(format!("s-{f}.parquet"));
        parquet_batch(&path, f * 10 + 1..=f * 10 + 10);
        lines.push(batch_line("parquet", "none", &[path.display().to_string()]));
        lines.push(json!({"type": "STATE", "value": {"file": f}}).to_string());
    }
    for (die_after, replay_maps) in [(1, false), (2, true), (4, true)] {
        let sink = MemorySink::default();
        let emitted = Arc::new(Mutex::new(Vec::new()));
        let dying = DyingStdout {
            lines: emitted.clone(),
            ok_lines: die_after,
        };
        assert!(run(sink.clone(), &settings(10), input(&lines), dying).is_err());
        let emitted = emitted.lock().expect("lock").clone();
        let resume_at = resume_point(&lines, &emitted);
        let mut replay = vec![lines[0].clone()];
        replay.extend_from_slice(&lines[resume_at..]);
        let s = if replay_maps {
            // An alias back to the same name: a map that sends rows down the record path.
            with_maps(
                10,
                json!({"stream_maps": {"s": {"__alias__": "s", "v": "v"}}}),
            )
        } else {
            settings(10)
        };
        let out = run_ok(&sink, &s, &replay);
        assert_eq!(
            sink.0.lock().expect("lock").rows["s"],
            (1..=60).collect::<Vec<_>>(),
            "died after {die_after} states, replay mapped: {replay_maps}"
        );
        assert_eq!(out.last().map(String::as_str), Some(r#"{"file":5}"#));
    }
}

/// Holds commits in groups of `size` that become durable together, as target-duckdb holds
/// consecutive commits in one open transaction.
struct GroupSink {
    durable: Arc<Mutex<Vec<CommitMarker>>>,
    group: Vec<CommitMarker>,
    size: usize,
    fail_flush: bool,
    /// A SCHEMA of this stream fails as a query in the open transaction does: the group
    /// is lost.
    lose_group_at_schema_of: Option<String>,
}

impl GroupSink {
    fn new(size: usize) -> (Self, Arc<Mutex<Vec<CommitMarker>>>) {
        let durable = Arc::new(Mutex::new(Vec::new()));
        let sink = GroupSink {
            durable: durable.clone(),
            group: Vec::new(),
            size,
            fail_flush: false,
            lose_group_at_schema_of: None,
        };
        (sink, durable)
    }
}

impl Sink for GroupSink {
    fn last_commit(&mut self) -> singer_target::Result<Option<CommitMarker>> {
        Ok(self.durable.lock().expect("lock").last().cloned())
    }

    fn commit(&mut self, commit: Commit) -> singer_target::Result<Vec<(String, LoadStats)>> {
        self.group.push(commit.marker);
        if self.group.len() >= self.size {
            self.flush()?;
        }
        Ok(Vec::new())
    }

    fn pending(&self) -> bool {
        !self.group.is_empty()
    }

    fn check_schema(&mut self, stream: &TargetStream) -> singer_target::Result<()> {
        if self.lose_group_at_schema_of.as_deref() == Some(stream.name()) {
            self.group.clear();
            return Err(Error::destination("the catalog query failed"));
        }
        Ok(())
    }

    fn flush(&mut self) -> singer_target::Result<()> {
        if self.fail_flush && !self.group.is_empty() {
            self.group.clear();
            return Err(Error::destination("the transaction could not commit"));
        }
        let group = std::mem::take(&mut self.group);
        self.durable.lock().expect("lock").extend(group);
        Ok(())
    }
}

/// Each state written, and whether a durable commit had stored it by then.
type Released = Arc<Mutex<Vec<(Value, bool)>>>;

/// Records each state line with whether a durable commit stored that state when it was
/// written.
struct DurableCheck {
    durable: Arc<Mutex<Vec<CommitMarker>>>,
    lines: Released,
}

impl Write for DurableCheck {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for line in String::from_utf8_lossy(buf).lines() {
            let state: Value = serde_json::from_str(line).map_err(io::Error::other)?;
            let durable = self
                .durable
                .lock()
                .expect("lock")
                .iter()
                .any(|m| m.state.as_ref() == Some(&state));
            self.lines.lock().expect("lock").push((state, durable));
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn checked_output(durable: &Arc<Mutex<Vec<CommitMarker>>>) -> (DurableCheck, Released) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let out = DurableCheck {
        durable: durable.clone(),
        lines: lines.clone(),
    };
    (out, lines)
}

fn bookmark(i: i64) -> Value {
    json!({"bookmarks": {"s": {"replication_key_value": i}}})
}

#[test]
fn states_of_grouped_commits_wait_until_the_group_is_durable() {
    let (sink, durable) = GroupSink::new(3);
    let (out, lines) = checked_output(&durable);
    run(sink, &settings(5), input(&stream(40, 5)), out).expect("run succeeds");
    let lines = lines.lock().expect("lock");
    let states: Vec<&Value> = lines.iter().map(|(s, _)| s).collect();
    let expected: Vec<Value> = (1..=8).map(|i| bookmark(i * 5)).collect();
    assert_eq!(
        states,
        expected.iter().collect::<Vec<_>>(),
        "every state, in order"
    );
    assert!(
        lines.iter().all(|(_, durable)| *durable),
        "a state went out before its group was durable: {lines:?}"
    );
    assert!(
        durable
            .lock()
            .expect("lock")
            .last()
            .is_some_and(|m| m.ledger.complete),
        "the end of input makes the last group durable"
    );
}

/// Input that stops for `pause` after its first `first` bytes, as a slow tap does.
struct Pausing {
    data: io::Cursor<Vec<u8>>,
    first: u64,
    pause: std::time::Duration,
    paused: bool,
    resumed: Arc<Mutex<bool>>,
}

impl io::Read for Pausing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let at = self.data.position();
        if !self.paused && at >= self.first {
            self.paused = true;
            std::thread::sleep(self.pause);
            *self.resumed.lock().expect("lock") = true;
        }
        let room = if self.paused {
            buf.len()
        } else {
            buf.len()
                .min(usize::try_from(self.first - at).unwrap_or(usize::MAX))
        };
        self.data.read(&mut buf[..room])
    }
}

#[test]
fn a_pause_in_the_input_makes_the_open_group_durable() {
    let lines = stream(20, 5);
    let first_half = (lines[..13].join("\n") + "\n").len() as u64;
    let (sink, durable) = GroupSink::new(100);
    let resumed = Arc::new(Mutex::new(false));
    let reader = Pausing {
        data: input(&lines),
        first: first_half,
        pause: std::time::Duration::from_secs(3),
        paused: false,
        resumed: resumed.clone(),
    };
    let written_before_resume = Arc::new(Mutex::new(Vec::new()));
    struct Watch {
        inner: DurableCheck,
        resumed: Arc<Mutex<bool>>,
        before: Arc<Mutex<Vec<Value>>>,
    }
    impl Write for Watch {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if !*self.resumed.lock().expect("lock") {
                for line in String::from_utf8_lossy(buf).lines() {
                    self.before
                        .lock()
                        .expect("lock")
                        .push(serde_json::from_str(line).map_err(io::Error::other)?);
                }
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let (inner, checked) = checked_output(&durable);
    let out = Watch {
        inner,
        resumed,
        before: written_before_resume.clone(),
    };
    // One STATE every 5 records commits (batch_size_rows 5); the group never fills, so
    // only the pause (and then the end) makes it durable.
    run(sink, &settings(5), reader, out).expect("run succeeds");
    let before = written_before_resume.lock().expect("lock");
    assert_eq!(
        before.as_slice(),
        &[bookmark(5), bookmark(10)],
        "the states read before the pause go out during it"
    );
    let checked = checked.lock().expect("lock");
    assert_eq!(checked.len(), 4, "{checked:?}");
    assert!(checked.iter().all(|(_, durable)| *durable), "{checked:?}");
}

#[test]
fn a_group_that_fails_to_commit_acknowledges_none_of_its_states() {
    let (mut sink, durable) = GroupSink::new(3);
    sink.fail_flush = true;
    let (out, lines) = checked_output(&durable);
    let e = run(sink, &settings(5), input(&stream(40, 5)), out).expect_err("the group fails");
    assert!(e.to_string().contains("could not commit"), "{e}");
    let lines = lines.lock().expect("lock");
    assert!(lines.is_empty(), "no state of the failed group: {lines:?}");
    assert!(durable.lock().expect("lock").is_empty());
}

#[test]
fn a_schema_check_that_loses_the_group_acknowledges_none_of_it() {
    let (mut sink, durable) = GroupSink::new(100);
    sink.lose_group_at_schema_of = Some("t".into());
    let mut lines = stream(20, 5);
    lines.insert(
        14,
        json!({"type": "SCHEMA", "stream": "t", "key_properties": [],
            "schema": {"properties": {"id": {"type": "integer"}}}})
        .to_string(),
    );
    let (out, released) = checked_output(&durable);
    let e = run(sink, &settings(5), input(&lines), out).expect_err("the check fails");
    assert!(e.to_string().contains("catalog query failed"), "{e}");
    let released = released.lock().expect("lock");
    assert!(
        released.is_empty(),
        "states of the lost group: {released:?}"
    );
    assert!(
        durable.lock().expect("lock").is_empty(),
        "nothing is committed after the group was lost"
    );
}
