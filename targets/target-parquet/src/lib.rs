//! # target-parquet
//!
//! A Singer target that writes each stream as a table: with `table_format: parquet` a
//! directory of Parquet files per stream, optionally Hive-partitioned (`col=value/`), read
//! by DuckDB, Spark and Trino as one table; with `table_format: delta` a Delta Lake table
//! per stream ([`delta`]). The destination is a local directory or an object store (S3,
//! GCS, Azure: [`storage`]).
//!
//! The Singer side (reading, batching, state after commit, the exactly-once ledger) is
//! `singer_target`; this crate is the [`ParquetSink`]: how a commit becomes files.
//!
//! A commit is made durable in this order, so a crash at any point leaves either the old
//! tables or the new ones:
//!
//! 1. every batch is written to data files, each completed (fsynced, or its upload
//!    finished): under temporary names (`.part-….parquet.tmp`) for the Parquet layout,
//!    under their final names for Delta, where no reader sees a file the log does not add;
//! 2. the commit log `.singer_commit.json` is replaced atomically: it names the files to move
//!    into place and to delete (Parquet), or each table's transaction (Delta), and the state
//!    covered;
//! 3. the commit is published: files renamed into place and old versions removed, or one
//!    Delta transaction per table, each carrying the commit's number as its `txn` version.
//!
//! On start, the log's last commit is published again (each step is idempotent: a rename
//! whose file is gone, a table whose `txn` version is already there, is skipped) and what an
//! interrupted commit wrote before its log is removed. Data files are named
//! `part-<commit>-<time>-<n>-v<version>.parquet`: the commit number grows across runs, so
//! names sort by write time and never collide.
//!
//! Memory stays flat whatever the input size: the runtime bounds what is buffered, and the
//! Arrow writer flushes row groups as they fill.

mod config;
pub mod delta;
mod layout;
mod sink;
pub mod storage;
mod upsert;

pub use config::{Compression, Config, OptionValue, TableFormat, about};
pub use sink::ParquetSink;

/// The directory (under `destination_path`) of a stream's dataset.
pub fn dataset_dir_name(stream: &str) -> String {
    layout::dir_name(stream)
}
