//! # singer-target
//!
//! The target SDK: a target binary is a [`Sink`] (how to make one commit durable) plus
//! [`main`]. The runtime owns everything the Singer protocol asks of a target, so every
//! destination gets it right the same way: reading and validating messages, decoding
//! records into Arrow batches, deciding when to commit, and releasing each STATE only after
//! the commit that covers it.
//!
//! | module | job |
//! |---|---|
//! | [`runtime`] | the loop: read, batch, commit, acknowledge ([`run`]) |
//! | [`ack`] | the exactly-once policy: which STATE to release, what a restart drops |
//! | `committer` | the sink on its own thread; a pending group of commits made durable when no commit comes for a second |
//! | [`sink`] | the [`Sink`] trait and what a [`Commit`] carries |
//! | [`stream_schema`] | a SCHEMA compiled for loading: columns, keys, validation |
//! | [`fields`] | column kinds to Arrow fields |
//! | [`location`] | local paths and `file://` URLs; other URLs refused by name |
//! | `reader` | stdin cut into jobs of lines with `memchr`; SCHEMAs compiled in order |
//! | `workers` | jobs decoded in parallel: RECORD envelopes read borrowed, records into Arrow |
//! | [`decoder`] | records to Arrow `RecordBatch`es ([`RecordDecoder`]), from JSON text or `Value` |
//! | [`batch`] | BATCH files: read (JSON lines, Parquet as Arrow), and Parquet written for taps |
//! | [`metadata`] | the `_sdc_*` record metadata columns |
//! | [`widen`] | safe type widening on schema change |
//! | [`settings`] | [`TargetSettings`], shared by every target's config |
//! | [`cli`] | [`main`]: the target's command line |
//!
//! ```
//! use singer_core::message::{Message, MessageReader};
//! use singer_target::{RecordDecoder, RowMeta, StreamSchema};
//!
//! let input = br#"{"type":"SCHEMA","stream":"users","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}
//! {"type":"RECORD","stream":"users","record":{"id":1}}
//! {"type":"RECORD","stream":"users","record":{"id":2}}
//! "#;
//! let mut decoder = None;
//! for item in MessageReader::new(&input[..]) {
//!     match item? {
//!         (_, Message::Schema(s)) => {
//!             let schema = StreamSchema::new(&s.stream, &s.schema, s.key_properties)?;
//!             decoder = Some(RecordDecoder::new(&schema, false));
//!         }
//!         (line, Message::Record(r)) => {
//!             if let Some(d) = decoder.as_mut() {
//!                 d.push(&r.record, &RowMeta::default(), line)?;
//!             }
//!         }
//!         _ => {}
//!     }
//! }
//! let batch = decoder.and_then(|mut d| d.finish(chrono::Utc::now()).transpose()).transpose()?;
//! assert_eq!(batch.map(|b| b.num_rows()), Some(2));
//! # Ok::<(), singer_target::Error>(())
//! ```

#![deny(missing_docs)]

pub mod ack;
pub mod batch;
mod buffer;
pub mod cli;
mod committer;
pub mod decoder;
mod error;
pub mod fields;
pub use singer_core::location;
pub mod metadata;
mod reader;
pub mod runtime;
pub mod settings;
pub mod sink;
pub mod stream_schema;
pub mod widen;
mod workers;

pub use cli::{TargetConfig, main};
pub use decoder::{RecordDecoder, RowMeta};
pub use error::{Error, Result};
pub use runtime::{RunSummary, STOP_REQUESTED, install_stop_handler, run};
pub use settings::TargetSettings;
pub use sink::{
    Commit, CommitMarker, LoadMethod, LoadStats, Operation, Sink, StreamChanges, TargetStream,
};
pub use stream_schema::{SchemaOptions, StreamSchema};
