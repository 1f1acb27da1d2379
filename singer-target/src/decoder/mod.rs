//! Records to Arrow: a decoder tree built once per SCHEMA, records pushed, batches flushed.
//!
//! [`RecordDecoder`] holds one column builder per column (nested builders for structs and
//! lists), appends each record's values in place, and [`finish`](RecordDecoder::finish)es
//! them into a `RecordBatch` that both targets hand to their destination unchanged. Values
//! are converted as [`crate::fields`] documents: date-times are parsed in every accepted form
//! and stored as UTC microseconds, JSON columns receive JSON text.
//!
//! Records arrive two ways: as a parsed `Value` map ([`RecordDecoder::push`], the reference
//! path, used for BATCH files and flattened streams), or as the record's JSON text
//! ([`RecordDecoder::push_json`]), decoded in one pass without building a `Value`
//! (`raw`), with validation compiled into the decoder (`check`) and the record's canonical
//! hash computed on the way. The raw path gives up on anything it is not sure of, and the
//! record then takes the reference path; results are the same either way.
//!
//! With record metadata on, the Meltano SDK's `_sdc_*` columns follow the data columns.
//!
//! ```
//! use singer_target::{RecordDecoder, RowMeta};
//! use singer_target::StreamSchema;
//! use serde_json::json;
//!
//! let schema = StreamSchema::new("users", &json!({"properties": {
//!     "id": {"type": "integer"}, "seen": {"type": "string", "format": "date-time"}}}), vec![])?;
//! let mut decoder = RecordDecoder::new(&schema, false);
//! let record = json!({"id": 7, "seen": "2024-01-15T10:23:45+0000"});
//! decoder.push(record.as_object().unwrap(), &RowMeta::default(), 1)?;
//! decoder.push_json(&schema, r#"{"seen": null, "id": 8}"#, &RowMeta::default(), 2)?;
//! let batch = decoder.finish(chrono::Utc::now())?.expect("two rows");
//! assert_eq!(batch.num_rows(), 2);
//! # Ok::<(), singer_target::Error>(())
//! ```

mod check;
mod column;
mod from_arrow;
pub(crate) mod raw;
#[cfg(test)]
pub(crate) mod tests_raw;

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, TimestampMicrosecondArray};
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use singer_core::message::Record;
use singer_core::schema::Column;

use crate::error::{Error, Result};
use crate::fields::{UTC, field_of};
use crate::metadata::{METADATA_COLUMNS, SDC_DELETED_AT, metadata_fields};
use crate::stream_schema::StreamSchema;

use check::Check;
use column::{Columns, ConvertError};

/// `column` (described by `field`) as `target`'s type when that loses nothing: integers as
/// floats, text as date-times the record path would parse, structs by field name (fields
/// missing from `column` null), list items likewise, a timestamp's zone label; `None` when
/// no exact conversion exists. For sinks that keep a column's existing type.
pub fn cast_exact(column: &ArrayRef, field: &Field, target: &Field) -> Result<Option<ArrayRef>> {
    from_arrow::cast_exact(column, field, target)
}

/// What the target knows about a record besides its values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowMeta {
    /// `time_extracted` of the RECORD message.
    pub extracted_at: Option<DateTime<Utc>>,
    /// When the target read it, in microseconds since the epoch.
    pub received_at_micros: i64,
    /// The record's sequence number.
    pub sequence: i64,
    /// The `version` of the RECORD message.
    pub table_version: Option<i64>,
}

/// Builds `RecordBatch`es of one stream from records.
pub struct RecordDecoder {
    stream: String,
    schema: SchemaRef,
    columns: Columns,
    meta: Option<MetaBuilders>,
    rows: usize,
    /// Whether [`Self::push_json`] may decode without a `Value`: not for flattened streams,
    /// nor for validated ones whose schema the checks do not cover.
    raw: bool,
    /// The compiled checks, when records are validated.
    check: Option<Check>,
    /// Columns of the key properties (must be present and not null).
    keys: Vec<usize>,
    /// Rows the raw path decoded since the decoder was made.
    raw_rows: u64,
}

