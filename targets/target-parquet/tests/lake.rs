//! target-parquet on object storage and as Delta Lake tables, against a real S3-compatible
//! server (moto, on 127.0.0.1, started by each test) and read back by independent readers:
//! delta-rs's Python package `deltalake` and pyarrow's S3 filesystem.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use singer_testing::python::{lake_venv, run_python};
use singer_testing::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use singer_testing::{TargetRun, fixture, load_target, spawn_target, write_lines};

const TARGET: &str = "target-parquet";

/// Reads tables back: a Delta table with `deltalake`, a Parquet dataset with pyarrow.
/// Prints one JSON object: rows, distinct ids, column types, partition columns, files,
/// txn versions.
const READ: &str = r#"
import json, sys
import pyarrow as pa, pyarrow.dataset as ds, pyarrow.fs as pafs
kind, uri, endpoint, key, secret, id_col = sys.argv[1:7]
out = {}
if kind == "delta":
    from deltalake import DeltaTable
    opts = {"AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret} if endpoint != "-" else {}
    dt = DeltaTable(uri, storage_options=opts)
    table = dt.to_pyarrow_table()
    out["partition_columns"] = dt.metadata().partition_columns
    out["files"] = len(dt.file_uris())
    out["version"] = dt.version()
    out["txn"] = dt.transaction_version("target-parquet/" + uri.rstrip("/").split("/")[-1])
else:
    fs = pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", access_key=key,
                           secret_key=secret, region="us-east-1")
    table = ds.dataset(uri, filesystem=fs, format="parquet", partitioning="hive").to_table()
    out["files"] = len(ds.dataset(uri, filesystem=fs, format="parquet").files)
out["rows"] = table.num_rows
out["types"] = {f.name: str(f.type) for f in table.schema}
if id_col in table.column_names:
    ids = table.column(id_col).to_pylist()
    out["distinct_ids"] = len(set(ids))
    out["ids"] = sorted(i for i in ids if i is not None)[:20]
out["columns"] = {n: table.column(n).to_pylist()[:50] for n in table.column_names if n in ("name", "value", "note", "at_day")}
print(json.dumps(out))
"#;

/// Lists a bucket's keys (all of them) with pyarrow.
const LIST: &str = r#"
import json, sys
import pyarrow.fs as pafs
bucket, endpoint, key, secret = sys.argv[1:5]
fs = pafs.S3FileSystem(endpoint_override=endpoint, scheme="http", access_key=key,
                       secret_key=secret, region="us-east-1")
print(json.dumps(sorted(i.path for i in fs.get_file_info(pafs.FileSelector(bucket, recursive=True)) if i.type == pafs.FileType.File)))
"#;

struct Lake {
    venv: std::path::PathBuf,
    s3: S3Server,
}

impl Lake {
    fn start(bucket: &str) -> Lake {
        let venv = lake_venv();
        let s3 = S3Server::start(&venv);
        s3.create_bucket(bucket);
        Lake { venv, s3 }
    }

    fn config(&self, destination: &str, extra: Value) -> Value {
        let mut config = json!({
            "destination_path": destination,
            "storage_options": self.s3.storage_options(),
        });
        if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        config
    }

    fn load(&self, dir: tempfile::TempDir, config: Value, input: &Path) -> TargetRun {
        load_target(TARGET, dir, config, &json!({}), input)
    }

    fn read(&self, kind: &str, uri: &str, id_col: &str) -> Value {
        let out = run_python(
            &self.venv,
            READ,
            &[kind, uri, &self.s3.endpoint, ACCESS_KEY, SECRET_KEY, id_col],
        );
        serde_json::from_str(out.trim()).expect("reader prints JSON")
    }

    fn keys(&self, bucket: &str) -> Vec<String> {
        let out = run_python(
            &self.venv,
            LIST,
            &[bucket, &self.s3.endpoint, ACCESS_KEY, SECRET_KEY],
        );
        serde_json::from_str(out.trim()).expect("lister prints JSON")
    }
}

