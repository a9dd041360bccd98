//! Citation markers in a model's answer: `[1]`, `[1, 2]`, `[1][3]`. Numbers that name no
//! source are dropped (and counted); what remains is tied to the sentence it ends.

use super::text;

/// A citation marker: its byte range in the text and the numbers in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub range: (usize, usize),
    pub numbers: Vec<usize>,
}

/// The marker citing `cites`: "[2]", "[1, 4]".
pub fn marker(cites: &[usize]) -> String {
    let list: Vec<String> = cites.iter().map(|n| n.to_string()).collect();
    format!("[{}]", list.join(", "))
}

/// A sentence and its closing `.`, `!` or `?` (empty when it has none).
pub fn split_stop(sentence: &str) -> (&str, &str) {
    match sentence.char_indices().last() {
        Some((i, '.' | '!' | '?')) => sentence.split_at(i),
        _ => (sentence, ""),
    }
}

/// A list bullet ("- ", "* ", "• ") opening `body`, and the text after it.
fn split_bullet(body: &str) -> (&str, &str) {
    match body.strip_prefix(['-', '*', '\u{2022}']) {
        Some(rest) if rest.starts_with(' ') => {
            (&body[..body.len() - rest.len() + 1], rest.trim_start())
        }
        _ => ("", body),
    }
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

/// Removes the source labels a model copies into its answer — `Source [3], from "Title",
/// page 5:` or `Title, page 5:` at the head of a line — and cites the source the label
/// named instead. A copied label is not a claim: left in, its page number is a number the
/// passage does not state, and the sentence after it fails verification for that alone.
/// A `[k]` opening such a line is the model's list index, not a citation, and goes with
/// the label. `titles` are the sources' numbers and titles.
pub fn strip_source_labels(answer: &str, titles: &[(usize, &str)]) -> String {
    let mut out: Vec<String> = Vec::new();
    // A label alone on its line names the source of the text on the lines after it.
    let mut pending: Option<usize> = None;
    for line in answer.lines() {
        if unquote(line).is_empty() && !line.trim().is_empty() {
            // Only the quote marks that fenced a passage.
            continue;
        }
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let (bullet, body) = split_bullet(body);
        let (index, after_index) = match leading_marker(body) {
            Some((n, rest)) => (n, rest.trim_start()),
            None => (None, body),
        };
        let labelled = label(after_index, titles, index);
        if let Some((Some(n), "")) = labelled {
            pending = Some(n);
            continue;
        }
        // Label texts come unquoted, so trimmed.
        match labelled.or(pending.map(|n| (Some(n), unquote(body)))) {
            Some((cited, rest)) if !rest.is_empty() => {
                pending = None;
                let l = format!("{indent}{bullet}{rest}");
                match cited.filter(|_| markers(rest).is_empty()) {
                    Some(n) => {
                        let (body, stop) = split_stop(&l);
                        out.push(format!("{body} {}{stop}", marker(&[n])));
                    }
                    None => out.push(l),
                }
            }
            _ => out.push(line.to_string()),
        }
    }
    out.join("\n")
}

/// Verbs a model attributes a claim to its source with: "Source [2] states that …".
#[rustfmt::skip]
const ATTRIBUTING: &[&str] = &[
    "states", "stated", "says", "said", "mentions", "mentioned", "notes", "noted",
    "indicates", "indicated", "reports", "reported", "shows", "showed", "suggests",
    "suggested", "explains", "describes", "confirms", "highlights", "adds", "state", "say",
    "mention", "note", "indicate", "report", "show", "suggest", "explain", "describe",
    "confirm", "highlight", "add",
];

/// Openings that put a claim under a source: "According to source [1], …".
#[rustfmt::skip]
const ATTRIBUTING_OPENINGS: &[&str] = &[
    "according to", "based on", "as stated in", "as mentioned in", "as noted in",
    "as reported in", "as shown in", "as described in", "as per",
];

/// Rewrites "Source [2] states that the dose was 5 mg." as "The dose was 5 mg [2]." — and
/// "According to source [1], …", "Based on the information provided in Source [3], …" the
/// same way. Small models often open a claim so; left as it is, the marker moves to the
/// sentence's end and the user reads "Source states that the dose was 5 mg [2].", with the
/// lead-in's words checked against the passage as if they were part of the claim. A
/// sentence that only points at a source ("Source [1] provides more detail.") is left to
/// `resolve`.
pub fn strip_attributions(answer: &str) -> String {
    let mut out = String::with_capacity(answer.len());
    let mut last = 0;
    for (a, b) in text::sentences(answer) {
        out.push_str(&answer[last..a]);
        let sentence = &answer[a..b];
        let body = sentence.trim_start();
        let (bullet, body) = split_bullet(body);
        match attribution(body) {
            Some((cites, claim)) => {
                out.push_str(&sentence[..sentence.len() - body.len() - bullet.len()]);
                out.push_str(bullet);
                out.push_str(&cited_claim(claim, &cites));
            }
            None => out.push_str(sentence),
        }
        last = b;
    }
    out.push_str(&answer[last..]);
    out
}

/// The sources an attributing lead-in names and the claim after it, if `s` opens with one.
fn attribution(s: &str) -> Option<(Vec<usize>, &str)> {
    let lower = s.to_ascii_lowercase();
    let eat = |at: usize, word: &str| -> Option<usize> {
        let end = at + word.len();
        (lower.get(at..end) == Some(word)
            && lower[end..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric()))
        .then_some(end)
    };
    let skip_ws = |at: usize| at + (s.len() - at - s[at..].trim_start().len());
    // "Source [2]", "the sources [1] and [3]", "source 2".
    let source = |at: usize| -> Option<(usize, Vec<usize>)> {
        let mut at = skip_ws(at);
        if let Some(e) = eat(at, "the") {
            at = skip_ws(e);
        }
        at = eat(at, "sources").or_else(|| eat(at, "source"))?;
        let mut cites = Vec::new();
        loop {
            let here = skip_ws(at);
            let rest = &s[here..];
            let digits = rest.chars().take_while(char::is_ascii_digit).count();
            if let Some((Some(n), after)) = leading_marker(rest) {
                cites.push(n);
                at = s.len() - after.len();
            } else if digits > 0 && cites.is_empty() {
                cites.push(rest[..digits].parse().ok()?);
                at = here + digits;
            } else if !cites.is_empty() && (rest.starts_with(", [") || rest.starts_with(",[")) {
                at = here + 1;
            } else if let Some(e) = eat(here, "and").filter(|_| !cites.is_empty()) {
                at = e;
            } else {
                return Some((at, cites));
            }
        }
    };
    let claim = |at: usize| -> Option<&str> {
        let rest = s[at..].trim_start();
        let rest = rest.strip_prefix([':', ',']).unwrap_or(rest).trim_start();
        rest.chars()
            .next()
            .is_some_and(|c| c.is_alphanumeric() || c == '"' || c == '\u{201c}')
            .then_some(rest)
    };
    // "According to source [1], the dose …"
    for opening in ATTRIBUTING_OPENINGS {
        let Some(mut at) = eat(0, opening) else {
            continue;
        };
        for filler in [
            "the information provided in",
            "the information given in",
            "the information in",
            "what is stated in",
        ] {
            if let Some(e) = eat(skip_ws(at), filler) {
                at = e;
                break;
            }
        }
        let (at, cites) = source(at)?;
        let rest = s[at..].trim_start().strip_prefix(',')?;
        return claim(s.len() - rest.len()).map(|c| (cites, c));
    }
    // "Source [2] (also) states (that) …"
    let (mut at, cites) = source(0)?;
    if let Some(e) = eat(skip_ws(at), "also") {
        at = e;
    }
    let here = skip_ws(at);
    at = ATTRIBUTING.iter().find_map(|v| eat(here, v))?;
    // "… states that …", "… states: …", "… states "…"": the claim follows. "Source [1]
    // confirms this with …" has no claim of its own to lift out.
    match eat(skip_ws(at), "that") {
        Some(e) => at = e,
        None if s[at..]
            .trim_start()
            .starts_with([':', ',', '"', '\u{201c}']) => {}
        None => return None,
    }
    claim(at).map(|c| (cites, c))
}

/// `claim` as a sentence of its own: a lowercase first word capitalised, the quote marks
/// around a copied passage dropped, and `cites` at its end unless it carries markers.
fn cited_claim(claim: &str, cites: &[usize]) -> String {
    let (body, stop) = split_stop(claim.trim_end());
    let quoted = body.starts_with(['"', '\u{201c}']);
    let mut body = if quoted { unquote(body) } else { body }.to_string();
    if quoted {
        // `"…."` closes its quote after the full stop.
        if let Some(stripped) = body.strip_suffix('.') {
            body = stripped.to_string();
        }
    }
    let first_word = body.split_whitespace().next().unwrap_or("");
    if first_word
        .chars()
        .all(|c| c.is_ascii_lowercase() || c == '\'' || c == '-')
    {
        let mut chars = body.chars();
        if let Some(c) = chars.next() {
            body = c.to_ascii_uppercase().to_string() + chars.as_str();
        }
    }
    if !cites.is_empty() && markers(&body).is_empty() {
        body.push(' ');
        body.push_str(&marker(cites));
    }
    body.push_str(if stop.is_empty() { "." } else { stop });
    body
}

/// A source label at the head of `s`: the source it names and the text after it.
fn label<'a>(
    s: &'a str,
    titles: &[(usize, &str)],
    index: Option<usize>,
) -> Option<(Option<usize>, &'a str)> {
    if s.get(..6).is_some_and(|h| h.eq_ignore_ascii_case("source")) {
        let rest = s["source".len()..].trim_start();
        let (mut n, mut rest) = match leading_marker(rest) {
            Some(found) => found,
            None => {
                let digits = rest.chars().take_while(char::is_ascii_digit).count();
                if digits == 0 && !rest.starts_with(", from ") {
                    return None;
                }
                (rest[..digits].parse().ok(), &rest[digits..])
            }
        };
        if let Some(r) = rest.strip_prefix(", from ") {
            let r = r.trim_start();
            rest = match r.strip_prefix('"') {
                Some(q) => {
                    let close = q.find('"')?;
                    n = n.or_else(|| only_source_titled(titles, q[..close].trim()));
                    &q[close + 1..]
                }
                None => r,
            };
        }
        // A label ends with a colon or its line: "Source [2] states that …" is prose.
        let rest = page_suffix(rest);
        let rest = match rest.strip_prefix(':') {
            Some(r) => r,
            None if rest.trim().is_empty() => rest,
            None => return None,
        };
        return Some((n, unquote(rest)));
    }
    // "Title, page 5:" — the longest title the line opens with, closed by a colon. It
    // names its source when no other source has that title (pages of one document
    // share it); otherwise the line's own index is the best guess.
    let opens =
        |t: &str| !t.is_empty() && s.get(..t.len()).is_some_and(|h| h.eq_ignore_ascii_case(t));
    let title = titles
        .iter()
        .map(|(_, t)| t.trim())
        .filter(|t| opens(t))
        .max_by_key(|t| t.len())?;
    let rest = unquote(page_suffix(&s[title.len()..]).strip_prefix(':')?);
    Some((only_source_titled(titles, title).or(index), rest))
}

