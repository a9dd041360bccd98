//! The llama-family decoder (Llama 2/3, SmolLM, Mistral-style and Qwen2), written over
//! candle-core so every hot operation stays ours to optimize.
//!
//! Reads top to bottom: config → building blocks → model → `forward`.

use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::{Device, Tensor};

use super::attn::KB;
use crate::kernels::QLinear;
use half::f16;
use half::slice::HalfFloatSliceExt;

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
    /// Attention's arithmetic.
    pub attention: super::attn::Attention,
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
            attention: super::attn::Attention::default(),
        })
    }
}

/// RMS normalization as ggml computes it (sum of squares in f64), then the weight.
struct RmsNorm {
    weight: Vec<f32>,
    eps: f32,
}

impl RmsNorm {
    fn load(file: &GgufFile, name: &str, eps: f64, dev: &Device) -> Result<Self> {
        let weight = file.tensor(name, dev)?.dequantize(dev)?.to_vec1::<f32>()?;
        Ok(Self {
            weight,
            eps: eps as f32,
        })
    }

    /// `x`: rows of the model width.
    fn forward(&self, x: &[f32]) -> Vec<f32> {
        let n = self.weight.len();
        let mut y = vec![0f32; x.len()];
        // Rows in groups across the pool (a prefill's are thousands of values each).
        crate::pool::global().chunks_mut(&mut y, ROWS * n, |i, y| {
            let x = &x[i * ROWS * n..][..y.len()];
            for (xr, yr) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
                let sum: f64 = xr.iter().map(|&v| (v * v) as f64).sum();
                let mean = (sum / n as f64) as f32;
                let scale = 1.0 / (mean + self.eps).sqrt();
                for ((o, &v), &w) in yr.iter_mut().zip(xr).zip(&self.weight) {
                    *o = (v * scale) * w;
                }
            }
        });
        y
    }
}

/// A weight matrix with an optional bias (Qwen2 has biases on q, k and v).
struct Linear {
    weight: QLinear,
    bias: Option<Vec<f32>>,
}

impl Linear {
    fn load(file: &GgufFile, prefix: &str, dev: &Device) -> Result<Self> {
        let weight = QLinear::new(Arc::new(file.tensor(&format!("{prefix}.weight"), dev)?))?;
        let bias_name = format!("{prefix}.bias");
        let bias = if file.has_tensor(&bias_name) {
            Some(
                file.tensor(&bias_name, dev)?
                    .dequantize(dev)?
                    .to_vec1::<f32>()?,
            )
        } else {
            None
        };
        Ok(Self { weight, bias })
    }

