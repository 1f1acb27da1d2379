//! A complete REST tap in a few dozen lines: one incremental stream with page-number
//! paging, run against a local server.

use std::sync::{Arc, Mutex};

use axum::{Json, Router, extract::Query, routing::get};
use serde_json::{Value, json};
use singer_core::state::State;
use singer_core::tap::{
    Authenticator, PageNumberPaginator, RestClient, RestStream, StreamInfo, SyncSettings, Tap,
};

/// The whole tap: a client, a stream, settings.
fn example_tap(base_url: &str) -> singer_core::Result<Tap> {
    let client = Arc::new(RestClient::new(
        base_url,
        Authenticator::Bearer {
            token: "example-token".into(),
        },
        Default::default(),
    )?);
    let tickets = RestStream::builder(
        StreamInfo::new(
            "tickets",
            json!({"type": "object", "properties": {
            "id": {"type": "integer"},
            "title": {"type": "string"},
            "updated_at": {"type": "string", "format": "date-time"}}}),
        )
        .with_keys(&["id"])
        .with_replication_key("updated_at", true),
        client,
        "/api/tickets",
    )
    .paginator(PageNumberPaginator::new("page", 1, Some(("per_page", 2))))
    .params_fn(|req| match req.since.and_then(Value::as_str) {
        Some(since) => vec![("updated_since".into(), since.into())],
        None => vec![],
    })
    .build();
    Ok(Tap {
        streams: vec![Arc::new(tickets)],
        settings: SyncSettings {
            start_date: Some("2024-01-01T00:00:00Z".into()),
            ..Default::default()
        },
    })
}

async fn tickets(Query(q): Query<std::collections::HashMap<String, String>>) -> Json<Value> {
    let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let since = q.get("updated_since").cloned().unwrap_or_default();
    let all: Vec<Value> = (1..=5)
        .map(|i| json!({"id": i, "title": format!("ticket {i}"), "updated_at": format!("2024-03-0{i}T09:00:00+0100"), "internal": true}))
        .filter(|t| t["updated_at"].as_str().unwrap_or("") >= since.as_str())
        .collect();
    Json(Value::Array(
        all.into_iter().skip((page - 1) * 2).take(2).collect(),
    ))
}

#[tokio::test]
async fn the_example_tap_syncs_a_stream() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        axum::serve(listener, Router::new().route("/api/tickets", get(tickets))).await
    });

    let out = Arc::new(Mutex::new(Vec::new()));
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let tap = example_tap(&base).expect("tap");
    let report = tap
        .sync(None, State::default(), false, Box::new(Sink(out.clone())))
        .await
        .expect("sync");
    assert_eq!(report.records["tickets"], 5);
    let text = String::from_utf8(out.lock().expect("lock").clone()).expect("utf8");
    let first: Value = serde_json::from_str(text.lines().nth(1).expect("a record")).expect("json");
    assert_eq!(
        first["record"],
        json!({"id": 1, "title": "ticket 1", "updated_at": "2024-03-01T08:00:00Z"}),
        "undeclared properties dropped, date-times in UTC"
    );
    assert_eq!(
        report
            .state
            .stream("tickets")
            .and_then(|s| s.replication_key_value.clone()),
        Some(json!("2024-03-05T08:00:00Z"))
    );
}
