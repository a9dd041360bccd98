//! Quire's desktop shell. Every command translates its arguments, delegates to
//! [`quire_engine::session::Session`] and maps errors to `{code, message}`; streaming
//! commands send the engine's events over a Tauri channel. The start-up state (which
//! key, what went wrong, what the user can do about it) lives in [`startup`].

mod startup;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;

use quire_engine::session::{DocKind, DocumentText, Session, Settings, SummaryTarget};
use quire_engine::store_types::{Conversation, Message, Note, NoteEdit, SearchHit};
use quire_engine::summarize::Summary;
use quire_engine::{docs, EngineError, ModelInfo};
use serde::Serialize;
use serde_json::Value;
use tauri::ipc::{Channel, Response};
use tauri::{Manager, State};

pub use startup::{AppStatus, StartAction};

/// An error as the UI receives it: a stable code (mirrored in `ui/src/errors.ts`) and a
/// message a person can act on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IpcError {
    pub code: &'static str,
    pub message: String,
}

/// Codes the shell adds to the engine's.
pub const SHELL_ERROR_CODES: &[&str] = &["not_ready", "internal"];

impl From<EngineError> for IpcError {
    fn from(e: EngineError) -> Self {
        IpcError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<quire_engine::store_types::StoreError> for IpcError {
    fn from(e: quire_engine::store_types::StoreError) -> Self {
        EngineError::from(e).into()
    }
}

impl IpcError {
    fn not_ready() -> Self {
        IpcError {
            code: "not_ready",
            message: "Quire's data is locked: unlock it first".into(),
        }
    }

    fn internal(e: impl std::fmt::Display) -> Self {
        IpcError {
            code: "internal",
            message: format!("Quire hit an internal error: {e}"),
        }
    }
}

type Result<T> = std::result::Result<T, IpcError>;

/// The app's state: the start-up state, and the open session once unlocked.
pub struct App {
    start: startup::Startup,
}

async fn session(app: &State<'_, App>) -> Result<Arc<Session>> {
    app.start.session().await.ok_or_else(IpcError::not_ready)
}

/// Runs blocking engine work (PDF reading, embedding, the model) off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> quire_engine::Result<T> + Send + 'static,
) -> Result<T> {
    tauri::async_runtime::spawn_blocking(f)
        .await
        .map_err(IpcError::internal)?
        .map_err(IpcError::from)
}

fn event<T: Serialize>(channel: &Channel<Value>, e: &T) {
    if let Ok(v) = serde_json::to_value(e) {
        let _ = channel.send(v);
    }
}

// ---- start-up --------------------------------------------------------------------------

#[tauri::command]
async fn app_status(app: State<'_, App>) -> Result<AppStatus> {
    Ok(app.start.status_now().await)
}

/// Once the data folder is open, its added folders are watched.
async fn watch_folders(app: &State<'_, App>, watcher: &State<'_, watch::Watcher>) {
    if let Some(s) = app.start.session().await {
        if let Ok(folders) = s.folders().await {
            watcher.watch(&folders);
        }
    }
}

#[tauri::command]
async fn unlock(
    app: State<'_, App>,
    watcher: State<'_, watch::Watcher>,
    passphrase: String,
) -> Result<AppStatus> {
    let status = app.start.unlock(zeroize::Zeroizing::new(passphrase)).await;
    watch_folders(&app, &watcher).await;
    Ok(status)
}

#[tauri::command]
async fn use_passphrase(app: State<'_, App>) -> Result<AppStatus> {
    app.start.use_passphrase().await
}

#[derive(Serialize)]
struct Afresh {
    moved_to: PathBuf,
    status: AppStatus,
}

#[tauri::command]
async fn start_afresh(app: State<'_, App>, watcher: State<'_, watch::Watcher>) -> Result<Afresh> {
    let (moved_to, status) = app.start.start_afresh().await?;
    watch_folders(&app, &watcher).await;
    Ok(Afresh { moved_to, status })
}

#[tauri::command]
async fn retry(app: State<'_, App>, watcher: State<'_, watch::Watcher>) -> Result<AppStatus> {
    let status = app.start.open().await;
    watch_folders(&app, &watcher).await;
    Ok(status)
}

// ---- models ----------------------------------------------------------------------------

/// A model as Settings shows it.
#[derive(Debug, Clone, Serialize)]
pub struct UiModel {
    path: PathBuf,
    name: Option<String>,
    architecture: String,
    parameters: u64,
    quantization: String,
    context_length: Option<u64>,
    file_size: u64,
}

impl From<ModelInfo> for UiModel {
    fn from(m: ModelInfo) -> Self {
        UiModel {
            path: m.path,
            name: m.name,
            architecture: m.architecture,
            parameters: m.parameters,
            quantization: m.quantization,
            context_length: m.context_length,
            file_size: m.size_bytes,
        }
    }
}

#[tauri::command]
async fn list_models(app: State<'_, App>) -> Result<Vec<UiModel>> {
    let s = session(&app).await?;
    Ok(s.models().await?.into_iter().map(UiModel::from).collect())
}

#[tauri::command]
async fn select_model(app: State<'_, App>, path: PathBuf) -> Result<UiModel> {
    let s = session(&app).await?;
    let settings = Settings {
        model_path: Some(path),
        ..s.settings().await?
    };
    s.set_settings(settings).await?;
    Ok(s.model_info().await?.into())
}

#[tauri::command]
async fn import_model(app: State<'_, App>, path: PathBuf) -> Result<UiModel> {
    let s = session(&app).await?;
    Ok(s.import_model(&path).await?.into())
}

// ---- library ---------------------------------------------------------------------------

/// A library document as the UI lists it.
#[derive(Serialize)]
struct UiDoc {
    #[serde(flatten)]
    entry: docs::DocEntry,
    kind: DocKind,
}

#[tauri::command]
async fn list_documents(app: State<'_, App>) -> Result<Vec<UiDoc>> {
    let docs = session(&app).await?.documents()?;
    Ok(docs
        .into_iter()
        .map(|entry| UiDoc {
            kind: DocKind::of(&entry),
            entry,
        })
        .collect())
}

#[tauri::command]
async fn ingest(
    app: State<'_, App>,
    watcher: State<'_, watch::Watcher>,
    paths: Vec<PathBuf>,
    on_event: Channel<Value>,
) -> Result<docs::IngestReport> {
    let s = session(&app).await?;
    let s2 = s.clone();
    let report =
        blocking(move || s2.ingest(&paths, &mut |e: &docs::IngestEvent| event(&on_event, e)))
            .await?;
    watcher.watch(&s.folders().await?);
    Ok(report)
}

#[tauri::command]
async fn list_folders(app: State<'_, App>) -> Result<Vec<PathBuf>> {
    Ok(session(&app).await?.folders().await?)
}

#[tauri::command]
async fn remove_document(app: State<'_, App>, id: String) -> Result<bool> {
    let s = session(&app).await?;
    blocking(move || s.remove_document(&id)).await
}

#[tauri::command]
async fn reindex_document(
    app: State<'_, App>,
    id: String,
    on_event: Channel<Value>,
) -> Result<docs::IngestReport> {
    let s = session(&app).await?;
    blocking(move || s.reindex(&id, &mut |e: &docs::IngestEvent| event(&on_event, e))).await
}

#[tauri::command]
async fn read_document(app: State<'_, App>, id: String) -> Result<DocumentText> {
    let s = session(&app).await?;
    blocking(move || s.read(&id)).await
}

/// A PDF's bytes for the built-in viewer (sent raw, not as JSON).
#[tauri::command]
async fn document_bytes(app: State<'_, App>, id: String) -> Result<Response> {
    let path = session(&app).await?.pdf_path(&id)?;
    let bytes = tokio::fs::read(&path).await.map_err(|source| {
        IpcError::from(EngineError::Io {
            path: path.clone(),
            source,
        })
    })?;
    Ok(Response::new(bytes))
}

// ---- chat ------------------------------------------------------------------------------

#[derive(Serialize)]
struct Asked {
    conversation_id: i64,
    answer: quire_engine::answer::Answer,
}

#[tauri::command]
async fn ask(
    app: State<'_, App>,
    question: String,
    conversation_id: Option<i64>,
    on_event: Channel<Value>,
) -> Result<Asked> {
    let s = session(&app).await?;
    let (conversation_id, answer) =
        blocking(move || s.ask(&question, conversation_id, &mut |e| event(&on_event, e))).await?;
    Ok(Asked {
        conversation_id,
        answer,
    })
}

#[tauri::command]
async fn stop(app: State<'_, App>) -> Result<()> {
    session(&app).await?.stop();
    Ok(())
}

#[tauri::command]
async fn list_conversations(app: State<'_, App>) -> Result<Vec<Conversation>> {
    Ok(session(&app).await?.store().list_conversations().await?)
}

#[tauri::command]
async fn get_messages(app: State<'_, App>, conversation_id: i64) -> Result<Vec<Message>> {
    let s = session(&app).await?;
    Ok(s.store().messages(conversation_id).await?)
}

#[tauri::command]
async fn rename_conversation(
    app: State<'_, App>,
    conversation_id: i64,
    title: String,
) -> Result<()> {
    let s = session(&app).await?;
    Ok(s.store()
        .rename_conversation(conversation_id, &title)
        .await?)
}

#[tauri::command]
async fn delete_conversation(app: State<'_, App>, conversation_id: i64) -> Result<()> {
    let s = session(&app).await?;
    Ok(s.store().delete_conversation(conversation_id).await?)
}

#[tauri::command]
async fn search_conversations(app: State<'_, App>, query: String) -> Result<Vec<SearchHit>> {
    let s = session(&app).await?;
    Ok(s.store().search_conversations(&query).await?)
}

#[tauri::command]
async fn export_conversation(
    app: State<'_, App>,
    conversation_id: i64,
    path: PathBuf,
) -> Result<()> {
    let s = session(&app).await?;
    let text = s.store().export_markdown(conversation_id).await?;
    tokio::fs::write(&path, text)
        .await
        .map_err(|source| EngineError::Io { path, source }.into())
}

// ---- notes -----------------------------------------------------------------------------

#[tauri::command]
async fn list_notes(app: State<'_, App>) -> Result<Vec<Note>> {
    Ok(session(&app).await?.store().list_notes().await?)
}

#[tauri::command]
async fn add_note(app: State<'_, App>, title: String, body: String) -> Result<Note> {
    let s = session(&app).await?;
    blocking(move || s.add_note(&title, &body)).await
}

#[tauri::command]
async fn edit_note(app: State<'_, App>, id: i64, title: String, body: String) -> Result<Note> {
    let s = session(&app).await?;
    let edit = NoteEdit {
        title: Some(title),
        body: Some(body),
        tags: None,
    };
    blocking(move || s.edit_note(id, &edit)).await
}

#[tauri::command]
async fn delete_note(app: State<'_, App>, id: i64) -> Result<()> {
    let s = session(&app).await?;
    blocking(move || s.delete_note(id)).await
}

#[tauri::command]
async fn summarize(
    app: State<'_, App>,
    target: SummaryTarget,
    on_event: Channel<Value>,
) -> Result<Summary> {
    let s = session(&app).await?;
    blocking(move || s.summarize(&target, &mut |e| event(&on_event, e))).await
}

// ---- settings --------------------------------------------------------------------------

#[tauri::command]
async fn get_settings(app: State<'_, App>) -> Result<Settings> {
    Ok(session(&app).await?.settings().await?)
}

#[tauri::command]
async fn set_settings(app: State<'_, App>, settings: Settings) -> Result<Settings> {
    Ok(session(&app).await?.set_settings(settings).await?)
}

/// Whether the webview may go to `url`: only the app's own pages (every platform's form
/// of Tauri's asset origin, and the dev server in debug builds).
pub fn navigation_allowed(url: &tauri::Url) -> bool {
    match url.scheme() {
        "tauri" => url.host_str() == Some("localhost"),
        "http" | "https" => {
            url.host_str() == Some("tauri.localhost")
                || (cfg!(debug_assertions) && url.host_str() == Some("localhost"))
        }
        _ => false,
    }
}

/// Starts the desktop app.
pub fn run() {
    let data_dir = quire_engine::paths::data_dir(None);
    let guard = tauri::plugin::Builder::<tauri::Wry>::new("navigation-guard")
        .on_navigation(|_, url| navigation_allowed(url))
        .build();
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(guard)
        .manage(App {
            start: startup::Startup::new(data_dir),
        })
        .setup(|app| {
            app.manage(watch::Watcher::new(app.handle().clone()));
            // Open the data folder in the background: the window shows at once and asks
            // `app_status`, which waits for this first attempt.
            let handle = app.handle().clone();
            tauri::async_runtime::spawn(async move {
                let state = handle.state::<App>();
                state.start.open().await;
                watch_folders(&state, &handle.state::<watch::Watcher>()).await;
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            app_status,
            unlock,
            use_passphrase,
            start_afresh,
            retry,
            list_models,
            select_model,
            import_model,
            list_documents,
            ingest,
            list_folders,
            remove_document,
            reindex_document,
            read_document,
            document_bytes,
            ask,
            stop,
            list_conversations,
            get_messages,
            rename_conversation,
            delete_conversation,
            search_conversations,
            export_conversation,
            list_notes,
            add_note,
            edit_note,
            delete_note,
            summarize,
            get_settings,
            set_settings,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("quire-desktop: could not start the window: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UI's list of error codes (`ui/src/errors.ts`) and the Rust side's are the same
    /// set, so every error the shell can send has a hint in the UI and vice versa.
    #[test]
    fn error_codes_match_the_typescript_list() {
        let ts =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../ui/src/errors.ts"))
                .expect("ui/src/errors.ts");
        let start = ts.find("ERROR_CODES").expect("ERROR_CODES in errors.ts");
        let open = start + ts[start..].find('[').expect("[");
        let close = open + ts[open..].find(']').expect("]");
        let mut ui: Vec<String> = ts[open + 1..close]
            .split(',')
            .map(|s| s.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let mut rust: Vec<String> = quire_engine::ERROR_CODES
            .iter()
            .chain(SHELL_ERROR_CODES)
            .map(|s| s.to_string())
            .collect();
        ui.sort();
        rust.sort();
        assert_eq!(ui, rust, "ui/src/errors.ts and the Rust error codes differ");
    }

    #[test]
    fn engine_errors_cross_with_their_code_and_message() {
        let e = IpcError::from(EngineError::Busy("still answering"));
        assert_eq!(e.code, "busy");
        assert_eq!(e.message, "still answering");
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"code": "busy", "message": "still answering"})
        );
    }

    #[test]
    fn only_the_apps_own_pages_can_be_loaded() {
        let ok = [
            "tauri://localhost/",
            "tauri://localhost/index.html",
            "http://tauri.localhost/",
        ];
        for u in ok {
            assert!(navigation_allowed(&u.parse().unwrap()), "{u}");
        }
        let blocked = [
            "https://example.com/",
            "http://127.0.0.1:8080/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "tauri://evil.example/",
            "data:text/html,hi",
        ];
        for u in blocked {
            assert!(!navigation_allowed(&u.parse().unwrap()), "{u}");
        }
    }
}
