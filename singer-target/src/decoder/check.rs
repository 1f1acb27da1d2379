//! What the raw decoder checks itself, so that validating a record costs no second parse.
//!
//! [`compile`] turns a stream's JSON Schema into a tree of [`Check`]s aligned with its
//! columns, when every keyword the schema uses is one the decoder can check as it parses:
//! `type`, `properties`, `items`, `required`, `additionalProperties: false`, `enum` of
//! strings, booleans and null, `minimum`/`maximum`/`exclusiveMinimum`/`exclusiveMaximum`,
//! `minLength`/`maxLength`, and `anyOf` whose branches only name types. Annotations
//! (`format`, `description`, `title`, Singer's `inclusion`, unknown keywords ...) are
//! ignored, as jsonschema ignores them. Any other validation keyword (`pattern`,
//! `multipleOf`, `$ref`, `oneOf`, `not`, ...) makes [`compile`] return `None`, and the
//! stream's records go through jsonschema.
//!
//! The checks may be stricter than jsonschema (a record they reject is handed to the
//! jsonschema path, which words the error or accepts it), never looser: a property test
//! checks that every record jsonschema rejects is rejected here too.

use serde_json::{Map, Value};

use singer_core::schema::{Column, Kind};

/// JSON value kinds, as bits.
pub(super) mod types {
    pub const NULL: u8 = 1;
    pub const BOOLEAN: u8 = 2;
    pub const INTEGER: u8 = 4;
    pub const NUMBER: u8 = 8;
    pub const STRING: u8 = 16;
    pub const ARRAY: u8 = 32;
    pub const OBJECT: u8 = 64;
    pub const ANY: u8 = 127;
}

/// The constraints on one value.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Check {
    /// Allowed kinds ([`types`]); `INTEGER` values also pass `NUMBER`.
    allowed: u8,
    /// `enum`, when it only holds strings, booleans and null.
    one_of: Option<Vec<Value>>,
    minimum: Option<f64>,
    maximum: Option<f64>,
    exclusive_minimum: Option<f64>,
    exclusive_maximum: Option<f64>,
    min_length: Option<u64>,
    max_length: Option<u64>,
    /// For objects: columns that must be present.
    pub required: Vec<usize>,
    /// For objects: `additionalProperties: false`.
    pub closed: bool,
    /// For objects: one check per column, in column order.
    pub children: Vec<Check>,
    /// For arrays: the items' check.
    pub items: Option<Box<Check>>,
    /// For values stored as JSON text (no columns inside): what is checked inside them.
    pub inside: Option<Box<Inside>>,
}

/// The checks inside a value kept as JSON text, by property name.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Inside {
    properties: Vec<(String, Check)>,
    required: Vec<String>,
    closed: bool,
    items: Option<Check>,
}

impl Check {
    fn any() -> Self {
        Check {
            allowed: types::ANY,
            one_of: None,
            minimum: None,
            maximum: None,
            exclusive_minimum: None,
            exclusive_maximum: None,
            min_length: None,
            max_length: None,
            required: Vec::new(),
            closed: false,
            children: Vec::new(),
            items: None,
            inside: None,
        }
    }

