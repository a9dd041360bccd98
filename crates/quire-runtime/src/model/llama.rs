//! The llama-family decoder (Llama 2/3, SmolLM, Mistral-style and Qwen2), written over
//! candle-core so every hot operation stays ours to optimize.
//!
//! Reads top to bottom: config → building blocks → model → `forward`.

use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};

use crate::kernels::QLinear;
use half::f16;
use half::slice::HalfFloatSliceExt;
use rayon::prelude::*;

use crate::error::Result;
use crate::gguf::GgufFile;

/// Hyper-parameters read from the GGUF metadata.
#[derive(Debug, Clone)]
pub struct Config {
    pub n_layer: usize,
    pub n_embd: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub rms_eps: f64,
    pub rope_base: f64,
    /// NEOX rotary layout (halves) rather than interleaved pairs.
    pub rope_neox: bool,
    pub context_length: usize,
}

impl Config {
    pub fn from_gguf(file: &GgufFile, rope_neox: bool) -> Result<Self> {
        let n_embd = file.arch_uint("embedding_length")? as usize;
        let n_head = file.arch_uint("attention.head_count")? as usize;
        let n_kv_head = file
            .arch_uint("attention.head_count_kv")
            .map(|v| v as usize)
            .unwrap_or(n_head);
        if n_head == 0
            || n_kv_head == 0
            || !n_head.is_multiple_of(n_kv_head)
            || !n_embd.is_multiple_of(n_head)
        {
            return Err(file.invalid(format!(
                "inconsistent attention shape: {n_head} heads, {n_kv_head} kv heads, width {n_embd}"
            )));
        }
        let head_dim = file
            .arch_uint("attention.key_length")
            .map(|v| v as usize)
            .unwrap_or(n_embd / n_head);
        Ok(Self {
            n_layer: file.arch_uint("block_count")? as usize,
            n_embd,
            n_head,
            n_kv_head,
            head_dim,
            rms_eps: file
                .arch_float("attention.layer_norm_rms_epsilon")
                .unwrap_or(1e-5),
            rope_base: file.arch_float("rope.freq_base").unwrap_or(10_000.0),
            rope_neox,
            context_length: file.arch_uint("context_length").unwrap_or(4096) as usize,
        })
    }
}

struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn load(file: &GgufFile, name: &str, eps: f64, dev: &Device) -> Result<Self> {
        let weight = file.tensor(name, dev)?.dequantize(dev)?;
        Ok(Self {
            weight,
            eps: eps as f32,
        })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::rms_norm(x, &self.weight, self.eps)?)
    }
}

/// A weight matrix with an optional bias (Qwen2 has biases on q, k and v).
struct Linear {
    weight: QLinear,
    bias: Option<Tensor>,
}

impl Linear {
    fn load(file: &GgufFile, prefix: &str, dev: &Device) -> Result<Self> {
        let weight = QLinear::new(Arc::new(file.tensor(&format!("{prefix}.weight"), dev)?))?;
        let bias_name = format!("{prefix}.bias");
        let bias = if file.has_tensor(&bias_name) {
            Some(file.tensor(&bias_name, dev)?.dequantize(dev)?)
        } else {
            None
        };
        Ok(Self { weight, bias })
    }
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = self.weight.forward(x)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(b)?,
            None => y,
        })
    }
}

struct Layer {
    attn_norm: RmsNorm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ffn_norm: RmsNorm,
    gate: Linear,
    up: Linear,
    down: Linear,
    kv: KvCache,
}

/// The decoder with its KV cache.
pub struct Llama {
    cfg: Config,
    /// Kept quantized: rows are dequantized on lookup, so the table costs its file size.
    tok_embd: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QLinear,
    cos: Tensor,
    sin: Tensor,
    dev: Device,
}

impl Llama {
    pub fn load(file: &GgufFile, cfg: Config, max_seq: usize, dev: &Device) -> Result<Self> {
        let tok_embd = Arc::new(file.tensor("token_embd.weight", dev)?);
        let output = if file.has_tensor("output.weight") {
            QLinear::new(Arc::new(file.tensor("output.weight", dev)?))?
        } else {
            // Tied embeddings (SmolLM2): the output head is the embedding table.
            QLinear::new(tok_embd.clone())?
        };
        let mut layers = Vec::with_capacity(cfg.n_layer);
        for i in 0..cfg.n_layer {
            let p = format!("blk.{i}");
            layers.push(Layer {
                attn_norm: RmsNorm::load(file, &format!("{p}.attn_norm.weight"), cfg.rms_eps, dev)?,
                q: Linear::load(file, &format!("{p}.attn_q"), dev)?,
                k: Linear::load(file, &format!("{p}.attn_k"), dev)?,
                v: Linear::load(file, &format!("{p}.attn_v"), dev)?,
                o: Linear::load(file, &format!("{p}.attn_output"), dev)?,
                ffn_norm: RmsNorm::load(file, &format!("{p}.ffn_norm.weight"), cfg.rms_eps, dev)?,
                gate: Linear::load(file, &format!("{p}.ffn_gate"), dev)?,
                up: Linear::load(file, &format!("{p}.ffn_up"), dev)?,
                down: Linear::load(file, &format!("{p}.ffn_down"), dev)?,
                kv: KvCache::new(cfg.n_kv_head, cfg.head_dim),
            });
        }
        let norm = RmsNorm::load(file, "output_norm.weight", cfg.rms_eps, dev)?;
        let freq_factors = if file.has_tensor("rope_freqs.weight") {
            Some(
                file.tensor("rope_freqs.weight", dev)?
                    .dequantize(dev)?
                    .to_vec1::<f32>()?,
            )
        } else {
            None
        };
        let (cos, sin) = rope_tables(&cfg, max_seq, freq_factors.as_deref(), dev)?;
        Ok(Self {
            cfg,
            tok_embd,
            layers,
            norm,
            output,
            cos,
            sin,
            dev: dev.clone(),
        })
    }

