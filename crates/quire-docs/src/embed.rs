//! Sentence embeddings for dense retrieval. The documents crate knows only this trait;
//! the engine plugs in the runtime's MiniLM model.

/// Turns texts into unit-length vectors of one fixed dimension.
pub trait Embed: Send + Sync {
    /// One vector per text, in order. The error is a message a person can act on.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, String>;
}

/// The text a chunk is embedded as: its heading (if any) gives the passage context.
pub fn chunk_text(heading: Option<&str>, text: &str) -> String {
    match heading {
        Some(h) if !text.starts_with(h) => format!("{h}\n{text}"),
        _ => text.to_string(),
    }
}
