//! [`super::Attention::Fast`]: flash attention in f32.
//!
//! For each block of [`KB`] keys: every query's scores (a dot product over the head
//! dimension), the block's part of an online softmax (the block's maximum, the factor that
//! rescales what came before, the exponentials), then the weighted sum of V, carried to
//! the next block. The cached halves are widened to f32 once per block for all the
//! queries of the call.
//!
//! The vector path (AVX2 + FMA + F16C, heads of a multiple of 16 dimensions) works on
//! register tiles of up to four queries: sixteen keys' scores, or sixteen dimensions of
//! the sum of V, for each, so every value loaded feeds several fused multiply-adds. Each
//! query's arithmetic is the same whichever queries share its tile, so one call over many
//! queries gives what one call per query gives. Other heads go the scalar way, the same
//! steps one element at a time.

use super::{HeadKv, KB};
use half::slice::HalfFloatSliceExt;

/// Queries per register tile.
const TILE: usize = 4;

/// One cache block widened to f32 for a call's queries: keys `[hd][KB]` (in each row the
/// first `key_span(longest)` are this block's), values `[KB][hd]` (the first `longest`).
struct Widened<'a> {
    k: &'a [f32],
    v: &'a [f32],
    hd: usize,
    /// The most keys of this block any of the call's queries sees.
    longest: usize,
}

thread_local! {
    /// A thread's scratch for [`attend_on`] (the widened block, the queries' scores),
    /// reused from call to call: a decode makes a call per head and layer for every token,
    /// and fresh buffers were zeroed each time. Only what a call writes is read back.
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `qs`: `[nq][hd]`; query `i` attends over keys `0..ns[i]` (at least one) and its result
/// goes to `out[i * hd..][..hd]`.
pub(super) fn attend(kv: &HeadKv, qs: &[f32], ns: &[usize], scale: f32, out: &mut [f32]) {
    attend_on(kv, qs, ns, scale, out, simd_heads(kv.hd));
}

/// [`attend`] on the vector path (`simd`, where [`simd_heads`] allows it) or the scalar one.
fn attend_on(kv: &HeadKv, qs: &[f32], ns: &[usize], scale: f32, out: &mut [f32], simd: bool) {
    let hd = kv.hd;
    let nq = ns.len();
    debug_assert!(qs.len() == nq * hd && out.len() == nq * hd);
    debug_assert!(ns.iter().all(|&n| n >= 1));
    // Each query's running maximum and denominator, and its factor for its sum so far;
    // the running sums of V live in `out` until the end.
    let mut m = vec![f32::NEG_INFINITY; nq];
    let mut sum = vec![0f32; nq];
    let mut factor = vec![0f32; nq];
    out.iter_mut().for_each(|a| *a = 0.0);
    let mut active = Vec::with_capacity(nq);
    let n_blocks = ns.iter().max().map_or(0, |&n| n.div_ceil(KB));
    SCRATCH.with_borrow_mut(|scratch| {
        let need = 2 * hd * KB + nq * KB;
        if scratch.len() < need {
            scratch.resize(need, 0.0);
        }
        // The block's keys and values in f32, and each query's scores, then weights,
        // `[nq][KB]`.
        let (kf, rest) = scratch.split_at_mut(hd * KB);
        let (vf, rest) = rest.split_at_mut(KB * hd);
        let p = &mut rest[..nq * KB];
        for b in 0..n_blocks {
            active.clear();
            active.extend((0..nq).filter(|&i| ns[i] > b * KB));
            let len = |i: usize| (ns[i] - b * KB).min(KB);
            let longest = active.iter().map(|&i| len(i)).max().unwrap_or(0);
            let blk = widen(kv, b, longest, kf, vf);
            for tile in active.chunks(TILE) {
                #[cfg(target_arch = "x86_64")]
                if simd {
                    // SAFETY: the CPU has AVX2, FMA and F16C and `hd` is a multiple of 16
                    // (checked by `simd_heads`); `p` holds `nq * KB`.
                    unsafe { x86::scores(&blk, qs, tile, p) };
                    continue;
                }
                scores(&blk, qs, tile, p);
            }
            for &i in &active {
                let row = &mut p[i * KB..][..KB];
                let (f, s) = softmax(row, len(i), longest, scale, &mut m[i], simd);
                factor[i] = f;
                sum[i] = sum[i] * f + s;
            }
            for tile in active.chunks(TILE) {
                #[cfg(target_arch = "x86_64")]
                if simd {
                    // SAFETY: as for the scores.
                    unsafe { x86::weigh(&blk, p, &factor, tile, out) };
                    continue;
                }
                weigh(&blk, p, &factor, tile, out);
            }
        }
    });
    for (acc, s) in out.chunks_exact_mut(hd).zip(&sum) {
        let inv = 1.0 / s;
        acc.iter_mut().for_each(|a| *a *= inv);
    }
}

/// Whether the vector path takes heads of `hd` dimensions.
fn simd_heads(hd: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        hd.is_multiple_of(16) && crate::kernels::simd_enabled()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = hd;
        false
    }
}

