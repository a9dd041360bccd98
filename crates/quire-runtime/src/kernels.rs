//! Quantized matrix multiplication: activations are quantized exactly as llama.cpp's x86
//! kernels do (scale `127/amax`, round half to even, block sums from the f32 scale), then
//! dotted with the GGUF weight blocks. Owning this step keeps greedy output on llama.cpp's
//! path and is where faster kernels plug in.

use std::sync::Arc;

use candle_core::quantized::k_quants::{
    BlockQ2K, BlockQ3K, BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5K, BlockQ5_0, BlockQ5_1, BlockQ6K,
    BlockQ8K, BlockQ8_0, BlockQ8_1,
};
use candle_core::quantized::{GgmlDType, GgmlType, QMatMul, QTensor};
use candle_core::{Module, Tensor};
use half::f16;

use crate::error::Result;

#[cfg(target_arch = "x86_64")]
pub(crate) mod quant;
#[cfg(target_arch = "x86_64")]
pub(crate) mod vexp;
#[cfg(target_arch = "x86_64")]
mod x86;

/// Whether the SIMD kernels are on: an x86-64 CPU with AVX2, FMA and F16C, unless
/// `QUIRE_KERNELS=portable` turns them off.
pub(crate) fn simd_enabled() -> bool {
    #[cfg(target_arch = "x86_64")]
    return x86::level().is_some();
    #[cfg(not(target_arch = "x86_64"))]
    return false;
}

/// One element of SwiGLU, `silu(g) × u`, in the order every path computes it.
#[inline(always)]
pub(crate) fn swiglu1(g: f32, u: f32) -> f32 {
    g / (1.0 + (-g).exp()) * u
}

const QK8: usize = 32;
const QK_K: usize = 256;

// Mirrors of candle's activation block layouts (their fields are crate-private).
#[repr(C)]
#[derive(Clone)]
pub(crate) struct Q8_0 {
    d: f16,
    qs: [i8; QK8],
}
#[repr(C)]
#[derive(Clone)]
pub(crate) struct Q8_1 {
    d: f16,
    s: f16,
    qs: [i8; QK8],
}
#[repr(C)]
#[derive(Clone)]
pub(crate) struct Q8K {
    pub(crate) d: f32,
    pub(crate) qs: [i8; QK_K],
    pub(crate) bsums: [i16; QK_K / 16],
}
impl Q8K {
    /// The block of an all-zero input: scale 0, no quants.
    pub(crate) const ZERO: Self = Self {
        d: 0.0,
        qs: [0; QK_K],
        bsums: [0; QK_K / 16],
    };
}
const _: () = assert!(std::mem::size_of::<Q8_0>() == std::mem::size_of::<BlockQ8_0>());
const _: () = assert!(std::mem::size_of::<Q8_1>() == std::mem::size_of::<BlockQ8_1>());
const _: () = assert!(std::mem::size_of::<Q8K>() == std::mem::size_of::<BlockQ8K>());
const _: () = assert!(std::mem::align_of::<Q8_0>() == std::mem::align_of::<BlockQ8_0>());
const _: () = assert!(std::mem::align_of::<Q8_1>() == std::mem::align_of::<BlockQ8_1>());
const _: () = assert!(std::mem::align_of::<Q8K>() == std::mem::align_of::<BlockQ8K>());

/// Activation quantization with llama.cpp's rounding, into candle's block type `Self`.
pub trait ActivationBlock: GgmlType + Sync {
    fn quantize(xs: &[f32]) -> Vec<Self>;
}

/// Round half to even, as `_mm256_round_ps(_MM_ROUND_NEAREST)` and `nearest_int` do.
#[inline]
fn round_even(x: f32) -> f32 {
    x.round_ties_even()
}

/// One 32-value block quantized to 8 bits: scale `d`, the values, and their sum.
fn q8_block(block: &[f32]) -> (f32, [i8; QK8], i32) {
    let amax = block.iter().fold(0f32, |m, x| m.max(x.abs()));
    let d = amax / 127.0;
    let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
    let mut qs = [0i8; QK8];
    let mut sum = 0i32;
    for (q, &x) in qs.iter_mut().zip(block) {
        *q = round_even(x * id) as i8;
        sum += *q as i32;
    }
    (d, qs, sum)
}

