//! JSON Schema to Arrow, record validation, flattening and type widening.
//!
//! A target turns every SCHEMA message into a [`StreamSchema`]: the columns of the stream as
//! [`Kind`]s, the Arrow schema built from them, and a validator compiled once. Records are
//! then pushed into a [`crate::batch::RecordDecoder`] built from the same columns.
//!
//! # Mapping
//!
//! | JSON Schema | [`Kind`] | Arrow type |
//! |---|---|---|
//! | `{"type": "integer"}` | `Integer` | `Int64` |
//! | `{"type": "number"}`, `["integer", "number"]` | `Number` | `Float64` |
//! | `{"type": "boolean"}` | `Boolean` | `Boolean` |
//! | `{"type": "string"}` (any other or no `format`) | `String` | `Utf8` |
//! | `{"type": "string", "format": "date-time"}` | `DateTime` | `Timestamp(Microsecond, "+00:00")`, UTC |
//! | `{"type": "string", "format": "date"}` | `Date` | `Date32` |
//! | `{"type": "string", "format": "time"}` | `Time` | `Time64(Microsecond)`, UTC |
//! | `{"type": "object", "properties": {...}}` | `Object` | `Struct` of the properties |
//! | object without `properties`, with `additionalProperties` or `patternProperties` | `Json` | `Utf8` holding JSON text |
//! | `{"type": "array", "items": {...}}` | `Array` | `List` of the item type |
//! | array without `items`, or with tuple `items` | `Array(Json)` | `List<Utf8>` of JSON texts |
//! | `{}`, `true`, no `type`, `{"type": "null"}` | `Json` | `Utf8` holding JSON text |
//! | scalar mixes such as `["string", "integer"]` | `String` | `Utf8` (numbers as text) |
//! | mixes with an object or array | `Json` | `Utf8` holding JSON text |
//! | `["null", T]`, `anyOf`/`oneOf` of `null` and `T` | as `T` | as `T` |
//! | `anyOf`/`oneOf` of several types | combined as for `type` lists | |
//! | `{"$ref": "#/definitions/x"}` (local) | as the target | |
//!
//! Every column is nullable: Singer schemas often declare `required` fields that sources
//! then omit, and a load must not fail on a missing optional value.
//!
//! Date-times in any form [`crate::time::parse_datetime`] accepts are normalised to UTC.
//!
//! ```
//! use singer_core::schema::{Kind, StreamSchema};
//! use serde_json::json;
//!
//! let schema = StreamSchema::new("issues", &json!({"type": "object", "properties": {
//!     "id": {"type": "integer"},
//!     "updated": {"type": ["null", "string"], "format": "date-time"},
//!     "labels": {"type": "array", "items": {"type": "string"}}
//! }}), vec!["id".into()])?;
//! let fields: Vec<_> = schema.arrow_schema().fields().iter().map(|f| f.data_type().to_string()).collect();
//! assert_eq!(fields, ["Int64", "Timestamp(µs, \"+00:00\")", "List(Utf8)"]);
//! # Ok::<(), singer_core::Error>(())
//! ```

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::message::Record;

/// The timezone of every timestamp column: UTC, as an offset (arrow-json and DuckDB read it
/// without the chrono-tz feature).
pub const UTC: &str = "+00:00";

/// How deep `$ref`s and nesting are followed before a schema is stored as JSON text.
const MAX_DEPTH: usize = 64;

/// The most columns (nested fields included) a stream may have: past this, a schema is
/// refused rather than handed to a destination that would choke on it.
pub const MAX_COLUMNS: usize = 10_000;

fn count_columns(columns: &[Column]) -> usize {
    columns
        .iter()
        .map(|c| {
            1 + match &c.kind {
                Kind::Object(inner) => count_columns(inner),
                _ => 0,
            }
        })
        .sum()
}

/// The logical type of a column.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// 64-bit integer.
    Integer,
    /// 64-bit float.
    Number,
    /// Boolean.
    Boolean,
    /// Text.
    String,
    /// An instant, stored in UTC with microseconds.
    DateTime,
    /// A calendar date.
    Date,
    /// A time of day, in UTC.
    Time,
    /// Any JSON, stored as JSON text.
    Json,
    /// An object with declared properties.
    Object(Vec<Column>),
    /// A list of values of one kind.
    Array(Box<Kind>),
}

