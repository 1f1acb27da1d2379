//! Records to Arrow: a decoder tree built once per SCHEMA, records pushed, batches flushed.
//!
//! [`RecordDecoder`] holds one Arrow builder per column (nested builders for structs and
//! lists), appends each record's values in place, and [`finish`](RecordDecoder::finish)es
//! them into a `RecordBatch` that both targets hand to their destination unchanged. Values
//! are converted as [`crate::fields`] documents: date-times are parsed in every accepted form
//! and stored as UTC microseconds, JSON columns receive JSON text.
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
//! let batch = decoder.finish(chrono::Utc::now())?.expect("one row");
//! assert_eq!(batch.num_rows(), 1);
//! # Ok::<(), singer_target::Error>(())
//! ```

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, ListArray,
    NullBufferBuilder, StringBuilder, StructArray, Time64MicrosecondBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Timelike, Utc};
use serde_json::Value;

use singer_core::message::Record;
use singer_core::schema::{Column, Kind};

use crate::error::{Error, Result};
use crate::fields::{UTC, data_type, field_of, fields_of};
use crate::metadata::{METADATA_COLUMNS, SDC_DELETED_AT, metadata_fields};
use crate::stream_schema::StreamSchema;

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
    columns: Vec<(String, Builder)>,
    meta: Option<MetaBuilders>,
    rows: usize,
}

impl std::fmt::Debug for RecordDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDecoder")
            .field("stream", &self.stream)
            .field("rows", &self.rows)
            .finish_non_exhaustive()
    }
}

