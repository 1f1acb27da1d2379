//! Singer messages and their JSON-lines encoding.
//!
//! A Singer stream is one JSON object per line. Each has a `type`: `SCHEMA` describes a
//! stream, `RECORD` carries one row, `STATE` is an opaque bookmark the orchestrator keeps,
//! `ACTIVATE_VERSION` tells a target that a full-table version is complete, and the Meltano
//! SDK's `BATCH` points to files that hold a stream's records.
//!
//! [`MessageReader`] reads any [`BufRead`] and yields each message with its 1-based line
//! number. Each line is parsed exactly once, straight into the message's fields (the record
//! lands in a `serde_json::Map` without an intermediate value), and every error names the
//! line, the message type when it could be read, and what is wrong. Lines of a type this crate
//! does not know (other Singer tools add their own) are logged as a warning and skipped.
//!
//! ```
//! use singer_core::message::{Message, MessageReader};
//!
//! let input = br#"{"type":"SCHEMA","stream":"users","schema":{"type":"object"},"key_properties":["id"]}
//! {"type":"RECORD","stream":"users","record":{"id":1}}
//! {"type":"STATE","value":{"bookmarks":{}}}
//! "#;
//! let mut reader = MessageReader::new(&input[..]);
//! let mut types = Vec::new();
//! while let Some((line, message)) = reader.next_message()? {
//!     types.push((line, message.type_name()));
//! }
//! assert_eq!(types, [(1, "SCHEMA"), (2, "RECORD"), (3, "STATE")]);
//! # Ok::<(), singer_core::Error>(())
//! ```

use std::fmt;
use std::io::{BufRead, Write};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, ParseError, Result};

/// The properties of one record, in the order the tap wrote them.
pub type Record = Map<String, Value>;

/// Lines longer than this are refused rather than buffered without bound.
pub const DEFAULT_MAX_LINE_BYTES: usize = 256 * 1024 * 1024;

/// One Singer message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Describes a stream: its JSON Schema and keys.
    Schema(SchemaMessage),
    /// One row of a stream.
    Record(RecordMessage),
    /// An opaque bookmark to hand back to the tap on the next run.
    State(StateMessage),
    /// A full-table version of a stream is complete; older versions can go.
    ActivateVersion(ActivateVersionMessage),
    /// A stream's records, in files.
    Batch(BatchMessage),
}

/// `SCHEMA`: the JSON Schema of a stream's records and its keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SchemaMessage {
    /// The stream name.
    pub stream: String,
    /// The JSON Schema of the records.
    pub schema: Value,
    /// Properties that identify a record (the primary key).
    pub key_properties: Vec<String>,
    /// Properties the tap uses as a bookmark (the replication key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bookmark_properties: Option<Vec<String>>,
}

/// `RECORD`: one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecordMessage {
    /// The stream name.
    pub stream: String,
    /// The row.
    pub record: Record,
    /// The full-table version this record belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// When the tap extracted the record.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "serialize_time_extracted"
    )]
    pub time_extracted: Option<DateTime<Utc>>,
}

/// `STATE`: the bookmark the orchestrator stores and gives back to the tap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StateMessage {
    /// The state object.
    pub value: Value,
}

/// `ACTIVATE_VERSION`: records of older versions of the stream may be removed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActivateVersionMessage {
    /// The stream name.
    pub stream: String,
    /// The version that is now complete.
    pub version: i64,
}

/// `BATCH` (Meltano SDK): records of a stream in files, listed in `manifest`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchMessage {
    /// The stream name.
    pub stream: String,
    /// How the files are written.
    pub encoding: BatchEncoding,
    /// The files, as URLs (`file:///...`) or paths, in order.
    pub manifest: Vec<String>,
}

/// How a batch's files are written, as the SDK's `encoding` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchEncoding {
    /// `jsonl` (one record object per line) or `parquet`.
    pub format: BatchFormat,
    /// `gzip` or `none` (JSON lines only; Parquet compresses inside the file).
    #[serde(default, deserialize_with = "compression_or_null")]
    pub compression: BatchCompression,
}

