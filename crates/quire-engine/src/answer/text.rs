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

/// Words a sentence uses to point at its sources rather than to say something:
/// "This information can be found in Source [1]", "as shown in the data above [2]"
/// (with the stopwords, "found" and "above" among them).
const POINTER_WORDS: &[&str] = &[
    "information",
    "info",
    "evidence",
    "data",
    "detail",
    "details",
    "shown",
    "show",
    "shows",
    "seen",
    "see",
    "stated",
    "states",
    "state",
    "supported",
    "supports",
    "support",
    "provided",
    "provides",
    "provide",
    "mentioned",
    "mentions",
    "mention",
    "listed",
    "described",
    "explained",
    "indicated",
    "answer",
    "answers",
    "question",
    "refer",
    "refers",
    "cited",
    "passage",
    "passages",
    "text",
    "excerpt",
    "quote",
    "quoted",
    "reference",
    "references",
    "below",
    "fact",
    "specifically",
    "clearly",
    "directly",
    "located",
    "contained",
    "contains",
    "discussed",
    "conclusion",
    "statement",
    "claim",
];

/// Whether `sentence` only points at its sources ("This information can be found in
/// Source [1].", "This is supported by the data in Sources [5] and [6].") and states
/// nothing of its own.
pub fn only_points_at_sources(sentence: &str) -> bool {
    let words: Vec<String> = sentence
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !is_stopword(w) && (w.len() > 1 || w.chars().all(|c| c.is_ascii_digit())))
        .collect();
    words.iter().all(|w| POINTER_WORDS.contains(&w.as_str()))
}

/// Whether a sentence of an answer is a fragment that says nothing by itself: two words
/// or fewer, as a list number ("2."), a table label ("- Table S6."), a journal
/// abbreviation cut off at its full stop ("J. Neurophysiol."), a speaker's name
/// ("Eric Huss:") or the last words before the token limit ("The bank") come out of the
/// sentence splitter. "Yes." and "No." are answers, not fragments.
pub fn is_fragment(sentence: &str) -> bool {
    let words: Vec<&str> = sentence
        .split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .collect();
    let yes_no = words.first().is_some_and(|w| {
        let w = w
            .trim_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        w == "yes" || w == "no"
    });
    words.len() <= 2 && !yes_no
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
    // A residue written as code and position ("Ser999", "Tyr369") also counts as the
    // amino acid's name and the position, as a reader would write it ("serine 999").
    if let Some((name, position)) = residue(w) {
        out.push(stem(name));
        out.push(position.to_string());
    }
    // Hyphenated words also count by their parts ("anti-inflammatory").
    if w.contains('-') {
        for part in w.split('-').filter(|p| p.len() > 2 && !is_stopword(p)) {
            out.push(stem(part));
        }
    }
}

/// The three-letter codes of the twenty amino acids, with their names.
const AMINO_ACIDS: &[(&str, &str)] = &[
    ("ala", "alanine"),
    ("arg", "arginine"),
    ("asn", "asparagine"),
    ("asp", "aspartate"),
    ("cys", "cysteine"),
    ("gln", "glutamine"),
    ("glu", "glutamate"),
    ("gly", "glycine"),
    ("his", "histidine"),
    ("ile", "isoleucine"),
    ("leu", "leucine"),
    ("lys", "lysine"),
    ("met", "methionine"),
    ("phe", "phenylalanine"),
    ("pro", "proline"),
    ("ser", "serine"),
    ("thr", "threonine"),
    ("trp", "tryptophan"),
    ("tyr", "tyrosine"),
    ("val", "valine"),
];

/// A lower-cased word that names a residue by code and position ("ser999"): the amino
/// acid's name and the position.
fn residue(word: &str) -> Option<(&'static str, &str)> {
    let (code, position) = word.split_at_checked(3)?;
    if position.is_empty() || !position.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    AMINO_ACIDS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|&(_, name)| (name, position))
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

/// Whether `text` reads like an entry of a reference list — an author list ("Norwood SH,
/// McAuley CE, Berne JD") or a journal's year, volume and pages ("2002, 137:696-702",
/// "2019;12(3):45") — rather than prose. A paper's bibliography shares the words of
/// every question about its topic, but it never answers one.
pub fn looks_like_reference(text: &str) -> bool {
    let words: Vec<&str> = text.split_whitespace().collect();
    // "Surname AB," — a capitalised word, then one to three capitals closed by , . or :
    let authors = words
        .windows(2)
        .filter(|w| {
            let name = w[0].trim_start_matches(['(', '[']);
            let initials = w[1].trim_end_matches([',', '.', ':', ';']);
            name.chars().next().is_some_and(char::is_uppercase)
                && name
                    .chars()
                    .skip(1)
                    .all(|c| c.is_lowercase() || c == '-' || c == '\'')
                && name.chars().count() > 1
                && w[1].len() > initials.len()
                && (1..=3).contains(&initials.len())
                && initials.chars().all(|c| c.is_ascii_uppercase())
        })
        .count();
    if authors >= 3 {
        return true;
    }
    // "2002, 137:696" or "2019;12(3):45": a year, then a volume, then pages after a colon.
    words.windows(2).any(|w| {
        let year = w[0].trim_end_matches([',', ';']);
        let is_year = year.len() == 4
            && year.chars().all(|c| c.is_ascii_digit())
            && (year.starts_with("19") || year.starts_with("20"));
        is_year && w[0].len() > 4 && volume_pages(w[1])
    }) || words.iter().any(|w| {
        // The same written without a space: "2002;137:696-702".
        w.split_once(';').is_some_and(|(y, rest)| {
            y.len() == 4 && y.chars().all(|c| c.is_ascii_digit()) && volume_pages(rest)
        })
    })
}