fn assert_no_secret(run: &TargetRun) {
    let all = format!(
        "{}{}",
        run.stderr(),
        String::from_utf8_lossy(&run.output.stdout)
    );
    assert!(
        !all.contains(SECRET_KEY),
        "the secret key reached the output:\n{all}"
    );
}

#[test]
fn parquet_datasets_on_s3_read_back_with_pyarrow() {
    let lake = Lake::start("lake");
    let run = lake.load(
        tempfile::tempdir().expect("tmp"),
        lake.config("s3://lake/raw", json!({"partition_by": "day(at)"})),
        &fixture("many_states.singer"),
    );
    run.assert_ok();
    assert_no_secret(&run);
    let read = lake.read("parquet", "lake/raw/log_lines", "seq");
    assert_eq!(read["rows"], 500);
    assert_eq!(read["distinct_ids"], 500);
    // UTC, as the local layout labels it.
    assert_eq!(read["types"]["at"], "timestamp[us, tz=+00:00]");
    assert_eq!(read["types"]["seq"], "int64");
    let keys = lake.keys("lake");
    assert!(
        keys.iter().any(|k| k == "lake/raw/.singer_commit.json"),
        "{keys:?}"
    );
    assert!(
        keys.iter()
            .any(|k| k.starts_with("lake/raw/log_lines/at_day=2024-01-01/part-")),
        "Hive partitions on S3: {keys:?}"
    );
    assert!(
        !keys.iter().any(|k| k.ends_with(".tmp")),
        "no staged files left: {keys:?}"
    );
}

#[test]
fn delta_tables_on_s3_with_partitions_schema_growth_and_versions() {
    let lake = Lake::start("lake");
    let dir = tempfile::tempdir().expect("tmp");
    let input = write_lines(
        dir.path(),
        "grow.singer",
        [
            r#"{"type":"SCHEMA","stream":"events","schema":{"type":"object","properties":{"id":{"type":"integer"},"value":{"type":["null","integer"]},"at":{"type":["null","string"],"format":"date-time"}}},"key_properties":["id"]}"#,
            r#"{"type":"RECORD","stream":"events","record":{"id":1,"value":5,"at":"2024-03-01T10:00:00+02:00"}}"#,
            r#"{"type":"RECORD","stream":"events","record":{"id":2,"value":7,"at":"2024-03-02T00:30:00Z"}}"#,
            r#"{"type":"STATE","value":{"bookmarks":{"events":{"n":2}}}}"#,
            r#"{"type":"SCHEMA","stream":"events","schema":{"type":"object","properties":{"id":{"type":"integer"},"value":{"type":["null","integer"]},"at":{"type":["null","string"],"format":"date-time"},"note":{"type":["null","string"]}}},"key_properties":["id"]}"#,
            r#"{"type":"RECORD","stream":"events","record":{"id":3,"value":2,"at":"2024-03-02T12:00:00Z","note":"a new column"}}"#,
            r#"{"type":"STATE","value":{"bookmarks":{"events":{"n":3}}}}"#,
        ]
        .iter(),
    );
    let config = lake.config(
        "s3://lake/delta",
        json!({"table_format": "delta", "partition_by": "day(at)"}),
    );
    let first = lake.load(dir, config.clone(), &input);
    first.assert_ok();
    assert_no_secret(&first);
    let events = lake.read("delta", "s3://lake/delta/events", "id");
    assert_eq!(events["rows"], 3);
    assert_eq!(events["partition_columns"], json!(["at_day"]));
    assert_eq!(events["types"]["at"], "timestamp[us, tz=UTC]");
    assert_eq!(events["types"]["id"], "int64");
    assert_eq!(events["types"]["note"], "string");
    // 2024-03-01T10:00:00+02:00 is 08:00 UTC on the 1st.
    let mut days: Vec<String> = events["columns"]["at_day"]
        .as_array()
        .expect("at_day")
        .iter()
        .map(|d| d.as_str().unwrap_or("null").to_string())
        .collect();
    days.sort();
    assert_eq!(days, ["2024-03-01", "2024-03-02", "2024-03-02"]);
    let txn = events["txn"].as_i64().expect("a txn version");
    assert!(txn >= 1, "{events}");

    // Full-table versions into a second table of the same destination: only version 2's
    // rows stay, in an overwrite transaction.
    let second = lake.load(first.dir, config, &fixture("activate_version.singer"));
    second.assert_ok();
    let products = lake.read("delta", "s3://lake/delta/products", "id");
    assert_eq!(products["rows"], 3, "{products}");
    assert_eq!(products["ids"], json!([1, 2, 5]));
    let events_again = lake.read("delta", "s3://lake/delta/events", "id");
    assert_eq!(events_again["rows"], 3, "the other table is untouched");
}

