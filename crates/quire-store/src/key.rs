//! The database key: 32 random bytes kept in the system keychain, or derived with Argon2id
//! from a passphrase and a salt file. The key itself is never written anywhere by Quire.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use rand::TryRngCore;
use zeroize::Zeroizing;

use crate::error::{Result, StoreError};

/// The keychain service Quire stores its key under.
pub const KEYCHAIN_SERVICE: &str = "quire";
/// The keychain account (user name) of Quire's database key.
pub const KEYCHAIN_ACCOUNT: &str = "database-key";

/// Argon2id cost for passphrase mode: 64 MiB, 3 passes, 1 lane (the RFC 9106 second
/// recommendation). Changing these changes every passphrase-derived key.
const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
const ARGON2_PASSES: u32 = 3;
const ARGON2_LANES: u32 = 1;
const SALT_LEN: usize = 16;

/// A 256-bit SQLCipher key. It is wiped from memory when dropped and never printed.
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; 32]>);

impl Key {
    /// Wraps raw key bytes. The caller's copy of `bytes` is not wiped.
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(Zeroizing::new(bytes))
    }

    /// 32 bytes from the operating system's random number generator.
    pub fn generate() -> Result<Key> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng
            .try_fill_bytes(&mut bytes[..])
            .map_err(|e| StoreError::Entropy(e.to_string()))?;
        Ok(Key(bytes))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A key for another purpose (the sealed search index), derived one-way from this
    /// one: SHA-256 over a label and the key.
    pub fn derive_subkey(&self, label: &str) -> Zeroizing<[u8; 32]> {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"quire subkey v1\0");
        h.update(label.as_bytes());
        h.update([0]);
        h.update(self.0.as_slice());
        Zeroizing::new(h.finalize().into())
    }

    /// Lower-case hex, 64 characters.
    pub fn to_hex(&self) -> Zeroizing<String> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        // Sized up front so the string never reallocates and leaves a copy behind.
        let mut hex = Zeroizing::new(String::with_capacity(64));
        for byte in self.0.iter() {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        hex
    }

    /// Parses 64 hex digits (either case, surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Option<Key> {
        let text = text.trim().as_bytes();
        if text.len() != 64 {
            return None;
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        for (out, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
            *out = (hex_digit(pair[0])? << 4) | hex_digit(pair[1])?;
        }
        Some(Key(bytes))
    }

    /// The value of SQLCipher's `PRAGMA key` for a raw key: `"x'<64 hex>'"`. With exactly
    /// 64 hex digits SQLCipher uses the bytes as the key and skips its own PBKDF2.
    ///
    /// This string is handed to sqlx, which keeps it in its connect options for as long as
    /// the pool lives (it re-sends it on every new connection); it is not wiped.
    pub(crate) fn sqlcipher_pragma(&self) -> String {
        format!("\"x'{}'\"", self.to_hex().as_str())
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl PartialEq for Key {
    /// Compares without an early exit, so the time taken says nothing about the bytes.
    fn eq(&self, other: &Key) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// Where the key comes from.
pub enum KeySource {
    /// A random key in the system keychain (Secret Service on Linux, the macOS Keychain,
    /// the Windows Credential Manager), created at first run.
    Keychain { service: String, account: String },
    /// Argon2id over the passphrase with a random 16-byte salt kept in `salt_path`
    /// (`<db>.salt`, see [`salt_path`]). The salt is not secret; the key is never stored.
    Passphrase {
        passphrase: Zeroizing<String>,
        salt_path: PathBuf,
    },
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Keychain { service, account } => f
                .debug_struct("Keychain")
                .field("service", service)
                .field("account", account)
                .finish(),
            Self::Passphrase { salt_path, .. } => f
                .debug_struct("Passphrase")
                .field("passphrase", &"<redacted>")
                .field("salt_path", salt_path)
                .finish(),
        }
    }
}

/// The salt file of a database: its full file name with `.salt` appended.
pub fn salt_path(db_path: &Path) -> PathBuf {
    sibling(db_path, ".salt")
}

impl KeySource {
    /// Quire's keychain entry ([`KEYCHAIN_SERVICE`], [`KEYCHAIN_ACCOUNT`]).
    pub fn keychain_default() -> KeySource {
        KeySource::keychain(KEYCHAIN_SERVICE, KEYCHAIN_ACCOUNT)
    }

