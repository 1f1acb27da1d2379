//! A plugin's settings schema, derived from its settings struct.
//!
//! Settings are a Rust struct that derives `Deserialize` (to read the config) and
//! `schemars::JsonSchema` (to describe it): doc comments become descriptions, serde defaults
//! become `default`s, `#[schemars(range(min = 1))]` bounds, and
//! `#[schemars(extend("secret" = true, "writeOnly" = true))]` marks a secret the way the
//! Meltano SDK does. [`settings_schema`] turns the struct into the `settings` object of
//! `--about`, shaped as the SDK writes it:
//!
//! * every setting that is not required also accepts `null` (Meltano writes `null` for a
//!   setting that is unset, and [`crate::cli::deserialize_config`] treats it so);
//! * schemars' Rust-specific number formats (`uint`, `double`, ...) are dropped;
//! * nested structs flattened into the config (`#[serde(flatten)]`, as the SDKs' shared
//!   settings are) appear as settings of their own.
//!
//! ```
//! use schemars::JsonSchema;
//! use serde::Deserialize;
//!
//! /// Settings of a demo tap.
//! #[derive(Deserialize, JsonSchema)]
//! struct Config {
//!     /// The API's base URL.
//!     api_url: String,
//!     /// Records per request.
//!     #[serde(default = "fifty")]
//!     #[schemars(range(min = 1))]
//!     page_size: u32,
//! }
//! fn fifty() -> u32 { 50 }
//!
//! let schema = singer_core::settings::settings_schema::<Config>();
//! assert_eq!(schema["required"], serde_json::json!(["api_url"]));
//! assert_eq!(schema["properties"]["page_size"]["type"], serde_json::json!(["integer", "null"]));
//! assert_eq!(schema["properties"]["page_size"]["default"], 50);
//! ```

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value};

/// Number formats schemars adds for Rust types; they are not JSON Schema formats, and
/// validators and Meltano would not know them.
const RUST_NUMBER_FORMATS: [&str; 12] = [
    "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64",
    "float", "double",
];

/// The settings object of `--about` for the settings type `T`: `type`, `properties` and
/// `required`.
pub fn settings_schema<T: JsonSchema>() -> Value {
    let generator = SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let root = generator.into_root_schema_for::<T>().to_value();
    let required: Vec<Value> = root
        .get("required")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut properties = root
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (name, property) in properties.iter_mut() {
        let Some(property) = property.as_object_mut() else {
            continue;
        };
        normalize(property);
        if !required.iter().any(|r| r == name) {
            allow_null(property);
        }
    }
    let mut settings = Map::new();
    settings.insert("type".into(), Value::String("object".into()));
    settings.insert("properties".into(), Value::Object(properties));
    if !required.is_empty() {
        settings.insert("required".into(), Value::Array(required));
    }
    Value::Object(settings)
}

fn normalize(schema: &mut Map<String, Value>) {
    inline_option(schema);
    enum_of_consts(schema);
    if schema
        .get("format")
        .and_then(Value::as_str)
        .is_some_and(|f| RUST_NUMBER_FORMATS.contains(&f))
    {
        schema.remove("format");
    }
    if schema.get("default") == Some(&Value::Null) {
        schema.remove("default");
    }
    for nested in ["items", "additionalProperties"] {
        if let Some(Value::Object(inner)) = schema.get_mut(nested) {
            normalize(inner);
        }
    }
    if let Some(Value::Object(props)) = schema.get_mut("properties") {
        for inner in props.values_mut().filter_map(Value::as_object_mut) {
            normalize(inner);
        }
    }
}

/// `anyOf: [T, {"type": "null"}]` (schemars' `Option` of an enum or struct) becomes `T`
/// itself; `null` is added back by [`allow_null`], as for every optional setting. The
/// field's own description wins over the type's.
fn inline_option(schema: &mut Map<String, Value>) {
    let Some(Value::Array(variants)) = schema.get("anyOf") else {
        return;
    };
    let is_null = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
    let [inner] = variants.iter().filter(|v| !is_null(v)).collect::<Vec<_>>()[..] else {
        return;
    };
    let Some(inner) = inner.as_object().cloned() else {
        return;
    };
    schema.remove("anyOf");
    for (key, value) in inner {
        schema.entry(key).or_insert(value);
    }
}

