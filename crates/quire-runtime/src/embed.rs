//! Sentence embeddings for dense retrieval: all-MiniLM-L6-v2, a 6-layer BERT, run in-process.
//!
//! [`Embedder::load`] reads the model's folder: `config.json`, `model.safetensors` and
//! `tokenizer.json`, which `scripts/fetch-models.sh` installs in `models/all-MiniLM-L6-v2`
//! ([`EMBED_MODEL_DIR`]). [`Embedder::embed`] follows sentence-transformers: BERT's token
//! vectors averaged over the real (unpadded) tokens, then scaled to unit length, so the dot
//! product of two embeddings is their cosine similarity.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::{Encoding, TruncationParams};

use crate::error::{Result, RuntimeError};

/// The embedding model's folder name under the models directory.
pub const EMBED_MODEL_DIR: &str = "all-MiniLM-L6-v2";

const CONFIG_FILE: &str = "config.json";
const WEIGHTS_FILE: &str = "model.safetensors";
const TOKENIZER_FILE: &str = "tokenizer.json";

/// Longest input in tokens, `[CLS]` and `[SEP]` included; the rest of a longer text is ignored
/// (sentence-transformers' `max_seq_length` for this model).
const MAX_TOKENS: usize = 256;

/// Texts per forward pass. Texts are grouped by length first, so padding stays small.
const BATCH: usize = 16;

/// Largest safetensors header accepted (the format's own limit is 100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// A loaded sentence-embedding model: BERT weights and its WordPiece tokenizer.
pub struct Embedder {
    model: BertModel,
    tokenizer: tokenizers::Tokenizer,
    dim: usize,
    pad_id: u32,
    device: Device,
    dir: PathBuf,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("dir", &self.dir)
            .field("dim", &self.dim)
            .finish()
    }
}

