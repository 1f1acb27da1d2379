//! Where files go: dataset directories, Hive partitions, file names, the commit log.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use singer_target::CommitMarker;

use crate::config::TableFormat;
use crate::delta::PendingTable;

/// The commit log's file name, at the root of the destination.
pub const COMMIT_LOG: &str = ".singer_commit.json";

/// A stream name as a directory name: `[A-Za-z0-9_.-]`, never `.`-leading, so it cannot
/// escape the destination or hide.
pub fn dir_name(stream: &str) -> String {
    let mut s: String = stream
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '_');
    }
    s
}

/// Percent-encodes a partition value as Hive does; null becomes Hive's default partition.
pub fn hive_value(value: Option<&str>) -> String {
    let Some(value) = value else {
        return "__HIVE_DEFAULT_PARTITION__".into();
    };
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b' ' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() || out == "." || out == ".." {
        out = out.replace('.', "%2E");
        if out.is_empty() {
            out.push_str("%00");
        }
    }
    out
}

/// The value a partition directory's name holds (the inverse of [`hive_value`]): `None`
/// for Hive's default (null) partition.
pub fn hive_unvalue(dir_value: &str) -> Option<Option<String>> {
    match dir_value {
        "__HIVE_DEFAULT_PARTITION__" => return Some(None),
        "%00" => return Some(Some(String::new())),
        _ => {}
    }
    let bytes = dir_value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Some)
}

/// How to partition a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionSpec {
    /// By a column's value.
    Column(String),
    /// By the UTC day of a date-time column.
    Day(String),
    /// By the UTC month of a date-time column.
    Month(String),
}

impl PartitionSpec {
    /// Parses `col`, `day(col)` or `month(col)`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let inner = |prefix: &str| {
            s.strip_prefix(prefix)
                .and_then(|r| r.strip_suffix(')'))
                .map(|c| c.trim().to_string())
        };
        let spec = if let Some(c) = inner("day(") {
            PartitionSpec::Day(c)
        } else if let Some(c) = inner("month(") {
            PartitionSpec::Month(c)
        } else {
            PartitionSpec::Column(s.to_string())
        };
        match &spec {
            PartitionSpec::Column(c) | PartitionSpec::Day(c) | PartitionSpec::Month(c)
                if c.is_empty() =>
            {
                Err(format!("partition_by '{s}' names no column"))
            }
            _ => Ok(spec),
        }
    }

    /// The column the values come from.
    pub fn source(&self) -> &str {
        match self {
            PartitionSpec::Column(c) | PartitionSpec::Day(c) | PartitionSpec::Month(c) => c,
        }
    }

    /// The directory key (`status`, `updated_day`, `updated_month`).
    pub fn key(&self) -> String {
        let base = dir_name(self.source());
        match self {
            PartitionSpec::Column(_) => base,
            PartitionSpec::Day(_) => format!("{base}_day"),
            PartitionSpec::Month(_) => format!("{base}_month"),
        }
    }

    /// Whether the source column is moved out of the files into the directory names.
    pub fn drops_column(&self) -> bool {
        matches!(self, PartitionSpec::Column(_))
    }

    /// The column name the partition has in a Delta table (the source column itself, or
    /// the derived `<col>_day` / `<col>_month`).
    pub fn delta_column(&self) -> String {
        match self {
            PartitionSpec::Column(c) => c.clone(),
            _ => self.key(),
        }
    }

    /// The partition value of each row, or `None` if the batch lacks the column.
    pub fn values(&self, batch: &RecordBatch) -> Result<Option<Vec<Option<String>>>, String> {
        let Some(column) = batch.column_by_name(self.source()) else {
            return Ok(None);
        };
        let values = match self {
            PartitionSpec::Column(_) => {
                let text = arrow::compute::cast(column, &DataType::Utf8)
                    .map_err(|e| format!("partition column '{}': {e}", self.source()))?;
                let text = text.as_string::<i32>();
                (0..text.len())
                    .map(|i| text.is_valid(i).then(|| text.value(i).to_string()))
                    .collect()
            }
            PartitionSpec::Day(_) | PartitionSpec::Month(_) => {
                if !matches!(
                    column.data_type(),
                    DataType::Timestamp(TimeUnit::Microsecond, _)
                ) {
                    return Err(format!(
                        "partition_by {}: column '{}' is {}, not a date-time",
                        if matches!(self, PartitionSpec::Day(_)) {
                            "day"
                        } else {
                            "month"
                        },
                        self.source(),
                        column.data_type()
                    ));
                }
                let ts = column.as_primitive::<TimestampMicrosecondType>();
                let format = if matches!(self, PartitionSpec::Day(_)) {
                    "%Y-%m-%d"
                } else {
                    "%Y-%m"
                };
                (0..ts.len())
                    .map(|i| {
                        ts.is_valid(i)
                            .then(|| DateTime::from_timestamp_micros(ts.value(i)))
                            .flatten()
                            .map(|t| t.format(format).to_string())
                    })
                    .collect()
            }
        };
        Ok(Some(values))
    }
}

