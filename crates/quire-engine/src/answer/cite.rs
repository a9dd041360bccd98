//! Citation markers in a model's answer: `[1]`, `[1, 2]`, `[1][3]`. Numbers that name no
//! source are dropped (and counted); what remains is tied to the sentence it ends.

use super::text;

/// A citation marker: its byte range in the text and the numbers in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub range: (usize, usize),
    pub numbers: Vec<usize>,
}

/// Finds `[n]`, `[n, m]`, `[n,m]`, `[n-m]` and `[Source n]` markers (numbers 1..=99).
pub fn markers(answer: &str) -> Vec<Marker> {
    let bytes = answer.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'[' {
            i += 1;
            continue;
        }
        let Some(close) = answer[i + 1..].find(']').map(|c| i + 1 + c) else {
            break;
        };
        let inner = &answer[i + 1..close];
        if let Some(numbers) = parse_inner(inner) {
            out.push(Marker {
                range: (i, close + 1),
                numbers,
            });
            i = close + 1;
        } else {
            i += 1;
        }
    }
    out
}

fn parse_inner(inner: &str) -> Option<Vec<usize>> {
    let inner = inner.trim();
    let inner = inner
        .strip_prefix("Source")
        .or_else(|| inner.strip_prefix("source"))
        .unwrap_or(inner)
        .trim();
    if inner.is_empty() || inner.len() > 24 {
        return None;
    }
    let mut numbers = Vec::new();
    for part in inner.split([',', ';']) {
        let part = part.trim();
        if let Some((a, b)) = part.split_once(['-', '–']) {
            let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if a == 0 || b < a || b - a > 10 || b > 99 {
                return None;
            }
            numbers.extend(a..=b);
        } else {
            let n: usize = part.parse().ok()?;
            if n == 0 || n > 99 {
                return None;
            }
            numbers.push(n);
        }
    }
    Some(numbers)
}

/// A sentence of the cleaned answer and the source numbers it cites.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CitedSentence {
    /// The sentence without its markers.
    pub text: String,
    pub cites: Vec<usize>,
}

/// The answer with invalid numbers removed from its markers, how many were removed,
/// and its sentences with the sources each cites. A marker belongs to the sentence it
/// ends, or, when it opens a sentence, to the one before (`… fell. [2] Then …`).
pub fn resolve(answer: &str, valid: impl Fn(usize) -> bool) -> (String, usize, Vec<CitedSentence>) {
    let mut cleaned = String::with_capacity(answer.len());
    let mut invalid = 0;
    let mut last = 0;
    for m in markers(answer) {
        cleaned.push_str(&answer[last..m.range.0]);
        let mut kept: Vec<usize> = Vec::new();
        for n in m.numbers {
            if !valid(n) {
                invalid += 1;
            } else if !kept.contains(&n) {
                kept.push(n);
            }
        }
        if !kept.is_empty() {
            let list: Vec<String> = kept.iter().map(|n| n.to_string()).collect();
            cleaned.push_str(&format!("[{}]", list.join(", ")));
        } else if cleaned.ends_with(' ') && answer[m.range.1..].starts_with([' ', '.', ',']) {
            cleaned.pop();
        }
        last = m.range.1;
    }
    cleaned.push_str(&answer[last..]);
    let cleaned = cleaned.trim().to_string();

    let mut out: Vec<CitedSentence> = Vec::new();
    for (a, b) in text::sentences(&cleaned) {
        let piece = &cleaned[a..b];
        let ms = markers(piece);
        let mut cites = Vec::new();
        let mut plain = String::new();
        let mut last = 0;
        let mut leading = Vec::new();
        for m in &ms {
            let before = &piece[last..m.range.0];
            plain.push_str(before);
            if plain.trim().is_empty() {
                leading.extend(m.numbers.iter().copied());
            } else {
                cites.extend(m.numbers.iter().copied());
            }
            last = m.range.1;
        }
        plain.push_str(&piece[last..]);
        let plain = tidy(&plain);
        if let (false, Some(prev)) = (leading.is_empty(), out.last_mut()) {
            for n in leading {
                if !prev.cites.contains(&n) {
                    prev.cites.push(n);
                }
            }
        } else {
            cites.extend(leading);
        }
        if plain.is_empty() {
            continue;
        }
        cites.dedup();
        out.push(CitedSentence { text: plain, cites });
    }
    (cleaned, invalid, out)
}

fn tidy(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    s.replace(" .", ".").replace(" ,", ",").trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_of_every_shape() {
        let m = markers("a [1] b [2, 3] c [4-5] d [Source 6] e [x] f [0] g [12]");
        let nums: Vec<Vec<usize>> = m.into_iter().map(|m| m.numbers).collect();
        assert_eq!(
            nums,
            vec![vec![1], vec![2, 3], vec![4, 5], vec![6], vec![12]]
        );
    }

    #[test]
    fn invalid_numbers_are_dropped_and_counted() {
        let (clean, invalid, sents) = resolve(
            "Enoxaparin was given daily [1]. It reduced clots [7]. Both arms bled [2, 9].",
            |n| n <= 3,
        );
        assert_eq!(invalid, 2);
        assert!(!clean.contains("[7]") && !clean.contains('9'), "{clean}");
        assert_eq!(sents.len(), 3);
        assert_eq!(sents[0].cites, vec![1]);
        assert!(sents[1].cites.is_empty());
        assert_eq!(sents[1].text, "It reduced clots.");
        assert_eq!(sents[2].cites, vec![2]);
    }

    #[test]
    fn a_marker_after_the_full_stop_cites_the_sentence_before() {
        let (_, _, s) = resolve("The dose was 40 mg. [2] Then it stopped.", |_| true);
        assert_eq!(s[0].cites, vec![2]);
        assert!(s[1].cites.is_empty());
    }
}
