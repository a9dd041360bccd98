//! The library on disk: incremental ingest, lenient notes, bad files that do not stop a
//! folder, and an ingest killed mid-way that leaves a consistent index and resumes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use quire_docs::{
    ChunkOptions, DocStatus, IngestEvent, Library, LibraryOptions, PdfMode, SearchMode,
    WordEstimate,
};
use quire_engine::store::KeyMode;
use quire_tests::{model_path, quire, quire_bin, shared_dir, TempDir, SMOL, TEST_PASSPHRASE};

fn copy_notes(to: &Path) -> Vec<PathBuf> {
    copy_dir(&shared_dir().join("corpus/notes"), to)
}

fn copy_dir(from: &Path, to: &Path) -> Vec<PathBuf> {
    std::fs::create_dir_all(to).expect("mkdir");
    let mut out = Vec::new();
    for e in std::fs::read_dir(from).expect("source dir") {
        let p = e.expect("entry").path();
        let dst = to.join(p.file_name().expect("name"));
        std::fs::copy(&p, &dst).expect("copy");
        out.push(dst);
    }
    out.sort();
    out
}

/// Options that open the sealed index the CLI made in `data` (keyed by the test passphrase).
fn cli_options(data: &Path) -> LibraryOptions {
    let mode = KeyMode::Passphrase(TEST_PASSPHRASE.to_string().into());
    let mut opts = LibraryOptions::new(ChunkOptions::default(), PdfMode::InProcess);
    opts.index_key =
        Some(*quire_engine::store::index_key_blocking(data, &mode).expect("index key"));
    opts
}

/// The invariant a crash must never break: the manifest's chunk counts are the index's.
fn assert_consistent(lib: &Library) {
    let manifest: usize = lib
        .documents()
        .filter(|d| d.status == DocStatus::Indexed)
        .map(|d| d.chunks)
        .sum();
    assert_eq!(
        manifest as u64,
        lib.num_chunks(),
        "manifest and index disagree"
    );
}

#[test]
fn reingest_does_no_work_and_follows_edits_and_deletes() {
    let dir = TempDir::new("lib");
    let notes = copy_notes(&dir.path().join("notes"));
    let papers = copy_dir(
        &shared_dir().join("corpus/papers"),
        &dir.path().join("papers"),
    );
    std::fs::write(
        dir.path().join("notes/cp1252.txt"),
        b"Caf\xe9 \x96 budget approved",
    )
    .expect("write");
    std::fs::write(dir.path().join("notes/broken.md"), [0u8; 0]).expect("write");
    let index = dir.path().join("index");
    let opts = || LibraryOptions::new(ChunkOptions::default(), PdfMode::Isolated(quire_bin()));

    let mut lib = Library::open(&index, opts()).expect("open");
    let mut warnings = Vec::new();
    let first = lib
        .ingest(
            &[
                dir.path().join("notes"),
                dir.path().join("papers"),
                dir.path().join("missing.pdf"),
            ],
            &WordEstimate,
            &mut |e: &IngestEvent| {
                if let IngestEvent::Finished {
                    warning: Some(w), ..
                } = e
                {
                    warnings.push(w.clone());
                }
            },
        )
        .expect("ingest");
    assert_eq!(
        (first.added, first.failed),
        (notes.len() + papers.len() + 2, 1),
        "{first:?}"
    );
    assert_eq!(warnings.len(), 1, "the cp1252 note is read with a warning");
    assert_consistent(&lib);
    drop(lib);

    // Reopened: unchanged files do no work.
    let mut lib = Library::open(&index, opts()).expect("reopen");
    let both = [dir.path().join("notes"), dir.path().join("papers")];
    let second = lib
        .ingest(&both, &WordEstimate, &mut |_: &IngestEvent| {})
        .expect("again");
    assert_eq!(
        (second.unchanged, second.added, second.updated),
        (notes.len() + papers.len() + 2, 0, 0),
        "{second:?}"
    );

    // One edit, one deletion: exactly those change.
    let edited = &notes[0];
    let mut text = std::fs::read_to_string(edited).expect("read");
    text.push_str("\n\nZanzibar quarterly retrospective.\n");
    std::fs::write(edited, text).expect("write");
    std::fs::remove_file(&notes[1]).expect("rm");
    // An incremental-update style append to a PDF changes its bytes.
    let mut pdf = std::fs::read(&papers[3]).expect("read pdf");
    pdf.extend_from_slice(b"\n% edited\n");
    std::fs::write(&papers[3], pdf).expect("write pdf");
    let third = lib
        .ingest(&both, &WordEstimate, &mut |_: &IngestEvent| {})
        .expect("third");
    assert_eq!(
        (third.updated, third.removed, third.unchanged),
        (2, 1, notes.len() + papers.len() - 1),
        "{third:?}"
    );
    let hits = lib
        .search("zanzibar retrospective", 3, SearchMode::Bm25)
        .expect("search");
    assert_eq!(
        hits.first().map(|h| h.path.clone()),
        Some(edited.display().to_string())
    );
    assert!(lib.documents().all(|d| d.path != notes[1]));
    assert_consistent(&lib);

    // Removing by path.
    assert!(lib.remove(&edited.display().to_string()).expect("remove"));
    assert!(lib
        .search("zanzibar", 3, SearchMode::Bm25)
        .expect("search")
        .is_empty());
    assert_consistent(&lib);
}

