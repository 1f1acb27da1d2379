//! Syncing streams: pages, bookmarks, versions, sub-streams, state.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::BoxFuture;
use indexmap::IndexMap;
use serde_json::Value;
use tracing::Instrument;

use super::stream::{Context, PageRequest, Stream};
use crate::batch::BatchConfig;
use crate::conform::RecordConformer;
use crate::error::{Error, Result};
use crate::output::Output;
use singer_core::Error as CoreError;
use singer_core::catalog::ReplicationMethod;
use singer_core::message::{
    ActivateVersionMessage, Message, RecordMessage, SchemaMessage, StateMessage,
};
use singer_core::state::{ProgressMarkers, State};
use singer_core::stream_map::MapSettings;
use singer_core::time::{format_datetime, parse_datetime};

/// How a tap syncs: bounds, state cadence, concurrency.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Incremental streams without a bookmark start here (RFC 3339).
    pub start_date: Option<String>,
    /// Incremental streams stop here (RFC 3339), if set.
    pub end_date: Option<String>,
    /// Re-read this far before the bookmark, for sources that commit late.
    pub lookback: chrono::Duration,
    /// Write STATE after this many records...
    pub state_every_records: u64,
    /// ...or this much time, whichever comes first (checked at page ends).
    pub state_every: Duration,
    /// Child partitions synced at once.
    pub max_concurrency: usize,
    /// Above this many partitions, a child stream's bookmarks are rolled up into one.
    pub max_partitions: usize,
    /// Assert that bookmarks only advance and sorted streams arrive sorted.
    pub verify: bool,
    /// Stream maps applied to what the tap writes.
    pub maps: MapSettings,
    /// Write records to BATCH files instead of RECORD messages.
    pub batch: Option<BatchConfig>,
    /// The tap's name, for batch file names.
    pub tap_name: String,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            start_date: None,
            end_date: None,
            lookback: chrono::Duration::zero(),
            state_every_records: 10_000,
            state_every: Duration::from_secs(30),
            max_concurrency: 4,
            max_partitions: 1_000,
            verify: false,
            maps: MapSettings::default(),
            batch: None,
            tap_name: "tap".into(),
        }
    }
}

/// The resolved plan for one stream: what the catalog selected and how to replicate it.
pub(super) struct Plan {
    pub stream: Arc<dyn Stream>,
    pub selected: bool,
    pub method: ReplicationMethod,
    pub schema: Value,
    pub key_properties: Vec<String>,
    pub conformer: RecordConformer,
    /// Whether this stream or a descendant is selected.
    pub wanted: bool,
}

impl Plan {
    fn name(&self) -> &str {
        &self.stream.info().name
    }

    fn replication_key(&self) -> Option<&str> {
        match self.method {
            ReplicationMethod::Incremental => self.stream.info().replication_key.as_deref(),
            _ => None,
        }
    }
}

/// Everything the sync of all streams shares.
pub(super) struct Shared {
    pub plans: IndexMap<String, Plan>,
    pub children: HashMap<String, Vec<String>>,
    pub settings: SyncSettings,
    pub test: bool,
    out: Mutex<Output>,
    state: Mutex<State>,
    emitted: Mutex<EmitTracker>,
    schemas_sent: Mutex<HashSet<String>>,
    pub counts: Mutex<IndexMap<String, u64>>,
    /// The sync's start: the cap (signpost) for bookmarks of unsorted date-time streams.
    signpost: DateTime<Utc>,
}

struct EmitTracker {
    last: Instant,
    records_since: u64,
    last_state: Option<Value>,
    /// Verify mode: every bookmark emitted so far, by stream and partition.
    bookmarks: HashMap<String, Value>,
}

