//! Any JSON as a stream's schema: compiled, flattened, conformed, without panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use singer_tap::conform::RecordConformer;
use singer_target::{SchemaOptions, StreamSchema};

fuzz_target!(|data: &[u8]| {
    let Ok(schema) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    for options in [
        SchemaOptions::default(),
        SchemaOptions {
            flattening: Some(singer_core::schema::Flattening { max_depth: 2, ..Default::default() }),
            validate_records: true,
        },
    ] {
        if let Ok(s) = StreamSchema::with_options("fuzz", &schema, vec![], &options) {
            let _ = s.arrow_schema();
        }
    }
    let _ = RecordConformer::new(&schema);
});
