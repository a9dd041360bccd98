//! The documents crate's one error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DocsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file that is not in the expected format.
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
    /// The search index failed.
    #[error("index: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("index: {0}")]
    IndexDir(#[from] tantivy::directory::error::OpenDirectoryError),
}

pub type Result<T, E = DocsError> = std::result::Result<T, E>;
