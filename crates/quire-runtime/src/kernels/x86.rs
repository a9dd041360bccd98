//! x86-64 dot-product tiles for Q4_0, Q4_1, Q5_0, Q8_0 and the k-quants Q4_K and Q6_K.
//!
//! Each tile dots one weight row with `R` activation rows, so a weight block is loaded and
//! unpacked once for `R` tokens during prefill (`R = 1` for decode). Per output the
//! arithmetic is exactly llama.cpp's AVX2 `ggml_vec_dot_*`: integer block sums, one FMA per
//! block into an 8-lane accumulator in block order, the same horizontal sum, so results are
//! bit-identical to llama.cpp whatever the tiling. With AVX-512 VNNI the byte products are
//! summed by `vpdpbusd` instead of `vpmaddubsw` + `vpmaddwd`; the integer sums are the same.
//!
//! Selected at run time: [`level`] says which set this CPU has; the caller falls back to the
//! portable path when it is `None`.

use std::arch::x86_64::*;
use std::sync::OnceLock;

use half::f16;

use super::{Q8K, Q8_0, Q8_1, QK8, QK_K};

#[repr(C)]
pub(crate) struct Q4_0W {
    d: f16,
    qs: [u8; QK8 / 2],
}
#[repr(C)]
pub(crate) struct Q4_1W {
    d: f16,
    m: f16,
    qs: [u8; QK8 / 2],
}
#[repr(C)]
pub(crate) struct Q5_0W {
    d: f16,
    qh: [u8; 4],
    qs: [u8; QK8 / 2],
}

#[repr(C)]
pub(crate) struct Q4KW {
    d: f16,
    dmin: f16,
    scales: [u8; 12],
    qs: [u8; QK_K / 2],
}

#[repr(C)]
pub(crate) struct Q6KW {
    ql: [u8; QK_K / 2],
    qh: [u8; QK_K / 4],
    scales: [i8; QK_K / 16],
    d: f16,
}

use candle_core::quantized::k_quants::{BlockQ4K, BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ6K};
const _: () = assert!(std::mem::size_of::<Q6KW>() == std::mem::size_of::<BlockQ6K>());
const _: () = assert!(std::mem::align_of::<Q6KW>() == std::mem::align_of::<BlockQ6K>());
const _: () = assert!(std::mem::size_of::<Q4KW>() == std::mem::size_of::<BlockQ4K>());
const _: () = assert!(std::mem::align_of::<Q4KW>() == std::mem::align_of::<BlockQ4K>());
const _: () = assert!(std::mem::size_of::<Q4_0W>() == std::mem::size_of::<BlockQ4_0>());
const _: () = assert!(std::mem::size_of::<Q4_1W>() == std::mem::size_of::<BlockQ4_1>());
const _: () = assert!(std::mem::size_of::<Q5_0W>() == std::mem::size_of::<BlockQ5_0>());
const _: () = assert!(std::mem::align_of::<Q4_0W>() == std::mem::align_of::<BlockQ4_0>());
const _: () = assert!(std::mem::align_of::<Q4_1W>() == std::mem::align_of::<BlockQ4_1>());
const _: () = assert!(std::mem::align_of::<Q5_0W>() == std::mem::align_of::<BlockQ5_0>());

/// The instruction sets a tile can use on this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    Avx2,
    Avx512Vnni,
}

/// Detected once. `QUIRE_KERNELS=portable` turns the tiles off and `avx2` caps them at AVX2
/// (for comparing paths); `row-tiles` keeps VNNI but not the register tiles.
pub(crate) fn level() -> Option<Level> {
    static LEVEL: OnceLock<Option<Level>> = OnceLock::new();
    *LEVEL.get_or_init(|| {
        let want = std::env::var("QUIRE_KERNELS").unwrap_or_default();
        if want == "portable" {
            return None;
        }
        let avx2 = is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c");
        let vnni = is_x86_feature_detected!("avx512vnni")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512bw");
        match (avx2, vnni && want != "avx2") {
            (true, true) => Some(Level::Avx512Vnni),
            (true, false) => Some(Level::Avx2),
            _ => None,
        }
    })
}

/// Whether the register tiles are on: `QUIRE_KERNELS=row-tiles` turns them off (for
/// comparing the two).
fn register_tiles() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("QUIRE_KERNELS").as_deref() != Ok("row-tiles"))
}

/// Activation rows for a tile: the quantized blocks and their scales widened to f32 once,
/// and what the VNNI tiles read besides.
pub(crate) struct Acts<'a, A> {
    pub(crate) blocks: &'a [A],
    /// `d` of each block.
    pub(crate) d: &'a [f32],
    /// `s` (`d` × sum of the quants) of each block; empty for Q8_0.
    pub(crate) s: &'a [f32],
    /// Blocks per row.
    pub(crate) stride: usize,
    pub(crate) rows: usize,
    /// `d` and `s` transposed (block-major: `dt[k * rows + r]`), for the register tiles;
    /// empty when none will run.
    pub(crate) dt: Vec<f32>,
    pub(crate) st: Vec<f32>,
    /// The quants biased to unsigned in pieces of 32 (eight per Q8_K block), for the VNNI
    /// tiles of signed weights; empty at other levels and for unsigned weights.
    pub(crate) biased: Vec<[u8; QK8]>,
}

impl<'a, A: super::TileAct> Acts<'a, A> {
    /// The activations for `W`'s tiles at `level`.
    pub(crate) fn new<W: Tile<Act = A>>(
        blocks: &'a [A],
        d: &'a [f32],
        s: &'a [f32],
        stride: usize,
        level: Level,
    ) -> Self {
        let rows = blocks.len() / stride;
        let transpose = |v: &[f32]| {
            let mut t = vec![0f32; v.len()];
            for (r, row) in v.chunks_exact(stride).enumerate() {
                for (k, &x) in row.iter().enumerate() {
                    t[k * rows + r] = x;
                }
            }
            t
        };
        let (dt, st) = if W::has_gemm(level) && rows >= GEMM_N {
            (transpose(d), transpose(s))
        } else {
            (Vec::new(), Vec::new())
        };
        let biased = if level == Level::Avx512Vnni && W::BIASED {
            // Across the pool: a prefill's activations are megabytes.
            const BLOCKS: usize = 512;
            let mut v = vec![[0u8; QK8]; blocks.len() * A::PIECES];
            crate::pool::global().chunks_mut(&mut v, BLOCKS * A::PIECES, |i, out| {
                A::bias_into(&blocks[i * BLOCKS..][..out.len() / A::PIECES], out)
            });
            v
        } else {
            Vec::new()
        };
        Self {
            blocks,
            d,
            s,
            stride,
            rows,
            dt,
            st,
            biased,
        }
    }
}

/// A weight block type with a tile.
pub(crate) trait Tile: Sized + Sync {
    type Act: Sync;
    /// Values per block.
    const VALUES: usize = QK8;
    /// Whether the VNNI tiles read [`Acts::biased`] (signed weights).
    const BIASED: bool;
    /// Dots `w` (one weight row) with activation rows `first..first + R`, into `out`.
    ///
    /// # Safety
    /// `level` must be supported by this CPU, and the rows must exist in `acts`.
    unsafe fn dot<const R: usize>(
        level: Level,
        w: &[Self],
        acts: &Acts<'_, Self::Act>,
        first: usize,
        out: &mut [f32],
    );

