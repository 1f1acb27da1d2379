use serde_json::json;

use super::*;

fn maps(settings: Value) -> StreamMaps {
    let settings: MapSettings = serde_json::from_value(settings).expect("settings");
    StreamMaps::new(&settings)
        .expect("valid maps")
        .expect("maps set")
}

fn users_schema() -> SchemaMessage {
    SchemaMessage {
        stream: "users".into(),
        schema: json!({
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "email": {"type": ["string", "null"]},
                "age": {"type": ["integer", "null"]},
                "nested": {"type": "object", "properties": {"x": {"type": "integer"}}}
            },
            "required": ["id", "email"]
        }),
        key_properties: vec!["id".into()],
        bookmark_properties: None,
    }
}

fn record(v: Value) -> Record {
    v.as_object().cloned().expect("object")
}

fn names(schemas: &[SchemaMessage]) -> Vec<&str> {
    schemas.iter().map(|s| s.stream.as_str()).collect()
}

#[test]
fn computed_removed_and_filtered_properties() {
    let mut m = maps(json!({
        "stream_maps": {"users": {
            "email_hash": "md5(config['salt'] + email)",
            "email": null,
            "double_x": "record['nested']['x'] * 2",
            "__filter__": "age is None or age >= 18"
        }},
        "stream_map_config": {"salt": "pepper"}
    }));
    let schemas = m.schema(&users_schema()).expect("schema");
    assert_eq!(names(&schemas), ["users"]);
    let props = &schemas[0].schema["properties"];
    assert!(props.get("email").is_none());
    assert_eq!(props["email_hash"], json!({"type": ["string", "null"]}));
    assert_eq!(props["double_x"], json!({"type": ["integer", "null"]}));
    assert_eq!(schemas[0].schema["required"], json!(["id"]));
    let adult = record(json!({"id": 1, "email": "a@b.c", "age": 30, "nested": {"x": 4}}));
    let out = m.record("users", &adult).expect("mapped");
    assert_eq!(out.len(), 1);
    let (stream, row) = &out[0];
    assert_eq!(stream, "users");
    assert!(row.get("email").is_none());
    assert_eq!(row["double_x"], json!(8));
    assert_eq!(row["email_hash"], json!("936e0eb72bbe80392317a1773bfb8ee0"));
    let child = record(json!({"id": 2, "email": "k@b.c", "age": 9, "nested": {"x": 1}}));
    assert!(m.record("users", &child).expect("filtered").is_empty());
}

#[test]
fn alias_source_else_and_dropped_streams() {
    let mut m = maps(json!({"stream_maps": {
        "users": {"__alias__": "people"},
        "users_domains": {"__source__": "users", "__else__": null, "domain": "email.split('@')[-1]"},
        "logs": null,
        "*_archive": "__NULL__"
    }}));
    let schemas = m.schema(&users_schema()).expect("schema");
    assert_eq!(names(&schemas), ["people", "users_domains"]);
    // __else__: null keeps the key properties, in the schema too.
    let props = schemas[1].schema["properties"].as_object().expect("props");
    assert_eq!(props.keys().collect::<Vec<_>>(), ["id", "domain"]);
    assert_eq!(schemas[1].key_properties, ["id"]);
    let out = m
        .record("users", &record(json!({"id": 3, "email": "x@y.org"})))
        .expect("mapped");
    assert_eq!(out[0].0, "people");
    assert_eq!(
        out[1],
        (
            "users_domains".into(),
            record(json!({"id": 3, "domain": "y.org"}))
        )
    );
    assert_eq!(m.streams_of("users"), ["people", "users_domains"]);

    let logs = SchemaMessage {
        stream: "logs".into(),
        ..users_schema()
    };
    assert!(m.schema(&logs).expect("logs").is_empty());
    assert!(
        m.record("logs", &record(json!({"id": 1})))
            .expect("dropped")
            .is_empty()
    );
    let archive = SchemaMessage {
        stream: "2024_archive".into(),
        ..users_schema()
    };
    assert!(m.schema(&archive).expect("glob").is_empty());
    let other = SchemaMessage {
        stream: "orders".into(),
        ..users_schema()
    };
    assert_eq!(names(&m.schema(&other).expect("other")), ["orders"]);
    assert!(m.is_identity("orders"));
}

