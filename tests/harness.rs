//! Helpers shared by Quire's integration suite: where the repo, `../shared` and the models
//! are, and how to read the reference files.

use std::path::{Path, PathBuf};

/// The reference models, by the names `../shared/reference` uses.
pub const SMOL: &str = "smollm2-135m-instruct-q4_1";
pub const QWEN: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `../shared` beside the checkout (override with `QUIRE_SHARED`).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("QUIRE_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared"))
}

/// The GGUF file of a reference model; panics with the command that fetches it.
pub fn model_path(name: &str) -> PathBuf {
    let file = match name {
        SMOL => "SmolLM2-135M-Instruct.Q4_1.gguf",
        QWEN => "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        other => panic!("unknown reference model {other}"),
    };
    let path = repo_root().join("models").join(file);
    assert!(
        path.exists(),
        "{} is missing: run `scripts/fetch-models.sh --all`",
        path.display()
    );
    path
}

/// The sentence-embedding model's folder (`quire_runtime::EMBED_MODEL_DIR` under models/);
/// panics with the command that fetches it.
pub fn embed_model_dir() -> PathBuf {
    let dir = repo_root().join("models").join("all-MiniLM-L6-v2");
    assert!(
        dir.join("model.safetensors").exists(),
        "{} is missing: run `scripts/fetch-models.sh`",
        dir.display()
    );
    dir
}

/// Every line of a JSONL file under `../shared/reference`.
pub fn reference_lines(file: &str) -> Vec<serde_json::Value> {
    let path = shared_dir().join("reference").join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

pub fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .expect("an array of ids")
        .iter()
        .map(|x| x.as_u64().expect("an id") as u32)
        .collect()
}

/// The built `quire` binary next to the test executable (target/<profile>/quire).
pub fn quire_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = dir.join(format!("quire{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.exists(), "{} not built", bin.display());
    bin
}

/// A `quire` command that finds this checkout's models/ wherever the binary was built
/// (CI builds into a target directory outside the clone).
/// The passphrase `quire()` commands key their store and index with: the suite runs
/// outside any keychain (the keychain has its own tests, under dbus-run-session).
pub const TEST_PASSPHRASE: &str = "quire test suite passphrase";

pub fn quire() -> std::process::Command {
    let mut c = std::process::Command::new(quire_bin());
    c.env("QUIRE_MODELS_DIR", repo_root().join("models"));
    c.env("QUIRE_PASSPHRASE", TEST_PASSPHRASE);
    c
}

/// A fresh temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "quire-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        Self(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