    /// Whether [`Tile::gemm`] exists for this type at `level`.
    fn has_gemm(_level: Level) -> bool {
        false
    }

    /// A register tile: [`GEMM_M`] weight rows (`w`, each `n_blocks` long) by [`GEMM_N`]
    /// activation rows from `first`, with all its accumulators in registers while the
    /// blocks stream past; `out[i * stride + j]` receives weight row `i` · activation row
    /// `first + j`. Per output the arithmetic is [`Tile::dot`]'s.
    ///
    /// # Safety
    /// [`Tile::has_gemm`] must hold for `level`, which this CPU must support, and the rows
    /// must exist in `w`, `acts` and `out`.
    unsafe fn gemm(
        _level: Level,
        _w: &[Self],
        _n_blocks: usize,
        _acts: &Acts<'_, Self::Act>,
        _first: usize,
        _out: &mut [f32],
        _stride: usize,
    ) {
        unreachable!("no register tile for this type")
    }
}

/// Weight rows per register tile.
pub(crate) const GEMM_M: usize = 2;
/// Activation rows per register tile.
pub(crate) const GEMM_N: usize = 8;
const _: () = assert!(
    GEMM_N == 8,
    "a register tile loads its eight activation scales at once"
);

/// Dots every weight row of `w` (rows of `n_blocks` blocks) with activation rows `rows`:
/// weight row `c`, activation row `r` goes to `out[c * stride + r]`. Register tiles of
/// [`GEMM_M`] × [`GEMM_N`] where the type has them, then [`dot_rows`] for what is left.
///
/// # Safety
/// `level` must be supported by this CPU, the rows must exist in `acts`, and `out` must
/// hold `w.len() / n_blocks` rows of `stride ≥ rows.end`.
pub(crate) unsafe fn dot_block<W: Tile>(
    level: Level,
    w: &[W],
    n_blocks: usize,
    acts: &Acts<'_, W::Act>,
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    stride: usize,
) {
    let feats = w.len() / n_blocks;
    let row = |c: usize| &w[c * n_blocks..(c + 1) * n_blocks];
    let mut c = 0;
    if W::has_gemm(level) {
        while c + GEMM_M <= feats {
            let mut r = rows.start;
            while r + GEMM_N <= rows.end {
                let tile = &w[c * n_blocks..(c + GEMM_M) * n_blocks];
                W::gemm(
                    level,
                    tile,
                    n_blocks,
                    acts,
                    r,
                    &mut out[c * stride + r..],
                    stride,
                );
                r += GEMM_N;
            }
            if r < rows.end {
                for cc in c..c + GEMM_M {
                    let o = &mut out[cc * stride + r..cc * stride + rows.end];
                    dot_rows(level, row(cc), acts, r..rows.end, o);
                }
            }
            c += GEMM_M;
        }
    }
    for cc in c..feats {
        let o = &mut out[cc * stride + rows.start..cc * stride + rows.end];
        dot_rows(level, row(cc), acts, rows.clone(), o);
    }
}

/// Dots `w` with activation rows `rows` into `out` (one value per row): tiles of 32 rows,
/// then 4, then 1.
///
/// # Safety
/// `level` must be supported by this CPU, and the rows must exist in `acts`.
pub(crate) unsafe fn dot_rows<W: Tile>(
    level: Level,
    w: &[W],
    acts: &Acts<'_, W::Act>,
    rows: std::ops::Range<usize>,
    out: &mut [f32],
) {
    const R: usize = 32;
    let (first, end) = (rows.start, rows.end);
    let mut r = first;
    while r + R <= end {
        W::dot::<R>(level, w, acts, r, &mut out[r - first..r - first + R]);
        r += R;
    }
    while r + 4 <= end {
        W::dot::<4>(level, w, acts, r, &mut out[r - first..r - first + 4]);
        r += 4;
    }
    while r < end {
        W::dot::<1>(level, w, acts, r, &mut out[r - first..r - first + 1]);
        r += 1;
    }
}

/// Copies a task's feature-major block (`n` features of `rows` values) into the product's
/// row-major result: `dst[r * out + c] = block[c * rows + r]`, with `dst` at the task's
/// first feature. Eight-by-eight tiles are transposed in registers, the rest element by
/// element.
///
/// # Safety
/// The CPU must have AVX2; `dst` must be valid for writes at every `r * out + c` with
/// `r < rows`, `c < n`, and `block` must hold `n * rows` values.
#[target_feature(enable = "avx2,fma,f16c")]
pub(crate) unsafe fn scatter(block: &[f32], n: usize, rows: usize, dst: *mut f32, out: usize) {
    assert!(block.len() >= n * rows);
    let src = block.as_ptr();
    let mut r = 0;
    while r + 8 <= rows {
        let mut c = 0;
        while c + 8 <= n {
            let mut v = [_mm256_setzero_ps(); 8];
            for (k, v) in v.iter_mut().enumerate() {
                *v = _mm256_loadu_ps(src.add((c + k) * rows + r));
            }
            transpose8(&mut v);
            for (k, v) in v.iter().enumerate() {
                _mm256_storeu_ps(dst.add((r + k) * out + c), *v);
            }
            c += 8;
        }
        for cc in c..n {
            for k in r..r + 8 {
                *dst.add(k * out + cc) = *src.add(cc * rows + k);
            }
        }
        r += 8;
    }
    for rr in r..rows {
        for c in 0..n {
            *dst.add(rr * out + c) = *src.add(c * rows + rr);
        }
    }
}

/// Transposes an 8×8 tile held as eight row vectors.
#[inline(always)]
unsafe fn transpose8(v: &mut [__m256; 8]) {
    let t0 = _mm256_unpacklo_ps(v[0], v[1]);
    let t1 = _mm256_unpackhi_ps(v[0], v[1]);
    let t2 = _mm256_unpacklo_ps(v[2], v[3]);
    let t3 = _mm256_unpackhi_ps(v[2], v[3]);
    let t4 = _mm256_unpacklo_ps(v[4], v[5]);
    let t5 = _mm256_unpackhi_ps(v[4], v[5]);
    let t6 = _mm256_unpacklo_ps(v[6], v[7]);
    let t7 = _mm256_unpackhi_ps(v[6], v[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    v[0] = _mm256_permute2f128_ps::<0x20>(u0, u4);
    v[1] = _mm256_permute2f128_ps::<0x20>(u1, u5);
    v[2] = _mm256_permute2f128_ps::<0x20>(u2, u6);
    v[3] = _mm256_permute2f128_ps::<0x20>(u3, u7);
    v[4] = _mm256_permute2f128_ps::<0x31>(u0, u4);
    v[5] = _mm256_permute2f128_ps::<0x31>(u1, u5);
    v[6] = _mm256_permute2f128_ps::<0x31>(u2, u6);
    v[7] = _mm256_permute2f128_ps::<0x31>(u3, u7);
}

// ---------------------------------------------------------------- shared helpers

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum_float_8(x: __m256) -> f32 {
    let mut res = _mm256_extractf128_ps(x, 1);
    res = _mm_add_ps(res, _mm256_castps256_ps128(x));
    res = _mm_add_ps(res, _mm_movehl_ps(res, res));
    res = _mm_add_ss(res, _mm_movehdup_ps(res));
    _mm_cvtss_f32(res)
}

/// 32 nibbles to 32 bytes in 0..=15: low nibbles first, then high.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bytes_from_nibbles_32(p: *const u8) -> __m256i {
    let tmp = _mm_loadu_si128(p as *const __m128i);
    let bytes = _mm256_set_m128i(_mm_srli_epi16(tmp, 4), tmp);
    _mm256_and_si256(_mm256_set1_epi8(0xF), bytes)
}

/// 32 bits to 32 bytes of 0x00 or 0xFF.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bytes_from_bits_32(p: *const u8) -> __m256i {
    let x32 = i32::from_le_bytes(*(p as *const [u8; 4]));
    let shuf = _mm256_set_epi64x(
        0x0303030303030303,
        0x0202020202020202,
        0x0101010101010101,
        0x0000000000000000,
    );
    let mut bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(x32), shuf);
    bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
    _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1))
}

