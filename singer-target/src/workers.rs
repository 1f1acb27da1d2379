//! Decoding in parallel: worker threads turn the reader's [`Job`]s into Arrow batches.
//!
//! Each worker takes the next job, reads each RECORD's envelope borrowed (the record itself
//! stays JSON text) and decodes the record straight into its stream's
//! [`RecordDecoder`](crate::RecordDecoder), with validation and the ack ledger's canonical
//! hash done on the way. Records between two other messages form a [`Segment`]: one batch
//! per stream, plus what the runtime needs to account for them (count, bytes, hash sum).
//! Other messages (STATE, ACTIVATE_VERSION, BATCH) are parsed and passed through in order.
//! The first bad line ends the job's output with its error, after the segment before it.
//!
//! `_sdc_sequence` values in a segment count from 0 in input order; the runtime, which
//! knows how many records came before, shifts them.

use std::borrow::Cow;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use singer_core::Error as CoreError;
use singer_core::message::{Message, RecordMessage};

use crate::ack;
use crate::decoder::{RecordDecoder, RowMeta};
use crate::error::{Error, Result};
use crate::reader::{CompiledSchema, Job};
use crate::stream_schema::StreamSchema;

/// What one number of the input produced, in input order.
#[derive(Default)]
pub(crate) struct Output {
    pub items: Vec<Item>,
    /// The input stops here.
    pub error: Option<Error>,
    /// The end of input: everything before it was sent.
    pub end: bool,
}

impl Output {
    pub fn failed(error: Error) -> Self {
        Output {
            error: Some(error),
            ..Output::default()
        }
    }

    pub fn schema(schema: CompiledSchema) -> Self {
        Output {
            items: vec![Item::Schema(schema)],
            ..Output::default()
        }
    }

    pub fn end() -> Self {
        Output {
            end: true,
            ..Output::default()
        }
    }
}

pub(crate) enum Item {
    Schema(CompiledSchema),
    Records(Segment),
    /// A STATE, ACTIVATE_VERSION or BATCH, with (for a STATE) the canonical hash of its
    /// value.
    Message {
        line: u64,
        message: Message,
        hash: u64,
    },
}

/// Records between two other messages, decoded.
pub(crate) struct Segment {
    /// One batch per stream, `_sdc_sequence` counting from 0 over the whole segment.
    pub batches: Vec<(String, RecordBatch)>,
    pub records: u64,
    pub bytes: usize,
    /// Wrapping sum of the records' canonical hashes.
    pub hash_sum: u64,
}

