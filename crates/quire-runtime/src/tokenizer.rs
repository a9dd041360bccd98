//! The tokenizer, built from the GGUF's own metadata (tokens, merges, token types and the
//! pre-tokenizer named by `tokenizer.ggml.pre`) with the `tokenizers` crate.
//!
//! Two encoders are kept: one parses control-token strings such as `<|im_start|>` (for
//! rendered chat templates), the other treats them as plain text (for anything a user or a
//! document wrote). Decoding goes through raw bytes so a stream never splits a UTF-8 character.

use std::collections::HashMap;

use tokenizers::models::bpe::BPE;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::{NormalizerWrapper, Prepend, Replace};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::{AddedToken, SplitDelimiterBehavior};

use crate::error::{Result, RuntimeError};
use crate::gguf::GgufFile;

// GGUF token types (llama.cpp's llama_token_type).
const TYPE_CONTROL: i64 = 3;
const TYPE_USER_DEFINED: i64 = 4;
const TYPE_BYTE: i64 = 6;

/// GPT-2's split: contractions, letters, numbers, other symbols, whitespace.
const GPT2_PATTERN: &str =
    r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";
/// Llama 3's split (llama.cpp `llama-bpe`): numbers in groups of up to three.
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's split (llama.cpp `qwen2`): single digits.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// Texts that end a turn in the chat formats Quire knows, beyond the ids the GGUF declares.
const END_OF_TURN_TEXTS: &[&str] = &[
    "<|im_end|>",
    "<|eot_id|>",
    "<|eom_id|>",
    "<|end|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "<|end_of_text|>",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Byte-level BPE (GPT-2 style): every token is a string of byte-mapped characters.
    ByteLevel,
    /// SentencePiece-style: `▁` for spaces, `<0xNN>` byte tokens.
    SentencePiece,
}

/// A model's tokenizer, built from its GGUF metadata.
pub struct Tokenizer {
    parse_special: tokenizers::Tokenizer,
    plain: tokenizers::Tokenizer,
    /// Raw bytes each token stands for; control tokens have none.
    token_bytes: Vec<Vec<u8>>,
    tokens: Vec<String>,
    stop_ids: Vec<u32>,
    bos_id: Option<u32>,
    add_bos: bool,
    pre: String,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("vocab_size", &self.tokens.len())
            .field("pre", &self.pre)
            .finish()
    }
}

impl Tokenizer {
    /// Builds the tokenizer a GGUF file describes.
    pub fn from_gguf(file: &GgufFile) -> Result<Self> {
        let tokens = file.string_array("tokenizer.ggml.tokens")?;
        let n = tokens.len();
        let types = file
            .int_array("tokenizer.ggml.token_type")
            .unwrap_or_else(|| vec![1; n]);
        if types.len() != n {
            return Err(file.invalid("tokenizer.ggml.token_type and tokens differ in length"));
        }
        let model_name = file.str("tokenizer.ggml.model").unwrap_or("gpt2");
        let pre = file
            .str("tokenizer.ggml.pre")
            .unwrap_or("default")
            .to_string();
        let kind = match model_name {
            "gpt2" => Kind::ByteLevel,
            "llama" => Kind::SentencePiece,
            other => {
                return Err(RuntimeError::Tokenizer(format!(
                    "tokenizer model '{other}' is not supported (supported: gpt2, llama)"
                )))
            }
        };

        let mut base = match kind {
            Kind::ByteLevel => byte_level_tokenizer(file, &tokens, &pre)?,
            Kind::SentencePiece => sentencepiece_tokenizer(file, &tokens, &types)?,
        };

        let mut control = vec![false; n];
        let mut added = Vec::new();
        for (id, (text, ty)) in tokens.iter().zip(&types).enumerate() {
            match *ty {
                TYPE_CONTROL => {
                    control[id] = true;
                    added.push(AddedToken::from(text.clone(), true));
                }
                TYPE_USER_DEFINED => added.push(AddedToken::from(text.clone(), false)),
                _ => {}
            }
        }
        let (special, user): (Vec<_>, Vec<_>) = added.into_iter().partition(|t| t.special);
        base.add_special_tokens(&special);
        base.add_tokens(&user);

        let parse_special = base.clone();
        let mut plain = base;
        plain.set_encode_special_tokens(true);

        let byte_decoder = byte_level_decoder();
        let token_bytes = tokens
            .iter()
            .zip(&types)
            .enumerate()
            .map(|(id, (text, ty))| {
                if control[id] {
                    Vec::new()
                } else if *ty == TYPE_USER_DEFINED {
                    text.as_bytes().to_vec()
                } else {
                    match kind {
                        Kind::ByteLevel => text
                            .chars()
                            .map(|c| byte_decoder.get(&c).copied())
                            .collect::<Option<Vec<u8>>>()
                            .unwrap_or_else(|| text.as_bytes().to_vec()),
                        Kind::SentencePiece => sentencepiece_bytes(text, *ty),
                    }
                }
            })
            .collect();

        let mut stop_ids: Vec<u32> = ["eos", "eot", "eom"]
            .iter()
            .filter_map(|k| file.uint(&format!("tokenizer.ggml.{k}_token_id")))
            .filter_map(|v| u32::try_from(v).ok())
            .filter(|&v| (v as usize) < n)
            .collect();
        for text in END_OF_TURN_TEXTS {
            if let Some(id) = parse_special.token_to_id(text) {
                if control[id as usize] {
                    stop_ids.push(id);
                }
            }
        }
        stop_ids.sort_unstable();
        stop_ids.dedup();

        let bos_id = file
            .uint("tokenizer.ggml.bos_token_id")
            .and_then(|v| u32::try_from(v).ok())
            .filter(|&v| (v as usize) < n);
        let add_bos = file
            .bool("tokenizer.ggml.add_bos_token")
            .unwrap_or(kind == Kind::SentencePiece);

        Ok(Self {
            parse_special,
            plain,
            token_bytes,
            tokens,
            stop_ids,
            bos_id,
            add_bos,
            pre,
        })
    }

