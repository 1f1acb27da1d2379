//! Criterion benchmark of writing Arrow batches as Parquet files.

use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use singer_core::batch::{RecordDecoder, RowMeta};
use singer_core::schema::StreamSchema;
use singer_core::target::{
    Commit, CommitMarker, LoadMethod, Operation, Sink, StreamChanges, TargetSettings, TargetStream,
};
use target_parquet::{Compression, Config, ParquetSink};

const ROWS: usize = 20_000;

fn batch_and_stream(method: LoadMethod) -> (Arc<TargetStream>, arrow::record_batch::RecordBatch) {
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
    (
        stream,
        decoder
            .finish(chrono::Utc::now())
            .expect("finish")
            .expect("rows"),
    )
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("parquet_commit");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(10);
    {
        let method = LoadMethod::AppendOnly;
        let (stream, batch) = batch_and_stream(method);
        group.bench_function(format!("{method:?}"), |b| {
            b.iter_batched(
                || {
                    let dir = tempfile::tempdir().expect("tmp");
                    let config = Config {
                        destination_path: dir.path().join("out"),
                        compression: Compression::Zstd,
                        row_group_size: 100_000,
                        max_rows_per_file: None,
                        max_file_size_mb: None,
                        partition_by: None,
                        target: TargetSettings::default(),
                    };
                    (ParquetSink::open(&config).expect("open"), dir)
                },
                |(mut sink, _dir)| {
                    sink.commit(Commit {
                        streams: vec![StreamChanges {
                            stream: stream.clone(),
                            operations: vec![
                                Operation::Schema(stream.clone()),
                                Operation::Rows(batch.clone()),
                            ],
                            first_in_run: true,
                        }],
                        marker: CommitMarker::default(),
                        end_of_input: false,
                    })
                    .expect("commit")
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(writer, bench);
criterion_main!(writer);
