//! PDF text, page by page, with our own content-stream interpreter over lopdf's parser.
//!
//! lopdf parses the file (cross-references, object streams, filters, decryption with the
//! empty user password); [`interp`] follows the text state to place every glyph, and
//! [`layout`] turns glyphs into text in reading order. A PDF is untrusted input:
//! streams are decompressed under a size limit, form nesting is bounded, and
//! [`isolate`] runs the whole extraction in a child process with memory, CPU, time and
//! output limits, so a hostile file can neither crash nor hang Quire.

mod font;
mod interp;
pub mod isolate;
mod layout;

use std::path::Path;
use std::time::Duration;

use lopdf::{Document, LoadOptions};
use serde::{Deserialize, Serialize};

use crate::chunk::Page;

pub use isolate::{extract_isolated, run_worker_if_requested, WORKER_ARG};

/// Limits on one PDF's extraction.
#[derive(Debug, Clone, Copy)]
pub struct PdfLimits {
    /// Larger files are refused before they are read.
    pub max_file_bytes: u64,
    /// Bytes any one stream may decompress to (decompression bombs).
    pub max_stream_bytes: usize,
    /// Pages read at most.
    pub max_pages: usize,
    /// Text kept at most, all pages together.
    pub max_text_bytes: usize,
    /// Address space of the isolated extractor.
    pub memory_bytes: u64,
    /// CPU seconds of the isolated extractor.
    pub cpu_seconds: u64,
    /// Wall-clock time for one file.
    pub wall: Duration,
}

impl Default for PdfLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 1 << 30,
            max_stream_bytes: 128 << 20,
            max_pages: 20_000,
            max_text_bytes: 128 << 20,
            memory_bytes: 3 << 30,
            cpu_seconds: 300,
            wall: Duration::from_secs(600),
        }
    }
}

/// Why a PDF gave no text. Each kind is a status a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum PdfProblem {
    #[error("password-protected: the PDF needs a password to open")]
    PasswordProtected,
    #[error("not a readable PDF: {0}")]
    Corrupt(String),
    #[error("too large: {0}")]
    TooLarge(String),
    #[error("reading it took longer than {0} s; the file may be malformed")]
    TimedOut(u64),
    #[error("the PDF reader crashed on this file ({0}); the file is likely malformed")]
    Crashed(String),
}

/// A PDF's text.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PdfText {
    pub pages: Vec<Page>,
    /// From the document information, when it has a meaningful one.
    pub title: Option<String>,
    /// Pages a limit cut short.
    pub truncated_pages: usize,
    /// Pages in the file (may exceed `pages.len()` when capped by `max_pages`).
    pub total_pages: usize,
}

impl PdfText {
    /// Pages whose text layer is empty (or nearly: under 10 letters or digits).
    pub fn empty_pages(&self) -> usize {
        self.pages
            .iter()
            .filter(|p| p.text.chars().filter(|c| c.is_alphanumeric()).count() < 10)
            .count()
    }

    /// No text layer to speak of: at least 90% of the pages are empty (an image-only
    /// scan, perhaps with a stray line of text).
    pub fn lacks_text_layer(&self) -> bool {
        self.pages.is_empty() || self.empty_pages() * 10 >= self.pages.len() * 9
    }
}

/// Events of an extraction, in order: `Open` once, then one `Page` per page.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PdfEvent {
    Open {
        pages: usize,
        title: Option<String>,
    },
    Page {
        page: Page,
        truncated: bool,
        /// The first page's headline in display type (its title, for a paper).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        headline: Option<String>,
    },
}

/// Running out of memory while reading: the file is too large for the memory allowed
/// to read one PDF (the same words whichever step failed to allocate).
fn out_of_memory(limits: &PdfLimits) -> PdfProblem {
    PdfProblem::TooLarge(format!(
        "reading it needed more than {} MiB of memory",
        limits.memory_bytes >> 20
    ))
}

