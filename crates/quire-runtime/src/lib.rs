//! Quire's model runtime: a small language model run in-process from a GGUF file.
//!
//! [`Model::load`] opens a GGUF file, checks it, and builds its [`Tokenizer`] and
//! [`ChatTemplate`] from the file's own metadata; [`Model::generate`] streams tokens to a
//! caller-supplied [`TokenSink`] and honours a [`CancelToken`]. This crate knows nothing of
//! documents: the engine builds prompts, the runtime runs them.
//!
//! [`Embedder`] turns text into sentence embeddings (all-MiniLM-L6-v2) for dense retrieval.
//!
//! ```no_run
//! use quire_runtime::{ChatMessage, CancelToken, Model, LoadOptions, SamplingParams};
//! let mut model = Model::load("models/SmolLM2-135M-Instruct.Q4_1.gguf".as_ref(), &LoadOptions::default())?;
//! let prompt = model.encode_chat(&[ChatMessage::user("Hello!")])?;
//! let out = model.generate(&prompt, &SamplingParams::greedy(32), &CancelToken::new(),
//!     &mut |_id: u32, text: &str| { print!("{text}"); std::ops::ControlFlow::Continue(()) })?;
//! # Ok::<(), quire_runtime::RuntimeError>(())
//! ```

pub mod embed;
mod error;
pub mod generate;
pub mod gguf;
pub mod kernels;
pub mod model;
pub mod pool;
pub mod rss;
pub mod template;
pub mod tokenizer;

use std::ops::ControlFlow;
use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling};

pub use embed::{Embedder, EMBED_MODEL_DIR};
pub use error::{Result, RuntimeError};
pub use generate::{
    CancelToken, Generation, NullSink, SamplingParams, StopReason, Timings, TokenSink,
};
pub use gguf::{sha256_file, GgufFile, ModelInfo};
pub use model::Attention;
pub use template::{ChatMessage, ChatTemplate, PromptPart};
pub use tokenizer::{StreamDecoder, Tokenizer};

/// How a model is loaded.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Context window to allocate, capped at the model's own; `None`: the model's own,
    /// capped at [`LoadOptions::DEFAULT_MAX_CONTEXT`].
    pub context_size: Option<usize>,
    /// Attention's arithmetic (Llama-family and Qwen2 models): [`Attention::Fast`] unless
    /// output is being compared with llama.cpp's.
    pub attention: Attention,
}

impl LoadOptions {
    pub const DEFAULT_MAX_CONTEXT: usize = 8192;
}

/// Prompt tokens processed per forward pass: bounds attention memory on long prompts and
/// lets a cancel land between chunks.
const PREFILL_CHUNK: usize = 512;

/// A loaded model: weights, tokenizer and chat template.
pub struct Model {
    info: ModelInfo,
    tokenizer: Tokenizer,
    template: ChatTemplate,
    weights: model::Weights,
    context: usize,
    device: Device,
    /// The tokens whose keys and values are in the cache, positions `0..`: a prompt that
    /// starts with them (the same system prompt, an earlier turn) reuses them.
    cached: Vec<u32>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("path", &self.info.path)
            .field("architecture", &self.info.architecture)
            .finish()
    }
}

/// A forward pass allocates and frees buffers of megabytes per layer (a prefill's FFN
/// activations are 10 MB). glibc serves those with fresh `mmap`s and unmaps them on free,
/// so every layer paid page faults and the kernel's zeroing of every page again (about a
/// tenth of a prefill). Fixing the thresholds keeps freed memory in the heap for the next
/// layer instead; peak memory is unchanged (what is kept is what the pass already used).
fn keep_freed_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only adjusts allocator parameters; called once, before the
            // pass's buffers exist. A refusal (return 0) leaves glibc's defaults.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
                libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
            }
        });
    }
}

