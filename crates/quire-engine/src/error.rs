//! The engine's one error type, with a stable code for each kind so the desktop shell can
//! map it to `{code, message}` and the UI can offer the right fix.

use std::path::PathBuf;

use quire_runtime::RuntimeError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No model file where Quire looks for one.
    #[error("no model found (looked for {wanted} in: {searched}); install the default model with `scripts/fetch-models.sh`, or pass --model PATH / set QUIRE_MODEL", searched = .searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    ModelMissing {
        wanted: String,
        searched: Vec<PathBuf>,
    },

    /// The data directory cannot be created or used.
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A file the engine reads or writes itself (the search index's folder, say).
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The model is busy with another answer or summary.
    #[error("{0}")]
    Busy(&'static str),

    /// A document, note or conversation that does not exist (any more).
    #[error("{0}")]
    NotFound(String),

    /// A request that cannot be carried out as given (an empty question, a setting out
    /// of range); the message says what to change.
    #[error("{0}")]
    InvalidInput(String),

    #[error(transparent)]
    Runtime(#[from] RuntimeError),

    #[error(transparent)]
    Docs(#[from] quire_docs::DocsError),

    #[error(transparent)]
    Store(#[from] quire_store::StoreError),
}

impl EngineError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ModelMissing { .. } => "model_missing",
            Self::DataDir { .. } => "data_dir",
            Self::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                "disk_full"
            }
            Self::Io { .. } => "io",
            Self::Busy(_) => "busy",
            Self::NotFound(_) => "not_found",
            Self::InvalidInput(_) => "invalid_input",
            Self::Docs(quire_docs::DocsError::IndexKey(_)) => "wrong_key",
            Self::Docs(quire_docs::DocsError::InUse) => "in_use",
            Self::Docs(_) => "documents",
            Self::Store(e) => e.code(),
            Self::Runtime(e) => match e {
                RuntimeError::ModelNotFound { .. } => "model_missing",
                RuntimeError::InvalidModel { .. } | RuntimeError::Truncated { .. } => {
                    "model_invalid"
                }
                RuntimeError::EmbedModel { .. } => "embed_model_invalid",
                RuntimeError::UnsupportedArchitecture { .. } => "model_unsupported",
                RuntimeError::ContextOverflow { .. } => "context_overflow",
                RuntimeError::Io { .. } => "io",
                _ => "runtime",
            },
        }
    }
}

/// Every code [`EngineError::code`] can return (the desktop app mirrors this list in
/// TypeScript, and a test keeps the two in step).
pub const ERROR_CODES: &[&str] = &[
    "model_missing",
    "data_dir",
    "disk_full",
    "io",
    "wrong_key",
    "documents",
    "model_invalid",
    "embed_model_invalid",
    "model_unsupported",
    "context_overflow",
    "runtime",
    "key_missing",
    "keychain_unavailable",
    "keychain_locked",
    "keychain",
    "not_encrypted",
    "store_corrupt",
    "store_busy",
    "not_found",
    "invalid_input",
    "store",
    "busy",
    "in_use",
];

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_specific() {
        let missing = EngineError::ModelMissing {
            wanted: "m.gguf".into(),
            searched: vec![],
        };
        assert_eq!(missing.code(), "model_missing");
        let overflow = EngineError::from(RuntimeError::ContextOverflow {
            prompt_tokens: 10,
            max_tokens: 5,
            context: 12,
        });
        assert_eq!(overflow.code(), "context_overflow");
        let truncated = EngineError::from(RuntimeError::Truncated {
            path: "m.gguf".into(),
            expected: 2,
            actual: 1,
        });
        assert_eq!(truncated.code(), "model_invalid");
        assert!(missing.to_string().contains("scripts/fetch-models.sh"));
    }
}
