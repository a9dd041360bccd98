//! Packing the prompt: system prompt, numbered sources, recent history and the question,
//! with room left for the answer — never over the model's context window.

use quire_docs::Hit;
use quire_runtime::{ChatEncoder, ChatMessage, Model};

use crate::error::Result;

/// Whatever can turn chat messages into the model's token ids.
pub trait EncodeChat {
    fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>>;
    fn context_size(&self) -> usize;
}

impl EncodeChat for Model {
    fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        Ok(Model::encode_chat(self, messages)?)
    }
    fn context_size(&self) -> usize {
        Model::context_size(self)
    }
}

impl EncodeChat for ChatEncoder {
    fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        Ok(ChatEncoder::encode_chat(self, messages)?)
    }
    fn context_size(&self) -> usize {
        ChatEncoder::context_size(self)
    }
}

/// How much of the window each part may take.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Tokens kept free for the answer.
    pub answer_tokens: usize,
    /// Most tokens the sources may take together (prefill time grows with them).
    pub source_tokens: usize,
    /// Most earlier exchanges (question + answer) kept.
    pub history_turns: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            answer_tokens: 192,
            source_tokens: 900,
            history_turns: 2,
        }
    }
}

/// A passage as the model sees it: `[n]` with its document and page.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Source {
    pub n: usize,
    pub doc_id: String,
    pub path: String,
    pub title: String,
    pub page: u32,
    /// Character span of `text` in the page.
    pub span: (usize, usize),
    pub text: String,
    /// Retrieval score (hybrid: reciprocal-rank fusion).
    pub score: f32,
}

impl Source {
    /// Passage `h` as source `[n]`.
    pub fn from_hit(n: usize, h: &Hit) -> Self {
        Self {
            n,
            doc_id: h.doc_id.clone(),
            path: h.path.clone(),
            title: h.title.clone(),
            page: h.page,
            span: h.span,
            text: h.text.clone(),
            score: h.score,
        }
    }
}

/// The packed prompt.
#[derive(Debug, Clone)]
pub struct Packed {
    pub messages: Vec<ChatMessage>,
    pub prompt_ids: Vec<u32>,
    pub sources: Vec<Source>,
    /// Earlier exchanges kept.
    pub history_kept: usize,
}

/// What closes the user message, right before the answer: small models follow the
/// instruction nearest to where they start writing.
/// (The refusal line stays in the system prompt only: repeated here, it made Qwen2.5-0.5B
/// refuse 39 of the QA set's 58 answerable questions instead of 11.)
pub const ANSWER_CUE: &str = "Answer the question from the sources above in one to three short sentences, each ending with the number of its source, like [1].";

/// The user message: sources as quoted data, then the question, then how to answer.
/// A source's label reads as a sentence ("Source [2], from "…", page 4:"), not as a
/// bare "[2] Title (page 4)" line: models given bare labels answer by listing them.
pub fn user_message(sources: &[Source], question: &str) -> String {
    let mut s = String::from("Sources:\n");
    for src in sources {
        let title = src.title.replace(['\n', '"'], " ");
        s.push_str(&format!(
            "\nSource [{}], from \"{}\", page {}:\n\"\"\"\n{}\n\"\"\"\n",
            src.n,
            title.trim(),
            src.page,
            src.text.trim()
        ));
    }
    if sources.is_empty() {
        s.push_str("\n(none)\n");
    }
    s.push_str(&format!("\nQuestion: {}\n\n{ANSWER_CUE}", question.trim()));
    s
}

fn overlaps(a: &Source, h: &Hit) -> bool {
    if a.doc_id != h.doc_id || a.page != h.page {
        return false;
    }
    let (s, e) = (a.span.0.max(h.span.0), a.span.1.min(h.span.1));
    let shorter = (a.span.1 - a.span.0).min(h.span.1 - h.span.0).max(1);
    e > s && (e - s) * 2 > shorter
}

/// Chooses passages in rank order (skipping near-duplicates: the same page with mostly
/// the same span, or the same text), shortening the last one at a sentence or word
/// boundary when only part fits, then adds the most recent exchanges that still fit.
/// Guarantees `prompt_ids.len() + budget.answer_tokens <= context` or fails.
pub fn pack(
    enc: &dyn EncodeChat,
    system: &str,
    history: &[(String, String)],
    question: &str,
    hits: &[Hit],
    budget: Budget,
) -> Result<Packed> {
    let window = enc.context_size();
    let build = |sources: &[Source], hist: &[(String, String)]| {
        let mut m = vec![ChatMessage::system(system)];
        for (q, a) in hist {
            m.push(ChatMessage::user(q.as_str()));
            m.push(ChatMessage::assistant(a.as_str()));
        }
        m.push(ChatMessage::user(user_message(sources, question)));
        m
    };
    let base = enc.encode_chat(&build(&[], &[]))?.len();
    if base + budget.answer_tokens > window {
        return Err(crate::EngineError::Runtime(
            quire_runtime::RuntimeError::ContextOverflow {
                prompt_tokens: base,
                max_tokens: budget.answer_tokens,
                context: window,
            },
        ));
    }
    let mut sources: Vec<Source> = Vec::new();
    let mut used = base;
    for h in hits {
        if sources.iter().any(|s| overlaps(s, h) || s.text == h.text) || h.text.trim().is_empty() {
            continue;
        }
        let room = window
            .saturating_sub(budget.answer_tokens)
            .min(base + budget.source_tokens)
            .saturating_sub(used);
        if room < 48 {
            break;
        }
        let mut cand = Source::from_hit(sources.len() + 1, h);
        let mut trial = sources.clone();
        trial.push(cand.clone());
        let mut len = enc.encode_chat(&build(&trial, &[]))?.len();
        if len - used > room {
            // Shorten: keep the head of the passage, cut at a sentence or word boundary.
            let starts: Vec<usize> = h.text.char_indices().map(|(b, _)| b).collect();
            let mut keep = starts.len() * room / (len - used).max(1);
            loop {
                let byte = starts.get(keep).copied().unwrap_or(h.text.len());
                let head = &h.text[..byte];
                let cut = head
                    .rfind(". ")
                    .filter(|&p| p > byte / 2)
                    .map(|p| p + 1)
                    .or_else(|| head.rfind(' '))
                    .unwrap_or(byte);
                cand.text = h.text[..cut].trim_end().to_string();
                let chars_kept = cand.text.chars().count();
                cand.span = (h.span.0, h.span.0 + chars_kept);
                let mut t = sources.clone();
                t.push(cand.clone());
                len = enc.encode_chat(&build(&t, &[]))?.len();
                if len - used <= room || keep < 40 {
                    break;
                }
                keep = keep * 9 / 10;
            }
            if len - used > room || cand.text.chars().count() < 80 {
                continue;
            }
        }
        used = len;
        sources.push(cand);
    }
    // History: the most recent exchanges that still fit.
    let mut kept = 0;
    let max_turns = budget.history_turns.min(history.len());
    let mut ids = enc.encode_chat(&build(&sources, &[]))?;
    for take in 1..=max_turns {
        let hist = &history[history.len() - take..];
        let with = enc.encode_chat(&build(&sources, hist))?;
        if with.len() + budget.answer_tokens > window {
            break;
        }
        ids = with;
        kept = take;
    }
    let messages = build(&sources, &history[history.len() - kept..]);
    debug_assert!(ids.len() + budget.answer_tokens <= window);
    Ok(Packed {
        messages,
        prompt_ids: ids,
        sources,
        history_kept: kept,
    })
}
