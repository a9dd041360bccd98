//! The encrypted store itself: one SQLCipher file holding conversations, their messages,
//! in-app notes and settings, behind an async API.

use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{ConnectOptions, Connection, Row};

use crate::error::{DbResultExt, Result, StoreError};
use crate::key::Key;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The first 16 bytes of every unencrypted SQLite file.
const PLAINTEXT_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// At most this many conversations come back from one search.
const SEARCH_LIMIT: usize = 50;

pub type ConversationId = i64;
pub type MessageId = i64;
pub type NoteId = i64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub title: String,
    /// The model's name (its file stem), as the UI shows it.
    pub model: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of the last message; conversations are listed newest first.
    pub updated_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
    System,
}

impl Role {
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        match text {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "system" => Some(Role::System),
            _ => None,
        }
    }

    fn heading(&self) -> &'static str {
        match self {
            Role::User => "User",
            Role::Assistant => "Assistant",
            Role::System => "System",
        }
    }
}

/// A passage an answer cites: `[n]` in the answer is `citations[n - 1]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Citation {
    /// The document id (16 hex digits of the sha256 of the file's absolute path).
    pub doc_id: String,
    pub path: String,
    pub title: String,
    /// 1-based.
    pub page: u32,
    /// Character offsets `[start, end)` into the page's text.
    pub span: (usize, usize),
}

/// Token counts of one answer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// Where an answer's time went, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnswerTimings {
    pub retrieval_ms: u64,
    /// Prompt processing, up to the first token.
    pub prefill_ms: u64,
    /// Every decode step after the first token.
    pub decode_ms: u64,
}

/// What the engine's check of an answer found (kept with the message).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AnswerChecks {
    /// Sentences of the answer that no source supports, as they appear in its text.
    pub unsupported_sentences: Vec<String>,
    /// Whether the answer is the refusal ("not in your documents").
    pub refused: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub role: Role,
    pub text: String,
    pub citations: Vec<Citation>,
    pub usage: Option<TokenUsage>,
    pub timings: Option<AnswerTimings>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// False for an answer that is still being written, or whose generation was cut off
    /// (the app was closed or crashed): its text is what had arrived by then.
    pub complete: bool,
    /// For a checked answer: what the check found.
    #[serde(default)]
    pub checks: Option<AnswerChecks>,
}

/// A search result: the conversation and its best-matching message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    pub conversation: Conversation,
    pub message_id: MessageId,
    pub role: Role,
    /// A few words around the match, with matched terms in `**bold**`.
    pub snippet: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub id: NoteId,
    pub title: String,
    /// Markdown.
    pub body: String,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The fields of a note to change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteEdit {
    pub title: Option<String>,
    pub body: Option<String>,
    pub tags: Option<Vec<String>>,
}

/// The encrypted store. Cheap to share by reference; all methods take `&self`.
#[derive(Debug)]
pub struct Store {
    pool: SqlitePool,
    path: PathBuf,
    cipher_version: String,
}

/// The options of every connection. SQLCipher needs `PRAGMA key` before anything reads the
/// file; sqlx sends its pragmas in a fixed order with `key` first whatever order they were
/// set in (sqlx-sqlite src/options/mod.rs, `SqliteConnectOptions::new`), then
/// `journal_mode`, `foreign_keys`, `synchronous`, then custom ones like `secure_delete`.
fn connect_options(path: &Path, key: &Key) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .pragma("key", key.sqlcipher_pragma())
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        // FULL in WAL mode syncs the log at every commit: a saved question survives a
        // power cut, which is the promise of `add_message`.
        .synchronous(SqliteSynchronous::Full)
        // Deleted rows are overwritten with zeros (then encrypted) instead of left in free
        // pages.
        .pragma("secure_delete", "ON")
        // Sorts and temporary indexes stay in memory, never in an unencrypted temp file.
        .pragma("temp_store", "MEMORY")
        // sqlx logs the SQL it runs at debug level, and that includes `PRAGMA key`.
        .disable_statement_logging()
}

