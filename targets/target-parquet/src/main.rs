//! `target-parquet`: write a Singer stream as Parquet datasets.

use std::process::ExitCode;

/// Records are parsed on one thread and freed on another; mimalloc keeps that cheap where
/// glibc's arenas contend on a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use target_parquet::{Config, ParquetSink, about};

fn main() -> ExitCode {
    singer_core::cli::target_main(about(), |config: Config| {
        let sink = ParquetSink::open(&config)?;
        Ok((sink, config.target))
    })
}