/// A named column (or struct field).
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// The property name as the tap wrote it.
    pub name: String,
    /// Its type.
    pub kind: Kind,
}

impl Kind {
    /// The Arrow type this kind is stored as.
    pub fn data_type(&self) -> DataType {
        match self {
            Kind::Integer => DataType::Int64,
            Kind::Number => DataType::Float64,
            Kind::Boolean => DataType::Boolean,
            Kind::String | Kind::Json => DataType::Utf8,
            Kind::DateTime => DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into())),
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
            Kind::Object(cols) => DataType::Struct(fields_of(cols)),
            Kind::Array(item) => {
                DataType::List(Arc::new(Field::new("item", item.data_type(), true)))
            }
        }
    }

    fn is_stringish(&self) -> bool {
        matches!(
            self,
            Kind::String | Kind::DateTime | Kind::Date | Kind::Time
        )
    }
}

/// Field metadata key marking a `Utf8` column that holds JSON text (so a destination can
/// give it a JSON type).
pub const JSON_METADATA_KEY: &str = "singer.json";

/// The Arrow field of a column (always nullable); JSON columns carry
/// [`JSON_METADATA_KEY`].
pub fn field_of(column: &Column) -> Field {
    let field = Field::new(&column.name, column.kind.data_type(), true);
    match column.kind {
        Kind::Json => field.with_metadata(std::collections::HashMap::from([(
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

/// The columns of a stream's root schema, which must declare its properties (as the SDK
/// requires: a table needs columns).
pub fn columns_of(schema: &Value) -> Result<Vec<Column>, String> {
    if !schema.is_object() && !schema.is_boolean() {
        return Err("the schema must be a JSON object".into());
    }
    let resolver = Resolver { root: schema };
    match resolver.kind(schema, 0)? {
        Kind::Object(cols) => Ok(cols),
        Kind::Json => Err("the schema declares no properties".into()),
        other => Err(format!(
            "the root schema must describe an object, not {}",
            kind_name(&other)
        )),
    }
}

fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Integer => "an integer",
        Kind::Number => "a number",
        Kind::Boolean => "a boolean",
        Kind::String | Kind::DateTime | Kind::Date | Kind::Time => "a string",
        Kind::Json => "any JSON",
        Kind::Object(_) => "an object",
        Kind::Array(_) => "an array",
    }
}

struct Resolver<'a> {
    root: &'a Value,
}

impl Resolver<'_> {
    fn kind(&self, schema: &Value, depth: usize) -> Result<Kind, String> {
        if depth > MAX_DEPTH {
            return Ok(Kind::Json);
        }
        let Some(obj) = schema.as_object() else {
            // `true` (anything) or `false` (nothing): both stored as JSON.
            return Ok(Kind::Json);
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let target = self.resolve_ref(r)?;
            return self.kind(target, depth + 1);
        }
        let mut variants: Vec<Kind> = Vec::new();
        let mut saw_variants = false;
        for key in ["anyOf", "oneOf"] {
            if let Some(list) = obj.get(key).and_then(Value::as_array) {
                saw_variants = true;
                for v in list {
                    if !is_null_only(v) {
                        variants.push(self.kind(v, depth + 1)?);
                    }
                }
            }
        }
        if let Some(list) = obj.get("allOf").and_then(Value::as_array) {
            let mut merged: Option<Kind> = None;
            for v in list {
                let k = self.kind(v, depth + 1)?;
                merged = Some(match merged {
                    None => k,
                    Some(prev) => merge_all_of(prev, k),
                });
            }
            if let Some(k) = merged {
                variants.push(k);
                saw_variants = true;
            }
        }
        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            Some(other) => return Err(format!("`type` must be a string or a list, found {other}")),
            None => Vec::new(),
        };
        let own_types: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
        if own_types.is_empty() && saw_variants {
            return Ok(combine(variants));
        }
        let own = if own_types.is_empty() {
            if obj.contains_key("properties") {
                self.object(obj, depth)?
            } else if obj.contains_key("items") {
                self.array(obj, depth)?
            } else {
                Kind::Json
            }
        } else {
            let kinds = own_types
                .iter()
                .map(|t| self.single_type(t, obj, depth))
                .collect::<Result<Vec<_>, _>>()?;
            combine(kinds)
        };
        if saw_variants && !variants.is_empty() {
            variants.push(own);
            return Ok(combine(variants));
        }
        Ok(own)
    }

    fn single_type(&self, t: &str, obj: &Map<String, Value>, depth: usize) -> Result<Kind, String> {
        Ok(match t {
            "integer" => Kind::Integer,
            "number" => Kind::Number,
            "boolean" => Kind::Boolean,
            "string" => match obj.get("format").and_then(Value::as_str) {
                Some("date-time") => Kind::DateTime,
                Some("date") => Kind::Date,
                Some("time") => Kind::Time,
                _ => Kind::String,
            },
            "object" => self.object(obj, depth)?,
            "array" => self.array(obj, depth)?,
            other => return Err(format!("unknown type '{other}'")),
        })
    }

    fn object(&self, obj: &Map<String, Value>, depth: usize) -> Result<Kind, String> {
        let props = obj.get("properties").and_then(Value::as_object);
        let open = obj.contains_key("patternProperties")
            || matches!(obj.get("additionalProperties"), Some(v) if v != &Value::Bool(false));
        match props {
            Some(props) if !props.is_empty() && !open => {
                let cols = props
                    .iter()
                    .map(|(name, sub)| {
                        Ok(Column {
                            name: name.clone(),
                            kind: self.kind(sub, depth + 1)?,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(Kind::Object(cols))
            }
            _ => Ok(Kind::Json),
        }
    }

    fn array(&self, obj: &Map<String, Value>, depth: usize) -> Result<Kind, String> {
        let item = match obj.get("items") {
            Some(items @ Value::Object(_)) => self.kind(items, depth + 1)?,
            _ => Kind::Json,
        };
        Ok(Kind::Array(Box::new(item)))
    }

    fn resolve_ref(&self, r: &str) -> Result<&Value, String> {
        let Some(pointer) = r.strip_prefix('#') else {
            return Err(format!("only local $refs are supported, found '{r}'"));
        };
        let decoded: String = pointer.replace("%25", "%");
        self.root
            .pointer(&decoded)
            .ok_or_else(|| format!("$ref '{r}' points at nothing"))
    }
}

fn is_null_only(v: &Value) -> bool {
    match v.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(ts)) => !ts.is_empty() && ts.iter().all(|t| t == "null"),
        _ => false,
    }
}

/// One kind that can hold values of all the given kinds.
fn combine(kinds: Vec<Kind>) -> Kind {
    let mut iter = kinds.into_iter();
    let Some(mut acc) = iter.next() else {
        return Kind::Json;
    };
    for k in iter {
        acc = combine_two(acc, k);
    }
    acc
}

fn combine_two(a: Kind, b: Kind) -> Kind {
    if a == b {
        return a;
    }
    match (a, b) {
        (Kind::Integer, Kind::Number) | (Kind::Number, Kind::Integer) => Kind::Number,
        (Kind::Object(x), Kind::Object(y)) => Kind::Object(union_columns(x, y)),
        (Kind::Array(x), Kind::Array(y)) => Kind::Array(Box::new(combine_two(*x, *y))),
        (Kind::Json, _) | (_, Kind::Json) => Kind::Json,
        (Kind::Object(_) | Kind::Array(_), _) | (_, Kind::Object(_) | Kind::Array(_)) => Kind::Json,
        (a, b) if a.is_stringish() && b.is_stringish() => Kind::String,
        // Scalars of different kinds: text holds them all.
        _ => Kind::String,
    }
}

fn merge_all_of(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Object(x), Kind::Object(y)) => Kind::Object(union_columns(x, y)),
        (Kind::Json, other) | (other, Kind::Json) => other,
        (a, _) => a,
    }
}

fn union_columns(mut x: Vec<Column>, y: Vec<Column>) -> Vec<Column> {
    for col in y {
        match x.iter_mut().find(|c| c.name == col.name) {
            Some(existing) => {
                let k = std::mem::replace(&mut existing.kind, Kind::Json);
                existing.kind = combine_two(k, col.kind);
            }
            None => x.push(col),
        }
    }
    x
}

// ---------------------------------------------------------------------------------------
// Flattening

/// The separator between a parent and a child property name when flattening.
pub const FLATTEN_SEPARATOR: &str = "__";

/// Flattens nested objects into `parent__child` properties, `max_depth` levels deep, as the
/// Meltano SDK's `flattening_enabled` does. Objects deeper than that, and arrays, become JSON
/// text columns.
pub fn flatten_schema(schema: &Value, max_depth: usize) -> Value {
    let mut out = Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        flatten_schema_into(props, "", 0, max_depth, &mut out);
    }
    let mut flat = schema.as_object().cloned().unwrap_or_default();
    flat.insert("properties".into(), Value::Object(out));
    flat.remove("required");
    Value::Object(flat)
}

