//! # singer-tap
//!
//! The tap SDK: a tap is a list of [`Stream`]s (most of them [`RestStream`]s) and
//! [`TapSettings`], run by [`Tap`] from [`main`]. The runtime, in the Meltano SDK's
//! vocabulary and semantics, does the rest:
//!
//! * **Discovery** ([`Tap::discover`]): a catalog with full metadata (`inclusion`
//!   automatic for keys and replication keys, `selected-by-default`,
//!   `valid-replication-keys`, `forced-replication-method`, `table-key-properties`).
//! * **Selection**: unselected streams are skipped (unless a selected child needs their
//!   records as contexts), unselected properties pruned from SCHEMA and RECORDs, and records
//!   conformed to the schema ([`conform`]: undeclared properties dropped, date-times
//!   normalised to RFC 3339 UTC).
//! * **INCREMENTAL**: start from the stream's (or partition's) bookmark, else `start_date`,
//!   minus the lookback window. Sorted streams advance the bookmark page by page; unsorted
//!   ones keep `progress_markers` and set the bookmark only when the stream finishes,
//!   capped at the sync's start time, so a crash never skips rows.
//! * **FULL_TABLE**: records carry a version; ACTIVATE_VERSION is sent at the start of a
//!   first sync and at the end of every sync. The paginator's position is checkpointed in
//!   state as `resume_token`, so a rerun after a crash continues from it; a clean finish
//!   clears it.
//! * **Sub-streams**: a child stream is synced once per parent record, with the context the
//!   parent builds ([`Stream::child_context`]), up to `max_concurrency` at once. Children of
//!   a page finish before the parent's bookmark passes it. Child bookmarks are kept per
//!   partition and, past `max_partitions`, rolled up into one bookmark bounded by the
//!   parent's synced window.
//! * **State** every `state_every_records` records or `state_every` time and at the end of
//!   each stream; `currently_syncing` names the running stream and a rerun starts with it.
//! * **Failures**: every selected stream runs even when one fails; the run then ends with one
//!   `CRITICAL <stream>: <error>` line per failed stream and a non-zero exit.
//! * **Verify mode** (`--verify`): bookmarks must only advance and sorted streams must
//!   arrive sorted; a violation fails the stream with a clear message.
//!
//! | module | job |
//! |---|---|
//! | [`stream`] | [`Stream`], [`StreamInfo`], pages and contexts |
//! | [`rest`] | [`RestStream`]: a stream of one REST endpoint |
//! | [`client`] | [`RestClient`]: HTTP with retries, `Retry-After`, metrics |
//! | [`paginate`] | [`Paginator`] and the stock page-number, offset, token and Link-header ones |
//! | [`auth`] | [`Authenticator`]s |
//! | [`retry`] | what is worth retrying, and how long to wait |
//! | [`conform`] | records conformed to their selected schema |
//! | [`settings`] | [`TapSettings`], shared by every tap's config |
//! | [`batch`] | BATCH files written instead of RECORDs (`batch_config`) |
//! | [`cli`] | [`main`]: the tap's command line |
//!
//! `examples/tap-rest-example` is a whole tap in one page, and its README the tutorial.

#![deny(missing_docs)]

pub mod auth;
pub mod batch;
pub mod cli;
pub mod client;
pub mod conform;
mod error;
mod output;
pub mod paginate;
pub mod rest;
pub mod retry;
pub mod settings;
pub mod stream;
mod sync;

use std::io::Write;
use std::sync::Arc;

use indexmap::IndexMap;
use serde_json::{Map, Value};

pub use async_trait::async_trait;
pub use auth::Authenticator;
pub use cli::main;
pub use client::{HttpSettings, Response, RestClient, redact};
pub use error::{Error, Result};
pub use paginate::{
    LinkHeaderPaginator, OffsetPaginator, PageNumberPaginator, Paginator, RequestSpec, SinglePage,
    TokenPaginator,
};
pub use rest::{RestStream, RestStreamBuilder, extract_records};
pub use retry::{RetryPolicy, is_retriable_status, retry_after};
pub use settings::TapSettings;
pub use stream::{Context, Page, PageRequest, Stream, StreamInfo};
pub use sync::{SyncSettings, compare_values};

