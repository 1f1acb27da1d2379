//! Streams: what a tap knows about each of its tables, and how to fetch a page of one.

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::error::Result;
use singer_core::message::Record;

/// Identifies one partition of a stream: for a child stream, values from its parent record
/// (such as `{"issue_id": "10001"}`).
pub type Context = Map<String, Value>;

/// The static description of a stream.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    /// The stream name (also its `tap_stream_id`).
    pub name: String,
    /// The JSON Schema of its records.
    pub schema: Value,
    /// The primary key.
    pub key_properties: Vec<String>,
    /// The property incremental syncs bookmark on; `None` for full-table-only streams.
    pub replication_key: Option<String>,
    /// Whether records arrive sorted by the replication key, so the bookmark can advance
    /// as they arrive.
    pub is_sorted: bool,
    /// The parent stream, for a child stream synced once per parent record.
    pub parent: Option<String>,
    /// The context keys that identify a partition in state (default: the whole context).
    /// Other keys can carry data from the parent record without growing the state.
    pub state_partitioning_keys: Option<Vec<String>>,
}

impl StreamInfo {
    /// A full-table stream without keys.
    pub fn new(name: impl Into<String>, schema: Value) -> Self {
        StreamInfo {
            name: name.into(),
            schema,
            key_properties: Vec::new(),
            replication_key: None,
            is_sorted: false,
            parent: None,
            state_partitioning_keys: None,
        }
    }

    /// Parses a schema embedded at build time (`include_str!`). A malformed schema is a
    /// programming error of the tap and is reported as an empty object schema with a log.
    pub fn from_json(name: impl Into<String>, schema: &str) -> Self {
        let name = name.into();
        let schema = serde_json::from_str(schema).unwrap_or_else(|e| {
            tracing::error!(stream = %name, "embedded schema is not valid JSON: {e}");
            serde_json::json!({"type": "object", "properties": {}})
        });
        Self::new(name, schema)
    }

    /// Sets the primary key.
    pub fn with_keys(mut self, keys: &[&str]) -> Self {
        self.key_properties = keys.iter().map(|k| k.to_string()).collect();
        self
    }

    /// Makes the stream incremental on `key`; `sorted` when the source returns records in
    /// ascending order of it.
    pub fn with_replication_key(mut self, key: &str, sorted: bool) -> Self {
        self.replication_key = Some(key.to_string());
        self.is_sorted = sorted;
        self
    }

    /// Keeps only these context keys in the stream's partition state.
    pub fn with_state_partitioning_keys(mut self, keys: &[&str]) -> Self {
        self.state_partitioning_keys = Some(keys.iter().map(|k| k.to_string()).collect());
        self
    }

    /// The partition of a context, as kept in state.
    pub fn state_partition(&self, context: &Context) -> Context {
        match &self.state_partitioning_keys {
            Some(keys) => context
                .iter()
                .filter(|(k, _)| keys.contains(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            None => context.clone(),
        }
    }

    /// Makes the stream a child of `parent`.
    pub fn with_parent(mut self, parent: &str) -> Self {
        self.parent = Some(parent.to_string());
        self
    }
}

/// What the runtime asks a stream for.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest<'a> {
    /// The partition, for a child stream.
    pub context: Option<&'a Context>,
    /// Where paging resumes; `None` for the first page.
    pub position: Option<&'a Value>,
    /// Incremental syncs: fetch records whose replication key is at least this (the bookmark
    /// or start date, minus the lookback window).
    pub since: Option<&'a Value>,
    /// An upper bound on the replication key (`end_date`), if configured.
    pub until: Option<&'a Value>,
}

/// One page of records and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The records, in the order the source returned them.
    pub records: Vec<Record>,
    /// The paginator position of the next page. It is checkpointed in state for full-table
    /// syncs, so an interrupted sync resumes there.
    pub next: Option<Value>,
}

/// A stream of a tap. Implement [`fetch_page`](Stream::fetch_page); the runtime does
/// bookmarks, state, versions, selection, sub-streams and retries of whole syncs.
/// [`crate::RestStream`] implements it for most REST endpoints.
#[async_trait]
pub trait Stream: Send + Sync {
    /// The stream's description.
    fn info(&self) -> &StreamInfo;

    /// Fetches one page.
    async fn fetch_page(&self, request: PageRequest<'_>) -> Result<Page>;

    /// The context of child streams for one of this stream's records; `None`: no children
    /// for this record.
    fn child_context(&self, record: &Record, context: Option<&Context>) -> Option<Context> {
        let _ = (record, context);
        None
    }

    /// Whether the source offers this stream at all, for APIs a site may lack (Jira's
    /// Agile API exists only with Jira Software). Discovery leaves out a stream that
    /// answers `false`, and its children; the default is `true`, without a request.
    async fn available(&self) -> Result<bool> {
        Ok(true)
    }

    /// The post-transform hook: change a record, or drop it (`None`), before it is written.
    fn post_process(&self, record: Record, context: Option<&Context>) -> Option<Record> {
        let _ = context;
        Some(record)
    }
}