/// Unsigned × signed bytes, summed in fours, as f32 (`ax` unsigned, `sy` signed).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mul_sum_us8_avx2(ax: __m256i, sy: __m256i) -> __m256 {
    let dot = _mm256_maddubs_epi16(ax, sy);
    _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_set1_epi16(1), dot))
}

#[inline(always)]
fn f(x: f16) -> f32 {
    x.to_f32()
}

/// Where each lane of a `vpdpbusd` sum starts when signed weights `qx` meet activations
/// biased to unsigned (`y + 128`): −128·Σx over the lane's four bytes, which takes the bias
/// back out, so the lane ends with the exact Σx·y. Needs AVX-512 VNNI and VL.
#[inline(always)]
unsafe fn unbias_start(qx: __m256i) -> __m256i {
    let zero = _mm256_setzero_si256();
    let bias = _mm256_set1_epi8(0x80u8 as i8);
    _mm256_sub_epi32(zero, _mm256_dpbusd_epi32(zero, bias, qx))
}

// ---------------------------------------------------------------- the tiles

/// Generates a tile for one weight type in both instruction-set variants. `$prep` unpacks a
/// weight block into `(x, scale_w, extra)`: `x` the bytes to multiply (unsigned when
/// `$signed` is false); the AVX2 build then does llama.cpp's sign trick per activation row.
///
/// With VNNI the one-row tiles and the register tile ([`Tile::gemm`]) unpack with `$gprep`
/// (the same values; it may use AVX-512BW, and defaults to `$prep`). Signed weights meet the
/// activations biased to unsigned (`y + 128`) in `vpdpbusd`, each lane starting at
/// `−128 · Σx`: the same exact integer sums as the sign trick, so outputs stay
/// bit-identical to the AVX2 build's.
macro_rules! tile {
    ($name:ident, $w:ty, $act:ty, |$b:ident| $prep:block, $signed:expr, $min:expr) => {
        tile!($name, $w, $act, |$b| $prep, $signed, $min, |$b| $prep);
    };
    ($name:ident, $w:ty, $act:ty, |$b:ident| $prep:block, $signed:expr, $min:expr,
     |$gb:ident| $gprep:block) => {
        mod $name {
            use super::*;

            /// Where each lane of a block's sum starts for weights `qx`: [`unbias_start`]
            /// for signed weights (their activations come biased by 128), else 0.
            #[inline(always)]
            unsafe fn lane_start(qx: __m256i) -> __m256i {
                if $signed {
                    unbias_start(qx)
                } else {
                    _mm256_setzero_si256()
                }
            }

            /// The exact integer sums of weights `qx` with activation block `j`, eight lanes
            /// of four products, starting from `start` ([`lane_start`]).
            #[inline(always)]
            unsafe fn block_sum(
                acts: &Acts<'_, $act>,
                j: usize,
                start: __m256i,
                qx: __m256i,
            ) -> __m256i {
                if $signed {
                    let qy = acts.biased.get_unchecked(j).as_ptr() as *const __m256i;
                    _mm256_dpbusd_epi32(start, _mm256_loadu_si256(qy), qx)
                } else {
                    let qy = acts.blocks.get_unchecked(j).qs.as_ptr() as *const __m256i;
                    _mm256_dpbusd_epi32(start, qx, _mm256_loadu_si256(qy))
                }
            }

            #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl,avx512bw")]
            pub unsafe fn gemm(
                w: &[$w],
                n_blocks: usize,
                acts: &Acts<'_, $act>,
                first: usize,
                out: &mut [f32],
                stride: usize,
            ) {
                const M: usize = GEMM_M;
                const N: usize = GEMM_N;
                let mut acc = [[_mm256_setzero_ps(); N]; M];
                // Σ m·s per output, for the eight rows at once (a multiply, then an add, as
                // the row tiles do one at a time).
                let mut summs = [_mm256_setzero_ps(); M];
                // The pairs' scales dw·dy, one vector product per weight row, for up to `KC`
                // blocks ahead: each FMA takes its scale as a broadcast from memory stored well
                // before (read volatile, so the compiler does not spend a shuffle per FMA to
                // keep them in registers instead).
                const KC: usize = 32;
                // Left uninitialized: zeroing it was a `memset` per call (~4 % of SmolLM2's
                // prefill), and only the `kn` blocks just written are read.
                let mut dd = std::mem::MaybeUninit::<[[[f32; N]; M]; KC]>::uninit();
                let dd = dd.as_mut_ptr() as *mut f32;
                let mut k0 = 0;
                while k0 < n_blocks {
                    // Blocks ahead: faster for Q4_1 on the tile probe (0.54 → 0.50 ns per
                    // block pair), slower for Q5_0 (0.53 → 0.55), so the signed types keep
                    // one block at a time.
                    let kn = (if $min { KC } else { 1 }).min(n_blocks - k0);
                    for kk in 0..kn {
                        let dy =
                            _mm256_loadu_ps(acts.dt.as_ptr().add((k0 + kk) * acts.rows + first));
                        for i in 0..M {
                            let d = f(w.get_unchecked(i * n_blocks + k0 + kk).d);
                            let to = dd.add((kk * M + i) * N);
                            _mm256_storeu_ps(to, _mm256_mul_ps(_mm256_set1_ps(d), dy));
                        }
                    }
                    for kk in 0..kn {
                        let k = k0 + kk;
                        let mut x = [_mm256_setzero_si256(); M];
                        let mut start = [_mm256_setzero_si256(); M];
                        let mut mw = [0f32; M];
                        for i in 0..M {
                            let $gb = w.get_unchecked(i * n_blocks + k);
                            let (qx, _, m): (__m256i, f32, f32) = $gprep;
                            x[i] = qx;
                            start[i] = lane_start(qx);
                            mw[i] = m;
                        }
                        if $min {
                            let sy = _mm256_loadu_ps(acts.st.as_ptr().add(k * acts.rows + first));
                            for i in 0..M {
                                summs[i] = _mm256_add_ps(
                                    summs[i],
                                    _mm256_mul_ps(_mm256_set1_ps(mw[i]), sy),
                                );
                            }
                        }
                        for j in 0..N {
                            let row = (first + j) * acts.stride + k;
                            for i in 0..M {
                                let sum = block_sum(acts, row, start[i], x[i]);
                                let d = std::ptr::read_volatile(dd.add((kk * M + i) * N + j));
                                acc[i][j] = _mm256_fmadd_ps(
                                    _mm256_set1_ps(d),
                                    _mm256_cvtepi32_ps(sum),
                                    acc[i][j],
                                );
                            }
                        }
                    }
                    k0 += kn;
                }
                for i in 0..M {
                    let mut m = [0f32; N];
                    _mm256_storeu_ps(m.as_mut_ptr(), summs[i]);
                    for j in 0..N {
                        *out.get_unchecked_mut(i * stride + j) = hsum_float_8(acc[i][j]) + m[j];
                    }
                }
            }

            pub mod avx2 {
                use super::*;

                #[target_feature(enable = "avx2,fma,f16c")]
                pub unsafe fn dot<const R: usize>(
                    w: &[$w],
                    acts: &Acts<'_, $act>,
                    first: usize,
                    out: &mut [f32],
                ) {
                    let mut acc = [_mm256_setzero_ps(); R];
                    let mut summs = [0f32; R];
                    for (i, $b) in w.iter().enumerate() {
                        let (qx, dw, mw): (__m256i, f32, f32) = $prep;
                        // With signed weights, llama.cpp moves the sign onto y.
                        let ax = if $signed {
                            _mm256_sign_epi8(qx, qx)
                        } else {
                            qx
                        };
                        for r in 0..R {
                            let j = (first + r) * acts.stride + i;
                            let y = acts.blocks.get_unchecked(j);
                            let qy = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
                            let sy = if $signed {
                                _mm256_sign_epi8(qy, qx)
                            } else {
                                qy
                            };
                            let d = _mm256_set1_ps(dw * *acts.d.get_unchecked(j));
                            if $min {
                                summs[r] += mw * *acts.s.get_unchecked(j);
                            }
                            let q = mul_sum_us8_avx2(ax, sy);
                            acc[r] = _mm256_fmadd_ps(d, q, acc[r]);
                        }
                    }
                    for r in 0..R {
                        out[r] = hsum_float_8(acc[r]) + summs[r];
                    }
                }
            }

            /// With VNNI: the register tiles' arithmetic one weight row at a time.
            pub mod vnni {
                use super::*;

                #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl,avx512bw")]
                pub unsafe fn dot<const R: usize>(
                    w: &[$w],
                    acts: &Acts<'_, $act>,
                    first: usize,
                    out: &mut [f32],
                ) {
                    let mut acc = [_mm256_setzero_ps(); R];
                    let mut summs = [0f32; R];
                    for (i, $gb) in w.iter().enumerate() {
                        let (qx, dw, mw): (__m256i, f32, f32) = $gprep;
                        let start = lane_start(qx);
                        for r in 0..R {
                            let j = (first + r) * acts.stride + i;
                            let sum = block_sum(acts, j, start, qx);
                            let d = _mm256_set1_ps(dw * *acts.d.get_unchecked(j));
                            if $min {
                                summs[r] += mw * *acts.s.get_unchecked(j);
                            }
                            acc[r] = _mm256_fmadd_ps(d, _mm256_cvtepi32_ps(sum), acc[r]);
                        }
                    }
                    for r in 0..R {
                        out[r] = hsum_float_8(acc[r]) + summs[r];
                    }
                }
            }
        }

        impl Tile for $w {
            type Act = $act;
            const VALUES: usize = QK8;
            const BIASED: bool = $signed;
            unsafe fn dot<const R: usize>(
                level: Level,
                w: &[Self],
                acts: &Acts<'_, $act>,
                first: usize,
                out: &mut [f32],
            ) {
                match level {
                    Level::Avx2 => $name::avx2::dot::<R>(w, acts, first, out),
                    Level::Avx512Vnni => $name::vnni::dot::<R>(w, acts, first, out),
                }
            }

            fn has_gemm(level: Level) -> bool {
                level == Level::Avx512Vnni && register_tiles()
            }

            unsafe fn gemm(
                _level: Level,
                w: &[Self],
                n_blocks: usize,
                acts: &Acts<'_, $act>,
                first: usize,
                out: &mut [f32],
                stride: usize,
            ) {
                $name::gemm(w, n_blocks, acts, first, out, stride)
            }
        }
    };
}