/// A column of a local Delta table, rows sorted by `id`, as JSON values.
fn sorted_column(venv: &Path, table: &Path, column: &str) -> Vec<Value> {
    let out = run_python(
        venv,
        "import json, sys\nfrom deltalake import DeltaTable\nt = DeltaTable(sys.argv[1]).to_pyarrow_table().sort_by('id')\nprint(json.dumps(t.column(sys.argv[2]).to_pylist()))",
        &[&table.to_string_lossy(), column],
    );
    serde_json::from_str(out.trim()).expect("reader prints JSON")
}

/// Loads `input` into a new local Delta destination with `extra` settings: the run and
/// the destination directory.
fn load_local_delta(input: &Path, extra: Value) -> (TargetRun, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let config = json!({"destination_path": out, "table_format": "delta"});
    (load_target(TARGET, dir, config, &extra, input), out)
}

/// Reads a local Delta table: the reader's JSON summary.
fn read_local(venv: &Path, table: &Path, id_col: &str) -> Value {
    let out = run_python(
        venv,
        READ,
        &["delta", &table.to_string_lossy(), "-", "-", "-", id_col],
    );
    serde_json::from_str(out.trim()).expect("reader prints JSON")
}

#[test]
fn local_delta_tables_widen_types_as_target_duckdb_does() {
    let venv = lake_venv();
    // 'value' widens integer -> number -> string after its first rows are committed.
    let (run, out) = load_local_delta(&fixture("schema_change_mid_stream.singer"), json!({}));
    run.assert_ok();
    let read = read_local(&venv, &out.join("events"), "id");
    assert_eq!(read["rows"], 4, "{read}");
    assert_eq!(read["types"]["value"], "string");
    assert_eq!(read["types"]["tags"], "list<element: string>");
    // Every file rewritten twice (to double, then to text): the integers read as they
    // were sent, as in target-duckdb's append mode.
    assert_eq!(
        sorted_column(&venv, &out.join("events"), "value"),
        [json!("5"), json!("7"), json!("2.5"), json!("text")]
    );
}

