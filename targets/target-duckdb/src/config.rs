//! Settings of target-duckdb.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;
use singer_core::cli::About;
use singer_core::target::TargetSettings;

/// The target's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The database file; created if missing.
    pub path: PathBuf,
    /// The DuckDB schema of the stream tables.
    #[serde(default = "default_schema")]
    pub default_target_schema: String,
    /// DuckDB's `memory_limit`.
    #[serde(default = "default_memory_limit")]
    pub memory_limit: String,
    /// DuckDB's `threads`.
    #[serde(default)]
    pub threads: Option<u32>,
    /// Settings every target shares.
    #[serde(flatten)]
    pub target: TargetSettings,
}

fn default_schema() -> String {
    "main".into()
}

fn default_memory_limit() -> String {
    "256MB".into()
}

/// What `--about` reports.
pub fn about() -> About {
    let mut properties = json!({
        "path": {"type": "string", "title": "Database Path",
            "description": "The DuckDB database file. Created if missing."},
        "default_target_schema": {"type": ["string", "null"], "default": "main",
            "title": "Default Target Schema",
            "description": "The DuckDB schema that holds the stream tables (created if missing)."},
        "memory_limit": {"type": ["string", "null"], "default": "256MB",
            "description": "DuckDB's memory_limit for the load."},
        "threads": {"type": ["integer", "null"], "minimum": 1,
            "description": "DuckDB's worker threads (default: all cores)."}
    });
    if let (Some(p), Some(common)) = (
        properties.as_object_mut(),
        TargetSettings::settings_schema().as_object().cloned(),
    ) {
        p.extend(common);
    }
    About {
        name: "target-duckdb",
        description: "Loads a Singer stream into a DuckDB database file: Arrow batches, one transaction per commit, state emitted only after the data it covers is committed, exactly once across crashes.",
        version: env!("CARGO_PKG_VERSION"),
        capabilities: vec![
            "about",
            "schema-flattening",
            "validate-records",
            "activate-version",
            "hard-delete",
            "soft-delete",
            "target-schema",
        ],
        settings: json!({"type": "object", "properties": properties, "required": ["path"]}),
    }
}
