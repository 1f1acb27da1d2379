//! The sink: data files first, then the commit log, then the files published (renamed into
//! place, or added to Delta tables).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, AsArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use deltalake::kernel::{Action, Add, Remove};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use singer_target::Error;
use singer_target::metadata::SDC_TABLE_VERSION;
use singer_target::{Commit, CommitMarker, LoadMethod, LoadStats, Operation, Sink, TargetStream};

use crate::config::{Compression, Config, TableFormat};
use crate::delta::{self, DeltaTables, PendingTable};
use crate::layout::{self, COMMIT_LOG, CommitLog, PartitionSpec, dir_name, hive_value};
use crate::storage::{FileWriter, Storage};
use crate::upsert::{self, Keys};

type Result<T, E = Error> = std::result::Result<T, E>;

/// On object storage a file is published by a server-side copy, which S3 allows up to
/// 5 GiB: files roll at 1 GiB there unless `max_file_size_mb` says otherwise.
const REMOTE_MAX_FILE_BYTES: usize = 1024 * 1024 * 1024;

/// Writes commits as Parquet files, or Delta tables, under a destination.
pub struct ParquetSink {
    storage: Storage,
    format: Format,
    properties: WriterProperties,
    max_rows_per_file: usize,
    max_file_bytes: usize,
    partition: Option<PartitionSpec>,
    log: CommitLog,
    /// Delta: per table directory, the schema the SCHEMA messages seen so far make it.
    declared: HashMap<String, Schema>,
}

enum Format {
    /// Files staged under temporary names, renamed into place once the log has them.
    Parquet,
    /// Files written under their final names (no reader sees them until a Delta
    /// transaction adds them).
    Delta(DeltaTables),
}

/// What a file holds: the partition value (outer `None` when partitioning does not apply,
/// inner `None` for a null value) and the full-table version of its rows.
type FileKey = (Option<Option<String>>, Option<i64>);

/// A data file written in the current commit, not yet published.
struct Staged {
    /// Where it was written, relative to the destination.
    temp: String,
    /// Where it is published (the same path for Delta).
    target: String,
    version: Option<i64>,
    stream: String,
    /// The partition column and value of its rows.
    partition: Option<(String, Option<String>)>,
    rows: u64,
    size: u64,
    /// The file it replaces, when it is a rewrite of one (an upsert or a type change):
    /// its rows were committed before, so it is provisional only if that file was.
    rewrite_of: Option<String>,
}

/// A file being written in the current commit.
struct OpenFile {
    writer: ArrowWriter<FileWriter>,
    /// The schema of its rows.
    schema: SchemaRef,
    staged: Staged,
}

/// A Delta table's schema as this commit leaves it.
struct DeltaSchema {
    schema: Option<SchemaRef>,
    partition_columns: Vec<String>,
    new_table: bool,
    changed: bool,
}

/// The files written so far in a commit.
#[derive(Default)]
struct Written {
    staged: Vec<Staged>,
    /// Live files to retire, relative to the destination.
    deletes: Vec<String>,
    /// Delta: per table directory.
    schemas: HashMap<String, DeltaSchema>,
}

