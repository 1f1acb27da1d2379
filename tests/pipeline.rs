//! tap-jira | target-duckdb (and target-parquet) against the Jira mock: the README's demo,
//! as a test.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use singer_testing::duckdb::scalar;
use singer_testing::{Mock, MockConfig, bin, pipeline, write_json};

const EMAIL: &str = "demo@example.com";
const TOKEN: &str = "demo-token-secret";

fn tap_config(dir: &Path, mock: &Mock) -> std::path::PathBuf {
    tap_config_with(dir, mock, json!({}))
}

/// The tap's config for the mock, with `extra` settings added.
fn tap_config_with(dir: &Path, mock: &Mock, extra: serde_json::Value) -> std::path::PathBuf {
    let mut config = json!({"domain": mock.url, "email": EMAIL, "api_token": TOKEN, "start_date": "2000-01-01T00:00:00Z"});
    if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
        config.extend(extra.clone());
    }
    write_json(dir, "tap.json", &config)
}

#[test]
fn jira_into_duckdb_then_incremental_from_the_state_file() {
    let mock = Mock::start(MockConfig::default().with_basic_auth(EMAIL, TOKEN));
    let dir = tempfile::tempdir().expect("tmp");
    let db = dir.path().join("jira.duckdb");
    let state_file = dir.path().join("state.json");
    let tap = tap_config(dir.path(), &mock);
    let target = write_json(
        dir.path(),
        "target.json",
        &json!({"path": db, "state_file": state_file}),
    );

    let first = pipeline(
        "tap-jira",
        &[Path::new("--config"), &tap],
        "target-duckdb",
        &[Path::new("--config"), &target],
    );
    assert!(first.tap.status.success(), "{}", first.tap_stderr());
    assert!(first.target.status.success(), "{}", first.target_stderr());
    let t = mock.handle.totals();
    for (table, want) in [
        ("issues", t.issues),
        ("issue_comments", t.comments),
        ("issue_worklogs", t.worklogs),
        ("issue_changelogs", t.changelogs),
        ("users", t.users),
        ("projects", t.projects),
        ("boards", t.boards),
        ("sprints", t.sprints),
    ] {
        assert_eq!(
            scalar(&db, &format!("SELECT count(*) FROM {table}")),
            want.to_string(),
            "{table}"
        );
    }
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM issue_comments c ANTI JOIN issues i ON c.issue_id = i.id AND c.issue_key = i.key"
        ),
        "0",
        "every comment is linked to its issue"
    );
    assert_eq!(
        scalar(&db, "SELECT typeof(updated) FROM issues LIMIT 1"),
        "TIMESTAMP WITH TIME ZONE"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(DISTINCT fields->>'$.project.key') FROM issues"
        ),
        t.projects.to_string()
    );
    // The state file is the last acknowledged state.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_file).expect("state file"))
            .expect("json");
    assert_eq!(Some(&saved), first.states().last());

    let touched = mock.handle.touch(5);
    let second = pipeline(
        "tap-jira",
        &[
            Path::new("--config"),
            &tap,
            Path::new("--state"),
            &state_file,
        ],
        "target-duckdb",
        &[Path::new("--config"), &target],
    );
    assert!(second.target.status.success(), "{}", second.target_stderr());
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM issues"),
        t.issues.to_string(),
        "upserted, not duplicated"
    );
    let newest = scalar(
        &db,
        "SELECT string_agg(key, ',' ORDER BY key) FROM (SELECT key FROM issues ORDER BY updated DESC LIMIT 5)",
    );
    let mut touched_sorted = touched.clone();
    touched_sorted.sort();
    assert_eq!(newest, touched_sorted.join(","));
    let loaded = second.target_stderr();
    let line = loaded
        .lines()
        .find(|l| l.contains("load summary") && l.contains("stream=issues "))
        .expect("issues summary");
    let updated: u64 = line
        .split("updated=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(
        (5..=7).contains(&updated),
        "run 2 loaded only the changed issues (and the bookmark's own): {line}"
    );
}

