//! Column builders that can take back a half-appended row.
//!
//! The raw decoder ([`super::raw`]) appends values while it parses a record; when it meets
//! something only the `Value` path handles (a duplicate key, a value the checks are not
//! sure of), it truncates every builder to the last whole row and hands the record over.
//! Arrow's own builders cannot truncate, so these keep plain vectors and build the arrays at
//! [`Builder::finish`].
//!
//! [`Builder::append`] is the reference conversion of a JSON value, as [`crate::fields`]
//! documents it; the raw decoder must agree with it value for value.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int64Array, ListArray, StringArray,
    StructArray, Time64MicrosecondArray, TimestampMicrosecondArray,
};
use arrow::array::{BooleanBufferBuilder, NullBufferBuilder};
use arrow::buffer::{Buffer, OffsetBuffer};
use arrow::datatypes::{Field, FieldRef, Fields};
use arrow::error::ArrowError;
use chrono::{NaiveDate, Timelike};
use serde_json::Value;

use singer_core::schema::{Column, Kind};

use crate::fields::{UTC, data_type, fields_of};

/// A conversion failure, with the property path collected on the way up.
pub(super) struct ConvertError {
    pub path: Vec<String>,
    pub reason: String,
}

impl ConvertError {
    pub fn new(reason: impl Into<String>) -> Self {
        ConvertError {
            path: Vec::new(),
            reason: reason.into(),
        }
    }
}

pub(super) type Convert<T = ()> = std::result::Result<T, ConvertError>;

/// The columns of a record or of a struct, and how to find one by property name.
pub(super) struct Columns {
    pub names: Vec<String>,
    pub builders: Vec<Builder>,
    pub index: KeyIndex,
    /// Scratch for the raw decoder: which columns the current object set.
    pub seen: Vec<bool>,
    /// Scratch for the raw decoder: key hashes of undeclared members (duplicates check).
    pub others: Vec<u64>,
}

impl Columns {
    pub fn new(columns: &[&Column]) -> Self {
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        Columns {
            index: KeyIndex::new(&names),
            builders: columns.iter().map(|c| Builder::new(&c.kind)).collect(),
            seen: vec![false; names.len()],
            others: Vec::new(),
            names,
        }
    }

    pub fn truncate(&mut self, len: usize) {
        for b in &mut self.builders {
            b.truncate(len);
        }
    }
}

/// Column positions by the canonical hash of the property name
/// ([`crate::ack::canon::key`]), which the raw decoder computes for every key anyway.
pub(super) struct KeyIndex {
    /// (name hash, column), sorted by hash.
    by_hash: Vec<(u64, usize)>,
}

impl KeyIndex {
    fn new(names: &[String]) -> Self {
        let mut by_hash: Vec<(u64, usize)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (crate::ack::canon::key(n), i))
            .collect();
        by_hash.sort_unstable();
        KeyIndex { by_hash }
    }

    /// The column named `name`, whose hash is `hash`.
    pub fn find(&self, hash: u64, name: &str, names: &[String]) -> Option<usize> {
        let start = self.by_hash.partition_point(|(h, _)| *h < hash);
        self.by_hash[start..]
            .iter()
            .take_while(|(h, _)| *h == hash)
            .map(|(_, i)| *i)
            .find(|i| names[*i] == name)
    }
}

pub(super) struct Prim<T> {
    pub values: Vec<T>,
    pub nulls: NullBufferBuilder,
}

impl<T: Copy + Default> Prim<T> {
    fn new() -> Self {
        Prim {
            values: Vec::new(),
            nulls: NullBufferBuilder::new(0),
        }
    }

    pub fn push(&mut self, v: T) {
        self.values.push(v);
        self.nulls.append_non_null();
    }

    fn push_null(&mut self) {
        self.values.push(T::default());
        self.nulls.append_null();
    }

    fn truncate(&mut self, len: usize) {
        self.values.truncate(len);
        self.nulls.truncate(len);
    }

