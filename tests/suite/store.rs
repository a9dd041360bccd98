//! The encrypted store through the `quire` command: passphrase mode end to end, a wrong
//! passphrase refused with nothing changed, and no keychain at all turned into a clear
//! error that points at passphrase mode. (The keychain itself is tested against a real
//! gnome-keyring in crates/quire-store/tests/keychain.rs, run by scripts/test.sh.)

use std::path::Path;

use quire_tests::{quire, TempDir};

fn run(data: &Path, pass: Option<&str>, args: &[&str]) -> (bool, String, String) {
    let envs: Vec<(&str, &str)> = pass.map(|p| ("QUIRE_PASSPHRASE", p)).into_iter().collect();
    run_env(data, &envs, args)
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

    // A question and its answer go to the store.
    let (ok, out, err) = run(
        &data,
        pass,
        &[
            "ask",
            "What is the plan for patient okapi-5531, asks ibis-3090?",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let answer: serde_json::Value = serde_json::from_str(&out).expect("json");
    let answer_text = answer["answer"].as_str().expect("answer").to_string();
    let (ok, list, _) = run(&data, pass, &["conversations", "search", "ibis-3090"]);
    assert!(
        ok && list.contains("okapi-5531"),
        "the question is stored: {list}"
    );
    // A stretch of the answer as stored (the longest run of plain words in it).
    let answer_piece: String = answer_text
        .split(['[', ']'])
        .max_by_key(|s| s.len())
        .unwrap_or("")
        .trim()
        .chars()
        .take(40)
        .collect();
    assert!(answer_piece.len() >= 12, "{answer_text}");

    let bytes = all_bytes(&data);
    for phrase in [
        answer_piece.as_str(),
        "ibis-3090",
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
    assert!(!ok && err.contains("wrong passphrase"), "{err}");
    assert_eq!(all_bytes(&data), before);
}

fn run_env(data: &Path, envs: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let mut c = quire();
    c.arg("--data-dir").arg(data).args(args);
    c.env_remove("QUIRE_PASSPHRASE");
    for (k, v) in envs {
        c.env(k, v);
    }
    let out = c.output().expect("run quire");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Every file under `dir` with its bytes, by relative path.
fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).expect("under").display().to_string();
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    out
}

#[test]
fn rotating_the_key_reencrypts_store_and_index_and_the_old_key_opens_nothing() {
    let dir = TempDir::new("rotate");
    let data = dir.path().join("data");
    let docs = dir.path().join("docs");
    std::fs::create_dir_all(&docs).expect("mkdir");
    std::fs::write(
        docs.join("rounds.md"),
        "# Rounds\n\nBed 4 started apixaban for the pelican-4410 trial.\n",
    )
    .expect("write");
    let old = quire_tests::TEST_PASSPHRASE;
    let (ok, _, err) = run(&data, Some(old), &["ingest", docs.to_str().expect("utf8")]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &data,
        Some(old),
        &[
            "notes",
            "add",
            "--title",
            "Handover",
            "--body",
            "check the walrus-77 labs",
        ],
    );
    assert!(ok, "{err}");
    let before = files(&data);

    let new = "a completely different passphrase";
    let (ok, out, err) = run_env(
        &data,
        &[("QUIRE_PASSPHRASE", old), ("QUIRE_NEW_PASSPHRASE", new)],
        &["key", "rotate"],
    );
    assert!(ok && out.contains("rotated"), "{out}{err}");

    // Every file of store and index was rewritten (the salt too): nothing sealed under
    // the old key is left.
    let after = files(&data);
    for (name, bytes) in &before {
        if name.starts_with("index/") && !name.ends_with(".lock") || name == "quire.db.salt" {
            assert_ne!(after.get(name), Some(bytes), "{name} was not re-encrypted");
        }
    }
    assert!(
        !after
            .keys()
            .any(|k| k.contains("pending") || k.contains("resealing") || k.ends_with(".old")),
        "leftovers: {:?}",
        after.keys().collect::<Vec<_>>()
    );

    // The old passphrase opens neither store nor index.
    let (ok, _, err) = run(&data, Some(old), &["notes", "list"]);
    assert!(!ok && err.contains("wrong"), "{err}");
    let (ok, _, err) = run(&data, Some(old), &["search", "apixaban", "--mode", "bm25"]);
    assert!(!ok && err.contains("wrong"), "{err}");
    // The new one opens both, with everything in them.
    let (ok, notes, err) = run(&data, Some(new), &["notes", "list"]);
    assert!(ok && notes.contains("Handover"), "{notes}{err}");
    let (ok, hits, err) = run(
        &data,
        Some(new),
        &[
            "search",
            "pelican-4410 apixaban",
            "--mode",
            "bm25",
            "--json",
        ],
    );
    assert!(ok && hits.contains("pelican-4410"), "{hits}{err}");
    let (ok, list, err) = run(&data, Some(new), &["docs", "list"]);
    assert!(ok && list.contains("rounds.md"), "{list}{err}");
}

#[test]
fn a_rotation_interrupted_after_the_rekey_is_finished_by_the_next_start() {
    use quire_engine::store::{self as estore, KeyMode};
    use quire_engine::store_types::{self as st, NewKey};
    let dir = TempDir::new("rotate-crash");
    let data = dir.path().join("data");
    let old = quire_tests::TEST_PASSPHRASE;
    let new = "the passphrase after the crash";
    let (ok, _, err) = run(
        &data,
        Some(old),
        &[
            "notes",
            "add",
            "--title",
            "Kept",
            "--body",
            "survives the crash",
        ],
    );
    assert!(ok, "{err}");
    let db = estore::db_path(&data);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Steps 1 and 2 of a rotation, then "the power goes": no commit.
        let mode = KeyMode::Passphrase(old.to_string().into());
        let store = estore::open(&data, &mode).await.expect("open");
        let key =
            st::prepare_rotation(&db, NewKey::Passphrase(new.to_string().into())).expect("prepare");
        store.rekey(&key).await.expect("rekey");
        store.close().await;
    });
    assert!(st::salt_path(&db).with_extension("salt.pending").exists());

    // The new passphrase opens it and completes the rotation; the old one no longer does.
    let (ok, notes, err) = run(&data, Some(new), &["notes", "list"]);
    assert!(ok && notes.contains("Kept"), "{notes}{err}");
    assert!(!st::salt_path(&db).with_extension("salt.pending").exists());
    let (ok, _, err) = run(&data, Some(old), &["notes", "list"]);
    assert!(!ok && err.contains("wrong"), "{err}");

    // A rotation that stopped before the rekey changed nothing: the current passphrase
    // still opens, and the next rotation replaces the stale pending salt.
    st::prepare_rotation(&db, NewKey::Passphrase("never used".to_string().into()))
        .expect("prepare");
    let (ok, notes, err) = run(&data, Some(new), &["notes", "list"]);
    assert!(ok && notes.contains("Kept"), "{notes}{err}");
    let (ok, _, err) = run(&data, Some("never used"), &["notes", "list"]);
    assert!(!ok && err.contains("wrong"), "{err}");
}