/// A marker opening `s`: its first number and the text after it.
fn leading_marker(s: &str) -> Option<(Option<usize>, &str)> {
    markers(s)
        .into_iter()
        .next()
        .filter(|m| m.range.0 == 0)
        .map(|m| (m.numbers.first().copied(), &s[m.range.1..]))
}

/// The source titled `title`, when no other source has that title.
fn only_source_titled(titles: &[(usize, &str)], title: &str) -> Option<usize> {
    let mut named = titles
        .iter()
        .filter(|(_, t)| t.trim().eq_ignore_ascii_case(title));
    match (named.next(), named.next()) {
        (Some((n, _)), None) => Some(*n),
        _ => None,
    }
}

/// The text after a label without the quote marks that fenced the passage in the prompt.
fn unquote(s: &str) -> &str {
    let s = s
        .trim_start()
        .trim_start_matches(['"', '\u{201c}'])
        .trim_start();
    s.trim_end_matches(['"', '\u{201d}']).trim_end()
}

/// Skips `, page 5` or ` (page 5)` at the head of `s`.
fn page_suffix(s: &str) -> &str {
    for open in [", page ", " (page ", ", p. "] {
        if let Some(r) = s.strip_prefix(open) {
            let digits = r.chars().take_while(char::is_ascii_digit).count();
            if digits > 0 {
                let r = &r[digits..];
                return r.strip_prefix(')').unwrap_or(r);
            }
        }
    }
    s
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
            cleaned.push_str(&marker(&kept));
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
            add_cites(&mut prev.cites, leading);
        } else {
            cites.extend(leading);
        }
        if plain.is_empty() {
            continue;
        }
        cites.dedup();
        out.push(CitedSentence { text: plain, cites });
    }
    (cleaned, invalid, point_back(out))
}

