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
    /// Dense or hybrid search without the embedding model.
    #[error("{0} search needs the embedding model (models/all-MiniLM-L6-v2); run `scripts/fetch-models.sh`, or search with --mode bm25")]
    NoEmbedder(&'static str),
    /// The embedding model failed on a query.
    #[error("embedding the query failed: {0}")]
    Embed(String),
    /// The sealed index does not open with this key.
    #[error("the document index in {0} cannot be decrypted with this key (wrong key or passphrase); nothing was changed")]
    IndexKey(PathBuf),
    /// Another process (another Quire window or command) has the index open for writing.
    #[error("another Quire (a window or a `quire` command) is using this data folder; close it, then try again")]
    InUse,
    #[error("index: {0}")]
    IndexDir(#[from] tantivy::directory::error::OpenDirectoryError),
}

pub type Result<T, E = DocsError> = std::result::Result<T, E>;
