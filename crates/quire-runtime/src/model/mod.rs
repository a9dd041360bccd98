//! Model weights by architecture. Llama-family and Qwen2 run on our own decoder
//! ([`llama`]); Qwen3, Gemma 3 and Phi-3 run on candle-transformers' implementations.

mod attn;
pub use attn::Attention;
pub mod llama;

use std::fs::File;
use std::io::BufReader;

use candle_core::quantized::gguf_file::Content;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_gemma3, quantized_phi3, quantized_qwen3};

use crate::error::{Result, RuntimeError};
use crate::gguf::GgufFile;

/// The `general.architecture` values [`Weights::load`] can run.
pub const SUPPORTED: &str = "llama, mistral, qwen2, qwen3, gemma3, phi3";

/// Whether [`Weights::load`] can run a GGUF of this `general.architecture`.
pub fn is_supported(architecture: &str) -> bool {
    SUPPORTED.split(", ").any(|a| a == architecture)
}

/// Loaded weights of any supported architecture, with their KV cache.
pub enum Weights {
    Llama(Box<llama::Llama>),
    Qwen3(Box<quantized_qwen3::ModelWeights>),
    Gemma3(Box<quantized_gemma3::ModelWeights>),
    Phi3(Box<quantized_phi3::ModelWeights>),
}

impl Weights {
    /// `attention` applies to the models on our own decoder.
    pub fn load(
        file: &GgufFile,
        max_seq: usize,
        attention: Attention,
        dev: &Device,
    ) -> Result<Self> {
        let arch = file.architecture()?.to_string();
        let reread = || -> Result<(Content, BufReader<File>)> {
            let f = File::open(file.path()).map_err(|source| RuntimeError::Io {
                path: file.path().to_path_buf(),
                source,
            })?;
            let mut r = BufReader::new(f);
            let c = Content::read(&mut r).map_err(|e| file.invalid(crate::gguf::error_text(&e)))?;
            Ok((c, r))
        };
        let wrap = |e: candle_core::Error| {
            file.invalid(format!(
                "loading {arch} weights: {}",
                crate::gguf::error_text(&e)
            ))
        };
        match arch.as_str() {
            "llama" | "mistral" | "qwen2" => {
                // Qwen2 runs on the Llama decoder with the NEOX rotary layout.
                let cfg = llama::Config {
                    attention,
                    ..llama::Config::from_gguf(file, arch == "qwen2")?
                };
                Ok(Self::Llama(Box::new(llama::Llama::load(
                    file, cfg, max_seq, dev,
                )?)))
            }
            "qwen3" => {
                let (c, mut r) = reread()?;
                let w = quantized_qwen3::ModelWeights::from_gguf(c, &mut r, dev).map_err(wrap)?;
                Ok(Self::Qwen3(Box::new(w)))
            }
            "gemma3" => {
                let (c, mut r) = reread()?;
                let w = quantized_gemma3::ModelWeights::from_gguf(c, &mut r, dev).map_err(wrap)?;
                Ok(Self::Gemma3(Box::new(w)))
            }
            "phi3" => {
                let (c, mut r) = reread()?;
                let w =
                    quantized_phi3::ModelWeights::from_gguf(false, c, &mut r, dev).map_err(wrap)?;
                Ok(Self::Phi3(Box::new(w)))
            }
            other => Err(RuntimeError::UnsupportedArchitecture {
                path: file.path().to_path_buf(),
                architecture: other.to_string(),
                supported: SUPPORTED,
            }),
        }
    }

    /// Logits (f32, `[vocab]`) of the last of `tokens`, placed at positions `pos..`.
    /// `pos == 0` starts a new sequence: the KV cache is cleared first.
    pub fn forward(&mut self, tokens: &[u32], pos: usize, dev: &Device) -> Result<Tensor> {
        if pos == 0 {
            self.clear_kv_cache();
        }
        let logits = match self {
            Self::Llama(m) => return m.forward(tokens, pos),
            Self::Qwen3(m) => m.forward(&Tensor::new(tokens, dev)?.unsqueeze(0)?, pos)?,
            Self::Gemma3(m) => m.forward(&Tensor::new(tokens, dev)?.unsqueeze(0)?, pos)?,
            Self::Phi3(m) => m.forward(&Tensor::new(tokens, dev)?.unsqueeze(0)?, pos)?,
        };
        last_row(&logits)
    }

    /// Keeps the cached keys and values of positions `0..len` so a sequence can go on from
    /// `len`; false where this model's cache cannot be cut (it starts over instead).
    pub fn truncate_kv_cache(&mut self, len: usize) -> bool {
        match self {
            Self::Llama(m) => {
                m.truncate_kv_cache(len);
                true
            }
            Self::Qwen3(_) | Self::Gemma3(_) | Self::Phi3(_) => false,
        }
    }

    pub fn clear_kv_cache(&mut self) {
        match self {
            Self::Llama(m) => m.clear_kv_cache(),
            Self::Qwen3(m) => m.clear_kv_cache(),
            // These reset their cache themselves when a sequence starts at position 0.
            Self::Gemma3(_) | Self::Phi3(_) => {}
        }
    }
}

/// The last position's logits, whatever leading dimensions a model returns.
fn last_row(t: &Tensor) -> Result<Tensor> {
    let t = t.to_dtype(candle_core::DType::F32)?;
    let dims = t.dims().to_vec();
    let vocab = *dims.last().unwrap_or(&0);
    let rows = t.elem_count() / vocab.max(1);
    Ok(t.reshape((rows, vocab))?.get(rows - 1)?)
}