/// A failed read of the file. Reading it whole reserves its size first, so under the
/// isolated reader's memory limit a large file can fail here rather than in the parser.
fn io_problem(e: std::io::Error, limits: &PdfLimits) -> PdfProblem {
    if e.kind() == std::io::ErrorKind::OutOfMemory {
        out_of_memory(limits)
    } else {
        PdfProblem::Corrupt(e.to_string())
    }
}

fn lopdf_problem(e: lopdf::Error, limits: &PdfLimits) -> PdfProblem {
    let text = e.to_string();
    let lower = text.to_lowercase();
    match e {
        lopdf::Error::IO(e) => io_problem(e, limits),
        lopdf::Error::Decryption(_) => PdfProblem::PasswordProtected,
        lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded { limit }) => {
            PdfProblem::TooLarge(format!(
                "a stream decompresses to more than {} MiB (a decompression bomb?)",
                limit >> 20
            ))
        }
        _ if lower.contains("password") || lower.contains("decrypt") => {
            PdfProblem::PasswordProtected
        }
        _ => PdfProblem::Corrupt(text),
    }
}

fn info_title(doc: &Document) -> Option<String> {
    let info = doc.trailer.get(b"Info").ok()?;
    let info = doc.dereference(info).ok()?.1.as_dict().ok()?;
    let title = info.get(b"Title").ok()?;
    let title = doc.dereference(title).ok()?.1;
    let t = lopdf::decode_text_string(title).ok()?;
    let t = t.trim();
    let lower = t.to_lowercase();
    // One word is a placeholder ("Title") or a production code ("ipg1300180a"), not a
    // title: the file's name says more.
    let junk = t.chars().filter(|c| c.is_alphabetic()).count() < 3
        || !t.contains(char::is_whitespace)
        || lower.starts_with("microsoft word")
        || lower == "untitled"
        || [".pdf", ".doc", ".docx", ".tex", ".dvi", ".indd"]
            .iter()
            .any(|ext| lower.ends_with(ext));
    (!junk).then(|| t.chars().take(300).collect())
}

/// Words a title does not end on: a document-information title that does was cut short
/// by the program that wrote it ("A loss-of-function mutation in").
const DANGLING: &[&str] = &[
    "a", "an", "and", "as", "at", "by", "for", "from", "in", "into", "of", "on", "or", "the", "to",
    "via", "with", "versus", "vs",
];

fn ends_unfinished(title: &str) -> bool {
    let t = title.trim_end();
    t.ends_with(['-', '\u{2010}', '\u{2011}', ':', ','])
        || t.rsplit(char::is_whitespace)
            .next()
            .is_some_and(|w| DANGLING.contains(&w.to_lowercase().as_str()))
}

/// A title cut short in the document information, completed from the first page where
/// it is printed whole: the rest of the line it starts on, then the lines that carry it on
/// (starting in lower case, or following a line that ends mid-phrase), at most three.
/// `None` when the page does not print it.
fn complete_title(title: &str, first_page: &str) -> Option<String> {
    // Compared with hyphens unified and whitespace collapsed, as PDFs print both freely;
    // the title may itself wrap across lines of the page.
    let fold = |c: char| match c {
        '\u{2010}' | '\u{2011}' | '\u{2012}' | '\u{2013}' => '-',
        c => c,
    };
    let collapse = |t: &str| -> Vec<char> {
        t.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .map(fold)
            .collect()
    };
    let want = collapse(title);
    let lines: Vec<&str> = first_page.lines().collect();
    // The page as one line, each character tagged with the line it came from.
    let (mut flat, mut line_of) = (Vec::new(), Vec::new());
    for (i, line) in lines.iter().enumerate() {
        let chars = collapse(line);
        if chars.is_empty() {
            continue;
        }
        line_of.extend(std::iter::repeat_n(i, chars.len() + 1));
        flat.extend(chars);
        flat.push(' ');
    }
    if want.is_empty() {
        return None;
    }
    let at = flat
        .windows(want.len())
        .position(|w| w == want.as_slice())?;
    let last = line_of[at + want.len() - 1];
    let end = line_of
        .iter()
        .rposition(|&l| l == last)
        .unwrap_or(at + want.len());
    let mut full: String = flat[at..end].iter().collect();
    for next in lines.iter().skip(last + 1).take(3) {
        let next: String = collapse(next).into_iter().collect();
        let carries_on = next.starts_with(char::is_lowercase) || ends_unfinished(&full);
        if next.is_empty() || !carries_on || full.chars().count() + next.chars().count() > 300 {
            break;
        }
        if !full.ends_with('-') {
            full.push(' ');
        }
        full.push_str(&next);
    }
    if ends_unfinished(&full) {
        full.push('\u{2026}');
    }
    Some(full)
}

