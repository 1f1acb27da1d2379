//! tap-jira against the local Jira mock, as a user runs it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};
use singer_testing::{Mock, MockConfig, MockHandle, catalog_streams, records};

const BIN: &str = env!("CARGO_BIN_EXE_tap-jira");
const EMAIL: &str = "robot@example.com";
const TOKEN: &str = "tok-3f9a-secret";

/// The Jira mock, requiring this test's credentials.
struct Site(Mock);

impl Site {
    fn start(config: MockConfig) -> Site {
        Site(Mock::start(config.with_basic_auth(EMAIL, TOKEN)))
    }
    fn handle(&self) -> MockHandle {
        self.0.handle.clone()
    }
    fn config(&self, dir: &Path, extra: Value) -> PathBuf {
        let mut c = json!({"domain": self.0.url, "email": EMAIL, "api_token": TOKEN,
            "start_date": "2000-01-01T00:00:00Z", "request_timeout_seconds": 5});
        if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
            c.extend(e.clone());
        }
        let path = dir.join("tap.json");
        std::fs::write(&path, c.to_string()).expect("config");
        path
    }
}

fn tap(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("tap-jira runs")
}

fn messages(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("stdout holds only Singer messages"))
        .collect()
}

fn sync(site: &Site, dir: &Path, extra: Value, state: Option<&Path>) -> (Output, Vec<Value>) {
    let config = site.config(dir, extra);
    let mut args: Vec<&std::ffi::OsStr> = vec!["--config".as_ref(), config.as_os_str()];
    if let Some(s) = state {
        args.push("--state".as_ref());
        args.push(s.as_os_str());
    }
    let out = tap(&args);
    let msgs = messages(&out);
    (out, msgs)
}