#[test]
fn local_delta_tables_refuse_a_change_no_type_holds() {
    let venv = lake_venv();
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let input = write_lines(
        dir.path(),
        "shapes.singer",
        [
            r#"{"type":"SCHEMA","stream":"shapes","schema":{"type":"object","properties":{"id":{"type":"integer"},"geo":{"type":["null","object"],"properties":{"x":{"type":"integer"}}}}},"key_properties":["id"]}"#,
            r#"{"type":"RECORD","stream":"shapes","record":{"id":1,"geo":{"x":3}}}"#,
            r#"{"type":"STATE","value":{"bookmarks":{"shapes":{"n":1}}}}"#,
            r#"{"type":"SCHEMA","stream":"shapes","schema":{"type":"object","properties":{"id":{"type":"integer"},"geo":{"type":["null","number"]}}},"key_properties":["id"]}"#,
            r#"{"type":"RECORD","stream":"shapes","record":{"id":2,"geo":1.5}}"#,
            r#"{"type":"STATE","value":{"bookmarks":{"shapes":{"n":2}}}}"#,
        ]
        .iter(),
    );
    let config = json!({"destination_path": out, "table_format": "delta"});
    let run = load_target(TARGET, dir, config, &json!({}), &input);
    assert!(
        !run.output.status.success(),
        "an object cannot become a number"
    );
    let stderr = run.stderr();
    assert!(
        stderr.contains("shapes")
            && stderr.contains("'geo'")
            && stderr.contains("Struct")
            && stderr.contains("Float64"),
        "{stderr}"
    );
    // What was acknowledged before the change stays, readable.
    assert_eq!(run.states().len(), 1);
    let read = read_local(&venv, &out.join("shapes"), "id");
    assert_eq!(read["rows"], 1, "{read}");
}

#[test]
fn local_delta_upserts_merge_on_keys_across_commits() {
    let venv = lake_venv();
    // Two records per commit: later commits rewrite the files of earlier ones.
    let (run, out) = load_local_delta(
        &fixture("duplicates_with_keys.singer"),
        json!({"batch_size_rows": 2, "partition_by": "status", "checkpoint_interval": 2}),
    );
    run.assert_ok();
    let table = out.join("orders");
    let read = read_local(&venv, &table, "id");
    assert_eq!(read["rows"], 3, "one row per key: {read}");
    assert_eq!(read["ids"], json!([1, 2, 3]));
    assert_eq!(read["partition_columns"], json!(["status"]));
    assert_eq!(
        sorted_column(&venv, &table, "status"),
        [json!("shipped"), json!("cancelled"), json!("new")]
    );
    // Three commits, a checkpoint every two: readers start from it.
    let checkpoints: Vec<_> = std::fs::read_dir(table.join("_delta_log"))
        .expect("log")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".checkpoint.parquet"))
        .collect();
    assert!(!checkpoints.is_empty(), "a checkpoint was written");
}

