//! Delta Lake tables (`table_format: delta`): one table per stream, written with delta-rs.
//!
//! The sink writes the Parquet data files itself (the same writer as the plain layout);
//! they are invisible to readers until a transaction adds them. Each commit of the target
//! becomes one Delta transaction per table it touches, carrying a `txn` action: app id
//! `target-parquet/<stream>`, version the commit's sequence number. The commit log at the
//! destination's root holds the transactions until each table has them, so a crash
//! between two tables' transactions is finished on the next start, and a transaction that
//! already landed is recognised by the table's own `txn` version and not applied twice.
//!
//! delta-rs links its own Arrow (59; the workspace is on 60, pinned by DuckDB); the only
//! thing that crosses is the schema, mapped here between Arrow types and Delta's.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType as ArrowType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use deltalake::kernel::transaction::{CommitBuilder, CommitProperties, TableReference};
use deltalake::kernel::{
    Action, ArrayType, DataType, MetadataExt, PrimitiveType, StructField, StructType, Transaction,
};
use deltalake::logstore::{LogStoreRef, StorageConfig, default_logstore};
use deltalake::operations::create::CreateBuilder;
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::{DeltaTable, DeltaTableError, TableProperty};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use serde::{Deserialize, Serialize};
use singer_target::Error;
use singer_target::widen::widen;

use crate::storage::Storage;

type Result<T, E = Error> = std::result::Result<T, E>;

/// A table's share of one commit, kept in the commit log until the table has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PendingTable {
    /// The stream the table holds.
    pub stream: String,
    /// The table's schema after this commit, when the table is new or its schema grew.
    pub schema: Option<StructType>,
    /// The partition columns (when the table is new).
    pub partition_columns: Vec<String>,
    /// Files added and removed.
    pub actions: Vec<Action>,
    /// An overwrite (the stream's `load_method: overwrite` swap, or a new full-table
    /// version) rather than an append.
    pub overwrite: bool,
}

/// The app id of a stream's `txn` actions.
pub fn app_id(stream: &str) -> String {
    format!("target-parquet/{stream}")
}

/// The Delta tables of a destination, loaded as they are first used.
pub struct DeltaTables {
    open: HashMap<String, DeltaTable>,
    checkpoint_interval: u64,
}

/// What the sink needs of a table's current state.
pub struct TableState {
    /// The table's schema as Arrow types (partition columns included), if the table exists.
    pub schema: Option<SchemaRef>,
    /// Its partition columns.
    pub partition_columns: Vec<String>,
}

fn delta_error(table: &str, e: impl std::fmt::Display) -> Error {
    Error::destination(format!("Delta table '{table}': {e}"))
}

impl DeltaTables {
    /// No tables open yet; new tables get a checkpoint every `checkpoint_interval` commits.
    pub fn new(checkpoint_interval: u64) -> Self {
        DeltaTables {
            open: HashMap::new(),
            checkpoint_interval: checkpoint_interval.max(1),
        }
    }

    fn log_store(storage: &Storage, dir: &str) -> Result<LogStoreRef> {
        let (root, prefixed, url): (Arc<dyn ObjectStore>, Arc<dyn ObjectStore>, url::Url) =
            match (storage.local_root(), storage.remote()) {
                (Some(root), _) => {
                    let path = root.join(dir);
                    std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                    let prefixed =
                        LocalFileSystem::new_with_prefix(&path).map_err(|e| delta_error(dir, e))?;
                    let url = url::Url::from_directory_path(&path)
                        .map_err(|()| delta_error(dir, "not an absolute path"))?;
                    (Arc::new(LocalFileSystem::new()), Arc::new(prefixed), url)
                }
                (None, Some(remote)) => {
                    let prefix = if remote.prefix.as_ref().is_empty() {
                        dir.to_string()
                    } else {
                        format!("{}/{dir}", remote.prefix.as_ref())
                    };
                    let prefix = object_store::path::Path::parse(&prefix)
                        .map_err(|e| delta_error(dir, e))?;
                    let mut url = remote.url.clone();
                    url.set_path(&format!("/{prefix}/"));
                    let prefixed = PrefixStore::new(remote.store.clone(), prefix);
                    (remote.store.clone(), Arc::new(prefixed), url)
                }
                (None, None) => unreachable!("a destination is local or remote"),
            };
        Ok(default_logstore(
            prefixed,
            root,
            &url,
            &StorageConfig::default(),
        ))
    }

