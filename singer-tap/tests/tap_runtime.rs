//! The tap runtime against a local HTTP server: paging, retries, bookmarks, versions,
//! checkpoints, sub-streams, failures and verify mode.

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use singer_core::state::State;
use singer_tap::{
    Authenticator, HttpSettings, LinkHeaderPaginator, OffsetPaginator, PageNumberPaginator,
    RestClient, RestStream, RetryPolicy, Stream, StreamInfo, SyncReport, SyncSettings, Tap,
    TokenPaginator,
};
use singer_testing::records;

// ---------------------------------------------------------------------------------------
// A small API

#[derive(Default)]
struct Api {
    hits: Mutex<Vec<String>>,
    counters: Mutex<HashMap<String, u32>>,
    /// Page numbers that fail (400) on `/fragile`, once each.
    fragile_fails: Mutex<Vec<u64>>,
    unsorted: Mutex<bool>,
}

type Shared = Arc<Api>;
type Params = Query<HashMap<String, String>>;

fn item(i: u64) -> Value {
    json!({"id": i, "name": format!("item {i}"), "updated": format!("2024-01-01T00:{:02}:{:02}Z", i / 60, i % 60)})
}

const TOTAL: u64 = 25;

fn param(q: &HashMap<String, String>, k: &str, default: u64) -> u64 {
    q.get(k).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn hit(api: &Api, what: String) -> u32 {
    api.hits.lock().expect("lock").push(what.clone());
    let mut c = api.counters.lock().expect("lock");
    let n = c
        .entry(what.split('?').next().unwrap_or("").to_string())
        .or_default();
    *n += 1;
    *n
}

async fn pages(AxState(api): AxState<Shared>, Query(q): Params) -> Response {
    let (page, per) = (param(&q, "page", 1), param(&q, "per_page", 10));
    hit(&api, format!("/pages?page={page}"));
    let items: Vec<Value> = ((page - 1) * per + 1..=(page * per).min(TOTAL))
        .map(item)
        .collect();
    axum::Json(items).into_response()
}

async fn offset(AxState(api): AxState<Shared>, Query(q): Params) -> Response {
    let (start, max) = (param(&q, "startAt", 0), param(&q, "maxResults", 10));
    hit(&api, format!("/offset?startAt={start}"));
    let items: Vec<Value> = (start + 1..=(start + max).min(TOTAL)).map(item).collect();
    axum::Json(json!({"values": items, "isLast": start + max >= TOTAL, "total": TOTAL}))
        .into_response()
}

async fn token(AxState(api): AxState<Shared>, Query(q): Params) -> Response {
    let start = q
        .get("next")
        .and_then(|t| t.strip_prefix("tok-"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(0u64);
    hit(&api, format!("/token?start={start}"));
    let items: Vec<Value> = (start + 1..=(start + 10).min(TOTAL)).map(item).collect();
    let mut body = json!({"items": items});
    if start + 10 < TOTAL {
        body["nextPageToken"] = json!(format!("tok-{}", start + 10));
    }
    axum::Json(body).into_response()
}

async fn link(AxState(api): AxState<Shared>, headers: HeaderMap, Query(q): Params) -> Response {
    let page = param(&q, "page", 1);
    hit(&api, format!("/link?page={page}"));
    let items: Vec<Value> = ((page - 1) * 10 + 1..=(page * 10).min(TOTAL))
        .map(item)
        .collect();
    let mut response = axum::Json(items).into_response();
    if page * 10 < TOTAL {
        let host = headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let value = format!("<http://{host}/link?page={}>; rel=\"next\"", page + 1);
        if let Ok(v) = HeaderValue::from_str(&value) {
            response.headers_mut().insert("link", v);
        }
    }
    response
}

async fn flaky(AxState(api): AxState<Shared>) -> Response {
    match hit(&api, "/flaky".into()) {
        1 => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        2 => StatusCode::BAD_GATEWAY.into_response(),
        _ => axum::Json(vec![item(1)]).into_response(),
    }
}

async fn ratelimited(AxState(api): AxState<Shared>) -> Response {
    if hit(&api, "/ratelimited".into()) == 1 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            "slow down",
        )
            .into_response();
    }
    axum::Json(vec![item(1)]).into_response()
}

async fn broken(AxState(api): AxState<Shared>) -> Response {
    hit(&api, "/broken".into());
    (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
}

async fn missing(AxState(api): AxState<Shared>) -> Response {
    hit(&api, "/missing".into());
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"errorMessages": ["no such thing"]})),
    )
        .into_response()
}