    pub fn keychain(service: impl Into<String>, account: impl Into<String>) -> KeySource {
        KeySource::Keychain {
            service: service.into(),
            account: account.into(),
        }
    }

    /// Passphrase mode for the database at `db_path`, with its salt beside it.
    pub fn passphrase(passphrase: Zeroizing<String>, db_path: &Path) -> KeySource {
        KeySource::Passphrase {
            passphrase,
            salt_path: salt_path(db_path),
        }
    }

    /// Gets the key for the database at `db_path`, creating it at first run: a new random
    /// key in the keychain, or a new salt file. A key is only ever created when the
    /// database does not exist yet; for an existing database a missing key is
    /// [`StoreError::KeyMissing`].
    ///
    /// This blocks: keychain calls go over D-Bus or to the OS, and Argon2id takes a few
    /// hundred milliseconds. From async code use [`KeySource::load_async`].
    pub fn load(&self, db_path: &Path) -> Result<Key> {
        let db_exists = db_path.exists();
        match self {
            Self::Keychain { service, account } => {
                keychain::load(service, account, db_path, db_exists)
            }
            Self::Passphrase {
                passphrase,
                salt_path,
            } => {
                let salt = read_or_create_salt(salt_path, db_path, db_exists)?;
                derive_passphrase_key(passphrase, &salt)
            }
        }
    }

    /// [`KeySource::load`] on tokio's blocking pool.
    pub async fn load_async(self, db_path: PathBuf) -> Result<Key> {
        let path = db_path.clone();
        match tokio::task::spawn_blocking(move || self.load(&db_path)).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(StoreError::io(&path, io::Error::other(e))),
        }
    }
}

/// Argon2id (m = 64 MiB, t = 3, p = 1) of `passphrase` with `salt`, 32 bytes out.
pub fn derive_passphrase_key(passphrase: &str, salt: &[u8; 16]) -> Result<Key> {
    if passphrase.is_empty() {
        return Err(StoreError::InvalidInput(
            "the passphrase is empty; choose a passphrase to encrypt Quire's database".into(),
        ));
    }
    let params = argon2::Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, Some(32))
        .map_err(|e| StoreError::InvalidInput(format!("Argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut bytes = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut bytes[..])
        .map_err(|e| StoreError::InvalidInput(format!("deriving the key: {e}")))?;
    Ok(Key(bytes))
}

/// Reads the 16-byte salt, or creates it when the database does not exist yet. A salt
/// file that is missing or the wrong size beside an existing database is an error: a new
/// salt would give a key that can never open it.
fn read_or_create_salt(
    salt_path: &Path,
    db_path: &Path,
    db_exists: bool,
) -> Result<[u8; SALT_LEN]> {
    match read_salt(salt_path) {
        Ok(Some(salt)) => return Ok(salt),
        Ok(None) if db_exists => {
            return Err(StoreError::KeyMissing {
                path: db_path.to_path_buf(),
                what: format!(
                "its salt file {} is not 16 bytes long, so the passphrase key cannot be derived",
                salt_path.display()
            ),
            })
        }
        Ok(None) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound && db_exists => {
            return Err(StoreError::KeyMissing {
                path: db_path.to_path_buf(),
                what: format!(
                    "its salt file {} is missing, so the passphrase key cannot be derived",
                    salt_path.display()
                ),
            })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(StoreError::io(salt_path, e)),
    }

    // No database yet: a new salt (replacing a damaged one from an interrupted first run).
    if let Some(dir) = salt_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
    }
    let salt: [u8; SALT_LEN] = random_bytes()?;
    let _ = fs::remove_file(salt_path);
    let created = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(salt_path)
        .and_then(|mut file| {
            file.write_all(&salt)?;
            file.sync_all()
        });
    match created {
        Ok(()) => Ok(salt),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match read_salt(salt_path) {
            Ok(Some(salt)) => Ok(salt),
            Ok(None) => Err(StoreError::Corrupt {
                path: salt_path.to_path_buf(),
                detail: "the salt file is not 16 bytes long".into(),
            }),
            Err(e) => Err(StoreError::io(salt_path, e)),
        },
        Err(e) => Err(StoreError::io(salt_path, e)),
    }
}

/// `Ok(None)` when the file exists but is not exactly 16 bytes.
fn read_salt(path: &Path) -> io::Result<Option<[u8; SALT_LEN]>> {
    let mut bytes = Vec::with_capacity(SALT_LEN + 1);
    fs::File::open(path)?
        .take(SALT_LEN as u64 + 1)
        .read_to_end(&mut bytes)?;
    Ok(<[u8; SALT_LEN]>::try_from(bytes.as_slice()).ok())
}

/// The file beside a database that names its keychain entry: `<db>.keyid`, holding a
/// random id (not a secret). Each database has its own entry, so two data folders never
/// share a key and rotating one never touches another; the id travels with the folder.
pub fn keyid_path(db_path: &Path) -> PathBuf {
    sibling(db_path, ".keyid")
}

fn sibling(db_path: &Path, suffix: &str) -> PathBuf {
    let mut name = db_path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn pending(path: &Path) -> PathBuf {
    sibling(path, ".pending")
}

fn account_for(id: &str) -> String {
    format!("{KEYCHAIN_ACCOUNT}-{id}")
}

/// `N` bytes from the operating system's random number generator.
fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| StoreError::Entropy(e.to_string()))?;
    Ok(bytes)
}

fn random_id() -> Result<String> {
    let bytes: [u8; 8] = random_bytes()?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Reads a key id file: `Ok(None)` when there is none.
fn read_id(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => {
            let id = s.trim();
            if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: "the key id file does not hold a key id".into(),
                });
            }
            Ok(Some(id.to_string()))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(path, e)),
    }
}

