//! Singer state: bookmarks the orchestrator keeps between runs.
//!
//! The layout is the Meltano SDK's, so state moves freely between our taps and SDK ones:
//!
//! ```json
//! {
//!   "bookmarks": {
//!     "issues": {"replication_key": "updated", "replication_key_value": "2024-01-15T10:23:45Z"},
//!     "issue_comments": {"partitions": [
//!         {"context": {"issue_id": "10001"}, "replication_key": "updated",
//!          "replication_key_value": "2024-01-15T10:20:00Z"}
//!     ]},
//!     "users": {"resume_token": {"start_at": 200}}
//!   },
//!   "currently_syncing": "issues"
//! }
//! ```
//!
//! * `replication_key_value` is the bookmark of an incremental stream or of one partition.
//! * `progress_markers` hold the highest value seen so far by a stream whose records are not
//!   sorted by the replication key; they become the bookmark only when the stream finishes,
//!   so a crash in the middle never skips rows.
//! * `resume_token` is the paginator position of an interrupted full-table sync.
//! * Keys this crate does not know are kept and written back unchanged.
//!
//! [`write_atomic`] is how every file of the toolkit that must never be half-written is
//! written: a temporary file in the same directory, fsync, rename, fsync of the directory.

use std::io::Write;
use std::path::Path;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// The whole state object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Bookmarks per stream.
    #[serde(default)]
    pub bookmarks: IndexMap<String, StreamState>,
    /// The stream being synced when the state was written; a rerun starts there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currently_syncing: Option<String>,
    /// Other keys, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The bookmark of one stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamState {
    /// The property the bookmark is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_key: Option<String>,
    /// The bookmark: the highest replication key value fully synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_key_value: Option<Value>,
    /// The bookmark the current sync started from (set while a sync runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_replication_value: Option<Value>,
    /// Progress of an unsorted stream in the middle of a sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_markers: Option<ProgressMarkers>,
    /// Bookmarks per partition (per context) of a child stream.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionState>,
    /// Where an interrupted full-table sync resumes (a paginator position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_token: Option<Value>,
    /// Other keys, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The bookmark of one partition of a stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The context that identifies the partition (e.g. `{"issue_id": "10001"}`).
    pub context: Map<String, Value>,
    /// The property the bookmark is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_key: Option<String>,
    /// The bookmark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_key_value: Option<Value>,
    /// Progress of an unsorted partition in the middle of a sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_markers: Option<ProgressMarkers>,
    /// Other keys, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The SDK's progress markers: the highest value seen while records arrive unsorted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProgressMarkers {
    /// Why the markers exist.
    #[serde(rename = "Note", default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The property.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_key: Option<String>,
    /// The highest value seen so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_key_value: Option<Value>,
}

impl State {
    /// Parses a state value. A whole STATE message (`{"type": "STATE", "value": {...}}`) or
    /// `{"value": {...}}` is unwrapped; `{}` and `null` give an empty state.
    pub fn from_value(value: Value) -> Result<Self> {
        let value = match value {
            Value::Null => return Ok(State::default()),
            Value::Object(mut m)
                if m.get("value").is_some_and(Value::is_object)
                    && m.keys().all(|k| k == "value" || k == "type") =>
            {
                m.remove("value").unwrap_or_default()
            }
            v @ Value::Object(_) => v,
            other => {
                return Err(Error::State(format!(
                    "state must be a JSON object, found {}",
                    crate::message::json_kind(&other)
                )));
            }
        };
        serde_json::from_value(value).map_err(|e| Error::State(e.to_string()))
    }

    /// Reads a state file (`--state`). An empty file is an empty state.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        if text.trim().is_empty() {
            return Ok(State::default());
        }
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| Error::State(format!("{}: {e}", path.display())))?;
        Self::from_value(value).map_err(|e| match e {
            Error::State(reason) => Error::State(format!("{}: {reason}", path.display())),
            other => other,
        })
    }

    /// The state as a JSON value.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The bookmark of `stream`, created if missing.
    pub fn stream_mut(&mut self, stream: &str) -> &mut StreamState {
        self.bookmarks.entry(stream.to_string()).or_default()
    }

    /// The bookmark of `stream`, if any.
    pub fn stream(&self, stream: &str) -> Option<&StreamState> {
        self.bookmarks.get(stream)
    }

    /// Merges a newer state into this one: streams and partitions the newer state mentions
    /// take its values key by key; the rest is kept.
    pub fn merge(&mut self, newer: &State) {
        for (name, theirs) in &newer.bookmarks {
            self.stream_mut(name).merge(theirs);
        }
        if newer.currently_syncing.is_some() {
            self.currently_syncing = newer.currently_syncing.clone();
        }
        for (k, v) in &newer.extra {
            self.extra.insert(k.clone(), v.clone());
        }
    }

    /// Writes the state to `path` atomically.
    pub fn write_to_file(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec(&self.to_value()).unwrap_or_default();
        bytes.push(b'\n');
        write_atomic(path, &bytes)
    }
}

impl StreamState {
    /// The partition with exactly this context, if any.
    pub fn partition(&self, context: &Map<String, Value>) -> Option<&PartitionState> {
        self.partitions.iter().find(|p| &p.context == context)
    }

