//! Criterion benchmark of committing Arrow batches into DuckDB (append and upsert).

use criterion::{Criterion, criterion_group, criterion_main};
use singer_target::{LoadMethod, TargetSettings};
use target_duckdb::{Config, DuckDbSink};

fn bench(c: &mut Criterion) {
    singer_testing::bench::bench_commits(
        c,
        "duckdb_commit",
        &[LoadMethod::AppendOnly, LoadMethod::Upsert],
        |dir| {
            DuckDbSink::open(&Config {
                path: dir.join("b.duckdb"),
                default_target_schema: "main".into(),
                memory_limit: "256MB".into(),
                threads: None,
                target: TargetSettings::default(),
            })
            .expect("open")
        },
    );
}

criterion_group!(appender, bench);
criterion_main!(appender);