/// Items updated at or after `since`, sorted (or not, when asked).
async fn incremental(AxState(api): AxState<Shared>, Query(q): Params) -> Response {
    let since = q.get("since").cloned().unwrap_or_default();
    hit(&api, format!("/incremental?since={since}"));
    let mut items: Vec<Value> = (1..=TOTAL)
        .map(item)
        .filter(|i| i["updated"].as_str().unwrap_or("") >= since.as_str())
        .collect();
    if *api.unsorted.lock().expect("lock") {
        items.reverse();
    }
    axum::Json(items).into_response()
}

async fn fragile(AxState(api): AxState<Shared>, Query(q): Params) -> Response {
    let page = param(&q, "page", 1);
    hit(&api, format!("/fragile?page={page}"));
    let mut fails = api.fragile_fails.lock().expect("lock");
    if let Some(pos) = fails.iter().position(|p| *p == page) {
        fails.remove(pos);
        return (StatusCode::BAD_REQUEST, "bad page").into_response();
    }
    let items: Vec<Value> = ((page - 1) * 5 + 1..=(page * 5).min(TOTAL))
        .map(item)
        .collect();
    axum::Json(items).into_response()
}

async fn parents(AxState(api): AxState<Shared>) -> Response {
    hit(&api, "/parents".into());
    axum::Json(
        (1..=5)
            .map(|i| json!({"id": i, "name": format!("p{i}")}))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

async fn children(AxState(api): AxState<Shared>, Path(parent): Path<u64>) -> Response {
    hit(&api, format!("/children/{parent}"));
    let rows: Vec<Value> = (1..=3)
        .map(|k| json!({"id": parent * 10 + k, "updated": format!("2024-02-0{k}T00:00:00Z")}))
        .collect();
    axum::Json(rows).into_response()
}

async fn server() -> (String, Shared) {
    let api: Shared = Arc::default();
    let app = Router::new()
        .route("/pages", get(pages))
        .route("/offset", get(offset))
        .route("/token", get(token))
        .route("/link", get(link))
        .route("/flaky", get(flaky))
        .route("/ratelimited", get(ratelimited))
        .route("/broken", get(broken))
        .route("/missing", get(missing))
        .route("/incremental", get(incremental))
        .route("/fragile", get(fragile))
        .route("/parents", get(parents))
        .route("/children/{parent}", get(children))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}"), api)
}

// ---------------------------------------------------------------------------------------
// Helpers

fn client(base: &str) -> Arc<RestClient> {
    let settings = HttpSettings {
        retry: RetryPolicy {
            max_tries: 4,
            min_delay: Duration::from_millis(5),
            max_delay: Duration::from_secs(2),
            max_elapsed: Duration::from_secs(10),
        },
        timeout: Duration::from_secs(5),
        ..HttpSettings::default()
    };
    Arc::new(RestClient::new(base, Authenticator::None, settings).expect("client"))
}

fn info(name: &str) -> StreamInfo {
    StreamInfo::new(
        name,
        json!({"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"},
            "updated": {"type": "string", "format": "date-time"}}}),
    )
    .with_keys(&["id"])
}

#[derive(Clone, Default)]
struct Out(Arc<Mutex<Vec<u8>>>);

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Out {
    fn messages(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.0.lock().expect("lock"))
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect()
    }
}

