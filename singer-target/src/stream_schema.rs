//! A SCHEMA message compiled for loading: columns, Arrow schema, key checks, validation.
//!
//! ```
//! use singer_target::StreamSchema;
//! use serde_json::json;
//!
//! let schema = StreamSchema::new("issues", &json!({"type": "object", "properties": {
//!     "id": {"type": "integer"},
//!     "updated": {"type": ["null", "string"], "format": "date-time"},
//!     "labels": {"type": "array", "items": {"type": "string"}}
//! }}), vec!["id".into()])?;
//! let fields: Vec<_> = schema.arrow_schema().fields().iter().map(|f| f.data_type().to_string()).collect();
//! assert_eq!(fields, ["Int64", "Timestamp(µs, \"+00:00\")", "List(Utf8)"]);
//! # Ok::<(), singer_target::Error>(())
//! ```

use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use serde_json::{Map, Value};
use singer_core::Error as CoreError;
use singer_core::message::{Record, SchemaMessage};
use singer_core::schema::{
    Column, Flattening, MAX_COLUMNS, columns_of, count_columns, flatten_record, flatten_schema,
    inline_refs,
};

use crate::error::{Error, Result};
use crate::fields::fields_of;

/// How a target turns a SCHEMA message into columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaOptions {
    /// Flatten nested objects (`None`: keep structs).
    pub flattening: Option<Flattening>,
    /// Validate every record against its schema.
    pub validate_records: bool,
}

/// A stream's schema, compiled once per SCHEMA message.
#[derive(Clone)]
pub struct StreamSchema {
    stream: String,
    json_schema: Value,
    key_properties: Vec<String>,
    columns: Vec<Column>,
    arrow_schema: SchemaRef,
    validator: Option<Arc<jsonschema::Validator>>,
    flattening: Option<Flattening>,
}

impl std::fmt::Debug for StreamSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSchema")
            .field("stream", &self.stream)
            .field("key_properties", &self.key_properties)
            .field("arrow_schema", &self.arrow_schema)
            .finish_non_exhaustive()
    }
}

impl StreamSchema {
    /// Compiles a schema without validation or flattening.
    pub fn new(stream: &str, schema: &Value, key_properties: Vec<String>) -> Result<Self> {
        Self::with_options(stream, schema, key_properties, &SchemaOptions::default())
    }

    /// Compiles a schema.
    pub fn with_options(
        stream: &str,
        schema: &Value,
        key_properties: Vec<String>,
        options: &SchemaOptions,
    ) -> Result<Self> {
        let invalid = |reason: String| {
            Error::from(CoreError::Schema {
                stream: stream.to_string(),
                reason,
            })
        };
        let effective = match &options.flattening {
            Some(flattening) => flatten_schema(&inline_refs(schema), flattening),
            None => schema.clone(),
        };
        let columns = columns_of(&effective).map_err(invalid)?;
        let count = count_columns(&columns);
        if count > MAX_COLUMNS {
            return Err(invalid(format!(
                "the schema has {count} columns (nested fields included); at most {MAX_COLUMNS} are supported"
            )));
        }
        for key in &key_properties {
            if !columns.iter().any(|c| &c.name == key) {
                return Err(invalid(format!(
                    "key property '{key}' is not among the schema's properties"
                )));
            }
        }
        let validator = if options.validate_records {
            match jsonschema::options()
                .with_draft(jsonschema::Draft::Draft7)
                .should_validate_formats(false)
                .build(schema)
            {
                Ok(v) => Some(Arc::new(v)),
                Err(e) => {
                    tracing::warn!(stream, error = %e, "schema cannot be compiled for validation; records of this stream are not validated");
                    None
                }
            }
        } else {
            None
        };
        let arrow_schema = Arc::new(Schema::new(fields_of(&columns)));
        Ok(StreamSchema {
            stream: stream.to_string(),
            json_schema: schema.clone(),
            key_properties,
            columns,
            arrow_schema,
            validator,
            flattening: options.flattening.clone(),
        })
    }

    /// The stream name.
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The JSON Schema as the tap sent it.
    pub fn json_schema(&self) -> &Value {
        &self.json_schema
    }