impl ParquetSink {
    /// Opens the destination, finishing an interrupted commit and removing leftovers.
    pub fn open(config: &Config) -> Result<Self> {
        let storage = Storage::open(&config.destination_path, &config.storage_options())?;
        let codec = match config.compression {
            Compression::Zstd => Codec::ZSTD(ZstdLevel::default()),
            Compression::Snappy => Codec::SNAPPY,
            Compression::Gzip => Codec::GZIP(GzipLevel::default()),
            Compression::Lz4 => Codec::LZ4_RAW,
            Compression::None => Codec::UNCOMPRESSED,
        };
        let properties = WriterProperties::builder()
            .set_compression(codec)
            .set_max_row_group_row_count(Some(config.row_group_size.max(1)))
            .set_max_row_group_bytes(Some(64 * 1024 * 1024))
            .build();
        let partition = config
            .partition_by
            .as_deref()
            .map(PartitionSpec::parse)
            .transpose()
            .map_err(|e| Error::config(vec![e]))?;
        let log: CommitLog = match storage.read(COMMIT_LOG)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::destination(format!(
                    "{}/{COMMIT_LOG}: corrupt commit log: {e}",
                    storage.shown().trim_end_matches('/')
                ))
            })?,
            None => CommitLog::default(),
        };
        let written_as = log.format.unwrap_or(TableFormat::Parquet);
        if log.seq > 0 && written_as != config.table_format {
            return Err(Error::config(vec![format!(
                "table_format: '{}' holds {written_as:?} data (see its {COMMIT_LOG}); write {:?} to another destination_path",
                storage.shown(),
                config.table_format
            )]));
        }
        let format = match config.table_format {
            TableFormat::Parquet => Format::Parquet,
            TableFormat::Delta => Format::Delta(DeltaTables::new(config.checkpoint_interval)),
        };
        let remote_parquet =
            storage.remote().is_some() && config.table_format == TableFormat::Parquet;
        if remote_parquet && config.max_file_size_mb.is_some_and(|mb| mb > 5.0 * 1024.0) {
            return Err(Error::config(vec![
                "max_file_size_mb: files are published on object storage by a server-side copy, which S3 allows up to 5120 MB".into(),
            ]));
        }
        let default_max = if remote_parquet {
            REMOTE_MAX_FILE_BYTES
        } else {
            usize::MAX
        };
        let mut sink = ParquetSink {
            properties,
            max_rows_per_file: config.max_rows_per_file.unwrap_or(usize::MAX).max(1),
            max_file_bytes: config
                .max_file_size_mb
                .map_or(default_max, |mb| (mb * 1024.0 * 1024.0).max(1.0) as usize),
            partition,
            log,
            storage,
            format,
            declared: HashMap::new(),
        };
        sink.publish()?;
        sink.remove_leftovers()?;
        Ok(sink)
    }

    /// Publishes the last logged commit: renames and deletes, or Delta transactions. Each
    /// step is idempotent, so a commit cut short is finished on the next start.
    fn publish(&mut self) -> Result<()> {
        match &mut self.format {
            Format::Parquet => {
                for (temp, target) in &self.log.renames {
                    if self.storage.exists(temp)? {
                        self.storage.rename(temp, target)?;
                    }
                }
                for path in &self.log.deletes {
                    self.storage.delete(path)?;
                }
            }
            Format::Delta(tables) => {
                for (dir, pending) in &self.log.delta {
                    tables.apply(&self.storage, dir, pending, self.log.seq)?;
                }
            }
        }
        Ok(())
    }

    /// Removes what an interrupted commit wrote before its log: temporary files, or data
    /// files no Delta table references (named by a commit after the last logged one).
    fn remove_leftovers(&mut self) -> Result<()> {
        match &mut self.format {
            Format::Parquet => {
                for path in self.storage.list("")? {
                    if path.ends_with(".tmp") {
                        tracing::info!(file = %path, "removing a temporary file of an interrupted commit");
                        self.storage.delete(&path)?;
                    }
                }
            }
            Format::Delta(tables) => {
                // In every directory: the interrupted commit may have been a new stream's.
                // A file a table references is never a leftover, whatever the log says
                // (a commit log removed or restored from an old copy).
                let mut referenced: HashMap<String, Vec<String>> = HashMap::new();
                for path in self.storage.list("")? {
                    let seq = layout::file_name_of(&path)
                        .and_then(layout::parse_file_name)
                        .map(|(seq, _)| seq);
                    if seq.is_none_or(|s| s <= self.log.seq) {
                        continue;
                    }
                    let dir = layout::dir_of(&path).to_string();
                    if !referenced.contains_key(&dir) {
                        let files = tables.files(&self.storage, &dir)?;
                        referenced.insert(dir.clone(), files);
                    }
                    if referenced[&dir].contains(&path) {
                        continue;
                    }
                    tracing::info!(file = %path, "removing a data file of an interrupted commit");
                    self.storage.delete(&path)?;
                }
            }
        }
        Ok(())
    }

    /// The stream directory's published data files, relative to the destination.
    fn live_files(&mut self, dir: &str) -> Result<Vec<String>> {
        match &mut self.format {
            Format::Parquet => Ok(self
                .storage
                .list(dir)?
                .into_iter()
                .filter(|p| layout::is_data_file(p))
                .collect()),
            Format::Delta(tables) => tables.files(&self.storage, dir),
        }
    }

    fn stream_dir(&self, stream: &str, owners: &mut BTreeMap<String, String>) -> Result<String> {
        let dir = dir_name(stream);
        match owners.get(&dir) {
            Some(owner) if owner != stream => Err(Error::sink(
                stream,
                format!("streams '{owner}' and '{stream}' both become directory '{dir}'"),
            )),
            _ => {
                owners.insert(dir.clone(), stream.to_string());
                Ok(dir)
            }
        }
    }

    fn write_stream(
        &mut self,
        seq: u64,
        dir: &str,
        changes: &mut singer_target::StreamChanges,
        written: &mut Written,
        stats: &mut LoadStats,
    ) -> Result<()> {
        let name = changes.stream.name().to_string();
        let upsert = matches!(self.format, Format::Delta(_))
            && changes.stream.load_method == LoadMethod::Upsert;
        let mut keys: Vec<String> = changes.stream.key_properties().to_vec();
        let mut open: HashMap<FileKey, OpenFile> = HashMap::new();
        let mut n = written.staged.len();
        let mut upserts: Vec<RecordBatch> = Vec::new();
        // Each batch is dropped once written, so the commit's memory goes down as its files
        // fill (the runtime buffers the next commit meanwhile).
        for op in std::mem::take(&mut changes.operations) {
            match op {
                Operation::Schema(stream) => {
                    if stream.key_properties() != keys.as_slice() {
                        // Rows buffered so far merge on the keys they came with.
                        let rows = std::mem::take(&mut upserts);
                        self.merge(
                            seq, &mut n, dir, &name, &keys, rows, &mut open, written, stats,
                        )?;
                    }
                    self.close_all(&mut open, written, &name)?;
                    keys = stream.key_properties().to_vec();
                }
                Operation::Rows(batch) => {
                    stats.batches += 1;
                    let batch = self.conform_to_table(seq, &mut n, dir, &batch, &name, written)?;
                    if upsert && !keys.is_empty() {
                        upserts.push(batch);
                    } else {
                        stats.inserted += batch.num_rows() as u64;
                        self.write_rows(seq, &mut n, dir, &name, &batch, &mut open, written)?;
                    }
                }
                Operation::ActivateVersion(version) => {
                    let rows = std::mem::take(&mut upserts);
                    self.merge(
                        seq, &mut n, dir, &name, &keys, rows, &mut open, written, stats,
                    )?;
                    self.close_all(&mut open, written, &name)?;
                    stats.deleted += self.drop_older_versions(dir, version, written, &name)?;
                }
            }
        }
        self.merge(
            seq, &mut n, dir, &name, &keys, upserts, &mut open, written, stats,
        )?;
        self.close_all(&mut open, written, &name)
    }

    /// Writes rows (partition columns included) into the commit's open files.
    #[allow(clippy::too_many_arguments)]
    fn write_rows(
        &mut self,
        seq: u64,
        n: &mut usize,
        dir: &str,
        name: &str,
        batch: &RecordBatch,
        open: &mut HashMap<FileKey, OpenFile>,
        written: &mut Written,
    ) -> Result<()> {
        for (key, rows) in self.split(batch, name)? {
            let mut offset = 0;
            while offset < rows.num_rows() {
                // A file holds one schema.
                if open.get(&key).is_some_and(|f| f.schema != rows.schema())
                    && let Some(f) = open.remove(&key)
                {
                    finish_file(f, written, name)?;
                }
                if !open.contains_key(&key) {
                    *n += 1;
                    let file = self.new_file(seq, *n, dir, &key, rows.schema(), name)?;
                    open.insert(key.clone(), file);
                }
                let file = open.get_mut(&key).expect("opened above");
                // Roll to a new file at max_rows_per_file.
                let take = (self.max_rows_per_file - file.staged.rows as usize)
                    .min(rows.num_rows() - offset);
                file.writer
                    .write(&rows.slice(offset, take))
                    .map_err(|e| Error::sink(name, e))?;
                file.staged.rows += take as u64;
                offset += take;
                let full = file.staged.rows as usize >= self.max_rows_per_file
                    || file.writer.bytes_written() + file.writer.in_progress_size()
                        >= self.max_file_bytes;
                if full && let Some(f) = open.remove(&key) {
                    finish_file(f, written, name)?;
                }
            }
        }
        Ok(())
    }

    /// Delta upsert: the last row of each key replaces the table's rows of that key (see
    /// [`crate::upsert`]).
    #[allow(clippy::too_many_arguments)]
    fn merge(
        &mut self,
        seq: u64,
        n: &mut usize,
        dir: &str,
        name: &str,
        key_properties: &[String],
        batches: Vec<RecordBatch>,
        open: &mut HashMap<FileKey, OpenFile>,
        written: &mut Written,
        stats: &mut LoadStats,
    ) -> Result<()> {
        if batches.is_empty() {
            return Ok(());
        }
        let all = upsert::unify(&batches, name)?;
        let (keys, rows) = Keys::last_per_key(&all, key_properties, name)?;
        // Files of this commit are read back too: finish them first.
        self.close_all(open, written, name)?;
        let mut replaced = 0u64;
        for (path, live) in self.files_to_scan(dir, name, written)? {
            let mut hit = false;
            self.storage
                .parquet_scan(&path, Some(keys.names()), &mut |batch| {
                    hit = keys.keep(&batch, name)?.is_some();
                    Ok(!hit)
                })?;
            if !hit {
                continue;
            }
            // Rewrite the file without the keys the commit brings again.
            self.rewrite_file(seq, n, dir, name, &path, live, written, &mut |batch| {
                Ok(match keys.keep(&batch, name)? {
                    Some(keep) => {
                        replaced += (batch.num_rows() - keep.true_count()) as u64;
                        upsert::filtered(&batch, &keep)?
                    }
                    None => batch,
                })
            })?;
        }
        stats.updated += replaced;
        stats.inserted += (rows.num_rows() as u64).saturating_sub(replaced);
        self.write_rows(seq, n, dir, name, &rows, open, written)
    }

    /// The partition value and version of an existing data file, from its path.
    fn key_of_file(&self, dir: &str, path: &str) -> FileKey {
        let version = layout::file_name_of(path)
            .and_then(layout::parse_file_name)
            .and_then(|(_, v)| v);
        let partition = self.partition.as_ref().and_then(|spec| {
            let prefix = format!("{dir}/{}=", spec.key());
            path.strip_prefix(&prefix)
                .and_then(|rest| rest.split('/').next())
                .and_then(layout::hive_unvalue)
        });
        (partition, version)
    }

    /// Delta: the batch in the table's types, the table's schema grown to take it.
    fn conform_to_table(
        &mut self,
        seq: u64,
        n: &mut usize,
        dir: &str,
        batch: &RecordBatch,
        stream: &str,
        written: &mut Written,
    ) -> Result<RecordBatch> {
        let Format::Delta(tables) = &mut self.format else {
            return Ok(batch.clone());
        };
        if !written.schemas.contains_key(dir) {
            if let Some(version) = tables.version_of(&self.storage, dir, stream)?
                && version > self.log.seq as i64
            {
                return Err(Error::sink(
                    stream,
                    format!(
                        "the Delta table holds commit {version} of this target, the destination's {COMMIT_LOG} only {}: was the commit log removed or replaced? Restore it, or write to another destination_path",
                        self.log.seq
                    ),
                ));
            }
            let state = tables.state(&self.storage, dir)?;
            let wanted: Vec<String> = self.partition.iter().map(|p| p.delta_column()).collect();
            if state.schema.is_some() && state.partition_columns != wanted {
                return Err(Error::sink(
                    stream,
                    format!(
                        "the Delta table is partitioned by {:?}, partition_by asks for {:?}: a table's partitioning cannot change",
                        state.partition_columns, wanted
                    ),
                ));
            }
            written.schemas.insert(
                dir.to_string(),
                DeltaSchema {
                    new_table: state.schema.is_none(),
                    schema: state.schema,
                    partition_columns: wanted,
                    changed: false,
                },
            );
        }
        let entry = written.schemas.get_mut(dir).expect("inserted above");
        let delta::Conformed {
            batch,
            schema: mut grown,
            retyped,
        } = delta::conform(stream, entry.schema.as_deref(), batch)?;
        if let Some(spec) = &self.partition {
            let column = spec.delta_column();
            match spec {
                PartitionSpec::Column(c) => {
                    if let Some(field) = grown.fields().iter().find(|f| f.name() == c) {
                        delta::check_partition_type(stream, c, field.data_type())?;
                    } else {
                        // Rows without the column fall in the null partition; the table
                        // still needs the column.
                        grown = with_field(&grown, Field::new(c, DataType::Utf8, true));
                    }
                }
                PartitionSpec::Day(_) | PartitionSpec::Month(_) => {
                    if grown.field_with_name(&column).is_err() {
                        grown = with_field(&grown, Field::new(&column, DataType::Utf8, true));
                    }
                }
            }
        }
        if entry.schema.as_deref() != Some(&grown) {
            entry.changed = true;
            entry.schema = Some(Arc::new(grown.clone()));
        }
        if !retyped.is_empty() {
            self.retype(seq, n, dir, stream, &grown, &retyped, written)?;
        }
        Ok(batch)
    }

    /// Delta: rewrites the table's files (and this commit's) with the `retyped` columns in
    /// their widened types from `schema`, in the same transaction as the rows that widened
    /// them, so every file agrees with the table's schema.
    #[allow(clippy::too_many_arguments)]
    fn retype(
        &mut self,
        seq: u64,
        n: &mut usize,
        dir: &str,
        stream: &str,
        schema: &Schema,
        retyped: &[String],
        written: &mut Written,
    ) -> Result<()> {
        if let Some(spec) = &self.partition
            && retyped
                .iter()
                .any(|c| *c == spec.delta_column() || c == spec.source())
        {
            return Err(Error::sink(
                stream,
                format!(
                    "partition column '{}' cannot change its type",
                    spec.delta_column()
                ),
            ));
        }
        tracing::info!(
            stream,
            columns = ?retyped,
            "column types widen: rewriting the Delta table's files in this commit's transaction"
        );
        for (path, live) in self.files_to_scan(dir, stream, written)? {
            self.rewrite_file(seq, n, dir, stream, &path, live, written, &mut |batch| {
                let batch_schema = batch.schema();
                let mut fields = Vec::with_capacity(batch.num_columns());
                let mut columns = Vec::with_capacity(batch.num_columns());
                for (field, column) in batch_schema.fields().iter().zip(batch.columns()) {
                    let target = schema
                        .field_with_name(field.name())
                        .ok()
                        .filter(|_| retyped.contains(field.name()));
                    let Some(target) = target else {
                        fields.push(field.as_ref().clone());
                        columns.push(column.clone());
                        continue;
                    };
                    let widened = delta::widen_array(column, field, target)?.ok_or_else(|| {
                        Error::sink(
                            stream,
                            format!(
                                "column '{}': {} values in {path} do not fit {}",
                                field.name(),
                                column.data_type(),
                                target.data_type()
                            ),
                        )
                    })?;
                    fields.push(Field::new(field.name(), widened.data_type().clone(), true));
                    columns.push(widened);
                }
                Ok(RecordBatch::try_new(
                    Arc::new(Schema::new(fields)),
                    columns,
                )?)
            })?;
        }
        Ok(())
    }

    /// The data files an upsert or a type change must look at: the stream's live files not
    /// already going, and the files this commit wrote for it; each with whether it is live.
    fn files_to_scan(
        &mut self,
        dir: &str,
        stream: &str,
        written: &Written,
    ) -> Result<Vec<(String, bool)>> {
        let mut files: Vec<(String, bool)> = self
            .live_files(dir)?
            .into_iter()
            .filter(|p| !written.deletes.contains(p))
            .map(|p| (p, true))
            .collect();
        files.extend(
            written
                .staged
                .iter()
                .filter(|s| s.stream == stream)
                .map(|s| (s.temp.clone(), false)),
        );
        Ok(files)
    }

    /// Replaces the data file `path` by files of its batches passed through `transform`
    /// (empty results dropped), with the same partition and version: the old file is
    /// removed by this commit (live) or deleted at once (written by this commit).
    #[allow(clippy::too_many_arguments)]
    fn rewrite_file(
        &mut self,
        seq: u64,
        n: &mut usize,
        dir: &str,
        stream: &str,
        path: &str,
        live: bool,
        written: &mut Written,
        transform: &mut dyn FnMut(RecordBatch) -> Result<RecordBatch>,
    ) -> Result<()> {
        let key = self.key_of_file(dir, path);
        // The copy keeps the commit number of the rows it holds: an overwrite load's swap
        // and full-table versions judge files by it.
        let source_seq = layout::file_name_of(path)
            .and_then(layout::parse_file_name)
            .map_or(seq, |(s, _)| s);
        let mut rest: Option<OpenFile> = None;
        let mut finished = Vec::new();
        let scanned = self.storage.parquet_scan(path, None, &mut |batch| {
            let batch = transform(batch)?;
            if batch.num_rows() == 0 {
                return Ok(true);
            }
            if rest.as_ref().is_some_and(|f| f.schema != batch.schema())
                && let Some(f) = rest.take()
            {
                finished.push(f);
            }
            if rest.is_none() {
                *n += 1;
                let mut file = self.new_file(source_seq, *n, dir, &key, batch.schema(), stream)?;
                file.staged.rewrite_of = Some(path.to_string());
                rest = Some(file);
            }
            let file = rest.as_mut().expect("opened above");
            file.writer
                .write(&batch)
                .map_err(|e| Error::sink(stream, e))?;
            file.staged.rows += batch.num_rows() as u64;
            Ok(true)
        });
        finished.extend(rest);
        if let Err(e) = scanned {
            // Local files are written under their final names: none may stay half-written.
            for f in &finished {
                let _ = self.storage.delete(&f.staged.temp);
            }
            return Err(e);
        }
        for f in finished {
            finish_file(f, written, stream)?;
        }
        if live {
            written.deletes.push(path.to_string());
        } else {
            written.staged.retain(|s| s.temp != path);
            self.storage.delete(path)?;
        }
        Ok(())
    }

    /// Splits a batch by (partition value, version); a partition column leaves the data.
    fn split(&self, batch: &RecordBatch, stream: &str) -> Result<Vec<(FileKey, RecordBatch)>> {
        let mut parts = match &self.partition {
            Some(spec) => spec.values(batch).map_err(|e| Error::sink(stream, e))?,
            None => None,
        };
        if parts.is_none() && self.partition.is_some() && matches!(self.format, Format::Delta(_)) {
            // Every file of a partitioned Delta table has a partition value.
            parts = Some(vec![None; batch.num_rows()]);
        }
        let versions = batch
            .column_by_name(SDC_TABLE_VERSION)
            .and_then(|c| c.as_primitive_opt::<Int64Type>().cloned());
        let key_of = |i: usize| -> FileKey {
            (
                parts.as_ref().map(|p| p[i].clone()),
                versions
                    .as_ref()
                    .and_then(|v| v.is_valid(i).then(|| v.value(i))),
            )
        };
        let data = match &self.partition {
            Some(spec) if spec.drops_column() && batch.column_by_name(spec.source()).is_some() => {
                let keep: Vec<usize> = batch
                    .schema()
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| f.name() != spec.source())
                    .map(|(i, _)| i)
                    .collect();
                batch.project(&keep).map_err(|e| Error::sink(stream, e))?
            }
            _ => batch.clone(),
        };
        if batch.num_rows() == 0 {
            return Ok(vec![]);
        }
        let first = key_of(0);
        if (1..batch.num_rows()).all(|i| key_of(i) == first) {
            return Ok(vec![(first, data)]);
        }
        let mut groups: Vec<(FileKey, Vec<u32>)> = Vec::new();
        let mut index: HashMap<FileKey, usize> = HashMap::new();
        for i in 0..batch.num_rows() {
            let key = key_of(i);
            let g = *index.entry(key.clone()).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i as u32);
        }
        groups
            .into_iter()
            .map(|(key, rows)| {
                take_record_batch(&data, &UInt32Array::from(rows))
                    .map(|b| (key, b))
                    .map_err(|e| Error::sink(stream, e))
            })
            .collect()
    }

    fn new_file(
        &self,
        seq: u64,
        n: usize,
        dir: &str,
        key: &FileKey,
        schema: SchemaRef,
        stream: &str,
    ) -> Result<OpenFile> {
        let mut folder = dir.to_string();
        let mut partition = None;
        if let (Some(spec), Some(value)) = (&self.partition, &key.0) {
            folder = format!("{folder}/{}={}", spec.key(), hive_value(value.as_deref()));
            partition = Some((spec.delta_column(), value.clone()));
        }
        let name = layout::file_name(seq, n, key.1);
        let target = format!("{folder}/{name}");
        let temp = match self.format {
            Format::Parquet => format!("{folder}/.{name}.tmp"),
            Format::Delta(_) => target.clone(),
        };
        let file = self.storage.create(&temp)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(self.properties.clone()))
            .map_err(|e| Error::sink(stream, e))?;
        Ok(OpenFile {
            writer,
            schema,
            staged: Staged {
                temp,
                target,
                version: key.1,
                stream: stream.to_string(),
                partition,
                rows: 0,
                size: 0,
                rewrite_of: None,
            },
        })
    }

    fn close_all(
        &self,
        open: &mut HashMap<FileKey, OpenFile>,
        written: &mut Written,
        stream: &str,
    ) -> Result<()> {
        for (_, file) in open.drain() {
            finish_file(file, written, stream)?;
        }
        Ok(())
    }

    /// Schedules removal of the stream's files of versions older than `version`; returns
    /// the rows they hold.
    fn drop_older_versions(
        &mut self,
        dir: &str,
        version: i64,
        written: &mut Written,
        stream: &str,
    ) -> Result<u64> {
        let older = |v: Option<i64>| v.is_none_or(|v| v < version);
        let mut rows = 0;
        for path in self.live_files(dir)? {
            let v = layout::file_name_of(&path)
                .and_then(layout::parse_file_name)
                .and_then(|(_, v)| v);
            if older(v) && !written.deletes.contains(&path) {
                rows += self.storage.parquet_rows(&path)?;
                written.deletes.push(path);
            }
        }
        // Files of older versions written earlier in this same commit never land.
        let mut kept = Vec::new();
        for staged in written.staged.drain(..) {
            if staged.stream == stream && older(staged.version) {
                rows += staged.rows;
                self.storage.delete(&staged.temp)?;
            } else {
                kept.push(staged);
            }
        }
        written.staged = kept;
        Ok(rows)
    }

    /// Delta: each table's transaction for this commit.
    fn delta_transactions(
        &self,
        written: &Written,
        owners: &BTreeMap<String, String>,
        overwrites: &[String],
    ) -> Result<BTreeMap<String, PendingTable>> {
        let now = chrono::Utc::now().timestamp_millis();
        let mut tables: BTreeMap<String, PendingTable> = BTreeMap::new();
        let pending_for = |tables: &mut BTreeMap<String, PendingTable>, dir: &str| {
            if !tables.contains_key(dir) {
                let stream = owners.get(dir).cloned().unwrap_or_else(|| dir.to_string());
                let overwrite = overwrites.contains(&stream);
                tables.insert(
                    dir.to_string(),
                    PendingTable {
                        stream,
                        schema: None,
                        partition_columns: Vec::new(),
                        actions: Vec::new(),
                        overwrite,
                    },
                );
            }
        };
        for staged in &written.staged {
            let dir = layout::dir_of(&staged.target).to_string();
            pending_for(&mut tables, &dir);
            let table = tables.get_mut(&dir).expect("inserted above");
            table.actions.push(Action::Add(Add {
                path: relative_to(&staged.target, &dir),
                partition_values: staged.partition.iter().cloned().collect(),
                size: staged.size as i64,
                modification_time: now,
                data_change: true,
                stats: Some(delta::stats(staged.rows)),
                ..Default::default()
            }));
        }
        for path in &written.deletes {
            let dir = layout::dir_of(path).to_string();
            pending_for(&mut tables, &dir);
            let table = tables.get_mut(&dir).expect("inserted above");
            table.overwrite = true;
            table.actions.push(Action::Remove(Remove {
                path: relative_to(path, &dir),
                data_change: true,
                deletion_timestamp: Some(now),
                ..Default::default()
            }));
        }
        for (dir, table) in tables.iter_mut() {
            let Some(schema) = written.schemas.get(dir) else {
                continue;
            };
            if schema.new_table || schema.changed {
                let Some(arrow) = &schema.schema else {
                    continue;
                };
                let stream = &table.stream;
                table.schema =
                    Some(delta::to_delta(arrow.fields()).map_err(|e| Error::sink(stream, e))?);
                table.partition_columns = schema.partition_columns.clone();
            }
        }
        Ok(tables)
    }

    /// Whether the published file `path` is still live.
    fn is_live(&mut self, path: &str) -> Result<bool> {
        match &mut self.format {
            Format::Parquet => self.storage.exists(path),
            Format::Delta(tables) => Ok(tables
                .files(&self.storage, layout::dir_of(path))?
                .iter()
                .any(|p| p == path)),
        }
    }
}

