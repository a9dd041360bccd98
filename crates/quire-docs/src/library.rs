//! The user's library: files ingested into the chunk index, kept in step with the disk.
//!
//! Each document has a stable id (from its path) and a content hash: an unchanged file is
//! skipped, a changed one has its chunks replaced, a file that is gone loses its chunks.
//! The manifest of documents is stored as the payload of the index's own commits, so a
//! process killed mid-ingest leaves index and manifest consistent, and the next run picks
//! up where the last commit left off. One bad file never stops a folder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::chunk::{self, Chunk, ChunkOptions, Page, TokenCount};
use crate::embed::{self, Embed};
use crate::error::{DocsError, Result};
use crate::index::{ChunkIndex, Hit, SearchMode};
use crate::note;
use crate::pdf::{self, PdfLimits, PdfProblem, PdfText};

/// Work is committed at least this often during a long ingest.
const COMMIT_EVERY: Duration = Duration::from_secs(2);

/// Where a document stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum DocStatus {
    Indexed,
    /// A PDF whose pages carry no text layer (an image-only scan): nothing to index.
    NoTextLayer {
        reason: String,
    },
    /// A PDF that needs a password to open.
    PasswordProtected {
        reason: String,
    },
    /// Could not be read or understood; the reason says why.
    Failed {
        reason: String,
    },
}

impl DocStatus {
    /// The reason a document has no chunks, if it has none.
    pub fn reason(&self) -> Option<&str> {
        match self {
            DocStatus::Indexed => None,
            DocStatus::NoTextLayer { reason }
            | DocStatus::PasswordProtected { reason }
            | DocStatus::Failed { reason } => Some(reason),
        }
    }

    /// What a PDF's extraction means for the library: text to index, an image-only scan,
    /// a password it needs, or a failure with its reason.
    pub fn of_pdf(result: &std::result::Result<PdfText, PdfProblem>) -> DocStatus {
        match result {
            Ok(t) if t.lacks_text_layer() => DocStatus::NoTextLayer {
                reason: "no text layer — scanned? The pages are images; Quire has no OCR".into(),
            },
            Ok(_) => DocStatus::Indexed,
            Err(PdfProblem::PasswordProtected) => DocStatus::PasswordProtected {
                reason: "password-protected: Quire cannot open it without its password".into(),
            },
            Err(p) => DocStatus::Failed {
                reason: p.to_string(),
            },
        }
    }

    /// Whether ingesting the same bytes again would give the same result (so an
    /// unchanged file is skipped). Failures may be transient (a full disk, a killed
    /// worker) and are retried.
    fn is_final(&self) -> bool {
        !matches!(self, DocStatus::Failed { .. })
    }
}

/// How PDFs are read.
#[derive(Debug, Clone)]
pub enum PdfMode {
    /// In a child process: this executable, started with [`pdf::WORKER_ARG`] (its `main`
    /// must call [`pdf::run_worker_if_requested`]). What front doors use.
    Isolated(PathBuf),
    /// In this process (trusted files, benchmarks).
    InProcess,
}

/// How a library reads and splits documents.
#[derive(Debug, Clone)]
pub struct LibraryOptions {
    pub chunking: ChunkOptions,
    pub pdf: PdfMode,
    pub pdf_limits: PdfLimits,
    /// Seals the index on disk with this key (what front doors always do).
    pub index_key: Option<[u8; 32]>,
}

impl LibraryOptions {
    pub fn new(chunking: ChunkOptions, pdf: PdfMode) -> Self {
        Self {
            chunking,
            pdf,
            pdf_limits: PdfLimits::default(),
            index_key: None,
        }
    }
}

