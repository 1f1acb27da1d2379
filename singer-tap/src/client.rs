//! The HTTP client of a REST tap: base URL, authentication, timeouts, retries with backoff
//! and `Retry-After`, request metrics, and errors that never carry credentials.

use std::time::{Duration, Instant};

use backon::Retryable;
use chrono::Utc;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};
use url::Url;

use super::auth::Authenticator;
use super::retry::{RetryPolicy, is_retriable_status, retry_after};
use crate::error::{Error, Result};

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
        let base = Url::parse(base_url)
            .map_err(|e| Error::config(vec![format!("'{base_url}' is not a valid URL: {e}")]))?;
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout.min(Duration::from_secs(30)))
            .user_agent(settings.user_agent.clone())
            .build()
            .map_err(|e| Error::Sync(format!("cannot build the HTTP client: {e}")))?;
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
        .map_err(|e| Error::Sync(format!("bad URL for path '{path}': {e}")))?;
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

    /// One GET without retries, to ask whether the API offers an endpoint at all: the HTTP
    /// status of the answer, or the error of the attempt when none came.
    pub async fn probe(&self, path: &str, query: &[(String, String)]) -> Result<u16> {
        let url = self.url_for(path, query)?;
        match self.attempt(url, path).await {
            Ok(response) => Ok(response.status),
            Err(Attempt {
                error:
                    Error::Http {
                        status: Some(status),
                        ..
                    },
                ..
            }) => Ok(status),
            Err(attempt) => Err(attempt.error),
        }
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
    singer_core::log::metric_timer(
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