    fn take(&mut self) -> (Vec<T>, Option<arrow::buffer::NullBuffer>) {
        (std::mem::take(&mut self.values), self.nulls.finish())
    }
}

pub(super) struct Bools {
    values: BooleanBufferBuilder,
    nulls: NullBufferBuilder,
}

impl Bools {
    pub fn push(&mut self, v: bool) {
        self.values.append(v);
        self.nulls.append_non_null();
    }
}

/// UTF-8 text: bytes and offsets, as a `StringArray` holds them.
pub(super) struct Text {
    pub bytes: Vec<u8>,
    offsets: Vec<i32>,
    nulls: NullBufferBuilder,
}

impl Text {
    fn new() -> Self {
        Text {
            bytes: Vec::new(),
            offsets: vec![0],
            nulls: NullBufferBuilder::new(0),
        }
    }

    pub fn push(&mut self, s: &str) -> Convert {
        self.bytes.extend_from_slice(s.as_bytes());
        self.end_value()
    }

    /// Ends a value written straight into [`Self::bytes`].
    pub fn end_value(&mut self) -> Convert {
        let end = i32::try_from(self.bytes.len())
            .map_err(|_| ConvertError::new("more than 2 GiB of text in one batch"))?;
        self.offsets.push(end);
        self.nulls.append_non_null();
        Ok(())
    }

    fn push_null(&mut self) {
        let end = self.offsets.last().copied().unwrap_or(0);
        self.offsets.push(end);
        self.nulls.append_null();
    }

    fn truncate(&mut self, len: usize) {
        self.offsets.truncate(len + 1);
        let end = self.offsets.last().copied().unwrap_or(0);
        self.bytes.truncate(usize::try_from(end).unwrap_or(0));
        self.nulls.truncate(len);
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        let bytes = std::mem::take(&mut self.bytes);
        let nulls = self.nulls.finish();
        Ok(Arc::new(StringArray::try_new(
            OffsetBuffer::new(offsets.into()),
            Buffer::from_vec(bytes),
            nulls,
        )?))
    }
}

pub(super) struct StructBuilder {
    fields: Fields,
    pub columns: Columns,
    validity: NullBufferBuilder,
    len: usize,
}

impl StructBuilder {
    /// Marks the struct value of the current row present (its children are appended).
    pub fn end_value(&mut self) {
        self.validity.append_non_null();
        self.len += 1;
    }
}

pub(super) struct ListBuilder {
    field: FieldRef,
    pub child: Builder,
    offsets: Vec<i32>,
    validity: NullBufferBuilder,
}

impl ListBuilder {
    /// Ends the list value of the current row, whose items were appended to the child.
    pub fn end_value(&mut self, items: usize) -> Convert {
        let start = self.offsets.last().copied().unwrap_or(0);
        let end = i32::try_from(items)
            .ok()
            .and_then(|n| start.checked_add(n))
            .ok_or_else(|| ConvertError::new("too many list items in one batch"))?;
        self.offsets.push(end);
        self.validity.append_non_null();
        Ok(())
    }
}

/// One column's values so far.
pub(super) enum Builder {
    Integer(Prim<i64>),
    Number(Prim<f64>),
    Boolean(Bools),
    String(Text),
    Json(Text),
    DateTime(Prim<i64>),
    Date(Prim<i32>),
    Time(Prim<i64>),
    Struct(Box<StructBuilder>),
    List(Box<ListBuilder>),
}

impl Builder {
    pub fn new(kind: &Kind) -> Self {
        match kind {
            Kind::Integer => Builder::Integer(Prim::new()),
            Kind::Number => Builder::Number(Prim::new()),
            Kind::Boolean => Builder::Boolean(Bools {
                values: BooleanBufferBuilder::new(0),
                nulls: NullBufferBuilder::new(0),
            }),
            Kind::String => Builder::String(Text::new()),
            Kind::Json => Builder::Json(Text::new()),
            Kind::DateTime => Builder::DateTime(Prim::new()),
            Kind::Date => Builder::Date(Prim::new()),
            Kind::Time => Builder::Time(Prim::new()),
            Kind::Object(cols) => Builder::Struct(Box::new(StructBuilder {
                fields: fields_of(cols),
                columns: Columns::new(&cols.iter().collect::<Vec<_>>()),
                validity: NullBufferBuilder::new(0),
                len: 0,
            })),
            Kind::Array(item) => Builder::List(Box::new(ListBuilder {
                field: Arc::new(Field::new("item", data_type(item), true)),
                child: Builder::new(item),
                offsets: vec![0],
                validity: NullBufferBuilder::new(0),
            })),
        }
    }

