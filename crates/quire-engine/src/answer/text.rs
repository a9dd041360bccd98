//! Plain-text helpers shared by packing, citation and verification: sentence splitting
//! and the content words two texts are compared by.

use std::collections::HashSet;

/// Words that say nothing about a claim's content.
const STOPWORDS: &[&str] = &[
    "a",
    "about",
    "above",
    "after",
    "again",
    "all",
    "also",
    "am",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "because",
    "been",
    "before",
    "being",
    "between",
    "both",
    "but",
    "by",
    "can",
    "could",
    "did",
    "do",
    "does",
    "doing",
    "down",
    "during",
    "each",
    "few",
    "for",
    "from",
    "further",
    "had",
    "has",
    "have",
    "having",
    "he",
    "her",
    "here",
    "hers",
    "him",
    "his",
    "how",
    "i",
    "if",
    "in",
    "into",
    "is",
    "it",
    "its",
    "itself",
    "just",
    "may",
    "me",
    "might",
    "more",
    "most",
    "much",
    "must",
    "my",
    "no",
    "nor",
    "not",
    "of",
    "off",
    "on",
    "once",
    "only",
    "or",
    "other",
    "our",
    "out",
    "over",
    "own",
    "same",
    "she",
    "should",
    "so",
    "some",
    "such",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "through",
    "to",
    "too",
    "under",
    "until",
    "up",
    "us",
    "very",
    "was",
    "we",
    "were",
    "what",
    "when",
    "where",
    "which",
    "while",
    "who",
    "whom",
    "why",
    "will",
    "with",
    "would",
    "you",
    "your",
    "according",
    "used",
    "use",
    "using",
    "study",
    "paper",
    "authors",
    "document",
    "documents",
    "source",
    "sources",
    "said",
    "say",
    "tell",
    "find",
    "found",
    "get",
    "got",
    "give",
    "given",
    "know",
    "one",
    "two",
    "s",
    "t",
    "de",
    "et",
    "al",
    "per",
    "via",
    "based",
    "within",
    "without",
    "whether",
    "many",
    "people",
    "anyone",
];

fn is_stopword(w: &str) -> bool {
    STOPWORDS.contains(&w)
}

/// A light English stem: enough that "patients"/"patient" and "treated"/"treat" meet.
pub fn stem(word: &str) -> String {
    let w = word;
    let n = w.chars().count();
    for suffix in [
        "ations", "ation", "ings", "ing", "edly", "ies", "es", "ed", "ly", "s",
    ] {
        if n > suffix.len() + 3 && w.ends_with(suffix) {
            let base = &w[..w.len() - suffix.len()];
            return if suffix == "ies" {
                format!("{base}y")
            } else {
                base.to_string()
            };
        }
    }
    w.to_string()
}

/// Lower-cased, stemmed content words of `text`, in order (numbers kept: "12.5", "2023").
pub fn content_terms(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let lower = text.to_lowercase();
    let mut word = String::new();
    let mut chars = lower.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric()
            || (c == '.'
                && word.chars().last().is_some_and(|d| d.is_ascii_digit())
                && chars.peek().is_some_and(|d| d.is_ascii_digit()))
            || (c == '-' && !word.is_empty() && chars.peek().is_some_and(|d| d.is_alphanumeric()))
        {
            word.push(c);
            continue;
        }
        flush(&mut word, &mut out);
    }
    flush(&mut word, &mut out);
    out
}

fn flush(word: &mut String, out: &mut Vec<String>) {
    if word.is_empty() {
        return;
    }
    let w = std::mem::take(word);
    let w = w.trim_matches('-');
    if w.is_empty() || is_stopword(w) {
        return;
    }
    if w.chars().count() == 1 && !w.chars().all(|c| c.is_ascii_digit()) {
        return;
    }
    out.push(stem(w));
    // Hyphenated words also count by their parts ("anti-inflammatory").
    if w.contains('-') {
        for part in w.split('-').filter(|p| p.len() > 2 && !is_stopword(p)) {
            out.push(stem(part));
        }
    }
}

