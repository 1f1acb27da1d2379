//! The Parquet sink: temp files, an atomic commit log, then renames.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray, UInt32Array};
use arrow::compute::take_record_batch;
use arrow::datatypes::{Int64Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as Codec, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use singer_core::state::{sync_dir, write_atomic};
use singer_target::Error;
use singer_target::location::local_path;
use singer_target::metadata::SDC_TABLE_VERSION;
use singer_target::{Commit, CommitMarker, LoadMethod, LoadStats, Operation, Sink, TargetStream};

use crate::config::{Compression, Config};
use crate::layout::{self, COMMIT_LOG, CommitLog, PartitionSpec, dir_name, hive_value};

type Result<T, E = Error> = std::result::Result<T, E>;

/// Writes commits as Parquet files under a destination directory.
pub struct ParquetSink {
    root: PathBuf,
    properties: WriterProperties,
    max_rows_per_file: usize,
    max_file_bytes: usize,
    partition: Option<PartitionSpec>,
    log: CommitLog,
}

/// What a file holds: the partition directory value (when partitioning applies) and the
/// full-table version of its rows.
type FileKey = (Option<String>, Option<i64>);

/// A file being written in the current commit.
struct OpenFile {
    writer: ArrowWriter<File>,
    temp: PathBuf,
    target: PathBuf,
    rows: usize,
}

/// The files written so far in a commit.
#[derive(Default)]
struct Written {
    renames: Vec<(PathBuf, PathBuf, Option<i64>, String)>,
    deletes: Vec<PathBuf>,
}

/// `destination_path` as a local directory: a path or a `file://` URL, refused before
/// anything is written when it is neither.
fn local_destination(path: &Path) -> Result<PathBuf> {
    let text = path.to_string_lossy();
    local_path(&text).map_err(|e| {
        Error::config(vec![format!(
            "destination_path '{text}': {e}; give a local directory or a file:// URL"
        )])
    })
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

impl ParquetSink {
    /// Opens the destination, finishing an interrupted commit and removing leftovers.
    pub fn open(config: &Config) -> Result<Self> {
        let root = local_destination(&config.destination_path)?;
        std::fs::create_dir_all(&root).map_err(io(&root))?;
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
        let log_path = root.join(COMMIT_LOG);
        let log: CommitLog = if log_path.exists() {
            let text = std::fs::read_to_string(&log_path).map_err(io(&log_path))?;
            serde_json::from_str(&text).map_err(|e| {
                Error::destination(format!("{}: corrupt commit log: {e}", log_path.display()))
            })?
        } else {
            CommitLog::default()
        };
        let sink = ParquetSink {
            properties,
            max_rows_per_file: config.max_rows_per_file.unwrap_or(usize::MAX).max(1),
            max_file_bytes: config
                .max_file_size_mb
                .map_or(usize::MAX, |mb| (mb * 1024.0 * 1024.0).max(1.0) as usize),
            partition,
            log,
            root,
        };
        sink.roll_forward()?;
        Ok(sink)
    }

    /// Finishes the last commit's renames and deletes, then removes other temp files.
    fn roll_forward(&self) -> Result<()> {
        for (temp, target) in &self.log.renames {
            let (temp, target) = (self.root.join(temp), self.root.join(target));
            if temp.exists() {
                move_into_place(&temp, &target)?;
            }
        }
        for path in &self.log.deletes {
            let path = self.root.join(path);
            if path.exists() {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
        for temp in layout::temp_files(&self.root).map_err(io(&self.root))? {
            tracing::info!(file = %temp.display(), "removing a temporary file of an interrupted commit");
            std::fs::remove_file(&temp).map_err(io(&temp))?;
        }
        Ok(())
    }

    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(&self.root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
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
        &self,
        seq: u64,
        dir: &str,
        changes: &singer_target::StreamChanges,
        written: &mut Written,
        stats: &mut LoadStats,
    ) -> Result<()> {
        let name = changes.stream.name().to_string();
        let mut open: HashMap<FileKey, OpenFile> = HashMap::new();
        let mut n = written.renames.len();
        for op in &changes.operations {
            match op {
                Operation::Schema(_) => self.close_all(&mut open, written, &name)?,
                Operation::Rows(batch) => {
                    stats.batches += 1;
                    stats.inserted += batch.num_rows() as u64;
                    for (key, rows) in self.split(batch, &name)? {
                        let mut offset = 0;
                        while offset < rows.num_rows() {
                            let file = match open.entry(key.clone()) {
                                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                                std::collections::hash_map::Entry::Vacant(e) => {
                                    n += 1;
                                    e.insert(self.new_file(
                                        seq,
                                        n,
                                        dir,
                                        &key,
                                        rows.schema(),
                                        &name,
                                    )?)
                                }
                            };
                            // Roll to a new file at max_rows_per_file.
                            let take =
                                (self.max_rows_per_file - file.rows).min(rows.num_rows() - offset);
                            file.writer
                                .write(&rows.slice(offset, take))
                                .map_err(|e| Error::sink(&name, e))?;
                            file.rows += take;
                            offset += take;
                            let full = file.rows >= self.max_rows_per_file
                                || file.writer.bytes_written() + file.writer.in_progress_size()
                                    >= self.max_file_bytes;
                            if full && let Some(f) = open.remove(&key) {
                                finish_file(f, written, key.1, &name)?;
                            }
                        }
                    }
                }
                Operation::ActivateVersion(version) => {
                    self.close_all(&mut open, written, &name)?;
                    stats.deleted += self.drop_older_versions(dir, *version, written, &name)?;
                }
            }
        }
        self.close_all(&mut open, written, &name)
    }

    /// Splits a batch by (partition value, version); the partition column leaves the data.
    fn split(&self, batch: &RecordBatch, stream: &str) -> Result<Vec<(FileKey, RecordBatch)>> {
        let parts = match &self.partition {
            Some(spec) => spec.values(batch).map_err(|e| Error::sink(stream, e))?,
            None => None,
        };
        let versions = batch
            .column_by_name(SDC_TABLE_VERSION)
            .and_then(|c| c.as_primitive_opt::<Int64Type>().cloned());
        // The partition directory value (when partitioning applies to this stream), and
        // the record's version.
        let key_of = |i: usize| {
            (
                parts.as_ref().map(|p| hive_value(p[i].as_deref())),
                versions
                    .as_ref()
                    .and_then(|v| v.is_valid(i).then(|| v.value(i))),
            )
        };
        let data = match (&self.partition, &parts) {
            (Some(spec), Some(_)) if spec.drops_column() => {
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
        let mut folder = self.root.join(dir);
        if let (Some(spec), Some(value)) = (&self.partition, &key.0) {
            folder = folder.join(format!("{}={value}", spec.key()));
        }
        std::fs::create_dir_all(&folder).map_err(io(&folder))?;
        let name = layout::file_name(seq, n, key.1);
        let target = folder.join(&name);
        let temp = folder.join(format!(".{name}.tmp"));
        let file = File::create(&temp).map_err(io(&temp))?;
        let writer = ArrowWriter::try_new(file, schema, Some(self.properties.clone()))
            .map_err(|e| Error::sink(stream, e))?;
        Ok(OpenFile {
            writer,
            temp,
            target,
            rows: 0,
        })
    }

    fn close_all(
        &self,
        open: &mut HashMap<FileKey, OpenFile>,
        written: &mut Written,
        stream: &str,
    ) -> Result<()> {
        for ((_, version), file) in open.drain() {
            finish_file(file, written, version, stream)?;
        }
        Ok(())
    }

    /// Schedules removal of the stream's files of versions older than `version`; returns
    /// the rows they hold.
    fn drop_older_versions(
        &self,
        dir: &str,
        version: i64,
        written: &mut Written,
        stream: &str,
    ) -> Result<u64> {
        let older = |v: Option<i64>| v.is_none_or(|v| v < version);
        let mut rows = 0;
        let stream_dir = self.root.join(dir);
        for path in layout::data_files(&stream_dir).map_err(io(&stream_dir))? {
            let v = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(layout::parse_file_name)
                .and_then(|(_, v)| v);
            if older(v) && !written.deletes.contains(&path) {
                rows += row_count(&path);
                written.deletes.push(path);
            }
        }
        // Files of older versions written earlier in this same commit never land.
        let mut kept = Vec::new();
        for entry in written.renames.drain(..) {
            if entry.3 == stream && older(entry.2) {
                rows += row_count(&entry.0);
                let _ = std::fs::remove_file(&entry.0);
            } else {
                kept.push(entry);
            }
        }
        written.renames = kept;
        Ok(rows)
    }
}

fn finish_file(
    file: OpenFile,
    written: &mut Written,
    version: Option<i64>,
    stream: &str,
) -> Result<()> {
    let OpenFile {
        writer,
        temp,
        target,
        ..
    } = file;
    let file = writer.into_inner().map_err(|e| Error::sink(stream, e))?;
    file.sync_all().map_err(io(&temp))?;
    written
        .renames
        .push((temp, target, version, stream.to_string()));
    Ok(())
}

fn row_count(path: &Path) -> u64 {
    File::open(path)
        .ok()
        .and_then(|f| SerializedFileReader::new(f).ok())
        .map_or(0, |r| r.metadata().file_metadata().num_rows().max(0) as u64)
}

fn move_into_place(temp: &Path, target: &Path) -> Result<()> {
    std::fs::rename(temp, target).map_err(io(target))?;
    if let Some(dir) = target.parent() {
        sync_dir(dir).map_err(io(dir))?;
    }
    Ok(())
}

impl Sink for ParquetSink {
    fn last_commit(&mut self) -> Result<Option<CommitMarker>> {
        Ok((self.log.seq > 0).then(|| self.log.marker.clone()))
    }

    fn check_schema(&mut self, stream: &TargetStream) -> Result<()> {
        if stream.load_method == LoadMethod::Upsert {
            tracing::info!(
                stream = stream.name(),
                "Parquet datasets are append-only: records are appended, not merged by key"
            );
        }
        let mut owners = self.log.streams.clone();
        self.stream_dir(stream.name(), &mut owners).map(|_| ())
    }

    fn commit(&mut self, commit: Commit) -> Result<Vec<(String, LoadStats)>> {
        let seq = self.log.seq + 1;
        let mut owners = self.log.streams.clone();
        let mut overwrite_from = self.log.overwrite_from.clone();
        let mut written = Written::default();
        let mut all_stats = Vec::new();
        let mut provisional = self.log.provisional.clone();
        let result = (|| {
            for stream in &commit.retract {
                let mut stats = LoadStats::default();
                for file in provisional.remove(stream).unwrap_or_default() {
                    let path = self.root.join(&file);
                    if path.exists() {
                        stats.deleted += row_count(&path);
                        written.deletes.push(path);
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
            for changes in &commit.streams {
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
                    let dir = self.root.join(dir_name(&name));
                    for path in layout::data_files(&dir).map_err(io(&dir))? {
                        let seq_of = path
                            .file_name()
                            .and_then(|n| n.to_str())
                            .and_then(layout::parse_file_name)
                            .map_or(0, |(s, _)| s);
                        if seq_of < from && !written.deletes.contains(&path) {
                            written.deletes.push(path);
                        }
                    }
                }
            }
            Ok::<(), Error>(())
        })();
        if let Err(e) = result {
            for (temp, ..) in &written.renames {
                let _ = std::fs::remove_file(temp);
            }
            return Err(e);
        }
        if commit.provisional {
            for (_, target, _, stream) in &written.renames {
                let overwrite = commit.streams.iter().any(|c| {
                    c.stream.name() == stream && c.stream.load_method == LoadMethod::Overwrite
                });
                if !overwrite {
                    provisional
                        .entry(stream.clone())
                        .or_default()
                        .push(self.relative(target));
                }
            }
        }
        for stream in &commit.settle {
            provisional.remove(stream);
        }
        let log = CommitLog {
            seq,
            marker: commit.marker,
            renames: written
                .renames
                .iter()
                .map(|(t, f, ..)| (self.relative(t), self.relative(f)))
                .collect(),
            deletes: written.deletes.iter().map(|p| self.relative(p)).collect(),
            streams: owners,
            overwrite_from,
            provisional,
        };
        let bytes = serde_json::to_vec_pretty(&log).map_err(Error::destination)?;
        write_atomic(&self.root.join(COMMIT_LOG), &bytes)?;
        self.log = log;
        // The commit is durable; finishing it is idempotent and redone on restart if cut.
        for (temp, target, ..) in &written.renames {
            move_into_place(temp, target)?;
        }
        for path in &written.deletes {
            if path.exists() {
                std::fs::remove_file(path).map_err(io(path))?;
            }
        }
        Ok(all_stats)
    }
}