impl Shared {
    pub fn new(
        plans: IndexMap<String, Plan>,
        settings: SyncSettings,
        state: State,
        test: bool,
        out: Output,
    ) -> Self {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for (name, plan) in &plans {
            if let Some(parent) = &plan.stream.info().parent {
                children
                    .entry(parent.clone())
                    .or_default()
                    .push(name.clone());
            }
        }
        let mut tracker = EmitTracker {
            last: Instant::now(),
            records_since: 0,
            last_state: None,
            bookmarks: HashMap::new(),
        };
        collect_bookmarks(&state, &mut tracker.bookmarks);
        Shared {
            plans,
            children,
            settings,
            test,
            out: Mutex::new(out),
            state: Mutex::new(state),
            emitted: Mutex::new(tracker),
            schemas_sent: Mutex::new(HashSet::new()),
            counts: Mutex::new(IndexMap::new()),
            signpost: Utc::now(),
        }
    }

    fn write(&self, message: Message) -> Result<()> {
        self.out
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(message)
    }

    pub fn state_snapshot(&self) -> State {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Writes the state now (unless it equals the last one written).
    pub fn emit_state(&self) -> Result<()> {
        let state = self.state_snapshot();
        let value = state.to_value();
        let mut tracker = self.emitted.lock().unwrap_or_else(|p| p.into_inner());
        tracker.last = Instant::now();
        tracker.records_since = 0;
        if tracker.last_state.as_ref() == Some(&value) {
            return Ok(());
        }
        if self.settings.verify {
            let mut now = HashMap::new();
            collect_bookmarks(&state, &mut now);
            for (key, value) in &now {
                if let Some(before) = tracker.bookmarks.get(key)
                    && compare_values(value, before) == Ordering::Less
                {
                    return Err(Error::Sync(format!(
                        "verify: bookmark of {key} went back from {before} to {value}"
                    )));
                }
            }
            tracker.bookmarks.extend(now);
        }
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        out.write(Message::State(StateMessage {
            value: value.clone(),
        }))
        .and_then(|()| out.flush())?;
        tracker.last_state = Some(value);
        Ok(())
    }

    /// Writes the state if enough records or time have passed since the last one.
    fn maybe_emit_state(&self, records: u64) -> Result<()> {
        let due = {
            let mut t = self.emitted.lock().unwrap_or_else(|p| p.into_inner());
            t.records_since += records;
            t.records_since >= self.settings.state_every_records
                || t.last.elapsed() >= self.settings.state_every
        };
        if due { self.emit_state() } else { Ok(()) }
    }

    pub fn flush(&self) -> Result<()> {
        self.out.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }

    fn send_schema(&self, plan: &Plan) -> Result<()> {
        let first = self
            .schemas_sent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(plan.name().to_string());
        if !first {
            return Ok(());
        }
        let key = plan.replication_key().map(|k| vec![k.to_string()]);
        self.write(Message::Schema(SchemaMessage {
            stream: plan.name().to_string(),
            schema: plan.schema.clone(),
            key_properties: plan.key_properties.clone(),
            bookmark_properties: key,
        }))
    }
}

fn collect_bookmarks(state: &State, into: &mut HashMap<String, Value>) {
    for (stream, s) in &state.bookmarks {
        if let Some(v) = &s.replication_key_value {
            into.insert(format!("stream '{stream}'"), v.clone());
        }
        for p in &s.partitions {
            if let Some(v) = &p.replication_key_value {
                into.insert(
                    format!(
                        "stream '{stream}' partition {}",
                        Value::Object(p.context.clone())
                    ),
                    v.clone(),
                );
            }
        }
    }
}

/// Orders replication key values: as instants when both are date-times, as numbers when
/// both are numbers, else as text.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Value::String(x), Value::String(y)) => match (parse_datetime(x), parse_datetime(y)) {
            (Ok(tx), Ok(ty)) => tx.cmp(&ty),
            _ => x.cmp(y),
        },
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        _ => a.to_string().cmp(&b.to_string()),
    }
}

fn max_value(a: Option<Value>, b: Option<Value>) -> Option<Value> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if compare_values(&y, &x) == Ordering::Greater {
            y
        } else {
            x
        }),
        (x, None) => x,
        (None, y) => y,
    }
}

