//! Settings of tap-jira, and building the tap from them.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use singer_core::cli::About;
use singer_core::tap::{Authenticator, HttpSettings, RestClient, RetryPolicy, SyncSettings, Tap};
use singer_core::{Error, Result};

/// The tap's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// `acme.atlassian.net`, or a full base URL (`http://127.0.0.1:8080`).
    pub domain: String,
    /// Atlassian account email, with `api_token` (HTTP Basic).
    #[serde(default)]
    pub email: Option<String>,
    /// API token, with `email`.
    #[serde(default)]
    pub api_token: Option<String>,
    /// OAuth 2.0 access token (Bearer), instead of email and token.
    #[serde(default)]
    pub access_token: Option<String>,
    /// Incremental streams without a bookmark start here.
    #[serde(default = "default_start_date")]
    pub start_date: String,
    /// Incremental streams stop here, if set.
    #[serde(default)]
    pub end_date: Option<String>,
    /// Only these project keys.
    #[serde(default)]
    pub projects: Vec<String>,
    /// An extra JQL filter for issues, ANDed with the tap's bounds.
    #[serde(default)]
    pub jql: Option<String>,
    /// Records per request.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Re-read this many minutes before the bookmark.
    #[serde(default)]
    pub lookback_minutes: u64,
    /// Issues whose children are fetched at once.
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Seconds before a request times out.
    #[serde(default = "default_timeout")]
    pub request_timeout_seconds: f64,
    /// Attempts per request, the first included.
    #[serde(default = "default_tries")]
    pub max_tries: usize,
    /// Per-issue bookmarks of comments, changelogs and worklogs kept in state before they
    /// are rolled up into one per stream.
    #[serde(default = "default_partitions")]
    pub max_state_partitions: usize,
}

fn default_start_date() -> String {
    "1970-01-01T00:00:00Z".into()
}
fn default_page_size() -> usize {
    100
}
fn default_concurrency() -> usize {
    4
}
fn default_timeout() -> f64 {
    60.0
}
fn default_tries() -> usize {
    8
}
fn default_partitions() -> usize {
    100
}

/// What `--about` reports.
pub fn about() -> About {
    About {
        name: "tap-jira",
        description: "Extracts a Jira Cloud site (REST API v3 and Agile 1.0): users, fields, projects, statuses, priorities, issues with their comments, changelogs and worklogs, boards and sprints. Issues sync incrementally on 'updated' with exact epoch-millisecond JQL bounds.",
        version: env!("CARGO_PKG_VERSION"),
        capabilities: vec![
            "catalog",
            "discover",
            "state",
            "about",
            "test",
            "activate-version",
        ],
        settings: json!({
            "type": "object",
            "properties": {
                "domain": {"type": "string", "title": "Domain",
                    "description": "The Jira site, e.g. acme.atlassian.net, or a full base URL such as http://127.0.0.1:8080."},
                "email": {"type": ["string", "null"], "title": "Email",
                    "description": "Atlassian account email, used with api_token (HTTP Basic)."},
                "api_token": {"type": ["string", "null"], "title": "API Token", "secret": true, "writeOnly": true,
                    "description": "Atlassian API token, used with email."},
                "access_token": {"type": ["string", "null"], "title": "Access Token", "secret": true, "writeOnly": true,
                    "description": "OAuth 2.0 access token (Bearer), instead of email and api_token."},
                "start_date": {"type": ["string", "null"], "format": "date-time", "default": "1970-01-01T00:00:00Z",
                    "description": "Incremental streams without a bookmark start here."},
                "end_date": {"type": ["string", "null"], "format": "date-time",
                    "description": "Incremental streams stop here."},
                "projects": {"type": ["array", "null"], "items": {"type": "string"},
                    "description": "Only these project keys (default: all)."},
                "jql": {"type": ["string", "null"],
                    "description": "An extra JQL filter for issues, ANDed with the tap's bounds (e.g. issuetype = Bug)."},
                "page_size": {"type": ["integer", "null"], "minimum": 1, "maximum": 1000, "default": 100,
                    "description": "Records per request (Jira caps some endpoints lower)."},
                "lookback_minutes": {"type": ["integer", "null"], "minimum": 0, "default": 0,
                    "description": "Re-read this many minutes before the bookmark, for late writes."},
                "max_concurrency": {"type": ["integer", "null"], "minimum": 1, "default": 4,
                    "description": "Issues whose comments, changelogs and worklogs are fetched at once."},
                "request_timeout_seconds": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": 60,
                    "description": "Seconds before a request times out (and is retried)."},
                "max_tries": {"type": ["integer", "null"], "minimum": 1, "default": 8,
                    "description": "Attempts per request, the first included, on 429, 5xx and network errors."},
                "max_state_partitions": {"type": ["integer", "null"], "minimum": 0, "default": 100,
                    "description": "Per-issue bookmarks of comments, changelogs and worklogs kept in state; past this many they are rolled up into one bookmark per stream, bounded by the issues' synced window."}
            },
            "required": ["domain"]
        }),
    }
}

impl Config {
    /// The site's base URL.
    pub fn base_url(&self) -> String {
        let d = self.domain.trim().trim_end_matches('/');
        if d.starts_with("http://") || d.starts_with("https://") {
            d.to_string()
        } else {
            format!("https://{d}")
        }
    }

    fn authenticator(&self) -> Result<Authenticator> {
        match (&self.email, &self.api_token, &self.access_token) {
            (_, _, Some(token)) if !token.is_empty() => Ok(Authenticator::Bearer {
                token: token.clone(),
            }),
            (Some(email), Some(token), _) if !email.is_empty() && !token.is_empty() => {
                Ok(Authenticator::Basic {
                    username: email.clone(),
                    password: token.clone(),
                })
            }
            _ => Err(Error::Config {
                problems: vec![
                    "set email and api_token (HTTP Basic), or access_token (OAuth)".into(),
                ],
            }),
        }
    }

    /// The tap: its streams and sync settings.
    pub fn into_tap(self) -> Result<Tap> {
        for (name, value) in [
            ("start_date", Some(&self.start_date)),
            ("end_date", self.end_date.as_ref()),
        ] {
            if let Some(v) = value
                && singer_core::time::parse_datetime(v).is_err()
            {
                return Err(Error::Config {
                    problems: vec![format!("{name} '{v}' is not a date-time")],
                });
            }
        }
        let http = HttpSettings {
            timeout: Duration::from_secs_f64(self.request_timeout_seconds.max(0.001)),
            retry: RetryPolicy {
                max_tries: self.max_tries.max(1),
                ..RetryPolicy::default()
            },
            ..HttpSettings::default()
        };
        let client = Arc::new(RestClient::new(
            &self.base_url(),
            self.authenticator()?,
            http,
        )?);
        let settings = SyncSettings {
            start_date: Some(self.start_date.clone()),
            end_date: self.end_date.clone(),
            lookback: chrono::Duration::minutes(
                i64::try_from(self.lookback_minutes).unwrap_or(i64::MAX / 60_000),
            ),
            max_concurrency: self.max_concurrency.max(1),
            max_partitions: self.max_state_partitions,
            ..SyncSettings::default()
        };
        Ok(Tap {
            streams: crate::streams::all(client, &self),
            settings,
        })
    }
}