#[test]
fn top_level_else_drops_unnamed_streams_and_globs_alias_by_expression() {
    let mut m = maps(json!({"stream_maps": {
        "__else__": null,
        "user*": {"__alias__": "__stream_name__ + '_v2'"},
        "kept": {}
    }}));
    assert_eq!(
        names(&m.schema(&users_schema()).expect("users")),
        ["users_v2"]
    );
    let orders = SchemaMessage {
        stream: "orders".into(),
        ..users_schema()
    };
    assert!(m.schema(&orders).expect("orders").is_empty());
    let kept = SchemaMessage {
        stream: "kept".into(),
        ..users_schema()
    };
    assert_eq!(names(&m.schema(&kept).expect("kept")), ["kept"]);
    // An alias that is not an expression is the name as written.
    let mut m = maps(json!({"stream_maps": {"users": {"__alias__": "raw-users.v1"}}}));
    assert_eq!(
        names(&m.schema(&users_schema()).expect("users")),
        ["raw-users.v1"]
    );
}

#[test]
fn key_properties_follow_the_map() {
    let mut m = maps(json!({"stream_maps": {"users": {"id": null}}}));
    let e = m.schema(&users_schema()).expect_err("removing a key");
    assert!(e.to_string().contains("removing key property 'id'"), "{e}");
    let mut m = maps(json!({"stream_maps": {"users": {
        "id": null, "user_key": "md5(str(id))", "__key_properties__": ["user_key"]
    }}}));
    let s = m.schema(&users_schema()).expect("schema");
    assert_eq!(s[0].key_properties, ["user_key"]);
    let mut m = maps(json!({"stream_maps": {"users": {"__key_properties__": ["nope"]}}}));
    assert!(m.schema(&users_schema()).is_err());
}

#[test]
fn errors_name_the_stream_property_and_position() {
    let bad = |v: Value| {
        let settings: MapSettings = serde_json::from_value(v).expect("settings");
        StreamMaps::new(&settings).expect_err("invalid").to_string()
    };
    let e = bad(json!({"stream_maps": {"users": {"h": "sha1(email)"}}}));
    assert!(
        e.contains("stream 'users'") && e.contains("h 'sha1(email)'"),
        "{e}"
    );
    assert!(
        e.contains("at character 1") && e.contains("unknown function 'sha1'"),
        "{e}"
    );
    let e = bad(json!({"stream_maps": {"users": {"__filter__": "id >"}}}));
    assert!(
        e.contains("__filter__") && e.contains("at character"),
        "{e}"
    );
    let e = bad(json!({"stream_maps": {"users": {"x": 5}}}));
    assert!(e.contains("property 'x' must be an expression"), "{e}");
    let e = bad(json!({"stream_maps": {"users": "__NULL"}}));
    assert!(e.contains("stream 'users'"), "{e}");
    let e = bad(json!({"stream_maps": {"users": {}}, "faker_config": {"seed": 1}}));
    assert!(e.contains("Faker"), "{e}");

    let mut m = maps(json!({"stream_maps": {"users": {"n": "age + 1"}}}));
    m.schema(&users_schema()).expect("schema");
    let e = m
        .record(
            "users",
            &record(json!({"id": 5, "email": "s3cret@x", "age": null})),
        )
        .expect_err("None + 1");
    let text = e.to_string();
    assert!(
        text.contains("stream 'users'") && text.contains("{\"id\":5}"),
        "{text}"
    );
    assert!(
        text.contains("TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'"),
        "{text}"
    );
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn messages_follow_the_maps() {
    let mut m = maps(json!({"stream_maps": {
        "users": {"__alias__": "people"},
        "copy": {"__source__": "users"}
    }}));
    let out = m.message(Message::Schema(users_schema())).expect("schema");
    assert_eq!(out.len(), 2);
    let out = m
        .message(Message::ActivateVersion(ActivateVersionMessage {
            stream: "users".into(),
            version: 7,
        }))
        .expect("activate");
    let streams: Vec<String> = out
        .iter()
        .filter_map(|m| match m {
            Message::ActivateVersion(a) => Some(a.stream.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(streams, ["people", "copy"]);
    let out = m
        .message(Message::Record(RecordMessage {
            stream: "users".into(),
            record: record(json!({"id": 1, "email": "a"})),
            version: Some(7),
            time_extracted: None,
        }))
        .expect("record");
    assert!(
        out.iter()
            .all(|m| matches!(m, Message::Record(r) if r.version == Some(7)))
    );
    assert_eq!(out.len(), 2);
}
