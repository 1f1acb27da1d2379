//! The input, cut into jobs for the decoding workers, in order.
//!
//! One thread reads stdin in pieces; this one gathers what is available into a block, splits
//! it into lines with `memchr` (no copy per line) and hands runs of lines to the
//! [workers](crate::workers) as [`Job`]s that share the block. SCHEMA messages are barriers:
//! the reader parses and compiles them itself, in order, so that every job carries the
//! schemas in effect for its lines. Everything it sends, jobs and SCHEMAs, is numbered; the
//! runtime processes the results in that order.
//!
//! The reader never runs more than [`IN_FLIGHT`] numbers ahead of the runtime, which bounds
//! the memory between reading and loading.

use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TryRecvError, sync_channel};

use chrono::Utc;
use serde::Deserialize;

use singer_core::Error as CoreError;
use singer_core::ParseError;
use singer_core::message::{DEFAULT_MAX_LINE_BYTES, Message, SchemaMessage};
use singer_core::stream_map::StreamMaps;

use crate::error::{Error, Result};
use crate::stream_schema::{SchemaOptions, StreamSchema};
use crate::workers::Output;

/// Numbers (jobs and SCHEMAs) the reader may be ahead of the runtime.
pub(crate) const IN_FLIGHT: usize = 32;
/// About how many bytes of lines one job holds, at most.
const JOB_BYTES: usize = 512 * 1024;
/// Up to how many bytes of available input one block gathers.
const BLOCK_BYTES: usize = 4 * 1024 * 1024;
/// Bytes asked of stdin per read.
const PIECE_BYTES: usize = 256 * 1024;

/// The schemas in effect, by stream.
pub(crate) type Schemas = HashMap<String, Arc<StreamSchema>>;

/// Lines for one worker: numbered `first_line`, `first_line + 1`, ...
pub(crate) struct Job {
    pub seq: u64,
    pub first_line: u64,
    pub block: Arc<Vec<u8>>,
    /// Each line's bytes in `block`, without its line ending.
    pub lines: Vec<Range<usize>>,
    pub schemas: Arc<Schemas>,
    /// The stream maps in effect (they know the SCHEMAs seen so far), if any are set.
    pub maps: Option<Arc<StreamMaps>>,
    /// When the lines were read, in microseconds since the epoch.
    pub received_at: i64,
}

/// A SCHEMA in input order, compiled for loading.
pub(crate) struct CompiledSchema {
    pub line: u64,
    pub message: SchemaMessage,
    pub schema: Arc<StreamSchema>,
}

/// What the reader needs to compile SCHEMAs as the runtime would.
#[derive(Clone)]
pub(crate) struct ReaderOptions {
    pub schema_options: SchemaOptions,
    pub max_line_bytes: usize,
    /// Bytes of lines per job: a quarter of the byte budget (the runtime can only commit
    /// between segments), at most [`JOB_BYTES`].
    pub job_bytes: usize,
    /// Stream maps: SCHEMAs are mapped here, records by the workers.
    pub maps: Option<StreamMaps>,
}

impl ReaderOptions {
    pub fn new(schema_options: SchemaOptions, batch_size_bytes: usize) -> Self {
        ReaderOptions {
            schema_options,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
            job_bytes: (batch_size_bytes / 4).clamp(1, JOB_BYTES),
            maps: None,
        }
    }
}

/// Where the reader's work goes: jobs to the workers, SCHEMAs and errors straight to the
/// runtime, each under its number.
pub(crate) struct Outlets {
    pub jobs: Sender<Job>,
    pub results: Sender<(u64, Output)>,
    /// Takes a slot before each number; the runtime frees it once that number is done.
    pub slots: SyncSender<()>,
}

/// Reads `input` to the end on two threads (this one and a reading thread it starts).
pub(crate) fn read(input: impl Read + Send + 'static, options: ReaderOptions, out: Outlets) {
    let pieces = spawn_piece_reader(input);
    let mut reader = Reader {
        maps: options.maps.clone().map(Arc::new),
        options,
        out,
        seq: 0,
        line: 0,
        schemas: Arc::new(Schemas::new()),
    };
    match reader.run(&pieces) {
        Ok(true) => reader.send(Output::end()),
        Ok(false) => {}
        Err(e) => reader.send(Output::failed(e)),
    }
}

/// Pieces of stdin as they arrive, and the way back for their buffers (so that reading
/// does not allocate and zero a buffer per piece).
struct Pieces {
    arrived: Receiver<std::io::Result<Vec<u8>>>,
    spent: SyncSender<Vec<u8>>,
}

impl Pieces {
    /// Appends a piece to `pending` and hands its buffer back.
    fn take(&self, piece: std::io::Result<Vec<u8>>, pending: &mut Vec<u8>) -> Result<()> {
        let piece = piece.map_err(read_error)?;
        pending.extend_from_slice(&piece);
        let _ = self.spent.try_send(piece);
        Ok(())
    }
}

