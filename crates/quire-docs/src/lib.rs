//! Quire's documents: notes read leniently ([`note`]), text split into token-sized chunks
//! that keep their page and character span ([`chunk`]), the tantivy chunk index
//! ([`index::ChunkIndex`]) and retrieval quality measured on BEIR folders ([`beir`]).
//! PDFs are read by our own text extractor ([`pdf`]), isolated in a child process.

pub mod beir;
pub mod chunk;
pub mod embed;
mod error;
pub mod index;
pub mod library;
pub mod note;
pub mod pdf;
pub mod sealed;

pub use chunk::{Chunk, ChunkOptions, Page, TokenCount, WordEstimate};
pub use embed::Embed;
pub use error::{DocsError, Result};
pub use index::{ChunkIndex, Hit, SearchMode};
pub use library::{
    is_in_app_note, note_doc_id, read_document, DocEntry, DocStatus, IngestEvent, IngestReport,
    IngestSink, Library, LibraryOptions, PdfMode, NOTE_PATH_PREFIX, READER_VERSION,
};