fn relative_to(path: &str, dir: &str) -> String {
    path.strip_prefix(dir)
        .map(|p| p.trim_start_matches('/'))
        .unwrap_or(path)
        .to_string()
}

fn with_field(schema: &Schema, field: Field) -> Schema {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(field);
    Schema::new(fields)
}

fn finish_file(file: OpenFile, written: &mut Written, stream: &str) -> Result<()> {
    let OpenFile {
        writer, mut staged, ..
    } = file;
    let file = writer.into_inner().map_err(|e| Error::sink(stream, e))?;
    staged.size = file.finish()?;
    written.staged.push(staged);
    Ok(())
}

impl Sink for ParquetSink {
    fn last_commit(&mut self) -> Result<Option<CommitMarker>> {
        Ok((self.log.seq > 0).then(|| self.log.marker.clone()))
    }

    fn check_schema(&mut self, stream: &TargetStream) -> Result<()> {
        let delta = matches!(self.format, Format::Delta(_));
        if stream.load_method == LoadMethod::Upsert && delta && !stream.key_properties().is_empty()
        {
            tracing::info!(
                stream = stream.name(),
                keys = ?stream.key_properties(),
                "upserting on the key properties: each commit rewrites the Delta table's files that hold its keys (load_method: append-only appends instead)"
            );
        }
        if stream.load_method == LoadMethod::Upsert && !delta {
            tracing::info!(
                stream = stream.name(),
                "Parquet datasets are append-only: records are appended, not merged by key (table_format: delta merges)"
            );
        }
        if let (true, LoadMethod::Upsert, Some(PartitionSpec::Column(c))) =
            (delta, stream.load_method, &self.partition)
            && stream.key_properties().contains(c)
        {
            return Err(Error::sink(
                stream.name(),
                format!(
                    "partition_by '{c}' is a key property: upserts need the key in the data files"
                ),
            ));
        }
        let mut owners = self.log.streams.clone();
        let dir = self.stream_dir(stream.name(), &mut owners)?;
        if let Format::Delta(tables) = &mut self.format {
            // A type change the table cannot take fails here, before the stream's records.
            let current = match self.declared.get(&dir) {
                Some(schema) => Some(schema.clone()),
                None => tables
                    .state(&self.storage, &dir)?
                    .schema
                    .map(|s| s.as_ref().clone()),
            };
            let empty = RecordBatch::new_empty(stream.arrow_schema.clone());
            let conformed = delta::conform(stream.name(), current.as_ref(), &empty)?;
            self.declared.insert(dir, conformed.schema);
        }
        Ok(())
    }

