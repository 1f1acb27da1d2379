//! target-duckdb end to end: the binary on fixture streams, checked with queries.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use singer_testing::duckdb::{Connection, query_one, rows, write_parquet};
use singer_testing::{
    TargetRun, after_state, batch_message, bin, fixture, fixture_lines, load_target,
    write_jsonl_gz, write_lines,
};

const TARGET: &str = "target-duckdb";

/// The database of a run, and queries on it.
trait Database {
    fn db(&self) -> PathBuf;
    fn conn(&self) -> Connection {
        Connection::open(self.db()).expect("open db")
    }
    fn query<T: duckdb::types::FromSql>(&self, sql: &str) -> T {
        query_one(&self.conn(), sql)
    }
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        rows(&self.conn(), sql)
    }
}

impl Database for TargetRun {
    fn db(&self) -> PathBuf {
        self.path("out.duckdb")
    }
}

fn load_into(dir: tempfile::TempDir, input: &Path, extra: Value) -> TargetRun {
    let config = json!({"path": dir.path().join("out.duckdb")});
    load_target(TARGET, dir, config, &extra, input)
}

fn load(name: &str, extra: Value) -> TargetRun {
    load_into(tempfile::tempdir().expect("tmp"), &fixture(name), extra)
}

#[test]
fn upsert_keeps_the_last_record_per_key() {
    // One commit per STATE: the second replaces rows of the first.
    let run = load("duplicates_with_keys.singer", json!({"batch_size_rows": 2}));
    run.assert_ok();
    assert_eq!(
        run.rows("SELECT id, status, CAST(updated_at AS VARCHAR) FROM orders ORDER BY id"),
        [
            ["1", "shipped", "2024-01-03 10:00:00+00"],
            ["2", "cancelled", "2024-01-03 11:00:00+00"],
            ["3", "new", "2024-01-02 10:00:00+00"]
        ]
    );
    let states = run.states();
    assert_eq!(
        states.last(),
        Some(&json!({"bookmarks": {"orders": {"replication_key_value": "2024-01-03T11:00:00Z"}}}))
    );
    let stderr = run.stderr();
    assert!(
        stderr.contains("inserted=3") && stderr.contains("updated=2"),
        "{stderr}"
    );
}

#[test]
fn append_only_keeps_every_record() {
    let run = load(
        "duplicates_with_keys.singer",
        json!({"load_method": "append-only"}),
    );
    run.assert_ok();
    assert_eq!(run.query::<i64>("SELECT count(*) FROM orders"), 6);
    assert_eq!(
        run.query::<i64>("SELECT count(DISTINCT _sdc_sequence) FROM orders"),
        6
    );
}

#[test]
fn overwrite_replaces_the_table_at_the_end() {
    let dir = tempfile::tempdir().expect("tmp");
    let first = load_into(
        dir,
        &fixture("duplicates_with_keys.singer"),
        json!({"load_method": "overwrite"}),
    );
    first.assert_ok();
    assert_eq!(first.query::<i64>("SELECT count(*) FROM orders"), 6);
    let dir = first.dir;
    let second = load_into(
        dir,
        &fixture("duplicates_with_keys.singer"),
        json!({"load_method": "overwrite"}),
    );
    second.assert_ok();
    assert_eq!(
        second.query::<i64>("SELECT count(*) FROM orders"),
        6,
        "replaced, not appended"
    );
    assert_eq!(
        second.query::<i64>(
            "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '%overwrite%'"
        ),
        0,
        "no staging table left"
    );
}

#[test]
fn activate_version_deletes_or_marks_older_versions() {
    let soft = load("activate_version.singer", json!({}));
    soft.assert_ok();
    assert_eq!(
        soft.rows("SELECT id, name, _sdc_deleted_at IS NOT NULL FROM products ORDER BY id"),
        [
            ["1", "one v2", "false"],
            ["2", "two v2", "false"],
            ["3", "three", "true"],
            ["4", "four", "true"],
            ["5", "five", "false"]
        ]
    );
    let hard = load("activate_version.singer", json!({"hard_delete": true}));
    hard.assert_ok();
    assert_eq!(
        hard.rows("SELECT id FROM products ORDER BY id"),
        [["1"], ["2"], ["5"]]
    );
}