/// Keys: the score tiles take sixteen at a time.
fn key_span(longest: usize) -> usize {
    longest.div_ceil(16) * 16
}

/// Widens block `b`'s first `key_span(longest)` keys and first `longest` values into
/// `kf` and `vf`.
fn widen<'a>(
    kv: &HeadKv,
    b: usize,
    longest: usize,
    kf: &'a mut [f32],
    vf: &'a mut [f32],
) -> Widened<'a> {
    let hd = kv.hd;
    let (kb, vb) = (kv.k_block(b), kv.v_block(b));
    let span = key_span(longest);
    for d in 0..hd {
        kb[d * KB..][..span].convert_to_f32_slice(&mut kf[d * KB..][..span]);
    }
    vb[..longest * hd].convert_to_f32_slice(&mut vf[..longest * hd]);
    Widened {
        k: kf,
        v: vf,
        hd,
        longest,
    }
}

/// The scores of the tile's queries with the block's first `key_span(longest)` keys,
/// into their rows of `p`: summed over the dimensions in order with fused multiply-adds,
/// as the vector path does.
fn scores(blk: &Widened, qs: &[f32], tile: &[usize], p: &mut [f32]) {
    let (hd, span) = (blk.hd, key_span(blk.longest));
    for &i in tile {
        let q = &qs[i * hd..][..hd];
        let row = &mut p[i * KB..][..span];
        row.iter_mut().for_each(|s| *s = 0.0);
        for (d, &qd) in q.iter().enumerate() {
            row.iter_mut()
                .zip(&blk.k[d * KB..][..span])
                .for_each(|(s, &k)| *s = qd.mul_add(k, *s));
        }
    }
}