impl Model {
    /// Loads a GGUF model from disk. Never touches the network.
    pub fn load(path: &Path, opts: &LoadOptions) -> Result<Self> {
        keep_freed_buffers();
        let file = GgufFile::open(path)?;
        let arch = file.architecture()?;
        // Checked before the tokenizer is built, so the error names the real problem.
        if !model::is_supported(arch) {
            return Err(RuntimeError::UnsupportedArchitecture {
                path: path.to_path_buf(),
                architecture: arch.to_string(),
                supported: model::SUPPORTED,
            });
        }
        let info = file.info()?;
        let ChatEncoder {
            tokenizer,
            template,
            ..
        } = ChatEncoder::from_gguf(&file, opts)?;
        let model_ctx = info.context_length.unwrap_or(4096) as usize;
        let context = opts
            .context_size
            .unwrap_or(LoadOptions::DEFAULT_MAX_CONTEXT)
            .min(model_ctx)
            .max(16);
        let device = Device::Cpu;
        let weights = model::Weights::load(&file, context, opts.attention, &device)?;
        Ok(Self {
            info,
            tokenizer,
            template,
            weights,
            context,
            device,
            cached: Vec::new(),
        })
    }

    /// Forgets the cached prompt, so the next generation computes its whole prompt (for
    /// measuring prefill).
    pub fn forget_cached_prompt(&mut self) {
        self.cached.clear();
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    pub fn template(&self) -> &ChatTemplate {
        &self.template
    }

    /// The context window in tokens (prompt plus generated).
    pub fn context_size(&self) -> usize {
        self.context
    }

    /// The chat prompt as text, exactly as the model's template renders it.
    pub fn render_chat(&self, messages: &[ChatMessage]) -> Result<String> {
        self.template.render(messages, true)
    }

    /// The chat prompt as token ids, ready for [`Model::generate`]. Control tokens come only
    /// from the template: message content is always encoded as plain text.
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        encode_chat(&self.tokenizer, &self.template, messages)
    }

    /// The logits of the token that would follow `ids`, computed as a fresh sequence: for
    /// checking the runtime against reference outputs.
    pub fn next_logits(&mut self, ids: &[u32]) -> Result<Vec<f32>> {
        self.check_prompt(ids, 0)?;
        let logits = self
            .prefill(ids, 0, &CancelToken::new())?
            .ok_or(RuntimeError::EmptyPrompt)?;
        Ok(logits.to_dtype(candle_core::DType::F32)?.to_vec1::<f32>()?)
    }