/// Only the key: for checking a file before anything is written to it.
fn probe_options(path: &Path, key: &Key) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .pragma("key", key.sqlcipher_pragma())
        .disable_statement_logging()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl Store {
    /// Opens (or creates) the store at `path` with `key`.
    ///
    /// In order, and refusing at the first failure:
    /// 1. a connection that sends only the key checks that SQLCipher is linked
    ///    (`PRAGMA cipher_version` is not empty: else [`StoreError::NotEncrypted`]) and that
    ///    the key reads the schema (SQLite code 26 is [`StoreError::WrongKey`]). Nothing is
    ///    written before both pass, so a wrong key leaves the file's bytes as they were;
    /// 2. an existing file gets `PRAGMA quick_check`, which reads and authenticates every
    ///    page once (a damaged page is [`StoreError::Corrupt`] here, not in the middle of a
    ///    conversation later);
    /// 3. migrations run;
    /// 4. the log is checkpointed and the file must not start with `SQLite format 3`.
    pub async fn open(path: &Path, key: &Key) -> Result<Store> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let existed = path.exists();
        let opened = Self::open_checked(path, key, existed).await;
        if opened.is_err() && !existed {
            // Nothing of the user's is in a file this call created: leave no half-made
            // (and perhaps unencrypted) database behind.
            remove_database_files(path);
        }
        opened
    }

    async fn open_checked(path: &Path, key: &Key, existed: bool) -> Result<Store> {
        let cipher_version = probe(path, key).await?;

        let pool = SqlitePoolOptions::new()
            // One connection: SQLite serializes writers anyway, and `rekey` must be able
            // to re-key the only connection there is (see there).
            .max_connections(1)
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>)
            .connect_with(connect_options(path, key))
            .await
            .at(path)?;
        let store = Store {
            pool,
            path: path.to_path_buf(),
            cipher_version,
        };

        let checked: Result<()> = async {
            if existed {
                store.quick_check().await?;
            }
            MIGRATOR
                .run(&store.pool)
                .await
                .map_err(|e| StoreError::migrate(&store.path, e))?;
            store.checkpoint().await?;
            store.check_file_is_encrypted()
        }
        .await;
        match checked {
            Ok(()) => Ok(store),
            Err(e) => {
                store.pool.close().await;
                Err(e)
            }
        }
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// SQLCipher's version, e.g. `4.5.7 community`.
    pub fn cipher_version(&self) -> &str {
        &self.cipher_version
    }

    /// Checkpoints the log and closes the connection. Dropping a `Store` also closes it,
    /// without waiting.
    pub async fn close(self) {
        // Best effort: closing the last connection checkpoints too.
        let _ = self.checkpoint().await;
        self.pool.close().await;
    }

    async fn quick_check(&self) -> Result<()> {
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| match StoreError::db(&self.path, e) {
                // The key already read page 1, so any other failure to read a page here is
                // damage (SQLCipher reports a failed page HMAC as a generic error).
                StoreError::Db {
                    path,
                    source: sqlx::Error::Database(e),
                } => StoreError::Corrupt {
                    path,
                    detail: e.message().to_string(),
                },
                StoreError::WrongKey { path } => StoreError::Corrupt {
                    path,
                    detail: "a page does not decrypt with the key that opened the file".into(),
                },
                other => other,
            })?;
        if rows.len() == 1 && rows[0] == "ok" {
            Ok(())
        } else {
            Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: rows.join("; "),
            })
        }
    }

    /// Moves everything in the write-ahead log into the database file and empties the log,
    /// so rows deleted with `secure_delete` do not linger in old log frames.
    async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.pool)
            .await
            .at(&self.path)?;
        Ok(())
    }

    /// The last line of defence: whatever the build, an unencrypted file is refused.
    fn check_file_is_encrypted(&self) -> Result<()> {
        let mut head = Vec::with_capacity(PLAINTEXT_MAGIC.len());
        fs::File::open(&self.path)
            .and_then(|f| f.take(PLAINTEXT_MAGIC.len() as u64).read_to_end(&mut head))
            .map_err(|e| StoreError::io(&self.path, e))?;
        if head.as_slice() == PLAINTEXT_MAGIC {
            return Err(StoreError::NotEncrypted {
                path: self.path.clone(),
                detail: "the file starts with the plain SQLite header".into(),
            });
        }
        Ok(())
    }

    // --- conversations ---------------------------------------------------------------

    pub async fn create_conversation(&self, title: &str, model: &str) -> Result<Conversation> {
        let now = now_ms();
        let id = sqlx::query(
            "INSERT INTO conversations (title, model, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
        )
        .bind(title)
        .bind(model)
        .bind(now)
        .execute(&self.pool)
        .await
        .at(&self.path)?
        .last_insert_rowid();
        Ok(Conversation {
            id,
            title: title.to_owned(),
            model: model.to_owned(),
            created_at: now,
            updated_at: now,
        })
    }

    /// Newest activity first.
    pub async fn list_conversations(&self) -> Result<Vec<Conversation>> {
        let rows = sqlx::query(
            "SELECT id, title, model, created_at, updated_at FROM conversations
             ORDER BY updated_at DESC, id DESC",
        )
        .fetch_all(&self.pool)
        .await
        .at(&self.path)?;
        rows.iter()
            .map(|row| conversation_from_row(row, "id"))
            .collect::<sqlx::Result<Vec<_>>>()
            .at(&self.path)
    }

    pub async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        let row = sqlx::query(
            "SELECT id, title, model, created_at, updated_at FROM conversations WHERE id = ?1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .at(&self.path)?;
        row.map(|row| conversation_from_row(&row, "id"))
            .transpose()
            .at(&self.path)
    }

    pub async fn rename_conversation(&self, id: ConversationId, title: &str) -> Result<()> {
        let done = sqlx::query("UPDATE conversations SET title = ?1 WHERE id = ?2")
            .bind(title)
            .bind(id)
            .execute(&self.pool)
            .await
            .at(&self.path)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "conversation",
                id,
            });
        }
        Ok(())
    }

    /// Deletes a conversation and its messages, then removes their words from the search
    /// index (FTS5 'optimize' merges away the deleted entries instead of leaving them in
    /// old segments) and checkpoints, so the text is not left in free pages or in the log.
    pub async fn delete_conversation(&self, id: ConversationId) -> Result<()> {
        let mut tx = self.pool.begin().await.at(&self.path)?;
        // The foreign key cascades too; deleting the messages first, explicitly, makes the
        // search-index trigger's work visible here.
        sqlx::query("DELETE FROM messages WHERE conversation_id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .at(&self.path)?;
        let done = sqlx::query("DELETE FROM conversations WHERE id = ?1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .at(&self.path)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "conversation",
                id,
            });
        }
        tx.commit().await.at(&self.path)?;
        self.purge_deleted_text().await
    }

    async fn purge_deleted_text(&self) -> Result<()> {
        sqlx::query("INSERT INTO messages_fts (messages_fts) VALUES ('optimize')")
            .execute(&self.pool)
            .await
            .at(&self.path)?;
        self.checkpoint().await
    }

    /// Full-text search over finished messages. The query is read as words (never as FTS5
    /// query syntax), all of which must match. One hit per conversation, best first.
    pub async fn search_conversations(&self, query: &str) -> Result<Vec<SearchHit>> {
        let Some(fts_query) = fts_words(query) else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(
            "SELECT c.id AS conversation_id, c.title AS title, c.model AS model,
                    c.created_at AS created_at, c.updated_at AS updated_at,
                    m.id AS message_id, m.role AS role,
                    snippet(messages_fts, 0, '**', '**', '…', 16) AS snippet
             FROM messages_fts
             JOIN messages m ON m.id = messages_fts.rowid
             JOIN conversations c ON c.id = m.conversation_id
             WHERE messages_fts MATCH ?1
             ORDER BY bm25(messages_fts)
             LIMIT 500",
        )
        .bind(fts_query)
        .fetch_all(&self.pool)
        .await
        .at(&self.path)?;

        let mut seen = HashSet::new();
        let mut hits = Vec::new();
        for row in &rows {
            let conversation = conversation_from_row(row, "conversation_id").at(&self.path)?;
            if !seen.insert(conversation.id) {
                continue;
            }
            let message_id: i64 = row.try_get("message_id").at(&self.path)?;
            hits.push(SearchHit {
                conversation,
                message_id,
                role: self.role(row, message_id)?,
                snippet: row.try_get("snippet").at(&self.path)?,
            });
            if hits.len() == SEARCH_LIMIT {
                break;
            }
        }
        Ok(hits)
    }

    // --- messages --------------------------------------------------------------------

    /// Saves a complete message (a user's question, a system note) and returns it.
    ///
    /// The contract: this returns only after the message is committed and synced to disk,
    /// so the caller saves the question with it *before* starting generation. Whatever
    /// happens to the generation (cancelled, crashed, out of memory), the question is kept.
    pub async fn add_message(
        &self,
        conversation_id: ConversationId,
        role: Role,
        text: &str,
        citations: &[Citation],
    ) -> Result<Message> {
        let citations_json = citations_to_json(citations)?;
        let now = now_ms();
        let mut tx = self.pool.begin().await.at(&self.path)?;
        self.touch_conversation(&mut tx, conversation_id, now)
            .await?;
        let id = sqlx::query(
            "INSERT INTO messages (conversation_id, role, text, citations, created_at, complete)
             VALUES (?1, ?2, ?3, ?4, ?5, 1)",
        )
        .bind(conversation_id)
        .bind(role.as_str())
        .bind(text)
        .bind(citations_json)
        .bind(now)
        .execute(&mut *tx)
        .await
        .at(&self.path)?
        .last_insert_rowid();
        tx.commit().await.at(&self.path)?;
        Ok(Message {
            id,
            conversation_id,
            role,
            text: text.to_owned(),
            citations: citations.to_vec(),
            usage: None,
            timings: None,
            created_at: now,
            complete: true,
            checks: None,
        })
    }

    /// Starts an assistant answer: an empty message with `complete = false`. Stream its
    /// text in with [`Store::append_answer`] and end it with [`Store::finish_answer`]; an
    /// answer never finished stays in the conversation marked incomplete, with the text
    /// that arrived.
    pub async fn begin_answer(&self, conversation_id: ConversationId) -> Result<MessageId> {
        let now = now_ms();
        let mut tx = self.pool.begin().await.at(&self.path)?;
        self.touch_conversation(&mut tx, conversation_id, now)
            .await?;
        let id = sqlx::query(
            "INSERT INTO messages (conversation_id, role, text, created_at, complete)
             VALUES (?1, 'assistant', '', ?2, 0)",
        )
        .bind(conversation_id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .at(&self.path)?
        .last_insert_rowid();
        tx.commit().await.at(&self.path)?;
        Ok(id)
    }

    /// Appends streamed text to an answer that is still being written. Incomplete answers
    /// are not in the search index, so appending costs one row update; but each call is a
    /// synced commit, so batch the tokens (say, every half second) rather than call it per
    /// token.
    pub async fn append_answer(&self, message_id: MessageId, delta: &str) -> Result<()> {
        let done =
            sqlx::query("UPDATE messages SET text = text || ?1 WHERE id = ?2 AND complete = 0")
                .bind(delta)
                .bind(message_id)
                .execute(&self.pool)
                .await
                .at(&self.path)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "answer in progress",
                id: message_id,
            });
        }
        Ok(())
    }

    /// Finishes an answer: its final text (replacing what was appended), the passages it
    /// cites, token counts and timings. It is then complete, and searchable.
    pub async fn finish_answer(
        &self,
        message_id: MessageId,
        text: &str,
        citations: &[Citation],
        usage: TokenUsage,
        timings: &AnswerTimings,
    ) -> Result<Message> {
        let citations_json = citations_to_json(citations)?;
        let timings_json = serde_json::to_string(timings)
            .map_err(|e| StoreError::InvalidInput(format!("answer timings: {e}")))?;
        let now = now_ms();
        let mut tx = self.pool.begin().await.at(&self.path)?;
        let done = sqlx::query(
            "UPDATE messages
             SET text = ?1, citations = ?2, prompt_tokens = ?3, completion_tokens = ?4,
                 timings = ?5, complete = 1
             WHERE id = ?6 AND complete = 0",
        )
        .bind(text)
        .bind(citations_json)
        .bind(i64::from(usage.prompt_tokens))
        .bind(i64::from(usage.completion_tokens))
        .bind(timings_json)
        .bind(message_id)
        .execute(&mut *tx)
        .await
        .at(&self.path)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "answer in progress",
                id: message_id,
            });
        }
        sqlx::query(
            "UPDATE conversations SET updated_at = ?1
             WHERE id = (SELECT conversation_id FROM messages WHERE id = ?2)",
        )
        .bind(now)
        .bind(message_id)
        .execute(&mut *tx)
        .await
        .at(&self.path)?;
        tx.commit().await.at(&self.path)?;
        self.get_message(message_id)
            .await?
            .ok_or(StoreError::NotFound {
                what: "message",
                id: message_id,
            })
    }

    /// Keeps what the engine's check of an answer found with the answer.
    pub async fn set_answer_checks(
        &self,
        message_id: MessageId,
        checks: &AnswerChecks,
    ) -> Result<()> {
        let json = serde_json::to_string(checks)
            .map_err(|e| StoreError::InvalidInput(format!("answer checks: {e}")))?;
        let done =
            sqlx::query("UPDATE messages SET checks = ?1 WHERE id = ?2 AND role = 'assistant'")
                .bind(json)
                .bind(message_id)
                .execute(&self.pool)
                .await
                .at(&self.path)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "answer",
                id: message_id,
            });
        }
        Ok(())
    }

    pub async fn get_message(&self, id: MessageId) -> Result<Option<Message>> {
        let row = sqlx::query(&format!("{MESSAGE_COLUMNS} WHERE id = ?1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .at(&self.path)?;
        row.map(|row| self.message_from_row(&row)).transpose()
    }

    /// A conversation's messages, oldest first.
    pub async fn messages(&self, conversation_id: ConversationId) -> Result<Vec<Message>> {
        let rows = sqlx::query(&format!(
            "{MESSAGE_COLUMNS} WHERE conversation_id = ?1 ORDER BY id"
        ))
        .bind(conversation_id)
        .fetch_all(&self.pool)
        .await
        .at(&self.path)?;
        rows.iter().map(|row| self.message_from_row(row)).collect()
    }

    /// The conversation as Markdown: the title, then each message under a heading for its
    /// role, and after an answer that cites passages, the numbered sources `[n] title, p. N`.
    pub async fn export_markdown(&self, conversation_id: ConversationId) -> Result<String> {
        let conversation =
            self.get_conversation(conversation_id)
                .await?
                .ok_or(StoreError::NotFound {
                    what: "conversation",
                    id: conversation_id,
                })?;
        let messages = self.messages(conversation_id).await?;
        Ok(render_markdown(&conversation, &messages))
    }

    async fn touch_conversation(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
        id: ConversationId,
        now: i64,
    ) -> Result<()> {
        let done = sqlx::query("UPDATE conversations SET updated_at = ?1 WHERE id = ?2")
            .bind(now)
            .bind(id)
            .execute(&mut **tx)
            .await
            .at(&self.path)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "conversation",
                id,
            });
        }
        Ok(())
    }

    fn role(&self, row: &SqliteRow, message_id: MessageId) -> Result<Role> {
        let role: String = row.try_get("role").at(&self.path)?;
        Role::parse(&role).ok_or_else(|| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("message {message_id} has the unknown role {role:?}"),
        })
    }

    fn message_from_row(&self, row: &SqliteRow) -> Result<Message> {
        let id: i64 = row.try_get("id").at(&self.path)?;
        let citations: String = row.try_get("citations").at(&self.path)?;
        let citations = serde_json::from_str(&citations).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("message {id}: citations: {e}"),
        })?;
        let timings: Option<String> = row.try_get("timings").at(&self.path)?;
        let timings = timings
            .map(|t| serde_json::from_str(&t))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("message {id}: timings: {e}"),
            })?;
        let prompt_tokens: Option<i64> = row.try_get("prompt_tokens").at(&self.path)?;
        let completion_tokens: Option<i64> = row.try_get("completion_tokens").at(&self.path)?;
        let usage = match (prompt_tokens, completion_tokens) {
            (Some(p), Some(c)) => Some(TokenUsage {
                prompt_tokens: u32::try_from(p).unwrap_or(0),
                completion_tokens: u32::try_from(c).unwrap_or(0),
            }),
            _ => None,
        };
        let complete: i64 = row.try_get("complete").at(&self.path)?;
        let checks: Option<String> = row.try_get("checks").at(&self.path)?;
        let checks = checks
            .map(|c| serde_json::from_str(&c))
            .transpose()
            .map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("message {id}: checks: {e}"),
            })?;
        Ok(Message {
            id,
            conversation_id: row.try_get("conversation_id").at(&self.path)?,
            role: self.role(row, id)?,
            text: row.try_get("text").at(&self.path)?,
            citations,
            usage,
            timings,
            created_at: row.try_get("created_at").at(&self.path)?,
            complete: complete != 0,
            checks,
        })
    }

    // --- notes -----------------------------------------------------------------------

    pub async fn add_note(&self, title: &str, body: &str, tags: &[String]) -> Result<Note> {
        let tags_json = tags_to_json(tags)?;
        let now = now_ms();
        let id = sqlx::query(
            "INSERT INTO notes (title, body, tags, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?4)",
        )
        .bind(title)
        .bind(body)
        .bind(tags_json)
        .bind(now)
        .execute(&self.pool)
        .await
        .at(&self.path)?
        .last_insert_rowid();
        Ok(Note {
            id,
            title: title.to_owned(),
            body: body.to_owned(),
            tags: tags.to_vec(),
            created_at: now,
            updated_at: now,
        })
    }

    /// Most recently edited first.
    pub async fn list_notes(&self) -> Result<Vec<Note>> {
        let rows = sqlx::query(&format!("{NOTE_COLUMNS} ORDER BY updated_at DESC, id DESC"))
            .fetch_all(&self.pool)
            .await
            .at(&self.path)?;
        rows.iter().map(|row| self.note_from_row(row)).collect()
    }

    pub async fn get_note(&self, id: NoteId) -> Result<Option<Note>> {
        let row = sqlx::query(&format!("{NOTE_COLUMNS} WHERE id = ?1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .at(&self.path)?;
        row.map(|row| self.note_from_row(&row)).transpose()
    }

    pub async fn edit_note(&self, id: NoteId, edit: &NoteEdit) -> Result<Note> {
        let tags_json = edit.tags.as_deref().map(tags_to_json).transpose()?;
        let done = sqlx::query(
            "UPDATE notes SET title = COALESCE(?1, title), body = COALESCE(?2, body),
                              tags = COALESCE(?3, tags), updated_at = ?4
             WHERE id = ?5",
        )
        .bind(edit.title.as_deref())
        .bind(edit.body.as_deref())
        .bind(tags_json)
        .bind(now_ms())
        .bind(id)
        .execute(&self.pool)
        .await
        .at(&self.path)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "note", id });
        }
        self.get_note(id)
            .await?
            .ok_or(StoreError::NotFound { what: "note", id })
    }

    /// Deletes a note; with `secure_delete` and a checkpoint its text leaves the file and
    /// the log.
    pub async fn delete_note(&self, id: NoteId) -> Result<()> {
        let done = sqlx::query("DELETE FROM notes WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await
            .at(&self.path)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "note", id });
        }
        self.checkpoint().await
    }

    fn note_from_row(&self, row: &SqliteRow) -> Result<Note> {
        let id: i64 = row.try_get("id").at(&self.path)?;
        let tags: String = row.try_get("tags").at(&self.path)?;
        let tags = serde_json::from_str(&tags).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("note {id}: tags: {e}"),
        })?;
        Ok(Note {
            id,
            title: row.try_get("title").at(&self.path)?,
            body: row.try_get("body").at(&self.path)?,
            tags,
            created_at: row.try_get("created_at").at(&self.path)?,
            updated_at: row.try_get("updated_at").at(&self.path)?,
        })
    }

    // --- settings --------------------------------------------------------------------

    pub async fn get_setting(&self, key: &str) -> Result<Option<String>> {
        sqlx::query_scalar("SELECT value FROM settings WHERE key = ?1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .at(&self.path)
    }

    pub async fn set_setting(&self, key: &str, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .at(&self.path)?;
        Ok(())
    }

    /// Removes a setting; a missing one is not an error.
    pub async fn delete_setting(&self, key: &str) -> Result<()> {
        sqlx::query("DELETE FROM settings WHERE key = ?1")
            .bind(key)
            .execute(&self.pool)
            .await
            .at(&self.path)?;
        Ok(())
    }

    // --- the key ---------------------------------------------------------------------

    /// Re-encrypts the whole database with `new`, then checks that a fresh connection with
    /// `new` reads it. Store the new key first where [`KeySource`](crate::KeySource) will
    /// find it (keychain entry, or remember the new passphrase); until this returns, the
    /// old key still opens the file.
    ///
    /// The pool has a single connection, held here for the whole operation, so no other
    /// query runs with the old key meanwhile; the pool is then told to connect with `new`.
    /// The log is emptied and the database taken out of WAL mode for the rekey (SQLCipher
    /// rewrites every page in one transaction) and put back after.
    ///
    /// Old ciphertext may survive in free disk blocks (the rollback journal of the rekey);
    /// it is encrypted with the old key.
    pub async fn rekey(&self, new: &Key) -> Result<()> {
        let path = &self.path;
        let mut conn = self.pool.acquire().await.at(path)?;
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await
            .at(path)?;
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode = DELETE")
            .fetch_one(&mut *conn)
            .await
            .at(path)?;
        if !mode.eq_ignore_ascii_case("delete") {
            return Err(StoreError::Busy { path: path.clone() });
        }
        let pragma = zeroize::Zeroizing::new(format!("PRAGMA rekey = {}", new.sqlcipher_pragma()));
        // Not cached: the statement text holds the key.
        let rekeyed = sqlx::query(pragma.as_str())
            .persistent(false)
            .execute(&mut *conn)
            .await
            .at(path);
        // Back to WAL whether or not the rekey worked.
        let back = sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(&mut *conn)
            .await
            .at(path);
        rekeyed?;
        // From here the file is under the new key: new connections must use it, whatever
        // happens next.
        self.pool.set_connect_options(connect_options(path, new));
        back?;
        drop(conn);

        // Verify by reopening: a separate connection with only the new key must read the
        // schema and the data.
        let mut check = probe_options(path, new)
            .create_if_missing(false)
            .connect()
            .await
            .at(path)?;
        let tables: i64 = sqlx::query_scalar("SELECT count(*) FROM sqlite_master")
            .fetch_one(&mut check)
            .await
            .at(path)?;
        check.close().await.at(path)?;
        if tables == 0 {
            return Err(StoreError::Corrupt {
                path: path.clone(),
                detail: "after rekeying, the new key reads an empty schema".into(),
            });
        }
        Ok(())
    }
}