#[test]
fn jira_into_parquet() {
    let mock = Mock::start(MockConfig::default().with_basic_auth(EMAIL, TOKEN));
    let dir = tempfile::tempdir().expect("tmp");
    let tap = tap_config(dir.path(), &mock);
    let out = dir.path().join("lake");
    let target = write_json(
        dir.path(),
        "target.json",
        &json!({"destination_path": out, "partition_by": "month(updated)"}),
    );
    let run = pipeline(
        "tap-jira",
        &[Path::new("--config"), &tap],
        "target-parquet",
        &[Path::new("--config"), &target],
    );
    assert!(run.target.status.success(), "{}", run.target_stderr());
    let conn = duckdb::Connection::open_in_memory().expect("duckdb");
    let issues: i64 = conn
        .query_row(
            &format!("SELECT count(*) FROM read_parquet('{}/issues/**/*.parquet', hive_partitioning = true)", out.display()),
            [],
            |r| r.get(0),
        )
        .expect("query");
    assert_eq!(issues as usize, mock.handle.totals().issues);
    assert!(
        std::fs::read_dir(out.join("issues"))
            .expect("dataset")
            .flatten()
            .any(|e| e
                .file_name()
                .to_string_lossy()
                .starts_with("updated_month="))
    );
}

#[test]
fn a_dead_target_stops_the_tap_promptly() {
    let mock = Mock::start(MockConfig::default().with_basic_auth(EMAIL, TOKEN));
    let dir = tempfile::tempdir().expect("tmp");
    let tap = tap_config(dir.path(), &mock);
    let started = Instant::now();
    let mut tap_child = Command::new(bin("tap-jira"))
        .arg("--config")
        .arg(&tap)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tap");
    // A "target" that reads one line and exits.
    let stdout = tap_child.stdout.take().expect("stdout");
    let reader = Command::new("head")
        .args(["-n", "1"])
        .stdin(stdout)
        .stdout(Stdio::null())
        .status()
        .expect("head");
    assert!(reader.success());
    let out = tap_child.wait_with_output().expect("tap ends");
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stdout was closed"), "{stderr}");
}

/// tap-jira with `batch_config` writes its records to batch files (gzip JSON lines, or
/// Parquet) announced by BATCH messages; target-duckdb loads them with every row once, as
/// from RECORDs.
#[test]
fn jira_through_batch_files_into_duckdb() {
    for (format, extension) in [("jsonl", ".json.gz"), ("parquet", ".parquet")] {
        jira_through_batch_files(format, extension);
    }
}

fn jira_through_batch_files(format: &str, extension: &str) {
    let mock = Mock::start(MockConfig::default().with_basic_auth(EMAIL, TOKEN));
    let dir = tempfile::tempdir().expect("tmp");
    let batches = dir.path().join("batches");
    let tap = tap_config_with(
        dir.path(),
        &mock,
        json!({"batch_config": {"encoding": {"format": format, "compression": "gzip"},
            "storage": {"root": format!("file://{}", batches.display()), "prefix": "jira-"}, "batch_size": 40}}),
    );
    let db = dir.path().join("jira.duckdb");
    let target = write_json(dir.path(), "target.json", &json!({"path": db}));
    let run = pipeline(
        "tap-jira",
        &[Path::new("--config"), &tap],
        "target-duckdb",
        &[Path::new("--config"), &target],
    );
    assert!(run.tap.status.success(), "{}", run.tap_stderr());
    assert!(run.target.status.success(), "{}", run.target_stderr());
    let t = mock.handle.totals();
    for (table, key, want) in [
        ("issues", "id", t.issues),
        ("issue_comments", "id", t.comments),
        ("issue_worklogs", "id", t.worklogs),
        ("issue_changelogs", "id", t.changelogs),
        ("users", "accountId", t.users),
        ("projects", "id", t.projects),
    ] {
        assert_eq!(
            scalar(&db, &format!("SELECT count(DISTINCT {key}) FROM {table}")),
            want.to_string(),
            "{table}"
        );
        assert_eq!(
            scalar(&db, &format!("SELECT count(*) FROM {table}")),
            want.to_string(),
            "{table}: every row once ({format})"
        );
    }
    // JSON columns come back as the values the tap read, not as text.
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM issues WHERE json_type(fields) <> 'OBJECT'"
        ),
        "0",
        "{format}"
    );
    let files: Vec<String> = std::fs::read_dir(&batches)
        .expect("batch directory")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.starts_with("jira-tap-jira--issues-") && f.ends_with(extension)),
        "{files:?}"
    );
    assert!(files.iter().all(|f| !f.contains("partial")), "{files:?}");
    assert!(
        run.states()
            .last()
            .is_some_and(|s| s["bookmarks"]["issues"]["replication_key_value"].is_string()),
        "{:?}",
        run.states().last()
    );
}
