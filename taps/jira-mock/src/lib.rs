//! `jira_mock`: a local Jira Cloud mock server over real HTTP on loopback.
//!
//! It backs `tap-jira`'s end-to-end tests, `make demo` and fault-injection tests.
//! [`start`] binds `127.0.0.1` (port 0 = ephemeral), generates a deterministic site
//! from [`MockConfig::seed`] and serves it from a spawned tokio task until the
//! returned [`MockServer`] is shut down or dropped. The `jira-mock` binary wraps the
//! same library with CLI flags.
//!
//! # What it serves
//!
//! Shapes, paging families and errors follow `docs/jira-api-notes.md`:
//!
//! | endpoint | envelope |
//! |---|---|
//! | `GET /rest/api/3/myself` | user object (the first user) |
//! | `GET /rest/api/3/users/search` | bare array, `startAt`/`maxResults` (cap 1000) |
//! | `GET /rest/api/3/field`, `/status`, `/priority` | bare array |
//! | `GET /rest/api/3/project/search`, `/priority/search` | PageBean `values`/`isLast`/`total` (cap 100) |
//! | `GET`/`POST /rest/api/3/search/jql` | `{issues, nextPageToken?, isLast}` (cap 100 with fields, 5000 ids only) |
//! | `GET /rest/api/3/issue/{key}` | one issue (`fields` default `*all`) |
//! | `GET /rest/api/3/issue/{key}/comment` | `{startAt, maxResults, total, comments}` |
//! | `GET /rest/api/3/issue/{key}/changelog` | PageBean, oldest first (cap 100) |
//! | `GET /rest/api/3/issue/{key}/worklog` | `{startAt, maxResults, total, worklogs}` |
//! | `GET /rest/agile/1.0/board` | agile page with `total` (cap 50) |
//! | `GET /rest/agile/1.0/board/{id}/sprint` | agile page without `total` (cap 50); kanban → 400 |
//!
//! A site without Jira Software ([`MockConfig::without_jira_software`]) has no Agile API:
//! both agile paths answer 404, as unknown paths do. With a cloud ID
//! ([`MockConfig::with_cloud_id`]) the API is also served under `/ex/jira/{cloud_id}`, as
//! `api.atlassian.com` serves it to OAuth apps.
//!
//! `/search/jql` understands a JQL subset (see [`jql`]); its `nextPageToken` is an
//! opaque base64 string bound to the JQL text (a token used with other JQL → 400).
//! With `expand=changelog` each issue embeds its newest
//! [`MockConfig::embedded_changelog_cap`] histories (newest first) and the true
//! `total`; some issues have more histories than that, so a client must page
//! `/issue/{key}/changelog` for them.
//!
//! # Auth
//!
//! With [`MockConfig::email`] + [`MockConfig::api_token`] (HTTP Basic) and/or
//! [`MockConfig::access_token`] (Bearer) set, data endpoints answer `401` to missing
//! or wrong credentials; with none set, every request is accepted (the default).
//! [`MockConfig::forbidden_paths`] prefixes answer `403`.
//!
//! # Admin endpoints (no auth, no faults, not counted)
//!
//! * `POST /_mock/touch?count=N` (first N issues by id) or `?keys=ALPHA-1,BETA-2`:
//!   sets `updated` to now (`+0000`) and adds a comment to each; answers
//!   `{"touched": [keys], "updated": "...", "updated_ms": …}`.
//! * `GET /_mock/stats`: request counts by path, route and status, fault counts.
//! * `POST /_mock/stats/reset`: zero those counters (fault schedules keep going).
//! * `GET /_mock/site`: [`SiteTotals`].
//!
//! # Faults
//!
//! All off by default; see [`faults`] for the exact behaviour of `reset_every`,
//! `rate_limit_every`, `error_burst_every`/`error_burst_len`, `cut_every`,
//! `truncate_every` and `slow_every`/`slow_ms`. They apply only to data endpoints,
//! and are scheduled by a per-request counter, so a retried request gets a new
//! number and eventually succeeds.

pub mod auth;
pub mod catalog;
pub mod error;
pub mod faults;
pub mod jql;
pub mod model;
pub mod params;
pub mod render;
pub mod routes;
pub mod search;
pub mod site;
pub mod state;
pub mod time;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::faults::{ConnInfo, FaultListener};
pub use crate::site::SiteTotals;
use crate::site::{Site, SiteSpec};
use crate::state::AppState;
pub use crate::state::{FaultCounts, Stats};

