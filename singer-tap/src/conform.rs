//! Conforming records to their (selected) schema before they are written.
//!
//! Sources return more than a stream's schema declares, and date-times in many forms. The
//! Meltano SDK drops undeclared properties and normalises date-times before writing a
//! RECORD; so does [`RecordConformer`], built once per stream from the pruned schema.

use std::collections::HashMap;

use serde_json::{Map, Value};
use singer_core::message::Record;
use singer_core::schema::{MAX_DEPTH, is_null_only};

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
        props: HashMap<String, ConformNode>,
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
                if let Some(normal) = singer_core::time::normalize_datetime(s) {
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
        props: &HashMap<String, ConformNode>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
}
