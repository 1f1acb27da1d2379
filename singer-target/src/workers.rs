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
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

use singer_core::Error as CoreError;
use singer_core::message::{ActivateVersionMessage, Message, RecordMessage};
use singer_core::stream_map::{MapError, RecordFailure, StreamMaps};

use crate::ack;
use crate::decoder::raw::Decoded;
use crate::decoder::{RecordDecoder, RowMeta};
use crate::error::{Error, Result};
use crate::reader::{CompiledSchema, Job, Schemas};
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
        /// For a BATCH, the stream maps its rows go through.
        maps: Option<Arc<StreamMaps>>,
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
                    // A panic must not leave the runtime waiting for this number forever.
                    let output =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker.run(&job)))
                            .unwrap_or_else(|_| {
                                worker = Worker {
                                    with_metadata,
                                    ..Worker::default()
                                };
                                Output::failed(Error::Destination(
                                    format!(
                                        "internal error decoding lines {} to {}",
                                        job.first_line,
                                        job.first_line + job.lines.len() as u64
                                    )
                                    .into(),
                                ))
                            });
                    if results.send((seq, output)).is_err() {
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
        if self.record_line(job, line, bytes)? {
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
            }) => match job.maps.as_deref().filter(|m| !m.is_identity(&stream)) {
                None => {
                    let meta = self.row_meta(job, time_extracted, version);
                    let d = self.decoder(job, &stream, line)?;
                    let hash = d.decoder.push_record(&d.schema, record, &meta, line)?;
                    self.count(bytes.len(), hash);
                }
                Some(maps) => {
                    let mapped = maps
                        .record(&stream, &record)
                        .map_err(|e| map_failure(e, line))?;
                    // The line's bytes count once, with its first output.
                    let mut line_bytes = bytes.len();
                    for (stream, record) in mapped {
                        let meta = self.row_meta(job, time_extracted, version);
                        let d = self.decoder(job, &stream, line)?;
                        let hash = d.decoder.push_record(&d.schema, record, &meta, line)?;
                        self.count(std::mem::take(&mut line_bytes), hash);
                    }
                }
            },
            Message::Schema(_) => {
                return Err(CoreError::Protocol {
                    line,
                    reason: "a SCHEMA message with more than one `type`".into(),
                }
                .into());
            }
            Message::ActivateVersion(a) if job.maps.is_some() => {
                self.flush(items)?;
                let streams = job.maps.as_deref().map(|m| m.streams_of(&a.stream));
                for stream in streams.unwrap_or_default() {
                    items.push(Item::Message {
                        line,
                        message: Message::ActivateVersion(ActivateVersionMessage {
                            stream,
                            version: a.version,
                        }),
                        hash: 0,
                        maps: None,
                    });
                }
            }
            other => {
                self.flush(items)?;
                let hash = match &other {
                    Message::State(s) => ack::state_hash(&s.value),
                    _ => 0,
                };
                let maps = match &other {
                    Message::Batch(_) => job.maps.clone(),
                    _ => None,
                };
                items.push(Item::Message {
                    line,
                    message: other,
                    hash,
                    maps,
                });
            }
        }
        Ok(())
    }

    /// The metadata of the next record of the segment.
    fn row_meta(
        &self,
        job: &Job,
        extracted_at: Option<DateTime<Utc>>,
        version: Option<i64>,
    ) -> RowMeta {
        RowMeta {
            extracted_at,
            received_at_micros: job.received_at,
            sequence: self.records as i64,
            table_version: version,
        }
    }

    fn count(&mut self, bytes: usize, hash: u64) {
        self.records += 1;
        self.bytes += bytes;
        self.hash_sum = self.hash_sum.wrapping_add(hash);
    }

    /// The decoder of `stream` under the job's schemas.
    fn decoder(&mut self, job: &Job, stream: &str, line: u64) -> Result<&mut StreamDecoder> {
        decoder_for(&mut self.decoders, &job.schemas, stream, self.with_metadata).ok_or_else(|| {
            CoreError::Protocol {
                line,
                reason: format!("RECORD for stream '{stream}' before its SCHEMA"),
            }
            .into()
        })
    }

    /// A plain RECORD line in one pass: its envelope read borrowed and, when `type` and
    /// `stream` come first (as taps write them), the record decoded straight into its
    /// stream's builders. `false`: not such a line (or something in it needs a second
    /// look): [`Message::parse_line`] takes it, and accepts it or words the error.
    fn record_line(&mut self, job: &Job, line: u64, bytes: &[u8]) -> Result<bool> {
        // One SIMD check of the whole line; the parser then reads it as `&str` without
        // checking each string again.
        let Ok(text) = simdutf8::basic::from_utf8(bytes) else {
            return Ok(false);
        };
        let mut touched = None;
        let mut de = serde_json::Deserializer::from_str(text);
        let parsed = LineSeed {
            decoders: &mut self.decoders,
            schemas: &job.schemas,
            maps: job.maps.as_deref(),
            with_metadata: self.with_metadata,
            touched: &mut touched,
        }
        .deserialize(&mut de)
        .and_then(|parts| de.end().map(|()| parts));
        let envelope = parsed.ok().and_then(RecordEnvelope::from_parts);
        let Some(envelope) = envelope else {
            if let Some(d) = touched.and_then(|s| self.decoders.get_mut(&s)) {
                d.decoder.abandon_row();
            }
            return Ok(false);
        };
        if job
            .maps
            .as_deref()
            .is_some_and(|m| !m.is_identity(&envelope.stream))
        {
            // A mapped stream's records take the parsed path, through the maps.
            return Ok(false);
        }
        let meta = self.row_meta(job, envelope.time_extracted, envelope.version);
        let d = self.decoder(job, &envelope.stream, line)?;
        let hash = match envelope.record {
            Part::Decoded(decoded) => match d.decoder.complete_raw_row(decoded, &meta) {
                Some(hash) => hash,
                // A key property missing or null: the full path words it.
                None => return Ok(false),
            },
            Part::Text(json) => d.decoder.push_json(&d.schema, json, &meta, line)?,
        };
        self.count(bytes.len(), hash);
        Ok(true)
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

/// A stream map's failure on a record, at its input line.
pub(crate) fn map_failure(e: MapError, line: u64) -> Error {
    match e {
        MapError::Eval(failure) => {
            let RecordFailure {
                stream,
                map,
                property,
                expression,
                record,
                error,
            } = *failure;
            Error::Record {
                stream,
                line,
                field: (property != "__filter__").then(|| property.clone()),
                reason: format!(
                    "stream map '{map}', {property} '{expression}' failed on record {record}: {error}"
                ),
            }
        }
        other => Error::Map(other),
    }
}

/// The decoder of `stream` under `schemas`, made afresh when the schema changed.
fn decoder_for<'d>(
    decoders: &'d mut IndexMap<String, StreamDecoder>,
    schemas: &Schemas,
    stream: &str,
    with_metadata: bool,
) -> Option<&'d mut StreamDecoder> {
    let schema = schemas.get(stream)?;
    let current = decoders
        .get(stream)
        .is_some_and(|d| Arc::ptr_eq(&d.schema, schema));
    if !current {
        // Rows decoded under the old schema were flushed at the SCHEMA barrier.
        decoders.insert(
            stream.to_string(),
            StreamDecoder {
                decoder: RecordDecoder::new(schema, with_metadata),
                schema: schema.clone(),
            },
        );
    }
    decoders.get_mut(stream)
}