/// A tap dies after updating a key, past its last STATE: the target commits the merge
/// (which rewrote an earlier file) to bound memory; the rerun from the last state sends the
/// update again. Nothing committed under an earlier STATE may go with the retraction.
#[test]
fn local_delta_upsert_after_a_tap_died_keeps_every_key() {
    let venv = lake_venv();
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let record = |id: u64, name: &str| {
        format!(r#"{{"type":"RECORD","stream":"users","record":{{"id":{id},"name":"{name}"}}}}"#)
    };
    let schema = r#"{"type":"SCHEMA","stream":"users","schema":{"type":"object","properties":{"id":{"type":"integer"},"name":{"type":["null","string"]}}},"key_properties":["id"]}"#;
    let state =
        |n: u64| format!(r#"{{"type":"STATE","value":{{"bookmarks":{{"users":{{"n":{n}}}}}}}}}"#);
    let mut first = vec![schema.to_string()];
    first.extend((1..=5).map(|i| record(i, "v1")));
    first.push(state(5));
    first.extend([record(3, "v2"), record(6, "v1")]);
    let first_input = write_lines(dir.path(), "first.singer", first.iter());
    let config = json!({"destination_path": out, "table_format": "delta"});
    let run = load_target(TARGET, dir, config.clone(), &json!({}), &first_input);
    run.assert_ok();
    assert_eq!(run.states().len(), 1);
    // Resumed from n=5: the update and the new key again, then the final state.
    let replay = [
        schema.to_string(),
        record(3, "v2"),
        record(6, "v1"),
        state(6),
    ];
    let replay_input = write_lines(run.dir.path(), "replay.singer", replay.iter());
    let second = load_target(TARGET, run.dir, config, &json!({}), &replay_input);
    second.assert_ok();
    let read = read_local(&venv, &out.join("users"), "id");
    assert_eq!(read["rows"], 6, "{read}");
    assert_eq!(read["ids"], json!([1, 2, 3, 4, 5, 6]));
}

/// A commit log removed by hand: the next start keeps every file the tables reference and
/// refuses to write (its commit numbers would start again under the tables' `txn`).
#[test]
fn local_delta_without_its_commit_log_keeps_the_tables_and_refuses() {
    let venv = lake_venv();
    let dir = tempfile::tempdir().expect("tmp");
    let out = dir.path().join("out");
    let config = json!({"destination_path": out, "table_format": "delta"});
    let run = load_target(
        TARGET,
        dir,
        config.clone(),
        &json!({}),
        &fixture("many_states.singer"),
    );
    run.assert_ok();
    std::fs::remove_file(out.join(".singer_commit.json")).expect("remove the log");
    let again = load_target(
        TARGET,
        run.dir,
        config,
        &json!({}),
        &fixture("many_states.singer"),
    );
    assert!(!again.output.status.success());
    assert!(again.stderr().contains("commit log"), "{}", again.stderr());
    let read = read_local(&venv, &out.join("log_lines"), "seq");
    assert_eq!(read["rows"], 500, "{read}");
}

/// Partition values that need escaping in directory names, through upserts that rewrite
/// their files: the table still finds every file.
#[test]
fn local_delta_upserts_in_partitions_with_escaped_values() {
    let venv = lake_venv();
    let dir = tempfile::tempdir().expect("tmp");
    let schema = r#"{"type":"SCHEMA","stream":"t","schema":{"type":"object","properties":{"id":{"type":"integer"},"kind":{"type":["null","string"]},"v":{"type":["null","integer"]}}},"key_properties":["id"]}"#;
    let record = |id: u64, kind: &str, v: u64| {
        format!(
            r#"{{"type":"RECORD","stream":"t","record":{{"id":{id},"kind":"{kind}","v":{v}}}}}"#
        )
    };
    let state = |n: u64| format!(r#"{{"type":"STATE","value":{{"n":{n}}}}}"#);
    let lines = [
        schema.to_string(),
        record(1, "a/b é", 1),
        record(2, "50% off", 1),
        state(1),
        record(1, "a/b é", 2),
        record(3, "a/b é", 1),
        state(2),
        record(2, "50% off", 2),
        state(3),
    ];
    let input = write_lines(dir.path(), "kinds.singer", lines.iter());
    let (run, out) = load_local_delta(&input, json!({"partition_by": "kind"}));
    run.assert_ok();
    let table = out.join("t");
    assert_eq!(
        sorted_column(&venv, &table, "id"),
        [json!(1), json!(2), json!(3)]
    );
    assert_eq!(
        sorted_column(&venv, &table, "kind"),
        [json!("a/b é"), json!("50% off"), json!("a/b é")]
    );
    assert_eq!(
        sorted_column(&venv, &table, "v"),
        [json!(2), json!(2), json!(1)]
    );
}

/// Synthetic tap output: `rows` records of ~1 KB (hex noise, so they do not compress
/// away) with a STATE every `every` records; `from` skips records up to it, as a tap
/// resumed from a bookmark does, and `extracted` is the time the tap stamps.
fn events(from: u64, rows: u64, every: u64, extracted: &str) -> Vec<u8> {
    let mut out = Vec::new();
    writeln!(
        out,
        r#"{{"type":"SCHEMA","stream":"events","schema":{{"type":"object","properties":{{"id":{{"type":"integer"}},"payload":{{"type":"string"}}}}}},"key_properties":["id"]}}"#
    )
    .expect("write");
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for id in (from + 1)..=rows {
        let mut payload = String::with_capacity(1024);
        for _ in 0..64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            payload.push_str(&format!("{x:016x}"));
        }
        writeln!(
            out,
            r#"{{"type":"RECORD","stream":"events","record":{{"id":{id},"payload":"{payload}"}},"time_extracted":"{extracted}"}}"#
        )
        .expect("write");
        if id % every == 0 {
            writeln!(
                out,
                r#"{{"type":"STATE","value":{{"bookmarks":{{"events":{{"id":{id}}}}}}}}}"#
            )
            .expect("write");
        }
    }
    out
}

/// Kills the target with SIGKILL while a multipart upload is in progress (seen on the
/// server), then resumes the tap from the last state the target printed, with new
/// `time_extracted` stamps: every row is in the table exactly once.
fn killed_mid_upload_then_resumed(format: &str) {
    let lake = Lake::start("lake");
    let dir = tempfile::tempdir().expect("tmp");
    let destination = format!("s3://lake/{format}");
    // Append-only: exactly-once comes from the ack ledger and the tables' txn versions,
    // not from merging on keys.
    let extra = json!({"table_format": format, "row_group_size": 2000, "batch_size_rows": 40000, "load_method": "append-only"});
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, lake.config(&destination, extra).to_string()).expect("config");
    const ROWS: u64 = 100_000;

    let mut child = spawn_target(TARGET, &config_path);
    let mut stdin = child.stdin.take().expect("stdin");
    let input = events(0, ROWS, 5_000, "2026-12-01T00:00:00Z");
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let stdout = child.stdout.take().expect("stdout");
    let states = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_upload = false;
    while Instant::now() < deadline {
        if lake.s3.multipart_uploads("lake") > 0 {
            seen_upload = true;
            break;
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = feeder.join();
    let printed = states.join().expect("stdout reader");
    assert!(
        seen_upload,
        "the target was killed during a multipart upload"
    );

    let resume_from = printed
        .last()
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("a state line")["bookmarks"]["events"]["id"]
                .as_u64()
                .unwrap_or(0)
        })
        .unwrap_or(0);
    assert!(resume_from < ROWS, "the kill came before the end");
    let replay = events(resume_from, ROWS, 5_000, "2026-12-02T09:30:00Z");
    let second = singer_testing::run_target(TARGET, &config_path, &replay);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );

    let read = match format {
        "delta" => lake.read("delta", &format!("{destination}/events"), "id"),
        _ => lake.read("parquet", &format!("lake/{format}/events"), "id"),
    };
    assert_eq!(read["rows"], ROWS, "every row once: {read}");
    assert_eq!(read["distinct_ids"], ROWS);
    let keys = lake.keys("lake");
    assert!(!keys.iter().any(|k| k.ends_with(".tmp")), "{keys:?}");
}