    pub fn clear_kv_cache(&mut self) {
        for l in &mut self.layers {
            l.kv.clear();
        }
    }

    /// Runs `tokens` at positions `pos..pos+len` and returns the logits of the last one.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        let seq = tokens.len();
        let ids = Tensor::new(tokens, &self.dev)?;
        let mut x = self.tok_embd.embedding(&ids)?.unsqueeze(0)?; // [1, seq, embd]
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        for layer in &mut self.layers {
            let h = layer.attn_norm.forward(&x)?;
            let a = attention(&self.cfg, layer, &h, &cos, &sin)?;
            x = (x + a)?;
            let h = layer.ffn_norm.forward(&x)?;
            let g = candle_nn::ops::silu(&layer.gate.forward(&h)?)?;
            let u = layer.up.forward(&h)?;
            x = (x + layer.down.forward(&(g * u)?)?)?;
        }
        let last = x.narrow(1, seq - 1, 1)?;
        let last = self.norm.forward(&last)?;
        let logits = self.output.forward(&last)?; // [1, 1, vocab]
        Ok(logits.flatten_all()?)
    }
}

fn attention(
    cfg: &Config,
    layer: &mut Layer,
    x: &Tensor,
    cos: &Tensor,
    sin: &Tensor,
) -> Result<Tensor> {
    let (b, seq, _) = x.dims3()?;
    let hd = cfg.head_dim;
    let q = layer
        .q
        .forward(x)?
        .reshape((b, seq, cfg.n_head, hd))?
        .transpose(1, 2)?;
    let k = layer
        .k
        .forward(x)?
        .reshape((b, seq, cfg.n_kv_head, hd))?
        .transpose(1, 2)?;
    let v = layer.v.forward(x)?.reshape((b, seq, cfg.n_kv_head, hd))?;
    let (q, k) = if cfg.rope_neox {
        (
            candle_nn::rotary_emb::rope(&q.contiguous()?, cos, sin)?,
            candle_nn::rotary_emb::rope(&k.contiguous()?, cos, sin)?,
        )
    } else {
        (
            candle_nn::rotary_emb::rope_i(&q.contiguous()?, cos, sin)?,
            candle_nn::rotary_emb::rope_i(&k.contiguous()?, cos, sin)?,
        )
    };
    // K and V are cached in f16 as in llama.cpp; attention follows its CPU flash-attention
    // kernel, so greedy output stays on llama.cpp's path.
    let pos = layer.kv.len();
    layer.kv.append(&k, &v)?;
    let q = q.flatten_all()?.to_vec1::<f32>()?;
    let y = flash_attention(cfg, &q, seq, pos, &layer.kv);
    let y = Tensor::from_vec(y, (b, cfg.n_head, seq, hd), x.device())?
        .transpose(1, 2)?
        .reshape((b, seq, cfg.n_head * hd))?;
    layer.o.forward(&y)
}

/// cos/sin tables computed as ggml does (angle advanced by repeated f32 multiplication), so
/// positions rotate exactly as in llama.cpp.
fn rope_tables(
    cfg: &Config,
    max_seq: usize,
    freq_factors: Option<&[f32]>,
    dev: &Device,
) -> Result<(Tensor, Tensor)> {
    let half = cfg.head_dim / 2;
    let theta_scale = (cfg.rope_base as f32).powf(-2.0 / cfg.head_dim as f32);
    let mut cos = Vec::with_capacity(max_seq * half);
    let mut sin = Vec::with_capacity(max_seq * half);
    for p in 0..max_seq {
        let mut theta = p as f32;
        for i in 0..half {
            let factor = freq_factors.and_then(|f| f.get(i)).copied().unwrap_or(1.0);
            let t = theta / factor;
            cos.push(t.cos());
            sin.push(t.sin());
            theta *= theta_scale;
        }
    }
    Ok((
        Tensor::from_vec(cos, (max_seq, half), dev)?,
        Tensor::from_vec(sin, (max_seq, half), dev)?,
    ))
}

/// One layer's keys and values in f16, position-major (`[pos][kv_head][dim]`), grown as
/// tokens arrive so memory follows the sequence actually used.
struct KvCache {
    k: Vec<f16>,
    v: Vec<f16>,
    n_kv: usize,
    hd: usize,
}