/// A sentence that only points at its sources ("This information can be found in Source
/// [1].") gives its citations to the uncited sentences before it, back to the last one the
/// model cited (or to that one, when it comes right before), or, opening the answer, to
/// the sentence after it. It says nothing to check, so it is not checked: left alone, its
/// claims would go uncited and it would be flagged as unsupported. One that cites nothing
/// ("Both sources support this conclusion.") is passed over.
fn point_back(sentences: Vec<CitedSentence>) -> Vec<CitedSentence> {
    let mut out: Vec<CitedSentence> = Vec::with_capacity(sentences.len());
    let mut carry: Vec<usize> = Vec::new();
    for mut s in sentences {
        if text::only_points_at_sources(&s.text) {
            let uncited = out.iter().rev().take_while(|p| p.cites.is_empty()).count();
            match out.last_mut() {
                // "Both sources support this conclusion.": nothing to cite or check.
                _ if s.cites.is_empty() => {}
                None => carry.extend(&s.cites),
                // The sentence before was cited already: it has more sources.
                Some(prev) if uncited == 0 => add_cites(&mut prev.cites, s.cites),
                Some(_) => {
                    let from = out.len() - uncited;
                    for p in &mut out[from..] {
                        p.cites = s.cites.clone();
                    }
                }
            }
            continue;
        }
        add_cites(&mut s.cites, carry.drain(..));
        out.push(s);
    }
    out
}