/// The file format of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BatchFormat {
    /// JSON lines: one record object per line.
    Jsonl,
    /// Apache Parquet.
    Parquet,
}

/// The compression of a batch's files.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BatchCompression {
    /// Plain files.
    #[default]
    None,
    /// gzip.
    Gzip,
}

fn compression_or_null<'de, D: Deserializer<'de>>(d: D) -> Result<BatchCompression, D::Error> {
    Ok(Option::<BatchCompression>::deserialize(d)?.unwrap_or_default())
}

impl Message {
    /// The Singer `type` of the message.
    pub fn type_name(&self) -> &'static str {
        match self {
            Message::Schema(_) => "SCHEMA",
            Message::Record(_) => "RECORD",
            Message::State(_) => "STATE",
            Message::ActivateVersion(_) => "ACTIVATE_VERSION",
            Message::Batch(_) => "BATCH",
        }
    }

    /// The stream the message concerns; `None` for STATE.
    pub fn stream(&self) -> Option<&str> {
        match self {
            Message::Schema(m) => Some(&m.stream),
            Message::Record(m) => Some(&m.stream),
            Message::ActivateVersion(m) => Some(&m.stream),
            Message::Batch(m) => Some(&m.stream),
            Message::State(_) => None,
        }
    }

    /// The message as one JSON line, without the trailing newline.
    pub fn to_json_line(&self) -> String {
        // Serializing maps of `Value`s to a String cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses one line (without its newline). `Ok(None)` means a message of a type this
    /// crate does not know, which callers skip.
    pub fn parse_line(line_number: u64, line: &[u8]) -> Result<Option<Message>, ParseError> {
        parse_line(line_number, line)
    }
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("type", self.type_name())?;
        match self {
            Message::Schema(m) => {
                map.serialize_entry("stream", &m.stream)?;
                map.serialize_entry("schema", &m.schema)?;
                map.serialize_entry("key_properties", &m.key_properties)?;
                if let Some(b) = &m.bookmark_properties {
                    map.serialize_entry("bookmark_properties", b)?;
                }
            }
            Message::Record(m) => {
                map.serialize_entry("stream", &m.stream)?;
                map.serialize_entry("record", &m.record)?;
                if let Some(v) = m.version {
                    map.serialize_entry("version", &v)?;
                }
                if let Some(t) = &m.time_extracted {
                    map.serialize_entry("time_extracted", &format_time(t))?;
                }
            }
            Message::State(m) => map.serialize_entry("value", &m.value)?,
            Message::ActivateVersion(m) => {
                map.serialize_entry("stream", &m.stream)?;
                map.serialize_entry("version", &m.version)?;
            }
            Message::Batch(m) => {
                map.serialize_entry("stream", &m.stream)?;
                map.serialize_entry("encoding", &m.encoding)?;
                map.serialize_entry("manifest", &m.manifest)?;
            }
        }
        map.end()
    }
}

fn format_time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn serialize_time_extracted<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_time(t)),
        None => s.serialize_none(),
    }
}

// ---------------------------------------------------------------------------------------
// Parsing