    /// The table in `dir`, loaded (its state is `None` if it does not exist yet).
    fn table(&mut self, storage: &Storage, dir: &str) -> Result<&mut DeltaTable> {
        if !self.open.contains_key(dir) {
            let mut table = DeltaTable::new(Self::log_store(storage, dir)?);
            match storage.block_on(table.load()) {
                Ok(()) | Err(DeltaTableError::NotATable(_)) => {}
                Err(e) => return Err(delta_error(dir, e)),
            }
            self.open.insert(dir.to_string(), table);
        }
        Ok(self.open.get_mut(dir).expect("inserted above"))
    }

    /// The table's schema and partition columns.
    pub fn state(&mut self, storage: &Storage, dir: &str) -> Result<TableState> {
        let table = self.table(storage, dir)?;
        let Ok(snapshot) = table.snapshot() else {
            return Ok(TableState {
                schema: None,
                partition_columns: Vec::new(),
            });
        };
        let schema = from_delta(&snapshot.schema()).map_err(|e| delta_error(dir, e))?;
        Ok(TableState {
            schema: Some(Arc::new(schema)),
            partition_columns: snapshot.metadata().partition_columns().to_vec(),
        })
    }

    /// The table's live data files, as paths relative to the destination (`dir/...`).
    pub fn files(&mut self, storage: &Storage, dir: &str) -> Result<Vec<String>> {
        let table = self.table(storage, dir)?;
        let Ok(snapshot) = table.snapshot() else {
            return Ok(Vec::new());
        };
        let mut files: Vec<String> = snapshot
            .log_data()
            .into_iter()
            .map(|f| format!("{dir}/{}", f.path()))
            .collect();
        files.sort();
        Ok(files)
    }

    /// The `txn` version the table holds for `stream`.
    pub fn version_of(
        &mut self,
        storage: &Storage,
        dir: &str,
        stream: &str,
    ) -> Result<Option<i64>> {
        let table = self.table(storage, dir)?;
        let Ok(snapshot) = table.snapshot() else {
            return Ok(None);
        };
        let log_store = table.log_store();
        storage
            .block_on(snapshot.transaction_version(log_store.as_ref(), app_id(stream)))
            .map_err(|e| delta_error(dir, e))
    }

    /// Commits `pending` to the table in `dir` as transaction `seq`, unless the table
    /// already has it.
    pub fn apply(
        &mut self,
        storage: &Storage,
        dir: &str,
        pending: &PendingTable,
        seq: u64,
    ) -> Result<()> {
        if self
            .version_of(storage, dir, &pending.stream)?
            .is_some_and(|v| v >= seq as i64)
        {
            return Ok(());
        }
        let interval = self.checkpoint_interval;
        let table = self.table(storage, dir)?;
        if table.snapshot().is_err() {
            // Publishing again a commit whose table is gone (removed by hand since): its
            // files went with it; recreating the table from them would point at nothing.
            for action in &pending.actions {
                if let Action::Add(add) = action
                    && !storage.exists(&format!("{dir}/{}", add.path))?
                {
                    tracing::warn!(
                        table = dir,
                        "the table of the last commit is gone with its files; not recreating it"
                    );
                    return Ok(());
                }
            }
        }
        let txn = Transaction::new(app_id(&pending.stream), seq as i64);
        let properties = CommitProperties::default()
            .with_application_transaction(txn)
            .with_create_checkpoint(true);
        let result: Result<DeltaTable, DeltaTableError> = storage.block_on(async {
            match table.snapshot() {
                Err(_) => {
                    let schema = pending.schema.clone().ok_or_else(|| {
                        DeltaTableError::Generic("a new table needs a schema".into())
                    })?;
                    CreateBuilder::new()
                        .with_log_store(table.log_store())
                        .with_table_name(&pending.stream)
                        .with_columns(schema.fields().cloned())
                        .with_partition_columns(pending.partition_columns.clone())
                        .with_configuration_property(
                            TableProperty::CheckpointInterval,
                            Some(interval.to_string()),
                        )
                        .with_actions(pending.actions.clone())
                        .with_commit_properties(properties)
                        .await
                }
                Ok(snapshot) => {
                    let mut actions = pending.actions.clone();
                    if let Some(schema) = &pending.schema {
                        actions.push(Action::Metadata(
                            snapshot.metadata().clone().with_schema(schema)?,
                        ));
                    }
                    let mode = if pending.overwrite {
                        SaveMode::Overwrite
                    } else {
                        SaveMode::Append
                    };
                    let partition_by = snapshot.metadata().partition_columns().to_vec();
                    let operation = DeltaOperation::Write {
                        mode,
                        partition_by: (!partition_by.is_empty()).then_some(partition_by),
                        predicate: None,
                    };
                    // `from(properties)`: a checkpoint after the commit when the table's
                    // `delta.checkpointInterval` says so.
                    CommitBuilder::from(properties)
                        .with_actions(actions)
                        .build(
                            Some(snapshot as &dyn TableReference),
                            table.log_store(),
                            operation,
                        )
                        .await?;
                    // Only the new log entries are read, not the whole log again.
                    let mut updated = table.clone();
                    updated.update_state().await?;
                    Ok(updated)
                }
            }
        });
        let updated = result.map_err(|e| delta_error(dir, e))?;
        if let (Some(root), Some(version)) = (storage.local_root(), updated.version()) {
            // A local Delta log entry is as durable as the commit log that names it.
            let log_dir = root.join(dir).join("_delta_log");
            let entry = log_dir.join(format!("{version:020}.json"));
            std::fs::File::open(&entry)
                .and_then(|f| f.sync_all())
                .map_err(|e| Error::io(&entry, e))?;
            singer_core::state::sync_dir(&log_dir).map_err(|e| Error::io(&log_dir, e))?;
        }
        self.open.insert(dir.to_string(), updated);
        Ok(())
    }
}

