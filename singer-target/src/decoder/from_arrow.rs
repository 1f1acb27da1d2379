//! Arrow rows (a Parquet BATCH file's) into a stream's batches without a JSON step.
//!
//! Each column of the file is matched to the stream's column by name and converted only
//! where the conversion loses nothing: integers to `Int64`, numbers to `Float64`, strings
//! to `Utf8`, date-times (or date-time strings, parsed as the record path parses them) to
//! UTC microseconds, structs and lists field by field. Columns the file lacks are null;
//! `_sdc_*` metadata is added as for RECORDs. The compiled checks validate every value.
//!
//! Anything this cannot take as the record path would (a JSON-text column, a column of
//! another type, a file column the schema does not declare, a value the checks refuse, a
//! null key, a stream validated by jsonschema or flattened) makes [`RecordDecoder::decode_arrow`]
//! answer `None`: those rows take the record path, which loads them or words the error.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, ListArray, StructArray,
    TimestampMicrosecondArray, new_null_array,
};
use arrow::buffer::NullBuffer;
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, TimeUnit};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use chrono::{DateTime, Utc};

use super::RecordDecoder;
use super::check::{Check, Num};
use crate::error::Result;
use crate::fields::{UTC, is_json_field, timestamp_type};
use crate::metadata::{METADATA_COLUMNS, SDC_DELETED_AT};

impl RecordDecoder {
    /// The file's rows as one batch of this decoder's schema; `None` when they must take
    /// the record path instead.
    pub(crate) fn decode_arrow(
        &self,
        file: &RecordBatch,
        received_at_micros: i64,
        batched_at: DateTime<Utc>,
    ) -> Result<Option<RecordBatch>> {
        // Flattened or jsonschema-validated streams: the record path only.
        if !self.raw {
            return Ok(None);
        }
        let rows = file.num_rows();
        let file_schema = file.schema();
        let declared = |name: &str| {
            self.columns.names.iter().any(|n| n == name)
                || (self.meta.is_some() && name == SDC_DELETED_AT)
        };
        if file_schema.fields().iter().any(|f| !declared(f.name())) {
            return Ok(None);
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.schema.fields().len());
        let required = self.check.as_ref().map_or(&[][..], |c| &c.required[..]);
        for (i, name) in self.columns.names.iter().enumerate() {
            let target = self.schema.field(i);
            let check = self.check.as_ref().and_then(|c| c.children.get(i));
            let array = match file_schema.column_with_name(name) {
                Some((at, field)) => match conform(file.column(at), field, target, check, None)? {
                    Some(a) => a,
                    None => return Ok(None),
                },
                // A required property no row has: the record path words it.
                None if required.contains(&i) && rows > 0 => return Ok(None),
                None => new_null_array(target.data_type(), rows),
            };
            arrays.push(array);
        }
        if self.keys.iter().any(|&k| arrays[k].null_count() > 0) {
            return Ok(None);
        }

        if self.meta.is_some() {
            let deleted_at: ArrayRef = match file_schema.column_with_name(SDC_DELETED_AT) {
                None => new_null_array(&timestamp_type(), rows),
                Some((at, source_field)) => {
                    let field = Field::new(SDC_DELETED_AT, timestamp_type(), true);
                    match conform(file.column(at), source_field, &field, None, None)? {
                        Some(a) => a,
                        None => return Ok(None),
                    }
                }
            };
            let ts = |v: Vec<i64>| -> ArrayRef {
                Arc::new(TimestampMicrosecondArray::from(v).with_timezone(UTC))
            };
            for name in METADATA_COLUMNS {
                arrays.push(match name {
                    "_sdc_received_at" => ts(vec![received_at_micros; rows]),
                    "_sdc_batched_at" => ts(vec![batched_at.timestamp_micros(); rows]),
                    SDC_DELETED_AT => deleted_at.clone(),
                    "_sdc_sequence" => Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                    "_sdc_extracted_at" => new_null_array(&timestamp_type(), rows),
                    _ => new_null_array(&DataType::Int64, rows),
                });
            }
        }
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        let batch = RecordBatch::try_new_with_options(self.schema.clone(), arrays, &options)?;
        Ok(Some(batch))
    }
}