/// [`q8_block`] for each block of `xs`, eight lanes at a time where the CPU allows.
fn q8_blocks(xs: &[f32]) -> impl Iterator<Item = (f32, [i8; QK8], i32)> + '_ {
    #[cfg(target_arch = "x86_64")]
    let simd = simd_enabled();
    xs.chunks_exact(QK8).map(move |b| {
        #[cfg(target_arch = "x86_64")]
        if simd {
            // SAFETY: `simd_enabled` checked AVX2; the chunk holds 32 values.
            return unsafe { quant::q8_block(b) };
        }
        q8_block(b)
    })
}

fn quantize_q8_0(xs: &[f32]) -> Vec<Q8_0> {
    q8_blocks(xs)
        .map(|(d, qs, _)| Q8_0 {
            d: f16::from_f32(d),
            qs,
        })
        .collect()
}

fn quantize_q8_1(xs: &[f32]) -> Vec<Q8_1> {
    q8_blocks(xs)
        .map(|(d, qs, sum)| {
            // The sum is scaled in f32 before rounding to f16, as llama.cpp does.
            Q8_1 {
                d: f16::from_f32(d),
                s: f16::from_f32(d * sum as f32),
                qs,
            }
        })
        .collect()
}

impl ActivationBlock for BlockQ8_0 {
    fn quantize(xs: &[f32]) -> Vec<Self> {
        // SAFETY: Q8_0 has BlockQ8_0's size, alignment and field layout (asserted above).
        unsafe { transmute_vec(quantize_q8_0(xs)) }
    }
}

impl ActivationBlock for BlockQ8_1 {
    fn quantize(xs: &[f32]) -> Vec<Self> {
        // SAFETY: as above, for Q8_1.
        unsafe { transmute_vec(quantize_q8_1(xs)) }
    }
}

/// Our activation blocks, with their scales widened to f32 once per matrix product.
#[cfg(target_arch = "x86_64")]
pub(crate) trait TileAct: Sized + Sync {
    fn quantize(xs: &[f32]) -> Vec<Self>;
    /// `d` per block, and `s` per block where the type has it.
    fn scales(blocks: &[Self]) -> (Vec<f32>, Vec<f32>);
    /// Pieces of 32 quants per block.
    const PIECES: usize = 1;
    /// Writes the quants biased to unsigned (`q + 128`), `PIECES` per block, for the VNNI
    /// tiles of signed weights. Only the types such tiles read implement it.
    fn bias_into(_blocks: &[Self], _out: &mut [[u8; QK8]]) {
        unimplemented!("no tile reads these activations biased")
    }
}

