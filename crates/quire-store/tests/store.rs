//! The store end to end on the real SQLCipher build, with random and passphrase keys in
//! temporary folders: no keychain needed (those tests are in tests/keychain.rs).

use std::fs;
use std::path::{Path, PathBuf};

use quire_store::{
    derive_passphrase_key, salt_path, AnswerTimings, Citation, Key, KeySource, NoteEdit, Role,
    Store, TokenUsage,
};
use tempfile::TempDir;
use zeroize::Zeroizing;

/// Strings that must never appear in any file of the store, in whole or as their longest
/// words (the search index stores words, not phrases).
const SECRETS: [&str; 4] = [
    "marmalade-aurora-4471",
    "quillfeather-zenith-9902",
    "obsidian-lantern-3318",
    "velvetcartograph-5526",
];
const SECRET_WORDS: [&str; 4] = ["marmalade", "quillfeather", "obsidian", "velvetcartograph"];

fn db_in(dir: &TempDir) -> PathBuf {
    dir.path().join("quire.db")
}

fn key() -> Key {
    Key::generate().expect("the OS random number generator works")
}

fn guide(page: u32) -> Citation {
    Citation {
        doc_id: "0123456789abcdef".into(),
        path: "/library/field-guide.pdf".into(),
        title: "Field Guide".into(),
        page,
        span: (120, 480),
    }
}

/// A question, a streamed answer with a citation, and a note, each holding a secret.
async fn write_secrets(store: &Store) {
    let chat = store
        .create_conversation(&format!("About {}", SECRETS[0]), "test-model")
        .await
        .unwrap();
    store
        .add_message(
            chat.id,
            Role::User,
            &format!("What is {}?", SECRETS[1]),
            &[],
        )
        .await
        .unwrap();
    let answer = store.begin_answer(chat.id).await.unwrap();
    store.append_answer(answer, "It is ").await.unwrap();
    store
        .finish_answer(
            answer,
            &format!("It is {} [1].", SECRETS[2]),
            &[guide(3)],
            TokenUsage {
                prompt_tokens: 300,
                completion_tokens: 12,
            },
            &AnswerTimings {
                retrieval_ms: 5,
                prefill_ms: 80,
                decode_ms: 400,
            },
        )
        .await
        .unwrap();
    store
        .add_note(
            "Reading list",
            &format!("Remember {}.", SECRETS[3]),
            &["private".to_string()],
        )
        .await
        .unwrap();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every byte of every file in `dir` (the database, its -wal and -shm, the salt).
fn assert_no_secret_in_files(dir: &Path) -> usize {
    let mut scanned = 0;
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let bytes = fs::read(&path).unwrap();
        for secret in SECRETS.iter().chain(SECRET_WORDS.iter()) {
            assert!(
                !contains(&bytes, secret.as_bytes()),
                "{secret:?} is readable in {}",
                path.display()
            );
        }
        scanned += 1;
    }
    scanned
}

fn assert_encrypted_header(db: &Path) {
    let bytes = fs::read(db).unwrap();
    assert!(bytes.len() > 4096, "the database file was written");
    assert_ne!(
        &bytes[..16],
        b"SQLite format 3\0",
        "the database is not encrypted"
    );
}

