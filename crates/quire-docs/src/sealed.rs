//! A tantivy [`Directory`] that keeps every index file sealed on disk.
//!
//! Each file tantivy writes (segments, doc store with chunk text and vectors, `meta.json`
//! with the library manifest) is stored as one XChaCha20-Poly1305 blob: a magic, a random
//! 24-byte nonce, then ciphertext and tag, with the file's name as associated data so
//! files cannot be swapped. tantivy's files are write-once, so a file is sealed when its
//! writer is terminated and opened (decrypted whole, then cached in memory) on first
//! read. Lock files carry no content and go to the inner directory as they are.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, Lock, OwnedBytes, TerminatingWrite,
    WatchCallback, WatchHandle, WritePtr,
};

/// Starts every sealed file.
const MAGIC: &[u8; 8] = b"QUIRESL1";
const NONCE: usize = 24;

/// Whether `bytes` look like a sealed file (used to detect an older plaintext index).
pub fn is_sealed(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

#[derive(Clone)]
pub struct SealedDirectory {
    inner: Box<dyn Directory>,
    cipher: Arc<XChaCha20Poly1305>,
    cache: Arc<RwLock<HashMap<PathBuf, OwnedBytes>>>,
}

impl std::fmt::Debug for SealedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedDirectory")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn random_nonce() -> io::Result<[u8; NONCE]> {
    use rand::RngCore;
    let mut n = [0u8; NONCE];
    rand::rng().fill_bytes(&mut n);
    Ok(n)
}

impl SealedDirectory {
    /// Wraps `inner`, sealing with the 32-byte `key`.
    pub fn new(inner: Box<dyn Directory>, key: &[u8; 32]) -> Self {
        Self {
            inner,
            cipher: Arc::new(XChaCha20Poly1305::new(key.into())),
            cache: Arc::default(),
        }
    }

    fn aad(path: &Path) -> Vec<u8> {
        path.to_string_lossy().as_bytes().to_vec()
    }

    fn seal(&self, path: &Path, plain: &[u8]) -> io::Result<Vec<u8>> {
        let nonce = random_nonce()?;
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &Self::aad(path),
                },
            )
            .map_err(|_| io::Error::other("sealing an index file failed"))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open(&self, path: &Path, sealed: &[u8]) -> io::Result<Vec<u8>> {
        if !is_sealed(sealed) || sealed.len() < MAGIC.len() + NONCE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a sealed index file", path.display()),
            ));
        }
        let (nonce, body) = sealed[MAGIC.len()..].split_at(NONCE);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &Self::aad(path),
                },
            )
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} cannot be decrypted: wrong key, or the file is damaged",
                        path.display()
                    ),
                )
            })
    }

    fn read_error(path: &Path, e: io::Error) -> OpenReadError {
        OpenReadError::IoError {
            io_error: Arc::new(e),
            filepath: path.to_path_buf(),
        }
    }
}

struct SealingWriter {
    dir: SealedDirectory,
    path: PathBuf,
    plain: Vec<u8>,
    /// Taken when terminated.
    out: Option<WritePtr>,
}

impl Write for SealingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.plain.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for SealingWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        let Some(mut out) = self.out.take() else {
            return Ok(());
        };
        let sealed = self.dir.seal(&self.path, &self.plain)?;
        out.write_all(&sealed)?;
        out.flush()?;
        out.terminate()?;
        let plain = std::mem::take(&mut self.plain);
        if let Ok(mut cache) = self.dir.cache.write() {
            cache.insert(self.path.clone(), OwnedBytes::new(plain));
        }
        Ok(())
    }
}