/// Writes `bytes` to `path` through a temporary file, synced, then renamed into place.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = sibling(path, ".tmp");
    let written = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::io(path, e));
    }
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StoreError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

impl KeySource {
    /// The keychain entry of the database at `db_path`, named by its `<db>.keyid` file
    /// ([`keyid_path`]). At first run (no database yet) a new id is written; a database
    /// without a key id file uses the single entry older versions kept
    /// ([`KEYCHAIN_ACCOUNT`]).
    pub fn keychain_for(db_path: &Path) -> Result<KeySource> {
        let path = keyid_path(db_path);
        let id = match read_id(&path)? {
            Some(id) => id,
            None if db_path.exists() => {
                return Ok(KeySource::keychain(KEYCHAIN_SERVICE, KEYCHAIN_ACCOUNT))
            }
            None => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
                }
                let id = random_id()?;
                write_synced(&path, id.as_bytes())?;
                id
            }
        };
        Ok(KeySource::keychain(KEYCHAIN_SERVICE, account_for(&id)))
    }
}

/// Where a rotated key goes.
pub enum NewKey {
    /// A new random key in a new keychain entry.
    Keychain,
    /// A key derived from this passphrase with a new salt.
    Passphrase(Zeroizing<String>),
}

/// Key rotation, in three steps that survive a crash between any two:
///
/// 1. [`prepare_rotation`] makes the new key and records it as *pending*: a new keychain
///    entry named by `<db>.keyid.pending`, or a new salt in `<db>.salt.pending`. The
///    current key still opens the database.
/// 2. [`Store::rekey`](crate::Store::rekey) re-encrypts the database in one transaction.
/// 3. [`commit_rotation`] renames the pending file over the current one (the commit
///    point) and removes the old keychain entry.
///
/// After a crash between 2 and 3 the current key no longer opens the database;
/// [`pending_key`] gives the key that does, and the caller commits. A pending key left
/// by a crash before 2 opens nothing and is replaced by the next rotation.
pub fn prepare_rotation(db_path: &Path, new: NewKey) -> Result<Key> {
    abort_rotation(db_path)?;
    match new {
        NewKey::Keychain => {
            let id = random_id()?;
            let key = Key::generate()?;
            keychain::store(KEYCHAIN_SERVICE, &account_for(&id), &key)?;
            write_synced(&pending(&keyid_path(db_path)), id.as_bytes())?;
            Ok(key)
        }
        NewKey::Passphrase(passphrase) => {
            let salt: [u8; SALT_LEN] = random_bytes()?;
            let key = derive_passphrase_key(&passphrase, &salt)?;
            write_synced(&pending(&salt_path(db_path)), &salt)?;
            Ok(key)
        }
    }
}

