//! The engine's encrypted store: where the database lives, where its key comes from, and
//! how the key is rotated.
//!
//! The key is a random 256-bit key in the OS keychain by default (one entry per data
//! folder), or, by choice (for a machine with no keychain), derived from a passphrase
//! with Argon2id. There is never a plaintext key file and never an unencrypted fallback.
//!
//! The search index is sealed with its own random key, kept inside the encrypted
//! database: whoever opens the database can open the index, and rotating the database
//! key is one SQLCipher transaction.

use std::path::{Path, PathBuf};

use quire_store::{Key, KeySource, NewKey, Store, StoreError};
use zeroize::Zeroizing;

use crate::error::{EngineError, Result};
use crate::paths;

/// How the database key is obtained.
#[derive(Clone)]
pub enum KeyMode {
    /// Quire's entry in the OS keychain (created at first run).
    Keychain,
    /// Derived from this passphrase with the salt beside the database.
    Passphrase(Zeroizing<String>),
}

impl KeyMode {
    /// Passphrase mode with this passphrase (kept in memory that is zeroed when dropped).
    pub fn with_passphrase(p: impl Into<String>) -> KeyMode {
        KeyMode::Passphrase(Zeroizing::new(p.into()))
    }

    pub fn name(&self) -> &'static str {
        match self {
            KeyMode::Keychain => "keychain",
            KeyMode::Passphrase(_) => "passphrase",
        }
    }

    fn passphrase(&self) -> Option<&str> {
        match self {
            KeyMode::Keychain => None,
            KeyMode::Passphrase(p) => Some(p.as_str()),
        }
    }
}

/// The database file: `<data dir>/quire.db`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("quire.db")
}

/// The sealed search index: `<data dir>/index`.
pub fn index_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("index")
}

fn source(mode: &KeyMode, db: &Path) -> quire_store::Result<KeySource> {
    match mode {
        KeyMode::Keychain => KeySource::keychain_for(db),
        KeyMode::Passphrase(p) => Ok(KeySource::passphrase(p.clone(), db)),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> quire_store::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(EngineError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(e),
        }),
    }
}

/// Opens (creating at first run) the encrypted store in `data_dir`.
///
/// A key rotation that stopped after the database took the new key is finished here:
/// when the current key does not open the database but the pending one does, the
/// pending key becomes the current one.
pub async fn open(data_dir: &Path, mode: &KeyMode) -> Result<Store> {
    paths::ensure_dir(data_dir)?;
    let db = db_path(data_dir);
    let first = async {
        let src = source(mode, &db)?;
        let key = src.load_async(db.clone()).await?;
        Store::open(&db, &key).await
    };
    let err = match first.await {
        Ok(store) => return Ok(store),
        Err(e @ (StoreError::WrongKey { .. } | StoreError::KeyMissing { .. })) => e,
        Err(e) => return Err(e.into()),
    };
    let pass = mode.passphrase().map(|p| Zeroizing::new(p.to_string()));
    let db2 = db.clone();
    let pending =
        blocking(move || quire_store::pending_key(&db2, pass.as_deref().map(|p| p.as_str()))).await;
    if let Ok(Some(key)) = pending {
        if let Ok(store) = Store::open(&db, &key).await {
            let db2 = db.clone();
            blocking(move || quire_store::commit_rotation(&db2)).await?;
            return Ok(store);
        }
    }
    Err(err.into())
}

/// Re-encrypts the store with a new key — a new random keychain key, or one from a new
/// passphrase (which may also switch modes) — and re-seals the search index with a new
/// key of its own. Run it with no other Quire process using the data folder.
///
/// Safe to interrupt at any point: see [`quire_store::prepare_rotation`]; the index
/// re-seal is recovered by [`index_key`].
pub async fn rotate(data_dir: &Path, mode: &KeyMode, to: NewKey) -> Result<()> {
    let store = open(data_dir, mode).await?;
    let db = db_path(data_dir);
    let db2 = db.clone();
    let new: Key = blocking(move || quire_store::prepare_rotation(&db2, to)).await?;
    if let Err(e) = store.rekey(&new).await {
        // Only a rekey that never reached the file can be undone; if the new key opens
        // it, the rotation is committed instead.
        let still_old = Store::open(&db, &new).await.is_err();
        let db2 = db.clone();
        if still_old {
            let _ = blocking(move || quire_store::abort_rotation(&db2)).await;
        } else {
            blocking(move || quire_store::commit_rotation(&db2)).await?;
        }
        store.close().await;
        return Err(e.into());
    }
    let db2 = db.clone();
    blocking(move || quire_store::commit_rotation(&db2)).await?;
    let resealed = reseal_index(data_dir, &store).await;
    store.close().await;
    resealed
}

