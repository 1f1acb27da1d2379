//! # target-duckdb
//!
//! A Singer target that loads records into a DuckDB database file, in Arrow batches through
//! DuckDB's appender, one transaction per commit.
//!
//! The Singer side (reading, batching, acknowledging state only after commit, replay
//! detection) is `singer_target`; this crate is the [`DuckDbSink`]: how a commit
//! becomes one DuckDB transaction.
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
