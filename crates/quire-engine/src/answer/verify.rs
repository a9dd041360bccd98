//! Checking an answer against its sources: each sentence is supported when a passage it
//! cites says the same thing — enough of its content words appear in one or two
//! consecutive source sentences (lexical support), or a source sentence means nearly the
//! same (MiniLM cosine) and shares some of its words. Either way, every number the
//! sentence states must be in the passage: a dose, a rate or a count the sources do not
//! give is never "supported" because the words around it match.
//!
//! What is checked is what the sentence adds to the question. A sentence that echoes the
//! question ("The answer is that the study of X measured Y …") shares most of its words
//! with a passage about X whether or not the rest is true, so the words it takes from
//! the question count only towards its being on the passage's topic; the share that must
//! be in the passage is the share of its *new* words. A sentence with no new words (a
//! yes/no answer restating the question) is checked on all of them.
//!
//! The question's words that a sentence repeats are what it claims its new words are
//! about ("the median overall survival … was 74699157"): they must be in the passage the
//! sentence draws on, or the passage is about something else and supports nothing. A
//! copied string of a passage on the right paper's topic is otherwise "supported" by
//! construction, however unrelated to what was asked.
//!
//! A reference-list entry ("Norwood SH, McAuley CE, … Arch Surg 2002, 137:696-702")
//! supports nothing: it shares the words of every question on its topic and answers none.

use std::collections::HashSet;

use quire_docs::Embed;

use super::cite::CitedSentence;
use super::pack::Source;
use super::text;

/// Share of a sentence's new content words (those not in the question) a source window
/// must hold on its own …
pub const LEXICAL_SUPPORT: f32 = 0.6;
/// … while holding at least this share of all its content words (it is on topic).
pub const TOPICAL_SUPPORT: f32 = 0.4;
/// Cosine a source sentence must reach, together with [`SEMANTIC_MIN_OVERLAP`].
pub const SEMANTIC_SUPPORT: f32 = 0.72;
/// At 0.25, invented sentences on the passage's topic passed on cosine alone (SmolLM2's
/// "She had a high risk of developing type 2 diabetes … due to gestational diabetes",
/// cosine 0.80 with 27 % of its new words in the passage); a third of them must be there.
pub const SEMANTIC_MIN_OVERLAP: f32 = 0.35;
/// MiniLM cosine below which a sentence is about something other than the question.
/// An answer whose supported sentences are all below it is a faithful copy of a passage
/// that does not answer what was asked (SmolLM2 copying a reference list or a passage on
/// an antibiotic cocktail to a question on a chemotherapy dose; Qwen 0.5B answering
/// "how many votes" with "Eric Holk received 5 Minutes"). On the QA set the answers that
/// cite the evidence page all reach 0.33 or more with their question.
pub const ON_QUESTION: f32 = 0.3;
/// Share of the question words a sentence repeats that its passage (title included) must
/// hold for any of its windows to support the sentence.
pub const ECHO_SUPPORT: f32 = 0.5;

/// The verdict on one answer sentence.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SentenceCheck {
    pub text: String,
    /// Sources the sentence cites after checking (a citation that does not hold is
    /// replaced by the source that does, marked `inferred`).
    pub cites: Vec<usize>,
    pub supported: bool,
    /// Whether `cites` was filled in or corrected by the engine rather than the model.
    pub inferred: bool,
    /// The best supporting passage: source number and byte range in its text.
    pub quote: Option<(usize, (usize, usize))>,
    pub lexical: f32,
    pub semantic: Option<f32>,
    /// MiniLM cosine to the question: whether the sentence is about what was asked.
    pub asked_cosine: Option<f32>,
}

struct Window {
    source: usize,
    /// Index of the source in `sources` (and in the passages' term sets).
    passage: usize,
    range: (usize, usize),
    terms: HashSet<String>,
    numbers: HashSet<String>,
    /// Indices into the sentence embeddings.
    sentences: Vec<usize>,
}

