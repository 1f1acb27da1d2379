//! Every object the mock serves fits the stream schemas in `schemas/jira/`, after
//! the tap's normalisation (timestamps to RFC 3339, parent keys on child rows).
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use common::*;
use jira_mock::MockConfig;
use serde_json::{Value, json};

fn schema(stream: &str) -> jsonschema::Validator {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../../schemas/jira/{stream}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

/// `…T10:23:45.123+0000` → `…T10:23:45.123+00:00`, recursively.
fn normalise(v: &mut Value) {
    match v {
        Value::String(s) => {
            let b = s.as_bytes();
            let n = b.len();
            if n >= 24
                && b[10] == b'T'
                && (b[n - 5] == b'+' || b[n - 5] == b'-')
                && b[n - 4..].iter().all(u8::is_ascii_digit)
            {
                s.insert(n - 2, ':');
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalise),
        Value::Object(m) => m.values_mut().for_each(normalise),
        _ => {}
    }
}

fn check(v: &jsonschema::Validator, stream: &str, mut record: Value) {
    normalise(&mut record);
    let errors: Vec<String> = v
        .iter_errors(&record)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{stream}: {errors:?}\n{record:#}");
}

#[tokio::test]
async fn all_streams_fit_their_schemas() {
    let s = server(MockConfig::default()).await;
    let c = client();

    // The validator does catch wrong types and un-normalised timestamps.
    let v = schema("issue_comments");
    assert!(!v.is_valid(&json!({"id": 10001, "issue_id": "1", "issue_key": "A-1"})));
    assert!(!v.is_valid(&json!({"id": "1", "created": "2024-01-15T10:23:45.123+0000"})));
    assert!(v.is_valid(&json!({"id": "1", "created": "2024-01-15T10:23:45.123+00:00"})));

    let users = get_json(&c, &s.url("/rest/api/3/users/search?maxResults=1000")).await;
    let v = schema("users");
    users
        .as_array()
        .unwrap()
        .iter()
        .for_each(|u| check(&v, "users", u.clone()));

    for (stream, path, key) in [
        ("fields", "/rest/api/3/field", None),
        ("statuses", "/rest/api/3/status", None),
        ("priorities", "/rest/api/3/priority/search", Some("values")),
        (
            "projects",
            "/rest/api/3/project/search?expand=description,lead,issueTypes,url,insight",
            Some("values"),
        ),
        ("boards", "/rest/agile/1.0/board", Some("values")),
    ] {
        let v = schema(stream);
        let body = get_json(&c, &s.url(path)).await;
        let list = match key {
            Some(k) => body[k].clone(),
            None => body,
        };
        assert!(!list.as_array().unwrap().is_empty(), "{stream}");
        list.as_array()
            .unwrap()
            .iter()
            .for_each(|x| check(&v, stream, x.clone()));
    }

    let v = schema("sprints");
    let boards = get_json(&c, &s.url("/rest/agile/1.0/board?type=scrum")).await;
    let scrum: Vec<i64> = boards["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_i64().unwrap())
        .collect();
    assert_eq!(scrum.len(), 4);
    for board in scrum {
        let page = get_json(&c, &s.url(&format!("/rest/agile/1.0/board/{board}/sprint"))).await;
        for sp in page["values"].as_array().unwrap() {
            let mut row = sp.clone();
            row["board_id"] = json!(board);
            check(&v, "sprints", row);
        }
    }

    let issues_v = schema("issues");
    let comments_v = schema("issue_comments");
    let worklogs_v = schema("issue_worklogs");
    let changelogs_v = schema("issue_changelogs");
    let issues = search_all(
        &c,
        s.base_url(),
        "updated >= 0 ORDER BY updated ASC",
        "*all",
        100,
    )
    .await;
    assert_eq!(issues.len(), 120);
    for issue in issues {
        let mut record = issue.clone();
        record["created"] = issue["fields"]["created"].clone();
        record["updated"] = issue["fields"]["updated"].clone();
        check(&issues_v, "issues", record);
        let id = issue["id"].as_str().unwrap();
        let key = issue["key"].as_str().unwrap();
        for (stream, path, field, v) in [
            ("issue_comments", "comment", "comments", &comments_v),
            ("issue_worklogs", "worklog", "worklogs", &worklogs_v),
            (
                "issue_changelogs",
                "changelog?maxResults=100",
                "values",
                &changelogs_v,
            ),
        ] {
            let page = get_json(&c, &s.url(&format!("/rest/api/3/issue/{key}/{path}"))).await;
            for child in page[field].as_array().unwrap() {
                let mut row = child.clone();
                row["issue_id"] = json!(id);
                row["issue_key"] = json!(key);
                check(v, stream, row);
            }
        }
    }
}
