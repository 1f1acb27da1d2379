//! Where the files live: a local directory, or a bucket on S3, GCS or Azure through the
//! `object_store` crate, behind one small API the sink uses with paths relative to the
//! destination.
//!
//! Local files are written with `std::fs` and fsynced (file and directory), so a commit is
//! durable across a power cut. On object storage a file is uploaded in one request when it
//! is small and as a multipart upload of [`PART_SIZE`] parts when it is not; until the
//! upload completes nothing is visible under its name, and a failed or dropped upload is
//! aborted. Requests are retried by `object_store` (5xx, timeouts and connection errors:
//! up to 10 times with exponential back-off, for at most 3 minutes).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::buffered::BufWriter;
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{ChunkReader, FileReader, Length};
use singer_core::state::{sync_dir, write_atomic};
use singer_target::Error;
use tokio::io::AsyncWriteExt;
use url::Url;

type Result<T, E = Error> = std::result::Result<T, E>;

/// Multipart upload part size: files above it are uploaded in parts of this size.
pub const PART_SIZE: usize = 16 * 1024 * 1024;

/// Parts of one file uploaded at the same time.
const UPLOAD_CONCURRENCY: usize = 4;

/// A destination: a local directory or an object-store prefix.
pub struct Storage {
    place: Place,
    /// The destination as the user gave it, for messages (no credentials: those come from
    /// `storage_options` or the environment).
    shown: String,
    runtime: tokio::runtime::Runtime,
}

enum Place {
    Local(PathBuf),
    Remote(Remote),
}

/// An object store and the prefix of the destination in it.
#[derive(Clone)]
pub struct Remote {
    /// The bucket or container, at its root.
    pub store: Arc<dyn ObjectStore>,
    /// The destination's prefix in it.
    pub prefix: ObjectPath,
    /// `scheme://bucket/prefix`, for tables that address themselves by URL.
    pub url: Url,
}

/// The URL schemes `destination_path` accepts.
pub const SCHEMES: &str =
    "a local path, file://, s3:// (or s3a://), gs://, az:// (or abfs://, abfss://)";