impl SentenceCheck {
    /// Whether the sentence is about what was asked (true when that could not be
    /// measured: no embedding model, or no question).
    pub fn on_question(&self) -> bool {
        self.asked_cosine.is_none_or(|c| c >= ON_QUESTION)
    }

    /// Whether the sentence answers: its sources say it, and it is about the question.
    pub fn answers(&self) -> bool {
        self.supported && self.on_question()
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Checks every sentence of an answer against the sources.
pub fn check(
    question: &str,
    sentences: &[CitedSentence],
    sources: &[Source],
    embed: Option<&dyn Embed>,
) -> Vec<SentenceCheck> {
    // Source sentences, singly and in adjacent pairs.
    let mut windows: Vec<Window> = Vec::new();
    let mut sentence_texts: Vec<&str> = Vec::new();
    // Each passage's words, its title's with them, for what a sentence echoes.
    let mut passage_terms: Vec<HashSet<String>> = Vec::with_capacity(sources.len());
    for (p, s) in sources.iter().enumerate() {
        passage_terms.push(text::term_set(&format!("{} {}", s.title, s.text)));
        let ranges = text::sentences(&s.text);
        let first = sentence_texts.len();
        for &(a, b) in &ranges {
            sentence_texts.push(&s.text[a..b]);
        }
        // A reference-list entry supports nothing: copied out, it answers no question.
        let cited_work: Vec<bool> = ranges
            .iter()
            .map(|&(a, b)| text::looks_like_reference(&s.text[a..b]))
            .collect();
        let window = |(a, b): (usize, usize), sentences: Vec<usize>| Window {
            source: s.n,
            passage: p,
            range: (a, b),
            terms: text::term_set(&s.text[a..b]),
            numbers: text::numbers(&s.text[a..b]),
            sentences,
        };
        for (i, &(a, b)) in ranges.iter().enumerate() {
            if cited_work[i] {
                continue;
            }
            windows.push(window((a, b), vec![first + i]));
            if let Some(&(_, b2)) = ranges.get(i + 1).filter(|_| !cited_work[i + 1]) {
                windows.push(window((a, b2), vec![first + i, first + i + 1]));
            }
        }
    }
    let claims: Vec<&str> = sentences.iter().map(|s| s.text.as_str()).collect();
    let vectors = embed.and_then(|e| {
        let mut all: Vec<&str> = sentence_texts.clone();
        all.extend(&claims);
        all.push(question);
        e.embed(&all).ok()
    });
    let (source_vecs, claim_vecs, question_vec) = match &vectors {
        Some(v) if v.len() == sentence_texts.len() + claims.len() + 1 => {
            let (a, b) = v.split_at(sentence_texts.len());
            let (b, q) = b.split_at(claims.len());
            (Some(a), Some(b), Some(&q[0]))
        }
        _ => (None, None, None),
    };

    let asked = text::term_set(question);
    sentences
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let terms = text::term_set(&s.text);
            let asked_cosine = claim_vecs
                .zip(question_vec)
                .filter(|_| !asked.is_empty())
                .map(|(cv, q)| cosine(&cv[i], q));
            let added: HashSet<String> = terms.difference(&asked).cloned().collect();
            let new_terms = if added.is_empty() { &terms } else { &added };
            let echoed: HashSet<String> = terms.intersection(&asked).cloned().collect();
            // Whether each source is about what the sentence repeats from the question.
            let on_subject: Vec<f32> = passage_terms
                .iter()
                .map(|t| text::coverage(&echoed, t))
                .collect();
            let stated = text::numbers(&s.text);
            let score = |w: &Window| -> (f32, Option<f32>) {
                if !stated.is_subset(&w.numbers) {
                    // A number the passage does not give: this window supports nothing.
                    return (0.0, None);
                }
                // Off the passage's topic, the new words' share is capped by the whole
                // sentence's, so it cannot reach LEXICAL_SUPPORT on its own.
                let topical = text::coverage(&terms, &w.terms);
                let lex = text::coverage(new_terms, &w.terms);
                let lex = if topical < TOPICAL_SUPPORT {
                    lex.min(topical)
                } else {
                    lex
                };
                let echo = on_subject[w.passage];
                if !echoed.is_empty() && echo < ECHO_SUPPORT {
                    // The passage is not about what the sentence says it answers.
                    return (lex.min(echo), None);
                }
                let sem = match (source_vecs, claim_vecs) {
                    (Some(sv), Some(cv)) => w
                        .sentences
                        .iter()
                        .map(|&j| cosine(&cv[i], &sv[j]))
                        .fold(None, |m: Option<f32>, c| Some(m.map_or(c, |m| m.max(c)))),
                    _ => None,
                };
                (lex, sem)
            };
            let supports = |(lex, sem): (f32, Option<f32>)| {
                lex >= LEXICAL_SUPPORT
                    || sem.is_some_and(|c| c >= SEMANTIC_SUPPORT && lex >= SEMANTIC_MIN_OVERLAP)
            };
            let rank = |(lex, sem): (f32, Option<f32>)| lex + sem.unwrap_or(lex);
            let best_among = |allowed: &dyn Fn(usize) -> bool| {
                windows
                    .iter()
                    .filter(|w| allowed(w.source))
                    .map(|w| (w, score(w)))
                    .max_by(|a, b| rank(a.1).total_cmp(&rank(b.1)))
            };
            if terms.is_empty() {
                // "Yes." or a refusal line: nothing to check.
                return SentenceCheck {
                    text: s.text.clone(),
                    cites: s.cites.clone(),
                    supported: true,
                    inferred: false,
                    quote: None,
                    lexical: 1.0,
                    semantic: None,
                    asked_cosine,
                };
            }
            let cited = (!s.cites.is_empty())
                .then(|| best_among(&|n| s.cites.contains(&n)))
                .flatten();
            let (cites, inferred, best) = match cited {
                Some((w, sc)) if supports(sc) => (s.cites.clone(), false, Some((w, sc))),
                _ => match best_among(&|_| true) {
                    Some((w, sc)) if supports(sc) => (vec![w.source], true, Some((w, sc))),
                    _ => (
                        s.cites.clone(),
                        false,
                        cited.or_else(|| best_among(&|_| true)),
                    ),
                },
            };
            let supported = best.as_ref().is_some_and(|(_, sc)| supports(*sc));
            let (lexical, semantic) = best.as_ref().map(|(_, sc)| *sc).unwrap_or((0.0, None));
            SentenceCheck {
                text: s.text.clone(),
                cites,
                supported,
                inferred,
                quote: best.map(|(w, _)| (w.source, w.range)),
                lexical,
                semantic,
                asked_cosine,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(n: usize, text: &str) -> Source {
        Source {
            n,
            doc_id: "d".into(),
            path: "p.pdf".into(),
            title: "t".into(),
            page: 1,
            span: (0, text.chars().count()),
            text: text.into(),
            score: 1.0,
        }
    }

    fn claim(text: &str, cites: &[usize]) -> CitedSentence {
        CitedSentence {
            text: text.into(),
            cites: cites.to_vec(),
        }
    }

    #[test]
    fn a_number_the_source_does_not_give_is_not_supported() {
        let sources = [source(
            1,
            "Failed retrieval rates in trauma patients are reported between 0% and 4% with a calculated rate of 2.8%.",
        )];
        let right = claim(
            "The calculated rate of failed retrieval in trauma patients is 2.8%.",
            &[1],
        );
        let wrong = claim(
            "The calculated rate of failed retrieval in trauma patients is 0.1%.",
            &[1],
        );
        let checks = check("", &[right, wrong], &sources, None);
        assert!(checks[0].supported, "{:?}", checks[0]);
        assert!(!checks[1].supported, "{:?}", checks[1]);
        // Numbers written as words match their digits.
        let sources = [source(
            1,
            "Fifteen participants took part, seven from the rural hospital.",
        )];
        let c = check(
            "",
            &[claim(
                "15 participants took part, 7 from the rural hospital.",
                &[1],
            )],
            &sources,
            None,
        );
        assert!(c[0].supported, "{:?}", c[0]);
    }

    #[test]
    fn a_copied_reference_entry_is_not_support() {
        let sources = [source(
            1,
            "Enoxaparin was safe in patients with intracranial haemorrhage. Norwood SH, McAuley CE, Berne JD, Vallina VL: Prospective evaluation of the safety of enoxaparin prophylaxis for venous thromboembolism in patients with intracranial hemorrhagic injuries. Arch Surg 2002, 137:696-702.",
        )];
        let copied = claim(
            "Norwood SH, McAuley CE, Berne JD, Vallina VL: Prospective evaluation of the safety of enoxaparin prophylaxis for venous thromboembolism in patients with intracranial hemorrhagic injuries.",
            &[1],
        );
        let prose = claim(
            "Enoxaparin was safe in patients with intracranial haemorrhage.",
            &[1],
        );
        let c = check(
            "How many milligrams of enoxaparin should a trauma patient get?",
            &[copied, prose],
            &sources,
            None,
        );
        assert!(!c[0].supported, "{:?}", c[0]);
        assert!(c[1].supported, "{:?}", c[1]);
    }

    #[test]
    fn a_copy_from_a_passage_about_something_else_does_not_answer_the_question() {
        let question =
            "What was the median overall survival of KRAS G12C lung cancer patients treated with sotorasib?";
        let sources = [
            source(
                1,
                "Several covalent inhibitors such as JNJ-74699157 and LY3499446 react with the acquired cysteine of KRAS G12C.",
            ),
            source(
                2,
                "Patients treated with sotorasib had a median overall survival of 12.5 months.",
            ),
        ];
        // The drug codes are in passage 1, but passage 1 says nothing of survival.
        let copied = claim(
            "The median overall survival of KRAS G12C lung cancer patients treated with sotorasib was JNJ-74699157 and LY3499446.",
            &[1],
        );
        let answer = claim(
            "The median overall survival with sotorasib was 12.5 months.",
            &[2],
        );
        let c = check(question, &[copied, answer], &sources, None);
        assert!(!c[0].supported, "{:?}", c[0]);
        assert!(c[1].supported, "{:?}", c[1]);
        // The same copy checked without the question: its words are all in passage 1.
        let c = check(
            "",
            &[claim(
                "Covalent inhibitors JNJ-74699157 and LY3499446 react with the cysteine of KRAS G12C.",
                &[1],
            )],
            &sources,
            None,
        );
        assert!(c[0].supported, "{:?}", c[0]);
    }

    #[test]
    fn what_is_checked_is_what_the_sentence_adds_to_the_question() {
        let question = "What limit on individual travel grant requests did the council propose to keep all-hands travel within budget?";
        let sources = [source(
            1,
            "To keep all-hands travel within budget, the council proposed limiting individual travel grant requests to $2,000. Requests above that go to the Foundation.",
        )];
        // Echoes the question and adds only things the passage does not say.
        let echo = claim(
            "The answer is that the council proposed a limit on individual travel grant requests to keep all-hands travel within budget because hotels were expensive.",
            &[1],
        );
        // Adds the passage's particular, in other words than the question's.
        let answer = claim("Individual requests were limited to $2,000.", &[1]);
        let c = check(question, &[echo, answer], &sources, None);
        assert!(!c[0].supported, "{:?}", c[0]);
        assert!(c[1].supported, "{:?}", c[1]);
        // Without the question, the echo's words alone carry it.
        let c = check(
            "",
            &[claim(
                "The answer is that the council proposed a limit on individual travel grant requests to keep all-hands travel within budget because hotels were expensive.",
                &[1],
            )],
            &sources,
            None,
        );
        assert!(c[0].supported, "{:?}", c[0]);
    }
}