async fn sync(
    streams: Vec<Arc<dyn Stream>>,
    settings: SyncSettings,
    state: State,
) -> (SyncReport, Vec<Value>) {
    let tap = Tap {
        streams,
        settings,
        parquet_batches: None,
    };
    let out = Out::default();
    let report = tap
        .sync(None, state, false, Box::new(out.clone()))
        .await
        .expect("sync runs");
    (report, out.messages())
}

fn ids(messages: &[Value], stream: &str) -> Vec<u64> {
    records(messages, stream)
        .iter()
        .filter_map(|r| r["id"].as_u64())
        .collect()
}

fn last_state(messages: &[Value]) -> State {
    let value = messages
        .iter()
        .rev()
        .find(|m| m["type"] == "STATE")
        .map(|m| m["value"].clone())
        .expect("a state");
    State::from_value(value).expect("valid state")
}

// ---------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn every_paginator_reads_every_record_once() {
    let (base, api) = server().await;
    let c = client(&base);
    let streams: Vec<Arc<dyn Stream>> = vec![
        Arc::new(
            RestStream::builder(info("pages"), c.clone(), "/pages")
                .paginator(PageNumberPaginator::new("page", 1, Some(("per_page", 10))))
                .build(),
        ),
        Arc::new(
            RestStream::builder(info("offset"), c.clone(), "/offset")
                .records_at("/values")
                .paginator(OffsetPaginator::jira(10))
                .build(),
        ),
        Arc::new(
            RestStream::builder(info("token"), c.clone(), "/token")
                .records_at("/items")
                .paginator(TokenPaginator::new("next", "/nextPageToken", None))
                .build(),
        ),
        Arc::new(
            RestStream::builder(info("link"), c.clone(), "/link")
                .paginator(LinkHeaderPaginator)
                .build(),
        ),
    ];
    let (report, messages) = sync(streams, SyncSettings::default(), State::default()).await;
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for s in ["pages", "offset", "token", "link"] {
        assert_eq!(ids(&messages, s), (1..=TOTAL).collect::<Vec<_>>(), "{s}");
    }
    let hits = api.hits.lock().expect("lock").clone();
    assert_eq!(hits.iter().filter(|h| h.starts_with("/pages")).count(), 3);
    assert_eq!(hits.iter().filter(|h| h.starts_with("/offset")).count(), 3);
    assert_eq!(hits.iter().filter(|h| h.starts_with("/link")).count(), 3);
    // SCHEMA comes before the records of each stream.
    let first_schema = messages
        .iter()
        .position(|m| m["type"] == "SCHEMA" && m["stream"] == "link");
    let first_record = messages
        .iter()
        .position(|m| m["type"] == "RECORD" && m["stream"] == "link");
    assert!(first_schema < first_record);
}

