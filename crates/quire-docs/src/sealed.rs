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
}