/// Subtracts the lookback window from a date-time bookmark; other values stay.
fn with_lookback(value: Value, lookback: chrono::Duration) -> Value {
    if lookback.is_zero() {
        return value;
    }
    match value.as_str().map(parse_datetime) {
        Some(Ok(t)) => Value::String(format_datetime(&(t - lookback))),
        _ => value,
    }
}

/// Syncs one top-level stream (and its children), then rolls up child partitions.
pub(super) async fn sync_stream(shared: Arc<Shared>, name: String) -> Result<()> {
    shared.with_state(|s| s.currently_syncing = Some(name.clone()));
    let span = tracing::info_span!("stream", name = %name);
    let result = sync_partition(shared.clone(), name.clone(), None)
        .instrument(span)
        .await;
    if result.is_ok() {
        roll_up_children(&shared, &name);
    }
    shared.emit_state()?;
    result
}

/// The stream-level bookmark of a stream after its sync, used to bound child roll-ups.
fn roll_up_children(shared: &Shared, parent: &str) {
    let Some(children) = shared.children.get(parent) else {
        return;
    };
    let parent_bound = shared.with_state(|s| {
        s.stream(parent)
            .and_then(|p| p.replication_key_value.clone())
    });
    let bound = parent_bound.unwrap_or_else(|| Value::String(format_datetime(&shared.signpost)));
    for child in children {
        shared.with_state(|s| {
            let Some(cs) = s.bookmarks.get_mut(child) else { return };
            if cs.partitions.len() <= shared.settings.max_partitions {
                return;
            }
            let max = cs
                .partitions
                .iter()
                .filter_map(|p| p.replication_key_value.clone())
                .fold(None, |acc, v| max_value(acc, Some(v)));
            let rolled = match max {
                Some(m) if compare_values(&m, &bound) == Ordering::Greater => bound.clone(),
                Some(m) => m,
                None => return,
            };
            tracing::info!(stream = %child, partitions = cs.partitions.len(), bookmark = %rolled, "rolling up partition bookmarks");
            cs.replication_key = cs.partitions.iter().find_map(|p| p.replication_key.clone());
            cs.replication_key_value = max_value(cs.replication_key_value.take(), Some(rolled));
            cs.partitions.clear();
        });
        roll_up_children(shared, child);
    }
}