// Q4_0: nibbles − 8, signed, × d.
tile!(
    q4_0,
    Q4_0W,
    Q8_0,
    |b| {
        let qx = _mm256_sub_epi8(bytes_from_nibbles_32(b.qs.as_ptr()), _mm256_set1_epi8(8));
        (qx, f(b.d), 0.0)
    },
    true,
    false
);

// Q4_1: nibbles unsigned, × d, plus m × (d_y × Σy) per block.
tile!(
    q4_1,
    Q4_1W,
    Q8_1,
    |b| { (bytes_from_nibbles_32(b.qs.as_ptr()), f(b.d), f(b.m)) },
    false,
    true
);

// Q5_0: nibbles with the fifth bit from qh, as signed values −16..=15.
tile!(
    q5_0,
    Q5_0W,
    Q8_0,
    |b| {
        let mut qx = bytes_from_nibbles_32(b.qs.as_ptr());
        let hi = bytes_from_bits_32(b.qh.as_ptr());
        let hi = _mm256_andnot_si256(hi, _mm256_set1_epi8(0xF0u8 as i8));
        qx = _mm256_or_si256(qx, hi);
        (qx, f(b.d), 0.0)
    },
    true,
    false,
    |b| {
        // With AVX-512BW the fifth bits are a byte mask: subtract 16 where the bit is clear.
        let clear = !u32::from_le_bytes(b.qh);
        let qx = bytes_from_nibbles_32(b.qs.as_ptr());
        (
            _mm256_mask_sub_epi8(qx, clear, qx, _mm256_set1_epi8(16)),
            f(b.d),
            0.0,
        )
    }
);

// Q8_0: the bytes as they are.
tile!(
    q8_0,
    Q8_0,
    Q8_0,
    |b| {
        (
            _mm256_loadu_si256(b.qs.as_ptr() as *const __m256i),
            f(b.d),
            0.0,
        )
    },
    true,
    false
);

/// The [`Tile`] of a k-quant weight type, dispatching to its module's builds.
macro_rules! k_tile {
    ($name:ident, $w:ty, $biased:expr) => {
        impl Tile for $w {
            type Act = Q8K;
            const VALUES: usize = QK_K;
            const BIASED: bool = $biased;
            unsafe fn dot<const R: usize>(
                level: Level,
                w: &[Self],
                acts: &Acts<'_, Q8K>,
                first: usize,
                out: &mut [f32],
            ) {
                match level {
                    Level::Avx2 => $name::avx2::dot::<R>(w, acts, first, out),
                    Level::Avx512Vnni => $name::vnni::dot::<R>(w, acts, first, out),
                }
            }
        }
    };
}

// Q4_K: super-blocks of 256 in eight groups of 32, each with a 6-bit scale and min
// (llama.cpp's `ggml_vec_dot_q4_K_q8_K`, AVX2). The weight block is unpacked into
// registers once and used for all `R` activation rows.
mod q4_k {
    use super::*;

    const K_SHUFFLE: [u8; 256] = {
        let mut t = [0u8; 256];
        let mut i = 0;
        while i < 8 {
            let mut k = 0;
            while k < 32 {
                t[i * 32 + k] = (2 * i + k % 2) as u8;
                k += 1;
            }
            i += 1;
        }
        t
    };

    pub mod avx2 {
        use super::*;