struct MetaBuilders {
    extracted_at: TimestampMicrosecondBuilder,
    received_at: TimestampMicrosecondBuilder,
    deleted_at: TimestampMicrosecondBuilder,
    sequence: Int64Builder,
    table_version: Int64Builder,
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
            MetaBuilders {
                extracted_at: ts_builder(),
                received_at: ts_builder(),
                deleted_at: ts_builder(),
                sequence: Int64Builder::new(),
                table_version: Int64Builder::new(),
            }
        });
        RecordDecoder {
            stream: schema.stream().to_string(),
            schema: Arc::new(Schema::new(fields)),
            columns: data
                .into_iter()
                .map(|c| (c.name.clone(), Builder::new(&c.kind)))
                .collect(),
            meta,
            rows: 0,
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

    /// Appends one record. Properties the schema does not declare are ignored; missing ones
    /// are null. On error the row is not counted, and [`finish`](Self::finish) still yields
    /// the rows before it.
    pub fn push(&mut self, record: &Record, meta: &RowMeta, line: u64) -> Result<()> {
        for (name, builder) in &mut self.columns {
            let value = record.get(name.as_str()).unwrap_or(&Value::Null);
            if let Err(mut e) = builder.append(value) {
                e.path.push(name.clone());
                return Err(e.into_error(&self.stream, line));
            }
        }
        if let Some(m) = &mut self.meta {
            let deleted_at = match record.get(SDC_DELETED_AT) {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => {
                    Some(singer_core::time::parse_datetime(s).map_err(|r| {
                        Error::record(&self.stream, line, Some(SDC_DELETED_AT.into()), r)
                    })?)
                }
                Some(_) => {
                    return Err(Error::record(
                        &self.stream,
                        line,
                        Some(SDC_DELETED_AT.into()),
                        "must be a date-time string",
                    ));
                }
            };
            m.extracted_at
                .append_option(meta.extracted_at.map(|t| t.timestamp_micros()));
            m.received_at.append_value(meta.received_at_micros);
            m.deleted_at
                .append_option(deleted_at.map(|t| t.timestamp_micros()));
            m.sequence.append_value(meta.sequence);
            m.table_version.append_option(meta.table_version);
        }
        self.rows += 1;
        Ok(())
    }

    /// The pushed rows as one batch (`None` if there are none), and a fresh start.
    /// `batched_at` fills `_sdc_batched_at`.
    pub fn finish(&mut self, batched_at: DateTime<Utc>) -> Result<Option<RecordBatch>> {
        let rows = std::mem::take(&mut self.rows);
        let mut arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|(_, b)| truncate(b.finish(), rows))
            .collect();
        if let Some(m) = &mut self.meta {
            let mut batched = ts_builder();
            batched.append_value_n(batched_at.timestamp_micros(), rows);
            arrays.push(truncate(Arc::new(m.extracted_at.finish()), rows));
            arrays.push(truncate(Arc::new(m.received_at.finish()), rows));
            arrays.push(Arc::new(batched.finish()));
            arrays.push(truncate(Arc::new(m.deleted_at.finish()), rows));
            arrays.push(truncate(Arc::new(m.sequence.finish()), rows));
            arrays.push(truncate(Arc::new(m.table_version.finish()), rows));
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

fn truncate(array: ArrayRef, len: usize) -> ArrayRef {
    if array.len() > len {
        array.slice(0, len)
    } else {
        array
    }
}

fn ts_builder() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone(UTC)
}

/// A conversion failure, with the property path collected on the way up.
struct ConvertError {
    path: Vec<String>,
    reason: String,
}

impl ConvertError {
    fn new(reason: impl Into<String>) -> Self {
        ConvertError {
            path: Vec::new(),
            reason: reason.into(),
        }
    }

    fn into_error(self, stream: &str, line: u64) -> Error {
        let field = self
            .path
            .iter()
            .rev()
            .cloned()
            .collect::<Vec<_>>()
            .join(".");
        Error::record(stream, line, Some(field), self.reason)
    }
}

type Convert<T = ()> = std::result::Result<T, ConvertError>;

enum Builder {
    Integer(Int64Builder),
    Number(Float64Builder),
    Boolean(BooleanBuilder),
    String(StringBuilder),
    Json(StringBuilder),
    DateTime(TimestampMicrosecondBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Struct(StructBuilder),
    List(ListBuilder),
}

struct StructBuilder {
    fields: Fields,
    children: Vec<(String, Builder)>,
    validity: NullBufferBuilder,
    len: usize,
}

struct ListBuilder {
    field: FieldRef,
    child: Box<Builder>,
    offsets: Vec<i32>,
    validity: NullBufferBuilder,
}

impl Builder {
    fn new(kind: &Kind) -> Self {
        match kind {
            Kind::Integer => Builder::Integer(Int64Builder::new()),
            Kind::Number => Builder::Number(Float64Builder::new()),
            Kind::Boolean => Builder::Boolean(BooleanBuilder::new()),
            Kind::String => Builder::String(StringBuilder::new()),
            Kind::Json => Builder::Json(StringBuilder::new()),
            Kind::DateTime => Builder::DateTime(ts_builder()),
            Kind::Date => Builder::Date(Date32Builder::new()),
            Kind::Time => Builder::Time(Time64MicrosecondBuilder::new()),
            Kind::Object(cols) => Builder::Struct(StructBuilder {
                fields: fields_of(cols),
                children: cols
                    .iter()
                    .map(|c| (c.name.clone(), Builder::new(&c.kind)))
                    .collect(),
                validity: NullBufferBuilder::new(0),
                len: 0,
            }),
            Kind::Array(item) => Builder::List(ListBuilder {
                field: Arc::new(Field::new("item", data_type(item), true)),
                child: Box::new(Builder::new(item)),
                offsets: vec![0],
                validity: NullBufferBuilder::new(0),
            }),
        }
    }

    fn append(&mut self, value: &Value) -> Convert {
        if value.is_null() {
            self.append_null();
            return Ok(());
        }
        match self {
            Builder::Integer(b) => b.append_value(to_i64(value)?),
            Builder::Number(b) => b.append_value(to_f64(value)?),
            Builder::Boolean(b) => b.append_value(to_bool(value)?),
            Builder::String(b) => match value {
                Value::String(s) => b.append_value(s),
                Value::Number(n) => b.append_value(n.to_string()),
                Value::Bool(x) => b.append_value(if *x { "true" } else { "false" }),
                other => b.append_value(other.to_string()),
            },
            Builder::Json(b) => b.append_value(value.to_string()),
            Builder::DateTime(b) => {
                let s = expect_str(value, "a date-time string")?;
                let t = singer_core::time::parse_datetime(s).map_err(ConvertError::new)?;
                b.append_value(t.timestamp_micros());
            }
            Builder::Date(b) => {
                let s = expect_str(value, "a date string")?;
                let d = singer_core::time::parse_date(s).map_err(ConvertError::new)?;
                b.append_value(days_since_epoch(d));
            }
            Builder::Time(b) => {
                let s = expect_str(value, "a time string")?;
                let t = singer_core::time::parse_time(s).map_err(ConvertError::new)?;
                let micros = i64::from(t.num_seconds_from_midnight()) * 1_000_000
                    + i64::from(t.nanosecond() / 1_000);
                b.append_value(micros);
            }
            Builder::Struct(s) => {
                let Value::Object(map) = value else {
                    return Err(ConvertError::new(format!(
                        "expected an object, found {}",
                        singer_core::message::json_kind(value)
                    )));
                };
                for (name, child) in &mut s.children {
                    let v = map.get(name.as_str()).unwrap_or(&Value::Null);
                    if let Err(mut e) = child.append(v) {
                        e.path.push(name.clone());
                        return Err(e);
                    }
                }
                s.validity.append_non_null();
                s.len += 1;
            }
            Builder::List(l) => {
                let Value::Array(items) = value else {
                    return Err(ConvertError::new(format!(
                        "expected an array, found {}",
                        singer_core::message::json_kind(value)
                    )));
                };
                let start = l.offsets.last().copied().unwrap_or(0);
                for (i, item) in items.iter().enumerate() {
                    if let Err(mut e) = l.child.append(item) {
                        e.path.push(i.to_string());
                        return Err(e);
                    }
                }
                let end = i32::try_from(items.len())
                    .ok()
                    .and_then(|n| start.checked_add(n))
                    .ok_or_else(|| ConvertError::new("too many list items in one batch"))?;
                l.offsets.push(end);
                l.validity.append_non_null();
            }
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            Builder::Integer(b) => b.append_null(),
            Builder::Number(b) => b.append_null(),
            Builder::Boolean(b) => b.append_null(),
            Builder::String(b) | Builder::Json(b) => b.append_null(),
            Builder::DateTime(b) => b.append_null(),
            Builder::Date(b) => b.append_null(),
            Builder::Time(b) => b.append_null(),
            Builder::Struct(s) => {
                for (_, child) in &mut s.children {
                    child.append_null();
                }
                s.validity.append_null();
                s.len += 1;
            }
            Builder::List(l) => {
                let last = l.offsets.last().copied().unwrap_or(0);
                l.offsets.push(last);
                l.validity.append_null();
            }
        }
    }

    /// Finishes the builder. Values of a row that failed half-way are cut off, so the
    /// result holds only whole rows.
    fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Integer(b) => Arc::new(b.finish()),
            Builder::Number(b) => Arc::new(b.finish()),
            Builder::Boolean(b) => Arc::new(b.finish()),
            Builder::String(b) | Builder::Json(b) => Arc::new(b.finish()),
            Builder::DateTime(b) => Arc::new(b.finish()),
            Builder::Date(b) => Arc::new(b.finish()),
            Builder::Time(b) => Arc::new(b.finish()),
            Builder::Struct(s) => {
                let len = std::mem::take(&mut s.len);
                let children: Vec<ArrayRef> = s
                    .children
                    .iter_mut()
                    .map(|(_, c)| truncate(c.finish(), len))
                    .collect();
                let nulls = s.validity.finish();
                if s.fields.is_empty() {
                    return Arc::new(StructArray::new_empty_fields(len, nulls));
                }
                match StructArray::try_new(s.fields.clone(), children, nulls) {
                    Ok(a) => Arc::new(a),
                    // Lengths are kept equal above; an empty array of the type is the
                    // only other thing this can return.
                    Err(_) => {
                        arrow::array::new_null_array(&DataType::Struct(s.fields.clone()), len)
                    }
                }
            }
            Builder::List(l) => {
                let offsets = std::mem::replace(&mut l.offsets, vec![0]);
                let nulls = l.validity.finish();
                let child = l.child.finish();
                let len = offsets.len() - 1;
                let field = l.field.clone();
                match ListArray::try_new(
                    field.clone(),
                    OffsetBuffer::new(offsets.into()),
                    child,
                    nulls,
                ) {
                    Ok(a) => Arc::new(a),
                    Err(_) => arrow::array::new_null_array(&DataType::List(field), len),
                }
            }
        }
    }
}

