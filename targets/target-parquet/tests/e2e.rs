//! target-parquet end to end: the binary on fixture streams, read back with DuckDB and the
//! parquet crate.

use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{Value, json};
use singer_testing::duckdb::{in_memory, parquet_scan, query_one, write_parquet};
use singer_testing::{
    TargetRun, after_state, batch_message, fixture, fixture_lines, load_target, write_jsonl_gz,
    write_lines,
};

const TARGET: &str = "target-parquet";

/// The datasets of a run, and queries on them.
trait Datasets {
    fn out(&self) -> PathBuf;
    fn files(&self, stream_dir: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![self.out().join(stream_dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                if e.path().is_dir() {
                    stack.push(e.path());
                } else {
                    found.push(e.path());
                }
            }
        }
        found.sort();
        found
    }
    fn scan(&self, stream_dir: &str) -> String {
        parquet_scan(&self.out().join(stream_dir))
    }
    fn query<T: duckdb::types::FromSql>(&self, sql: &str) -> T {
        query_one(&in_memory(), sql)
    }
}

impl Datasets for TargetRun {
    fn out(&self) -> PathBuf {
        self.path("out")
    }
}

fn load_into(dir: tempfile::TempDir, input: &Path, extra: Value) -> TargetRun {
    let config = json!({"destination_path": dir.path().join("out")});
    load_target(TARGET, dir, config, &extra, input)
}

fn load(name: &str, extra: Value) -> TargetRun {
    load_into(tempfile::tempdir().expect("tmp"), &fixture(name), extra)
}

#[test]
fn rows_types_and_utc_timestamps_read_back() {
    let run = load("nested_and_arrays.singer", json!({}));
    run.assert_ok();
    let scan = run.scan("issues");
    assert_eq!(run.query::<i64>(&format!("SELECT count(*) FROM {scan}")), 3);
    assert_eq!(
        run.query::<String>(&format!(
            "SELECT fields.status.category.key FROM {scan} WHERE id = '10001'"
        )),
        "new"
    );
    assert_eq!(
        run.query::<String>(&format!(
            "SELECT typeof(fields.created) FROM {scan} LIMIT 1"
        )),
        "TIMESTAMP WITH TIME ZONE"
    );
    assert_eq!(
        run.query::<String>(&format!(
            "SELECT CAST(fields.created AS VARCHAR) FROM {scan} WHERE id = '10001'"
        )),
        "2024-01-15 10:23:45.123+00"
    );
    assert_eq!(
        run.query::<i64>(&format!(
            "SELECT len(fields.components) FROM {scan} WHERE id = '10001'"
        )),
        2
    );
    // The parquet crate sees a UTC-adjusted microsecond timestamp.
    let file = run
        .files("issues")
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a file");
    let reader =
        SerializedFileReader::new(std::fs::File::open(&file).expect("open")).expect("parquet");
    let schema = format!("{:?}", reader.metadata().file_metadata().schema_descr());
    assert!(schema.contains("is_adjusted_to_u_t_c: true"), "{schema}");
    assert_eq!(reader.metadata().file_metadata().num_rows(), 3);
    assert_eq!(
        run.states().last(),
        Some(
            &json!({"bookmarks": {"issues": {"replication_key_value": "2024-01-15T10:23:45.123Z"}}})
        )
    );
}