/// The fields of any message, read in one pass. Each is kept as a `Value` so that a wrong
/// type gives our own error naming the field rather than serde's.
#[derive(Default)]
struct Envelope {
    message_type: Option<Value>,
    stream: Option<Value>,
    record: Option<Value>,
    schema: Option<Value>,
    key_properties: Option<Value>,
    bookmark_properties: Option<Value>,
    value: Option<Value>,
    version: Option<Value>,
    time_extracted: Option<Value>,
    encoding: Option<Value>,
    manifest: Option<Value>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Type,
    Stream,
    Record,
    Schema,
    KeyProperties,
    BookmarkProperties,
    Value,
    Version,
    TimeExtracted,
    Encoding,
    Manifest,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvelopeVisitor;
        impl<'de> Visitor<'de> for EnvelopeVisitor {
            type Value = Envelope;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope, A::Error> {
                let mut e = Envelope::default();
                while let Some(key) = map.next_key::<Field>()? {
                    let slot = match key {
                        Field::Type => &mut e.message_type,
                        Field::Stream => &mut e.stream,
                        Field::Record => &mut e.record,
                        Field::Schema => &mut e.schema,
                        Field::KeyProperties => &mut e.key_properties,
                        Field::BookmarkProperties => &mut e.bookmark_properties,
                        Field::Value => &mut e.value,
                        Field::Version => &mut e.version,
                        Field::TimeExtracted => &mut e.time_extracted,
                        Field::Encoding => &mut e.encoding,
                        Field::Manifest => &mut e.manifest,
                        Field::Other => {
                            map.next_value::<IgnoredAny>()?;
                            continue;
                        }
                    };
                    *slot = Some(map.next_value()?);
                }
                Ok(e)
            }
        }
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

fn parse_line(line_number: u64, line: &[u8]) -> Result<Option<Message>, ParseError> {
    let fail = |message_type: Option<&str>, stream: Option<&str>, reason: String| ParseError {
        line: line_number,
        message_type: message_type.map(str::to_owned),
        stream: stream.map(str::to_owned),
        reason,
    };
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err(fail(
            None,
            None,
            "empty line (expected a JSON message)".into(),
        ));
    }
    let mut envelope: Envelope = serde_json::from_slice(line).map_err(|e| {
        let reason = if e.is_data() && e.to_string().starts_with("invalid type") {
            "a Singer message must be a JSON object".to_string()
        } else {
            format!("invalid JSON: {e}")
        };
        fail(None, None, reason)
    })?;
    let message_type = match envelope.message_type.take() {
        Some(Value::String(t)) => t,
        Some(other) => {
            return Err(fail(
                None,
                None,
                format!("`type` must be a string, found {}", json_kind(&other)),
            ));
        }
        None => return Err(fail(None, None, "missing `type`".into())),
    };
    let t = Some(message_type.as_str());
    let stream = |e: &mut Envelope| -> Result<String, ParseError> {
        match e.stream.take() {
            Some(Value::String(s)) if !s.is_empty() => Ok(s),
            Some(Value::String(_)) => Err(fail(t, None, "`stream` is empty".into())),
            Some(other) => Err(fail(
                t,
                None,
                format!("`stream` must be a string, found {}", json_kind(&other)),
            )),
            None => Err(fail(t, None, "missing `stream`".into())),
        }
    };
    let mut e = envelope;
    let message = match message_type.as_str() {
        "RECORD" => {
            let stream = stream(&mut e)?;
            let s = Some(stream.as_str());
            let record = object(e.record, "record").map_err(|r| fail(t, s, r))?;
            let version = e
                .version
                .map(|v| as_version(&v))
                .transpose()
                .map_err(|r| fail(t, s, r))?
                .flatten();
            let time_extracted = match e.time_extracted {
                None | Some(Value::Null) => None,
                Some(Value::String(ts)) => Some(crate::time::parse_datetime(&ts).map_err(|r| {
                    fail(t, s, format!("`time_extracted` is not a date-time: {r}"))
                })?),
                Some(other) => {
                    return Err(fail(
                        t,
                        s,
                        format!(
                            "`time_extracted` must be a string, found {}",
                            json_kind(&other)
                        ),
                    ));
                }
            };
            Message::Record(RecordMessage {
                stream,
                record,
                version,
                time_extracted,
            })
        }
        "SCHEMA" => {
            let stream = stream(&mut e)?;
            let s = Some(stream.as_str());
            let schema = Value::Object(object(e.schema, "schema").map_err(|r| fail(t, s, r))?);
            let key_properties = string_list(e.key_properties, "key_properties")
                .map_err(|r| fail(t, s, r))?
                .unwrap_or_default();
            let bookmark_properties = string_list(e.bookmark_properties, "bookmark_properties")
                .map_err(|r| fail(t, s, r))?;
            Message::Schema(SchemaMessage {
                stream,
                schema,
                key_properties,
                bookmark_properties,
            })
        }
        // The spec says only that a state is JSON: targets pass any value through.
        "STATE" => match e.value {
            Some(value) => Message::State(StateMessage { value }),
            None => return Err(fail(t, None, "missing `value`".into())),
        },
        "ACTIVATE_VERSION" => {
            let stream = stream(&mut e)?;
            let s = Some(stream.as_str());
            let version = match e.version {
                Some(v) => as_version(&v).map_err(|r| fail(t, s, r))?,
                None => None,
            }
            .ok_or_else(|| fail(t, s, "missing `version`".into()))?;
            Message::ActivateVersion(ActivateVersionMessage { stream, version })
        }
        "BATCH" => {
            let stream = stream(&mut e)?;
            let s = Some(stream.as_str());
            let encoding = object(e.encoding, "encoding").map_err(|r| fail(t, s, r))?;
            let encoding = serde_json::from_value(Value::Object(encoding))
                .map_err(|err| fail(t, s, format!("`encoding`: {err}")))?;
            let manifest = string_list(e.manifest, "manifest")
                .map_err(|r| fail(t, s, r))?
                .ok_or_else(|| fail(t, s, "missing `manifest`".into()))?;
            Message::Batch(BatchMessage {
                stream,
                encoding,
                manifest,
            })
        }
        _ => return Ok(None),
    };
    Ok(Some(message))
}