impl Embedder {
    /// Loads the model from its folder. Never touches the network.
    ///
    /// A missing folder or file, a damaged or truncated file, or weights that do not match
    /// the config give [`RuntimeError::EmbedModel`] naming the file.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(embed_error(dir, "folder not found"));
        }
        let config_path = dir.join(CONFIG_FILE);
        let weights_path = dir.join(WEIGHTS_FILE);
        let tokenizer_path = dir.join(TOKENIZER_FILE);
        for path in [&config_path, &weights_path, &tokenizer_path] {
            if !path.is_file() {
                return Err(embed_error(path, "file not found"));
            }
        }

        let config = read_config(&config_path)?;
        let max_tokens = MAX_TOKENS.min(config.max_position_embeddings);
        let tokenizer = read_tokenizer(&tokenizer_path, max_tokens)?;

        // Read into memory rather than mapped: a file replaced while it is read cannot
        // crash the process, and the buffer is freed once the weights are copied out.
        let bytes = std::fs::read(&weights_path)
            .map_err(|e| embed_error(&weights_path, format!("cannot read it: {e}")))?;
        check_safetensors(&weights_path, &bytes)?;
        let device = Device::Cpu;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
            .map_err(|e| embed_error(&weights_path, format!("cannot load the weights: {e}")))?;
        let model = BertModel::load(vb, &config).map_err(|e| {
            embed_error(
                &weights_path,
                format!("the weights do not match {CONFIG_FILE}: {e}"),
            )
        })?;

        Ok(Self {
            model,
            tokenizer,
            dim: config.hidden_size,
            pad_id: config.pad_token_id as u32,
            device,
            dir: dir.to_path_buf(),
        })
    }

    /// Length of every embedding (384 for all-MiniLM-L6-v2).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// One unit-length vector of [`Embedder::dim`] floats per text, in the order given.
    ///
    /// A text longer than 256 tokens is embedded from its first 256. An empty text still
    /// gets a vector (that of `[CLS] [SEP]`). The result does not depend on which other
    /// texts share the call.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| RuntimeError::Tokenizer(e.to_string()))?;

        // Similar lengths share a batch, so little compute goes to padding.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| encodings[i].len());

        let mut out = vec![Vec::new(); texts.len()];
        for chunk in order.chunks(BATCH) {
            let batch: Vec<&Encoding> = chunk.iter().map(|&i| &encodings[i]).collect();
            for (&i, vector) in chunk.iter().zip(self.embed_batch(&batch)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    /// Runs one padded batch through BERT and pools each row.
    fn embed_batch(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>> {
        // At least one column, so even a batch of empty encodings is a valid tensor.
        let seq = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(batch.len() * seq);
        let mut mask = Vec::with_capacity(batch.len() * seq);
        for encoding in batch {
            let row = encoding.get_ids();
            let pad = seq - row.len();
            ids.extend_from_slice(row);
            ids.extend(std::iter::repeat_n(self.pad_id, pad));
            mask.extend(std::iter::repeat_n(1f32, row.len()));
            mask.extend(std::iter::repeat_n(0f32, pad));
        }
        let ids = Tensor::from_vec(ids, (batch.len(), seq), &self.device)?;
        let token_types = ids.zeros_like()?;
        let mask = Tensor::from_vec(mask, (batch.len(), seq), &self.device)?;

        // (batch, seq, dim); padded positions are masked out of attention.
        let hidden = self.model.forward(&ids, &token_types, Some(&mask))?;
        // Sum over the real tokens only: padded rows are multiplied by zero.
        let sums = hidden
            .broadcast_mul(&mask.unsqueeze(2)?)?
            .sum(1)?
            .to_vec2::<f32>()?;
        Ok(sums
            .into_iter()
            .zip(batch)
            .map(|(sum, encoding)| mean_unit(sum, encoding.len()))
            .collect())
    }
}

/// The mean of `tokens` token vectors from their sum, scaled to unit length (zero stays zero).
fn mean_unit(mut v: Vec<f32>, tokens: usize) -> Vec<f32> {
    let n = tokens.max(1) as f32;
    v.iter_mut().for_each(|x| *x /= n);
    // The same floor as torch's F.normalize, which sentence-transformers uses.
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

fn embed_error(path: &Path, reason: impl Into<String>) -> RuntimeError {
    RuntimeError::EmbedModel {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_config(path: &Path) -> Result<Config> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| embed_error(path, format!("cannot read it: {e}")))?;
    let config: Config = serde_json::from_str(&text)
        .map_err(|e| embed_error(path, format!("not a valid BERT config: {e}")))?;
    let (hidden, heads) = (config.hidden_size, config.num_attention_heads);
    if hidden == 0 || heads == 0 || !hidden.is_multiple_of(heads) {
        return Err(embed_error(
            path,
            format!("hidden_size {hidden} is not a multiple of num_attention_heads {heads}"),
        ));
    }
    if config.max_position_embeddings < 2 {
        return Err(embed_error(
            path,
            format!(
                "max_position_embeddings {} leaves no room for text",
                config.max_position_embeddings
            ),
        ));
    }
    Ok(config)
}

/// The tokenizer, truncating at `max_tokens` and never padding: batches are padded here,
/// to their own longest text, whatever `tokenizer.json` says.
fn read_tokenizer(path: &Path, max_tokens: usize) -> Result<tokenizers::Tokenizer> {
    let mut tokenizer = tokenizers::Tokenizer::from_file(path)
        .map_err(|e| embed_error(path, format!("not a valid tokenizer: {e}")))?;
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: max_tokens,
            ..TruncationParams::default()
        }))
        .map_err(|e| embed_error(path, format!("cannot truncate at {max_tokens} tokens: {e}")))?;
    tokenizer.with_padding(None);
    Ok(tokenizer)
}

/// Checks the safetensors framing (8-byte little-endian header length, JSON header, tensor
/// data) so a cut or foreign file is named as such rather than as a tensor error.
fn check_safetensors(path: &Path, bytes: &[u8]) -> Result<()> {
    let actual = bytes.len() as u64;
    let Some(len_bytes) = bytes.first_chunk::<8>() else {
        return Err(embed_error(
            path,
            format!("truncated: {actual} bytes, too few for a safetensors header"),
        ));
    };
    let header_len = u64::from_le_bytes(*len_bytes);
    if header_len > MAX_HEADER {
        return Err(embed_error(
            path,
            format!("not a safetensors file (header length {header_len})"),
        ));
    }
    let header_end = 8 + header_len;
    if header_end > actual {
        return Err(embed_error(
            path,
            format!("truncated: its header needs {header_end} bytes but the file has {actual}"),
        ));
    }
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..header_end as usize])
        .map_err(|e| embed_error(path, format!("not a safetensors file: {e}")))?;
    let Some(tensors) = header.as_object() else {
        return Err(embed_error(
            path,
            "not a safetensors file: its header is not a JSON object",
        ));
    };
    let data_len = tensors
        .iter()
        .filter(|(name, _)| name.as_str() != "__metadata__")
        .filter_map(|(_, t)| t.get("data_offsets")?.get(1)?.as_u64())
        .max()
        .unwrap_or(0);
    let expected = header_end.saturating_add(data_len);
    if expected > actual {
        return Err(embed_error(
            path,
            format!("truncated: its tensors need {expected} bytes but the file has {actual}"),
        ));
    }
    Ok(())
}