        #[target_feature(enable = "avx2,fma,f16c")]
        pub unsafe fn dot<const R: usize>(
            w: &[Q4KW],
            acts: &Acts<'_, Q8K>,
            first: usize,
            out: &mut [f32],
        ) {
            let mut acc = [_mm256_setzero_ps(); R];
            let mut acc_m = [_mm_setzero_ps(); R];
            for (i, b) in w.iter().enumerate() {
                let utmp = scales_and_mins(b);
                let mins_and_scales = _mm256_cvtepu8_epi16(_mm_set_epi32(
                    utmp[3] as i32,
                    utmp[2] as i32,
                    utmp[1] as i32,
                    utmp[0] as i32,
                ));
                let mins = _mm256_extracti128_si256(mins_and_scales, 1);
                let sc128 = _mm256_extracti128_si256(mins_and_scales, 0);
                let scales = _mm256_set_m128i(sc128, sc128);
                let shuffle = K_SHUFFLE.as_ptr() as *const __m256i;
                let (lo, hi) = nibbles(b);
                let mut s_lo = [_mm256_setzero_si256(); 4];
                let mut s_hi = [_mm256_setzero_si256(); 4];
                for j in 0..4 {
                    s_lo[j] = _mm256_shuffle_epi8(scales, _mm256_loadu_si256(shuffle.add(2 * j)));
                    s_hi[j] =
                        _mm256_shuffle_epi8(scales, _mm256_loadu_si256(shuffle.add(2 * j + 1)));
                }
                let (dw, mw) = (f(b.d), f(b.dmin));
                for r in 0..R {
                    let y = acts.blocks.get_unchecked((first + r) * acts.stride + i);
                    let d = y.d * dw;
                    acc_m[r] = add_mins(acc_m[r], mins, y, mw);
                    let q8 = y.qs.as_ptr() as *const __m256i;
                    let mut sumi = _mm256_setzero_si256();
                    for j in 0..4 {
                        let q8l = _mm256_loadu_si256(q8.add(2 * j));
                        let p16l = _mm256_madd_epi16(s_lo[j], _mm256_maddubs_epi16(lo[j], q8l));
                        sumi = _mm256_add_epi32(sumi, p16l);
                        let q8h = _mm256_loadu_si256(q8.add(2 * j + 1));
                        let p16h = _mm256_madd_epi16(s_hi[j], _mm256_maddubs_epi16(hi[j], q8h));
                        sumi = _mm256_add_epi32(sumi, p16h);
                    }
                    acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[r]);
                }
            }
            for r in 0..R {
                out[r] = finish(acc[r], acc_m[r]);
            }
        }
    }

    /// A block's 256 nibbles as bytes, in pieces of 32: the low nibbles of each 32 bytes
    /// (`lo[j]`), then their high nibbles (`hi[j]`), in the order of the activation's quants.
    #[inline(always)]
    unsafe fn nibbles(b: &Q4KW) -> ([__m256i; 4], [__m256i; 4]) {
        let m4 = _mm256_set1_epi8(0xF);
        let bits = |j: usize| _mm256_loadu_si256(b.qs.as_ptr().add(32 * j) as *const __m256i);
        (
            std::array::from_fn(|j| _mm256_and_si256(bits(j), m4)),
            std::array::from_fn(|j| _mm256_and_si256(_mm256_srli_epi16(bits(j), 4), m4)),
        )
    }

    /// Adds a block's mins term for activation row `y` to `acc_m`: −d_y·dmin times the
    /// mins against the activation's sums of 16, four lanes.
    #[inline(always)]
    unsafe fn add_mins(acc_m: __m128, mins: __m128i, y: &Q8K, mw: f32) -> __m128 {
        let dmin = -y.d * mw;
        let q8sums = _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i);
        let q8s = _mm_hadd_epi16(
            _mm256_extracti128_si256(q8sums, 0),
            _mm256_extracti128_si256(q8sums, 1),
        );
        let prod = _mm_madd_epi16(mins, q8s);
        _mm_fmadd_ps(_mm_set1_ps(dmin), _mm_cvtepi32_ps(prod), acc_m)
    }

    /// A row's result: its eight block-sum lanes plus its four mins lanes.
    #[inline(always)]
    unsafe fn finish(acc: __m256, acc_m: __m128) -> f32 {
        let m = _mm_add_ps(acc_m, _mm_movehl_ps(acc_m, acc_m));
        let m = _mm_add_ss(m, _mm_movehdup_ps(m));
        hsum_float_8(acc) + _mm_cvtss_f32(m)
    }

    /// The eight 6-bit scales (bytes 0..8) and mins (bytes 8..16) of a block, as llama.cpp
    /// unpacks them.
    #[inline(always)]
    fn scales_and_mins(b: &Q4KW) -> [u32; 4] {
        const KMASK1: u32 = 0x3f3f3f3f;
        const KMASK2: u32 = 0x0f0f0f0f;
        const KMASK3: u32 = 0x03030303;
        let mut utmp = [0u32; 4];
        for (k, u) in utmp.iter_mut().take(3).enumerate() {
            *u = u32::from_le_bytes([
                b.scales[4 * k],
                b.scales[4 * k + 1],
                b.scales[4 * k + 2],
                b.scales[4 * k + 3],
            ]);
        }
        utmp[3] = ((utmp[2] >> 4) & KMASK2) | (((utmp[1] >> 6) & KMASK3) << 4);
        let uaux = utmp[1] & KMASK1;
        utmp[1] = (utmp[2] & KMASK2) | (((utmp[0] >> 6) & KMASK3) << 4);
        utmp[2] = uaux;
        utmp[0] &= KMASK1;
        utmp
    }

    /// With VNNI: each 32-value piece is one `vpdpbusd` (nibbles × quants, four products a
    /// lane) and one `vpdpwssd` (× the piece's scale, into the block's sums) per row, where
    /// the AVX2 build spends three instructions. Each lane gets the same integer as
    /// llama.cpp's `maddubs`/`madd` pair, so the outputs are bit-identical.
    pub mod vnni {
        use super::*;

        #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
        pub unsafe fn dot<const R: usize>(
            w: &[Q4KW],
            acts: &Acts<'_, Q8K>,
            first: usize,
            out: &mut [f32],
        ) {
            let zero = _mm256_setzero_si256();
            let mut acc = [_mm256_setzero_ps(); R];
            let mut acc_m = [_mm_setzero_ps(); R];
            for (i, b) in w.iter().enumerate() {
                let utmp = scales_and_mins(b);
                let mins = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, utmp[3] as i32, utmp[2] as i32));
                let scale = |k: usize| ((utmp[k / 4] >> (8 * (k % 4))) & 0xff) as i32;
                let (lo, hi) = nibbles(b);
                // Each i32 lane holds the scale in its low half and 0 in its high half, so
                // `vpdpwssd` multiplies a lane's sum (which fits in 16 bits) by it.
                let s_lo: [__m256i; 4] = std::array::from_fn(|j| _mm256_set1_epi32(scale(2 * j)));
                let s_hi: [__m256i; 4] =
                    std::array::from_fn(|j| _mm256_set1_epi32(scale(2 * j + 1)));
                let (dw, mw) = (f(b.d), f(b.dmin));
                for r in 0..R {
                    let y = acts.blocks.get_unchecked((first + r) * acts.stride + i);
                    let d = y.d * dw;
                    acc_m[r] = add_mins(acc_m[r], mins, y, mw);
                    let q8 = y.qs.as_ptr() as *const __m256i;
                    // Two chains of integer sums (exact, so the order does not matter).
                    let (mut sum_lo, mut sum_hi) = (zero, zero);
                    for j in 0..4 {
                        let l = _mm256_dpbusd_epi32(zero, lo[j], _mm256_loadu_si256(q8.add(2 * j)));
                        sum_lo = _mm256_dpwssd_epi32(sum_lo, l, s_lo[j]);
                        let h =
                            _mm256_dpbusd_epi32(zero, hi[j], _mm256_loadu_si256(q8.add(2 * j + 1)));
                        sum_hi = _mm256_dpwssd_epi32(sum_hi, h, s_hi[j]);
                    }
                    let sumi = _mm256_add_epi32(sum_lo, sum_hi);
                    acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc[r]);
                }
            }
            for r in 0..R {
                out[r] = finish(acc[r], acc_m[r]);
            }
        }
    }
}