/// Opens a connection that sends only the key, and checks the build and the key without
/// writing anything. Returns SQLCipher's version.
async fn probe(path: &Path, key: &Key) -> Result<String> {
    let mut conn = probe_options(path, key).connect().await.at(path)?;
    let checked: Result<String> = async {
        let version: Option<String> = sqlx::query_scalar("PRAGMA cipher_version")
            .fetch_optional(&mut conn)
            .await
            .at(path)?;
        let version = version.unwrap_or_default();
        if version.trim().is_empty() {
            return Err(StoreError::NotEncrypted {
                path: path.to_path_buf(),
                detail: "PRAGMA cipher_version is empty".into(),
            });
        }
        // The first read of the file: a wrong key fails here with SQLite code 26 (so does a
        // damaged page 1). Any other database error means page 1 decrypted but a schema
        // page did not: damage.
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM sqlite_master")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| match StoreError::db(path, e) {
                StoreError::Db {
                    path,
                    source: sqlx::Error::Database(e),
                } => StoreError::Corrupt {
                    path,
                    detail: e.message().to_string(),
                },
                other => other,
            })?;
        Ok(version)
    }
    .await;
    // Closing cannot fail in a way that matters once the checks have answered.
    let _ = conn.close().await;
    checked
}

/// Removes a database this process just created and could not finish opening.
fn remove_database_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = fs::remove_file(PathBuf::from(name));
    }
}

