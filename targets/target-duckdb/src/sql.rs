//! Names, types and batch layouts between Singer streams and DuckDB tables.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ListArray, RecordBatch, StructArray, new_null_array};
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use singer_target::fields::UTC;

/// A stream or property name as a DuckDB identifier: lower case, `[a-z0-9_]`, never empty.
/// DuckDB compares identifiers case-insensitively, so lower-casing makes collisions visible
/// here instead of inside the database.
pub fn sanitize(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "_".into() } else { s }
}

/// Quotes an identifier for SQL.
pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

/// `"schema"."table"`.
pub fn qualified(schema: &str, table: &str) -> String {
    format!("{}.{}", quote(schema), quote(table))
}

/// The DuckDB column type of an Arrow field: JSON text columns become `JSON`.
pub fn duckdb_column_type(field: &Field) -> Result<String, String> {
    if field.data_type() == &DataType::Utf8 && singer_target::fields::is_json_field(field) {
        return Ok("JSON".into());
    }
    duckdb_type(field.data_type())
}

/// The DuckDB column type of an Arrow type.
pub fn duckdb_type(dt: &DataType) -> Result<String, String> {
    Ok(match dt {
        DataType::Int64 => "BIGINT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Utf8 => "VARCHAR".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMPTZ".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Time64(_) => "TIME".into(),
        DataType::Struct(fields) => {
            let parts = fields
                .iter()
                .map(|f| Ok(format!("{} {}", quote(f.name()), duckdb_column_type(f)?)))
                .collect::<Result<Vec<_>, String>>()?;
            format!("STRUCT({})", parts.join(", "))
        }
        DataType::List(item) => format!("{}[]", duckdb_type(item.data_type())?),
        other => return Err(format!("no DuckDB type for {other}")),
    })
}

/// The table layout of a batch schema: every name sanitised, at every level. Two names that
/// sanitise alike are an error naming both.
pub fn table_fields(schema: &Schema) -> Result<Vec<Field>, String> {
    sanitize_fields(schema.fields(), "")
}

fn sanitize_fields(fields: &Fields, parent: &str) -> Result<Vec<Field>, String> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    fields
        .iter()
        .map(|f| {
            let name = sanitize(f.name());
            if let Some(other) = seen.insert(name.clone(), f.name()) {
                return Err(format!(
                    "properties '{parent}{other}' and '{parent}{}' both become column '{name}'",
                    f.name()
                ));
            }
            let dt = sanitize_type(f.data_type(), &format!("{parent}{}.", f.name()))?;
            Ok(Field::new(name, dt, true).with_metadata(f.metadata().clone()))
        })
        .collect()
}

fn sanitize_type(dt: &DataType, path: &str) -> Result<DataType, String> {
    Ok(match dt {
        DataType::Struct(fields) => DataType::Struct(sanitize_fields(fields, path)?.into()),
        DataType::List(item) => DataType::List(Arc::new(Field::new(
            "item",
            sanitize_type(item.data_type(), path)?,
            true,
        ))),
        other => other.clone(),
    })
}

/// A type as DuckDB's Arrow export gives it, made comparable with ours.
pub fn normalize(dt: &DataType) -> DataType {
    match dt {
        DataType::Timestamp(_, Some(_)) => {
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        }
        DataType::Timestamp(_, None) => DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::Time64(_) | DataType::Time32(_) => DataType::Time64(TimeUnit::Microsecond),
        DataType::Date64 => DataType::Date32,
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Field::new(f.name(), normalize(f.data_type()), true))
                .collect(),
        ),
        DataType::List(item) | DataType::LargeList(item) => DataType::List(Arc::new(Field::new(
            "item",
            normalize(item.data_type()),
            true,
        ))),
        other => other.clone(),
    }
}

/// Reshapes a batch into the table's columns: matched by sanitised name, cast to the
/// table's (possibly widened) types, missing columns null.
pub fn conform_batch(batch: &RecordBatch, table: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let by_name: HashMap<String, usize> = batch
        .schema()
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| (sanitize(f.name()), i))
        .collect();
    let columns = table
        .fields()
        .iter()
        .map(|f| match by_name.get(f.name()) {
            Some(&i) => conform(batch.column(i), f.data_type()),
            None => Ok(new_null_array(f.data_type(), batch.num_rows())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options =
        arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(table.clone(), columns, &options)
}

fn conform(array: &ArrayRef, to: &DataType) -> Result<ArrayRef, ArrowError> {
    if array.data_type() == to {
        return Ok(array.clone());
    }
    match (array.data_type(), to) {
        (DataType::Struct(_), DataType::Struct(to_fields)) => {
            let s = array
                .as_any()
                .downcast_ref::<StructArray>()
                .ok_or_else(|| ArrowError::CastError("not a struct array".into()))?;
            let DataType::Struct(from_fields) = s.data_type() else {
                return Err(ArrowError::CastError("not a struct type".into()));
            };
            let children = to_fields
                .iter()
                .map(|tf| {
                    match from_fields
                        .iter()
                        .position(|ff| sanitize(ff.name()) == *tf.name())
                    {
                        Some(i) => conform(s.column(i), tf.data_type()),
                        None => Ok(new_null_array(tf.data_type(), s.len())),
                    }
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Arc::new(StructArray::try_new(
                to_fields.clone(),
                children,
                s.nulls().cloned(),
            )?))
        }
        (DataType::List(_), DataType::List(to_item)) => {
            let l = array
                .as_any()
                .downcast_ref::<ListArray>()
                .ok_or_else(|| ArrowError::CastError("not a list array".into()))?;
            let values = conform(l.values(), to_item.data_type())?;
            Ok(Arc::new(ListArray::try_new(
                to_item.clone(),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?))
        }
        _ => arrow::compute::cast(array, to),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{AsArray, Int64Array, StringArray};

    #[test]
    fn names_are_sanitised_and_collisions_found() {
        assert_eq!(sanitize("public-users"), "public_users");
        assert_eq!(sanitize("Schema.Table"), "schema_table");
        assert_eq!(sanitize("a\"; DROP TABLE x; --"), "a___drop_table_x____");
        assert_eq!(sanitize("ünï"), "_n_");
        assert_eq!(sanitize(""), "_");
        assert_eq!(quote("we\"ird"), "\"we\"\"ird\"");
        let schema = Schema::new(vec![
            Field::new("Id", DataType::Int64, true),
            Field::new("id", DataType::Int64, true),
        ]);
        let e = table_fields(&schema).expect_err("collision");
        assert!(e.contains("'Id' and 'id' both become column 'id'"), "{e}");
    }

    #[test]
    fn types_in_sql() {
        let s = DataType::Struct(vec![Field::new("a b", DataType::Int64, true)].into());
        assert_eq!(duckdb_type(&s).as_deref(), Ok("STRUCT(\"a b\" BIGINT)"));
        let l = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
        assert_eq!(duckdb_type(&l).as_deref(), Ok("VARCHAR[]"));
    }

    #[test]
    fn batches_conform_to_wider_tables() {
        let batch_schema = Arc::new(Schema::new(vec![
            Field::new("N", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            batch_schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec!["x", "y"])),
            ],
        )
        .expect("batch");
        let table = Arc::new(Schema::new(vec![
            Field::new("extra", DataType::Boolean, true),
            Field::new("n", DataType::Utf8, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let out = conform_batch(&batch, &table).expect("conform");
        assert_eq!(out.num_rows(), 2);
        assert_eq!(out.column(0).null_count(), 2);
        assert_eq!(out.column(1).as_string::<i32>().value(1), "2");
    }
}
