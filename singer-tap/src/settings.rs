//! [`TapSettings`]: the settings every tap shares, flattened into each tap's config.
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//! use singer_tap::TapSettings;
//!
//! /// Settings of a demo tap.
//! #[derive(Deserialize, JsonSchema)]
//! struct Config {
//!     /// The API's base URL.
//!     api_url: String,
//!     #[serde(flatten)]
//!     tap: TapSettings,
//! }
//!
//! let config: Config = serde_json::from_value(serde_json::json!({
//!     "api_url": "https://api.example.com", "page_size": 50, "start_date": "2024-01-01T00:00:00Z"}))?;
//! assert_eq!(config.tap.page_size, 50);
//! let settings = singer_core::settings::settings_schema::<Config>();
//! assert!(settings["properties"]["max_tries"].is_object());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use singer_core::time::parse_datetime;

use singer_core::stream_map::{MapSettings, StreamMaps};

use crate::batch::BatchConfig;
use crate::client::HttpSettings;
use crate::error::{Error, Result};
use crate::retry::RetryPolicy;
use crate::sync::SyncSettings;

/// Settings every tap takes, with the names Meltano SDK taps use.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(default)]
pub struct TapSettings {
    /// Incremental streams without a bookmark start here.
    #[schemars(extend("format" = "date-time"))]
    pub start_date: Option<String>,
    /// Incremental streams stop here.
    #[schemars(extend("format" = "date-time"))]
    pub end_date: Option<String>,
    /// Records per request (some endpoints cap it lower).
    #[schemars(range(min = 1))]
    pub page_size: usize,
    /// Seconds before a request times out (and is retried).
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub request_timeout_seconds: f64,
    /// Attempts per request, the first included, on 429, 5xx and network errors.
    #[schemars(range(min = 1))]
    pub max_tries: usize,
    /// The User-Agent header of every request (default: the tap's name and version).
    pub user_agent: Option<String>,
    /// Re-read this many minutes before the bookmark, for late writes.
    pub lookback_minutes: u64,
    /// The stream-maps settings (`stream_maps`, `stream_map_config`, `faker_config`).
    #[serde(flatten)]
    pub maps: MapSettings,
    /// Write records to BATCH files, as Meltano SDK taps do: `encoding` (`format: jsonl`,
    /// `compression: gzip | none`), `storage` (`root`, `prefix`) and `batch_size`.
    #[schemars(title = "Batch Configuration")]
    pub batch_config: Option<BatchConfig>,
}

impl Default for TapSettings {
    fn default() -> Self {
        TapSettings {
            start_date: None,
            end_date: None,
            page_size: 100,
            request_timeout_seconds: 60.0,
            max_tries: 8,
            user_agent: None,
            lookback_minutes: 0,
            maps: MapSettings::default(),
            batch_config: None,
        }
    }
}

impl TapSettings {
    /// Checks what the settings schema cannot: the date-times parse, the stream maps'
    /// expressions are supported, the batch files can be written.
    pub fn check(&self) -> Result<()> {
        StreamMaps::new(&self.maps).map_err(Error::Map)?;
        if let Some(batch) = &self.batch_config {
            batch.check()?;
        }
        let problems: Vec<String> = [
            ("start_date", &self.start_date),
            ("end_date", &self.end_date),
        ]
        .into_iter()
        .filter_map(|(name, value)| {
            let v = value.as_ref()?;
            parse_datetime(v)
                .is_err()
                .then(|| format!("{name} '{v}' is not a date-time"))
        })
        .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::config(problems))
        }
    }

    /// The HTTP client's settings; `tap` names the default User-Agent (`tap-jira/0.1.0`).
    pub fn http(&self, tap: &str, version: &str) -> HttpSettings {
        HttpSettings {
            timeout: Duration::from_secs_f64(self.request_timeout_seconds.max(0.001)),
            retry: RetryPolicy {
                max_tries: self.max_tries.max(1),
                ..RetryPolicy::default()
            },
            user_agent: self.user_agent.clone().unwrap_or_else(|| {
                format!("{tap}/{version} singer-rs/{}", env!("CARGO_PKG_VERSION"))
            }),
        }
    }

    /// The sync's bounds and lookback, with the runtime's defaults for the rest.
    pub fn sync(&self) -> SyncSettings {
        SyncSettings {
            start_date: self.start_date.clone(),
            end_date: self.end_date.clone(),
            lookback: chrono::Duration::minutes(
                i64::try_from(self.lookback_minutes).unwrap_or(i64::MAX / 60_000),
            ),
            maps: self.maps.clone(),
            batch: self.batch_config.clone(),
            ..SyncSettings::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_bounds_and_checks() {
        let s: TapSettings =
            serde_json::from_value(json!({"lookback_minutes": 10, "max_tries": 3}))
                .expect("settings");
        assert_eq!(s.page_size, 100);
        assert_eq!(s.sync().lookback, chrono::Duration::minutes(10));
        let http = s.http("tap-demo", "1.2.3");
        assert_eq!(http.retry.max_tries, 3);
        assert!(
            http.user_agent.starts_with("tap-demo/1.2.3"),
            "{}",
            http.user_agent
        );
        assert!(s.check().is_ok());
        let bad = TapSettings {
            end_date: Some("yesterday".into()),
            ..TapSettings::default()
        };
        let e = bad.check().expect_err("bad date");
        assert!(
            e.to_string()
                .contains("end_date 'yesterday' is not a date-time"),
            "{e}"
        );
    }
}
