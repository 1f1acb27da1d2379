//! The DuckDB sink: consecutive append-only commits in one transaction ([`Group`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::AsArray;
use arrow::compute::{max, min};
use arrow::datatypes::Int64Type;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use duckdb::{Connection, params};
use serde_json::Value;
use singer_target::Error;
use singer_target::metadata::{SDC_DELETED_AT, SDC_SEQUENCE, SDC_TABLE_VERSION};
use singer_target::widen::widen;
use singer_target::{Commit, CommitMarker, LoadMethod, LoadStats, Operation, Sink, TargetStream};

use crate::config::Config;
use crate::sql::{
    self, conform_batch, duckdb_column_type, duckdb_type, normalize, qualified, quote, sanitize,
};

type Result<T, E = Error> = std::result::Result<T, E>;

const STATE_TABLE: &str = "_sdc_state";
const STREAMS_TABLE: &str = "_sdc_streams";
const STAGE_SUFFIX: &str = "__sdc_overwrite";
/// Append-only rows committed before their covering STATE, by `_sdc_sequence` range, until
/// a later commit settles or retracts them (see `singer_target::ack`).
const PROVISIONAL_TABLE: &str = "_sdc_provisional";

/// Loads commits into a DuckDB database file.
pub struct DuckDbSink {
    conn: Connection,
    schema: String,
    hard_delete: bool,
    /// Known tables by name, with their columns as Arrow fields.
    tables: HashMap<String, SchemaRef>,
    /// Which stream owns each table name (from `_sdc_streams` and this run).
    owners: HashMap<String, String>,
    /// Overwrite streams loaded into staging in this run, swapped in at the end.
    overwrite_pending: HashSet<String>,
    /// The latest layout announced by a SCHEMA in this run, per stream.
    announced: HashMap<String, Vec<Field>>,
    /// Streams already warned that their provisional rows cannot be marked.
    warned_unmarkable: HashSet<String>,
    /// Commits applied in the open transaction, not yet durable.
    group: Option<Group>,
    /// How long a group may stay open (`batch_wait_limit_seconds`).
    group_time: Duration,
}

/// Consecutive commits in one DuckDB transaction. DuckDB writes a transaction's full row
/// groups straight to the database file, compressed once and on all its threads; many
/// small transactions instead go through the write-ahead log and are compressed again at
/// checkpoint. The runtime releases the commits' STATEs once the group is committed.
struct Group {
    opened: Instant,
    commits: u64,
    rows: u64,
}

/// A group is committed once it holds this many rows (or is `group_time` old, or no
/// commit has come for a second).
const GROUP_ROWS: u64 = 1_000_000;

/// Whether a commit only appends rows. A commit that deletes or updates rows (upserts,
/// version switches, retractions, overwrite swaps) ends its group: DuckDB keeps what a
/// transaction deletes in memory until it commits, and a long one runs out of it.
fn only_appends(commit: &Commit) -> bool {
    commit.retract.is_empty()
        && !commit.swap_overwrite
        && commit.streams.iter().all(|changes| {
            changes.operations.iter().all(|op| match op {
                Operation::Rows(_) => changes.stream.load_method != LoadMethod::Upsert,
                Operation::Schema(_) => true,
                Operation::ActivateVersion(_) => false,
            })
        })
}

fn db_err(e: duckdb::Error) -> Error {
    Error::destination(e)
}

fn stream_err(stream: &str) -> impl Fn(duckdb::Error) -> Error + '_ {
    move |e| Error::sink(stream, e)
}