/// The pending key of an unfinished rotation, if there is one: from the keychain, or from
/// the pending salt with `passphrase` (the new passphrase the user typed).
pub fn pending_key(db_path: &Path, passphrase: Option<&str>) -> Result<Option<Key>> {
    if let Some(id) = read_id(&pending(&keyid_path(db_path)))? {
        return keychain::get(KEYCHAIN_SERVICE, &account_for(&id));
    }
    match (passphrase, read_salt(&pending(&salt_path(db_path)))) {
        (Some(p), Ok(Some(salt))) => derive_passphrase_key(p, &salt).map(Some),
        _ => Ok(None),
    }
}

/// Makes the pending key the current one (see [`prepare_rotation`]). When the rotation
/// changes mode, the old mode's file goes too; the old keychain entry is deleted last
/// (a failure there leaves only an entry that opens nothing).
pub fn commit_rotation(db_path: &Path) -> Result<()> {
    let keyid = keyid_path(db_path);
    let salt = salt_path(db_path);
    // The entry of the key being replaced (a database from before key id files used a
    // shared entry, which stays).
    let old_account = read_id(&keyid).ok().flatten().map(|id| account_for(&id));
    let rename = |from: &Path, to: &Path| {
        fs::rename(from, to)
            .map_err(|e| StoreError::io(to, e))
            .and_then(|()| sync_parent(to))
    };
    if pending(&keyid).exists() {
        rename(&pending(&keyid), &keyid)?;
        let _ = fs::remove_file(&salt);
    } else if pending(&salt).exists() {
        rename(&pending(&salt), &salt)?;
        let _ = fs::remove_file(&keyid);
    } else {
        return Err(StoreError::InvalidInput(
            "no key rotation is pending".into(),
        ));
    }
    sync_parent(&keyid)?;
    if let Some(account) = old_account {
        let _ = keychain::delete(KEYCHAIN_SERVICE, &account);
    }
    Ok(())
}

/// Forgets a pending key (its keychain entry and file), e.g. after a rotation that failed
/// before the database changed.
pub fn abort_rotation(db_path: &Path) -> Result<()> {
    let keyid = pending(&keyid_path(db_path));
    if let Ok(Some(id)) = read_id(&keyid) {
        let _ = keychain::delete(KEYCHAIN_SERVICE, &account_for(&id));
    }
    for path in [keyid, pending(&salt_path(db_path))] {
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::io(&path, e)),
        }
    }
    Ok(())
}

/// Removes a keychain entry (for tests and key rotation). A missing entry is not an error.
pub fn delete_keychain_entry(service: &str, account: &str) -> Result<()> {
    keychain::delete(service, account)
}

#[cfg(any(target_os = "linux", target_os = "macos", windows))]
mod keychain {
    use std::path::Path;

    use zeroize::Zeroizing;

    use super::Key;
    use crate::error::{Result, StoreError};

    pub(super) fn load(
        service: &str,
        account: &str,
        db_path: &Path,
        db_exists: bool,
    ) -> Result<Key> {
        let entry = entry(service, account)?;
        // What keyring returns is wrapped at once, so it is wiped when dropped.
        match entry.get_password().map(Zeroizing::new) {
            Ok(stored) => parse(&stored, service, account),
            Err(keyring::Error::NoEntry) if db_exists => Err(StoreError::KeyMissing {
                path: db_path.to_path_buf(),
                what: format!(
                    "the keychain has no key for it (service \"{service}\", account \"{account}\")"
                ),
            }),
            Err(keyring::Error::NoEntry) => {
                let key = Key::generate()?;
                entry.set_password(&key.to_hex()).map_err(map_error)?;
                // Read back what the keychain kept: that is the key every later run gets.
                // (If another process stored its own key in between, theirs wins here too.)
                let stored = Zeroizing::new(entry.get_password().map_err(map_error)?);
                parse(&stored, service, account)
            }
            Err(e) => Err(map_error(e)),
        }
    }

    /// Stores `key` in a new entry and reads it back: the keychain must hold exactly it.
    pub(super) fn store(service: &str, account: &str, key: &Key) -> Result<()> {
        let entry = entry(service, account)?;
        entry.set_password(&key.to_hex()).map_err(map_error)?;
        let stored = Zeroizing::new(entry.get_password().map_err(map_error)?);
        if parse(&stored, service, account)? != *key {
            return Err(StoreError::Keychain {
                detail: format!("the keychain did not keep the new key (service \"{service}\", account \"{account}\")"),
            });
        }
        Ok(())
    }

