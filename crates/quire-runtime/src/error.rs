//! The runtime's one error type: every failure names the file or the limit involved,
//! so the caller can show a person what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or generating with it.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The model file does not exist.
    #[error("model file not found: {path}")]
    ModelNotFound { path: PathBuf },

    /// The file could not be read at all (permissions, I/O error).
    #[error("cannot read model file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not a GGUF file, or its header or metadata are damaged.
    #[error("{path} is not a valid GGUF model: {reason}")]
    InvalidModel { path: PathBuf, reason: String },

    /// The header is fine but the tensor data stops early (an interrupted download or copy).
    #[error("{path} is truncated: its tensors need {expected} bytes but the file has {actual}; fetch it again")]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    /// The GGUF holds a model architecture this runtime cannot run.
    #[error(
        "{path}: model architecture '{architecture}' is not supported (supported: {supported})"
    )]
    UnsupportedArchitecture {
        path: PathBuf,
        architecture: String,
        supported: &'static str,
    },

    /// The tokenizer described in the GGUF metadata cannot be built.
    #[error("tokenizer: {0}")]
    Tokenizer(String),

    /// The chat template failed to compile or render.
    #[error("chat template: {0}")]
    Template(String),

    /// Prompt plus requested new tokens do not fit in the context window.
    #[error("prompt of {prompt_tokens} tokens plus {max_tokens} new tokens exceeds the model's context window of {context} tokens; shorten the prompt or ask for fewer tokens")]
    ContextOverflow {
        prompt_tokens: usize,
        max_tokens: usize,
        context: usize,
    },

    /// A prompt must contain at least one token.
    #[error("the prompt is empty")]
    EmptyPrompt,

    /// A token id outside the vocabulary was given.
    #[error("token id {id} is outside the vocabulary of {vocab_size} tokens")]
    InvalidToken { id: u32, vocab_size: usize },

    /// The sentence-embedding model's folder, or one of its files, is missing or damaged.
    #[error("embedding model {path}: {reason}; run `scripts/fetch-models.sh` to fetch it")]
    EmbedModel { path: PathBuf, reason: String },

    /// The tensor library failed during loading or inference.
    #[error("inference: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
