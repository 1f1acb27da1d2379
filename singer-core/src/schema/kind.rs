//! JSON Schema to column kinds: what a SCHEMA message says each property holds.
//!
//! Taps send JSON Schemas as real sources describe data: nullable unions, `anyOf`, local
//! `$ref`s, open objects. [`columns_of`] resolves a stream's schema once into [`Column`]s of
//! a small set of [`Kind`]s that every destination can store; the target SDK maps them to
//! Arrow types.
//!
//! | JSON Schema | [`Kind`] |
//! |---|---|
//! | `{"type": "integer"}` | `Integer` |
//! | `{"type": "number"}`, `["integer", "number"]` | `Number` |
//! | `{"type": "boolean"}` | `Boolean` |
//! | `{"type": "string"}` (any other or no `format`) | `String` |
//! | `{"type": "string", "format": "date-time"}` | `DateTime` |
//! | `{"type": "string", "format": "date"}` | `Date` |
//! | `{"type": "string", "format": "time"}` | `Time` |
//! | `{"type": "object", "properties": {...}}` | `Object` of the properties |
//! | object without `properties`, with `additionalProperties` or `patternProperties` | `Json` |
//! | `{"type": "array", "items": {...}}` | `Array` of the item kind |
//! | array without `items`, or with tuple `items` | `Array(Json)` |
//! | `{}`, `true`, no `type`, `{"type": "null"}` | `Json` |
//! | scalar mixes such as `["string", "integer"]` | `String` (numbers as text) |
//! | mixes with an object or array | `Json` |
//! | `["null", T]`, `anyOf`/`oneOf` of `null` and `T` | as `T` |
//! | `anyOf`/`oneOf` of several types | combined as for `type` lists |
//! | `{"$ref": "#/definitions/x"}` (local) | as the target |
//!
//! ```
//! use singer_core::schema::{Kind, columns_of};
//! use serde_json::json;
//!
//! let columns = columns_of(&json!({"type": "object", "properties": {
//!     "id": {"type": "integer"},
//!     "updated": {"type": ["null", "string"], "format": "date-time"},
//!     "labels": {"type": "array", "items": {"type": "string"}}
//! }}))?;
//! let kinds: Vec<_> = columns.iter().map(|c| &c.kind).collect();
//! assert_eq!(kinds, [&Kind::Integer, &Kind::DateTime, &Kind::Array(Box::new(Kind::String))]);
//! # Ok::<(), String>(())
//! ```

use serde_json::{Map, Value};

/// How deep `$ref`s and nesting are followed before a schema is stored as JSON text.
pub const MAX_DEPTH: usize = 64;

/// The most columns (nested fields included) a stream may have: past this, a schema is
/// refused rather than handed to a destination that would choke on it.
pub const MAX_COLUMNS: usize = 10_000;

/// Columns in all, nested struct fields included.
pub fn count_columns(columns: &[Column]) -> usize {
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
    fn is_stringish(&self) -> bool {
        matches!(
            self,
            Kind::String | Kind::DateTime | Kind::Date | Kind::Time
        )
    }
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

/// Whether a schema admits only `null` (the null branch of a nullable union).
pub fn is_null_only(v: &Value) -> bool {
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
}