impl std::fmt::Debug for RecordDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDecoder")
            .field("stream", &self.stream)
            .field("rows", &self.rows)
            .field("raw", &self.raw)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct MetaBuilders {
    extracted_at: Vec<Option<i64>>,
    received_at: Vec<i64>,
    deleted_at: Vec<Option<i64>>,
    sequence: Vec<i64>,
    table_version: Vec<Option<i64>>,
}

impl MetaBuilders {
    fn push(&mut self, meta: &RowMeta, deleted_at: Option<i64>) {
        self.extracted_at
            .push(meta.extracted_at.map(|t| t.timestamp_micros()));
        self.received_at.push(meta.received_at_micros);
        self.deleted_at.push(deleted_at);
        self.sequence.push(meta.sequence);
        self.table_version.push(meta.table_version);
    }
}

impl RecordDecoder {
    /// A decoder for the stream's columns, plus the `_sdc_*` columns when `with_metadata`.
    /// Data columns that share a metadata column's name give way to it.
    pub fn new(schema: &StreamSchema, with_metadata: bool) -> Self {
        let data: Vec<&Column> = schema
            .columns()
            .iter()
            .filter(|c| !(with_metadata && METADATA_COLUMNS.contains(&c.name.as_str())))
            .collect();
        let mut fields: Vec<Field> = data.iter().map(|c| field_of(c)).collect();
        let meta = with_metadata.then(|| {
            fields.extend(metadata_fields());
            MetaBuilders::default()
        });
        let check = if schema.validates() && data.len() == schema.columns().len() {
            check::compile(schema.json_schema(), &data)
        } else {
            None
        };
        let keys: Vec<usize> = schema
            .key_properties()
            .iter()
            .filter_map(|k| data.iter().position(|c| &c.name == k))
            .collect();
        let raw = !schema.flattens()
            && (!schema.validates() || check.is_some())
            && keys.len() == schema.key_properties().len();
        RecordDecoder {
            stream: schema.stream().to_string(),
            schema: Arc::new(Schema::new(fields)),
            columns: Columns::new(&data),
            meta,
            rows: 0,
            raw,
            check,
            keys,
            raw_rows: 0,
        }
    }

    /// The schema of the batches this decoder produces.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Rows pushed since the last [`finish`](Self::finish).
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no rows are pending.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Whether records given as JSON text are decoded without a `Value`.
    pub fn decodes_raw(&self) -> bool {
        self.raw
    }

    /// Appends one record (already checked and flattened by [`StreamSchema::prepare`]).
    /// Properties the schema does not declare are ignored; missing ones are null. On error
    /// the row is not counted, and [`finish`](Self::finish) still yields the rows before it.
    pub fn push(&mut self, record: &Record, meta: &RowMeta, line: u64) -> Result<()> {
        let deleted_at = match (&self.meta, record.get(SDC_DELETED_AT)) {
            (None, _) | (_, None | Some(Value::Null)) => None,
            (Some(_), Some(Value::String(s))) => Some(
                singer_core::time::parse_datetime(s)
                    .map_err(|r| Error::record(&self.stream, line, Some(SDC_DELETED_AT.into()), r))?
                    .timestamp_micros(),
            ),
            (Some(_), Some(_)) => {
                return Err(Error::record(
                    &self.stream,
                    line,
                    Some(SDC_DELETED_AT.into()),
                    "must be a date-time string",
                ));
            }
        };
        let columns = &mut self.columns;
        for (name, builder) in columns.names.iter().zip(&mut columns.builders) {
            let value = record.get(name.as_str()).unwrap_or(&Value::Null);
            if let Err(mut e) = builder.append(value) {
                e.path.push(name.clone());
                let error = into_error(e, &self.stream, line);
                columns.truncate(self.rows);
                return Err(error);
            }
        }
        if let Some(m) = &mut self.meta {
            m.push(meta, deleted_at);
        }
        self.rows += 1;
        Ok(())
    }

