//! Flattening nested objects into `parent__child` properties, as the Meltano SDK's
//! `flattening_enabled` does, for schemas and for the records that follow them.

use serde_json::{Map, Value};

use super::kind::MAX_DEPTH;
use crate::message::Record;

/// The separator between a parent and a child property name when flattening.
pub const FLATTEN_SEPARATOR: &str = "__";

/// The Meltano SDK's default `flattening_max_key_length`.
pub const DEFAULT_MAX_KEY_LENGTH: usize = 255;

/// How to flatten: the SDK's `flattening_max_depth`, `flattening_separator` and
/// `flattening_max_key_length`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flattening {
    /// How many levels of nested objects become columns.
    pub max_depth: usize,
    /// Between a parent and a child name.
    pub separator: String,
    /// Flattened names this long or longer are shortened, parent by parent, as the SDK
    /// does, so a target gets the same column names from either.
    pub max_key_length: usize,
}

impl Default for Flattening {
    fn default() -> Self {
        Flattening {
            max_depth: 1,
            separator: FLATTEN_SEPARATOR.into(),
            max_key_length: DEFAULT_MAX_KEY_LENGTH,
        }
    }
}

impl Flattening {
    /// The flattened name of `name` under `parents`. Like the SDK's `flatten_key`: while
    /// the joined name is at least `max_key_length` long, each part in turn, from the
    /// outermost, becomes its initials (`customer_details` to `cd`; a name with one
    /// initial keeps its first three letters).
    pub fn key(&self, parents: &[String], name: &str) -> String {
        let joined_len = |parts: &[String]| {
            parts.iter().map(String::len).sum::<usize>()
                + self.separator.len() * parts.len().saturating_sub(1)
        };
        if parents.is_empty() && name.len() < self.max_key_length {
            return name.to_string();
        }
        let mut parts: Vec<String> = parents.to_vec();
        parts.push(name.to_string());
        let mut next = 0;
        while joined_len(&parts) >= self.max_key_length && next < parts.len() {
            parts[next] = initials(&parts[next]);
            next += 1;
        }
        parts.join(&self.separator)
    }
}

/// `inflection.camelize`, then only what is not a lowercase ASCII letter, lowercased; the
/// first three characters when that leaves one or none.
fn initials(part: &str) -> String {
    let mut camel = String::with_capacity(part.len());
    let mut upper_next = true;
    for c in part.chars() {
        if c == '_' {
            upper_next = true;
            continue;
        }
        if upper_next {
            camel.extend(c.to_uppercase());
            upper_next = false;
        } else {
            camel.push(c);
        }
    }
    let reduced: String = camel.chars().filter(|c| !c.is_ascii_lowercase()).collect();
    if reduced.chars().count() > 1 {
        reduced.to_lowercase()
    } else {
        part.chars().take(3).collect::<String>().to_lowercase()
    }
}

/// Flattens nested objects into `parent__child` properties, `options.max_depth` levels
/// deep, as the Meltano SDK's `flattening_enabled` does. Objects deeper than that, and
/// arrays, become JSON text columns.
pub fn flatten_schema(schema: &Value, options: &Flattening) -> Value {
    let mut out = Map::new();
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        flatten_schema_into(props, &mut Vec::new(), options, &mut out);
    }
    let mut flat = schema.as_object().cloned().unwrap_or_default();
    flat.insert("properties".into(), Value::Object(out));
    flat.remove("required");
    Value::Object(flat)
}

fn flatten_schema_into(
    props: &Map<String, Value>,
    parents: &mut Vec<String>,
    options: &Flattening,
    out: &mut Map<String, Value>,
) {
    for (name, sub) in props {
        let nested = sub.get("properties").and_then(Value::as_object);
        let is_object =
            schema_has_type(sub, "object") || (sub.get("type").is_none() && nested.is_some());
        match nested {
            Some(nested)
                if is_object && parents.len() < options.max_depth && !nested.is_empty() =>
            {
                parents.push(name.clone());
                flatten_schema_into(nested, parents, options, out);
                parents.pop();
            }
            _ if is_object || schema_has_type(sub, "array") => {
                // Deeper objects and arrays are kept as JSON text.
                out.insert(options.key(parents, name), Value::Object(Map::new()));
            }
            _ => {
                out.insert(options.key(parents, name), sub.clone());
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
pub fn flatten_record(record: Record, options: &Flattening) -> Record {
    let mut out = Map::with_capacity(record.len());
    flatten_record_into(record, &mut Vec::new(), options, &mut out);
    out
}

fn flatten_record_into(
    record: Record,
    parents: &mut Vec<String>,
    options: &Flattening,
    out: &mut Record,
) {
    for (name, value) in record {
        match value {
            Value::Object(inner) if parents.len() < options.max_depth => {
                parents.push(name);
                flatten_record_into(inner, parents, options, out);
                parents.pop();
            }
            other => {
                let key = if parents.is_empty() && name.len() < options.max_key_length {
                    name
                } else {
                    options.key(parents, &name)
                };
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
        let flat = flatten_schema(&schema, &Flattening::default());
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
        let flat_rec = flatten_record(rec.clone(), &Flattening::default());
        assert_eq!(
            Value::Object(flat_rec),
            json!({"id": 1, "a__b": "x", "a__c": {"d": 2}, "a__tags": ["t"]})
        );
        let five = Flattening {
            max_depth: 5,
            ..Flattening::default()
        };
        let deep = flatten_record(rec, &five);
        assert_eq!(deep.get("a__c__d"), Some(&json!(2)));
        let deep_schema = flatten_schema(&schema, &five);
        assert!(deep_schema["properties"].get("a__c__d").is_some());
    }

    #[test]
    fn another_separator_and_long_names_shortened_as_the_sdk_does() {
        let dotted = Flattening {
            separator: ".".into(),
            ..Flattening::default()
        };
        let rec = json!({"a": {"b": 1}}).as_object().cloned().expect("obj");
        assert_eq!(
            Value::Object(flatten_record(rec, &dotted)),
            json!({"a.b": 1})
        );
        let short = Flattening {
            max_key_length: 20,
            ..Flattening::default()
        };
        let parents = vec!["customer_details".to_string(), "address".to_string()];
        // "customer_details__address__street_name" is 38 long: the first part becomes
        // "cd" (still 24), "address" has one initial so becomes "add" (still 20, the
        // limit), and then the name itself.
        assert_eq!(short.key(&parents, "street_name"), "cd__add__sn");
        assert_eq!(short.key(&[], "id"), "id");
        // Exactly the limit is shortened too, as in the SDK (`>=`).
        let at_limit = Flattening {
            max_key_length: 4,
            ..Flattening::default()
        };
        assert_eq!(at_limit.key(&["ab".into()], "c"), "ab__c");
        assert_eq!(initials("fooBar_baz"), "fbb");
        assert_eq!(initials("x"), "x");
        // Schema and record agree on shortened names.
        let schema = json!({"properties": {"customer_details": {"type": "object", "properties": {
            "street_name": {"type": "string"}}}}});
        let flat = flatten_schema(&schema, &short);
        let rec = json!({"customer_details": {"street_name": "Main"}})
            .as_object()
            .cloned()
            .expect("obj");
        let flat_rec = flatten_record(rec, &short);
        let schema_keys: Vec<&String> = flat["properties"]
            .as_object()
            .expect("obj")
            .keys()
            .collect();
        let record_keys: Vec<&String> = flat_rec.keys().collect();
        assert_eq!(schema_keys, record_keys);
        assert_eq!(record_keys, ["cd__street_name"]);
    }
}