/// Syncs one stream for one context (`None`: the whole stream).
pub(super) fn sync_partition(
    shared: Arc<Shared>,
    name: String,
    context: Option<Context>,
) -> BoxFuture<'static, Result<()>> {
    Box::pin(async move {
        let Some(plan) = shared.plans.get(&name) else {
            return Err(Error::Sync(format!("unknown stream '{name}'")));
        };
        if !plan.wanted {
            return Ok(());
        }
        let stream = plan.stream.clone();
        let info = stream.info();
        let ctx = context.as_ref();
        let partition = ctx.map(|c| info.state_partition(c));
        let part = partition.as_ref();
        if plan.selected {
            shared.send_schema(plan)?;
        }
        let key = plan.replication_key().map(str::to_string);
        let top_full_table = key.is_none() && ctx.is_none();

        // Where to start.
        let (since, mut position, version) = shared.with_state(|s| {
            let ss = s.stream_mut(&name);
            let bookmark = match part {
                Some(c) => ss
                    .partition(c)
                    .and_then(|p| p.replication_key_value.clone())
                    .or_else(|| ss.replication_key_value.clone()),
                None => ss.replication_key_value.clone(),
            };
            let since = key.as_ref().and_then(|_| {
                bookmark
                    .map(|b| with_lookback(b, shared.settings.lookback))
                    .or_else(|| shared.settings.start_date.clone().map(Value::String))
            });
            if let (Some(k), None) = (&key, part) {
                ss.replication_key = Some(k.clone());
            }
            if !top_full_table {
                return (since, None, None);
            }
            let resume = ss.resume_token.clone();
            let stored = ss.extra.get("version").and_then(Value::as_i64);
            let version = match (&resume, stored) {
                (Some(_), Some(v)) => v,
                _ => Utc::now().timestamp_millis(),
            };
            let first_sync = ss.extra.is_empty()
                && ss.resume_token.is_none()
                && ss.replication_key_value.is_none();
            ss.extra.insert("version".into(), Value::from(version));
            (since, resume, Some((version, first_sync)))
        });
        if let Some((v, true)) = version
            && plan.selected
        {
            shared.write(Message::ActivateVersion(ActivateVersionMessage {
                stream: name.clone(),
                version: v,
            }))?;
        }
        if position.is_some() {
            tracing::info!(stream = %name, position = %position.clone().unwrap_or_default(), "resuming an interrupted full-table sync");
        }
        let until = shared.settings.end_date.clone().map(Value::String);
        let sorted = info.is_sorted;
        let mut last_value: Option<Value> = None;
        let mut progress: Option<Value> = None;
        let children = shared.children.get(&name).cloned().unwrap_or_default();
        let wanted_children: Vec<String> = children
            .into_iter()
            .filter(|c| shared.plans.get(c).is_some_and(|p| p.wanted))
            .collect();
        let mut count = 0u64;
        loop {
            let request = PageRequest {
                context: ctx,
                position: position.as_ref(),
                since: since.as_ref(),
                until: until.as_ref(),
            };
            let page = stream.fetch_page(request).await?;
            let mut child_contexts = Vec::new();
            let mut page_records = 0u64;
            for record in page.records {
                let Some(mut record) = stream.post_process(record, ctx) else {
                    continue;
                };
                // Sources that cannot filter server-side return older rows: skip them.
                if let (Some(k), Some(since)) = (&key, &since)
                    && let Some(v) = record.get(k).filter(|v| !v.is_null())
                    && compare_values(v, since) == Ordering::Less
                {
                    continue;
                }
                if !wanted_children.is_empty()
                    && let Some(cc) = stream.child_context(&record, ctx)
                {
                    child_contexts.push(cc);
                }
                plan.conformer.conform(&mut record);
                if let Some(k) = &key {
                    let value = record.get(k).cloned().filter(|v| !v.is_null());
                    if sorted
                        && let (Some(v), Some(prev)) = (&value, &last_value)
                        && compare_values(v, prev) == Ordering::Less
                    {
                        let message = format!(
                            "stream '{name}' is declared sorted by '{k}' but {v} arrived after {prev}"
                        );
                        if shared.settings.verify {
                            return Err(Error::Sync(format!("verify: {message}")));
                        }
                        tracing::warn!("{message}");
                    }
                    if value.is_some() {
                        last_value = max_value(last_value.take(), value.clone());
                        progress = max_value(progress.take(), value);
                    }
                }
                if plan.selected {
                    shared.write(Message::Record(RecordMessage {
                        stream: name.clone(),
                        record,
                        version: version.map(|(v, _)| v),
                        time_extracted: Some(Utc::now()),
                    }))?;
                    page_records += 1;
                }
            }
            // Children of this page's records finish before the parent's bookmark passes
            // them, so a crash never skips a child.
            if !child_contexts.is_empty() && !shared.test {
                run_children(&shared, &wanted_children, child_contexts).await?;
            }
            count += page_records;
            shared.with_state(|s| {
                let ss = s.stream_mut(&name);
                if key.is_some() {
                    // Partitions appear in state once they have a bookmark.
                    if progress.is_none() {
                        return;
                    }
                    let target = match part {
                        Some(c) => {
                            let p = ss.partition_mut(c);
                            p.replication_key = key.clone();
                            (&mut p.replication_key_value, &mut p.progress_markers)
                        }
                        None => (&mut ss.replication_key_value, &mut ss.progress_markers),
                    };
                    if sorted {
                        *target.0 = max_value(target.0.take(), progress.clone());
                    } else if progress.is_some() {
                        *target.1 = Some(ProgressMarkers {
                            note: Some("Progress is not resumable if interrupted.".into()),
                            replication_key: key.clone(),
                            replication_key_value: progress.clone(),
                        });
                    }
                } else if top_full_table {
                    ss.resume_token = page.next.clone().filter(|n| !is_empty(n));
                }
            });
            shared.maybe_emit_state(page_records)?;
            if shared.test {
                break;
            }
            match page.next {
                Some(next) if !is_empty(&next) => position = Some(next),
                _ => break,
            }
        }
        // The stream (or partition) is complete.
        let signpost = Value::String(format_datetime(&shared.signpost));
        shared.with_state(|s| {
            let ss = s.stream_mut(&name);
            if key.is_some() && !sorted {
                let capped = progress.clone().map(|p| {
                    let is_time = p.as_str().is_some_and(|x| parse_datetime(x).is_ok());
                    if is_time && compare_values(&p, &signpost) == Ordering::Greater {
                        signpost.clone()
                    } else {
                        p
                    }
                });
                let target = match part {
                    Some(_) if capped.is_none() => return,
                    Some(c) => {
                        let p = ss.partition_mut(c);
                        p.replication_key = key.clone();
                        p.progress_markers = None;
                        &mut p.replication_key_value
                    }
                    None => {
                        ss.progress_markers = None;
                        &mut ss.replication_key_value
                    }
                };
                *target = max_value(target.take(), capped);
            }
            if top_full_table && !shared.test {
                ss.resume_token = None;
                ss.extra.remove("version");
                ss.extra.insert(
                    "last_version".into(),
                    Value::from(version.map_or(0, |(v, _)| v)),
                );
            }
        });
        if let Some((v, _)) = version
            && plan.selected
            && !shared.test
        {
            shared.write(Message::ActivateVersion(ActivateVersionMessage {
                stream: name.clone(),
                version: v,
            }))?;
        }
        {
            let mut counts = shared.counts.lock().unwrap_or_else(|p| p.into_inner());
            *counts.entry(name.clone()).or_default() += count;
        }
        if ctx.is_none() {
            singer_core::log::metric_counter("record_count", count, &[("stream", name.as_str())]);
        }
        shared.maybe_emit_state(0)
    })
}