    /// Whether the value at `row` is present (not null).
    pub fn is_valid(&self, row: usize) -> bool {
        let nulls = match self {
            Builder::Integer(p) | Builder::DateTime(p) | Builder::Time(p) => &p.nulls,
            Builder::Number(p) => &p.nulls,
            Builder::Date(p) => &p.nulls,
            Builder::Boolean(b) => &b.nulls,
            Builder::String(t) | Builder::Json(t) => &t.nulls,
            Builder::Struct(s) => &s.validity,
            Builder::List(l) => &l.validity,
        };
        row < nulls.len() && nulls.is_valid(row)
    }

    /// Appends one value, converted as [`crate::fields`] documents.
    pub fn append(&mut self, value: &Value) -> Convert {
        if value.is_null() {
            self.append_null();
            return Ok(());
        }
        match self {
            Builder::Integer(b) => b.push(to_i64(value)?),
            Builder::Number(b) => b.push(to_f64(value)?),
            Builder::Boolean(b) => b.push(to_bool(value)?),
            Builder::String(b) => match value {
                Value::String(s) => b.push(s)?,
                Value::Number(n) => b.push(&n.to_string())?,
                Value::Bool(x) => b.push(if *x { "true" } else { "false" })?,
                other => b.push(&other.to_string())?,
            },
            Builder::Json(b) => b.push(&value.to_string())?,
            Builder::DateTime(b) => {
                let s = expect_str(value, "a date-time string")?;
                let t = singer_core::time::parse_datetime(s).map_err(ConvertError::new)?;
                b.push(t.timestamp_micros());
            }
            Builder::Date(b) => {
                let s = expect_str(value, "a date string")?;
                let d = singer_core::time::parse_date(s).map_err(ConvertError::new)?;
                b.push(days_since_epoch(d));
            }
            Builder::Time(b) => {
                let s = expect_str(value, "a time string")?;
                let t = singer_core::time::parse_time(s).map_err(ConvertError::new)?;
                b.push(time_micros(t));
            }
            Builder::Struct(s) => {
                let Value::Object(map) = value else {
                    return Err(ConvertError::new(format!(
                        "expected an object, found {}",
                        singer_core::message::json_kind(value)
                    )));
                };
                let columns = &mut s.columns;
                for (name, child) in columns.names.iter().zip(&mut columns.builders) {
                    let v = map.get(name.as_str()).unwrap_or(&Value::Null);
                    if let Err(mut e) = child.append(v) {
                        e.path.push(name.clone());
                        return Err(e);
                    }
                }
                s.end_value();
            }
            Builder::List(l) => {
                let Value::Array(items) = value else {
                    return Err(ConvertError::new(format!(
                        "expected an array, found {}",
                        singer_core::message::json_kind(value)
                    )));
                };
                for (i, item) in items.iter().enumerate() {
                    if let Err(mut e) = l.child.append(item) {
                        e.path.push(i.to_string());
                        return Err(e);
                    }
                }
                l.end_value(items.len())?;
            }
        }
        Ok(())
    }