/// Versions are integers; singer-python writes them as milliseconds, and some taps as floats
/// with no fraction.
fn as_version(v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .or_else(|| {
                n.as_f64()
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| f as i64)
            })
            .map(Some)
            .ok_or_else(|| format!("`version` must be an integer, found {n}")),
        other => Err(format!(
            "`version` must be an integer, found {}",
            json_kind(other)
        )),
    }
}

/// A field that must be a JSON object.
fn object(v: Option<Value>, name: &str) -> Result<Map<String, Value>, String> {
    match v {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(format!(
            "`{name}` must be an object, found {}",
            json_kind(&other)
        )),
        None => Err(format!("missing `{name}`")),
    }
}

fn string_list(v: Option<Value>, name: &str) -> Result<Option<Vec<String>>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(format!(
                    "`{name}` must be a list of strings, found {} in it",
                    json_kind(&other)
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(other) => Err(format!(
            "`{name}` must be a list of strings, found {}",
            json_kind(&other)
        )),
    }
}

/// A short name of a JSON value's kind, for error messages (never the value itself, which
/// may be a secret).
pub fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------
// Reading

/// Reads Singer messages from JSON lines, one at a time, with their line numbers.
pub struct MessageReader<R> {
    input: R,
    buf: Vec<u8>,
    line: u64,
    max_line_bytes: usize,
}

impl<R: BufRead> MessageReader<R> {
    /// A reader over `input` with the default line length limit.
    pub fn new(input: R) -> Self {
        MessageReader {
            input,
            buf: Vec::with_capacity(64 * 1024),
            line: 0,
            max_line_bytes: DEFAULT_MAX_LINE_BYTES,
        }
    }

    /// Refuses lines longer than `bytes` (bounded memory on hostile input).
    pub fn with_max_line_bytes(mut self, bytes: usize) -> Self {
        self.max_line_bytes = bytes;
        self
    }

    /// The underlying reader.
    pub fn get_ref(&self) -> &R {
        &self.input
    }