/// One query's softmax step over the block: `row` holds its scores for the first `len`
/// keys and becomes their weights `exp(s·scale − m')`, zero up to `longest`, where `m'`
/// is the running maximum `m` raised by the block's. Returns the factor for what came
/// before (`exp(m − m')`) and the sum of the block's weights.
fn softmax(
    row: &mut [f32],
    len: usize,
    longest: usize,
    scale: f32,
    m: &mut f32,
    simd: bool,
) -> (f32, f32) {
    let old = *m;
    row[len..longest].iter_mut().for_each(|s| *s = 0.0);
    let row = &mut row[..len];
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd_heads` checked AVX2, FMA and F16C.
        unsafe {
            *m = old.max(x86::scale_max(row, scale));
            return (factor(old, *m), x86::exps(row, *m));
        }
    }
    let _ = simd;
    for s in row.iter_mut() {
        *s *= scale;
        *m = m.max(*s);
    }
    let mut s = 0.0;
    for x in row.iter_mut() {
        *x = (*x - *m).exp();
        s += *x;
    }
    (factor(old, *m), s)
}

/// The factor for a sum kept under running maximum `old` when the maximum becomes `new`
/// (0 before the first block: nothing is kept yet).
fn factor(old: f32, new: f32) -> f32 {
    if old == f32::NEG_INFINITY {
        0.0
    } else {
        (old - new).exp()
    }
}

/// Each tile query's running sum of V (in `out`), times its `factor`, plus the block's
/// first `longest` values weighted by its row of `p`, in key order with fused
/// multiply-adds, as the vector path does.
fn weigh(blk: &Widened, p: &[f32], factor: &[f32], tile: &[usize], out: &mut [f32]) {
    let hd = blk.hd;
    for &i in tile {
        let acc = &mut out[i * hd..][..hd];
        acc.iter_mut().for_each(|a| *a *= factor[i]);
        for (j, &w) in p[i * KB..][..blk.longest].iter().enumerate() {
            acc.iter_mut()
                .zip(&blk.v[j * hd..][..hd])
                .for_each(|(a, &v)| *a = w.mul_add(v, *a));
        }
    }
}

#[cfg(target_arch = "x86_64")]
// The tiles index several arrays by the same query and lane counters.
#[allow(clippy::needless_range_loop)]
mod x86 {
    use super::{key_span, Widened, KB};
    use crate::kernels::quant::hmax8;
    use crate::kernels::vexp::exp8;
    use std::arch::x86_64::*;

    /// [`super::scores`] on register tiles of eight accumulators: four queries by sixteen
    /// keys, or fewer queries by more keys, so that a decode's lone query still has eight
    /// independent sums in flight.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn scores(blk: &Widened, qs: &[f32], tile: &[usize], p: &mut [f32]) {
        match tile.len() {
            4 => scores_n::<4, 2>(blk, qs, tile, p),
            3 => scores_n::<3, 2>(blk, qs, tile, p),
            2 => scores_n::<2, 4>(blk, qs, tile, p),
            _ => scores_n::<1, 8>(blk, qs, tile, p),
        }
    }

    /// `Q` queries by `8 * K` keys per pass. A last pass may run past `key_span(longest)`
    /// (never past the block): those scores are never read.
    #[inline(always)]
    unsafe fn scores_n<const Q: usize, const K: usize>(
        blk: &Widened,
        qs: &[f32],
        tile: &[usize],
        p: &mut [f32],
    ) {
        let hd = blk.hd;
        debug_assert!(tile.len() == Q && blk.k.len() >= hd * KB && KB.is_multiple_of(8 * K));
        let q: [*const f32; Q] = std::array::from_fn(|t| qs[tile[t] * hd..][..hd].as_ptr());
        let kp = blk.k.as_ptr();
        for k0 in (0..key_span(blk.longest)).step_by(8 * K) {
            let mut acc = [[_mm256_setzero_ps(); K]; Q];
            for d in 0..hd {
                let k = kp.add(d * KB + k0);
                let kv: [__m256; K] = std::array::from_fn(|c| _mm256_loadu_ps(k.add(8 * c)));
                for t in 0..Q {
                    let qd = _mm256_broadcast_ss(&*q[t].add(d));
                    for c in 0..K {
                        acc[t][c] = _mm256_fmadd_ps(qd, kv[c], acc[t][c]);
                    }
                }
            }
            for t in 0..Q {
                let row = p[tile[t] * KB + k0..][..8 * K].as_mut_ptr();
                for c in 0..K {
                    _mm256_storeu_ps(row.add(8 * c), acc[t][c]);
                }
            }
        }
    }

    /// Scales `row` in place and returns its maximum (−∞ for none).
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn scale_max(row: &mut [f32], scale: f32) -> f32 {
        let sv = _mm256_set1_ps(scale);
        let mut mv = _mm256_set1_ps(f32::NEG_INFINITY);
        let mut chunks = row.chunks_exact_mut(8);
        for c in &mut chunks {
            let x = _mm256_mul_ps(_mm256_loadu_ps(c.as_ptr()), sv);
            _mm256_storeu_ps(c.as_mut_ptr(), x);
            mv = _mm256_max_ps(mv, x);
        }
        let mut mx = hmax8(mv);
        for x in chunks.into_remainder() {
            *x *= scale;
            mx = mx.max(*x);
        }
        mx
    }

    /// `row ← exp(row − m)` with `row ≤ m`, eight lanes at a time; returns the sum.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn exps(row: &mut [f32], m: f32) -> f32 {
        let mv = _mm256_set1_ps(m);
        let mut total = _mm256_setzero_ps();
        let mut chunks = row.chunks_exact_mut(8);
        for c in &mut chunks {
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), mv));
            _mm256_storeu_ps(c.as_mut_ptr(), e);
            total = _mm256_add_ps(total, e);
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), total);
        let mut s = lanes.iter().sum::<f32>();
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            // The tail in a padded lane group: −∞ lanes give 0.
            let mut tail = [f32::NEG_INFINITY; 8];
            tail[..rest.len()].copy_from_slice(rest);
            let e = exp8(_mm256_sub_ps(_mm256_loadu_ps(tail.as_ptr()), mv));
            _mm256_storeu_ps(tail.as_mut_ptr(), e);
            rest.copy_from_slice(&tail[..rest.len()]);
            s += tail[..rest.len()].iter().sum::<f32>();
        }
        s
    }

    /// [`super::weigh`] on register tiles of up to eight accumulators: four queries by
    /// sixteen dimensions, or fewer queries by more dimensions where the head allows.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn weigh(
        blk: &Widened,
        p: &[f32],
        factor: &[f32],
        tile: &[usize],
        out: &mut [f32],
    ) {
        let a = (blk, p, factor, tile, out);
        match (
            tile.len(),
            blk.hd.is_multiple_of(64),
            blk.hd.is_multiple_of(32),
        ) {
            (4, ..) => weigh_n::<4, 2>(a),
            (3, ..) => weigh_n::<3, 2>(a),
            (2, _, true) => weigh_n::<2, 4>(a),
            (2, ..) => weigh_n::<2, 2>(a),
            (_, true, _) => weigh_n::<1, 8>(a),
            (_, _, true) => weigh_n::<1, 4>(a),
            _ => weigh_n::<1, 2>(a),
        }
    }

    /// `Q` queries by `8 * D` dimensions per pass (`hd` a multiple of `8 * D`).
    #[inline(always)]
    unsafe fn weigh_n<const Q: usize, const D: usize>(
        (blk, p, factor, tile, out): (&Widened, &[f32], &[f32], &[usize], &mut [f32]),
    ) {
        let hd = blk.hd;
        debug_assert!(tile.len() == Q && blk.v.len() >= blk.longest * hd);
        debug_assert!(hd.is_multiple_of(8 * D));
        let w: [*const f32; Q] = std::array::from_fn(|t| p[tile[t] * KB..][..KB].as_ptr());
        let f: [__m256; Q] = std::array::from_fn(|t| _mm256_set1_ps(factor[tile[t]]));
        let o: [*mut f32; Q] = std::array::from_fn(|t| out[tile[t] * hd..][..hd].as_mut_ptr());
        let vp = blk.v.as_ptr();
        for d0 in (0..hd).step_by(8 * D) {
            let mut acc = [[_mm256_setzero_ps(); D]; Q];
            for t in 0..Q {
                for c in 0..D {
                    let x = _mm256_loadu_ps(o[t].add(d0 + 8 * c));
                    acc[t][c] = _mm256_mul_ps(x, f[t]);
                }
            }
            for j in 0..blk.longest {
                let v = vp.add(j * hd + d0);
                let vv: [__m256; D] = std::array::from_fn(|c| _mm256_loadu_ps(v.add(8 * c)));
                for t in 0..Q {
                    let wj = _mm256_broadcast_ss(&*w[t].add(j));
                    for c in 0..D {
                        acc[t][c] = _mm256_fmadd_ps(wj, vv[c], acc[t][c]);
                    }
                }
            }
            for t in 0..Q {
                for c in 0..D {
                    _mm256_storeu_ps(o[t].add(d0 + 8 * c), acc[t][c]);
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::tests::{cache, Lcg};
    use super::*;
    use half::f16;

    /// One query the textbook way, in f64: every score, the softmax over all of them, the
    /// weighted sum of V.
    pub(crate) fn exact(kv: &HeadKv, q: &[f32], n: usize, scale: f32) -> Vec<f64> {
        let hd = kv.hd;
        let key = |j: usize, d: usize| kv.key(j, d).to_f64();
        let val = |j: usize, d: usize| kv.value(j, d).to_f64();
        let s: Vec<f64> = (0..n)
            .map(|j| (0..hd).map(|d| q[d] as f64 * key(j, d)).sum::<f64>() * scale as f64)
            .collect();
        let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = s.iter().map(|x| (x - mx).exp()).collect();
        let total: f64 = w.iter().sum();
        (0..hd)
            .map(|d| (0..n).map(|j| w[j] * val(j, d)).sum::<f64>() / total)
            .collect()
    }

    #[test]
    fn every_path_matches_exact_attention_and_one_query_at_a_time() {
        let mut rnd = Lcg(11);
        let (n_kv, cap) = (3, 4 * KB);
        for hd in [24, 32, 64, 96, 128, 256] {
            let (k, v) = cache(n_kv, hd, cap, &mut rnd);
            // Key counts on both sides of lane, tile and block edges, in one call, as a
            // prefill's causal rows and a decode's single row give them.
            let ns = [1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 130, 200, cap];
            // Queries of growing size, so that some softmaxes are nearly one-hot and
            // their maximum moves from block to block.
            let qs: Vec<f32> = (0..ns.len() * hd)
                .map(|i| f16::from_f32(rnd.next() * (1 + i / hd) as f32).to_f32())
                .collect();
            for kvh in 0..n_kv {
                let kv = HeadKv::new(&k, &v, n_kv, kvh, hd);
                for simd in [false, simd_heads(hd)] {
                    let mut out = vec![f32::NAN; ns.len() * hd];
                    attend_on(&kv, &qs, &ns, 0.125, &mut out, simd);
                    let mut single = vec![0f32; hd];
                    for (i, &n) in ns.iter().enumerate() {
                        let q = &qs[i * hd..][..hd];
                        let got = &out[i * hd..][..hd];
                        let want = exact(&kv, q, n, 0.125);
                        // Scores reach the hundreds for the larger queries, where f32's
                        // rounding moves a weight by ~1e-4; a lost key, a wrong factor or
                        // a masking slip moves results by tenths.
                        for (d, (&g, &w)) in got.iter().zip(&want).enumerate() {
                            assert!(
                                (g as f64 - w).abs() < 5e-4,
                                "hd {hd}, n {n}, simd {simd}, dim {d}: {g} vs {w}"
                            );
                        }
                        // Alone, a query gets the same values as among the others.
                        attend_on(&kv, q, &[n], 0.125, &mut single, simd);
                        assert_eq!(single, got, "alone: hd {hd}, n {n}, simd {simd}");
                    }
                }
            }
        }
    }
}