/// The Delta schema of Arrow `fields` (every column nullable, as Singer properties are).
pub fn to_delta(fields: &Fields) -> Result<StructType, String> {
    StructType::try_new(
        fields
            .iter()
            .map(|f| {
                Ok(StructField::new(
                    f.name(),
                    to_delta_type(f.data_type(), f.name())?,
                    true,
                ))
            })
            .collect::<Result<Vec<_>, String>>()?,
    )
    .map_err(|e| e.to_string())
}

fn to_delta_type(t: &ArrowType, name: &str) -> Result<DataType, String> {
    Ok(match t {
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::STRING,
        // Delta has no time-of-day type: times are written as text (see [`delta_batch`]).
        ArrowType::Time64(_) | ArrowType::Time32(_) => DataType::STRING,
        ArrowType::Int64 => DataType::LONG,
        ArrowType::Int32 => DataType::INTEGER,
        ArrowType::Int16 => DataType::SHORT,
        ArrowType::Int8 => DataType::BYTE,
        ArrowType::Float64 => DataType::DOUBLE,
        ArrowType::Float32 => DataType::FLOAT,
        ArrowType::Boolean => DataType::BOOLEAN,
        ArrowType::Binary | ArrowType::LargeBinary => DataType::BINARY,
        ArrowType::Date32 => DataType::DATE,
        ArrowType::Timestamp(_, Some(_)) => DataType::TIMESTAMP,
        ArrowType::Decimal128(p, s) if *s >= 0 => {
            DataType::decimal(*p, *s as u8).map_err(|e| e.to_string())?
        }
        ArrowType::Struct(fields) => DataType::Struct(Box::new(to_delta(fields)?)),
        ArrowType::List(item) => DataType::Array(Box::new(ArrayType::new(
            to_delta_type(item.data_type(), name)?,
            true,
        ))),
        other => return Err(format!("column '{name}': Delta has no type for {other}")),
    })
}

/// The Arrow schema of a Delta schema, with the types the sink writes (timestamps in UTC
/// microseconds, list items named `item`).
pub fn from_delta(schema: &StructType) -> Result<Schema, String> {
    Ok(Schema::new(from_delta_fields(schema)?))
}

