//! # singer-core
//!
//! The [Singer](https://hub.meltano.com/singer/spec) protocol and an SDK for writing fast,
//! correct taps and targets in Rust.
//!
//! A *tap* extracts data from a source and writes SCHEMA, RECORD, STATE and ACTIVATE_VERSION
//! messages as JSON lines on stdout; a *target* reads them on stdin and loads a destination.
//! This crate holds everything the two sides share, one module per protocol concept:
//!
//! | module | concept |
//! |---|---|
//! | [`message`] | the messages and their JSON-lines reader and writer |
//! | [`catalog`] | the catalog, its metadata, selection rules and pruning |
//! | [`state`] | bookmarks, partitions, resume tokens; atomic state files |
//! | [`schema`] | JSON Schema to Arrow, validation, flattening, type widening |
//! | [`batch`] | records to Arrow `RecordBatch`es |
//! | [`time`] | date-times as real APIs send them, normalised to UTC |
//! | [`tap`] | the tap runtime: streams, REST, bookmarks, checkpoints, sub-streams |
//! | [`target`] | the target runtime: batching, commits, state after commit, exactly once |
//! | [`cli`] | the shared command line, config loading and `--about` |
//! | [`log`] | logging to stderr and Singer METRIC lines |
//!
//! A tap is a list of [`tap::Stream`]s (most of them [`tap::RestStream`]s) run by
//! [`tap::Tap`]; see `taps/tap-jira`. A target is a [`target::Sink`] plus [`target::run`];
//! see `targets/target-duckdb`. Both are a few small files.
//!
//! ```
//! use singer_core::message::{Message, MessageReader};
//! use singer_core::schema::StreamSchema;
//! use singer_core::batch::{RecordDecoder, RowMeta};
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
//!             decoder.as_mut().unwrap().push(&r.record, &RowMeta::default(), line)?;
//!         }
//!         _ => {}
//!     }
//! }
//! let batch = decoder.unwrap().finish(chrono::Utc::now())?.unwrap();
//! assert_eq!(batch.num_rows(), 2);
//! # Ok::<(), singer_core::Error>(())
//! ```

#![deny(missing_docs)]

pub mod batch;
pub mod catalog;
pub mod cli;
mod error;
pub mod log;
pub mod message;
pub mod schema;
pub mod state;
pub mod tap;
pub mod target;
pub mod time;

pub use error::{Error, ParseError, Result};
