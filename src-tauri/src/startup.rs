//! The start-up state: which key opens the data folder, and — when it cannot be opened —
//! what went wrong and what the user can do (retry, switch a new folder to a passphrase,
//! or move an unreadable folder aside and start afresh). Never a crash or a blank window.

use std::path::PathBuf;
use std::sync::Arc;

use quire_engine::session::{self, KeyModeNeeded, Session};
use quire_engine::store::KeyMode;
use serde::Serialize;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use crate::{IpcError, UiModel};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Ready,
    /// The folder is passphrase-protected: ask for it.
    NeedsPassphrase,
    /// A new folder the user chose to protect with a passphrase: ask for a new one.
    SetupPassphrase,
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAction {
    Retry,
    UsePassphrase,
    StartAfresh,
}

/// What the start-up screen shows.
#[derive(Debug, Clone, Serialize)]
pub struct AppStatus {
    pub state: State,
    pub error: Option<IpcError>,
    pub actions: Vec<StartAction>,
    pub key_mode: KeyModeNeeded,
    pub data_dir: PathBuf,
    pub model: Option<UiModel>,
    pub model_error: Option<IpcError>,
    pub version: &'static str,
}

pub struct Startup {
    data_dir: PathBuf,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    session: Option<Arc<Session>>,
    last: Option<AppStatus>,
    /// The user chose a passphrase for a folder that has no database yet.
    passphrase_chosen: bool,
}

/// What the user can do about a start-up error, by its code.
pub fn actions_for(code: &str, has_database: bool) -> Vec<StartAction> {
    match code {
        "keychain_unavailable" | "keychain_locked" | "keychain" if !has_database => {
            vec![StartAction::Retry, StartAction::UsePassphrase]
        }
        "key_missing" | "wrong_key" | "store_corrupt" | "not_encrypted" => {
            vec![StartAction::Retry, StartAction::StartAfresh]
        }
        _ => vec![StartAction::Retry],
    }
}

impl Startup {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            inner: Mutex::new(Inner::default()),
        }
    }

    pub async fn session(&self) -> Option<Arc<Session>> {
        self.inner.lock().await.session.clone()
    }

    fn status(&self, state: State, error: Option<IpcError>) -> AppStatus {
        let has_db = session::has_database(&self.data_dir);
        AppStatus {
            state,
            actions: error
                .as_ref()
                .map(|e| actions_for(e.code, has_db))
                .unwrap_or_default(),
            error,
            key_mode: session::key_mode_needed(&self.data_dir),
            data_dir: self.data_dir.clone(),
            model: None,
            model_error: None,
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    async fn ready(&self, inner: &mut Inner, s: Session) -> AppStatus {
        let mut status = self.status(State::Ready, None);
        match s.model_info().await {
            Ok(m) => status.model = Some(m.into()),
            Err(e) => status.model_error = Some(e.into()),
        }
        if status.key_mode == KeyModeNeeded::Keychain && inner.passphrase_chosen {
            inner.passphrase_chosen = false;
        }
        inner.session = Some(Arc::new(s));
        inner.last = Some(status.clone());
        status
    }

    /// The current state, after the first attempt to open (which it waits for).
    pub async fn status_now(&self) -> AppStatus {
        let last = self.inner.lock().await.last.clone();
        match last {
            Some(s) => s,
            None => self.open().await,
        }
    }

    /// Tries to open the data folder with the key it needs.
    pub async fn open(&self) -> AppStatus {
        let mut inner = self.inner.lock().await;
        if inner.session.is_some() {
            if let Some(s) = &inner.last {
                return s.clone();
            }
        }
        let needed = session::key_mode_needed(&self.data_dir);
        let from_env = std::env::var("QUIRE_PASSPHRASE")
            .ok()
            .filter(|p| !p.is_empty());
        let mode = match (needed, from_env) {
            (_, Some(p)) => KeyMode::Passphrase(Zeroizing::new(p)),
            (KeyModeNeeded::Passphrase, None) => {
                let s = self.status(State::NeedsPassphrase, None);
                inner.last = Some(s.clone());
                return s;
            }
            (KeyModeNeeded::Keychain, None) if inner.passphrase_chosen => {
                let s = self.status(State::SetupPassphrase, None);
                inner.last = Some(s.clone());
                return s;
            }
            (KeyModeNeeded::Keychain, None) => KeyMode::Keychain,
        };
        match Session::open(&self.data_dir, &mode).await {
            Ok(s) => self.ready(&mut inner, s).await,
            Err(e) => {
                let s = self.status(State::Error, Some(e.into()));
                inner.last = Some(s.clone());
                s
            }
        }
    }

    /// Opens (or, for a new folder, creates) the store with a passphrase. A wrong one
    /// leaves the passphrase screen up with the error.
    pub async fn unlock(&self, passphrase: Zeroizing<String>) -> AppStatus {
        let mut inner = self.inner.lock().await;
        if let (Some(_), Some(s)) = (&inner.session, &inner.last) {
            return s.clone();
        }
        let state = match session::key_mode_needed(&self.data_dir) {
            KeyModeNeeded::Passphrase => State::NeedsPassphrase,
            KeyModeNeeded::Keychain => State::SetupPassphrase,
        };
        if passphrase.trim().is_empty() {
            let e = IpcError {
                code: "invalid_input",
                message: "an empty passphrase would not protect anything".into(),
            };
            let s = self.status(state, Some(e));
            inner.last = Some(s.clone());
            return s;
        }
        match Session::open(&self.data_dir, &KeyMode::Passphrase(passphrase)).await {
            Ok(s) => self.ready(&mut inner, s).await,
            Err(e) => {
                let mut s = self.status(state, Some(e.into()));
                s.actions.clear();
                inner.last = Some(s.clone());
                s
            }
        }
    }

    /// For a folder with no database yet (no keychain on this machine, say): protect it
    /// with a passphrase instead.
    pub async fn use_passphrase(&self) -> Result<AppStatus, IpcError> {
        if session::has_database(&self.data_dir) {
            return Err(IpcError {
                code: "invalid_input",
                message: "this data folder already has a key; rotate it with `quire key rotate --to-passphrase`".into(),
            });
        }
        let mut inner = self.inner.lock().await;
        inner.passphrase_chosen = true;
        let s = self.status(State::SetupPassphrase, None);
        inner.last = Some(s.clone());
        Ok(s)
    }

    /// Moves an unreadable data folder aside (nothing is deleted) and starts with a new
    /// one.
    pub async fn start_afresh(&self) -> Result<(PathBuf, AppStatus), IpcError> {
        {
            let mut inner = self.inner.lock().await;
            if inner.session.is_some() {
                return Err(IpcError {
                    code: "invalid_input",
                    message: "the data folder opens fine; there is nothing to start afresh from"
                        .into(),
                });
            }
            inner.passphrase_chosen = false;
            inner.last = None;
        }
        let moved = session::move_aside(&self.data_dir)?;
        Ok((moved, self.open().await))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_key_offers_to_start_afresh_and_a_missing_keychain_offers_a_passphrase() {
        assert!(actions_for("key_missing", true).contains(&StartAction::StartAfresh));
        assert!(actions_for("wrong_key", true).contains(&StartAction::StartAfresh));
        assert!(actions_for("keychain_unavailable", false).contains(&StartAction::UsePassphrase));
        // An existing folder keeps its key: no switching it to a passphrase from here.
        assert_eq!(
            actions_for("keychain_unavailable", true),
            vec![StartAction::Retry]
        );
        assert_eq!(actions_for("disk_full", true), vec![StartAction::Retry]);
    }
}
