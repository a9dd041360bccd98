//! Token generation, separate from the models: sampling settings, the caller's token sink,
//! cancellation, and the result with its timings.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How the next token is chosen.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// 0 means greedy (argmax).
    pub temperature: f64,
    /// Keep only the k most likely tokens (0: off).
    pub top_k: usize,
    /// Nucleus sampling threshold (1.0: off).
    pub top_p: f64,
    /// Penalty on tokens seen in the last `repeat_last_n` (1.0: off).
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    pub seed: u64,
    /// Most tokens to generate.
    pub max_tokens: usize,
    /// Keep going past end-of-turn tokens (benchmarks only).
    pub ignore_stop: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 299_792_458,
            max_tokens: 256,
            ignore_stop: false,
        }
    }
}

impl SamplingParams {
    /// Greedy decoding with no penalties: what the llama.cpp references were made with.
    pub fn greedy(max_tokens: usize) -> Self {
        Self {
            max_tokens,
            ..Self::default()
        }
    }

    /// Sensible settings for chatting with a small model.
    pub fn chat(max_tokens: usize) -> Self {
        Self {
            temperature: 0.7,
            top_k: 40,
            top_p: 0.9,
            repeat_penalty: 1.1,
            max_tokens,
            ..Self::default()
        }
    }
}

/// Receives tokens as they are generated. `text` is the newly completed UTF-8 text (it may
/// be empty while a multi-byte character is still incomplete). Returning `Break` stops.
pub trait TokenSink {
    fn on_token(&mut self, id: u32, text: &str) -> ControlFlow<()>;
}

impl<F: FnMut(u32, &str) -> ControlFlow<()>> TokenSink for F {
    fn on_token(&mut self, id: u32, text: &str) -> ControlFlow<()> {
        self(id, text)
    }
}

/// A sink that keeps nothing, for benchmarks and tests that only read the result.
pub struct NullSink;

impl TokenSink for NullSink {
    fn on_token(&mut self, _: u32, _: &str) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// Stops a generation from another thread; checked before every forward pass.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
    /// Makes the token usable again for the next generation.
    pub fn reset(&self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model produced an end-of-turn or end-of-sequence token.
    EndOfTurn,
    /// `max_tokens` were generated.
    MaxTokens,
    /// The cancel token was set.
    Cancelled,
    /// The sink asked to stop.
    SinkStopped,
}

/// Where the time went.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Timings {
    pub prompt_tokens: usize,
    /// Leading prompt tokens whose keys and values were still cached from the previous
    /// generation (the same system prompt, say), so prefill skipped them.
    #[serde(default)]
    pub reused_tokens: usize,
    pub generated_tokens: usize,
    /// Prompt processing, up to the first sampled token.
    pub prefill: Duration,
    /// All decode steps after the first token.
    pub decode: Duration,
}

impl Timings {
    /// Prompt tokens processed per second (those reused from the cache not counted).
    pub fn prefill_tps(&self) -> f64 {
        let processed = self.prompt_tokens - self.reused_tokens.min(self.prompt_tokens);
        processed as f64 / self.prefill.as_secs_f64().max(1e-9)
    }
    /// Decode speed over the tokens after the first (the first comes from prefill).
    pub fn decode_tps(&self) -> f64 {
        self.generated_tokens.saturating_sub(1) as f64 / self.decode.as_secs_f64().max(1e-9)
    }
}

/// What a generation produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Generation {
    pub prompt_ids: Vec<u32>,
    /// Generated ids, excluding the stop token.
    pub ids: Vec<u32>,
    pub text: String,
    pub stop: StopReason,
    pub timings: Timings,
}
