//! BATCH messages (Meltano SDK): a stream's records in files, listed in a manifest.
//!
//! The runtime loads each record of a batch as if a RECORD had come at the BATCH line: the
//! same validation, flattening, `_sdc_*` columns, ack ledger and commits. Files are JSON
//! lines (plain or gzip) or Parquet, named by `file://` URLs or local paths; other URL
//! schemes are refused with an error naming the file, before any of its rows is loaded.
//! Parquet rows go into the stream's Arrow batches directly where they can be taken exactly
//! (`RecordDecoder::decode_arrow`), else through the record path; either way a Parquet row
//! counts in the ack ledger by the hash of its file row.
//!
//! Taps write Parquet batch files through [`ParquetBatchFiles`] (the tap SDK writes JSON
//! lines itself, and has no Arrow): records are decoded as a target decodes them.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, StructArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use arrow::json::ArrayWriter;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, GzipLevel};
use parquet::file::properties::WriterProperties;
use singer_core::Error as CoreError;
use singer_core::batch::{BatchFileError, BatchFileFormat, BatchFileWriter};
use singer_core::message::{BatchCompression, BatchFormat, BatchMessage, Record, SchemaMessage};
use singer_core::schema::Kind;

use crate::decoder::{RecordDecoder, RowMeta};
use crate::error::{Error, Result};
use crate::fields::{JSON_METADATA_KEY, is_json_field};
use crate::location::local_path;
use crate::stream_schema::StreamSchema;

/// Where one record of a batch came from, for error messages.
pub(crate) struct Origin<'a> {
    /// The manifest entry.
    pub file: &'a str,
    /// The 1-based row in that file.
    pub row: u64,
}

/// Rows of a batch file, handed over one by one or, from Parquet, as Arrow.
pub(crate) enum Rows<'a> {
    /// One record, its size in bytes (for the byte budget) and, from Parquet, its hash for
    /// the ack ledger.
    Record(Record, usize, Option<u64>),
    /// Rows of a Parquet file as read, with each row's hash for the ack ledger (when Arrow
    /// can hash them); taken whole (`true`) or, if not, handed over again record by record.
    Arrow(&'a RecordBatch, Option<&'a [u64]>),
}