    fn commit(&mut self, mut commit: Commit) -> Result<Vec<(String, LoadStats)>> {
        let seq = self.log.seq + 1;
        let mut owners = self.log.streams.clone();
        let mut overwrite_from = self.log.overwrite_from.clone();
        let mut written = Written::default();
        let mut all_stats = Vec::new();
        let mut provisional = self.log.provisional.clone();
        let mut overwrites = Vec::new();
        let result = (|| {
            for stream in &commit.retract {
                let mut stats = LoadStats::default();
                for file in provisional.remove(stream).unwrap_or_default() {
                    if self.is_live(&file)? {
                        stats.deleted += self.storage.parquet_rows(&file)?;
                        written.deletes.push(file);
                    }
                }
                if stats.deleted > 0 {
                    tracing::info!(
                        stream = %stream,
                        rows = stats.deleted,
                        "removing files an interrupted run committed past its last STATE; the input sends their rows again"
                    );
                }
                all_stats.push((stream.clone(), stats));
            }
            for changes in &mut commit.streams {
                let name = changes.stream.name().to_string();
                let dir = self.stream_dir(&name, &mut owners)?;
                if changes.stream.load_method == LoadMethod::Overwrite
                    && (changes.first_in_run || !overwrite_from.contains_key(&name))
                {
                    // The files this load replaces: everything committed before it.
                    overwrite_from.insert(name.clone(), seq);
                }
                let mut stats = LoadStats::default();
                self.write_stream(seq, &dir, changes, &mut written, &mut stats)?;
                all_stats.push((name, stats));
            }
            if commit.swap_overwrite {
                for (name, from) in std::mem::take(&mut overwrite_from) {
                    let dir = dir_name(&name);
                    for path in self.live_files(&dir)? {
                        let seq_of = layout::file_name_of(&path)
                            .and_then(layout::parse_file_name)
                            .map_or(0, |(s, _)| s);
                        if seq_of < from && !written.deletes.contains(&path) {
                            written.deletes.push(path);
                        }
                    }
                    overwrites.push(name);
                }
            }
            Ok::<(), Error>(())
        })();
        if let Err(e) = result {
            for staged in &written.staged {
                let _ = self.storage.delete(&staged.temp);
            }
            return Err(e);
        }
        if commit.provisional {
            let delta = matches!(self.format, Format::Delta(_));
            let before = provisional.clone();
            for staged in &written.staged {
                if let Some(source) = &staged.rewrite_of {
                    if before
                        .get(&staged.stream)
                        .is_some_and(|files| files.contains(source))
                    {
                        provisional
                            .entry(staged.stream.clone())
                            .or_default()
                            .push(staged.target.clone());
                    }
                    continue;
                }
                // Appended rows are provisional: overwrite loads are staged, and Delta
                // upserts are merged, so replaying them is harmless (and their files hold
                // rewritten rows of earlier commits, which a retraction must not remove).
                let appended = commit.streams.iter().any(|c| {
                    c.stream.name() == staged.stream
                        && match c.stream.load_method {
                            LoadMethod::AppendOnly => true,
                            LoadMethod::Upsert => !delta || c.stream.key_properties().is_empty(),
                            LoadMethod::Overwrite => false,
                        }
                });
                if appended {
                    provisional
                        .entry(staged.stream.clone())
                        .or_default()
                        .push(staged.target.clone());
                }
            }
        }
        for stream in &commit.settle {
            provisional.remove(stream);
        }
        let (renames, deletes, delta) = match &self.format {
            Format::Parquet => (
                written
                    .staged
                    .iter()
                    .map(|s| (s.temp.clone(), s.target.clone()))
                    .collect(),
                written.deletes.clone(),
                BTreeMap::new(),
            ),
            Format::Delta(_) => (
                Vec::new(),
                Vec::new(),
                self.delta_transactions(&written, &owners, &overwrites)?,
            ),
        };
        let log = CommitLog {
            seq,
            marker: commit.marker,
            renames,
            deletes,
            streams: owners,
            overwrite_from,
            provisional,
            format: Some(match self.format {
                Format::Parquet => TableFormat::Parquet,
                Format::Delta(_) => TableFormat::Delta,
            }),
            delta,
        };
        let bytes = serde_json::to_vec_pretty(&log).map_err(Error::destination)?;
        self.storage.put_atomic(COMMIT_LOG, bytes)?;
        self.log = log;
        // The commit is durable; publishing it is idempotent and redone on restart if cut.
        self.publish()?;
        Ok(all_stats)
    }
}
