//! # singer-core
//!
//! The [Singer](https://hub.meltano.com/singer/spec) protocol, shared by the tap SDK
//! (`singer-tap`) and the target SDK (`singer-target`).
//!
//! A *tap* extracts data from a source and writes SCHEMA, RECORD, STATE and ACTIVATE_VERSION
//! messages as JSON lines on stdout; a *target* reads them on stdin and loads a destination.
//! This crate holds what both sides share, one module per protocol concept, and nothing of
//! either side's machinery: no HTTP client, no Arrow.
//!
//! | module | concept |
//! |---|---|
//! | [`message`] | the messages and their JSON-lines reader and writer |
//! | [`batch`] | BATCH files as taps write them: the file-format interface |
//! | [`catalog`] | the catalog, its metadata, selection rules and pruning |
//! | [`state`] | bookmarks, partitions, resume tokens; atomic state files |
//! | [`schema`] | JSON Schema to column kinds; flattening |
//! | [`location`] | local paths and `file://` URLs; other schemes refused by name |
//! | [`time`] | date-times as real APIs send them, normalised to UTC |
//! | [`cli`] | the shared command line, config loading and `--about` |
//! | [`settings`] | settings JSON Schemas derived from settings structs |
//! | [`stream_map`] | the SDK's `stream_maps`: renamed, filtered, computed streams |
//! | [`log`] | logging to stderr and Singer METRIC lines |
//!
//! ```
//! use singer_core::message::{Message, MessageReader};
//! use singer_core::schema::{Kind, columns_of};
//!
//! let input = br#"{"type":"SCHEMA","stream":"users","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"]}
//! {"type":"RECORD","stream":"users","record":{"id":1}}
//! {"type":"STATE","value":{"bookmarks":{"users":{"replication_key_value":1}}}}
//! "#;
//! let mut records = 0;
//! for item in MessageReader::new(&input[..]) {
//!     match item? {
//!         (_, Message::Schema(s)) => assert_eq!(columns_of(&s.schema)?[0].kind, Kind::Integer),
//!         (_, Message::Record(_)) => records += 1,
//!         _ => {}
//!     }
//! }
//! assert_eq!(records, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod batch;
pub mod catalog;
pub mod cli;
mod error;
pub mod location;
pub mod log;
pub mod message;
pub mod schema;
pub mod settings;
pub mod state;
pub mod stream_map;
pub mod time;

pub use error::{Error, ParseError, Result};

/// Every binary built on the SDKs allocates through mimalloc: records are parsed on one
/// thread and freed on another, which glibc's arenas serialise on a lock. Set here once, so
/// no binary's `main.rs` has to; turn the `mimalloc` feature off to choose another.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