async fn run_children(
    shared: &Arc<Shared>,
    children: &[String],
    contexts: Vec<Context>,
) -> Result<()> {
    let mut jobs: Vec<BoxFuture<'static, Result<()>>> = Vec::new();
    for ctx in contexts {
        for child in children {
            let (shared, child, ctx) = (shared.clone(), child.clone(), ctx.clone());
            jobs.push(Box::pin(async move {
                sync_partition(shared, child.clone(), Some(ctx))
                    .await
                    .map_err(|e| match e {
                        e @ Error::Core(CoreError::Stream { .. }) => e,
                        other => Error::Sync(format!("child stream '{child}': {other}")),
                    })
            }));
        }
    }
    let mut results =
        futures::stream::iter(jobs).buffer_unordered(shared.settings.max_concurrency.max(1));
    let mut first_error = None;
    while let Some(r) = results.next().await {
        if let Err(e) = r {
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// An empty checkpoint (null, "", {}, []) ends paging.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn value_ordering() {
        assert_eq!(
            compare_values(
                &json!("2024-01-15T10:00:00+0000"),
                &json!("2024-01-15T11:00:00+02:00")
            ),
            Ordering::Greater
        );
        assert_eq!(compare_values(&json!(2), &json!(10)), Ordering::Less);
        assert_eq!(compare_values(&json!("b"), &json!("a")), Ordering::Greater);
        assert_eq!(max_value(Some(json!(1)), Some(json!(3))), Some(json!(3)));
        assert_eq!(max_value(None, Some(json!(3))), Some(json!(3)));
    }

    #[test]
    fn lookback_only_moves_date_times() {
        let d = chrono::Duration::minutes(10);
        assert_eq!(
            with_lookback(json!("2024-01-15T10:00:00Z"), d),
            json!("2024-01-15T09:50:00Z")
        );
        assert_eq!(with_lookback(json!(5), d), json!(5));
    }
}
