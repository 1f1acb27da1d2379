//! The target SDK's error type.

use std::path::PathBuf;

/// A `Result` with the target SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a target. Every variant names what a user needs to find the
/// problem: the input line, the stream, the field, the destination's own words.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A malformed line, a message out of order, an unusable schema, settings, or I/O.
    #[error(transparent)]
    Core(#[from] singer_core::Error),

    /// A RECORD that does not fit its stream's schema, or lacks a key property.
    #[error("stream '{stream}', line {line}{}: {reason}", field_suffix(.field))]
    Record {
        /// The stream of the record.
        stream: String,
        /// The input line of the record (0 when it did not come from a line).
        line: u64,
        /// The offending property, as a dotted path, when known.
        field: Option<String>,
        /// What is wrong.
        reason: String,
    },

    /// Stream maps that cannot be used (found before any data is read).
    #[error(transparent)]
    Map(#[from] singer_core::stream_map::MapError),

    /// An Arrow error while building batches.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),

    /// A failure in the destination, with the stream it concerned.
    #[error("stream '{stream}': {source}")]
    Sink {
        /// The stream being loaded.
        stream: String,
        /// The destination's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A destination failure that concerns no one stream (a commit, opening the database).
    #[error("{0}")]
    Destination(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// SIGTERM or SIGINT arrived before the end of input; what the last STATE covered was
    /// committed and acknowledged.
    #[error("stopped by signal before the end of input")]
    Stopped,
}

fn field_suffix(field: &Option<String>) -> String {
    match field {
        Some(f) if !f.is_empty() => format!(", field '{f}'"),
        _ => String::new(),
    }
}

impl Error {
    /// A record error.
    pub fn record(
        stream: impl Into<String>,
        line: u64,
        field: Option<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Record {
            stream: stream.into(),
            line,
            field,
            reason: reason.into(),
        }
    }

    /// A destination error concerning one stream.
    pub fn sink(
        stream: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Sink {
            stream: stream.into(),
            source: source.into(),
        }
    }

    /// A destination error concerning no stream in particular.
    pub fn destination(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Destination(source.into())
    }

    /// An I/O error on a file.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Core(singer_core::Error::io(path, source))
    }

    /// Settings that cannot be used, one line per problem.
    pub fn config(problems: Vec<String>) -> Self {
        Error::Core(singer_core::Error::Config { problems })
    }

    /// The input line this error points at, if any.
    pub fn line(&self) -> Option<u64> {
        match self {
            Error::Core(e) => e.line(),
            Error::Record { line, .. } if *line > 0 => Some(*line),
            _ => None,
        }
    }
}
