//! Column kinds to Arrow fields: the types every destination receives.
//!
//! | [`Kind`] | Arrow type |
//! |---|---|
//! | `Integer` | `Int64` |
//! | `Number` | `Float64` |
//! | `Boolean` | `Boolean` |
//! | `String` | `Utf8` |
//! | `DateTime` | `Timestamp(Microsecond, "+00:00")`, UTC |
//! | `Date` | `Date32` |
//! | `Time` | `Time64(Microsecond)`, UTC |
//! | `Json` | `Utf8` holding JSON text, marked with [`JSON_METADATA_KEY`] |
//! | `Object` | `Struct` of the properties |
//! | `Array` | `List` of the item type |
//!
//! Every field is nullable: Singer schemas often declare `required` fields that sources
//! then omit, and a load must not fail on a missing optional value.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, TimeUnit};
use singer_core::schema::{Column, Kind};

/// The timezone of every timestamp column: UTC, as an offset (arrow-json and DuckDB read it
/// without the chrono-tz feature).
pub const UTC: &str = "+00:00";

/// Field metadata key marking a `Utf8` column that holds JSON text (so a destination can
/// give it a JSON type).
pub const JSON_METADATA_KEY: &str = "singer.json";

/// The Arrow type a kind is stored as.
pub fn data_type(kind: &Kind) -> DataType {
    match kind {
        Kind::Integer => DataType::Int64,
        Kind::Number => DataType::Float64,
        Kind::Boolean => DataType::Boolean,
        Kind::String | Kind::Json => DataType::Utf8,
        Kind::DateTime => timestamp_type(),
        Kind::Date => DataType::Date32,
        Kind::Time => DataType::Time64(TimeUnit::Microsecond),
        Kind::Object(cols) => DataType::Struct(fields_of(cols)),
        Kind::Array(item) => DataType::List(Arc::new(Field::new("item", data_type(item), true))),
    }
}

/// The type of every date-time column: UTC microseconds.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
}

/// The Arrow field of a column (always nullable); JSON columns carry
/// [`JSON_METADATA_KEY`].
pub fn field_of(column: &Column) -> Field {
    let field = Field::new(&column.name, data_type(&column.kind), true);
    match column.kind {
        Kind::Json => field.with_metadata(HashMap::from([(
            JSON_METADATA_KEY.to_string(),
            "true".to_string(),
        )])),
        _ => field,
    }
}

/// Whether a field holds JSON text.
pub fn is_json_field(field: &Field) -> bool {
    field.metadata().contains_key(JSON_METADATA_KEY)
}

/// Arrow fields for columns (all nullable).
pub fn fields_of(columns: &[Column]) -> Fields {
    columns.iter().map(field_of).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrow_types_of_each_kind() {
        assert_eq!(
            data_type(&Kind::DateTime),
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        );
        assert_eq!(data_type(&Kind::Date), DataType::Date32);
        assert_eq!(
            data_type(&Kind::Time),
            DataType::Time64(TimeUnit::Microsecond)
        );
        assert_eq!(data_type(&Kind::Json), DataType::Utf8);
        let s = data_type(&Kind::Object(vec![Column {
            name: "a".into(),
            kind: Kind::Integer,
        }]));
        assert_eq!(
            s,
            DataType::Struct(vec![Field::new("a", DataType::Int64, true)].into())
        );
        let json = field_of(&Column {
            name: "j".into(),
            kind: Kind::Json,
        });
        assert!(is_json_field(&json));
    }
}