#[tokio::test]
async fn transient_errors_are_retried_and_retry_after_is_honoured() {
    let (base, api) = server().await;
    let c = client(&base);
    let started = Instant::now();
    let r = c
        .get("/flaky", &[], "/flaky")
        .await
        .expect("succeeds on the third try");
    assert_eq!(r.body, json!([item(1)]));
    assert_eq!(api.counters.lock().expect("lock")["/flaky"], 3);

    let started_429 = Instant::now();
    c.get("/ratelimited", &[], "/ratelimited")
        .await
        .expect("succeeds after the wait");
    assert!(
        started_429.elapsed() >= Duration::from_millis(900),
        "waited {:?} for Retry-After: 1",
        started_429.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn exhausted_retries_fail_naming_the_url() {
    let (base, api) = server().await;
    let e = client(&base)
        .get("/broken", &[], "/broken")
        .await
        .expect_err("never succeeds");
    let text = e.to_string();
    assert!(
        text.contains("/broken") && text.contains("HTTP 500") && text.contains("gave up"),
        "{text}"
    );
    assert_eq!(
        api.counters.lock().expect("lock")["/broken"],
        4,
        "max_tries attempts"
    );
    let e = client(&base)
        .get("/missing", &[], "/missing")
        .await
        .expect_err("404");
    assert!(e.to_string().contains("no such thing"), "{e}");
    assert_eq!(
        api.counters.lock().expect("lock")["/missing"],
        1,
        "4xx is not retried"
    );
}

fn incremental_stream(c: Arc<RestClient>, sorted: bool) -> Arc<dyn Stream> {
    Arc::new(
        RestStream::builder(
            info("things").with_replication_key("updated", sorted),
            c,
            "/incremental",
        )
        .params_fn(|req| {
            req.since
                .and_then(Value::as_str)
                .map(|s| vec![("since".into(), s.into())])
                .unwrap_or_default()
        })
        .build(),
    )
}

#[tokio::test]
async fn incremental_sync_resumes_from_the_bookmark_with_lookback() {
    let (base, api) = server().await;
    let settings = SyncSettings {
        start_date: Some("2024-01-01T00:00:10Z".into()),
        ..SyncSettings::default()
    };
    let (_, first) = sync(
        vec![incremental_stream(client(&base), true)],
        settings.clone(),
        State::default(),
    )
    .await;
    assert_eq!(
        ids(&first, "things"),
        (10..=TOTAL).collect::<Vec<_>>(),
        "from start_date on"
    );
    let state = last_state(&first);
    assert_eq!(
        state
            .stream("things")
            .and_then(|s| s.replication_key_value.clone()),
        Some(json!("2024-01-01T00:00:25Z"))
    );
    let (_, second) = sync(
        vec![incremental_stream(client(&base), true)],
        settings.clone(),
        state.clone(),
    )
    .await;
    assert_eq!(
        ids(&second, "things"),
        [25],
        "only the bookmark row again (inclusive bound)"
    );

    let lookback = SyncSettings {
        lookback: chrono::Duration::seconds(5),
        ..settings
    };
    let (_, third) = sync(
        vec![incremental_stream(client(&base), true)],
        lookback,
        state,
    )
    .await;
    assert_eq!(
        ids(&third, "things"),
        (20..=TOTAL).collect::<Vec<_>>(),
        "5 seconds of lookback"
    );
    let hits = api.hits.lock().expect("lock").clone();
    assert!(
        hits.contains(&"/incremental?since=2024-01-01T00:00:20Z".to_string()),
        "{hits:?}"
    );
}

#[tokio::test]
async fn unsorted_streams_set_the_bookmark_only_at_the_end() {
    let (base, api) = server().await;
    *api.unsorted.lock().expect("lock") = true;
    let settings = SyncSettings {
        state_every_records: 1,
        ..SyncSettings::default()
    };
    let (_, messages) = sync(
        vec![incremental_stream(client(&base), false)],
        settings,
        State::default(),
    )
    .await;
    let states: Vec<State> = messages
        .iter()
        .filter(|m| m["type"] == "STATE")
        .map(|m| State::from_value(m["value"].clone()).expect("state"))
        .collect();
    assert!(states.len() >= 2);
    let mid = states.iter().find(|s| {
        s.stream("things")
            .is_some_and(|t| t.progress_markers.is_some())
    });
    assert!(
        mid.is_some_and(|s| s
            .stream("things")
            .is_some_and(|t| t.replication_key_value.is_none())),
        "progress markers, not a bookmark, while syncing: {states:?}"
    );
    let last = states
        .last()
        .and_then(|s| s.stream("things").cloned())
        .expect("final");
    assert_eq!(
        last.replication_key_value,
        Some(json!("2024-01-01T00:00:25Z"))
    );
    assert!(last.progress_markers.is_none());
}

#[tokio::test]
async fn full_table_versions_and_activation() {
    let (base, _) = server().await;
    let stream = || -> Arc<dyn Stream> {
        Arc::new(
            RestStream::builder(info("pages"), client(&base), "/pages")
                .paginator(PageNumberPaginator::new("page", 1, Some(("per_page", 10))))
                .build(),
        )
    };
    let (_, first) = sync(vec![stream()], SyncSettings::default(), State::default()).await;
    let activations: Vec<&Value> = first
        .iter()
        .filter(|m| m["type"] == "ACTIVATE_VERSION")
        .collect();
    assert_eq!(
        activations.len(),
        2,
        "at the start of a first sync and at its end"
    );
    let version = activations[0]["version"].clone();
    assert_eq!(activations[1]["version"], version);
    assert!(
        first
            .iter()
            .filter(|m| m["type"] == "RECORD")
            .all(|m| m["version"] == version)
    );
    let state = last_state(&first);
    assert!(
        state
            .stream("pages")
            .is_some_and(|s| s.resume_token.is_none()),
        "a clean finish clears the checkpoint"
    );

    let (_, second) = sync(vec![stream()], SyncSettings::default(), state).await;
    let activations: Vec<&Value> = second
        .iter()
        .filter(|m| m["type"] == "ACTIVATE_VERSION")
        .collect();
    assert_eq!(activations.len(), 1, "later syncs activate at the end only");
    assert_ne!(activations[0]["version"], version);
}

#[tokio::test]
async fn an_interrupted_full_table_sync_resumes_from_its_checkpoint() {
    let (base, api) = server().await;
    api.fragile_fails.lock().expect("lock").push(3);
    let stream = || -> Arc<dyn Stream> {
        Arc::new(
            RestStream::builder(info("fragile"), client(&base), "/fragile")
                .paginator(PageNumberPaginator::new("page", 1, Some(("per_page", 5))))
                .build(),
        )
    };
    let settings = SyncSettings {
        state_every_records: 1,
        ..SyncSettings::default()
    };
    let (report, first) = sync(vec![stream()], settings.clone(), State::default()).await;
    assert_eq!(report.failures.len(), 1, "page 3 fails");
    assert_eq!(ids(&first, "fragile"), (1..=10).collect::<Vec<_>>());
    let state = last_state(&first);
    assert_eq!(
        state.stream("fragile").and_then(|s| s.resume_token.clone()),
        Some(json!(3))
    );
    assert_eq!(state.currently_syncing, None);
    let version = first
        .iter()
        .find(|m| m["type"] == "RECORD")
        .map(|m| m["version"].clone())
        .expect("version");

    api.hits.lock().expect("lock").clear();
    let (report, second) = sync(vec![stream()], settings, state).await;
    assert!(report.failures.is_empty());
    assert_eq!(
        ids(&second, "fragile"),
        (11..=TOTAL).collect::<Vec<_>>(),
        "continues at page 3"
    );
    assert_eq!(
        api.hits.lock().expect("lock").first().map(String::as_str),
        Some("/fragile?page=3")
    );
    assert!(
        second
            .iter()
            .filter(|m| m["type"] == "RECORD")
            .all(|m| m["version"] == version),
        "same version"
    );
    assert!(
        second
            .iter()
            .any(|m| m["type"] == "ACTIVATE_VERSION" && m["version"] == version)
    );
    assert!(
        last_state(&second)
            .stream("fragile")
            .is_some_and(|s| s.resume_token.is_none())
    );
}

fn family(c: Arc<RestClient>) -> Vec<Arc<dyn Stream>> {
    let parent = RestStream::builder(info("parents"), c.clone(), "/parents")
        .child_context(|r, _| {
            Some(
                r.get("id")
                    .map(|id| {
                        [("parent_id".to_string(), id.clone())]
                            .into_iter()
                            .collect()
                    })
                    .unwrap_or_default(),
            )
        })
        .build();
    let child = RestStream::builder(
        info("children")
            .with_parent("parents")
            .with_replication_key("updated", false),
        c,
        "/children/{parent_id}",
    )
    .map_record(|mut r, ctx| {
        r.insert(
            "name".into(),
            ctx.and_then(|c| c.get("parent_id"))
                .cloned()
                .unwrap_or(Value::Null),
        );
        Some(r)
    })
    .build();
    vec![Arc::new(parent), Arc::new(child)]
}

#[tokio::test]
async fn child_streams_get_contexts_and_partitioned_bookmarks() {
    let (base, api) = server().await;
    let (report, messages) = sync(
        family(client(&base)),
        SyncSettings::default(),
        State::default(),
    )
    .await;
    assert!(report.failures.is_empty());
    assert_eq!(ids(&messages, "parents"), [1, 2, 3, 4, 5]);
    let children = records(&messages, "children");
    assert_eq!(children.len(), 15);
    assert!(
        children
            .iter()
            .all(|c| c["id"].as_u64().map(|i| i / 10) == c["name"].as_u64()),
        "rows carry the parent key"
    );
    let state = last_state(&messages);
    let parts = &state.stream("children").expect("child state").partitions;
    assert_eq!(parts.len(), 5);
    assert!(
        parts
            .iter()
            .all(|p| p.replication_key_value == Some(json!("2024-02-03T00:00:00Z")))
    );
    assert_eq!(
        api.counters
            .lock()
            .expect("lock")
            .iter()
            .filter(|(k, _)| k.starts_with("/children/"))
            .count(),
        5
    );
}

#[tokio::test]
async fn many_partitions_roll_up_into_one_bookmark() {
    let (base, _) = server().await;
    let settings = SyncSettings {
        max_partitions: 3,
        ..SyncSettings::default()
    };
    let (_, messages) = sync(family(client(&base)), settings.clone(), State::default()).await;
    let state = last_state(&messages);
    let child = state.stream("children").expect("child state");
    assert!(child.partitions.is_empty(), "rolled up: {child:?}");
    assert_eq!(
        child.replication_key_value,
        Some(json!("2024-02-03T00:00:00Z"))
    );
    // The rolled-up bookmark applies to every partition on the next run.
    let (_, again) = sync(family(client(&base)), settings, state).await;
    assert_eq!(
        records(&again, "children").len(),
        5,
        "only rows at the bookmark (inclusive)"
    );
}

#[tokio::test]
async fn a_failing_stream_does_not_stop_the_others() {
    let (base, _) = server().await;
    let c = client(&base);
    let streams: Vec<Arc<dyn Stream>> = vec![
        Arc::new(RestStream::builder(info("missing"), c.clone(), "/missing").build()),
        Arc::new(
            RestStream::builder(info("pages"), c, "/pages")
                .paginator(PageNumberPaginator::new("page", 1, Some(("per_page", 10))))
                .build(),
        ),
    ];
    let (report, messages) = sync(streams, SyncSettings::default(), State::default()).await;
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].0, "missing");
    assert!(report.failures[0].1.to_string().contains("HTTP 404"));
    assert_eq!(ids(&messages, "pages").len(), TOTAL as usize);
    assert_eq!(report.records.get("pages"), Some(&TOTAL));
}