fn flatten_schema_into(
    props: &Map<String, Value>,
    prefix: &str,
    level: usize,
    max_depth: usize,
    out: &mut Map<String, Value>,
) {
    for (name, sub) in props {
        let key = format!("{prefix}{name}");
        let nested = sub.get("properties").and_then(Value::as_object);
        let is_object =
            schema_has_type(sub, "object") || (sub.get("type").is_none() && nested.is_some());
        match nested {
            Some(nested) if is_object && level < max_depth && !nested.is_empty() => {
                flatten_schema_into(
                    nested,
                    &format!("{key}{FLATTEN_SEPARATOR}"),
                    level + 1,
                    max_depth,
                    out,
                );
            }
            _ if is_object || schema_has_type(sub, "array") => {
                // Deeper objects and arrays are kept as JSON text.
                out.insert(key, Value::Object(Map::new()));
            }
            _ => {
                out.insert(key, sub.clone());
            }
        }
    }
}

fn schema_has_type(schema: &Value, t: &str) -> bool {
    match schema.get("type") {
        Some(Value::String(s)) => s == t,
        Some(Value::Array(ts)) => ts.iter().any(|x| x == t),
        _ => false,
    }
}

/// Flattens a record the way [`flatten_schema`] flattened its schema.
pub fn flatten_record(record: Record, max_depth: usize) -> Record {
    let mut out = Map::with_capacity(record.len());
    flatten_record_into(record, "", 0, max_depth, &mut out);
    out
}