impl Storage {
    /// Opens `destination` (a path or URL) with `options`, the object store's own keys
    /// (`aws_endpoint`, `aws_region`, `google_service_account`, `azure_storage_account_name`,
    /// ...); the usual environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`) are read
    /// first, `options` override them. Unknown keys and unsupported schemes are errors.
    pub fn open(destination: &str, options: &BTreeMap<String, String>) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("object-store")
            .enable_all()
            .build()
            .map_err(|e| Error::destination(format!("cannot start the I/O runtime: {e}")))?;
        let refuse = |why: String| {
            Error::config(vec![format!(
                "destination_path '{destination}': {why}; give {SCHEMES}"
            )])
        };
        let place = match Url::parse(destination) {
            Ok(url) if url.scheme().len() > 1 && url.scheme() != "file" => {
                let store = remote_store(&url, options).map_err(&refuse)?;
                let prefix =
                    ObjectPath::from_url_path(url.path()).map_err(|e| refuse(e.to_string()))?;
                Place::Remote(Remote { store, prefix, url })
            }
            _ => {
                if !options.is_empty() {
                    return Err(Error::config(vec![format!(
                        "storage_options apply to object storage; destination_path '{destination}' is a local directory"
                    )]));
                }
                let path = singer_target::location::local_path(destination)
                    .map_err(|e| refuse(e.to_string()))?;
                std::fs::create_dir_all(&path).map_err(|e| Error::io(&path, e))?;
                Place::Local(path)
            }
        };
        Ok(Storage {
            place,
            shown: destination.to_string(),
            runtime,
        })
    }

    /// The destination as given.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The local directory, when the destination is one.
    pub fn local_root(&self) -> Option<&Path> {
        match &self.place {
            Place::Local(p) => Some(p),
            Place::Remote(_) => None,
        }
    }

    /// The object store, when the destination is one.
    pub fn remote(&self) -> Option<&Remote> {
        match &self.place {
            Place::Local(_) => None,
            Place::Remote(r) => Some(r),
        }
    }

    /// Runs a future on the storage's runtime.
    pub fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    fn object(&self, remote: &Remote, rel: &str) -> Result<ObjectPath> {
        let full = if remote.prefix.as_ref().is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", remote.prefix.as_ref())
        };
        ObjectPath::parse(&full).map_err(|e| self.error(rel, e))
    }

    fn error(&self, rel: &str, e: impl std::fmt::Display) -> Error {
        Error::destination(format!("{}/{rel}: {e}", self.shown.trim_end_matches('/')))
    }

    /// Starts a new file; nothing is visible under `rel` until [`FileWriter::finish`].
    pub fn create(&self, rel: &str) -> Result<FileWriter> {
        match &self.place {
            Place::Local(root) => {
                let path = root.join(rel);
                if let Some(dir) = path.parent() {
                    create_dirs_durably(root, dir)?;
                }
                let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
                Ok(FileWriter::Local { file, path })
            }
            Place::Remote(remote) => {
                let path = self.object(remote, rel)?;
                let upload = BufWriter::with_capacity(remote.store.clone(), path, PART_SIZE)
                    .with_max_concurrency(UPLOAD_CONCURRENCY);
                Ok(FileWriter::Remote(Box::new(RemoteWriter {
                    upload: Some(upload),
                    runtime: self.runtime.handle().clone(),
                    name: format!("{}/{rel}", self.shown.trim_end_matches('/')),
                    bytes: 0,
                })))
            }
        }
    }

    /// Replaces `rel` with `bytes` in one atomic step.
    pub fn put_atomic(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        match &self.place {
            Place::Local(root) => Ok(write_atomic(&root.join(rel), &bytes)?),
            Place::Remote(remote) => {
                let path = self.object(remote, rel)?;
                self.block_on(remote.store.put(&path, Bytes::from(bytes).into()))
                    .map_err(|e| self.error(rel, e))?;
                Ok(())
            }
        }
    }

    /// The whole of `rel`, or `None` if there is no such file.
    pub fn read(&self, rel: &str) -> Result<Option<Bytes>> {
        match &self.place {
            Place::Local(root) => {
                let path = root.join(rel);
                match std::fs::read(&path) {
                    Ok(b) => Ok(Some(Bytes::from(b))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(Error::io(&path, e)),
                }
            }
            Place::Remote(remote) => {
                let path = self.object(remote, rel)?;
                let got = self.block_on(async {
                    match remote.store.get(&path).await {
                        Ok(r) => r.bytes().await.map(Some),
                        Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(e) => Err(e),
                    }
                });
                got.map_err(|e| self.error(rel, e))
            }
        }
    }

    /// The number of rows in the Parquet file `rel`, from its footer.
    pub fn parquet_rows(&self, rel: &str) -> Result<u64> {
        fn rows<R: ChunkReader + 'static>(source: R) -> parquet::errors::Result<u64> {
            let reader = parquet::file::reader::SerializedFileReader::new(source)?;
            Ok(reader.metadata().file_metadata().num_rows().max(0) as u64)
        }
        let bad = |e: &dyn std::fmt::Display| self.error(rel, format!("cannot read Parquet: {e}"));
        match &self.place {
            Place::Local(root) => {
                let path = root.join(rel);
                let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                rows(file).map_err(|e| bad(&e))
            }
            Place::Remote(remote) => rows(self.remote_file(remote, rel)?).map_err(|e| bad(&e)),
        }
    }

    fn remote_file(&self, remote: &Remote, rel: &str) -> Result<RemoteFile> {
        let path = self.object(remote, rel)?;
        let size = self
            .block_on(remote.store.head(&path))
            .map_err(|e| self.error(rel, e))?
            .size;
        Ok(RemoteFile {
            store: remote.store.clone(),
            path,
            size,
            runtime: self.runtime.handle().clone(),
        })
    }

    /// Reads the Parquet file `rel` batch by batch into `each` (which returns `false` to
    /// stop): all columns, or the top-level columns named in `only` that the file has.
    /// Remote files are read by ranges (the footer, then the column chunks wanted), never
    /// downloaded or held whole.
    pub fn parquet_scan(
        &self,
        rel: &str,
        only: Option<&[String]>,
        each: &mut dyn FnMut(RecordBatch) -> Result<bool>,
    ) -> Result<()> {
        fn scan<R: ChunkReader + 'static>(
            source: R,
            only: Option<&[String]>,
            each: &mut dyn FnMut(RecordBatch) -> Result<bool>,
        ) -> Result<(), ScanError> {
            let builder = ParquetRecordBatchReaderBuilder::try_new(source)?;
            let builder = match only {
                Some(names) => {
                    let roots: Vec<usize> = builder
                        .schema()
                        .fields()
                        .iter()
                        .enumerate()
                        .filter(|(_, f)| names.iter().any(|n| n == f.name()))
                        .map(|(i, _)| i)
                        .collect();
                    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
                    builder.with_projection(mask)
                }
                None => builder,
            };
            for batch in builder.build()? {
                let batch = batch.map_err(|e| ScanError::Read(e.to_string()))?;
                if !each(batch).map_err(ScanError::Caller)? {
                    break;
                }
            }
            Ok(())
        }
        let result = match &self.place {
            Place::Local(root) => {
                let path = root.join(rel);
                let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
                scan(file, only, each)
            }
            Place::Remote(remote) => scan(self.remote_file(remote, rel)?, only, each),
        };
        result.map_err(|e| match e {
            ScanError::Read(e) => self.error(rel, format!("cannot read Parquet: {e}")),
            ScanError::Caller(e) => e,
        })
    }

    /// Whether `rel` exists.
    pub fn exists(&self, rel: &str) -> Result<bool> {
        match &self.place {
            Place::Local(root) => Ok(root.join(rel).exists()),
            Place::Remote(remote) => {
                let path = self.object(remote, rel)?;
                match self.block_on(remote.store.head(&path)) {
                    Ok(_) => Ok(true),
                    Err(object_store::Error::NotFound { .. }) => Ok(false),
                    Err(e) => Err(self.error(rel, e)),
                }
            }
        }
    }

    /// Moves `from` to `to` (a rename locally; a server-side copy and a delete on object
    /// stores, which have no rename).
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        match &self.place {
            Place::Local(root) => {
                let (from, to) = (root.join(from), root.join(to));
                std::fs::rename(&from, &to).map_err(|e| Error::io(&to, e))?;
                if let Some(dir) = to.parent() {
                    sync_dir(dir).map_err(|e| Error::io(dir, e))?;
                }
                Ok(())
            }
            Place::Remote(remote) => {
                let (src, dst) = (self.object(remote, from)?, self.object(remote, to)?);
                self.block_on(remote.store.rename(&src, &dst))
                    .map_err(|e| self.error(to, e))
            }
        }
    }

    /// Removes `rel`; a file already gone is not an error.
    pub fn delete(&self, rel: &str) -> Result<()> {
        match &self.place {
            Place::Local(root) => {
                let path = root.join(rel);
                match std::fs::remove_file(&path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(Error::io(&path, e)),
                }
            }
            Place::Remote(remote) => {
                let path = self.object(remote, rel)?;
                match self.block_on(remote.store.delete(&path)) {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(self.error(rel, e)),
                }
            }
        }
    }

    /// Every file under the directory `rel` (recursively), as paths relative to the
    /// destination, sorted.
    pub fn list(&self, rel: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        match &self.place {
            Place::Local(root) => {
                let mut stack = vec![root.join(rel)];
                while let Some(dir) = stack.pop() {
                    let entries = match std::fs::read_dir(&dir) {
                        Ok(e) => e,
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(Error::io(&dir, e)),
                    };
                    for entry in entries {
                        let entry = entry.map_err(|e| Error::io(&dir, e))?;
                        let path = entry.path();
                        if entry.file_type().map_err(|e| Error::io(&path, e))?.is_dir() {
                            stack.push(path);
                        } else if let Ok(r) = path.strip_prefix(root) {
                            out.push(r.to_string_lossy().into_owned());
                        }
                    }
                }
            }
            Place::Remote(remote) => {
                let dir = self.object(remote, rel)?;
                let base = remote.prefix.as_ref().len();
                let metas: Vec<_> = self
                    .block_on(remote.store.list(Some(&dir)).try_collect::<Vec<_>>())
                    .map_err(|e| self.error(rel, e))?;
                for meta in metas {
                    let key = meta.location.as_ref();
                    let r = if base == 0 {
                        key
                    } else {
                        &key[(base + 1).min(key.len())..]
                    };
                    out.push(r.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// Why a scan stopped: the file, or the caller.
enum ScanError {
    Read(String),
    Caller(Error),
}

impl From<parquet::errors::ParquetError> for ScanError {
    fn from(e: parquet::errors::ParquetError) -> Self {
        ScanError::Read(e.to_string())
    }
}

/// Creates `dir` (under `root`) and the directories above it that are missing, syncing
/// each new one's parent so its name survives a power cut, as the file inside it will.
fn create_dirs_durably(root: &Path, dir: &Path) -> Result<()> {
    let mut missing = Vec::new();
    let mut at = dir;
    while !at.exists() && at.starts_with(root) && at != root {
        missing.push(at.to_path_buf());
        match at.parent() {
            Some(p) => at = p,
            None => break,
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for created in missing.iter().rev() {
        if let Some(parent) = created.parent() {
            sync_dir(parent).map_err(|e| Error::io(parent, e))?;
        }
    }
    Ok(())
}

/// An object read by ranges, for the Parquet reader.
#[derive(Clone)]
struct RemoteFile {
    store: Arc<dyn ObjectStore>,
    path: ObjectPath,
    size: u64,
    runtime: tokio::runtime::Handle,
}

impl Length for RemoteFile {
    fn len(&self) -> u64 {
        self.size
    }
}

/// What a sequential read of a remote file fetches at a time: the Parquet reader reads
/// page headers this way, and a read to the end of the file would fetch all of it.
const READ_AHEAD: u64 = 1024 * 1024;

/// A sequential reader of a remote file from some offset, fetching [`READ_AHEAD`] bytes
/// at a time as it is read.
struct RangeReader {
    file: RemoteFile,
    pos: u64,
    buffered: Bytes,
}

impl std::io::Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.buffered.is_empty() {
            let length = READ_AHEAD.min(self.file.size.saturating_sub(self.pos));
            if length == 0 {
                return Ok(0);
            }
            self.buffered = self
                .file
                .get_bytes(self.pos, length as usize)
                .map_err(std::io::Error::other)?;
            self.pos += length;
        }
        let n = out.len().min(self.buffered.len());
        out[..n].copy_from_slice(&self.buffered[..n]);
        bytes::Buf::advance(&mut self.buffered, n);
        Ok(n)
    }
}

impl ChunkReader for RemoteFile {
    type T = RangeReader;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(RangeReader {
            file: self.clone(),
            pos: start,
            buffered: Bytes::new(),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.runtime
            .block_on(
                self.store
                    .get_range(&self.path, start..start + length as u64),
            )
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    }
}

/// Builds the store for a `scheme://bucket/...` URL: the environment first, then
/// `options`, each key checked.
fn remote_store(
    url: &Url,
    options: &BTreeMap<String, String>,
) -> Result<Arc<dyn ObjectStore>, String> {
    let built: Result<Arc<dyn ObjectStore>, object_store::Error> = match url.scheme() {
        "s3" | "s3a" => keys::<AmazonS3ConfigKey>(options, "S3")?
            .into_iter()
            .fold(
                AmazonS3Builder::from_env().with_url(url.as_str()),
                |b, (k, v)| b.with_config(k, v),
            )
            .build()
            .map(|s| Arc::new(s) as _),
        "gs" => keys::<GoogleConfigKey>(options, "Google Cloud")?
            .into_iter()
            .fold(
                GoogleCloudStorageBuilder::from_env().with_url(url.as_str()),
                |b, (k, v)| b.with_config(k, v),
            )
            .build()
            .map(|s| Arc::new(s) as _),
        "az" | "azure" | "abfs" | "abfss" | "adl" => keys::<AzureConfigKey>(options, "Azure")?
            .into_iter()
            .fold(
                MicrosoftAzureBuilder::from_env().with_url(url.as_str()),
                |b, (k, v)| b.with_config(k, v),
            )
            .build()
            .map(|s| Arc::new(s) as _),
        other => return Err(format!("the URL scheme '{other}://' is not supported")),
    };
    // The builders' messages name settings, never their values.
    built.map_err(|e| e.to_string())
}

/// `options` as one object store's typed keys; an unknown key is an error naming it.
fn keys<K: std::str::FromStr>(
    options: &BTreeMap<String, String>,
    scheme: &str,
) -> Result<Vec<(K, String)>, String> {
    options
        .iter()
        .map(|(k, v)| {
            k.to_ascii_lowercase()
                .parse::<K>()
                .map(|key| (key, v.clone()))
                .map_err(|_| {
                    format!("storage_options: '{k}' is not a setting of {scheme} object storage")
                })
        })
        .collect()
}

/// A file being written: a local file, or an upload.
pub enum FileWriter {
    /// A local file.
    Local {
        /// The open file.
        file: File,
        /// Where it is.
        path: PathBuf,
    },
    /// An upload to an object store.
    Remote(Box<RemoteWriter>),
}

/// An upload in progress; aborted if dropped unfinished.
pub struct RemoteWriter {
    upload: Option<BufWriter>,
    runtime: tokio::runtime::Handle,
    name: String,
    bytes: u64,
}

impl FileWriter {
    /// Completes the file (fsync, or the upload's last request); returns its size.
    pub fn finish(self) -> Result<u64> {
        match self {
            FileWriter::Local { file, path } => {
                file.sync_all().map_err(|e| Error::io(&path, e))?;
                // Delta files keep this name: their directory entry must be durable too.
                if let Some(dir) = path.parent() {
                    sync_dir(dir).map_err(|e| Error::io(dir, e))?;
                }
                let size = file.metadata().map_err(|e| Error::io(&path, e))?.len();
                Ok(size)
            }
            FileWriter::Remote(mut w) => {
                let Some(mut upload) = w.upload.take() else {
                    return Err(Error::destination(format!(
                        "{}: upload already ended",
                        w.name
                    )));
                };
                let result = w.runtime.block_on(upload.shutdown());
                if let Err(e) = result {
                    let _ = w.runtime.block_on(upload.abort());
                    return Err(Error::destination(format!(
                        "{}: upload failed: {e}",
                        w.name
                    )));
                }
                Ok(w.bytes)
            }
        }
    }
}

impl Write for FileWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            FileWriter::Local { file, .. } => file.write(buf),
            FileWriter::Remote(w) => {
                let Some(upload) = w.upload.as_mut() else {
                    return Err(std::io::Error::other("upload already ended"));
                };
                w.runtime.block_on(upload.write_all(buf))?;
                w.bytes += buf.len() as u64;
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            FileWriter::Local { file, .. } => file.flush(),
            // Parts go out as they fill; the last one at `finish`.
            FileWriter::Remote(_) => Ok(()),
        }
    }
}

impl Drop for RemoteWriter {
    fn drop(&mut self) {
        if let Some(mut upload) = self.upload.take() {
            tracing::debug!(file = %self.name, "aborting an unfinished upload");
            let _ = self.runtime.block_on(upload.abort());
        }
    }
}