k_tile!(q4_k, Q4KW, false);

// Q6_K: 6-bit values (4 low bits in `ql`, 2 high in `qh`) minus 32, sixteen groups of 16
// with an 8-bit scale each (llama.cpp's `ggml_vec_dot_q6_K_q8_K`, AVX2), unpacked once
// for all `R` rows.
mod q6_k {
    use super::*;

    const SCALE_SHUFFLE: [u8; 128] = {
        let mut t = [0u8; 128];
        let mut k = 0;
        while k < 128 {
            t[k] = (k / 8) as u8;
            k += 1;
        }
        t
    };

    /// A block's 256 values as unsigned bytes 0..=63 (the stored q + 32), in eight pieces
    /// of 32 in the order of the activation's quants.
    #[inline(always)]
    unsafe fn unpack(b: &Q6KW) -> [__m256i; 8] {
        let m4 = _mm256_set1_epi8(0xF);
        let m2 = _mm256_set1_epi8(3);
        let mut q = [_mm256_setzero_si256(); 8];
        for j in 0..2 {
            let ql = b.ql.as_ptr().add(64 * j) as *const __m256i;
            let bits1 = _mm256_loadu_si256(ql);
            let bits2 = _mm256_loadu_si256(ql.add(1));
            let bits_h = _mm256_loadu_si256(b.qh.as_ptr().add(32 * j) as *const __m256i);
            let h0 = _mm256_slli_epi16(_mm256_and_si256(bits_h, m2), 4);
            let h1 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits_h, 2), m2), 4);
            let h2 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits_h, 4), m2), 4);
            let h3 = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(bits_h, 6), m2), 4);
            q[4 * j] = _mm256_or_si256(_mm256_and_si256(bits1, m4), h0);
            q[4 * j + 1] = _mm256_or_si256(_mm256_and_si256(bits2, m4), h1);
            q[4 * j + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits1, 4), m4), h2);
            q[4 * j + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(bits2, 4), m4), h3);
        }
        q
    }

    pub mod avx2 {
        use super::*;

        #[target_feature(enable = "avx2,fma,f16c")]
        pub unsafe fn dot<const R: usize>(
            w: &[Q6KW],
            acts: &Acts<'_, Q8K>,
            first: usize,
            out: &mut [f32],
        ) {
            let m32s = _mm256_set1_epi8(32);
            let shuffle = SCALE_SHUFFLE.as_ptr() as *const __m128i;
            let mut acc = [_mm256_setzero_ps(); R];
            for (i, b) in w.iter().enumerate() {
                let scales = _mm_loadu_si128(b.scales.as_ptr() as *const __m128i);
                let q = unpack(b);
                let mut sc = [_mm256_setzero_si256(); 8];
                for (k, sc) in sc.iter_mut().enumerate() {
                    *sc = _mm256_cvtepi8_epi16(_mm_shuffle_epi8(
                        scales,
                        _mm_loadu_si128(shuffle.add(k)),
                    ));
                }
                let dw = f(b.d);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let y = acts.blocks.get_unchecked((first + r) * acts.stride + i);
                    let d = y.d * dw;
                    let q8 = y.qs.as_ptr() as *const __m256i;
                    let mut sumi = _mm256_setzero_si256();
                    for k in 0..8 {
                        let q8k = _mm256_loadu_si256(q8.add(k));
                        let p16 = _mm256_sub_epi16(
                            _mm256_maddubs_epi16(q[k], q8k),
                            _mm256_maddubs_epi16(m32s, q8k),
                        );
                        sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(sc[k], p16));
                    }
                    *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), *acc);
                }
            }
            for r in 0..R {
                out[r] = hsum_float_8(acc[r]);
            }
        }
    }

    /// With VNNI: the weights are made signed (q − 32) once per block and meet the
    /// activations biased to unsigned in `vpdpbusd`, each lane starting at −128·Σ(q − 32),
    /// then one `vpdpwssd` multiplies by the group's scale: two instructions per 32 values
    /// and row where the AVX2 build spends five. Each lane gets the same integer as
    /// llama.cpp's, so the outputs are bit-identical.
    pub mod vnni {
        use super::*;

        #[target_feature(enable = "avx2,fma,f16c,avx512vnni,avx512vl")]
        pub unsafe fn dot<const R: usize>(
            w: &[Q6KW],
            acts: &Acts<'_, Q8K>,
            first: usize,
            out: &mut [f32],
        ) {
            let m32s = _mm256_set1_epi8(32);
            let zero = _mm256_setzero_si256();
            let mut acc = [_mm256_setzero_ps(); R];
            for (i, b) in w.iter().enumerate() {
                let mut q = unpack(b);
                let mut start = [zero; 8];
                let mut sc = [zero; 8];
                for k in 0..8 {
                    q[k] = _mm256_sub_epi8(q[k], m32s);
                    start[k] = unbias_start(q[k]);
                    // Lanes 0–3 take the first 16 values' scale, 4–7 the next; each in the
                    // lane's low half, 0 in its high half.
                    let s = |g: usize| b.scales[g] as i16 as u16 as i32;
                    let (a, c) = (s(2 * k), s(2 * k + 1));
                    sc[k] = _mm256_set_epi32(c, c, c, c, a, a, a, a);
                }
                let dw = f(b.d);
                for (r, acc) in acc.iter_mut().enumerate() {
                    let j = (first + r) * acts.stride + i;
                    let d = acts.blocks.get_unchecked(j).d * dw;
                    let yb = acts.biased.as_ptr().add(8 * j) as *const __m256i;
                    // Two chains of integer sums (exact, so the order does not matter).
                    let mut sumi = [zero; 2];
                    for k in 0..8 {
                        let x = _mm256_dpbusd_epi32(start[k], _mm256_loadu_si256(yb.add(k)), q[k]);
                        sumi[k % 2] = _mm256_dpwssd_epi32(sumi[k % 2], x, sc[k]);
                    }
                    let sumi = _mm256_add_epi32(sumi[0], sumi[1]);
                    *acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), *acc);
                }
            }
            for r in 0..R {
                out[r] = hsum_float_8(acc[r]);
            }
        }
    }
}