    /// A whole parsed value (one stored as JSON text).
    pub fn value(&self, v: &Value) -> bool {
        match v {
            Value::Null => self.null(),
            Value::Bool(b) => self.boolean(*b),
            Value::Number(n) => self.number(match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Num::I(i),
                (None, Some(u)) => Num::U(u),
                _ => Num::F(n.as_f64().unwrap_or(f64::NAN)),
            }),
            Value::String(s) => self.string(s),
            Value::Array(items) => {
                self.array()
                    && match self.inside.as_deref().and_then(|i| i.items.as_ref()) {
                        Some(c) => items.iter().all(|item| c.value(item)),
                        None => true,
                    }
            }
            Value::Object(members) => {
                self.object()
                    && self.inside.as_deref().is_none_or(|inside| {
                        inside.required.iter().all(|r| members.contains_key(r))
                            && (!inside.closed
                                || members
                                    .keys()
                                    .all(|k| inside.properties.iter().any(|(p, _)| p == k)))
                            && inside
                                .properties
                                .iter()
                                .all(|(p, c)| members.get(p).is_none_or(|m| c.value(m)))
                    })
            }
        }
    }

    pub fn null(&self) -> bool {
        self.allowed & types::NULL != 0 && self.enum_has(&Value::Null)
    }

    pub fn boolean(&self, b: bool) -> bool {
        self.allowed & types::BOOLEAN != 0 && self.enum_has(&Value::Bool(b))
    }

    /// A number, as `f64`, and whether it is integral (`1`, `1.0`).
    pub fn number(&self, n: Num) -> bool {
        let (value, integral) = match n {
            Num::I(i) => (i as f64, true),
            Num::U(u) => (u as f64, true),
            Num::F(f) => (f, f.fract() == 0.0),
        };
        let kind_ok = if integral {
            self.allowed & (types::INTEGER | types::NUMBER) != 0
        } else {
            self.allowed & types::NUMBER != 0
        };
        if !kind_ok || self.one_of.is_some() {
            return false;
        }
        let has_bounds = self.minimum.is_some()
            || self.maximum.is_some()
            || self.exclusive_minimum.is_some()
            || self.exclusive_maximum.is_some();
        if !has_bounds {
            return true;
        }
        // Integers beyond 2^53 do not compare exactly as floats: not sure, so not passed.
        let exact = match n {
            Num::I(i) => i.unsigned_abs() <= 1 << 53,
            Num::U(u) => u <= 1 << 53,
            Num::F(_) => true,
        };
        exact
            && self.minimum.is_none_or(|m| value >= m)
            && self.maximum.is_none_or(|m| value <= m)
            && self.exclusive_minimum.is_none_or(|m| value > m)
            && self.exclusive_maximum.is_none_or(|m| value < m)
    }

    pub fn string(&self, s: &str) -> bool {
        if self.allowed & types::STRING == 0 {
            return false;
        }
        if let Some(values) = &self.one_of
            && !values.iter().any(|v| v.as_str() == Some(s))
        {
            return false;
        }
        if self.min_length.is_some() || self.max_length.is_some() {
            let chars = s.chars().count() as u64;
            return self.min_length.is_none_or(|m| chars >= m)
                && self.max_length.is_none_or(|m| chars <= m);
        }
        true
    }

    pub fn array(&self) -> bool {
        self.allowed & types::ARRAY != 0 && self.one_of.is_none()
    }

    pub fn object(&self) -> bool {
        self.allowed & types::OBJECT != 0 && self.one_of.is_none()
    }

    fn enum_has(&self, v: &Value) -> bool {
        self.one_of.as_ref().is_none_or(|values| values.contains(v))
    }
}

/// A JSON number as the parser reports it.
#[derive(Debug, Clone, Copy)]
pub(super) enum Num {
    I(i64),
    U(u64),
    F(f64),
}

/// Keywords that do not constrain a value (annotations, and containers read elsewhere).
const IGNORED: &[&str] = &[
    "format",
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "$id",
    "definitions",
    "$defs",
    "readOnly",
    "writeOnly",
    "deprecated",
    "inclusion",
    "selected",
    "selected-by-default",
];

/// Draft 7 keywords the decoder does not check: a schema using any of them is validated by
/// jsonschema.
const UNCHECKED: &[&str] = &[
    "$ref",
    "$schema",
    "const",
    "pattern",
    "multipleOf",
    "oneOf",
    "allOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "propertyNames",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "minProperties",
    "maxProperties",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
    "additionalItems",
    "unevaluatedProperties",
    "unevaluatedItems",
    "contentEncoding",
    "contentMediaType",
    "contentSchema",
];

/// The checks of a record whose data columns are `columns`, or `None` when the schema uses
/// something the decoder does not check.
pub(super) fn compile(schema: &Value, columns: &[&Column]) -> Option<Check> {
    let obj = schema.as_object()?;
    let mut check = node(obj)?;
    if check.allowed & types::OBJECT == 0 {
        return None;
    }
    object_children(obj, columns, &mut check)?;
    Some(check)
}

fn compile_kind(schema: &Value, kind: &Kind) -> Option<Check> {
    let obj = match schema {
        Value::Bool(true) => return Some(Check::any()),
        Value::Object(obj) => obj,
        _ => return None,
    };
    let mut check = node(obj)?;
    match kind {
        Kind::Object(cols) => {
            object_children(obj, &cols.iter().collect::<Vec<_>>(), &mut check)?;
        }
        Kind::Array(item) => {
            if obj.contains_key("properties")
                || obj.contains_key("required")
                || obj.contains_key("additionalProperties")
            {
                return None;
            }
            check.items = match obj.get("items") {
                None => None,
                Some(items) => Some(Box::new(compile_kind(items, item)?)),
            };
        }
        // Scalars and JSON text: what the schema says about the inside is checked on the
        // parsed value.
        _ => check.inside = inside(obj)?,
    }
    Some(check)
}

/// A schema node without columns: its own keywords and, recursively, those inside.
fn compile_any(schema: &Value) -> Option<Check> {
    let obj = match schema {
        Value::Bool(true) => return Some(Check::any()),
        Value::Object(obj) => obj,
        _ => return None,
    };
    let mut check = node(obj)?;
    check.inside = inside(obj)?;
    Some(check)
}

