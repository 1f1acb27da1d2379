//! `target-duckdb`: load a Singer stream into a DuckDB database file.

use std::process::ExitCode;

/// Records are parsed on one thread and freed on another; mimalloc keeps that cheap where
/// glibc's arenas contend on a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use target_duckdb::{Config, DuckDbSink, about};

fn main() -> ExitCode {
    singer_core::cli::target_main(about(), |config: Config| {
        let sink = DuckDbSink::open(&config)?;
        Ok((sink, config.target))
    })
}