fn from_delta_fields(schema: &StructType) -> Result<Fields, String> {
    schema
        .fields()
        .map(|f| {
            Ok(Field::new(
                f.name(),
                from_delta_type(f.data_type(), f.name())?,
                true,
            ))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Fields::from)
}

fn from_delta_type(t: &DataType, name: &str) -> Result<ArrowType, String> {
    Ok(match t {
        DataType::Primitive(p) => match p {
            PrimitiveType::String => ArrowType::Utf8,
            PrimitiveType::Long => ArrowType::Int64,
            PrimitiveType::Integer => ArrowType::Int32,
            PrimitiveType::Short => ArrowType::Int16,
            PrimitiveType::Byte => ArrowType::Int8,
            PrimitiveType::Double => ArrowType::Float64,
            PrimitiveType::Float => ArrowType::Float32,
            PrimitiveType::Boolean => ArrowType::Boolean,
            PrimitiveType::Binary => ArrowType::Binary,
            PrimitiveType::Date => ArrowType::Date32,
            PrimitiveType::Timestamp => {
                ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
            }
            PrimitiveType::TimestampNtz => ArrowType::Timestamp(TimeUnit::Microsecond, None),
            PrimitiveType::Decimal(d) => ArrowType::Decimal128(d.precision(), d.scale() as i8),
            other => {
                return Err(format!(
                    "column '{name}': the table's type {other} is not supported"
                ));
            }
        },
        DataType::Struct(s) => ArrowType::Struct(from_delta_fields(s)?),
        DataType::Array(a) => ArrowType::List(Arc::new(Field::new(
            "item",
            from_delta_type(a.element_type(), name)?,
            true,
        ))),
        other => {
            return Err(format!(
                "column '{name}': the table's type {other} is not supported"
            ));
        }
    })
}

/// `t` as the sink writes it into Delta: times as text, timestamps labelled UTC.
fn writable_type(t: &ArrowType) -> ArrowType {
    match t {
        ArrowType::Time64(_) | ArrowType::Time32(_) => ArrowType::Utf8,
        ArrowType::Timestamp(unit, Some(_)) => ArrowType::Timestamp(*unit, Some("UTC".into())),
        ArrowType::Struct(fields) => ArrowType::Struct(
            fields
                .iter()
                .map(|f| {
                    f.as_ref()
                        .clone()
                        .with_data_type(writable_type(f.data_type()))
                })
                .collect(),
        ),
        ArrowType::List(item) => ArrowType::List(Arc::new(
            item.as_ref()
                .clone()
                .with_data_type(writable_type(item.data_type())),
        )),
        other => other.clone(),
    }
}

/// Whether `grown` is `current` with struct fields added (at any depth) and nothing else
/// changed: the one schema change a Delta table takes without rewriting its files.
fn only_adds_fields(current: &ArrowType, grown: &ArrowType) -> bool {
    match (current, grown) {
        (ArrowType::Struct(a), ArrowType::Struct(b)) => a.iter().all(|f| {
            b.iter()
                .find(|g| g.name() == f.name())
                .is_some_and(|g| only_adds_fields(f.data_type(), g.data_type()))
        }),
        (ArrowType::List(a), ArrowType::List(b)) => only_adds_fields(a.data_type(), b.data_type()),
        _ => current == grown,
    }
}

/// A batch in a table's types, and what it does to the table.
pub struct Conformed {
    /// The rows, in the table's types.
    pub batch: RecordBatch,
    /// The table's schema after them.
    pub schema: Schema,
    /// Existing columns whose type widened (an integer column now `double`, a scalar
    /// column now text): the table's files are rewritten with the new type.
    pub retyped: Vec<String>,
}

/// `column` as `target`'s type without losing values: [`cast_exact`], or any scalar as
/// text (the widening to text that target-duckdb also does).
///
/// [`cast_exact`]: singer_target::decoder::cast_exact
pub fn widen_array(column: &ArrayRef, field: &Field, target: &Field) -> Result<Option<ArrayRef>> {
    if column.data_type() == target.data_type() {
        return Ok(Some(column.clone()));
    }
    if let Some(exact) = singer_target::decoder::cast_exact(column, field, target)? {
        return Ok(Some(exact));
    }
    let scalar = !matches!(
        column.data_type(),
        ArrowType::Struct(_) | ArrowType::List(_)
    );
    if target.data_type() == &ArrowType::Utf8 && scalar {
        return Ok(Some(arrow::compute::cast(column, &ArrowType::Utf8)?));
    }
    Ok(None)
}

/// `batch` in the table's types, and the table's schema after it: new columns (and new
/// struct fields) are added; a column whose values the table's type already holds (an
/// integer in a double column, any scalar in a text column) is converted; a column whose
/// type widens as target-duckdb widens it (integer to double, scalars to text) takes the
/// new type, listed in [`Conformed::retyped`] for the caller to rewrite the table's files;
/// any other change is an error naming both types.
pub fn conform(stream: &str, table: Option<&Schema>, batch: &RecordBatch) -> Result<Conformed> {
    let mut table_fields: Vec<Field> = table
        .map(|s| s.fields().iter().map(|f| f.as_ref().clone()).collect())
        .unwrap_or_default();
    let mut retyped = Vec::new();
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let wanted = writable_type(field.data_type());
        let target = match table_fields.iter_mut().find(|f| f.name() == field.name()) {
            None => {
                let f = Field::new(field.name(), wanted, true);
                table_fields.push(f.clone());
                f
            }
            Some(existing) => {
                let grown = widen(existing.data_type(), &wanted).ok_or_else(|| {
                    Error::sink(
                        stream,
                        format!(
                            "column '{}' is {} in the Delta table and the stream's schema makes it {}: no type holds both",
                            field.name(),
                            existing.data_type(),
                            wanted
                        ),
                    )
                })?;
                if !only_adds_fields(existing.data_type(), &grown) {
                    retyped.push(field.name().to_string());
                }
                *existing = Field::new(field.name(), grown, true);
                existing.clone()
            }
        };
        let converted = if matches!(
            column.data_type(),
            ArrowType::Time64(_) | ArrowType::Time32(_)
        ) {
            arrow::compute::cast(column, &ArrowType::Utf8)?
        } else {
            widen_array(column, field, &target)?.ok_or_else(|| {
                Error::sink(
                    stream,
                    format!(
                        "column '{}': {} values do not fit the Delta table's {}",
                        field.name(),
                        column.data_type(),
                        target.data_type()
                    ),
                )
            })?
        };
        fields.push(
            Field::new(field.name(), converted.data_type().clone(), true)
                .with_metadata(field.metadata().clone()),
        );
        columns.push(converted);
    }
    let rows = batch.num_rows();
    let batch = RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows)),
    )?;
    Ok(Conformed {
        batch,
        schema: Schema::new(table_fields),
        retyped,
    })
}

