//! A schema and records from the input, decoded into an Arrow batch without panics.
//! Input: `{"schema": {...}, "records": [{...}, ...], "texts": ["{...}", ...]}`: the records
//! through both the `Value` path and the raw path, the texts through the raw path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use singer_target::{RecordDecoder, RowMeta, SchemaOptions, StreamSchema};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let Some(schema) = input.get("schema") else { return };
    let options = SchemaOptions { flattening: None, validate_records: true };
    let Ok(stream) = StreamSchema::with_options("fuzz", schema, vec![], &options) else { return };
    let mut decoder = RecordDecoder::new(&stream, true);
    // The same records again as JSON text, through the raw path (and its fallback).
    let mut raw = RecordDecoder::new(&stream, true);
    for (i, record) in input.get("records").and_then(|r| r.as_array()).into_iter().flatten().enumerate() {
        if let Some(map) = record.as_object()
            && let Ok(prepared) = stream.prepare(map.clone(), i as u64)
        {
            let _ = decoder.push(&prepared, &RowMeta::default(), i as u64);
        }
        let _ = raw.push_json(&stream, &record.to_string(), &RowMeta::default(), i as u64);
    }
    // Any text as a record's JSON (repeated keys, escapes, broken JSON).
    for (i, text) in input.get("texts").and_then(|t| t.as_array()).into_iter().flatten().enumerate() {
        if let Some(text) = text.as_str() {
            let _ = raw.push_json(&stream, text, &RowMeta::default(), i as u64);
        }
    }
    let _ = decoder.finish(chrono::Utc::now());
    let _ = raw.finish(chrono::Utc::now());
});