#[tokio::test]
async fn nothing_readable_reaches_the_disk() {
    let dir = TempDir::new().unwrap();
    let db = db_in(&dir);
    let key = key();

    let store = Store::open(&db, &key).await.unwrap();
    assert!(!store.cipher_version().trim().is_empty());
    write_secrets(&store).await;
    // While open, the write-ahead log holds the latest pages: scan it too.
    assert!(assert_no_secret_in_files(dir.path()) >= 1);
    store.close().await;

    // Closing checkpointed the log into the database file.
    let wal = dir.path().join("quire.db-wal");
    assert!(!wal.exists() || fs::metadata(&wal).unwrap().len() == 0);
    assert_no_secret_in_files(dir.path());
    assert_encrypted_header(&db);

    // And the right key reads it all back.
    let store = Store::open(&db, &key).await.unwrap();
    let chats = store.list_conversations().await.unwrap();
    assert_eq!(chats.len(), 1);
    let messages = store.messages(chats[0].id).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert!(messages[1].text.contains(SECRETS[2]));
    assert_eq!(store.list_notes().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn a_wrong_key_is_refused_and_changes_nothing() {
    let dir = TempDir::new().unwrap();
    let db = db_in(&dir);
    let right = key();
    let store = Store::open(&db, &right).await.unwrap();
    write_secrets(&store).await;
    store.close().await;

    let before = fs::read(&db).unwrap();
    let err = Store::open(&db, &key()).await.unwrap_err();
    assert_eq!(err.code(), "wrong_key", "{err}");
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert!(
        fs::read(&db).unwrap() == before,
        "a wrong key changed the database file"
    );

    // The right key still opens it.
    let store = Store::open(&db, &right).await.unwrap();
    assert_eq!(store.list_conversations().await.unwrap().len(), 1);
    store.close().await;
}

#[tokio::test]
async fn a_damaged_file_is_an_error_not_a_panic() {
    let dir = TempDir::new().unwrap();
    let db = db_in(&dir);
    let key = key();
    let store = Store::open(&db, &key).await.unwrap();
    write_secrets(&store).await;
    store.close().await;

    // Damage every page after the first (which holds SQLCipher's salt and is checked by the
    // key itself), so the pages the tables live on fail their HMAC.
    let mut bytes = fs::read(&db).unwrap();
    assert!(bytes.len() >= 3 * 4096, "expected several pages");
    for page in (4096..bytes.len()).step_by(4096) {
        for b in &mut bytes[page + 1024..page + 1056] {
            *b ^= 0x5a;
        }
    }
    fs::write(&db, &bytes).unwrap();

    let err = Store::open(&db, &key).await.unwrap_err();
    assert!(
        matches!(err.code(), "store_corrupt" | "wrong_key"),
        "{}: {err}",
        err.code()
    );
}

#[tokio::test]
async fn rekey_moves_the_store_to_the_new_key() {
    let dir = TempDir::new().unwrap();
    let db = db_in(&dir);
    let old = key();
    let new = key();
    let store = Store::open(&db, &old).await.unwrap();
    write_secrets(&store).await;
    store.rekey(&new).await.unwrap();
    // The open store goes on working.
    store.add_note("after", "rekey", &[]).await.unwrap();
    store.close().await;

    let store = Store::open(&db, &new).await.unwrap();
    assert_eq!(store.list_notes().await.unwrap().len(), 2);
    assert_eq!(store.list_conversations().await.unwrap().len(), 1);
    store.close().await;
    assert_no_secret_in_files(dir.path());

    let err = Store::open(&db, &old).await.unwrap_err();
    assert_eq!(err.code(), "wrong_key", "{err}");
}

#[tokio::test]
async fn a_deleted_conversation_leaves_search() {
    let dir = TempDir::new().unwrap();
    let db = db_in(&dir);
    let store = Store::open(&db, &key()).await.unwrap();

    let doomed = store.create_conversation("Birds", "m").await.unwrap();
    let kept = store.create_conversation("Fish", "m").await.unwrap();
    store
        .add_message(
            doomed.id,
            Role::User,
            "Where does the zebrafinch winter?",
            &[],
        )
        .await
        .unwrap();
    store
        .add_message(kept.id, Role::User, "How deep do anglerfish live?", &[])
        .await
        .unwrap();

    let hits = store.search_conversations("zebrafinch").await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].conversation.id, doomed.id);
    assert_eq!(hits[0].role, Role::User);
    assert!(
        hits[0].snippet.contains("**zebrafinch**"),
        "{}",
        hits[0].snippet
    );

    // Query syntax in the search box is just text.
    store
        .search_conversations("\"unbalanced AND (NEAR col:*")
        .await
        .unwrap();
    assert!(store.search_conversations(" !? ").await.unwrap().is_empty());

    store.delete_conversation(doomed.id).await.unwrap();
    assert!(store
        .search_conversations("zebrafinch")
        .await
        .unwrap()
        .is_empty());
    assert!(store.get_conversation(doomed.id).await.unwrap().is_none());
    assert!(store.messages(doomed.id).await.unwrap().is_empty());
    assert_eq!(
        store
            .delete_conversation(doomed.id)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        store
            .search_conversations("anglerfish")
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await;
}

#[tokio::test]
async fn answers_stream_in_and_survive_an_interruption() {
    let dir = TempDir::new().unwrap();
    let db = db_in(&dir);
    let key = key();
    let store = Store::open(&db, &key).await.unwrap();
    let chat = store.create_conversation("Q", "m").await.unwrap();

    assert_eq!(
        store
            .add_message(chat.id + 100, Role::User, "orphan", &[])
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );

    let question = store
        .add_message(chat.id, Role::User, "Tell me about okapis", &[])
        .await
        .unwrap();
    assert!(question.complete);
    let answer = store.begin_answer(chat.id).await.unwrap();
    store.append_answer(answer, "The okapi ").await.unwrap();
    store.append_answer(answer, "is a giraffid").await.unwrap();
    // An answer in progress is not searchable yet; the question is.
    let hits = store.search_conversations("giraffid").await.unwrap();
    assert!(hits.is_empty());
    // Closed mid-answer, as if the app had quit.
    store.close().await;

    let store = Store::open(&db, &key).await.unwrap();
    let messages = store.messages(chat.id).await.unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0].text, "Tell me about okapis");
    assert!(messages[0].complete);
    assert_eq!(messages[1].text, "The okapi is a giraffid");
    assert!(!messages[1].complete);
    assert_eq!(messages[1].role, Role::Assistant);

    let usage = TokenUsage {
        prompt_tokens: 250,
        completion_tokens: 7,
    };
    let timings = AnswerTimings {
        retrieval_ms: 3,
        prefill_ms: 70,
        decode_ms: 200,
    };
    let done = store
        .finish_answer(
            answer,
            "The okapi is a giraffid [1].",
            &[guide(3)],
            usage,
            &timings,
        )
        .await
        .unwrap();
    assert!(done.complete);
    assert_eq!(done.citations, vec![guide(3)]);
    assert_eq!(done.usage, Some(usage));
    assert_eq!(done.timings, Some(timings));
    assert_eq!(
        store.search_conversations("giraffid").await.unwrap().len(),
        1
    );
    // Finishing twice, or appending after the end, is refused.
    assert_eq!(
        store
            .finish_answer(answer, "again", &[], usage, &timings)
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    assert_eq!(
        store
            .append_answer(answer, "more")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    store.close().await;
}

#[tokio::test]
async fn conversations_list_newest_first_and_rename() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(&db_in(&dir), &key()).await.unwrap();
    let first = store.create_conversation("first", "m").await.unwrap();
    let second = store.create_conversation("second", "m").await.unwrap();
    // Timestamps are in milliseconds: make the bump land later than `second`.
    std::thread::sleep(std::time::Duration::from_millis(5));
    store
        .add_message(first.id, Role::User, "bump", &[])
        .await
        .unwrap();
    let ids: Vec<_> = store
        .list_conversations()
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![first.id, second.id]);

    store
        .rename_conversation(second.id, "renamed")
        .await
        .unwrap();
    assert_eq!(
        store
            .get_conversation(second.id)
            .await
            .unwrap()
            .unwrap()
            .title,
        "renamed"
    );
    assert_eq!(
        store
            .rename_conversation(second.id + 100, "x")
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );
    store.close().await;
}