    /// The partition with this context, created if missing.
    pub fn partition_mut(&mut self, context: &Map<String, Value>) -> &mut PartitionState {
        let pos = match self.partitions.iter().position(|p| &p.context == context) {
            Some(pos) => pos,
            None => {
                self.partitions.push(PartitionState {
                    context: context.clone(),
                    ..PartitionState::default()
                });
                self.partitions.len() - 1
            }
        };
        &mut self.partitions[pos]
    }

    fn merge(&mut self, newer: &StreamState) {
        macro_rules! take {
            ($($f:ident),*) => {$( if newer.$f.is_some() { self.$f = newer.$f.clone(); } )*};
        }
        take!(
            replication_key,
            replication_key_value,
            starting_replication_value,
            progress_markers,
            resume_token
        );
        for p in &newer.partitions {
            let mine = self.partition_mut(&p.context);
            if p.replication_key.is_some() {
                mine.replication_key = p.replication_key.clone();
            }
            if p.replication_key_value.is_some() {
                mine.replication_key_value = p.replication_key_value.clone();
            }
            if p.progress_markers.is_some() {
                mine.progress_markers = p.progress_markers.clone();
            }
            for (k, v) in &p.extra {
                mine.extra.insert(k.clone(), v.clone());
            }
        }
        for (k, v) in &newer.extra {
            self.extra.insert(k.clone(), v.clone());
        }
    }
}

/// Writes `contents` to `path` so that readers see the old file or the new one, never a
/// mix: a temporary file in the same directory, fsync, rename over `path`, fsync the
/// directory.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let tmp = dir.join(format!(
        ".{name}.{}.{:08x}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| Error::io(path, e))
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn state(v: Value) -> State {
        State::from_value(v).expect("valid state")
    }

    #[test]
    fn sdk_layout_round_trips_with_unknown_keys() {
        let v = json!({
            "bookmarks": {
                "issues": {"replication_key": "updated", "replication_key_value": "2024-01-15T10:23:45Z",
                           "progress_markers": {"Note": "unsorted", "replication_key": "updated", "replication_key_value": "x"},
                           "custom": 1},
                "comments": {"partitions": [{"context": {"issue_id": "1"}, "replication_key_value": "a", "extra": true}]},
                "users": {"resume_token": {"start_at": 200}}
            },
            "currently_syncing": "issues",
            "signpost": "keep me"
        });
        let s = state(v.clone());
        assert_eq!(s.to_value(), v);
        assert_eq!(
            s.stream("comments")
                .and_then(|c| c.partition(json!({"issue_id": "1"}).as_object().expect("obj")))
                .and_then(|p| p.replication_key_value.clone()),
            Some(json!("a"))
        );
    }

    #[test]
    fn wrapped_and_empty_states() {
        assert_eq!(state(json!(null)), State::default());
        assert_eq!(state(json!({})), State::default());
        let s = state(
            json!({"type": "STATE", "value": {"bookmarks": {"a": {"replication_key_value": 1}}}}),
        );
        assert_eq!(
            s.stream("a").and_then(|a| a.replication_key_value.clone()),
            Some(json!(1))
        );
        assert!(State::from_value(json!([1])).is_err());
        assert!(State::from_value(json!({"bookmarks": 5})).is_err());
    }

    #[test]
    fn merge_keeps_unmentioned_streams_and_partitions() {
        let mut old = state(json!({"bookmarks": {
            "a": {"replication_key": "u", "replication_key_value": 1},
            "b": {"replication_key_value": 5},
            "c": {"partitions": [{"context": {"id": 1}, "replication_key_value": "x"},
                                 {"context": {"id": 2}, "replication_key_value": "y"}]}
        }, "currently_syncing": "a"}));
        let newer = state(json!({"bookmarks": {
            "a": {"replication_key_value": 2},
            "c": {"partitions": [{"context": {"id": 2}, "replication_key_value": "z"},
                                 {"context": {"id": 3}, "replication_key_value": "w"}]}
        }, "currently_syncing": "c"}));
        old.merge(&newer);
        assert_eq!(
            old.to_value(),
            json!({"bookmarks": {
                "a": {"replication_key": "u", "replication_key_value": 2},
                "b": {"replication_key_value": 5},
                "c": {"partitions": [{"context": {"id": 1}, "replication_key_value": "x"},
                                     {"context": {"id": 2}, "replication_key_value": "z"},
                                     {"context": {"id": 3}, "replication_key_value": "w"}]}
            }, "currently_syncing": "c"})
        );
    }

    #[test]
    fn atomic_write_replaces_whole_file_and_leaves_no_temp() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("state.json");
        std::fs::write(&path, "old").expect("seed");
        let s = state(json!({"bookmarks": {"a": {"replication_key_value": 1}}}));
        s.write_to_file(&path).expect("write");
        assert_eq!(State::from_file(&path).expect("read"), s);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn unreadable_state_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("s.json");
        std::fs::write(&path, "{oops").expect("seed");
        let e = State::from_file(&path).expect_err("bad json");
        assert!(e.to_string().contains("s.json"), "{e}");
        std::fs::write(&path, "").expect("seed");
        assert_eq!(State::from_file(&path).expect("empty ok"), State::default());
        assert!(State::from_file(&dir.path().join("missing.json")).is_err());
    }
}
