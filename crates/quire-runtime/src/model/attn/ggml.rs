//! [`super::Attention::LlamaCpp`]: llama.cpp's CPU flash attention as the decoder has
//! always done it (scores summed over the head dimension in order, an online softmax with
//! `expf`, the weighted sum of V rounded to f16 after every step); the AVX2 + F16C path
//! does exactly the same operations eight lanes at a time, converting the cached halves
//! as it reads them, and takes the softmax's exponentials eight at a time with a port of
//! glibc's `expf` that gives the same bits. Each query meets its keys one at a time in
//! order, so a call over many queries gives, to the bit, what one query at a time gives.

use super::{HeadKv, KB};
use half::f16;

/// One query's online softmax between key blocks: its running maximum and denominator,
/// and its sum of V so far.
struct Running<'a> {
    m: &'a mut f32,
    sum: &'a mut f32,
    acc: &'a mut [f32],
}

/// `qs`: `[nq][hd]`, each query already rounded to f16; query `i` attends over keys
/// `0..ns[i]` (at least one) and its result goes to `out[i * hd..][..hd]`.
pub(super) fn attend(kv: &HeadKv, qs: &[f32], ns: &[usize], scale: f32, out: &mut [f32]) {
    let hd = kv.hd;
    let nq = ns.len();
    debug_assert!(qs.len() == nq * hd && out.len() == nq * hd);
    let mut m = vec![f32::NEG_INFINITY; nq];
    let mut sum = vec![0f32; nq];
    // The running sums live in `out` until the end.
    out.iter_mut().for_each(|a| *a = 0.0);
    let mut scores = [0f32; KB];
    let simd = simd_heads(hd);
    let n_blocks = ns.iter().max().map_or(0, |&n| n.div_ceil(KB));
    for b in 0..n_blocks {
        let (kb, vb) = (kv.k_block(b), kv.v_block(b));
        for (i, ((q, acc), &n)) in qs
            .chunks_exact(hd)
            .zip(out.chunks_exact_mut(hd))
            .zip(ns)
            .enumerate()
        {
            if n <= b * KB {
                continue;
            }
            let len = (n - b * KB).min(KB);
            let run = Running {
                m: &mut m[i],
                sum: &mut sum[i],
                acc,
            };
            #[cfg(target_arch = "x86_64")]
            if simd {
                // SAFETY: the CPU has AVX2, FMA and F16C (checked by `simd_heads`); slice
                // bounds are checked by the callee's indexing.
                unsafe { x86::block(kb, vb, hd, q, len, scale, &mut scores, run) };
                continue;
            }
            let _ = simd;
            block(kb, vb, hd, q, len, scale, &mut scores, run);
        }
    }
    for (acc, s) in out.chunks_exact_mut(hd).zip(&sum) {
        let inv = 1.0 / s;
        acc.iter_mut().for_each(|a| *a *= inv);
    }
}

/// Whether the vector path takes heads of `hd` dimensions (its running sum is held in
/// registers).
fn simd_heads(hd: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        matches!(hd, 32 | 64 | 96 | 128) && crate::kernels::simd_enabled()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = hd;
        false
    }
}

fn round16(x: f32) -> f32 {
    f16::from_f32(x).to_f32()
}

/// The reference: keys `0..len` of one block, one element at a time.
#[allow(clippy::too_many_arguments)]
fn block(
    kb: &[f16],
    vb: &[f16],
    hd: usize,
    q: &[f32],
    len: usize,
    scale: f32,
    scores: &mut [f32; KB],
    run: Running,
) {
    let sc = &mut scores[..len];
    sc.iter_mut().for_each(|s| *s = 0.0);
    for (d, &qd) in q.iter().enumerate() {
        sc.iter_mut()
            .zip(&kb[d * KB..][..len])
            .for_each(|(s, &kx)| *s += qd * kx.to_f32());
    }
    for (j, &dot) in sc.iter().enumerate() {
        let (ms, vs) = softmax_step(dot * scale, run.m);
        let vrow = &vb[j * hd..][..hd];
        if ms != 1.0 {
            run.acc.iter_mut().for_each(|a| *a = round16(*a * ms));
        }
        run.acc
            .iter_mut()
            .zip(vrow)
            .for_each(|(a, &x)| *a = round16(*a + x.to_f32() * vs));
        *run.sum = *run.sum * ms + vs;
    }
}

