//! BATCH files as a tap writes them: the format-neutral interface between the tap SDK, which
//! decides what goes in which file and when to announce it, and a file format (JSON lines
//! in the tap SDK, Parquet in the target SDK, which has the Arrow machinery).

use std::fs::File;

use crate::message::{BatchCompression, Record, SchemaMessage};

/// The error of a batch file format, in its own words.
pub type BatchFileError = Box<dyn std::error::Error + Send + Sync>;

/// A batch file format a tap can write, such as Parquet.
pub trait BatchFileFormat: Send + Sync {
    /// The file name extension for `compression` (`parquet`).
    fn extension(&self, compression: BatchCompression) -> &'static str;
    /// A writer of one file of records of the stream `schema` announces (as mapped).
    fn create(
        &self,
        file: File,
        schema: &SchemaMessage,
        compression: BatchCompression,
    ) -> Result<Box<dyn BatchFileWriter>, BatchFileError>;
}

/// One batch file being written.
pub trait BatchFileWriter: Send {
    /// Appends one record.
    fn append(&mut self, record: &Record) -> Result<(), BatchFileError>;
    /// Writes what is buffered and closes the file.
    fn finish(self: Box<Self>) -> Result<(), BatchFileError>;
}
