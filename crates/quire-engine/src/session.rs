//! One open data folder — the encrypted store, the sealed library and the model — behind
//! the calls the desktop app makes. Each method does one thing and delegates to the
//! engine's modules; the app's commands only translate to and from IPC.
//!
//! Calls that read PDFs, embed text or run the model block: from an async runtime, run
//! them in a blocking task (they reach the store through the runtime's handle).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use quire_docs::{DocEntry, IngestReport, IngestSink, Library, Page};
use quire_runtime::{CancelToken, LoadOptions, Model, ModelInfo, SamplingParams};
use quire_store::{ConversationId, Note, NoteEdit, NoteId, Store};
use serde::{Deserialize, Serialize};

use crate::answer::{self, Answer, AnswerEvent, AskOptions, Budget};
use crate::error::{EngineError, Result};
use crate::store::KeyMode;
use crate::summarize::{self, SummarizeOptions, Summary, SummaryEvent};

/// What the user can change in Settings (kept in the encrypted store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The GGUF file to run; `None`: the default model where Quire finds it.
    pub model_path: Option<PathBuf>,
    /// Passages retrieved per question.
    pub k: usize,
    pub max_answer_tokens: usize,
    /// 0: greedy (the default: answers should repeat their sources, not vary).
    pub temperature: f64,
}

impl Default for Settings {
    fn default() -> Self {
        let ask = AskOptions::default();
        Self {
            model_path: None,
            k: ask.k,
            max_answer_tokens: ask.budget.answer_tokens,
            temperature: ask.params.temperature,
        }
    }
}

impl Settings {
    fn check(&self) -> Result<()> {
        let bad = |what: &str| Err(EngineError::InvalidInput(what.to_string()));
        if !(1..=20).contains(&self.k) {
            return bad("passages per question must be between 1 and 20");
        }
        if !(16..=1024).contains(&self.max_answer_tokens) {
            return bad("answer length must be between 16 and 1024 tokens");
        }
        if !(0.0..=2.0).contains(&self.temperature) {
            return bad("temperature must be between 0 and 2");
        }
        Ok(())
    }

    /// How to answer with these settings.
    pub fn ask_options(&self) -> AskOptions {
        let d = AskOptions::default();
        let budget = Budget {
            answer_tokens: self.max_answer_tokens,
            ..d.budget
        };
        AskOptions {
            k: self.k,
            budget,
            params: SamplingParams {
                temperature: self.temperature,
                max_tokens: self.max_answer_tokens,
                ..d.params
            },
            refusal: d.refusal,
        }
    }
}

const SETTINGS: &str = "app.settings";
const FOLDERS: &str = "library.folders";

/// What a document is: a PDF, a note or text file on disk, or a note written in Quire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DocKind {
    Pdf,
    Text,
    Note,
}

impl DocKind {
    pub fn of(entry: &DocEntry) -> DocKind {
        if quire_docs::is_in_app_note(&entry.path) {
            DocKind::Note
        } else if entry
            .path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
        {
            DocKind::Pdf
        } else {
            DocKind::Text
        }
    }
}

/// A document's text page by page, as the viewer shows it.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentText {
    pub id: String,
    pub title: String,
    pub path: PathBuf,
    pub kind: DocKind,
    pub pages: Vec<Page>,
}

/// What to summarize.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryTarget {
    DocId(String),
    NoteId(NoteId),
}

/// An open data folder.
pub struct Session {
    data_dir: PathBuf,
    store: Store,
    library: RwLock<Library>,
    model: Mutex<Option<Model>>,
    running: Mutex<Option<CancelToken>>,
}

fn poisoned<T>(_: T) -> EngineError {
    EngineError::Busy("a previous task failed while holding the library; restart Quire")
}