/// Each row's hash, from Arrow's row format of the file's own columns and the stream name:
/// the same file gives the same hashes whichever path loads its rows, so a replayed BATCH
/// is recognised by the ack ledger either way.
fn file_row_hashes(stream: &str, rows: &RecordBatch) -> Option<Vec<u64>> {
    use arrow::row::{RowConverter, SortField};
    let fields = rows
        .columns()
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields).ok()?;
    let converted = converter.convert_columns(rows.columns()).ok()?;
    let seed = xxhash_rust::xxh3::xxh3_64(stream.as_bytes());
    let hashes: Vec<u64> = converted
        .iter()
        .map(|row| xxhash_rust::xxh3::xxh3_64_with_seed(row.as_ref(), seed))
        .collect();
    // A file without columns has rows Arrow cannot tell apart: the record path hashes them.
    (hashes.len() == rows.num_rows()).then_some(hashes)
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
                    each(Rows::Record(record, text.len(), None), Origin { file, row })?;
                }
            }
            BatchFormat::Parquet => {
                let reader = ParquetRecordBatchReaderBuilder::try_new(opened)
                    .and_then(|b| b.build())
                    .map_err(|e| fail(format!("not a readable Parquet file: {e}")))?;
                let mut row = 0;
                for rows in read_ahead(reader) {
                    let rows = rows.map_err(|e| fail(format!("after row {row}: {e}")))?;
                    let hashes = file_row_hashes(&batch.stream, &rows);
                    let origin = Origin { file, row: row + 1 };
                    if each(Rows::Arrow(&rows, hashes.as_deref()), origin)? {
                        row += rows.num_rows() as u64;
                        continue;
                    }
                    let (records, bytes) =
                        to_records(&rows).map_err(|e| fail(format!("after row {row}: {e}")))?;
                    let per_record = bytes / records.len().max(1);
                    for (i, record) in records.into_iter().enumerate() {
                        row += 1;
                        let hash = hashes.as_ref().and_then(|h| h.get(i).copied());
                        each(Rows::Record(record, per_record, hash), Origin { file, row })?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// The reader's batches, decoded on a thread of their own a few batches ahead, so that
/// decompressing the file overlaps with loading what it already gave. The thread ends with
/// a marker: a thread that dies (a panic in the Parquet decoder) is an error, not the end
/// of the file.
fn read_ahead(
    reader: parquet::arrow::arrow_reader::ParquetRecordBatchReader,
) -> impl Iterator<Item = std::result::Result<RecordBatch, arrow::error::ArrowError>> {
    let (tx, rx) = std::sync::mpsc::sync_channel(2);
    let spawned = std::thread::Builder::new()
        .name("singer-batch-file".into())
        .spawn(move || {
            for rows in reader {
                if tx.send(Some(rows)).is_err() {
                    return;
                }
            }
            let _ = tx.send(None);
        });
    let stopped = |what: String| Err(arrow::error::ArrowError::ExternalError(what.into()));
    let failed = spawned
        .err()
        .map(|e| stopped(format!("cannot start the batch file reader: {e}")));
    let mut ended = false;
    let read = std::iter::from_fn(move || {
        if ended {
            return None;
        }
        match rx.recv() {
            Ok(Some(rows)) => Some(rows),
            Ok(None) => {
                ended = true;
                None
            }
            Err(_) => {
                ended = true;
                Some(stopped(
                    "the batch file reader stopped before the end of the file".into(),
                ))
            }
        }
    });
    failed.into_iter().chain(read)
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
    let mut records: Vec<Record> = serde_json::from_slice(&text).map_err(|e| e.to_string())?;
    let schema = rows.schema();
    if schema.fields().iter().any(|f| holds_json_text(f)) {
        for record in &mut records {
            for field in schema.fields() {
                if let Some(value) = record.get_mut(field.name()) {
                    unwrap_json_text(value, field);
                }
            }
        }
    }
    Ok((records, text.len()))
}

/// Whether a field is, or holds, JSON text (marked as this SDK marks it).
fn holds_json_text(field: &Field) -> bool {
    is_json_field(field)
        || match field.data_type() {
            DataType::Struct(children) => children.iter().any(|c| holds_json_text(c)),
            DataType::List(item) => holds_json_text(item),
            _ => false,
        }
}

/// JSON text written for a JSON column becomes the value it holds again, as it was in the
/// record the file was written from.
fn unwrap_json_text(value: &mut serde_json::Value, field: &Field) {
    use serde_json::Value;
    if is_json_field(field) {
        if let Value::String(text) = value
            && let Ok(parsed) = serde_json::from_str(text)
        {
            *value = parsed;
        }
        return;
    }
    match (value, field.data_type()) {
        (Value::Object(members), DataType::Struct(children)) => {
            for child in children {
                if let Some(v) = members.get_mut(child.name()) {
                    unwrap_json_text(v, child);
                }
            }
        }
        (Value::Array(items), DataType::List(item)) => {
            items.iter_mut().for_each(|v| unwrap_json_text(v, item));
        }
        _ => {}
    }
}

/// Parquet batch files for taps (`batch_config` with `format: parquet`): records are decoded
/// into Arrow as a target decodes them (UTC timestamps, structs, lists, JSON columns as JSON
/// text marked as such, which both targets read back as the values they were), and written
/// gzip-compressed inside when `compression` is `gzip`, else uncompressed.
pub struct ParquetBatchFiles;

/// Rows a Parquet batch file buffers before writing them.
const PARQUET_ROWS_PER_WRITE: usize = 8192;

impl BatchFileFormat for ParquetBatchFiles {
    fn extension(&self, _: BatchCompression) -> &'static str {
        "parquet"
    }

    fn create(
        &self,
        file: File,
        schema: &SchemaMessage,
        compression: BatchCompression,
    ) -> std::result::Result<Box<dyn BatchFileWriter>, BatchFileError> {
        let stream = StreamSchema::new(
            &schema.stream,
            &schema.schema,
            schema.key_properties.clone(),
        )?;
        let decoder = RecordDecoder::new(&stream, false);
        let fields: Vec<Field> = decoder
            .schema()
            .fields()
            .iter()
            .zip(stream.columns())
            .map(|(field, column)| marked(field, &column.kind))
            .collect();
        let file_schema = Arc::new(Schema::new(fields));
        let codec = match compression {
            BatchCompression::Gzip => Compression::GZIP(GzipLevel::default()),
            BatchCompression::None => Compression::UNCOMPRESSED,
        };
        let properties = WriterProperties::builder().set_compression(codec).build();
        let writer = ArrowWriter::try_new(file, file_schema.clone(), Some(properties))?;
        Ok(Box::new(ParquetBatchFile {
            stream,
            decoder,
            file_schema,
            writer,
            rows: 0,
        }))
    }
}

struct ParquetBatchFile {
    stream: StreamSchema,
    decoder: RecordDecoder,
    /// The decoder's schema with JSON list items marked as JSON text too.
    file_schema: Arc<Schema>,
    writer: ArrowWriter<File>,
    rows: u64,
}

impl ParquetBatchFile {
    fn write_buffered(&mut self) -> std::result::Result<(), BatchFileError> {
        if let Some(batch) = self.decoder.finish(chrono::Utc::now())? {
            let columns = batch
                .columns()
                .iter()
                .zip(self.file_schema.fields())
                .map(|(column, field)| remarked(column, field))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            self.writer
                .write(&RecordBatch::try_new(self.file_schema.clone(), columns)?)?;
        }
        Ok(())
    }
}

/// A column's field in a Parquet batch file: the decoder's, with the items of lists of JSON
/// values marked as JSON text as JSON columns are, so that readers know to parse them.
fn marked(field: &Field, kind: &Kind) -> Field {
    let data_type = match (field.data_type(), kind) {
        (DataType::List(item), Kind::Array(item_kind)) => {
            let mut item_field = marked(item, item_kind);
            if matches!(item_kind.as_ref(), Kind::Json) {
                item_field = item_field.with_metadata(HashMap::from([(
                    JSON_METADATA_KEY.to_string(),
                    "true".to_string(),
                )]));
            }
            DataType::List(Arc::new(item_field))
        }
        (DataType::Struct(children), Kind::Object(columns)) => DataType::Struct(
            children
                .iter()
                .zip(columns)
                .map(|(child, column)| Arc::new(marked(child, &column.kind)))
                .collect(),
        ),
        (other, _) => other.clone(),
    };
    field.clone().with_data_type(data_type)
}

/// `array` under `field`'s (marked) nested fields: the same buffers, new field metadata.
fn remarked(array: &ArrayRef, field: &Field) -> std::result::Result<ArrayRef, ArrowError> {
    Ok(match field.data_type() {
        DataType::List(item) => {
            let list = array.as_list::<i32>();
            let values = remarked(list.values(), item)?;
            Arc::new(ListArray::try_new(
                item.clone(),
                list.offsets().clone(),
                values,
                list.nulls().cloned(),
            )?)
        }
        DataType::Struct(children) => {
            let parts = array.as_struct();
            let columns = parts
                .columns()
                .iter()
                .zip(children)
                .map(|(column, child)| remarked(column, child))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            Arc::new(StructArray::try_new(
                children.clone(),
                columns,
                parts.nulls().cloned(),
            )?)
        }
        _ => array.clone(),
    })
}

impl BatchFileWriter for ParquetBatchFile {
    fn append(&mut self, record: &Record) -> std::result::Result<(), BatchFileError> {
        self.rows += 1;
        self.decoder
            .push_record(&self.stream, record.clone(), &RowMeta::default(), self.rows)?;
        if self.decoder.len() >= PARQUET_ROWS_PER_WRITE {
            self.write_buffered()?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> std::result::Result<(), BatchFileError> {
        self.write_buffered()?;
        // Durable before the tap renames and announces it.
        let file = self.writer.into_inner()?;
        file.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn schema() -> SchemaMessage {
        SchemaMessage {
            stream: "issues".into(),
            schema: json!({"type": "object", "properties": {
                "id": {"type": "integer"},
                "key": {"type": ["string", "null"]},
                "updated": {"type": ["string", "null"], "format": "date-time"},
                "fields": {"type": ["object", "null"], "properties": {
                    "labels": {"type": ["array", "null"], "items": {"type": "string"}},
                    "custom": {}
                }},
                "extra": {"type": ["object", "null"]},
                "anything": {"type": ["array", "null"], "items": {}}
            }}),
            key_properties: vec!["id".into()],
            bookmark_properties: None,
        }
    }

    fn records() -> Vec<Record> {
        (1..=20)
            .map(|i| {
                json!({
                    "id": i,
                    "key": format!("A-{i}"),
                    "updated": format!("2024-05-{:02}T08:30:00Z", i % 28 + 1),
                    "fields": {"labels": ["x", format!("l{i}")], "custom": {"n": i, "deep": [1, {"a": null}]}},
                    "extra": if i % 2 == 0 { json!({"any": "thing", "n": i}) } else { Value::Null },
                    "anything": [{"a": i}, "text", 2.5, null, [1]],
                })
                .as_object()
                .cloned()
                .expect("object")
            })
            .collect()
    }

    /// Parquet batch files a tap writes read back, through either path, as the records they
    /// were written from: JSON-text columns become their values again.
    #[test]
    fn parquet_batch_files_round_trip_through_both_paths() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("issues-1.parquet");
        let file = File::create(&path).expect("create");
        let mut writer = ParquetBatchFiles
            .create(file, &schema(), BatchCompression::Gzip)
            .expect("writer");
        for r in records() {
            writer.append(&r).expect("append");
        }
        writer.finish().expect("finish");

        let message = BatchMessage {
            stream: "issues".into(),
            encoding: singer_core::message::BatchEncoding {
                format: BatchFormat::Parquet,
                compression: BatchCompression::Gzip,
            },
            manifest: vec![path.display().to_string()],
        };
        let stream =
            StreamSchema::new("issues", &schema().schema, vec!["id".into()]).expect("schema");
        let mut reference = RecordDecoder::new(&stream, false);
        for (i, r) in records().into_iter().enumerate() {
            reference
                .push_record(&stream, r, &RowMeta::default(), i as u64)
                .expect("push");
        }
        let want = reference
            .finish(chrono::Utc::now())
            .expect("finish")
            .expect("rows");

        // As Arrow.
        let decoder = RecordDecoder::new(&stream, false);
        let mut arrow_rows = 0;
        for_each_record(&message, 1, |rows, _| match rows {
            Rows::Arrow(rows, _) => {
                let batch = decoder
                    .decode_arrow(rows, 0, chrono::Utc::now())?
                    .expect("taken as Arrow");
                assert_eq!(batch, want);
                arrow_rows += batch.num_rows();
                Ok(true)
            }
            Rows::Record(..) => panic!("the Arrow path takes these rows"),
        })
        .expect("read");
        assert_eq!(arrow_rows, 20);

        // As records (the path mapped streams take).
        let mut back = Vec::new();
        for_each_record(&message, 1, |rows, _| match rows {
            Rows::Arrow(..) => Ok(false),
            Rows::Record(record, ..) => {
                back.push(record);
                Ok(true)
            }
        })
        .expect("read");
        let mut again = RecordDecoder::new(&stream, false);
        for (i, r) in back.iter().enumerate() {
            again
                .push_record(&stream, r.clone(), &RowMeta::default(), i as u64)
                .expect("push");
        }
        assert_eq!(
            again
                .finish(chrono::Utc::now())
                .expect("finish")
                .expect("rows"),
            want
        );
        assert_eq!(back[1]["extra"], json!({"any": "thing", "n": 2}));
        assert_eq!(
            back[0]["anything"],
            json!([{"a": 1}, "text", 2.5, null, [1]])
        );
        assert_eq!(
            back[0]["fields"]["custom"],
            json!({"n": 1, "deep": [1, {"a": null}]})
        );
    }
}
