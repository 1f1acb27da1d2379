//! BATCH messages written by a tap (the Meltano SDK's `batch_config`): a stream's records
//! go to files of up to `batch_size` records, and a BATCH message names each file once it
//! is complete. Records are mapped and conformed first (the SDK writes them raw).
//!
//! Files are named as the SDK names them, `{prefix}{tap}--{stream}-{uuid}-{n}.json.gz`, in
//! `storage.root` (a local path or `file://` URL). Each file is written under a temporary
//! name and renamed when complete, so a crash leaves no half file under a batch's name.
//! JSON lines are written here; Parquet through the [`BatchFileFormat`] a tap is given
//! ([`crate::Tap::parquet_batches`]; the target SDK has one), since Parquet needs Arrow.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use singer_core::Error as CoreError;
use singer_core::batch::{BatchFileError, BatchFileFormat, BatchFileWriter};
use singer_core::location::{file_url, local_path};
use singer_core::message::{
    BatchCompression, BatchEncoding, BatchFormat, BatchMessage, Record, SchemaMessage,
};

use crate::error::{Error, Result};

/// The SDK's `batch_config` setting.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// How batch files are encoded.
    pub encoding: BatchEncoding,
    /// Where batch files are written.
    pub storage: BatchStorage,
    /// Records per batch file.
    #[serde(default = "default_batch_size")]
    #[schemars(range(min = 1))]
    pub batch_size: Option<usize>,
}

/// Where batch files go.
#[derive(Debug, Clone, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchStorage {
    /// A local directory or `file://` URL.
    pub root: String,
    /// Prepended to each file name.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// The SDK's default.
const DEFAULT_BATCH_SIZE: usize = 10_000;

fn default_batch_size() -> Option<usize> {
    Some(DEFAULT_BATCH_SIZE)
}

impl BatchConfig {
    /// Checks what serde cannot: the root is local, the format is one taps write.
    pub fn check(&self) -> Result<PathBuf> {
        let root = local_path(&self.storage.root).map_err(|e| {
            Error::config(vec![format!(
                "batch_config.storage.root '{}': {e} (only local paths and file:// URLs)",
                self.storage.root
            )])
        })?;
        if self.batch_size == Some(0) {
            return Err(Error::config(vec![
                "batch_config.batch_size must be at least 1".into(),
            ]));
        }
        Ok(root)
    }
}

/// One batch file being written.
struct OpenFile {
    /// Its name while it is written.
    partial: PathBuf,
    /// Its name once complete.
    path: PathBuf,
    out: Box<dyn BatchFileWriter>,
    rows: usize,
}

/// JSON lines, plain or gzip: one record object per line.
enum JsonLines {
    Plain(BufWriter<File>),
    Gzip(Box<flate2::write::GzEncoder<BufWriter<File>>>),
}

impl BatchFileWriter for JsonLines {
    fn append(&mut self, record: &Record) -> std::result::Result<(), BatchFileError> {
        let out: &mut dyn Write = match self {
            JsonLines::Plain(w) => w,
            JsonLines::Gzip(w) => w.as_mut(),
        };
        serde_json::to_writer(&mut *out, record)?;
        out.write_all(b"\n")?;
        Ok(())
    }

    /// Ends the gzip stream and writes everything out, with its errors (a full disk must
    /// not leave a truncated file announced as a batch).
    fn finish(self: Box<Self>) -> std::result::Result<(), BatchFileError> {
        let buffered = match *self {
            JsonLines::Plain(w) => w,
            JsonLines::Gzip(w) => (*w).finish()?,
        };
        let file = buffered.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        Ok(())
    }
}

/// Gathers records into batch files, stream by stream.
pub(crate) struct Batcher {
    root: PathBuf,
    prefix: String,
    encoding: BatchEncoding,
    batch_size: usize,
    tap: String,
    /// Per stream: the run's id for its files and the number of the next file.
    sequence: HashMap<String, (String, u64)>,
    open: HashMap<String, OpenFile>,
    /// The Parquet writer, when `format` is `parquet`.
    parquet: Option<Arc<dyn BatchFileFormat>>,
    /// The latest SCHEMA of each stream (as mapped): what a Parquet file is written for.
    schemas: HashMap<String, SchemaMessage>,
}