#[tokio::test]
async fn export_numbers_the_sources_after_the_answer() {
    let dir = TempDir::new().unwrap();
    let store = Store::open(&db_in(&dir), &key()).await.unwrap();
    let chat = store
        .create_conversation("Migration routes", "qwen")
        .await
        .unwrap();
    store
        .add_message(chat.id, Role::User, "Where do swifts go?", &[])
        .await
        .unwrap();
    let answer = store.begin_answer(chat.id).await.unwrap();
    store
        .finish_answer(
            answer,
            "South of the Sahara [1], along the coast [2].",
            &[guide(3), guide(17)],
            TokenUsage::default(),
            &AnswerTimings::default(),
        )
        .await
        .unwrap();

    let md = store.export_markdown(chat.id).await.unwrap();
    assert!(md.starts_with("# Migration routes\n"), "{md}");
    let question = md.find("## User").expect(&md);
    let heading = md.find("## Assistant").expect(&md);
    let text = md.find("South of the Sahara [1]").expect(&md);
    let first = md.find("[1] Field Guide, p. 3").expect(&md);
    let second = md.find("[2] Field Guide, p. 17").expect(&md);
    assert!(question < heading && heading < text && text < first && first < second);
    assert_eq!(
        store.export_markdown(chat.id + 1).await.unwrap_err().code(),
        "not_found"
    );
    store.close().await;
}