pub fn term_set(text: &str) -> HashSet<String> {
    content_terms(text).into_iter().collect()
}

const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
];

/// The numbers `text` states — digits (thousands separators dropped, a trailing `.0`
/// kept as written) and the words zero to twenty as digits — so "Fifteen patients" and
/// "15 patients" state the same number.
pub fn numbers(text: &str) -> HashSet<String> {
    let mut out = HashSet::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_ascii_digit() {
            let mut n = String::new();
            while i < chars.len() {
                let c = chars[i];
                let next_digit = chars.get(i + 1).is_some_and(|d| d.is_ascii_digit());
                if c.is_ascii_digit() {
                    n.push(c);
                } else if c == '.' && next_digit {
                    n.push('.');
                } else if c == ','
                    && next_digit
                    && chars[i + 1..]
                        .iter()
                        .take_while(|d| d.is_ascii_digit())
                        .count()
                        == 3
                {
                    // 1,000 → 1000
                } else {
                    break;
                }
                i += 1;
            }
            out.insert(n);
        } else if chars[i].is_alphabetic() {
            let start = i;
            while i < chars.len() && chars[i].is_alphabetic() {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect::<String>().to_lowercase();
            if let Some(v) = NUMBER_WORDS.iter().position(|w| *w == word) {
                out.insert(v.to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// The share of `claim`'s content words found in `source` (0 when `claim` has none).
pub fn coverage(claim: &HashSet<String>, source: &HashSet<String>) -> f32 {
    if claim.is_empty() {
        return 0.0;
    }
    claim.iter().filter(|t| source.contains(*t)).count() as f32 / claim.len() as f32
}

const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "et al", "fig", "figs", "vs", "approx", "no", "eq", "ref", "refs", "dr", "mr",
    "mrs", "ms", "prof", "st", "ca", "cf", "resp", "suppl", "tab", "vol",
];

/// Byte ranges of the sentences of `text`: split after `.`, `!` or `?` followed by space
/// and a capital, digit, bracket or quote, at blank lines and before a line that starts a
/// list item or heading; abbreviations and decimals do not end a sentence, and neither
/// does a plain line break (PDF text breaks lines inside sentences). Ranges are trimmed
/// and never empty.
pub fn sentences(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let mut end_here = None;
        if c == b'\n' {
            if line_break_ends_sentence(&bytes[i + 1..]) {
                end_here = Some(i);
            }
        } else if matches!(c, b'.' | b'!' | b'?') {
            // Skip closing quotes/brackets that belong to the sentence.
            let mut j = i + 1;
            while j < bytes.len() && matches!(bytes[j], b'"' | b'\'' | b')') {
                j += 1;
            }
            let next_is_space = j >= bytes.len() || bytes[j] == b' ' || bytes[j] == b'\n';
            if next_is_space {
                let mut k = j;
                while k < bytes.len() && bytes[k] == b' ' {
                    k += 1;
                }
                let starts_new = k >= bytes.len()
                    || bytes[k].is_ascii_uppercase()
                    || bytes[k].is_ascii_digit()
                    || matches!(bytes[k], b'[' | b'"' | b'(' | b'\n' | b'-' | b'*')
                    || bytes[k] >= 0x80;
                let word_before = text[start..i]
                    .rsplit(|ch: char| ch.is_whitespace() || ch == '(')
                    .next()
                    .unwrap_or("")
                    .to_lowercase();
                let is_abbrev = c == b'.'
                    && (ABBREVIATIONS.contains(&word_before.as_str())
                        || (word_before.len() == 1
                            && word_before.chars().all(|ch| ch.is_alphabetic())));
                if starts_new && !is_abbrev {
                    end_here = Some(j);
                }
            }
        }
        if let Some(end) = end_here {
            push_trimmed(text, start, end, &mut out);
            start = end;
        }
        i += 1;
    }
    push_trimmed(text, start, text.len(), &mut out);
    out
}

/// Whether a line break followed by `rest` ends a sentence: at the end, before a blank
/// line, or before a list item or a heading.
fn line_break_ends_sentence(rest: &[u8]) -> bool {
    let mut k = 0;
    while k < rest.len() && matches!(rest[k], b' ' | b'\t' | b'\r') {
        k += 1;
    }
    let Some(&c) = rest.get(k) else {
        return true;
    };
    if matches!(c, b'\n' | b'-' | b'*' | b'#' | b'>' | b'|' | b'+')
        || rest[k..].starts_with("•".as_bytes())
    {
        return true;
    }
    // "1. " or "2) " numbered items.
    let digits = rest[k..].iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0
        && digits < 4
        && matches!(rest.get(k + digits), Some(b'.' | b')'))
        && matches!(rest.get(k + digits + 1), Some(b' '))
}

fn push_trimmed(text: &str, start: usize, end: usize, out: &mut Vec<(usize, usize)>) {
    let piece = &text[start..end];
    let lead = piece.len() - piece.trim_start().len();
    let trail = piece.len() - piece.trim_end().len();
    if lead + trail < piece.len() {
        out.push((start + lead, end - trail));
    }
}

/// The character offset of byte offset `byte` in `text`.
pub fn char_offset(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].chars().count()
}

/// `text` cut to at most `max_chars` characters at a word boundary, with an ellipsis.
pub fn clip(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut: String = text.chars().take(max_chars).collect();
    let cut = cut.rsplit_once(' ').map(|(a, _)| a).unwrap_or(&cut);
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_respect_abbreviations_and_decimals() {
        let t = "Doses were 2.5 mg daily (e.g. in week 1). Fig. 2 shows it. Then we stopped!\nNext line";
        let s: Vec<&str> = sentences(t).iter().map(|&(a, b)| &t[a..b]).collect();
        assert_eq!(
            s,
            vec![
                "Doses were 2.5 mg daily (e.g. in week 1).",
                "Fig. 2 shows it.",
                "Then we stopped!",
                "Next line"
            ]
        );
        // A PDF's line breaks fall inside sentences; lists and paragraphs still split.
        let t = "The calculated rate was\n2.8% in trauma\npatients. Bleeding was rare\n\nResults\n- first item\n* second item\n3. third item\n";
        let s: Vec<&str> = sentences(t).iter().map(|&(a, b)| &t[a..b]).collect();
        assert_eq!(
            s,
            vec![
                "The calculated rate was\n2.8% in trauma\npatients.",
                "Bleeding was rare",
                "Results",
                "- first item",
                "* second item",
                "3. third item"
            ]
        );
    }

    #[test]
    fn numbers_are_read_as_stated_in_digits_or_words() {
        let n = numbers("Fifteen patients got 2.5 mg; 1,200 were screened in 2010 (3.9%).");
        let want: HashSet<String> = ["15", "2.5", "1200", "2010", "3.9"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(n, want);
        assert!(numbers("one of two groups")
            .is_superset(&["1", "2"].iter().map(|s| s.to_string()).collect()));
        // A sentence's full stop is not a decimal point.
        assert_eq!(
            numbers("It was 12."),
            ["12".to_string()].into_iter().collect()
        );
        assert!(numbers("no figures here").is_empty());
    }

    #[test]
    fn terms_stem_and_drop_stopwords() {
        let t = content_terms("The patients were treated with 12.5 mg of anti-inflammatory drugs.");
        assert!(t.contains(&"patient".to_string()), "{t:?}");
        assert!(t.contains(&"treat".to_string()), "{t:?}");
        assert!(t.contains(&"12.5".to_string()), "{t:?}");
        assert!(t.contains(&"inflammatory".to_string()), "{t:?}");
        assert!(!t.contains(&"the".to_string()));
        let a = term_set("patients treated");
        let b = term_set("we treated many patients today");
        assert_eq!(coverage(&a, &b), 1.0);
    }
}
