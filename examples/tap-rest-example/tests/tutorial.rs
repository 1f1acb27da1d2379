//! The tutorial's tap against a small ticketing API on 127.0.0.1: `--about`, `--discover`,
//! a full sync checked by `singer-conformance --tap-output`, then an incremental sync from
//! the state it wrote, with one bookmark per ticket for the comments.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use singer_testing::{bin, catalog_streams, json_lines, outcome, records, write_json};

const TOKEN: &str = "tutorial-token-7c1e";

/// The API's data: tickets, and comments by ticket id.
#[derive(Default)]
struct Data {
    tickets: Vec<Value>,
    comments: HashMap<u64, Vec<Value>>,
}

type Shared = Arc<Mutex<Data>>;
type Params = Query<HashMap<String, String>>;

/// One page of `items` newer than `since` (date-times compared as instants, as the real
/// API would), under `key`, with the API's `next_page`.
fn page(
    items: &[Value],
    field: &str,
    since: Option<&String>,
    q: &HashMap<String, String>,
    key: &str,
) -> Value {
    let since = since.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
    let newer: Vec<&Value> = items
        .iter()
        .filter(|i| {
            let at = i[field]
                .as_str()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
            since.is_none_or(|s| at.is_some_and(|a| a >= s))
        })
        .collect();
    let per_page: usize = q
        .get("per_page")
        .and_then(|p| p.parse().ok())
        .unwrap_or(100);
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let rows: Vec<&Value> = newer
        .iter()
        .skip((page - 1) * per_page)
        .take(per_page)
        .copied()
        .collect();
    json!({key: rows, "page": page})
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

async fn tickets(State(data): State<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let data = data.lock().expect("lock");
    axum::Json(page(
        &data.tickets,
        "updated_at",
        q.get("updated_since"),
        &q,
        "tickets",
    ))
    .into_response()
}

async fn comments(
    State(data): State<Shared>,
    headers: HeaderMap,
    UrlPath(ticket): UrlPath<u64>,
    Query(q): Params,
) -> Response {
    if !authorized(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let data = data.lock().expect("lock");
    let rows = data.comments.get(&ticket).cloned().unwrap_or_default();
    axum::Json(page(&rows, "created_at", q.get("since"), &q, "comments")).into_response()
}

/// Starts the API on a free port; returns its base URL and its data.
fn serve(runtime: &tokio::runtime::Runtime) -> (String, Shared) {
    let data: Shared = Arc::default();
    {
        let mut d = data.lock().expect("lock");
        for i in 1..=5u64 {
            d.tickets.push(
                json!({"id": i, "title": format!("ticket {i}"), "status": "open",
                "updated_at": format!("2024-03-0{i}T09:00:00+01:00"), "internal_note": "dropped"}),
            );
            let comments = (1..=i)
                .map(|c| {
                    json!({"id": i * 100 + c, "body": format!("comment {c}"),
                "created_at": format!("2024-03-0{i}T1{c}:00:00Z")})
                })
                .collect();
            d.comments.insert(i, comments);
        }
    }
    let app = Router::new()
        .route("/api/tickets", get(tickets))
        .route("/api/tickets/{id}/comments", get(comments))
        .with_state(data.clone());
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    runtime.spawn(async move { axum::serve(listener, app).await });
    (url, data)
}

fn tap(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(bin("tap-rest-example"))
        .args(args)
        .output()
        .expect("tap-rest-example runs")
}

/// `singer-conformance --tap-output` over what the tap wrote.
fn conformance(stdout: &[u8], dir: &Path) -> (bool, String) {
    let capture = dir.join("capture.singer");
    std::fs::write(&capture, stdout).expect("capture");
    let out = Command::new(bin("singer-conformance"))
        .arg("--tap-output")
        .arg(&capture)
        .stdout(Stdio::piped())
        .output()
        .expect("singer-conformance runs");
    outcome(&out)
}

#[test]
fn the_tutorial_tap_syncs_incrementally_with_per_ticket_bookmarks() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (url, data) = serve(&runtime);
    let dir = tempfile::tempdir().expect("tmp");
    let config = write_json(
        dir.path(),
        "config.json",
        &json!({"api_url": url, "api_token": TOKEN, "page_size": 2, "start_date": "2024-03-02T00:00:00Z"}),
    );

    // --about: Meltano's settings, the secret marked and never shown.
    let about = tap(&["--about".as_ref(), "--format".as_ref(), "json".as_ref()]);
    let about: Value = serde_json::from_slice(&about.stdout).expect("about is JSON");
    assert_eq!(
        about["settings"]["properties"]["api_token"]["secret"],
        json!(true)
    );
    assert_eq!(
        about["settings"]["required"],
        json!(["api_url", "api_token"])
    );
    assert!(
        about["settings"]["properties"]["max_tries"].is_object(),
        "shared settings listed"
    );

    // --discover: both streams, the child's key and replication key.
    let discover = tap(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--discover".as_ref(),
    ]);
    let names = catalog_streams(&discover.stdout);
    assert_eq!(names, ["tickets", "ticket_comments"]);

    // A first sync: tickets from start_date on, in UTC, paged two at a time.
    let first = tap(&["--config".as_ref(), config.as_os_str()]);
    let (ok, logs) = outcome(&first);
    assert!(ok, "{logs}");
    assert!(!logs.contains(TOKEN), "the token never reaches the logs");
    let (ok, report) = conformance(&first.stdout, dir.path());
    assert!(ok && report.contains("2 passed, 0 failed"), "{report}");
    let messages = json_lines(&first.stdout);
    let ids: Vec<&Value> = records(&messages, "tickets")
        .iter()
        .map(|t| &t["id"])
        .collect();
    assert_eq!(
        ids,
        [&json!(2), &json!(3), &json!(4), &json!(5)],
        "ticket 1 is before start_date"
    );
    assert_eq!(
        records(&messages, "tickets")[0]["updated_at"],
        "2024-03-02T08:00:00Z"
    );
    assert!(
        records(&messages, "tickets")[0]
            .get("internal_note")
            .is_none()
    );
    assert_eq!(records(&messages, "ticket_comments").len(), 2 + 3 + 4 + 5);

    // The state: the tickets' bookmark, and one bookmark per ticket for its comments.
    let state = messages
        .iter()
        .rev()
        .find(|m| m["type"] == "STATE")
        .expect("a state")["value"]
        .clone();
    assert_eq!(
        state["bookmarks"]["tickets"]["replication_key_value"],
        "2024-03-05T08:00:00Z"
    );
    let partitions = state["bookmarks"]["ticket_comments"]["partitions"]
        .as_array()
        .expect("partitions");
    assert_eq!(partitions.len(), 4);
    let of = |ticket: u64| {
        partitions
            .iter()
            .find(|p| p["context"] == json!({"ticket_id": ticket}))
            .map(|p| p["replication_key_value"].clone())
    };
    assert_eq!(of(3), Some(json!("2024-03-03T13:00:00Z")));

    // The API changes: ticket 3 is updated and gains a comment.
    {
        let mut d = data.lock().expect("lock");
        d.tickets[2]["updated_at"] = json!("2024-03-06T10:00:00Z");
        d.tickets
            .sort_by_key(|t| t["updated_at"].as_str().unwrap_or("").to_string());
        d.comments
            .entry(3)
            .or_default()
            .push(json!({"id": 304, "body": "late", "created_at": "2024-03-06T10:00:00Z"}));
    }
    let state_file = write_json(dir.path(), "state.json", &state);
    let second = tap(&[
        "--config".as_ref(),
        config.as_os_str(),
        "--state".as_ref(),
        state_file.as_os_str(),
    ]);
    let (ok, logs) = outcome(&second);
    assert!(ok, "{logs}");
    let (ok, report) = conformance(&second.stdout, dir.path());
    assert!(ok, "{report}");
    let messages = json_lines(&second.stdout);
    let ids: Vec<&Value> = records(&messages, "tickets")
        .iter()
        .map(|t| &t["id"])
        .collect();
    // The bookmark is inclusive: ticket 5 (at the bookmark) again, then the updated ticket 3.
    assert_eq!(ids, [&json!(5), &json!(3)]);
    let mut comments: Vec<u64> = records(&messages, "ticket_comments")
        .iter()
        .filter_map(|c| c["id"].as_u64())
        .collect();
    comments.sort_unstable();
    // Ticket 5's comments from its own bookmark on, ticket 3's from its own (children of
    // one page run concurrently, so their order is not fixed).
    assert_eq!(comments, [303, 304, 505]);
}