    /// The number of the last line read (0 before the first).
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// The next raw line without its line ending, and its number; `None` at end of input.
    pub fn next_line(&mut self) -> Result<Option<(u64, &[u8])>> {
        self.buf.clear();
        let mut too_long = false;
        loop {
            let available = self.input.fill_buf().map_err(|source| Error::Stream {
                context: "reading input",
                source,
            })?;
            if available.is_empty() {
                break;
            }
            let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..=i], true),
                None => (available, false),
            };
            let n = chunk.len();
            if !too_long {
                if self.buf.len() + n > self.max_line_bytes.saturating_add(2) {
                    too_long = true;
                    self.buf.clear();
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            self.input.consume(n);
            if done {
                break;
            }
        }
        if self.buf.is_empty() && !too_long {
            return Ok(None);
        }
        self.line += 1;
        if too_long {
            return Err(ParseError {
                line: self.line,
                message_type: None,
                stream: None,
                reason: format!("line longer than {} bytes", self.max_line_bytes),
            }
            .into());
        }
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(Some((self.line, &self.buf)))
    }

    /// The next message and its line number; `None` at end of input. Messages of unknown
    /// types are logged and skipped.
    pub fn next_message(&mut self) -> Result<Option<(u64, Message)>> {
        loop {
            let Some((line, bytes)) = self.next_line()? else {
                return Ok(None);
            };
            match parse_line(line, bytes)? {
                Some(message) => return Ok(Some((line, message))),
                None => warn_unknown_type(line, bytes),
            }
        }
    }
}

impl<R: BufRead> Iterator for MessageReader<R> {
    type Item = Result<(u64, Message)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_message().transpose()
    }
}

/// Logs a skipped message of a type this crate does not handle.
pub fn warn_unknown_type(line: u64, bytes: &[u8]) {
    #[derive(Deserialize)]
    struct TypeOnly<'a> {
        #[serde(rename = "type", borrow)]
        message_type: std::borrow::Cow<'a, str>,
    }
    let t = serde_json::from_slice::<TypeOnly>(bytes)
        .map(|t| t.message_type.into_owned())
        .unwrap_or_default();
    tracing::warn!(line, message_type = %t, "skipping message of unknown type");
}

// ---------------------------------------------------------------------------------------
// Writing

/// Writes Singer messages as JSON lines.
pub struct MessageWriter<W: Write> {
    out: W,
}

impl<W: Write> MessageWriter<W> {
    /// A writer to `out`. Wrap stdout in a `BufWriter` and call [`flush`](Self::flush) at
    /// STATE messages, so state reaches the orchestrator promptly.
    pub fn new(out: W) -> Self {
        MessageWriter { out }
    }

    /// Writes one message and a newline.
    pub fn write(&mut self, message: &Message) -> Result<()> {
        serde_json::to_writer(&mut self.out, message)
            .map_err(|e| Error::Stream {
                context: "writing output",
                source: e.into(),
            })
            .and_then(|()| self.write_raw(b"\n"))
    }

