//! The store's one error type, with a stable code for each kind so the desktop shell can
//! map it to `{code, message}` and the start-up screen can offer the right fix.

use std::io;
use std::path::{Path, PathBuf};

/// SQLite's primary result codes that get their own variant (the low byte of an extended
/// code: <https://www.sqlite.org/rescode.html>).
const SQLITE_BUSY: i32 = 5;
const SQLITE_CORRUPT: i32 = 11;
const SQLITE_FULL: i32 = 13;
const SQLITE_NOTADB: i32 = 26;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite code 26 when the store is opened. SQLCipher checks the key against page 1's
    /// HMAC, and a wrong key and a damaged page 1 fail that check the same way, so the
    /// message names both.
    #[error("{path}: the key does not open this database — a wrong passphrase, or the keychain entry was replaced — or the file is damaged (SQLCipher cannot tell these apart); nothing was changed")]
    WrongKey { path: PathBuf },

    /// A database exists but the key it was encrypted with is gone (no keychain entry, or
    /// no salt file in passphrase mode). Quire refuses to make a new key for it.
    #[error("{path}: {what}; Quire will not create a new key for an existing database, because the new key could never open it. Restore the missing key, or move the database away to start afresh; nothing was changed")]
    KeyMissing { path: PathBuf, what: String },

    /// No usable keychain: no Secret Service on the session bus, no session bus at all,
    /// or a platform without a supported keychain.
    #[error("the system keychain is unavailable ({detail}). Quire keeps its database key there; to use a passphrase instead, start Quire with --passphrase or set QUIRE_PASSPHRASE")]
    NoKeychain { detail: String },

    /// The keychain is there but locked, or access was refused (a dismissed unlock prompt).
    #[error("the system keychain is locked or refused access ({detail}); unlock it (log in to the desktop session, or unlock the \"login\" keyring) and try again, or start Quire with --passphrase / QUIRE_PASSPHRASE")]
    KeychainLocked { detail: String },

    /// Any other keychain failure: an entry that does not hold a Quire key, an ambiguous
    /// entry written by another program.
    #[error("keychain: {detail}")]
    Keychain { detail: String },

    /// The linked SQLite is not SQLCipher, or the file came out unencrypted.
    #[error(
        "{path}: this build of Quire is not linked with SQLCipher ({detail}); refusing to write"
    )]
    NotEncrypted { path: PathBuf, detail: String },

    /// SQLITE_FULL, or ENOSPC / a quota from the file system. The transaction that hit it
    /// was rolled back whole, so what was saved before is intact.
    #[error("{path}: the disk is full ({detail}); nothing that was already saved was lost — free some space and try again")]
    DiskFull { path: PathBuf, detail: String },

    /// The key opened the file but pages are damaged, or a JSON column cannot be read.
    #[error("{path}: the database is damaged ({detail}); restore it from a backup")]
    Corrupt { path: PathBuf, detail: String },

    /// SQLITE_BUSY after the busy timeout: another process holds the database.
    #[error("{path}: the database is in use by another process (another Quire?); close it and try again")]
    Busy { path: PathBuf },

    /// A conversation, message or note id that is not (or no longer) in the store.
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: i64 },

    /// A caller's argument that cannot be stored (an empty passphrase, say).
    #[error("{0}")]
    InvalidInput(String),

    /// The operating system's random number generator failed.
    #[error("the system random number generator failed: {0}")]
    Entropy(String),

    #[error("{path}: {source}")]
    Db {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },

    #[error("{path}: the database schema could not be brought up to date: {source}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },

    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// A stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongKey { .. } => "wrong_key",
            Self::KeyMissing { .. } => "key_missing",
            Self::NoKeychain { .. } => "keychain_unavailable",
            Self::KeychainLocked { .. } => "keychain_locked",
            Self::Keychain { .. } => "keychain",
            Self::NotEncrypted { .. } => "not_encrypted",
            Self::DiskFull { .. } => "disk_full",
            Self::Corrupt { .. } => "store_corrupt",
            Self::Busy { .. } => "store_busy",
            Self::NotFound { .. } => "not_found",
            Self::InvalidInput(_) => "invalid_input",
            Self::Entropy(_) | Self::Db { .. } | Self::Migrate { .. } | Self::Io { .. } => "store",
        }
    }

    /// Classifies a database error: the SQLite codes and I/O errors that need a specific
    /// answer get their variant, everything else stays a `Db` error.
    pub(crate) fn db(path: &Path, source: sqlx::Error) -> Self {
        enum Kind {
            WrongKey,
            Full(String),
            Corrupt(String),
            Busy,
            Other,
        }
        let kind = match &source {
            sqlx::Error::Database(e) => {
                // sqlx-sqlite reports the extended result code as a decimal string.
                let code = e.code().and_then(|c| c.parse::<i32>().ok()).unwrap_or(0);
                match code & 0xff {
                    SQLITE_NOTADB => Kind::WrongKey,
                    SQLITE_FULL => Kind::Full(e.message().to_string()),
                    SQLITE_CORRUPT => Kind::Corrupt(e.message().to_string()),
                    SQLITE_BUSY => Kind::Busy,
                    _ => Kind::Other,
                }
            }
            sqlx::Error::Io(e) if is_disk_full(e) => Kind::Full(e.to_string()),
            _ => Kind::Other,
        };
        let path = path.to_path_buf();
        match kind {
            Kind::WrongKey => Self::WrongKey { path },
            Kind::Full(detail) => Self::DiskFull { path, detail },
            Kind::Corrupt(detail) => Self::Corrupt { path, detail },
            Kind::Busy => Self::Busy { path },
            Kind::Other => Self::Db { path, source },
        }
    }

    /// Classifies a migration error the same way as [`StoreError::db`] when it wraps a
    /// database error.
    pub(crate) fn migrate(path: &Path, source: sqlx::migrate::MigrateError) -> Self {
        match source {
            sqlx::migrate::MigrateError::Execute(e) => match Self::db(path, e) {
                Self::Db { path, source } => Self::Migrate {
                    path,
                    source: sqlx::migrate::MigrateError::Execute(source),
                },
                specific => specific,
            },
            source => Self::Migrate {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        let path = path.to_path_buf();
        if is_disk_full(&source) {
            Self::DiskFull {
                path,
                detail: source.to_string(),
            }
        } else {
            Self::Io { path, source }
        }
    }
}

fn is_disk_full(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    )
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches the database path to sqlx results: `query.execute(&pool).await.at(&path)?`.
pub(crate) trait DbResultExt<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> DbResultExt<T> for std::result::Result<T, sqlx::Error> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|e| StoreError::db(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_disk_full_and_says_nothing_was_lost() {
        let e = StoreError::io(
            Path::new("quire.db"),
            io::Error::from(io::ErrorKind::StorageFull),
        );
        assert_eq!(e.code(), "disk_full");
        assert!(e
            .to_string()
            .contains("nothing that was already saved was lost"));
        let e = StoreError::db(
            Path::new("quire.db"),
            sqlx::Error::Io(io::Error::from(io::ErrorKind::StorageFull)),
        );
        assert_eq!(e.code(), "disk_full");
    }

    #[test]
    fn codes_are_stable_and_messages_actionable() {
        let e = StoreError::WrongKey {
            path: "quire.db".into(),
        };
        assert_eq!(e.code(), "wrong_key");
        assert!(e.to_string().contains("nothing was changed"));
        let e = StoreError::NoKeychain {
            detail: "no session bus".into(),
        };
        assert_eq!(e.code(), "keychain_unavailable");
        assert!(e.to_string().contains("--passphrase"));
        assert!(e.to_string().contains("QUIRE_PASSPHRASE"));
        let e = StoreError::io(
            Path::new("quire.db"),
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(e.code(), "store");
    }
}