    /// Appends one record given as its JSON text (the `record` of a RECORD message) and
    /// returns its canonical hash ([`crate::ack::record_hash`]). Checks, validation and
    /// flattening are those of `schema` (the one this decoder was built from), with the
    /// same errors as [`StreamSchema::prepare`] and [`Self::push`].
    pub fn push_json(
        &mut self,
        schema: &StreamSchema,
        json: &str,
        meta: &RowMeta,
        line: u64,
    ) -> Result<u64> {
        if self.raw {
            let decoded = raw::decode(
                &mut self.columns,
                self.check.as_ref(),
                self.meta.is_some(),
                json,
            );
            match decoded {
                Ok(decoded) => {
                    if let Some(hash) = self.complete_raw_row(decoded, meta) {
                        return Ok(hash);
                    }
                }
                Err(_) => self.abandon_row(),
            }
        }
        let record: Map<String, Value> = match serde_json::from_str(json) {
            Ok(Value::Object(map)) => map,
            Ok(other) => {
                return Err(Error::record(
                    &self.stream,
                    line,
                    None,
                    format!(
                        "`record` must be an object, found {}",
                        singer_core::message::json_kind(&other)
                    ),
                ));
            }
            Err(e) => {
                return Err(Error::record(
                    &self.stream,
                    line,
                    None,
                    format!("invalid JSON: {e}"),
                ));
            }
        };
        self.push_record(schema, record, meta, line)
    }

    /// A seed that decodes a record object into this decoder's columns wherever it sits in
    /// a JSON document, for [`Self::complete_raw_row`]; `None` when the stream's records
    /// take the `Value` path. On error call [`Self::abandon_row`].
    pub(crate) fn raw_seed(&mut self) -> Option<raw::RecordSeed<'_>> {
        self.raw.then(|| raw::RecordSeed {
            columns: &mut self.columns,
            check: self.check.as_ref(),
            with_metadata: self.meta.is_some(),
        })
    }

    /// Counts the row a [`Self::raw_seed`] decoded, with its metadata, and returns its
    /// canonical hash; `None` (row taken back) when a key property is missing or null, for
    /// the `Value` path to word the error.
    pub(crate) fn complete_raw_row(
        &mut self,
        decoded: raw::Decoded,
        meta: &RowMeta,
    ) -> Option<u64> {
        let row = self.rows;
        if !self
            .keys
            .iter()
            .all(|k| self.columns.builders[*k].is_valid(row))
        {
            self.abandon_row();
            return None;
        }
        if let Some(m) = &mut self.meta {
            m.push(meta, decoded.deleted_at);
        }
        self.rows += 1;
        self.raw_rows += 1;
        Some(crate::ack::canon::record(&self.stream, decoded.hash))
    }

    /// Takes back a row the raw path appended part of.
    pub(crate) fn abandon_row(&mut self) {
        self.columns.truncate(self.rows);
    }

    /// Appends one parsed record: hashes it ([`crate::ack::record_hash`]), checks and
    /// flattens it ([`StreamSchema::prepare`]) and [`push`](Self::push)es it.
    pub fn push_record(
        &mut self,
        schema: &StreamSchema,
        record: Record,
        meta: &RowMeta,
        line: u64,
    ) -> Result<u64> {
        let hash = crate::ack::record_hash(&self.stream, &record);
        let record = schema.prepare(record, line)?;
        self.push(&record, meta, line)?;
        Ok(hash)
    }

    /// The pushed rows as one batch (`None` if there are none), and a fresh start.
    /// `batched_at` fills `_sdc_batched_at`.
    pub fn finish(&mut self, batched_at: DateTime<Utc>) -> Result<Option<RecordBatch>> {
        let rows = std::mem::take(&mut self.rows);
        self.columns.truncate(rows);
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .builders
            .iter_mut()
            .map(column::Builder::finish)
            .collect::<std::result::Result<_, _>>()?;
        if let Some(m) = &mut self.meta {
            let m = std::mem::take(m);
            let ts = |v: Vec<Option<i64>>| -> ArrayRef {
                Arc::new(TimestampMicrosecondArray::from(v).with_timezone(UTC))
            };
            arrays.push(ts(m.extracted_at));
            arrays.push(Arc::new(
                TimestampMicrosecondArray::from(m.received_at).with_timezone(UTC),
            ));
            arrays.push(Arc::new(
                TimestampMicrosecondArray::from(vec![batched_at.timestamp_micros(); rows])
                    .with_timezone(UTC),
            ));
            arrays.push(ts(m.deleted_at));
            arrays.push(Arc::new(Int64Array::from(m.sequence)));
            arrays.push(Arc::new(Int64Array::from(m.table_version)));
        }
        if rows == 0 {
            return Ok(None);
        }
        let options = arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(Some(RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &options,
        )?))
    }
}

