//! Where a tap's messages go: through the stream maps, records into BATCH files when
//! `batch_config` asks for it, then JSON lines on stdout.
//!
//! Order is what keeps a target's state honest: every batch file holding records written
//! before a STATE (or a SCHEMA or ACTIVATE_VERSION) is completed and announced before it.

use std::io::Write;

use singer_core::Error as CoreError;
use singer_core::message::{Message, MessageWriter};
use singer_core::stream_map::StreamMaps;

use crate::batch::Batcher;
use crate::error::{Error, Result};

/// The tap's message output.
pub(crate) struct Output {
    writer: MessageWriter<Box<dyn Write + Send>>,
    maps: Option<StreamMaps>,
    batches: Option<Batcher>,
}

impl Output {
    pub fn new(
        out: Box<dyn Write + Send>,
        maps: Option<StreamMaps>,
        batches: Option<Batcher>,
    ) -> Output {
        Output {
            writer: MessageWriter::new(out),
            maps,
            batches,
        }
    }

    /// Writes one message, mapped; records may go to a batch file instead.
    pub fn write(&mut self, message: Message) -> Result<()> {
        let Some(maps) = self.maps.as_mut() else {
            return self.emit(message);
        };
        for mapped in maps.message(message).map_err(Error::Map)? {
            self.emit(mapped)?;
        }
        Ok(())
    }

    fn emit(&mut self, message: Message) -> Result<()> {
        if let Some(batches) = self.batches.as_mut() {
            match &message {
                // Versioned (full-table) records stay RECORDs: a BATCH message has no
                // `version`, and without it ACTIVATE_VERSION would retire them.
                Message::Record(r) if r.version.is_none() => {
                    if let Some(batch) = batches.push(&r.stream, &r.record)? {
                        self.writer
                            .write(&Message::Batch(batch))
                            .map_err(broken_pipe)?;
                    }
                    return Ok(());
                }
                Message::Record(_) => {}
                other => {
                    for batch in batches.finish_all()? {
                        self.writer
                            .write(&Message::Batch(batch))
                            .map_err(broken_pipe)?;
                    }
                    if let Message::Schema(schema) = other {
                        batches.schema(schema);
                    }
                }
            }
        }
        self.writer.write(&message).map_err(broken_pipe)
    }

    /// Completes open batch files and flushes stdout.
    pub fn flush(&mut self) -> Result<()> {
        if let Some(batches) = self.batches.as_mut() {
            for batch in batches.finish_all()? {
                self.writer
                    .write(&Message::Batch(batch))
                    .map_err(broken_pipe)?;
            }
        }
        self.writer.flush().map_err(broken_pipe)
    }
}

/// Output errors, with a broken pipe said in words: the target stopped reading.
pub(crate) fn broken_pipe(e: CoreError) -> Error {
    match e {
        CoreError::Stream { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe => {
            Error::Core(CoreError::Stream {
                context: "stdout was closed (the target stopped reading)",
                source,
            })
        }
        other => Error::Core(other),
    }
}