impl DuckDbSink {
    /// Opens (or creates) the database and its bookkeeping tables.
    pub fn open(config: &Config) -> Result<Self> {
        if let Some(dir) = config.path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        let mut db_config = duckdb::Config::default()
            .max_memory(&config.memory_limit)
            .map_err(db_err)?;
        if let Some(threads) = config.threads {
            db_config = db_config.threads(i64::from(threads)).map_err(db_err)?;
        }
        let conn = Connection::open_with_flags(&config.path, db_config).map_err(|e| {
            Error::destination(format!(
                "cannot open DuckDB database {}: {e}",
                config.path.display()
            ))
        })?;
        let schema = config.default_target_schema.clone();
        conn.execute_batch(&format!(
            "CREATE SCHEMA IF NOT EXISTS {s};
             CREATE TABLE IF NOT EXISTS {state} (commit_seq BIGINT, committed_at TIMESTAMPTZ, state VARCHAR, marker VARCHAR);
             CREATE TABLE IF NOT EXISTS {streams} (stream VARCHAR, table_name VARCHAR, key_properties VARCHAR, schema VARCHAR, rows_loaded BIGINT, last_load_at TIMESTAMPTZ);
             CREATE TABLE IF NOT EXISTS {provisional} (stream VARCHAR, table_name VARCHAR, first_sequence BIGINT, last_sequence BIGINT);",
            s = quote(&schema),
            state = qualified(&schema, STATE_TABLE),
            streams = qualified(&schema, STREAMS_TABLE),
            provisional = qualified(&schema, PROVISIONAL_TABLE),
        ))
        .map_err(db_err)?;
        let mut owners = HashMap::new();
        {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT stream, table_name FROM {}",
                    qualified(&schema, STREAMS_TABLE)
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(db_err)?;
            for row in rows {
                let (stream, table) = row.map_err(db_err)?;
                owners.insert(table, stream);
            }
        }
        Ok(DuckDbSink {
            conn,
            schema,
            hard_delete: config.target.hard_delete,
            tables: HashMap::new(),
            owners,
            overwrite_pending: HashSet::new(),
            announced: HashMap::new(),
            warned_unmarkable: HashSet::new(),
            group: None,
            group_time: Duration::from_secs_f64(
                config.target.batch_wait_limit_seconds.clamp(0.0, 3600.0),
            ),
        })
    }

    /// Rolls the open transaction back: none of the group's commits happened.
    fn abandon_group(&mut self) {
        if let Err(rollback) = self.conn.execute_batch("ROLLBACK") {
            tracing::error!("rollback failed: {rollback}");
        }
        self.forget_group();
    }

    /// Forgets the group once its transaction has ended without committing (a failed
    /// COMMIT ends it by itself), and the cached layouts its DDL may have changed.
    fn forget_group(&mut self) {
        self.group = None;
        self.tables.clear();
    }

    fn table_name(&self, stream: &str) -> Result<String> {
        let table = sanitize(stream);
        if table == STATE_TABLE || table == STREAMS_TABLE || table.ends_with(STAGE_SUFFIX) {
            return Err(Error::sink(
                stream,
                format!("stream name becomes the reserved table name '{table}'"),
            ));
        }
        match self.owners.get(&table) {
            Some(owner) if owner != stream => Err(Error::sink(
                stream,
                format!("streams '{owner}' and '{stream}' both become table '{table}'"),
            )),
            _ => Ok(table),
        }
    }