/// Starts `count` workers on `jobs`; each sends its outputs to `results`.
pub(crate) fn spawn(
    count: usize,
    with_metadata: bool,
    jobs: Receiver<Job>,
    results: Sender<(u64, Output)>,
) {
    let jobs = Arc::new(Mutex::new(jobs));
    for i in 0..count.max(1) {
        let jobs = jobs.clone();
        let results = results.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("singer-decode-{i}"))
            .spawn(move || {
                let mut worker = Worker {
                    with_metadata,
                    ..Worker::default()
                };
                loop {
                    let job = match jobs.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    let seq = job.seq;
                    if results.send((seq, worker.run(&job))).is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a decoding thread: {e}");
        }
    }
}

/// One stream's decoder in a worker, for the schema it was built from.
struct StreamDecoder {
    schema: Arc<StreamSchema>,
    decoder: RecordDecoder,
}

#[derive(Default)]
struct Worker {
    /// Kept across jobs while the stream's schema stays the same.
    decoders: IndexMap<String, StreamDecoder>,
    records: u64,
    bytes: usize,
    hash_sum: u64,
    with_metadata: bool,
}

impl Worker {
    fn run(&mut self, job: &Job) -> Output {
        let mut items = Vec::new();
        for (i, range) in job.lines.iter().enumerate() {
            let line = job.first_line + i as u64;
            let bytes = &job.block[range.clone()];
            if let Err(e) = self.line(job, line, bytes, &mut items) {
                let flushed = self.flush(&mut items);
                return Output {
                    items,
                    error: Some(flushed.err().unwrap_or(e)),
                    end: false,
                };
            }
        }
        let error = self.flush(&mut items).err();
        Output {
            items,
            error,
            end: false,
        }
    }

    fn line(&mut self, job: &Job, line: u64, bytes: &[u8], items: &mut Vec<Item>) -> Result<()> {
        if let Some(env) = RecordEnvelope::read(bytes) {
            let meta = RowMeta {
                extracted_at: env.time_extracted,
                received_at_micros: job.received_at,
                sequence: self.records as i64,
                table_version: env.version,
            };
            let d = self.decoder(job, &env.stream, line)?;
            let hash = d.decoder.push_json(&d.schema, env.record, &meta, line)?;
            self.count(bytes.len(), hash);
            return Ok(());
        }
        let message = match Message::parse_line(line, bytes) {
            Ok(Some(m)) => m,
            Ok(None) => {
                singer_core::message::warn_unknown_type(line, bytes);
                return Ok(());
            }
            Err(e) => return Err(CoreError::from(e).into()),
        };
        match message {
            Message::Record(RecordMessage {
                stream,
                record,
                version,
                time_extracted,
            }) => {
                let meta = RowMeta {
                    extracted_at: time_extracted,
                    received_at_micros: job.received_at,
                    sequence: self.records as i64,
                    table_version: version,
                };
                let d = self.decoder(job, &stream, line)?;
                let hash = d.decoder.push_record(&d.schema, record, &meta, line)?;
                self.count(bytes.len(), hash);
            }
            Message::Schema(_) => {
                return Err(CoreError::Protocol {
                    line,
                    reason: "a SCHEMA message with more than one `type`".into(),
                }
                .into());
            }
            other => {
                self.flush(items)?;
                let hash = match &other {
                    Message::State(s) => ack::state_hash(&s.value),
                    _ => 0,
                };
                items.push(Item::Message {
                    line,
                    message: other,
                    hash,
                });
            }
        }
        Ok(())
    }

    fn count(&mut self, bytes: usize, hash: u64) {
        self.records += 1;
        self.bytes += bytes;
        self.hash_sum = self.hash_sum.wrapping_add(hash);
    }

    /// The decoder of `stream` under the job's schemas.
    fn decoder(&mut self, job: &Job, stream: &str, line: u64) -> Result<&mut StreamDecoder> {
        let Some(schema) = job.schemas.get(stream) else {
            return Err(CoreError::Protocol {
                line,
                reason: format!("RECORD for stream '{stream}' before its SCHEMA"),
            }
            .into());
        };
        let with_metadata = self.with_metadata;
        let current = self
            .decoders
            .get(stream)
            .is_some_and(|d| Arc::ptr_eq(&d.schema, schema));
        if !current {
            // Rows decoded under the old schema were flushed at the SCHEMA barrier.
            self.decoders.insert(
                stream.to_string(),
                StreamDecoder {
                    decoder: RecordDecoder::new(schema, with_metadata),
                    schema: schema.clone(),
                },
            );
        }
        self.decoders
            .get_mut(stream)
            .ok_or_else(|| Error::Destination("a decoder went missing".into()))
    }

    /// Ends the current segment: its batches become one item.
    fn flush(&mut self, items: &mut Vec<Item>) -> Result<()> {
        if self.records == 0 {
            return Ok(());
        }
        let now = Utc::now();
        let mut batches = Vec::new();
        for (stream, d) in &mut self.decoders {
            if let Some(batch) = d.decoder.finish(now)? {
                batches.push((stream.clone(), batch));
            }
        }
        items.push(Item::Records(Segment {
            batches,
            records: std::mem::take(&mut self.records),
            bytes: std::mem::take(&mut self.bytes),
            hash_sum: std::mem::take(&mut self.hash_sum),
        }));
        Ok(())
    }
}

/// The envelope of a plain RECORD line, borrowed: the record stays JSON text. Anything
/// unusual (another type, escapes in the stream name, a repeated member, a `version` or
/// `time_extracted` that needs a second look) is left to [`Message::parse_line`], which
/// accepts it or words the error.
struct RecordEnvelope<'a> {
    stream: Cow<'a, str>,
    record: &'a str,
    version: Option<i64>,
    time_extracted: Option<DateTime<Utc>>,
}

#[derive(Default)]
struct RawMembers<'a> {
    message_type: Option<&'a RawValue>,
    stream: Option<&'a RawValue>,
    record: Option<&'a RawValue>,
    version: Option<&'a RawValue>,
    time_extracted: Option<&'a RawValue>,
}

impl<'de: 'a, 'a> Deserialize<'de> for RawMembers<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = RawMembers<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Singer message")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<RawMembers<'a>, A::Error> {
                let mut m = RawMembers::default();
                // Keys with escapes fail here and the line takes the full parse.
                while let Some(key) = map.next_key::<&'de str>()? {
                    let slot = match key {
                        "type" => &mut m.message_type,
                        "stream" => &mut m.stream,
                        "record" => &mut m.record,
                        "version" => &mut m.version,
                        "time_extracted" => &mut m.time_extracted,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    if slot.is_some() {
                        return Err(de::Error::custom("repeated member"));
                    }
                    *slot = Some(map.next_value()?);
                }
                Ok(m)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> RecordEnvelope<'a> {
    fn read(line: &'a [u8]) -> Option<Self> {
        // One SIMD check of the whole line; the parser then reads it as `&str` without
        // checking each string again.
        let text = simdutf8::basic::from_utf8(line).ok()?;
        let m: RawMembers<'a> = serde_json::from_str(text).ok()?;
        if m.message_type?.get() != r#""RECORD""# {
            return None;
        }
        let stream = plain_string(m.stream?)?;
        if stream.is_empty() {
            return None;
        }
        let record = m.record?.get();
        if !record.starts_with('{') {
            return None;
        }
        let version = match m.version.map(RawValue::get) {
            None | Some("null") => None,
            Some(v) => Some(v.parse::<i64>().ok()?),
        };
        let time_extracted = match m.time_extracted {
            None => None,
            Some(raw) if raw.get() == "null" => None,
            Some(raw) => Some(singer_core::time::parse_datetime(&plain_string(raw)?).ok()?),
        };
        Some(RecordEnvelope {
            stream,
            record,
            version,
            time_extracted,
        })
    }
}

/// A JSON string's text, borrowed when it has no escapes.
fn plain_string(raw: &RawValue) -> Option<Cow<'_, str>> {
    let text = raw.get();
    let inner = text.strip_prefix('"')?.strip_suffix('"')?;
    if inner.contains('\\') {
        return serde_json::from_str::<String>(text).ok().map(Cow::Owned);
    }
    Some(Cow::Borrowed(inner))
}
