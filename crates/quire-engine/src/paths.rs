//! Where Quire keeps its data and finds its models. Models are only ever read from local
//! paths; nothing here downloads anything.

use std::path::{Path, PathBuf};

use crate::error::{EngineError, Result};

/// The model Quire runs when none is chosen.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// The data directory: `explicit`, else `QUIRE_DATA_DIR`, else the platform's data dir.
pub fn data_dir(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("QUIRE_DATA_DIR").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("quire")
}

/// Creates the data directory if needed.
pub fn ensure_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|source| EngineError::DataDir {
        path: path.to_path_buf(),
        source,
    })
}

/// Folders searched for models, in order: `QUIRE_MODELS_DIR`, `<data dir>/models`, a
/// `models/` folder beside or above the executable (a source checkout or an install), and
/// `./models`.
pub fn model_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(p) = std::env::var_os("QUIRE_MODELS_DIR").filter(|p| !p.is_empty()) {
        dirs.push(PathBuf::from(p));
    }
    dirs.push(data_dir.join("models"));
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(5) {
            dirs.push(dir.join("models"));
        }
    }
    dirs.push(PathBuf::from("models"));
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// The model to load: `explicit`, else `QUIRE_MODEL`, else the default model in the first
/// model folder that has it.
pub fn resolve_model(explicit: Option<&Path>, data_dir: &Path) -> Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os("QUIRE_MODEL").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let searched = model_dirs(data_dir);
    searched
        .iter()
        .map(|d| d.join(DEFAULT_MODEL_FILE))
        .find(|p| p.is_file())
        .ok_or(EngineError::ModelMissing {
            wanted: DEFAULT_MODEL_FILE.to_string(),
            searched,
        })
}

/// The sentence-embedding model's folder (`all-MiniLM-L6-v2`) in the first model folder
/// that has it.
pub fn resolve_embed_model(data_dir: &Path) -> Option<PathBuf> {
    model_dirs(data_dir)
        .into_iter()
        .map(|d| d.join(quire_runtime::EMBED_MODEL_DIR))
        .find(|d| d.join("model.safetensors").is_file())
}