    /// The columns of a table, or `None` if it does not exist.
    fn table_columns(&mut self, table: &str) -> Result<Option<SchemaRef>> {
        if let Some(s) = self.tables.get(table) {
            return Ok(Some(s.clone()));
        }
        let exists: i64 = self
            .conn
            .query_row(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                params![self.schema, table],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        if exists == 0 {
            return Ok(None);
        }
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT * FROM {} LIMIT 0",
                qualified(&self.schema, table)
            ))
            .map_err(db_err)?;
        let arrow = stmt.query_arrow([]).map_err(db_err)?;
        let schema = arrow.get_schema();
        let fields: Vec<Field> = schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), normalize(f.data_type()), true))
            .collect();
        let schema: SchemaRef = Arc::new(Schema::new(fields));
        self.tables.insert(table.to_string(), schema.clone());
        Ok(Some(schema))
    }

    /// Creates the table, or adds and widens columns so it can hold the stream's batches.
    fn ensure_table(&mut self, stream: &TargetStream, table: &str) -> Result<SchemaRef> {
        let name = stream.name();
        let wanted = sql::table_fields(&stream.arrow_schema).map_err(|e| Error::sink(name, e))?;
        let target = qualified(&self.schema, table);
        let Some(existing) = self.table_columns(table)? else {
            let columns = wanted
                .iter()
                .map(|f| Ok(format!("{} {}", quote(f.name()), duckdb_column_type(f)?)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| Error::sink(name, e))?;
            let columns = if columns.is_empty() {
                vec!["\"_sdc_empty\" BOOLEAN".to_string()]
            } else {
                columns
            };
            self.conn
                .execute_batch(&format!("CREATE TABLE {target} ({})", columns.join(", ")))
                .map_err(stream_err(name))?;
            self.tables.remove(table);
            return self
                .table_columns(table)?
                .ok_or_else(|| Error::sink(name, "table vanished after CREATE"));
        };
        let mut changed = false;
        for field in &wanted {
            match existing.field_with_name(field.name()) {
                Err(_) => {
                    let ty = duckdb_column_type(field).map_err(|e| Error::sink(name, e))?;
                    self.conn
                        .execute_batch(&format!(
                            "ALTER TABLE {target} ADD COLUMN {} {ty}",
                            quote(field.name())
                        ))
                        .map_err(stream_err(name))?;
                    changed = true;
                }
                Ok(current) if current.data_type() != field.data_type() => {
                    let widened = widen(current.data_type(), field.data_type()).ok_or_else(|| {
                        Error::sink(
                            name,
                            format!(
                                "column '{}' of table '{table}' is {} and cannot hold the new schema's {}",
                                field.name(),
                                current.data_type(),
                                field.data_type()
                            ),
                        )
                    })?;
                    if &widened != current.data_type() {
                        let ty = duckdb_type(&widened).map_err(|e| Error::sink(name, e))?;
                        tracing::info!(stream = name, column = field.name(), from = %current.data_type(), to = %ty, "widening column");
                        self.conn
                            .execute_batch(&format!(
                                "ALTER TABLE {target} ALTER COLUMN {} TYPE {ty}",
                                quote(field.name())
                            ))
                            .map_err(stream_err(name))?;
                        changed = true;
                    }
                }
                Ok(_) => {}
            }
        }
        if changed {
            self.tables.remove(table);
        }
        self.table_columns(table)?
            .ok_or_else(|| Error::sink(name, "table vanished after ALTER"))
    }

    /// Appends batches through one appender, flushed once.
    fn append(&self, table: &str, batches: Vec<RecordBatch>) -> duckdb::Result<()> {
        let mut appender = self.conn.appender_to_db(table, &self.schema)?;
        for batch in batches {
            appender.append_record_batch(batch)?;
        }
        appender.flush()
    }

    /// Loads a run of consecutive row batches of one stream (workers decode records in
    /// small batches; one appender, or one upsert, serves them all).
    fn load_rows(
        &mut self,
        stream: &TargetStream,
        table: &str,
        batches: &[&RecordBatch],
        provisional: bool,
        stats: &mut LoadStats,
    ) -> Result<()> {
        let name = stream.name();
        let layout = self
            .table_columns(table)?
            .ok_or_else(|| Error::sink(name, "table missing"))?;
        let rows = batches
            .iter()
            .map(|b| conform_batch(b, &layout))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::sink(name, e))?;
        let n: u64 = rows.iter().map(|b| b.num_rows() as u64).sum();
        if n == 0 {
            return Ok(());
        }
        stats.batches += 1;
        match stream.load_method {
            LoadMethod::AppendOnly | LoadMethod::Overwrite => {
                if provisional && stream.load_method == LoadMethod::AppendOnly {
                    self.mark_provisional(name, table, &rows)?;
                }
                self.append(table, rows).map_err(stream_err(name))?;
                stats.inserted += n;
            }
            LoadMethod::Upsert => {
                let stage = format!("_sdc_stage_{table}");
                let stage_q = qualified(&self.schema, &stage);
                let target = qualified(&self.schema, table);
                self.conn
                    .execute_batch(&format!(
                        "CREATE OR REPLACE TABLE {stage_q} AS SELECT * FROM {target} LIMIT 0"
                    ))
                    .map_err(stream_err(name))?;
                self.append(&stage, rows).map_err(stream_err(name))?;
                let keys: Vec<String> = stream
                    .key_properties()
                    .iter()
                    .map(|k| quote(&sanitize(k)))
                    .collect();
                let on = keys
                    .iter()
                    .map(|k| format!("{target}.{k} = {stage_q}.{k}"))
                    .collect::<Vec<_>>()
                    .join(" AND ");
                let replaced = self
                    .conn
                    .execute(
                        &format!("DELETE FROM {target} USING {stage_q} WHERE {on}"),
                        [],
                    )
                    .map_err(stream_err(name))? as u64;
                let written = self
                    .conn
                    .execute(
                        &format!(
                            "INSERT INTO {target} SELECT * EXCLUDE (__sdc_rn) FROM (SELECT *, row_number() OVER (PARTITION BY {} ORDER BY rowid DESC) AS __sdc_rn FROM {stage_q}) WHERE __sdc_rn = 1",
                            keys.join(", ")
                        ),
                        [],
                    )
                    .map_err(stream_err(name))? as u64;
                self.conn
                    .execute_batch(&format!("DROP TABLE {stage_q}"))
                    .map_err(stream_err(name))?;
                stats.updated += replaced.min(written);
                stats.inserted += written.saturating_sub(replaced);
            }
        }
        Ok(())
    }

    /// Remembers the `_sdc_sequence` range of append-only rows committed before their
    /// covering STATE. Upserts need no record: a replay writes the same versions again.
    fn mark_provisional(&mut self, stream: &str, table: &str, rows: &[RecordBatch]) -> Result<()> {
        let ranges = rows
            .iter()
            .map(|b| {
                b.column_by_name(SDC_SEQUENCE)
                    .and_then(|c| c.as_primitive_opt::<Int64Type>())
                    .and_then(|c| Some((min(c)?, max(c)?)))
            })
            .collect::<Option<Vec<_>>>();
        let range =
            ranges.and_then(|r| Some((r.iter().map(|x| x.0).min()?, r.iter().map(|x| x.1).max()?)));
        let Some((first, last)) = range else {
            if self.warned_unmarkable.insert(stream.to_string()) {
                tracing::warn!(
                    stream,
                    "rows committed past the last STATE cannot be marked without the _sdc_sequence column (add_record_metadata is off): after a crash they may repeat"
                );
            }
            return Ok(());
        };
        self.conn
            .execute(
                &format!(
                    "INSERT INTO {} VALUES (?, ?, ?, ?)",
                    qualified(&self.schema, PROVISIONAL_TABLE)
                ),
                params![stream, table, first, last],
            )
            .map_err(stream_err(stream))?;
        Ok(())
    }

    /// Removes a stream's provisional rows: the input replays them.
    fn retract(&mut self, stream: &str, stats: &mut LoadStats) -> Result<()> {
        let provisional = qualified(&self.schema, PROVISIONAL_TABLE);
        let ranges: Vec<(String, i64, i64)> = {
            let mut stmt = self
                .conn
                .prepare(&format!(
                    "SELECT table_name, first_sequence, last_sequence FROM {provisional} WHERE stream = ?"
                ))
                .map_err(db_err)?;
            stmt.query_map([stream], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(db_err)?
                .collect::<duckdb::Result<_>>()
                .map_err(db_err)?
        };
        for (table, first, last) in ranges {
            let removed = self
                .conn
                .execute(
                    &format!(
                        "DELETE FROM {} WHERE {} BETWEEN ? AND ?",
                        qualified(&self.schema, &table),
                        quote(SDC_SEQUENCE)
                    ),
                    params![first, last],
                )
                .map_err(stream_err(stream))? as u64;
            stats.deleted += removed;
            tracing::info!(
                stream,
                rows = removed,
                "removed rows an interrupted run committed past its last STATE; the input sends them again"
            );
        }
        self.settle(stream)
    }

    /// Forgets a stream's provisional rows: a STATE now covers them.
    fn settle(&mut self, stream: &str) -> Result<()> {
        self.conn
            .execute(
                &format!(
                    "DELETE FROM {} WHERE stream = ?",
                    qualified(&self.schema, PROVISIONAL_TABLE)
                ),
                [stream],
            )
            .map_err(db_err)?;
        Ok(())
    }

    fn activate_version(
        &mut self,
        stream: &TargetStream,
        table: &str,
        version: i64,
        stats: &mut LoadStats,
    ) -> Result<()> {
        let name = stream.name();
        let layout = self
            .table_columns(table)?
            .ok_or_else(|| Error::sink(name, "table missing"))?;
        if layout.field_with_name(SDC_TABLE_VERSION).is_err() {
            tracing::warn!(
                stream = name,
                "ACTIVATE_VERSION needs the _sdc_table_version column (add_record_metadata); ignored"
            );
            return Ok(());
        }
        let target = qualified(&self.schema, table);
        let older = format!(
            "({v} IS NULL OR {v} < {version})",
            v = quote(SDC_TABLE_VERSION)
        );
        let sql = if self.hard_delete || layout.field_with_name(SDC_DELETED_AT).is_err() {
            format!("DELETE FROM {target} WHERE {older}")
        } else {
            format!(
                "UPDATE {target} SET {d} = now() WHERE {older} AND {d} IS NULL",
                d = quote(SDC_DELETED_AT)
            )
        };
        stats.deleted += self.conn.execute(&sql, []).map_err(stream_err(name))? as u64;
        Ok(())
    }

    fn record_stream(&self, stream: &TargetStream, table: &str, loaded: u64) -> Result<()> {
        let streams = qualified(&self.schema, STREAMS_TABLE);
        let keys = serde_json::to_string(stream.key_properties()).unwrap_or_default();
        let schema = stream.schema.json_schema().to_string();
        let updated = self
            .conn
            .execute(
                &format!("UPDATE {streams} SET table_name = ?, key_properties = ?, schema = ?, rows_loaded = rows_loaded + ?, last_load_at = now() WHERE stream = ?"),
                params![table, keys, schema, loaded as i64, stream.name()],
            )
            .map_err(db_err)?;
        if updated == 0 {
            self.conn
                .execute(
                    &format!("INSERT INTO {streams} VALUES (?, ?, ?, ?, ?, now())"),
                    params![stream.name(), table, keys, schema, loaded as i64],
                )
                .map_err(db_err)?;
        }
        Ok(())
    }

    fn apply(&mut self, commit: &Commit) -> Result<Vec<(String, LoadStats)>> {
        let mut all_stats = Vec::new();
        for stream in &commit.retract {
            let mut stats = LoadStats::default();
            self.retract(stream, &mut stats)?;
            all_stats.push((stream.clone(), stats));
        }
        for changes in &commit.streams {
            let mut stream = changes.stream.clone();
            let name = stream.name().to_string();
            let final_table = self.table_name(&name)?;
            self.owners.insert(final_table.clone(), name.clone());
            let overwrite = stream.load_method == LoadMethod::Overwrite;
            let table = if overwrite {
                format!("{final_table}{STAGE_SUFFIX}")
            } else {
                final_table.clone()
            };
            // An overwrite load is one run's data: it starts from an empty staging table.
            if overwrite && changes.first_in_run {
                self.conn
                    .execute_batch(&format!(
                        "DROP TABLE IF EXISTS {}",
                        qualified(&self.schema, &table)
                    ))
                    .map_err(stream_err(&name))?;
                self.tables.remove(&table);
            }
            if overwrite {
                self.overwrite_pending.insert(name.clone());
            }
            self.ensure_table(&stream, &table)?;
            let mut stats = LoadStats::default();
            let mut run: Vec<&RecordBatch> = Vec::new();
            for op in &changes.operations {
                if let Operation::Rows(batch) = op {
                    run.push(batch);
                    continue;
                }
                let rows = std::mem::take(&mut run);
                self.load_rows(&stream, &table, &rows, commit.provisional, &mut stats)?;
                match op {
                    Operation::Schema(s) => {
                        stream = s.clone();
                        self.ensure_table(&stream, &table)?;
                    }
                    Operation::ActivateVersion(v) => {
                        self.activate_version(&stream, &table, *v, &mut stats)?
                    }
                    Operation::Rows(_) => {}
                }
            }
            self.load_rows(&stream, &table, &run, commit.provisional, &mut stats)?;
            self.record_stream(&stream, &final_table, stats.inserted + stats.updated)?;
            all_stats.push((name, stats));
        }
        if commit.swap_overwrite {
            for name in std::mem::take(&mut self.overwrite_pending) {
                let table = sanitize(&name);
                let stage = format!("{table}{STAGE_SUFFIX}");
                self.conn
                    .execute_batch(&format!(
                        "DROP TABLE IF EXISTS {t}; ALTER TABLE {s} RENAME TO {tn};",
                        t = qualified(&self.schema, &table),
                        s = qualified(&self.schema, &stage),
                        tn = quote(&table),
                    ))
                    .map_err(stream_err(&name))?;
                self.tables.remove(&table);
                self.tables.remove(&stage);
            }
        }
        for stream in &commit.settle {
            self.settle(stream)?;
        }
        let marker = serde_json::to_string(&commit.marker).unwrap_or_default();
        let state = commit.marker.state.as_ref().map(Value::to_string);
        let state_table = qualified(&self.schema, STATE_TABLE);
        self.conn
            .execute(
                &format!("INSERT INTO {state_table} SELECT coalesce(max(commit_seq), 0) + 1, now(), ?, ? FROM {state_table}"),
                params![state, marker],
            )
            .map_err(db_err)?;
        self.conn
            .execute_batch(&format!(
                "DELETE FROM {state_table} WHERE commit_seq <= (SELECT max(commit_seq) - 100 FROM {state_table})"
            ))
            .map_err(db_err)?;
        Ok(all_stats)
    }
}