    /// `x`: `rows` rows → `rows` rows of the output width.
    fn forward(&self, x: &[f32], rows: usize) -> Result<Vec<f32>> {
        let mut y = self.weight.forward_rows(x, rows)?;
        if let Some(b) = &self.bias {
            crate::pool::global().chunks_mut(&mut y, ROWS * b.len(), |_, part| {
                for row in part.chunks_exact_mut(b.len()) {
                    row.iter_mut().zip(b).for_each(|(v, &b)| *v += b);
                }
            });
        }
        Ok(y)
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

/// The decoder with its KV cache. Activations are plain row-major `f32` buffers from the
/// embedding lookup to the logits: no tensor bookkeeping between the hot operations.
pub struct Llama {
    cfg: Config,
    /// Kept quantized: rows are dequantized on lookup, so the table costs its file size.
    tok_embd: Arc<QTensor>,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QLinear,
    rope: RopeTables,
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
                kv: KvCache::new(cfg.n_kv_head, cfg.head_dim, max_seq),
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
        let rope = RopeTables::new(&cfg, max_seq, freq_factors.as_deref());
        Ok(Self {
            cfg,
            tok_embd,
            layers,
            norm,
            output,
            rope,
            dev: dev.clone(),
        })
    }

    pub fn clear_kv_cache(&mut self) {
        for l in &mut self.layers {
            l.kv.clear();
        }
    }

    /// Keeps the cached keys and values of the first `len` positions only.
    pub fn truncate_kv_cache(&mut self, len: usize) {
        for l in &mut self.layers {
            l.kv.truncate(len);
        }
    }

    /// Runs `tokens` at positions `pos..pos+len` and returns the logits of the last one.
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Tensor> {
        let seq = tokens.len();
        let ids = Tensor::new(tokens, &self.dev)?;
        let mut x = self
            .tok_embd
            .embedding(&ids)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        for layer in &mut self.layers {
            let h = layer.attn_norm.forward(&x);
            let a = attention(&self.cfg, layer, &h, seq, pos, &self.rope)?;
            add_assign(&mut x, &a);
            let h = layer.ffn_norm.forward(&x);
            let mut g = layer.gate.forward(&h, seq)?;
            let u = layer.up.forward(&h, seq)?;
            swiglu(&mut g, &u);
            let d = layer.down.forward(&g, seq)?;
            add_assign(&mut x, &d);
        }
        let last = &x[(seq - 1) * self.cfg.n_embd..];
        let last = self.norm.forward(last);
        let logits = self.output.forward_rows(&last, 1)?;
        let n = logits.len();
        Ok(Tensor::from_vec(logits, n, &self.dev)?)
    }
}

/// SwiGLU in place, `silu(gate) × up`, across the pool (a prefill takes millions of
/// exponentials per layer).
fn swiglu(g: &mut [f32], u: &[f32]) {
    const CHUNK: usize = 8 * 1024;
    crate::pool::global().chunks_mut(g, CHUNK, |i, g| {
        let u = &u[i * CHUNK..][..g.len()];
        #[cfg(target_arch = "x86_64")]
        if crate::kernels::simd_enabled() {
            // SAFETY: the CPU has AVX2, FMA and F16C (checked by `simd_enabled`).
            unsafe { crate::kernels::vexp::swiglu(g, u) };
            return;
        }
        g.iter_mut()
            .zip(u)
            .for_each(|(g, &u)| *g = crate::kernels::swiglu1(*g, u));
    });
}

fn add_assign(x: &mut [f32], y: &[f32]) {
    const CHUNK: usize = 16 * 1024;
    crate::pool::global().chunks_mut(x, CHUNK, |i, x| {
        x.iter_mut()
            .zip(&y[i * CHUNK..])
            .for_each(|(a, &b)| *a += b);
    });
}

/// Rows per pool task for the element-wise steps between products (residual adds, biases,
/// RoPE, RMSNorm): a prefill's rows would otherwise go one thread at a time.
const ROWS: usize = 16;

/// `x`: `[seq][embd]` (normalized) → the attention block's output, `[seq][embd]`.
fn attention(
    cfg: &Config,
    layer: &mut Layer,
    x: &[f32],
    seq: usize,
    pos: usize,
    rope: &RopeTables,
) -> Result<Vec<f32>> {
    let mut q = layer.q.forward(x, seq)?; // [seq][n_head][hd]
    let mut k = layer.k.forward(x, seq)?; // [seq][n_kv][hd]
    let v = layer.v.forward(x, seq)?;
    rope.apply(cfg, &mut q, cfg.n_head, pos);
    rope.apply(cfg, &mut k, cfg.n_kv_head, pos);
    // K and V are cached in f16 as in llama.cpp; attention's arithmetic is `cfg.attention`.
    let start = layer.kv.len();
    debug_assert_eq!(start, pos, "KV cache out of step");
    layer.kv.append(&k, &v);
    let y = flash_attention(cfg, &q, seq, start, &layer.kv);
    layer.o.forward(&y, seq)
}

/// Rotary-embedding tables, `[max_seq][head_dim / 2]`, computed as ggml does (angle
/// advanced by repeated f32 multiplication), so positions rotate exactly as in llama.cpp.
struct RopeTables {
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl RopeTables {
    fn new(cfg: &Config, max_seq: usize, freq_factors: Option<&[f32]>) -> Self {
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
        Self { cos, sin }
    }

    /// Rotates each head of each row of `x` in place; row `i` sits at position `pos + i`.
    fn apply(&self, cfg: &Config, x: &mut [f32], n_heads: usize, pos: usize) {
        let hd = cfg.head_dim;
        let half = hd / 2;
        let width = n_heads * hd;
        crate::pool::global().chunks_mut(x, ROWS * width, |t, part| {
            for (j, row) in part.chunks_exact_mut(width).enumerate() {
                let i = t * ROWS + j;
                let c = &self.cos[(pos + i) * half..][..half];
                let s = &self.sin[(pos + i) * half..][..half];
                for head in row.chunks_exact_mut(hd) {
                    for k in 0..half {
                        // NEOX pairs element k with k + half; the original layout pairs
                        // neighbours.
                        let (a, b) = if cfg.rope_neox {
                            (k, k + half)
                        } else {
                            (2 * k, 2 * k + 1)
                        };
                        let (x0, x1) = (head[a], head[b]);
                        head[a] = x0 * c[k] - x1 * s[k];
                        head[b] = x0 * s[k] + x1 * c[k];
                    }
                }
            }
        });
    }
}

/// One layer's keys and values in f16, in blocks of [`KB`] positions (see
/// [`super::attn`]): K transposed within each block (`[block][kv_head][dim][position]`) so
/// that attention scores many keys per load, V position-major
/// (`[block][kv_head][position][dim]`). Blocks are added as tokens arrive, capacity
/// doubling up to the context window, so memory follows the sequence actually used and a
/// new block never moves the old ones' layout.
struct KvCache {
    k: Vec<f16>,
    v: Vec<f16>,
    len: usize,
    n_kv: usize,
    hd: usize,
    /// The context window: capacity never grows past it.
    max: usize,
}

impl KvCache {
    fn new(n_kv: usize, hd: usize, max: usize) -> Self {
        Self {
            k: Vec::new(),
            v: Vec::new(),
            len: 0,
            n_kv,
            hd,
            max,
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    /// Halves per block, for K and for V alike.
    fn block_len(&self) -> usize {
        self.n_kv * self.hd * KB
    }

    fn clear(&mut self) {
        self.len = 0;
    }

    /// Keeps the first `len` positions (the rest are overwritten by the next append).
    fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// `k`, `v`: `[seq][n_kv][hd]`, K after RoPE.
    fn append(&mut self, k: &[f32], v: &[f32]) {
        let (n_kv, hd) = (self.n_kv, self.hd);
        let width = n_kv * hd;
        let seq = k.len() / width;
        let bl = self.block_len();
        let need = (self.len + seq).div_ceil(KB) * bl;
        if need > self.k.len() {
            if need > self.k.capacity() {
                let cap = (2 * self.k.capacity())
                    .min(self.max.div_ceil(KB) * bl)
                    .max(need);
                self.k.reserve_exact(cap - self.k.len());
                self.v.reserve_exact(cap - self.v.len());
            }
            self.k.resize(need, f16::ZERO);
            self.v.resize(need, f16::ZERO);
        }
        // Blocks touched by the new positions, one (block, KV head) per pool task.
        let first = self.len / KB;
        let len = self.len;
        let per = KB * hd;
        // A decode's one position is not worth a pool run.
        let each = |data: &mut [f16], f: &(dyn Fn(usize, &mut [f16]) + Sync)| {
            if seq < ROWS {
                data.chunks_mut(per).enumerate().for_each(|(t, c)| f(t, c));
            } else {
                crate::pool::global().chunks_mut(data, per, f);
            }
        };
        // Task `t`'s KV head, and the new positions its block holds.
        let span = |t: usize| {
            let b = first + t / n_kv;
            (t % n_kv, (b * KB).max(len)..((b + 1) * KB).min(len + seq))
        };
        each(&mut self.k[first * bl..need], &|t, kb| {
            let (h, positions) = span(t);
            for p in positions {
                let row = &k[(p - len) * width + h * hd..][..hd];
                for (d, &x) in row.iter().enumerate() {
                    kb[d * KB + p % KB] = f16::from_f32(x);
                }
            }
        });
        each(&mut self.v[first * bl..need], &|t, vb| {
            let (h, positions) = span(t);
            for p in positions {
                let row = &v[(p - len) * width + h * hd..][..hd];
                vb[(p % KB) * hd..][..hd].convert_from_f32_slice(row);
            }
        });
        self.len += seq;
    }
}

/// Causal attention over the f16 cache, Q rounded to f16 as llama.cpp does, in
/// `cfg.attention`'s arithmetic (see [`super::attn`]). `q` is `[seq][n_head][hd]`; query `i`
/// sits at position `pos + i` and sees keys
/// `0..=pos + i`. Returns `[seq][n_head][hd]`.
///
/// A prefill task takes a block of query rows for every query head that shares one KV
/// head, so each cache block is read once for all of them (see [`super::attn`]).
fn flash_attention(cfg: &Config, q: &[f32], seq: usize, pos: usize, kv: &KvCache) -> Vec<f32> {
    let hd = cfg.head_dim;
    let n_kv = cfg.n_kv_head;
    let n_head = cfg.n_head;
    let n_rep = n_head / n_kv;
    let total = kv.len();
    let scale = 1.0 / (hd as f32).sqrt();
    // Tasks: a group of heads and a block of query rows, the later (longer) blocks handed
    // out first so that the causal triangle's work spreads evenly. A few rows (decode)
    // take one head per task, so that the pool still has a task per head to share out.
    let block = seq.min(ROW_BLOCK);
    let n_blocks = seq.div_ceil(block);
    let hpt = if n_blocks >= 4 { n_rep } else { 1 };
    let n_groups = n_head / hpt;
    let task = hpt * block * hd;
    let mut out = vec![0f32; n_groups * n_blocks * task];
    crate::pool::global().chunks_mut(&mut out, task, |t, out_t| {
        let (g, b) = (t % n_groups, n_blocks - 1 - t / n_groups);
        let head = super::attn::HeadKv::new(&kv.k, &kv.v, n_kv, g * hpt / n_rep, hd);
        let rows = b * block..((b + 1) * block).min(seq);
        let nq = hpt * rows.len();
        // Queries `[head in group][row][hd]`, rounded to f16.
        let mut qs = Vec::with_capacity(nq * hd);
        let mut ns = Vec::with_capacity(nq);
        for hh in 0..hpt {
            let h = g * hpt + hh;
            for i in rows.clone() {
                let src = &q[(i * n_head + h) * hd..][..hd];
                qs.extend(src.iter().map(|&x| f16::from_f32(x).to_f32()));
                ns.push((pos + i + 1).min(total));
            }
        }
        // A short last block's results are packed at the front of its part.
        super::attn::attend(&head, &qs, &ns, scale, &mut out_t[..nq * hd], cfg.attention);
    });
    // Back to `[seq][n_head][hd]`, a row group per pool task.
    let mut y = vec![0f32; seq * n_head * hd];
    crate::pool::global().chunks_mut(&mut y, ROWS * n_head * hd, |gr, part| {
        for (j, row) in part.chunks_exact_mut(n_head * hd).enumerate() {
            let i = gr * ROWS + j;
            let (b, r) = (i / block, i % block);
            let rows_b = block.min(seq - b * block);
            for (h, dst) in row.chunks_exact_mut(hd).enumerate() {
                let (g, hh) = (h / hpt, h % hpt);
                let t = (n_blocks - 1 - b) * n_groups + g;
                dst.copy_from_slice(&out[t * task + (hh * rows_b + r) * hd..][..hd]);
            }
        }
    });
    y
}

/// Query rows per attention task.
const ROW_BLOCK: usize = 16;

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache holds every appended position where attention reads it, across block
    /// edges, appends of one and of many positions (serial and pooled), and a truncation
    /// (a shared prompt prefix) followed by new positions over the old ones.
    #[test]
    fn the_kv_cache_keeps_each_position_in_its_block() {
        let (n_kv, hd) = (3, 8);
        let width = n_kv * hd;
        let mut cache = KvCache::new(n_kv, hd, 4 * KB);
        // What each position should hold: K and V rows, `[n_kv][hd]`.
        let mut want: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
        let mut next = 0f32;
        let mut rows = |n: usize| -> (Vec<f32>, Vec<f32>) {
            // Distinct small integers: exact in f16.
            let mut val = || {
                next = (next + 1.0) % 2039.0;
                next
            };
            let k = (0..n * width).map(|_| val()).collect();
            let v = (0..n * width).map(|_| -val()).collect();
            (k, v)
        };
        for step in [
            ("append", 1),
            ("append", 63),
            ("append", 1),
            ("append", 70),
            ("truncate", 50),
            ("append", 30),
            ("append", 1),
            ("append", 100),
        ] {
            match step {
                ("truncate", n) => {
                    cache.truncate(n);
                    want.truncate(n);
                }
                (_, n) => {
                    let (k, v) = rows(n);
                    cache.append(&k, &v);
                    for i in 0..n {
                        want.push((
                            k[i * width..][..width].to_vec(),
                            v[i * width..][..width].to_vec(),
                        ));
                    }
                }
            }
            assert_eq!(cache.len(), want.len());
            for kvh in 0..n_kv {
                let head = super::super::attn::HeadKv::new(&cache.k, &cache.v, n_kv, kvh, hd);
                for (p, (k, v)) in want.iter().enumerate() {
                    for d in 0..hd {
                        let got_k = head.key(p, d).to_f32();
                        let got_v = head.value(p, d).to_f32();
                        assert_eq!(
                            got_k,
                            f16::from_f32(k[kvh * hd + d]).to_f32(),
                            "K {p} {kvh} {d}"
                        );
                        assert_eq!(
                            got_v,
                            f16::from_f32(v[kvh * hd + d]).to_f32(),
                            "V {p} {kvh} {d}"
                        );
                    }
                }
            }
        }
    }
}