/// Everything the mock can be told: site size, credentials and faults.
///
/// `Default` is a small deterministic site (seed 42, 25 users, 3 projects of 40
/// issues), no authentication and no faults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MockConfig {
    /// Port on 127.0.0.1; 0 picks an ephemeral port.
    pub port: u16,
    /// Seed of the generated site.
    pub seed: u64,
    /// Number of users (at least 2 are generated).
    pub users: usize,
    /// Number of projects (keys ALPHA, BETA, GAMMA, DELTA, …).
    pub projects: usize,
    /// Issues in each project.
    pub issues_per_project: usize,
    /// How many histories `expand=changelog` embeds per issue (Jira: 40).
    pub embedded_changelog_cap: usize,
    /// Every Nth issue (by id, offset 3) gets a long changelog; 0 disables.
    pub large_changelog_every: usize,
    /// Minimum length of those long changelogs (up to +9).
    pub large_changelog_len: usize,
    /// HTTP Basic e-mail (auth is enforced when both e-mail and token are set).
    pub email: Option<String>,
    /// HTTP Basic API token.
    pub api_token: Option<String>,
    /// OAuth Bearer token.
    pub access_token: Option<String>,
    /// Path prefixes answered with 403.
    pub forbidden_paths: Vec<String>,
    /// Every Nth data request gets a 429.
    pub rate_limit_every: Option<u32>,
    /// `Retry-After` seconds on 429 (and 503); 0 is allowed.
    pub retry_after_secs: u64,
    /// Leave `Retry-After` out of 429/503 responses.
    pub omit_retry_after: bool,
    /// Error bursts start every Nth data request …
    pub error_burst_every: Option<u32>,
    /// … and last this many requests (500, 502, 503, 504, cycling).
    pub error_burst_len: u32,
    /// Every Nth data request has its connection reset without a response.
    pub reset_every: Option<u32>,
    /// Every Nth data request gets a 200 with half of its JSON body.
    pub truncate_every: Option<u32>,
    /// Every Nth data request has its connection closed half-way through the body.
    pub cut_every: Option<u32>,
    /// Every Nth data request is delayed by `slow_ms`.
    pub slow_every: Option<u32>,
    /// Delay of slow requests, in milliseconds.
    pub slow_ms: u64,
    /// Whether the site has Jira Software. Without it, as on a Jira Work Management or
    /// Service Management site, the Agile API (`/rest/agile/1.0/...`) does not exist and
    /// answers 404 like any unknown path.
    pub jira_software: bool,
    /// The site's cloud ID: its API is also served under `/ex/jira/{cloud_id}`, as the
    /// Atlassian API gateway (`api.atlassian.com`) serves it to OAuth apps. Other cloud
    /// IDs answer 404.
    pub cloud_id: Option<String>,
}

impl Default for MockConfig {
    fn default() -> Self {
        Self {
            port: 0,
            seed: 42,
            users: 25,
            projects: 3,
            issues_per_project: 40,
            embedded_changelog_cap: 40,
            large_changelog_every: 17,
            large_changelog_len: 45,
            email: None,
            api_token: None,
            access_token: None,
            forbidden_paths: Vec::new(),
            rate_limit_every: None,
            retry_after_secs: 1,
            omit_retry_after: false,
            error_burst_every: None,
            error_burst_len: 1,
            reset_every: None,
            truncate_every: None,
            cut_every: None,
            slow_every: None,
            slow_ms: 1000,
            jira_software: true,
            cloud_id: None,
        }
    }
}

impl MockConfig {
    /// Require HTTP Basic credentials.
    pub fn with_basic_auth(
        mut self,
        email: impl Into<String>,
        api_token: impl Into<String>,
    ) -> Self {
        self.email = Some(email.into());
        self.api_token = Some(api_token.into());
        self
    }

    /// A site without Jira Software: no Agile API.
    pub fn without_jira_software(mut self) -> Self {
        self.jira_software = false;
        self
    }

    /// Also serve the API under the gateway path `/ex/jira/{cloud_id}`.
    pub fn with_cloud_id(mut self, cloud_id: impl Into<String>) -> Self {
        self.cloud_id = Some(cloud_id.into());
        self
    }

    /// Require a Bearer token.
    pub fn with_bearer(mut self, token: impl Into<String>) -> Self {
        self.access_token = Some(token.into());
        self
    }

    fn spec(&self) -> SiteSpec {
        SiteSpec {
            seed: self.seed,
            users: self.users,
            projects: self.projects,
            issues_per_project: self.issues_per_project,
            embedded_changelog_cap: self.embedded_changelog_cap,
            large_changelog_every: self.large_changelog_every,
            large_changelog_len: self.large_changelog_len,
        }
    }
}

