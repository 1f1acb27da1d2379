//! # target-parquet
//!
//! A Singer target that writes each stream as a Parquet dataset: one directory per stream,
//! optionally Hive-partitioned (`col=value/`), readable by DuckDB, Spark and Trino as one
//! table.
//!
//! The Singer side (reading, batching, state after commit, the exactly-once ledger) is
//! `singer_target`; this crate is the [`ParquetSink`]: how a commit becomes files.
//!
//! A commit is made durable in this order, so a crash at any point leaves either the old
//! dataset or the new one:
//!
//! 1. every batch is written to temporary files (`.part-….parquet.tmp`), each closed and
//!    fsynced;
//! 2. the commit log `.singer_commit.json` is replaced atomically: it names the files to move
//!    into place, the files to delete (older full-table versions), and the state covered;
//! 3. the files are renamed into place and old versions removed.
//!
//! On start, the log's last commit is rolled forward (renames and deletes that did not
//! happen yet) and every other temporary file is removed. Data files are named
//! `part-<commit>-<time>-<n>-v<version>.parquet`: the commit number grows across runs, so
//! names sort by write time and never collide.
//!
//! Memory stays flat whatever the input size: the runtime bounds what is buffered, and the
//! Arrow writer flushes row groups as they fill.

mod config;
mod layout;
mod sink;

pub use config::{Compression, Config, about};
pub use sink::ParquetSink;

/// The directory (under `destination_path`) of a stream's dataset.
pub fn dataset_dir_name(stream: &str) -> String {
    layout::dir_name(stream)
}