#[test]
fn compression_and_rolling_files() {
    let run = load(
        "many_states.singer",
        json!({"compression": "snappy", "max_rows_per_file": 120, "batch_size_rows": 1000}),
    );
    run.assert_ok();
    let files: Vec<_> = run
        .files("log_lines")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(
        files.len(),
        5,
        "500 rows in files of at most 120: {files:?}"
    );
    let reader =
        SerializedFileReader::new(std::fs::File::open(&files[0]).expect("open")).expect("parquet");
    assert_eq!(
        format!(
            "{:?}",
            reader.metadata().row_group(0).column(0).compression()
        ),
        "SNAPPY"
    );
    let names: Vec<String> = files
        .iter()
        .map(|f| {
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "names sort by write order");
    assert_eq!(
        run.query::<i64>(&format!(
            "SELECT count(DISTINCT seq) FROM {}",
            run.scan("log_lines")
        )),
        500
    );
    let zstd = load("many_states.singer", json!({}));
    let file = zstd.files("log_lines").into_iter().next().expect("file");
    let reader =
        SerializedFileReader::new(std::fs::File::open(&file).expect("open")).expect("parquet");
    assert!(
        format!(
            "{:?}",
            reader.metadata().row_group(0).column(0).compression()
        )
        .starts_with("ZSTD")
    );
}

#[test]
fn hive_partitions_by_column_and_by_day() {
    let run = load(
        "duplicates_with_keys.singer",
        json!({"partition_by": "status"}),
    );
    run.assert_ok();
    let dirs: Vec<String> = std::fs::read_dir(run.out().join("orders"))
        .expect("dataset")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(dirs.contains(&"status=shipped".to_string()), "{dirs:?}");
    assert_eq!(
        run.query::<i64>(&format!(
            "SELECT count(*) FROM {} WHERE status = 'new'",
            run.scan("orders")
        )),
        3
    );
    let by_day = load(
        "duplicates_with_keys.singer",
        json!({"partition_by": "day(updated_at)"}),
    );
    by_day.assert_ok();
    assert!(
        by_day
            .out()
            .join("orders/updated_at_day=2024-01-03")
            .is_dir()
    );
    assert_eq!(
        by_day.query::<i64>(&format!(
            "SELECT count(*) FROM {} WHERE updated_at_day = '2024-01-02'",
            by_day.scan("orders")
        )),
        2
    );
}

#[test]
fn a_schema_change_starts_a_new_file_and_reads_as_one_table() {
    let run = load("schema_change_mid_stream.singer", json!({}));
    run.assert_ok();
    let files: Vec<_> = run
        .files("events")
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    assert_eq!(files.len(), 3, "{files:?}");
    assert_eq!(
        run.query::<String>(&format!(
            "SELECT string_agg(CAST(value AS VARCHAR), ',' ORDER BY id) FROM {}",
            run.scan("events")
        )),
        "5,7,2.5,text"
    );
}

#[test]
fn activate_version_removes_older_files_after_the_new_version() {
    let run = load("activate_version.singer", json!({}));
    run.assert_ok();
    assert_eq!(
        run.query::<String>(&format!(
            "SELECT string_agg(CAST(id AS VARCHAR), ',' ORDER BY id) FROM {}",
            run.scan("products")
        )),
        "1,2,5"
    );
    assert!(
        run.files("products")
            .iter()
            .all(|f| !f.to_string_lossy().contains("-v1.parquet"))
    );
}

#[test]
fn hostile_names_stay_inside_the_destination() {
    let run = load("bad/path_traversal_names.singer", json!({}));
    run.assert_ok();
    let top: Vec<String> = std::fs::read_dir(run.out())
        .expect("out")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    let mut top = top;
    top.sort();
    assert_eq!(top, ["_..", "_.._.._escape", "_etc_passwd"]);
    assert!(!run.dir.path().join("escape").exists());
}

#[test]
fn bad_input_keeps_acknowledged_files_only() {
    let run = load("bad/schema_violation.singer", json!({}));
    assert!(!run.output.status.success());
    assert!(run.stderr().contains("line 4"), "{}", run.stderr());
    assert_eq!(run.states(), [json!({"n": 1})]);
    assert_eq!(
        run.query::<i64>(&format!("SELECT count(*) FROM {}", run.scan("s"))),
        1
    );
    assert!(
        run.files("s")
            .iter()
            .all(|f| !f.to_string_lossy().ends_with(".tmp"))
    );
}

#[test]
fn a_tap_that_died_mid_segment_is_resumed_exactly_once() {
    let lines = fixture_lines("many_states.singer");
    // The tap dies after record 250, before its STATE: the target commits what it has.
    let cut = lines
        .iter()
        .position(|l| l.contains("\"seq\":250,"))
        .expect("record 250")
        + 1;
    let dir = tempfile::tempdir().expect("tmp");
    let first_input = write_lines(dir.path(), "first.singer", &lines[..cut]);
    let first = load_into(dir, &first_input, json!({"batch_size_rows": 100}));
    first.assert_ok();
    assert_eq!(
        first.query::<i64>(&format!("SELECT count(*) FROM {}", first.scan("log_lines"))),
        250
    );
    // The orchestrator resumes after the last acknowledged state (249): record 250 again.
    let resume_from = first.states().last().cloned().expect("a state");
    let at = after_state(&lines, &resume_from);
    let replay = write_lines(
        first.dir.path(),
        "replay.singer",
        std::iter::once(&lines[0]).chain(&lines[at..]),
    );
    let second = load_into(first.dir, &replay, json!({"batch_size_rows": 100}));
    second.assert_ok();
    assert_eq!(
        second.query::<i64>(&format!(
            "SELECT count(*) FROM {}",
            second.scan("log_lines")
        )),
        500
    );
    assert_eq!(
        second.query::<i64>(&format!(
            "SELECT count(DISTINCT seq) FROM {}",
            second.scan("log_lines")
        )),
        500
    );
}

#[test]
fn the_same_complete_input_twice_is_loaded_twice() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = load_into(dir, &fixture("many_states.singer"), json!({}));
    first.assert_ok();
    let second = load_into(first.dir, &fixture("many_states.singer"), json!({}));
    second.assert_ok();
    assert_eq!(
        second.query::<i64>(&format!(
            "SELECT count(*) FROM {}",
            second.scan("log_lines")
        )),
        1000,
        "a complete run's data is acknowledged: identical input later is new"
    );
}

