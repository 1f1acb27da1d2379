//! The protocol's error type.
//!
//! Every variant carries the context a user needs to find the problem without a debugger:
//! the input line, the stream, the file. The tap and target SDKs wrap it in their own error
//! types; binaries add context with `anyhow` at the edge; the library never prints.

use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading, writing and checking Singer messages, catalogs,
/// state and settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line of Singer input that is not a valid message.
    #[error(transparent)]
    Parse(#[from] ParseError),

    /// A SCHEMA message whose JSON Schema cannot be used.
    #[error("stream '{stream}': invalid schema: {reason}")]
    Schema {
        /// The stream the SCHEMA message named.
        stream: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A message that is well-formed but arrives where the protocol does not allow it.
    #[error("line {line}: {reason}")]
    Protocol {
        /// The input line.
        line: u64,
        /// What is wrong.
        reason: String,
    },

    /// A catalog or `--properties` file that cannot be used.
    #[error("catalog: {0}")]
    Catalog(String),

    /// A state file or STATE value that cannot be used.
    #[error("state: {0}")]
    State(String),

    /// Settings that do not match the plugin's settings schema. Every problem is listed;
    /// secret values never appear.
    #[error("invalid configuration:\n{}", .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Config {
        /// One line per problem.
        problems: Vec<String>,
    },

    /// A file that could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An I/O error on a stream without a path (stdin, stdout).
    #[error("{context}: {source}")]
    Stream {
        /// What was being read or written.
        context: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// Anything else, said in words.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// An I/O error on a file.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// The input line this error points at, if any.
    pub fn line(&self) -> Option<u64> {
        match self {
            Error::Parse(e) => Some(e.line),
            Error::Protocol { line, .. } if *line > 0 => Some(*line),
            _ => None,
        }
    }
}

/// A line of input that is not a valid Singer message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}{}{}: {reason}", .message_type.as_ref().map(|t| format!(" ({t})")).unwrap_or_default(), .stream.as_ref().map(|s| format!(", stream '{s}'")).unwrap_or_default())]
pub struct ParseError {
    /// 1-based line number in the input.
    pub line: u64,
    /// The message's `type`, when it could be read.
    pub message_type: Option<String>,
    /// The message's `stream`, when it could be read.
    pub stream: Option<String>,
    /// What is wrong.
    pub reason: String,
}