/// `source` as `target`'s type when that loses nothing, unchecked (see
/// [`crate::decoder::cast_exact`]).
pub(crate) fn cast_exact(
    source: &ArrayRef,
    source_field: &Field,
    target: &Field,
) -> Result<Option<ArrayRef>> {
    conform(source, source_field, target, None, None)
}

/// `source` as `target`'s type, checked; `None` when it cannot be taken exactly. `present`:
/// the rows whose parents are not null (values under a null struct are not checked).
fn conform(
    source: &ArrayRef,
    source_field: &Field,
    target: &Field,
    check: Option<&Check>,
    present: Option<&NullBuffer>,
) -> Result<Option<ArrayRef>> {
    let rows = source.len();
    let shown = |i: usize| present.is_none_or(|p| p.is_valid(i));
    if is_json_field(target) {
        return Ok(json_text(source, source_field, check, &shown));
    }
    // Nulls first: a null the schema does not allow sends the rows to the record path.
    if let Some(c) = check
        && source.null_count() > 0
        && !c.null()
        && (0..rows).any(|i| source.is_null(i) && shown(i))
    {
        return Ok(None);
    }
    let cast = |to: &DataType| arrow::compute::cast(source, to).map(Some);
    let converted: Option<ArrayRef> = match (target.data_type(), source.data_type()) {
        (DataType::Int64, t) if t.is_integer() && *t != DataType::UInt64 => {
            let a = cast(&DataType::Int64)?;
            if let (Some(c), Some(a)) = (check, &a) {
                let ints = a.as_primitive::<Int64Type>();
                let ok = (0..rows)
                    .all(|i| ints.is_null(i) || !shown(i) || c.number(Num::I(ints.value(i))));
                if !ok {
                    return Ok(None);
                }
            }
            a
        }
        (DataType::Float64, t) if t.is_floating() || (t.is_integer() && *t != DataType::UInt64) => {
            let a = cast(&DataType::Float64)?;
            if let (Some(c), Some(a)) = (check, &a) {
                let floats = a.as_primitive::<Float64Type>();
                let ok = (0..rows).all(|i| {
                    floats.is_null(i) || !shown(i) || {
                        let f = floats.value(i);
                        f.is_finite() && c.number(Num::F(f))
                    }
                });
                if !ok {
                    return Ok(None);
                }
            }
            a
        }
        (DataType::Boolean, DataType::Boolean) => {
            if let Some(c) = check {
                let b: &BooleanArray = source.as_boolean();
                if !(0..rows).all(|i| b.is_null(i) || !shown(i) || c.boolean(b.value(i))) {
                    return Ok(None);
                }
            }
            Some(source.clone())
        }
        (DataType::Utf8, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) => {
            let a = cast(&DataType::Utf8)?;
            if let (Some(c), Some(a)) = (check, &a) {
                let s = a.as_string::<i32>();
                if !(0..rows).all(|i| s.is_null(i) || !shown(i) || c.string(s.value(i))) {
                    return Ok(None);
                }
            }
            a
        }
        (DataType::Timestamp(TimeUnit::Microsecond, Some(_)), DataType::Timestamp(_, _)) => {
            cast(target.data_type())?
        }
        (
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)),
            DataType::Utf8 | DataType::LargeUtf8,
        ) => {
            let text = arrow::compute::cast(source, &DataType::Utf8)?;
            let text = text.as_string::<i32>();
            let mut micros = Vec::with_capacity(rows);
            for i in 0..rows {
                if text.is_null(i) {
                    micros.push(None);
                    continue;
                }
                if check.is_some_and(|c| shown(i) && !c.string(text.value(i))) {
                    return Ok(None);
                }
                match singer_core::time::parse_datetime(text.value(i)) {
                    Ok(t) => micros.push(Some(t.timestamp_micros())),
                    Err(_) => return Ok(None),
                }
            }

            Some(Arc::new(TimestampMicrosecondArray::from(micros).with_timezone(UTC)) as ArrayRef)
        }
        (DataType::Date32, DataType::Date32 | DataType::Date64) => cast(&DataType::Date32)?,
        (DataType::Time64(TimeUnit::Microsecond), DataType::Time32(_) | DataType::Time64(_)) => {
            cast(target.data_type())?
        }
        (DataType::Struct(fields), DataType::Struct(_)) => {
            let source = source.as_struct();
            if check.is_some_and(|c| !c.object()) {
                return Ok(None);
            }
            if source
                .column_names()
                .iter()
                .any(|n| !fields.iter().any(|f| f.name() == n))
            {
                return Ok(None);
            }
            let nulls = NullBuffer::union(present, source.nulls());
            let mut children = Vec::with_capacity(fields.len());
            let source_fields = source.fields().clone();
            for (i, field) in fields.iter().enumerate() {
                let child_check = check.and_then(|c| c.children.get(i));
                let at = source_fields.iter().position(|f| f.name() == field.name());
                let child = match at {
                    Some(at) => match conform(
                        source.column(at),
                        &source_fields[at],
                        field,
                        child_check,
                        nulls.as_ref(),
                    )? {
                        Some(c) => c,
                        None => return Ok(None),
                    },
                    None if check.is_some_and(|c| c.required.contains(&i)) => return Ok(None),
                    None => new_null_array(field.data_type(), rows),
                };
                children.push(child);
            }
            Some(Arc::new(StructArray::try_new(
                fields.clone(),
                children,
                source.nulls().cloned(),
            )?) as ArrayRef)
        }
        (DataType::List(item), DataType::List(source_item)) => {
            let source = source.as_list::<i32>();
            if check.is_some_and(|c| !c.array()) {
                return Ok(None);
            }
            let item_check = check.and_then(|c| c.items.as_deref());
            // Items of rows not shown (or null) are not checked.
            let shown_items = item_check.map(|_| {
                let mut valid = vec![false; source.values().len()];
                for row in 0..rows {
                    if source.is_valid(row) && shown(row) {
                        let (start, end) = (
                            source.offsets()[row] as usize,
                            source.offsets()[row + 1] as usize,
                        );
                        valid[start..end].iter_mut().for_each(|v| *v = true);
                    }
                }
                NullBuffer::from(valid)
            });
            let values = match conform(
                source.values(),
                source_item,
                item,
                item_check,
                shown_items.as_ref(),
            )? {
                Some(v) => v,
                None => return Ok(None),
            };
            Some(Arc::new(ListArray::try_new(
                item.clone(),
                source.offsets().clone(),
                values,
                source.nulls().cloned(),
            )?) as ArrayRef)
        }
        _ => None,
    };
    Ok(converted)
}

