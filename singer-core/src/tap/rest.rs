//! A REST client with retries, and [`RestStream`]: a stream in a few lines.
//!
//! ```no_run
//! use singer_core::tap::{Authenticator, OffsetPaginator, RestClient, RestStream, StreamInfo};
//! use std::sync::Arc;
//!
//! let client = Arc::new(RestClient::new("https://acme.atlassian.net", Authenticator::None, Default::default())?);
//! let projects = RestStream::builder(
//!         StreamInfo::new("projects", serde_json::json!({"properties": {"id": {"type": "string"}}})).with_keys(&["id"]),
//!         client,
//!         "/rest/api/3/project/search",
//!     )
//!     .records_at("/values")
//!     .paginator(OffsetPaginator::jira(50))
//!     .build();
//! # Ok::<(), singer_core::Error>(())
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use backon::Retryable;
use chrono::Utc;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};
use url::Url;

use super::auth::Authenticator;
use super::paginate::{Paginator, RequestSpec, SinglePage};
use super::retry::{RetryPolicy, is_retriable_status, retry_after};
use super::stream::{Context, Page, PageRequest, Stream, StreamInfo};
use crate::error::{Error, Result};
use crate::message::Record;

/// HTTP settings of a client.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retry limits.
    pub retry: RetryPolicy,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            user_agent: format!("singer-rs/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// A decoded JSON response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Value,
    /// The URL requested (without credentials).
    pub url: String,
}

/// One failed attempt, and whether another may succeed.
#[derive(Debug)]
struct Attempt {
    error: Error,
    retriable: bool,
    wait: Option<Duration>,
}

/// An HTTP client for one API: base URL, authentication, timeouts, retries, metrics.
#[derive(Debug)]
pub struct RestClient {
    http: reqwest::Client,
    base: Url,
    auth: Authenticator,
    settings: HttpSettings,
}

impl RestClient {
    /// A client for `base_url` (`https://host` or `http://127.0.0.1:8080`).
    pub fn new(base_url: &str, auth: Authenticator, settings: HttpSettings) -> Result<Self> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = Url::parse(base_url).map_err(|e| Error::Config {
            problems: vec![format!("'{base_url}' is not a valid URL: {e}")],
        })?;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(30)))
            .user_agent(settings.user_agent.clone())
            .build()
            .map_err(|e| Error::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(RestClient {
            http,
            base,
            auth,
            settings,
        })
    }

    /// The base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The authenticator (to describe it in errors).
    pub fn authenticator(&self) -> &Authenticator {
        &self.auth
    }

    fn url_for(&self, path: &str, query: &[(String, String)]) -> Result<Url> {
        let mut url = if path.starts_with("http://") || path.starts_with("https://") {
            Url::parse(path)
        } else {
            let base = self.base.as_str().trim_end_matches('/');
            Url::parse(&format!("{base}/{}", path.trim_start_matches('/')))
        }
        .map_err(|e| Error::Other(format!("bad URL for path '{path}': {e}")))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// GETs JSON from `path` (relative to the base URL, or a full URL), retrying what is
    /// worth retrying. `endpoint` tags the metrics (the path template, without ids).
    pub async fn get(
        &self,
        path: &str,
        query: &[(String, String)],
        endpoint: &str,
    ) -> Result<Response> {
        let url = self.url_for(path, query)?;
        let attempt = || self.attempt(url.clone(), endpoint);
        let policy = &self.settings.retry;
        let result = attempt
            .retry(policy.backoff())
            .sleep(tokio::time::sleep)
            .when(|a: &Attempt| a.retriable)
            .adjust(|a: &Attempt, planned| {
                // `None` means the backoff is exhausted: never extend it.
                planned.map(|d| a.wait.map_or(d, |w| w.min(policy.max_delay)))
            })
            .notify(|a: &Attempt, wait| {
                tracing::warn!(url = %redact(&url), wait_ms = wait.as_millis() as u64, "retrying after: {}", a.error);
            })
            .await;
        result.map_err(|a| {
            if a.retriable {
                match a.error {
                    Error::Http {
                        method,
                        url,
                        status,
                        reason,
                    } => Error::Http {
                        method,
                        url,
                        status,
                        reason: format!("{reason} (gave up after retries)"),
                    },
                    other => other,
                }
            } else {
                a.error
            }
        })
    }

    async fn attempt(&self, url: Url, endpoint: &str) -> Result<Response, Attempt> {
        let shown = redact(&url);
        let started = Instant::now();
        let fail = |status: Option<u16>,
                    reason: String,
                    retriable: bool,
                    wait: Option<Duration>| Attempt {
            error: Error::Http {
                method: "GET".into(),
                url: shown.clone(),
                status,
                reason,
            },
            retriable,
            wait,
        };
        let request = self.auth.apply(
            self.http
                .get(url.clone())
                .header("Accept", "application/json"),
        );
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                metric(endpoint, None, started);
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                return Err(fail(
                    None,
                    format!("{kind}: {}", without_url(&e)),
                    true,
                    None,
                ));
            }
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await;
        metric(endpoint, Some(status), started);
        log_rate_limits(&headers, status);
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                return Err(fail(
                    Some(status),
                    format!("reading the body failed: {}", without_url(&e)),
                    true,
                    None,
                ));
            }
        };
        if !(200..300).contains(&status) {
            let retriable = is_retriable_status(status);
            let wait = retry_after(&headers, Utc::now());
            let reason = match status {
                401 => format!(
                    "HTTP 401 Unauthorized: {} were rejected by {}",
                    self.auth.describe(),
                    self.base.host_str().unwrap_or("the server")
                ),
                403 => format!(
                    "HTTP 403 Forbidden: {} lack permission on {}",
                    self.auth.describe(),
                    self.base.host_str().unwrap_or("the server")
                ),
                _ => format!("HTTP {status}{}", error_summary(&body)),
            };
            return Err(fail(Some(status), reason, retriable, wait));
        }
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).map_err(|e| {
                fail(
                    Some(status),
                    format!("the body is not valid JSON ({e}); it may have been cut off"),
                    true,
                    None,
                )
            })?
        };
        Ok(Response {
            status,
            headers,
            body,
            url: shown.clone(),
        })
    }
}

