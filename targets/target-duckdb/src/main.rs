//! `target-duckdb`: load a Singer stream into a DuckDB database file.

use std::process::ExitCode;

use target_duckdb::{Config, DuckDbSink, about};

fn main() -> ExitCode {
    singer_core::cli::target_main(about(), |config: Config| {
        let sink = DuckDbSink::open(&config)?;
        Ok((sink, config.target))
    })
}
