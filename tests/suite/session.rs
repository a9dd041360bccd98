//! The engine's `Session`, the API the desktop app calls: notes written in the app are
//! indexed like documents (and survive folder ingests and restarts), settings are checked
//! and kept, an unreadable data folder is moved aside whole, and a question is answered
//! and stored through it with the real model.

use std::path::{Path, PathBuf};

use quire_engine::session::{self, DocKind, KeyModeNeeded, Session, Settings};
use quire_engine::store::KeyMode;
use quire_tests::{model_path, repo_root, TempDir, SMOL};

const PASS: &str = "session test passphrase";

fn mode(p: &str) -> KeyMode {
    KeyMode::with_passphrase(p)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A data folder whose models/ is this checkout's (so the embedding model is found
/// wherever the tests were built).
fn data_dir(dir: &TempDir) -> PathBuf {
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(repo_root().join("models"), data.join("models")).unwrap();
    data
}

fn note_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn notes_written_in_the_app_are_indexed_like_documents() {
    let dir = TempDir::new("session-notes");
    let data = data_dir(&dir);
    let rt = runtime();
    let _enter = rt.enter();
    let s = rt
        .block_on(Session::open(&data, &mode(PASS)))
        .expect("open");

    let note = s
        .add_note(
            "Ward round",
            "Check anti-Xa levels before the next enoxaparin dose.",
        )
        .expect("add note");
    let id = quire_engine::docs::note_doc_id(note.id);
    let doc = s
        .documents()
        .unwrap()
        .into_iter()
        .find(|d| d.id == id)
        .expect("indexed");
    assert_eq!(DocKind::of(&doc), DocKind::Note);
    let hits = s.search("anti-Xa enoxaparin", 3).unwrap();
    assert_eq!(
        hits.first().map(|h| h.doc_id.as_str()),
        Some(id.as_str()),
        "{hits:?}"
    );

    // A folder ingest (which drops documents whose files are gone) keeps the note.
    let folder = dir.path().join("folder");
    note_file(
        &folder,
        "minutes.md",
        "# Minutes\n\nThe ward agreed to audit heparin use.\n",
    );
    let report = s
        .ingest(
            std::slice::from_ref(&folder),
            &mut |_: &quire_engine::docs::IngestEvent| {},
        )
        .unwrap();
    assert_eq!((report.added, report.removed), (1, 0), "{report:?}");
    assert!(s.documents().unwrap().iter().any(|d| d.id == id));
    assert_eq!(rt.block_on(s.folders()).unwrap(), vec![folder.clone()]);

    // An edit replaces what is indexed.
    let edit = quire_engine::store_types::NoteEdit {
        body: Some("Switch to fondaparinux for the patient with HIT.".into()),
        ..Default::default()
    };
    s.edit_note(note.id, &edit).unwrap();
    let read = s.read(&id).unwrap();
    assert_eq!(read.kind, DocKind::Note);
    assert!(read.pages[0].text.contains("fondaparinux"));
    let hits = s.search("fondaparinux HIT", 3).unwrap();
    assert_eq!(hits.first().map(|h| h.doc_id.as_str()), Some(id.as_str()));
    assert!(hits.iter().all(|h| !h.text.contains("anti-Xa")), "{hits:?}");

    // Reopened, the index still has the note (it is sealed and committed).
    rt.block_on(s.close());
    let s = rt
        .block_on(Session::open(&data, &mode(PASS)))
        .expect("reopen");
    assert!(s.documents().unwrap().iter().any(|d| d.id == id));
    s.delete_note(note.id).unwrap();
    assert!(!s.documents().unwrap().iter().any(|d| d.id == id));
    assert!(s
        .search("fondaparinux", 3)
        .unwrap()
        .iter()
        .all(|h| h.doc_id != id));
    rt.block_on(s.close());
}

#[test]
fn settings_are_checked_and_kept() {
    let dir = TempDir::new("session-settings");
    let data = data_dir(&dir);
    let rt = runtime();
    let s = rt
        .block_on(Session::open(&data, &mode(PASS)))
        .expect("open");
    let defaults = rt.block_on(s.settings()).unwrap();
    assert_eq!(defaults, Settings::default());

    let bad = Settings {
        k: 0,
        ..defaults.clone()
    };
    let e = rt.block_on(s.set_settings(bad)).unwrap_err();
    assert_eq!(e.code(), "invalid_input", "{e}");
    let missing = Settings {
        model_path: Some(dir.path().join("nope.gguf")),
        ..defaults.clone()
    };
    let e = rt.block_on(s.set_settings(missing)).unwrap_err();
    assert_eq!(e.code(), "model_missing", "{e}");
    // A truncated model is refused before it is chosen.
    let cut = dir.path().join("cut.gguf");
    let bytes = std::fs::read(model_path(SMOL)).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let e = rt
        .block_on(s.set_settings(Settings {
            model_path: Some(cut),
            ..defaults.clone()
        }))
        .unwrap_err();
    assert_eq!(e.code(), "model_invalid", "{e}");

    let good = Settings {
        k: 4,
        max_answer_tokens: 96,
        temperature: 0.0,
        model_path: Some(model_path(SMOL)),
    };
    rt.block_on(s.set_settings(good.clone())).unwrap();
    assert_eq!(good.ask_options().k, 4);
    assert_eq!(good.ask_options().budget.answer_tokens, 96);
    rt.block_on(s.close());
    let s = rt.block_on(Session::open(&data, &mode(PASS))).unwrap();
    assert_eq!(rt.block_on(s.settings()).unwrap(), good);
    assert!(rt
        .block_on(s.models())
        .unwrap()
        .iter()
        .any(|m| m.architecture == "llama"));
    rt.block_on(s.close());
}

#[test]
fn an_unreadable_data_folder_is_moved_aside_whole() {
    let dir = TempDir::new("session-afresh");
    let data = data_dir(&dir);
    let rt = runtime();
    assert!(!session::has_database(&data));
    let s = rt
        .block_on(Session::open(&data, &mode(PASS)))
        .expect("open");
    rt.block_on(s.store().add_note("kept", "nothing is deleted", &[]))
        .unwrap();
    rt.block_on(s.close());
    assert_eq!(session::key_mode_needed(&data), KeyModeNeeded::Passphrase);

    let e = rt
        .block_on(Session::open(&data, &mode("not the passphrase")))
        .err()
        .expect("a wrong passphrase is refused");
    assert_eq!(e.code(), "wrong_key");

    let moved = session::move_aside(&data).unwrap();
    assert!(!data.exists());
    assert!(moved
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with("data-unreadable-"));
    // Everything went along, and the old passphrase still opens it there.
    let s = rt
        .block_on(Session::open(&moved, &mode(PASS)))
        .expect("moved folder opens");
    let notes = rt.block_on(s.store().list_notes()).unwrap();
    assert_eq!(notes.len(), 1);
    rt.block_on(s.close());
}

#[test]
fn a_question_is_answered_and_stored_through_the_session() {
    let dir = TempDir::new("session-ask");
    let data = data_dir(&dir);
    let rt = runtime();
    let _enter = rt.enter();
    let s = rt
        .block_on(Session::open(&data, &mode(PASS)))
        .expect("open");
    let settings = Settings {
        model_path: Some(model_path(SMOL)),
        max_answer_tokens: 64,
        ..Settings::default()
    };
    rt.block_on(s.set_settings(settings)).unwrap();
    s.add_note(
        "Ward protocol",
        "Trauma patients receive enoxaparin 30 mg twice daily for thromboprophylaxis.",
    )
    .unwrap();
    let mut events = Vec::new();
    let (conv, answer) = s
        .ask(
            "What dose of enoxaparin do trauma patients get?",
            None,
            &mut |e| {
                events.push(match e {
                    quire_engine::answer::AnswerEvent::Sources { .. } => "sources",
                    quire_engine::answer::AnswerEvent::Token { .. } => "token",
                    quire_engine::answer::AnswerEvent::Done { .. } => "done",
                })
            },
        )
        .expect("ask");
    assert_eq!(events.first(), Some(&"sources"));
    assert_eq!(events.last(), Some(&"done"));
    assert!(!answer.sources.is_empty());
    assert!(answer
        .sources
        .iter()
        .all(|src| src.doc_id.starts_with("note-")));
    let messages = rt.block_on(s.store().messages(conv)).unwrap();
    assert_eq!(messages.len(), 2, "question and answer stored");
    // What the check found is stored with the answer, for the conversation opened later.
    let checks = messages[1].checks.as_ref().expect("checks stored");
    assert_eq!(checks.refused, answer.refused);
    assert_eq!(checks.unsupported_sentences, answer.unsupported_sentences);
    assert!(messages[0].checks.is_none());
    // An empty question is refused before anything is stored.
    let e = s.ask("   ", Some(conv), &mut |_| {}).unwrap_err();
    assert_eq!(e.code(), "invalid_input");
    assert_eq!(rt.block_on(s.store().messages(conv)).unwrap().len(), 2);
    rt.block_on(s.close());
}