fn inside(obj: &Map<String, Value>) -> Option<Option<Box<Inside>>> {
    if !["properties", "items", "required", "additionalProperties"]
        .iter()
        .any(|k| obj.contains_key(*k))
    {
        return Some(None);
    }
    let properties = match obj.get("properties") {
        None => Vec::new(),
        Some(Value::Object(p)) => p
            .iter()
            .map(|(k, v)| Some((k.clone(), compile_any(v)?)))
            .collect::<Option<Vec<_>>>()?,
        Some(_) => return None,
    };
    let required = required(obj)?.into_iter().map(str::to_string).collect();
    let closed = closed(obj)?;
    let items = match obj.get("items") {
        None => None,
        Some(items @ (Value::Object(_) | Value::Bool(true))) => Some(compile_any(items)?),
        Some(_) => return None,
    };
    Some(Some(Box::new(Inside {
        properties,
        required,
        closed,
        items,
    })))
}

/// The object keywords, aligned with the columns the schema produced.
fn object_children(obj: &Map<String, Value>, columns: &[&Column], check: &mut Check) -> Option<()> {
    let empty = Map::new();
    let props = match obj.get("properties") {
        None => &empty,
        Some(Value::Object(p)) => p,
        Some(_) => return None,
    };
    // Every declared property must be a column, or its values would go unchecked.
    if props.len() != columns.len() || props.keys().any(|k| !columns.iter().any(|c| &c.name == k)) {
        return None;
    }
    check.children = columns
        .iter()
        .map(|c| compile_kind(props.get(&c.name)?, &c.kind))
        .collect::<Option<Vec<_>>>()?;
    check.closed = closed(obj)?;
    check.required = required(obj)?
        .into_iter()
        .map(|n| columns.iter().position(|c| c.name == n))
        .collect::<Option<Vec<_>>>()?;
    Some(())
}

/// `additionalProperties`: `false` closes the object; `true`, `{}` or none leave it open;
/// a schema for the others is not checked here (`None`).
fn closed(obj: &Map<String, Value>) -> Option<bool> {
    match obj.get("additionalProperties") {
        None | Some(Value::Bool(true)) => Some(false),
        Some(Value::Bool(false)) => Some(true),
        Some(Value::Object(o)) if o.is_empty() => Some(false),
        Some(_) => None,
    }
}

/// The names `required` lists (none without it); `None` if it is not a list of names.
fn required(obj: &Map<String, Value>) -> Option<Vec<&str>> {
    match obj.get("required") {
        None => Some(Vec::new()),
        Some(r) => r.as_array()?.iter().map(Value::as_str).collect(),
    }
}

/// The keywords of one schema node that constrain the value itself.
fn node(obj: &Map<String, Value>) -> Option<Check> {
    let mut check = Check::any();
    for (key, value) in obj {
        match key.as_str() {
            "type" => check.allowed &= type_bits(value)?,
            "anyOf" => {
                let mut union = 0u8;
                for branch in value.as_array()? {
                    let branch = branch.as_object()?;
                    if branch
                        .keys()
                        .any(|k| k != "type" && !IGNORED.contains(&k.as_str()))
                    {
                        return None;
                    }
                    union |= branch.get("type").map_or(Some(types::ANY), type_bits)?;
                }
                check.allowed &= union;
            }
            "enum" => {
                let values = value.as_array()?;
                if values
                    .iter()
                    .any(|v| !matches!(v, Value::String(_) | Value::Bool(_) | Value::Null))
                {
                    return None;
                }
                check.one_of = Some(values.clone());
            }
            "minimum" => check.minimum = Some(value.as_f64()?),
            "maximum" => check.maximum = Some(value.as_f64()?),
            "exclusiveMinimum" => check.exclusive_minimum = Some(value.as_f64()?),
            "exclusiveMaximum" => check.exclusive_maximum = Some(value.as_f64()?),
            "minLength" => check.min_length = Some(value.as_u64()?),
            "maxLength" => check.max_length = Some(value.as_u64()?),
            // Read by the callers, against the columns.
            "properties" | "items" | "required" | "additionalProperties" => {}
            k if UNCHECKED.contains(&k) => return None,
            // Annotations and unknown keywords: jsonschema ignores them too.
            _ => {}
        }
    }
    Some(check)
}

fn type_bits(value: &Value) -> Option<u8> {
    let one = |t: &Value| -> Option<u8> {
        Some(match t.as_str()? {
            "null" => types::NULL,
            "boolean" => types::BOOLEAN,
            "integer" => types::INTEGER,
            "number" => types::NUMBER | types::INTEGER,
            "string" => types::STRING,
            "array" => types::ARRAY,
            "object" => types::OBJECT,
            _ => return None,
        })
    };
    match value {
        Value::Array(list) => list.iter().try_fold(0u8, |acc, t| Some(acc | one(t)?)),
        single => one(single),
    }
}