    /// Fails on a prompt that is empty, names a token outside the vocabulary, or does not
    /// fit the context with `max_tokens` after it.
    fn check_prompt(&self, prompt_ids: &[u32], max_tokens: usize) -> Result<()> {
        if prompt_ids.is_empty() {
            return Err(RuntimeError::EmptyPrompt);
        }
        let vocab = self.tokenizer.vocab_size();
        if let Some(&id) = prompt_ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(RuntimeError::InvalidToken {
                id,
                vocab_size: vocab,
            });
        }
        if prompt_ids.len() + max_tokens > self.context {
            return Err(RuntimeError::ContextOverflow {
                prompt_tokens: prompt_ids.len(),
                max_tokens,
                context: self.context,
            });
        }
        Ok(())
    }

    /// How many leading tokens of `prompt_ids` can keep their cached keys and values: the
    /// prefix shared with what the cache holds, less at least the last prompt token (its
    /// logits are needed), and 0 where the model's cache cannot be cut. Positions, RoPE and
    /// every row's arithmetic are the same either way, so the logits are identical to a
    /// fresh run's.
    fn reusable(&mut self, prompt_ids: &[u32]) -> usize {
        let shared = self
            .cached
            .iter()
            .zip(prompt_ids)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt_ids.len().saturating_sub(1));
        if shared > 0 && self.weights.truncate_kv_cache(shared) {
            shared
        } else {
            0
        }
    }

    /// Runs `prompt_ids[start..]` at positions `start..` (the cache holding `0..start`) in
    /// chunks of [`PREFILL_CHUNK`] and returns the logits after its last token, or `None`
    /// when cancelled between chunks. `self.cached` follows what the cache holds.
    fn prefill(
        &mut self,
        prompt_ids: &[u32],
        start: usize,
        cancel: &CancelToken,
    ) -> Result<Option<Tensor>> {
        self.cached.truncate(start);
        let mut logits = None;
        for (i, chunk) in prompt_ids[start..].chunks(PREFILL_CHUNK).enumerate() {
            if cancel.is_cancelled() {
                return Ok(None);
            }
            logits = Some(
                self.weights
                    .forward(chunk, start + i * PREFILL_CHUNK, &self.device)?,
            );
            self.cached.extend_from_slice(chunk);
        }
        Ok(logits)
    }

    /// Generates after `prompt_ids`, streaming each token to `sink`.
    ///
    /// The prompt's leading tokens that match the previous generation's (its system prompt,
    /// say) keep their cached keys and values instead of being computed again; the result
    /// is the same as a fresh sequence's. Fails with [`RuntimeError::ContextOverflow`]
    /// rather than truncating when the prompt plus `max_tokens` do not fit.
    pub fn generate(
        &mut self,
        prompt_ids: &[u32],
        params: &SamplingParams,
        cancel: &CancelToken,
        sink: &mut dyn TokenSink,
    ) -> Result<Generation> {
        self.check_prompt(prompt_ids, params.max_tokens)?;
        let mut sampler = LogitsProcessor::from_sampling(params.seed, sampling(params));
        let reused = self.reusable(prompt_ids);
        let mut timings = Timings {
            prompt_tokens: prompt_ids.len(),
            reused_tokens: reused,
            ..Timings::default()
        };
        let mut result = Generation {
            prompt_ids: prompt_ids.to_vec(),
            ids: Vec::new(),
            text: String::new(),
            stop: StopReason::MaxTokens,
            timings: Timings::default(),
        };
        if params.max_tokens == 0 {
            result.timings = timings;
            return Ok(result);
        }

        let started = Instant::now();
        let Some(mut logits) = self.prefill(prompt_ids, reused, cancel)? else {
            result.stop = StopReason::Cancelled;
            timings.prefill = started.elapsed();
            result.timings = timings;
            return Ok(result);
        };
        let mut pos = prompt_ids.len();

        let mut decoder = StreamDecoder::new();
        let mut history: Vec<u32> = prompt_ids.to_vec();
        let stop_ids = self.tokenizer.stop_ids().to_vec();
        let mut decode_started = None;
        loop {
            let next = self.sample(&mut sampler, &logits, params, &history)?;
            if decode_started.is_none() {
                timings.prefill = started.elapsed();
                decode_started = Some(Instant::now());
            }
            if !params.ignore_stop && stop_ids.contains(&next) {
                result.stop = StopReason::EndOfTurn;
                break;
            }
            result.ids.push(next);
            history.push(next);
            let piece = decoder.push(self.tokenizer.token_bytes(next));
            result.text.push_str(&piece);
            if let ControlFlow::Break(()) = sink.on_token(next, &piece) {
                result.stop = StopReason::SinkStopped;
                break;
            }
            if result.ids.len() >= params.max_tokens {
                result.stop = StopReason::MaxTokens;
                break;
            }
            if cancel.is_cancelled() {
                result.stop = StopReason::Cancelled;
                break;
            }
            logits = self.weights.forward(&[next], pos, &self.device)?;
            self.cached.push(next);
            pos += 1;
        }
        let rest = decoder.finish();
        if !rest.is_empty() {
            result.text.push_str(&rest);
            let _ = sink.on_token(*result.ids.last().unwrap_or(&0), &rest);
        }
        timings.generated_tokens = result.ids.len();
        timings.decode = decode_started.map(|t| t.elapsed()).unwrap_or_default();
        result.timings = timings;
        Ok(result)
    }

    fn sample(
        &self,
        sampler: &mut LogitsProcessor,
        logits: &Tensor,
        params: &SamplingParams,
        history: &[u32],
    ) -> Result<u32> {
        let logits = if params.repeat_penalty != 1.0 && params.repeat_last_n > 0 {
            let start = history.len().saturating_sub(params.repeat_last_n);
            candle_transformers::utils::apply_repeat_penalty(
                logits,
                params.repeat_penalty,
                &history[start..],
            )?
        } else {
            logits.clone()
        };
        Ok(sampler.sample(&logits)?)
    }
}