    /// The key in an entry that must exist.
    pub(super) fn get(service: &str, account: &str) -> Result<Option<Key>> {
        match entry(service, account)?.get_password().map(Zeroizing::new) {
            Ok(stored) => parse(&stored, service, account).map(Some),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_error(e)),
        }
    }

    pub(super) fn delete(service: &str, account: &str) -> Result<()> {
        match entry(service, account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_error(e)),
        }
    }

    fn entry(service: &str, account: &str) -> Result<keyring::Entry> {
        let entry = keyring::Entry::new(service, account).map_err(map_error)?;
        // keyring falls back to an in-memory mock store when built without a platform
        // feature; a key there would be gone at exit, and the database with it.
        if entry.get_credential().is::<keyring::mock::MockCredential>() {
            return Err(StoreError::NoKeychain {
                detail: "this build has no platform keychain support".into(),
            });
        }
        Ok(entry)
    }

    fn parse(stored: &str, service: &str, account: &str) -> Result<Key> {
        Key::from_hex(stored).ok_or_else(|| StoreError::Keychain {
            detail: format!(
                "the entry for service \"{service}\", account \"{account}\" does not hold a Quire database key"
            ),
        })
    }

    /// keyring's secret-service store maps a failed D-Bus connection and every other
    /// transport error to `PlatformFailure`, and a locked collection, a dismissed prompt or
    /// a refused unlock to `NoStorageAccess` (keyring src/secret_service.rs, `decode_error`).
    /// gnome-keyring reports a locked collection as a D-Bus error ("Cannot create an item
    /// in a locked collection"), which keyring passes on as `PlatformFailure`.
    fn map_error(e: keyring::Error) -> StoreError {
        match e {
            keyring::Error::PlatformFailure(inner)
                if inner.to_string().to_lowercase().contains("locked") =>
            {
                StoreError::KeychainLocked {
                    detail: inner.to_string(),
                }
            }
            keyring::Error::PlatformFailure(inner) => StoreError::NoKeychain {
                detail: inner.to_string(),
            },
            keyring::Error::NoStorageAccess(inner) => StoreError::KeychainLocked {
                detail: inner.to_string(),
            },
            other => StoreError::Keychain {
                detail: other.to_string(),
            },
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
mod keychain {
    use std::path::Path;

    use super::Key;
    use crate::error::{Result, StoreError};

    fn unavailable() -> StoreError {
        StoreError::NoKeychain {
            detail: "Quire supports the keychains of Linux, macOS and Windows only".into(),
        }
    }

    pub(super) fn load(_: &str, _: &str, _: &Path, _: bool) -> Result<Key> {
        Err(unavailable())
    }

    pub(super) fn delete(_: &str, _: &str) -> Result<()> {
        Err(unavailable())
    }

    pub(super) fn store(_: &str, _: &str, _: &Key) -> Result<()> {
        Err(unavailable())
    }

    pub(super) fn get(_: &str, _: &str) -> Result<Option<Key>> {
        Err(unavailable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let key = Key::from_bytes([0xab; 32]);
        let hex = key.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(Key::from_hex(&hex), Some(key.clone()));
        assert_eq!(Key::from_hex(&hex.to_uppercase()), Some(key));
        assert_eq!(Key::from_hex("abc"), None);
        assert_eq!(Key::from_hex(&"zz".repeat(32)), None);
    }

    #[test]
    fn the_pragma_is_a_raw_key_literal() {
        let pragma = Key::from_bytes([0x01; 32]).sqlcipher_pragma();
        assert_eq!(pragma, format!("\"x'{}'\"", "01".repeat(32)));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let key = Key::from_bytes([0x42; 32]);
        assert!(!format!("{key:?}").contains("42"));
        let source = KeySource::passphrase(Zeroizing::new("hunter2".into()), Path::new("q.db"));
        assert!(!format!("{source:?}").contains("hunter2"));
    }

    #[test]
    fn salt_sits_beside_the_database() {
        assert_eq!(
            salt_path(Path::new("/data/quire.db")),
            PathBuf::from("/data/quire.db.salt")
        );
    }
}