#[test]
fn schema_changes_add_columns_and_widen_types() {
    let run = load("schema_change_mid_stream.singer", json!({}));
    run.assert_ok();
    assert_eq!(
        run.rows("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'events' AND column_name IN ('value', 'note', 'tags') ORDER BY column_name"),
        [["note", "VARCHAR"], ["tags", "VARCHAR[]"], ["value", "VARCHAR"]]
    );
    assert_eq!(
        run.rows("SELECT id, value, coalesce(note, '-') FROM events ORDER BY id"),
        [
            ["1", "5.0", "-"],
            ["2", "7.0", "-"],
            ["3", "2.5", "now a float"],
            ["4", "text", "now text"]
        ]
    );
}

#[test]
fn nested_objects_become_structs_lists_and_json() {
    let run = load("nested_and_arrays.singer", json!({}));
    run.assert_ok();
    assert_eq!(
        run.rows("SELECT fields.status.name, fields.status.category.key, fields.labels[2], len(fields.components), fields.components[2].name, CAST(fields.created AS VARCHAR) FROM issues WHERE id = '10001'"),
        [["To Do", "new", "p1", "2", "web", "2024-01-15 10:23:45.123+00"]]
    );
    assert_eq!(
        run.query::<String>("SELECT payload->>'$.free.form[0]' FROM issues WHERE id = '10001'"),
        "1"
    );
    assert_eq!(
        run.query::<String>("SELECT typeof(payload) FROM issues LIMIT 1"),
        "JSON"
    );
    assert_eq!(
        run.query::<i64>("SELECT len(matrix[1]) FROM issues WHERE id = '10001'"),
        2
    );
    assert!(run.query::<bool>("SELECT fields IS NULL FROM issues WHERE id = '10003'"));
}

#[test]
fn flattening_turns_nested_objects_into_columns() {
    let run = load(
        "nested_and_arrays.singer",
        json!({"flattening_enabled": true, "flattening_max_depth": 2}),
    );
    run.assert_ok();
    assert_eq!(
        run.rows("SELECT fields__summary, fields__status__name FROM issues WHERE id = '10001'"),
        [["Login fails", "To Do"]]
    );
    // The SDK's separator and key-length settings: long names are shortened as it does.
    let custom = load(
        "nested_and_arrays.singer",
        json!({"flattening_enabled": true, "flattening_max_depth": 2,
            "flattening_separator": "_", "flattening_max_key_length": 15}),
    );
    custom.assert_ok();
    assert_eq!(
        custom.rows("SELECT fields_summary, fie_sta_name FROM issues WHERE id = '10001'"),
        [["Login fails", "To Do"]]
    );
    let bad = load(
        "nested_and_arrays.singer",
        json!({"flattening_separator": "", "flattening_max_key_length": 0}),
    );
    assert!(!bad.output.status.success());
    let stderr = bad.stderr();
    assert!(
        stderr.contains("flattening_separator") && stderr.contains("flattening_max_key_length"),
        "{stderr}"
    );
}

#[test]
fn odd_names_are_sanitised_and_quoted() {
    let run = load("odd_names_and_unicode.singer", json!({}));
    run.assert_ok();
    assert_eq!(
        run.rows("SELECT display_name, e_mail, bio FROM public_users ORDER BY id"),
        [
            [
                "Zoë \"Z\" O'Brien",
                "zoe@example.com",
                "line one\nline two\ttabbed \\ backslash"
            ],
            ["Ἀθηνᾶ", "NULL", "quote \" and apostrophe '"]
        ]
    );
    assert_eq!(
        run.query::<String>("SELECT \"select\" FROM schema_table"),
        "reserved words"
    );
    let hostile = load("bad/sql_injection_names.singer", json!({}));
    hostile.assert_ok();
    assert_eq!(
        hostile.query::<i64>("SELECT count(*) FROM x___drop_table_users____"),
        1
    );
}