impl Session {
    /// Opens the store (see [`crate::store::open`]) and the library sealed with the key it
    /// holds. The model is loaded at the first question.
    pub async fn open(data_dir: &Path, mode: &KeyMode) -> Result<Session> {
        let store = crate::store::open(data_dir, mode).await?;
        let key = match crate::store::index_key(data_dir, &store).await {
            Ok(k) => k,
            Err(e) => {
                store.close().await;
                return Err(e);
            }
        };
        let dir = data_dir.to_path_buf();
        let library = tokio::task::spawn_blocking(move || crate::library::open(&dir, &key)).await;
        let library = match library {
            Ok(Ok(lib)) => lib,
            Ok(Err(e)) => {
                store.close().await;
                return Err(e);
            }
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        Ok(Session {
            data_dir: data_dir.to_path_buf(),
            store,
            library: RwLock::new(library),
            model: Mutex::new(None),
            running: Mutex::new(None),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The encrypted store, for conversations and notes.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Closes the database (the library needs nothing: every change is committed).
    pub async fn close(self) {
        self.store.close().await;
    }

    pub async fn settings(&self) -> Result<Settings> {
        Ok(match self.store.get_setting(SETTINGS).await? {
            Some(s) => serde_json::from_str(&s).unwrap_or_default(),
            None => Settings::default(),
        })
    }

    /// Saves settings after checking them; a new model is loaded at the next question.
    pub async fn set_settings(&self, settings: Settings) -> Result<Settings> {
        settings.check()?;
        if let Some(p) = &settings.model_path {
            crate::model_info(p, false)?;
        }
        let text = serde_json::to_string(&settings).expect("settings serialize");
        self.store.set_setting(SETTINGS, &text).await?;
        *self.model.lock().map_err(poisoned)? = None;
        Ok(settings)
    }

    /// The model file to run: the one chosen in settings, else the default.
    pub async fn model_path(&self) -> Result<PathBuf> {
        let chosen = self.settings().await?.model_path;
        crate::paths::resolve_model(chosen.as_deref(), &self.data_dir)
    }

    /// Facts about the model that would answer (weights not loaded).
    pub async fn model_info(&self) -> Result<ModelInfo> {
        crate::model_info(&self.model_path().await?, false)
    }

    /// Every GGUF file in Quire's model folders, and the chosen one wherever it is.
    pub async fn models(&self) -> Result<Vec<ModelInfo>> {
        let mut paths: Vec<PathBuf> = crate::paths::model_dirs(&self.data_dir)
            .iter()
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flatten()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("gguf"))
            })
            .filter_map(|p| p.canonicalize().ok())
            .collect();
        if let Ok(p) = self.model_path().await {
            paths.extend(p.canonicalize().ok());
        }
        paths.sort();
        paths.dedup();
        Ok(paths
            .iter()
            .filter_map(|p| crate::model_info(p, false).ok())
            .collect())
    }

    /// Copies a GGUF file into `<data dir>/models` (checked first: a file that is not a
    /// usable model is refused) and chooses it.
    pub async fn import_model(&self, from: &Path) -> Result<ModelInfo> {
        crate::model_info(from, false)?;
        let dir = self.data_dir.join("models");
        crate::paths::ensure_dir(&dir)?;
        let name = from
            .file_name()
            .ok_or_else(|| EngineError::InvalidInput("not a file".into()))?;
        let to = dir.join(name);
        if from.canonicalize().ok() != to.canonicalize().ok() {
            let part = dir.join(format!(".{}.part", name.to_string_lossy()));
            let copied = std::fs::copy(from, &part).and_then(|_| std::fs::rename(&part, &to));
            if let Err(source) = copied {
                let _ = std::fs::remove_file(&part);
                return Err(EngineError::Io { path: to, source });
            }
        }
        let info = crate::model_info(&to, false)?;
        let settings = Settings {
            model_path: Some(to),
            ..self.settings().await?
        };
        self.set_settings(settings).await?;
        Ok(info)
    }

    fn library(&self) -> Result<std::sync::RwLockReadGuard<'_, Library>> {
        self.library.read().map_err(poisoned)
    }