/// `oneOf` of `const`s (an enum whose variants have doc comments) becomes a plain `enum`,
/// as the SDK writes choices.
fn enum_of_consts(schema: &mut Map<String, Value>) {
    let Some(Value::Array(variants)) = schema.get("oneOf") else {
        return;
    };
    let consts: Option<Vec<Value>> = variants.iter().map(|v| v.get("const").cloned()).collect();
    let types: Vec<&Value> = variants.iter().filter_map(|v| v.get("type")).collect();
    let (Some(consts), Some(first)) = (consts, types.first()) else {
        return;
    };
    if types.len() != variants.len() || types.iter().any(|t| t != first) {
        return;
    }
    let t = (*first).clone();
    schema.remove("oneOf");
    schema.entry("type").or_insert(t);
    schema.insert("enum".into(), Value::Array(consts));
}

/// Adds `null` to a setting's type (and to its `enum`, if it has one).
fn allow_null(schema: &mut Map<String, Value>) {
    match schema.get_mut("type") {
        Some(Value::String(t)) if t != "null" => {
            let t = std::mem::take(t);
            schema.insert(
                "type".into(),
                Value::Array(vec![Value::String(t), Value::String("null".into())]),
            );
        }
        Some(Value::Array(types)) if !types.iter().any(|t| t == "null") => {
            types.push(Value::String("null".into()));
        }
        _ => {}
    }
    if let Some(Value::Array(values)) = schema.get_mut("enum")
        && !values.contains(&Value::Null)
    {
        values.push(Value::Null);
    }
}

/// What a settings schema lost against a reference `{name: {keyword: value}}`: one line per
/// setting missing, keyword that differs, or setting without a description. Tests hold a
/// derived schema against the hand-written one it replaced.
pub fn differences(settings: &Value, reference: &Value) -> Vec<String> {
    let empty = Map::new();
    let props = settings
        .get("properties")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut out = Vec::new();
    for (name, want) in reference.as_object().unwrap_or(&empty) {
        let Some(got) = props.get(name) else {
            out.push(format!("{name} is missing"));
            continue;
        };
        for (key, value) in want.as_object().unwrap_or(&empty) {
            if got.get(key) != Some(value) {
                out.push(format!("{name}.{key}: {got}"));
            }
        }
        if got
            .get("description")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            out.push(format!("{name} has no description"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, JsonSchema, Default)]
    #[serde(default)]
    #[allow(dead_code)]
    struct Shared {
        /// Rows per batch.
        #[schemars(range(min = 1))]
        rows: usize,
        /// How to load.
        method: Option<Method>,
    }

    #[derive(Deserialize, JsonSchema, Clone, Copy)]
    #[serde(rename_all = "kebab-case")]
    #[allow(dead_code)]
    enum Method {
        /// Add rows.
        AppendOnly,
        /// Replace rows by key.
        Upsert,
    }

    #[derive(Deserialize, JsonSchema)]
    #[allow(dead_code)]
    struct Config {
        /// Where.
        path: String,
        /// The password.
        #[schemars(extend("secret" = true, "writeOnly" = true))]
        password: Option<String>,
        /// A ratio.
        #[serde(default)]
        ratio: f64,
        /// Tags.
        #[serde(default)]
        tags: Vec<String>,
        #[serde(flatten)]
        shared: Shared,
    }

    #[test]
    fn derived_settings_look_like_the_sdks() {
        let s = settings_schema::<Config>();
        assert_eq!(s["type"], "object");
        assert_eq!(s["required"], json!(["path"]));
        let p = &s["properties"];
        assert_eq!(
            p["path"],
            json!({"description": "Where.", "type": "string"})
        );
        assert_eq!(p["password"]["type"], json!(["string", "null"]));
        assert_eq!(p["password"]["secret"], json!(true));
        assert_eq!(p["password"]["writeOnly"], json!(true));
        assert_eq!(p["ratio"]["type"], json!(["number", "null"]));
        assert!(p["ratio"].get("format").is_none(), "{}", p["ratio"]);
        assert_eq!(p["tags"]["type"], json!(["array", "null"]));
        assert_eq!(p["rows"]["minimum"], json!(1));
        assert_eq!(p["rows"]["description"], "Rows per batch.");
        assert_eq!(
            p["method"],
            json!({"description": "How to load.", "type": ["string", "null"],
                "enum": ["append-only", "upsert", null]}),
            "flattened settings are settings of their own; documented enums are plain enums"
        );
    }
}