fn expect_str<'a>(value: &'a Value, what: &str) -> Convert<&'a str> {
    value.as_str().ok_or_else(|| {
        ConvertError::new(format!(
            "expected {what}, found {}",
            singer_core::message::json_kind(value)
        ))
    })
}

fn to_i64(value: &Value) -> Convert<i64> {
    let out = match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= 9.007_199_254_740_992e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    out.ok_or_else(|| ConvertError::new(format!("expected an integer, found {}", describe(value))))
}

fn to_f64(value: &Value) -> Convert<f64> {
    let out = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    out.ok_or_else(|| ConvertError::new(format!("expected a number, found {}", describe(value))))
}

fn to_bool(value: &Value) -> Convert<bool> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(ConvertError::new(format!(
            "expected a boolean, found {}",
            describe(other)
        ))),
    }
}

/// A value for an error message: short scalars as they are, the rest by kind.
fn describe(value: &Value) -> String {
    match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) if s.chars().count() <= 40 => format!("{s:?}"),
        other => singer_core::message::json_kind(other).to_string(),
    }
}

fn days_since_epoch(d: NaiveDate) -> i32 {
    const EPOCH_DAYS_FROM_CE: i32 = 719_163;
    use chrono::Datelike;
    d.num_days_from_ce() - EPOCH_DAYS_FROM_CE
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
