//! `target-parquet`: write a Singer stream as Parquet datasets.

use std::process::ExitCode;

use target_parquet::{Config, ParquetSink, about};

fn main() -> ExitCode {
    singer_core::cli::target_main(about(), |config: Config| {
        let sink = ParquetSink::open(&config)?;
        Ok((sink, config.target))
    })
}