    pub fn append_null(&mut self) {
        match self {
            Builder::Integer(b) | Builder::DateTime(b) | Builder::Time(b) => b.push_null(),
            Builder::Number(b) => b.push_null(),
            Builder::Date(b) => b.push_null(),
            Builder::Boolean(b) => {
                b.values.append(false);
                b.nulls.append_null();
            }
            Builder::String(b) | Builder::Json(b) => b.push_null(),
            Builder::Struct(s) => {
                for child in &mut s.columns.builders {
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

    /// Keeps the first `len` values (whole rows), dropping a row appended half-way.
    pub fn truncate(&mut self, len: usize) {
        match self {
            Builder::Integer(b) | Builder::DateTime(b) | Builder::Time(b) => b.truncate(len),
            Builder::Number(b) => b.truncate(len),
            Builder::Date(b) => b.truncate(len),
            Builder::Boolean(b) => {
                if b.values.len() > len {
                    b.values.truncate(len);
                }
                b.nulls.truncate(len);
            }
            Builder::String(b) | Builder::Json(b) => b.truncate(len),
            Builder::Struct(s) => {
                s.columns.truncate(len);
                s.validity.truncate(len);
                s.len = s.len.min(len);
            }
            Builder::List(l) => {
                l.offsets.truncate(len + 1);
                l.validity.truncate(len);
                let items = l.offsets.last().copied().unwrap_or(0);
                l.child.truncate(usize::try_from(items).unwrap_or(0));
            }
        }
    }

    /// The values as an array, and a fresh start. Call [`Self::truncate`] first if a row
    /// may have failed half-way.
    pub fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Builder::Integer(b) => {
                let (v, n) = b.take();
                Arc::new(Int64Array::new(v.into(), n))
            }
            Builder::Number(b) => {
                let (v, n) = b.take();
                Arc::new(Float64Array::new(v.into(), n))
            }
            Builder::Boolean(b) => Arc::new(BooleanArray::new(b.values.finish(), b.nulls.finish())),
            Builder::String(b) | Builder::Json(b) => b.finish()?,
            Builder::DateTime(b) => {
                let (v, n) = b.take();
                Arc::new(TimestampMicrosecondArray::new(v.into(), n).with_timezone(UTC))
            }
            Builder::Date(b) => {
                let (v, n) = b.take();
                Arc::new(Date32Array::new(v.into(), n))
            }
            Builder::Time(b) => {
                let (v, n) = b.take();
                Arc::new(Time64MicrosecondArray::new(v.into(), n))
            }
            Builder::Struct(s) => {
                let len = std::mem::take(&mut s.len);
                let children = s
                    .columns
                    .builders
                    .iter_mut()
                    .map(Builder::finish)
                    .collect::<Result<Vec<_>, _>>()?;
                let nulls = s.validity.finish();
                if s.fields.is_empty() {
                    Arc::new(StructArray::new_empty_fields(len, nulls))
                } else {
                    Arc::new(StructArray::try_new(s.fields.clone(), children, nulls)?)
                }
            }
            Builder::List(l) => {
                let offsets = std::mem::replace(&mut l.offsets, vec![0]);
                let nulls = l.validity.finish();
                let child = l.child.finish()?;
                Arc::new(ListArray::try_new(
                    l.field.clone(),
                    OffsetBuffer::new(offsets.into()),
                    child,
                    nulls,
                )?)
            }
        })
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

/// The largest integer a float holds exactly (2^53): floats beyond it are not taken as
/// integers.
pub(super) const MAX_EXACT_FLOAT_INT: f64 = 9.007_199_254_740_992e15;

fn to_i64(value: &Value) -> Convert<i64> {
    let out = match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= MAX_EXACT_FLOAT_INT)
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
        Value::String(s) => string_bool(s).ok_or_else(|| {
            ConvertError::new(format!("expected a boolean, found {}", describe(value)))
        }),
        other => Err(ConvertError::new(format!(
            "expected a boolean, found {}",
            describe(other)
        ))),
    }
}

/// `"true"` / `"false"` in any case, as booleans.
pub(super) fn string_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
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

pub(super) fn days_since_epoch(d: NaiveDate) -> i32 {
    const EPOCH_DAYS_FROM_CE: i32 = 719_163;
    use chrono::Datelike;
    d.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

pub(super) fn time_micros(t: chrono::NaiveTime) -> i64 {
    i64::from(t.num_seconds_from_midnight()) * 1_000_000 + i64::from(t.nanosecond() / 1_000)
}