    /// Writes bytes that already form (part of) a message line.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|source| Error::Stream {
            context: "writing output",
            source,
        })
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|source| Error::Stream {
            context: "writing output",
            source,
        })
    }

    /// The underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> Result<Option<Message>, ParseError> {
        parse_line(7, s.as_bytes())
    }

    fn err(s: &str) -> ParseError {
        parse(s).expect_err("should fail")
    }

    #[test]
    fn round_trips_every_message_type() {
        let messages = [
            Message::Schema(SchemaMessage {
                stream: "users".into(),
                schema: json!({"type":"object","properties":{"id":{"type":"integer"}}}),
                key_properties: vec!["id".into()],
                bookmark_properties: Some(vec!["updated".into()]),
            }),
            Message::Schema(SchemaMessage {
                stream: "s".into(),
                schema: json!({}),
                key_properties: vec![],
                bookmark_properties: None,
            }),
            Message::Record(RecordMessage {
                stream: "users".into(),
                record: json!({"id": 1, "name": "Zoë \"q\"\n"})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
                version: Some(1_705_314_225_000),
                time_extracted: Some(
                    crate::time::parse_datetime("2024-01-15T10:23:45.123456Z").expect("ts"),
                ),
            }),
            Message::Record(RecordMessage {
                stream: "users".into(),
                record: Map::new(),
                version: None,
                time_extracted: None,
            }),
            Message::State(StateMessage {
                value: json!({"bookmarks": {"users": {"replication_key_value": "x"}}}),
            }),
            Message::ActivateVersion(ActivateVersionMessage {
                stream: "users".into(),
                version: 3,
            }),
        ];
        for m in messages {
            let line = m.to_json_line();
            assert!(line.starts_with(&format!("{{\"type\":\"{}\"", m.type_name())));
            let back = parse(&line).expect("parses").expect("known type");
            assert_eq!(back, m, "{line}");
        }
    }

    #[test]
    fn type_may_come_last_and_unknown_fields_are_ignored() {
        let m = parse(r#"{"stream":"a","record":{"x":1},"extra":[1,2],"type":"RECORD"}"#)
            .expect("ok")
            .expect("known");
        assert_eq!(m.stream(), Some("a"));
    }

    #[test]
    fn batch_messages_as_the_sdk_writes_them() {
        let m = parse(
            r#"{"type": "BATCH", "stream": "users", "encoding": {"format": "jsonl", "compression": "gzip"}, "manifest": ["file:///tmp/users-1.json.gz", "file:///tmp/users-2.json.gz"]}"#,
        );
        let Ok(Some(Message::Batch(b))) = m else {
            panic!("{m:?}")
        };
        assert_eq!(b.stream, "users");
        assert_eq!(b.encoding.format, BatchFormat::Jsonl);
        assert_eq!(b.encoding.compression, BatchCompression::Gzip);
        assert_eq!(b.manifest.len(), 2);
        let round_trip = parse(&Message::Batch(b.clone()).to_json_line());
        assert_eq!(round_trip, Ok(Some(Message::Batch(b))));
        let plain = parse(
            r#"{"type":"BATCH","stream":"a","encoding":{"format":"parquet","compression":null},"manifest":[]}"#,
        );
        assert!(
            matches!(&plain, Ok(Some(Message::Batch(b))) if b.encoding.compression == BatchCompression::None),
            "{plain:?}"
        );
        for (bad, says) in [
            (
                r#"{"type":"BATCH","stream":"a","manifest":[]}"#,
                "missing `encoding`",
            ),
            (
                r#"{"type":"BATCH","stream":"a","encoding":{"format":"csv"},"manifest":[]}"#,
                "unknown variant `csv`",
            ),
            (
                r#"{"type":"BATCH","stream":"a","encoding":{"format":"jsonl"}}"#,
                "missing `manifest`",
            ),
            (
                r#"{"type":"BATCH","stream":"a","encoding":{"format":"jsonl"},"manifest":[1]}"#,
                "manifest",
            ),
        ] {
            let e = parse(bad).expect_err(bad);
            assert!(e.to_string().contains(says), "{bad}: {e}");
            assert!(e.to_string().contains("line 7 (BATCH)"), "{e}");
        }
    }

    #[test]
    fn unknown_types_are_skipped_not_errors() {
        assert_eq!(parse(r#"{"type":"FANCY","stream":"a"}"#), Ok(None));
        let input = b"{\"type\":\"FOO\"}\n{\"type\":\"STATE\",\"value\":{}}\n";
        let got: Vec<_> = MessageReader::new(&input[..])
            .collect::<Result<_>>()
            .expect("reads");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 2);
    }

    #[test]
    fn malformed_lines_name_line_type_and_problem() {
        let e = err("{not json");
        assert_eq!(e.line, 7);
        assert!(e.reason.contains("invalid JSON"), "{e}");

        let e = err(r#"{"stream":"a","record":{}}"#);
        assert_eq!(e.reason, "missing `type`");

        let e = err(r#"{"type":"RECORD","record":{}}"#);
        assert_eq!(e.message_type.as_deref(), Some("RECORD"));
        assert_eq!(e.reason, "missing `stream`");
        assert_eq!(e.to_string(), "line 7 (RECORD): missing `stream`");

        let e = err(r#"{"type":"RECORD","stream":"s","record":[1]}"#);
        assert_eq!(
            e.to_string(),
            "line 7 (RECORD), stream 's': `record` must be an object, found an array"
        );

        let e = err(r#"{"type":"RECORD","stream":5,"record":{}}"#);
        assert!(e.reason.contains("`stream` must be a string"));

        let e = err(r#"{"type":"SCHEMA","stream":"s","schema":{},"key_properties":"id"}"#);
        assert!(
            e.reason
                .contains("`key_properties` must be a list of strings")
        );

        let e = err(r#"{"type":"STATE"}"#);
        assert_eq!(e.reason, "missing `value`");

        let e = err(r#"{"type":"ACTIVATE_VERSION","stream":"s","version":"x"}"#);
        assert!(e.reason.contains("`version` must be an integer"));

        let e = err(r#"{"type":"RECORD","stream":"s","record":{},"time_extracted":"yesterday"}"#);
        assert!(e.reason.contains("time_extracted"));

        let e = err(r#"[1,2]"#);
        assert!(e.reason.contains("must be a JSON object"), "{e}");
        let e = err(r#"{"type":3}"#);
        assert!(e.reason.contains("`type` must be a string"));
        let e = err("");
        assert!(e.reason.contains("empty line"));
        let e = err("   ");
        assert!(e.reason.contains("empty line"));
    }

    #[test]
    fn invalid_utf8_is_an_error_with_its_line() {
        let input = b"{\"type\":\"STATE\",\"value\":{}}\n{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{\"a\":\"\xff\xfe\"}}\n";
        let mut r = MessageReader::new(&input[..]);
        assert!(r.next_message().expect("first").is_some());
        let e = r.next_message().expect_err("second fails");
        assert_eq!(e.line(), Some(2));
        assert!(e.to_string().contains("line 2"), "{e}");
    }

    #[test]
    fn crlf_and_missing_final_newline_are_accepted() {
        let input =
            b"{\"type\":\"STATE\",\"value\":{}}\r\n{\"type\":\"STATE\",\"value\":{\"a\":1}}";
        let got: Vec<_> = MessageReader::new(&input[..])
            .collect::<Result<_>>()
            .expect("reads");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn overlong_lines_are_refused_and_reading_goes_on() {
        let mut input = vec![b'{'; 100];
        input.extend_from_slice(b"\n{\"type\":\"STATE\",\"value\":{}}\n");
        let mut r = MessageReader::new(&input[..]).with_max_line_bytes(50);
        let e = r.next_message().expect_err("too long");
        assert_eq!(e.line(), Some(1));
        let (line, m) = r.next_message().expect("ok").expect("some");
        assert_eq!((line, m.type_name()), (2, "STATE"));
    }

    #[test]
    fn state_values_are_any_json() {
        for value in [json!("checkpoint-7"), json!([1, 2]), json!(42), json!(null)] {
            let line = json!({"type": "STATE", "value": value}).to_string();
            let m = parse(&line).expect("parses").expect("known");
            assert_eq!(m, Message::State(StateMessage { value }));
        }
    }

    #[test]
    fn float_versions_without_fraction_are_integers() {
        let m = parse(r#"{"type":"ACTIVATE_VERSION","stream":"s","version":1705314225000.0}"#)
            .expect("ok")
            .expect("known");
        assert_eq!(
            m,
            Message::ActivateVersion(ActivateVersionMessage {
                stream: "s".into(),
                version: 1_705_314_225_000
            })
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn json_leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                any::<i64>().prop_map(Value::from),
                any::<f64>()
                    .prop_filter("finite", |f| f.is_finite())
                    .prop_map(Value::from),
                ".*".prop_map(Value::String),
            ]
        }

        fn json_value() -> impl Strategy<Value = Value> {
            json_leaf().prop_recursive(4, 32, 6, |inner| {
                prop_oneof![
                    proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                    proptest::collection::btree_map(".*", inner, 0..6)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #[test]
            fn records_round_trip(stream in "[a-z_\\-.]{1,12}", record in proptest::collection::btree_map(".*", json_value(), 0..8), version in proptest::option::of(any::<i64>())) {
                let m = Message::Record(RecordMessage { stream, record: record.into_iter().collect(), version, time_extracted: None });
                let back = parse(&m.to_json_line()).expect("parses").expect("known");
                prop_assert_eq!(back, m);
            }

            #[test]
            fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = parse_line(1, &bytes);
            }
        }
    }
}