/// A RECORD's `record`: decoded in the pass, or kept as text for after it.
enum Part<'a> {
    Decoded(Decoded),
    Text(&'a str),
}

/// The members of a message line that a RECORD needs, borrowed.
struct LineParts<'a> {
    message_type: Option<&'a RawValue>,
    stream: Option<&'a RawValue>,
    record: Option<Part<'a>>,
    version: Option<&'a RawValue>,
    time_extracted: Option<&'a RawValue>,
}

/// Reads a line's members; decodes `record` in place when `type` (`RECORD`) and a known
/// `stream` came before it. `touched` names the stream whose builders hold part of a row,
/// so that a failure can take it back.
struct LineSeed<'w> {
    decoders: &'w mut IndexMap<String, StreamDecoder>,
    schemas: &'w Schemas,
    /// Records of streams these maps change are not decoded in the pass.
    maps: Option<&'w StreamMaps>,
    with_metadata: bool,
    touched: &'w mut Option<String>,
}

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = LineParts<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = LineParts<'de>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a Singer message")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut m = LineParts {
            message_type: None,
            stream: None,
            record: None,
            version: None,
            time_extracted: None,
        };
        let repeated = || de::Error::custom("repeated member");
        // Keys with escapes fail here and the line takes the full parse.
        while let Some(key) = map.next_key::<&'de str>()? {
            let slot = match key {
                "type" => &mut m.message_type,
                "stream" => &mut m.stream,
                "version" => &mut m.version,
                "time_extracted" => &mut m.time_extracted,
                "record" => {
                    if m.record.is_some() {
                        return Err(repeated());
                    }
                    let is_record = m.message_type.is_some_and(|t| t.get() == r#""RECORD""#);
                    let stream = m.stream.and_then(plain_string);
                    let mapped = |s: &str| self.maps.is_some_and(|m| !m.is_identity(s));
                    let decoder = match (is_record, &stream) {
                        (true, Some(s)) if !mapped(s) => {
                            decoder_for(self.decoders, self.schemas, s, self.with_metadata)
                        }
                        _ => None,
                    };
                    match decoder.and_then(|d| d.decoder.raw_seed()) {
                        Some(seed) => {
                            *self.touched = stream.map(Cow::into_owned);
                            m.record = Some(Part::Decoded(map.next_value_seed(seed)?));
                        }
                        None => m.record = Some(Part::Text(map.next_value::<&RawValue>()?.get())),
                    }
                    continue;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(repeated());
            }
            *slot = Some(map.next_value()?);
        }
        Ok(m)
    }
}

