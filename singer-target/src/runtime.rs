//! The target runtime: read Singer messages, batch records into Arrow, commit, acknowledge.
//!
//! A target binary is a [`Sink`] (how to make a batch durable) plus [`run`]. The runtime
//! owns everything the Singer protocol asks of a target, so every destination gets it right
//! the same way:
//!
//! * **Batching, in parallel.** A reader thread cuts the input into jobs of lines
//!   (`reader`); worker threads, one per core, decode each RECORD's JSON straight into
//!   Arrow builders per stream ([`crate::RecordDecoder`], `workers`); this thread takes
//!   their batches in input order and buffers them into commits, which the sink writes on
//!   a thread of its own (`committer`), so the next commit's rows are decoded while one is
//!   written. SCHEMA messages are barriers: records after one are decoded under it.
//! * **State only after commit.** A STATE read from the input is written to stdout only once
//!   every record before it is durable. A commit covers the input up to the last STATE seen;
//!   records after it stay buffered for the next commit. Commits happen when the covered
//!   rows reach `batch_size_rows`, when buffered input reaches `batch_size_bytes`, when a
//!   STATE has waited `batch_wait_limit_seconds`, and at end of input. Only when a tap sends
//!   no STATE for longer than the byte budget does a commit go past the last STATE (bounded
//!   memory wins, with a warning). A sink may hold consecutive commits in one group
//!   ([`Sink::pending`]: target-duckdb's open transaction); their STATEs wait, in order,
//!   until the group is durable.
//! * **Exactly once across a crash.** Each commit stores the [ack ledger](crate::ack)'s
//!   record with the data: the recent segments (records between two STATEs) identified by
//!   their STATE value and a canonical hash of their records, and which rows are still
//!   provisional. A restarted target drops segments the resumed tap replays, echoes the last
//!   committed state, and takes back provisional rows of an interrupted run when their
//!   stream comes again. The policy lives in [`crate::ack`]; this module only follows it.
//! * **Bad input** stops the run with an error naming the line, stream and field. Data
//!   covered by the last STATE before the bad line is committed and acknowledged first;
//!   nothing after it is.
//!
//! ```no_run
//! # use singer_target::*;
//! # struct MySink;
//! # impl Sink for MySink {
//! #     fn last_commit(&mut self) -> singer_target::Result<Option<CommitMarker>> { Ok(None) }
//! #     fn commit(&mut self, _: Commit) -> singer_target::Result<Vec<(String, LoadStats)>> { Ok(vec![]) }
//! # }
//! let summary = run(MySink, &TargetSettings::default(), std::io::stdin(), std::io::stdout())?;
//! # Ok::<(), singer_target::Error>(())
//! ```

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel, sync_channel};
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use chrono::Utc;
use indexmap::IndexMap;
use serde_json::Value;

use singer_core::Error as CoreError;
use singer_core::message::{BatchMessage, Message, Record};
use singer_core::stream_map::StreamMaps;

use crate::ack::{CommitKind, CommitPlan, Ledger, Notice, StateVerdict};
use crate::batch::{self, Rows};
use crate::buffer::StreamBuffer;
use crate::committer::{Committer, Outcome};
use crate::decoder::{RecordDecoder, RowMeta};
use crate::error::{Error, Result};
use crate::metadata;
use crate::reader::{self, CompiledSchema, Outlets, ReaderOptions};
use crate::settings::TargetSettings;
use crate::sink::{
    Commit, CommitMarker, LoadMethod, LoadStats, Operation, Sink, StreamChanges, TargetStream,
};
use crate::stream_schema::StreamSchema;
use crate::workers::{self, Item, Output, Segment};

/// How often the runtime looks for the sink's reports while it holds a group.
const STAGED_POLL: Duration = Duration::from_millis(50);

/// What a run did, per stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Per stream, in order of first appearance.
    pub streams: IndexMap<String, LoadStats>,
    /// Records read (including replayed ones that were skipped).
    pub records_read: u64,
    /// Records dropped because the input replayed an already committed range.
    pub records_skipped: u64,
    /// Commits made.
    pub commits: u64,
    /// STATE messages written.
    pub states_emitted: u64,
}