fn spawn_piece_reader(mut input: impl Read + Send + 'static) -> Pieces {
    let (tx, arrived) = sync_channel(16);
    let (spent, returned) = sync_channel::<Vec<u8>>(16);
    let spawned = std::thread::Builder::new()
        .name("singer-stdin".into())
        .spawn(move || {
            loop {
                let mut piece = returned.try_recv().unwrap_or_default();
                piece.resize(PIECE_BYTES, 0);
                match input.read(&mut piece) {
                    Ok(0) => return,
                    Ok(n) => {
                        piece.truncate(n);
                        if tx.send(Ok(piece)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the input thread: {e}");
    }
    Pieces { arrived, spent }
}

struct Reader {
    options: ReaderOptions,
    out: Outlets,
    seq: u64,
    /// Lines read so far.
    line: u64,
    schemas: Arc<Schemas>,
    maps: Option<Arc<StreamMaps>>,
}

/// Why the reader stopped early without an error of its own.
struct Closed;

impl Reader {
    /// Reads to the end of input (`true`), or until the runtime is gone or an error was sent
    /// in order (`false`).
    fn run(&mut self, pieces: &Pieces) -> Result<bool> {
        let mut pending: Vec<u8> = Vec::with_capacity(BLOCK_BYTES + PIECE_BYTES);
        let mut eof = false;
        while !eof {
            // Wait for input, then take whatever else is already there, up to a block.
            match pieces.arrived.recv() {
                Ok(piece) => pieces.take(piece, &mut pending)?,
                Err(_) => eof = true,
            }
            while !eof && pending.len() < BLOCK_BYTES {
                match pieces.arrived.try_recv() {
                    Ok(piece) => pieces.take(piece, &mut pending)?,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => eof = true,
                }
            }
            let complete = match memchr::memrchr(b'\n', &pending) {
                _ if eof => pending.len(),
                Some(i) => i + 1,
                None => {
                    // One line longer than what has arrived: keep reading, within bounds.
                    if pending.len() > self.options.max_line_bytes.saturating_add(2) {
                        return Err(self.too_long(self.line + 1));
                    }
                    continue;
                }
            };
            // The next block starts with the partial line, in a buffer sized for a block.
            let mut next = Vec::with_capacity(BLOCK_BYTES + PIECE_BYTES);
            next.extend_from_slice(&pending[complete..]);
            pending.truncate(complete);
            let block = Arc::new(std::mem::replace(&mut pending, next));
            if self.block(&block).is_err() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Splits a block of whole lines into jobs, stopping at each SCHEMA.
    fn block(&mut self, block: &Arc<Vec<u8>>) -> std::result::Result<(), Closed> {
        let received_at = Utc::now().timestamp_micros();
        let mut lines: Vec<Range<usize>> = Vec::new();
        let mut first_line = self.line + 1;
        let mut job_bytes = 0usize;
        let mut start = 0usize;
        while start < block.len() {
            let end = memchr::memchr(b'\n', &block[start..]).map_or(block.len(), |i| start + i);
            let next = end + 1;
            let mut stop = end;
            if stop > start && block[stop - 1] == b'\r' {
                stop -= 1;
            }
            self.line += 1;
            let bytes = &block[start..stop];
            if bytes.len() > self.options.max_line_bytes {
                self.dispatch(block, first_line, &mut lines, received_at)?;
                return Err(self.fail(self.too_long(self.line)));
            }
            if is_schema(bytes) {
                self.dispatch(block, first_line, &mut lines, received_at)?;
                job_bytes = 0;
                self.schema(self.line, bytes)?;
                first_line = self.line + 1;
            } else {
                lines.push(start..stop);
                job_bytes += bytes.len();
                if job_bytes >= self.options.job_bytes {
                    self.dispatch(block, first_line, &mut lines, received_at)?;
                    job_bytes = 0;
                    first_line = self.line + 1;
                }
            }
            start = next;
        }
        self.dispatch(block, first_line, &mut lines, received_at)
    }

    fn dispatch(
        &mut self,
        block: &Arc<Vec<u8>>,
        first_line: u64,
        lines: &mut Vec<Range<usize>>,
        received_at: i64,
    ) -> std::result::Result<(), Closed> {
        if lines.is_empty() {
            return Ok(());
        }
        let seq = self.take_slot()?;
        let job = Job {
            seq,
            first_line,
            block: block.clone(),
            lines: std::mem::take(lines),
            schemas: self.schemas.clone(),
            maps: self.maps.clone(),
            received_at,
        };
        self.out.jobs.send(job).map_err(|_| Closed)
    }

    /// A SCHEMA line: compiled here, in order, for the jobs after it and for the runtime.
    fn schema(&mut self, line: u64, bytes: &[u8]) -> std::result::Result<(), Closed> {
        let message = match Message::parse_line(line, bytes) {
            Ok(Some(Message::Schema(m))) => m,
            Ok(_) => {
                // `is_schema` only says yes to a SCHEMA type; parse_line agrees or errs.
                return Err(self.fail(Error::Core(CoreError::Protocol {
                    line,
                    reason: "a message read as SCHEMA is not one (is `type` repeated?)".into(),
                })));
            }
            Err(e) => return Err(self.fail(CoreError::from(e).into())),
        };
        let Some(maps) = self.maps.as_mut() else {
            return self.compile(line, message);
        };
        // The stream maps learn the source schema; what they map it to is compiled.
        match Arc::make_mut(maps).schema(&message) {
            Ok(mapped) => mapped
                .into_iter()
                .try_for_each(|message| self.compile(line, message)),
            Err(e) => Err(self.fail(Error::Core(CoreError::Protocol {
                line,
                reason: e.to_string(),
            }))),
        }
    }

    /// Compiles one (mapped) SCHEMA and sends it under its number.
    fn compile(&mut self, line: u64, message: SchemaMessage) -> std::result::Result<(), Closed> {
        if let Some(existing) = self.schemas.get(&message.stream).cloned()
            && existing.same_as(&message)
        {
            let seq = self.take_slot()?;
            return self.send_numbered(
                seq,
                Output::schema(CompiledSchema {
                    line,
                    message,
                    schema: existing,
                }),
            );
        }
        let compiled = StreamSchema::with_options(
            &message.stream,
            &message.schema,
            message.key_properties.clone(),
            &self.options.schema_options,
        )
        .map_err(|e| match e {
            Error::Core(CoreError::Schema { stream, reason }) => CoreError::Schema {
                stream,
                reason: format!("line {line}: {reason}"),
            }
            .into(),
            other => other,
        });
        let schema = match compiled {
            Ok(s) => Arc::new(s),
            Err(e) => return Err(self.fail(e)),
        };
        Arc::make_mut(&mut self.schemas).insert(message.stream.clone(), schema.clone());
        let seq = self.take_slot()?;
        self.send_numbered(
            seq,
            Output::schema(CompiledSchema {
                line,
                message,
                schema,
            }),
        )
    }

    fn take_slot(&mut self) -> std::result::Result<u64, Closed> {
        self.out.slots.send(()).map_err(|_| Closed)?;
        let seq = self.seq;
        self.seq += 1;
        Ok(seq)
    }

    fn send_numbered(&mut self, seq: u64, output: Output) -> std::result::Result<(), Closed> {
        self.out.results.send((seq, output)).map_err(|_| Closed)
    }

    /// Sends an output under the next number (best effort: the runtime may be gone).
    fn send(&mut self, output: Output) {
        if let Ok(seq) = self.take_slot() {
            let _ = self.send_numbered(seq, output);
        }
    }

    /// Sends an error in order and stops reading.
    fn fail(&mut self, error: Error) -> Closed {
        self.send(Output::failed(error));
        Closed
    }

    fn too_long(&self, line: u64) -> Error {
        CoreError::from(ParseError {
            line,
            message_type: None,
            stream: None,
            reason: format!("line longer than {} bytes", self.options.max_line_bytes),
        })
        .into()
    }
}

fn read_error(source: std::io::Error) -> Error {
    CoreError::Stream {
        context: "reading input",
        source,
    }
    .into()
}

/// Whether a line is a SCHEMA message. Taps write `type` first (singer-python, the Meltano
/// SDK, ours), which is read without parsing the line; other lines are parsed for their
/// `type` alone.
pub(crate) fn is_schema(line: &[u8]) -> bool {
    if let Some(t) = leading_type(line) {
        return t == b"SCHEMA";
    }
    #[derive(Deserialize)]
    struct TypeOnly<'a> {
        #[serde(rename = "type", borrow)]
        message_type: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<TypeOnly>(line)
        .ok()
        .and_then(|t| t.message_type)
        .is_some_and(|t| t == "SCHEMA")
}

/// The value of a leading `"type"` member written without escapes: `{"type": "RECORD", ...`.
fn leading_type(line: &[u8]) -> Option<&[u8]> {
    let mut rest = skip_ws(line).strip_prefix(b"{")?;
    rest = skip_ws(rest).strip_prefix(b"\"type\"")?;
    rest = skip_ws(rest).strip_prefix(b":")?;
    rest = skip_ws(rest).strip_prefix(b"\"")?;
    let end = memchr::memchr2(b'"', b'\\', rest)?;
    (rest[end] == b'"').then_some(&rest[..end])
}

fn skip_ws(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    &bytes[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_lines_are_recognised_in_any_key_order() {
        assert!(is_schema(br#"{"type":"SCHEMA","stream":"s","schema":{}}"#));
        assert!(is_schema(br#"  { "type" : "SCHEMA" }"#));
        assert!(is_schema(br#"{"stream":"s","schema":{},"type":"SCHEMA"}"#));
        assert!(is_schema(br#"{"stream":"s","type":"\u0053CHEMA"}"#));
        assert!(!is_schema(
            br#"{"type":"RECORD","stream":"SCHEMA","record":{"type":"SCHEMA"}}"#
        ));
        assert!(!is_schema(
            br#"{"record":{"type":"SCHEMA"},"type":"RECORD"}"#
        ));
        assert!(!is_schema(b"not json"));
        assert!(!is_schema(b""));
    }
}