fn into_error(e: ConvertError, stream: &str, line: u64) -> Error {
    let field = e.path.iter().rev().cloned().collect::<Vec<_>>().join(".");
    Error::record(stream, line, Some(field), e.reason)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{SDC_BATCHED_AT, SDC_EXTRACTED_AT, SDC_SEQUENCE, SDC_TABLE_VERSION};
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{
        Date32Type, Float64Type, Int64Type, Time64MicrosecondType, TimestampMicrosecondType,
    };
    use serde_json::json;

    fn decoder(schema: Value, meta: bool) -> RecordDecoder {
        RecordDecoder::new(
            &StreamSchema::new("s", &schema, vec![]).expect("schema"),
            meta,
        )
    }

    fn rec(v: Value) -> Record {
        v.as_object().cloned().expect("object")
    }

    fn push(d: &mut RecordDecoder, v: Value) -> Result<()> {
        d.push(&rec(v), &RowMeta::default(), 1)
    }

    #[test]
    fn scalars_and_nulls() {
        let mut d = decoder(
            json!({"properties": {
                "i": {"type": "integer"}, "n": {"type": "number"}, "b": {"type": "boolean"},
                "s": {"type": "string"}, "t": {"type": "string", "format": "date-time"},
                "d": {"type": "string", "format": "date"}, "tm": {"type": "string", "format": "time"},
                "j": {}}}),
            false,
        );
        push(
            &mut d,
            json!({"i": 1, "n": 1.5, "b": true, "s": "x", "t": "2024-01-15T12:00:00+0200",
            "d": "1970-01-02", "tm": "00:00:01.5", "j": {"a": [1]}}),
        )
        .expect("row 1");
        push(&mut d, json!({"i": 2.0, "n": 3, "s": 5, "j": "text"})).expect("row 2");
        push(&mut d, json!({})).expect("row 3");
        let b = d.finish(Utc::now()).expect("finish").expect("rows");
        assert_eq!(b.num_rows(), 3);
        assert_eq!(
            b.column(0).as_primitive::<Int64Type>().values(),
            &[1, 2, 0][..]
        );
        assert!(b.column(0).is_null(2));
        assert_eq!(b.column(1).as_primitive::<Float64Type>().value(1), 3.0);
        assert_eq!(b.column(3).as_string::<i32>().value(1), "5");
        assert_eq!(
            b.column(4)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            1_705_312_800_000_000
        );
        assert_eq!(b.column(5).as_primitive::<Date32Type>().value(0), 1);
        assert_eq!(
            b.column(6).as_primitive::<Time64MicrosecondType>().value(0),
            1_500_000
        );
        assert_eq!(b.column(7).as_string::<i32>().value(0), r#"{"a":[1]}"#);
        assert_eq!(b.column(7).as_string::<i32>().value(1), r#""text""#);
        assert!(
            d.finish(Utc::now()).expect("finish").is_none(),
            "decoder starts afresh"
        );
    }

    #[test]
    fn nested_structs_and_lists() {
        let mut d = decoder(
            json!({"properties": {
                "o": {"type": "object", "properties": {"a": {"type": "integer"},
                      "tags": {"type": "array", "items": {"type": "string"}}}},
                "l": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "integer"}}}}}}),
            false,
        );
        push(
            &mut d,
            json!({"o": {"a": 1, "tags": ["p", "q"]}, "l": [{"x": 1}, {"x": 2}]}),
        )
        .expect("1");
        push(&mut d, json!({"o": null, "l": []})).expect("2");
        push(&mut d, json!({"o": {"tags": null}})).expect("3");
        let b = d.finish(Utc::now()).expect("finish").expect("rows");
        let o = b.column(0).as_struct();
        assert!(o.is_null(1) && o.is_valid(0) && o.is_valid(2));
        let tags = o.column(1).as_list::<i32>();
        assert_eq!(
            tags.value(0)
                .as_string::<i32>()
                .iter()
                .flatten()
                .collect::<Vec<_>>(),
            ["p", "q"]
        );
        let l = b.column(1).as_list::<i32>();
        assert_eq!(l.value_length(0), 2);
        assert_eq!(l.value_length(1), 0);
        assert!(l.is_null(2));
    }

    #[test]
    fn errors_name_the_field_path_and_keep_whole_rows() {
        let mut d = decoder(
            json!({"properties": {"a": {"type": "integer"},
                "o": {"properties": {"l": {"type": "array", "items": {"type": "string", "format": "date-time"}}}}}}),
            false,
        );
        push(&mut d, json!({"a": 1, "o": {"l": ["2024-01-01"]}})).expect("good");
        let e = push(&mut d, json!({"a": 2, "o": {"l": ["2024-01-01", "nope"]}})).expect_err("bad");
        assert_eq!(
            e.to_string(),
            "stream 's', line 1, field 'o.l.1': 'nope' is not a date-time"
        );
        let e = push(&mut d, json!({"a": "x"})).expect_err("bad int");
        assert!(
            e.to_string()
                .contains("field 'a': expected an integer, found \"x\""),
            "{e}"
        );
        let b = d.finish(Utc::now()).expect("finish").expect("rows");
        assert_eq!(b.num_rows(), 1, "only the good row");
        assert_eq!(
            b.column(1)
                .as_struct()
                .column(0)
                .as_list::<i32>()
                .value_length(0),
            1
        );
    }

    #[test]
    fn metadata_columns() {
        let mut d = decoder(
            json!({"properties": {"id": {"type": "integer"}, "_sdc_deleted_at": {"type": "string"}}}),
            true,
        );
        let names: Vec<_> = d
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        assert_eq!(names[0], "id");
        assert_eq!(&names[1..], METADATA_COLUMNS);
        let meta = RowMeta {
            extracted_at: None,
            received_at_micros: 5,
            sequence: 9,
            table_version: Some(3),
        };
        d.push(
            &rec(json!({"id": 1, "_sdc_deleted_at": "2024-01-01T00:00:00Z"})),
            &meta,
            1,
        )
        .expect("push");
        let b = d
            .finish(DateTime::from_timestamp_micros(77).expect("ts"))
            .expect("ok")
            .expect("rows");
        let col = |n: &str| b.column_by_name(n).expect("column").clone();
        assert_eq!(
            col(SDC_BATCHED_AT)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            77
        );
        assert_eq!(col(SDC_SEQUENCE).as_primitive::<Int64Type>().value(0), 9);
        assert_eq!(
            col(SDC_TABLE_VERSION).as_primitive::<Int64Type>().value(0),
            3
        );
        assert_eq!(
            col(SDC_DELETED_AT)
                .as_primitive::<TimestampMicrosecondType>()
                .value(0),
            1_704_067_200_000_000
        );
        assert!(col(SDC_EXTRACTED_AT).is_null(0));
    }

    #[test]
    fn json_columns_are_marked() {
        let d = decoder(
            json!({"properties": {"a": {}, "b": {"type": "string"}}}),
            false,
        );
        assert!(crate::fields::is_json_field(d.schema().field(0)));
        assert!(!crate::fields::is_json_field(d.schema().field(1)));
    }
}
