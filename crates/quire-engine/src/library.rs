//! The engine's view of the user's library: where the index lives, and chunk sizes counted
//! with the model's own tokenizer.

use std::path::Path;
use std::sync::Arc;

use quire_docs::{ChunkOptions, Embed, Library, LibraryOptions, PdfMode, TokenCount, WordEstimate};
use quire_runtime::{Embedder, GgufFile, Tokenizer};

use crate::error::Result;
use crate::paths;

/// Counts tokens with a model's tokenizer (documents are plain text: specials not parsed).
pub struct ModelTokens(pub Tokenizer);

impl TokenCount for ModelTokens {
    fn count(&self, text: &str) -> usize {
        self.0
            .encode(text, false)
            .map(|ids| ids.len())
            .unwrap_or_else(|_| WordEstimate.count(text))
    }
}

/// The tokenizer of the model Quire would run (weights are not loaded); a word-based
/// estimate when no model is installed, so ingesting never depends on one.
pub fn token_counter(explicit_model: Option<&Path>, data_dir: &Path) -> Box<dyn TokenCount> {
    paths::resolve_model(explicit_model, data_dir)
        .ok()
        .and_then(|p| GgufFile::open(&p).ok())
        .and_then(|f| Tokenizer::from_gguf(&f).ok())
        .map(|t| Box::new(ModelTokens(t)) as Box<dyn TokenCount>)
        .unwrap_or_else(|| Box::new(WordEstimate))
}

/// How front doors read documents: PDFs in a child process, which is this same
/// executable started as the PDF worker (its `main` calls
/// [`quire_docs::pdf::run_worker_if_requested`] first).
pub fn options() -> LibraryOptions {
    let exe = std::env::current_exe().unwrap_or_else(|_| "quire".into());
    LibraryOptions::new(ChunkOptions::default(), PdfMode::Isolated(exe))
}

/// The runtime's MiniLM model as the documents crate's embedder.
pub struct MiniLm(pub Embedder);

impl Embed for MiniLm {
    fn embed(&self, texts: &[&str]) -> std::result::Result<Vec<Vec<f32>>, String> {
        self.0.embed(texts).map_err(|e| e.to_string())
    }
}

/// The embedding model, if installed (`Ok(None)` when it is not: search falls back to
/// BM25). A model that is there but damaged is an error.
pub fn embedder(data_dir: &Path) -> Result<Option<Arc<dyn Embed>>> {
    match paths::resolve_embed_model(data_dir) {
        Some(dir) => Ok(Some(Arc::new(MiniLm(Embedder::load(&dir)?)))),
        None => Ok(None),
    }
}

/// Opens the library in `<data dir>/index`, sealed with `index_key` (see
/// [`crate::store::index_key`]), and with the embedding model when installed.
pub fn open(data_dir: &Path, index_key: &[u8; 32]) -> Result<Library> {
    let dir = crate::store::index_dir(data_dir);
    paths::ensure_dir(&dir)?;
    let mut opts = options();
    opts.index_key = Some(*index_key);
    let mut lib = Library::open(&dir, opts)?;
    if let Some(e) = embedder(data_dir)? {
        lib.set_embedder(e);
    }
    Ok(lib)
}