use batch::Batcher;
use conform::RecordConformer;
use output::Output;
use singer_core::Error as CoreError;
use singer_core::catalog::{
    Catalog, CatalogEntry, Inclusion, Metadata, MetadataEntry, ReplicationMethod,
};
use singer_core::state::State;
use singer_core::stream_map::StreamMaps;
use sync::{Plan, Shared};

/// A tap: its streams and how to sync them.
pub struct Tap {
    /// The streams, parents before their children.
    pub streams: Vec<Arc<dyn Stream>>,
    /// Sync settings.
    pub settings: SyncSettings,
    /// Writes Parquet batch files when `batch_config` asks for them (the target SDK's
    /// `singer_target::batch::ParquetBatchFiles`); without it, taps write JSON lines only.
    pub parquet_batches: Option<Arc<dyn singer_core::batch::BatchFileFormat>>,
}

/// What a sync did.
#[derive(Debug, Default)]
pub struct SyncReport {
    /// Records written per stream.
    pub records: IndexMap<String, u64>,
    /// Streams that failed, with their errors.
    pub failures: Vec<(String, Error)>,
    /// The final state.
    pub state: State,
}

impl std::fmt::Debug for Tap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tap")
            .field(
                "streams",
                &self
                    .streams
                    .iter()
                    .map(|s| s.info().name.clone())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Tap {
    /// The catalog of every stream, everything selected by default.
    pub fn discover(&self) -> Catalog {
        Catalog {
            streams: self
                .streams
                .iter()
                .map(|s| catalog_entry(s.as_ref()))
                .collect(),
        }
    }

    /// The catalog of the streams the source offers: [`discover`](Self::discover) without
    /// the streams whose [`Stream::available`] says no, nor their children. A probe that
    /// fails (the network, the credentials) keeps its stream, with a warning: discovery
    /// describes the tap, and the sync will say what is wrong.
    pub async fn discover_available(&self) -> Catalog {
        let mut missing: Vec<String> = Vec::new();
        for stream in &self.streams {
            let info = stream.info();
            if info.parent.as_ref().is_some_and(|p| missing.contains(p)) {
                missing.push(info.name.clone());
                continue;
            }
            match stream.available().await {
                Ok(true) => {}
                Ok(false) => missing.push(info.name.clone()),
                Err(e) => {
                    tracing::warn!(stream = %info.name, "cannot tell whether the source offers this stream; listing it: {e}")
                }
            }
        }
        let mut catalog = self.discover();
        catalog.streams.retain(|s| !missing.contains(&s.stream));
        catalog
    }

    /// Syncs the selected streams, writing messages to `out`. `catalog: None` selects every
    /// stream. `test` syncs one page of each top-level stream.
    pub async fn sync(
        &self,
        catalog: Option<&Catalog>,
        state: State,
        test: bool,
        out: Box<dyn Write + Send>,
    ) -> Result<SyncReport> {
        let discovered = self.discover();
        let catalog = catalog.unwrap_or(&discovered);
        let plans = self.plans(catalog)?;
        let maps = StreamMaps::new(&self.settings.maps).map_err(Error::Map)?;
        let batches = match &self.settings.batch {
            Some(config) => Some(Batcher::new(
                config,
                &self.settings.tap_name,
                self.parquet_batches.clone(),
            )?),
            None => None,
        };
        let out = Output::new(out, maps, batches);
        let resume_with = state.currently_syncing.clone();
        let mut state = state;
        // Progress markers of an interrupted run are not resumable: drop them.
        for s in state.bookmarks.values_mut() {
            s.progress_markers = None;
            for p in &mut s.partitions {
                p.progress_markers = None;
            }
        }
        let shared = Arc::new(Shared::new(plans, self.settings.clone(), state, test, out));
        let mut order: Vec<String> = shared
            .plans
            .iter()
            .filter(|(_, p)| p.wanted && p.stream.info().parent.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        if let Some(first) = resume_with
            && let Some(pos) = order.iter().position(|n| *n == first)
        {
            tracing::info!(stream = %first, "resuming with the stream that was syncing when the last run stopped");
            let s = order.remove(pos);
            order.insert(0, s);
        }
        let mut failures = Vec::new();
        for name in order {
            tracing::info!(stream = %name, "sync started");
            if let Err(e) = sync::sync_stream(shared.clone(), name.clone()).await {
                if e.is_fatal() {
                    return Err(e);
                }
                tracing::error!(stream = %name, "sync failed: {e}");
                failures.push((name, e));
            }
        }
        shared.with_state(|s| s.currently_syncing = None);
        shared.emit_state()?;
        shared.flush()?;
        let records = shared.counts.lock().map(|c| c.clone()).unwrap_or_default();
        for (stream, n) in &records {
            tracing::info!(stream = %stream, records = n, "sync summary");
        }
        Ok(SyncReport {
            records,
            failures,
            state: shared.state_snapshot(),
        })
    }

    fn plans(&self, catalog: &Catalog) -> Result<IndexMap<String, Plan>> {
        let mut plans = IndexMap::new();
        for stream in &self.streams {
            let info = stream.info();
            let entry = catalog.get(&info.name);
            let (selected, mask) = match entry {
                Some(e) => (e.is_selected(), Some(e.selection_mask())),
                None => (false, None),
            };
            let mut schema = info.schema.clone();
            if let Some(m) = &mask {
                m.prune_schema(&mut schema);
            }
            let method = entry.and_then(CatalogEntry::replication_method).unwrap_or(
                if info.replication_key.is_some() {
                    ReplicationMethod::Incremental
                } else {
                    ReplicationMethod::FullTable
                },
            );
            let method = match method {
                ReplicationMethod::Incremental if info.replication_key.is_none() => {
                    tracing::warn!(stream = %info.name, "INCREMENTAL requested but the stream has no replication key; using FULL_TABLE");
                    ReplicationMethod::FullTable
                }
                ReplicationMethod::LogBased => {
                    return Err(CoreError::Catalog(format!(
                        "stream '{}': LOG_BASED replication is not supported",
                        info.name
                    ))
                    .into());
                }
                m => m,
            };
            let conformer = RecordConformer::new(&schema).map_err(|reason| CoreError::Schema {
                stream: info.name.clone(),
                reason,
            })?;
            plans.insert(
                info.name.clone(),
                Plan {
                    stream: stream.clone(),
                    selected,
                    method,
                    schema,
                    key_properties: info.key_properties.clone(),
                    conformer,
                    wanted: selected,
                },
            );
        }
        // A stream is wanted if it or a descendant is selected.
        let names: Vec<String> = plans.keys().cloned().collect();
        for name in names.iter().rev() {
            let wanted = plans.get(name).is_some_and(|p| p.wanted);
            let parent = plans.get(name).and_then(|p| p.stream.info().parent.clone());
            if wanted && let Some(parent) = parent {
                match plans.get_mut(&parent) {
                    Some(pp) => pp.wanted = true,
                    None => {
                        return Err(Error::Sync(format!(
                            "stream '{name}' names unknown parent '{parent}'"
                        )));
                    }
                }
            }
        }
        Ok(plans)
    }
}

fn catalog_entry(stream: &dyn Stream) -> CatalogEntry {
    let info = stream.info();
    let key = info.replication_key.clone();
    let mut metadata = vec![MetadataEntry {
        breadcrumb: vec![],
        metadata: Metadata {
            inclusion: Some(Inclusion::Available),
            selected_by_default: Some(true),
            table_key_properties: Some(info.key_properties.clone()),
            valid_replication_keys: key.clone().map(|k| vec![k]),
            forced_replication_method: key.is_none().then_some(ReplicationMethod::FullTable),
            replication_method: Some(if key.is_some() {
                ReplicationMethod::Incremental
            } else {
                ReplicationMethod::FullTable
            }),
            replication_key: key.clone(),
            ..Metadata::default()
        },
    }];
    if let Some(props) = info.schema.get("properties").and_then(Value::as_object) {
        for name in props.keys() {
            let automatic = info.key_properties.contains(name) || key.as_ref() == Some(name);
            metadata.push(MetadataEntry {
                breadcrumb: vec!["properties".into(), name.clone()],
                metadata: Metadata {
                    inclusion: Some(if automatic {
                        Inclusion::Automatic
                    } else {
                        Inclusion::Available
                    }),
                    selected_by_default: Some(true),
                    ..Metadata::default()
                },
            });
        }
    }
    CatalogEntry {
        tap_stream_id: info.name.clone(),
        stream: info.name.clone(),
        schema: info.schema.clone(),
        key_properties: info.key_properties.clone(),
        replication_key: key,
        replication_method: None,
        metadata,
        extra: Map::new(),
    }
}