    fn library_mut(&self) -> Result<std::sync::RwLockWriteGuard<'_, Library>> {
        self.library.write().map_err(poisoned)
    }

    pub fn documents(&self) -> Result<Vec<DocEntry>> {
        Ok(self.library()?.documents().cloned().collect())
    }

    /// The `k` passages that best match `query` (hybrid search; BM25 alone without the
    /// embedding model).
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<quire_docs::Hit>> {
        Ok(self.library()?.retrieve(query, k)?.0)
    }

    /// Folders added to the library: watched, and re-read by [`Session::rescan`].
    pub async fn folders(&self) -> Result<Vec<PathBuf>> {
        Ok(match self.store.get_setting(FOLDERS).await? {
            Some(s) => serde_json::from_str(&s).unwrap_or_default(),
            None => Vec::new(),
        })
    }

    /// Ingests files and folders (blocking); folders are remembered to be watched. One
    /// bad file never stops the rest: its status says what went wrong.
    pub fn ingest(&self, paths: &[PathBuf], sink: &mut dyn IngestSink) -> Result<IngestReport> {
        let rt = tokio::runtime::Handle::current();
        let mut folders = rt.block_on(self.folders())?;
        let before = folders.len();
        for p in paths.iter().filter(|p| p.is_dir()) {
            let abs = std::path::absolute(p).unwrap_or_else(|_| p.clone());
            if !folders.contains(&abs) {
                folders.push(abs);
            }
        }
        if folders.len() != before {
            let text = serde_json::to_string(&folders).expect("paths serialize");
            rt.block_on(self.store.set_setting(FOLDERS, &text))?;
        }
        let counter = self.token_counter();
        Ok(self.library_mut()?.ingest(paths, &*counter, sink)?)
    }

    /// Reads the watched folders again: new and changed files are indexed, removed ones
    /// dropped, unchanged ones skipped (blocking).
    pub fn rescan(&self, sink: &mut dyn IngestSink) -> Result<IngestReport> {
        let folders = tokio::runtime::Handle::current().block_on(self.folders())?;
        let existing: Vec<PathBuf> = folders.into_iter().filter(|f| f.is_dir()).collect();
        if existing.is_empty() {
            return Ok(IngestReport::default());
        }
        let counter = self.token_counter();
        Ok(self.library_mut()?.ingest(&existing, &*counter, sink)?)
    }

    fn token_counter(&self) -> Box<dyn quire_docs::TokenCount> {
        let chosen = tokio::runtime::Handle::current()
            .block_on(self.settings())
            .ok()
            .and_then(|s| s.model_path);
        crate::library::token_counter(chosen.as_deref(), &self.data_dir)
    }

    pub fn remove_document(&self, id: &str) -> Result<bool> {
        Ok(self.library_mut()?.remove(id)?)
    }

    /// Reads a document again from scratch (blocking).
    pub fn reindex(&self, id: &str, sink: &mut dyn IngestSink) -> Result<IngestReport> {
        let entry = self.entry(id)?;
        if quire_docs::is_in_app_note(&entry.path) {
            let note_id = note_id_of(id)?;
            let rt = tokio::runtime::Handle::current();
            let note = rt.block_on(self.note(note_id))?;
            self.index_note(&note)?;
            return Ok(IngestReport {
                updated: 1,
                ..IngestReport::default()
            });
        }
        let counter = self.token_counter();
        let mut lib = self.library_mut()?;
        lib.remove(id)?;
        Ok(lib.ingest(&[entry.path], &*counter, sink)?)
    }

    fn entry(&self, id: &str) -> Result<DocEntry> {
        self.library()?
            .documents()
            .find(|d| d.id == id)
            .cloned()
            .ok_or_else(|| EngineError::NotFound(format!("no document with id {id}")))
    }

    /// A PDF document's file on disk (for the viewer).
    pub fn pdf_path(&self, id: &str) -> Result<PathBuf> {
        let entry = self.entry(id)?;
        if DocKind::of(&entry) != DocKind::Pdf {
            return Err(EngineError::InvalidInput(format!(
                "{} is not a PDF",
                entry.title
            )));
        }
        Ok(entry.path)
    }

    /// A document's text, page by page, as it was indexed (blocking: PDFs are read in
    /// the isolated reader).
    pub fn read(&self, id: &str) -> Result<DocumentText> {
        let entry = self.entry(id)?;
        let kind = DocKind::of(&entry);
        let (title, pages) = if kind == DocKind::Note {
            let note = tokio::runtime::Handle::current().block_on(self.note(note_id_of(id)?))?;
            (note.title.clone(), note_pages(&note))
        } else {
            self.library()?.read(id)?
        };
        Ok(DocumentText {
            id: entry.id,
            title,
            path: entry.path,
            kind,
            pages,
        })
    }

    async fn note(&self, id: NoteId) -> Result<Note> {
        self.store
            .get_note(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no note with id {id}")))
    }

    fn index_note(&self, note: &Note) -> Result<DocEntry> {
        let counter = self.token_counter();
        Ok(self
            .library_mut()?
            .put_note(note.id, &note.title, &note.body, &*counter)?)
    }

    /// Saves a new note and indexes it like a document (blocking: it is embedded).
    pub fn add_note(&self, title: &str, body: &str) -> Result<Note> {
        let rt = tokio::runtime::Handle::current();
        let note = rt.block_on(self.store.add_note(title, body, &[]))?;
        self.index_note(&note)?;
        Ok(note)
    }

    pub fn edit_note(&self, id: NoteId, edit: &NoteEdit) -> Result<Note> {
        let rt = tokio::runtime::Handle::current();
        let note = rt.block_on(self.store.edit_note(id, edit))?;
        self.index_note(&note)?;
        Ok(note)
    }

    pub fn delete_note(&self, id: NoteId) -> Result<()> {
        tokio::runtime::Handle::current().block_on(self.store.delete_note(id))?;
        self.library_mut()?.remove(&quire_docs::note_doc_id(id))?;
        Ok(())
    }

    /// Takes the model (loading the chosen one if it is not loaded) for one task; a
    /// second task while one runs is `busy`.
    fn with_model<T>(&self, f: impl FnOnce(&mut Model, &CancelToken) -> Result<T>) -> Result<T> {
        let mut slot = self
            .model
            .try_lock()
            .map_err(|_| EngineError::Busy("Quire is still answering; stop it or wait"))?;
        let rt = tokio::runtime::Handle::current();
        let path = rt.block_on(self.model_path())?;
        if slot.as_ref().is_none_or(|m| m.info().path != path) {
            *slot = None;
            *slot = Some(crate::load_model(
                Some(&path),
                &self.data_dir,
                &LoadOptions::default(),
            )?);
        }
        let cancel = CancelToken::new();
        *self.running.lock().map_err(poisoned)? = Some(cancel.clone());
        let out = f(slot.as_mut().expect("loaded above"), &cancel);
        *self.running.lock().map_err(poisoned)? = None;
        out
    }

    /// Answers a question in a conversation (a new one when `None`), streaming to `sink`
    /// (blocking). The question is stored before generation and the answer after.
    pub fn ask(
        &self,
        question: &str,
        conversation: Option<ConversationId>,
        sink: &mut dyn FnMut(&AnswerEvent),
    ) -> Result<(ConversationId, Answer)> {
        if question.trim().is_empty() {
            return Err(EngineError::InvalidInput("the question is empty".into()));
        }
        let rt = tokio::runtime::Handle::current();
        let opts = rt.block_on(self.settings())?.ask_options();
        self.with_model(|model, cancel| {
            let lib = self.library()?;
            rt.block_on(answer::ask_in_conversation(
                &self.store,
                conversation,
                model,
                &lib,
                question,
                &opts,
                cancel,
                sink,
            ))
        })
    }

    /// Summarizes a document or note in pieces (blocking).
    pub fn summarize(
        &self,
        target: &SummaryTarget,
        sink: &mut dyn FnMut(&SummaryEvent),
    ) -> Result<Summary> {
        let (title, pages) = match target {
            SummaryTarget::NoteId(id) => {
                let note = tokio::runtime::Handle::current().block_on(self.note(*id))?;
                (note.title.clone(), note_pages(&note))
            }
            SummaryTarget::DocId(id) => {
                let doc = self.read(id)?;
                (doc.title, doc.pages)
            }
        };
        self.with_model(|model, cancel| {
            summarize::summarize(
                model,
                &title,
                &pages,
                &SummarizeOptions::default(),
                cancel,
                sink,
            )
        })
    }

    /// Stops the answer or summary being written, if any.
    pub fn stop(&self) {
        if let Ok(Some(c)) = self.running.lock().as_deref() {
            c.cancel();
        }
    }
}

