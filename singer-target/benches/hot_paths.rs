//! Criterion micro-benchmarks of the hot paths: parsing message lines, and records to Arrow.
//! `cargo bench -p singer-target` (the `make bench` suite measures whole targets).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use singer_core::message::{Message, MessageReader};
use singer_target::{RecordDecoder, RowMeta, SchemaOptions, StreamSchema};

fn schema() -> Value {
    json!({"type": "object", "properties": {
        "id": {"type": "string"}, "key": {"type": "string"},
        "updated": {"type": ["null", "string"], "format": "date-time"},
        "fields": {"type": ["null", "object"], "properties": {
            "summary": {"type": ["null", "string"]},
            "status": {"type": ["null", "object"], "properties": {"id": {"type": ["null", "string"]}, "name": {"type": ["null", "string"]}}},
            "labels": {"type": ["null", "array"], "items": {"type": "string"}},
            "timespent": {"type": ["null", "integer"]}}}}})
}

fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            json!({"type": "RECORD", "stream": "issues", "record": {"id": i.to_string(), "key": format!("A-{i}"),
                "updated": "2024-01-15T10:23:45.123+0000",
                "fields": {"summary": format!("summary {i} with \"quotes\" and ünïcode {}", "x".repeat(600)),
                    "status": {"id": "3", "name": "In Progress"}, "labels": ["a", "b", "c"], "timespent": i}}})
            .to_string()
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    let lines = lines(2_000);
    let bytes: usize = lines.iter().map(String::len).sum();
    let input = lines.join("\n");

    let mut group = c.benchmark_group("message");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("parse_line", |b| {
        b.iter(|| {
            for (i, l) in lines.iter().enumerate() {
                black_box(Message::parse_line(i as u64, l.as_bytes()).ok());
            }
        })
    });
    group.bench_function("reader", |b| {
        b.iter(|| {
            let mut r = MessageReader::new(input.as_bytes());
            while let Ok(Some(m)) = r.next_message() {
                black_box(m);
            }
        })
    });
    group.bench_function("serde_json_value_baseline", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(serde_json::from_str::<Value>(l).ok());
            }
        })
    });
    group.finish();

    let records: Vec<_> = lines
        .iter()
        .filter_map(|l| match Message::parse_line(0, l.as_bytes()) {
            Ok(Some(Message::Record(r))) => Some(r.record),
            _ => None,
        })
        .collect();
    let plain = StreamSchema::new("issues", &schema(), vec!["id".into()]).expect("schema");
    let validated = StreamSchema::with_options(
        "issues",
        &schema(),
        vec!["id".into()],
        &SchemaOptions {
            validate_records: true,
            ..Default::default()
        },
    )
    .expect("schema");
    let mut group = c.benchmark_group("record_to_arrow");
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut d = RecordDecoder::new(&plain, true);
            for (i, r) in records.iter().enumerate() {
                let _ = d.push(r, &RowMeta::default(), i as u64);
            }
            black_box(d.finish(chrono::Utc::now()).ok())
        })
    });
    group.bench_function("validate_and_decode", |b| {
        b.iter(|| {
            let mut d = RecordDecoder::new(&validated, true);
            for (i, r) in records.iter().enumerate() {
                if let Ok(r) = validated.prepare(r.clone(), i as u64) {
                    let _ = d.push(&r, &RowMeta::default(), i as u64);
                }
            }
            black_box(d.finish(chrono::Utc::now()).ok())
        })
    });
    group.finish();
}

criterion_group!(hot_paths, benches);
criterion_main!(hot_paths);
