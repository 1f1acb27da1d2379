//! Where files go: dataset directories, Hive partitions, file names, the commit log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatch;
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use singer_target::CommitMarker;

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

/// Every data file under `dir`, recursively.
pub fn data_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(parse_file_name)
                .is_some()
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Every temporary file under `dir`, recursively.
pub fn temp_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "tmp") {
                out.push(path);
            }
        }
    }
    Ok(out)
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