/// A URL without user info, for logs and errors.
pub fn redact(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.to_string()
}

/// A reqwest error with its causes, without the URL (which the caller names once).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A short, safe summary of an error body (Jira's `errorMessages`, or the start of it).
fn error_summary(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let mut messages: Vec<String> = v
            .get("errorMessages")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            messages.push(m.to_string());
        }
        if !messages.is_empty() {
            return format!(": {}", messages.join("; "));
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    // An HTML error page: its title says enough.
    if text.starts_with('<') {
        let title = text
            .split_once("<title>")
            .and_then(|(_, rest)| rest.split_once("</title>"))
            .map(|(t, _)| t.trim().to_string());
        return title.map(|t| format!(": {t}")).unwrap_or_default();
    }
    let text: String = text.chars().take(200).collect();
    if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    }
}

fn metric(endpoint: &str, status: Option<u16>, started: Instant) {
    let mut tags = Map::new();
    tags.insert("endpoint".into(), Value::String(endpoint.to_string()));
    if let Some(s) = status {
        tags.insert("http_status_code".into(), Value::from(s));
    }
    let ok = status.is_some_and(|s| s < 400);
    tags.insert(
        "status".into(),
        Value::String(if ok { "succeeded" } else { "failed" }.into()),
    );
    crate::log::metric_timer(
        "http_request_duration",
        started.elapsed().as_secs_f64(),
        tags,
    );
}

fn log_rate_limits(headers: &HeaderMap, status: u16) {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if status == 429 || get("x-ratelimit-remaining").as_deref() == Some("0") {
        tracing::warn!(
            status,
            retry_after = get("retry-after"),
            limit = get("x-ratelimit-limit"),
            remaining = get("x-ratelimit-remaining"),
            reset = get("x-ratelimit-reset"),
            reason = get("ratelimit-reason"),
            "rate limited"
        );
    }
}