impl Directory for SealedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        if let Some(b) = self.cache.read().ok().and_then(|c| c.get(path).cloned()) {
            return Ok(Arc::new(b));
        }
        let sealed = self
            .inner
            .open_read(path)?
            .read_bytes()
            .map_err(|e| Self::read_error(path, e))?;
        let plain = self
            .open(path, sealed.as_slice())
            .map_err(|e| Self::read_error(path, e))?;
        let bytes = OwnedBytes::new(plain);
        if let Ok(mut cache) = self.cache.write() {
            cache.insert(path.to_path_buf(), bytes.clone());
        }
        Ok(Arc::new(bytes))
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        if let Ok(mut cache) = self.cache.write() {
            cache.remove(path);
        }
        self.inner.delete(path)
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        self.inner.exists(path)
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        let out = self.inner.open_write(path)?;
        Ok(io::BufWriter::new(Box::new(SealingWriter {
            dir: self.clone(),
            path: path.to_path_buf(),
            plain: Vec::new(),
            out: Some(out),
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        let sealed = self.inner.atomic_read(path)?;
        self.open(path, &sealed)
            .map_err(|e| Self::read_error(path, e))
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let sealed = self.seal(path, data)?;
        self.inner.atomic_write(path, &sealed)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.inner.sync_directory()
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        self.inner.acquire_lock(lock)
    }

    fn watch(&self, callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.inner.watch(callback)
    }
}

// --- re-sealing a whole index under a new key -------------------------------------------

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Whether `dir` holds a sealed index (its `meta.json` is sealed).
pub fn is_sealed_index(dir: &Path) -> bool {
    std::fs::read(dir.join("meta.json")).is_ok_and(|b| is_sealed(&b))
}

/// Whether the sealed index in `dir` opens with `key` (its manifest decrypts).
pub fn opens_with(dir: &Path, key: &[u8; 32]) -> bool {
    let Ok(bytes) = std::fs::read(dir.join("meta.json")) else {
        return false;
    };
    let probe = SealedDirectory::new(Box::new(tantivy::directory::RamDirectory::create()), key);
    probe.open(Path::new("meta.json"), &bytes).is_ok()
}

/// Re-seals every file of the index in `dir` from key `old` to key `new`. The new files
/// are written and synced in `<dir>.resealing`; then `dir` becomes `<dir>.old`, the new
/// folder becomes `dir`, and the old one is removed. [`recover`] finishes or undoes an
/// interrupted run. The index must not be open meanwhile.
pub fn reseal(dir: &Path, old: &[u8; 32], new: &[u8; 32]) -> io::Result<()> {
    recover(dir)?;
    let staging = sibling(dir, ".resealing");
    let previous = sibling(dir, ".old");
    let ram = || Box::new(tantivy::directory::RamDirectory::create());
    let (from, to) = (
        SealedDirectory::new(ram(), old),
        SealedDirectory::new(ram(), new),
    );
    std::fs::create_dir_all(&staging)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            continue;
        }
        let name = PathBuf::from(entry.file_name());
        let bytes = std::fs::read(entry.path())?;
        // Lock files are empty and plain; everything else is sealed.
        let out = if is_sealed(&bytes) {
            to.seal(&name, &from.open(&name, &bytes)?)?
        } else {
            bytes
        };
        let mut f = std::fs::File::create(staging.join(&name))?;
        f.write_all(&out)?;
        f.sync_all()?;
    }
    sync_dir(&staging)?;
    std::fs::rename(dir, &previous)?;
    std::fs::rename(&staging, dir)?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    std::fs::remove_dir_all(&previous)
}