fn flatten_record_into(
    record: Record,
    prefix: &str,
    level: usize,
    max_depth: usize,
    out: &mut Record,
) {
    for (name, value) in record {
        let key = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}{name}")
        };
        match value {
            Value::Object(inner) if level < max_depth => {
                flatten_record_into(
                    inner,
                    &format!("{key}{FLATTEN_SEPARATOR}"),
                    level + 1,
                    max_depth,
                    out,
                );
            }
            other => {
                out.insert(key, other);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Widening

/// The type a column must take to hold both its current values and values of `new`, or
/// `None` when no lossless widening exists. Integers widen to floats, numbers and other
/// scalars to text; structs widen field by field and gain new fields; lists widen their items.
pub fn widen(current: &DataType, new: &DataType) -> Option<DataType> {
    use DataType as D;
    if current == new {
        return Some(current.clone());
    }
    match (current, new) {
        (D::Int64, D::Float64) | (D::Float64, D::Int64) => Some(D::Float64),
        (D::Struct(a), D::Struct(b)) => {
            let mut fields: Vec<Field> = a.iter().map(|f| f.as_ref().clone()).collect();
            for nf in b.iter() {
                match fields.iter_mut().find(|f| f.name() == nf.name()) {
                    Some(f) => {
                        let t = widen(f.data_type(), nf.data_type())?;
                        *f = Field::new(f.name(), t, true);
                    }
                    None => fields.push(nf.as_ref().clone().with_nullable(true)),
                }
            }
            Some(D::Struct(fields.into()))
        }
        (D::List(a), D::List(b)) => {
            let t = widen(a.data_type(), b.data_type())?;
            Some(D::List(Arc::new(Field::new("item", t, true))))
        }
        (D::Utf8, D::Struct(_) | D::List(_))
        | (D::Struct(_) | D::List(_), _)
        | (_, D::Struct(_) | D::List(_)) => None,
        (D::Utf8, _) | (_, D::Utf8) => Some(D::Utf8),
        (
            D::Int64 | D::Float64 | D::Boolean | D::Date32 | D::Time64(_) | D::Timestamp(..),
            D::Int64 | D::Float64 | D::Boolean | D::Date32 | D::Time64(_) | D::Timestamp(..),
        ) => Some(D::Utf8),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Conforming records (taps)

/// Makes records conform to their schema the way the Meltano SDK does before writing them:
/// properties the schema does not declare are dropped (objects the schema leaves open keep
/// everything), and date-times are normalised to RFC 3339 in UTC, so strict validators and
/// every target accept them.
#[derive(Debug, Clone)]
pub struct RecordConformer {
    root: ConformNode,
}

#[derive(Debug, Clone, PartialEq)]
enum ConformNode {
    Keep,
    DateTime,
    /// Declared properties; `open` objects keep undeclared ones too.
    Object {
        props: std::collections::HashMap<String, ConformNode>,
        open: bool,
    },
    Array(Box<ConformNode>),
}

impl ConformNode {
    fn from_schema(schema: &Value, root: &Value, depth: usize) -> Self {
        let Some(obj) = schema.as_object() else {
            return ConformNode::Keep;
        };
        if depth > MAX_DEPTH {
            return ConformNode::Keep;
        }
        if let Some(target) = obj
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix('#'))
            .and_then(|p| root.pointer(p))
        {
            return Self::from_schema(target, root, depth + 1);
        }
        let mut variants: Vec<ConformNode> = ["anyOf", "oneOf", "allOf"]
            .iter()
            .filter_map(|k| obj.get(*k).and_then(Value::as_array))
            .flatten()
            .filter(|v| !is_null_only(v))
            .map(|v| Self::from_schema(v, root, depth + 1))
            .collect();
        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .collect(),
            _ => vec![],
        };
        let own = if types == ["string"]
            && obj.get("format").and_then(Value::as_str) == Some("date-time")
        {
            Some(ConformNode::DateTime)
        } else if types.contains(&"object") || (types.is_empty() && obj.contains_key("properties"))
        {
            obj.get("properties").and_then(Value::as_object).map(|props| ConformNode::Object {
                props: props
                    .iter()
                    .map(|(k, v)| (k.clone(), Self::from_schema(v, root, depth + 1)))
                    .collect(),
                open: obj.contains_key("patternProperties")
                    || matches!(obj.get("additionalProperties"), Some(v) if v != &Value::Bool(false)),
            })
        } else if types.contains(&"array") || (types.is_empty() && obj.contains_key("items")) {
            match obj.get("items") {
                Some(items @ Value::Object(_)) => match Self::from_schema(items, root, depth + 1) {
                    ConformNode::Keep => None,
                    inner => Some(ConformNode::Array(Box::new(inner))),
                },
                _ => None,
            }
        } else {
            None
        };
        match own {
            Some(own) => variants.push(own),
            None if !types.is_empty() => variants.push(ConformNode::Keep),
            None => {}
        }
        variants
            .into_iter()
            .reduce(Self::combine)
            .unwrap_or(ConformNode::Keep)
    }

    /// A node for values that may be of either shape: normalise only what both agree on.
    fn combine(a: Self, b: Self) -> Self {
        match (a, b) {
            (x, y) if x == y => x,
            (
                ConformNode::Object {
                    props: mut p1,
                    open: o1,
                },
                ConformNode::Object {
                    props: p2,
                    open: o2,
                },
            ) => {
                for (k, v) in p2 {
                    let merged = match p1.remove(&k) {
                        Some(existing) => Self::combine(existing, v),
                        None => v,
                    };
                    p1.insert(k, merged);
                }
                ConformNode::Object {
                    props: p1,
                    open: o1 || o2,
                }
            }
            // An object or array variant next to a scalar one: keep objects' extra keys.
            (o @ ConformNode::Object { .. }, _) | (_, o @ ConformNode::Object { .. }) => match o {
                ConformNode::Object { props, .. } => ConformNode::Object { props, open: true },
                other => other,
            },
            _ => ConformNode::Keep,
        }
    }

    fn apply(&self, value: &mut Value) {
        match (self, value) {
            (ConformNode::DateTime, Value::String(s)) => {
                if let Some(normal) = crate::time::normalize_datetime(s) {
                    *s = normal;
                }
            }
            (ConformNode::Object { props, open }, Value::Object(map)) => {
                Self::apply_object(props, *open, map)
            }
            (ConformNode::Array(item), Value::Array(items)) => {
                for v in items {
                    item.apply(v);
                }
            }
            _ => {}
        }
    }

    fn apply_object(
        props: &std::collections::HashMap<String, ConformNode>,
        open: bool,
        map: &mut Map<String, Value>,
    ) {
        if !open {
            map.retain(|k, _| props.contains_key(k));
        }
        for (k, v) in map.iter_mut() {
            if let Some(node) = props.get(k) {
                node.apply(v);
            }
        }
    }
}

impl RecordConformer {
    /// A conformer for records of `schema` (already pruned to the selected properties).
    pub fn new(schema: &Value) -> Result<Self, String> {
        if !schema.is_object() {
            return Err("the schema must be a JSON object".into());
        }
        Ok(RecordConformer {
            root: ConformNode::from_schema(schema, schema, 0),
        })
    }

    /// Conforms one record in place.
    pub fn conform(&self, record: &mut Record) {
        if let ConformNode::Object { props, open } = &self.root {
            ConformNode::apply_object(props, *open, record);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Compiled stream schema

/// How a target turns a SCHEMA message into columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaOptions {
    /// Flatten nested objects this many levels deep (`None`: keep structs).
    pub flatten_max_depth: Option<usize>,
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
    flatten_max_depth: Option<usize>,
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
        let invalid = |reason: String| Error::Schema {
            stream: stream.to_string(),
            reason,
        };
        let effective = match options.flatten_max_depth {
            Some(depth) => flatten_schema(&inline_refs(schema), depth),
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
            flatten_max_depth: options.flatten_max_depth,
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
        match self.flatten_max_depth {
            Some(depth) => flatten_record(record, depth),
            None => record,
        }
    }
}

/// Replaces local `$ref`s by their targets (bounded depth), so flattening sees the real
/// properties.
fn inline_refs(schema: &Value) -> Value {
    fn go(root: &Value, v: &Value, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::Object(Map::new());
        }
        match v {
            Value::Object(m) => {
                if let Some(target) = m
                    .get("$ref")
                    .and_then(Value::as_str)
                    .and_then(|r| r.strip_prefix('#'))
                    .and_then(|p| root.pointer(p))
                {
                    return go(root, target, depth + 1);
                }
                Value::Object(
                    m.iter()
                        .map(|(k, x)| (k.clone(), go(root, x, depth + 1)))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(|x| go(root, x, depth + 1)).collect()),
            other => other.clone(),
        }
    }
    go(schema, schema, 0)
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

    fn kind(schema: Value) -> Kind {
        let root = json!({"type": "object", "properties": {"c": schema}, "definitions": {
            "ts": {"type": "string", "format": "date-time"},
            "user": {"type": "object", "properties": {"id": {"type": "string"}}}
        }});
        let cols = columns_of(&root).expect("valid");
        cols.into_iter().next().expect("one column").kind
    }

    #[test]
    fn each_row_of_the_mapping_table() {
        let obj = |cols: &[(&str, Kind)]| {
            Kind::Object(
                cols.iter()
                    .map(|(n, k)| Column {
                        name: n.to_string(),
                        kind: k.clone(),
                    })
                    .collect(),
            )
        };
        let cases = [
            (json!({"type": "integer"}), Kind::Integer),
            (json!({"type": "number"}), Kind::Number),
            (json!({"type": ["integer", "number"]}), Kind::Number),
            (json!({"type": "boolean"}), Kind::Boolean),
            (json!({"type": "string"}), Kind::String),
            (json!({"type": "string", "format": "email"}), Kind::String),
            (
                json!({"type": "string", "format": "date-time"}),
                Kind::DateTime,
            ),
            (json!({"type": "string", "format": "date"}), Kind::Date),
            (json!({"type": "string", "format": "time"}), Kind::Time),
            (
                json!({"type": "object", "properties": {"a": {"type": "integer"}}}),
                obj(&[("a", Kind::Integer)]),
            ),
            (
                json!({"properties": {"a": {"type": "boolean"}}}),
                obj(&[("a", Kind::Boolean)]),
            ),
            (json!({"type": "object"}), Kind::Json),
            (json!({"type": "object", "properties": {}}), Kind::Json),
            (
                json!({"type": "object", "properties": {"a": {}}, "additionalProperties": true}),
                Kind::Json,
            ),
            (
                json!({"type": "object", "patternProperties": {".*": {}}}),
                Kind::Json,
            ),
            (
                json!({"type": "object", "properties": {"a": {"type": "integer"}}, "additionalProperties": false}),
                obj(&[("a", Kind::Integer)]),
            ),
            (
                json!({"type": "array", "items": {"type": "string"}}),
                Kind::Array(Box::new(Kind::String)),
            ),
            (json!({"type": "array"}), Kind::Array(Box::new(Kind::Json))),
            (
                json!({"type": "array", "items": [{"type": "string"}]}),
                Kind::Array(Box::new(Kind::Json)),
            ),
            (json!({}), Kind::Json),
            (json!(true), Kind::Json),
            (json!({"type": "null"}), Kind::Json),
            (json!({"type": ["string", "integer"]}), Kind::String),
            (
                json!({"type": ["object", "string"], "properties": {"a": {}}}),
                Kind::Json,
            ),
            (json!({"type": ["null", "integer"]}), Kind::Integer),
            (
                json!({"type": ["null", "string"], "format": "date-time"}),
                Kind::DateTime,
            ),
            (
                json!({"anyOf": [{"type": "null"}, {"type": "string", "format": "date-time"}]}),
                Kind::DateTime,
            ),
            (
                json!({"oneOf": [{"type": "integer"}, {"type": "number"}]}),
                Kind::Number,
            ),
            (
                json!({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string"}]}),
                Kind::String,
            ),
            (
                json!({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}),
                Kind::Json,
            ),
            (
                json!({"anyOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}, {"type": "object", "properties": {"b": {"type": "string"}}}]}),
                obj(&[("a", Kind::Integer), ("b", Kind::String)]),
            ),
            (
                json!({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}}, {"properties": {"b": {"type": "string"}}}]}),
                obj(&[("a", Kind::Integer), ("b", Kind::String)]),
            ),
            (json!({"$ref": "#/definitions/ts"}), Kind::DateTime),
            (
                json!({"type": "array", "items": {"$ref": "#/definitions/user"}}),
                Kind::Array(Box::new(obj(&[("id", Kind::String)]))),
            ),
        ];
        for (schema, want) in cases {
            assert_eq!(kind(schema.clone()), want, "{schema}");
        }
    }

    #[test]
    fn arrow_types_of_each_kind() {
        assert_eq!(
            Kind::DateTime.data_type(),
            DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into()))
        );
        assert_eq!(Kind::Date.data_type(), DataType::Date32);
        assert_eq!(
            Kind::Time.data_type(),
            DataType::Time64(TimeUnit::Microsecond)
        );
        assert_eq!(Kind::Json.data_type(), DataType::Utf8);
        let s = Kind::Object(vec![Column {
            name: "a".into(),
            kind: Kind::Integer,
        }])
        .data_type();
        assert_eq!(
            s,
            DataType::Struct(vec![Field::new("a", DataType::Int64, true)].into())
        );
    }

    #[test]
    fn recursive_and_dangling_refs() {
        let recursive = json!({"type": "object", "properties": {"node": {"$ref": "#/definitions/n"}},
            "definitions": {"n": {"type": "object", "properties": {"child": {"$ref": "#/definitions/n"}}}}});
        assert!(
            columns_of(&recursive).is_ok(),
            "bounded, not a stack overflow"
        );
        let dangling =
            json!({"type": "object", "properties": {"a": {"$ref": "#/definitions/none"}}});
        assert!(
            columns_of(&dangling)
                .expect_err("dangling")
                .contains("points at nothing")
        );
        let remote = json!({"type": "object", "properties": {"a": {"$ref": "http://x/y.json"}}});
        assert!(
            columns_of(&remote)
                .expect_err("remote")
                .contains("only local")
        );
    }

    #[test]
    fn bad_roots() {
        assert!(columns_of(&json!({"type": "integer"})).is_err());
        assert!(columns_of(&json!([1])).is_err());
        assert!(
            columns_of(&json!({"type": "object"}))
                .expect_err("no properties")
                .contains("no properties")
        );
        assert!(
            columns_of(&json!({"type": "object", "properties": {"a": {"type": "wat"}}})).is_err()
        );
    }

    #[test]
    fn flattening_schema_and_record() {
        let schema = json!({"type": "object", "properties": {
            "id": {"type": "integer"},
            "a": {"type": "object", "properties": {
                "b": {"type": "string"},
                "c": {"type": "object", "properties": {"d": {"type": "integer"}}},
                "tags": {"type": "array", "items": {"type": "string"}}}}}});
        let flat = flatten_schema(&schema, 1);
        let names: Vec<_> = flat["properties"]
            .as_object()
            .expect("obj")
            .keys()
            .cloned()
            .collect();
        assert_eq!(names, ["id", "a__b", "a__c", "a__tags"]);
        let cols = columns_of(&flat).expect("cols");
        assert_eq!(cols[2].kind, Kind::Json);
        assert_eq!(cols[3].kind, Kind::Json);

        let rec = json!({"id": 1, "a": {"b": "x", "c": {"d": 2}, "tags": ["t"]}})
            .as_object()
            .cloned()
            .expect("obj");
        let flat_rec = flatten_record(rec.clone(), 1);
        assert_eq!(
            Value::Object(flat_rec),
            json!({"id": 1, "a__b": "x", "a__c": {"d": 2}, "a__tags": ["t"]})
        );
        let deep = flatten_record(rec, 5);
        assert_eq!(deep.get("a__c__d"), Some(&json!(2)));
        let deep_schema = flatten_schema(&schema, 5);
        assert!(deep_schema["properties"].get("a__c__d").is_some());
    }

    #[test]
    fn widening_rules() {
        use DataType as D;
        assert_eq!(widen(&D::Int64, &D::Float64), Some(D::Float64));
        assert_eq!(widen(&D::Float64, &D::Int64), Some(D::Float64));
        assert_eq!(widen(&D::Float64, &D::Utf8), Some(D::Utf8));
        assert_eq!(widen(&D::Utf8, &D::Int64), Some(D::Utf8));
        assert_eq!(widen(&D::Boolean, &D::Int64), Some(D::Utf8));
        let s1 = Kind::Object(vec![Column {
            name: "a".into(),
            kind: Kind::Integer,
        }])
        .data_type();
        let s2 = Kind::Object(vec![
            Column {
                name: "a".into(),
                kind: Kind::Number,
            },
            Column {
                name: "b".into(),
                kind: Kind::String,
            },
        ])
        .data_type();
        assert_eq!(widen(&s1, &s2), Some(s2.clone()));
        assert_eq!(
            widen(&s1, &D::Int64),
            None,
            "struct to scalar is incompatible"
        );
        assert_eq!(widen(&D::Utf8, &s1), None);
    }

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
    fn conformer_drops_undeclared_and_normalises_date_times() {
        let schema = json!({"type": "object", "properties": {
            "t": {"type": ["null", "string"], "format": "date-time"},
            "o": {"type": "object", "properties": {"u": {"type": "string", "format": "date-time"}}},
            "open": {"type": "object"},
            "half": {"type": ["null", "object"], "additionalProperties": true, "properties": {"d": {"type": "string", "format": "date-time"}}},
            "either": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date-time"}]},
            "l": {"type": "array", "items": {"type": "object", "properties": {"w": {"type": "string", "format": "date-time"}}}}}});
        let c = RecordConformer::new(&schema).expect("conformer");
        let mut rec = json!({"t": "2024-01-15T10:23:45.123+0000", "extra": 1,
            "o": {"u": "2024-01-15T12:00:00+02:00", "x": 2}, "open": {"any": {"thing": 1}},
            "half": {"d": "2024-01-15T10:00:00.000+0100", "customfield_1": {"x": 1}},
            "either": "2024-01-15T10:00:00-0100",
            "l": [{"w": "2024-01-15 10:00:00", "z": 3}], "bad": null})
        .as_object()
        .cloned()
        .expect("obj");
        c.conform(&mut rec);
        assert_eq!(
            Value::Object(rec),
            json!({"t": "2024-01-15T10:23:45.123Z",
            "o": {"u": "2024-01-15T10:00:00Z"}, "open": {"any": {"thing": 1}},
            "half": {"d": "2024-01-15T09:00:00Z", "customfield_1": {"x": 1}},
            "either": "2024-01-15T11:00:00Z",
            "l": [{"w": "2024-01-15T10:00:00Z"}]})
        );
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
