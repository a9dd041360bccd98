-- Quire's store: conversations, their messages, in-app notes and settings.
-- Times are unix milliseconds. JSON columns are checked with json_valid so a bad write
-- fails loudly instead of surfacing later as an unreadable row.
-- AUTOINCREMENT keeps ids from being reused after a delete, so a stale id held by the UI
-- can never name a different conversation, message or note.

CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT    NOT NULL,
    model       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE INDEX conversations_by_update ON conversations (updated_at DESC, id DESC);

CREATE TABLE messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id   INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role              TEXT    NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    text              TEXT    NOT NULL DEFAULT '',
    citations         TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(citations)),
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    timings           TEXT    CHECK (timings IS NULL OR json_valid(timings)),
    created_at        INTEGER NOT NULL,
    -- 0 while an answer is being streamed and written; 1 once it is final.
    complete          INTEGER NOT NULL DEFAULT 1 CHECK (complete IN (0, 1))
);

CREATE INDEX messages_by_conversation ON messages (conversation_id, id);

CREATE TABLE notes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    title       TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    tags        TEXT    NOT NULL DEFAULT '[]' CHECK (json_valid(tags)),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE INDEX notes_by_update ON notes (updated_at DESC, id DESC);

CREATE TABLE settings (
    key    TEXT NOT NULL PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;

-- Full-text search over finished messages. The bundled SQLCipher build is compiled with
-- -DSQLITE_ENABLE_FTS5 (libsqlite3-sys build.rs, shared by `bundled` and
-- `bundled-sqlcipher`). External content: the text lives once, in `messages`; the index
-- holds only tokens, in the same encrypted file.
CREATE VIRTUAL TABLE messages_fts USING fts5 (
    text,
    content = 'messages',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Only complete messages are indexed, so the appends of a streaming answer do not churn
-- the index. One trigger per event, and on update the old row leaves the index before the
-- new one enters: FTS5's 'delete' must see exactly the text that was indexed.
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages
WHEN new.complete = 1
BEGIN
    INSERT INTO messages_fts (rowid, text) VALUES (new.id, new.text);
END;

CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.complete = 1
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;

CREATE TRIGGER messages_fts_update AFTER UPDATE OF text, complete ON messages
BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, text)
        SELECT 'delete', old.id, old.text WHERE old.complete = 1;
    INSERT INTO messages_fts (rowid, text)
        SELECT new.id, new.text WHERE new.complete = 1;
END;