/// One document in the library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocEntry {
    pub id: String,
    pub path: PathBuf,
    pub title: String,
    pub content_hash: String,
    pub pages: usize,
    pub chunks: usize,
    #[serde(flatten)]
    pub status: DocStatus,
    /// Something the user should know though the file was indexed (e.g. not UTF-8).
    pub warning: Option<String>,
    /// Whether its chunks carry embeddings (for dense and hybrid search).
    #[serde(default)]
    pub embedded: bool,
    /// The [`READER_VERSION`] that read it: an older reader's text is read again.
    #[serde(default)]
    pub reader: u32,
}

/// How files are read, versioned: raised when a change to PDF or note reading changes
/// the text, titles or chunks a file gives, so an ingest reads again the unchanged files
/// an older version read (1: first release; 2: PDF titles from the first page).
pub const READER_VERSION: u32 = 2;

/// Progress of an ingest, one file at a time.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum IngestEvent {
    /// The files to look at, once known.
    Planned {
        files: usize,
    },
    Started {
        path: PathBuf,
    },
    /// Pages of a PDF read so far.
    Progress {
        path: PathBuf,
        pages_done: usize,
        pages_total: usize,
    },
    Finished {
        path: PathBuf,
        chunks: usize,
        warning: Option<String>,
    },
    Unchanged {
        path: PathBuf,
    },
    /// The file has no chunks: `status` says why (failed, no_text_layer,
    /// password_protected).
    Failed {
        path: PathBuf,
        status: DocStatus,
        reason: String,
    },
    Removed {
        path: PathBuf,
    },
}

/// Receives ingest progress (the CLI draws a progress bar; the app streams it to the UI).
pub trait IngestSink {
    fn event(&mut self, event: &IngestEvent);
}

impl<F: FnMut(&IngestEvent)> IngestSink for F {
    fn event(&mut self, event: &IngestEvent) {
        self(event)
    }
}

/// What an ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub failed: usize,
    /// Pages read and chunks indexed by this ingest (unchanged files count nothing).
    pub pages: usize,
    pub chunks: usize,
    /// Wall time of the whole ingest.
    pub seconds: f64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Manifest {
    docs: BTreeMap<String, DocEntry>,
}

/// File types the library reads today.
fn supported(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("md" | "markdown" | "txt" | "pdf")
    )
}

/// How a note written in the app appears as a document's path: `quire-note:<id>`.
pub const NOTE_PATH_PREFIX: &str = "quire-note:";

/// The document id of a note written in the app.
pub fn note_doc_id(note_id: i64) -> String {
    format!("note-{note_id}")
}

/// Whether a document's path names a note written in the app rather than a file.
pub fn is_in_app_note(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|p| p.starts_with(NOTE_PATH_PREFIX))
}

