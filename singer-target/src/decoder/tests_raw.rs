//! The raw path against the reference path: same rows, same errors, same hashes, and no
//! record that jsonschema rejects gets through the compiled checks.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::stream_schema::SchemaOptions;

/// JSON text, with what `Value` cannot hold: repeated keys and number spellings.
#[derive(Debug, Clone)]
pub(crate) enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<J>),
    Obj(Vec<(String, J)>),
}

impl J {
    pub(crate) fn text(&self) -> String {
        match self {
            J::Null => "null".into(),
            J::Bool(b) => b.to_string(),
            J::Num(n) => n.clone(),
            J::Str(s) => serde_json::to_string(s).expect("string"),
            J::Arr(items) => format!(
                "[{}]",
                items.iter().map(J::text).collect::<Vec<_>>().join(",")
            ),
            J::Obj(members) => format!(
                "{{{}}}",
                members
                    .iter()
                    .map(|(k, v)| format!(
                        "{}: {}",
                        serde_json::to_string(k).expect("key"),
                        v.text()
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

const KEYS: &[&str] = &["a", "b", "c", "id", "t", "_sdc_deleted_at"];

pub(crate) fn json_text() -> impl Strategy<Value = J> {
    let leaf = prop_oneof![
        Just(J::Null),
        any::<bool>().prop_map(J::Bool),
        prop::sample::select(vec![
            "0",
            "1",
            "-1",
            "1.0",
            "1e0",
            "2.5",
            "-0",
            "-0.0",
            "1e300",
            "9007199254740993",
            "18446744073709551615",
            "-9223372036854775808",
            "4",
            "3.0e1",
        ])
        .prop_map(|s| J::Num(s.to_string())),
        any::<i64>().prop_map(|i| J::Num(i.to_string())),
        prop::sample::select(vec![
            "",
            "a",
            "b",
            "x",
            "5",
            " 7 ",
            "2.5",
            "true",
            "FALSE",
            "nope",
            "2024-01-15T10:23:45+0000",
            "2024-01-15T10:23:45.123Z",
            "2024-01-01",
            "12:30:00",
            "ü\"\\\n日本",
            "abcd",
        ])
        .prop_map(|s| J::Str(s.to_string())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(J::Arr),
            prop::collection::vec((prop::sample::select(KEYS.to_vec()), inner), 0..5)
                .prop_map(|m| J::Obj(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

fn property_schema() -> impl Strategy<Value = Value> {
    let scalar = prop_oneof![
        Just(json!({"type": "integer"})),
        Just(json!({"type": ["null", "integer"]})),
        Just(json!({"type": ["null", "number"]})),
        Just(json!({"type": "string"})),
        Just(json!({"type": ["null", "string"]})),
        Just(json!({"type": ["null", "boolean"]})),
        Just(json!({"type": ["null", "string"], "format": "date-time"})),
        Just(json!({"type": "string", "format": "date"})),
        Just(json!({"type": ["string", "null"], "format": "time"})),
        Just(json!({"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]})),
        Just(json!({"type": ["integer", "string"]})),
        Just(json!({})),
        Just(json!({"type": ["null", "integer"], "minimum": 0, "maximum": 10})),
        Just(json!({"type": "number", "exclusiveMinimum": 1})),
        Just(json!({"type": ["null", "string"], "maxLength": 3, "minLength": 1})),
        Just(json!({"type": ["null", "string"], "enum": ["a", "b", null]})),
        Just(json!({"type": "string", "pattern": "^a"})),
        Just(json!({"type": ["null", "object"]})),
        Just(json!({"type": "array"})),
        Just(
            json!({"type": ["null", "object"], "additionalProperties": true,
            "properties": {"a": {"type": "integer"}, "b": {"type": ["null", "string"], "maxLength": 2}},
            "required": ["a"]})
        ),
        Just(json!({"type": ["array", "string"], "items": {"type": "integer", "minimum": 0}})),
        Just(json!({"type": "object", "additionalProperties": false, "properties": {}})),
    ];
    scalar.prop_recursive(2, 16, 3, |inner| {
        prop_oneof![
            (
                prop::collection::btree_map(
                    prop::sample::select(KEYS[..5].to_vec()),
                    inner.clone(),
                    1..4
                ),
                any::<bool>(),
                any::<bool>(),
                any::<bool>(),
            )
                .prop_map(|(props, nullable, closed, require_first)| {
                    let required: Vec<&str> = props
                        .keys()
                        .take(usize::from(require_first))
                        .copied()
                        .collect();
                    let mut s = json!({
                        "type": if nullable { json!(["null", "object"]) } else { json!("object") },
                        "properties": props,
                    });
                    if closed {
                        s["additionalProperties"] = json!(false);
                    }
                    if !required.is_empty() {
                        s["required"] = json!(required);
                    }
                    s
                }),
            (inner, any::<bool>()).prop_map(|(items, nullable)| json!({
                "type": if nullable { json!(["null", "array"]) } else { json!("array") },
                "items": items,
            })),
        ]
    })
}

pub(crate) fn root_schema() -> impl Strategy<Value = (Value, bool)> {
    (
        prop::collection::btree_map(prop::sample::select(KEYS.to_vec()), property_schema(), 1..5),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(props, closed, key_first)| {
            let mut s = json!({"type": "object", "properties": props});
            if closed {
                s["additionalProperties"] = json!(false);
            }
            (s, key_first)
        })
}

pub(crate) fn records() -> impl Strategy<Value = Vec<J>> {
    prop::collection::vec(
        prop::collection::vec((prop::sample::select(KEYS.to_vec()), json_text()), 0..6)
            .prop_map(|m| J::Obj(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        1..8,
    )
}

/// The reference: parse to `Value`, hash, check and flatten, push.
fn reference(
    decoder: &mut RecordDecoder,
    schema: &StreamSchema,
    text: &str,
    meta: &RowMeta,
) -> Result<u64> {
    let record: Map<String, Value> = serde_json::from_str(text).expect("object text");
    decoder.push_record(schema, record, meta, 1)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn raw_path_equals_the_value_path(
        (root, key_first) in root_schema(),
        validate in any::<bool>(),
        metadata in any::<bool>(),
        texts in records(),
    ) {
        let keys: Vec<String> = if key_first {
            root["properties"].as_object().and_then(|p| p.keys().next().cloned()).into_iter().collect()
        } else {
            vec![]
        };
        let options = SchemaOptions { validate_records: validate, flattening: None };
        let Ok(schema) = StreamSchema::with_options("s", &root, keys, &options) else {
            return Ok(());
        };
        let mut fast = RecordDecoder::new(&schema, metadata);
        let mut slow = RecordDecoder::new(&schema, metadata);
        for (i, j) in texts.iter().enumerate() {
            let text = j.text();
            let meta = RowMeta { sequence: i as i64, ..RowMeta::default() };
            let a = fast.push_json(&schema, &text, &meta, 1);
            let b = reference(&mut slow, &schema, &text, &meta);
            match (&a, &b) {
                (Ok(x), Ok(y)) => prop_assert_eq!(x, y, "hash of {}", text),
                (Err(x), Err(y)) => prop_assert_eq!(x.to_string(), y.to_string()),
                _ => prop_assert!(false, "{} : raw {:?} reference {:?} (schema {})", text, a, b, root),
            }
        }
        let at = Utc::now();
        let fa = fast.finish(at).expect("finish");
        let fb = slow.finish(at).expect("finish");
        prop_assert_eq!(fa, fb);
    }
}

#[test]
fn common_singer_schemas_decode_raw() {
    let validated = SchemaOptions {
        validate_records: true,
        flattening: None,
    };
    let schema = json!({"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": ["null", "string"], "maxLength": 255},
            "at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
            "tags": {"type": ["null", "array"], "items": {"type": "string"}},
            "o": {"type": ["null", "object"], "properties": {"x": {"type": ["null", "number"]}}},
            "status": {"type": "string", "enum": ["open", "done"]},
            "n": {"type": "integer", "minimum": -2147483648, "maximum": 2147483647},
            "any": {}, "inclusion": {"type": "string", "inclusion": "automatic"}},
            "required": ["id"]});
    let s =
        StreamSchema::with_options("s", &schema, vec!["id".into()], &validated).expect("schema");
    let mut d = RecordDecoder::new(&s, true);
    assert!(d.decodes_raw(), "{schema}");
    d.push_json(&s, r#"{"id": 1, "name": "x", "at": null, "tags": ["a"], "o": {"x": 1.5}, "status": "open", "n": 5, "any": {"k": [1]}, "extra": 1}"#, &RowMeta::default(), 1)
        .expect("valid");
    assert_eq!(d.raw_rows, 1, "decoded without a Value");
    let e = d
        .push_json(
            &s,
            r#"{"id": 2, "status": "closed"}"#,
            &RowMeta::default(),
            2,
        )
        .expect_err("enum");
    assert!(
        e.to_string()
            .starts_with("stream 's', line 2, field 'status'"),
        "{e}"
    );
    let pattern =
        json!({"type": "object", "properties": {"id": {"type": "string", "pattern": "^a"}}});
    let s = StreamSchema::with_options("s", &pattern, vec![], &validated).expect("schema");
    assert!(
        !RecordDecoder::new(&s, false).decodes_raw(),
        "pattern is left to jsonschema"
    );
    let s = StreamSchema::new("s", &pattern, vec![]).expect("schema");
    assert!(
        RecordDecoder::new(&s, false).decodes_raw(),
        "nothing to check without validation"
    );
}

/// tap-jira's streams are the ones users run most: their records must take the raw path
/// with validation on (a keyword the checks do not cover would silently halve the speed).
#[test]
fn tap_jira_schemas_decode_raw_with_validation() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/jira");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("schemas/jira") {
        let path = entry.expect("entry").path();
        let text = std::fs::read_to_string(&path).expect("schema file");
        let schema: Value = serde_json::from_str(&text).expect("schema JSON");
        let s = StreamSchema::with_options(
            "s",
            &schema,
            vec![],
            &SchemaOptions {
                validate_records: true,
                flattening: None,
            },
        )
        .expect("compiles");
        assert!(
            RecordDecoder::new(&s, true).decodes_raw(),
            "{} is left to jsonschema",
            path.display()
        );
        seen += 1;
    }
    assert!(seen >= 10, "found {seen} schemas");
}