impl Batcher {
    /// A batcher for `config`; `parquet` writes Parquet files, if the tap was given one.
    pub fn new(
        config: &BatchConfig,
        tap: &str,
        parquet: Option<Arc<dyn BatchFileFormat>>,
    ) -> Result<Batcher> {
        let root = config.check()?;
        let parquet = match config.encoding.format {
            BatchFormat::Jsonl => None,
            BatchFormat::Parquet => Some(parquet.ok_or_else(|| {
                Error::config(vec![format!(
                    "batch_config.encoding.format: {tap} writes 'jsonl' batch files, not 'parquet'"
                )])
            })?),
        };
        std::fs::create_dir_all(&root).map_err(|source| io(&root, source))?;
        Ok(Batcher {
            root,
            prefix: config.storage.prefix.clone().unwrap_or_default(),
            encoding: config.encoding,
            batch_size: config.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            tap: tap.to_string(),
            sequence: HashMap::new(),
            open: HashMap::new(),
            parquet,
            schemas: HashMap::new(),
        })
    }

    /// A SCHEMA written (after every open file was completed): later files follow it.
    pub fn schema(&mut self, schema: &SchemaMessage) {
        self.schemas.insert(schema.stream.clone(), schema.clone());
    }

    /// Adds a record; returns the BATCH message of the file it completed, if it did.
    pub fn push(&mut self, stream: &str, record: &Record) -> Result<Option<BatchMessage>> {
        if !self.open.contains_key(stream) {
            let file = self.start(stream)?;
            self.open.insert(stream.to_string(), file);
        }
        let Some(file) = self.open.get_mut(stream) else {
            return Ok(None);
        };
        file.out
            .append(record)
            .map_err(|e| file_error(&file.partial, e))?;
        file.rows += 1;
        if file.rows < self.batch_size {
            return Ok(None);
        }
        match self.open.remove(stream) {
            Some(file) => self.finish(stream, file).map(Some),
            None => Ok(None),
        }
    }

    /// Completes every open file; their BATCH messages, to write before a STATE (or any
    /// message that must follow the records).
    pub fn finish_all(&mut self) -> Result<Vec<BatchMessage>> {
        let mut streams: Vec<String> = self.open.keys().cloned().collect();
        streams.sort();
        let mut messages = Vec::with_capacity(streams.len());
        for stream in streams {
            if let Some(file) = self.open.remove(&stream) {
                messages.push(self.finish(&stream, file)?);
            }
        }
        Ok(messages)
    }

    fn start(&mut self, stream: &str) -> Result<OpenFile> {
        let tap = &self.tap;
        let (id, n) = self
            .sequence
            .entry(stream.to_string())
            .or_insert_with(|| (format!("{tap}--{stream}-{}", uuid4()), 1));
        let extension = match (&self.parquet, self.encoding.compression) {
            (Some(parquet), compression) => parquet.extension(compression),
            (None, BatchCompression::Gzip) => "json.gz",
            (None, BatchCompression::None) => "json",
        };
        let name = format!("{}{id}-{n}.{extension}", self.prefix);
        *n += 1;
        let path = self.root.join(sanitize(&name));
        let partial = path.with_file_name(format!(
            ".{}.partial",
            path.file_name().and_then(|f| f.to_str()).unwrap_or("batch")
        ));
        let schema = match &self.parquet {
            Some(_) => Some(self.schemas.get(stream).ok_or_else(|| {
                io(
                    &partial,
                    std::io::Error::other(format!(
                        "a record of stream '{stream}' before its SCHEMA"
                    )),
                )
            })?),
            None => None,
        };
        let file = File::create(&partial).map_err(|source| io(&partial, source))?;
        let out: Box<dyn BatchFileWriter> = match (&self.parquet, schema) {
            (Some(parquet), Some(schema)) => {
                match parquet.create(file, schema, self.encoding.compression) {
                    Ok(out) => out,
                    Err(e) => {
                        let _ = std::fs::remove_file(&partial);
                        return Err(file_error(&partial, e));
                    }
                }
            }
            _ => {
                let buffered = BufWriter::with_capacity(1 << 16, file);
                Box::new(match self.encoding.compression {
                    BatchCompression::Gzip => JsonLines::Gzip(Box::new(
                        flate2::write::GzEncoder::new(buffered, flate2::Compression::fast()),
                    )),
                    BatchCompression::None => JsonLines::Plain(buffered),
                })
            }
        };
        Ok(OpenFile {
            partial,
            path,
            out,
            rows: 0,
        })
    }