/// The title: the document information's when it is whole; one cut short there completed
/// from the first page, else the page's headline, else marked as cut with an ellipsis;
/// with none, the first page's headline.
fn choose_title(
    info: Option<String>,
    first_page: &str,
    headline: Option<String>,
) -> Option<String> {
    match info {
        Some(t) if ends_unfinished(&t) => complete_title(&t, first_page)
            .or(headline)
            .or_else(|| Some(format!("{}\u{2026}", t.trim_end()))),
        Some(t) => Some(t),
        None => headline,
    }
}

/// Extracts text in this process, reporting each page to `sink` as it is done.
/// Use [`extract_isolated`] for files you did not make.
pub fn extract_each(
    path: &Path,
    limits: &PdfLimits,
    sink: &mut dyn FnMut(PdfEvent),
) -> Result<(), PdfProblem> {
    let meta = std::fs::metadata(path).map_err(|e| io_problem(e, limits))?;
    if meta.len() > limits.max_file_bytes {
        return Err(PdfProblem::TooLarge(format!(
            "{} MiB, over the {} MiB limit",
            meta.len() >> 20,
            limits.max_file_bytes >> 20
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| io_problem(e, limits))?;
    if !bytes.windows(5).take(1024).any(|w| w == b"%PDF-") {
        return Err(PdfProblem::Corrupt("no PDF header".into()));
    }
    let options = LoadOptions {
        max_decompressed_size: Some(limits.max_stream_bytes),
        ..LoadOptions::default()
    };
    let doc =
        Document::load_mem_with_options(&bytes, options).map_err(|e| lopdf_problem(e, limits))?;
    drop(bytes);
    if doc.is_encrypted() {
        return Err(PdfProblem::PasswordProtected);
    }
    let pages = doc.get_pages();
    if pages.is_empty() {
        return Err(PdfProblem::Corrupt(
            "no pages could be found (the file may be truncated or damaged)".into(),
        ));
    }
    sink(PdfEvent::Open {
        pages: pages.len(),
        title: info_title(&doc),
    });
    let mut interp = interp::Interpreter::new(&doc, limits.max_stream_bytes);
    let mut text_bytes = 0usize;
    for (i, (&number, &page_id)) in pages.iter().take(limits.max_pages).enumerate() {
        let glyphs = match interp.page(page_id) {
            Ok(g) => g,
            Err(lopdf::Error::Decompress(lopdf::DecompressError::MemoryLimitExceeded {
                limit,
            })) => {
                return Err(PdfProblem::TooLarge(format!(
                "page {number}'s content decompresses to more than {} MiB (a decompression bomb?)",
                limit >> 20
            )))
            }
            Err(_) => Default::default(),
        };
        let truncated = glyphs.truncated;
        // The first page's headline comes from the same layout as its text.
        let (text, headline) = layout::read_page(&glyphs, i == 0);
        text_bytes += text.len();
        if text_bytes > limits.max_text_bytes {
            return Err(PdfProblem::TooLarge(format!(
                "more than {} MiB of text",
                limits.max_text_bytes >> 20
            )));
        }
        sink(PdfEvent::Page {
            page: Page { number, text },
            truncated,
            headline,
        });
    }
    Ok(())
}

/// Extracts text in this process.
pub fn extract(path: &Path, limits: &PdfLimits) -> Result<PdfText, PdfProblem> {
    let mut out = PdfText::default();
    extract_each(path, limits, &mut |e| collect(&mut out, e))?;
    Ok(out)
}

pub(crate) fn collect(out: &mut PdfText, e: PdfEvent) {
    match e {
        PdfEvent::Open { pages, title } => {
            out.total_pages = pages;
            out.title = title;
        }
        PdfEvent::Page {
            page,
            truncated,
            headline,
        } => {
            if out.pages.is_empty() {
                // The document information's title, whole; else the first page's headline.
                out.title = choose_title(out.title.take(), &page.text, headline);
            }
            out.truncated_pages += truncated as usize;
            out.pages.push(page);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_cut_short_in_the_document_information_is_completed_from_the_first_page() {
        // Diabetologia's first page, as the extractor reads it (non-breaking hyphens).
        let page = "Diabetologia (2024) 67:940\u{2013}951\nhttps://doi.org/10.1007/s00125-024-06103-w\n\nARTICLE\n\n\
            A loss\u{2011}of\u{2011}function mutation in KCNJ11 causing sulfonylurea\u{2011}sensitive\n\
            diabetes in early adult life\n\
            Natascia Vedovato1 \u{b7} Maria V. Salguero2 \u{b7} Siri Atma W. Greeley2\n\nAbstract\n";
        let title = |info: &str, page: &str, headline: Option<&str>| {
            choose_title(Some(info.to_string()), page, headline.map(str::to_string))
        };
        assert_eq!(
            title("A loss-of-function mutation in", page, None).as_deref(),
            Some("A loss-of-function mutation in KCNJ11 causing sulfonylurea-sensitive diabetes in early adult life")
        );
        // Wrapped on the page at a different place than where it was cut.
        let page = "Journal of Things\nStressful life events are not associated\nwith the onset of dementia\nA. Author, B. Author\n";
        assert_eq!(
            title(
                "Stressful life events are not associated with the",
                page,
                None
            )
            .as_deref(),
            Some("Stressful life events are not associated with the onset of dementia")
        );
        // Not on the first page: the page's headline, or else marked as cut, not guessed.
        let cover = "Some other cover page\n";
        let headline = Some("Effects of rain on snails");
        assert_eq!(title("Effects of", cover, headline).as_deref(), headline);
        assert_eq!(
            title("Effects of", cover, None).as_deref(),
            Some("Effects of\u{2026}")
        );
        // A whole title is left alone, whatever the page says; none at all is the headline.
        let page = "Cryo-EM structures of A3AR bound to agonists\n";
        assert_eq!(
            title("Cryo-EM structures of A3AR", page, headline).as_deref(),
            Some("Cryo-EM structures of A3AR")
        );
        assert_eq!(
            choose_title(None, cover, headline.map(str::to_string)).as_deref(),
            headline
        );
    }

    #[test]
    fn a_placeholder_or_code_in_the_document_information_is_not_a_title() {
        let title_of = |t: &str| {
            let mut doc = Document::with_version("1.5");
            let mut dict = lopdf::Dictionary::new();
            dict.set("Title", lopdf::Object::string_literal(t));
            let info = doc.add_object(dict);
            doc.trailer.set("Info", info);
            info_title(&doc)
        };
        for junk in [
            "Title",
            "ipg1300180a",
            "Microsoft Word - draft3.docx",
            "untitled",
            "paper.pdf",
            "  ",
        ] {
            assert_eq!(title_of(junk), None, "{junk:?}");
        }
        assert_eq!(
            title_of(" Structural insights into Siglec-15 "),
            Some("Structural insights into Siglec-15".to_string())
        );
    }

    #[test]
    fn running_out_of_memory_reading_the_file_is_too_large_not_corrupt() {
        // What reading a file whole returns when its size cannot be reserved.
        let limits = PdfLimits {
            memory_bytes: 40 << 20,
            ..PdfLimits::default()
        };
        let oom = || std::io::Error::from(std::io::ErrorKind::OutOfMemory);
        let expected = PdfProblem::TooLarge("reading it needed more than 40 MiB of memory".into());
        assert_eq!(io_problem(oom(), &limits), expected);
        assert_eq!(lopdf_problem(lopdf::Error::IO(oom()), &limits), expected);
        // Any other failure to read stays what it is.
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert!(matches!(
            io_problem(missing, &limits),
            PdfProblem::Corrupt(_)
        ));
    }
}