fn note_pages(note: &Note) -> Vec<Page> {
    vec![Page {
        number: 1,
        text: note.body.clone(),
    }]
}

fn note_id_of(doc_id: &str) -> Result<NoteId> {
    doc_id
        .strip_prefix("note-")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| EngineError::NotFound(format!("no note with id {doc_id}")))
}

/// How a data folder is unlocked, known before anything is opened: with a passphrase when
/// a passphrase salt lies beside the database, else with the OS keychain.
pub fn key_mode_needed(data_dir: &Path) -> KeyModeNeeded {
    let db = crate::store::db_path(data_dir);
    if quire_store::salt_path(&db).exists() {
        KeyModeNeeded::Passphrase
    } else {
        KeyModeNeeded::Keychain
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyModeNeeded {
    Keychain,
    Passphrase,
}

/// Whether the data folder has a database yet (a first run has none).
pub fn has_database(data_dir: &Path) -> bool {
    crate::store::db_path(data_dir).exists()
}

/// Moves a data folder that cannot be opened (its key lost, its database damaged) aside
/// to `<name>-unreadable-<unix seconds>` beside it — nothing is deleted — so Quire can
/// start afresh. Returns where it went.
pub fn move_aside(data_dir: &Path) -> Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = data_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "quire".into());
    let to = data_dir.with_file_name(format!("{name}-unreadable-{secs}"));
    std::fs::rename(data_dir, &to).map_err(|source| EngineError::Io {
        path: data_dir.to_path_buf(),
        source,
    })?;
    // The database's keychain entry (if any) is named by the `.keyid` that moved with
    // it, so the moved folder keeps its key and the new one gets its own.
    Ok(to)
}