#[test]
fn default_target_schema_and_bookkeeping_tables() {
    let run = load(
        "interleaved_streams.singer",
        json!({"default_target_schema": "raw-jira"}),
    );
    run.assert_ok();
    assert_eq!(
        run.rows("SELECT stream, rows_loaded, key_properties FROM \"raw-jira\"._sdc_streams ORDER BY stream"),
        [["memberships", "30", "[\"user_id\",\"team_id\"]"], ["teams", "10", "[\"id\"]"], ["users", "30", "[\"id\"]"]]
    );
    let last_state: String =
        run.query("SELECT state FROM \"raw-jira\"._sdc_state ORDER BY commit_seq DESC LIMIT 1");
    assert_eq!(
        serde_json::from_str::<Value>(&last_state).ok(),
        run.states().last().cloned()
    );
}

#[test]
fn metadata_columns_are_filled() {
    let run = load("record_metadata.singer", json!({}));
    run.assert_ok();
    assert_eq!(
        run.rows("SELECT id, CAST(_sdc_extracted_at AS VARCHAR), _sdc_received_at IS NOT NULL, _sdc_batched_at IS NOT NULL, CAST(_sdc_deleted_at AS VARCHAR) FROM metered ORDER BY id"),
        [
            ["1", "2024-01-15 10:23:45.123456+00", "true", "true", "NULL"],
            ["2", "2024-01-15 10:23:46+00", "true", "true", "2024-01-16 00:00:00+00"]
        ]
    );
    let plain = load(
        "record_metadata.singer",
        json!({"add_record_metadata": false}),
    );
    plain.assert_ok();
    assert_eq!(
        plain.query::<i64>(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'metered'"
        ),
        2
    );
}

#[test]
fn many_states_and_unknown_types() {
    let run = load("many_states.singer", json!({"batch_size_rows": 100}));
    run.assert_ok();
    assert_eq!(run.query::<i64>("SELECT count(*) FROM log_lines"), 500);
    let states = run.states();
    assert!(states.len() >= 5, "{}", states.len());
    assert_eq!(
        states.last(),
        Some(&json!({"bookmarks": {"log_lines": {"replication_key_value": 500}}}))
    );
    let run = load("unknown_message_types.singer", json!({}));
    run.assert_ok();
    assert_eq!(run.query::<i64>("SELECT count(*) FROM things"), 2);
    assert!(run.stderr().contains("unknown type"), "{}", run.stderr());
}