/// Set by a SIGTERM/SIGINT handler: the runtime commits what the last STATE covers,
/// acknowledges it, and stops.
pub static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs SIGTERM/SIGINT handlers that set [`STOP_REQUESTED`].
pub fn install_stop_handler() {
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        let flag = Arc::new(AtomicBool::new(false));
        if signal_hook::flag::register(signal, flag.clone()).is_ok() {
            std::thread::spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                STOP_REQUESTED.store(true, Ordering::SeqCst);
            });
        }
    }
}

/// Runs a target: reads `input` to the end, loads through `sink`, writes acknowledged
/// states to `output`.
pub fn run<S: Sink + Send>(
    mut sink: S,
    settings: &TargetSettings,
    input: impl Read + Send + 'static,
    output: impl Write,
) -> Result<RunSummary> {
    let maps = StreamMaps::new(&settings.maps)?;
    let marker = sink.last_commit()?;
    std::thread::scope(|scope| {
        let committer = Committer::spawn(scope, sink)?;
        let mut runtime = Runtime::new(committer, marker, settings.clone(), output);
        let pipeline = start_pipeline(input, settings, maps);
        let result = runtime.drive(&pipeline);
        drop(pipeline);
        runtime.finish(result)
    })
}

/// The threads before the runtime: the [reader](crate::reader) cuts the input into
/// numbered jobs and SCHEMAs, [workers](crate::workers) decode the jobs; results come back
/// on `results`, possibly out of order.
struct Pipeline {
    results: Receiver<(u64, Output)>,
    /// One message per number the reader took; received once that number is processed.
    slots: Receiver<()>,
}

fn start_pipeline(
    input: impl Read + Send + 'static,
    settings: &TargetSettings,
    maps: Option<StreamMaps>,
) -> Pipeline {
    let (results_tx, results) = channel();
    let (jobs_tx, jobs) = channel();
    let (slots_tx, slots) = sync_channel(reader::IN_FLIGHT);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    workers::spawn(
        workers,
        settings.add_record_metadata,
        jobs,
        results_tx.clone(),
    );
    let options = ReaderOptions {
        maps,
        ..ReaderOptions::new(settings.schema_options(), settings.batch_size_bytes)
    };
    let spawned = std::thread::Builder::new()
        .name("singer-reader".into())
        .spawn(move || {
            reader::read(
                input,
                options,
                Outlets {
                    jobs: jobs_tx,
                    results: results_tx,
                    slots: slots_tx,
                },
            )
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the reader thread: {e}");
    }
    Pipeline { results, slots }
}

struct Runtime<'scope, W> {
    /// The sink, on its own thread.
    sink: Committer<'scope>,
    /// The STATE to release once the commit in flight is durable.
    awaiting: Option<Value>,
    /// STATEs of commits the sink holds in a group that is not durable yet, in order.
    unreleased: Vec<Value>,
    /// The sink holds returned commits in a group that is not durable yet.
    staged: bool,
    settings: TargetSettings,
    output: W,
    streams: IndexMap<String, StreamBuffer>,
    /// Streams that have been part of a commit in this run.
    committed_streams: HashMap<String, ()>,
    /// The last STATE read, not yet acknowledged.
    pending_state: Option<Value>,
    /// When `pending_state` first became non-empty since the last commit.
    pending_since: Option<Instant>,
    last_emitted: Option<Value>,
    buffered_rows: usize,
    buffered_bytes: usize,
    covered_rows: usize,
    covered_bytes: usize,
    /// The exactly-once policy.
    ledger: Ledger,
    /// The last state committed data covers (stored with commits that cover no new one).
    committed_state: Option<Value>,
    sequence: i64,
    summary: RunSummary,
    progress: Progress,
    warned_forced: bool,
}

struct Progress {
    last_log: Instant,
    started: Instant,
    read_since: HashMap<String, u64>,
}

impl<'scope, W: Write> Runtime<'scope, W> {
    fn new(
        sink: Committer<'scope>,
        marker: Option<CommitMarker>,
        settings: TargetSettings,
        output: W,
    ) -> Self {
        let (state, stored) = marker.map(|m| (m.state, m.ledger)).unzip();
        let ledger = Ledger::new(stored);
        let now = Utc::now();
        Runtime {
            sink,
            awaiting: None,
            unreleased: Vec::new(),
            staged: false,
            settings,
            output,
            streams: IndexMap::new(),
            committed_streams: HashMap::new(),
            pending_state: None,
            pending_since: None,
            last_emitted: None,
            buffered_rows: 0,
            buffered_bytes: 0,
            covered_rows: 0,
            covered_bytes: 0,
            ledger,
            committed_state: state.flatten(),
            // Nanoseconds since the epoch at start, then +1 per record: increases within a
            // run and across runs.
            sequence: now.timestamp_nanos_opt().unwrap_or(now.timestamp_micros()),
            summary: RunSummary::default(),
            progress: Progress {
                last_log: Instant::now(),
                started: Instant::now(),
                read_since: HashMap::new(),
            },
            warned_forced: false,
        }
    }