impl Sink for DuckDbSink {
    fn last_commit(&mut self) -> Result<Option<CommitMarker>> {
        let marker: Option<String> = self
            .conn
            .query_row(
                &format!(
                    "SELECT marker FROM {} ORDER BY commit_seq DESC LIMIT 1",
                    qualified(&self.schema, STATE_TABLE)
                ),
                [],
                |r| r.get(0),
            )
            .or_else(|e| match e {
                duckdb::Error::QueryReturnedNoRows => Ok(None),
                other => Err(other),
            })
            .map_err(db_err)?;
        Ok(marker.and_then(|m| serde_json::from_str(&m).ok()))
    }

    fn check_schema(&mut self, stream: &TargetStream) -> Result<()> {
        let name = stream.name();
        let table = self.table_name(name)?;
        let wanted = sql::table_fields(&stream.arrow_schema).map_err(|e| Error::sink(name, e))?;
        for f in &wanted {
            duckdb_column_type(f).map_err(|e| Error::sink(name, e))?;
        }
        let table = if stream.load_method == LoadMethod::Overwrite {
            format!("{table}{STAGE_SUFFIX}")
        } else {
            table
        };
        // A failed query aborts the open transaction, and DuckDB then turns COMMIT into a
        // silent ROLLBACK: the group is given up here, and the failure says so.
        let existing = match self.table_columns(&table) {
            Ok(existing) => existing,
            Err(e) => {
                if self.group.is_some() {
                    self.abandon_group();
                }
                return Err(e);
            }
        };
        let mut earlier: Vec<Field> = existing
            .map(|s| s.fields().iter().map(|f| f.as_ref().clone()).collect())
            .unwrap_or_default();
        earlier.extend(self.announced.get(name).cloned().unwrap_or_default());
        for f in &wanted {
            for current in earlier.iter().filter(|c| c.name() == f.name()) {
                if widen(current.data_type(), f.data_type()).is_none() {
                    return Err(Error::sink(
                        name,
                        format!(
                            "incompatible schema change: column '{}' is {} and cannot hold the new schema's {}",
                            f.name(),
                            current.data_type(),
                            f.data_type()
                        ),
                    ));
                }
            }
        }
        self.announced.insert(name.to_string(), wanted);
        Ok(())
    }

