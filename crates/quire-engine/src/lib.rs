//! Quire's engine: the one API the desktop app and the `quire` CLI both call.
//!
//! Today it finds and loads models ([`paths`], [`load_model`]), keeps a conversation
//! ([`chat::ChatSession`]) and measures speed ([`bench`]); documents, retrieval and the
//! encrypted store join it as their own modules. The engine never prints: tokens and
//! progress go to sinks the caller supplies.

pub mod answer;
pub mod bench;
pub mod chat;
mod error;
pub mod library;
pub mod paths;
pub mod session;
pub mod store;
pub mod summarize;

use std::path::Path;

pub use error::{EngineError, Result, ERROR_CODES};
pub use quire_docs as docs;
pub use quire_runtime as runtime;
pub use quire_runtime::{
    CancelToken, ChatMessage, Generation, LoadOptions, Model, ModelInfo, SamplingParams,
    StopReason, TokenSink,
};
pub use quire_store as store_types;

/// Finds (see [`paths::resolve_model`]) and loads the model to run.
pub fn load_model(explicit: Option<&Path>, data_dir: &Path, opts: &LoadOptions) -> Result<Model> {
    let path = paths::resolve_model(explicit, data_dir)?;
    Model::load(&path, opts).map_err(|e| missing_model(e, &path))
}

/// A model path that does not exist becomes [`EngineError::ModelMissing`], which says how to
/// install one.
pub fn missing_model(e: quire_runtime::RuntimeError, path: &Path) -> EngineError {
    match e {
        quire_runtime::RuntimeError::ModelNotFound { .. } => EngineError::ModelMissing {
            wanted: path.display().to_string(),
            searched: path.parent().map(Path::to_path_buf).into_iter().collect(),
        },
        other => other.into(),
    }
}

/// Facts about a model file without loading its weights; `with_hash` adds its sha256.
pub fn model_info(path: &Path, with_hash: bool) -> Result<ModelInfo> {
    let file = quire_runtime::GgufFile::open(path).map_err(|e| missing_model(e, path))?;
    let mut info = file.info()?;
    if with_hash {
        info.sha256 = Some(quire_runtime::sha256_file(path)?);
    }
    Ok(info)
}