/// Puts the index folder in a consistent state after an interrupted [`reseal`]: a
/// complete new folder is swapped in, a partial one removed, a leftover old one removed.
pub fn recover(dir: &Path) -> io::Result<()> {
    let staging = sibling(dir, ".resealing");
    let previous = sibling(dir, ".old");
    if previous.exists() && !dir.exists() && staging.exists() {
        // Stopped between the two renames: the new folder was complete.
        std::fs::rename(&staging, dir)?;
    }
    if previous.exists() && !dir.exists() {
        std::fs::rename(&previous, dir)?;
    }
    if staging.exists() {
        std::fs::remove_dir_all(&staging)?;
    }
    if previous.exists() && dir.exists() {
        std::fs::remove_dir_all(&previous)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tantivy::directory::RamDirectory;

    #[test]
    fn files_round_trip_sealed_and_a_wrong_key_cannot_open_them() {
        let ram = RamDirectory::create();
        let dir = SealedDirectory::new(Box::new(ram.clone()), &[7u8; 32]);
        let mut w = dir.open_write(Path::new("a.idx")).expect("write");
        w.write_all(b"patient zebra phrase").expect("write");
        w.terminate().expect("terminate");
        dir.atomic_write(Path::new("meta.json"), b"{\"zebra\":1}")
            .expect("atomic");

        let raw = ram
            .open_read(Path::new("a.idx"))
            .expect("raw")
            .read_bytes()
            .expect("bytes");
        assert!(is_sealed(raw.as_slice()));
        assert!(!raw.as_slice().windows(5).any(|w| w == b"zebra"));
        let raw_meta = ram.atomic_read(Path::new("meta.json")).expect("raw meta");
        assert!(!raw_meta.windows(5).any(|w| w == b"zebra"));

        // A fresh directory object (no cache) reads them back.
        let again = SealedDirectory::new(Box::new(ram.clone()), &[7u8; 32]);
        let back = again
            .open_read(Path::new("a.idx"))
            .expect("read")
            .read_bytes()
            .expect("b");
        assert_eq!(back.as_slice(), b"patient zebra phrase");
        assert_eq!(
            again.atomic_read(Path::new("meta.json")).expect("meta"),
            b"{\"zebra\":1}"
        );

        let wrong = SealedDirectory::new(Box::new(ram), &[8u8; 32]);
        let err = wrong
            .atomic_read(Path::new("meta.json"))
            .expect_err("wrong key");
        assert!(err.to_string().contains("wrong key"), "{err}");
        assert!(wrong.open_read(Path::new("a.idx")).is_err());
    }

    fn sealed_folder(dir: &Path, key: &[u8; 32]) {
        std::fs::create_dir_all(dir).expect("mkdir");
        let mmap = tantivy::directory::MmapDirectory::open(dir).expect("mmap");
        let sealed = SealedDirectory::new(Box::new(mmap), key);
        let mut w = sealed.open_write(Path::new("a.idx")).expect("write");
        w.write_all(b"segment with the heron phrase")
            .expect("write");
        w.terminate().expect("terminate");
        sealed
            .atomic_write(Path::new("meta.json"), b"{\"heron\":2}")
            .expect("meta");
        std::fs::write(dir.join(".tantivy-writer.lock"), b"").expect("lock");
    }

    fn read_with(dir: &Path, key: &[u8; 32]) -> Vec<u8> {
        let mmap = tantivy::directory::MmapDirectory::open(dir).expect("mmap");
        let sealed = SealedDirectory::new(Box::new(mmap), key);
        let data = sealed
            .open_read(Path::new("a.idx"))
            .expect("read")
            .read_bytes()
            .expect("bytes");
        data.as_slice().to_vec()
    }

    #[test]
    fn resealing_moves_every_file_to_the_new_key() {
        let tmp = std::env::temp_dir().join(format!("quire-reseal-{}", std::process::id()));
        let dir = tmp.join("index");
        sealed_folder(&dir, &[1; 32]);
        assert!(is_sealed_index(&dir) && opens_with(&dir, &[1; 32]));
        reseal(&dir, &[1; 32], &[2; 32]).expect("reseal");
        assert!(opens_with(&dir, &[2; 32]) && !opens_with(&dir, &[1; 32]));
        assert_eq!(read_with(&dir, &[2; 32]), b"segment with the heron phrase");
        assert!(dir.join(".tantivy-writer.lock").exists());
        assert!(!sibling(&dir, ".old").exists() && !sibling(&dir, ".resealing").exists());
        // A wrong old key fails before anything moves.
        assert!(reseal(&dir, &[9; 32], &[3; 32]).is_err());
        std::fs::remove_dir_all(sibling(&dir, ".resealing")).ok();
        assert!(opens_with(&dir, &[2; 32]));
        std::fs::remove_dir_all(&tmp).ok();
    }

    #[test]
    fn an_interrupted_reseal_is_finished_or_undone() {
        let tmp = std::env::temp_dir().join(format!("quire-recover-{}", std::process::id()));
        let dir = tmp.join("index");
        let (staging, previous) = (sibling(&dir, ".resealing"), sibling(&dir, ".old"));
        // Stopped while writing the new folder: the old index stays, the partial goes.
        sealed_folder(&dir, &[1; 32]);
        std::fs::create_dir_all(&staging).expect("mkdir");
        std::fs::write(staging.join("a.idx"), b"half").expect("write");
        recover(&dir).expect("recover");
        assert!(!staging.exists() && opens_with(&dir, &[1; 32]));
        // Stopped between the two renames: the complete new folder is swapped in.
        sealed_folder(&staging, &[2; 32]);
        std::fs::rename(&dir, &previous).expect("rename");
        recover(&dir).expect("recover");
        assert!(opens_with(&dir, &[2; 32]) && !previous.exists() && !staging.exists());
        // Stopped before removing the old folder: it goes.
        sealed_folder(&previous, &[1; 32]);
        recover(&dir).expect("recover");
        assert!(!previous.exists() && opens_with(&dir, &[2; 32]));
        std::fs::remove_dir_all(&tmp).ok();
    }
}