/// Refuses a partition column whose values Delta readers would not parse back from the
/// text in `partitionValues` the same way.
pub fn check_partition_type(stream: &str, column: &str, t: &ArrowType) -> Result<()> {
    match t {
        ArrowType::Utf8 | ArrowType::Int64 | ArrowType::Boolean | ArrowType::Date32 => Ok(()),
        other => Err(Error::sink(
            stream,
            format!(
                "partition_by '{column}': a Delta partition column must be text, an integer, a boolean or a date, not {other}; for a date-time use day({column}) or month({column})"
            ),
        )),
    }
}

/// The stats Delta readers use to skip files: the row count.
pub fn stats(rows: u64) -> String {
    serde_json::json!({ "numRecords": rows }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray, Time64MicrosecondArray};

    #[test]
    fn schemas_map_both_ways() {
        let fields = Fields::from(vec![
            Field::new("id", ArrowType::Int64, false),
            Field::new(
                "at",
                ArrowType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            Field::new(
                "tags",
                ArrowType::List(Arc::new(Field::new("item", ArrowType::Utf8, true))),
                true,
            ),
        ]);
        let delta = to_delta(&fields).expect("maps");
        let back = from_delta(&delta).expect("maps back");
        assert_eq!(back.field(0).data_type(), &ArrowType::Int64);
        assert_eq!(
            back.field(1).data_type(),
            &ArrowType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        );
        assert_eq!(back.field(2).data_type(), fields[2].data_type());
    }

    #[test]
    fn conform_adds_columns_widens_types_and_refuses_what_no_type_holds() {
        let table = Schema::new(vec![
            Field::new("id", ArrowType::Int64, true),
            Field::new("score", ArrowType::Float64, true),
        ]);
        let batch = RecordBatch::try_from_iter(vec![
            ("id", Arc::new(Int64Array::from(vec![1])) as ArrayRef),
            ("score", Arc::new(Int64Array::from(vec![7])) as ArrayRef),
            ("new", Arc::new(StringArray::from(vec!["x"])) as ArrayRef),
            (
                "t",
                Arc::new(Time64MicrosecondArray::from(vec![3_600_000_000])) as ArrayRef,
            ),
        ])
        .expect("batch");
        let Conformed {
            batch: out,
            schema,
            retyped,
        } = conform("s", Some(&table), &batch).expect("conforms");
        assert!(retyped.is_empty());
        assert_eq!(out.column(1).data_type(), &ArrowType::Float64);
        assert_eq!(out.column(3).data_type(), &ArrowType::Utf8);
        assert_eq!(
            schema
                .fields()
                .iter()
                .map(|f| f.name().as_str())
                .collect::<Vec<_>>(),
            ["id", "score", "new", "t"]
        );

        let narrow = Schema::new(vec![Field::new("score", ArrowType::Int64, true)]);
        let doubles = RecordBatch::try_from_iter(vec![(
            "score",
            Arc::new(arrow::array::Float64Array::from(vec![1.5])) as ArrayRef,
        )])
        .expect("batch");
        let widened = conform("s", Some(&narrow), &doubles).expect("long to double");
        assert_eq!(widened.retyped, ["score"]);
        assert_eq!(widened.schema.field(0).data_type(), &ArrowType::Float64);

        let structs = Schema::new(vec![Field::new(
            "score",
            ArrowType::Struct(Fields::from(vec![Field::new("a", ArrowType::Int64, true)])),
            true,
        )]);
        let err = conform("s", Some(&structs), &doubles)
            .err()
            .expect("struct to double");
        let text = err.to_string();
        assert!(
            text.contains("'score'") && text.contains("Struct") && text.contains("Float64"),
            "{text}"
        );
    }
}
