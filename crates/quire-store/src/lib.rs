//! Quire's encrypted store: conversations, their messages, in-app notes and settings, in
//! one SQLCipher database (AES-256, an HMAC on every page) that only Quire's key opens.
//!
//! # Design
//!
//! - **The key** ([`Key`], 32 bytes) comes from a [`KeySource`]: either a random key kept
//!   in the system keychain (Secret Service on Linux, the macOS Keychain, the Windows
//!   Credential Manager), created at first run; or Argon2id (64 MiB, 3 passes) over a
//!   passphrase with a random salt kept in `<db>.salt`. The key is handed to SQLCipher as a
//!   raw key, so SQLCipher's own PBKDF2 is skipped. **There is never a plaintext key file**:
//!   the salt file is not secret, and a keychain entry is the OS's to protect.
//! - **There is never an unencrypted fallback.** [`Store::open`] refuses a SQLite that is
//!   not SQLCipher (`PRAGMA cipher_version` empty) and a file that comes out starting with
//!   `SQLite format 3`; no keychain means [`StoreError::NoKeychain`] with the way to
//!   passphrase mode, never a weaker store. A key is only created for a database that does
//!   not exist yet, so a lost key cannot be silently replaced.
//! - **Nothing is lost by a failure.** A wrong key fails before anything is written. A
//!   question is committed (and synced) by [`Store::add_message`] before generation starts;
//!   an answer is written as it streams ([`Store::begin_answer`],
//!   [`Store::append_answer`]) and marked complete by [`Store::finish_answer`], so a crash
//!   leaves an answer visibly incomplete, not missing. A full disk rolls back one
//!   transaction and says so ([`StoreError::DiskFull`]).
//! - **Deleting means gone.** `secure_delete` zeroes deleted rows, the search index is
//!   merged so deleted words leave it, and the write-ahead log is checkpointed and emptied.
//!   Temporary data stays in memory (`temp_store = MEMORY`).
//! - Conversations are searched with FTS5 (external content over the messages' text, in
//!   the same encrypted file); the words typed are never parsed as query syntax.
//! - Every error has a stable [`StoreError::code`] for the desktop shell's `{code,
//!   message}`, and a message that says what to do.
//!
//! # Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), quire_store::StoreError> {
//! use std::path::Path;
//! use quire_store::{KeySource, Role, Store, TokenUsage, AnswerTimings};
//!
//! let db = Path::new("quire.db");
//! let key = KeySource::keychain_default().load_async(db.to_path_buf()).await?;
//! let store = Store::open(db, &key).await?;
//!
//! let chat = store.create_conversation("Trial design", "qwen2.5-0.5b-instruct").await?;
//! store.add_message(chat.id, Role::User, "What is blinding?", &[]).await?;
//! let answer = store.begin_answer(chat.id).await?;
//! store.append_answer(answer, "Blinding hides ").await?;
//! let usage = TokenUsage { prompt_tokens: 412, completion_tokens: 9 };
//! store
//!     .finish_answer(answer, "Blinding hides the arm.", &[], usage, &AnswerTimings::default())
//!     .await?;
//! println!("{}", store.export_markdown(chat.id).await?);
//! store.close().await;
//! # Ok(())
//! # }
//! ```

mod error;
mod key;
mod store;

pub use error::{Result, StoreError};
pub use key::{
    abort_rotation, commit_rotation, delete_keychain_entry, derive_passphrase_key, keyid_path,
    pending_key, prepare_rotation, salt_path, Key, KeySource, NewKey, KEYCHAIN_ACCOUNT,
    KEYCHAIN_SERVICE,
};
pub use store::{
    AnswerChecks, AnswerTimings, Citation, Conversation, ConversationId, Message, MessageId, Note,
    NoteEdit, NoteId, Role, SearchHit, Store, TokenUsage,
};
