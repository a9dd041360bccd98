//! The keychain key source against the real platform keychain. On Linux that needs a
//! Secret Service: scripts/test.sh runs the ignored tests with `-- --ignored` inside
//! `dbus-run-session` with an unlocked gnome-keyring. The dead-bus test needs no keychain
//! at all and always runs.

use std::path::PathBuf;

use quire_store::{delete_keychain_entry, KeySource, Store};
use tempfile::TempDir;

/// A service name no real entry uses, so a test never touches the user's Quire key.
const TEST_SERVICE: &str = "quire-store-tests";

fn unique_account(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{what}-{}-{nanos}", std::process::id())
}

#[test]
#[ignore = "needs a Secret Service; run by scripts/test.sh under dbus-run-session"]
fn the_keychain_key_is_made_once_and_then_reused() {
    let dir = TempDir::new().unwrap();
    let db: PathBuf = dir.path().join("quire.db");
    let account = unique_account("round-trip");
    let source = KeySource::keychain(TEST_SERVICE, account.as_str());

    let first = source.load(&db).expect("first run creates the key");
    let second = source.load(&db).expect("later runs read it back");
    assert_eq!(first, second);

    // The key opens a store, and the keychain entry is all there is of it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&db, &first).await.unwrap();
        store.add_note("kept", "safe", &[]).await.unwrap();
        store.close().await;
        let store = Store::open(&db, &source.load(&db).unwrap()).await.unwrap();
        assert_eq!(store.list_notes().await.unwrap().len(), 1);
        store.close().await;
    });

    // With the entry gone, the existing database's key is missing: refused, and no new
    // key is put in its place.
    delete_keychain_entry(TEST_SERVICE, &account).unwrap();
    let err = source.load(&db).unwrap_err();
    assert_eq!(err.code(), "key_missing", "{err}");
    delete_keychain_entry(TEST_SERVICE, &account).expect("deleting nothing is fine");
    let fresh_dir = TempDir::new().unwrap();
    let fresh = fresh_dir.path().join("new.db");
    let fresh_key = source.load(&fresh).unwrap();
    assert_ne!(fresh_key, first, "a new database gets a new random key");
    delete_keychain_entry(TEST_SERVICE, &account).unwrap();
}

/// libdbus reads DBUS_SESSION_BUS_ADDRESS once per process, so the dead bus is set up in a
/// child: this test runs itself again with the variable pointing at a socket that does not
/// exist.
#[cfg(target_os = "linux")]
#[test]
fn no_session_bus_means_keychain_unavailable() {
    const NAME: &str = "no_session_bus_means_keychain_unavailable";
    if std::env::var_os("QUIRE_DEAD_BUS_CHILD").is_some() {
        let dir = TempDir::new().unwrap();
        let db = dir.path().join("quire.db");
        let err = KeySource::keychain(TEST_SERVICE, "dead-bus")
            .load(&db)
            .unwrap_err();
        assert_eq!(err.code(), "keychain_unavailable", "{err}");
        let message = err.to_string();
        assert!(message.contains("unavailable"), "{message}");
        assert!(message.contains("--passphrase"), "{message}");
        assert!(message.contains("QUIRE_PASSPHRASE"), "{message}");
        assert!(!db.exists(), "no database without a key");
        return;
    }
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([NAME, "--exact", "--nocapture", "--test-threads=1"])
        .env("QUIRE_DEAD_BUS_CHILD", "1")
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/quire-test/bus",
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("1 passed"),
        "child run failed:\n{stdout}\n{stderr}"
    );
}

#[test]
#[ignore = "needs a locked Secret Service; run by scripts/test.sh under dbus-run-session"]
fn a_locked_keychain_is_a_clear_error_and_no_key_is_made() {
    let dir = TempDir::new().unwrap();
    let db: PathBuf = dir.path().join("quire.db");
    let source = KeySource::keychain(TEST_SERVICE, unique_account("locked").as_str());
    let err = source
        .load(&db)
        .expect_err("a locked keychain gives no key");
    assert_eq!(err.code(), "keychain_locked", "{err}");
    assert!(err.to_string().contains("passphrase"), "{err}");
    assert!(!db.exists(), "nothing is created without a key");
}

/// Key rotation through the real keychain: each database has its own entry (named by its
/// `.keyid` file); rotating makes a new entry, re-encrypts, then drops the old entry; and
/// switching to a passphrase and back works the same way.
#[test]
#[ignore = "needs a Secret Service; run by scripts/test.sh under dbus-run-session"]
fn made_once_and_rotated_through_the_keychain() {
    use quire_store::{commit_rotation, keyid_path, prepare_rotation, NewKey, KEYCHAIN_SERVICE};
    let dir = TempDir::new().unwrap();
    let db: PathBuf = dir.path().join("quire.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let first = KeySource::keychain_for(&db).unwrap().load(&db).unwrap();
    let old_id = std::fs::read_to_string(keyid_path(&db)).unwrap();
    runtime.block_on(async {
        let store = Store::open(&db, &first).await.unwrap();
        store
            .add_note("kept", "across rotations", &[])
            .await
            .unwrap();
        let new = prepare_rotation(&db, NewKey::Keychain).unwrap();
        assert_ne!(new, first);
        store.rekey(&new).await.unwrap();
        commit_rotation(&db).unwrap();
        store.close().await;
    });
    let second = KeySource::keychain_for(&db).unwrap().load(&db).unwrap();
    assert_ne!(second, first, "the keyid file now names the new entry");
    assert_ne!(std::fs::read_to_string(keyid_path(&db)).unwrap(), old_id);
    // The old entry is gone from the keychain.
    let old = KeySource::keychain(KEYCHAIN_SERVICE, format!("database-key-{old_id}"));
    assert_eq!(old.load(&db).unwrap_err().code(), "key_missing");

    // To a passphrase and back to the keychain.
    runtime.block_on(async {
        let store = Store::open(&db, &second).await.unwrap();
        let pass =
            prepare_rotation(&db, NewKey::Passphrase("correct horse".to_string().into())).unwrap();
        store.rekey(&pass).await.unwrap();
        commit_rotation(&db).unwrap();
        assert!(!keyid_path(&db).exists());
        store.close().await;
        let by_pass = KeySource::passphrase("correct horse".to_string().into(), &db)
            .load(&db)
            .unwrap();
        let store = Store::open(&db, &by_pass).await.unwrap();
        let back = prepare_rotation(&db, NewKey::Keychain).unwrap();
        store.rekey(&back).await.unwrap();
        commit_rotation(&db).unwrap();
        store.close().await;
        let third = KeySource::keychain_for(&db).unwrap().load(&db).unwrap();
        assert_eq!(third, back);
        let store = Store::open(&db, &third).await.unwrap();
        assert_eq!(
            store.list_notes().await.unwrap()[0].body,
            "across rotations"
        );
        store.close().await;
    });
}