/// A JSON-text column from a file column marked as JSON text (as taps built on this SDK
/// write them), its values checked; any other source takes the record path.
fn json_text(
    source: &ArrayRef,
    source_field: &Field,
    check: Option<&Check>,
    shown: &dyn Fn(usize) -> bool,
) -> Option<ArrayRef> {
    if !is_json_field(source_field) || source.data_type() != &DataType::Utf8 {
        return None;
    }
    let text = source.as_string::<i32>();
    for i in 0..text.len() {
        if text.is_null(i) || !shown(i) {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(text.value(i)).ok()?;
        if check.is_some_and(|c| !c.value(&value)) {
            return None;
        }
    }
    Some(source.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::RowMeta;
    use crate::stream_schema::{SchemaOptions, StreamSchema};
    use arrow::array::{Float64Array, Int32Array, StringArray};
    use serde_json::{Value, json};

    fn schema(validate: bool) -> StreamSchema {
        StreamSchema::with_options(
            "s",
            &json!({"type": "object", "required": ["id"], "properties": {
                "id": {"type": "integer"},
                "score": {"type": ["number", "null"], "minimum": 0},
                "name": {"type": ["string", "null"], "maxLength": 8},
                "at": {"type": ["string", "null"], "format": "date-time"},
                "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                "owner": {"type": ["object", "null"], "properties": {"id": {"type": "integer"}, "name": {"type": ["string", "null"]}}}
            }}),
            vec!["id".into()],
            &SchemaOptions {
                validate_records: validate,
                ..SchemaOptions::default()
            },
        )
        .expect("schema")
    }

    fn records() -> Vec<Value> {
        (0..40)
            .map(|i| {
                json!({
                    "id": i,
                    "score": if i % 5 == 0 { Value::Null } else { json!(i as f64 / 4.0) },
                    "name": format!("n{i}"),
                    "at": format!("2024-01-{:02}T10:00:00Z", i % 28 + 1),
                    "tags": if i % 3 == 0 { Value::Null } else { json!(["a", format!("t{i}")]) },
                    "owner": if i % 7 == 0 { Value::Null } else { json!({"id": i * 10, "name": null}) },
                })
            })
            .collect()
    }

    /// The record path's batch, the reference.
    fn reference(schema: &StreamSchema, metadata: bool) -> RecordBatch {
        let mut decoder = RecordDecoder::new(schema, metadata);
        for (i, r) in records().iter().enumerate() {
            let record = r.as_object().cloned().expect("object");
            decoder
                .push_record(schema, record, &RowMeta::default(), i as u64 + 1)
                .expect("valid record");
        }
        decoder.finish(Utc::now()).expect("finish").expect("rows")
    }

    /// A file as an SDK tap writes one with pyarrow: date-times as strings, narrower ints.
    fn file_like_pyarrow(reference: &RecordBatch) -> RecordBatch {
        let mut columns = Vec::new();
        let mut fields = Vec::new();
        for name in ["id", "score", "name", "at", "tags", "owner"] {
            let column = reference.column_by_name(name).expect("column").clone();
            let column: ArrayRef = match name {
                "id" => arrow::compute::cast(&column, &DataType::Int32).expect("int32"),
                "at" => Arc::new(StringArray::from_iter(
                    column
                        .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                        .iter()
                        .map(|v| {
                            v.and_then(DateTime::from_timestamp_micros)
                                .map(|t| t.to_rfc3339())
                        }),
                )),
                _ => column,
            };
            fields.push(Field::new(name, column.data_type().clone(), true));
            columns.push(column);
        }
        RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
            .expect("file batch")
    }

    #[test]
    fn parquet_rows_equal_the_record_path() {
        for (validate, metadata) in [(true, true), (false, false), (true, false)] {
            let schema = schema(validate);
            let want = reference(&schema, metadata);
            let decoder = RecordDecoder::new(&schema, metadata);
            let file = file_like_pyarrow(&want);
            let got = decoder
                .decode_arrow(&file, 7, Utc::now())
                .expect("no error")
                .expect("taken as Arrow");
            assert_eq!(got.schema(), want.schema());
            for name in ["id", "score", "name", "at", "tags", "owner"] {
                assert_eq!(
                    got.column_by_name(name),
                    want.column_by_name(name),
                    "{name}"
                );
            }
        }
    }

    #[test]
    fn what_the_record_path_must_judge_is_left_to_it() {
        let schema = schema(true);
        let decoder = RecordDecoder::new(&schema, false);
        let file = file_like_pyarrow(&reference(&schema, false));
        // The file with column `name` replaced, or added when it has none.
        let with = |name: &str, column: ArrayRef| {
            let mut columns = file.columns().to_vec();
            let mut fields: Vec<Field> = file
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            let field = Field::new(name, column.data_type().clone(), true);
            match file.schema().index_of(name) {
                Ok(at) => (columns[at], fields[at]) = (column, field),
                Err(_) => {
                    columns.push(column);
                    fields.push(field);
                }
            }
            RecordBatch::try_new(Arc::new(arrow::datatypes::Schema::new(fields)), columns)
                .expect("batch")
        };
        let taken = |batch: &RecordBatch| {
            decoder
                .decode_arrow(batch, 0, Utc::now())
                .expect("ok")
                .is_some()
        };
        assert!(taken(&file));
        // Below the schema's minimum, too long, a null key, a float for an integer.
        assert!(!taken(&with(
            "score",
            Arc::new(Float64Array::from(vec![-1.0; 40]))
        )));
        assert!(!taken(&with(
            "name",
            Arc::new(StringArray::from(vec!["far too long"; 40]))
        )));
        assert!(!taken(&with(
            "id",
            Arc::new(Int32Array::from(vec![None; 40]))
        )));
        assert!(!taken(&with(
            "id",
            Arc::new(Float64Array::from(vec![1.5; 40]))
        )));
        assert!(!taken(&with(
            "at",
            Arc::new(StringArray::from(vec!["yesterday"; 40]))
        )));
        // A column the schema does not declare.
        assert!(!taken(&with(
            "extra",
            Arc::new(Int64Array::from(vec![1; 40]))
        )));
        // A required column the file lacks.
        assert!(!taken(&file.project(&[1, 2]).expect("project")));
    }
}
