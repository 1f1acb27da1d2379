//! `meltano run tap-jira target-duckdb` twice against the mock, offline: Meltano keeps the
//! state of run 1 and hands it to run 2, which fetches only the changed issues; the stream
//! map in `meltano.yml` replaces user emails by a salted hash. The test
//! installs Meltano into a virtualenv under ~/.cache/singer-rs (once per machine).

use std::path::{Path, PathBuf};
use std::process::Command;

use singer_testing::duckdb::scalar;
use singer_testing::{Mock, MockConfig, bin, outcome, root};

const MELTANO_VERSION: &str = "4.4.1";

fn meltano() -> PathBuf {
    singer_testing::python::venv(
        "meltano-venv",
        &[&format!("meltano=={MELTANO_VERSION}")],
        &format!(
            "import importlib.metadata as m; assert m.version('meltano') == '{MELTANO_VERSION}'"
        ),
    )
    .join("bin/meltano")
}

fn run(meltano: &Path, project: &Path, mock: &Mock, args: &[&str]) -> (bool, String) {
    let bin_dir = bin("tap-jira").parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(meltano)
        .args(args)
        .current_dir(project)
        .env("PATH", path)
        .env("MELTANO_SEND_ANONYMOUS_USAGE_STATS", "false")
        .env("TAP_JIRA_DOMAIN", &mock.url)
        .env("TAP_JIRA_EMAIL", "meltano@example.com")
        .env("TAP_JIRA_API_TOKEN", "meltano-token")
        .env("TAP_JIRA_START_DATE", "2000-01-01T00:00:00Z")
        .output()
        .expect("meltano runs");
    outcome(&out)
}

#[test]
fn meltano_runs_tap_jira_into_target_duckdb_twice_with_state() {
    let meltano = meltano();
    let mock =
        Mock::start(MockConfig::default().with_basic_auth("meltano@example.com", "meltano-token"));
    let dir = tempfile::tempdir().expect("tmp");
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).expect("project dir");
    std::fs::copy(
        root().join("examples/meltano/meltano.yml"),
        project.join("meltano.yml"),
    )
    .expect("meltano.yml");

    let (ok, log) = run(
        &meltano,
        &project,
        &mock,
        &["run", "tap-jira", "target-duckdb"],
    );
    assert!(ok, "{log}");
    let db = project.join("output/jira.duckdb");
    let totals = mock.handle.totals();
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM issues"),
        totals.issues.to_string()
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM issue_comments"),
        totals.comments.to_string()
    );
    assert!(!log.contains("meltano-token"), "secrets stay out of logs");
    // The stream map of meltano.yml: a salted hash in place of each email address
    // (DuckDB's md5 over the mock's own address as the reference).
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'emailAddress'"
        ),
        "0"
    );
    assert_eq!(
        scalar(
            &db,
            "SELECT count(*) FROM users WHERE email_hash = md5('example-salt' || 'pat.customer@example.org')"
        ),
        "1"
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM users"),
        totals.users.to_string()
    );

    let (ok, state) = run(
        &meltano,
        &project,
        &mock,
        &["state", "get", "dev:tap-jira-to-target-duckdb"],
    );
    assert!(ok && state.contains("replication_key_value"), "{state}");

    let touched = mock.handle.touch(3);
    let issue_requests_before = mock.handle.route_count("/rest/api/3/search/jql");
    let (ok, log) = run(
        &meltano,
        &project,
        &mock,
        &["run", "tap-jira", "target-duckdb"],
    );
    assert!(ok, "{log}");
    assert!(log.contains("--state") || log.contains("state"), "{log}");
    let summary = log
        .lines()
        .find(|l| l.contains("load summary") && l.contains("stream=issues "))
        .unwrap_or_else(|| panic!("no issues summary in\n{log}"));
    let updated: u64 = summary
        .split("updated=")
        .nth(1)
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(
        (3..=5).contains(&updated),
        "run 2 loaded only changed issues: {summary}"
    );
    assert_eq!(
        mock.handle.route_count("/rest/api/3/search/jql") - issue_requests_before,
        1,
        "one page of issues"
    );
    assert_eq!(
        scalar(&db, "SELECT count(*) FROM issues"),
        totals.issues.to_string()
    );
    let newest = scalar(
        &db,
        "SELECT string_agg(key, ',' ORDER BY key) FROM (SELECT key FROM issues ORDER BY updated DESC LIMIT 3)",
    );
    let mut touched = touched;
    touched.sort();
    assert_eq!(newest, touched.join(","));
}
