//! The engine's encrypted store: where the database lives and where its key comes from.
//!
//! The key is a random 256-bit key in the OS keychain by default, or, by choice (for a
//! machine with no keychain), derived from a passphrase with Argon2id. There is never a
//! plaintext key file and never an unencrypted fallback.

use std::path::{Path, PathBuf};

use quire_store::{KeySource, Store};
use zeroize::Zeroizing;

use crate::error::Result;
use crate::paths;

/// How the database key is obtained.
pub enum KeyMode {
    /// Quire's entry in the OS keychain (created at first run).
    Keychain,
    /// Derived from this passphrase with the salt beside the database.
    Passphrase(Zeroizing<String>),
}

impl KeyMode {
    pub fn name(&self) -> &'static str {
        match self {
            KeyMode::Keychain => "keychain",
            KeyMode::Passphrase(_) => "passphrase",
        }
    }
}

/// The database file: `<data dir>/quire.db`.
pub fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("quire.db")
}

fn source(mode: KeyMode, db: &Path) -> KeySource {
    match mode {
        KeyMode::Keychain => KeySource::keychain_default(),
        KeyMode::Passphrase(p) => KeySource::passphrase(p, db),
    }
}

/// Opens (creating at first run) the encrypted store in `data_dir`.
pub async fn open(data_dir: &Path, mode: KeyMode) -> Result<Store> {
    paths::ensure_dir(data_dir)?;
    let db = db_path(data_dir);
    let key = source(mode, &db).load_async(db.clone()).await?;
    Ok(Store::open(&db, &key).await?)
}

/// The key that seals the search index: derived from the store's key (so one keychain
/// entry or passphrase unlocks everything). Blocks on the keychain or Argon2id.
pub fn index_key(data_dir: &Path, mode: KeyMode) -> Result<Zeroizing<[u8; 32]>> {
    paths::ensure_dir(data_dir)?;
    let db = db_path(data_dir);
    let key = source(mode, &db).load(&db)?;
    Ok(key.derive_subkey("search index"))
}
