//! Settings of target-parquet.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use singer_core::cli::About;
use singer_core::settings::settings_schema;
use singer_target::{TargetConfig, TargetSettings};

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Zstandard (default).
    #[default]
    Zstd,
    /// Snappy.
    Snappy,
    /// Gzip.
    Gzip,
    /// LZ4 (raw).
    Lz4,
    /// No compression.
    None,
}

/// How a stream's files become a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// A directory of Parquet files per stream (optionally Hive-partitioned), committed
    /// through the target's commit log.
    #[default]
    Parquet,
    /// A Delta Lake table per stream: each commit one Delta transaction.
    Delta,
}

/// A `storage_options` value: text, or a YAML/JSON boolean or number (`aws_allow_http:
/// true`), passed on as text.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum OptionValue {
    /// Text.
    Text(String),
    /// A boolean.
    Flag(bool),
    /// A number.
    Number(serde_json::Number),
}

impl std::fmt::Display for OptionValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OptionValue::Text(s) => f.write_str(s),
            OptionValue::Flag(b) => write!(f, "{b}"),
            OptionValue::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Config {
    /// `storage_options` as the object store takes them.
    pub fn storage_options(&self) -> BTreeMap<String, String> {
        self.storage_options
            .iter()
            .map(|(k, v)| (k.clone(), v.to_string()))
            .collect()
    }
}

/// The target's config.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct Config {
    /// Where the datasets go, one sub-directory per stream: a local directory, file://,
    /// s3://bucket/prefix, gs://bucket/prefix or az://container/prefix.
    #[schemars(title = "Destination Path")]
    pub destination_path: String,
    /// parquet: a directory of Parquet files per stream; delta: a Delta Lake table per
    /// stream.
    #[serde(default)]
    pub table_format: TableFormat,
    /// Object-store settings by object_store's names (aws_endpoint, aws_region,
    /// aws_access_key_id, aws_secret_access_key, aws_allow_http, google_service_account,
    /// azure_storage_account_name, ...); AWS_*, GOOGLE_* and AZURE_* environment variables
    /// are read too, these override them.
    #[serde(default)]
    #[schemars(extend("secret" = true, "writeOnly" = true))]
    pub storage_options: BTreeMap<String, OptionValue>,
    /// Delta: write a checkpoint every this many commits of a table.
    #[serde(default = "default_checkpoint_interval")]
    #[schemars(range(min = 1))]
    pub checkpoint_interval: u64,
    /// Parquet compression codec.
    #[serde(default)]
    pub compression: Compression,
    /// Maximum rows per row group.
    #[serde(default = "default_row_group_size")]
    #[schemars(range(min = 1))]
    pub row_group_size: usize,
    /// Start a new file after this many rows.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub max_rows_per_file: Option<usize>,
    /// Start a new file after about this many megabytes.
    #[serde(default)]
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub max_file_size_mb: Option<f64>,
    /// Hive partitioning: a column name, or day(col) / month(col) of a date-time column.
    /// Written as col=value/ directories.
    #[serde(default)]
    pub partition_by: Option<String>,
    /// Settings every target shares.
    #[serde(flatten)]
    pub target: TargetSettings,
}

impl TargetConfig for Config {
    fn target_settings(&self) -> &TargetSettings {
        &self.target
    }
}

fn default_checkpoint_interval() -> u64 {
    10
}

fn default_row_group_size() -> usize {
    100_000
}

/// What `--about` reports.
pub fn about() -> About {
    let mut settings = settings_schema::<Config>();
    // Parquet files are immutable: ACTIVATE_VERSION always drops older versions' files.
    if let Some(props) = settings
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        props.remove("hard_delete");
    }
    About {
        name: "target-parquet",
        description: "Writes Singer streams as Parquet datasets (optionally Hive-partitioned) or Delta Lake tables, on local disk or object storage (S3, GCS, Azure), in constant memory; data is committed before the state that covers it is emitted, exactly once across crashes.",
        version: env!("CARGO_PKG_VERSION"),
        capabilities: vec![
            "about",
            "schema-flattening",
            "validate-records",
            "activate-version",
            "structured-logging",
            "stream-maps",
            "batch",
        ],
        settings,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn about_lists_own_and_shared_settings() {
        let settings = about().settings;
        assert_eq!(settings["required"], json!(["destination_path"]));
        let p = &settings["properties"];
        assert_eq!(
            p["compression"]["enum"],
            json!(["zstd", "snappy", "gzip", "lz4", "none", null])
        );
        assert_eq!(p["compression"]["default"], json!("zstd"));
        assert_eq!(p["row_group_size"]["default"], json!(100000));
        assert_eq!(p["max_file_size_mb"]["exclusiveMinimum"], json!(0));
        assert!(p.get("hard_delete").is_none());
        assert_eq!(p["validate_records"]["default"], json!(true));
        assert_eq!(p["table_format"]["enum"], json!(["parquet", "delta", null]));
        assert_eq!(p["storage_options"]["secret"], json!(true));
    }
}
