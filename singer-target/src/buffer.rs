//! One stream's uncommitted changes, and where the last STATE fell among them.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use chrono::Utc;

use singer_core::message::Record;

use crate::decoder::{RecordDecoder, RowMeta};
use crate::error::Result;
use crate::sink::{Operation, StreamChanges, TargetStream};

/// The changes of one stream not yet committed: finished operations, then rows still in the
/// decoder. The mark records how far the last STATE covers: `ops` operations of the log,
/// then `rows` rows of the next `Rows` operation (or of the decoder).
pub(crate) struct StreamBuffer {
    /// The schema in effect at the start of `log`.
    first: Arc<TargetStream>,
    /// The latest schema.
    current: Arc<TargetStream>,
    decoder: RecordDecoder,
    log: Vec<Operation>,
    mark_ops: usize,
    mark_rows: usize,
    with_metadata: bool,
}

impl StreamBuffer {
    /// A buffer for a stream first seen now; its first commit creates the destination.
    pub fn new(stream: Arc<TargetStream>, with_metadata: bool) -> Self {
        StreamBuffer {
            decoder: RecordDecoder::new(&stream.schema, with_metadata),
            log: vec![Operation::Schema(stream.clone())],
            first: stream.clone(),
            current: stream,
            mark_ops: 0,
            mark_rows: 0,
            with_metadata,
        }
    }

    /// The latest schema of the stream.
    pub fn stream(&self) -> &TargetStream {
        &self.current
    }

    /// Checks, flattens and buffers one parsed record (a row of a BATCH file) under the
    /// latest schema; returns its canonical hash.
    pub fn push_record(&mut self, record: Record, meta: &RowMeta, line: u64) -> Result<u64> {
        self.decoder
            .push_record(&self.current.schema, record, meta, line)
    }

    /// Rows of a Parquet BATCH file as a batch of the latest schema; `None` when they must
    /// take the record path ([`RecordDecoder::decode_arrow`]).
    pub fn decode_arrow(
        &self,
        rows: &RecordBatch,
        received_at_micros: i64,
    ) -> Result<Option<RecordBatch>> {
        self.decoder
            .decode_arrow(rows, received_at_micros, Utc::now())
    }

    /// Buffers rows a worker decoded (under the latest schema), after any rows before them.
    pub fn push_batch(&mut self, batch: RecordBatch) -> Result<()> {
        self.finish_decoder()?;
        self.log.push(Operation::Rows(batch));
        Ok(())
    }

    fn finish_decoder(&mut self) -> Result<()> {
        if let Some(batch) = self.decoder.finish(Utc::now())? {
            self.log.push(Operation::Rows(batch));
        }
        Ok(())
    }

    /// A new SCHEMA for the stream: rows so far keep the old one.
    pub fn change_schema(&mut self, stream: Arc<TargetStream>, with_metadata: bool) -> Result<()> {
        self.finish_decoder()?;
        self.decoder = RecordDecoder::new(&stream.schema, with_metadata);
        self.with_metadata = with_metadata;
        self.log.push(Operation::Schema(stream.clone()));
        self.current = stream;
        Ok(())
    }

    /// ACTIVATE_VERSION, in order with the rows.
    pub fn activate_version(&mut self, version: i64) -> Result<()> {
        self.finish_decoder()?;
        self.log.push(Operation::ActivateVersion(version));
        Ok(())
    }

    /// A STATE was read: everything buffered so far is covered by it.
    pub fn mark_state(&mut self) {
        self.mark_ops = self.log.len();
        self.mark_rows = self.decoder.len();
    }

    /// Takes the changes the last STATE covers; the rest stays buffered. An error in
    /// finishing the covered rows is returned, never dropped: the STATE that covers them
    /// must not be released.
    pub fn take_covered(&mut self) -> Result<Option<StreamChanges>> {
        let (ops, rows) = (self.mark_ops, self.mark_rows);
        self.mark_ops = 0;
        self.mark_rows = 0;
        if ops == 0 && rows == 0 {
            return Ok(None);
        }
        if rows > 0 && ops == self.log.len() {
            self.finish_decoder()?;
        }
        let mut covered: Vec<Operation> = self.log.drain(..ops).collect();
        if rows > 0
            && let Some(Operation::Rows(batch)) = self.log.first_mut()
        {
            let take = rows.min(batch.num_rows());
            covered.push(Operation::Rows(batch.slice(0, take)));
            if take == batch.num_rows() {
                self.log.remove(0);
            } else {
                *batch = batch.slice(take, batch.num_rows() - take);
            }
        }
        Ok(Some(self.changes(covered)))
    }

    /// Takes every buffered change; an error in finishing the rows is returned.
    pub fn take_all(&mut self) -> Result<Option<StreamChanges>> {
        self.mark_ops = 0;
        self.mark_rows = 0;
        self.finish_decoder()?;
        if self.log.is_empty() {
            return Ok(None);
        }
        let covered = std::mem::take(&mut self.log);
        Ok(Some(self.changes(covered)))
    }

    fn changes(&mut self, operations: Vec<Operation>) -> StreamChanges {
        let stream = self.first.clone();
        if let Some(last_schema) = operations.iter().rev().find_map(|op| match op {
            Operation::Schema(s) => Some(s.clone()),
            _ => None,
        }) {
            self.first = last_schema;
        }
        StreamChanges {
            stream,
            operations,
            first_in_run: false,
        }
    }

    /// Drops buffered rows and version switches (input that replays committed data);
    /// schema changes stay. Returns the number of rows dropped.
    pub fn discard_rows(&mut self) -> usize {
        let mut dropped = self.decoder.len();
        self.decoder = RecordDecoder::new(&self.current.schema, self.with_metadata);
        self.log.retain(|op| match op {
            Operation::Rows(b) => {
                dropped += b.num_rows();
                false
            }
            Operation::ActivateVersion(_) => false,
            Operation::Schema(_) => true,
        });
        self.mark_ops = 0;
        self.mark_rows = 0;
        dropped
    }
}