/// Each bad input: the exit status, the error text, and what stays committed.
#[test]
fn bad_input_fails_clearly_and_keeps_acknowledged_data() {
    let cases: &[(&str, &[&str], Option<i64>)] = &[
        (
            "bad/malformed_json.singer",
            &["line 5", "invalid JSON"],
            Some(1),
        ),
        (
            "bad/truncated_line.singer",
            &["line 4", "invalid JSON"],
            Some(1),
        ),
        ("bad/invalid_utf8.singer", &["line 4"], Some(1)),
        (
            "bad/record_before_schema.singer",
            &["line 1", "before its SCHEMA"],
            None,
        ),
        (
            "bad/schema_violation.singer",
            &["stream 's'", "line 4", "field 'n'"],
            Some(1),
        ),
        (
            "bad/missing_key_property.singer",
            &["stream 's'", "line 4", "key property 'id'"],
            Some(1),
        ),
        (
            "bad/key_not_in_schema.singer",
            &["key property 'uuid'"],
            None,
        ),
        (
            "bad/missing_type.singer",
            &["line 2", "missing `type`"],
            None,
        ),
        (
            "bad/missing_stream.singer",
            &["line 2", "missing `stream`"],
            None,
        ),
        (
            "bad/wrong_field_types.singer",
            &["line 2", "`record` must be an object"],
            None,
        ),
        ("bad/empty_line.singer", &["line 4", "empty line"], Some(1)),
        (
            "bad/schema_without_properties.singer",
            &["stream 's'", "no properties"],
            None,
        ),
        (
            "bad/duplicate_columns_after_sanitising.singer",
            &["'Name' and 'name' both become column 'name'"],
            None,
        ),
        (
            "bad/duplicate_tables_after_sanitising.singer",
            &["'a-b' and 'a.b' both become table 'a_b'"],
            None,
        ),
        (
            "bad/incompatible_schema_change.singer",
            &["stream 's'", "line 4", "incompatible schema change", "'o'"],
            Some(1),
        ),
    ];
    for (name, needles, committed) in cases {
        let run = load(name, json!({}));
        assert!(!run.output.status.success(), "{name} must fail");
        let stderr = run.stderr();
        for n in *needles {
            assert!(stderr.contains(n), "{name}: '{n}' not in\n{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        match committed {
            Some(rows) => {
                assert_eq!(run.query::<i64>("SELECT count(*) FROM s"), *rows, "{name}");
                assert_eq!(
                    run.states(),
                    [json!({"n": 1})],
                    "{name}: the covering state is acknowledged, nothing after"
                );
            }
            None => assert!(run.states().is_empty(), "{name}: nothing acknowledged"),
        }
    }
}

#[test]
fn secrets_and_about() {
    let out = Command::new(bin(TARGET))
        .args(["--about", "--format", "json"])
        .output()
        .expect("about");
    assert!(out.status.success());
    let about: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(about["name"], "target-duckdb");
    for setting in [
        "path",
        "batch_size_rows",
        "batch_size_bytes",
        "batch_wait_limit_seconds",
        "load_method",
        "hard_delete",
        "add_record_metadata",
        "validate_records",
        "flattening_enabled",
        "flattening_max_depth",
        "default_target_schema",
        "state_file",
    ] {
        assert!(
            about["settings"]["properties"].get(setting).is_some(),
            "{setting}"
        );
    }
    let md = Command::new(bin(TARGET))
        .args(["--about", "--format", "markdown"])
        .output()
        .expect("about md");
    assert!(String::from_utf8_lossy(&md.stdout).starts_with("# `target-duckdb`"));
}

#[test]
fn invalid_config_lists_every_problem() {
    let dir = tempfile::tempdir().expect("tmp");
    let config = dir.path().join("c.json");
    std::fs::write(
        &config,
        r#"{"batch_size_rows": "many", "load_method": "sideways"}"#,
    )
    .expect("write");
    let out = Command::new(bin(TARGET))
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"path\" is a required property"),
        "{stderr}"
    );
    assert!(
        stderr.contains("config['batch_size_rows']") && stderr.contains("config['load_method']"),
        "{stderr}"
    );
}