#[test]
fn a_full_sync_matches_the_site() {
    let site = Site::start(MockConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let (out, msgs) = sync(&site, dir.path(), json!({}), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = site.handle().totals();
    let count = |s: &str| records(&msgs, s).len();
    assert_eq!(count("users"), t.users);
    assert_eq!(count("fields"), t.fields);
    assert_eq!(count("projects"), t.projects);
    assert_eq!(count("statuses"), t.statuses);
    assert_eq!(count("priorities"), t.priorities);
    assert_eq!(count("issues"), t.issues);
    assert_eq!(count("issue_comments"), t.comments);
    assert_eq!(count("issue_worklogs"), t.worklogs);
    assert_eq!(
        count("issue_changelogs"),
        t.changelogs,
        "capped embedded changelogs are completed from the endpoint"
    );
    assert_eq!(count("boards"), t.boards);
    assert_eq!(count("sprints"), t.sprints);
    assert!(
        t.issues_with_truncated_changelog > 0,
        "the site exercises the cap"
    );

    // Every child row names its issue, by id and key.
    let issues: HashMap<String, String> = records(&msgs, "issues")
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap_or_default().to_string(),
                i["key"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for stream in ["issue_comments", "issue_worklogs", "issue_changelogs"] {
        for row in records(&msgs, stream) {
            let id = row["issue_id"].as_str().unwrap_or_default();
            assert_eq!(
                issues.get(id).map(String::as_str),
                row["issue_key"].as_str(),
                "{stream} row {row}"
            );
        }
    }
    assert!(
        records(&msgs, "sprints")
            .iter()
            .all(|s| s["board_id"].is_i64())
    );

    // Date-times are RFC 3339 in UTC; `updated` is top level; undeclared properties are gone.
    for issue in records(&msgs, "issues") {
        let updated = issue["updated"].as_str().expect("updated");
        assert!(
            updated.ends_with('Z') && !updated.contains("+0"),
            "{updated}"
        );
        assert!(issue.get("changelog").is_none() && issue.get("expand").is_none());
        assert!(
            issue["fields"]["updated"]
                .as_str()
                .is_some_and(|u| u.ends_with('Z'))
        );
    }
    // Issues arrive in bookmark order and the final state holds the last one.
    let updated: Vec<&str> = records(&msgs, "issues")
        .iter()
        .filter_map(|i| i["updated"].as_str())
        .collect();
    let mut sorted = updated.clone();
    sorted.sort();
    assert_eq!(updated, sorted);
    let last_state = msgs
        .iter()
        .rev()
        .find(|m| m["type"] == "STATE")
        .expect("state");
    assert_eq!(
        last_state["value"]["bookmarks"]["issues"]["replication_key_value"].as_str(),
        sorted.last().copied()
    );
    // Only Singer messages on stdout, and logs on stderr.
    assert!(String::from_utf8_lossy(&out.stderr).contains("sync summary"));
}

#[test]
fn a_second_run_from_state_fetches_only_changed_issues() {
    let site = Site::start(MockConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let (_, first) = sync(&site, dir.path(), json!({}), None);
    let state = first
        .iter()
        .rev()
        .find(|m| m["type"] == "STATE")
        .expect("state")["value"]
        .clone();
    let state_path = dir.path().join("state.json");
    std::fs::write(&state_path, state.to_string()).expect("state");
    let keys_before = site.handle().issue_keys();
    let max = keys_before
        .iter()
        .filter_map(|k| site.handle().issue_updated_ms(k))
        .max()
        .expect("issues");
    let at_bookmark: HashSet<String> = keys_before
        .iter()
        .filter(|k| site.handle().issue_updated_ms(k) == Some(max))
        .cloned()
        .collect();
    let touched: HashSet<String> = site.handle().touch(5).into_iter().collect();

    let (out, second) = sync(&site, dir.path(), json!({}), Some(&state_path));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fetched: HashSet<String> = records(&second, "issues")
        .iter()
        .filter_map(|i| i["key"].as_str().map(str::to_string))
        .collect();
    assert!(
        touched.is_subset(&fetched),
        "every changed issue: {touched:?} in {fetched:?}"
    );
    let expected: HashSet<String> = touched.union(&at_bookmark).cloned().collect();
    assert_eq!(
        fetched, expected,
        "only changed issues, plus the bookmark's own (inclusive bound)"
    );
    // Their children came along, the new comment included.
    let comment_issues: HashSet<&str> = records(&second, "issue_comments")
        .iter()
        .filter_map(|c| c["issue_key"].as_str())
        .collect();
    assert!(touched.iter().all(|k| comment_issues.contains(k.as_str())));
}

#[test]
fn rate_limits_and_server_errors_are_survived() {
    let site = Site::start(MockConfig {
        rate_limit_every: Some(7),
        error_burst_every: Some(13),
        error_burst_len: 2,
        retry_after_secs: 0,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let (out, msgs) = sync(&site, dir.path(), json!({"max_concurrency": 2}), None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = site.handle().totals();
    assert_eq!(records(&msgs, "issues").len(), t.issues);
    assert_eq!(records(&msgs, "issue_comments").len(), t.comments);
    let faults = site.handle().fault_counts();
    assert!(
        faults.rate_limited > 0 && faults.server_errors > 0,
        "faults were injected: {faults:?}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("rate limited"));
}

#[test]
fn bad_credentials_fail_with_one_clear_line_and_no_token() {
    let site = Site::start(MockConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let (out, msgs) = sync(
        &site,
        dir.path(),
        json!({"api_token": "wrong-token-7777"}),
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let critical: Vec<&str> = stderr.lines().filter(|l| l.contains("CRITICAL")).collect();
    assert_eq!(critical.len(), 1, "{stderr}");
    assert!(
        critical[0].contains("401")
            && critical[0].contains(EMAIL)
            && critical[0].contains("127.0.0.1"),
        "{}",
        critical[0]
    );
    let all = format!("{stderr}{}", String::from_utf8_lossy(&out.stdout));
    assert!(!all.contains("wrong-token-7777") && !all.contains(TOKEN));
    assert!(records(&msgs, "issues").is_empty());
}

#[test]
fn discovery_and_catalog_selection() {
    let site = Site::start(MockConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let config = site.config(dir.path(), json!({}));
    let out = tap(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--discover".as_ref(),
    ]);
    assert!(out.status.success());
    let names = catalog_streams(&out.stdout);
    assert_eq!(names.len(), 11);
    let mut catalog: Value = serde_json::from_slice(&out.stdout).expect("catalog");
    let issues = catalog["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .find(|s| s["stream"] == "issues")
        .expect("issues");
    let root_md = &issues["metadata"][0]["metadata"];
    assert_eq!(root_md["valid-replication-keys"], json!(["updated"]));
    assert_eq!(root_md["table-key-properties"], json!(["id"]));
    let updated_md = issues["metadata"]
        .as_array()
        .expect("md")
        .iter()
        .find(|m| m["breadcrumb"] == json!(["properties", "updated"]))
        .expect("updated");
    assert_eq!(updated_md["metadata"]["inclusion"], "automatic");

    // Select only issue_comments (its parent runs for contexts, unselected) and drop `self`.
    for s in catalog["streams"].as_array_mut().expect("streams") {
        let name = s["stream"].as_str().unwrap_or_default().to_string();
        for md in s["metadata"].as_array_mut().expect("md") {
            if md["breadcrumb"] == json!([]) {
                md["metadata"]["selected"] = json!(name == "issue_comments");
            } else if md["breadcrumb"] == json!(["properties", "self"]) {
                md["metadata"]["selected"] = json!(false);
            }
        }
    }
    let catalog_path = dir.path().join("catalog.json");
    std::fs::write(&catalog_path, catalog.to_string()).expect("catalog");
    let out = tap(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--catalog".as_ref(),
        catalog_path.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = messages(&out);
    let streams: HashSet<&str> = msgs
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .filter_map(|m| m["stream"].as_str())
        .collect();
    assert_eq!(streams, HashSet::from(["issue_comments"]));
    assert_eq!(
        records(&msgs, "issue_comments").len(),
        site.handle().totals().comments
    );
    assert!(
        records(&msgs, "issue_comments")
            .iter()
            .all(|c| c.get("self").is_none())
    );
    let schema = msgs.iter().find(|m| m["type"] == "SCHEMA").expect("schema");
    assert!(schema["schema"]["properties"].get("self").is_none());
}

#[test]
fn about_marks_secrets_and_test_mode_checks_the_connection() {
    let out = tap(&["--about".as_ref(), "--format".as_ref(), "json".as_ref()]);
    let about: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(about["settings"]["properties"]["api_token"]["secret"], true);
    assert_eq!(
        about["settings"]["properties"]["access_token"]["writeOnly"],
        true
    );
    assert!(
        about["capabilities"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("discover")) && c.contains(&json!("state")))
    );

    let site = Site::start(MockConfig::default());
    let dir = tempfile::tempdir().expect("tmp");
    let config = site.config(dir.path(), json!({"page_size": 10}));
    let out = tap(&["--config".as_ref(), config.as_os_str(), "--test".as_ref()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = messages(&out);
    assert_eq!(records(&msgs, "issues").len(), 10, "one page");
    assert!(
        records(&msgs, "issue_comments").is_empty(),
        "no children in a connection check"
    );
}

#[test]
fn resets_cut_and_truncated_bodies_and_slow_responses_are_survived() {
    let site = Site::start(MockConfig {
        reset_every: Some(23),
        truncate_every: Some(29),
        cut_every: Some(31),
        slow_every: Some(53),
        slow_ms: 1500,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    // A 1 s timeout: the slow responses time out and are retried.
    let (out, msgs) = sync(
        &site,
        dir.path(),
        json!({"request_timeout_seconds": 1, "max_concurrency": 2}),
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let t = site.handle().totals();
    assert_eq!(records(&msgs, "issues").len(), t.issues);
    assert_eq!(records(&msgs, "issue_comments").len(), t.comments);
    assert_eq!(records(&msgs, "issue_changelogs").len(), t.changelogs);
    let faults = site.handle().fault_counts();
    assert!(
        faults.resets > 0 && faults.truncated > 0 && faults.cut > 0,
        "{faults:?}"
    );
    assert!(
        stderr.contains("timed out") && stderr.contains("not valid JSON"),
        "retries are logged: {stderr}"
    );
    assert!(!stderr.contains(TOKEN));
}

#[test]
fn endless_server_errors_fail_clearly_after_bounded_retries() {
    let site = Site::start(MockConfig {
        error_burst_every: Some(1),
        error_burst_len: 1_000_000,
        retry_after_secs: 0,
        ..MockConfig::default()
    });
    let dir = tempfile::tempdir().expect("tmp");
    let started = std::time::Instant::now();
    let (out, _) = sync(&site, dir.path(), json!({"max_tries": 3}), None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let critical: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("CRITICAL"))
        .collect();
    // One line per failed top-level stream (the children of issues and boards never start).
    assert_eq!(critical.len(), 7, "{stderr}");
    assert!(
        critical
            .iter()
            .all(|l| l.contains("gave up after retries") && l.contains("http://127.0.0.1")),
        "{stderr}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(120));
    assert!(!stderr.contains(TOKEN));
}

#[test]
fn a_site_without_jira_software_skips_boards_and_sprints_with_one_warning() {
    let site = Site::start(MockConfig::default().without_jira_software());
    let dir = tempfile::tempdir().expect("tmp");
    let config = site.config(dir.path(), json!({}));
    let discover = tap(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--discover".as_ref(),
    ]);
    assert!(
        discover.status.success(),
        "{}",
        String::from_utf8_lossy(&discover.stderr)
    );
    let names = catalog_streams(&discover.stdout);
    assert_eq!(names.len(), 9, "{names:?}");
    assert!(!names.iter().any(|n| n == "boards" || n == "sprints"));

    // Without a catalog every stream is synced: boards answer 404 and are skipped.
    let out = tap(&["--config".as_ref(), config.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("CRITICAL"), "{stderr}");
    assert_eq!(stderr.matches("no Jira Software").count(), 1, "{stderr}");
    let msgs = messages(&out);
    assert!(records(&msgs, "boards").is_empty());
    assert_eq!(
        records(&msgs, "issues").len(),
        site.handle().totals().issues
    );
}

/// OAuth apps reach a site through the API gateway by cloud ID: with `cloud_id` set, every
/// request goes to `/ex/jira/{cloud_id}/...`; a wrong cloud ID fails clearly.
#[test]
fn oauth_with_a_cloud_id_goes_through_the_gateway_path() {
    let bearer = "oauth-7c1e-secret";
    let mock = Mock::start(
        MockConfig::default()
            .with_bearer(bearer)
            .with_cloud_id("5b10ac8d-82e0-4d3b"),
    );
    let dir = tempfile::tempdir().expect("tmp");
    let write = |cloud_id: &str| {
        let path = dir.path().join(format!("tap-{cloud_id}.json"));
        let config = json!({"domain": mock.url, "access_token": bearer, "cloud_id": cloud_id,
            "start_date": "2000-01-01T00:00:00Z", "request_timeout_seconds": 5, "max_tries": 2});
        std::fs::write(&path, config.to_string()).expect("config");
        path
    };
    let good = write("5b10ac8d-82e0-4d3b");
    let out = tap(&["--config".as_ref(), good.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let msgs = messages(&out);
    assert_eq!(records(&msgs, "issues").len(), mock.handle.totals().issues);
    let wrong = write("not-this-site");
    let out = tap(&["--config".as_ref(), wrong.as_os_str()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("404") && stderr.contains("/ex/jira/not-this-site"),
        "{stderr}"
    );
    assert!(!stderr.contains(bearer), "{stderr}");
}
