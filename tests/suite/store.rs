//! The encrypted store through the `quire` command: passphrase mode end to end, a wrong
//! passphrase refused with nothing changed, and no keychain at all turned into a clear
//! error that points at passphrase mode. (The keychain itself is tested against a real
//! gnome-keyring in crates/quire-store/tests/keychain.rs, run by scripts/test.sh.)

use std::path::Path;

use quire_tests::{quire, TempDir};

fn run(data: &Path, pass: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let mut c = quire();
    c.arg("--data-dir").arg(data).args(args);
    match pass {
        Some(p) => c.env("QUIRE_PASSPHRASE", p),
        None => c.env_remove("QUIRE_PASSPHRASE"),
    };
    let out = c.output().expect("run quire");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn all_bytes(dir: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_bytes(&p));
        } else {
            out.extend(std::fs::read(&p).expect("read"));
        }
    }
    out
}

#[test]
fn notes_round_trip_encrypted_and_a_wrong_passphrase_changes_nothing() {
    let dir = TempDir::new("store-cli");
    let data = dir.path().join("data");
    let phrase = "Oncology consult: marimastat trial zebra-417";
    let pass = Some("correct horse battery staple");

    let (ok, id, err) = run(
        &data,
        pass,
        &[
            "notes",
            "add",
            "--title",
            "Ward round",
            "--body",
            phrase,
            "--tag",
            "clinic",
        ],
    );
    assert!(ok, "{err}");
    let id = id.trim().to_string();
    let (ok, shown, err) = run(&data, pass, &["notes", "show", &id]);
    assert!(ok, "{err}");
    assert!(
        shown.contains(phrase) && shown.contains("# Ward round"),
        "{shown}"
    );
    let (ok, status, err) = run(&data, pass, &["key", "status"]);
    assert!(ok, "{err}");
    assert!(
        status.contains("passphrase") && status.contains("SQLCipher 4"),
        "{status}"
    );

    // Nothing readable on disk: not the note, not a plaintext SQLite header.
    let bytes = all_bytes(&data);
    assert!(!bytes.windows(phrase.len()).any(|w| w == phrase.as_bytes()));
    assert!(!bytes.windows(6).any(|w| w == b"zebra-"));
    let db = std::fs::read(data.join("quire.db")).expect("db");
    assert!(!db.starts_with(b"SQLite format 3"));

    // A wrong passphrase: a "wrong key" error, and the file is untouched.
    let (ok, _, err) = run(&data, Some("wrong horse"), &["notes", "list"]);
    assert!(!ok);
    assert!(err.contains("key"), "{err}");
    assert_eq!(std::fs::read(data.join("quire.db")).expect("db"), db);
    let (ok, listed, _) = run(&data, pass, &["notes", "list", "--json"]);
    assert!(ok && listed.contains("Ward round"), "{listed}");
}

#[test]
fn no_keychain_is_a_clear_error_that_offers_passphrase_mode() {
    let dir = TempDir::new("store-nokeychain");
    let data = dir.path().join("data");
    let out = quire()
        .arg("--data-dir")
        .arg(&data)
        .args(["notes", "list"])
        .env_remove("QUIRE_PASSPHRASE")
        .env_remove("DISPLAY")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/quire-test-bus",
        )
        .output()
        .expect("run quire");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("keychain is unavailable"), "{err}");
    assert!(
        err.contains("--passphrase") && err.contains("QUIRE_PASSPHRASE"),
        "{err}"
    );
    // No key was made, so no database either.
    assert!(!data.join("quire.db").exists());
}

#[test]
fn nothing_ingested_or_written_is_readable_on_disk() {
    let dir = TempDir::new("privacy");
    let data = dir.path().join("data");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).expect("mkdir");
    let note_phrase = "quetiapine titration for patient okapi-5531";
    std::fs::write(
        docs.join("ward.md"),
        format!("# Ward notes\n\nPlan: {note_phrase}, review on Friday.\n"),
    )
    .expect("write");
    let paper = quire_tests::shared_dir()
        .join("corpus/papers/cermine_bmc-jtmo-2010_dvt-prophylaxis-trauma-systematic-review.pdf");
    std::fs::copy(&paper, docs.join("paper.pdf")).expect("copy");
    let pass = Some(quire_tests::TEST_PASSPHRASE);

    let (ok, _, err) = run(&data, pass, &["ingest", docs.to_str().expect("utf8")]);
    assert!(ok, "{err}");
    let in_app = "in-app note about the heron-2207 consent form";
    let (ok, _, err) = run(
        &data,
        pass,
        &["notes", "add", "--title", "Consent", "--body", in_app],
    );
    assert!(ok, "{err}");
    // The index works: the note's and the paper's text are found.
    let (ok, hits, err) = run(
        &data,
        pass,
        &[
            "search",
            "okapi-5531 quetiapine",
            "--mode",
            "bm25",
            "--json",
        ],
    );
    assert!(ok && hits.contains("okapi-5531"), "{hits}{err}");
    let (ok, hits, _) = run(&data, pass, &["search", "thromboprophylaxis", "--json"]);
    assert!(ok && hits.contains("paper.pdf"), "{hits}");

    let bytes = all_bytes(&data);
    for phrase in [
        "okapi-5531",
        "quetiapine",
        "heron-2207",
        "thromboprophylaxis",
        "Journal of Trauma Management",
        "Ward notes",
    ] {
        assert!(
            !bytes.windows(phrase.len()).any(|w| w == phrase.as_bytes()),
            "{phrase:?} is readable somewhere under the data dir"
        );
    }
    // And a wrong passphrase opens neither store nor index, and changes nothing.
    let before = all_bytes(&data);
    let (ok, _, err) = run(
        &data,
        Some("not it"),
        &["search", "okapi", "--mode", "bm25"],
    );
    assert!(!ok && err.contains("wrong key"), "{err}");
    assert_eq!(all_bytes(&data), before);
}