#[tokio::test]
async fn currently_syncing_goes_first_on_a_rerun() {
    let (base, api) = server().await;
    let c = client(&base);
    let streams: Vec<Arc<dyn Stream>> = vec![
        Arc::new(
            RestStream::builder(info("offset"), c.clone(), "/offset")
                .records_at("/values")
                .paginator(OffsetPaginator::jira(10))
                .build(),
        ),
        Arc::new(
            RestStream::builder(info("link"), c, "/link")
                .paginator(LinkHeaderPaginator)
                .build(),
        ),
    ];
    let state = State {
        currently_syncing: Some("link".into()),
        ..State::default()
    };
    let (_, messages) = sync(streams, SyncSettings::default(), state).await;
    assert!(api.hits.lock().expect("lock")[0].starts_with("/link"));
    assert_eq!(last_state(&messages).currently_syncing, None);
}

#[tokio::test]
async fn verify_mode_reports_unsorted_records_and_regressing_bookmarks() {
    let (base, api) = server().await;
    *api.unsorted.lock().expect("lock") = true;
    let (report, _) = sync(
        vec![incremental_stream(client(&base), true)],
        SyncSettings::default(),
        State::default(),
    )
    .await;
    assert!(report.failures.is_empty(), "without verify, a warning only");

    let verify = SyncSettings {
        verify: true,
        ..SyncSettings::default()
    };
    let (report, _) = sync(
        vec![incremental_stream(client(&base), true)],
        verify.clone(),
        State::default(),
    )
    .await;
    assert_eq!(report.failures.len(), 1);
    let text = report.failures[0].1.to_string();
    assert!(
        text.contains("verify") && text.contains("declared sorted"),
        "{text}"
    );

    // A stream whose records go back in time would lower the bookmark of its input state.
    *api.unsorted.lock().expect("lock") = false;
    let ahead = State::from_value(
        json!({"bookmarks": {"things": {"replication_key": "updated",
        "replication_key_value": "2030-01-01T00:00:00Z"}}}),
    )
    .expect("state");
    let (report, _) = sync(vec![incremental_stream(client(&base), true)], verify, ahead).await;
    assert!(
        report.failures.is_empty(),
        "the runtime never moves a bookmark back: {:?}",
        report.failures
    );
}

