//! Markdown and plain-text notes: read leniently (a note that is not UTF-8 is decoded as
//! Windows-1252, with a warning, rather than rejected), titled by their first heading.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::chunk::Page;
use crate::error::{DocsError, Result};

/// A note read from disk.
#[derive(Debug, Clone)]
pub struct Note {
    pub title: String,
    pub pages: Vec<Page>,
    /// sha256 of the file's bytes: unchanged content means nothing to re-index.
    pub content_hash: String,
    /// Set when the bytes were not valid UTF-8.
    pub warning: Option<String>,
}

/// Reads a `.md` or `.txt` note.
pub fn read(path: &Path) -> Result<Note> {
    let bytes = std::fs::read(path).map_err(|source| DocsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let content_hash = Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let (text, warning) = match String::from_utf8(bytes) {
        Ok(s) => (s, None),
        Err(e) => {
            let bytes = e.into_bytes();
            (
                bytes.iter().map(|&b| windows_1252(b)).collect::<String>(),
                Some("not valid UTF-8; read as Windows-1252".to_string()),
            )
        }
    };
    let text = text
        .strip_prefix('\u{FEFF}')
        .map(str::to_string)
        .unwrap_or(text)
        .replace("\r\n", "\n");
    let title = text
        .lines()
        .find_map(|l| l.strip_prefix("# ").map(|t| t.trim().to_string()))
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
    Ok(Note {
        title,
        pages: vec![Page { number: 1, text }],
        content_hash,
        warning,
    })
}

/// Windows-1252, the usual encoding of notes that are not UTF-8.
fn windows_1252(b: u8) -> char {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8D}', 'Ž',
        '\u{8F}', '\u{90}', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9D}',
        'ž', 'Ÿ',
    ];
    match b {
        0x80..=0x9F => HIGH[(b - 0x80) as usize],
        _ => b as char,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_utf8_notes_are_read_with_a_warning() {
        let dir = std::env::temp_dir().join(format!("quire-note-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("minutes.txt");
        std::fs::write(&path, b"Caf\xe9 meeting \x96 budget \x80 approved\r\n").unwrap();
        let note = read(&path).unwrap();
        assert_eq!(note.pages[0].text, "Café meeting – budget € approved\n");
        assert!(note.warning.is_some());
        assert_eq!(note.title, "minutes");
        std::fs::write(&path, "# Weekly sync\nAll good.").unwrap();
        let note = read(&path).unwrap();
        assert_eq!(
            (note.title.as_str(), note.warning.is_none()),
            ("Weekly sync", true)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