/// The SDK's BATCH messages: a gzip JSON-lines batch becomes Parquet rows like RECORDs.
#[test]
fn batch_messages_load_jsonl_gz_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let jsonl = dir.path().join("s-1.json.gz");
    let records: Vec<Value> = (1..=300)
        .map(|i| json!({"id": i, "v": format!("row {i}")}))
        .collect();
    write_jsonl_gz(&jsonl, &records);
    let lines = [
        json!({"type": "SCHEMA", "stream": "s", "key_properties": [], "schema": {"properties": {
            "id": {"type": "integer"}, "v": {"type": "string"}}}})
        .to_string(),
        batch_message("s", "jsonl", "gzip", &[&jsonl]),
        json!({"type": "STATE", "value": {"done": true}}).to_string(),
    ];
    let input = write_lines(dir.path(), "input.singer", &lines);
    let run = load_into(dir, &input, json!({}));
    run.assert_ok();
    assert_eq!(
        run.query::<i64>(&format!("SELECT count(DISTINCT id) FROM {}", run.scan("s"))),
        300
    );
    assert_eq!(run.states(), [json!({"done": true})]);
}

/// Parquet BATCH files (as pyarrow or DuckDB write them: narrower integers, date-times as
/// timestamps or as strings), with and without a stream map, read back as RECORDs would be.
#[test]
fn parquet_batch_files_load_with_and_without_stream_maps() {
    for maps in [
        json!({}),
        json!({"stream_maps": {"s": {"__alias__": "t", "label": "v.upper()", "v": null}}}),
    ] {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (
            dir.path().join("s-1.parquet"),
            dir.path().join("s-2.parquet"),
        );
        write_parquet(
            &a,
            "SELECT range::INTEGER AS id, 'row ' || range AS v, CAST(TIMESTAMP '2024-03-01 00:00:00' + to_minutes(range) AS TIMESTAMPTZ) AS at FROM range(1, 101)",
        );
        write_parquet(
            &b,
            "SELECT range::BIGINT AS id, 'row ' || range AS v, strftime(TIMESTAMP '2024-03-01 00:00:00' + to_minutes(range), '%Y-%m-%dT%H:%M:%S+0000') AS at FROM range(101, 151)",
        );
        let lines = [
            json!({"type": "SCHEMA", "stream": "s", "key_properties": ["id"], "schema": {"properties": {
                "id": {"type": "integer"}, "v": {"type": "string"}, "at": {"type": "string", "format": "date-time"}}}})
            .to_string(),
            batch_message("s", "parquet", "none", &[&a]),
            json!({"type": "STATE", "value": {"at": 1}}).to_string(),
            batch_message("s", "parquet", "none", &[&b]),
            json!({"type": "STATE", "value": {"at": 2}}).to_string(),
        ];
        let input = write_lines(dir.path(), "input.singer", &lines);
        let mapped = maps.get("stream_maps").is_some();
        let run = load_into(dir, &input, maps);
        run.assert_ok();
        let scan = run.scan(if mapped { "t" } else { "s" });
        assert_eq!(
            run.query::<i64>(&format!("SELECT count(DISTINCT id) FROM {scan}")),
            150
        );
        // Both files' date-times, as UTC instants: 1 and 150 minutes past midnight.
        assert_eq!(
            run.query::<String>(&format!(
                "SELECT string_agg(CAST(\"at\" AS VARCHAR), ',' ORDER BY id) FROM {scan} WHERE id IN (1, 150)"
            )),
            "2024-03-01 00:01:00+00,2024-03-01 02:30:00+00"
        );
        let text = if mapped { "label" } else { "v" };
        let want = if mapped { "ROW 150" } else { "row 150" };
        assert_eq!(
            run.query::<String>(&format!("SELECT {text} FROM {scan} WHERE id = 150")),
            want
        );
        assert_eq!(run.states().last(), Some(&json!({"at": 2})));
    }
}