    /// Encodes `text`. With `parse_special`, control-token strings (`<|im_start|>`) become
    /// control tokens; without it they are ordinary text, as anything untrusted must be.
    /// No BOS is added here; see [`Tokenizer::bos_prefix`].
    pub fn encode(&self, text: &str, parse_special: bool) -> Result<Vec<u32>> {
        if text.is_empty() {
            return Ok(Vec::new());
        }
        let tok = if parse_special {
            &self.parse_special
        } else {
            &self.plain
        };
        let enc = tok
            .encode(text, false)
            .map_err(|e| RuntimeError::Tokenizer(e.to_string()))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The BOS token the model expects at the start of a sequence, if it wants one.
    pub fn bos_prefix(&self) -> Option<u32> {
        if self.add_bos {
            self.bos_id
        } else {
            None
        }
    }

    /// Decodes ids to text, leaving control tokens out. Invalid UTF-8 becomes U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::new();
        for &id in ids {
            bytes.extend_from_slice(self.token_bytes(id));
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The raw bytes a token stands for (empty for control tokens and unknown ids).
    pub fn token_bytes(&self, id: u32) -> &[u8] {
        self.token_bytes
            .get(id as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The token's own string as stored in the vocabulary.
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.plain.token_to_id(text)
    }

    /// Ids that end generation: end of sequence and end of turn.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop_ids
    }

    pub fn vocab_size(&self) -> usize {
        self.tokens.len()
    }

    /// The pre-tokenizer name from `tokenizer.ggml.pre`.
    pub fn pre(&self) -> &str {
        &self.pre
    }
}

fn tk_err(e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Tokenizer(e.to_string())
}

fn split_regex(pattern: &str) -> Result<PreTokenizerWrapper> {
    Ok(Split::new(
        SplitPattern::Regex(pattern.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(tk_err)?
    .into())
}

fn byte_level_tokenizer(
    file: &GgufFile,
    tokens: &[String],
    pre: &str,
) -> Result<tokenizers::Tokenizer> {
    let merges = file.string_array("tokenizer.ggml.merges")?;
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let merges = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| tk_err(format!("malformed merge rule '{m}'")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .ignore_merges(matches!(pre, "llama-bpe" | "llama3"))
        .build()
        .map_err(tk_err)?;

    // The split each `tokenizer.ggml.pre` names, as llama.cpp's llama-vocab.cpp defines it.
    let bytes_only = || PreTokenizerWrapper::from(ByteLevel::new(false, false, false));
    let pre_tokenizer: PreTokenizerWrapper = match pre {
        "qwen2" | "deepseek-r1-qwen" => {
            PreSequence::new(vec![split_regex(QWEN2_PATTERN)?, bytes_only()]).into()
        }
        "llama-bpe" | "llama3" | "falcon3" | "pixtral" => {
            PreSequence::new(vec![split_regex(LLAMA3_PATTERN)?, bytes_only()]).into()
        }
        // StarCoder-family vocabularies (SmolLM among them) split every digit first.
        "smollm" | "starcoder" | "refact" | "codeshell" => PreSequence::new(vec![
            Digits::new(true).into(),
            split_regex(GPT2_PATTERN)?,
            bytes_only(),
        ])
        .into(),
        // "default", "gpt-2" and anything unknown: GPT-2's own split.
        _ => PreSequence::new(vec![split_regex(GPT2_PATTERN)?, bytes_only()]).into(),
    };
    let mut tok = tokenizers::Tokenizer::new(bpe);
    tok.with_pre_tokenizer(Some(pre_tokenizer));
    Ok(tok)
}

fn sentencepiece_tokenizer(
    file: &GgufFile,
    tokens: &[String],
    types: &[i64],
) -> Result<tokenizers::Tokenizer> {
    let scores: Vec<f64> = match file.get("tokenizer.ggml.scores") {
        Some(candle_core::quantized::gguf_file::Value::Array(v)) => v
            .iter()
            .map(|x| x.to_f32().map(f64::from).unwrap_or(0.0))
            .collect(),
        _ => vec![0.0; tokens.len()],
    };
    let vocab: Vec<(String, f64)> = tokens
        .iter()
        .zip(scores)
        .zip(types)
        // Control tokens must never be produced from text by the model itself.
        .map(|((t, s), ty)| (t.clone(), if *ty == TYPE_CONTROL { -1e9 } else { s }))
        .collect();
    let unk = file
        .uint("tokenizer.ggml.unknown_token_id")
        .map(|v| v as usize)
        .or(Some(0));
    let model = Unigram::from(vocab, unk, true).map_err(tk_err)?;
    let mut tok = tokenizers::Tokenizer::new(model);
    let add_space_prefix = file.bool("tokenizer.ggml.add_space_prefix").unwrap_or(true);
    let mut normalizers: Vec<NormalizerWrapper> = Vec::new();
    if add_space_prefix {
        normalizers.push(Prepend::new("▁".into()).into());
    }
    normalizers.push(Replace::new(" ", "▁").map_err(tk_err)?.into());
    tok.with_normalizer(Some(tokenizers::normalizers::Sequence::new(normalizers)));
    Ok(tok)
}

fn sentencepiece_bytes(text: &str, ty: i64) -> Vec<u8> {
    if ty == TYPE_BYTE {
        // "<0x0A>" → 0x0A
        if let Some(hex) = text.strip_prefix("<0x").and_then(|t| t.strip_suffix('>')) {
            if let Ok(b) = u8::from_str_radix(hex, 16) {
                return vec![b];
            }
        }
    }
    text.replace('▁', " ").into_bytes()
}

/// GPT-2's byte ↔ printable-character map, inverted: character → byte.
fn byte_level_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u8> = (b'!'..=b'~').collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let c = if printable.contains(&b) {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('\u{FFFD}')
        };
        map.insert(c, b);
    }
    map
}

/// Turns a stream of token bytes into text without ever splitting a UTF-8 character:
/// bytes that do not yet form a whole character wait for the next token.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    pending: Vec<u8>,
}

impl StreamDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a token's bytes; returns the text that is now complete (possibly empty).
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(s);
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Safe: from_utf8 just said these bytes are valid.
                    out.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // An incomplete character at the end: wait for more bytes.
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                        // Bytes that can never be valid: replace them and go on.
                        Some(bad) => {
                            out.push('\u{FFFD}');
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Flushes what is left at the end of a stream (an unfinished character becomes U+FFFD).
    pub fn finish(&mut self) -> String {
        let rest = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_decoder_holds_split_characters() {
        let mut d = StreamDecoder::new();
        let bytes = "é😀中".as_bytes();
        let mut out = String::new();
        for b in bytes {
            out.push_str(&d.push(std::slice::from_ref(b)));
        }
        out.push_str(&d.finish());
        assert_eq!(out, "é😀中");
    }

    #[test]
    fn stream_decoder_replaces_invalid_bytes() {
        let mut d = StreamDecoder::new();
        assert_eq!(d.push(&[b'a', 0xFF, b'b']), "a\u{FFFD}b");
        assert_eq!(d.push(&[0xE4, 0xB8]), "");
        assert_eq!(d.finish(), "\u{FFFD}");
    }

    #[test]
    fn byte_decoder_covers_all_bytes() {
        let map = byte_level_decoder();
        assert_eq!(map.len(), 256);
        assert_eq!(map[&'Ġ'], b' ');
        assert_eq!(map[&'Ċ'], b'\n');
    }
}