/// A plain RECORD line's envelope. Anything unusual (another type, escapes in the stream
/// name, a `version` or `time_extracted` that needs a second look) gives `None`.
struct RecordEnvelope<'a> {
    stream: Cow<'a, str>,
    record: Part<'a>,
    version: Option<i64>,
    time_extracted: Option<DateTime<Utc>>,
}

impl<'a> RecordEnvelope<'a> {
    fn from_parts(m: LineParts<'a>) -> Option<Self> {
        if m.message_type?.get() != r#""RECORD""# {
            return None;
        }
        let stream = plain_string(m.stream?)?;
        if stream.is_empty() {
            return None;
        }
        let record = match m.record? {
            Part::Text(t) if !t.starts_with('{') => return None,
            part => part,
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::tests_raw::{J, records, root_schema};
    use crate::stream_schema::SchemaOptions;
    use proptest::prelude::*;
    use serde_json::json;

    /// A RECORD line as taps (and odd taps) write it: members in some order, sometimes a
    /// repeated one, an escaped stream name, a `version` or `time_extracted` of any form.
    fn record_line(record: &J, order: u8, oddity: u8) -> String {
        let mut members = vec![
            r#""type": "RECORD""#.to_string(),
            if oddity == 1 {
                r#""stream": "\u0073""#.to_string()
            } else {
                r#""stream": "s""#.to_string()
            },
            format!(r#""record": {}"#, record.text()),
        ];
        match oddity {
            2 => members.push(r#""time_extracted": "2024-01-01T00:00:00+0000""#.into()),
            3 => members.push(r#""time_extracted": "yesterday""#.into()),
            4 => members.push(r#""version": 1.0"#.into()),
            5 => members.push(r#""version": 7"#.into()),
            6 => members.push(r#""type": "RECORD""#.into()),
            7 => members.push(r#""other": {"a": [1, "x"]}"#.into()),
            _ => {}
        }
        let n = members.len();
        members.rotate_left(usize::from(order) % n);
        if order % 2 == 1 {
            members.reverse();
        }
        format!("{{{}}}", members.join(", "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1500))]

        /// The single pass over a RECORD line gives what parsing the message and pushing
        /// its record gives: rows, hashes and errors.
        #[test]
        fn a_job_decodes_as_the_messages_parse(
            (root, _) in root_schema(),
            validate in any::<bool>(),
            metadata in any::<bool>(),
            texts in records(),
            shapes in prop::collection::vec((any::<u8>(), 0u8..10), 8),
        ) {
            let options = SchemaOptions { validate_records: validate, flattening: None };
            let Ok(schema) = StreamSchema::with_options("s", &root, vec![], &options) else {
                return Ok(());
            };
            let schema = Arc::new(schema);
            let lines: Vec<String> = texts
                .iter()
                .zip(shapes.iter().cycle())
                .map(|(j, (order, oddity))| record_line(j, *order, *oddity))
                .collect();
            let mut block = Vec::new();
            let mut ranges = Vec::new();
            for l in &lines {
                let start = block.len();
                block.extend_from_slice(l.as_bytes());
                ranges.push(start..block.len());
                block.push(b'\n');
            }
            let job = Job {
                seq: 0,
                first_line: 1,
                block: Arc::new(block),
                lines: ranges,
                schemas: Arc::new(Schemas::from([("s".to_string(), schema.clone())])),
                maps: None,
                received_at: 5,
            };
            let mut worker = Worker { with_metadata: metadata, ..Worker::default() };
            let out = worker.run(&job);

            // The reference: each line parsed whole, its record pushed.
            let mut reference = RecordDecoder::new(&schema, metadata);
            let mut hash_sum = 0u64;
            let mut expected_error = None;
            for (i, l) in lines.iter().enumerate() {
                let line = i as u64 + 1;
                let result = match Message::parse_line(line, l.as_bytes()) {
                    Ok(Some(Message::Record(r))) => {
                        let meta = RowMeta {
                            extracted_at: r.time_extracted,
                            received_at_micros: 5,
                            sequence: reference.len() as i64,
                            table_version: r.version,
                        };
                        reference.push_record(&schema, r.record, &meta, line)
                    }
                    Ok(_) => Err(Error::Destination("not a record".into())),
                    Err(e) => Err(CoreError::from(e).into()),
                };
                match result {
                    Ok(h) => hash_sum = hash_sum.wrapping_add(h),
                    Err(e) => {
                        expected_error = Some(e.to_string());
                        break;
                    }
                }
            }
            prop_assert_eq!(out.error.map(|e| e.to_string()), expected_error, "{:?}", lines);
            let expected = reference.finish(Utc::now()).expect("finish");
            let segment = out.items.into_iter().find_map(|i| match i {
                Item::Records(s) => Some(s),
                _ => None,
            });
            match (segment, expected) {
                (None, None) => {}
                (Some(seg), Some(batch)) => {
                    prop_assert_eq!(seg.hash_sum, hash_sum);
                    prop_assert_eq!(seg.records as usize, batch.num_rows());
                    let got = &seg.batches[0].1;
                    // `_sdc_batched_at` is the time of each finish.
                    for (i, f) in batch.schema().fields().iter().enumerate() {
                        if f.name() != crate::metadata::SDC_BATCHED_AT {
                            prop_assert_eq!(got.column(i), batch.column(i), "{}", f.name());
                        }
                    }
                }
                (seg, batch) => prop_assert!(false, "segment {:?} reference rows {:?}", seg.map(|s| s.records), batch.map(|b| b.num_rows())),
            }
        }
    }

    #[test]
    fn records_before_their_schema_and_other_messages_keep_their_order() {
        let schema = Arc::new(
            StreamSchema::new(
                "s",
                &json!({"properties": {"id": {"type": "integer"}}}),
                vec![],
            )
            .expect("schema"),
        );
        let lines = [
            r#"{"type":"RECORD","stream":"s","record":{"id":1}}"#,
            r#"{"type":"STATE","value":{"n":1}}"#,
            r#"{"type":"RECORD","stream":"s","record":{"id":2}}"#,
            r#"{"type":"RECORD","stream":"t","record":{"id":3}}"#,
        ];
        let block = lines.join("\n").into_bytes();
        let mut ranges = Vec::new();
        let mut start = 0;
        for l in lines {
            ranges.push(start..start + l.len());
            start += l.len() + 1;
        }
        let job = Job {
            seq: 0,
            first_line: 10,
            block: Arc::new(block),
            lines: ranges,
            schemas: Arc::new(Schemas::from([("s".to_string(), schema)])),
            maps: None,
            received_at: 0,
        };
        let out = Worker::default().run(&job);
        let kinds: Vec<String> = out
            .items
            .iter()
            .map(|i| match i {
                Item::Records(s) => format!("records {}", s.records),
                Item::Message { line, .. } => format!("message at {line}"),
                Item::Schema(_) => "schema".into(),
            })
            .collect();
        assert_eq!(kinds, ["records 1", "message at 11", "records 1"]);
        assert_eq!(
            out.error.map(|e| e.to_string()).as_deref(),
            Some("line 13: RECORD for stream 't' before its SCHEMA")
        );
    }
}