    fn finish(&self, stream: &str, file: OpenFile) -> Result<BatchMessage> {
        let finished = file
            .out
            .finish()
            .map_err(|e| file_error(&file.partial, e))
            .and_then(|()| {
                std::fs::rename(&file.partial, &file.path).map_err(|source| io(&file.path, source))
            });
        if let Err(e) = finished {
            // Never announced, so never read: not left behind either.
            let _ = std::fs::remove_file(&file.partial);
            return Err(e);
        }
        let url = file_url(&file.path)
            .map_err(|e| Error::Sync(format!("batch file {}: {e}", file.path.display())))?;
        tracing::debug!(stream, rows = file.rows, file = %url, "batch file written");
        Ok(BatchMessage {
            stream: stream.to_string(),
            encoding: self.encoding,
            manifest: vec![url],
        })
    }
}

impl Drop for Batcher {
    /// Files never announced are removed: no target will read them.
    fn drop(&mut self) {
        for (_, file) in self.open.drain() {
            drop(file.out);
            let _ = std::fs::remove_file(&file.partial);
        }
    }
}

/// A batch file that cannot be written ends the run: records already in it may be covered
/// by bookmarks the next STATE would carry.
fn file_error(path: &Path, e: BatchFileError) -> Error {
    io(path, std::io::Error::other(e))
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Core(CoreError::Stream {
        context: "writing a batch file",
        source: std::io::Error::new(source.kind(), format!("{}: {source}", path.display())),
    })
}

/// Stream names may hold `/`; file names may not.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect()
}

/// A random (version 4) UUID.
fn uuid4() -> String {
    let n = fastrand::u128(..);
    let n = (n & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    let hex = format!("{n:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Read;

    #[test]
    fn files_of_batch_size_then_the_rest() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config: BatchConfig = serde_json::from_value(json!({
            "encoding": {"format": "jsonl", "compression": "gzip"},
            "storage": {"root": format!("file://{}", dir.path().display()), "prefix": "jira-"},
            "batch_size": 2
        }))
        .expect("config");
        let mut b = Batcher::new(&config, "tap-demo", None).expect("batcher");
        let rec = |i: i64| json!({"id": i}).as_object().cloned().expect("object");
        assert!(b.push("users", &rec(1)).expect("push").is_none());
        let full = b
            .push("users", &rec(2))
            .expect("push")
            .expect("a full file");
        assert!(b.push("users", &rec(3)).expect("push").is_none());
        let rest = b.finish_all().expect("finish");
        assert_eq!(rest.len(), 1);
        let files: Vec<&String> = full.manifest.iter().chain(&rest[0].manifest).collect();
        assert!(
            files[0].ends_with("-1.json.gz") && files[1].ends_with("-2.json.gz"),
            "{files:?}"
        );
        assert!(files[0].contains("/jira-tap-demo--users-"), "{files:?}");
        let mut text = String::new();
        let path = local_path(files[0]).expect("local");
        flate2::read::GzDecoder::new(File::open(path).expect("open"))
            .read_to_string(&mut text)
            .expect("gzip");
        assert_eq!(text, "{\"id\":1}\n{\"id\":2}\n");
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "no partial files left: {names:?}");
        assert_eq!(
            serde_json::to_value(&full).expect("json")["encoding"],
            json!({"format": "jsonl", "compression": "gzip"})
        );
    }

    #[test]
    fn refuses_what_it_cannot_write() {
        let config = |v| serde_json::from_value::<BatchConfig>(v);
        let s3 = config(json!({"encoding": {"format": "jsonl"}, "storage": {"root": "s3://b/p"}}))
            .expect("shape");
        assert!(s3.check().expect_err("s3").to_string().contains("'s3://'"));
        let parquet =
            config(json!({"encoding": {"format": "parquet"}, "storage": {"root": "/tmp"}}))
                .expect("shape");
        let e = Batcher::new(&parquet, "tap-demo", None)
            .err()
            .expect("no Parquet writer");
        assert!(e.to_string().contains("tap-demo writes 'jsonl'"), "{e}");
        assert!(
            config(
                json!({"encoding": {"format": "jsonl"}, "storage": {"root": "/tmp"}, "size": 3})
            )
            .is_err()
        );
    }
}
