//! Settings of target-duckdb.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use singer_core::cli::About;
use singer_core::settings::settings_schema;
use singer_target::{TargetConfig, TargetSettings};

/// The target's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct Config {
    /// The DuckDB database file. Created if missing.
    #[schemars(title = "Database Path")]
    pub path: PathBuf,
    /// The DuckDB schema that holds the stream tables (created if missing).
    #[serde(default = "default_schema")]
    #[schemars(title = "Default Target Schema")]
    pub default_target_schema: String,
    /// DuckDB's memory_limit for the load.
    #[serde(default = "default_memory_limit")]
    pub memory_limit: String,
    /// DuckDB's worker threads (default: all cores).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub threads: Option<u32>,
    /// Settings every target shares.
    #[serde(flatten)]
    pub target: TargetSettings,
}

impl TargetConfig for Config {
    fn target_settings(&self) -> &TargetSettings {
        &self.target
    }
}

fn default_schema() -> String {
    "main".into()
}

fn default_memory_limit() -> String {
    "256MB".into()
}

/// What `--about` reports.
pub fn about() -> About {
    About {
        name: "target-duckdb",
        description: "Loads a Singer stream into a DuckDB database file: Arrow batches, consecutive commits grouped in one transaction, state emitted only after the data it covers is committed, exactly once across crashes.",
        version: env!("CARGO_PKG_VERSION"),
        capabilities: vec![
            "about",
            "schema-flattening",
            "validate-records",
            "activate-version",
            "structured-logging",
            "stream-maps",
            "batch",
            "hard-delete",
            "soft-delete",
            "target-schema",
        ],
        settings: settings_schema::<Config>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn about_lists_own_and_shared_settings() {
        let settings = about().settings;
        assert_eq!(settings["required"], json!(["path"]));
        let p = &settings["properties"];
        assert_eq!(p["path"]["type"], json!("string"));
        assert_eq!(p["default_target_schema"]["default"], json!("main"));
        assert_eq!(p["memory_limit"]["default"], json!("256MB"));
        assert_eq!(p["threads"]["type"], json!(["integer", "null"]));
        assert_eq!(p["threads"]["minimum"], json!(1));
        assert_eq!(p["batch_size_rows"]["default"], json!(100000));
        assert_eq!(p["hard_delete"]["default"], json!(false));
    }
}
