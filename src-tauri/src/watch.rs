//! Folders added to the library are watched: a change under one (a file added, edited or
//! removed) re-reads the watched folders two seconds after the last change, and the UI
//! hears `library-changed` with what was done.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher as _};
use tauri::{AppHandle, Emitter, Manager};
use tokio::sync::mpsc;

use crate::App;

/// Quiet time after the last change before the folders are read again.
const SETTLE: Duration = Duration::from_secs(2);

pub struct Watcher {
    tx: mpsc::UnboundedSender<()>,
    inner: Mutex<Option<notify::RecommendedWatcher>>,
    watched: Mutex<HashSet<PathBuf>>,
}

impl Watcher {
    pub fn new(app: AppHandle) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        tauri::async_runtime::spawn(async move {
            while rx.recv().await.is_some() {
                // Let a burst of changes (a folder copied in) settle first.
                loop {
                    match tokio::time::timeout(SETTLE, rx.recv()).await {
                        Ok(Some(())) => continue,
                        Ok(None) => return,
                        Err(_) => break,
                    }
                }
                let Some(session) = app.state::<App>().start.session().await else {
                    continue;
                };
                let report = tauri::async_runtime::spawn_blocking(move || {
                    session.rescan(&mut |_: &quire_engine::docs::IngestEvent| {})
                })
                .await;
                if let Ok(Ok(r)) = report {
                    if r.added + r.updated + r.removed + r.failed > 0 {
                        let _ = app.emit("library-changed", &r);
                    }
                }
            }
        });
        Self {
            tx,
            inner: Mutex::new(None),
            watched: Mutex::new(HashSet::new()),
        }
    }

    /// Watches these folders (recursively) from now on; ones already watched are kept.
    pub fn watch(&self, folders: &[PathBuf]) {
        let (Ok(mut inner), Ok(mut watched)) = (self.inner.lock(), self.watched.lock()) else {
            return;
        };
        if inner.is_none() {
            let tx = self.tx.clone();
            let w = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                if let Ok(e) = res {
                    if matches!(
                        e.kind,
                        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_)
                    ) {
                        let _ = tx.send(());
                    }
                }
            });
            match w {
                Ok(w) => *inner = Some(w),
                // No watching on this system (inotify limits): folders are still read
                // at each ingest and re-index.
                Err(_) => return,
            }
        }
        let w = inner.as_mut().expect("made above");
        for f in folders {
            if !watched.contains(f) && w.watch(f, RecursiveMode::Recursive).is_ok() {
                watched.insert(f.clone());
            }
        }
    }
}