impl KvCache {
    fn new(n_kv: usize, hd: usize) -> Self {
        Self {
            k: Vec::new(),
            v: Vec::new(),
            n_kv,
            hd,
        }
    }

    fn len(&self) -> usize {
        self.k.len() / (self.n_kv * self.hd)
    }

    fn clear(&mut self) {
        self.k.clear();
        self.v.clear();
    }

    /// `k`: `[1, n_kv, seq, hd]` (after RoPE); `v`: `[1, seq, n_kv, hd]`.
    fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<()> {
        let k = k.transpose(1, 2)?.flatten_all()?.to_vec1::<f32>()?; // [seq, n_kv, hd]
        let v = v.flatten_all()?.to_vec1::<f32>()?;
        let start = self.k.len();
        self.k.resize(start + k.len(), f16::ZERO);
        self.k[start..].convert_from_f32_slice(&k);
        self.v.resize(start + v.len(), f16::ZERO);
        self.v[start..].convert_from_f32_slice(&v);
        Ok(())
    }
}

/// llama.cpp's CPU flash attention (`ggml_compute_forward_flash_attn_ext_f16`): Q rounded to
/// f16, an online softmax over the keys in order, and the weighted sum of V accumulated in
/// f16. `q` is `[n_head, seq, hd]`; query `i` sits at position `pos + i` and sees keys
/// `0..=pos + i`. Returns `[n_head, seq, hd]`.
///
/// Scores are computed for all keys at once with K transposed (`[dim][key]`): each score is
/// still summed over `dim` in order, so the result is bit-identical to one dot per key, but
/// the work vectorizes across keys instead of waiting on one long chain of additions.
fn flash_attention(cfg: &Config, q: &[f32], seq: usize, pos: usize, kv: &KvCache) -> Vec<f32> {
    let hd = cfg.head_dim;
    let n_kv = cfg.n_kv_head;
    let n_rep = cfg.n_head / n_kv;
    let total = kv.len();
    let scale = 1.0 / (hd as f32).sqrt();
    // Widen the cache once per call: K transposed per KV head, V as stored.
    let mut k = vec![0f32; kv.k.len()];
    kv.k.convert_to_f32_slice(&mut k);
    let mut k_t = vec![0f32; kv.k.len()]; // [kv_head][dim][key]
    for (j, row) in k.chunks_exact(n_kv * hd).enumerate() {
        for (h, src) in row.chunks_exact(hd).enumerate() {
            for (d, &x) in src.iter().enumerate() {
                k_t[(h * hd + d) * total + j] = x;
            }
        }
    }
    let mut v = vec![0f32; kv.v.len()];
    kv.v.convert_to_f32_slice(&mut v);
    let mut out = vec![0f32; cfg.n_head * seq * hd];
    out.par_chunks_mut(seq * hd)
        .enumerate()
        .for_each(|(h, out_h)| {
            let kvh = h / n_rep;
            let k_h = &k_t[kvh * hd * total..][..hd * total];
            let mut qrow = vec![0f32; hd];
            let mut acc = vec![0f32; hd];
            let mut acc16 = vec![f16::ZERO; hd];
            let mut scores = vec![0f32; total];
            for (i, dst) in out_h.chunks_mut(hd).enumerate() {
                let src = &q[(h * seq + i) * hd..][..hd];
                acc16.convert_from_f32_slice(src);
                acc16.convert_to_f32_slice(&mut qrow);
                let n = (pos + i + 1).min(total);
                let sc = &mut scores[..n];
                sc.iter_mut().for_each(|s| *s = 0.0);
                for (d, &qd) in qrow.iter().enumerate() {
                    let krow = &k_h[d * total..d * total + n];
                    sc.iter_mut().zip(krow).for_each(|(s, &kx)| *s += qd * kx);
                }
                acc.iter_mut().for_each(|a| *a = 0.0);
                let mut m = f32::NEG_INFINITY;
                let mut s_sum = 0f32;
                for (j, &dot) in sc.iter().enumerate() {
                    let s = dot * scale;
                    let (ms, vs) = if s > m {
                        let ms = (m - s).exp();
                        m = s;
                        (ms, 1.0)
                    } else {
                        (1.0, (s - m).exp())
                    };
                    let vrow = &v[(j * n_kv + kvh) * hd..][..hd];
                    // The running sum lives in f16 in ggml: rounded after the rescale and after
                    // each add.
                    if ms != 1.0 {
                        acc.iter_mut().for_each(|a| *a *= ms);
                        acc16.convert_from_f32_slice(&acc);
                        acc16.convert_to_f32_slice(&mut acc);
                    }
                    acc.iter_mut().zip(vrow).for_each(|(a, &x)| *a += x * vs);
                    acc16.convert_from_f32_slice(&acc);
                    acc16.convert_to_f32_slice(&mut acc);
                    s_sum = s_sum * ms + vs;
                }
                let inv = 1.0 / s_sum;
                dst.iter_mut().zip(&acc).for_each(|(d, a)| *d = a * inv);
            }
        });
    out
}