#[tokio::test]
async fn notes_and_settings() {
    let dir = TempDir::new().unwrap();
    let db = db_in(&dir);
    let store = Store::open(&db, &key()).await.unwrap();

    let note = store
        .add_note(
            "Ideas",
            "# Ideas\n\n- one",
            &["work".into(), "draft".into()],
        )
        .await
        .unwrap();
    assert_eq!(store.get_note(note.id).await.unwrap().unwrap(), note);
    let edited = store
        .edit_note(
            note.id,
            &NoteEdit {
                body: Some("# Ideas\n\n- one\n- two".into()),
                tags: Some(vec!["work".into()]),
                ..NoteEdit::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(edited.title, "Ideas");
    assert_eq!(edited.body, "# Ideas\n\n- one\n- two");
    assert_eq!(edited.tags, vec!["work".to_string()]);
    assert_eq!(store.list_notes().await.unwrap(), vec![edited]);
    store.delete_note(note.id).await.unwrap();
    assert!(store.get_note(note.id).await.unwrap().is_none());
    assert_eq!(
        store.delete_note(note.id).await.unwrap_err().code(),
        "not_found"
    );
    assert_eq!(
        store
            .edit_note(note.id, &NoteEdit::default())
            .await
            .unwrap_err()
            .code(),
        "not_found"
    );

    assert_eq!(store.get_setting("theme").await.unwrap(), None);
    store.set_setting("theme", "dark").await.unwrap();
    store.set_setting("theme", "light").await.unwrap();
    assert_eq!(
        store.get_setting("theme").await.unwrap().as_deref(),
        Some("light")
    );
    store.close().await;
}

#[tokio::test]
async fn passphrase_keys_come_from_the_salt_file() {
    let dir = TempDir::new().unwrap();
    let db = db_in(&dir);
    let source = |p: &str| KeySource::passphrase(Zeroizing::new(p.to_string()), &db);

    let first = source("correct horse battery").load(&db).unwrap();
    let salt = fs::read(salt_path(&db)).unwrap();
    assert_eq!(salt.len(), 16);
    let again = source("correct horse battery")
        .load_async(db.clone())
        .await
        .unwrap();
    assert_eq!(
        first, again,
        "the same passphrase and salt give the same key"
    );
    let other = source("correct horse battery!").load(&db).unwrap();
    assert_ne!(first, other, "another passphrase gives another key");
    assert_eq!(fs::read(salt_path(&db)).unwrap(), salt, "the salt is kept");
    let salt: [u8; 16] = salt.try_into().unwrap();
    assert_eq!(
        derive_passphrase_key("correct horse battery", &salt).unwrap(),
        first
    );
    assert_eq!(source("").load(&db).unwrap_err().code(), "invalid_input");

    // The key opens a store; the passphrase never reaches the disk.
    let store = Store::open(&db, &first).await.unwrap();
    write_secrets(&store).await;
    store.close().await;
    for entry in fs::read_dir(dir.path()).unwrap() {
        let bytes = fs::read(entry.unwrap().path()).unwrap();
        assert!(!contains(&bytes, b"correct horse battery"));
    }

    // Without its salt, an existing database's key cannot be derived: refused, not
    // replaced by a new salt.
    fs::remove_file(salt_path(&db)).unwrap();
    let err = source("correct horse battery").load(&db).unwrap_err();
    assert_eq!(err.code(), "key_missing", "{err}");
    assert!(!salt_path(&db).exists());
}

/// The child half of the SIGKILL test: writes messages in a loop, printing each id once
/// its transaction is committed. Run only by `a_killed_writer_loses_nothing_committed`.
#[tokio::test]
#[ignore = "helper process for a_killed_writer_loses_nothing_committed"]
async fn writer_loop_child() {
    use std::io::Write;
    let (Ok(db), Ok(hex)) = (
        std::env::var("QUIRE_WRITER_DB"),
        std::env::var("QUIRE_WRITER_KEY"),
    ) else {
        return;
    };
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let key = Key::from_bytes(bytes.try_into().expect("32 bytes"));
    let store = Store::open(Path::new(&db), &key).await.expect("open");
    let chat = match store.list_conversations().await.expect("list").first() {
        Some(c) => c.clone(),
        None => store
            .create_conversation("kill test", "m")
            .await
            .expect("create"),
    };
    let mut out = std::io::stdout();
    for i in 0.. {
        let m = store
            .add_message(chat.id, Role::User, &format!("message {i}"), &[])
            .await
            .expect("add");
        writeln!(out, "{}", m.id).expect("stdout");
        out.flush().expect("flush");
    }
}

#[tokio::test]
async fn a_killed_writer_loses_nothing_committed() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = TempDir::new().unwrap();
    let db = db_in(&dir);
    let raw: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let key = Key::from_bytes(raw);
    let exe = std::env::current_exe().expect("test binary");
    let mut committed: Vec<i64> = Vec::new();
    for round in 0..20u64 {
        let mut child = Command::new(&exe)
            .args([
                "writer_loop_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("QUIRE_WRITER_DB", &db)
            .env("QUIRE_WRITER_KEY", &hex)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().expect("stdout");
        // Let it commit a few messages, then kill it mid-loop at a varying point.
        let want = 3 + (round * 7) % 23;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(id) = line.trim().parse::<i64>() {
                committed.push(id);
                seen += 1;
                if seen >= want {
                    break;
                }
            }
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        assert!(seen > 0, "round {round}: the writer committed nothing");

        // Opens every time, and every message whose commit was reported is there.
        let store = Store::open(&db, &key).await.expect("opens after a kill");
        let chat = store.list_conversations().await.unwrap()[0].clone();
        let ids: std::collections::HashSet<i64> = store
            .messages(chat.id)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect();
        for id in &committed {
            assert!(
                ids.contains(id),
                "round {round}: committed message {id} is gone"
            );
        }
        store.close().await;
    }
    assert!(committed.len() >= 20 * 3);
}