const INDEX_KEY: &str = "index.key";
const INDEX_KEY_NEXT: &str = "index.key.next";

async fn stored_key(store: &Store, name: &str) -> Result<Option<Key>> {
    Ok(store
        .get_setting(name)
        .await?
        .map(Zeroizing::new)
        .and_then(|s| Key::from_hex(&s)))
}

/// The key that seals the search index, kept in the store (made at first use).
///
/// Finishes or undoes a re-seal that was interrupted (see [`reseal_index`]) first. An
/// index sealed with a key the store does not hold (a data folder from an older Quire)
/// cannot be read by anyone and is removed; the next ingest rebuilds it.
pub async fn index_key(data_dir: &Path, store: &Store) -> Result<Zeroizing<[u8; 32]>> {
    let dir = index_dir(data_dir);
    quire_docs::sealed::recover(&dir).map_err(|source| EngineError::Io {
        path: dir.clone(),
        source,
    })?;
    if let Some(next) = stored_key(store, INDEX_KEY_NEXT).await? {
        if quire_docs::sealed::opens_with(&dir, next.as_bytes()) {
            store.set_setting(INDEX_KEY, &next.to_hex()).await?;
        }
        store.delete_setting(INDEX_KEY_NEXT).await?;
    }
    if let Some(key) = stored_key(store, INDEX_KEY).await? {
        return Ok(Zeroizing::new(*key.as_bytes()));
    }
    let key = Key::generate()?;
    if quire_docs::sealed::is_sealed_index(&dir) {
        std::fs::remove_dir_all(&dir).map_err(|source| EngineError::Io {
            path: dir.clone(),
            source,
        })?;
    }
    store.set_setting(INDEX_KEY, &key.to_hex()).await?;
    Ok(Zeroizing::new(*key.as_bytes()))
}

/// Re-seals every index file under a new random key: written beside the index, swapped
/// in with two renames, and the key committed to the store after. [`index_key`] recovers
/// from a crash at any point.
pub async fn reseal_index(data_dir: &Path, store: &Store) -> Result<()> {
    let old = index_key(data_dir, store).await?;
    let dir = index_dir(data_dir);
    if !quire_docs::sealed::is_sealed_index(&dir) {
        return Ok(());
    }
    let new = Key::generate()?;
    store.set_setting(INDEX_KEY_NEXT, &new.to_hex()).await?;
    let d = dir.clone();
    let (o, n) = (old.clone(), Zeroizing::new(*new.as_bytes()));
    tokio::task::spawn_blocking(move || quire_docs::sealed::reseal(&d, &o, &n))
        .await
        .map_err(|e| EngineError::Io {
            path: dir.clone(),
            source: std::io::Error::other(e),
        })?
        .map_err(|source| EngineError::Io {
            path: dir.clone(),
            source,
        })?;
    store.set_setting(INDEX_KEY, &new.to_hex()).await?;
    store.delete_setting(INDEX_KEY_NEXT).await?;
    Ok(())
}

/// [`open`] then [`index_key`], for callers outside any async runtime (the CLI, tests):
/// runs them on a runtime of its own, which it must not be called from inside.
pub fn index_key_blocking(data_dir: &Path, mode: &KeyMode) -> Result<Zeroizing<[u8; 32]>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| EngineError::Io {
            path: data_dir.to_path_buf(),
            source,
        })?;
    rt.block_on(async {
        let store = open(data_dir, mode).await?;
        let key = index_key(data_dir, &store).await;
        store.close().await;
        key
    })
}
