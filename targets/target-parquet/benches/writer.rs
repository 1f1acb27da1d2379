//! Criterion benchmark of writing Arrow batches as Parquet files.

use criterion::{Criterion, criterion_group, criterion_main};
use singer_target::{LoadMethod, TargetSettings};
use target_parquet::{Compression, Config, ParquetSink, TableFormat};

fn bench(c: &mut Criterion) {
    singer_testing::bench::bench_commits(c, "parquet_commit", &[LoadMethod::AppendOnly], |dir| {
        ParquetSink::open(&Config {
            destination_path: dir.join("out").to_string_lossy().into_owned(),
            table_format: TableFormat::Parquet,
            storage_options: Default::default(),
            checkpoint_interval: 10,
            compression: Compression::Zstd,
            row_group_size: 100_000,
            max_rows_per_file: None,
            max_file_size_mb: None,
            partition_by: None,
            target: TargetSettings::default(),
        })
        .expect("open")
    });
}

criterion_group!(writer, bench);
criterion_main!(writer);