    fn commit(&mut self, commit: Commit) -> Result<Vec<(String, LoadStats)>> {
        if self.group.is_none() {
            self.conn
                .execute_batch("BEGIN TRANSACTION")
                .map_err(db_err)?;
            self.group = Some(Group {
                opened: Instant::now(),
                commits: 0,
                rows: 0,
            });
        }
        match self.apply(&commit) {
            Ok(stats) => {
                let rows: u64 = stats.iter().map(|(_, s)| s.inserted + s.updated).sum();
                let full = self.group.as_mut().is_some_and(|group| {
                    group.commits += 1;
                    group.rows += rows;
                    group.rows >= GROUP_ROWS || group.opened.elapsed() >= self.group_time
                });
                if full || !only_appends(&commit) {
                    self.flush()?;
                }
                Ok(stats)
            }
            Err(e) => {
                self.abandon_group();
                Err(e)
            }
        }
    }

    fn pending(&self) -> bool {
        self.group.is_some()
    }

    fn flush(&mut self) -> Result<()> {
        if self.group.is_none() {
            return Ok(());
        }
        match self.conn.execute_batch("COMMIT") {
            Ok(()) => {
                if let Some(group) = self.group.take() {
                    tracing::debug!(
                        commits = group.commits,
                        rows = group.rows,
                        "committed a group of commits in one transaction"
                    );
                }
                Ok(())
            }
            Err(e) => {
                self.forget_group();
                Err(db_err(e))
            }
        }
    }

    fn close(&mut self) -> Result<()> {
        self.flush()?;
        self.conn.execute_batch("CHECKPOINT").map_err(db_err)
    }
}