    fn drive(&mut self, pipeline: &Pipeline) -> Result<()> {
        let tick = Duration::from_secs_f64(self.settings.batch_wait_limit_seconds.clamp(0.05, 1.0));
        let mut next = 0u64;
        let mut early: BTreeMap<u64, Output> = BTreeMap::new();
        loop {
            if STOP_REQUESTED.load(Ordering::Relaxed) {
                tracing::warn!("stop requested: committing what the last STATE covers");
                self.commit_covered()?;
                return Err(Error::Stopped);
            }
            // While the sink holds a group, its report that the group is durable (after
            // the input went quiet) is looked for often, so its STATEs go out soon.
            let wait = if self.staged {
                tick.min(STAGED_POLL)
            } else {
                tick
            };
            match pipeline.results.recv_timeout(wait) {
                Ok((seq, output)) => {
                    early.insert(seq, output);
                    while let Some(output) = early.remove(&next) {
                        next += 1;
                        for item in output.items {
                            self.handle(item)?;
                        }
                        if let Some(e) = output.error {
                            return Err(e);
                        }
                        if output.end {
                            return Ok(());
                        }
                        let _ = pipeline.slots.try_recv();
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Only a thread that died (a bug) closes the results before the end.
                    return Err(Error::Destination(
                        "the input threads stopped before the end of input".into(),
                    ));
                }
            }
            self.collect(false)?;
            self.time_triggers()?;
        }
    }

    /// Ends the run: on success commits everything; on error commits what the last STATE
    /// covers, then returns the error.
    fn finish(mut self, result: Result<()>) -> Result<RunSummary> {
        match result {
            Ok(()) => {
                self.end_of_input()?;
                // Durable data is acknowledged even if closing fails.
                self.flush()?;
                self.sink.close()?;
                self.log_summary();
                Ok(self.summary)
            }
            Err(e) => {
                if let Err(commit_error) = self.commit_covered().and_then(|()| self.flush()) {
                    tracing::error!(
                        "could not commit data covered by the last STATE: {commit_error}"
                    );
                }
                self.log_summary();
                Err(e)
            }
        }
    }

    fn handle(&mut self, item: Item) -> Result<()> {
        match item {
            Item::Schema(s) => self.on_schema(s),
            Item::Records(segment) => self.on_segment(segment),
            Item::Message {
                line,
                message,
                hash,
                maps,
            } => match message {
                Message::State(m) => self.on_state(m.value, hash),
                Message::Batch(m) => {
                    self.on_batch(line, &m, maps.as_deref(), Utc::now().timestamp_micros())
                }
                Message::ActivateVersion(m) => match self.streams.get_mut(&m.stream) {
                    Some(buffer) => buffer.activate_version(m.version),
                    None => {
                        tracing::warn!(line, stream = %m.stream, "ACTIVATE_VERSION for a stream without SCHEMA; ignored");
                        Ok(())
                    }
                },
                // Workers decode RECORDs and the reader takes SCHEMAs.
                Message::Record(_) | Message::Schema(_) => Ok(()),
            },
        }
    }

    /// Records a worker decoded: their batches join the streams' buffers, their sequence
    /// numbers follow the run's, and the ledger counts them.
    fn on_segment(&mut self, segment: Segment) -> Result<()> {
        let base = self.sequence + 1;
        for (stream, batch) in segment.batches {
            let Some(buffer) = self.streams.get_mut(&stream) else {
                return Err(Error::Destination(
                    format!("rows of stream '{stream}' arrived before its SCHEMA").into(),
                ));
            };
            let rows = batch.num_rows() as u64;
            buffer.push_batch(metadata::shift_sequence(batch, base)?)?;
            *self.progress.read_since.entry(stream).or_default() += rows;
        }
        self.sequence += segment.records as i64;
        self.summary.records_read += segment.records;
        self.ledger.records(segment.records, segment.hash_sum);
        self.buffered_rows += segment.records as usize;
        self.buffered_bytes += segment.bytes;
        if self.buffered_bytes >= self.settings.batch_size_bytes {
            self.on_byte_budget()?;
        }
        Ok(())
    }

    /// One row of a BATCH file of `stream`; `meta.sequence` is set here. (RECORDs arrive
    /// decoded, in segments: [`Self::on_segment`].)
    fn on_record(
        &mut self,
        line: u64,
        stream: &str,
        record: Record,
        mut meta: RowMeta,
        bytes: usize,
        file_hash: Option<u64>,
    ) -> Result<()> {
        self.summary.records_read += 1;
        let Some(buffer) = self.streams.get_mut(stream) else {
            return Err(CoreError::Protocol {
                line,
                reason: format!("RECORD for stream '{stream}' before its SCHEMA"),
            }
            .into());
        };
        self.sequence += 1;
        meta.sequence = self.sequence;
        let hash = buffer.push_record(record, &meta, line)?;
        // A Parquet row counts by its file hash, whichever path loaded it.
        self.ledger.record(file_hash.unwrap_or(hash));
        match self.progress.read_since.get_mut(stream) {
            Some(n) => *n += 1,
            None => {
                self.progress.read_since.insert(stream.to_string(), 1);
            }
        }
        self.buffered_rows += 1;
        self.buffered_bytes += bytes;
        if self.buffered_bytes >= self.settings.batch_size_bytes {
            self.on_byte_budget()?;
        }
        Ok(())
    }

    /// A BATCH: each row of its files is a record of the stream, at the BATCH line.
    fn on_batch(
        &mut self,
        line: u64,
        m: &BatchMessage,
        maps: Option<&StreamMaps>,
        received_at: i64,
    ) -> Result<()> {
        let maps = maps.filter(|maps| !maps.is_identity(&m.stream));
        let streams =
            maps.map_or_else(|| vec![m.stream.clone()], |maps| maps.streams_of(&m.stream));
        if let Some(missing) = streams.iter().find(|s| !self.streams.contains_key(*s)) {
            return Err(CoreError::Protocol {
                line,
                reason: format!("BATCH for stream '{missing}' before its SCHEMA"),
            }
            .into());
        }
        if streams.is_empty() {
            // The stream maps drop this stream: its files need not be read.
            return Ok(());
        }
        batch::for_each_record(m, line, |rows, origin| {
            let (record, bytes, file_hash) = match rows {
                Rows::Arrow(rows, hashes) => {
                    return self.on_arrow_rows(&m.stream, rows, hashes, maps, received_at);
                }
                Rows::Record(record, bytes, hash) => (record, bytes, hash),
            };
            let meta = RowMeta {
                received_at_micros: received_at,
                ..RowMeta::default()
            };
            let loaded = match maps {
                None => self.on_record(line, &m.stream, record, meta, bytes, file_hash),
                Some(maps) => maps
                    .record(&m.stream, &record)
                    .map_err(|e| workers::map_failure(e, line))
                    .and_then(|mapped| {
                        mapped.into_iter().try_for_each(|(stream, record)| {
                            self.on_record(line, &stream, record, meta, bytes, file_hash)
                        })
                    }),
            };
            loaded
                .map_err(|e| match e {
                    Error::Record {
                        stream,
                        line,
                        field,
                        reason,
                    } => Error::Record {
                        stream,
                        line,
                        field,
                        reason: format!(
                            "{reason} (BATCH file {}, row {})",
                            origin.file, origin.row
                        ),
                    },
                    other => other,
                })
                .map(|()| true)
        })
    }

    /// Rows of a Parquet BATCH file, loaded as Arrow when they can be taken exactly (no
    /// stream map changes them, and [`StreamBuffer::decode_arrow`] takes them): `true`.
    fn on_arrow_rows(
        &mut self,
        stream: &str,
        rows: &RecordBatch,
        hashes: Option<&[u64]>,
        maps: Option<&StreamMaps>,
        received_at: i64,
    ) -> Result<bool> {
        let Some(hashes) = hashes.filter(|_| maps.is_none()) else {
            return Ok(false);
        };
        if rows.num_rows() == 0 {
            return Ok(true);
        }
        let Some(buffer) = self.streams.get(stream) else {
            return Ok(false);
        };
        let Some(batch) = buffer.decode_arrow(rows, received_at)? else {
            return Ok(false);
        };
        let hash_sum = hashes.iter().fold(0u64, |sum, h| sum.wrapping_add(*h));
        self.on_segment(Segment {
            records: batch.num_rows() as u64,
            bytes: rows.get_array_memory_size(),
            batches: vec![(stream.to_string(), batch)],
            hash_sum,
        })?;
        Ok(true)
    }

    fn on_schema(&mut self, compiled: CompiledSchema) -> Result<()> {
        let CompiledSchema {
            line,
            message: m,
            schema,
        } = compiled;
        if let Some(existing) = self.streams.get(&m.stream)
            && existing.stream().schema.same_as(&m)
        {
            return Ok(());
        }
        let schema = StreamSchema::clone(&schema);
        let load_method = self
            .settings
            .load_method_for(&m.stream, schema.key_properties());
        let decoder_schema = RecordDecoder::new(&schema, self.settings.add_record_metadata)
            .schema()
            .clone();
        let stream = Arc::new(TargetStream {
            arrow_schema: decoder_schema,
            schema,
            load_method,
        });
        self.collect(true)?;
        let durable = self.sink.check_schema(&stream).map_err(|e| match e {
            Error::Sink { stream, source } => Error::Sink {
                stream,
                source: format!("line {line}: {source}").into(),
            },
            other => other,
        })?;
        if durable {
            self.release()?;
        }
        match self.streams.get_mut(&m.stream) {
            Some(buffer) => buffer.change_schema(stream, self.settings.add_record_metadata),
            None => {
                self.summary.streams.entry(m.stream.clone()).or_default();
                self.streams.insert(
                    m.stream.clone(),
                    StreamBuffer::new(stream, self.settings.add_record_metadata),
                );
                Ok(())
            }
        }
    }

    /// Drops everything buffered: input that replays rows already committed.
    fn drop_replayed(&mut self) {
        let dropped: usize = self
            .streams
            .values_mut()
            .filter(|b| b.stream().load_method != LoadMethod::Overwrite)
            .map(StreamBuffer::discard_rows)
            .sum();
        self.summary.records_skipped += dropped as u64;
        let kept = self.buffered_rows.saturating_sub(dropped);
        let kept_share = if self.buffered_rows == 0 {
            0.0
        } else {
            kept as f64 / self.buffered_rows as f64
        };
        self.buffered_bytes = (self.buffered_bytes as f64 * kept_share) as usize;
        self.buffered_rows = kept;
        self.covered_rows = 0;
        self.covered_bytes = 0;
    }

    fn on_state(&mut self, value: Value, hash: u64) -> Result<()> {
        let verdict = self.ledger.state(hash);
        self.log_notices();
        if let StateVerdict::Replayed { caught_up } = verdict {
            self.drop_replayed();
            self.committed_state = Some(value.clone());
            // The orchestrator may never have seen the last committed state.
            if caught_up {
                self.flush()?;
                self.emit_state(&value)?;
            }
            return Ok(());
        }
        for buffer in self.streams.values_mut() {
            buffer.mark_state();
        }
        self.covered_rows = self.buffered_rows;
        self.covered_bytes = self.buffered_bytes;
        self.pending_state = Some(value);
        self.pending_since.get_or_insert_with(Instant::now);
        if self.covered_rows >= self.settings.batch_size_rows {
            self.commit_covered()?;
        }
        Ok(())
    }

    fn log_notices(&mut self) {
        for notice in self.ledger.take_notices() {
            match notice {
                Notice::Replaying => tracing::info!(
                    "the input replays rows an earlier run already committed; dropping them until it catches up"
                ),
                Notice::CaughtUp => tracing::info!(
                    "the replayed input caught up with the last committed state; loading resumes"
                ),
                Notice::Diverged => tracing::warn!(
                    "the resumed input differs from what an earlier run committed at the same STATE; loading it as new, so append-only rows of the interrupted run may repeat"
                ),
                Notice::NoState => tracing::warn!(
                    "the input had no STATE message: its rows are final, and running the same input again loads them again (exactly-once needs a tap that sends STATE)"
                ),
            }
        }
    }

    fn on_byte_budget(&mut self) -> Result<()> {
        // A pending STATE is committed first, even with no rows left to cover: a commit past
        // it must not settle under it.
        self.commit_covered()?;
        if self.buffered_bytes >= self.settings.batch_size_bytes {
            if !self.warned_forced {
                tracing::warn!(
                    batch_size_bytes = self.settings.batch_size_bytes,
                    "no STATE for longer than the byte budget: committing past the last STATE to bound memory; these rows stay provisional until the next STATE"
                );
                self.warned_forced = true;
            }
            self.commit_rest(CommitKind::PastState, false)?;
        }
        Ok(())
    }

    fn time_triggers(&mut self) -> Result<()> {
        if let Some(since) = self.pending_since
            && since.elapsed().as_secs_f64() >= self.settings.batch_wait_limit_seconds
        {
            self.commit_covered()?;
        }
        if self.progress.last_log.elapsed() >= Duration::from_secs(5) {
            let secs = self.progress.last_log.elapsed().as_secs_f64();
            for (stream, n) in self.progress.read_since.drain() {
                if n > 0 {
                    tracing::info!(
                        stream = %stream,
                        records = n,
                        records_per_second = (n as f64 / secs).round(),
                        "loading"
                    );
                }
            }
            self.progress.last_log = Instant::now();
        }
        Ok(())
    }

    /// Commits everything the last STATE covers; the STATE is written once that is durable.
    fn commit_covered(&mut self) -> Result<()> {
        self.commit_covered_swapping(false)
    }

    fn commit_covered_swapping(&mut self, swap_overwrite: bool) -> Result<()> {
        let Some(state) = self.pending_state.take() else {
            return Ok(());
        };
        self.pending_since = None;
        let streams: Vec<StreamChanges> = self
            .streams
            .values_mut()
            .filter_map(|b| b.take_covered().transpose())
            .collect::<Result<_>>()?;
        self.buffered_rows -= self.covered_rows;
        self.buffered_bytes -= self.covered_bytes;
        self.covered_rows = 0;
        self.covered_bytes = 0;
        self.commit(
            streams,
            CommitKind::Covered,
            Some(state.clone()),
            swap_overwrite,
        )?;
        self.committed_state = Some(state);
        Ok(())
    }

    /// Commits everything buffered, past the last STATE.
    fn commit_rest(&mut self, kind: CommitKind, swap_overwrite: bool) -> Result<()> {
        self.pending_since = None;
        let streams: Vec<StreamChanges> = self
            .streams
            .values_mut()
            .filter_map(|b| b.take_all().transpose())
            .collect::<Result<_>>()?;
        self.buffered_rows = 0;
        self.buffered_bytes = 0;
        self.covered_rows = 0;
        self.covered_bytes = 0;
        let state = self.committed_state.clone();
        self.commit(streams, kind, state, swap_overwrite)
    }

    /// The input ended: commit everything. Input that ended at a STATE is complete;
    /// input that stops after records (a tap that died, or one that sends no final STATE)
    /// leaves them provisional, for a resumed run to replace.
    fn end_of_input(&mut self) -> Result<()> {
        if self.ledger.at_state() {
            self.commit_covered_swapping(true)?;
            return self.commit(
                Vec::new(),
                CommitKind::Complete,
                self.committed_state.clone(),
                true,
            );
        }
        self.commit_covered()?;
        // Overwrite tables are swapped in when the input never had a STATE (nothing to
        // resume); otherwise they wait for a run that ends at one.
        let swap = !self.ledger.seen_state();
        if !swap
            && self
                .streams
                .values()
                .any(|b| b.stream().load_method == LoadMethod::Overwrite)
        {
            tracing::warn!(
                "the input ended after records with no final STATE: overwrite tables stay in staging until a run completes"
            );
        }
        self.commit_rest(CommitKind::Tail, swap)
    }

    /// Plans a commit and hands it to the sink thread; a commit covering a STATE writes it
    /// once it is durable. The commit before it is collected first, so the ledger plans
    /// from a settled history and states go out in order.
    fn commit(
        &mut self,
        mut streams: Vec<StreamChanges>,
        kind: CommitKind,
        state: Option<Value>,
        swap_overwrite: bool,
    ) -> Result<()> {
        self.collect(true)?;
        let release = if kind == CommitKind::Covered {
            state.clone()
        } else {
            None
        };
        let carried = streams
            .iter()
            .filter(|s| {
                s.operations
                    .iter()
                    .any(|op| matches!(op, Operation::Rows(_)))
            })
            .map(|s| s.stream.name());
        let CommitPlan {
            provisional,
            retract,
            settle,
            stored,
        } = self.ledger.plan(kind, carried);
        self.log_notices();
        let nothing_to_do = streams.is_empty()
            && retract.is_empty()
            && settle.is_empty()
            && !swap_overwrite
            && kind != CommitKind::Complete;
        if nothing_to_do {
            // Still after every commit before it.
            if let Some(state) = release {
                self.unreleased.push(state);
                if !self.staged {
                    self.release()?;
                }
            }
            return Ok(());
        }
        for s in &mut streams {
            s.first_in_run = self
                .committed_streams
                .insert(s.stream.name().to_string(), ())
                .is_none();
        }
        let commit = Commit {
            streams,
            marker: CommitMarker {
                state,
                ledger: stored.clone(),
            },
            swap_overwrite,
            retract,
            provisional,
            settle,
        };
        self.sink.send(commit)?;
        // The ledger moves on now: commits are applied in order, and once one fails no
        // later one is sent, so what is durable is always a prefix of what was planned.
        self.ledger.committed(&stored);
        self.awaiting = release;
        Ok(())
    }

    /// Takes what the sink thread reported (with `block`, waits for the commit in flight
    /// to return) and releases the STATEs of what is durable.
    fn collect(&mut self, block: bool) -> Result<()> {
        loop {
            let wait = block && self.sink.in_flight();
            let outcome = self.sink.next(wait).inspect_err(|_| self.forget_group());
            let Some(outcome) = outcome? else {
                return Ok(());
            };
            match outcome {
                Outcome::Committed { stats, durable } => {
                    self.summary.commits += 1;
                    for (stream, s) in stats {
                        self.summary.streams.entry(stream).or_default().add(&s);
                    }
                    self.unreleased.extend(self.awaiting.take());
                    if durable {
                        self.release()?;
                    } else {
                        self.staged = true;
                    }
                }
                Outcome::Durable => self.release()?,
            }
        }
    }

    /// Collects the commit in flight and makes everything committed durable.
    fn flush(&mut self) -> Result<()> {
        self.collect(true)?;
        if !self.staged {
            return Ok(());
        }
        self.sink.flush()?;
        while self.staged {
            match self.sink.next(true).inspect_err(|_| self.forget_group())? {
                Some(Outcome::Durable) => self.release()?,
                Some(Outcome::Committed { .. }) | None => {
                    return Err(Error::Destination(
                        "the sink reported a commit while none was in flight".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The sink failed: its open group went with the failure, so none of the STATEs that
    /// waited for it may be written.
    fn forget_group(&mut self) {
        self.awaiting = None;
        self.unreleased.clear();
        self.staged = false;
    }

    /// Everything committed is durable: writes the STATEs that waited for it, in order.
    fn release(&mut self) -> Result<()> {
        self.staged = false;
        for state in std::mem::take(&mut self.unreleased) {
            self.emit_state(&state)?;
        }
        Ok(())
    }

    fn emit_state(&mut self, state: &Value) -> Result<()> {
        // As the SDK: an empty state, or one equal to the last, is not written.
        if state.as_object().is_some_and(|m| m.is_empty())
            || self.last_emitted.as_ref() == Some(state)
        {
            return Ok(());
        }
        let mut line = serde_json::to_vec(state).unwrap_or_default();
        line.push(b'\n');
        self.output
            .write_all(&line)
            .and_then(|()| self.output.flush())
            .map_err(|source| CoreError::Stream {
                context: "writing state to stdout",
                source,
            })?;
        if let Some(path) = &self.settings.state_file {
            singer_core::state::write_atomic(path, &line)?;
        }
        self.summary.states_emitted += 1;
        self.last_emitted = Some(state.clone());
        Ok(())
    }

    fn log_summary(&self) {
        let secs = self.progress.started.elapsed().as_secs_f64();
        for (stream, s) in &self.summary.streams {
            tracing::info!(
                stream = %stream,
                inserted = s.inserted,
                updated = s.updated,
                deleted = s.deleted,
                batches = s.batches,
                "load summary"
            );
            singer_core::log::metric_counter(
                "record_count",
                s.inserted + s.updated,
                &[("stream", stream.as_str())],
            );
        }
        tracing::info!(
            records = self.summary.records_read,
            skipped_as_replayed = self.summary.records_skipped,
            commits = self.summary.commits,
            seconds = (secs * 100.0).round() / 100.0,
            records_per_second = (self.summary.records_read as f64 / secs.max(1e-9)).round(),
            "run summary"
        );
    }
}