fn sampling(p: &SamplingParams) -> Sampling {
    if p.temperature <= 0.0 {
        return Sampling::ArgMax;
    }
    let temperature = p.temperature;
    match (p.top_k > 0, p.top_p < 1.0) {
        (true, true) => Sampling::TopKThenTopP {
            k: p.top_k,
            p: p.top_p,
            temperature,
        },
        (true, false) => Sampling::TopK {
            k: p.top_k,
            temperature,
        },
        (false, true) => Sampling::TopP {
            p: p.top_p,
            temperature,
        },
        (false, false) => Sampling::All { temperature },
    }
}

fn encode_chat(
    tokenizer: &Tokenizer,
    template: &ChatTemplate,
    messages: &[ChatMessage],
) -> Result<Vec<u32>> {
    let mut ids: Vec<u32> = tokenizer.bos_prefix().into_iter().collect();
    for part in template.render_parts(messages, true)? {
        match part {
            PromptPart::Template(t) => {
                let mut t = t.as_str();
                // The template may print the BOS itself; do not add it twice.
                if let (Some(bos), false) = (tokenizer.bos_prefix(), ids.len() > 1) {
                    if let Some(bos_text) = tokenizer.token_text(bos) {
                        t = t.strip_prefix(bos_text).unwrap_or(t);
                    }
                }
                ids.extend(tokenizer.encode(t, true)?);
            }
            PromptPart::Content(c) => ids.extend(tokenizer.encode(&c, false)?),
        }
    }
    Ok(ids)
}

/// A model's tokenizer and chat template without its weights: enough to measure prompts
/// (context packing, tests) in milliseconds.
pub struct ChatEncoder {
    tokenizer: Tokenizer,
    template: ChatTemplate,
    context: usize,
}

impl ChatEncoder {
    /// Reads the tokenizer and template of the GGUF at `path`.
    pub fn open(path: &Path, opts: &LoadOptions) -> Result<Self> {
        Self::from_gguf(&GgufFile::open(path)?, opts)
    }

    fn from_gguf(file: &GgufFile, opts: &LoadOptions) -> Result<Self> {
        let tokenizer = Tokenizer::from_gguf(file)?;
        let special_text = |key: &str| {
            file.uint(key)
                .and_then(|id| tokenizer.token_text(id as u32))
                .unwrap_or("")
                .to_string()
        };
        let template = ChatTemplate::from_gguf(
            file,
            &special_text("tokenizer.ggml.bos_token_id"),
            &special_text("tokenizer.ggml.eos_token_id"),
        )?;
        let model_ctx = file.info()?.context_length.unwrap_or(4096) as usize;
        let context = opts
            .context_size
            .unwrap_or(LoadOptions::DEFAULT_MAX_CONTEXT)
            .min(model_ctx)
            .max(16);
        Ok(Self {
            tokenizer,
            template,
            context,
        })
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The context window a model loaded with the same options would have.
    pub fn context_size(&self) -> usize {
        self.context
    }

    /// As [`Model::encode_chat`].
    pub fn encode_chat(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        encode_chat(&self.tokenizer, &self.template, messages)
    }
}

/// Sets the number of compute threads. Must be called before the first model is loaded.
pub fn set_threads(n: usize) {
    if n > 0 {
        pool::set_threads(n);
        // Read once by candle's and rayon's thread pools when they start.
        std::env::set_var("RAYON_NUM_THREADS", n.to_string());
    }
}