#[test]
fn killed_ingest_leaves_a_consistent_index_and_resumes() {
    let dir = TempDir::new("kill");
    let notes = dir.path().join("notes");
    std::fs::create_dir_all(&notes).expect("mkdir");
    let base = std::fs::read_to_string(
        shared_dir().join("corpus/notes/rust-leadership-council_sync-meeting_2025-11-07.md"),
    )
    .expect("read");
    // A paragraph each: the CLI embeds every chunk, so notes stay one or two chunks.
    let cut = base.char_indices().nth(900).map_or(base.len(), |(i, _)| i);
    for i in 0..600 {
        std::fs::write(
            notes.join(format!("note-{i:04}.md")),
            format!("# Note {i}\n{}\nUnique marker q{i}z.\n", &base[..cut]),
        )
        .expect("write");
    }
    let data = dir.path().join("data");
    let model = model_path(SMOL);
    let run = || {
        quire()
            .args([
                "--data-dir",
                data.to_str().expect("utf8"),
                "ingest",
                notes.to_str().expect("utf8"),
                "--json",
            ])
            .args(["--model", model.to_str().expect("utf8")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn")
    };
    let mut killed_with_progress = 0;
    for delay_ms in [700u64, 2600, 4500, 6500] {
        let mut child = run();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let finished = child.try_wait().expect("wait").is_some();
        child.kill().ok(); // SIGKILL
        child.wait().expect("reap");
        let lib =
            Library::open(&data.join("index"), cli_options(&data)).expect("opens after a kill");
        assert_consistent(&lib);
        if !finished && lib.documents().count() > 0 {
            killed_with_progress += 1;
        }
        if finished {
            break;
        }
    }
    assert!(
        killed_with_progress > 0,
        "no kill landed mid-ingest; make the ingest longer"
    );
    // A final run completes everything, and the already-committed work is not redone.
    let out = run().wait_with_output().expect("final run");
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert!(
        report["unchanged"].as_u64().expect("unchanged") > 0,
        "{report}"
    );
    let lib = Library::open(&data.join("index"), cli_options(&data)).expect("open");
    assert_eq!(
        lib.documents()
            .filter(|d| d.status == DocStatus::Indexed)
            .count(),
        600
    );
    assert_consistent(&lib);
    let hits = lib.search("q599z", 1, SearchMode::Bm25).expect("search");
    assert!(hits
        .first()
        .is_some_and(|h| h.path.ends_with("note-0599.md")));
}