#[test]
fn delta_killed_mid_upload_resumes_exactly_once() {
    killed_mid_upload_then_resumed("delta");
}

#[test]
fn parquet_on_s3_killed_mid_upload_resumes_exactly_once() {
    killed_mid_upload_then_resumed("parquet");
}

#[test]
fn bad_storage_settings_are_refused_before_any_data() {
    let dir = tempfile::tempdir().expect("tmp");
    let cases = [
        (
            json!({"destination_path": "s3://b/p", "storage_options": {"aws_endpont": "http://x"}}),
            "aws_endpont",
        ),
        (json!({"destination_path": "ftp://host/p"}), "ftp://"),
        (
            json!({"destination_path": dir.path().join("local"), "storage_options": {"aws_region": "x"}}),
            "storage_options",
        ),
        (
            json!({"destination_path": "s3://b/p", "table_format": "iceberg"}),
            "table_format",
        ),
    ];
    for (config, expected) in cases {
        let run = load_target(
            TARGET,
            tempfile::tempdir().expect("tmp"),
            config.clone(),
            &json!({}),
            &fixture("many_states.singer"),
        );
        assert!(!run.output.status.success(), "{config}");
        assert!(
            run.stderr().contains(expected),
            "{config}: {}",
            run.stderr()
        );
        assert!(run.states().is_empty());
    }
    assert!(!dir.path().join("local").exists());
}