type ParamsFn = dyn Fn(&PageRequest<'_>) -> Vec<(String, String)> + Send + Sync;
type RecordFn = dyn Fn(Record, Option<&Context>) -> Option<Record> + Send + Sync;
type ChildFn = dyn Fn(&Record, Option<&Context>) -> Option<Context> + Send + Sync;

/// A stream read from one REST endpoint.
pub struct RestStream {
    info: StreamInfo,
    client: Arc<RestClient>,
    path: String,
    params: Vec<(String, String)>,
    records_pointer: String,
    paginator: Box<dyn Paginator>,
    params_fn: Option<Box<ParamsFn>>,
    record_fn: Option<Box<RecordFn>>,
    child_fn: Option<Box<ChildFn>>,
}

/// Builds a [`RestStream`].
pub struct RestStreamBuilder(RestStream);

impl RestStream {
    /// A stream of `info` read from `path` (placeholders like `{issue_id}` are filled from
    /// the context).
    pub fn builder(info: StreamInfo, client: Arc<RestClient>, path: &str) -> RestStreamBuilder {
        RestStreamBuilder(RestStream {
            info,
            client,
            path: path.to_string(),
            params: Vec::new(),
            records_pointer: String::new(),
            paginator: Box::new(SinglePage),
            params_fn: None,
            record_fn: None,
            child_fn: None,
        })
    }

    fn path_for(&self, context: Option<&Context>) -> Result<String> {
        let mut path = self.path.clone();
        if let Some(ctx) = context {
            for (k, v) in ctx {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let encoded: String =
                    url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
                path = path.replace(&format!("{{{k}}}"), &encoded);
            }
        }
        if path.contains('{') {
            return Err(Error::Other(format!(
                "stream '{}': path '{path}' has placeholders the context does not fill",
                self.info.name
            )));
        }
        Ok(path)
    }
}

impl RestStreamBuilder {
    /// Where the records are in the response (a JSON pointer; default: the body itself).
    pub fn records_at(mut self, pointer: &str) -> Self {
        self.0.records_pointer = pointer.to_string();
        self
    }

    /// A fixed query parameter.
    pub fn param(mut self, key: &str, value: impl ToString) -> Self {
        self.0.params.push((key.to_string(), value.to_string()));
        self
    }

    /// How to page.
    pub fn paginator(mut self, paginator: impl Paginator + 'static) -> Self {
        self.0.paginator = Box::new(paginator);
        self
    }

    /// Parameters computed per request (incremental bounds from `since`, context values).
    pub fn params_fn(
        mut self,
        f: impl Fn(&PageRequest<'_>) -> Vec<(String, String)> + Send + Sync + 'static,
    ) -> Self {
        self.0.params_fn = Some(Box::new(f));
        self
    }

    /// The post-transform hook.
    pub fn map_record(
        mut self,
        f: impl Fn(Record, Option<&Context>) -> Option<Record> + Send + Sync + 'static,
    ) -> Self {
        self.0.record_fn = Some(Box::new(f));
        self
    }

    /// The context for child streams of each record.
    pub fn child_context(
        mut self,
        f: impl Fn(&Record, Option<&Context>) -> Option<Context> + Send + Sync + 'static,
    ) -> Self {
        self.0.child_fn = Some(Box::new(f));
        self
    }

    /// The stream.
    pub fn build(self) -> RestStream {
        self.0
    }
}

/// The records at `pointer` in a body: an array of objects (non-objects are skipped with a
/// warning).
pub fn extract_records(body: &mut Value, pointer: &str, stream: &str) -> Vec<Record> {
    let target = if pointer.is_empty() {
        Some(body)
    } else {
        body.pointer_mut(pointer)
    };
    match target.map(Value::take) {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(m) => Some(m),
                other => {
                    tracing::warn!(
                        stream,
                        "skipping a non-object record: {}",
                        crate::message::json_kind(&other)
                    );
                    None
                }
            })
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(Value::Object(m)) => vec![m],
        Some(other) => {
            tracing::warn!(
                stream,
                "records pointer '{pointer}' holds {}",
                crate::message::json_kind(&other)
            );
            Vec::new()
        }
    }
}

#[async_trait]
impl Stream for RestStream {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    async fn fetch_page(&self, request: PageRequest<'_>) -> Result<Page> {
        let mut spec = RequestSpec {
            query: self.params.clone(),
            url: None,
        };
        if let Some(f) = &self.params_fn {
            spec.query.extend(f(&request));
        }
        self.paginator.apply(request.position, &mut spec);
        let path = match &spec.url {
            Some(url) => url.clone(),
            None => self.path_for(request.context)?,
        };
        let mut response = self.client.get(&path, &spec.query, &self.path).await?;
        let records = extract_records(&mut response.body, &self.records_pointer, &self.info.name);
        let next = self
            .paginator
            .next(request.position, &response, records.len());
        Ok(Page { records, next })
    }

    fn child_context(&self, record: &Record, context: Option<&Context>) -> Option<Context> {
        self.child_fn.as_ref().and_then(|f| f(record, context))
    }

    fn post_process(&self, record: Record, context: Option<&Context>) -> Option<Record> {
        match &self.record_fn {
            Some(f) => f(record, context),
            None => Some(record),
        }
    }
}