#[cfg(target_arch = "x86_64")]
impl TileAct for Q8_0 {
    fn quantize(xs: &[f32]) -> Vec<Self> {
        quantize_q8_0(xs)
    }
    fn scales(blocks: &[Self]) -> (Vec<f32>, Vec<f32>) {
        (blocks.iter().map(|b| b.d.to_f32()).collect(), Vec::new())
    }
    fn bias_into(blocks: &[Self], out: &mut [[u8; QK8]]) {
        for (o, b) in out.iter_mut().zip(blocks) {
            *o = b.qs.map(|q| (q as u8) ^ 0x80);
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl TileAct for Q8_1 {
    fn quantize(xs: &[f32]) -> Vec<Self> {
        quantize_q8_1(xs)
    }
    fn scales(blocks: &[Self]) -> (Vec<f32>, Vec<f32>) {
        (
            blocks.iter().map(|b| b.d.to_f32()).collect(),
            blocks.iter().map(|b| b.s.to_f32()).collect(),
        )
    }
}

/// Activations to Q8_K as llama.cpp's `quantize_row_q8_K` does: the scale from the
/// signed value of largest magnitude, and sums of each 16 quants.
pub(crate) fn quantize_q8k(xs: &[f32]) -> Vec<Q8K> {
    #[cfg(target_arch = "x86_64")]
    let simd = simd_enabled();
    xs.chunks_exact(QK_K)
        .map(|b| {
            #[cfg(target_arch = "x86_64")]
            if simd {
                // SAFETY: `simd_enabled` checked AVX2; the chunk holds 256 values.
                return unsafe { quant::q8k_block(b) };
            }
            q8k_block(b)
        })
        .collect()
}

/// One block of 256 to Q8_K, as llama.cpp's `quantize_row_q8_K` does it.
fn q8k_block(b: &[f32]) -> Q8K {
    let mut max = 0f32;
    let mut amax = 0f32;
    for &x in b {
        if x.abs() > amax {
            amax = x.abs();
            max = x;
        }
    }
    let mut out = Q8K::ZERO;
    if amax == 0.0 {
        return out;
    }
    let iscale = -127.0 / max;
    for (q, &x) in out.qs.iter_mut().zip(b) {
        *q = round_even(iscale * x).min(127.0) as i8;
    }
    for (j, s) in out.bsums.iter_mut().enumerate() {
        *s = out.qs[j * 16..(j + 1) * 16].iter().map(|&q| q as i16).sum();
    }
    out.d = 1.0 / iscale;
    out
}

impl ActivationBlock for BlockQ8K {
    fn quantize(xs: &[f32]) -> Vec<Self> {
        // SAFETY: as above, for Q8K.
        unsafe { transmute_vec(quantize_q8k(xs)) }
    }
}

#[cfg(target_arch = "x86_64")]
impl TileAct for Q8K {
    fn quantize(xs: &[f32]) -> Vec<Self> {
        quantize_q8k(xs)
    }
    fn scales(blocks: &[Self]) -> (Vec<f32>, Vec<f32>) {
        (blocks.iter().map(|b| b.d).collect(), Vec::new())
    }
    const PIECES: usize = QK_K / QK8;
    fn bias_into(blocks: &[Self], out: &mut [[u8; QK8]]) {
        let pieces = blocks.iter().flat_map(|b| b.qs.chunks_exact(QK8));
        for (o, c) in out.iter_mut().zip(pieces) {
            *o = std::array::from_fn(|k| (c[k] as u8) ^ 0x80);
        }
    }
}

/// SAFETY: `A` and `B` must have identical size, alignment and field layout.
unsafe fn transmute_vec<A, B>(v: Vec<A>) -> Vec<B> {
    let mut v = std::mem::ManuallyDrop::new(v);
    Vec::from_raw_parts(v.as_mut_ptr() as *mut B, v.len(), v.capacity())
}

/// A weight matrix `[out, in]` applied as `x @ W^T`.
pub struct QLinear {
    w: Arc<QTensor>,
    out: usize,
    inp: usize,
    /// Types our driver does not handle (f32/f16 weights, i-quants) go through candle.
    fallback: Option<QMatMul>,
}

impl QLinear {
    pub fn new(w: Arc<QTensor>) -> Result<Self> {
        let (out, inp) = w.shape().dims2()?;
        let ours = matches!(
            w.dtype(),
            GgmlDType::Q4_0
                | GgmlDType::Q4_1
                | GgmlDType::Q5_0
                | GgmlDType::Q5_1
                | GgmlDType::Q8_0
                | GgmlDType::Q2K
                | GgmlDType::Q3K
                | GgmlDType::Q4K
                | GgmlDType::Q5K
                | GgmlDType::Q6K
        ) && inp % w.dtype().block_size() == 0;
        let fallback = if ours {
            None
        } else {
            Some(QMatMul::from_arc(w.clone())?)
        };
        Ok(Self {
            w,
            out,
            inp,
            fallback,
        })
    }

    /// `x`: `[..., in]` f32 → `[..., out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let inp = dims.pop().unwrap_or(0);
        assert_eq!(inp, self.inp, "QLinear input width");
        let rows: usize = dims.iter().product();
        let ys = self.forward_rows(&x.flatten_all()?.to_vec1::<f32>()?, rows)?;
        dims.push(self.out);
        Ok(Tensor::from_vec(ys, dims, x.device())?)
    }

    /// `xs`: `rows` rows of the input width, row-major → `rows` rows of the output width.
    pub fn forward_rows(&self, xs: &[f32], rows: usize) -> Result<Vec<f32>> {
        assert_eq!(xs.len(), rows * self.inp, "QLinear input size");
        if let Some(f) = &self.fallback {
            let x = Tensor::from_slice(xs, (rows, self.inp), &candle_core::Device::Cpu)?;
            return Ok(f.forward(&x)?.flatten_all()?.to_vec1::<f32>()?);
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(level) = x86::level() {
            match self.w.dtype() {
                GgmlDType::Q4_0 => return self.run_tiled::<x86::Q4_0W>(level, xs, rows),
                GgmlDType::Q4_1 => return self.run_tiled::<x86::Q4_1W>(level, xs, rows),
                GgmlDType::Q5_0 => return self.run_tiled::<x86::Q5_0W>(level, xs, rows),
                GgmlDType::Q8_0 => return self.run_tiled::<Q8_0>(level, xs, rows),
                GgmlDType::Q4K => return self.run_tiled::<x86::Q4KW>(level, xs, rows),
                GgmlDType::Q6K => return self.run_tiled::<x86::Q6KW>(level, xs, rows),
                _ => {}
            }
        }
        let ys = match self.w.dtype() {
            GgmlDType::Q4_0 => self.run::<BlockQ4_0>(xs, rows)?,
            GgmlDType::Q4_1 => self.run::<BlockQ4_1>(xs, rows)?,
            GgmlDType::Q5_0 => self.run::<BlockQ5_0>(xs, rows)?,
            GgmlDType::Q5_1 => self.run::<BlockQ5_1>(xs, rows)?,
            GgmlDType::Q8_0 => self.run::<BlockQ8_0>(xs, rows)?,
            GgmlDType::Q2K => self.run::<BlockQ2K>(xs, rows)?,
            GgmlDType::Q3K => self.run::<BlockQ3K>(xs, rows)?,
            GgmlDType::Q4K => self.run::<BlockQ4K>(xs, rows)?,
            GgmlDType::Q5K => self.run::<BlockQ5K>(xs, rows)?,
            GgmlDType::Q6K => self.run::<BlockQ6K>(xs, rows)?,
            other => unreachable!("{other:?} weights take the fallback path"),
        };
        Ok(ys)
    }

    /// The x86 path for the block types with a tile: register tiles of 2 weight rows by 8
    /// token rows where the type has one (Q4_0, Q4_1, Q5_0, Q8_0 with VNNI), else one
    /// weight row by `R` token rows, so every weight block is unpacked once per `R` tokens;
    /// over blocks of `ROW_TILE` token rows whose quantized activations (20–30 KB for the
    /// reference models) stay in L1 while the task's weight rows pass over them.
    #[cfg(target_arch = "x86_64")]
    fn run_tiled<W>(&self, level: x86::Level, xs: &[f32], rows: usize) -> Result<Vec<f32>>
    where
        W: x86::Tile,
        W::Act: TileAct + Send,
    {
        let data = self.w.data()?;
        let n_blocks = self.inp / W::VALUES;
        // SAFETY: candle's CPU storage for this dtype is a Vec of its block type, which `W`
        // mirrors (asserted in x86.rs).
        let weights: &[W] = unsafe { blocks_of(&data, n_blocks * self.out) };
        let blocks = quantize_rows::<W::Act>(xs, rows);
        let (d, s) = W::Act::scales(&blocks);
        let acts = x86::Acts::new::<W>(&blocks, &d, &s, n_blocks, level);

        const ROW_TILE: usize = 32;
        Ok(by_features(self.out, rows, |first, dst| {
            let w = &weights[first * n_blocks..(first + dst.len() / rows) * n_blocks];
            for r0 in (0..rows).step_by(ROW_TILE) {
                let r1 = (r0 + ROW_TILE).min(rows);
                // SAFETY: `level` came from detection; rows r0..r1 are in `acts`, and `dst`
                // holds this task's features, `rows` apart.
                unsafe { x86::dot_block(level, w, n_blocks, &acts, r0..r1, dst, rows) };
            }
        }))
    }

    fn run<W>(&self, xs: &[f32], rows: usize) -> Result<Vec<f32>>
    where
        W: GgmlType + Sync,
        W::VecDotType: ActivationBlock,
    {
        let data = self.w.data()?;
        let n_blocks = self.inp / W::BLCK_SIZE;
        // SAFETY: candle's CPU storage for this dtype is a Vec<W>.
        let weights: &[W] = unsafe { blocks_of(&data, n_blocks * self.out) };

        let acts: Vec<W::VecDotType> = W::VecDotType::quantize(xs);
        let act_blocks = self.inp / W::VecDotType::BLCK_SIZE;
        let n = self.inp;

        Ok(by_features(self.out, rows, |first, dst| {
            for (c, dst_col) in dst.chunks_mut(rows).enumerate() {
                let o = first + c;
                let w_row = &weights[o * n_blocks..(o + 1) * n_blocks];
                for (r, y) in dst_col.iter_mut().enumerate() {
                    let a_row = &acts[r * act_blocks..(r + 1) * act_blocks];
                    *y = W::vec_dot(n, w_row, a_row);
                }
            }
        }))
    }
}

/// Quantizes `rows` activation rows, groups of rows across the pool.
#[cfg(target_arch = "x86_64")]
fn quantize_rows<A: TileAct + Send>(xs: &[f32], rows: usize) -> Vec<A> {
    const GROUP: usize = 32;
    if rows <= GROUP {
        return A::quantize(xs);
    }
    let width = xs.len() / rows;
    let parts: Vec<std::sync::Mutex<Vec<A>>> = (0..rows.div_ceil(GROUP))
        .map(|_| std::sync::Mutex::new(Vec::new()))
        .collect();
    crate::pool::global().run(parts.len(), &|t| {
        let r1 = ((t + 1) * GROUP).min(rows);
        let q = A::quantize(&xs[t * GROUP * width..r1 * width]);
        *parts[t].lock().unwrap_or_else(|e| e.into_inner()) = q;
    });
    parts
        .into_iter()
        .flat_map(|p| p.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// Runs a product as pool tasks that each own a run of output features and compute them
/// for every row (so a weight row is read once per task however many tokens are in the
/// batch): `compute(first_feature, dst)` fills `dst` feature-major (`[feature][row]`), and
/// the task itself copies it into the `[rows][out]` result while it is still in cache.
fn by_features(out: usize, rows: usize, compute: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let pool = crate::pool::global();
    let cols = task_cols(out, rows, pool.threads());
    if rows == 1 {
        let mut ys = vec![0f32; out];
        pool.chunks_mut(&mut ys, cols, |chunk, dst| compute(chunk * cols, dst));
        return ys;
    }
    // Every element is written by exactly one task below, so the result starts
    // uninitialized: zeroing its megabytes first was a serial step of every product.
    let mut ys: Vec<std::mem::MaybeUninit<f32>> = Vec::with_capacity(out * rows);
    // SAFETY: `MaybeUninit` needs no initialization.
    unsafe { ys.set_len(out * rows) };
    thread_local! {
        /// A task's feature-major block, reused from product to product.
        static BLOCK: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let target = Scatter(ys.as_mut_ptr() as *mut f32);
    #[cfg(target_arch = "x86_64")]
    let simd = simd_enabled();
    pool.run(out.div_ceil(cols), &|task| {
        let first = task * cols;
        let n = cols.min(out - first);
        BLOCK.with_borrow_mut(|block| {
            block.resize(n * rows, 0.0);
            compute(first, block);
            #[cfg(target_arch = "x86_64")]
            if simd {
                // SAFETY: AVX2 checked; this task alone owns features first..first + n of
                // every row, and `ys` outlives the pool run.
                unsafe { x86::scatter(block, n, rows, target.at(first), out) };
                return;
            }
            for r in 0..rows {
                for c in 0..n {
                    // SAFETY: this task alone owns features first..first + n of every row,
                    // and `ys` outlives the pool run.
                    unsafe { *target.at(r * out + first + c) = block[c * rows + r] };
                }
            }
        });
    });
    // SAFETY: the tasks have written all `out × rows` elements (task t owns features
    // t·cols.. of every row, and the tasks cover 0..out); f32 has MaybeUninit<f32>'s layout.
    let mut ys = std::mem::ManuallyDrop::new(ys);
    unsafe { Vec::from_raw_parts(ys.as_mut_ptr() as *mut f32, ys.len(), ys.capacity()) }
}

/// The result of a product, written by many tasks at disjoint indices.
struct Scatter(*mut f32);
// SAFETY: tasks write disjoint elements (each owns a run of features).
unsafe impl Sync for Scatter {}

impl Scatter {
    fn at(&self, i: usize) -> *mut f32 {
        // SAFETY: callers index within the buffer this was made from.
        unsafe { self.0.add(i) }
    }
}

/// `data` as `total` blocks of `W`, after checking its length and alignment.
///
/// # Safety
/// `data` must hold values of type `W` (candle's storage of the block type `W` mirrors).
unsafe fn blocks_of<W>(data: &[u8], total: usize) -> &[W] {
    assert_eq!(data.len(), total * std::mem::size_of::<W>(), "weight size");
    assert_eq!(
        data.as_ptr() as usize % std::mem::align_of::<W>(),
        0,
        "weight alignment"
    );
    std::slice::from_raw_parts(data.as_ptr() as *const W, total)
}

/// Output features per task. A prefill task takes 16 (its weights stay in L1 while it
/// walks the tokens); a decode step, a few microseconds of work per thread, is cut into
/// four tasks per thread, each a whole number of cache lines of output, so the threads
/// neither queue on the task counter nor write to each other's cache lines.
fn task_cols(out: usize, rows: usize, threads: usize) -> usize {
    if rows > 1 || threads <= 1 {
        return 16;
    }
    (out.div_ceil(4 * threads).div_ceil(16) * 16).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// A reproducible pseudo-random value in [-0.5, 0.5).
    pub(crate) fn lcg(seed: &mut u64) -> f32 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5
    }

    /// The portable path (candle's block dot products) for `dtype`.
    fn portable(q: &QLinear, xs: &[f32], rows: usize) -> Vec<f32> {
        match q.w.dtype() {
            GgmlDType::Q4_0 => q.run::<BlockQ4_0>(xs, rows),
            GgmlDType::Q4_1 => q.run::<BlockQ4_1>(xs, rows),
            GgmlDType::Q5_0 => q.run::<BlockQ5_0>(xs, rows),
            GgmlDType::Q5_1 => q.run::<BlockQ5_1>(xs, rows),
            GgmlDType::Q8_0 => q.run::<BlockQ8_0>(xs, rows),
            GgmlDType::Q2K => q.run::<BlockQ2K>(xs, rows),
            GgmlDType::Q3K => q.run::<BlockQ3K>(xs, rows),
            GgmlDType::Q4K => q.run::<BlockQ4K>(xs, rows),
            GgmlDType::Q5K => q.run::<BlockQ5K>(xs, rows),
            GgmlDType::Q6K => q.run::<BlockQ6K>(xs, rows),
            other => panic!("{other:?}"),
        }
        .unwrap()
    }

    /// Every weight type, on the path this CPU takes and on the portable one, against
    /// dequantize-then-matmul, on odd shapes (row counts that leave partial tiles, inputs of
    /// an odd number of blocks).
    #[test]
    fn qlinear_matches_dequantized_matmul() {
        let dev = Device::Cpu;
        let mut seed = 7u64;
        for dtype in [
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q5_1,
            GgmlDType::Q8_0,
            GgmlDType::Q2K,
            GgmlDType::Q3K,
            GgmlDType::Q4K,
            GgmlDType::Q5K,
            GgmlDType::Q6K,
        ] {
            let widths: &[usize] = if dtype.block_size() == QK8 {
                &[96, 512]
            } else {
                &[512]
            };
            for &inp in widths {
                for (out, rows) in [(1, 1), (7, 3), (33, 5), (17, 1), (19, 67), (9, 45)] {
                    let w: Vec<f32> = (0..out * inp).map(|_| lcg(&mut seed)).collect();
                    let x: Vec<f32> = (0..rows * inp).map(|_| lcg(&mut seed)).collect();
                    let wt = Tensor::from_vec(w, (out, inp), &dev).unwrap();
                    let xt = Tensor::from_vec(x.clone(), (rows, inp), &dev).unwrap();
                    let q = Arc::new(QTensor::quantize(&wt, dtype).unwrap());
                    let reference = xt
                        .matmul(&q.dequantize(&dev).unwrap().t().unwrap())
                        .unwrap()
                        .flatten_all()
                        .unwrap()
                        .to_vec1::<f32>()
                        .unwrap();
                    let lin = QLinear::new(q).unwrap();
                    let got = lin.forward(&xt).unwrap();
                    assert_eq!(got.dims(), &[rows, out]);
                    let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                    let slow = portable(&lin, &x, rows);
                    let scale = reference.iter().fold(1f32, |m, v| m.max(v.abs()));
                    for (path, ys) in [("detected", &got), ("portable", &slow)] {
                        let diff = ys
                            .iter()
                            .zip(&reference)
                            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                        // Only the activation quantization separates them (8-bit: < 2% of range).
                        assert!(
                            diff <= 0.02 * scale,
                            "{dtype:?} {path} {out}x{inp}x{rows}: {diff} vs {scale}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn q8_1_sum_uses_the_f32_scale() {
        let xs: Vec<f32> = (0..32).map(|i| i as f32 * 0.37 - 3.0).collect();
        let b = <BlockQ8_1 as ActivationBlock>::quantize(&xs);
        // SAFETY: reading our own mirror layout back.
        let m: Vec<Q8_1> = unsafe { transmute_vec(b) };
        let d = 8.47f32 / 127.0;
        let sum: i32 = m[0].qs.iter().map(|&q| q as i32).sum();
        assert_eq!(m[0].s, f16::from_f32(d * sum as f32));
    }

    #[test]
    fn rounding_is_half_to_even() {
        assert_eq!(round_even(2.5), 2.0);
        assert_eq!(round_even(-3.5), -4.0);
        assert_eq!(round_even(1.4999), 1.0);
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use candle_core::{Device, Tensor};

    /// Not a test: `cargo test --release -p quire-runtime --lib speed -- --ignored --nocapture`
    /// prints the product's throughput on the reference models' shapes.
    #[test]
    #[ignore]
    fn product_throughput() {
        let mut seed = 3u64;
        for (dtype, out, inp) in [
            (GgmlDType::Q5_0, 896, 896),
            (GgmlDType::Q5_0, 4864, 896),
            (GgmlDType::Q4_1, 1536, 576),
            (GgmlDType::Q4K, 896, 4864),
        ] {
            let w: Vec<f32> = (0..out * inp).map(|_| tests::lcg(&mut seed)).collect();
            let t = Tensor::from_vec(w, (out, inp), &Device::Cpu).unwrap();
            let q = QLinear::new(Arc::new(QTensor::quantize(&t, dtype).unwrap())).unwrap();
            let rows = 512;
            let xs: Vec<f32> = (0..rows * inp).map(|_| tests::lcg(&mut seed)).collect();
            let mut best = f64::MAX;
            for _ in 0..8 {
                let t0 = std::time::Instant::now();
                std::hint::black_box(q.forward_rows(&xs, rows).unwrap());
                best = best.min(t0.elapsed().as_secs_f64());
            }
            let gmacs = (out * inp * rows) as f64 / best / 1e9;
            eprintln!(
                "{dtype:?} {out}x{inp} × {rows} rows: {:.2} ms, {gmacs:.1} GMAC/s",
                best * 1e3
            );
        }
    }
}
