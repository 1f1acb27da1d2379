//! The destination side of a target: what DuckDB and Parquet implement.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ack::Stored;
use crate::error::Result;
use crate::stream_schema::StreamSchema;

/// How rows of a stream are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LoadMethod {
    /// Every record becomes a new row.
    AppendOnly,
    /// Records replace rows with the same key; new keys are inserted.
    Upsert,
    /// The run's rows replace the table, swapped in atomically at the end.
    Overwrite,
}

/// A stream as the destination sees it: its schema and how to load it.
#[derive(Debug, Clone)]
pub struct TargetStream {
    /// The compiled schema from the tap.
    pub schema: StreamSchema,
    /// The Arrow schema of the batches (data columns, then `_sdc_*` columns if enabled).
    pub arrow_schema: SchemaRef,
    /// How to load it.
    pub load_method: LoadMethod,
}

impl TargetStream {
    /// The stream name.
    pub fn name(&self) -> &str {
        self.schema.stream()
    }

    /// The primary key.
    pub fn key_properties(&self) -> &[String] {
        self.schema.key_properties()
    }
}

/// One change to a stream, in input order.
#[derive(Debug, Clone)]
pub enum Operation {
    /// The stream's schema changed (or was first seen): create or alter the destination.
    Schema(Arc<TargetStream>),
    /// Rows, in input order, under the latest schema.
    Rows(RecordBatch),
    /// A full-table version is complete: rows of older versions go.
    ActivateVersion(i64),
}

/// The changes of one stream in a commit.
#[derive(Debug, Clone)]
pub struct StreamChanges {
    /// The stream as it was at the first operation (later `Schema` operations change it).
    pub stream: Arc<TargetStream>,
    /// The operations, in input order.
    pub operations: Vec<Operation>,
    /// True the first time the stream is part of a commit in this run.
    pub first_in_run: bool,
}

/// What a commit acknowledges, stored with the data in the same atomic step: the
/// [ack ledger](crate::ack)'s record of which input is durable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CommitMarker {
    /// The last state the committed data covers (echoed after the commit).
    pub state: Option<Value>,
    /// The ledger's record: recent segments, provisional streams, completeness.
    #[serde(flatten)]
    pub ledger: Stored,
}

/// Everything to make durable in one atomic step.
#[derive(Debug, Clone)]
pub struct Commit {
    /// Per stream, the changes in input order.
    pub streams: Vec<StreamChanges>,
    /// What the commit acknowledges.
    pub marker: CommitMarker,
    /// Overwrite streams' staged loads replace the live tables in this commit: the last
    /// commit of an input that ended at a STATE (or that never had one).
    pub swap_overwrite: bool,
    /// First, remove the provisional rows the sink remembers for these streams (rows an
    /// earlier commit made durable before their covering STATE, which the input replays).
    pub retract: Vec<String>,
    /// This commit's rows of append-only streams are provisional: remember them per stream
    /// until a later commit settles or retracts them.
    pub provisional: bool,
    /// Last, forget the provisional rows of these streams: a STATE now covers them.
    pub settle: Vec<String>,
}

/// What a commit did to one stream, for the end-of-run summary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadStats {
    /// Rows added.
    pub inserted: u64,
    /// Rows replaced by key.
    pub updated: u64,
    /// Rows removed or marked deleted by a version switch.
    pub deleted: u64,
    /// Batches written.
    pub batches: u64,
}

impl LoadStats {
    /// Adds another commit's numbers.
    pub fn add(&mut self, other: &LoadStats) {
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.batches += other.batches;
    }
}

/// A destination. The target runtime does the reading, batching and acknowledging; a sink
/// only makes a [`Commit`] durable, all or nothing.
pub trait Sink {
    /// The marker of the last successful commit, read once at start.
    fn last_commit(&mut self) -> Result<Option<CommitMarker>>;

    /// Called for every new SCHEMA before any of its records is buffered: refuse a schema
    /// the destination cannot take (an incompatible type change, a name collision), so the
    /// error comes before any data written for it. A pending group survives a refusal; a
    /// sink that loses its group here (a failed query) must end [`Sink::pending`].
    fn check_schema(&mut self, stream: &TargetStream) -> Result<()> {
        let _ = stream;
        Ok(())
    }

    /// Applies the commit atomically: after it returns `Ok`, every change and the marker
    /// survive a crash; after an `Err` or a crash midway, none does. A sink may instead
    /// hold the commit in an open group with the ones before it ([`Sink::pending`]): the
    /// group then becomes durable as a whole, at a later commit or a [`Sink::flush`], and
    /// an `Err` from either means none of the group happened.
    fn commit(&mut self, commit: Commit) -> Result<Vec<(String, LoadStats)>>;

    /// Whether commits that returned `Ok` are held in a group that is not yet durable.
    /// The runtime releases their STATEs only once this is false again.
    fn pending(&self) -> bool {
        false
    }

    /// Makes a pending group durable (called when no commit has come for a second, and at
    /// the end).
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    /// Called once after the last commit.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
