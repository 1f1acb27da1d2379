//! Settings of tap-jira, and building the tap from them.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use singer_core::cli::About;
use singer_core::settings::settings_schema;
use singer_tap::{Authenticator, Error, RestClient, Result, Tap, TapSettings};

/// The tap's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct Config {
    /// The Jira site, e.g. acme.atlassian.net, or a full base URL such as
    /// http://127.0.0.1:8080.
    #[schemars(title = "Domain")]
    pub domain: String,
    /// Atlassian account email, used with api_token (HTTP Basic).
    #[serde(default)]
    #[schemars(title = "Email")]
    pub email: Option<String>,
    /// Atlassian API token, used with email.
    #[serde(default)]
    #[schemars(title = "API Token", extend("secret" = true, "writeOnly" = true))]
    pub api_token: Option<String>,
    /// OAuth 2.0 access token (Bearer), instead of email and api_token.
    #[serde(default)]
    #[schemars(title = "Access Token", extend("secret" = true, "writeOnly" = true))]
    pub access_token: Option<String>,
    /// The site's cloud ID, for OAuth 2.0 apps: requests then go through the Atlassian API
    /// gateway, https://api.atlassian.com/ex/jira/{cloud_id} (or, when domain is a full
    /// http(s) URL, that URL's /ex/jira/{cloud_id}, for proxies and tests).
    #[serde(default)]
    #[schemars(title = "Cloud ID", length(min = 1))]
    pub cloud_id: Option<String>,
    /// Only these project keys (default: all).
    #[serde(default)]
    pub projects: Vec<String>,
    /// An extra JQL filter for issues, ANDed with the tap's bounds (e.g. issuetype = Bug).
    #[serde(default)]
    pub jql: Option<String>,
    /// Issues whose comments, changelogs and worklogs are fetched at once.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1))]
    pub max_concurrency: usize,
    /// Per-issue bookmarks of comments, changelogs and worklogs kept in state; past this
    /// many they are rolled up into one bookmark per stream, bounded by the issues' synced
    /// window.
    #[serde(default = "default_partitions")]
    #[schemars(range(min = 0))]
    pub max_state_partitions: usize,
    /// Settings every tap shares: start_date, end_date, page_size, request_timeout_seconds,
    /// max_tries, user_agent, lookback_minutes.
    #[serde(flatten)]
    pub tap: TapSettings,
}

/// Where OAuth 2.0 apps reach Jira Cloud sites by cloud ID.
const ATLASSIAN_API_GATEWAY: &str = "https://api.atlassian.com";

fn default_concurrency() -> usize {
    4
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
            "stream-maps",
            "batch",
            "structured-logging",
        ],
        settings: settings_schema::<Config>(),
    }
}

impl Config {
    /// The site's base URL: the site itself, or the API gateway's path for its cloud ID.
    pub fn base_url(&self) -> String {
        let d = self.domain.trim().trim_end_matches('/');
        let full_url = d.starts_with("http://") || d.starts_with("https://");
        match self.cloud_id.as_deref().map(str::trim) {
            Some(id) if !id.is_empty() => {
                let gateway = if full_url { d } else { ATLASSIAN_API_GATEWAY };
                format!("{gateway}/ex/jira/{id}")
            }
            _ if full_url => d.to_string(),
            _ => format!("https://{d}"),
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
            _ => Err(Error::config(vec![
                "set email and api_token (HTTP Basic), or access_token (OAuth)".into(),
            ])),
        }
    }

    /// The tap: its streams and sync settings.
    pub fn into_tap(self) -> Result<Tap> {
        self.tap.check()?;
        let client = Arc::new(RestClient::new(
            &self.base_url(),
            self.authenticator()?,
            self.tap.http("tap-jira", env!("CARGO_PKG_VERSION")),
        )?);
        let mut settings = self.tap.sync();
        settings.max_concurrency = self.max_concurrency.max(1);
        settings.max_partitions = self.max_state_partitions;
        Ok(Tap {
            streams: crate::streams::all(client, &self),
            settings,
            parquet_batches: Some(Arc::new(singer_target::batch::ParquetBatchFiles)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `--about` as it was when the settings were written by hand: every setting keeps its
    /// type, bounds, default and secret flags. Two differences are deliberate: `start_date`
    /// has no default (unset means from the beginning, as `1970-01-01` did) and
    /// `page_size` no longer caps at 1000 (the streams cap it per endpoint).
    #[test]
    fn about_keeps_every_setting() {
        let before = json!({
            "domain": {"type": "string"},
            "email": {"type": ["string", "null"]},
            "api_token": {"type": ["string", "null"], "secret": true, "writeOnly": true},
            "access_token": {"type": ["string", "null"], "secret": true, "writeOnly": true},
            "start_date": {"type": ["string", "null"], "format": "date-time"},
            "end_date": {"type": ["string", "null"], "format": "date-time"},
            "projects": {"type": ["array", "null"], "items": {"type": "string"}},
            "jql": {"type": ["string", "null"]},
            "page_size": {"type": ["integer", "null"], "minimum": 1, "default": 100},
            "lookback_minutes": {"type": ["integer", "null"], "minimum": 0, "default": 0},
            "max_concurrency": {"type": ["integer", "null"], "minimum": 1, "default": 4},
            "request_timeout_seconds": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": 60.0},
            "max_tries": {"type": ["integer", "null"], "minimum": 1, "default": 8},
            "max_state_partitions": {"type": ["integer", "null"], "minimum": 0, "default": 100}
        });
        let settings = about().settings;
        assert_eq!(settings["required"], json!(["domain"]));
        let lost = singer_core::settings::differences(&settings, &before);
        assert!(lost.is_empty(), "{lost:#?}");
        assert!(
            settings["properties"]["user_agent"].is_object(),
            "the shared settings add user_agent"
        );
        let secrets = about().secret_settings();
        assert_eq!(secrets, ["api_token", "access_token"]);
    }

    #[test]
    fn a_cloud_id_goes_through_the_api_gateway() {
        let config =
            |v: serde_json::Value| -> Config { serde_json::from_value(v).expect("config") };
        assert_eq!(
            config(json!({"domain": "acme.atlassian.net"})).base_url(),
            "https://acme.atlassian.net"
        );
        assert_eq!(
            config(json!({"domain": "acme.atlassian.net", "cloud_id": "11223344-a1b2"})).base_url(),
            "https://api.atlassian.com/ex/jira/11223344-a1b2"
        );
        assert_eq!(
            config(json!({"domain": "http://127.0.0.1:9/", "cloud_id": "c1"})).base_url(),
            "http://127.0.0.1:9/ex/jira/c1"
        );
    }
}
