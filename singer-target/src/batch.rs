//! BATCH messages (Meltano SDK): a stream's records in files, listed in a manifest.
//!
//! The runtime loads each record of a batch as if a RECORD had come at the BATCH line: the
//! same validation, flattening, `_sdc_*` columns, ack ledger and commits. Files are JSON
//! lines (plain or gzip) or Parquet, named by `file://` URLs or local paths; other URL
//! schemes are refused with an error naming the file, before any of its rows is loaded.
//! Parquet rows go into the stream's Arrow batches directly where they can be taken exactly
//! (`RecordDecoder::decode_arrow`), else through the record path.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use arrow::json::ArrayWriter;
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use singer_core::Error as CoreError;
use singer_core::message::{BatchCompression, BatchFormat, BatchMessage, Record};

use crate::error::{Error, Result};
use crate::location::local_path;

/// Where one record of a batch came from, for error messages.
pub(crate) struct Origin<'a> {
    /// The manifest entry.
    pub file: &'a str,
    /// The 1-based row in that file.
    pub row: u64,
}

/// Rows of a batch file, handed over one by one or, from Parquet, as Arrow.
pub(crate) enum Rows<'a> {
    /// One record and its size in bytes (for the byte budget).
    Record(Record, usize),
    /// Rows of a Parquet file as read; taken whole (`true`) or, if not, handed over again
    /// record by record.
    Arrow(&'a RecordBatch),
}

/// Reads every row of `batch`'s files in manifest order and hands them to `each`, with
/// where they came from (for an Arrow batch, its first row).
pub(crate) fn for_each_record(
    batch: &BatchMessage,
    line: u64,
    mut each: impl FnMut(Rows<'_>, Origin<'_>) -> Result<bool>,
) -> Result<()> {
    for file in &batch.manifest {
        let fail = |reason: String| -> Error {
            CoreError::Protocol {
                line,
                reason: format!("BATCH for stream '{}': {file}: {reason}", batch.stream),
            }
            .into()
        };
        let path = local_path(file).map_err(|e| {
            fail(format!(
                "{e} in a BATCH manifest (only file:// URLs and local paths)"
            ))
        })?;
        let opened = File::open(&path).map_err(|e| fail(format!("cannot open: {e}")))?;
        match batch.encoding.format {
            BatchFormat::Jsonl => {
                let reader: Box<dyn Read> = match batch.encoding.compression {
                    BatchCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(opened)),
                    BatchCompression::None => Box::new(opened),
                };
                for (i, text) in BufReader::with_capacity(1 << 20, reader)
                    .lines()
                    .enumerate()
                {
                    let row = i as u64 + 1;
                    let text = text.map_err(|e| fail(format!("row {row}: cannot read: {e}")))?;
                    if text.trim().is_empty() {
                        continue;
                    }
                    let record: Record = serde_json::from_str(&text)
                        .map_err(|e| fail(format!("row {row}: not a JSON object record: {e}")))?;
                    each(Rows::Record(record, text.len()), Origin { file, row })?;
                }
            }
            BatchFormat::Parquet => {
                let reader = ParquetRecordBatchReaderBuilder::try_new(opened)
                    .and_then(|b| b.build())
                    .map_err(|e| fail(format!("not a readable Parquet file: {e}")))?;
                let mut row = 0;
                for rows in read_ahead(reader) {
                    let rows = rows.map_err(|e| fail(format!("after row {row}: {e}")))?;
                    if each(Rows::Arrow(&rows), Origin { file, row: row + 1 })? {
                        row += rows.num_rows() as u64;
                        continue;
                    }
                    let (records, bytes) =
                        to_records(&rows).map_err(|e| fail(format!("after row {row}: {e}")))?;
                    let per_record = bytes / records.len().max(1);
                    for record in records {
                        row += 1;
                        each(Rows::Record(record, per_record), Origin { file, row })?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The reader's batches, decoded on a thread of their own a few batches ahead, so that
/// decompressing the file overlaps with loading what it already gave.
fn read_ahead(
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
) -> impl Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    let spawned = std::thread::Builder::new()
        .name("singer-batch-file".into())
        .spawn(move || {
            for rows in reader {
                if tx.send(rows).is_err() {
                    return;
                }
            }
        });
    // Without the thread the file's rows would be lost: say so, as a read error.
    let failed = spawned.err().map(|e| {
        Err(arrow::error::ArrowError::ExternalError(
            format!("cannot start the batch file reader: {e}").into(),
        ))
    });
    failed.into_iter().chain(rx)
}

/// Parquet rows as JSON records, through arrow's JSON writer (dates and date-times in
/// RFC 3339, which the record path reads back), and their size as JSON.
fn to_records(
    rows: &arrow::record_batch::RecordBatch,
) -> std::result::Result<(Vec<Record>, usize), String> {
    let mut writer = ArrayWriter::new(Vec::new());
    writer.write(rows).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    let text = writer.into_inner();
    if text.is_empty() {
        return Ok((Vec::new(), 0));
    }
    let records: Vec<Record> = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    Ok((records, text.len()))
}