    /// The primary key.
    pub fn key_properties(&self) -> &[String] {
        &self.key_properties
    }

    /// The data columns (after flattening).
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The Arrow schema of the data columns.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow_schema
    }

    /// Whether a SCHEMA message announces this schema again (same JSON Schema and keys):
    /// then nothing changes, for the reader's jobs or for the destination.
    pub fn same_as(&self, message: &SchemaMessage) -> bool {
        self.json_schema == message.schema && self.key_properties == message.key_properties
    }

    /// Whether records are validated against the schema.
    pub fn validates(&self) -> bool {
        self.validator.is_some()
    }

    /// Whether nested objects are flattened into columns.
    pub fn flattens(&self) -> bool {
        self.flattening.is_some()
    }

    /// Checks a record against the schema and the key properties, then flattens it if the
    /// schema was flattened. `line` is the input line, for the error.
    pub fn prepare(&self, record: Record, line: u64) -> Result<Record> {
        for key in &self.key_properties {
            match record.get(key) {
                None | Some(Value::Null) => {
                    return Err(Error::record(
                        &self.stream,
                        line,
                        Some(key.clone()),
                        format!("key property '{key}' is missing or null"),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(validator) = &self.validator {
            // Validation needs a `Value`; wrapping the map moves it, it does not copy.
            let value = Value::Object(record);
            // `is_valid` stops at the first failure without building errors: the fast path.
            if !validator.is_valid(&value)
                && let Some(error) = validator.iter_errors(&value).next()
            {
                let field = error
                    .instance_path()
                    .to_string()
                    .trim_start_matches('/')
                    .replace('/', ".")
                    .replace("~1", "/")
                    .replace("~0", "~");
                let reason = truncate_message(&error.to_string());
                return Err(Error::record(&self.stream, line, Some(field), reason));
            }
            let record = match value {
                Value::Object(record) => record,
                _ => Map::new(),
            };
            return Ok(self.flatten(record));
        }
        Ok(self.flatten(record))
    }

    fn flatten(&self, record: Record) -> Record {
        match &self.flattening {
            Some(flattening) => flatten_record(record, flattening),
            None => record,
        }
    }
}

fn truncate_message(s: &str) -> String {
    const MAX: usize = 300;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prepare_checks_keys_and_validates() {
        let schema = json!({"type": "object", "properties": {"id": {"type": "integer"}, "n": {"type": ["null", "integer"], "minimum": 0}}});
        let s = StreamSchema::with_options(
            "s",
            &schema,
            vec!["id".into()],
            &SchemaOptions {
                validate_records: true,
                ..Default::default()
            },
        )
        .expect("compiles");
        let rec = |v: Value| v.as_object().cloned().expect("obj");
        assert!(s.prepare(rec(json!({"id": 1, "n": 2})), 1).is_ok());
        let e = s.prepare(rec(json!({"n": 2})), 4).expect_err("missing key");
        assert_eq!(
            e.to_string(),
            "stream 's', line 4, field 'id': key property 'id' is missing or null"
        );
        let e = s
            .prepare(rec(json!({"id": 1, "n": "x"})), 5)
            .expect_err("bad type");
        let text = e.to_string();
        assert!(text.starts_with("stream 's', line 5, field 'n'"), "{text}");
        let e = s
            .prepare(rec(json!({"id": 1, "n": -1})), 6)
            .expect_err("minimum");
        assert!(e.to_string().contains("minimum"), "{e}");
        assert!(StreamSchema::new("s", &schema, vec!["nope".into()]).is_err());
    }

    #[test]
    fn near_miss_date_times_pass_validation() {
        let schema = json!({"type": "object", "properties": {"t": {"type": "string", "format": "date-time"}}});
        let s = StreamSchema::with_options(
            "s",
            &schema,
            vec![],
            &SchemaOptions {
                validate_records: true,
                ..Default::default()
            },
        )
        .expect("compiles");
        let rec = json!({"t": "2024-01-15T10:23:45.123+0000"})
            .as_object()
            .cloned()
            .expect("obj");
        assert!(s.prepare(rec, 1).is_ok());
    }
}