/// Whether at least half of `text` (by length) is reference-list entries.
pub fn mostly_references(text: &str) -> bool {
    let (mut cited, mut all) = (0, 0);
    for (a, b) in sentences(text) {
        all += b - a;
        if looks_like_reference(&text[a..b]) {
            cited += b - a;
        }
    }
    all > 0 && cited * 2 >= all
}

/// "137:696-702", "12(3):45": digits, an optional issue in brackets, a colon, digits.
fn volume_pages(s: &str) -> bool {
    let Some((volume, pages)) = s.split_once(':') else {
        return false;
    };
    let volume = match volume.split_once('(') {
        Some((v, issue)) if issue.ends_with(')') => v,
        Some(_) => "",
        None => volume,
    };
    !volume.is_empty()
        && volume.chars().all(|c| c.is_ascii_digit())
        && pages.chars().next().is_some_and(|c| c.is_ascii_digit())
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
    fn fragments_are_two_words_or_fewer_but_yes_and_no_are_answers() {
        for f in [
            "2.",
            "- Table S6.",
            "J. Neurophysiol.",
            "* Eric Huss:",
            "The bank",
            "(2022).",
            "",
        ] {
            assert!(is_fragment(f), "{f:?}");
        }
        for s in [
            "Yes.",
            "No, not here.",
            "Metformin was stopped.",
            "The dose was 2.5 mg/day.",
        ] {
            assert!(!is_fragment(s), "{s:?}");
        }
    }

    #[test]
    fn a_page_of_references_is_mostly_references() {
        // Page 4 of the DVT-prophylaxis review as Quire reads it: running header, the
        // tail of one entry, then numbered entries broken across lines.
        let page = "Datta et al. Journal of Trauma Management & Outcomes 2010, 4:1\nhttp://www.traumamanagement.org/content/4/1/1\n\nwith proximal deep-vein thrombosis. Prevention du Risque d\u{2019}Embolie\nPulmonaire par Interruption Cave Study Group. N Engl J Med 1998,\n338:409-15.\n51. Darcy MD, Smith TP, Hunter DW, Castraneda-Zuniga W, Lund G, Amplatz K:\nShort-term prophylaxis of pulmonary embolism by using a retrievable\nvena cava filter. AJR Am J Roentgenol 1986, 147:836-8.\n52. Hoff WS, Hoey BA, Wainwright GA, Reed JF, Ball DS, Ringold M,\nGrossman MD: Early experience with retrievable inferior vena cava filters\nin high-risk trauma patients. J Am Coll Surg 2004, 199:869-74.\n53. ";
        let verdicts: Vec<(bool, &str)> = sentences(page)
            .iter()
            .map(|&(a, b)| (looks_like_reference(&page[a..b]), &page[a..b]))
            .collect();
        assert!(mostly_references(page), "{verdicts:#?}");
        let prose = "Failed filter retrieval does not carry an immediate complication to the patient. Failed retrieval rates in trauma patients are reported between 0% and 4% (Hoff et al., 2004). The failed retrieval rate is calculated to be 2.8%.";
        assert!(!mostly_references(prose));
    }

    #[test]
    fn reference_entries_are_told_from_prose() {
        for r in [
            "Norwood SH, McAuley CE, Berne JD, Vallina VL, Kerns DB, Grahm TW, Short K, McLarty JW: Prospective evaluation of the safety of enoxaparin prophylaxis.",
            "Arch Surg 2002, 137:696-702.",
            "Br J Haematol 2002, 118:1137-42.",
            "Smith J. Heparin in trauma. Lancet 2019;12(3):45-9.",
        ] {
            assert!(looks_like_reference(r), "{r}");
        }
        for p in [
            "Enoxaparin 30 mg twice daily was given to 120 patients (Geerts et al., 2002).",
            "The calculated rate of failed retrieval was 2.8% in 2010, with 137 filters placed.",
            "Eric Holk, Mark Rousskov and TC attended; the council met at 10:00 UTC.",
            "Doses of 40 mg were used in the UK and the US.",
        ] {
            assert!(!looks_like_reference(p), "{p}");
        }
    }

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

    #[test]
    fn a_residue_code_matches_the_amino_acid_named_in_full() {
        let claim = term_set("Serine 999 is phosphorylated within 15 minutes.");
        let source = term_set("Phosphorylation at Ser999 was seen 15 min after stimulation.");
        assert!(
            source.contains("serine") && source.contains("999"),
            "{source:?}"
        );
        assert!(
            claim.iter().filter(|t| source.contains(*t)).count() >= 3,
            "{claim:?}"
        );
        // Only an amino-acid code followed by a position is read as a residue.
        for w in ["CF102", "ser", "series", "Val", "His-tag", "Proline"] {
            assert_eq!(residue(&w.to_lowercase()), None, "{w}");
        }
        assert_eq!(residue("tyr369"), Some(("tyrosine", "369")));
    }
}