/// `part-<seq>-<utc time>-<n>-v<version>.parquet`.
pub fn file_name(seq: u64, n: usize, version: Option<i64>) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ");
    let v = version.map_or("none".to_string(), |v| v.to_string());
    format!("part-{seq:012}-{now}-{n:05}-v{v}.parquet")
}

/// The commit number and version of a data file, from its name.
pub fn parse_file_name(name: &str) -> Option<(u64, Option<i64>)> {
    let rest = name.strip_prefix("part-")?.strip_suffix(".parquet")?;
    let mut parts = rest.split('-');
    let seq = parts.next()?.parse().ok()?;
    let version = rest.rsplit("-v").next()?;
    let version = if version == "none" {
        None
    } else {
        Some(version.parse().ok()?)
    };
    Some((seq, version))
}

/// Whether `path` (relative, any depth) names a data file.
pub fn is_data_file(path: &str) -> bool {
    file_name_of(path).and_then(parse_file_name).is_some()
}

/// The last segment of a `/`-separated path.
pub fn file_name_of(path: &str) -> Option<&str> {
    path.rsplit('/').next()
}

/// The stream directory a relative path is in (its first segment).
pub fn dir_of(path: &str) -> &str {
    path.split('/').next().unwrap_or(path)
}

/// The commit log: the last commit, enough to finish it after a crash.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CommitLog {
    /// The commit number (grows across runs).
    pub seq: u64,
    /// What the commit acknowledges.
    pub marker: CommitMarker,
    /// Temporary files and the paths they move to, relative to the destination.
    pub renames: Vec<(String, String)>,
    /// Files to remove, relative to the destination.
    pub deletes: Vec<String>,
    /// Which stream owns each dataset directory.
    pub streams: BTreeMap<String, String>,
    /// Overwrite loads in progress: the first commit of each; files of earlier commits are
    /// removed when the input ends.
    #[serde(default)]
    pub overwrite_from: BTreeMap<String, u64>,
    /// Per stream, the files of rows committed before their covering STATE, relative to the
    /// destination: removed if a later run replays them, forgotten once a STATE covers them
    /// (see `singer_target::ack`).
    #[serde(default)]
    pub provisional: BTreeMap<String, Vec<String>>,
    /// The table format the destination is written in (absent: parquet).
    #[serde(default)]
    pub format: Option<TableFormat>,
    /// Delta: per table directory, the transaction of this commit, until the table has it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub delta: BTreeMap<String, PendingTable>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names_cannot_escape() {
        assert_eq!(dir_name("../etc"), "_.._etc");
        assert_eq!(dir_name("/abs/path"), "_abs_path");
        assert_eq!(dir_name(".."), "_..");
        assert_eq!(dir_name("a\\b"), "a_b");
        assert_eq!(dir_name("public-users"), "public-users");
        assert_eq!(dir_name(""), "_");
        assert_eq!(hive_value(Some("a/b")), "a%2Fb");
        assert_eq!(hive_value(Some("..")), "%2E%2E");
        assert_eq!(hive_value(None), "__HIVE_DEFAULT_PARTITION__");
        for value in [
            Some("a/b"),
            Some(".."),
            Some("x y:z%"),
            Some("é"),
            Some(""),
            None,
        ] {
            assert_eq!(
                hive_unvalue(&hive_value(value)),
                Some(value.map(String::from)),
                "{value:?}"
            );
        }
    }

    #[test]
    fn partition_specs() {
        assert_eq!(
            PartitionSpec::parse("status"),
            Ok(PartitionSpec::Column("status".into()))
        );
        assert_eq!(
            PartitionSpec::parse("day(updated)"),
            Ok(PartitionSpec::Day("updated".into()))
        );
        assert_eq!(
            PartitionSpec::parse("month( updated )").map(|p| p.key()),
            Ok("updated_month".into())
        );
        assert!(PartitionSpec::parse("day()").is_err());
    }

    #[test]
    fn file_names_round_trip_and_sort_by_commit() {
        let a = file_name(7, 0, Some(1_700_000_000_000));
        let b = file_name(12, 3, None);
        assert_eq!(parse_file_name(&a), Some((7, Some(1_700_000_000_000))));
        assert_eq!(parse_file_name(&b), Some((12, None)));
        assert!(a < b);
        assert_eq!(parse_file_name("other.parquet"), None);
    }
}