/// A URL scheme without an object store is refused before anything is written (not a
/// local folder named `ftp:`); a `file://` URL is a local directory; an unknown setting is
/// named in a warning, without its value. (Object stores: tests/lake.rs.)
#[test]
fn destination_urls_and_unknown_settings_are_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let ftp = load_into(
        dir,
        &fixture("many_states.singer"),
        json!({"destination_path": "ftp://host/prefix"}),
    );
    assert!(!ftp.output.status.success());
    let stderr = ftp.stderr();
    assert!(
        stderr.contains("ftp://host/prefix") && stderr.contains("not supported"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(ftp.dir.path())
            .expect("dir")
            .all(|e| { e.map(|e| e.file_name() != "ftp:").unwrap_or(true) })
    );
    let dir = tempfile::tempdir().expect("tmp");
    let lake = dir.path().join("lake");
    let url = load_into(
        dir,
        &fixture("many_states.singer"),
        json!({"destination_path": format!("file://{}", lake.display()), "bogus_setting": "hunter2"}),
    );
    url.assert_ok();
    assert!(lake.join("log_lines").is_dir());
    let stderr = url.stderr();
    assert!(
        stderr.contains("unknown setting 'bogus_setting'"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// Stream maps on real tap output, against the same input loaded without them (DuckDB's
/// `md5` and `split_part` as the reference): renamed, computed, derived and dropped streams.
#[test]
fn stream_maps_rename_compute_and_drop_streams() {
    let maps = json!({"stream_maps": {
        "users": {"__alias__": "people", "email_hash": "md5(record.get('emailAddress'))", "emailAddress": null},
        "issue_keys": {"__source__": "issues", "__else__": null, "project": "key.split('-')[0]"},
        "sprints": null
    }});
    let mapped = load("jira_capture.singer", maps);
    mapped.assert_ok();
    let plain = load("jira_capture.singer", json!({}));
    plain.assert_ok();
    assert!(mapped.files("users").is_empty() && mapped.files("sprints").is_empty());
    let users = plain.query::<i64>(&format!("SELECT count(*) FROM {}", plain.scan("users")));
    assert!(users > 0);
    assert_eq!(
        mapped.query::<i64>(&format!(
            "SELECT count(*) FROM {} p JOIN {} u USING (accountId) WHERE p.email_hash IS NOT DISTINCT FROM md5(u.emailAddress)",
            mapped.scan("people"),
            plain.scan("users")
        )),
        users
    );
    assert_eq!(
        mapped.query::<i64>(&format!(
            "SELECT count(*) FROM (DESCRIBE SELECT * FROM {}) WHERE column_name = 'emailAddress'",
            mapped.scan("people")
        )),
        0
    );
    let issues = plain.query::<i64>(&format!("SELECT count(*) FROM {}", plain.scan("issues")));
    assert_eq!(
        mapped.query::<i64>(&format!(
            "SELECT count(*) FROM {} k JOIN {} i USING (id) WHERE k.project = split_part(i.key, '-', 1)",
            mapped.scan("issue_keys"),
            plain.scan("issues")
        )),
        issues
    );
}
