//! # target-duckdb
//!
//! A Singer target that loads records into a DuckDB database file, in Arrow batches through
//! DuckDB's appender, consecutive commits grouped in one transaction.
//!
//! The Singer side (reading, batching, acknowledging state only after commit, replay
//! detection) is `singer_target`; this crate is the [`DuckDbSink`]: how commits become
//! DuckDB transactions. One transaction holds consecutive commits that only append until
//! it has 1,000,000 rows, has been open `batch_wait_limit_seconds`, no commit comes for a
//! second, or the input ends; only then are the commits' STATEs written. A commit that
//! deletes or updates rows (upserts, versions) ends its transaction. Large transactions let DuckDB
//! write full row groups straight to the file, compressed once on all its threads, instead
//! of through the write-ahead log and again at checkpoint.
//!
//! * One table per stream, in `default_target_schema` (default `main`). Stream and column
//!   names are sanitised to lower-case `[a-z0-9_]` and always quoted; two names that
//!   sanitise alike are an error.
//! * `append-only` appends; `upsert` (the default for streams with key properties) keeps
//!   the last record per key within a batch, deletes the rows with those keys, and inserts;
//!   `overwrite` loads a staging table and swaps it in at the end of the input.
//! * ACTIVATE_VERSION deletes (`hard_delete`) or marks (`_sdc_deleted_at`) rows of older
//!   versions.
//! * A new SCHEMA adds columns and widens types (integer to double to varchar) with
//!   `ALTER TABLE`; nothing is dropped.
//! * `_sdc_state` holds the state and replay marker of each commit, written in the same
//!   transaction as the data; `_sdc_streams` records each stream's table, keys, last schema,
//!   rows loaded and last load time.

mod config;
mod sink;
mod sql;

pub use config::{Config, about};
pub use sink::DuckDbSink;

/// The table a stream is loaded into (sanitised, lower case).
pub fn table_name(stream: &str) -> String {
    sql::sanitize(stream)
}