/// A stable document id: derived from the file's absolute path.
pub fn doc_id(path: &Path) -> String {
    let digest = Sha256::digest(path.to_string_lossy().as_bytes());
    digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

pub struct Library {
    index: ChunkIndex,
    manifest: Manifest,
    options: LibraryOptions,
    embedder: Option<Arc<dyn Embed>>,
}

impl Library {
    /// Opens (or creates) the library whose index lives in `dir`.
    pub fn open(dir: &Path, options: LibraryOptions) -> Result<Self> {
        let index = ChunkIndex::open(dir, options.index_key.as_ref())?;
        let manifest = match index.payload()? {
            Some(p) => serde_json::from_str(&p).map_err(|e| DocsError::Format {
                path: dir.to_path_buf(),
                reason: format!("library manifest: {e}"),
            })?,
            None => Manifest::default(),
        };
        Ok(Self {
            index,
            manifest,
            options,
            embedder: None,
        })
    }

    pub fn documents(&self) -> impl Iterator<Item = &DocEntry> {
        self.manifest.docs.values()
    }

    pub fn num_chunks(&self) -> u64 {
        self.index.num_chunks()
    }

    /// Bytes the index takes on disk (chunks, vectors and manifest).
    pub fn index_bytes(&self) -> u64 {
        self.index.disk_bytes()
    }

    /// Embeds chunks at ingest and queries at search: dense and hybrid search need it.
    /// Documents indexed without it are embedded by the next ingest.
    pub fn set_embedder(&mut self, embedder: Arc<dyn Embed>) {
        self.embedder = Some(embedder);
    }

    /// The text of a document, page by page: `id_or_path` is a library document's id or
    /// any note or PDF on disk. Read the same way ingest reads it.
    pub fn read(&self, id_or_path: &str) -> Result<(String, Vec<Page>)> {
        let path = self
            .manifest
            .docs
            .get(id_or_path)
            .map(|d| d.path.clone())
            .unwrap_or_else(|| PathBuf::from(id_or_path));
        read_document(&path, &self.options)
    }

    /// The embedding model, when set.
    pub fn embedder(&self) -> Option<&Arc<dyn Embed>> {
        self.embedder.as_ref()
    }

    /// The `k` best chunks for `query` by hybrid search (BM25 alone without an embedder),
    /// with the best chunk's cosine similarity to the query: how close the library comes
    /// to the question at all, for deciding whether it can be answered.
    pub fn retrieve(&self, query: &str, k: usize) -> Result<(Vec<Hit>, Option<f32>)> {
        let Some(embedder) = self.embedder.as_ref() else {
            return Ok((self.index.search(query, k)?, None));
        };
        let q = embedder
            .embed(&[query])
            .map_err(DocsError::Embed)?
            .pop()
            .ok_or_else(|| DocsError::Embed("no vector".into()))?;
        let top = self.index.search_dense(&q, 1)?.first().map(|h| h.score);
        Ok((self.index.search_hybrid(query, &q, k)?, top))
    }

    /// The `k` best chunks for `query`.
    pub fn search(&self, query: &str, k: usize, mode: SearchMode) -> Result<Vec<Hit>> {
        if mode == SearchMode::Bm25 {
            return self.index.search(query, k);
        }
        let embedder = self
            .embedder
            .as_ref()
            .ok_or(DocsError::NoEmbedder(mode.name()))?;
        let q = embedder
            .embed(&[query])
            .map_err(DocsError::Embed)?
            .pop()
            .ok_or_else(|| DocsError::Embed("no vector".into()))?;
        match mode {
            SearchMode::Dense => self.index.search_dense(&q, k),
            _ => self.index.search_hybrid(query, &q, k),
        }
    }

    fn commit(&mut self) -> Result<()> {
        let payload = serde_json::to_string(&self.manifest).map_err(|e| DocsError::Format {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
        self.index.commit_with(Some(&payload))
    }

    /// Removes a document by id or path; returns whether one was found.
    pub fn remove(&mut self, id_or_path: &str) -> Result<bool> {
        let id = if self.manifest.docs.contains_key(id_or_path) {
            id_or_path.to_string()
        } else {
            match std::path::absolute(id_or_path) {
                Ok(p) => doc_id(&p),
                Err(_) => return Ok(false),
            }
        };
        if self.manifest.docs.remove(&id).is_none() {
            return Ok(false);
        }
        self.index.remove(&id);
        self.commit()?;
        Ok(true)
    }

    /// The chunks' vectors (with their headings), one per chunk; `None` without an
    /// embedder.
    fn embed_chunks(&self, chunks: &[Chunk]) -> std::result::Result<Option<Vec<Vec<f32>>>, String> {
        let Some(e) = &self.embedder else {
            return Ok(None);
        };
        let texts: Vec<String> = chunks
            .iter()
            .map(|c| embed::chunk_text(c.heading.as_deref(), &c.text))
            .collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        match e.embed(&refs)? {
            v if v.len() == chunks.len() => Ok(Some(v)),
            _ => Err("wrong count".into()),
        }
    }

    /// Indexes a note written in the app (its text lives in the encrypted store, not in
    /// a file) as document `note-<id>`, replacing its earlier version, and commits.
    pub fn put_note(
        &mut self,
        note_id: i64,
        title: &str,
        body: &str,
        counter: &dyn TokenCount,
    ) -> Result<DocEntry> {
        let id = note_doc_id(note_id);
        let path = PathBuf::from(format!("{NOTE_PATH_PREFIX}{note_id}"));
        let pages = vec![Page {
            number: 1,
            text: body.to_string(),
        }];
        let hash: String = Sha256::digest(format!("{title}\n{body}").as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let chunks = chunk::split(&id, &pages, self.options.chunking, counter);
        let vectors = self.embed_chunks(&chunks).map_err(DocsError::Embed)?;
        self.index.remove(&id);
        self.index
            .add(&path.to_string_lossy(), title, &chunks, vectors.as_deref())?;
        let entry = DocEntry {
            id: id.clone(),
            path,
            title: title.to_string(),
            content_hash: hash,
            pages: 1,
            chunks: chunks.len(),
            status: DocStatus::Indexed,
            warning: None,
            embedded: vectors.is_some(),
            reader: READER_VERSION,
        };
        self.manifest.docs.insert(id, entry.clone());
        self.commit()?;
        Ok(entry)
    }

    /// Ingests files and folders (recursively). Documents previously ingested whose files
    /// are gone are removed (notes written in the app are not files and stay).
    pub fn ingest(
        &mut self,
        paths: &[PathBuf],
        counter: &dyn TokenCount,
        sink: &mut dyn IngestSink,
    ) -> Result<IngestReport> {
        let started = Instant::now();
        let mut files = Vec::new();
        let mut report = IngestReport::default();
        for p in paths {
            let abs = std::path::absolute(p).map_err(|source| DocsError::Io {
                path: p.clone(),
                source,
            })?;
            if abs.is_dir() {
                walk(&abs, &mut files);
            } else {
                files.push(abs);
            }
        }
        files.sort();
        files.dedup();
        sink.event(&IngestEvent::Planned { files: files.len() });

        let gone: Vec<String> = self
            .manifest
            .docs
            .values()
            .filter(|d| !is_in_app_note(&d.path) && !d.path.exists())
            .map(|d| d.id.clone())
            .collect();
        for id in gone {
            if let Some(d) = self.manifest.docs.remove(&id) {
                self.index.remove(&id);
                report.removed += 1;
                sink.event(&IngestEvent::Removed { path: d.path });
            }
        }

        let mut last_commit = Instant::now();
        for path in files {
            let id = doc_id(&path);
            sink.event(&IngestEvent::Started { path: path.clone() });
            let entry = match self.ingest_one(&id, &path, counter, sink) {
                Outcome::Unchanged => {
                    report.unchanged += 1;
                    sink.event(&IngestEvent::Unchanged { path: path.clone() });
                    continue;
                }
                Outcome::Done(entry) => entry,
            };
            match entry.status.reason() {
                Some(reason) => {
                    // A document that was indexed before and now fails loses its old
                    // chunks, so the manifest (0 chunks) and the index stay in step.
                    self.index.remove(&id);
                    report.failed += 1;
                    sink.event(&IngestEvent::Failed {
                        path: path.clone(),
                        status: entry.status.clone(),
                        reason: reason.to_string(),
                    });
                }
                None => {
                    report.pages += entry.pages;
                    report.chunks += entry.chunks;
                    if self.manifest.docs.contains_key(&id) {
                        report.updated += 1;
                    } else {
                        report.added += 1;
                    }
                    sink.event(&IngestEvent::Finished {
                        path: path.clone(),
                        chunks: entry.chunks,
                        warning: entry.warning.clone(),
                    });
                }
            }
            self.manifest.docs.insert(id, entry);
            if last_commit.elapsed() >= COMMIT_EVERY {
                self.commit()?;
                last_commit = Instant::now();
            }
        }
        self.commit()?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Indexes one file (uncommitted).
    fn ingest_one(
        &mut self,
        id: &str,
        path: &Path,
        counter: &dyn TokenCount,
        sink: &mut dyn IngestSink,
    ) -> Outcome {
        let entry = |title: String, hash: String, status: DocStatus| DocEntry {
            id: id.to_string(),
            path: path.to_path_buf(),
            title,
            content_hash: hash,
            pages: 0,
            chunks: 0,
            status,
            warning: None,
            embedded: false,
            reader: READER_VERSION,
        };
        let file_title = path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let failed = |reason: String, hash: String| {
            Outcome::Done(entry(
                file_title.clone(),
                hash,
                DocStatus::Failed { reason },
            ))
        };
        if !supported(path) {
            let ext = path
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            return failed(
                format!("unsupported file type '.{ext}' (Quire reads PDFs and .md/.txt notes)"),
                String::new(),
            );
        }
        let is_pdf = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
        // A note is read once (its hash comes with it); a PDF is hashed here and read by
        // the isolated extractor only when it changed.
        let (hash, note) = if is_pdf {
            match hash_file(path) {
                Ok(h) => (h, None),
                Err(e) => return failed(e.to_string(), String::new()),
            }
        } else {
            match note::read(path) {
                Ok(n) => (n.content_hash.clone(), Some(n)),
                Err(e) => return failed(e.to_string(), String::new()),
            }
        };
        if let Some(old) = self.manifest.docs.get(id) {
            let needs_vectors = self.embedder.is_some()
                && !old.embedded
                && old.status == DocStatus::Indexed
                && old.chunks > 0;
            if old.content_hash == hash
                && old.status.is_final()
                && !needs_vectors
                && old.reader >= READER_VERSION
            {
                return Outcome::Unchanged;
            }
        }
        let (title, pages, warning) = if let Some(n) = note {
            (n.title, n.pages, n.warning)
        } else {
            let mut progress = |done: usize, total: usize| {
                sink.event(&IngestEvent::Progress {
                    path: path.to_path_buf(),
                    pages_done: done,
                    pages_total: total,
                })
            };
            let result = extract_pdf(&self.options, path, &mut progress);
            let text = match (DocStatus::of_pdf(&result), result) {
                (DocStatus::Indexed, Ok(text)) => text,
                (status, result) => {
                    let text = result.unwrap_or_default();
                    let mut e = entry(
                        text.title.unwrap_or_else(|| file_title.clone()),
                        hash,
                        status,
                    );
                    e.pages = text.pages.len();
                    return Outcome::Done(e);
                }
            };
            let empty = text.empty_pages();
            let n = text.pages.len();
            let mut warnings = Vec::new();
            if empty > 0 {
                warnings.push(format!(
                    "{empty} of {n} pages have no text layer (scanned?)"
                ));
            }
            if text.truncated_pages > 0 {
                warnings.push(format!(
                    "{} pages were cut short by the reader's limits",
                    text.truncated_pages
                ));
            }
            if text.total_pages > n {
                warnings.push(format!(
                    "only the first {n} of {} pages were read",
                    text.total_pages
                ));
            }
            let warning = (!warnings.is_empty()).then(|| warnings.join("; "));
            (
                text.title.unwrap_or_else(|| file_title.clone()),
                text.pages,
                warning,
            )
        };
        let chunks = chunk::split(id, &pages, self.options.chunking, counter);
        let vectors = match self.embed_chunks(&chunks) {
            Ok(v) => v,
            Err(e) => return failed(format!("embedding failed: {e}"), hash),
        };
        self.index.remove(id);
        if let Err(e) = self
            .index
            .add(&path.to_string_lossy(), &title, &chunks, vectors.as_deref())
        {
            return failed(format!("indexing failed: {e}"), hash);
        }
        Outcome::Done(DocEntry {
            id: id.to_string(),
            path: path.to_path_buf(),
            title,
            content_hash: hash,
            pages: pages.len(),
            chunks: chunks.len(),
            status: DocStatus::Indexed,
            warning,
            embedded: vectors.is_some(),
            reader: READER_VERSION,
        })
    }
}

/// sha256 of a file's bytes, read in blocks.
/// A PDF's text the way `options` say to read it (isolated or in process), with progress
/// as pages done of total.
fn extract_pdf(
    options: &LibraryOptions,
    path: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> std::result::Result<PdfText, PdfProblem> {
    let limits = options.pdf_limits;
    match &options.pdf {
        PdfMode::Isolated(exe) => pdf::extract_isolated(exe, path, &limits, progress),
        PdfMode::InProcess => pdf::extract(path, &limits).inspect(|t| {
            progress(t.pages.len(), t.total_pages);
        }),
    }
}

/// The text of a note or PDF on disk, page by page, read as ingest reads it (PDFs by the
/// isolated reader when `options` say so).
pub fn read_document(path: &Path, options: &LibraryOptions) -> Result<(String, Vec<Page>)> {
    let path = path.to_path_buf();
    let is_pdf = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"));
    if !is_pdf {
        let n = note::read(&path)?;
        return Ok((n.title, n.pages));
    }
    let result = extract_pdf(options, &path, &mut |_, _| {});
    match (DocStatus::of_pdf(&result), result) {
        (DocStatus::Indexed, Ok(text)) => {
            let title = text.title.clone().unwrap_or_else(|| {
                path.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            Ok((title, text.pages))
        }
        (status, _) => Err(DocsError::Format {
            path,
            reason: status.reason().unwrap_or("unreadable").to_string(),
        }),
    }
}

fn hash_file(path: &Path) -> Result<String> {
    use std::io::Read;
    let io = |source| DocsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

enum Outcome {
    /// Same content as already indexed: nothing done.
    Unchanged,
    Done(DocEntry),
}

/// Files under `dir`, recursively, skipping hidden entries and unsupported types.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out);
        } else if supported(&p) {
            out.push(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::WordEstimate;

    #[test]
    fn files_an_older_reader_read_are_read_again_once() {
        let dir = std::env::temp_dir().join(format!("quire-reader-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("mkdir");
        let note = dir.join("minutes.md");
        std::fs::write(&note, "# Minutes\n\nThe budget was approved.\n").expect("write");
        let open = || {
            Library::open(
                &dir.join("index"),
                LibraryOptions::new(ChunkOptions::default(), PdfMode::InProcess),
            )
            .expect("open")
        };
        let ingest = |lib: &mut Library| {
            lib.ingest(
                std::slice::from_ref(&note),
                &WordEstimate,
                &mut |_: &IngestEvent| {},
            )
            .expect("ingest")
        };
        let mut lib = open();
        assert_eq!(ingest(&mut lib).added, 1);
        assert_eq!(ingest(&mut lib).unchanged, 1);
        assert!(lib.documents().all(|d| d.reader == READER_VERSION));

        // As an earlier release left it: the manifest names an older reader, or none.
        for older in [READER_VERSION - 1, 0] {
            for d in lib.manifest.docs.values_mut() {
                d.reader = older;
            }
            lib.commit().expect("commit");
            drop(lib);
            lib = open();
            let report = ingest(&mut lib);
            assert_eq!((report.updated, report.unchanged), (1, 0), "reader {older}");
            assert!(lib.documents().all(|d| d.reader == READER_VERSION));
            assert_eq!(ingest(&mut lib).unchanged, 1, "read again only once");
        }
        // A manifest written before the field existed reads as reader 0.
        let old: DocEntry = serde_json::from_value(serde_json::json!({
            "id": "x", "path": "/x.pdf", "title": "x", "content_hash": "", "pages": 0,
            "chunks": 0, "status": "indexed", "warning": null,
        }))
        .expect("an old entry");
        assert_eq!(old.reader, 0);
        drop(lib);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
