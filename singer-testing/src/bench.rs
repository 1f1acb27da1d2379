//! Criterion benchmarks of a sink's commits: the same Jira-like batch, committed into a
//! fresh destination per iteration, for each load method.

use std::path::Path;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use criterion::{BatchSize, Criterion, Throughput};
use serde_json::json;
use singer_target::{
    Commit, CommitMarker, LoadMethod, Operation, RecordDecoder, RowMeta, Sink, StreamChanges,
    StreamSchema, TargetStream,
};

/// Rows in the benchmark batch.
pub const ROWS: usize = 20_000;

/// An `issues` stream loaded with `method`, and one batch of [`ROWS`] Jira-like rows.
pub fn issues_batch(method: LoadMethod) -> (Arc<TargetStream>, RecordBatch) {
    let schema = StreamSchema::new(
        "issues",
        &json!({"properties": {"id": {"type": "integer"}, "summary": {"type": "string"},
            "updated": {"type": "string", "format": "date-time"},
            "status": {"type": "object", "properties": {"name": {"type": "string"}}},
            "labels": {"type": "array", "items": {"type": "string"}}}}),
        vec!["id".into()],
    )
    .expect("schema");
    let mut decoder = RecordDecoder::new(&schema, true);
    for i in 0..ROWS {
        let r = json!({"id": i, "summary": format!("summary {i} {}", "x".repeat(200)), "updated": "2024-01-15T10:23:45Z",
            "status": {"name": "Open"}, "labels": ["a", "b"]});
        decoder
            .push(r.as_object().expect("obj"), &RowMeta::default(), 0)
            .expect("push");
    }
    let stream = Arc::new(TargetStream {
        arrow_schema: decoder.schema().clone(),
        schema,
        load_method: method,
    });
    let batch = decoder
        .finish(chrono::Utc::now())
        .expect("finish")
        .expect("rows");
    (stream, batch)
}

/// The first commit of a stream: its schema, then the batch.
pub fn first_commit(stream: &Arc<TargetStream>, batch: &RecordBatch) -> Commit {
    Commit {
        streams: vec![StreamChanges {
            stream: stream.clone(),
            operations: vec![
                Operation::Schema(stream.clone()),
                Operation::Rows(batch.clone()),
            ],
            first_in_run: true,
        }],
        marker: CommitMarker::default(),
        swap_overwrite: false,
        retract: Vec::new(),
        provisional: false,
        settle: Vec::new(),
    }
}

/// Benchmarks one commit of [`issues_batch`] per load method, each into a destination
/// `open` makes in a fresh temporary directory.
pub fn bench_commits<S: Sink>(
    c: &mut Criterion,
    group: &str,
    methods: &[LoadMethod],
    open: impl Fn(&Path) -> S,
) {
    let mut group = c.benchmark_group(group);
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    for &method in methods {
        let (stream, batch) = issues_batch(method);
        group.bench_function(format!("{method:?}"), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().expect("tmp");
                    (open(dir.path()), dir)
                },
                |(mut sink, _dir)| sink.commit(first_commit(&stream, &batch)).expect("commit"),
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}