k_tile!(q6_k, Q6KW, true);

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    use crate::kernels::tests::lcg;

    fn levels() -> Vec<Level> {
        let mut v = Vec::new();
        if is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
        {
            v.push(Level::Avx2);
            if is_x86_feature_detected!("avx512vnni")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512bw")
            {
                v.push(Level::Avx512Vnni);
            }
        }
        v
    }

    fn nibble(qs: &[u8; 16], k: usize) -> i32 {
        if k < 16 {
            (qs[k] & 0xF) as i32
        } else {
            (qs[k - 16] >> 4) as i32
        }
    }

    /// llama.cpp's AVX2 arithmetic in scalar code: lane `j` of a block holds the exact integer
    /// sum of elements `4j..4j+4`, lanes accumulate by FMA in block order, then the fixed
    /// horizontal sum `((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7))`.
    fn reference(blocks: &[(f32, f32, [i32; 32])], acts: &[(f32, f32, [i8; 32])]) -> f32 {
        let mut acc = [0f32; 8];
        let mut summs = 0f32;
        for ((dw, mw, x), (dy, sy, y)) in blocks.iter().zip(acts) {
            let d = dw * dy;
            summs += mw * sy;
            for (j, a) in acc.iter_mut().enumerate() {
                let lane: i32 = (4 * j..4 * j + 4).map(|k| x[k] * y[k] as i32).sum();
                *a = d.mul_add(lane as f32, *a);
            }
        }
        let r: Vec<f32> = (0..4).map(|i| acc[i + 4] + acc[i]).collect();
        ((r[0] + r[2]) + (r[1] + r[3])) + summs
    }

    fn weights<W>(dtype: GgmlDType, out: usize, inp: usize, seed: &mut u64) -> Vec<u8> {
        let w: Vec<f32> = (0..out * inp).map(|_| lcg(seed)).collect();
        let t = Tensor::from_vec(w, (out, inp), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, dtype).unwrap();
        let bytes = q.data().unwrap().to_vec();
        assert_eq!(bytes.len(), out * inp / QK8 * std::mem::size_of::<W>());
        bytes
    }

    /// Reinterprets candle's block bytes (copied into a block-aligned Vec) as `W`.
    fn as_blocks<W>(bytes: &[u8]) -> Vec<W> {
        let n = bytes.len() / std::mem::size_of::<W>();
        let mut v: Vec<W> = Vec::with_capacity(n);
        // SAFETY: `W` is a plain-old-data mirror of the block layout; every byte is copied.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), v.as_mut_ptr() as *mut u8, bytes.len());
            v.set_len(n);
        }
        v
    }

    fn check<W: Tile<Act = A>, A: crate::kernels::TileAct>(
        dtype: GgmlDType,
        unpack: impl Fn(&W) -> (f32, f32, [i32; 32]),
        quantize: impl Fn(&[f32]) -> Vec<A>,
        act: impl Fn(&A) -> (f32, f32, [i8; 32]),
    ) {
        let mut seed = 11u64;
        let shapes = [
            (3, 32, 1),
            (5, 96, 7),
            (2, 512, 9),
            (4, 160, 13),
            (9, 96, 19),
        ];
        for (out, inp, rows) in shapes {
            let w: Vec<W> = as_blocks(&weights::<W>(dtype, out, inp, &mut seed));
            let x: Vec<f32> = (0..rows * inp).map(|_| lcg(&mut seed) * 3.0).collect();
            let blocks = quantize(&x);
            let (d, s): (Vec<f32>, Vec<f32>) = blocks.iter().map(|b| (act(b).0, act(b).1)).unzip();
            let nb = inp / QK8;
            for level in levels() {
                let acts = Acts::new::<W>(&blocks, &d, &s, nb, level);
                for o in 0..out {
                    let row = &w[o * nb..(o + 1) * nb];
                    let mut four = vec![0f32; rows];
                    let mut one = vec![0f32; rows];
                    for r in 0..rows {
                        // SAFETY: `level` was detected on this CPU; row r exists.
                        unsafe { W::dot::<1>(level, row, &acts, r, &mut one[r..r + 1]) };
                    }
                    let mut r = 0;
                    while r + 4 <= rows {
                        // SAFETY: as above, rows r..r+4 exist.
                        unsafe { W::dot::<4>(level, row, &acts, r, &mut four[r..r + 4]) };
                        r += 4;
                    }
                    four[r..].copy_from_slice(&one[r..]);
                    for r in 0..rows {
                        let wb: Vec<_> = row.iter().map(&unpack).collect();
                        let ab: Vec<_> = blocks[r * nb..(r + 1) * nb].iter().map(&act).collect();
                        let want = reference(&wb, &ab);
                        assert_eq!(
                            one[r].to_bits(),
                            want.to_bits(),
                            "{dtype:?} {level:?} {out}x{inp} row {r}: {} vs {want}",
                            one[r]
                        );
                        assert_eq!(four[r].to_bits(), want.to_bits(), "{dtype:?} tile of 4");
                    }
                }
                // The block walk: register tiles (with VNNI) and the rows and weight rows
                // they leave, every output against the reference.
                let mut all = vec![f32::NAN; out * rows];
                // SAFETY: `level` was detected on this CPU; `all` holds `out` rows of `rows`.
                unsafe { dot_block(level, &w, nb, &acts, 0..rows, &mut all, rows) };
                for o in 0..out {
                    let wb: Vec<_> = w[o * nb..(o + 1) * nb].iter().map(&unpack).collect();
                    for r in 0..rows {
                        let ab: Vec<_> = blocks[r * nb..(r + 1) * nb].iter().map(&act).collect();
                        let want = reference(&wb, &ab);
                        assert_eq!(
                            all[o * rows + r].to_bits(),
                            want.to_bits(),
                            "{dtype:?} {level:?} {out}x{inp}x{rows} block walk, ({o}, {r})"
                        );
                    }
                }
            }
        }
    }

    fn act0(b: &Q8_0) -> (f32, f32, [i8; 32]) {
        (b.d.to_f32(), 0.0, b.qs)
    }

    fn act1(b: &Q8_1) -> (f32, f32, [i8; 32]) {
        (b.d.to_f32(), b.s.to_f32(), b.qs)
    }

    #[test]
    fn q4_0_tiles_match_llama_cpp_bit_for_bit() {
        check::<Q4_0W, _>(
            GgmlDType::Q4_0,
            |b| {
                (
                    b.d.to_f32(),
                    0.0,
                    std::array::from_fn(|k| nibble(&b.qs, k) - 8),
                )
            },
            super::super::quantize_q8_0,
            act0,
        );
    }

    #[test]
    fn q4_1_tiles_match_llama_cpp_bit_for_bit() {
        check::<Q4_1W, _>(
            GgmlDType::Q4_1,
            |b| {
                (
                    b.d.to_f32(),
                    b.m.to_f32(),
                    std::array::from_fn(|k| nibble(&b.qs, k)),
                )
            },
            super::super::quantize_q8_1,
            act1,
        );
    }

    #[test]
    fn q5_0_tiles_match_llama_cpp_bit_for_bit() {
        check::<Q5_0W, _>(
            GgmlDType::Q5_0,
            |b| {
                let qh = u32::from_le_bytes(b.qh);
                let x =
                    std::array::from_fn(|k| nibble(&b.qs, k) + 16 * ((qh >> k) & 1) as i32 - 16);
                (b.d.to_f32(), 0.0, x)
            },
            super::super::quantize_q8_0,
            act0,
        );
    }

    #[test]
    fn q8_0_tiles_match_llama_cpp_bit_for_bit() {
        check::<Q8_0, _>(
            GgmlDType::Q8_0,
            |b| (b.d.to_f32(), 0.0, std::array::from_fn(|k| b.qs[k] as i32)),
            super::super::quantize_q8_0,
            act0,
        );
    }

    fn k_tiles_match<
        W: Tile<Act = Q8K>,
        B: candle_core::quantized::k_quants::GgmlType<
            VecDotType = candle_core::quantized::k_quants::BlockQ8K,
        >,
    >(
        dtype: GgmlDType,
    ) {
        use candle_core::quantized::k_quants::BlockQ8K;
        let dev = Device::Cpu;
        let mut seed = 5u64;
        for (out, inp, rows) in [(3, 256, 1), (5, 512, 4), (2, 768, 7), (2, 512, 37)] {
            let w: Vec<f32> = (0..out * inp).map(|_| lcg(&mut seed)).collect();
            let q =
                QTensor::quantize(&Tensor::from_vec(w, (out, inp), &dev).unwrap(), dtype).unwrap();
            let data = q.data().unwrap();
            let n_blocks = inp / QK_K;
            // SAFETY: candle stores the weights as a Vec<B>, which W mirrors.
            let (ours, theirs): (&[W], &[B]) = unsafe {
                (
                    std::slice::from_raw_parts(data.as_ptr() as *const W, out * n_blocks),
                    std::slice::from_raw_parts(data.as_ptr() as *const B, out * n_blocks),
                )
            };
            let xs: Vec<f32> = (0..rows * inp).map(|_| 3.0 * lcg(&mut seed)).collect();
            let blocks = super::super::quantize_q8k(&xs);
            // SAFETY: Q8K mirrors BlockQ8K.
            let act_k: &[BlockQ8K] = unsafe {
                std::slice::from_raw_parts(blocks.as_ptr() as *const BlockQ8K, blocks.len())
            };
            let d: Vec<f32> = blocks.iter().map(|b| b.d).collect();
            for level in levels() {
                let acts = Acts::new::<W>(&blocks, &d, &[], n_blocks, level);
                for o in 0..out {
                    let w_row = &ours[o * n_blocks..(o + 1) * n_blocks];
                    let mut got = vec![0f32; rows];
                    // SAFETY: `level` is supported; rows exist.
                    unsafe { dot_rows(level, w_row, &acts, 0..rows, &mut got) };
                    for (r, g) in got.iter().enumerate() {
                        let want = B::vec_dot(
                            inp,
                            &theirs[o * n_blocks..(o + 1) * n_blocks],
                            &act_k[r * n_blocks..(r + 1) * n_blocks],
                        );
                        assert_eq!(
                            g.to_bits(),
                            want.to_bits(),
                            "{dtype:?} {level:?} {out}x{inp} row {r}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn k_quant_tiles_match_the_block_dot_products_bit_for_bit() {
        // candle's block dot products are llama.cpp's AVX2 code (built for x86-64-v3).
        k_tiles_match::<Q4KW, BlockQ4K>(GgmlDType::Q4K);
        k_tiles_match::<Q6KW, BlockQ6K>(GgmlDType::Q6K);
    }

    #[test]
    fn scatter_transposes_every_element() {
        if !levels().contains(&Level::Avx2) {
            return;
        }
        let mut seed = 9u64;
        for (n, rows) in [(16, 32), (16, 13), (5, 8), (11, 21), (8, 1), (3, 3)] {
            let out = n + 7;
            let block: Vec<f32> = (0..n * rows).map(|_| lcg(&mut seed)).collect();
            let mut dst = vec![f32::NAN; rows * out];
            // SAFETY: AVX2 checked; `dst` holds `rows` rows of `out ≥ 2 + n`.
            unsafe { scatter(&block, n, rows, dst.as_mut_ptr().add(2), out) };
            for r in 0..rows {
                for c in 0..out {
                    let want = if (2..2 + n).contains(&c) {
                        block[(c - 2) * rows + r].to_bits()
                    } else {
                        f32::NAN.to_bits()
                    };
                    assert_eq!(dst[r * out + c].to_bits(), want, "{n}x{rows} at {r},{c}");
                }
            }
        }
    }

    #[test]
    fn the_tiles_run_on_this_cpu() {
        // Without AVX2 the bit-for-bit tests above would check nothing.
        assert!(!levels().is_empty(), "no AVX2 on this CPU");
    }
}

#[cfg(test)]
mod speed {
    use super::*;
    use crate::kernels::tests::lcg;
    use candle_core::quantized::{GgmlDType, QTensor};
    use candle_core::{Device, Tensor};

    /// Not a test: ns per 32-value product, one thread, data in L1/L2, for the row
    /// tiles and the register tiles. `cargo test --release -p quire-runtime --lib
    /// x86::speed -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn tile_throughput() {
        let Some(level) = level() else { return };
        measure::<Q5_0W>(level, GgmlDType::Q5_0, "Q5_0");
        measure::<Q4_1W>(level, GgmlDType::Q4_1, "Q4_1");
        // The k-quants have no register tile: their row tiles at each level.
        for level in [Level::Avx2, level] {
            measure::<Q4KW>(level, GgmlDType::Q4K, "Q4_K");
            measure::<Q6KW>(level, GgmlDType::Q6K, "Q6_K");
        }
    }

    fn measure<W: Tile>(level: Level, dtype: GgmlDType, name: &str)
    where
        W::Act: crate::kernels::TileAct,
    {
        use crate::kernels::TileAct;
        let inp = if W::VALUES == QK_K { 1024 } else { 896 };
        let (out, rows) = (16, 32);
        let mut seed = 5u64;
        let w: Vec<f32> = (0..out * inp).map(|_| lcg(&mut seed)).collect();
        let t = Tensor::from_vec(w, (out, inp), &Device::Cpu).unwrap();
        let q = QTensor::quantize(&t, dtype).unwrap();
        let bytes = q.data().unwrap().to_vec();
        let n = bytes.len() / std::mem::size_of::<W>();
        let mut w: Vec<W> = Vec::with_capacity(n);
        // SAFETY: plain-old-data mirror of the block layout; every byte is copied.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), w.as_mut_ptr() as *mut u8, bytes.len());
            w.set_len(n);
        }
        let x: Vec<f32> = (0..rows * inp).map(|_| lcg(&mut seed)).collect();
        let blocks = W::Act::quantize(&x);
        let (d, s) = W::Act::scales(&blocks);
        let nb = inp / W::VALUES;
        let acts = Acts::new::<W>(&blocks, &d, &s, nb, level);
        let mut o = vec![0f32; out * rows];
        // In 32-value pieces, whatever the block size.
        let pairs = (out * rows * inp / QK8) as f64;
        for gemm in [false, true, false, true] {
            if gemm && !W::has_gemm(level) {
                continue;
            }
            let mut best = f64::MAX;
            for _ in 0..200 {
                let t0 = std::time::Instant::now();
                // SAFETY: detected level; rows exist.
                unsafe {
                    if gemm {
                        dot_block(level, &w, nb, &acts, 0..rows, &mut o, rows);
                    } else {
                        for c in 0..out {
                            let row = &w[c * nb..(c + 1) * nb];
                            dot_rows(level, row, &acts, 0..rows, &mut o[c * rows..(c + 1) * rows]);
                        }
                    }
                }
                std::hint::black_box(&o);
                best = best.min(t0.elapsed().as_secs_f64());
            }
            let kind = if gemm { "register tiles" } else { "row tiles" };
            eprintln!(
                "{name} {level:?} {kind}: {:.3} ns per 32 values",
                best * 1e9 / pairs
            );
        }
    }
}