#[test]
fn state_file_is_written_atomically_and_stdin_works() {
    let dir = tempfile::tempdir().expect("tmp");
    let state_file = dir.path().join("state.json");
    let config = dir.path().join("c.json");
    std::fs::write(
        &config,
        json!({"path": dir.path().join("db.duckdb"), "state_file": state_file}).to_string(),
    )
    .expect("write");
    let mut child = Command::new(bin(TARGET))
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let input = std::fs::read(fixture("duplicates_with_keys.singer")).expect("fixture");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last_line = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .map(str::to_string)
        .expect("a state");
    assert_eq!(
        std::fs::read_to_string(&state_file)
            .expect("state file")
            .trim(),
        last_line
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn a_state_of_any_json_is_acknowledged_unchanged() {
    let run = load("state_not_object.singer", json!({}));
    run.assert_ok();
    assert_eq!(run.states(), [json!("checkpoint-7")]);
    assert_eq!(run.query::<i64>("SELECT count(*) FROM s"), 1);
}

/// The tap dies after records past its last STATE: the target commits them as provisional
/// (marked in `_sdc_provisional`), and the resumed tap, which sends them again re-stamped
/// with a new `time_extracted`, replaces them: every row once.
#[test]
fn rows_past_the_last_state_are_replaced_by_the_resumed_tap() {
    let lines = fixture_lines("many_states.singer");
    let cut = lines
        .iter()
        .position(|l| l.contains("\"seq\":250,"))
        .expect("record 250")
        + 1;
    let dir = tempfile::tempdir().expect("tmp");
    let first_input = write_lines(dir.path(), "first.singer", &lines[..cut]);
    let first = load_into(dir, &first_input, json!({"batch_size_rows": 100}));
    first.assert_ok();
    assert_eq!(first.query::<i64>("SELECT count(*) FROM log_lines"), 250);
    assert!(first.query::<i64>("SELECT count(*) FROM _sdc_provisional") > 0);
    let resume_from = first.states().last().cloned().expect("a state");
    let at = after_state(&lines, &resume_from);
    let resumed: Vec<String> = lines[at..]
        .iter()
        .map(|l| {
            l.replacen(
                "{\"type\":\"RECORD\",",
                "{\"time_extracted\": \"2026-12-03T00:00:00Z\", \"type\": \"RECORD\", ",
                1,
            )
        })
        .collect();
    let replay = write_lines(
        first.dir.path(),
        "replay.singer",
        std::iter::once(&lines[0]).chain(&resumed),
    );
    let second = load_into(first.dir, &replay, json!({"batch_size_rows": 100}));
    second.assert_ok();
    assert_eq!(second.query::<i64>("SELECT count(*) FROM log_lines"), 500);
    assert_eq!(
        second.query::<i64>("SELECT count(DISTINCT seq) FROM log_lines"),
        500
    );
    assert_eq!(
        second.query::<i64>("SELECT count(*) FROM _sdc_provisional"),
        0
    );
    assert!(
        second
            .stderr()
            .contains("removed rows an interrupted run committed")
    );
}

/// The SDK's BATCH messages: a gzip JSON-lines file and a Parquet file written by DuckDB
/// load with the RECORDs around them, typed and validated as RECORDs are.
#[test]
fn batch_messages_load_jsonl_gz_and_parquet_files() {
    let dir = tempfile::tempdir().expect("tmp");
    let jsonl = dir.path().join("events-1.json.gz");
    let records: Vec<Value> = (1..=100)
        .map(|i| json!({"id": i, "name": format!("event {i}"), "happened": "2024-01-15T10:23:45.123+0000"}))
        .collect();
    write_jsonl_gz(&jsonl, &records);
    let parquet = dir.path().join("events-2.parquet");
    write_parquet(
        &parquet,
        "SELECT range::BIGINT AS id, 'event ' || range AS name, CAST(TIMESTAMP '2024-02-01 00:00:00' + to_hours(range) AS TIMESTAMPTZ) AS happened FROM range(101, 151)",
    );
    let lines = [
        json!({"type": "SCHEMA", "stream": "events", "key_properties": ["id"], "schema": {"properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "happened": {"type": "string", "format": "date-time"}}}})
        .to_string(),
        batch_message("events", "jsonl", "gzip", &[&jsonl]),
        json!({"type": "STATE", "value": {"batch": 1}}).to_string(),
        batch_message("events", "parquet", "none", &[&parquet]),
        json!({"type": "RECORD", "stream": "events", "record": {"id": 151, "name": "event 151"}}).to_string(),
        json!({"type": "STATE", "value": {"batch": 2}}).to_string(),
    ];
    let input = write_lines(dir.path(), "input.singer", &lines);
    let run = load_into(dir, &input, json!({}));
    run.assert_ok();
    assert_eq!(
        run.query::<i64>("SELECT count(DISTINCT id) FROM events"),
        151
    );
    // Parquet rows at 2024-02-01 plus `id` hours.
    assert_eq!(
        run.rows(
            "SELECT CAST(happened AS VARCHAR) FROM events WHERE id IN (1, 101, 150) ORDER BY id"
        ),
        [
            ["2024-01-15 10:23:45.123+00"],
            ["2024-02-05 05:00:00+00"],
            ["2024-02-07 06:00:00+00"]
        ]
    );
    assert_eq!(run.states().last(), Some(&json!({"batch": 2})));
}

/// Stream maps on real tap output, checked against the same input loaded without them,
/// with DuckDB's own functions as the reference: a renamed stream with a hashed column in
/// place of the emails, a second stream computed from issues, a filter, dropped streams.
#[test]
fn stream_maps_rename_compute_filter_and_drop_streams() {
    let maps = json!({"stream_maps": {
        "users": {"__alias__": "people", "email_hash": "md5(record.get('emailAddress'))", "emailAddress": null},
        "issue_keys": {"__source__": "issues", "__else__": null,
            "project": "key.split('-')[0]", "number": "int(key.split('-')[1])"},
        "issue_worklogs": {"__filter__": "timeSpentSeconds > 3600"},
        "sprints": null,
        "boards": "__NULL__"
    }});
    let mapped = load("jira_capture.singer", maps);
    mapped.assert_ok();
    let plain = load("jira_capture.singer", json!({}));
    plain.assert_ok();
    let conn = mapped.conn();
    conn.execute_batch(&format!(
        "ATTACH '{}' AS plain (READ_ONLY)",
        plain.db().display()
    ))
    .expect("attach");
    let count = |sql: &str| -> i64 { query_one(&conn, sql) };
    let tables = |names: &str| {
        count(&format!(
            "SELECT count(*) FROM information_schema.tables WHERE table_catalog = current_database() AND table_name IN ({names})"
        ))
    };
    assert_eq!(
        tables("'users', 'sprints', 'boards'"),
        0,
        "renamed and dropped streams leave no table"
    );
    assert_eq!(tables("'people', 'issue_keys', 'issues'"), 3);
    let users = count("SELECT count(*) FROM plain.users");
    assert!(users > 0);
    assert_eq!(
        count(
            "SELECT count(*) FROM people p JOIN plain.users u USING (accountId) WHERE p.email_hash IS NOT DISTINCT FROM md5(u.emailAddress)"
        ),
        users
    );
    assert_eq!(
        count(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'people' AND column_name = 'emailAddress'"
        ),
        0
    );
    let issues = count("SELECT count(*) FROM plain.issues");
    assert_eq!(
        count(
            "SELECT count(*) FROM issue_keys k JOIN plain.issues i USING (id) WHERE k.project = split_part(i.key, '-', 1) AND k.number = CAST(split_part(i.key, '-', 2) AS BIGINT)"
        ),
        issues
    );
    assert_eq!(
        mapped.rows("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'issue_keys' AND column_name NOT LIKE '\\_sdc%' ESCAPE '\\' ORDER BY ordinal_position"),
        [["id", "VARCHAR"], ["project", "VARCHAR"], ["number", "BIGINT"]]
    );
    let long = count("SELECT count(*) FROM plain.issue_worklogs WHERE timeSpentSeconds > 3600");
    assert!(long > 0 && long < count("SELECT count(*) FROM plain.issue_worklogs"));
    assert_eq!(count("SELECT count(*) FROM issue_worklogs"), long);
    assert_eq!(
        mapped.states(),
        plain.states(),
        "state passes through the maps unchanged"
    );
}

/// BATCH files go through the stream maps like RECORDs: Parquet and JSON-lines rows.
#[test]
fn stream_maps_apply_to_batch_rows() {
    let dir = tempfile::tempdir().expect("tmp");
    let jsonl = dir.path().join("events-1.json.gz");
    let records: Vec<Value> = (1..=10)
        .map(|i| json!({"id": i, "name": format!("event {i}")}))
        .collect();
    write_jsonl_gz(&jsonl, &records);
    let parquet = dir.path().join("events-2.parquet");
    write_parquet(
        &parquet,
        "SELECT range::BIGINT AS id, 'event ' || range AS name FROM range(11, 21)",
    );
    let lines = [
        json!({"type": "SCHEMA", "stream": "events", "key_properties": ["id"], "schema": {"properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}}}})
        .to_string(),
        batch_message("events", "jsonl", "gzip", &[&jsonl]),
        batch_message("events", "parquet", "none", &[&parquet]),
        json!({"type": "STATE", "value": {"batch": 1}}).to_string(),
    ];
    let input = write_lines(dir.path(), "input.singer", &lines);
    let maps = json!({"stream_maps": {"events": {
        "__alias__": "odd_events", "__filter__": "id % 2 == 1", "shout": "name.upper() + '!'"
    }}});
    let run = load_into(dir, &input, maps);
    run.assert_ok();
    assert_eq!(
        run.rows("SELECT id, shout FROM odd_events WHERE id IN (1, 19) ORDER BY id"),
        [["1", "EVENT 1!"], ["19", "EVENT 19!"]]
    );
    assert_eq!(run.query::<i64>("SELECT count(*) FROM odd_events"), 10);
}
