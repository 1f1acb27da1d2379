//! Settings of target-parquet.

use std::path::PathBuf;

use serde::Deserialize;
use serde_json::json;
use singer_core::cli::About;
use singer_core::target::TargetSettings;

/// Parquet compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
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

/// The target's config.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The directory that holds one dataset per stream.
    pub destination_path: PathBuf,
    /// Compression codec.
    #[serde(default)]
    pub compression: Compression,
    /// Rows per row group.
    #[serde(default = "default_row_group_size")]
    pub row_group_size: usize,
    /// Start a new file after this many rows.
    #[serde(default)]
    pub max_rows_per_file: Option<usize>,
    /// Start a new file after about this many megabytes.
    #[serde(default)]
    pub max_file_size_mb: Option<f64>,
    /// A column, or `day(col)` / `month(col)` of a date-time column, to partition by.
    #[serde(default)]
    pub partition_by: Option<String>,
    /// Settings every target shares.
    #[serde(flatten)]
    pub target: TargetSettings,
}

fn default_row_group_size() -> usize {
    100_000
}

/// What `--about` reports.
pub fn about() -> About {
    let mut properties = json!({
        "destination_path": {"type": "string", "title": "Destination Path",
            "description": "Directory for the datasets: one sub-directory per stream."},
        "compression": {"type": ["string", "null"], "enum": ["zstd", "snappy", "gzip", "lz4", "none", null], "default": "zstd",
            "description": "Parquet compression codec."},
        "row_group_size": {"type": ["integer", "null"], "minimum": 1, "default": 100000,
            "description": "Maximum rows per row group."},
        "max_rows_per_file": {"type": ["integer", "null"], "minimum": 1,
            "description": "Start a new file after this many rows."},
        "max_file_size_mb": {"type": ["number", "null"], "exclusiveMinimum": 0,
            "description": "Start a new file after about this many megabytes."},
        "partition_by": {"type": ["string", "null"],
            "description": "Hive partitioning: a column name, or day(col) / month(col) of a date-time column. Written as col=value/ directories."}
    });
    if let (Some(p), Some(common)) = (
        properties.as_object_mut(),
        TargetSettings::settings_schema().as_object().cloned(),
    ) {
        p.extend(common);
        p.remove("hard_delete");
    }
    About {
        name: "target-parquet",
        description: "Writes a Singer stream as Parquet datasets (optionally Hive-partitioned) in constant memory; files are durable before the state that covers them is emitted, exactly once across crashes.",
        version: env!("CARGO_PKG_VERSION"),
        capabilities: vec![
            "about",
            "schema-flattening",
            "validate-records",
            "activate-version",
        ],
        settings: json!({"type": "object", "properties": properties, "required": ["destination_path"]}),
    }
}