/// Adds `more` to `cites`, each number once.
fn add_cites(cites: &mut Vec<usize>, more: impl IntoIterator<Item = usize>) {
    for n in more {
        if !cites.contains(&n) {
            cites.push(n);
        }
    }
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
    fn copied_source_labels_become_citations() {
        let titles = [
            (1, "Council meeting 2024-10-11"),
            (2, "Stress and dementia"),
            (3, "ipg1300180a"),
        ];
        let a = strip_source_labels(
            "[1] Source [3], from \"ipg1300180a\", page 5: The five most common life events were illness and bereavement.\n\
             [2] Council meeting 2024-10-11: We might only have a few extra thousand.\n\
             - Source 2, page 4: APOE genotype was available for 1,462 people\n\
             Stress and dementia were linked in the cohort [2].",
            &titles,
        );
        assert_eq!(
            a,
            "The five most common life events were illness and bereavement [3].\n\
             We might only have a few extra thousand [1].\n\
             - APOE genotype was available for 1,462 people [2]\n\
             Stress and dementia were linked in the cohort [2]."
        );
        // Unnumbered, with the passage's quote marks copied too: the title names it.
        let a = strip_source_labels(
            "Source, from \"Stress and dementia\", page 8: \"\"\" Life events were common.",
            &titles,
        );
        assert_eq!(a, "Life events were common [2].");
        // A label on a line of its own, the quote marks on the next.
        let a = strip_source_labels(
            "Source [3], from \"ipg1300180a\", page 5:\n\"\"\"\nLife events were common.\n\"\"\"",
            &titles,
        );
        assert_eq!(a, "Life events were common [3].");
        // A source named in prose is no label.
        let a = strip_source_labels("Source [2] states that life events were common.", &titles);
        assert_eq!(a, "Source [2] states that life events were common.");
        // Prose that merely starts like a label is never cut.
        let a = strip_source_labels("Source [1]\nSources differ on the dose [1].", &titles);
        assert_eq!(a, "Sources differ on the dose [1].");
    }

    #[test]
    fn a_claim_put_under_its_source_is_the_claim_with_its_citation() {
        for (said, meant) in [
            (
                "Source [2] states that the dose was 5 mg daily.",
                "The dose was 5 mg daily [2].",
            ),
            (
                "According to source [1], mRNA levels fell by half.",
                "mRNA levels fell by half [1].",
            ),
            (
                "Based on the information provided in Source [3], the mean age was 68.7 years.",
                "The mean age was 68.7 years [3].",
            ),
            (
                "Source [1] states: \"A tarball of the data is available.\"",
                "A tarball of the data is available [1].",
            ),
            (
                "Sources [1] and [4] report that 15 patients took part.",
                "15 patients took part [1, 4].",
            ),
            (
                "Source [2] mentions that bleeding occurred in 3.9% [2]. The source also notes that HIT occurred in 0.7%.",
                "Bleeding occurred in 3.9% [2]. HIT occurred in 0.7%.",
            ),
            (
                "- Source [1] says that the council meets weekly.\n- Source [2] notes that budgets are set in May.",
                "- The council meets weekly [1].\n- Budgets are set in May [2].",
            ),
        ] {
            assert_eq!(strip_attributions(said), meant, "{said:?}");
        }
        // Left alone: a sentence that only points at a source, a source named mid-claim,
        // and "source" as an ordinary word.
        for same in [
            "Source [1] provides more detail.",
            "The dose in source [2] was 5 mg [2].",
            "Sources of bleeding were not reported [1].",
            "Source data are available on request [3].",
            "Source [1] confirms this with a second cohort [1].",
        ] {
            assert_eq!(strip_attributions(same), same);
        }
        // The citations it keeps are the model's own, checked like any other.
        let (_, invalid, sentences) = resolve(
            &strip_attributions("Source [9] states that the dose was 5 mg."),
            |n| n <= 3,
        );
        assert_eq!(invalid, 1);
        assert_eq!(sentences[0].text, "The dose was 5 mg.");
        assert!(sentences[0].cites.is_empty());
    }

    #[test]
    fn a_sentence_that_only_points_at_a_source_cites_the_claims_before_it() {
        let (_, _, s) = resolve(
            "Serine 999 is modified within 15 minutes. It peaks at 60 minutes. This information can be found in Source [1].",
            |_| true,
        );
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(s[0].cites, vec![1]);
        assert_eq!(s[1].cites, vec![1]);
        // Only back to the last sentence the model cited itself.
        let (_, _, s) = resolve(
            "The dose was 40 mg [2]. It was stopped in week 3. This is supported by the data in Sources [4] and [5].",
            |_| true,
        );
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!(
            (s[0].cites.clone(), s[1].cites.clone()),
            (vec![2], vec![4, 5])
        );
        // Opening the answer, it cites the sentence after it.
        let (_, _, s) = resolve(
            "This is found in Source [3]. The dose was 40 mg. It was stopped in week 3 [1].",
            |_| true,
        );
        assert_eq!(s.len(), 2, "{s:?}");
        assert_eq!((s[0].cites.clone(), s[1].cites.clone()), (vec![3], vec![1]));
        // A sentence naming its source and saying something is a claim like any other.
        let (_, _, s) = resolve(
            "The trial enrolled 40 people. Source [2] states that the dose was 40 mg.",
            |_| true,
        );
        assert_eq!(s.len(), 2, "{s:?}");
        assert!(s[0].cites.is_empty());
        assert_eq!(s[1].cites, vec![2]);
        // After a cited sentence, it adds to that sentence's sources.
        let (_, _, s) = resolve(
            "The dose was 40 mg [2]. This is also supported by Source [3].",
            |_| true,
        );
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].cites, vec![2, 3]);
        // Pointing at nothing in particular, it is passed over.
        let (_, _, s) = resolve(
            "The dose was 40 mg [2]. Both sources support this conclusion.",
            |_| true,
        );
        assert_eq!(s.len(), 1, "{s:?}");
    }

    #[test]
    fn a_marker_after_the_full_stop_cites_the_sentence_before() {
        let (_, _, s) = resolve("The dose was 40 mg. [2] Then it stopped.", |_| true);
        assert_eq!(s[0].cites, vec![2]);
        assert!(s[1].cites.is_empty());
    }
}