const MESSAGE_COLUMNS: &str = "SELECT id, conversation_id, role, text, citations, prompt_tokens,
    completion_tokens, timings, created_at, complete, checks FROM messages";

const NOTE_COLUMNS: &str = "SELECT id, title, body, tags, created_at, updated_at FROM notes";

fn conversation_from_row(row: &SqliteRow, id_column: &str) -> sqlx::Result<Conversation> {
    Ok(Conversation {
        id: row.try_get(id_column)?,
        title: row.try_get("title")?,
        model: row.try_get("model")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn citations_to_json(citations: &[Citation]) -> Result<String> {
    serde_json::to_string(citations)
        .map_err(|e| StoreError::InvalidInput(format!("citations: {e}")))
}

fn tags_to_json(tags: &[String]) -> Result<String> {
    serde_json::to_string(tags).map_err(|e| StoreError::InvalidInput(format!("tags: {e}")))
}

/// The words of a search box as an FTS5 query: each word quoted (so `AND`, `NEAR`, `*`,
/// `:` and quotes are plain text), all required. `None` when there is no word.
fn fts_words(query: &str) -> Option<String> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| format!("\"{w}\""))
        .collect();
    if words.is_empty() {
        None
    } else {
        Some(words.join(" "))
    }
}

fn render_markdown(conversation: &Conversation, messages: &[Message]) -> String {
    let mut out = format!("# {}\n\n", conversation.title.trim());
    if !conversation.model.is_empty() {
        out.push_str(&format!("_Model: {}_\n\n", conversation.model));
    }
    for message in messages {
        out.push_str(&format!("## {}\n\n", message.role.heading()));
        let text = message.text.trim();
        if !text.is_empty() {
            out.push_str(text);
            out.push_str("\n\n");
        }
        if !message.complete {
            out.push_str("_(this answer was interrupted)_\n\n");
        }
        if !message.citations.is_empty() {
            out.push_str("Sources:\n\n");
            for (n, citation) in message.citations.iter().enumerate() {
                let title = if citation.title.trim().is_empty() {
                    citation.path.as_str()
                } else {
                    citation.title.trim()
                };
                out.push_str(&format!("- [{}] {}, p. {}\n", n + 1, title, citation.page));
            }
            out.push('\n');
        }
    }
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_words_are_quoted_never_parsed() {
        assert_eq!(
            fts_words("NEAR(alpha beta) OR \"x\" col:*").as_deref(),
            Some("\"NEAR\" \"alpha\" \"beta\" \"OR\" \"x\" \"col\"")
        );
        assert_eq!(fts_words("  -- !! "), None);
    }

    #[test]
    fn markdown_lists_sources_after_the_answer_that_cites_them() {
        let conversation = Conversation {
            id: 1,
            title: "Trial design".into(),
            model: "qwen2.5-0.5b".into(),
            created_at: 0,
            updated_at: 0,
        };
        let cite = Citation {
            doc_id: "00ff00ff00ff00ff".into(),
            path: "/docs/guide.pdf".into(),
            title: "Guide".into(),
            page: 3,
            span: (10, 20),
        };
        let messages = vec![
            Message {
                id: 1,
                conversation_id: 1,
                role: Role::User,
                text: "What is blinding?".into(),
                citations: vec![],
                usage: None,
                timings: None,
                created_at: 0,
                complete: true,
                checks: None,
            },
            Message {
                id: 2,
                conversation_id: 1,
                role: Role::Assistant,
                text: "Hiding the arm [1].".into(),
                citations: vec![cite],
                usage: None,
                timings: None,
                created_at: 0,
                complete: true,
                checks: None,
            },
        ];
        let md = render_markdown(&conversation, &messages);
        assert!(md.starts_with("# Trial design\n"));
        let answer = md.find("## Assistant").unwrap();
        let source = md.find("[1] Guide, p. 3").unwrap();
        assert!(md.find("## User").unwrap() < answer && answer < source);
    }
}