/// Runs `script` as root of a private mount namespace (`unshare -rm`), where it can mount
/// a small tmpfs. `None` when this machine does not allow user namespaces.
fn in_mount_namespace(script: &str) -> Option<std::process::Output> {
    let probe = std::process::Command::new("unshare")
        .args(["-rm", "true"])
        .output()
        .ok()?;
    if !probe.status.success() {
        return None;
    }
    Some(
        std::process::Command::new("unshare")
            .args(["-rm", "sh", "-c", script])
            .output()
            .expect("unshare"),
    )
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing_saved() {
    let dir = TempDir::new("disk-full");
    let mnt = dir.path().join("mnt");
    std::fs::create_dir_all(&mnt).expect("mkdir");
    let bin = quire_tests::quire_bin();
    let models = quire_tests::repo_root().join("models");
    // A 3 MiB disk: notes of 200 KB each until it is full, then read back what was saved.
    let script = format!(
        r#"set -u
mount -t tmpfs -o size=3m tmpfs '{mnt}' || exit 90
head -c 600000 /dev/zero > '{mnt}/filler'
head -c 150000 /dev/zero | tr '\0' 'x' > '{dir}/body'
export QUIRE_PASSPHRASE='{pass}' QUIRE_MODELS_DIR='{models}'
saved=0
for i in $(seq 1 40); do
  if '{bin}' --data-dir '{mnt}/data' notes add --title "n$i" --body - <'{dir}/body' >/dev/null 2>'{dir}/err'; then
    saved=$((saved+1))
  else
    echo "FAILED_AT=$i"; cat '{dir}/err'; break
  fi
done
echo "SAVED=$saved"
rm -f '{mnt}/filler'
'{bin}' --data-dir '{mnt}/data' notes list --json > '{dir}/list.json' 2>'{dir}/err2' || {{ echo LIST_FAILED; cat '{dir}/err2'; }}
echo "LISTED=$(grep -c '"title"' '{dir}/list.json')"
"#,
        mnt = mnt.display(),
        dir = dir.path().display(),
        pass = quire_tests::TEST_PASSPHRASE,
        models = models.display(),
        bin = bin.display(),
    );
    let Some(out) = in_mount_namespace(&script) else {
        eprintln!("skipped: user namespaces are not available here");
        return;
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(90), "mount failed: {stdout}");
    let value = |k: &str| -> Option<usize> {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .and_then(|v| v.trim().parse().ok())
    };
    assert!(
        value("FAILED_AT=").is_some(),
        "the disk never filled: {stdout}"
    );
    assert!(stdout.contains("disk is full"), "{stdout}");
    assert!(
        stdout.contains("nothing that was already saved was lost"),
        "{stdout}"
    );
    assert!(!stdout.contains("LIST_FAILED"), "{stdout}");
    let saved = value("SAVED=").expect("saved");
    assert!(saved > 0, "{stdout}");
    assert_eq!(value("LISTED="), Some(saved), "{stdout}");
}