#[tokio::test]
async fn stream_maps_shape_what_the_tap_writes_and_batches_carry_the_records() {
    use std::io::Read;
    let (base, _) = server().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let maps: singer_core::stream_map::MapSettings = serde_json::from_value(json!({
        "stream_maps": {"things": {
            "__alias__": "items",
            "name": null,
            "name_hash": "md5(config['salt'] + name)",
            "__filter__": "id % 2 == 0"
        }},
        "stream_map_config": {"salt": "pepper"}
    }))
    .expect("maps");
    let batch = serde_json::from_value(json!({
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": dir.path().to_string_lossy()},
        "batch_size": 4
    }))
    .expect("batch_config");
    let settings = SyncSettings {
        maps,
        batch: Some(batch),
        state_every_records: 10,
        ..SyncSettings::default()
    };
    let (_, messages) = sync(
        vec![incremental_stream(client(&base), true)],
        settings,
        State::default(),
    )
    .await;
    let types: Vec<&str> = messages.iter().filter_map(|m| m["type"].as_str()).collect();
    assert!(
        !types.contains(&"RECORD"),
        "records go to batch files: {types:?}"
    );
    let schema = messages
        .iter()
        .find(|m| m["type"] == "SCHEMA")
        .expect("a SCHEMA");
    assert_eq!(schema["stream"], "items");
    assert!(schema["schema"]["properties"].get("name").is_none());
    assert_eq!(
        schema["schema"]["properties"]["name_hash"]["type"],
        json!(["string", "null"])
    );
    // Every batch is announced before the STATE that follows its records.
    assert_eq!(types.last(), Some(&"STATE"));
    let mut rows: Vec<Value> = Vec::new();
    for m in messages.iter().filter(|m| m["type"] == "BATCH") {
        assert_eq!(m["stream"], "items");
        assert_eq!(
            m["encoding"],
            json!({"format": "jsonl", "compression": "gzip"})
        );
        for url in m["manifest"].as_array().expect("manifest") {
            let path = url
                .as_str()
                .and_then(|u| u.strip_prefix("file://"))
                .expect("a file URL");
            let mut text = String::new();
            flate2::read::GzDecoder::new(std::fs::File::open(path).expect("batch file"))
                .read_to_string(&mut text)
                .expect("gzip");
            let file_rows: Vec<Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("json"))
                .collect();
            assert!(file_rows.len() <= 4, "batch_size 4: {}", file_rows.len());
            rows.extend(file_rows);
        }
    }
    let ids: Vec<u64> = rows.iter().filter_map(|r| r["id"].as_u64()).collect();
    assert_eq!(ids, (2..=TOTAL).step_by(2).collect::<Vec<_>>());
    // hashlib.md5(b"pepperitem 2").hexdigest() in Python.
    assert_eq!(rows[0]["name_hash"], "ece68ecddd3166c7672712bbbfb67781");
    assert!(
        rows.iter()
            .all(|r| r.get("name").is_none() && r["name_hash"].is_string())
    );
}
