//! The tap SDK's error type.

/// A `Result` with the tap SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can stop a tap, or one of its streams.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A protocol, settings, catalog, state or I/O error.
    #[error(transparent)]
    Core(#[from] singer_core::Error),

    /// An HTTP request that failed for good (after retries, or with a non-retriable status).
    /// The URL never contains credentials.
    #[error("{method} {url}: {reason}")]
    Http {
        /// The request method.
        method: String,
        /// The URL without credentials.
        url: String,
        /// The HTTP status, when a response arrived.
        status: Option<u16>,
        /// What went wrong.
        reason: String,
    },

    /// A stream map that cannot be used, or that failed on a record.
    #[error(transparent)]
    Map(singer_core::stream_map::MapError),

    /// A stream that cannot be synced as declared: a verify-mode violation, a path the
    /// context does not fill, a child of an unknown parent.
    #[error("{0}")]
    Sync(String),
}

impl Error {
    /// Settings that cannot be used, one line per problem.
    pub fn config(problems: Vec<String>) -> Self {
        Error::Core(singer_core::Error::Config { problems })
    }

    /// Whether this error ends the whole run rather than one stream: stdout is gone, a batch
    /// file cannot be written, a stream map failed (as the SDK stops), or the credentials
    /// are refused, so no other stream can succeed either.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Error::Core(singer_core::Error::Stream { .. })
                | Error::Map(_)
                | Error::Http {
                    status: Some(401 | 403),
                    ..
                }
        )
    }

    /// The HTTP status of a failed request, if this is one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => *status,
            _ => None,
        }
    }
}