/// A cheap, cloneable handle to a running mock's state (for tests).
#[derive(Clone, Debug)]
pub struct MockHandle {
    state: Arc<AppState>,
}

impl MockHandle {
    /// Touch the first `n` issues by id: `updated` = now (`+0000`), plus one new
    /// comment each. Returns their keys.
    pub fn touch(&self, n: usize) -> Vec<String> {
        let mut site = self.state.site();
        let idx: Vec<usize> = (0..n.min(site.issues.len())).collect();
        site.touch(&idx, time::now_ms()).0
    }

    /// Touch issues by key or id. Unknown keys are an error (nothing is touched).
    pub fn touch_keys<S: AsRef<str>>(&self, keys: &[S]) -> Result<Vec<String>, String> {
        let mut site = self.state.site();
        let idx = keys
            .iter()
            .map(|k| {
                site.find_issue(k.as_ref())
                    .ok_or_else(|| format!("unknown issue {}", k.as_ref()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(site.touch(&idx, time::now_ms()).0)
    }

    /// Number of issues.
    pub fn issue_count(&self) -> usize {
        self.state.site().issues.len()
    }

    /// All issue keys, in id order.
    pub fn issue_keys(&self) -> Vec<String> {
        self.state
            .site()
            .issues
            .iter()
            .map(|i| i.key.clone())
            .collect()
    }

    /// `fields.updated` of an issue, as epoch ms.
    pub fn issue_updated_ms(&self, key: &str) -> Option<i64> {
        let site = self.state.site();
        site.find_issue(key).map(|i| site.issues[i].updated.ms)
    }

    /// Object counts of the site.
    pub fn totals(&self) -> SiteTotals {
        self.state.site().totals()
    }

    /// Requests seen for an exact path (e.g. `/rest/api/3/search/jql`).
    pub fn request_count(&self, path: &str) -> u64 {
        self.state
            .stats()
            .requests_by_path
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests seen for a route template (e.g. `/rest/api/3/issue/{issueIdOrKey}/comment`).
    pub fn route_count(&self, route: &str) -> u64 {
        self.state
            .stats()
            .requests_by_route
            .get(route)
            .copied()
            .unwrap_or(0)
    }

    /// All data requests counted so far.
    pub fn total_requests(&self) -> u64 {
        self.state.stats().total_requests
    }

    /// Injected fault counts.
    pub fn fault_counts(&self) -> FaultCounts {
        self.state.stats().faults.clone()
    }

    /// A snapshot of all counters.
    pub fn stats(&self) -> Stats {
        self.state.stats().clone()
    }

    /// The configuration the server runs with.
    pub fn config(&self) -> &MockConfig {
        &self.state.config
    }
}

/// A running mock server. Dropping it stops the server. It derefs to
/// [`MockHandle`], so `server.touch(3)` or `server.totals()` work directly.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    base_url: String,
    handle: MockHandle,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl MockServer {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `base_url` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A cloneable handle to the state.
    pub fn handle(&self) -> MockHandle {
        self.handle.clone()
    }

    /// Stop accepting connections and wait (up to 5 s) for open ones to finish.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

impl Deref for MockServer {
    type Target = MockHandle;

    fn deref(&self) -> &MockHandle {
        &self.handle
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Bind `127.0.0.1:config.port`, generate the site and serve it in a spawned task.
pub async fn start(config: MockConfig) -> std::io::Result<MockServer> {
    let listener = TcpListener::bind(("127.0.0.1", config.port)).await?;
    let addr = listener.local_addr()?;
    let base_url = format!("http://{addr}");
    let site = Site::generate(&config.spec(), &base_url);
    let state = Arc::new(AppState {
        config,
        site: Mutex::new(site),
        stats: Mutex::new(Stats::default()),
        data_requests: AtomicU64::new(0),
        burst_errors: AtomicU64::new(0),
    });
    let app = routes::router(state.clone()).into_make_service_with_connect_info::<ConnInfo>();
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server =
            axum::serve(FaultListener::new(listener), app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
        if let Err(e) = server.await {
            tracing::error!("jira-mock server error: {e}");
        }
    });
    tracing::debug!(%addr, "jira-mock started");
    Ok(MockServer {
        addr,
        base_url,
        handle: MockHandle { state },
        shutdown: Some(tx),
        task: Some(task),
    })
}
