//! [`TargetSettings`]: the settings every target shares, flattened into each target's
//! config, with the Meltano SDK's names.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use singer_core::schema::{DEFAULT_MAX_KEY_LENGTH, FLATTEN_SEPARATOR, Flattening};
use singer_core::stream_map::MapSettings;

use crate::sink::LoadMethod;
use crate::stream_schema::SchemaOptions;

/// Settings every target shares, with the Meltano SDK's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct TargetSettings {
    /// Commit once the rows covered by a STATE message reach this many.
    #[schemars(title = "Batch Size Rows", range(min = 1))]
    pub batch_size_rows: usize,
    /// Commit once buffered input reaches this many bytes. Bounds memory whatever the input
    /// size: one commit is written while the next one fills, so up to twice this is held.
    #[schemars(title = "Batch Size Bytes", range(min = 1024))]
    pub batch_size_bytes: usize,
    /// Commit a waiting STATE after this many seconds, so a slow tap's state still advances.
    #[schemars(title = "Batch Wait Limit Seconds", extend("exclusiveMinimum" = 0))]
    pub batch_wait_limit_seconds: f64,
    /// Add _sdc_extracted_at, _sdc_received_at, _sdc_batched_at, _sdc_deleted_at,
    /// _sdc_sequence and _sdc_table_version columns.
    #[schemars(title = "Add Record Metadata")]
    pub add_record_metadata: bool,
    /// Validate every record against its stream's JSON Schema; an invalid record stops the
    /// load with an error naming the line and field.
    #[schemars(title = "Validate Records")]
    pub validate_records: bool,
    /// Flatten nested objects into parent__child columns.
    #[schemars(title = "Enable Schema Flattening")]
    pub flattening_enabled: bool,
    /// How many levels of nested objects to flatten (default 1 when flattening is enabled).
    #[schemars(title = "Max Flattening Depth", range(min = 0))]
    pub flattening_max_depth: Option<usize>,
    /// What joins a parent and a child property name when flattening.
    #[schemars(title = "Flattening Separator", length(min = 1))]
    pub flattening_separator: String,
    /// Flattened names this long or longer are shortened, parent by parent, to their
    /// initials, as the Meltano SDK does.
    #[schemars(title = "Flattening Max Key Length", range(min = 1))]
    pub flattening_max_key_length: usize,
    /// append-only, upsert (replace rows by key) or overwrite (replace the table at the end
    /// of the run). Default: upsert for streams with key properties, append-only otherwise.
    pub load_method: Option<LoadMethod>,
    /// On ACTIVATE_VERSION, delete rows of older versions instead of setting
    /// _sdc_deleted_at.
    #[schemars(title = "Hard Delete")]
    pub hard_delete: bool,
    /// Also write each acknowledged state to this file, atomically (temp file, fsync,
    /// rename).
    #[schemars(title = "State File")]
    pub state_file: Option<PathBuf>,
    /// The stream-maps settings (`stream_maps`, `stream_map_config`, `faker_config`),
    /// applied to the input before loading.
    #[serde(flatten)]
    pub maps: MapSettings,
}

impl Default for TargetSettings {
    fn default() -> Self {
        TargetSettings {
            batch_size_rows: 100_000,
            batch_size_bytes: 64 * 1024 * 1024,
            batch_wait_limit_seconds: 30.0,
            add_record_metadata: true,
            validate_records: true,
            flattening_enabled: false,
            flattening_max_depth: None,
            flattening_separator: FLATTEN_SEPARATOR.into(),
            flattening_max_key_length: DEFAULT_MAX_KEY_LENGTH,
            load_method: None,
            hard_delete: false,
            state_file: None,
            maps: MapSettings::default(),
        }
    }
}

impl TargetSettings {
    pub(crate) fn schema_options(&self) -> SchemaOptions {
        SchemaOptions {
            flattening: self.flattening_enabled.then(|| Flattening {
                max_depth: self.flattening_max_depth.unwrap_or(1),
                separator: self.flattening_separator.clone(),
                max_key_length: self.flattening_max_key_length,
            }),
            validate_records: self.validate_records,
        }
    }

    pub(crate) fn load_method_for(&self, stream: &str, keys: &[String]) -> LoadMethod {
        match self.load_method {
            Some(LoadMethod::Upsert) if keys.is_empty() => {
                tracing::warn!(
                    stream,
                    "load_method is upsert but the stream has no key properties; appending"
                );
                LoadMethod::AppendOnly
            }
            Some(m) => m,
            None if keys.is_empty() => LoadMethod::AppendOnly,
            None => LoadMethod::Upsert,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The settings as `--about` listed them when they were written by hand: the derived
    /// schema keeps every name, type, bound, default and enum.
    #[test]
    fn derived_schema_keeps_what_about_said() {
        let before = json!({
            "batch_size_rows": {"type": ["integer", "null"], "minimum": 1, "default": 100000},
            "batch_size_bytes": {"type": ["integer", "null"], "minimum": 1024, "default": 67108864},
            "batch_wait_limit_seconds": {"type": ["number", "null"], "exclusiveMinimum": 0, "default": 30.0},
            "add_record_metadata": {"type": ["boolean", "null"], "default": true},
            "validate_records": {"type": ["boolean", "null"], "default": true},
            "flattening_enabled": {"type": ["boolean", "null"], "default": false},
            "flattening_max_depth": {"type": ["integer", "null"], "minimum": 0},
            "flattening_separator": {"type": ["string", "null"], "minLength": 1, "default": "__"},
            "flattening_max_key_length": {"type": ["integer", "null"], "minimum": 1, "default": 255},
            "load_method": {"type": ["string", "null"], "enum": ["append-only", "upsert", "overwrite", null]},
            "hard_delete": {"type": ["boolean", "null"], "default": false},
            "state_file": {"type": ["string", "null"]},
            "stream_maps": {"type": ["object", "null"]},
            "stream_map_config": {"type": ["object", "null"]},
            "faker_config": {"type": ["object", "null"]}
        });
        let derived = singer_core::settings::settings_schema::<TargetSettings>();
        let props = derived["properties"].as_object().map_or(0, |p| p.len());
        assert_eq!(props, before.as_object().map_or(0, |b| b.len()));
        let lost = singer_core::settings::differences(&derived, &before);
        assert!(lost.is_empty(), "{lost:#?}");
    }
}
