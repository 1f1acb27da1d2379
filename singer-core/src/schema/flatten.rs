//! Flattening nested objects into `parent__child` properties, as the Meltano SDK's
//! `flattening_enabled` does, for schemas and for the records that follow them.

use serde_json::{Map, Value};

use super::kind::MAX_DEPTH;
use crate::message::Record;

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

/// Replaces local `$ref`s by their targets (bounded depth), so flattening sees the real
/// properties.
pub fn inline_refs(schema: &Value) -> Value {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Kind, columns_of};
    use serde_json::json;

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
}