/// The online softmax's step for score `s` with running maximum `m`: the factor for the
/// sum so far and the weight of this key.
#[inline(always)]
fn softmax_step(s: f32, m: &mut f32) -> (f32, f32) {
    if s > *m {
        let ms = (*m - s).exp();
        *m = s;
        (ms, 1.0)
    } else {
        (1.0, (s - *m).exp())
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{Running, KB};
    use half::f16;
    use std::arch::x86_64::*;

    #[inline(always)]
    unsafe fn load_half8(p: &[f16]) -> __m256 {
        debug_assert!(p.len() >= 8);
        _mm256_cvtph_ps(_mm_loadu_si128(p.as_ptr() as *const __m128i))
    }

    #[inline(always)]
    unsafe fn round16(x: __m256) -> __m256 {
        _mm256_cvtph_ps(_mm256_cvtps_ph::<_MM_FROUND_TO_NEAREST_INT>(x))
    }

    /// [`super::block`] eight lanes at a time, for heads of 32, 64, 96 or 128 dimensions.
    #[allow(clippy::too_many_arguments)]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn block(
        kb: &[f16],
        vb: &[f16],
        hd: usize,
        q: &[f32],
        len: usize,
        scale: f32,
        scores: &mut [f32; KB],
        run: Running,
    ) {
        // Scores: each summed over d in order (multiply, then add), eight keys per lane
        // group. Lanes past `len` score positions this query does not see (or not yet
        // written): they are never read.
        let lanes = len.div_ceil(8);
        let mut s = [_mm256_setzero_ps(); KB / 8];
        for (d, &qd) in q.iter().enumerate() {
            let qv = _mm256_set1_ps(qd);
            let row = &kb[d * KB..][..KB];
            for (l, sl) in s.iter_mut().enumerate().take(lanes) {
                *sl = _mm256_add_ps(*sl, _mm256_mul_ps(qv, load_half8(&row[l * 8..])));
            }
        }
        for (l, sl) in s.iter().enumerate().take(lanes) {
            _mm256_storeu_ps(scores[l * 8..][..8].as_mut_ptr(), *sl);
        }
        softmax_factors(&mut scores[..lanes * 8], len, scale, run.m);
        let sc = &scores[..len];
        match hd {
            32 => weigh_values::<4>(vb, sc, run),
            64 => weigh_values::<8>(vb, sc, run),
            96 => weigh_values::<12>(vb, sc, run),
            _ => weigh_values::<16>(vb, sc, run),
        }
    }

    /// The online softmax's factors for the block's first `len` keys, in place of their
    /// scores, carrying the running maximum `m`: the running maximum is a prefix maximum,
    /// so each key's `expf` argument is known up front (`m − s` when the key raises the
    /// maximum, else `s − m`, exactly as [`super::softmax_step`] forms them) and eight
    /// exponentials are taken together. A key that raised the maximum gets `−ms` (its
    /// `vs` is 1), any other `vs` (its `ms` is 1): exponentials are never negative, so the
    /// sign carries which. `scores` is whole lanes of eight; those past `len` are ignored.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn softmax_factors(scores: &mut [f32], len: usize, scale: f32, m: &mut f32) {
        let mut mx = *m;
        for x in scores[..len].iter_mut() {
            let s = *x * scale;
            // Negative exactly when the key raises the maximum (m − s < 0, or −∞ for the
            // first key); else s − m negated, ≥ 0.
            *x = mx - s;
            if s > mx {
                mx = s;
            }
        }
        *m = mx;
        for c in scores.chunks_exact_mut(8) {
            let v = _mm256_loadu_ps(c.as_ptr());
            _mm256_storeu_ps(c.as_mut_ptr(), signed_exp(v));
        }
    }

    /// `expf(−|v|)`, carrying the sign of `v`.
    #[inline(always)]
    unsafe fn signed_exp(v: __m256) -> __m256 {
        let sign = _mm256_set1_ps(-0.0);
        let neg = _mm256_or_ps(v, sign);
        let e = crate::kernels::vexp::expf8(neg);
        _mm256_or_ps(e, _mm256_and_ps(v, sign))
    }

    /// The weighted sum of V for a head of `8 * C` dimensions, held in registers through
    /// the block, from [`softmax_factors`].
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn weigh_values<const C: usize>(vb: &[f16], factors: &[f32], run: Running) {
        let acc = &mut run.acc[..8 * C];
        let mut a = [_mm256_setzero_ps(); C];
        for (c, x) in a.iter_mut().enumerate() {
            *x = _mm256_loadu_ps(acc[c * 8..][..8].as_ptr());
        }
        let mut s_sum = *run.sum;
        for (j, &e) in factors.iter().enumerate() {
            let (ms, vs) = if e.is_sign_negative() {
                (-e, 1.0)
            } else {
                (1.0, e)
            };
            let vrow = &vb[j * 8 * C..][..8 * C];
            if ms != 1.0 {
                let msv = _mm256_set1_ps(ms);
                for x in a.iter_mut() {
                    *x = round16(_mm256_mul_ps(*x, msv));
                }
                s_sum *= ms;
            }
            // With `ms` = 1 (most keys) `s_sum · ms` is `s_sum` itself: the product is
            // skipped, which shortens the one chain of dependent steps from key to key.
            s_sum += vs;
            let vsv = _mm256_set1_ps(vs);
            for (c, x) in a.iter_mut().enumerate() {
                let v = load_half8(&vrow[c * 8..]);
                *x = round16(_mm256_add_ps(*x, _mm256_mul_ps(v, vsv)));
            }
        }
        for (c, x) in a.iter().enumerate() {
            _mm256_storeu_ps(acc[c * 8..][..8].as_mut_ptr(), *x);
        }
        *run.sum = s_sum;
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{cache, Lcg};
    use super::*;

    /// One query over its keys in one pass, one element at a time: the arithmetic every
    /// path must reproduce.
    fn one_query(kv: &HeadKv, q: &[f32], n: usize, scale: f32) -> Vec<f32> {
        let hd = kv.hd;
        let key = |j: usize, d: usize| kv.key(j, d).to_f32();
        let val = |j: usize, d: usize| kv.value(j, d).to_f32();
        let mut acc = vec![0f32; hd];
        let (mut m, mut s_sum) = (f32::NEG_INFINITY, 0f32);
        for j in 0..n {
            let mut dot = 0f32;
            for (d, &qd) in q.iter().enumerate() {
                dot += qd * key(j, d);
            }
            let (ms, vs) = softmax_step(dot * scale, &mut m);
            for (d, a) in acc.iter_mut().enumerate() {
                if ms != 1.0 {
                    *a = round16(*a * ms);
                }
                *a = round16(*a + val(j, d) * vs);
            }
            s_sum = s_sum * ms + vs;
        }
        acc.iter().map(|a| a * (1.0 / s_sum)).collect()
    }

    #[test]
    fn every_path_matches_one_query_at_a_time_bit_for_bit() {
        let mut rnd = Lcg(11);
        let (n_kv, cap) = (3, 4 * KB);
        for hd in [24, 32, 64, 96, 128, 256] {
            let (k, v) = cache(n_kv, hd, cap, &mut rnd);
            // Key counts on both sides of lane and block edges, in one call, as a
            // prefill's causal rows and a decode's single row give them.
            let ns = [1, 7, 8, 9, 63, 64, 65, 130, 200, cap];
            let qs: Vec<f32> = (0..ns.len() * hd)
                .map(|_| round16(rnd.next() * 3.0))
                .collect();
            for kvh in 0..n_kv {
                let kv = HeadKv::new(&k, &v, n_kv, kvh, hd);
                let mut out = vec![f32::NAN; ns.len() * hd];
                attend(&kv, &qs, &ns, 0.125, &mut out);
                let mut single = vec![0f32; hd];
                for (i, &n) in ns.iter().enumerate() {
                    let q = &qs[i * hd..][..hd];
                    let want = one_query(&kv, q, n, 0.125);
                    assert_eq!(&out[i * hd..][..hd], &want[..], "hd {hd}, n = {n}");
                    assert!(want.iter().all(|x| x.is_finite()));
                    attend(&kv, q, &[n], 0.125, &mut single);
                    assert_eq!(single, want, "alone: hd {hd}, n = {n}");
                }
            }
        }
    }
}
