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

    /// Lower-case hex, 64 characters.
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

    pub(crate) fn to_hex(&self) -> Zeroizing<String> {
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
    pub(crate) fn from_hex(text: &str) -> Option<Key> {
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
    let mut name = db_path.as_os_str().to_owned();
    name.push(".salt");
    PathBuf::from(name)
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
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|e| StoreError::Entropy(e.to_string()))?;
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
